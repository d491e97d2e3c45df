//! # Stage 02: namespaces — a process that sees only its own world
//!
//! Stage 01's chroot changed where `/` is and nothing else. This stage gives the container its
//! own copy of each global resource the kernel can split (namespaces(7)): process ids, hostname,
//! IPC, mounts, network, the cgroup root and, on request, user ids. Inside a private mount
//! namespace the root changes with pivot_root(2), which leaves no way back; `/proc`, `/sys` and
//! a minimal `/dev` are mounted; the capabilities are cut to Docker's default set.
//!
//! Every piece is a [`chroot::Feature`] plugged into stage 01's launch sequence:
//!
//! - [`namespaces::Namespaces`]: the clone flags, the cgroup namespace, loopback, uid maps;
//! - [`filesystem::Filesystem`]: mounts inside the new root, masked paths, pivot_root;
//! - [`security::Privileges`]: the seccomp filter ([`seccomp`]), no_new_privs, the bounding
//!   set, user and groups, capabilities;
//! - [`init::Init`]: `--init`, a PID 1 that reaps zombies and forwards signals.
//!
//! [`container::NamespaceArgs::prepare`] turns the command-line flags into that list, on top of
//! stage 01's container.
//!
//! From stage 07 on a container outlives its command; what the engine knows of it is its
//! [`record::Record`], kept in [`records::Records`] under the container's state directory,
//! which this stage owns.

pub mod container;
pub mod devices;
pub mod filesystem;
pub mod id;
pub mod in_root;
pub mod init;
pub mod join;
pub mod namespaces;
pub mod placement;
pub mod private;
pub mod record;
pub mod records;
pub mod seccomp;
pub mod security;
pub mod sweep;
pub mod user;

pub use container::{Base, Container, NamespaceArgs, NetworkMode, RootArgs, RunArgs};
pub use id::ContainerId;
pub use sweep::Sweep;
