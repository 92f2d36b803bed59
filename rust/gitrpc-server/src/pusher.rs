//! Who is pushing: the identity a front door sends with `SSHReceivePack` /
//! `PostReceivePack` (`gl_id`, `gl_username`, `gl_repository` fields; the `user_id`,
//! `username`, `remote_ip` metadata of `gitrpc_proto::identity` where the fields are empty),
//! handed to the push's hooks as Gitaly hands it to custom hooks: `GL_ID`, `GL_USERNAME`,
//! `GL_REPOSITORY`, `GL_PROJECT_PATH`, `GL_PROTOCOL` (`ssh` or `http`) in receive-pack's
//! environment, which its hooks inherit.

use gitrpc_proto::gitaly::Repository;
use gitrpc_proto::identity::{Identity, MAX_FIELD};
use tonic::metadata::MetadataMap;

use crate::error::{Error, Result};

/// The door a push came through (`GL_PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Ssh,
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::Http => "http",
        }
    }
}

/// The pusher of one push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pusher {
    pub gl_id: String,
    pub username: String,
    pub gl_repository: String,
    pub gl_project_path: String,
    pub remote_ip: String,
    pub protocol: Protocol,
}

/// A receive-pack request's identity fields.
pub struct Fields<'a> {
    pub gl_id: &'a str,
    pub gl_username: &'a str,
    pub gl_repository: &'a str,
}

impl Pusher {
    /// From a push's request fields, falling back on the call's metadata and the request's
    /// `Repository`. A value with a NUL or a line break, or over 256 bytes, is
    /// `INVALID_ARGUMENT` naming its field.
    pub fn from_request(
        fields: Fields<'_>,
        repository: Option<&Repository>,
        metadata: &MetadataMap,
        protocol: Protocol,
    ) -> Result<Pusher> {
        for (name, value) in [
            ("gl_id", fields.gl_id),
            ("gl_username", fields.gl_username),
            ("gl_repository", fields.gl_repository),
        ] {
            check(name, value)?;
        }
        // As sent, not `Identity::caller`'s normalised view: the hooks see what the front
        // door said.
        let meta = Identity::from_metadata(metadata);
        let or = |a: &str, b: String| if a.is_empty() { b } else { a.to_string() };
        let repo = repository.cloned().unwrap_or_default();
        check("repository.gl_repository", &repo.gl_repository)?;
        check("repository.gl_project_path", &repo.gl_project_path)?;
        Ok(Pusher {
            gl_id: or(fields.gl_id, meta.gl_id),
            username: or(fields.gl_username, meta.username),
            gl_repository: or(fields.gl_repository, repo.gl_repository),
            gl_project_path: repo.gl_project_path,
            remote_ip: meta.remote_ip,
            protocol,
        })
    }

    /// The variables receive-pack (and so its hooks) gets.
    pub fn env(&self) -> [(&'static str, &str); 5] {
        [
            ("GL_ID", &self.gl_id),
            ("GL_USERNAME", &self.username),
            ("GL_REPOSITORY", &self.gl_repository),
            ("GL_PROJECT_PATH", &self.gl_project_path),
            ("GL_PROTOCOL", self.protocol.as_str()),
        ]
    }
}

fn check(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_FIELD {
        return Err(Error::invalid(format!(
            "{field}: longer than {MAX_FIELD} bytes"
        )));
    }
    if value.contains(['\0', '\n', '\r']) {
        return Err(Error::invalid(format!(
            "{field}: contains a NUL or line break"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(gl_id: &'a str, gl_username: &'a str) -> Fields<'a> {
        Fields {
            gl_id,
            gl_username,
            gl_repository: "",
        }
    }

    #[test]
    fn fields_then_metadata_then_repository() {
        let mut md = MetadataMap::new();
        md.insert("user_id", "user-9".parse().unwrap());
        md.insert("username", "bob".parse().unwrap());
        md.insert("remote_ip", "10.0.0.1".parse().unwrap());
        let repo = Repository {
            gl_repository: "project-3".into(),
            gl_project_path: "g/p".into(),
            ..Default::default()
        };
        let p =
            Pusher::from_request(fields("user-7", ""), Some(&repo), &md, Protocol::Ssh).unwrap();
        assert_eq!(
            p.env(),
            [
                ("GL_ID", "user-7"),
                ("GL_USERNAME", "bob"),
                ("GL_REPOSITORY", "project-3"),
                ("GL_PROJECT_PATH", "g/p"),
                ("GL_PROTOCOL", "ssh"),
            ]
        );
        assert_eq!(p.remote_ip, "10.0.0.1");
    }

    #[test]
    fn bad_values_name_their_field() {
        let md = MetadataMap::new();
        let e = Pusher::from_request(fields("a\nb", ""), None, &md, Protocol::Http).unwrap_err();
        assert!(e.to_string().contains("gl_id"), "{e}");
        let long = "x".repeat(MAX_FIELD + 1);
        let e = Pusher::from_request(fields("", &long), None, &md, Protocol::Http).unwrap_err();
        assert!(e.to_string().contains("gl_username"), "{e}");
    }
}
