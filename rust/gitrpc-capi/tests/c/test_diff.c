/*
 * C tests of gitrpc_commit_diff (CommitDiff to a callback, its options and accessors) and of
 * a step-11 read through the raw call (RefService.ListBranchNamesContainingCommit).
 * Included by test_gitrpc.c (one translation unit: it shares CHECK and the shell helpers);
 * every answer is checked against git's own output.
 */
#include <dirent.h>

/* diff.git: main~1 -> main modifies mod.txt, adds new.txt, renames old-name.txt to
 * new-name.txt with one line changed, and changes the binary bin.dat; branch "base" at
 * main~1, "side" from base with a commit of its own. bigdiff.git: main~1 -> main changes
 * every line of 300 files of 400 lines (a ~5 MB diff). */
static void make_diff_fixtures(void) {
  sh("set -e; w=%s/work-diff; git init -q -b main $w; cd $w;"
     " export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=A GIT_COMMITTER_EMAIL=a@example.com;"
     " seq 1 30 > mod.txt; seq 100 140 > old-name.txt; printf 'x\\0y\\1z' > bin.dat; echo keep > keep.txt;"
     " git add .; git commit -q -m base; git branch base;"
     " sed -i 's/^15$/fifteen/' mod.txt; echo new > new.txt; git mv old-name.txt new-name.txt;"
     " sed -i 's/^120$/one-twenty/' new-name.txt; printf 'x\\0y\\2z\\0' > bin.dat;"
     " git add -A; git commit -q -m change;"
     " git checkout -q -b side base; echo side > side.txt; git add side.txt; git commit -q -m side;"
     " git clone -q --bare $w %s/diff.git; rm -rf $w",
     tmp, storage);
  sh("set -e; w=%s/work-bigdiff; git init -q -b main $w; cd $w;"
     " export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=A GIT_COMMITTER_EMAIL=a@example.com;"
     " awk 'BEGIN { for (i = 1; i <= 300; i++) { f = \"f\" i \".txt\"; for (j = 1; j <= 400; j++) print \"file \" i \" line \" j > f; close(f) } }';"
     " git add .; git commit -q -m one;"
     " awk 'BEGIN { for (i = 1; i <= 300; i++) { f = \"f\" i \".txt\"; for (j = 1; j <= 400; j++) print \"FILE \" i \" LINE \" j > f; close(f) } }';"
     " git commit -q -am two; git clone -q --bare $w %s/bigdiff.git; rm -rf $w",
     tmp, storage);
}

