//! Who a call is made for: the user a front door (`gitrpc-shell`, the Rack endpoint,
//! gitlab-shell, workhorse) authenticated, carried as gRPC metadata under gitlab-shell's
//! keys, so rate limits, logs and hooks see the same identity whichever door it came
//! through. Pushes also carry it in their request fields (`gl_id`, `gl_username`,
//! `gl_repository` of `SSHReceivePackRequest` / `PostReceivePackRequest`).
//!
//! The server reads it two ways, both here:
//! - [`Identity::from_metadata`] / [`Identity::from_headers`]: the values as sent (what a
//!   push's hooks get as `GL_ID`, `GL_USERNAME`);
//! - [`Identity::caller`]: normalised to key *who is calling* (the `[pack_objects_limiting]`
//!   and `[[rate_limiting]]` keys, the call's record): values trimmed, `remote_ip` without
//!   a port (`10.0.0.7:4242` and `10.0.0.7` are one client), and [`Identity::user`] falling
//!   back from `user_id` to `username`.

use std::net::{IpAddr, SocketAddr};

use tonic::codegen::http::HeaderMap;
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

    /// The identity a call's metadata carries (what [`Identity::apply`] wrote), values as
    /// sent: a value that is not visible ASCII or is over [`MAX_FIELD`] bytes is unknown.
    /// What a push's hooks see (the server's pusher reads it this way).
    pub fn from_metadata(metadata: &MetadataMap) -> Identity {
        Identity::from_headers(metadata.as_ref())
    }

    /// [`Identity::from_metadata`] from a call's HTTP/2 headers (a tower layer's view).
    pub fn from_headers(headers: &HeaderMap) -> Identity {
        Identity::parse(headers, |v| v)
    }

    /// Who is calling, for keying limits and records: as [`Identity::from_headers`], but
    /// each value trimmed first (blank is unknown) and `remote_ip` reduced to the address
    /// without its port (`10.0.0.7:4242` → `10.0.0.7`, `[::1]:123` and `[::1]` → `::1`;
    /// anything that is not an address with a port is kept as it is).
    pub fn caller(headers: &HeaderMap) -> Identity {
        let mut id = Identity::parse(headers, str::trim);
        id.remote_ip = without_port(&id.remote_ip);
        id
    }

    /// The user: `user_id` (`gl_id`), else `username`; "" if neither is known.
    pub fn user(&self) -> &str {
        if self.gl_id.is_empty() {
            &self.username
        } else {
            &self.gl_id
        }
    }

    fn parse(headers: &HeaderMap, clean: impl Fn(&str) -> &str) -> Identity {
        let get = |key: &str| {
            headers
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(&clean)
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

/// `ip:port` and `[ip6]:port` → the address; `[ip6]` → `ip6`; anything else unchanged.
fn without_port(remote_ip: &str) -> String {
    if let Ok(addr) = remote_ip.parse::<SocketAddr>() {
        return addr.ip().to_string();
    }
    match remote_ip
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
    {
        Some(ip) => ip.to_string(),
        None => remote_ip.to_string(),
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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_caller_is_keyed_by_address_without_port() {
        for (sent, ip) in [
            ("10.0.0.7:4242", "10.0.0.7"),
            ("10.0.0.7", "10.0.0.7"),
            ("[::1]:123", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:22", "2001:db8::1"),
            // Not an address: kept as it is (a front door's own notion of a client).
            ("gateway-3", "gateway-3"),
            ("[not-an-ip]:1", "[not-an-ip]:1"),
            ("", ""),
        ] {
            let h = headers(&[(REMOTE_IP, sent)]);
            assert_eq!(Identity::caller(&h).remote_ip, ip, "{sent:?}");
            // As sent for everyone else.
            assert_eq!(Identity::from_headers(&h).remote_ip, sent, "{sent:?}");
        }
    }

    #[test]
    fn the_caller_is_trimmed_and_blank_is_unknown() {
        let h = headers(&[
            (USER_ID, " user-12\t"),
            (USERNAME, "  "),
            (REMOTE_IP, " 10.0.0.7:4242 "),
            (KEY_ID, "key-42 "),
        ]);
        let c = Identity::caller(&h);
        assert_eq!(
            c,
            Identity {
                gl_id: "user-12".into(),
                username: String::new(),
                gl_repository: String::new(),
                remote_ip: "10.0.0.7".into(),
                key_id: "key-42".into(),
            }
        );
        // The raw view keeps what was sent (a push's hooks see it).
        let raw = Identity::from_headers(&h);
        assert_eq!(
            (raw.gl_id.as_str(), raw.username.as_str()),
            (" user-12\t", "  ")
        );
        assert_eq!(raw.remote_ip, " 10.0.0.7:4242 ");
        // Trimmed before the length check: padding does not make a value too long.
        let padded = format!("  {}  ", "u".repeat(MAX_FIELD));
        let h = headers(&[(USER_ID, padded.as_str())]);
        assert_eq!(Identity::caller(&h).gl_id, "u".repeat(MAX_FIELD));
        assert_eq!(Identity::from_headers(&h).gl_id, "");
    }

    #[test]
    fn the_user_is_user_id_else_username() {
        let mut h = HeaderMap::new();
        assert_eq!(Identity::caller(&h), Identity::default());
        assert_eq!(Identity::caller(&h).user(), "");
        h.insert(USERNAME, "alice".parse().unwrap());
        assert_eq!(Identity::caller(&h).user(), "alice");
        h.insert(USER_ID, "user-12".parse().unwrap());
        assert_eq!(Identity::caller(&h).user(), "user-12");
        // Too long: unknown, so the username again; blank likewise.
        h.insert(USER_ID, "x".repeat(MAX_FIELD + 1).parse().unwrap());
        assert_eq!(Identity::caller(&h).user(), "alice");
        assert_eq!(Identity::from_headers(&h).user(), "alice");
        h.insert(USER_ID, "   ".parse().unwrap());
        assert_eq!(Identity::caller(&h).user(), "alice");
    }

    #[test]
    fn metadata_and_headers_read_alike() {
        let mut md = MetadataMap::new();
        md.insert(USER_ID, "user-7".parse().unwrap());
        md.insert(REMOTE_IP, "10.0.0.1:99".parse().unwrap());
        assert_eq!(
            Identity::from_metadata(&md),
            Identity::from_headers(md.as_ref())
        );
        assert_eq!(Identity::from_metadata(&md).remote_ip, "10.0.0.1:99");
    }
}
