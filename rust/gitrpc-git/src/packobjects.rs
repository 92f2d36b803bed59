//! What git upload-pack asks of `pack-objects`, as an `uploadpack.packObjectsHook` sees it.
//!
//! With the hook set, upload-pack (git 2.47 `upload-pack.c: create_pack_file`) runs, through
//! the shell, `<hook> git [--shallow-file ""] pack-objects --revs [--thin] --stdout
//! [--shallow] [--progress] [--delta-base-offset] [--include-tag] [--filter=<spec>]
//! [--uri-protocol=<p>]...`, writes what to pack on the hook's stdin and closes it before
//! it reads anything back:
//!
//! ```text
//! --shallow <oid>     one per shallow boundary of a shallow fetch
//! <oid>               one per want
//! --not
//! <oid>               one per common have (and edges)
//!                     an empty line ends it
//! ```
//!
//! [`PackObjectsArgs::parse`] accepts exactly these arguments (an allowlist, unlike Gitaly's
//! "every argument starts with `-`"; `--uri-protocol` is never enabled by us and refused) and
//! [`StdinCheck`] these input lines (object ids, never revision expressions or options other
//! than `--not` and `--shallow`), so what the server runs as `pack-objects` is exactly what
//! upload-pack asked for and nothing a caller could shape otherwise.

use std::path::Path;

use crate::{Command, Error, Result, Subcommand};

/// One flag upload-pack passes to pack-objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    Revs,
    Thin,
    Stdout,
    Shallow,
    Progress,
    DeltaBaseOffset,
    IncludeTag,
    /// `--filter=<spec>` (the spec as upload-pack expanded it).
    Filter(String),
}

impl Flag {
    fn parse(arg: &str) -> Option<Flag> {
        Some(match arg {
            "--revs" => Flag::Revs,
            "--thin" => Flag::Thin,
            "--stdout" => Flag::Stdout,
            "--shallow" => Flag::Shallow,
            "--progress" => Flag::Progress,
            "--delta-base-offset" => Flag::DeltaBaseOffset,
            "--include-tag" => Flag::IncludeTag,
            _ => {
                let spec = arg.strip_prefix("--filter=")?;
                if spec.is_empty() || spec.bytes().any(|b| b.is_ascii_control()) {
                    return None;
                }
                Flag::Filter(spec.to_string())
            }
        })
    }

    /// The argument as git takes it.
    pub fn as_arg(&self) -> String {
        match self {
            Flag::Revs => "--revs".into(),
            Flag::Thin => "--thin".into(),
            Flag::Stdout => "--stdout".into(),
            Flag::Shallow => "--shallow".into(),
            Flag::Progress => "--progress".into(),
            Flag::DeltaBaseOffset => "--delta-base-offset".into(),
            Flag::IncludeTag => "--include-tag".into(),
            Flag::Filter(spec) => format!("--filter={spec}"),
        }
    }
}

/// A checked pack-objects invocation from upload-pack.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PackObjectsArgs {
    /// `--shallow-file ""` came first: the repository's own `shallow` file is ignored.
    pub no_shallow_file: bool,
    /// In the order given (`--revs` and `--stdout` always among them).
    pub flags: Vec<Flag>,
}

impl PackObjectsArgs {
    /// The hook's arguments: `git [--shallow-file ""] pack-objects <flags>...`. Anything
    /// else is `INVALID_ARGUMENT` ("unsupported pack-objects arguments").
    pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<PackObjectsArgs> {
        let bad = || {
            let shown: Vec<&str> = argv.iter().map(|a| a.as_ref()).collect();
            Error::invalid(format!("unsupported pack-objects arguments: {shown:?}"))
        };
        let mut rest = argv.iter().map(|a| a.as_ref());
        if rest.next() != Some("git") {
            return Err(bad());
        }
        let mut no_shallow_file = false;
        let mut next = rest.next();
        if next == Some("--shallow-file") {
            if rest.next() != Some("") {
                return Err(bad());
            }
            no_shallow_file = true;
            next = rest.next();
        }
        if next != Some("pack-objects") {
            return Err(bad());
        }
        let mut flags = Vec::new();
        for arg in rest {
            let flag = Flag::parse(arg).ok_or_else(bad)?;
            let is_filter = |f: &Flag| matches!(f, Flag::Filter(_));
            if flags.contains(&flag) || is_filter(&flag) && flags.iter().any(is_filter) {
                return Err(bad());
            }
            flags.push(flag);
        }
        if !flags.contains(&Flag::Revs) || !flags.contains(&Flag::Stdout) {
            return Err(bad());
        }
        Ok(PackObjectsArgs {
            no_shallow_file,
            flags,
        })
    }

    /// The arguments after `git`, as upload-pack gave them (what a cache keys on).
    pub fn canonical(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.no_shallow_file {
            v.push("--shallow-file".to_string());
            v.push(String::new());
        }
        v.push("pack-objects".to_string());
        v.extend(self.flags.iter().map(Flag::as_arg));
        v
    }

    pub fn progress(&self) -> bool {
        self.flags.contains(&Flag::Progress)
    }

    /// `git --git-dir=<repo> [--shallow-file ""] pack-objects <flags>` with `stdin` (a file
    /// holding the input upload-pack wrote, at offset 0) as its standard input; stderr goes
    /// to the caller (progress messages).
    pub fn command(&self, repo: &Path, stdin: std::fs::File) -> Command {
        let mut cmd = Command::in_repo(repo, Subcommand::PackObjects);
        if self.no_shallow_file {
            cmd = cmd.no_shallow_file();
        }
        for f in &self.flags {
            cmd = cmd.arg_flag(f.as_arg());
        }
        cmd.stdin_file(stdin).stderr_to_caller()
    }
}