/* All of a command's stdout (malloc'd, NUL-terminated; *len without the NUL). */
static char *sh_all(size_t *len, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  if (!p) exit(100);
  size_t cap = 1 << 16, n = 0, k;
  char *buf = malloc(cap);
  while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
    n += k;
    if (cap - n < 4096) buf = realloc(buf, cap *= 2);
  }
  if (pclose(p) != 0) {
    fprintf(stderr, "command failed: %s\n", cmd);
    exit(100);
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/* One file as git or gitrpc saw it. */
struct file_diff {
  char from[128], to[128], from_id[72], to_id[72];
  int old_mode, new_mode;
  char *patch;
  size_t patch_len;
  bool binary, too_large, collapsed, overflow;
};

#define MAX_FILES 16

struct diff_state {
  struct file_diff files[MAX_FILES];
  int count;           /* callbacks seen */
  int stop_after;      /* return nonzero after this many (0: never) */
  gitrpc_client *client; /* if set: call back into gitrpc from the first callback */
  int nested_ok;
  bool bad_access;     /* an accessor disagreed with another */
};

static void copy_path(char *dst, const uint8_t *p, size_t n) {
  if (n > 127) n = 127;
  memcpy(dst, p, n);
  dst[n] = 0;
}

static int32_t on_diff(void *user, const gitrpc_diff *d) {
  struct diff_state *st = user;
  int i = st->count++;
  if (st->client && i == 0) {
    gitrpc_commit *c = NULL;
    gitrpc_error *e = gitrpc_find_commit(st->client, "default", "diff.git", "main", &c);
    if (!e && c) st->nested_ok++;
    gitrpc_commit_free(c);
    gitrpc_error_free(e);
  }
  if (i < MAX_FILES) {
    struct file_diff *f = &st->files[i];
    size_t n = 0;
    const uint8_t *p = gitrpc_diff_from_path(d, &n);
    if (!p || p[n] != 0 || strlen((const char *)p) != n) st->bad_access = true;
    copy_path(f->from, p, n);
    p = gitrpc_diff_to_path(d, &n);
    if (!p || p[n] != 0 || gitrpc_diff_to_path(d, NULL) != p) st->bad_access = true;
    copy_path(f->to, p, n);
    snprintf(f->from_id, sizeof f->from_id, "%s", gitrpc_diff_from_id(d));
    snprintf(f->to_id, sizeof f->to_id, "%s", gitrpc_diff_to_id(d));
    f->old_mode = gitrpc_diff_old_mode(d);
    f->new_mode = gitrpc_diff_new_mode(d);
    p = gitrpc_diff_patch(d, &f->patch_len);
    f->patch = malloc(f->patch_len + 1);
    if (f->patch_len) memcpy(f->patch, p, f->patch_len);
    f->patch[f->patch_len] = 0;
    f->binary = gitrpc_diff_binary(d);
    f->too_large = gitrpc_diff_too_large(d);
    f->collapsed = gitrpc_diff_collapsed(d);
    f->overflow = gitrpc_diff_overflow_marker(d);
  }
  return st->stop_after && st->count >= st->stop_after;
}

static void free_state(struct diff_state *st) {
  for (int i = 0; i < st->count && i < MAX_FILES; i++) free(st->files[i].patch);
  memset(st, 0, sizeof *st);
}

/* What git says: `git diff --raw -z` for paths, modes and ids, `git diff` split per file
 * (each patch from its first "@@" or "Binary files" line) for the patches. Same rename
 * threshold as the server. Returns the number of files. */
static int git_diff(const char *repo, const char *left, const char *right, struct file_diff *want) {
  size_t len;
  char *raw = sh_all(&len, "git -C %s/%s diff --raw -z --find-renames=30%% --full-index --abbrev=40 %s %s", storage,
                     repo, left, right);
  int n = 0;
  for (char *p = raw; p < raw + len && *p == ':' && n < MAX_FILES; n++) {
    struct file_diff *f = &want[n];
    memset(f, 0, sizeof *f);
    char status[16];
    sscanf(p, ":%o %o %71s %71s %15s", (unsigned *)&f->old_mode, (unsigned *)&f->new_mode, f->from_id, f->to_id,
           status);
    p += strlen(p) + 1;
    snprintf(f->from, sizeof f->from, "%s", p);
    p += strlen(p) + 1;
    if (status[0] == 'R' || status[0] == 'C') {
      snprintf(f->to, sizeof f->to, "%s", p);
      p += strlen(p) + 1;
    } else {
      copy_path(f->to, (const uint8_t *)f->from, strlen(f->from));
    }
  }
  free(raw);

  char *text = sh_all(&len, "git -C %s/%s diff --find-renames=30%% --full-index %s %s", storage, repo, left, right);
  int i = -1;
  for (char *line = text; line < text + len;) {
    char *eol = strchr(line, '\n');
    char *next = eol ? eol + 1 : text + len;
    if (strncmp(line, "diff --git ", 11) == 0) {
      i++;
    } else if (i >= 0 && i < n) {
      struct file_diff *f = &want[i];
      if (!f->patch && (strncmp(line, "@@ ", 3) == 0 || strncmp(line, "Binary files ", 13) == 0)) {
        f->patch = line;
        f->binary = line[0] == 'B';
      }
      if (f->patch) f->patch_len = (size_t)(next - f->patch);
    }
    line = next;
  }
  /* Patches point into `text`: copy them out. */
  for (int k = 0; k < n; k++) {
    char *copy = malloc(want[k].patch_len + 1);
    if (want[k].patch_len) memcpy(copy, want[k].patch, want[k].patch_len);
    copy[want[k].patch_len] = 0;
    want[k].patch = copy;
  }
  free(text);
  return n;
}

/* How many children of this process are running `git ... diff ...` (from /proc). */
static int git_diff_children(void) {
  DIR *d = opendir("/proc");
  if (!d) return -1;
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[4096];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    char state;
    int ppid;
    if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || ppid != getpid()) continue;
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    f = fopen(path, "r");
    if (!f) continue;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t at = 0; at < n; at += strlen(buf + at) + 1)
      if (strcmp(buf + at, "diff") == 0) found++;
  }
  closedir(d);
  return found;
}

