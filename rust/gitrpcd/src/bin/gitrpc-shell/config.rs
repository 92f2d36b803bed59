//! gitrpc-shell's TOML config (`--config FILE` or `$GITRPC_SHELL_CONFIG`), checked whole
//! at start: a shell that can't check access must not run git.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gitrpc_client::paths::Storages;
use gitrpc_client::routing::{Remote, StorageMap};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gitrpcd's address(es), as clients take them (`unix:/…`, `tcp://`, `tls://`, a
    /// comma-separated list): the servers of every storage `[servers]` doesn't list.
    pub address: Option<String>,
    /// The server's `[auth]` secret (of `[servers]` entries too, unless they give a token).
    pub token_file: Option<PathBuf>,
    /// Storage → its servers, when storages live on different servers (the
    /// `gitrpc_client::routing::StorageMap` every client reads): `"shard-2" =
    /// "tls://g2:9999,tls://g3:9999"` or `"shard-3" = { address = "…", token = "…" }`.
    #[serde(default)]
    pub servers: StorageMap,
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
        match &self.address {
            Some(a) => Remote::new(a.as_str())
                .check()
                .map_err(|e| format!("address: {e}"))?,
            None if self.servers.is_empty() => {
                return Err("no server: set address and/or [servers]".into())
            }
            None => {}
        }
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
        // Every storage a path can name has servers.
        let named = self
            .default_storage
            .iter()
            .chain(self.storage_prefixes.values());
        for storage in named {
            if self.address.is_none() && self.servers.get(storage).is_none() {
                return Err(format!(
                    "storage {storage:?} has no server: add it to [servers] or set address"
                ));
            }
        }
        Ok(())
    }

    /// The servers of `storage`: its `[servers]` entry, else `address`; else `storage not
    /// found: "name"` (a storage the access check named, say), before anything is dialed.
    pub fn route(&self, storage: &str) -> Result<Remote, String> {
        match (self.servers.get(storage), &self.address) {
            (Some(remote), _) => Ok(remote.clone()),
            (None, Some(address)) => Ok(Remote::new(address.as_str())),
            (None, None) => Err(gitrpc_client::routing::not_found(storage)
                .message()
                .to_string()),
        }
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

    /// Options for a client of `route`'s servers: its own token, else `token_file`'s.
    pub fn client_options(&self, route: &Remote) -> Result<gitrpc_client::Options, String> {
        let token = match &route.token {
            Some(token) => Some(token.clone()),
            None => self
                .token_file
                .as_ref()
                .map(|p| {
                    gitrpc_proto::auth::read_secret_file(p)
                        .map_err(|e| format!("token_file {}: {e}", p.display()))
                })
                .transpose()?,
        };
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

    #[test]
    fn servers_route_storages() {
        let text = "address = \"unix:/s\"\ndefault_storage = \"default\"\naccess_command = \"/bin/true\"\n\
                    [storage_prefixes]\n\"shard2/\" = \"shard-2\"\n\
                    [servers]\n\"shard-2\" = { address = \"unix:/two.sock,unix:/three.sock\", token = \"t2\" }\n";
        let c: Config = toml::from_str(text).unwrap();
        c.check().unwrap();
        let two = c.route("shard-2").unwrap();
        assert_eq!(
            (two.address.as_str(), two.token.as_deref()),
            ("unix:/two.sock,unix:/three.sock", Some("t2"))
        );
        assert_eq!(c.client_options(&two).unwrap().token.as_deref(), Some("t2"));
        // Storages [servers] doesn't list: `address`.
        assert_eq!(c.route("default").unwrap(), Remote::new("unix:/s"));
        assert_eq!(c.route("other").unwrap(), Remote::new("unix:/s"));

        // Without `address`, every storage a path can name must be in [servers], and one
        // that isn't (named by the access check) is not found.
        let no_address = text.replacen("address = \"unix:/s\"\n", "", 1);
        assert!(parse(&no_address)
            .unwrap_err()
            .contains("storage \"default\" has no server"));
        let c: Config =
            toml::from_str(&no_address.replace("default_storage = \"default\"\n", "")).unwrap();
        c.check().unwrap();
        assert_eq!(
            c.route("other").unwrap_err(),
            "storage not found: \"other\""
        );
        assert!(
            parse("default_storage = \"d\"\naccess_command = \"/bin/true\"")
                .unwrap_err()
                .contains("no server")
        );
        assert!(parse(&format!("{text}bad = \"ftp://x\"\n"))
            .unwrap_err()
            .contains("bad: invalid address"));
        assert!(parse(&text.replace("unix:/s", "unix:/s,ftp://x"))
            .unwrap_err()
            .contains("address"));
    }
}
