//! `GitRPC::Native::Client`: a gitrpc client over a socket (`connect`) or dispatching into a
//! `Native::Server` of this process (`Server#client`).
//!
//! Fork: a socket client made before `fork` reconnects to its address the first time the
//! child uses it; an in-process client answers UNAVAILABLE in the child (the server's threads
//! stayed in the parent).

use std::sync::Mutex;
use std::time::Duration;

use gitrpc_client::runtime::Owned;
use gitrpc_client::{Client, Options};
use magnus::typed_data::Obj;
use magnus::value::ReprValue;
use magnus::{
    function, method, prelude::*, DataTypeFunctions, Error, RArray, RClass, RModule, RString, Ruby,
    TypedData, Value,
};
use tonic::Status;

use crate::blocking::block_on;
use crate::convert;
use crate::errors::OrRaise;
use crate::gc::Held;
use crate::server::NativeServer;
use crate::stream::{Item, NativeStream};

#[derive(TypedData)]
#[magnus(
    class = "GitRPC::Native::Client",
    free_immediately,
    mark,
    compact,
    size
)]
pub struct NativeClient {
    /// The connection, dropped inside the runtime (`Owned`), or left alone after fork.
    conn: Mutex<Option<Owned<Client>>>,
    /// Socket address(es) to (re)connect to, and how; `None` for an in-process client.
    remote: Option<(String, Options)>,
    timeout: Mutex<Option<Duration>>,
    /// `address` as given (a frozen String), or nil.
    address: Held,
    /// The `Native::Server` an in-process client dispatches to (kept alive by us), or nil.
    server: Held,
    /// Object directories every repository of this client names (a hook event's
    /// quarantine): `git_object_directory` and `git_alternate_object_directories`.
    objects: Option<(String, Vec<String>)>,
}

impl DataTypeFunctions for NativeClient {
    fn mark(&self, marker: &magnus::gc::Marker) {
        self.address.mark(marker);
        self.server.mark(marker);
    }

    fn compact(&self, compactor: &magnus::gc::Compactor) {
        self.address.compact(compactor);
        self.server.compact(compactor);
    }
}

fn seconds(timeout: Option<f64>) -> Result<Option<Duration>, Error> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t > 0.0 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(Error::new(
            magnus::Ruby::get().unwrap().exception_arg_error(),
            format!("timeout must be a positive number of seconds or nil, not {t}"),
        )),
    }
}

impl NativeClient {
    /// `Native::Client.connect(address, timeout_seconds_or_nil, token_or_nil,
    /// tls_ca_file_or_nil, retries)`: connects eagerly.
    fn connect(
        ruby: &Ruby,
        address: RString,
        timeout: Option<f64>,
        token: Option<String>,
        tls_ca_file: Option<String>,
        retries: u32,
    ) -> Result<Self, Error> {
        let timeout = seconds(timeout)?;
        let addr = address.to_string()?;
        let opts = Options {
            token: token.filter(|t| !t.is_empty()),
            tls_ca_file: tls_ca_file.map(Into::into),
            retries,
            ..Options::default()
        };
        let client = block_on(ruby, connect(&addr, timeout, opts.clone()))?.or_raise(ruby)?;
        let frozen = ruby.str_new(&addr);
        frozen.freeze();
        Ok(NativeClient {
            conn: Mutex::new(Some(Owned::new(client))),
            remote: Some((addr, opts)),
            timeout: Mutex::new(timeout),
            address: Held::new(frozen),
            server: Held::new(ruby.qnil()),
            objects: None,
        })
    }

    /// An in-process client of `server`.
    pub fn in_process(
        ruby: &Ruby,
        server: Obj<NativeServer>,
        client: Client,
        timeout: Option<Duration>,
    ) -> Self {
        NativeClient {
            conn: Mutex::new(Some(Owned::new(client))),
            remote: None,
            timeout: Mutex::new(timeout),
            address: Held::new(ruby.qnil()),
            server: Held::new(server),
            objects: None,
        }
    }

    /// The `Repository` message of a call: storage, path and this client's object
    /// directories.
    pub(crate) fn repo(&self, storage: &str, path: &str) -> gitrpc_client::gitaly::Repository {
        let mut r = gitrpc_client::client::repository(storage, path);
        if let Some((dir, alternates)) = &self.objects {
            r.git_object_directory = dir.clone();
            r.git_alternate_object_directories = alternates.clone();
        }
        r
    }

