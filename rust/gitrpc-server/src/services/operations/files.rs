//! UserCommitFiles' file actions: paths checked and cleaned (Gitaly's `validatePath`, and
//! no `.git` component anywhere), content decoded, and the actions applied in order to a
//! tree with Gitaly's semantics (`applyAction`): what exists where decides between
//! `FILE_EXISTS`, `DIRECTORY_EXISTS` and `FILE_NOT_FOUND`.

use base64::Engine;
use gitrpc_git::objects::mode;
use gitrpc_git::tree_edit::{TreeEditError, TreeEditor};
use gitrpc_git::CatFile;
use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType;
use gitrpc_proto::gitaly::{
    index_error, user_commit_files_error, IndexError, UserCommitFilesActionHeader,
    UserCommitFilesError,
};
use tonic::Code;

use crate::error::{detailed, Error, Result};

/// What an action does, with its checked paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Create {
        executable: bool,
    },
    CreateDir,
    Update,
    /// From `from` (cleaned); `infer`: keep its content.
    Move {
        from: Vec<u8>,
        infer: bool,
    },
    Delete,
    Chmod {
        executable: bool,
    },
}

/// One action, checked: its cleaned path and its decoded content.
#[derive(Clone, Debug)]
pub struct Action {
    pub kind: Kind,
    pub path: Vec<u8>,
    pub content: Vec<u8>,
}

/// Gitaly's index errors: message, code, and the `index_update` detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFailure {
    pub path: Vec<u8>,
    pub kind: index_error::ErrorType,
    /// Set for `.git` paths, which Gitaly words differently.
    message: Option<String>,
}

impl IndexFailure {
    fn new(kind: index_error::ErrorType, path: &[u8]) -> IndexFailure {
        IndexFailure {
            path: path.to_vec(),
            kind,
            message: None,
        }
    }

    pub fn message(&self) -> String {
        use index_error::ErrorType as T;
        if let Some(m) = &self.message {
            return m.clone();
        }
        match self.kind {
            T::DirectoryExists => "A directory with this name already exists".into(),
            T::DirectoryTraversal => "Path cannot include directory traversal".into(),
            T::EmptyPath => "You must provide a file path".into(),
            T::FileExists => "A file with this name already exists".into(),
            T::FileNotFound => "A file with this name doesn't exist".into(),
            T::InvalidPath | T::Unspecified => {
                format!("invalid path: {:?}", String::from_utf8_lossy(&self.path))
            }
        }
    }

    pub fn into_error(self) -> Error {
        use index_error::ErrorType as T;
        let code = match self.kind {
            T::DirectoryExists | T::FileExists => Code::AlreadyExists,
            T::FileNotFound => Code::NotFound,
            _ => Code::InvalidArgument,
        };
        detailed(
            code,
            self.message(),
            "UserCommitFilesError",
            &UserCommitFilesError {
                error: Some(user_commit_files_error::Error::IndexUpdate(IndexError {
                    path: self.path,
                    error_type: self.kind as i32,
                })),
            },
        )
    }
}

/// A path of an action, cleaned like Gitaly's `validatePath` (`/a` and `a/./b` are plain
/// paths, `a/../b` is `b`, leaving the root is traversal, `//` is invalid) and refused if any
/// component is `.git` (any case: git would refuse such a tree) or holds NUL.
pub fn clean_path(raw: &[u8]) -> Result<Vec<u8>, IndexFailure> {
    use index_error::ErrorType as T;
    if raw.is_empty() {
        return Err(IndexFailure::new(T::EmptyPath, b""));
    }
    if raw.windows(2).any(|w| w == b"//") || raw.contains(&0) || raw.len() > 4096 {
        return Err(IndexFailure::new(T::InvalidPath, raw));
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(IndexFailure::new(T::DirectoryTraversal, raw));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(IndexFailure::new(T::EmptyPath, b""));
    }
    let path = parts.join(&b'/');
    if parts.iter().any(|c| c.eq_ignore_ascii_case(b".git")) {
        return Err(IndexFailure {
            message: Some(format!(
                "invalid path: '{}'",
                String::from_utf8_lossy(&path)
            )),
            ..IndexFailure::new(T::InvalidPath, &path)
        });
    }
    Ok(path)
}

/// Check an action's header and decode its content.
pub fn check(header: &UserCommitFilesActionHeader, content: Vec<u8>) -> Result<Action> {
    let action = ActionType::try_from(header.action).map_err(|_| {
        Error::invalid(format!(
            "NoMethodError: undefined method `downcase' for {}:Integer",
            header.action
        ))
    })?;
    let path = clean_path(&header.file_path).map_err(IndexFailure::into_error)?;
    let content = if header.base64_content {
        // As Go's decoder: line breaks are ignored (Ruby's `Base64.encode64` adds them).
        let compact: Vec<u8> = content
            .into_iter()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|_| {
                Error::invalid(format!(
                    "invalid base64 content for {:?}",
                    String::from_utf8_lossy(&path)
                ))
            })?
    } else {
        content
    };
    let kind = match action {
        ActionType::Create => Kind::Create {
            executable: header.execute_filemode,
        },
        ActionType::CreateDir => Kind::CreateDir,
        ActionType::Update => Kind::Update,
        ActionType::Move => Kind::Move {
            from: clean_path(&header.previous_path).map_err(IndexFailure::into_error)?,
            infer: header.infer_content,
        },
        ActionType::Delete => Kind::Delete,
        ActionType::Chmod => Kind::Chmod {
            executable: header.execute_filemode,
        },
    };
    Ok(Action {
        kind,
        path,
        content,
    })
}

