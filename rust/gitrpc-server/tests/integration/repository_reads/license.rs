//! FindLicense on real repositories: SPDX's own license texts (the `license` crate's copy)
//! committed under the names projects use, Gitaly's cases (a pointer file, a canonical file
//! beating a third-party notice, a README never read, a license in a subdirectory), an
//! unknown license text (`other`), an empty repository, SHA-256, bad input; the typed calls.

use gitrpc_client::{Client as Typed, Options};
use gitrpc_proto::gitaly::*;

use super::client;
use crate::commit_history::{bad_repos, failure, Work};
use crate::common::TestServer;

fn text(id: &str) -> &'static str {
    let l: &dyn license::License = id.parse().unwrap();
    l.text()
}

/// The MIT license as projects commit it (choosealicense's template).
const MIT: &str = "MIT License

Copyright (c) 2026 Ada Lovelace

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the \"Software\"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
";

fn mit(path: &str) -> FindLicenseResponse {
    FindLicenseResponse {
        license_short_name: "mit".into(),
        license_name: "MIT License".into(),
        license_url: "https://opensource.org/license/MIT".into(),
        license_path: path.into(),
        license_nickname: String::new(),
    }
}

/// A repository at `rel` whose main (HEAD) has these files.
fn repo_with(s: &TestServer, rel: &str, format: &str, files: &[(&str, &str)]) -> Work {
    let w = Work::new(s, rel, format);
    for (path, content) in files {
        w.write(path, content);
    }
    w.commit("files");
    w
}