    /// The same client, its calls reading through these object directories (a hook's
    /// quarantine: the server accepts only the repository's own).
    pub(crate) fn with_objects(self, dir: String, alternates: Vec<String>) -> Self {
        let none = dir.is_empty() && alternates.is_empty();
        NativeClient {
            objects: (!none).then_some((dir, alternates)),
            ..self
        }
    }

    pub fn timeout_arg(t: Option<f64>) -> Result<Option<Duration>, Error> {
        seconds(t)
    }

    /// The client to call with, reconnecting after fork. Never holds a lock across a wait
    /// (another Ruby thread could hold the GVL while blocked on it).
    pub(crate) fn client(&self, ruby: &Ruby) -> Result<Client, Error> {
        {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(Ok(c)) = conn.as_ref().map(Owned::get) {
                return Ok(c.clone());
            }
        }
        let Some((addr, opts)) = &self.remote else {
            return Err(crate::errors::rpc(
                ruby,
                Status::unavailable(
                    "in-process server was started before fork(); it runs only in the parent process",
                ),
            ));
        };
        let timeout = *self.timeout.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = block_on(ruby, connect(addr, timeout, opts.clone()))?.or_raise(ruby)?;
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match conn.as_ref().map(Owned::get) {
            Some(Ok(c)) => Ok(c.clone()), // another thread reconnected meanwhile
            _ => {
                // The parent's client, if any, is left alone by `Owned`.
                *conn = Some(Owned::new(fresh.clone()));
                Ok(fresh)
            }
        }
    }

    /// Run one call with the GVL released.
    pub(crate) fn run<T, Fut>(&self, ruby: &Ruby, f: impl FnOnce(Client) -> Fut) -> Result<T, Error>
    where
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let c = self.client(ruby)?;
        block_on(ruby, f(c))?.or_raise(ruby)
    }

    fn address(ruby: &Ruby, rb_self: &Self) -> Value {
        rb_self.address.get(ruby)
    }

    fn server(ruby: &Ruby, rb_self: &Self) -> Value {
        rb_self.server.get(ruby)
    }

    fn get_timeout(&self) -> Option<f64> {
        self.timeout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|d| d.as_secs_f64())
    }

    fn set_timeout(ruby: &Ruby, rb_self: &Self, t: Option<f64>) -> Result<(), Error> {
        let t = seconds(t)?;
        *rb_self.timeout.lock().unwrap_or_else(|p| p.into_inner()) = t;
        let conn = rb_self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Ok(c)) = conn.as_ref().map(Owned::get) {
            c.set_timeout(t);
        }
        let _ = ruby;
        Ok(())
    }

    fn repository_exists(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
    ) -> Result<bool, Error> {
        let repo = rb_self.repo(&storage, &path);
        rb_self.run(ruby, |c| async move { c.repository_exists(&repo).await })
    }

    fn create_repository(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        default_branch: String,
    ) -> Result<(), Error> {
        let repo = rb_self.repo(&storage, &path);
        rb_self.run(ruby, |c| async move {
            c.create_repository(&repo, &default_branch).await
        })
    }

    fn remove_repository(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
    ) -> Result<(), Error> {
        let repo = rb_self.repo(&storage, &path);
        rb_self.run(ruby, |c| async move { c.remove_repository(&repo).await })
    }

    fn ref_exists(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        name: String,
    ) -> Result<bool, Error> {
        let repo = rb_self.repo(&storage, &path);
        rb_self.run(ruby, |c| async move { c.ref_exists(&repo, &name).await })
    }

    fn default_branch(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let name = rb_self.run(
            ruby,
            |c| async move { c.find_default_branch_name(&repo).await },
        )?;
        Ok(convert::opt(
            ruby,
            name.map(|n| convert::text(ruby, &n).as_value()),
        ))
    }

    fn branches(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
    ) -> Result<RArray, Error> {
        let repo = rb_self.repo(&storage, &path);
        let branches = rb_self.run(ruby, |c| async move { c.branches(&repo).await })?;
        let out = ruby.ary_new_capa(branches.len());
        for b in &branches {
            out.push(convert::branch(ruby, b)?)?;
        }
        Ok(out)
    }

    fn find_commit(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        // SAFETY: copied before any Ruby code can run.
        let rev = unsafe { revision.as_slice() }.to_vec();
        let commit = rb_self.run(ruby, |c| async move { c.find_commit(&repo, &rev).await })?;
        Ok(convert::opt(
            ruby,
            commit.map(|c| convert::commit(ruby, &c)).transpose()?,
        ))
    }

    fn commit_is_ancestor(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        ancestor: String,
        child: String,
    ) -> Result<bool, Error> {
        let repo = rb_self.repo(&storage, &path);
        rb_self.run(ruby, |c| async move {
            c.commit_is_ancestor(&repo, &ancestor, &child).await
        })
    }

    fn blob(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        oid: String,
        limit: i64,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let blob = rb_self.run(
            ruby,
            |c| async move { c.get_blob(&repo, &oid, limit).await },
        )?;
        Ok(convert::opt(
            ruby,
            blob.map(|b| convert::blob(ruby, &b)).transpose()?,
        ))
    }

    fn tree_entry(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
        entry_path: RString,
        limit: i64,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        // SAFETY: copied before any Ruby code can run.
        let (rev, p) = unsafe { (revision.as_slice().to_vec(), entry_path.as_slice().to_vec()) };
        let entry = rb_self.run(ruby, |c| async move {
            c.tree_entry(&repo, &rev, &p, limit).await
        })?;
        Ok(convert::opt(
            ruby,
            entry.map(|e| convert::tree_entry(ruby, &e)).transpose()?,
        ))
    }

    fn list_commits(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        storage: String,
        path: String,
        revisions: Vec<String>,
    ) -> Result<NativeStream, Error> {
        let repo = rb_self.repo(&storage, &path);
        let stream = rb_self.run(ruby, |c| async move {
            use futures::StreamExt;
            Ok(c.list_commits(&repo, revisions)
                .await?
                .map(|r| r.map(|c| Item::Commit(Box::new(c))))
                .boxed())
        })?;
        Ok(NativeStream::new(rb_self.as_value(), stream))
    }

    fn call(
        ruby: &Ruby,
        rb_self: &Self,
        method: String,
        request: RString,
    ) -> Result<RString, Error> {
        // SAFETY: copied before any Ruby code can run.
        let body = unsafe { request.as_slice() }.to_vec();
        let out = rb_self.run(ruby, |c| async move { c.call_unary(&method, body).await })?;
        Ok(convert::binary(ruby, &out))
    }

    fn call_stream(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        method: String,
        request: RString,
    ) -> Result<NativeStream, Error> {
        // SAFETY: copied before any Ruby code can run.
        let body = unsafe { request.as_slice() }.to_vec();
        let stream = rb_self.run(ruby, |c| async move {
            use futures::StreamExt;
            Ok(c.call_server_streaming(&method, body)
                .await?
                .map(|r| r.map(Item::Bytes))
                .boxed())
        })?;
        Ok(NativeStream::new(rb_self.as_value(), stream))
    }
}

