//! Editing a tree without an index or a work tree: the trees on the paths an edit touches
//! are read (once, through a cat-file process), changed in memory, and the changed ones
//! written bottom-up through one `git mktree -z --batch` ([`Mktree`]). The cost depends on
//! the paths edited, not on the size of the tree.
//!
//! Paths are given as components (`[b"dir", b"file"]`), already checked by the caller: no
//! empty, `.`, `..` or `/`-holding component reaches here.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use crate::objects::{mode, ObjectFormat};
use crate::{CatFile, Command, Error, Git, Process, Result, Subcommand};

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TreeEditError {
    #[error(transparent)]
    Git(#[from] Error),
    /// Nothing (or nothing of the kind needed) at the path.
    #[error("entry not found")]
    NotFound,
    /// A file (or a submodule) is at the path, or on the way to it.
    #[error("a file exists at the path")]
    FileExists,
    /// A directory is at the path.
    #[error("a directory exists at the path")]
    DirectoryExists,
}

type EditResult<T> = std::result::Result<T, TreeEditError>;

/// A tree being edited. Start from a tree id (or none: the empty tree), edit, then
/// [`TreeEditor::write`].
pub struct TreeEditor {
    format: ObjectFormat,
    root: Dir,
}

/// A directory: its id while unchanged, and its entries once read.
struct Dir {
    /// `Some`: as read (or not read yet); `None`: changed or new, to be written.
    oid: Option<String>,
    entries: Option<BTreeMap<Vec<u8>, Entry>>,
}

struct Entry {
    mode: u32,
    oid: String,
    /// For directories on an edited path: the directory, read.
    dir: Option<Box<Dir>>,
}

impl Entry {
    fn is_tree(&self) -> bool {
        self.mode & mode::TYPE_MASK == mode::TREE
    }

    fn is_blob(&self) -> bool {
        !self.is_tree() && self.mode & mode::TYPE_MASK != mode::GITLINK
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    Read,
    Modify,
    Create,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            oid: None,
            entries: Some(BTreeMap::new()),
        }
    }

    async fn load(&mut self, cat: &mut CatFile, format: ObjectFormat) -> Result<()> {
        if self.entries.is_some() {
            return Ok(());
        }
        let oid = self.oid.clone().unwrap_or_default();
        let entries = cat.read_tree(&oid).await?.ok_or_else(|| Error::Protocol {
            subcommand: "cat-file",
            detail: format!("tree {oid} is missing"),
        })?;
        debug_assert!(entries.iter().all(|e| e.oid.len() == format.hex_len()));
        self.entries = Some(
            entries
                .into_iter()
                .map(|e| {
                    let entry = Entry {
                        mode: e.mode,
                        oid: e.oid,
                        dir: None,
                    };
                    (e.name, entry)
                })
                .collect(),
        );
        Ok(())
    }

    fn entries(&mut self) -> &mut BTreeMap<Vec<u8>, Entry> {
        self.entries.as_mut().expect("directory read before use")
    }
}

impl TreeEditor {
    /// Edit `tree` (`None`: start from the empty tree).
    pub fn new(tree: Option<String>, format: ObjectFormat) -> TreeEditor {
        let root = match tree {
            Some(oid) => Dir {
                oid: Some(oid),
                entries: None,
            },
            None => Dir::new(),
        };
        TreeEditor { format, root }
    }

