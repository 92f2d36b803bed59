/*
 * C tests for libgitrpc: every exported function, its error paths, in-process servers,
 * start/stop cycles and many threads on one client. Real git repositories in a temp dir,
 * a real server on a temp socket. Prints one TAP-style line per check; exit status is the
 * number of failures (0: all passed). Run by tests/c/run (under valgrind when present).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gitrpc.h"

static int failures, checks;
static char tmp[256], storage[512], config[2048];

#define CHECK(cond, ...)                                  \
  do {                                                    \
    checks++;                                             \
    if (cond) {                                           \
      printf("ok %d - ", checks);                         \
    } else {                                              \
      failures++;                                         \
      printf("not ok %d - (%s:%d) ", checks, __FILE__, __LINE__); \
    }                                                     \
    printf(__VA_ARGS__);                                  \
    printf("\n");                                         \
    fflush(stdout);                                       \
  } while (0)

/* Expect `err` to be an error with `code`; print its message; free it. */
static void expect_code(gitrpc_error *err, int code, const char *what) {
  int got = gitrpc_error_code(err);
  CHECK(err != NULL && got == code, "%s -> code %d (want %d): %s", what, got, code,
        gitrpc_error_message(err));
  gitrpc_error_free(err);
}

/* Expect `err` with `code` and a message containing `want`; free it. */
static void expect_message(gitrpc_error *err, int code, const char *want, const char *what) {
  int got = gitrpc_error_code(err);
  const char *msg = gitrpc_error_message(err);
  CHECK(err != NULL && got == code && msg[0] && strstr(msg, want), "%s -> code %d (want %d), message \"%s\" (want \"%s\")",
        what, got, code, msg, want);
  gitrpc_error_free(err);
}

static void expect_ok(gitrpc_error *err, const char *what) {
  CHECK(err == NULL, "%s succeeds%s%s", what, err ? ": " : "", err ? gitrpc_error_message(err) : "");
  gitrpc_error_free(err);
}

static void sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) {
    fprintf(stderr, "command failed: %s\n", cmd);
    exit(100);
  }
}

static void sh_out(char *out, size_t n, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  if (!p || !fgets(out, (int)n, p)) {
    fprintf(stderr, "command failed: %s\n", cmd);
    exit(100);
  }
  pclose(p);
  out[strcspn(out, "\n")] = 0;
}

/* A bare repository `name` in the storage: two commits on main (README, then a.txt) and
 * 250 more branches, so branch listings span several messages. */
static void make_fixture(const char *name) {
  sh("set -e; w=%s/work-%s; git init -q -b main $w; cd $w;"
     " export GIT_AUTHOR_NAME='Ada Lovelace' GIT_AUTHOR_EMAIL=ada@example.com"
     " GIT_COMMITTER_NAME='Ada Lovelace' GIT_COMMITTER_EMAIL=ada@example.com"
     " GIT_AUTHOR_DATE='1700000000 +0200' GIT_COMMITTER_DATE='1700000000 +0200';"
     " printf 'hello gitrpc\\n' > README; git add README; git commit -q -m first;"
     " head -c 30000000 /dev/urandom > big.bin; git add big.bin; git commit -q -m big;"
     " printf 'a\\n' > a.txt; git add a.txt; git rm -q big.bin; git commit -q -m second -m 'the body';"
     " git clone -q --bare $w %s/%s;"
     " for i in $(seq 1 250); do echo \"create refs/heads/b$i HEAD\"; done"
     " | git -C %s/%s update-ref --stdin; rm -rf $w",
     tmp, name, storage, name, storage, name);
}

/* ---- protobuf by hand, for the raw calls -------------------------------------------- */

static size_t put_field(uint8_t *buf, size_t at, int field, const void *data, size_t len) {
  buf[at++] = (uint8_t)((field << 3) | 2); /* length-delimited */
  buf[at++] = (uint8_t)len;                /* all our fields are < 128 bytes */
  memcpy(buf + at, data, len);
  return at + len;
}

/* Repository{storage_name=2, relative_path=3} */
static size_t put_repo(uint8_t *buf, const char *rel) {
  uint8_t repo[256];
  size_t n = put_field(repo, 0, 2, "default", 7);
  n = put_field(repo, n, 3, rel, strlen(rel));
  return put_field(buf, 0, 1, repo, n);
}

/* ---- tests ---------------------------------------------------------------------------- */

#include "test_operations.c"
#include "test_diff.c"

