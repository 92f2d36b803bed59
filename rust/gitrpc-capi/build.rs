//! Generate the C header with cbindgen into OUT_DIR (a test compares it with the committed
//! include/gitrpc.h). With GITRPC_WRITE_HEADER=1 it also rewrites include/gitrpc.h.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("gitrpc.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=GITRPC_WRITE_HEADER");
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
