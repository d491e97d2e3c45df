//! Labs 01 to 07 against the `skiff` binary (or `LAB_BIN`): each check is a test, so
//! `cargo test -p skiff logs` runs the checks whose name holds `logs`.

fn main() -> std::process::ExitCode {
    labs::run_tests(7, env!("CARGO_BIN_EXE_skiff"))
}
