//! The last commit of every entry of a directory (ListLastCommitsForTree): one
//! `git log --full-history --sparse --raw -z` walk over the directory, and for each entry the
//! first commit of its TREESAME-parent chain that changed it (design note §3.1). Pure parsing
//! and state, testable without a server.
