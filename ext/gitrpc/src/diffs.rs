//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/diffs.rb`:
//! CommitDiff, FindChangedPaths, GetPatchID and the blob listings (step 11, WP-A).
//!
//! Methods are `impl NativeClient` blocks here, calling through `NativeClient::run` (streams:
//! `crate::stream::NativeStream` of `Item::Other`), registered by `init`; struct classes are
//! looked up with `convert::class`.

use magnus::{Error, RClass, Ruby};

pub fn init(_ruby: &Ruby, _client: RClass) -> Result<(), Error> {
    Ok(())
}
