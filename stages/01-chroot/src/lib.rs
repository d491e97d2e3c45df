//! # Stage 01: run a command in another root
//!
//! A container starts as an ordinary process whose idea of `/` has been moved. This crate holds
//! the part of skiff every later stage reuses:
//!
//! - [`Process`]: what to run (command, arguments, environment, working directory);
//! - [`Plan`] and [`Step`]: the system calls the child makes between `clone` and `exec`,
//!   written down by the parent *before* the child exists (see "Fork safety" below);
//! - [`Feature`]: the hooks a stage plugs into the launch sequence, at a fixed [`Slot`];
//! - [`Prepared`]: a container described before it exists, which each stage's `prepare`
//!   returns and the next stage adds to;
//! - [`launch`]: the sequence itself: prepare, clone, let the child run its steps, exec, wait,
//!   clean up;
//! - [`ChangeRoot`]: the one feature of this stage, `chroot(2)` into a directory.
//!
//! ```no_run
//! use chroot::{ChangeRoot, Feature, Process, launch};
//!
//! let process = Process::new(vec!["/bin/echo".into(), "hello".into()]);
//! let mut features: Vec<Box<dyn Feature>> = vec![Box::new(ChangeRoot::new("/srv/rootfs"))];
//! let exit = launch::run(&process, &mut features)?;
//! std::process::exit(exit.code());
//! # Ok::<(), chroot::LaunchError>(())
//! ```
//!
//! ## Fork safety
//!
//! A multi-threaded program (a test harness, a daemon) may launch containers. Between `clone`
//! and `exec` the child is a copy of one thread of that program: another thread may have held the
//! allocator's lock at the moment of the copy, so the child must not allocate, lock or print. It
//! only makes raw system calls on data the parent prepared. That is why the child's work is a
//! list of [`Step`]s built in advance, and why an error in the child travels back to the parent
//! as two integers over a pipe.

pub mod ahead;
pub mod cli;
pub mod defence;
pub mod error;
pub mod fdpass;
pub mod launch;
pub mod pgo;
pub mod plan;
pub mod prepared;
pub mod process;
pub mod root;
pub mod signals;
pub mod timeline;

pub use error::{FeatureError, LaunchError};
pub use launch::{AheadJob, Exit, Feature, Slot, Started};
pub use plan::{ChildStep, Plan, Step};
pub use prepared::Prepared;
pub use process::Process;
pub use root::ChangeRoot;
