//! `skiff-runtime`: runc's command line over skiff's stage crates (see the library's docs).

fn main() {
    std::process::exit(skiff_runtime::cli::main());
}