static void test_errors_and_null_args(void) {
  CHECK(gitrpc_error_code(NULL) == 0, "error_code(NULL) is 0");
  CHECK(strcmp(gitrpc_error_message(NULL), "") == 0, "error_message(NULL) is empty");
  gitrpc_error_free(NULL);
  gitrpc_client_free(NULL);
  gitrpc_server_free(NULL);
  gitrpc_commit_free(NULL);
  CHECK(gitrpc_commit_id(NULL) == NULL && gitrpc_commit_tree_id(NULL) == NULL && gitrpc_commit_subject(NULL) == NULL &&
            gitrpc_commit_body(NULL) == NULL && gitrpc_commit_body_size(NULL) == 0 &&
            gitrpc_commit_parent_count(NULL) == 0 && gitrpc_commit_parent_id(NULL, 0) == NULL &&
            gitrpc_commit_author(NULL) == NULL && gitrpc_commit_committer(NULL) == NULL,
        "commit accessors on NULL give NULL or 0");
  CHECK(gitrpc_signature_name(NULL) == NULL && gitrpc_signature_email(NULL) == NULL &&
            gitrpc_signature_time(NULL) == 0 && gitrpc_signature_timezone(NULL) == NULL,
        "signature accessors on NULL give NULL or 0");
  gitrpc_string_free(NULL);
  gitrpc_buffer_free(NULL, 0);
  CHECK(1, "every _free(NULL) is a no-op");

  gitrpc_client *c = (gitrpc_client *)0x1;
  expect_code(gitrpc_client_connect(NULL, &c), GITRPC_CODE_INVALID_ARGUMENT, "connect(NULL address)");
  expect_code(gitrpc_client_connect("unix:/x", NULL), GITRPC_CODE_INVALID_ARGUMENT, "connect(NULL out)");
  expect_code(gitrpc_client_connect("nonsense", &c), GITRPC_CODE_INVALID_ARGUMENT, "connect(bad address)");
  expect_code(gitrpc_client_connect("tls://host", &c), GITRPC_CODE_INVALID_ARGUMENT, "connect(tls:// without port)");
  char dead[512];
  snprintf(dead, sizeof dead, "unix:%s/nobody-listens.sock", tmp);
  expect_code(gitrpc_client_connect(dead, &c), GITRPC_CODE_UNAVAILABLE, "connect(dead socket)");
  CHECK(c == (gitrpc_client *)0x1, "out-parameter untouched on error");

  bool b;
  expect_code(gitrpc_ref_exists(NULL, "default", "r.git", "refs/heads/main", &b),
              GITRPC_CODE_INVALID_ARGUMENT, "ref_exists(NULL client)");
  expect_code(gitrpc_client_set_timeout(NULL, 5), GITRPC_CODE_INVALID_ARGUMENT, "set_timeout(NULL)");
  CHECK(gitrpc_client_timeout(NULL) == 0, "client_timeout(NULL) is 0");

  gitrpc_server *s = (gitrpc_server *)0x1;
  expect_code(gitrpc_server_start(NULL, &s), GITRPC_CODE_INVALID_ARGUMENT, "server_start(NULL config)");
  expect_code(gitrpc_server_start(config, NULL), GITRPC_CODE_INVALID_ARGUMENT, "server_start(NULL out)");
  expect_code(gitrpc_server_start("this is = = not toml", &s), GITRPC_CODE_INVALID_ARGUMENT, "server_start(bad TOML)");
  expect_code(gitrpc_server_start("socket_path = \"/tmp/x.sock\"\n", &s), GITRPC_CODE_INVALID_ARGUMENT,
              "server_start(no storage)");
  CHECK(s == (gitrpc_server *)0x1, "server out-parameter untouched on error");
  CHECK(gitrpc_server_address(NULL) == NULL, "server_address(NULL) is NULL");
  expect_code(gitrpc_server_client(NULL, &c), GITRPC_CODE_INVALID_ARGUMENT, "server_client(NULL server)");
}

/* Options: auth token, TLS trust, retries over several addresses. A server with a TLS
 * listener and a token; a certificate made with openssl. */