    /// The directory `dirs` (read, and marked changed unless `walk` is `Read`). `Create`
    /// makes missing directories.
    async fn dir<'a>(
        &'a mut self,
        cat: &mut CatFile,
        dirs: &[&[u8]],
        walk: Walk,
    ) -> EditResult<&'a mut Dir> {
        let format = self.format;
        let mut dir = &mut self.root;
        dir.load(cat, format).await?;
        for name in dirs {
            if walk != Walk::Read {
                dir.oid = None;
            }
            let entries = dir.entries();
            if !entries.contains_key(*name) {
                if walk != Walk::Create {
                    return Err(TreeEditError::NotFound);
                }
                entries.insert(
                    name.to_vec(),
                    Entry {
                        mode: mode::TREE,
                        oid: String::new(),
                        dir: Some(Box::new(Dir::new())),
                    },
                );
            }
            let entry = entries.get_mut(*name).expect("just checked");
            if !entry.is_tree() {
                return Err(match walk {
                    Walk::Create => TreeEditError::FileExists,
                    _ => TreeEditError::NotFound,
                });
            }
            let oid = entry.oid.clone();
            dir = entry.dir.get_or_insert_with(|| {
                Box::new(Dir {
                    oid: Some(oid),
                    entries: None,
                })
            });
            dir.load(cat, format).await?;
        }
        if walk != Walk::Read {
            dir.oid = None;
        }
        Ok(dir)
    }

    /// Mode and id of the entry at `path`, if there is one (the id of a directory changed by
    /// this editor is its old one).
    pub async fn get(
        &mut self,
        cat: &mut CatFile,
        path: &[&[u8]],
    ) -> EditResult<Option<(u32, String)>> {
        let Some((name, dirs)) = path.split_last() else {
            return Ok(None);
        };
        let dir = match self.dir(cat, dirs, Walk::Read).await {
            Ok(d) => d,
            Err(TreeEditError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(dir.entries().get(*name).map(|e| (e.mode, e.oid.clone())))
    }

    /// Put a file (`mode`, `oid`) at `path`, making missing directories. A file there is
    /// [`TreeEditError::FileExists`]; a directory there is replaced if `replace_directory`,
    /// else [`TreeEditError::DirectoryExists`].
    pub async fn add(
        &mut self,
        cat: &mut CatFile,
        path: &[&[u8]],
        file_mode: u32,
        oid: &str,
        replace_directory: bool,
    ) -> EditResult<()> {
        let Some((name, dirs)) = path.split_last() else {
            return Err(TreeEditError::DirectoryExists);
        };
        let dir = self.dir(cat, dirs, Walk::Create).await?;
        if let Some(e) = dir.entries().get(*name) {
            match e.is_tree() {
                true if replace_directory => {}
                true => return Err(TreeEditError::DirectoryExists),
                false => return Err(TreeEditError::FileExists),
            }
        }
        dir.entries().insert(
            name.to_vec(),
            Entry {
                mode: file_mode,
                oid: oid.to_string(),
                dir: None,
            },
        );
        Ok(())
    }

    /// Change the file at `path` (its mode and id, given the old ones); not a file there is
    /// [`TreeEditError::NotFound`].
    pub async fn modify_file(
        &mut self,
        cat: &mut CatFile,
        path: &[&[u8]],
        change: impl FnOnce(u32, &str) -> (u32, String),
    ) -> EditResult<()> {
        let Some((name, dirs)) = path.split_last() else {
            return Err(TreeEditError::NotFound);
        };
        let dir = self.dir(cat, dirs, Walk::Modify).await?;
        match dir.entries().get_mut(*name) {
            Some(e) if e.is_blob() => {
                let (m, oid) = change(e.mode, &e.oid);
                e.mode = m;
                e.oid = oid;
                Ok(())
            }
            _ => Err(TreeEditError::NotFound),
        }
    }

    /// Remove the file or directory at `path`; directories emptied by it go too (never the
    /// root).
    pub async fn delete(&mut self, cat: &mut CatFile, path: &[&[u8]]) -> EditResult<()> {
        let Some((name, dirs)) = path.split_last() else {
            return Err(TreeEditError::NotFound);
        };
        let dir = self.dir(cat, dirs, Walk::Modify).await?;
        if !dir.entries().contains_key(*name) {
            return Err(TreeEditError::NotFound);
        }
        remove(&mut self.root, path);
        Ok(())
    }

    /// Write the changed trees (bottom-up) and return the root tree's id.
    pub async fn write(mut self, mktree: &mut Mktree) -> Result<String> {
        write_dir(&mut self.root, mktree).await
    }
}

/// Remove `path` below `dir` (every directory on it read), and the directories it empties.
fn remove(dir: &mut Dir, path: &[&[u8]]) {
    let entries = dir.entries();
    match path {
        [] => {}
        [name] => {
            entries.remove(*name);
        }
        [name, rest @ ..] => {
            let Some(child) = entries.get_mut(*name).and_then(|e| e.dir.as_mut()) else {
                return;
            };
            remove(child, rest);
            if child.entries().is_empty() {
                entries.remove(*name);
            }
        }
    }
}

fn write_dir<'a>(
    dir: &'a mut Dir,
    mktree: &'a mut Mktree,
) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>> {
    Box::pin(async move {
        if let Some(oid) = &dir.oid {
            return Ok(oid.clone());
        }
        let entries = dir.entries();
        for e in entries.values_mut() {
            if let Some(sub) = e.dir.as_mut() {
                e.oid = write_dir(sub, mktree).await?;
            }
        }
        let oid = mktree
            .tree(entries.iter().map(|(n, e)| (e.mode, &e.oid[..], &n[..])))
            .await?;
        dir.oid = Some(oid.clone());
        Ok(oid)
    })
}

