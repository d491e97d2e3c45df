//! `hello`: the program inside skiff's built-in `hello-world` image.
//!
//! Like Docker's hello-world, it explains what the engine just did to run it. It is compiled
//! statically by `build.rs` (it runs in an image that holds nothing else) and uses only the
//! standard library.

use std::io::Write;

fn main() {
    let pid = std::process::id();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let message = format!(
        "
Hello from skiff!
This message shows that your installation appears to be working correctly.

To generate this message, skiff took the following steps:
 1. It found the \"hello-world\" image in its store (skiff builds this one itself, so it
    works on a machine with no registry at hand).
 2. It stacked the image's layers with overlayfs into a root filesystem for a new container.
 3. It cloned a process into new namespaces (pid, uts, ipc, mount, network, cgroup), put it
    in a cgroup of its own, pivoted its root into the image's files and dropped privileges.
 4. It executed this program, which wrote this message to its stdout, and skiff passed it
    through to your terminal.

Inside the container this program is PID {pid} on a host named \"{hostname}\".

To try something more ambitious, run a shell in a busybox container:
 $ skiff run -it busybox sh

Learn how each step works, stage by stage, in the skiff book: mdbook serve book
"
    );
    let mut stdout = std::io::stdout().lock();
    // A closed stdout is not worth a panic message.
    let _ = stdout.write_all(message.as_bytes());
    let _ = stdout.flush();
}
