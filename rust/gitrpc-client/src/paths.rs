//! A front door's repository path → a storage and a relative path, one rule for SSH
//! (`gitrpc-shell`) and HTTP (the Rack endpoint):
//!
//! 1. One leading `/` is dropped; so is a leading `~` with the `/` after it (`~/g/p.git`
//!    and `/~/g/p.git` → `g/p.git`; `~name/p.git` → `name/p.git`): paths are never relative
//!    to a home directory here.
//! 2. Empty components are dropped (`a//b/` → `a/b`); a `.` or `..` component, a NUL, or
//!    nothing left is refused as "repository not found" (no hint for a prober).
//! 3. A last component without `.git` gets it (`group/project` is `group/project.git`, as
//!    on GitLab).
//! 4. The storage: the longest configured prefix that matches whole leading components
//!    (stripped), else the default storage, else the path is refused.
//!
//! The server checks the result again (its locator refuses escapes); this is about what a
//! user may type, not the last line of defence.

/// Refusal of a path: deliberately says nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("repository not found")]
pub struct NotFound;

/// Normalise a path a client gave (rules 1–3 of the module docs).
pub fn normalize(path: &str) -> Result<String, NotFound> {
    if path.contains('\0') {
        return Err(NotFound);
    }
    let mut p = path.strip_prefix('/').unwrap_or(path);
    if let Some(rest) = p.strip_prefix('~') {
        p = rest.strip_prefix('/').unwrap_or(rest);
    }
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" => {}
            "." | ".." => return Err(NotFound),
            c => parts.push(c),
        }
    }
    let last = parts.pop().ok_or(NotFound)?;
    let mut out = parts.join("/");
    if !out.is_empty() {
        out.push('/');
    }
    out.push_str(last);
    if !last.ends_with(".git") {
        out.push_str(".git");
    }
    Ok(out)
}

/// Where paths live: a default storage and/or path prefixes naming storages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storages {
    pub default: Option<String>,
    /// `(prefix, storage)`: a path starting with the prefix's components is in that storage,
    /// relative to the prefix. Prefixes are compared without surrounding `/`.
    pub prefixes: Vec<(String, String)>,
}

impl Storages {
    /// Every path in one storage.
    pub fn single(storage: &str) -> Storages {
        Storages {
            default: Some(storage.to_string()),
            prefixes: Vec::new(),
        }
    }

    /// `(storage, relative_path)` of a path a client gave: [`normalize`], then the longest
    /// prefix, else the default storage.
    pub fn locate(&self, path: &str) -> Result<(String, String), NotFound> {
        let path = normalize(path)?;
        let best = self
            .prefixes
            .iter()
            .filter_map(|(prefix, storage)| {
                let prefix = prefix.trim_matches('/');
                let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
                (!prefix.is_empty() && !rest.is_empty()).then_some((prefix.len(), storage, rest))
            })
            .max_by_key(|(len, _, _)| *len);
        match (best, &self.default) {
            (Some((_, storage, rest)), _) => Ok((storage.clone(), rest.to_string())),
            (None, Some(storage)) => Ok((storage.clone(), path)),
            (None, None) => Err(NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_what_users_type() {
        let rows = [
            ("/group/project.git", "group/project.git"),
            ("group/project.git", "group/project.git"),
            ("group/project", "group/project.git"),
            ("/group/project/", "group/project.git"),
            ("~/group/project.git", "group/project.git"),
            ("/~/group/project.git", "group/project.git"),
            ("~alice/project", "alice/project.git"),
            ("a//b///c.git", "a/b/c.git"),
            ("/a b/c.git", "a b/c.git"),
            ("~/x'y!z.git", "x'y!z.git"),
            ("p.wiki", "p.wiki.git"),
        ];
        for (input, want) in rows {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn refuses_escapes_and_nothing() {
        for bad in [
            "../x",
            "a/../../x",
            "~/../x",
            "~/..//tmp/x",
            "./a",
            "a/.",
            "",
            "/",
            "~",
            "~/",
            "//",
            "a\0b",
        ] {
            assert_eq!(normalize(bad), Err(NotFound), "{bad:?}");
        }
    }

    #[test]
    fn storages_by_prefix_then_default() {
        let s = Storages {
            default: Some("default".into()),
            prefixes: vec![
                ("shard2/".into(), "shard-2".into()),
                ("shard2/deep".into(), "deep".into()),
            ],
        };
        let at = |p: &str| s.locate(p).map(|(a, b)| format!("{a}:{b}"));
        assert_eq!(at("/g/p.git").as_deref(), Ok("default:g/p.git"));
        assert_eq!(at("/shard2/g/p").as_deref(), Ok("shard-2:g/p.git"));
        assert_eq!(at("shard2/deep/p").as_deref(), Ok("deep:p.git"));
        // A component boundary, not a string prefix; a prefix alone is no repository.
        assert_eq!(at("shard22/p").as_deref(), Ok("default:shard22/p.git"));
        assert_eq!(at("shard2").as_deref(), Ok("default:shard2.git"));
        let no_default = Storages {
            default: None,
            prefixes: s.prefixes.clone(),
        };
        assert_eq!(no_default.locate("g/p"), Err(NotFound));
        assert!(no_default.locate("shard2/g/p").is_ok());
        assert_eq!(s.locate("../x"), Err(NotFound));
    }
}