/// One `git mktree -z --batch`: trees in, their ids out, one at a time. Entries are checked
/// by git (the objects must exist; submodule commits are not checked).
pub struct Mktree {
    process: Option<Process>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Mktree {
    /// Start `cmd`, an `mktree` command of the caller's making (its repository and
    /// environment, e.g. a quarantine's); `-z --batch` is added.
    pub fn start(git: &Git, cmd: Command) -> Result<Mktree> {
        if cmd.subcommand() != Subcommand::Mktree {
            return Err(Error::invalid("Mktree runs git mktree"));
        }
        let mut process = git.spawn(&cmd.flag("-z").flag("--batch").stdin())?;
        let stdin = process.take_stdin().expect("piped stdin");
        let stdout = BufReader::new(process.take_stdout().expect("piped stdout"));
        Ok(Mktree {
            process: Some(process),
            stdin,
            stdout,
        })
    }

    /// Write one tree of `(mode, oid, name)` entries; returns its id.
    pub async fn tree<'e>(
        &mut self,
        entries: impl Iterator<Item = (u32, &'e str, &'e [u8])>,
    ) -> Result<String> {
        let mut input = Vec::new();
        for (m, oid, name) in entries {
            let kind = match m & mode::TYPE_MASK {
                mode::TREE => "tree",
                mode::GITLINK => "commit",
                _ => "blob",
            };
            input.extend_from_slice(format!("{m:06o} {kind} {oid}\t").as_bytes());
            input.extend_from_slice(name);
            input.push(0);
        }
        input.push(0);
        let io = |source| Error::Io {
            subcommand: "mktree",
            source,
        };
        let mut line = String::new();
        let sent = match self.stdin.write_all(&input).await {
            Ok(()) => self.stdin.flush().await,
            Err(e) => Err(e),
        };
        if sent.is_ok() {
            self.stdout.read_line(&mut line).await.map_err(io)?;
        }
        let oid = line.trim_end();
        if !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(oid.to_string());
        }
        // git refused the tree (a missing object, say) and exited: its stderr says why.
        match self.process.take() {
            Some(p) => match p.wait().await {
                Err(e) => Err(e),
                Ok(()) => Err(Error::Protocol {
                    subcommand: "mktree",
                    detail: format!("unexpected answer {line:?}"),
                }),
            },
            None => Err(Error::Protocol {
                subcommand: "mktree",
                detail: "already ended".into(),
            }),
        }
    }

    /// Close git's input and wait for it.
    pub async fn finish(mut self) -> Result<()> {
        drop(self.stdin);
        match self.process.take() {
            Some(p) => p.wait().await,
            None => Ok(()),
        }
    }
}
