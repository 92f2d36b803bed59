//! Who a call is made for: the user a front door (`gitrpc-shell`, the Rack endpoint,
//! gitlab-shell, workhorse) authenticated, carried as gRPC metadata under gitlab-shell's
//! keys, so rate limits, logs and hooks see the same identity whichever door it came
//! through. Pushes also carry it in their request fields (`gl_id`, `gl_username`,
//! `gl_repository` of `SSHReceivePackRequest` / `PostReceivePackRequest`).

use tonic::metadata::{MetadataMap, MetadataValue};

/// The user's id (`user-7`, or `key-42` when only the SSH key is known): Gitaly's `user_id`.
pub const USER_ID: &str = "user_id";
/// The user's login name.
pub const USERNAME: &str = "username";
/// The client's IP address as the front door saw it.
pub const REMOTE_IP: &str = "remote_ip";
/// The SSH key id the front door authenticated.
pub const KEY_ID: &str = "key_id";

/// Longest value of any identity field; longer ones are not sent (and refused by the
/// server in request fields).
pub const MAX_FIELD: usize = 256;

/// A caller's identity; empty fields are unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `gl_id`: `user-7`, `key-42`.
    pub gl_id: String,
    pub username: String,
    /// `gl_repository` (`project-26`): the app's name for the repository, for hooks.
    pub gl_repository: String,
    pub remote_ip: String,
    pub key_id: String,
}

impl Identity {
    /// Add the non-empty fields to `metadata` (`gl_repository` is a request field only).
    /// A value that can't be a header (non-ASCII, control characters, too long) is left
    /// out rather than mangled.
    pub fn apply(&self, metadata: &mut MetadataMap) {
        for (key, value) in [
            (USER_ID, &self.gl_id),
            (USERNAME, &self.username),
            (REMOTE_IP, &self.remote_ip),
            (KEY_ID, &self.key_id),
        ] {
            let printable = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            if value.is_empty() || value.len() > MAX_FIELD || !printable {
                continue;
            }
            if let Ok(v) = MetadataValue::try_from(value.as_str()) {
                metadata.insert(key, v);
            }
        }
    }

    /// The identity a call's metadata carries (what [`Identity::apply`] wrote).
    pub fn from_metadata(metadata: &MetadataMap) -> Identity {
        let get = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= MAX_FIELD)
                .unwrap_or_default()
                .to_string()
        };
        Identity {
            gl_id: get(USER_ID),
            username: get(USERNAME),
            gl_repository: String::new(),
            remote_ip: get(REMOTE_IP),
            key_id: get(KEY_ID),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_metadata() {
        let id = Identity {
            gl_id: "user-7".into(),
            username: "alice".into(),
            gl_repository: "project-1".into(),
            remote_ip: "127.0.0.1".into(),
            key_id: "key-42".into(),
        };
        let mut md = MetadataMap::new();
        id.apply(&mut md);
        assert_eq!(md.get(USER_ID).unwrap(), "user-7");
        let back = Identity::from_metadata(&md);
        assert_eq!(
            back,
            Identity {
                gl_repository: String::new(),
                ..id
            }
        );
    }

    #[test]
    fn values_that_cannot_be_headers_are_left_out() {
        let id = Identity {
            username: "zoë".into(),
            gl_id: "a\nb".into(),
            key_id: "k".repeat(MAX_FIELD + 1),
            ..Default::default()
        };
        let mut md = MetadataMap::new();
        id.apply(&mut md);
        assert!(md.is_empty(), "{md:?}");
    }
}
