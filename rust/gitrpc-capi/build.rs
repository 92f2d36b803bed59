//! Generate the C header with cbindgen into OUT_DIR (a test compares it with the committed
//! include/gitrpc.h). With GITRPC_WRITE_HEADER=1 it also rewrites include/gitrpc.h.
//! Gives the shared library its versioned name (SONAME) from `GITRPC_ABI_VERSION` in lib.rs.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("gitrpc.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=GITRPC_WRITE_HEADER");
    let abi = abi_version(&crate_dir.join("src/lib.rs"));
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") | Ok("ios") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libgitrpc.{abi}.dylib")
        }
        Ok("windows") => {}
        _ => println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libgitrpc.so.{abi}"),
    }
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen: generate gitrpc.h");
    bindings.write_to_file(&out);
    if std::env::var_os("GITRPC_WRITE_HEADER").is_some_and(|v| v == "1") {
        let committed = crate_dir.join("../../include/gitrpc.h");
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::copy(&out, &committed).unwrap();
    }
}

/// `N` from the line `pub const GITRPC_ABI_VERSION: u32 = N;` of lib.rs.
fn abi_version(lib_rs: &std::path::Path) -> u32 {
    let src = std::fs::read_to_string(lib_rs).unwrap();
    src.lines()
        .find_map(|l| l.strip_prefix("pub const GITRPC_ABI_VERSION: u32 = "))
        .and_then(|rest| rest.trim_end_matches(';').parse().ok())
        .expect("lib.rs defines `pub const GITRPC_ABI_VERSION: u32 = N;`")
}