static void test_options_auth_tls(void) {
  gitrpc_client_options *o = gitrpc_client_options_new();
  CHECK(o != NULL, "client_options_new");
  expect_code(gitrpc_client_options_set_token(NULL, "x"), GITRPC_CODE_INVALID_ARGUMENT, "set_token(NULL options)");
  expect_code(gitrpc_client_options_set_retries(NULL, 1), GITRPC_CODE_INVALID_ARGUMENT, "set_retries(NULL options)");
  expect_code(gitrpc_client_options_set_tls_ca_file(NULL, "x"), GITRPC_CODE_INVALID_ARGUMENT,
              "set_tls_ca_file(NULL options)");
  expect_code(gitrpc_client_options_set_timeout(NULL, 1), GITRPC_CODE_INVALID_ARGUMENT, "set_timeout(NULL options)");
  gitrpc_client_options_free(NULL);

  sh("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost"
     " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE -days 1"
     " -keyout %s/key.pem -out %s/cert.pem 2>/dev/null",
     tmp, tmp);
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "tls_listen_addr = \"127.0.0.1:0\"\n"
           "[auth]\ntoken = \"s3cret\"\n"
           "[tls]\ncertificate_path = \"%s/cert.pem\"\nkey_path = \"%s/key.pem\"\n"
           "[[storage]]\nname = \"default\"\npath = \"%s\"\n",
           tmp, tmp, storage);
  gitrpc_server *s = NULL;
  expect_ok(gitrpc_server_start(cfg, &s), "server_start with TLS and auth");
  if (!s) return;
  const char *addr = gitrpc_server_address(s);
  CHECK(addr && strncmp(addr, "tls://127.0.0.1:", 16) == 0, "TLS address %s", addr ? addr : "(null)");

  char ca[512];
  snprintf(ca, sizeof ca, "%s/cert.pem", tmp);
  gitrpc_client *c = NULL;
  expect_code(gitrpc_client_connect_with_options(addr, o, &c), GITRPC_CODE_UNAVAILABLE,
              "connect(tls://) without trusting the certificate");
  expect_ok(gitrpc_client_options_set_tls_ca_file(o, ca), "set_tls_ca_file");

  bool b = false;
  expect_ok(gitrpc_client_connect_with_options(addr, o, &c), "connect(tls://) trusting the certificate");
  expect_code(gitrpc_ref_exists(c, "default", "r.git", "refs/heads/main", &b), GITRPC_CODE_UNAUTHENTICATED,
              "call without a token");
  gitrpc_client_free(c);

  expect_ok(gitrpc_client_options_set_token(o, "wrong"), "set_token(wrong)");
  expect_ok(gitrpc_client_connect_with_options(addr, o, &c), "connect with a wrong token");
  expect_code(gitrpc_ref_exists(c, "default", "r.git", "refs/heads/main", &b), GITRPC_CODE_PERMISSION_DENIED,
              "call with a wrong token");
  gitrpc_client_free(c);

  /* A dead server first in the list: the read is retried on the live one. */
  char list[1024];
  snprintf(list, sizeof list, "unix:%s/nobody.sock,%s", tmp, addr);
  expect_ok(gitrpc_client_options_set_token(o, "s3cret"), "set_token");
  expect_ok(gitrpc_client_options_set_timeout(o, 10000), "options set_timeout");
  expect_ok(gitrpc_client_options_set_retries(o, 2), "options set_retries");
  c = NULL;
  expect_ok(gitrpc_client_connect_with_options(list, o, &c), "connect to a list with a dead address");
  CHECK(gitrpc_client_timeout(c) == 10000, "timeout from the options");
  b = false;
  expect_ok(gitrpc_ref_exists(c, "default", "r.git", "refs/heads/main", &b), "call with the token, over TLS");
  CHECK(b, "ref exists");
  gitrpc_client_free(c);
  gitrpc_client_options_free(o);

  expect_code(gitrpc_client_connect_with_options(addr, NULL, &c), GITRPC_CODE_UNAVAILABLE,
              "connect_with_options(NULL options): defaults, so the certificate is not trusted");
  gitrpc_server_free(s);
}

