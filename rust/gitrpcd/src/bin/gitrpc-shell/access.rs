//! The access check gitrpc-shell asks before any git runs: the application's executable
//! (`access_command`) or HTTP endpoint (`access_url`). Everything fails closed: an answer
//! that can't be read, a timeout, a crash or an unreachable endpoint refuses.
//!
//! `access_command` runs as `CMD KEY_ID ACTION STORAGE RELATIVE_PATH` (environment:
//! `PATH`, `GITRPC_REMOTE_IP`, `GITRPC_PROTOCOL=ssh`, `GIT_PROTOCOL` if the client sent
//! one). Exit 0 allows; its stdout, if any, is the JSON answer below. Any other exit refuses,
//! with its stdout and stderr as the message.
//!
//! `access_url` gets a JSON POST — `key_id`, `action`, `storage`, `relative_path`,
//! `protocol` (`ssh`), `git_protocol`, `remote_ip`, and GitLab's names for the same things
//! (`project`: the path as typed, `changes`: `_any`, `check_ip`) so a GitLab-like handler can
//! serve it — and answers 2xx with the JSON below (`allowed` required); any other status
//! refuses, with the body's `message` if it has one.
//!
//! The answer: `{"allowed": true, "message": "…", "user": {"gl_id", "username", "name",
//! "email"}, "gl_repository": "project-1", "repository": {"storage_name", "relative_path"},
//! "messages": ["…"]}`, every field optional; GitLab's spellings are accepted too (`status`,
//! top-level `gl_id`/`gl_username`, `gl_console_messages`, `gitaly.repository`). A
//! `repository` moves the session to that storage and path (an application that keeps
//! repositories under other names than their URLs, as GitLab's hashed storage).

use std::path::Path;

use gitrpc_client::sshcmd::Action;
use gitrpc_git::external::Program;
use serde::Deserialize;

use crate::config::Config;

/// Longest message passed on to the user.
const MAX_MESSAGE: usize = 4096;

/// What is being asked for.
#[derive(Clone, Debug)]
pub struct Ask<'a> {
    pub key_id: &'a str,
    pub action: Action,
    pub storage: &'a str,
    pub relative_path: &'a str,
    /// The path as the user typed it.
    pub project: &'a str,
    pub remote_ip: &'a str,
    pub git_protocol: &'a str,
}

/// An allowed session: who the user is, and what to tell them first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    pub gl_id: String,
    pub username: String,
    pub gl_repository: String,
    /// Where the repository really is, if the application says so.
    pub repository: Option<(String, String)>,
    /// Printed as `remote:` lines before git runs.
    pub messages: Vec<String>,
}

/// The user's identity in an answer.
#[derive(Clone, Debug, Default, Deserialize)]
struct User {
    #[serde(default, deserialize_with = "text")]
    gl_id: String,
    #[serde(default, deserialize_with = "text")]
    username: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Repo {
    storage_name: String,
    relative_path: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Gitaly {
    repository: Option<Repo>,
}

/// An answer, in our spelling or GitLab's.
#[derive(Clone, Debug, Default, Deserialize)]
struct Answer {
    allowed: Option<bool>,
    status: Option<bool>,
    message: Option<String>,
    user: Option<User>,
    #[serde(default, deserialize_with = "text")]
    gl_id: String,
    #[serde(default, deserialize_with = "text")]
    gl_username: String,
    #[serde(default, deserialize_with = "text")]
    gl_repository: String,
    repository: Option<Repo>,
    gitaly: Option<Gitaly>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    gl_console_messages: Vec<String>,
}

/// A string, or a number written as one (GitLab sends some ids as numbers).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(i64),
        Null(()),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::N(n) => n.to_string(),
        Raw::Null(()) => String::new(),
    })
}

impl Answer {
    fn decision(&self) -> Option<bool> {
        self.allowed.or(self.status)
    }

    fn grant(self) -> Grant {
        let user = self.user.unwrap_or_default();
        let pick = |a: String, b: String| if a.is_empty() { b } else { a };
        let repository = self
            .repository
            .or(self.gitaly.and_then(|g| g.repository))
            .filter(|r| !r.storage_name.is_empty() && !r.relative_path.is_empty())
            .map(|r| (r.storage_name, r.relative_path));
        let mut messages = self.messages;
        messages.extend(self.gl_console_messages);
        Grant {
            gl_id: pick(user.gl_id, self.gl_id),
            username: pick(user.username, self.gl_username),
            gl_repository: self.gl_repository,
            repository,
            messages,
        }
    }
}

/// Ask the configured check. `Err`: the message for the user.
pub async fn check(config: &Config, ask: &Ask<'_>) -> Result<Grant, String> {
    let work = async {
        match (&config.access_command, &config.access_url) {
            (Some(cmd), _) => by_command(cmd, config, ask).await,
            (None, Some(url)) => by_url(url, config, ask).await,
            (None, None) => Err("no access check configured".to_string()),
        }
    };
    match tokio::time::timeout(config.timeout(), work).await {
        Ok(r) => r,
        Err(_) => Err("access check failed: no answer in time".into()),
    }
}

