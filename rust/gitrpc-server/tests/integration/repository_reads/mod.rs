//! RepositoryService reads of step 11 against git's own answers: GetArchive (every format,
//! unpacked and compared with `git archive`), RepositoryInfo (against the file system),
//! FindLicense, and the bad input of each.

mod archive;
mod attributes;
mod info;
mod license;
mod raw_changes;
mod search;
mod typed;

use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;

use crate::commit_history::Work;
use crate::common::TestServer;

pub type Client = RepositoryServiceClient<tonic::transport::Channel>;

pub fn client(s: &TestServer) -> Client {
    RepositoryServiceClient::new(s.channel.clone())
}

/// A repository with a subdirectory, a nested one, a spaced and a non-UTF-8 name, a
/// symlink, an executable, and `.gitattributes` (`export-ignore`, `export-subst`).
pub fn files(s: &TestServer, rel: &str) -> Work {
    let w = Work::new(s, rel, "sha1");
    w.write("README.md", "# readme\n");
    w.write("sub/b.txt", "b\n");
    w.write("sub/deep/c.txt", "c\n");
    w.write("sub/deep/more/d.txt", "d\n");
    w.write("with space/e.txt", "e\n");
    w.write(b"caf\xe9/f.txt", "latin-1\n");
    w.write("ignored.txt", "never archived\n");
    w.write("subst.txt", "commit $Format:%H$\n");
    w.write(
        ".gitattributes",
        "ignored.txt export-ignore\nsubst.txt export-subst\n",
    );
    std::os::unix::fs::symlink("README.md", w.work_dir().join("link")).unwrap();
    w.write("run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        w.work_dir().join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    w.commit("files");
    w
}
