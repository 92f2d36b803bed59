//! See main.rs. CommitDiff of a 200 MB diff with limits set: the daemon's RSS stays under
//! a fixed budget (step 11, WP-A).
