//! See main.rs. GetArchive of a 500 MB tree streams: the daemon's RSS does not grow with
//! it (step 11, WP-C).
