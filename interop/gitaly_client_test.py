"""An existing Gitaly client, built from Gitaly's own protos, talking to gitrpcd."""

import atexit
import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


_STUBS = []


def compile_stubs():
    """Python stubs of Gitaly's protos (and google.rpc.Status), compiled once per run."""
    if _STUBS:
        return
    out = tempfile.mkdtemp(prefix="gitrpc-interop-stubs-")
    atexit.register(shutil.rmtree, out, True)
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
    with open(os.path.join(out, "rpc_status.proto"), "w") as f:
        f.write(RPC_STATUS_PROTO)
    rc = protoc.main(["protoc", f"-I{out}", f"-I{include}", f"--python_out={out}", "rpc_status.proto"])
    if rc != 0:
        raise RuntimeError(f"protoc failed on rpc_status.proto: {rc}")
    sys.path.insert(0, out)
    _STUBS.append(out)


def make_repository(tmp, storage):
    """A bare repository `group/project.git` in `storage` with one commit; its head and blob."""
    repo = os.path.join(storage, "group", "project.git")
    os.makedirs(repo)
    git("init", "--bare", "-q", "-b", "main", repo)
    work = os.path.join(tmp, "work")
    git("clone", "-q", repo, work)
    with open(os.path.join(work, "README.md"), "w") as f:
        f.write("hello from interop\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "first\n\nbody text", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).decode().strip()
    blob = git("rev-parse", "HEAD:README.md", cwd=work).decode().strip()
    return head, blob


def start_daemon(args, socket, log):
    with open(log, "wb") as err:
        daemon = subprocess.Popen([GITRPCD, *args], stderr=err)
    for _ in range(200):
        if os.path.exists(socket):
            return daemon
        if daemon.poll() is not None:
            break
        time.sleep(0.05)
    daemon.kill()
    daemon.wait()
    with open(log) as f:
        raise RuntimeError(f"gitrpcd did not create {socket}: {f.read()}")


def stop_daemon(daemon, socket):
    daemon.send_signal(signal.SIGTERM)
    rc = daemon.wait(timeout=20)
    assert rc == 0, f"gitrpcd exited {rc}"
    assert not os.path.exists(socket), "socket left behind"


# google.rpc.Status, the message behind `grpc-status-details-bin` (its three public fields).
RPC_STATUS_PROTO = """syntax = "proto3";
package google.rpc;
import "google/protobuf/any.proto";
message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
"""


def gitaly_v2_token(secret, ts=None):
    """Gitaly's v2 token as its Go and Ruby clients make it: v2.<hex hmac-sha256(secret, ts)>.<ts>."""
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), ts.encode(), hashlib.sha256).hexdigest()
    return f"v2.{mac}.{ts}"