async fn by_command(cmd: &Path, config: &Config, ask: &Ask<'_>) -> Result<Grant, String> {
    let mut program = Program::new(cmd)
        .map_err(|e| format!("access check failed: {e}"))?
        .arg(ask.key_id)
        .arg(ask.action.as_str())
        .arg(ask.storage)
        .arg(ask.relative_path)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("GITRPC_REMOTE_IP", ask.remote_ip)
        .env("GITRPC_PROTOCOL", "ssh")
        .timeout(config.timeout());
    if !ask.git_protocol.is_empty() {
        program = program.env("GIT_PROTOCOL", ask.git_protocol);
    }
    let out = program
        .run()
        .await
        .map_err(|e| format!("access check failed: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let mut msg = stdout.trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(stderr.trim());
        }
        return Err(capped(if msg.is_empty() {
            "access denied".into()
        } else {
            msg
        }));
    }
    if stdout.trim().is_empty() {
        return Ok(Grant::default());
    }
    let answer: Answer = serde_json::from_str(&stdout)
        .map_err(|_| "access check returned invalid JSON".to_string())?;
    if answer.decision() == Some(false) {
        return Err(refusal(answer.message));
    }
    Ok(answer.grant())
}

async fn by_url(url: &str, config: &Config, ask: &Ask<'_>) -> Result<Grant, String> {
    let target = crate::http::Target::parse(url).map_err(|e| format!("access_url: {e}"))?;
    let body = serde_json::json!({
        "key_id": ask.key_id,
        "action": ask.action.as_str(),
        "storage": ask.storage,
        "relative_path": ask.relative_path,
        "repository": ask.relative_path,
        "protocol": "ssh",
        "git_protocol": ask.git_protocol,
        "remote_ip": ask.remote_ip,
        "project": ask.project,
        "changes": "_any",
        "check_ip": ask.remote_ip,
    });
    let token = config.access_token()?;
    let resp = crate::http::request(
        &target,
        http::Method::POST,
        Some(body.to_string().into_bytes()),
        token.as_deref(),
    )
    .await
    .map_err(|e| format!("access check failed: {e}"))?;
    let answer: Option<Answer> = serde_json::from_slice(&resp.body).ok();
    if !(200..300).contains(&resp.status) {
        let msg = answer.and_then(|a| a.message).filter(|m| !m.is_empty());
        return Err(capped(msg.unwrap_or_else(|| {
            format!("access check failed (HTTP {})", resp.status)
        })));
    }
    let answer = answer.ok_or("access check returned invalid JSON")?;
    match answer.decision() {
        Some(true) => Ok(answer.grant()),
        Some(false) => Err(refusal(answer.message)),
        None => Err("access check answered without a decision".into()),
    }
}

fn refusal(message: Option<String>) -> String {
    capped(
        message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "access denied".into()),
    )
}

fn capped(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(json: &str) -> Grant {
        serde_json::from_str::<Answer>(json).unwrap().grant()
    }

    #[test]
    fn answers_in_both_spellings() {
        let g = grant(
            r#"{"allowed": true, "user": {"gl_id": "user-7", "username": "alice", "name": "A", "email": "a@x"},
                "gl_repository": "project-1", "messages": ["hi"]}"#,
        );
        assert_eq!(
            (
                g.gl_id.as_str(),
                g.username.as_str(),
                g.gl_repository.as_str()
            ),
            ("user-7", "alice", "project-1")
        );
        assert_eq!(g.messages, ["hi"]);
        // GitLab's /internal/allowed answer.
        let a: Answer = serde_json::from_str(
            r#"{"status": true, "gl_id": "user-1", "gl_username": "root", "gl_repository": "project-26",
                "gl_key_id": 3, "gl_console_messages": ["note"],
                "gitaly": {"repository": {"storage_name": "default", "relative_path": "@hashed/ab/cd.git"},
                           "address": "unix:/x", "token": ""}}"#,
        )
        .unwrap();
        assert_eq!(a.decision(), Some(true));
        let g = a.grant();
        assert_eq!((g.gl_id.as_str(), g.username.as_str()), ("user-1", "root"));
        assert_eq!(
            g.repository,
            Some(("default".into(), "@hashed/ab/cd.git".into()))
        );
        assert_eq!(g.messages, ["note"]);
        assert_eq!(grant(r#"{"user": {"gl_id": 7}}"#).gl_id, "7");
        assert_eq!(
            serde_json::from_str::<Answer>("{}").unwrap().decision(),
            None
        );
    }

    #[test]
    fn messages_are_capped() {
        assert_eq!(capped("é".repeat(3000)).len(), MAX_MESSAGE);
        assert_eq!(refusal(Some("  ".into())), "access denied");
        assert_eq!(refusal(Some("no".into())), "no");
    }
}
