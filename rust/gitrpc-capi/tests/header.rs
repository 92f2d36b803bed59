//! The committed include/gitrpc.h must be what cbindgen generates from this crate now.

#[test]
fn committed_header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/gitrpc.h"));
    let committed = include_str!("../../../include/gitrpc.h");
    assert!(
        generated == committed,
        "include/gitrpc.h is stale: run script/header (or `rake header`) and commit it"
    );
}
