//! # skiff as an OCI runtime
//!
//! containerd, CRI-O and dockerd do not make containers themselves: they hand a *bundle* (a
//! directory with a root filesystem and a `config.json`) to an OCI runtime, runc by default,
//! and drive it through a small command line: `create`, `start`, `state`, `kill`, `delete`. The
//! contract is the OCI runtime specification (runtime-spec: `config.md`, `runtime.md`) and
//! runc(8)'s flags.
//!
//! `skiff-runtime` is that command line over the stage crates, copying none of them:
//!
//! - [`config`]: a bundle's `config.json` (oci-spec's runtime types) mapped onto stage 01's
//!   [`chroot::Prepared`], with stage 02's namespaces, hostname and privileges and stage 03's
//!   cgroup; what is not mapped yet is refused by name, never ignored;
//! - [`mounts`]: the spec's mounts, masked and read-only paths, in order, then pivot_root;
//! - [`resources`]: `cgroupsPath` and `resources` as stage 03's cgroup and limits;
//! - [`features`]: the few features no stage has: namespaces joined by path, sysctls, rlimits,
//!   the OOM score;
//! - [`fifo`]: the exec fifo that splits `create` from `start`;
//! - [`hooks`]: the caller's programs, run at the points of the lifecycle the spec names;
//! - [`console`]: `process.terminal`: a pty made inside, its master sent to the caller;
//! - [`state`]: what the runtime knows of a container, in `--root/ID/state.json`, and the
//!   spec's state JSON that `state` prints;
//! - [`lifecycle`]: `create`, `start`, `kill`, `delete` (and `run`); [`exec`];
//! - [`cli`]: runc's command line, and the smaller commands.

pub mod cli;
pub mod config;
pub mod console;
pub mod exec;
pub mod features;
pub mod fifo;
pub mod hooks;
pub mod lifecycle;
pub mod mounts;
pub mod resources;
pub mod sealed;
pub mod state;
