//! Typed calls of CommitService history: ListLastCommitsForTree, FindCommits, CountDivergingCommits, RawBlame,
//! CommitStats, CheckObjectsExist, CommitsByMessage, ListCommitsByRefName, GetCommitSignatures,
//! GetCommitMessages.

use super::Client;

impl Client {}