/* Every typed call, on either kind of client. */
static void test_typed_calls(gitrpc_client *c, const char *kind) {
  char what[256];
  bool b = false;
#define WHAT(...) (snprintf(what, sizeof what, __VA_ARGS__), what)

  expect_ok(gitrpc_repository_exists(c, "default", "r.git", &b), WHAT("%s repository_exists", kind));
  CHECK(b, "%s: r.git exists", kind);
  expect_ok(gitrpc_repository_exists(c, "default", "missing.git", &b), WHAT("%s repository_exists(missing)", kind));
  CHECK(!b, "%s: missing.git does not exist", kind);
  expect_code(gitrpc_repository_exists(c, "nope", "r.git", &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s repository_exists(unknown storage)", kind));
  expect_code(gitrpc_repository_exists(c, "default", "../../etc", &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s repository_exists(path traversal)", kind));
  expect_code(gitrpc_repository_exists(c, NULL, "r.git", &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s repository_exists(NULL storage)", kind));
  expect_code(gitrpc_repository_exists(c, "default", NULL, &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s repository_exists(NULL path)", kind));
  expect_code(gitrpc_repository_exists(c, "default", "r.git", NULL), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s repository_exists(NULL out)", kind));

  b = false;
  expect_ok(gitrpc_ref_exists(c, "default", "r.git", "refs/heads/main", &b), WHAT("%s ref_exists", kind));
  CHECK(b, "%s: refs/heads/main exists", kind);
  b = true;
  expect_ok(gitrpc_ref_exists(c, "default", "r.git", "refs/heads/nope", &b), WHAT("%s ref_exists(nope)", kind));
  CHECK(!b, "%s: refs/heads/nope does not", kind);
  expect_code(gitrpc_ref_exists(c, "default", "r.git", "main", &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s ref_exists(not under refs/)", kind));
  expect_code(gitrpc_ref_exists(c, "default", "missing.git", "refs/heads/main", &b), GITRPC_CODE_NOT_FOUND,
              WHAT("%s ref_exists(missing repo)", kind));
  expect_code(gitrpc_ref_exists(c, "default", "r.git", NULL, &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s ref_exists(NULL ref)", kind));
  expect_code(gitrpc_ref_exists(c, "default", "a/../../x.git", "refs/heads/main", &b), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s ref_exists(path traversal)", kind));

  char *name = NULL;
  expect_ok(gitrpc_find_default_branch_name(c, "default", "r.git", &name), WHAT("%s find_default_branch_name", kind));
  CHECK(name && strcmp(name, "refs/heads/main") == 0, "%s: default branch is %s", kind, name ? name : "(null)");
  gitrpc_string_free(name);
  expect_code(gitrpc_find_default_branch_name(c, "default", "r.git", NULL), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s find_default_branch_name(NULL out)", kind));

  gitrpc_commit *commit = NULL;
  char head[128], tree[128], parent[128];
  sh_out(head, sizeof head, "git -C %s/r.git rev-parse main", storage);
  sh_out(tree, sizeof tree, "git -C %s/r.git rev-parse main^{tree}", storage);
  sh_out(parent, sizeof parent, "git -C %s/r.git rev-parse main~1", storage);
  expect_ok(gitrpc_find_commit(c, "default", "r.git", "main", &commit), WHAT("%s find_commit(main)", kind));
  CHECK(commit != NULL, "%s: main resolves to a commit", kind);
  if (commit) {
    CHECK(strcmp(gitrpc_commit_id(commit), head) == 0, "%s: commit id %s", kind, gitrpc_commit_id(commit));
    CHECK(strcmp(gitrpc_commit_tree_id(commit), tree) == 0, "%s: tree id %s", kind, gitrpc_commit_tree_id(commit));
    CHECK(gitrpc_commit_parent_count(commit) == 1 && strcmp(gitrpc_commit_parent_id(commit, 0), parent) == 0,
          "%s: one parent", kind);
    CHECK(gitrpc_commit_parent_id(commit, 1) == NULL && gitrpc_commit_parent_id(commit, (size_t)-1) == NULL,
          "%s: parent index out of range is NULL", kind);
    CHECK(strcmp(gitrpc_commit_subject(commit), "second") == 0, "%s: subject %s", kind, gitrpc_commit_subject(commit));
    const char *body = gitrpc_commit_body(commit);
    CHECK(strcmp(body, "second\n\nthe body\n") == 0 && gitrpc_commit_body_size(commit) == (int64_t)strlen(body),
          "%s: body and size", kind);
    const gitrpc_signature *author = gitrpc_commit_author(commit);
    const gitrpc_signature *committer = gitrpc_commit_committer(commit);
    CHECK(author && committer && author != committer, "%s: author and committer", kind);
    CHECK(strcmp(gitrpc_signature_name(author), "Ada Lovelace") == 0 &&
              strcmp(gitrpc_signature_email(author), "ada@example.com") == 0,
          "%s: author %s <%s>", kind, gitrpc_signature_name(author), gitrpc_signature_email(author));
    CHECK(gitrpc_signature_time(author) == 1700000000 && strcmp(gitrpc_signature_timezone(author), "+0200") == 0,
          "%s: author time %lld %s", kind, (long long)gitrpc_signature_time(author), gitrpc_signature_timezone(author));
    CHECK(gitrpc_signature_time(committer) == 1700000000, "%s: committer time", kind);
  }
  gitrpc_commit_free(commit);
  /* A root commit: no parents. */
  expect_ok(gitrpc_find_commit(c, "default", "r.git", "main~2", &commit), WHAT("%s find_commit(main~2)", kind));
  CHECK(commit && gitrpc_commit_parent_count(commit) == 0 && gitrpc_commit_parent_id(commit, 0) == NULL &&
            strcmp(gitrpc_commit_subject(commit), "first") == 0,
        "%s: root commit has no parents", kind);
  gitrpc_commit_free(commit);
  commit = (gitrpc_commit *)0x1;
  expect_ok(gitrpc_find_commit(c, "default", "r.git", "no-such-branch", &commit), WHAT("%s find_commit(unknown)", kind));
  CHECK(commit == NULL, "%s: unknown revision gives NULL", kind);
  expect_code(gitrpc_find_commit(c, "default", "missing.git", "main", &commit), GITRPC_CODE_NOT_FOUND,
              WHAT("%s find_commit(missing repo)", kind));
  expect_code(gitrpc_find_commit(c, "default", "r.git", "--output=/tmp/x", &commit), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s find_commit(option-like revision)", kind));
  expect_code(gitrpc_find_commit(c, "default", "r.git", NULL, &commit), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s find_commit(NULL revision)", kind));

  char oid[128];
  sh_out(oid, sizeof oid, "git -C %s/r.git rev-parse main:README", storage);
  uint8_t *data = NULL;
  size_t len = 0;
  expect_ok(gitrpc_get_blob(c, "default", "r.git", oid, -1, &data, &len), WHAT("%s get_blob", kind));
  CHECK(len == 13 && data && memcmp(data, "hello gitrpc\n", 13) == 0, "%s: blob content (%zu bytes)", kind, len);
  gitrpc_buffer_free(data, len);
  expect_ok(gitrpc_get_blob(c, "default", "r.git", oid, 5, &data, &len), WHAT("%s get_blob(limit 5)", kind));
  CHECK(len == 5 && memcmp(data, "hello", 5) == 0, "%s: blob truncated to limit", kind);
  gitrpc_buffer_free(data, len);
  data = (uint8_t *)0x1;
  len = 7;
  expect_ok(gitrpc_get_blob(c, "default", "r.git", "0123456789012345678901234567890123456789", -1, &data, &len),
            WHAT("%s get_blob(unknown oid)", kind));
  CHECK(data == NULL && len == 0, "%s: unknown blob gives NULL and 0", kind);
  data = (uint8_t *)0x1;
  expect_code(gitrpc_get_blob(c, "default", "missing.git", oid, -1, &data, &len), GITRPC_CODE_NOT_FOUND,
              WHAT("%s get_blob(missing repo)", kind));
  CHECK(data == (uint8_t *)0x1, "%s: blob out-parameter untouched on error", kind);
  char empty_oid[128];
  sh_out(empty_oid, sizeof empty_oid, "git -C %s/r.git hash-object -w --stdin </dev/null", storage);
  expect_ok(gitrpc_get_blob(c, "default", "r.git", empty_oid, -1, &data, &len), WHAT("%s get_blob(empty blob)", kind));
  CHECK(data != NULL && len == 0, "%s: empty blob is non-NULL with length 0", kind);
  gitrpc_buffer_free(data, len);
  expect_code(gitrpc_get_blob(c, "default", "r.git", oid, -1, NULL, &len), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s get_blob(NULL data)", kind));

  expect_ok(gitrpc_create_repository(c, "default", "new/made.git", "trunk"), WHAT("%s create_repository", kind));
  name = (char *)0x1;
  expect_ok(gitrpc_find_default_branch_name(c, "default", "new/made.git", &name), WHAT("%s default branch of empty repo", kind));
  CHECK(name == NULL, "%s: an empty repository has no default branch: NULL", kind);
  expect_code(gitrpc_find_default_branch_name(c, "default", "missing.git", &name), GITRPC_CODE_NOT_FOUND,
              WHAT("%s find_default_branch_name(missing repo)", kind));
  expect_code(gitrpc_create_repository(c, "default", "new/made.git", NULL), GITRPC_CODE_ALREADY_EXISTS,
              WHAT("%s create_repository(existing)", kind));
  expect_ok(gitrpc_remove_repository(c, "default", "new/made.git"), WHAT("%s remove_repository", kind));
  expect_code(gitrpc_remove_repository(c, "default", "new/made.git"), GITRPC_CODE_NOT_FOUND,
              WHAT("%s remove_repository(missing)", kind));
  expect_code(gitrpc_create_repository(c, "default", "../escape.git", NULL), GITRPC_CODE_INVALID_ARGUMENT,
              WHAT("%s create_repository(path traversal)", kind));
#undef WHAT
}

struct stream_state {
  int messages;
  int stop_after;
  gitrpc_client *client;
  int nested_ok;
};

static int32_t on_message(void *user, const uint8_t *msg, size_t len) {
  struct stream_state *st = user;
  (void)msg;
  if (len > 0) st->messages++;
  if (st->client) { /* calling back into gitrpc from the callback works */
    bool b = false;
    gitrpc_error *e = gitrpc_ref_exists(st->client, "default", "r.git", "refs/heads/b7", &b);
    if (!e && b) st->nested_ok++;
    gitrpc_error_free(e);
  }
  return st->stop_after && st->messages >= st->stop_after;
}

static void test_raw_calls(gitrpc_client *c, const char *kind) {
  uint8_t req[512];
  size_t n = put_repo(req, "r.git");
  n = put_field(req, n, 2, "refs/heads/main", 15);
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  expect_ok(gitrpc_call_unary(c, "/gitaly.RefService/RefExists", req, n, &resp, &resp_len), "raw RefExists");
  CHECK(resp_len == 2 && resp[0] == 0x08 && resp[1] == 0x01, "%s: raw RefExists says true (%zu bytes)", kind, resp_len);
  gitrpc_buffer_free(resp, resp_len);

  expect_message(gitrpc_call_unary(c, "/gitaly.RefService/NoSuchMethod", req, n, &resp, &resp_len),
                 GITRPC_CODE_UNIMPLEMENTED, "unknown method NoSuchMethod for service gitaly.RefService",
                 "raw unknown method");
  expect_message(gitrpc_call_unary(c, "/gitaly.NoSuch/Method", req, n, &resp, &resp_len), GITRPC_CODE_UNIMPLEMENTED,
                 "unknown service gitaly.NoSuch", "raw unknown service");
  expect_code(gitrpc_call_unary(c, "RefExists", req, n, &resp, &resp_len), GITRPC_CODE_INVALID_ARGUMENT,
              "raw malformed method name");
  expect_code(gitrpc_call_unary(c, "/gitaly.RepositoryService/RepositoryExists", NULL, 0, &resp, &resp_len),
              GITRPC_CODE_INVALID_ARGUMENT, "raw empty request (no repository)");
  expect_code(gitrpc_call_unary(c, "/gitaly.RefService/RefExists", NULL, 5, &resp, &resp_len),
              GITRPC_CODE_INVALID_ARGUMENT, "raw NULL request with a length");
  expect_code(gitrpc_call_unary(c, "/gitaly.RefService/RefExists", req, n, NULL, &resp_len),
              GITRPC_CODE_INVALID_ARGUMENT, "raw NULL response");
  uint8_t garbage[] = {0xff, 0xff, 0xff};
  expect_code(gitrpc_call_unary(c, "/gitaly.RefService/RefExists", garbage, sizeof garbage, &resp, &resp_len),
              GITRPC_CODE_INTERNAL, "raw undecodable request");

  n = put_repo(req, "r.git");
  struct stream_state all = {0};
  expect_ok(gitrpc_call_server_streaming(c, "/gitaly.RefService/FindLocalBranches", req, n, on_message, &all),
            "raw streaming FindLocalBranches");
  CHECK(all.messages >= 2, "%s: 251 branches arrive in %d messages", kind, all.messages);
  struct stream_state first = {.stop_after = 1, .client = c};
  expect_ok(gitrpc_call_server_streaming(c, "/gitaly.RefService/FindLocalBranches", req, n, on_message, &first),
            "raw streaming stopped by the callback");
  CHECK(first.messages == 1 && first.nested_ok == 1, "%s: callback stopped after 1 and called back in", kind);
  expect_code(gitrpc_call_server_streaming(c, "/gitaly.RefService/FindLocalBranches", req, n, NULL, NULL),
              GITRPC_CODE_INVALID_ARGUMENT, "raw streaming NULL callback");
  n = put_repo(req, "missing.git");
  struct stream_state none = {0};
  expect_code(gitrpc_call_server_streaming(c, "/gitaly.RefService/FindLocalBranches", req, n, on_message, &none),
              GITRPC_CODE_NOT_FOUND, "raw streaming on a missing repository");
}

static void test_timeouts(gitrpc_client *c) {
  CHECK(gitrpc_client_timeout(c) == GITRPC_DEFAULT_TIMEOUT_MS, "default deadline is %llu ms",
        (unsigned long long)gitrpc_client_timeout(c));
  expect_ok(gitrpc_client_set_timeout(c, 5000), "set_timeout(5000)");
  CHECK(gitrpc_client_timeout(c) == 5000, "deadline now 5000 ms");
  expect_ok(gitrpc_client_set_timeout(c, 0), "set_timeout(0)");
  CHECK(gitrpc_client_timeout(c) == 0, "no deadline");
  expect_ok(gitrpc_client_set_timeout(c, GITRPC_DEFAULT_TIMEOUT_MS), "restore the default deadline");
}

/* A call that outlives the client's deadline fails with DEADLINE_EXCEEDED. */
static void test_deadline(gitrpc_client *c, const char *kind) {
  char oid[128];
  sh_out(oid, sizeof oid, "git -C %s/r.git rev-parse main~1:big.bin", storage);
  uint8_t *data = NULL;
  size_t len = 0;
  expect_ok(gitrpc_client_set_timeout(c, 1), "set_timeout(1 ms)");
  gitrpc_error *e = gitrpc_get_blob(c, "default", "r.git", oid, -1, &data, &len);
  CHECK(gitrpc_error_code(e) == GITRPC_CODE_DEADLINE_EXCEEDED && data == NULL,
        "%s: 30 MB blob with a 1 ms deadline -> code %d: %s", kind, gitrpc_error_code(e), gitrpc_error_message(e));
  gitrpc_error_free(e);
  expect_ok(gitrpc_client_set_timeout(c, 0), "set_timeout(0)");
  expect_ok(gitrpc_get_blob(c, "default", "r.git", oid, -1, &data, &len), "big blob without a deadline");
  CHECK(len == 30000000, "%s: whole blob read (%zu bytes)", kind, len);
  gitrpc_buffer_free(data, len);
  expect_ok(gitrpc_client_set_timeout(c, GITRPC_DEFAULT_TIMEOUT_MS), "restore the default deadline");
}

struct worker {
  gitrpc_client *client;
  int ok;
};

#define THREADS 8
#define CALLS 25

static void *work(void *arg) {
  struct worker *w = arg;
  for (int i = 0; i < CALLS; i++) {
    bool b = false;
    char ref[64];
    snprintf(ref, sizeof ref, "refs/heads/b%d", 1 + i % 250);
    gitrpc_error *e = gitrpc_ref_exists(w->client, "default", "r.git", ref, &b);
    if (!e && b) w->ok++;
    gitrpc_error_free(e);
  }
  return NULL;
}

static void test_threads(gitrpc_client *c, const char *kind) {
  pthread_t t[THREADS];
  struct worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (struct worker){.client = c};
    pthread_create(&t[i], NULL, work, &w[i]);
  }
  int ok = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    ok += w[i].ok;
  }
  CHECK(ok == THREADS * CALLS, "%s: %d threads share one client: %d/%d calls ok", kind, THREADS, ok, THREADS * CALLS);
}

static void test_start_stop_cycles(void) {
  char sock[512];
  snprintf(sock, sizeof sock, "%s/cycle.sock", tmp);
  for (int i = 0; i < 5; i++) {
    gitrpc_server *s = NULL;
    expect_ok(gitrpc_server_start(config, &s), "cycle: server_start");
    if (!s) return;
    gitrpc_client *c = NULL;
    expect_ok(gitrpc_client_connect(gitrpc_server_address(s), &c), "cycle: connect");
    bool b = false;
    expect_ok(gitrpc_ref_exists(c, "default", "r.git", "refs/heads/main", &b), "cycle: call");
    gitrpc_client_free(c);
    gitrpc_server_free(s);
    struct stat st;
    CHECK(stat(sock, &st) != 0, "cycle %d: socket removed on free", i);
  }
}

/* Start-up errors name what is wrong and carry its code: a bad key is INVALID_ARGUMENT, an
 * address another server listens on ALREADY_EXISTS (the running server's socket, then a
 * TCP port). */
static void test_start_errors(void) {
  gitrpc_server *s = (gitrpc_server *)0x1;
  char cfg[2048];
  snprintf(cfg, sizeof cfg, "bogus_key = 1\n[[storage]]\nname = \"default\"\npath = \"%s\"\n", storage);
  expect_message(gitrpc_server_start(cfg, &s), GITRPC_CODE_INVALID_ARGUMENT, "bogus_key", "server_start(unknown key)");
  expect_message(gitrpc_server_start(config, &s), GITRPC_CODE_ALREADY_EXISTS, "another server is listening",
                 "server_start(socket in use)");
  CHECK(s == (gitrpc_server *)0x1, "server out-parameter untouched on start errors");

  gitrpc_server *tcp = NULL;
  snprintf(cfg, sizeof cfg, "listen_addr = \"127.0.0.1:0\"\n[[storage]]\nname = \"default\"\npath = \"%s\"\n", storage);
  expect_ok(gitrpc_server_start(cfg, &tcp), "server_start(tcp)");
  if (!tcp) return;
  const char *addr = gitrpc_server_address(tcp);
  CHECK(addr && strncmp(addr, "tcp://", 6) == 0, "tcp server address %s", addr ? addr : "(null)");
  snprintf(cfg, sizeof cfg, "listen_addr = \"%s\"\n[[storage]]\nname = \"default\"\npath = \"%s\"\n",
           addr + 6, storage);
  expect_message(gitrpc_server_start(cfg, &s), GITRPC_CODE_ALREADY_EXISTS, "listen_addr", "server_start(port in use)");
  gitrpc_server_free(tcp);
}

/* Storage routing: "s1" on a server over its socket, "s2" on an embedded server without a
 * listener; each call goes to its storage's server, an unknown storage fails at once. */
static void test_storages(void) {
  char cfg[2048], dir1[600], dir2[600];
  snprintf(dir1, sizeof dir1, "%s/s1", tmp);
  snprintf(dir2, sizeof dir2, "%s/s2", tmp);
  snprintf(cfg, sizeof cfg, "socket_path = \"%s/s1.sock\"\n[[storage]]\nname = \"s1\"\npath = \"%s\"\n", tmp, dir1);
  gitrpc_server *a = NULL, *b = NULL;
  expect_ok(gitrpc_server_start(cfg, &a), "server_start(s1)");
  snprintf(cfg, sizeof cfg, "[[storage]]\nname = \"s2\"\npath = \"%s\"\n", dir2);
  expect_ok(gitrpc_server_start(cfg, &b), "server_start(s2, in-process only)");
  if (!a || !b) return;

  gitrpc_client_options *o = gitrpc_client_options_new();
  expect_code(gitrpc_client_options_add_storage(NULL, "s1", "unix:/x"), GITRPC_CODE_INVALID_ARGUMENT,
              "add_storage(NULL options)");
  expect_code(gitrpc_client_options_add_storage(o, NULL, "unix:/x"), GITRPC_CODE_INVALID_ARGUMENT,
              "add_storage(NULL storage)");
  expect_code(gitrpc_client_options_add_storage(o, "", "unix:/x"), GITRPC_CODE_INVALID_ARGUMENT,
              "add_storage(empty storage)");
  expect_message(gitrpc_client_options_add_storage(o, "s1", "ftp://x"), GITRPC_CODE_INVALID_ARGUMENT,
                 "invalid address", "add_storage(bad address)");
  expect_code(gitrpc_client_options_add_storage_server(o, "s2", NULL), GITRPC_CODE_INVALID_ARGUMENT,
              "add_storage_server(NULL server)");
  expect_ok(gitrpc_client_options_add_storage(o, "s1", gitrpc_server_address(a)), "add_storage(s1)");
  expect_ok(gitrpc_client_options_add_storage_with_token(o, "s3", "unix:/nonexistent/s3.sock", "t3"),
            "add_storage_with_token(s3, a server that isn't there)");
  expect_ok(gitrpc_client_options_add_storage_server(o, "s2", b), "add_storage_server(s2)");
  gitrpc_client *c = NULL;
  expect_ok(gitrpc_client_connect_with_options(NULL, o, &c), "connect_with_options(NULL address, storages)");
  gitrpc_client_options_free(o);
  if (!c) return;

  expect_ok(gitrpc_create_repository(c, "s1", "one.git", "main"), "create on s1");
  expect_ok(gitrpc_create_repository(c, "s2", "two.git", "main"), "create on s2");
  char path[1024];
  struct stat st;
  snprintf(path, sizeof path, "%s/one.git/HEAD", dir1);
  CHECK(stat(path, &st) == 0, "s1's repository is in s1's storage");
  snprintf(path, sizeof path, "%s/two.git/HEAD", dir2);
  CHECK(stat(path, &st) == 0, "s2's repository is in s2's storage");
  bool yes = false;
  expect_ok(gitrpc_repository_exists(c, "s2", "two.git", &yes), "exists on s2");
  CHECK(yes, "s2/two.git exists");
  expect_ok(gitrpc_repository_exists(c, "s1", "two.git", &yes), "exists on s1");
  CHECK(!yes, "s1/two.git does not");
  expect_message(gitrpc_repository_exists(c, "s9", "x.git", &yes), GITRPC_CODE_INVALID_ARGUMENT,
                 "storage not found: \"s9\"", "unknown storage");
  expect_code(gitrpc_repository_exists(c, "s3", "x.git", &yes), GITRPC_CODE_UNAVAILABLE,
              "a storage whose server is down");
  expect_ok(gitrpc_repository_exists(c, "s1", "one.git", &yes), "the others still answer");
  gitrpc_client_free(c);
  gitrpc_server_free(a);
  gitrpc_server_free(b);
}

int main(void) {
  strcpy(tmp, "/tmp/gitrpc-ctest-XXXXXX");
  if (!mkdtemp(tmp)) return 100;
  snprintf(storage, sizeof storage, "%s/storage", tmp);
  mkdir(storage, 0700);
  snprintf(config, sizeof config,
           "socket_path = \"%s/cycle.sock\"\n"
           "[[storage]]\nname = \"default\"\npath = \"%s\"\n",
           tmp, storage);
  make_fixture("r.git");
  make_diff_fixtures();

  test_errors_and_null_args();
  test_commit_diff_options();

  gitrpc_server *server = NULL;
  expect_ok(gitrpc_server_start(config, &server), "server_start");
  if (!server) return 1;
  const char *addr = gitrpc_server_address(server);
  CHECK(addr && strncmp(addr, "unix:", 5) == 0, "server address %s", addr ? addr : "(null)");

  gitrpc_client *remote = NULL;
  expect_ok(gitrpc_client_connect(addr, &remote), "connect over the socket");
  gitrpc_client *local = NULL;
  expect_ok(gitrpc_server_client(server, &local), "in-process client");
  expect_code(gitrpc_server_client(server, NULL), GITRPC_CODE_INVALID_ARGUMENT, "server_client(NULL out)");
  test_start_errors();

  test_typed_calls(remote, "socket");
  test_typed_calls(local, "in-process");
  test_raw_calls(remote, "socket");
  test_raw_calls(local, "in-process");
  test_timeouts(remote);
  test_deadline(remote, "socket");
  test_deadline(local, "in-process");
  test_threads(remote, "socket");
  test_threads(local, "in-process");
  test_operations(remote, "socket");
  test_operations(local, "in-process");
  test_operations_hook_refusal();
  test_commit_diff(remote, "socket");
  test_commit_diff(local, "in-process");
  test_raw_branches_containing(remote, "socket");
  test_raw_branches_containing(local, "in-process");

  gitrpc_client_free(remote);
  gitrpc_server_free(server);
  bool b;
  expect_code(gitrpc_ref_exists(local, "default", "r.git", "refs/heads/main", &b), GITRPC_CODE_UNAVAILABLE,
              "in-process client after its server stopped");
  gitrpc_client_free(local);

  test_start_stop_cycles();
  test_options_auth_tls();
  test_storages();

  sh("rm -rf %s", tmp);
  printf("1..%d\n# %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
