//! `exec`: one more process in a running container (runc(8) `exec`; runtime-spec config.md,
//! "Process": containerd's shim passes one as a process.json).

use anyhow::{Context, bail};

use crate::cli::ExecArgs;
use crate::config;
use crate::lifecycle::write_pid_file;
use crate::state::{Status, Store};

// ANCHOR: exec
/// `exec`: one more process in the running container, from a process.json (what containerd's
/// shim passes) or the container's own process with another command. With `--detach` it
/// returns once the process runs, which the caller's subreaper then adopts.
pub fn exec(store: &Store, args: &ExecArgs) -> anyhow::Result<i32> {
    let (record, dir) = store.load(&args.id)?;
    match record.status(&dir) {
        Status::Running | Status::Created => {}
        status => bail!("cannot exec in container {}: it is {status}", args.id),
    }
    let spec = config::load(&record.bundle)?;
    let process = exec_process(&spec, args)?;
    let mut prepared = config::map_exec(
        &spec,
        &process,
        record.process,
        &record.cgroup_path,
        args.console_socket.as_deref(),
    )?;
    if args.preserve_fds > 0 {
        prepared
            .add(crate::features::PassFds::check(args.preserve_fds).map_err(anyhow::Error::msg)?);
    }
    let forwarder = if args.detach {
        None
    } else {
        Some(chroot::signals::Forwarder::install().context("catch signals to forward")?)
    };
    let running = prepared
        .spawn()
        .with_context(|| format!("exec in container {}", args.id))?;
    if let Some(path) = &args.pid_file {
        write_pid_file(path, running.pid().as_raw())
            .with_context(|| format!("write the pid file {}", path.display()))?;
    }
    let Some(forwarder) = forwarder else {
        return Ok(0);
    };
    Ok(running.wait_forwarding(&forwarder)?.code())
}
// ANCHOR_END: exec

/// The process `exec` runs: `--process FILE`, or the container's process with the command and
/// the flags given.
fn exec_process(
    spec: &oci_spec::runtime::Spec,
    args: &ExecArgs,
) -> anyhow::Result<oci_spec::runtime::Process> {
    if let Some(path) = &args.process {
        if !args.command.is_empty() {
            bail!("give either --process or a command, not both");
        }
        let file = std::fs::File::open(path)
            .with_context(|| format!("open process file {}", path.display()))?;
        return serde_json::from_reader(std::io::BufReader::new(file))
            .with_context(|| format!("read process file {}", path.display()));
    }
    if args.command.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.into());
    }
    let mut env = process.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    process.set_env(Some(env));
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let number = |text: &str| {
            text.parse::<u32>()
                .with_context(|| format!("invalid --user {user:?}: give UID[:GID] as numbers"))
        };
        let mut spec_user = process.user().clone();
        spec_user.set_uid(number(uid)?);
        spec_user.set_gid(number(gid)?);
        process.set_user(spec_user);
    }
    Ok(process)
}
