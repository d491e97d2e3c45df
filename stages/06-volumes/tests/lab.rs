//! Labs 01 to 06 against the `volumes` binary (or `LAB_BIN`): each check is a test, so
//! `cargo test -p volumes bind` runs the checks whose name holds `bind`.

fn main() -> std::process::ExitCode {
    labs::run_tests(6, env!("CARGO_BIN_EXE_volumes"))
}
