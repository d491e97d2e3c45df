//! Where a container's start time goes: with `SKIFF_TIMELINE=FILE` in its environment, each
//! process of the engine appends one line per milestone to FILE: microseconds on the monotonic
//! clock (clock_gettime(2) `CLOCK_MONOTONIC`, the same in every process of the machine), its
//! pid, and what just began ("overlay", "cloned", "finish:begin"). Sorted and subtracted, the
//! lines of one `skiff run` are its timeline, across the CLI, the monitor and the launch (the
//! child between clone and exec writes nothing: it may not allocate). Without the variable a
//! mark costs one lookup in the environment.

use std::io::Write;

/// Whether a timeline is being written: to skip making a label nobody reads.
pub fn enabled() -> bool {
    std::env::var_os("SKIFF_TIMELINE").is_some()
}

/// Appends `label` to the timeline file, if `SKIFF_TIMELINE` names one.
pub fn mark(label: &str) {
    let Some(path) = std::env::var_os("SKIFF_TIMELINE") else {
        return;
    };
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now = now.tv_sec * 1_000_000 + now.tv_nsec / 1000;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        // One write(2) of one line: lines of several processes never mix.
        let _ = file.write_all(format!("{now} {} {label}\n", std::process::id()).as_bytes());
    }
}
