//! Gitaly's `gitaly-servers` metadata, part of the wire contract: how a client tells a server
//! where *another* storage's server is, for RPCs that name a second repository
//! (ReplicateRepository's `source`, an operation's `start_repository`, a fork's source).
//!
//! The value is the standard, padded base64 of a JSON object from storage name to
//! `{"address": "...", "token": "..."}` (Gitaly's `storage.GitalyServers`; GitLab Rails
//! sends it with `Base64.strict_encode64`). `token` is that server's raw `[auth]` secret:
//! the receiving server makes v2 tokens from it for its own calls.

use std::collections::BTreeMap;

use base64::Engine as _;

/// The metadata key (ASCII).
pub const METADATA_KEY: &str = "gitaly-servers";

/// How to reach one storage's server.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    /// `unix:/path`, `tcp://host:port`, `tls://host:port` (gitrpc also takes a
    /// comma-separated list of servers of the storage; Gitaly takes one).
    pub address: String,
    /// The server's `[auth]` secret; empty for none.
    #[serde(default)]
    pub token: String,
}

/// Storage name → its server.
pub type Servers = BTreeMap<String, ServerInfo>;

/// Why a `gitaly-servers` value could not be read (Gitaly's wording).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("failed decoding base64: {0}")]
    Base64(String),
    #[error("failed unmarshalling json: {0}")]
    Json(String),
}

/// The metadata value for `servers`.
pub fn encode(servers: &Servers) -> String {
    let json = serde_json::to_vec(servers).expect("a map of strings serializes");
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// Read a metadata value.
pub fn decode(value: &str) -> Result<Servers, DecodeError> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| DecodeError::Base64(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| DecodeError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_what_rails_sends() {
        let mut servers = Servers::new();
        servers.insert(
            "shard-2".into(),
            ServerInfo {
                address: "tls://g2:9999".into(),
                token: "secret".into(),
            },
        );
        let value = encode(&servers);
        assert_eq!(decode(&value).unwrap(), servers);
        // Ruby: Base64.strict_encode64(JSON.dump({"default" => {"address" => "unix:/a.sock",
        // "token" => "t"}})); unknown keys are ignored, a missing token is empty.
        let rails = "eyJkZWZhdWx0Ijp7ImFkZHJlc3MiOiJ1bml4Oi9hLnNvY2siLCJ0b2tlbiI6InQifX0=";
        assert_eq!(
            decode(rails).unwrap()["default"],
            ServerInfo {
                address: "unix:/a.sock".into(),
                token: "t".into()
            }
        );
        let extra = encode_json(r#"{"s":{"address":"tcp://h:1","x":1}}"#);
        assert_eq!(decode(&extra).unwrap()["s"].token, "");
    }

    fn encode_json(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(matches!(decode("%%%"), Err(DecodeError::Base64(_))));
        assert!(matches!(
            decode(&encode_json("[1]")),
            Err(DecodeError::Json(_))
        ));
        assert!(decode(&encode_json("{}")).unwrap().is_empty());
    }
}
