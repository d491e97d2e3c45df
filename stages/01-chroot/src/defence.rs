//! Test-only switches that turn one defence off, so the labs can prove that each check of a
//! defence fails without it.
//!
//! A check that passes whether or not the engine defends anything teaches nothing. So every lab
//! check of a defence (seccomp, the devices cgroup, `nodev`, paths resolved inside the root...)
//! names the defence it proves, and the labs' self-test runs it once more against the real
//! engine with `SKIFF_UNSAFE_DISABLE=NAME` set, and insists that it fails then. Only a debug
//! build reads the variable: a release build (what `cargo install` and the benchmarks make) has
//! every defence, whatever its environment says.

// ANCHOR: disabled
/// Whether the defence `name` is switched off for this test run.
pub fn disabled(name: &str) -> bool {
    #[cfg(debug_assertions)]
    {
        std::env::var("SKIFF_UNSAFE_DISABLE")
            .is_ok_and(|list| list.split(',').any(|d| d.trim() == name))
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = name;
        false
    }
}
// ANCHOR_END: disabled
