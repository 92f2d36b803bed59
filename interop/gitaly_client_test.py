"""An existing Gitaly client, built from Gitaly's own protos, talking to gitrpcd."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.environ.get(
    "GITALY_PROTO_DIR", os.path.join(ROOT, "..", "shared", "reference", "gitaly-proto")
)
GITRPCD = os.environ.get("GITRPCD", os.path.join(ROOT, "target", "debug", "gitrpcd"))
ENV = dict(
    os.environ,
    GIT_CONFIG_GLOBAL="/dev/null",
    GIT_CONFIG_NOSYSTEM="1",
    GIT_AUTHOR_NAME="Ada",
    GIT_AUTHOR_EMAIL="ada@example.com",
    GIT_COMMITTER_NAME="Ada",
    GIT_COMMITTER_EMAIL="ada@example.com",
)


def git(*args, cwd=None):
    return subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True
    ).stdout


def compile_stubs(out):
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = [
        f
        for f in sorted(os.listdir(PROTO_DIR))
        if f.endswith(".proto") and f != "cluster.proto"
    ]
    rc = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed: {rc}")
    sys.path.insert(0, out)


@unittest.skipUnless(os.path.isdir(PROTO_DIR), f"no upstream protos at {PROTO_DIR}")
class GitalyClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gitrpc-interop-")
        os.makedirs(os.path.join(cls.tmp, "stubs"))
        compile_stubs(os.path.join(cls.tmp, "stubs"))
        storage = os.path.join(cls.tmp, "storage")
        repo = os.path.join(storage, "group", "project.git")
        os.makedirs(repo)
        git("init", "--bare", "-q", "-b", "main", repo)
        work = os.path.join(cls.tmp, "work")
        git("clone", "-q", repo, work)
        with open(os.path.join(work, "README.md"), "w") as f:
            f.write("hello from interop\n")
        git("add", ".", cwd=work)
        git("commit", "-qm", "first\n\nbody text", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        cls.head = git("rev-parse", "HEAD", cwd=work).decode().strip()
        cls.blob = git("rev-parse", "HEAD:README.md", cwd=work).decode().strip()
        cls.socket = os.path.join(cls.tmp, "gitrpc.sock")
        cls.daemon = subprocess.Popen(
            [GITRPCD, "--socket", cls.socket, "--storage", f"default={storage}"],
            stderr=subprocess.PIPE,
        )
        for _ in range(200):
            if os.path.exists(cls.socket):
                break
            time.sleep(0.05)
        import grpc

        cls.channel = grpc.insecure_channel(f"unix:{cls.socket}")
        grpc.channel_ready_future(cls.channel).result(timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.daemon.send_signal(signal.SIGTERM)
        rc = cls.daemon.wait(timeout=20)
        assert rc == 0, f"gitrpcd exited {rc}"
        assert not os.path.exists(cls.socket), "socket left behind"
        shutil.rmtree(cls.tmp)

    def repo(self, rel="group/project.git"):
        import shared_pb2

        return shared_pb2.Repository(storage_name="default", relative_path=rel)

    def test_repository_exists(self):
        import repository_pb2, repository_pb2_grpc

        stub = repository_pb2_grpc.RepositoryServiceStub(self.channel)
        r = stub.RepositoryExists(repository_pb2.RepositoryExistsRequest(repository=self.repo()))
        self.assertTrue(r.exists)
        r = stub.RepositoryExists(repository_pb2.RepositoryExistsRequest(repository=self.repo("nope.git")))
        self.assertFalse(r.exists)

    def test_find_commit(self):
        import commit_pb2, commit_pb2_grpc

        stub = commit_pb2_grpc.CommitServiceStub(self.channel)
        r = stub.FindCommit(commit_pb2.FindCommitRequest(repository=self.repo(), revision=b"main"))
        self.assertEqual(r.commit.id, self.head)
        self.assertEqual(r.commit.subject, b"first")
        self.assertEqual(r.commit.author.email, b"ada@example.com")
        r = stub.FindCommit(commit_pb2.FindCommitRequest(repository=self.repo(), revision=b"nope"))
        self.assertFalse(r.HasField("commit"))

    def test_refs(self):
        import ref_pb2, ref_pb2_grpc

        stub = ref_pb2_grpc.RefServiceStub(self.channel)
        r = stub.RefExists(ref_pb2.RefExistsRequest(repository=self.repo(), ref=b"refs/heads/main"))
        self.assertTrue(r.value)
        r = stub.FindDefaultBranchName(ref_pb2.FindDefaultBranchNameRequest(repository=self.repo()))
        self.assertEqual(r.name, b"refs/heads/main")
        names = [
            b.name
            for msg in stub.FindLocalBranches(ref_pb2.FindLocalBranchesRequest(repository=self.repo()))
            for b in msg.local_branches
        ]
        self.assertEqual(names, [b"refs/heads/main"])

    def test_get_blob(self):
        import blob_pb2, blob_pb2_grpc

        stub = blob_pb2_grpc.BlobServiceStub(self.channel)
        data = b"".join(
            m.data for m in stub.GetBlob(blob_pb2.GetBlobRequest(repository=self.repo(), oid=self.blob, limit=-1))
        )
        self.assertEqual(data, b"hello from interop\n")

    def test_errors_carry_gitaly_codes(self):
        import grpc
        import repository_pb2, repository_pb2_grpc

        stub = repository_pb2_grpc.RepositoryServiceStub(self.channel)
        with self.assertRaises(grpc.RpcError) as e:
            stub.RepositorySize(repository_pb2.RepositorySizeRequest(repository=self.repo("../escape.git")))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            stub.RepositorySize(repository_pb2.RepositorySizeRequest(repository=self.repo("missing.git")))
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_unserved_rpc_is_unimplemented(self):
        import grpc
        import repository_pb2, repository_pb2_grpc

        stub = repository_pb2_grpc.RepositoryServiceStub(self.channel)
        with self.assertRaises(grpc.RpcError) as e:
            stub.OptimizeRepository(repository_pb2.OptimizeRepositoryRequest(repository=self.repo()))
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_server_info(self):
        import server_pb2, server_pb2_grpc

        r = server_pb2_grpc.ServerServiceStub(self.channel).ServerInfo(server_pb2.ServerInfoRequest())
        self.assertTrue(git("version").decode().strip().endswith(r.git_version))
        self.assertEqual([s.storage_name for s in r.storage_statuses], ["default"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
