//! Compiles the probe as a static binary, so it runs in a rootfs that holds no C library, and the
//! bench's launcher the same way, so it is as small as can be.
//!
//! Cargo cannot build one crate of a workspace with `+crt-static` (proc-macro crates would break),
//! so the probe, which uses only the standard library, is compiled here with rustc directly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("src");
    let probe = static_binary(&src.join("bin/probe.rs"), &out.join("probe"));
    println!("cargo:rustc-env=LAB_PROBE={}", probe.display());
    // The bench's launcher: small and static, so the memory it holds when it forks a contestant
    // (which the contestant's peak RSS inherits) is as small as it can be.
    let launcher = static_binary(&src.join("bench/launcher.rs"), &out.join("bench-launcher"));
    println!("cargo:rustc-env=LAB_BENCH_LAUNCHER={}", launcher.display());
    // OUT_DIR is <target>/<profile>/build/labs-<hash>/out; fixtures live in <target>/lab-fixtures.
    let target = out.ancestors().nth(4).expect("OUT_DIR is deep enough");
    println!(
        "cargo:rustc-env=LAB_FIXTURES={}",
        target.join("lab-fixtures").display()
    );
}

/// Compiles `source` (standard library only) into a static, stripped binary at `output`.
fn static_binary(source: &Path, output: &Path) -> PathBuf {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
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
        .arg(output)
        .arg(source)
        .status()
        .expect("run rustc to build a static helper");
    assert!(status.success(), "building {} failed", source.display());
    println!("cargo:rerun-if-changed={}", source.display());
    output.to_path_buf()
}
