//! gitrpc-shell's TOML config (`--config FILE` or `$GITRPC_SHELL_CONFIG`), checked whole
//! at start: a shell that can't check access must not run git.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gitrpc_client::paths::Storages;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gitrpcd's address(es), as clients take them (`unix:/…`, `tcp://`, `tls://`, a
    /// comma-separated list).
    pub address: String,
    /// The server's `[auth]` secret.
    pub token_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) for `tls://` addresses.
    pub tls_ca_file: Option<PathBuf>,
    /// Storage of paths no `[storage_prefixes]` entry matches (unset: those are refused).
    pub default_storage: Option<String>,
    /// Path prefix → storage (`"shard2/" = "shard-2"`; the prefix is stripped).
    #[serde(default)]
    pub storage_prefixes: BTreeMap<String, String>,
    /// The access check as an executable: `CMD KEY_ID ACTION STORAGE RELATIVE_PATH`.
    pub access_command: Option<PathBuf>,
    /// The access check as an HTTP endpoint (`http://host:port/path` or
    /// `unix:/path/to.sock:/path`): a JSON POST.
    pub access_url: Option<String>,
    /// A secret sent to `access_url`/`keys_url` as `Authorization: Bearer …`.
    pub access_token_file: Option<PathBuf>,
    /// Seconds the access check (or key lookup) may take.
    #[serde(default = "default_timeout")]
    pub access_timeout: f64,
    /// `authorized-keys` mode: the only login user keys are looked up for.
    #[serde(default = "default_user")]
    pub allowed_user: String,
    /// `authorized-keys` mode: the key lookup as an executable (`CMD TYPE KEY`).
    pub keys_command: Option<PathBuf>,
    /// `authorized-keys` mode: the key lookup as `GET <url>?type=TYPE&key=KEY`.
    pub keys_url: Option<String>,
    /// Fetch over a sidechannel when the server offers one (as gitlab-shell).
    #[serde(default = "yes")]
    pub sidechannel: bool,
}

fn default_timeout() -> f64 {
    30.0
}

fn default_user() -> String {
    "git".to_string()
}

fn yes() -> bool {
    true
}

impl Config {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("config {}: {e}", path.display()))?;
        let config: Config =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        config
            .check()
            .map_err(|e| format!("config {}: {e}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        gitrpc_client::Address::parse(self.address.split(',').next().unwrap_or_default())
            .map_err(|e| format!("address: {e}"))?;
        match (&self.access_command, &self.access_url) {
            (None, None) => {
                return Err("no access check configured: set access_command or access_url".into())
            }
            (Some(_), Some(_)) => {
                return Err("access_command and access_url: set one, not both".into())
            }
            (Some(cmd), None) if !cmd.is_absolute() => {
                return Err(format!(
                    "access_command must be an absolute path: {}",
                    cmd.display()
                ))
            }
            (None, Some(url)) => {
                crate::http::Target::parse(url).map_err(|e| format!("access_url: {e}"))?;
            }
            _ => {}
        }
        if let Some(cmd) = self.keys_command.as_ref().filter(|c| !c.is_absolute()) {
            return Err(format!(
                "keys_command must be an absolute path: {}",
                cmd.display()
            ));
        }
        if let Some(url) = &self.keys_url {
            crate::http::Target::parse(url).map_err(|e| format!("keys_url: {e}"))?;
        }
        if !(self.access_timeout.is_finite() && self.access_timeout > 0.0) {
            return Err("access_timeout must be a positive number of seconds".into());
        }
        if self.default_storage.is_none() && self.storage_prefixes.is_empty() {
            return Err("no storage: set default_storage and/or [storage_prefixes]".into());
        }
        Ok(())
    }

    pub fn storages(&self) -> Storages {
        Storages {
            default: self.default_storage.clone(),
            prefixes: self
                .storage_prefixes
                .iter()
                .map(|(p, s)| (p.clone(), s.clone()))
                .collect(),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.access_timeout)
    }

    /// The bearer secret for the app's endpoints, if configured.
    pub fn access_token(&self) -> Result<Option<String>, String> {
        self.access_token_file
            .as_ref()
            .map(|p| {
                gitrpc_proto::auth::read_secret_file(p)
                    .map_err(|e| format!("access_token_file {}: {e}", p.display()))
            })
            .transpose()
    }

    /// Options for the gitrpcd client.
    pub fn client_options(&self) -> Result<gitrpc_client::Options, String> {
        let token = self
            .token_file
            .as_ref()
            .map(|p| {
                gitrpc_proto::auth::read_secret_file(p)
                    .map_err(|e| format!("token_file {}: {e}", p.display()))
            })
            .transpose()?;
        Ok(gitrpc_client::Options {
            token,
            tls_ca_file: self.tls_ca_file.clone(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(), String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check()
    }

    #[test]
    fn a_shell_without_an_access_check_does_not_start() {
        let base = "address = \"unix:/s\"\ndefault_storage = \"default\"\n";
        assert!(parse(base).unwrap_err().contains("no access check"));
        assert!(parse(&format!("{base}access_command = \"/bin/true\"")).is_ok());
        assert!(parse(&format!("{base}access_command = \"true\""))
            .unwrap_err()
            .contains("absolute"));
        assert!(parse(&format!(
            "{base}access_command = \"/bin/true\"\naccess_url = \"http://127.0.0.1:1/a\""
        ))
        .unwrap_err()
        .contains("not both"));
        assert!(parse(&format!("{base}access_url = \"ftp://x/a\""))
            .unwrap_err()
            .contains("access_url"));
        assert!(parse(&format!(
            "{base}access_url = \"unix:/run/app.sock:/allowed\""
        ))
        .is_ok());
        assert!(
            parse(&format!("{base}access_command = \"/bin/true\"\nbogus = 1"))
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse("address = \"unix:/s\"\naccess_command = \"/bin/true\"")
                .unwrap_err()
                .contains("no storage")
        );
        assert!(parse(
            "address = \"nope://x\"\ndefault_storage = \"d\"\naccess_command = \"/bin/true\""
        )
        .unwrap_err()
        .contains("address"));
    }

    #[test]
    fn storage_prefixes_map_paths() {
        let c: Config = toml::from_str(
            "address = \"unix:/s\"\naccess_command = \"/bin/true\"\n[storage_prefixes]\n\"shard2/\" = \"shard-2\"\n",
        )
        .unwrap();
        c.check().unwrap();
        let s = c.storages();
        assert_eq!(
            s.locate("/shard2/g/p.git").unwrap(),
            ("shard-2".to_string(), "g/p.git".to_string())
        );
        assert!(s.locate("/g/p.git").is_err());
    }
}
