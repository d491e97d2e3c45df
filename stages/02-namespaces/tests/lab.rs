//! Labs 01 and 02 against the `namespaces` binary (or `LAB_BIN`): each check is a test, so
//! `cargo test -p namespaces pid` runs the checks whose name holds `pid`.

fn main() -> std::process::ExitCode {
    labs::run_tests(2, env!("CARGO_BIN_EXE_namespaces"))
}
