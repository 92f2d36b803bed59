//! License detection without git: which files of a tree may hold a license (Gitaly's and
//! go-license-detector's file-name rules), what each one's text is closest to (askalono's
//! detector as the `spdx` crate carries it, with SPDX's license texts embedded: nothing is
//! read or downloaded at run time), and how the answer is named.

use std::sync::{LazyLock, OnceLock};

use gitrpc_proto::gitaly::FindLicenseResponse;
use regex::Regex;
use spdx::detection::{Store, TextData};

/// A text must be at least this close to a license's (askalono's Sørensen–Dice score of
/// word bigrams, 0..1) to be called that license (go-license-detector's threshold).
pub const THRESHOLD: f32 = 0.75;

/// A license file shorter than this may name the file holding the license instead
/// (`LICENSE` containing `mit.txt`), as go-license-detector reads it.
const POINTER_MAX: usize = 128;

/// The first SPDX `seeAlso` URL of every SPDX license id, sorted by id: written by `build.rs`
/// from the `license` crate's copy of SPDX's license list (3.29).
static URLS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/license_urls.rs"));

/// Nicknames GitLab shows, from Licensee's data (Gitaly's `nicknameByLicenseIdentifier`).
const NICKNAMES: &[(&str, &str)] = &[
    ("agpl-3.0", "GNU AGPLv3"),
    ("lgpl-3.0", "GNU LGPLv3"),
    ("bsd-3-clause-clear", "Clear BSD"),
    ("odbl-1.0", "ODbL"),
    ("ncsa", "UIUC/NCSA"),
    ("lgpl-2.1", "GNU LGPLv2.1"),
    ("gpl-3.0", "GNU GPLv3"),
    ("gpl-2.0", "GNU GPLv2"),
];

/// Names (lower-cased) go-license-detector reads as license files: a license word, alone or
/// between `-`, `_`, `.` or space separated parts (`LICENSE`, `COPYING.md`, `LICENSE-MIT`,
/// `gpl-3.0.txt`).
static LICENSE_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(|.*[-_. ])(li[cs]en[cs]e(s?)|legal|copy(left|right|ing)|unlicense|l?gpl([-_ v]?)([0-9]\.?[0-9])?|bsd|mit|apache)(|[-_. ].*)$",
    )
    .expect("valid")
});

/// READMEs are never read (Gitaly leaves them out of the listing: no license guessed from
/// prose).
static README: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(readme|guidelines)(\.md|\.rst|\.html|\.txt)?$").expect("valid"));

/// The project's own license file, preferred over variants (`LICENSE-3RD-PARTY.md`).
static CANONICAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^((un)?licen[sc]e|copying)(\.md|\.txt|\.html|\.rst)?$").expect("valid")
});

/// HTML tags, dropped from `.html` license files before matching.
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").expect("valid"));

/// Is `name` (a file of the root tree) read at all? Not a README.
pub fn listed(name: &str) -> bool {
    !README.is_match(&name.to_lowercase())
}

/// Is `name` a license file candidate?
pub fn candidate(name: &str) -> bool {
    LICENSE_FILE.is_match(&name.to_lowercase())
}

/// The file another one points to, if `text` is short and names it.
pub fn pointer(text: &[u8]) -> Option<&str> {
    if text.len() >= POINTER_MAX {
        return None;
    }
    std::str::from_utf8(text.trim_ascii()).ok()
}

