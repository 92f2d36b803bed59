//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/history.rb`:
//! the CommitService history reads: last commits of a tree, FindCommits, RawBlame,
//! CountDivergingCommits... (step 11, WP-B).
//!
//! Methods are `impl NativeClient` blocks here, calling through `NativeClient::run` (streams:
//! `crate::stream::NativeStream` of `Item::Other`), registered by `init`; struct classes are
//! looked up with `convert::class`.

use magnus::{Error, RClass, Ruby};

pub fn init(_ruby: &Ruby, _client: RClass) -> Result<(), Error> {
    Ok(())
}
