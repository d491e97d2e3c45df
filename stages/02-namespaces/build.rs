//! Compiles `skiff-init`, the init that `--init` runs as PID 1, as a static binary the engine
//! embeds: a container's root need not hold a C library, and the engine must not depend on a
//! file installed beside it. Cargo cannot build one crate of a workspace with `+crt-static`
//! (proc-macro crates would break), so rustc is called directly, as for the lab probe. The
//! binary's SHA-256 names the file the engine writes into its store, once per version.

use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("src/bin/skiff-init.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let init = out.join("skiff-init");
    let mut command = Command::new(rustc);
    command
        .args(["--edition", "2024", "--crate-name", "skiff_init"])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
            "-C",
            "lto=fat",
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"]);
    if let Some(target) = std::env::var_os("TARGET") {
        command.arg("--target").arg(target);
    }
    let status = command
        .arg("-o")
        .arg(&init)
        .arg(&source)
        .status()
        .expect("run rustc to build the static skiff-init");
    assert!(status.success(), "building the static skiff-init failed");
    let bytes = std::fs::read(&init).expect("read the static skiff-init back");
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rustc-env=SKIFF_INIT_BIN={}", init.display());
    println!("cargo:rustc-env=SKIFF_INIT_DIGEST={digest}");
}
