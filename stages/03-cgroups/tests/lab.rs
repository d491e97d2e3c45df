//! Labs 01 to 03 against the `cgroups` binary (or `LAB_BIN`): each check is a test, so
//! `cargo test -p cgroups memory` runs the checks whose name holds `memory`.

fn main() -> std::process::ExitCode {
    labs::run_tests(3, env!("CARGO_BIN_EXE_cgroups"))
}
