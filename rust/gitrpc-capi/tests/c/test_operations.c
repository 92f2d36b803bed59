/*
 * C tests of the OperationService calls: gitrpc_commit_files, gitrpc_create_branch,
 * gitrpc_delete_branch, gitrpc_merge (both with and without apply), a conflict's paths on
 * the error, a hook's refusal. Included by test_gitrpc.c (one translation unit: it shares
 * CHECK and the shell helpers); checked against git's own view.
 */

static const gitrpc_user op_user = {
    .gl_id = "user-1", .gl_username = "jane", .name = "Jane Doe", .email = "jane@example.com", .timezone = "Asia/Shanghai"};

/* A repository for the operation tests: main with f, and a side branch changing f. */
static void make_ops_fixture(const char *name) {
  sh("set -e; w=%s/work-%s; git init -q -b main $w; cd $w;"
     " export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=A GIT_COMMITTER_EMAIL=a@example.com;"
     " printf 'base\\n' > f; git add f; git commit -q -m base;"
     " git checkout -q -b side; printf 'side\\n' > f; git commit -q -am side;"
     " git checkout -q main; printf 'main\\n' > f; git commit -q -am main;"
     " git clone -q --bare $w %s/%s; rm -rf $w",
     tmp, name, storage, name);
}

static void test_operations(gitrpc_client *c, const char *kind) {
  char what[256], repo[64], out[256], head[128];
  snprintf(repo, sizeof repo, "ops-%s.git", kind);
  make_ops_fixture(repo);
#define OWHAT(...) (snprintf(what, sizeof what, __VA_ARGS__), what)

  /* commit_files: create, update, chmod, then git's view. */
  const char *readme = "hello\r\n";
  gitrpc_file_action actions[] = {
      {.action = GITRPC_ACTION_TYPE_CREATE, .path = "docs/README.md", .content = (const uint8_t *)readme,
       .content_len = strlen(readme)},
      {.action = GITRPC_ACTION_TYPE_CREATE, .path = "run.sh", .content = (const uint8_t *)"#!/bin/sh\n",
       .content_len = 10, .executable = true},
      {.action = GITRPC_ACTION_TYPE_CREATE_DIR, .path = "empty"},
  };
  gitrpc_branch_update *u = NULL;
  sh_out(head, sizeof head, "git -C %s/%s rev-parse main", storage, repo);
  expect_ok(gitrpc_commit_files(c, "default", repo, &op_user, "main", "add files", actions, 3, NULL, head, &u),
            OWHAT("%s commit_files", kind));
  if (u) {
    sh_out(out, sizeof out, "git -C %s/%s rev-parse main", storage, repo);
    CHECK(strcmp(gitrpc_branch_update_commit_id(u), out) == 0, "%s: main is the new commit %s", kind, out);
    CHECK(!gitrpc_branch_update_branch_created(u) && !gitrpc_branch_update_repo_created(u), "%s: branch existed", kind);
    sh_out(out, sizeof out, "git -C %s/%s log -1 --date=format:%%z --format='%%an|%%ae|%%ad|%%P|%%s' main", storage, repo);
    char want[256];
    snprintf(want, sizeof want, "Jane Doe|jane@example.com|+0800|%s|add files", head);
    CHECK(strcmp(out, want) == 0, "%s: commit %s", kind, out);
    sh_out(out, sizeof out, "git -C %s/%s ls-tree -r main | awk '{printf \"%%s:%%s \", $1, $4}'", storage, repo);
    CHECK(strcmp(out, "100644:docs/README.md 100644:empty/.gitkeep 100644:f 100755:run.sh ") == 0, "%s: tree %s",
          kind, out);
    sh_out(out, sizeof out, "git -C %s/%s cat-file blob main:docs/README.md | od -An -c | tr -s ' '", storage, repo);
    CHECK(strstr(out, "\\r \\n") != NULL, "%s: content bytes kept (%s)", kind, out);
    gitrpc_branch_update_free(u);
  }
  /* A stale expected value loses; bad input is INVALID_ARGUMENT. */
  u = NULL;
  gitrpc_file_action late = {.action = GITRPC_ACTION_TYPE_CREATE, .path = "late.txt"};
  expect_message(gitrpc_commit_files(c, "default", repo, &op_user, "main", "late", &late, 1, NULL, head, &u),
                 GITRPC_CODE_FAILED_PRECONDITION, "reference does not point to expected object",
                 OWHAT("%s commit_files(stale expected_old_oid)", kind));
  CHECK(u == NULL, "%s: out untouched on error", kind);
  gitrpc_file_action bad = {.action = GITRPC_ACTION_TYPE_CREATE, .path = "../x"};
  expect_message(gitrpc_commit_files(c, "default", repo, &op_user, "main", "m", &bad, 1, NULL, NULL, &u),
                 GITRPC_CODE_INVALID_ARGUMENT, "directory traversal", OWHAT("%s commit_files(../x)", kind));
  expect_code(gitrpc_commit_files(c, "default", repo, NULL, "main", "m", actions, 1, NULL, NULL, &u),
              GITRPC_CODE_INVALID_ARGUMENT, OWHAT("%s commit_files(NULL user)", kind));
  expect_code(gitrpc_commit_files(c, "default", repo, &op_user, "main", "m", NULL, 1, NULL, NULL, &u),
              GITRPC_CODE_INVALID_ARGUMENT, OWHAT("%s commit_files(NULL actions)", kind));

  /* create_branch / delete_branch. */
  char *id = NULL;
  expect_ok(gitrpc_create_branch(c, "default", repo, &op_user, "topic", "side", &id), OWHAT("%s create_branch", kind));
  sh_out(out, sizeof out, "git -C %s/%s rev-parse side", storage, repo);
  CHECK(id && strcmp(id, out) == 0, "%s: topic at side (%s)", kind, id ? id : "(null)");
  gitrpc_string_free(id);
  expect_message(gitrpc_create_branch(c, "default", repo, &op_user, "topic", "main", NULL),
                 GITRPC_CODE_FAILED_PRECONDITION, "reference already exists", OWHAT("%s create_branch(exists)", kind));
  expect_message(gitrpc_delete_branch(c, "default", repo, &op_user, "topic", head), GITRPC_CODE_FAILED_PRECONDITION,
                 "does not point to expected object", OWHAT("%s delete_branch(stale)", kind));
  expect_ok(gitrpc_delete_branch(c, "default", repo, &op_user, "topic", out), OWHAT("%s delete_branch", kind));
  sh_out(out, sizeof out, "git -C %s/%s for-each-ref refs/heads/topic | wc -l", storage, repo);
  CHECK(strcmp(out, "0") == 0, "%s: topic deleted", kind);

  /* merge: side conflicts with main on f; its paths are on the error. */
  char side[128];
  sh_out(side, sizeof side, "git -C %s/%s rev-parse side", storage, repo);
  gitrpc_error *err = gitrpc_merge(c, "default", repo, &op_user, "main", side, "merge side", NULL, true, &u);
  CHECK(gitrpc_error_code(err) == GITRPC_CODE_FAILED_PRECONDITION && gitrpc_error_conflict_count(err) == 1 &&
            strcmp(gitrpc_error_conflict_path(err, 0), "f") == 0 && gitrpc_error_conflict_path(err, 1) == NULL,
        "%s: merge conflict on f (%s)", kind, gitrpc_error_message(err));
  size_t dlen = 0;
  CHECK(gitrpc_error_details(err, &dlen) != NULL && dlen > 0, "%s: the error carries its detail bytes", kind);
  gitrpc_error_free(err);
  /* A clean merge: without apply nothing moves; with apply main is the merge. */
  expect_ok(gitrpc_commit_files(c, "default", repo, &op_user, "clean", "clean", actions + 2, 1, "side", NULL, &u),
            OWHAT("%s commit_files(new branch from side)", kind));
  gitrpc_branch_update_free(u);
  u = NULL;
  char clean[128], before[128];
  sh_out(clean, sizeof clean, "git -C %s/%s rev-parse clean", storage, repo);
  sh_out(before, sizeof before, "git -C %s/%s rev-parse main", storage, repo);
  expect_ok(gitrpc_merge(c, "default", repo, &op_user, "side", clean, "ff-ish merge", NULL, false, &u),
            OWHAT("%s merge without apply", kind));
  char proposed[128] = "";
  if (u) {
    snprintf(proposed, sizeof proposed, "%s", gitrpc_branch_update_commit_id(u));
    gitrpc_branch_update_free(u);
    u = NULL;
  }
  sh_out(out, sizeof out, "git -C %s/%s cat-file -e %s 2>/dev/null && echo present || echo absent", storage, repo,
         proposed);
  CHECK(strcmp(out, "absent") == 0, "%s: a merge not applied leaves no commit", kind);
  expect_ok(gitrpc_merge(c, "default", repo, &op_user, "side", clean, "ff-ish merge", NULL, true, &u),
            OWHAT("%s merge with apply", kind));
  if (u) {
    sh_out(out, sizeof out, "git -C %s/%s log -1 --format=%%P side", storage, repo);
    char want[300];
    snprintf(want, sizeof want, "%s %s", side, clean);
    CHECK(strcmp(out, want) == 0, "%s: merge parents %s", kind, out);
    gitrpc_branch_update_free(u);
  }
  gitrpc_branch_update_free(NULL);
  CHECK(gitrpc_error_conflict_count(NULL) == 0 && gitrpc_error_details(NULL, &dlen) == NULL && dlen == 0,
        "%s: NULL error has no detail", kind);
#undef OWHAT
}

