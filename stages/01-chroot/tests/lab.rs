//! Lab 01 against the `chroot` binary (or `LAB_BIN`): each check of `labs/01-chroot.toml` is a
//! test, so `cargo test -p chroot escape` runs one.

fn main() -> std::process::ExitCode {
    labs::run_tests(1, env!("CARGO_BIN_EXE_chroot"))
}