/// The store, loaded (decompressed and parsed: a fraction of a second) on first use.
fn store() -> Result<&'static Store, String> {
    static STORE: OnceLock<Result<Store, String>> = OnceLock::new();
    STORE
        .get_or_init(|| Store::load_inline().map_err(|e| format!("loading licenses: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// The text to match: HTML without its tags; other markup (Markdown, reStructuredText) is
/// left to the detector's own normalization, which drops punctuation.
fn prepare(name: &str, data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    if name.to_lowercase().ends_with(".html") {
        return TAG.replace_all(&text, " ").into_owned();
    }
    text.into_owned()
}

/// The SPDX id `data` (the content of file `name`) is closest to, and how close, if at
/// least [`THRESHOLD`]. Blocking CPU work (milliseconds per file).
pub fn identify(name: &str, data: &[u8]) -> Result<Option<(String, f32)>, String> {
    let store = store()?;
    let text = TextData::new(&prepare(name, data));
    let m = store.analyze(&text);
    if m.score >= THRESHOLD {
        return Ok(Some((version_of_text(m.name), m.score)));
    }
    Ok(None)
}

/// The GNU licenses' `-only` and `-or-later` ids have the same text (the "or any later
/// version" is in each file's notice, not in the license), so the detector can't tell them
/// apart and names the `-or-later` one: a license text is taken as that version only
/// (`gpl-2.0`, `gpl-3.0`: Licensee's keys, which GitLab and Gitaly's nicknames use).
fn version_of_text(id: &str) -> String {
    if let Some(base) = id.strip_suffix("-or-later") {
        let only = format!("{base}-only");
        if spdx::license_id(&only).is_some() {
            return only;
        }
    }
    id.to_string()
}

/// One license file's answer.
#[derive(Clone, Debug)]
pub struct Found {
    pub path: String,
    pub id: String,
    pub score: f32,
}

/// The answer for a tree: among files that matched a license, the canonical license file
/// first, then the closest match, then the smaller short name (Gitaly's order). `None` if no
/// match names an SPDX license.
pub fn best(mut found: Vec<Found>) -> Option<FindLicenseResponse> {
    found.retain(|f| spdx::license_id(&f.id).is_some());
    found.sort_by(|a, b| {
        CANONICAL
            .is_match(&b.path)
            .cmp(&CANONICAL.is_match(&a.path))
            .then(b.score.total_cmp(&a.score))
            .then_with(|| short_name(&a.id).cmp(&short_name(&b.id)))
    });
    let f = found.into_iter().next()?;
    Some(response(&f.id, f.path))
}

/// GitLab's key for a license: the lower-cased SPDX id, GNU licenses by their older ids
/// (`GPL-2.0-only` → `gpl-2.0`, `GPL-3.0-or-later` → `gpl-3.0+`), which Gitaly answers and
/// GitLab's license templates use.
pub fn short_name(id: &str) -> String {
    let old = if let Some(base) = id.strip_suffix("-only") {
        spdx::license_id(base).map(|_| base.to_string())
    } else if let Some(base) = id.strip_suffix("-or-later") {
        let plus = format!("{base}+");
        spdx::license_id(&plus).map(|_| plus)
    } else {
        None
    };
    old.unwrap_or_else(|| id.to_string()).to_lowercase()
}

/// The response naming license `id` found in `path`.
pub fn response(id: &str, path: String) -> FindLicenseResponse {
    let short = short_name(id);
    FindLicenseResponse {
        license_name: spdx::license_id(id)
            .map(|l| l.full_name.to_string())
            .unwrap_or_default(),
        license_url: URLS
            .binary_search_by(|(k, _)| (*k).cmp(id))
            .map(|i| URLS[i].1.to_string())
            .unwrap_or_default(),
        license_nickname: NICKNAMES
            .iter()
            .find(|(k, _)| *k == short)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default(),
        license_short_name: short,
        license_path: path,
    }
}

/// A license file whose text matched nothing: GitLab shows "LICENSE" for it.
pub fn other(path: String) -> FindLicenseResponse {
    FindLicenseResponse {
        license_short_name: "other".into(),
        license_name: "Other".into(),
        license_nickname: "LICENSE".into(),
        license_path: path,
        license_url: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for n in [
            "LICENSE",
            "LICENCE.md",
            "COPYING",
            "copying.txt",
            "LICENSE-MIT",
            "LICENSE-3RD-PARTY.md",
            "UNLICENSE",
            "mit.txt",
            "gpl-3.0.txt",
            "lgplv2.1",
            "legal",
            "Apache",
            "my.license",
            "COPYRIGHT",
        ] {
            assert!(candidate(n), "{n}");
        }
        for n in ["README", "src", "admit.txt", "mitten", "notes.md"] {
            assert!(!candidate(n), "{n}");
        }
        assert!(!listed("README.md"));
        assert!(!listed("guidelines"));
        assert!(listed("LICENSE"));
        for n in [
            "LICENSE",
            "license.txt",
            "Licence.md",
            "COPYING.rst",
            "UNLICENSE",
        ] {
            assert!(CANONICAL.is_match(n), "{n}");
        }
        for n in [
            "LICENSE-MIT",
            "COPYING-MIT",
            "LICENSE-3RD-PARTY.md",
            "mit.txt",
        ] {
            assert!(!CANONICAL.is_match(n), "{n}");
        }
    }

    #[test]
    fn names_and_urls() {
        assert_eq!(short_name("MIT"), "mit");
        assert_eq!(short_name("Apache-2.0"), "apache-2.0");
        assert_eq!(short_name("GPL-2.0-only"), "gpl-2.0");
        assert_eq!(short_name("GPL-3.0-or-later"), "gpl-3.0+");
        assert_eq!(short_name("LGPL-2.1-only"), "lgpl-2.1");
        assert_eq!(short_name("AGPL-3.0-only"), "agpl-3.0");
        let r = response("GPL-2.0-only", "COPYING".into());
        assert_eq!(r.license_short_name, "gpl-2.0");
        assert_eq!(r.license_name, "GNU General Public License v2.0 only");
        assert_eq!(
            r.license_url,
            "https://www.gnu.org/licenses/old-licenses/gpl-2.0-standalone.html"
        );
        assert_eq!(r.license_nickname, "GNU GPLv2");
        let r = response("Apache-2.0", "LICENSE".into());
        assert_eq!(r.license_url, "https://www.apache.org/licenses/LICENSE-2.0");
        assert_eq!(r.license_nickname, "");
        assert!(URLS.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert!(URLS.len() > 500, "{}", URLS.len());
    }

    #[test]
    fn gnu_texts_name_their_version() {
        assert_eq!(version_of_text("GPL-3.0-or-later"), "GPL-3.0-only");
        assert_eq!(version_of_text("LGPL-2.1-or-later"), "LGPL-2.1-only");
        assert_eq!(version_of_text("MIT"), "MIT");
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer(b"mit.txt\n"), Some("mit.txt"));
        assert_eq!(pointer(&[b'a'; POINTER_MAX]), None);
    }
}
