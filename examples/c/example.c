/*
 * gitrpc from C: start an embedded server on a temp storage, connect to it over its unix
 * socket, and make typed calls (one finding nothing), a diff, a raw call, and a call that fails.
 *
 *   script/build-capi
 *   cc examples/c/example.c $(pkg-config --cflags --libs target/release/gitrpc.pc) \
 *      -Wl,-rpath,$PWD/target/release -o target/example-c && target/example-c
 *
 * To talk to a running gitrpcd instead: target/example-c unix:gitrpc-data/gitrpc.sock REPO
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gitrpc.h>

/* One file of a diff: its path (bytes, NUL-terminated too) and its patch; 0 to go on. */
static int32_t print_diff(void *user_data, const gitrpc_diff *d) {
  size_t patch_len = 0;
  const uint8_t *patch = gitrpc_diff_patch(d, &patch_len);
  (void)user_data;
  printf("changed %s (%06o -> %06o):\n%.*s", (const char *)gitrpc_diff_to_path(d, NULL), (unsigned)gitrpc_diff_old_mode(d),
         (unsigned)gitrpc_diff_new_mode(d), (int)patch_len, (const char *)patch);
  return 0;
}

/* Print and free an error; returns 1 if there was one. */
static int failed(gitrpc_error *err, const char *what) {
  if (!err) return 0;
  fprintf(stderr, "%s: code %d: %s\n", what, gitrpc_error_code(err), gitrpc_error_message(err));
  gitrpc_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/gitrpc-example-XXXXXX";
  gitrpc_server *server = NULL;
  const char *address = argc > 1 ? argv[1] : NULL;
  const char *repo = argc > 2 ? argv[2] : "demo.git";

  if (!address) {
    /* A storage with one repository, made with plain git. */
    if (!mkdtemp(dir)) return 1;
    char cmd[1024], config[1024];
    snprintf(cmd, sizeof cmd,
             "git init -q -b main %1$s/w && cd %1$s/w && echo hi > README && git add README &&"
             " git -c user.name=Demo -c user.email=demo@example.com commit -q -m 'Hello from C' &&"
             " echo hello > README && git -c user.name=Demo -c user.email=demo@example.com commit -q -am 'Say hello' &&"
             " git clone -q --bare %1$s/w %1$s/storage/demo.git && rm -rf %1$s/w", dir);
    if (system(cmd) != 0) return 1;
    snprintf(config, sizeof config,
             "socket_path = \"%1$s/gitrpc.sock\"\n[[storage]]\nname = \"default\"\npath = \"%1$s/storage\"\n",
             dir);
    if (failed(gitrpc_server_start(config, &server), "start server")) return 1;
    address = gitrpc_server_address(server);
    printf("embedded server at %s\n", address);
  }

  gitrpc_client *client = NULL;
  if (failed(gitrpc_client_connect(address, &client), "connect")) return 1;
  gitrpc_client_set_timeout(client, 10000); /* 10 s deadline per call; NULL error on success */

  bool exists = false;
  if (!failed(gitrpc_ref_exists(client, "default", repo, "refs/heads/main", &exists), "ref_exists"))
    printf("refs/heads/main exists: %s\n", exists ? "yes" : "no");

  gitrpc_commit *commit = NULL;
  if (!failed(gitrpc_find_commit(client, "default", repo, "main", &commit), "find_commit")) {
    if (commit) { /* NULL, with no error, if main resolves to no commit */
      const gitrpc_signature *author = gitrpc_commit_author(commit);
      printf("main is %s \"%s\" by %s <%s>, %zu parent(s)\n", gitrpc_commit_id(commit),
             gitrpc_commit_subject(commit), gitrpc_signature_name(author), gitrpc_signature_email(author),
             gitrpc_commit_parent_count(commit));
      gitrpc_commit_free(commit); /* frees the strings and signatures read above too */
    } else {
      printf("main is not a commit\n");
    }
  }

  /* A diff, one callback per file (NULL options: no limits). */
  failed(gitrpc_commit_diff(client, "default", repo, "main~1", "main", NULL, print_diff, NULL), "commit_diff");

  /* Missing is not an error: an unknown blob is NULL data, with no error. */
  uint8_t *data = NULL;
  size_t len = 0;
  if (!failed(gitrpc_get_blob(client, "default", repo, "0000000000000000000000000000000000000000", -1, &data, &len),
              "get_blob")) {
    printf("blob 0000000...: %s\n", data ? "found" : "not there");
    gitrpc_buffer_free(data, len);
  }

  /* Raw call: RepositoryExistsRequest{repository{storage_name="default", relative_path}},
   * encoded by hand here; real programs use their protobuf library. */
  uint8_t inner[256], req[260];
  size_t rl = strlen(repo), n = 0;
  inner[n++] = 0x12; inner[n++] = 7; memcpy(inner + n, "default", 7); n += 7;
  inner[n++] = 0x1a; inner[n++] = (uint8_t)rl; memcpy(inner + n, repo, rl); n += rl;
  req[0] = 0x0a; req[1] = (uint8_t)n; memcpy(req + 2, inner, n);
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  if (!failed(gitrpc_call_unary(client, "/gitaly.RepositoryService/RepositoryExists", req, n + 2,
                                &resp, &resp_len), "raw call")) {
    printf("raw RepositoryExists: %s\n", resp_len == 2 && resp[1] ? "true" : "false");
    gitrpc_buffer_free(resp, resp_len);
  }

  /* Errors carry a gRPC code: escaping the storage is INVALID_ARGUMENT (3). */
  gitrpc_error *err = gitrpc_repository_exists(client, "default", "../../etc", &exists);
  printf("path traversal -> code %d: %s\n", gitrpc_error_code(err), gitrpc_error_message(err));
  gitrpc_error_free(err);

  gitrpc_client_free(client);
  gitrpc_server_free(server); /* NULL when we connected to a running daemon */
  if (server) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
  }
  return 0;
}
