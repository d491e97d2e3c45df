//! Labs 01 to 05 against the `networking` binary (or `LAB_BIN`): each check is a test, so
//! `cargo test -p networking bridge` runs the checks whose name holds `bridge`.

fn main() -> std::process::ExitCode {
    labs::run_tests(5, env!("CARGO_BIN_EXE_networking"))
}
