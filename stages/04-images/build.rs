//! Compiles the program of the built-in `hello-world` image as a static binary: the image holds
//! nothing else, so the program must need no C library. (Cargo cannot build one crate of a
//! workspace with `+crt-static`, so rustc is called directly, as for the lab probe.)

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("hello/hello.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let hello = out.join("hello");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&hello)
        .arg(&source)
        .status()
        .expect("run rustc to build the hello-world program");
    assert!(
        status.success(),
        "building the static hello-world program failed"
    );
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rustc-env=SKIFF_HELLO_BIN={}", hello.display());
}
