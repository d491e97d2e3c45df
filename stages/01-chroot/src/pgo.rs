//! Profile-guided optimisation: the compiler told which code a container's start runs.
//!
//! A start of `skiff run` spends much of its time in page faults on code: a process touches
//! functions spread over 10 MB of machine code, and each 64 KiB of it touched costs a fault
//! (fork(2) maps none of the parent's code in the child, so the monitor and the container's
//! child pay again). The compiler cannot know which functions run together. A profile can tell
//! it: `scripts/pgo` builds skiff instrumented (`-Cprofile-generate`), runs the benchmark's
//! workloads, and merges what the runs counted into `pgo/skiff.profdata`. A build with
//! `-Cprofile-use` of that file (the benchmark's, and the README's install) then puts the code
//! that ran in `.text.hot`, next to each other, the code that never ran in `.text.unlikely`,
//! out of the way, and inlines and lays out branches by what really happened. See rustc's
//! book, "Profile-guided Optimization", and LLVM's `llvm-profdata(1)`.
//!
//! An instrumented process writes its counts when it exits through `exit(3)`. Two of skiff's
//! processes never do: the container's child ends in execve(2) and the double fork's first
//! child in `_exit(2)`. Their code would look as if it never ran, and be laid out as cold. So
//! an instrumented build (`--cfg skiff_pgo`, only `scripts/pgo` makes one) calls [`forked`] in
//! each new process (its counts start from zero, not from a copy of its parent's) and [`dump`]
//! before it execs or `_exit`s. In every other build both are empty and cost nothing.

// ANCHOR: pgo
#[cfg(skiff_pgo)]
unsafe extern "C" {
    // compiler-rt's profile runtime, linked into every `-Cprofile-generate` build.
    fn __llvm_profile_reset_counters();
    fn __llvm_profile_write_file() -> libc::c_int;
}

/// A process just forked: its counts start from zero (its parent writes its own).
#[inline(always)]
pub fn forked() {
    // SAFETY: resets the profile runtime's counters in this process's memory.
    #[cfg(skiff_pgo)]
    unsafe {
        __llvm_profile_reset_counters()
    };
}

/// This process is about to exec or `_exit`: its counts go to the profile now. (It allocates
/// and locks a file, which the child of a fork may only do in a single-threaded program: an
/// instrumented skiff is only ever run as one, by `scripts/pgo`.)
#[inline(always)]
pub fn dump() {
    // SAFETY: writes this process's counters to the file LLVM_PROFILE_FILE names.
    #[cfg(skiff_pgo)]
    unsafe {
        __llvm_profile_write_file();
        __llvm_profile_reset_counters();
    };
}
// ANCHOR_END: pgo
