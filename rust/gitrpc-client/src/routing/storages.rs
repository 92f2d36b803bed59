//! [`StorageMap`]: which servers serve which storage, as a config piece every client front
//! end reads the same way: a TOML table (`gitrpc-shell`'s `[servers]`), repeated
//! `STORAGE=ADDRESS[,ADDRESS...]` flags (`gitrpc-ssh --server`), or one string
//! (`$GITRPC_SERVERS`: `default=unix:/run/a.sock;shard-2=tls://g2:9999,tls://g3:9999`,
//! `;` between storages because `,` separates a storage's servers).
//!
//! ```toml
//! [servers]
//! default = "unix:/run/gitrpc.sock"
//! "shard-2" = "tls://g2:9999,tls://g3:9999"
//! "shard-3" = { address = "tls://g4:9999", token = "its own secret" }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::address::{Address, Error};

/// The servers of one storage: an address list (servers of the same storage, balanced), and
/// their `[auth]` secret if it differs from the client's.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote {
    pub address: String,
    pub token: Option<String>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Remote {
    pub fn new(address: impl Into<String>) -> Remote {
        Remote {
            address: address.into(),
            token: None,
        }
    }

    /// Every address of the list parses.
    pub fn check(&self) -> Result<(), Error> {
        let list: Vec<&str> = addresses(&self.address).collect();
        if list.is_empty() {
            return Err(Error::InvalidAddress(self.address.clone()));
        }
        list.into_iter()
            .try_for_each(|a| Address::parse(a).map(drop))
    }
}

fn addresses(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|a| !a.is_empty())
}

/// Storage name → its servers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageMap(BTreeMap<String, Remote>);

impl StorageMap {
    pub fn new() -> StorageMap {
        StorageMap::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, storage: &str) -> Option<&Remote> {
        self.0.get(storage)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Remote)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Add (or replace) a storage's servers, checking the name and every address.
    pub fn insert(&mut self, storage: &str, remote: Remote) -> Result<(), Error> {
        check_name(storage)?;
        remote.check()?;
        self.0.insert(storage.to_string(), remote);
        Ok(())
    }

    /// Remove a storage's servers.
    pub fn remove(&mut self, storage: &str) -> Option<Remote> {
        self.0.remove(storage)
    }

    /// Add one `STORAGE=ADDRESS[,ADDRESS...]` (a flag's value).
    pub fn insert_spec(&mut self, spec: &str) -> Result<(), Error> {
        let (storage, address) = spec
            .split_once('=')
            .ok_or_else(|| Error::InvalidRoute(spec.to_string()))?;
        self.insert(storage.trim(), Remote::new(address.trim()))
    }

    /// `STORAGE=ADDRESS[,ADDRESS...];STORAGE=...` (an environment variable's value).
    pub fn parse_list(list: &str) -> Result<StorageMap, Error> {
        let mut map = StorageMap::new();
        for spec in list.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            map.insert_spec(spec)?;
        }
        Ok(map)
    }

    /// The storage's servers, or `storage not found: "name"` (`INVALID_ARGUMENT`, the
    /// server's own words for an unknown storage).
    pub fn route(&self, storage: &str) -> Result<&Remote, tonic::Status> {
        self.get(storage).ok_or_else(|| not_found(storage))
    }
}

/// What a client answers for a storage it has no servers for.
pub fn not_found(storage: &str) -> tonic::Status {
    tonic::Status::invalid_argument(format!("storage not found: {storage:?}"))
}

/// A storage name: not empty, printable, without the separators of the list forms.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '=' | ';' | ','));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidStorage(name.to_string()))
    }
}

impl<'de> Deserialize<'de> for Remote {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Remote, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Remote;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address list, or a table with address and token")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Remote, E> {
                Ok(Remote::new(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Remote, A::Error> {
                let (mut address, mut token) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "address" => address = Some(map.next_value::<String>()?),
                        "token" => token = Some(map.next_value::<String>()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["address", "token"]))
                        }
                    }
                }
                Ok(Remote {
                    address: address.ok_or_else(|| de::Error::missing_field("address"))?,
                    token: token.filter(|t| !t.is_empty()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StorageMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StorageMap, D::Error> {
        let raw = BTreeMap::<String, Remote>::deserialize(d)?;
        let mut map = StorageMap::new();
        for (storage, remote) in raw {
            map.insert(&storage, remote)
                .map_err(|e| de::Error::custom(format!("{storage}: {e}")))?;
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_lists_and_toml() {
        let m = StorageMap::parse_list(
            "default=unix:/run/a.sock; shard-2=tls://g2:9999,tls://g3:9999;",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.get("shard-2").unwrap().address,
            "tls://g2:9999,tls://g3:9999"
        );
        for bad in ["default", "=unix:/a", "a=", "a=http://x:1", "a b=unix:/a"] {
            assert!(StorageMap::parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(
            m.route("nope").unwrap_err().message(),
            "storage not found: \"nope\""
        );

        #[derive(Deserialize)]
        struct Config {
            servers: StorageMap,
        }
        let c: Config = toml::from_str(
            r#"
            [servers]
            default = "unix:/run/gitrpc.sock"
            "shard-3" = { address = "tls://g4:9999", token = "s3" }
            "#,
        )
        .unwrap();
        assert_eq!(
            c.servers.get("shard-3").unwrap().token.as_deref(),
            Some("s3")
        );
        assert!(
            format!("{:?}", c.servers).contains("…"),
            "token not printed"
        );
        let err =
            toml::from_str::<Config>("[servers]\na = { address = \"unix:/a\", tokn = \"x\" }")
                .err()
                .unwrap()
                .to_string();
        assert!(err.contains("unknown field `tokn`"), "{err}");
        let err = toml::from_str::<Config>("[servers]\na = \"ftp://x\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("a: invalid address"), "{err}");
    }
}
