//! Labs 01 to 04 against the `images` binary (or `LAB_BIN`): each check is a test, so
//! `cargo test -p images whiteout` runs the checks whose name holds `whiteout`.

fn main() -> std::process::ExitCode {
    labs::run_tests(4, env!("CARGO_BIN_EXE_images"))
}