/* A server whose pre-receive hook refuses: the refusal's message reaches C. */
static void test_operations_hook_refusal(void) {
  char hook[512], cfg[2048];
  snprintf(hook, sizeof hook, "%s/refuse.sh", tmp);
  sh("printf '#!/bin/sh\\necho frozen by policy >&2\\nexit 1\\n' > %s; chmod +x %s", hook, hook);
  snprintf(cfg, sizeof cfg,
           "[hooks]\npre_receive = \"%s\"\n[[storage]]\nname = \"default\"\npath = \"%s\"\n", hook, storage);
  gitrpc_server *s = NULL;
  expect_ok(gitrpc_server_start(cfg, &s), "server_start with a pre-receive hook");
  if (!s) return;
  gitrpc_client *c = NULL;
  expect_ok(gitrpc_server_client(s, &c), "in-process client of the hooked server");
  expect_message(gitrpc_create_branch(c, "default", "ops-socket.git", &op_user, "refused", "main", NULL),
                 GITRPC_CODE_PERMISSION_DENIED, "frozen by policy", "create_branch refused by the hook");
  char out[64];
  sh_out(out, sizeof out, "git -C %s/ops-socket.git for-each-ref refs/heads/refused | wc -l", storage);
  CHECK(strcmp(out, "0") == 0, "the refused branch does not exist");
  gitrpc_client_free(c);
  gitrpc_server_free(s);
}
