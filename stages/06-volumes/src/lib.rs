//! # Stage 06: volumes — data that outlives containers
//!
//! A container's writes land in its overlay's upper directory and go when it goes. This stage
//! gives it places whose content lives elsewhere, mounted into its root before pivot_root:
//!
//! - a *volume*, a directory the engine keeps (`<root>/volumes/<name>/_data`), named or
//!   anonymous, made on first use and filled with the image's files at its target;
//! - a *bind mount*, a host path the user names;
//! - a *tmpfs*, memory that starts empty and ends with the container;
//! - and `--read-only`, a root that cannot be written at all, beside them.
//!
//! The modules:
//!
//! - [`spec`]: `-v`, `--mount` and `--tmpfs`, parsed and checked;
//! - [`store`]: volumes on disk, and which containers use them;
//! - [`mount`]: the child's step that mounts safely inside the root (openat2, `RESOLVE_IN_ROOT`);
//! - [`feature`]: the hooks into the launch sequence, and the copy of the image's files;
//! - [`cli`]: `run -v/--mount/--tmpfs/--read-only` and the `volume` commands.
pub mod cli;
pub mod feature;
pub mod mount;
pub mod spec;
pub mod store;
