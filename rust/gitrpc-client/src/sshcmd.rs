//! What git asked an SSH server to run: the command line sshd hands a forced command in
//! `SSH_ORIGINAL_COMMAND` (and git hands `GIT_SSH_COMMAND` as its last argument), e.g.
//! `git-upload-pack '/group/project.git'`. gitlab-shell's rules, stricter:
//!
//! - Words are split as a POSIX shell would, but nothing is expanded and nothing is run:
//!   `'…'` is literal, `"…"` allows `\\ \" \$ \``, a backslash outside quotes makes the next
//!   character literal (git quotes `'` as `'\''` and `!` as `'\!'`). An unquoted shell
//!   metacharacter (`; | & < > $ \` ( ) * ? [ ] { } #`, or `~` other than at a word's start)
//!   is refused: a command that needs a shell is not one git sends. Control characters (NUL,
//!   newlines) are refused.
//! - `git upload-pack …` (Git for Windows' spelling) is `git-upload-pack …`.
//! - The command is one of [`Action`] and exactly one path word follows, which must not
//!   start with `-`: `--upload-pack=…` and any other extra argument is refused.
//! - No command at all is an interactive login ([`CommandError::Interactive`]).

/// A git service a front door relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    UploadPack,
    ReceivePack,
    UploadArchive,
}

impl Action {
    /// The command's name, which is also the access check's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::UploadPack => "git-upload-pack",
            Action::ReceivePack => "git-receive-pack",
            Action::UploadArchive => "git-upload-archive",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        match name {
            "git-upload-pack" => Some(Action::UploadPack),
            "git-receive-pack" => Some(Action::ReceivePack),
            "git-upload-archive" => Some(Action::UploadArchive),
            _ => None,
        }
    }

    /// Does it change the repository?
    pub fn writes(self) -> bool {
        self == Action::ReceivePack
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed command: the service and its path word, unquoted but not yet normalised (see
/// [`crate::paths::normalize`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshCommand {
    pub action: Action,
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No command: someone ran `ssh host`.
    #[error("interactive shells are not allowed")]
    Interactive,
    /// The text can't be split into words.
    #[error("invalid SSH command: {0}")]
    Invalid(&'static str),
    /// Words, but not a command we run.
    #[error("disallowed command")]
    Disallowed,
}

/// Unquoted characters that mean something to a shell.
const META: &[char] = &[
    ';', '|', '&', '<', '>', '$', '`', '(', ')', '*', '?', '[', ']', '{', '}', '#',
];

/// Parse a command line (see the module docs).
pub fn parse(command: &str) -> Result<SshCommand, CommandError> {
    let mut words = split(command)?;
    if words.is_empty() {
        return Err(CommandError::Interactive);
    }
    if words.len() >= 2 && words[0] == "git" {
        let sub = words.remove(1);
        words[0] = format!("git-{sub}");
    }
    let action = Action::from_name(&words[0]).ok_or(CommandError::Disallowed)?;
    match words.as_slice() {
        [_, path] if !path.is_empty() && !path.starts_with('-') => Ok(SshCommand {
            action,
            path: path.clone(),
        }),
        _ => Err(CommandError::Disallowed),
    }
}

/// Split into words (see the module docs); no words for an empty or blank command.
pub fn split(command: &str) -> Result<Vec<String>, CommandError> {
    if command
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(CommandError::Invalid("control character"));
    }
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(CommandError::Invalid("unterminated quote")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('\\' | '"' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(CommandError::Invalid("unterminated quote")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(CommandError::Invalid("unterminated quote")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(CommandError::Invalid("trailing backslash")),
            },
            '~' if word.is_none() => word = Some("~".to_string()),
            c if c == '~' || META.contains(&c) => return Err(CommandError::Disallowed),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn ok(cmd: &str) -> (Action, String) {
        let c = parse(cmd).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        (c.action, c.path)
    }

    #[test]
    fn what_git_sends() {
        // Observed with OpenSSH 9.2 + git 2.47 (docs/step12 notes, table 1.5).
        let rows: &[(&str, Action, &str)] = &[
            ("git-upload-pack '/tmp/x/r.git'", UploadPack, "/tmp/x/r.git"),
            ("git-upload-pack '/a b/c.git'", UploadPack, "/a b/c.git"),
            ("git-upload-pack 'tmp/x/r.git'", UploadPack, "tmp/x/r.git"),
            ("git-upload-pack '~/../x'", UploadPack, "~/../x"),
            (
                r"git-upload-pack '~/x'\''y'\!'z.git'",
                UploadPack,
                "~/x'y!z.git",
            ),
            ("git-receive-pack '/g/p.git'", ReceivePack, "/g/p.git"),
            ("git-upload-archive '/g/p.git'", UploadArchive, "/g/p.git"),
            // Git for Windows' spelling, and hand-typed forms.
            ("git upload-pack '/g/p.git'", UploadPack, "/g/p.git"),
            ("git-upload-pack g/p", UploadPack, "g/p"),
            ("git-upload-pack ~/g/p.git", UploadPack, "~/g/p.git"),
            (
                "git-upload-pack \"g/\\$p\\\\.git\"",
                UploadPack,
                "g/$p\\.git",
            ),
            ("  git-upload-pack\t'g/p'  ", UploadPack, "g/p"),
            ("git-upload-pack g\\ p.git", UploadPack, "g p.git"),
        ];
        for (cmd, action, path) in rows {
            assert_eq!(ok(cmd), (*action, path.to_string()), "{cmd:?}");
        }
    }

    #[test]
    fn refusals() {
        use CommandError::*;
        let rows: &[(&str, CommandError)] = &[
            ("", Interactive),
            ("   ", Interactive),
            ("ls", Disallowed),
            ("bash -i", Disallowed),
            ("git-upload-pack", Disallowed),
            ("git-upload-pack 'a' 'b'", Disallowed),
            ("git-upload-pack --upload-pack=touch\\ /x 'a'", Disallowed),
            ("git upload-pack --help", Disallowed),
            ("git-upload-pack --stateless-rpc p", Disallowed),
            ("git-upload-pack '-p'", Disallowed),
            ("git-upload-pack ''", Disallowed),
            ("git-upload-pack 'a'; rm -rf /", Disallowed),
            ("git-upload-pack a|b", Disallowed),
            ("git-upload-pack $(id)", Disallowed),
            ("git-upload-pack `id`", Disallowed),
            ("git-upload-pack a/~b", Disallowed),
            ("git-upload-pack a*", Disallowed),
            ("git-upload-pack 'a' # x", Disallowed),
            ("git-shell -c x", Disallowed),
            ("git", Disallowed),
            ("git-lfs-authenticate 'g/p' download", Disallowed),
            ("git-upload-pack 'a", Invalid("unterminated quote")),
            ("git-upload-pack \"a", Invalid("unterminated quote")),
            ("git-upload-pack a\\", Invalid("trailing backslash")),
            ("git-upload-pack 'a\0b'", Invalid("control character")),
            ("git-upload-pack 'a'\nls", Invalid("control character")),
            ("git-upload-pack 'a\rb'", Invalid("control character")),
        ];
        for (cmd, err) in rows {
            assert_eq!(parse(cmd), Err(err.clone()), "{cmd:?}");
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            CommandError::Invalid("unterminated quote").to_string(),
            "invalid SSH command: unterminated quote"
        );
        assert_eq!(CommandError::Disallowed.to_string(), "disallowed command");
        assert_eq!(UploadPack.to_string(), "git-upload-pack");
        assert!(ReceivePack.writes() && !UploadPack.writes());
    }
}
