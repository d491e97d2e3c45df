//! `skiff-pump`: the monitor's steady state, as a program of its own, so that what a running
//! container costs is this small loop and not the whole engine (see `skiff::pump`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(skiff::pump::main(&args));
}