static void test_commit_diff(gitrpc_client *c, const char *kind) {
  char what[256];
#define DWHAT(...) (snprintf(what, sizeof what, __VA_ARGS__), what)
  struct file_diff want[MAX_FILES];
  int n = git_diff("diff.git", "main~1", "main", want);
  CHECK(n == 4, "%s: git diff lists 4 files (%d)", kind, n);

  struct diff_state st = {0};
  expect_ok(gitrpc_commit_diff(c, "default", "diff.git", "main~1", "main", NULL, on_diff, &st),
            DWHAT("%s commit_diff(main~1, main)", kind));
  CHECK(st.count == n && !st.bad_access, "%s: one callback per file (%d), accessors agree", kind, st.count);
  bool seen_rename = false, seen_add = false, seen_binary = false, seen_mod = false;
  for (int i = 0; i < n && i < st.count; i++) {
    struct file_diff *g = &st.files[i], *w = &want[i];
    CHECK(strcmp(g->from, w->from) == 0 && strcmp(g->to, w->to) == 0, "%s: file %d paths %s -> %s (git: %s -> %s)",
          kind, i, g->from, g->to, w->from, w->to);
    CHECK(g->old_mode == w->old_mode && g->new_mode == w->new_mode, "%s: %s modes %o %o (git: %o %o)", kind, w->to,
          (unsigned)g->old_mode, (unsigned)g->new_mode, (unsigned)w->old_mode, (unsigned)w->new_mode);
    CHECK(strcmp(g->from_id, w->from_id) == 0 && strcmp(g->to_id, w->to_id) == 0, "%s: %s ids %s..%s", kind, w->to,
          g->from_id, g->to_id);
    CHECK(g->patch_len == w->patch_len && memcmp(g->patch, w->patch, w->patch_len) == 0,
          "%s: %s patch equals git's (%zu bytes, git %zu)", kind, w->to, g->patch_len, w->patch_len);
    CHECK(g->binary == w->binary && !g->too_large && !g->collapsed && !g->overflow, "%s: %s flags (binary %d)", kind,
          w->to, g->binary);
    seen_rename |= strcmp(g->from, "old-name.txt") == 0 && strcmp(g->to, "new-name.txt") == 0 && g->patch_len > 0;
    seen_add |= strcmp(g->to, "new.txt") == 0 && g->old_mode == 0 && g->new_mode == 0100644;
    seen_binary |= strcmp(g->to, "bin.dat") == 0 && g->binary;
    seen_mod |= strcmp(g->to, "mod.txt") == 0 && strstr(g->patch, "-15\n+fifteen\n") != NULL;
  }
  CHECK(seen_rename && seen_add && seen_binary && seen_mod, "%s: a rename with edits, an addition, a binary file, a "
        "modification", kind);
  free_state(&st);

  /* max_files: two files, then the overflow marker (an empty entry). */
  gitrpc_commit_diff_options *o = gitrpc_commit_diff_options_new();
  expect_ok(gitrpc_commit_diff_options_set_limits(o, 2, 1000, 100000, 100000), "options set_limits(max_files 2)");
  expect_ok(gitrpc_commit_diff(c, "default", "diff.git", "main~1", "main", o, on_diff, &st),
            DWHAT("%s commit_diff with max_files 2", kind));
  CHECK(st.count == 3 && !st.files[0].overflow && !st.files[1].overflow && st.files[2].overflow &&
            st.files[2].to[0] == 0 && st.files[2].patch_len == 0,
        "%s: max_files 2 gives 2 files and the overflow marker (%d callbacks)", kind, st.count);
  CHECK(st.count >= 2 && strcmp(st.files[0].to, want[0].to) == 0 && strcmp(st.files[1].to, want[1].to) == 0 &&
            st.files[1].patch_len == want[1].patch_len,
        "%s: the files before the marker are git's first two, whole", kind);
  free_state(&st);

  /* max_patch_bytes: every text patch is too large (left out); a path filter. */
  gitrpc_commit_diff_options_free(o);
  o = gitrpc_commit_diff_options_new();
  expect_ok(gitrpc_commit_diff_options_set_limits(o, 100, 1000, 100000, 10), "options set_limits(max_patch_bytes 10)");
  expect_ok(gitrpc_commit_diff_options_add_path(o, (const uint8_t *)"mod.txt", 7), "options add_path(mod.txt)");
  expect_ok(gitrpc_commit_diff(c, "default", "diff.git", "main~1", "main", o, on_diff, &st),
            DWHAT("%s commit_diff(mod.txt, max_patch_bytes 10)", kind));
  CHECK(st.count == 1 && strcmp(st.files[0].to, "mod.txt") == 0 && st.files[0].too_large &&
            st.files[0].patch_len == 0,
        "%s: only mod.txt, too large, without its patch (%d callbacks)", kind, st.count);
  free_state(&st);
  gitrpc_commit_diff_options_free(o);

  /* Errors. */
  expect_message(gitrpc_commit_diff(c, "default", "diff.git", "no-such-revision", "main", NULL, on_diff, &st),
                 GITRPC_CODE_FAILED_PRECONDITION, "exit status 128", DWHAT("%s commit_diff(bad revision)", kind));
  expect_message(gitrpc_commit_diff(c, "default", "diff.git", "", "main", NULL, on_diff, &st),
                 GITRPC_CODE_INVALID_ARGUMENT, "empty LeftCommitId", DWHAT("%s commit_diff(empty left)", kind));
  expect_code(gitrpc_commit_diff(c, "default", "diff.git", "--output=/tmp/x", "main", NULL, on_diff, &st),
              GITRPC_CODE_INVALID_ARGUMENT, DWHAT("%s commit_diff(option-like revision)", kind));
  expect_code(gitrpc_commit_diff(c, "default", "missing.git", "main~1", "main", NULL, on_diff, &st),
              GITRPC_CODE_NOT_FOUND, DWHAT("%s commit_diff(missing repository)", kind));
  expect_code(gitrpc_commit_diff(c, "default", "diff.git", "main~1", "main", NULL, NULL, NULL),
              GITRPC_CODE_INVALID_ARGUMENT, DWHAT("%s commit_diff(NULL callback)", kind));
  expect_code(gitrpc_commit_diff(c, "default", "diff.git", NULL, "main", NULL, on_diff, &st),
              GITRPC_CODE_INVALID_ARGUMENT, DWHAT("%s commit_diff(NULL left)", kind));
  CHECK(st.count == 0, "%s: no callback for a failed call", kind);

  /* Early stop: the callback stops after the first of 300 files (calling back into gitrpc
   * first); the call returns at once and git is stopped. */
  st = (struct diff_state){.stop_after = 1, .client = c};
  expect_ok(gitrpc_commit_diff(c, "default", "bigdiff.git", "main~1", "main", NULL, on_diff, &st),
            DWHAT("%s commit_diff stopped by the callback", kind));
  CHECK(st.count == 1 && st.nested_ok == 1 && strcmp(st.files[0].to, "f1.txt") == 0,
        "%s: stopped after 1 file (%d), the callback called back in", kind, st.count);
  free_state(&st);
  int left = git_diff_children();
  for (int i = 0; i < 100 && left > 0; i++) {
    usleep(100 * 1000);
    left = git_diff_children();
  }
  CHECK(left == 0, "%s: no git diff left running after the stop (%d)", kind, left);
  bool b = false;
  expect_ok(gitrpc_ref_exists(c, "default", "bigdiff.git", "refs/heads/main", &b), "a call after the stop");
  for (int i = 0; i < n; i++) free(want[i].patch);
#undef DWHAT
}