/// Checks pack-objects' standard input as it streams by, line by line (see the module
/// docs): object ids (hex, 40 or 64 digits), `--not`, `--shallow <oid>`, and the empty line
/// that ends it (nothing may follow).
#[derive(Debug, Default)]
pub struct StdinCheck {
    /// An incomplete line carried over from the last chunk.
    partial: Vec<u8>,
    ended: bool,
    error: Option<String>,
}

/// Longest line: `--shallow ` and a SHA-256 id.
const MAX_LINE: usize = 10 + 64;

impl StdinCheck {
    pub fn feed(&mut self, mut data: &[u8]) {
        while self.error.is_none() && !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line = if self.partial.is_empty() {
                        self.line(&data[..i]);
                        None
                    } else {
                        let mut l = std::mem::take(&mut self.partial);
                        l.extend_from_slice(&data[..i]);
                        Some(l)
                    };
                    if let Some(l) = line {
                        self.line(&l);
                    }
                    data = &data[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    if self.partial.len() > MAX_LINE {
                        self.error = Some("pack-objects input: line too long".into());
                    }
                    return;
                }
            }
        }
    }

    fn line(&mut self, line: &[u8]) {
        if self.ended {
            self.error = Some("pack-objects input: data after the end".into());
            return;
        }
        let ok = match line {
            b"" => {
                self.ended = true;
                true
            }
            b"--not" => true,
            _ => match line.strip_prefix(b"--shallow ") {
                Some(oid) => is_oid(oid),
                None => is_oid(line),
            },
        };
        if !ok {
            self.error = Some(format!(
                "pack-objects input: unexpected line {:?}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            ));
        }
    }

    /// The input was complete and well-formed (`INVALID_ARGUMENT` otherwise).
    pub fn finish(self) -> Result<()> {
        if let Some(e) = self.error {
            return Err(Error::invalid(e));
        }
        if !self.partial.is_empty() || !self.ended {
            return Err(Error::invalid("pack-objects input: not terminated"));
        }
        Ok(())
    }
}

fn is_oid(s: &[u8]) -> bool {
    (s.len() == 40 || s.len() == 64) && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<PackObjectsArgs> {
        PackObjectsArgs::parse(a)
    }

    #[test]
    fn what_upload_pack_sends() {
        let a = parse(&[
            "git",
            "pack-objects",
            "--revs",
            "--thin",
            "--stdout",
            "--progress",
            "--delta-base-offset",
        ])
        .unwrap();
        assert!(!a.no_shallow_file && a.progress());
        assert_eq!(
            a.canonical(),
            [
                "pack-objects",
                "--revs",
                "--thin",
                "--stdout",
                "--progress",
                "--delta-base-offset"
            ]
        );
        let a = parse(&[
            "git",
            "--shallow-file",
            "",
            "pack-objects",
            "--revs",
            "--thin",
            "--stdout",
            "--shallow",
            "--delta-base-offset",
            "--include-tag",
            "--filter=blob:none",
        ])
        .unwrap();
        assert!(a.no_shallow_file);
        assert_eq!(a.flags.last(), Some(&Flag::Filter("blob:none".into())));
        let argv: Vec<String> = a
            .command(Path::new("/r.git"), tempfile::tempfile().unwrap())
            .args(&[])
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "--git-dir=/r.git",
                "--shallow-file",
                "",
                "pack-objects",
                "--revs",
                "--thin",
                "--stdout",
                "--shallow",
                "--delta-base-offset",
                "--include-tag",
                "--filter=blob:none"
            ]
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &["pack-objects", "--revs", "--stdout"][..],
            &["git", "pack-objects", "--revs"],
            &["git", "pack-objects", "--stdout"],
            &[
                "git",
                "--shallow-file",
                "x",
                "pack-objects",
                "--revs",
                "--stdout",
            ],
            &[
                "git",
                "pack-objects",
                "--revs",
                "--stdout",
                "--uri-protocol=https",
            ],
            &["git", "pack-objects", "--revs", "--stdout", "--all"],
            &["git", "pack-objects", "--revs", "--stdout", "base-name"],
            &["git", "pack-objects", "--revs", "--stdout", "--stdout"],
            &["git", "pack-objects", "--revs", "--stdout", "--filter="],
            &[
                "git",
                "pack-objects",
                "--revs",
                "--stdout",
                "--filter=a",
                "--filter=b",
            ],
            &["git", "-c", "x=y", "pack-objects", "--revs", "--stdout"],
            &["git", "repack", "--revs", "--stdout"],
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("unsupported pack-objects arguments"),
                "{bad:?}: {err}"
            );
        }
    }

    fn check(chunks: &[&[u8]]) -> Result<()> {
        let mut c = StdinCheck::default();
        for ch in chunks {
            c.feed(ch);
        }
        c.finish()
    }

    #[test]
    fn stdin_lines() {
        let a = "a".repeat(40);
        let b = "b".repeat(64);
        let good = format!("--shallow {a}\n{a}\n{b}\n--not\n{a}\n\n");
        check(&[good.as_bytes()]).unwrap();
        // Split anywhere.
        for at in 0..good.len() {
            let (x, y) = good.as_bytes().split_at(at);
            check(&[x, y]).unwrap();
        }
        check(&[b"\n"]).unwrap();
        for bad in [
            format!("{a}\n"),                  // not terminated
            format!("{a}\n\n{a}\n"),           // after the end
            "main\n\n".to_string(),            // a revision expression
            "--all\n\n".to_string(),           // an option
            format!("{}\n\n", "A".repeat(40)), // upper case
            "--shallow main\n\n".to_string(),
            format!("{a}~1\n\n"),
            "x".repeat(500),
        ] {
            assert!(check(&[bad.as_bytes()]).is_err(), "{bad:?}");
        }
    }
}
