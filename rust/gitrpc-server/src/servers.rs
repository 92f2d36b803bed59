//! The `gitaly-servers` metadata of an incoming call (see `gitrpc_proto::servers`): where
//! the servers of other storages are, for RPCs that name a second repository. Errors are the
//! client's: `INVALID_ARGUMENT`, naming the storage.

use gitrpc_proto::servers::{self, ServerInfo, Servers, METADATA_KEY};
use tonic::metadata::MetadataMap;

use crate::error::{Error, Result};

/// The servers a call named (none if it sent no `gitaly-servers`).
#[derive(Clone, Debug, Default)]
pub struct GitalyServers {
    sent: bool,
    servers: Servers,
}

impl GitalyServers {
    /// Read the first `gitaly-servers` value of `metadata`. A value that can't be read is
    /// `INVALID_ARGUMENT` at once; a missing one only when a storage is looked up.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<GitalyServers> {
        let Some(value) = metadata.get(METADATA_KEY) else {
            return Ok(GitalyServers::default());
        };
        let value = value
            .to_str()
            .map_err(|_| Error::invalid("gitaly-servers: not ASCII"))?;
        let servers =
            servers::decode(value).map_err(|e| Error::invalid(format!("gitaly-servers: {e}")))?;
        Ok(GitalyServers {
            sent: true,
            servers,
        })
    }

    /// The server of `storage`.
    pub fn get(&self, storage: &str) -> Result<&ServerInfo> {
        match self.servers.get(storage) {
            Some(s) if !s.address.is_empty() => Ok(s),
            Some(_) => Err(Error::invalid(format!(
                "gitaly-servers: empty address for storage {storage:?}"
            ))),
            None if self.sent => Err(Error::invalid(format!(
                "gitaly-servers has no entry for storage {storage:?}"
            ))),
            None => Err(Error::invalid(format!(
                "storage {storage:?} is not served here and the call has no gitaly-servers metadata"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_metadata() {
        let mut md = MetadataMap::new();
        assert_eq!(
            GitalyServers::from_metadata(&md)
                .unwrap()
                .get("s1")
                .unwrap_err()
                .to_string(),
            "storage \"s1\" is not served here and the call has no gitaly-servers metadata"
        );
        let mut servers = Servers::new();
        servers.insert(
            "s1".into(),
            ServerInfo {
                address: "unix:/a.sock".into(),
                token: "t".into(),
            },
        );
        md.insert(METADATA_KEY, servers::encode(&servers).parse().unwrap());
        let g = GitalyServers::from_metadata(&md).unwrap();
        assert_eq!(g.get("s1").unwrap().address, "unix:/a.sock");
        assert_eq!(
            g.get("s2").unwrap_err().to_string(),
            "gitaly-servers has no entry for storage \"s2\""
        );
        md.insert(METADATA_KEY, "%%".parse().unwrap());
        let e = GitalyServers::from_metadata(&md).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e
            .to_string()
            .starts_with("gitaly-servers: failed decoding base64"));
    }
}