async fn connect(addr: &str, timeout: Option<Duration>, opts: Options) -> Result<Client, Status> {
    let opts = Options { timeout, ..opts };
    Client::connect(addr, &opts).await.map_err(Status::from)
}

/// Defines `Native::Client` with the methods of this file; returns the class, for the area
/// files (`diffs.rs`, `history.rs`, `files.rs`) to add theirs.
pub fn init(ruby: &Ruby, native: RModule) -> Result<RClass, Error> {
    let class = native.define_class("Client", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("connect", function!(NativeClient::connect, 5))?;
    class.define_method("address", method!(NativeClient::address, 0))?;
    class.define_method("server", method!(NativeClient::server, 0))?;
    class.define_method("timeout", method!(NativeClient::get_timeout, 0))?;
    class.define_method("timeout=", method!(NativeClient::set_timeout, 1))?;
    class.define_method(
        "repository_exists",
        method!(NativeClient::repository_exists, 2),
    )?;
    class.define_method(
        "create_repository",
        method!(NativeClient::create_repository, 3),
    )?;
    class.define_method(
        "remove_repository",
        method!(NativeClient::remove_repository, 2),
    )?;
    class.define_method("ref_exists", method!(NativeClient::ref_exists, 3))?;
    class.define_method("default_branch", method!(NativeClient::default_branch, 2))?;
    class.define_method("branches", method!(NativeClient::branches, 2))?;
    class.define_method("find_commit", method!(NativeClient::find_commit, 3))?;
    class.define_method(
        "commit_is_ancestor",
        method!(NativeClient::commit_is_ancestor, 4),
    )?;
    class.define_method("blob", method!(NativeClient::blob, 4))?;
    class.define_method("tree_entry", method!(NativeClient::tree_entry, 5))?;
    class.define_method("list_commits", method!(NativeClient::list_commits, 3))?;
    class.define_method("call", method!(NativeClient::call, 2))?;
    class.define_method("call_stream", method!(NativeClient::call_stream, 2))?;
    Ok(class)
}
