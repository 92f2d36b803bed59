//! `gitrpc-shell authorized-keys USER TYPE KEY`: sshd's `AuthorizedKeysCommand` (`%u %t
//! %k`). Asks the application which key id a public key has (`keys_command` run as `CMD
//! TYPE KEY`, exit 0 with `{"key_id": "key-42"}`; or `keys_url`, `GET ?type=TYPE&key=KEY`,
//! 200 with the same, 404 for an unknown key) and prints the one `authorized_keys` line that
//! makes sshd run this shell for it. A login user other than `allowed_user` gets nothing; an
//! unknown key gets a comment line (sshd finds no key in it); both exit 0, as gitlab-shell's
//! `gitlab-shell-authorized-keys-check`.

use std::path::Path;

use gitrpc_git::external::Program;
use serde::Deserialize;

use crate::config::Config;

#[derive(Deserialize)]
struct Found {
    key_id: String,
}

/// The lines to print for `user`'s key `kind key`.
pub async fn lines(
    config: &Config,
    config_path: &Path,
    exe: &Path,
    user: &str,
    kind: &str,
    key: &str,
) -> Result<String, String> {
    if user != config.allowed_user {
        return Ok(String::new());
    }
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=@.-_".contains(&b))
    };
    if !plain(kind) || !plain(key) {
        return Ok(format!("# No key was found for {}\n", sanitized(kind)));
    }
    let found = match tokio::time::timeout(config.timeout(), lookup(config, kind, key)).await {
        Ok(r) => r?,
        Err(_) => return Err("key lookup: no answer in time".into()),
    };
    match found {
        Some(id) if crate::valid_key_id(&id) => Ok(format!(
            "command=\"{} --config {} {id}\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty {kind} {key}\n",
            exe.display(),
            config_path.display()
        )),
        Some(_) | None => Ok(format!("# No key was found for {kind}\n")),
    }
}

fn sanitized(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

/// The key id the application has for this key; `None` if it has none.
async fn lookup(config: &Config, kind: &str, key: &str) -> Result<Option<String>, String> {
    if let Some(cmd) = &config.keys_command {
        let out = Program::new(cmd)
            .map_err(|e| format!("key lookup: {e}"))?
            .arg(kind)
            .arg(key)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .timeout(config.timeout())
            .run()
            .await
            .map_err(|e| format!("key lookup: {e}"))?;
        if !out.status.success() {
            return Ok(None);
        }
        return serde_json::from_slice::<Found>(&out.stdout)
            .map(|f| Some(f.key_id))
            .map_err(|_| "key lookup returned invalid JSON".into());
    }
    let Some(url) = &config.keys_url else {
        return Err("authorized-keys: set keys_command or keys_url".into());
    };
    let target = crate::http::Target::parse(url)
        .map_err(|e| format!("keys_url: {e}"))?
        .with_query(&format!("type={}&key={}", escape(kind), escape(key)));
    let token = config.access_token()?;
    let resp = crate::http::request(&target, http::Method::GET, None, token.as_deref())
        .await
        .map_err(|e| format!("key lookup: {e}"))?;
    match resp.status {
        200 => serde_json::from_slice::<Found>(&resp.body)
            .map(|f| Some(f.key_id))
            .map_err(|_| "key lookup returned invalid JSON".into()),
        404 => Ok(None),
        s => Err(format!("key lookup failed (HTTP {s})")),
    }
}

/// Percent-encode a query value (keys are base64: `+`, `/` and `=` need it).
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_base64() {
        assert_eq!(escape("AAAA+b/c="), "AAAA%2Bb%2Fc%3D");
    }
}