/// Does the action need its content written as a blob (`CREATE_DIR`: an empty `.gitkeep`)?
pub fn needs_blob(a: &Action) -> bool {
    match &a.kind {
        Kind::Create { .. } | Kind::Update | Kind::CreateDir => true,
        Kind::Move { infer, .. } => !infer,
        Kind::Delete | Kind::Chmod { .. } => false,
    }
}

fn components(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&b| b == b'/').collect()
}

/// Apply `a` to the tree; `blob` is its content's id where [`needs_blob`].
pub async fn apply(
    tree: &mut TreeEditor,
    cat: &mut CatFile,
    a: &Action,
    blob: Option<&str>,
) -> Result<()> {
    use index_error::ErrorType as T;
    let path = components(&a.path);
    let fail = |kind: T, p: &[u8]| Err(IndexFailure::new(kind, p).into_error());
    let translate = |e: TreeEditError, p: &[u8]| -> Error {
        let kind = match e {
            TreeEditError::Git(e) => return e.into(),
            TreeEditError::NotFound => T::FileNotFound,
            TreeEditError::FileExists => T::FileExists,
            TreeEditError::DirectoryExists => T::DirectoryExists,
        };
        IndexFailure::new(kind, p).into_error()
    };
    let blob = blob.unwrap_or_default();
    match &a.kind {
        Kind::Create { executable } => {
            let m = if *executable {
                mode::EXECUTABLE
            } else {
                mode::BLOB
            };
            tree.add(cat, &path, m, blob, true)
                .await
                .map_err(|e| translate(e, &a.path))
        }
        Kind::Update => tree
            .modify_file(cat, &path, |m, _| (m, blob.to_string()))
            .await
            .map_err(|e| translate(e, &a.path)),
        Kind::Chmod { executable } => tree
            .modify_file(cat, &path, |m, oid| {
                let m = match (*executable, m) {
                    (true, _) => mode::EXECUTABLE,
                    (false, mode::EXECUTABLE) => mode::BLOB,
                    (false, m) => m,
                };
                (m, oid.to_string())
            })
            .await
            .map_err(|e| translate(e, &a.path)),
        Kind::Delete => tree
            .delete(cat, &path)
            .await
            .map_err(|e| translate(e, &a.path)),
        Kind::Move { from, infer } => {
            let src = components(from);
            let (m, oid) = match tree.get(cat, &src).await.map_err(|e| translate(e, from))? {
                Some((m, oid)) if m & mode::TYPE_MASK != mode::TREE && m != mode::GITLINK => {
                    (m, oid)
                }
                _ => return fail(T::FileNotFound, from),
            };
            let oid = if *infer { oid } else { blob.to_string() };
            tree.delete(cat, &src)
                .await
                .map_err(|e| translate(e, from))?;
            tree.add(cat, &path, m, &oid, true)
                .await
                .map_err(|e| translate(e, &a.path))
        }
        Kind::CreateDir => {
            match tree
                .get(cat, &path)
                .await
                .map_err(|e| translate(e, &a.path))?
            {
                Some((m, _)) if m & mode::TYPE_MASK == mode::TREE || m == mode::GITLINK => {
                    return fail(T::DirectoryExists, &a.path)
                }
                Some(_) => return fail(T::FileExists, &a.path),
                None => {}
            }
            let mut keep = path.clone();
            keep.push(b".gitkeep");
            tree.add(cat, &keep, mode::BLOB, blob, false)
                .await
                .map_err(|e| match e {
                    TreeEditError::DirectoryExists => {
                        IndexFailure::new(T::DirectoryExists, &a.path).into_error()
                    }
                    e => translate(e, &a.path),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use index_error::ErrorType as T;

    #[test]
    fn paths_as_gitaly_cleans_them() {
        let ok = |p: &str| String::from_utf8(clean_path(p.as_bytes()).unwrap()).unwrap();
        assert_eq!(ok("/file-1"), "file-1");
        assert_eq!(ok("a/./b"), "a/b");
        assert_eq!(ok("a/../b"), "b");
        assert_eq!(ok("dir/"), "dir");
        let kind = |p: &str| clean_path(p.as_bytes()).unwrap_err().kind;
        assert_eq!(kind(""), T::EmptyPath);
        assert_eq!(kind("."), T::EmptyPath);
        assert_eq!(kind("../x"), T::DirectoryTraversal);
        assert_eq!(kind("a/../../x"), T::DirectoryTraversal);
        assert_eq!(kind("a//b"), T::InvalidPath);
        assert_eq!(kind("a\0b"), T::InvalidPath);
        for git in [".git/config", ".GIT/config", "a/.git/x", "a/.Git"] {
            let e = clean_path(git.as_bytes()).unwrap_err();
            assert_eq!(e.kind, T::InvalidPath, "{git}");
            assert!(e.message().starts_with("invalid path: '"), "{git}");
        }
        assert_eq!(
            clean_path(b"a//b").unwrap_err().message(),
            "invalid path: \"a//b\""
        );
        assert_eq!(
            clean_path(b"../x").unwrap_err().message(),
            "Path cannot include directory traversal"
        );
        assert_eq!(ok("a/.gitkeep"), "a/.gitkeep");
    }
}