class DaemonTestCase(unittest.TestCase):
    """gitrpcd started by `daemon_args(storage)` over a temp storage holding `group/project.git`
    (one commit), and a channel to its socket."""

    @classmethod
    def daemon_args(cls, storage):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gitrpc-interop-")
        compile_stubs()
        storage = os.path.join(cls.tmp, "storage")
        cls.head, cls.blob = make_repository(cls.tmp, storage)
        cls.socket = os.path.join(cls.tmp, "gitrpc.sock")
        cls.daemon = start_daemon(cls.daemon_args(storage), cls.socket, os.path.join(cls.tmp, "log"))
        import grpc

        cls.channel = grpc.insecure_channel(f"unix:{cls.socket}")
        grpc.channel_ready_future(cls.channel).result(timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        stop_daemon(cls.daemon, cls.socket)
        shutil.rmtree(cls.tmp)

    def repo(self, rel="group/project.git"):
        import shared_pb2

        return shared_pb2.Repository(storage_name="default", relative_path=rel)


@unittest.skipUnless(os.path.isdir(PROTO_DIR), f"no upstream protos at {PROTO_DIR}")
class GitalyClientTest(DaemonTestCase):
    @classmethod
    def daemon_args(cls, storage):
        return ["--socket", cls.socket, "--storage", f"default={storage}"]

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
        import objectpool_pb2, objectpool_pb2_grpc

        # A whole service gitrpc does not serve (object pools): UNIMPLEMENTED, not a hang or
        # an INTERNAL, so a Gitaly client can tell "not here" from "failed".
        stub = objectpool_pb2_grpc.ObjectPoolServiceStub(self.channel)
        with self.assertRaises(grpc.RpcError) as e:
            stub.DeleteObjectPool(objectpool_pb2.DeleteObjectPoolRequest())
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_sidechannel_rpcs_over_plain_http2_are_failed_precondition(self):
        """Plain HTTP/2 (no backchannel handshake) on the same socket: the sidechannel RPCs are
        refused with FAILED_PRECONDITION, with or without a sidechannel id."""
        import grpc
        import smarthttp_pb2, smarthttp_pb2_grpc, ssh_pb2, ssh_pb2_grpc

        calls = [
            (
                ssh_pb2_grpc.SSHServiceStub(self.channel).SSHUploadPackWithSidechannel,
                ssh_pb2.SSHUploadPackWithSidechannelRequest(repository=self.repo()),
            ),
            (
                smarthttp_pb2_grpc.SmartHTTPServiceStub(self.channel).PostUploadPackWithSidechannel,
                smarthttp_pb2.PostUploadPackWithSidechannelRequest(repository=self.repo()),
            ),
        ]
        for call, request in calls:
            for metadata in [(("gitaly-sidechannel-id", "1"),), ()]:
                with self.assertRaises(grpc.RpcError) as e:
                    call(request, metadata=metadata, timeout=10)
                self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
                self.assertIn("backchannel", e.exception.details())

    def test_server_info(self):
        import server_pb2, server_pb2_grpc

        r = server_pb2_grpc.ServerServiceStub(self.channel).ServerInfo(server_pb2.ServerInfoRequest())
        self.assertTrue(git("version").decode().strip().endswith(r.git_version))
        self.assertEqual([s.storage_name for s in r.storage_statuses], ["default"])


@unittest.skipUnless(os.path.isdir(PROTO_DIR), f"no upstream protos at {PROTO_DIR}")
class GitalyAuthAndLimitsTest(DaemonTestCase):
    """A server with Gitaly's `[auth] token` and a `[[concurrency]]` limit, seen by a Gitaly client:
    the token made here (not by our code) is accepted, and a refusal carries a LimitError that
    Gitaly's own errors.proto decodes."""

    SECRET = "interop secret"

    @classmethod
    def daemon_args(cls, storage):
        config = os.path.join(cls.tmp, "gitrpc.toml")
        with open(config, "w") as f:
            f.write(
                f"""socket_path = "{cls.socket}"
[auth]
token = "{cls.SECRET}"
[[storage]]
name = "default"
path = "{storage}"
[[concurrency]]
rpc = "/gitaly.SSHService/SSHReceivePack"
max_concurrency = 1
max_queue_wait = "100ms"
"""
            )
        return ["--config", config]

    def auth(self, token):
        return [("authorization", f"Bearer {token}")]

    def exists(self, metadata=None):
        import repository_pb2, repository_pb2_grpc

        stub = repository_pb2_grpc.RepositoryServiceStub(self.channel)
        return stub.RepositoryExists(
            repository_pb2.RepositoryExistsRequest(repository=self.repo()), metadata=metadata, timeout=10
        ).exists

    def test_token_made_by_a_gitaly_client_is_accepted(self):
        self.assertTrue(self.exists(self.auth(gitaly_v2_token(self.SECRET))))
        # Clocks may disagree by up to 30 s either way.
        self.assertTrue(self.exists(self.auth(gitaly_v2_token(self.SECRET, int(time.time()) - 20))))

    def test_refusals_carry_gitaly_codes(self):
        import grpc

        for metadata, code in [
            (None, grpc.StatusCode.UNAUTHENTICATED),
            (self.auth("v2.nonsense"), grpc.StatusCode.UNAUTHENTICATED),
            (self.auth(gitaly_v2_token("another secret")), grpc.StatusCode.PERMISSION_DENIED),
            (self.auth(gitaly_v2_token(self.SECRET, int(time.time()) - 120)), grpc.StatusCode.PERMISSION_DENIED),
        ]:
            with self.assertRaises(grpc.RpcError) as e:
                self.exists(metadata)
            self.assertEqual(e.exception.code(), code, metadata)

    def test_limit_error_decodes_with_gitalys_protos(self):
        import grpc
        import errors_pb2, rpc_status_pb2, ssh_pb2, ssh_pb2_grpc

        stub = ssh_pb2_grpc.SSHServiceStub(self.channel)
        metadata = self.auth(gitaly_v2_token(self.SECRET))
        release = threading.Event()

        def session():
            yield ssh_pb2.SSHReceivePackRequest(repository=self.repo(), gl_id="user-1")
            release.wait(20)
            yield ssh_pb2.SSHReceivePackRequest(stdin=b"0000")  # no commands: receive-pack is done

        try:
            # The first push session takes the only slot: git receive-pack runs and advertises.
            first = stub.SSHReceivePack(session(), metadata=metadata, timeout=30)
            self.assertIn(b"refs/heads/main", next(first).stdout)
            # The second waits max_queue_wait, then is refused the way Gitaly refuses.
            started = time.monotonic()
            with self.assertRaises(grpc.RpcError) as e:
                list(stub.SSHReceivePack(session(), metadata=metadata, timeout=30))
            waited = time.monotonic() - started
            self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertGreaterEqual(waited, 0.09)
            self.assertLess(waited, 5)
            details = dict(e.exception.trailing_metadata())["grpc-status-details-bin"]
            status = rpc_status_pb2.Status.FromString(details)
            self.assertEqual(status.code, grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
            self.assertEqual(len(status.details), 1)
            limit = errors_pb2.LimitError()
            self.assertTrue(status.details[0].Unpack(limit), status.details[0].type_url)
            self.assertEqual(limit.error_message, "maximum time in concurrency queue reached")
            self.assertEqual(limit.retry_after.ToTimedelta().total_seconds(), 0)
        finally:
            release.set()
        # The first session ends normally once its client is done.
        rest = list(first)
        self.assertTrue(rest and rest[-1].HasField("exit_status"), rest)
        self.assertEqual(rest[-1].exit_status.value, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