static void test_commit_diff_options(void) {
  gitrpc_commit_diff_options_free(NULL);
  expect_code(gitrpc_commit_diff_options_set_limits(NULL, 1, 1, 1, 1), GITRPC_CODE_INVALID_ARGUMENT,
              "set_limits(NULL options)");
  expect_code(gitrpc_commit_diff_options_set_safe_limits(NULL, 1, 1, 1), GITRPC_CODE_INVALID_ARGUMENT,
              "set_safe_limits(NULL options)");
  expect_code(gitrpc_commit_diff_options_set_collect_all_paths(NULL, true), GITRPC_CODE_INVALID_ARGUMENT,
              "set_collect_all_paths(NULL options)");
  expect_code(gitrpc_commit_diff_options_set_word_diff(NULL, true), GITRPC_CODE_INVALID_ARGUMENT,
              "set_word_diff(NULL options)");
  gitrpc_commit_diff_options *o = gitrpc_commit_diff_options_new();
  CHECK(o != NULL, "commit_diff_options_new");
  expect_ok(gitrpc_commit_diff_options_set_whitespace(o, GITRPC_WHITESPACE_CHANGES_IGNORE_ALL), "set_whitespace");
  expect_message(gitrpc_commit_diff_options_set_whitespace(o, 7), GITRPC_CODE_INVALID_ARGUMENT,
                 "unknown whitespace mode 7", "set_whitespace(7)");
  expect_code(gitrpc_commit_diff_options_add_path(o, NULL, 3), GITRPC_CODE_INVALID_ARGUMENT, "add_path(NULL)");
  expect_code(gitrpc_commit_diff_options_set_max_patch_bytes_for_extension(o, NULL, 1), GITRPC_CODE_INVALID_ARGUMENT,
              "set_max_patch_bytes_for_extension(NULL)");
  expect_ok(gitrpc_commit_diff_options_set_max_patch_bytes_for_extension(o, ".lock", 10),
            "set_max_patch_bytes_for_extension");
  expect_ok(gitrpc_commit_diff_options_set_safe_limits(o, 1, 10, 100), "set_safe_limits");
  expect_ok(gitrpc_commit_diff_options_set_collect_all_paths(o, true), "set_collect_all_paths");
  expect_ok(gitrpc_commit_diff_options_set_word_diff(o, false), "set_word_diff");
  gitrpc_commit_diff_options_free(o);
  size_t len = 7;
  CHECK(gitrpc_diff_from_path(NULL, &len) == NULL && len == 0 && gitrpc_diff_to_path(NULL, NULL) == NULL &&
            gitrpc_diff_patch(NULL, &len) == NULL && gitrpc_diff_from_id(NULL) == NULL &&
            gitrpc_diff_to_id(NULL) == NULL && gitrpc_diff_old_mode(NULL) == 0 && gitrpc_diff_new_mode(NULL) == 0 &&
            gitrpc_diff_lines_added(NULL) == 0 && gitrpc_diff_lines_removed(NULL) == 0 && !gitrpc_diff_binary(NULL) &&
            !gitrpc_diff_too_large(NULL) && !gitrpc_diff_collapsed(NULL) && !gitrpc_diff_overflow_marker(NULL),
        "diff accessors on NULL give NULL, 0 or false");
}

