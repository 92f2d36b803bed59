//! Compiles the .proto files under `proto/` with protox (pure Rust, no
//! protoc needed), saves the encoded descriptor set for reflection and tests,
//! and generates prost messages plus tonic clients and servers.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "shared.proto",
    "errors.proto",
    "repository.proto",
    "ref.proto",
    "commit.proto",
    "blob.proto",
    "diff.proto",
    "server.proto",
    "packfile.proto",
    "ssh.proto",
    "smarthttp.proto",
    "operations.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }

    let fds = protox::compile(PROTOS, ["proto"])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("gitaly_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;

    Ok(())
}
