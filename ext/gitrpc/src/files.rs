//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/files.rb`:
//! GetArchive, file search, FindLicense, branches and tags containing a commit
//! (step 11, WP-C).
//!
//! Methods are `impl NativeClient` blocks here, calling through `NativeClient::run` (streams:
//! `crate::stream::NativeStream` of `Item::Other`), registered by `init`; struct classes are
//! looked up with `convert::class`.

use gitrpc_client::client::repository;
use magnus::value::Lazy;
use magnus::{method, prelude::*, Error, RClass, Ruby, Value};

use crate::client::NativeClient;
use crate::convert;

// FindLicense: `repo.license`.

static LICENSE: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "License"));

impl NativeClient {
    /// `find_license(storage, path)`: `GitRPC::License(short_name, name, url, path,
    /// nickname)`, or nil if the tree HEAD points to has no license file (or there is no
    /// HEAD).
    fn find_license(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
    ) -> Result<Option<Value>, Error> {
        let repo = repository(&storage, &path);
        let found = rb_self.run(ruby, |c| async move { c.find_license(&repo).await })?;
        let Some(l) = found else {
            return Ok(None);
        };
        let license = ruby.get_inner(&LICENSE).new_instance((
            ruby.str_new(&l.license_short_name),
            ruby.str_new(&l.license_name),
            ruby.str_new(&l.license_url),
            ruby.str_new(&l.license_path),
            ruby.str_new(&l.license_nickname),
        ))?;
        Ok(Some(license))
    }
}

pub fn init(_ruby: &Ruby, client: RClass) -> Result<(), Error> {
    client.define_method("find_license", method!(NativeClient::find_license, 2))?;
    Ok(())
}