/* ---- a step-11 read through the raw call ---------------------------------------------- */

static uint64_t get_varint(const uint8_t *p, size_t len, size_t *at) {
  uint64_t v = 0;
  for (int shift = 0; *at < len && shift < 64; shift += 7) {
    uint8_t b = p[(*at)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

struct names {
  char text[8192]; /* names, each followed by '\n' */
  int messages;
  bool bad;
};

/* ListBranchNamesContainingCommitResponse{repeated bytes branch_names = 2}. */
static int32_t on_names(void *user, const uint8_t *msg, size_t len) {
  struct names *nm = user;
  nm->messages++;
  for (size_t at = 0; at < len;) {
    uint64_t key = get_varint(msg, len, &at);
    if (key != ((2 << 3) | 2)) {
      nm->bad = true;
      return 1;
    }
    uint64_t n = get_varint(msg, len, &at);
    size_t used = strlen(nm->text);
    if (at + n > len || used + n + 2 > sizeof nm->text) {
      nm->bad = true;
      return 1;
    }
    memcpy(nm->text + used, msg + at, n);
    nm->text[used + n] = '\n';
    nm->text[used + n + 1] = 0;
    at += n;
  }
  return 0;
}

static void test_raw_branches_containing(gitrpc_client *c, const char *kind) {
  const char *method = "/gitaly.RefService/ListBranchNamesContainingCommit";
  const char *revs[] = {"base", "side", "main"};
  for (int r = 0; r < 3; r++) {
    char oid[128];
    sh_out(oid, sizeof oid, "git -C %s/diff.git rev-parse %s", storage, revs[r]);
    size_t wlen;
    char *want = sh_all(&wlen, "git -C %s/diff.git for-each-ref --contains=%s --format='%%(refname:lstrip=2)' refs/heads",
                        storage, oid);
    uint8_t req[512];
    size_t n = put_repo(req, "diff.git");
    n = put_field(req, n, 2, oid, strlen(oid));
    struct names got = {0};
    expect_ok(gitrpc_call_server_streaming(c, method, req, n, on_names, &got), "raw ListBranchNamesContainingCommit");
    CHECK(!got.bad && strcmp(got.text, want) == 0, "%s: branches containing %s: \"%s\" (git: \"%s\")", kind, revs[r],
          got.text, want);
    if (r == 0) {
      /* limit = 1 (field 3, varint) */
      req[n++] = (3 << 3) | 0;
      req[n++] = 1;
      struct names one = {0};
      expect_ok(gitrpc_call_server_streaming(c, method, req, n, on_names, &one), "raw with limit 1");
      CHECK(!one.bad && one.text[0] && strchr(one.text, '\n') == one.text + strlen(one.text) - 1 &&
                strncmp(one.text, want, strlen(one.text)) == 0,
            "%s: limit 1 gives git's first name: \"%s\"", kind, one.text);
    }
    free(want);
  }
  uint8_t req[512];
  size_t n = put_repo(req, "diff.git");
  n = put_field(req, n, 2, "abc", 3);
  struct names none = {0};
  expect_message(gitrpc_call_server_streaming(c, method, req, n, on_names, &none), GITRPC_CODE_INVALID_ARGUMENT,
                 "invalid object ID", "raw ListBranchNamesContainingCommit(short id)");
}
