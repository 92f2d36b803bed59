//! Typed calls of DiffService reads: CommitDiff (one `Diff` per file, reassembled from its messages), FindChangedPaths, GetPatchID.

use super::Client;

impl Client {}
