//! `skiff`: the container engine as it stands at the end of the course. Every stage's
//! commands, and containers that outlive the command that started them.
//!
//! ```text
//! skiff run [-d] [-it] [--name N] [--restart P] [-p ...] [-v ...] [FLAGS] IMAGE [COMMAND...]
//! skiff create | start | attach | stop | restart | kill | rm | wait  CONTAINER...
//! skiff ps [-a] [-q] | logs [-f] CONTAINER | inspect NAME...
//! skiff container ... | image ... | volume ... | network ...   (Docker's management groups)
//! skiff images | build | pull | push | load | save | tag | rmi | ...
//! ```

fn main() {
    // The monitor's steady state parses its own arguments: it must stay small (pump.rs).
    chroot::timeline::mark("cli: start");
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("container-pump") {
        std::process::exit(skiff::pump::main(&args[2..]));
    }
    // The monitor's helper for one `exec`.
    if args.get(1).map(String::as_str) == Some("container-exec") {
        std::process::exit(skiff::exec::helper_main(&args[2..]));
    }
    let (cli, code) = skiff::cli::parse();
    chroot::timeline::mark("cli: parsed");
    // `-H`, SKIFF_HOST or DOCKER_HOST: a client of that daemon, not of the local store.
    let host = skiff::remote::chosen(cli.host.as_deref(), &cli.command);
    if host.is_none() && skiff::remote::is_service(&cli.command) {
        // SAFETY: setenv(3) is not thread-safe, and no other thread exists yet: main starts
        // none before this point.
        unsafe {
            std::env::remove_var("SKIFF_HOST");
            std::env::remove_var("DOCKER_HOST");
        }
    }
    let (result, code) = match host {
        Some(host) => {
            let code = skiff::remote::failure_code(&cli.command);
            (skiff::remote::execute(&host, cli.command), code)
        }
        None => (cli.command.execute(), code),
    };
    match result {
        Ok(code) => {
            chroot::timeline::mark("cli: end");
            std::process::exit(code)
        }
        Err(error) => {
            let message = chroot::cli::one_line(&error);
            if code == chroot::cli::EXIT_ENGINE {
                eprintln!("skiff: {message}");
            } else if error.is::<skiff::remote::http::DaemonError>() {
                // The docker CLI's words: `Error response from daemon: ...`.
                eprintln!("{message}");
            } else {
                eprintln!("Error: {message}");
            }
            // A command that could not be executed (126) or found (127) keeps Docker's code.
            let launch = error
                .chain()
                .find_map(|cause| cause.downcast_ref::<chroot::LaunchError>())
                .map(chroot::LaunchError::exit_code);
            std::process::exit(launch.unwrap_or(code));
        }
    }
}
