//! Compiles every `.proto` under `proto/` with protox (pure Rust, no `protoc`) and generates tonic/prost
//! code into OUT_DIR, plus an encoded FileDescriptorSet for gRPC reflection.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("plinth_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".plinth.common.v1.SchemaId", "crate::ids::SchemaId")
        .extern_path(".plinth.common.v1.Subject", "crate::ids::Subject")
        .extern_path(".plinth.common.v1.TopicName", "crate::ids::TopicName")
        .extern_path(".plinth.common.v1.DatasetName", "crate::ids::DatasetName")
        .compile_fds(fds)?;

    // prost writes a reference to another package as a path relative to the package's nesting
    // (`plinth.serving.v1` → `super::super::super::inference`), but `lib.rs` mounts `plinth.*` packages
    // without the `plinth` level: point references to the top-level `inference` package at its module.
    for entry in std::fs::read_dir(&out_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let code = std::fs::read_to_string(&path)?;
            let fixed = code.replace("super::super::super::inference::", "crate::inference::");
            if fixed != code {
                std::fs::write(&path, fixed)?;
            }
        }
    }
    Ok(())
}

fn collect_protos(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