async fn find(c: &mut super::Client, w: &Work) -> FindLicenseResponse {
    c.find_license(FindLicenseRequest {
        repository: Some(w.repo()),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn find_license_names_spdx_licenses() {
    let s = TestServer::start().await;
    let mut c = client(&s);

    let w = repo_with(&s, "mit.git", "sha1", &[("LICENSE", MIT), ("a.txt", "a\n")]);
    assert_eq!(find(&mut c, &w).await, mit("LICENSE"));
    // The SPDX text itself, as COPYING.
    let w = repo_with(&s, "mit2.git", "sha1", &[("COPYING", text("MIT"))]);
    assert_eq!(find(&mut c, &w).await, mit("COPYING"));

    let w = repo_with(
        &s,
        "apache.git",
        "sha1",
        &[
            ("LICENSE.md", text("Apache-2.0")),
            ("README.md", "# readme\n"),
        ],
    );
    assert_eq!(
        find(&mut c, &w).await,
        FindLicenseResponse {
            license_short_name: "apache-2.0".into(),
            license_name: "Apache License 2.0".into(),
            license_url: "https://www.apache.org/licenses/LICENSE-2.0".into(),
            license_path: "LICENSE.md".into(),
            license_nickname: String::new(),
        }
    );

    // A GNU license text is that version: "-only" (the "or later" is in the notices).
    let w = repo_with(
        &s,
        "gpl3.git",
        "sha1",
        &[("COPYING", text("GPL-3.0-or-later"))],
    );
    assert_eq!(
        find(&mut c, &w).await,
        FindLicenseResponse {
            license_short_name: "gpl-3.0".into(),
            license_name: "GNU General Public License v3.0 only".into(),
            license_url: "https://www.gnu.org/licenses/gpl-3.0-standalone.html".into(),
            license_path: "COPYING".into(),
            license_nickname: "GNU GPLv3".into(),
        }
    );
    let w = repo_with(&s, "gpl2.git", "sha1", &[("LICENSE", text("GPL-2.0-only"))]);
    assert_eq!(
        find(&mut c, &w).await,
        FindLicenseResponse {
            license_short_name: "gpl-2.0".into(),
            license_name: "GNU General Public License v2.0 only".into(),
            license_url: "https://www.gnu.org/licenses/old-licenses/gpl-2.0-standalone.html".into(),
            license_path: "LICENSE".into(),
            license_nickname: "GNU GPLv2".into(),
        }
    );
    // After a preamble of the project's own (as the Linux kernel's COPYING has one).
    let preamble = format!(
        "NOTE! This copyright does not cover user programs that use kernel services by\n\
         normal system calls: this is merely considered normal use of the kernel.\n\n\
         Only this version of the GPL applies, unless explicitly stated otherwise.\n\n{}",
        text("GPL-2.0-only")
    );
    let w = repo_with(&s, "linux.git", "sha1", &[("COPYING", preamble.as_str())]);
    assert_eq!(find(&mut c, &w).await.license_short_name, "gpl-2.0");
    let w = repo_with(
        &s,
        "lgpl.git",
        "sha1",
        &[("COPYING.LESSER", text("LGPL-2.1-only"))],
    );
    let got = find(&mut c, &w).await;
    assert_eq!(
        (
            got.license_short_name.as_str(),
            got.license_nickname.as_str()
        ),
        ("lgpl-2.1", "GNU LGPLv2.1")
    );
    let w = repo_with(
        &s,
        "bsd.git",
        "sha1",
        &[("LICENSE.txt", text("BSD-3-Clause"))],
    );
    assert_eq!(find(&mut c, &w).await.license_short_name, "bsd-3-clause");

    // SHA-256.
    let w = repo_with(&s, "sha256.git", "sha256", &[("LICENSE.txt", MIT)]);
    assert_eq!(find(&mut c, &w).await, mit("LICENSE.txt"));
    s.stop().await;
}

#[tokio::test]
async fn find_license_follows_gitalys_file_rules() {
    let s = TestServer::start().await;
    let mut c = client(&s);

    // No license file; a README mentioning one is never read.
    let w = repo_with(
        &s,
        "none.git",
        "sha1",
        &[(
            "README.md",
            "This project is released under the MIT license.\n",
        )],
    );
    assert_eq!(find(&mut c, &w).await, FindLicenseResponse::default());

    // A license file with no known license in it.
    let w = repo_with(
        &s,
        "other.git",
        "sha1",
        &[("LICENSE.md", "this doesn't match any known license\n")],
    );
    assert_eq!(
        find(&mut c, &w).await,
        FindLicenseResponse {
            license_short_name: "other".into(),
            license_name: "Other".into(),
            license_url: String::new(),
            license_path: "LICENSE.md".into(),
            license_nickname: "LICENSE".into(),
        }
    );

    // Only in a subdirectory: not the project's license.
    let w = repo_with(&s, "sub.git", "sha1", &[("legal/LICENSE", MIT), ("a", "a")]);
    assert_eq!(find(&mut c, &w).await, FindLicenseResponse::default());

    // `LICENSE` naming the file that holds the license.
    let w = repo_with(
        &s,
        "pointer.git",
        "sha1",
        &[("LICENSE", "mit.txt\n"), ("mit.txt", MIT)],
    );
    assert_eq!(find(&mut c, &w).await, mit("mit.txt"));

    // The canonical file beats a third-party notice, even one that is a whole license.
    let w = repo_with(
        &s,
        "canonical.git",
        "sha1",
        &[
            ("LICENSE", MIT),
            ("LICENSE-3RD-PARTY.md", text("Apache-2.0")),
        ],
    );
    assert_eq!(find(&mut c, &w).await, mit("LICENSE"));
    // ... and alone, the notice is the answer.
    let w = repo_with(
        &s,
        "variant.git",
        "sha1",
        &[("LICENSE-3RD-PARTY.md", text("Apache-2.0"))],
    );
    assert_eq!(find(&mut c, &w).await.license_short_name, "apache-2.0");

    // HEAD decides: another branch's license doesn't count, and moving HEAD changes the
    // answer (answers are cached by HEAD's commit).
    let w = repo_with(&s, "head.git", "sha1", &[("a.txt", "a\n")]);
    w.git(&["checkout", "-q", "-b", "licensed"]);
    w.write("LICENSE", MIT);
    w.commit("license");
    w.git(&["symbolic-ref", "HEAD", "refs/heads/main"]);
    assert_eq!(find(&mut c, &w).await, FindLicenseResponse::default());
    w.git(&["symbolic-ref", "HEAD", "refs/heads/licensed"]);
    assert_eq!(find(&mut c, &w).await, mit("LICENSE"));

    // A huge license file is read only so far (and answered).
    let mut huge = MIT.to_string();
    while huge.len() < 3 << 20 {
        huge.push_str("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n");
    }
    let w = repo_with(&s, "huge.git", "sha1", &[("LICENSE", huge.as_str())]);
    assert_eq!(find(&mut c, &w).await.license_path, "LICENSE");

    // An empty repository: no HEAD commit, nothing to say.
    let w = Work::new(&s, "empty.git", "sha1");
    assert_eq!(find(&mut c, &w).await, FindLicenseResponse::default());

    for (repo, code) in bad_repos(&s) {
        let r = c
            .find_license(FindLicenseRequest { repository: repo })
            .await;
        assert_eq!(failure(r).0, code);
    }
    s.stop().await;
}

#[tokio::test]
async fn typed_license_and_info_calls() {
    let s = TestServer::start().await;
    let client = Typed::connect(&format!("unix:{}", s.socket.display()), &Options::default())
        .await
        .unwrap();
    let w = repo_with(&s, "t.git", "sha1", &[("LICENSE", MIT)]);
    assert_eq!(
        client.find_license(&w.repo()).await.unwrap(),
        Some(mit("LICENSE"))
    );
    let empty = Work::new(&s, "e.git", "sha1");
    assert_eq!(client.find_license(&empty.repo()).await.unwrap(), None);
    let info = client.repository_info(&w.repo()).await.unwrap();
    assert_eq!(info.objects.unwrap().loose_objects_count, 3);
    let e = client
        .find_license(&s.repo("missing.git"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    s.stop().await;
}
