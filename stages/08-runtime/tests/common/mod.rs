//! What the black-box tests share: the runtime under test (skiff-runtime, or runc as the
//! control), why a test cannot run here, and the macro that runs each test against both.

use std::path::Path;

/// The runtime under test.
#[derive(Clone, Copy)]
pub enum Runtime {
    /// This crate's binary.
    Skiff,
    /// The reference implementation: a check it fails is a wrong check.
    Runc,
}

impl Runtime {
    /// A short name, for ids and paths.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Skiff => "skiff",
            Runtime::Runc => "runc",
        }
    }

    /// The binary.
    pub fn binary(self) -> &'static str {
        match self {
            Runtime::Skiff => env!("CARGO_BIN_EXE_skiff-runtime"),
            Runtime::Runc => "/usr/sbin/runc",
        }
    }
}

/// Why a test of `runtime` that also needs `tools` cannot run here, if it cannot.
pub fn skip_reason(runtime: Runtime, tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("containers need root".into());
    }
    tools
        .iter()
        .chain([&runtime.binary()])
        .find(|tool| !Path::new(tool).exists())
        .map(|tool| format!("{tool} is not installed"))
}

/// Runs each named test function (taking a [`Runtime`]) as `skiff::NAME` and `runc::NAME`,
/// skipping with a printed reason where root or a tool of the slice `$tools` is missing.
#[macro_export]
macro_rules! both {
    ($tools:expr; $($test:ident),*) => {
        mod skiff {
            $(
                #[test]
                fn $test() {
                    use super::common::{Runtime, skip_reason};
                    match skip_reason(Runtime::Skiff, $tools) {
                        Some(reason) => eprintln!("skipped: {reason}"),
                        None => super::$test(Runtime::Skiff),
                    }
                }
            )*
        }
        /// The same tests against runc: they pass there, so they test the runtime.
        mod runc {
            $(
                #[test]
                fn $test() {
                    use super::common::{Runtime, skip_reason};
                    match skip_reason(Runtime::Runc, $tools) {
                        Some(reason) => eprintln!("skipped: {reason}"),
                        None => super::$test(Runtime::Runc),
                    }
                }
            )*
        }
    };
}
