//! # Stage 07: skiff — containers as objects
//!
//! Until stage 06 a container lived exactly as long as the command that ran it. Here it becomes
//! an object with a life of its own, as in Docker: created, started, stopped, started again,
//! removed; running in the background while you do something else, its output kept.
//!
//! - [`spec`]: `run`'s flags, checked and resolved, kept as the container's specification;
//! - [`container`]: `create`: the record (stage 02's) with a unique name;
//! - [`monitor`] and [`pump`]: the small process that holds a running container: its parent,
//!   its streams' owner, its log's writer, its restart policy;
//! - [`stdio`]: the container's streams: pipes, or a terminal made inside it;
//! - [`attach`] and [`client`]: the socket protocol between a monitor and a terminal;
//! - [`lifecycle`]: start, stop, kill, restart, rm, wait, and what a dead monitor means;
//! - [`logs`]: Docker's json-file log, written and read;
//! - [`ps`], [`inspect`] and [`docker_json`], [`format`]: Docker's tables, its JSON shapes and
//!   Go templates;
//! - [`pause`], [`top`], [`port`], [`rename`], [`system`]: Docker's other container commands;
//! - [`wiring`] and [`connect`]: a container wired to others: `--network container:`,
//!   `--volumes-from`, `-P`, and `network connect` / `disconnect`, with [`netns`] (a running
//!   container's network namespace, held through a pidfd);
//! - [`cp`], [`diff`], [`export`], [`commit`]: a container's files, with [`beneath`] (paths
//!   resolved inside its root), [`rootfs`] (its root, running or stopped) and [`archive`] (trees
//!   as tar streams, by descriptor);
//! - [`api`]: `system service`, the Engine API on a socket, for docker's own clients;
//! - [`remote`]: `skiff -H URI`: the same commands as a client of any Engine API;
//! - [`cli`]: the commands.

// ANCHOR: allocator
/// The allocator of skiff's musl build, the one `labs bench` times and the README installs.
///
/// Every program linked with glibc asks the CPU, as it starts, for the size of each of its
/// caches, with the `CPUID` instruction, dozens of times. On a machine of its own that is
/// nothing. In a virtual machine, where many containers run, each `CPUID` stops the guest and
/// lets the hypervisor answer: on the machine this course was measured on, a static program
/// that does nothing took 0.65 ms to run with glibc and 0.10 ms with musl, which asks nothing.
/// A `skiff run` starts skiff once, so it pays that once per container.
///
/// musl's own `malloc` is small and careful with memory, and slower: skiff built with it gave
/// back most of what its start had won. dlmalloc (the allocator Rust's standard library uses on
/// WebAssembly, in Rust) is as quick as glibc's here. The glibc build, `cargo build`'s and the
/// tests', keeps glibc's allocator. See the book's benchmarks appendix, round 6.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
// ANCHOR_END: allocator

pub mod api;
pub mod archive;
pub mod attach;
pub mod beneath;
pub mod cli;
pub mod client;
pub mod commit;
pub mod completion;
pub mod connect;
pub mod container;
pub mod cp;
pub mod diff;
pub mod docker_json;
pub mod events;
pub mod exec;
pub mod export;
pub mod format;
pub mod inspect;
pub mod lifecycle;
pub mod listings;
pub mod logs;
pub mod logs_command;
pub mod monitor;
pub mod names;
pub mod netns;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod pump;
pub mod remote;
pub mod rename;
pub mod restart;
pub mod rootfs;
pub mod signal;
pub mod spec;
pub mod stats;
pub mod stdio;
pub mod system;
pub mod top;
pub mod update;
pub mod wiring;

#[cfg(test)]
mod tests {
    #[test]
    fn lab_07_parses() {
        let path = labs::labs_dir().join("07-cli.toml");
        let lab = labs::Lab::load(&path, labs::STAGE_PLACEHOLDERS).unwrap();
        assert_eq!(lab.stage, 7);
        assert_eq!(lab.requires.len(), 6);
        assert!(lab.checks.iter().any(|c| c.last));
    }
}
