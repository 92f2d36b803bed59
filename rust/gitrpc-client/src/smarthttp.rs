//! git's smart HTTP protocol for an HTTP front door (the Ruby gem's `GitRPC::SmartHTTP`
//! Rack endpoint): which URL is which service, what every answer's status and headers are
//! (`git http-backend`'s), and [`Call`], the RPC behind a request, streaming both ways. The
//! adapter only moves bytes and asks the application whether the user may go on.
//!
//! | request | RPC |
//! |---|---|
//! | `GET <repo>/info/refs?service=git-upload-pack` | `InfoRefsUploadPack` |
//! | `GET <repo>/info/refs?service=git-receive-pack` | `InfoRefsReceivePack` |
//! | `POST <repo>/git-upload-pack` | `PostUploadPack` (streaming both ways) |
//! | `POST <repo>/git-receive-pack` | `PostReceivePack` (with the pusher's identity) |
//!
//! `<repo>` goes through [`crate::paths`] (`group/project` is `group/project.git`).
//! Protocol v2 comes as `Git-Protocol: version=2`. Request bodies may be gzip-encoded (git
//! compresses upload-pack requests over 1 KiB); they are inflated here, in bounded steps.
//! Anything else (dumb HTTP, other paths) is 404; a known path with the wrong method 405.

mod call;

pub use call::{Call, Request};

use tonic::{Code, Status};

use crate::paths::Storages;
use crate::sshcmd::Action;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET info/refs?service=…`: the ref advertisement.
    InfoRefs(Action),
    /// `POST git-upload-pack` / `POST git-receive-pack`: one stateless-RPC round.
    Post(Action),
}

impl Endpoint {
    pub fn action(self) -> Action {
        match self {
            Endpoint::InfoRefs(a) | Endpoint::Post(a) => a,
        }
    }

    /// The `Content-Type` of a successful answer.
    pub fn content_type(self) -> String {
        match self {
            Endpoint::InfoRefs(a) => format!("application/x-{a}-advertisement"),
            Endpoint::Post(a) => format!("application/x-{a}-result"),
        }
    }
}

/// A routed request: the endpoint and the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub storage: String,
    pub relative_path: String,
}

/// A complete answer (an error, or a refusal): status, headers and a `text/plain` body, which
/// git prints as `remote: …` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Headers every answer carries (http-backend's): nothing may be cached.
pub const NO_CACHE: [(&str, &str); 3] = [
    ("Expires", "Fri, 01 Jan 1980 00:00:00 GMT"),
    ("Pragma", "no-cache"),
    ("Cache-Control", "no-cache, max-age=0, must-revalidate"),
];

impl Reply {
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8".to_string())];
        headers.extend(NO_CACHE.iter().map(|(k, v)| (*k, v.to_string())));
        Reply {
            status,
            headers,
            body,
        }
    }

    fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    pub fn not_found() -> Reply {
        Reply::text(404, "Repository not found")
    }

    /// 401: the application wants credentials (`realm` for `WWW-Authenticate`).
    pub fn unauthorized(realm: &str, message: &str) -> Reply {
        let realm: String = realm
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        let msg = if message.is_empty() {
            "HTTP Basic: Access denied"
        } else {
            message
        };
        Reply::text(401, msg).with("WWW-Authenticate", format!("Basic realm=\"{realm}\""))
    }

    /// 403: the application refused.
    pub fn forbidden(action: Action, message: &str) -> Reply {
        if !message.is_empty() {
            return Reply::text(403, message);
        }
        Reply::text(
            403,
            match action {
                Action::ReceivePack => "You are not allowed to push code to this project.",
                _ => "You are not allowed to download code from this project.",
            },
        )
    }

    /// The answer for an RPC that failed before any byte of its response was sent.
    pub fn from_status(s: &Status) -> Reply {
        match s.code() {
            // A bad path or storage, in practice: don't explain it to the client.
            Code::NotFound | Code::InvalidArgument => Reply::not_found(),
            Code::PermissionDenied => Reply::text(403, s.message()),
            Code::ResourceExhausted => {
                let retry = gitrpc_proto::limit::limit_error(s)
                    .and_then(|e| e.retry_after)
                    .map_or(0, |d| d.seconds.max(0) + i64::from(d.nanos > 0));
                Reply::text(
                    429,
                    format!("server busy, try again later: {}", s.message()),
                )
                .with("Retry-After", retry.max(1).to_string())
            }
            Code::Unavailable => Reply::text(503, "the git server is not available"),
            _ => Reply::text(500, format!("internal error: {}", s.message())),
        }
    }
}

/// Route a request (method, `PATH_INFO` below the mount point, query string) to an endpoint
/// and a repository in `storages`, or the answer that ends it.
pub fn route(
    method: &str,
    path_info: &str,
    query: &str,
    storages: &Storages,
) -> Result<Route, Reply> {
    let endpoints: [(&str, Option<Action>, &str); 3] = [
        ("/info/refs", None, "GET"),
        ("/git-upload-pack", Some(Action::UploadPack), "POST"),
        ("/git-receive-pack", Some(Action::ReceivePack), "POST"),
    ];
    let Some((repo, post, allowed)) = endpoints
        .iter()
        .find_map(|(suffix, post, m)| Some((path_info.strip_suffix(suffix)?, *post, *m)))
    else {
        return Err(Reply::text(404, "Not Found"));
    };
    if repo.trim_matches('/').is_empty() {
        return Err(Reply::text(404, "Not Found"));
    }
    if method != allowed {
        let reply = Reply::text(405, "Method Not Allowed");
        return Err(reply.with("Allow", allowed.to_string()));
    }
    let endpoint = match post {
        Some(a) => Endpoint::Post(a),
        None => Endpoint::InfoRefs(service(query)?),
    };
    let (storage, relative_path) = storages.locate(repo).map_err(|_| Reply::not_found())?;
    Ok(Route {
        endpoint,
        storage,
        relative_path,
    })
}

/// The `service` of an `info/refs` query: only the smart ones.
fn service(query: &str) -> Result<Action, Reply> {
    let name = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="))
        .unwrap_or_default();
    match Action::from_name(name) {
        Some(a @ (Action::UploadPack | Action::ReceivePack)) => Ok(a),
        _ => Err(Reply::text(403, "Unsupported service")),
    }
}

/// A POST body's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Check a POST's `Content-Type` and `Content-Encoding` (http-backend's rule and text).
pub fn check_post(
    action: Action,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Encoding, Reply> {
    let want = format!("application/x-{action}-request");
    let got = content_type.unwrap_or_default();
    if got != want {
        return Err(Reply::text(
            415,
            format!("Expected POST with Content-Type '{want}', but received '{got}' instead."),
        ));
    }
    match content_encoding.map(str::trim).unwrap_or_default() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        other => Err(Reply::text(
            415,
            format!("unsupported Content-Encoding '{other}'"),
        )),
    }
}

/// The protocol to pass on from a `Git-Protocol` header (`version=2`, or empty).
pub fn git_protocol(header: Option<&str>) -> String {
    crate::relay::git_protocol(header.unwrap_or_default())
}

#[cfg(test)]
mod tests;
