//! Compiles the probe as a static binary, so it runs in a rootfs that holds no C library.
//!
//! Cargo cannot build one crate of a workspace with `+crt-static` (proc-macro crates would break),
//! so the probe, which uses only the standard library, is compiled here with rustc directly.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("src/bin/probe.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let probe = out.join("probe");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "-C",
            "opt-level=2",
            "-C",
            "panic=abort",
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&probe)
        .arg(&source)
        .status()
        .expect("run rustc to build the probe");
    assert!(status.success(), "building the static probe failed");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rustc-env=LAB_PROBE={}", probe.display());
    // OUT_DIR is <target>/<profile>/build/labs-<hash>/out; fixtures live in <target>/lab-fixtures.
    let target = out.ancestors().nth(4).expect("OUT_DIR is deep enough");
    println!(
        "cargo:rustc-env=LAB_FIXTURES={}",
        target.join("lab-fixtures").display()
    );
}
