//! CVE-2019-5736: the runtime's own binary, out of a container's reach.
//!
//! A runtime that joins a container (`create`, `run`, `exec`) is, for a moment, a process in the
//! container's PID namespace, and `/proc/PID/exe` of that process is a door to the runtime's
//! binary on the host. In 2019 a container that opened it (`O_PATH` while the runtime ran, then
//! for writing once it had exited) overwrote the host's `runc` with its own program, which the
//! next `docker exec` then ran as root on the host (CVE-2019-5736).
//!
//! runc's first answer was to re-execute itself from a sealed copy in memory (`memfd_create(2)`
//! with `F_SEAL_WRITE`): `/proc/PID/exe` then names the copy, which nothing can change. That
//! costs a copy of the binary on every call. skiff-runtime takes a cheaper door with the same
//! effect: a *detached, read-only bind mount* of its own binary (`open_tree(2)` with
//! `OPEN_TREE_CLONE`, then `mount_setattr(2)` with `MOUNT_ATTR_RDONLY`, the same pair stage 02
//! uses for `--init`), which it then executes with `execveat(2)`. The mount is in no mount
//! table, so no other process sees it come or go, and it goes when the last process using it
//! exits. `/proc/PID/exe` now leads into a read-only mount: opening it for writing fails with
//! `EROFS`, whatever the container does, and no byte of the binary is copied.
//!
//! See open_tree(2), mount_setattr(2), execveat(2), and runc's `libcontainer/exeseal`.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;

/// Set in the environment of the re-executed runtime, so it does not do it again.
const SEALED: &str = "_SKIFF_RUNTIME_SEALED";

/// Whether this process already runs from the read-only mount.
pub fn is_sealed() -> bool {
    std::env::var_os(SEALED).is_some()
}

// ANCHOR: reexec
/// Executes this program again, with the same arguments, from a detached read-only mount of
/// its own binary. Returns only if that failed (the caller goes on as it is, and says so).
pub fn reexec_read_only() -> std::io::Error {
    let tree = match namespaces::init::detached_mount(Path::new("/proc/self/exe")) {
        Ok(tree) => tree,
        Err(e) => return e,
    };
    let to_c = |s: std::ffi::OsString| CString::new(s.into_encoded_bytes());
    let Ok(args) = std::env::args_os().map(to_c).collect::<Result<Vec<_>, _>>() else {
        return Errno::EINVAL.into();
    };
    let mut env: Vec<CString> = Vec::new();
    for (key, value) in std::env::vars_os() {
        let mut pair = key.into_encoded_bytes();
        pair.push(b'=');
        pair.extend(value.into_encoded_bytes());
        match CString::new(pair) {
            Ok(pair) => env.push(pair),
            Err(_) => return Errno::EINVAL.into(),
        }
    }
    env.push(CString::from(c"_SKIFF_RUNTIME_SEALED=1"));
    debug_assert!(SEALED.len() + 2 == c"_SKIFF_RUNTIME_SEALED=1".count_bytes());
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: execveat reads the empty path, and argv and envp, NULL-terminated arrays of
    // NUL-terminated strings that `args` and `env` keep alive for the call; on success it does
    // not return.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_execveat,
            tree.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(rc).err().unwrap_or(Errno::EIO).into()
}
// ANCHOR_END: reexec
