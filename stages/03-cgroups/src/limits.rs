//! Limits: what the command line asks for, in Docker's flags and units (`--memory 64m`,
//! `--cpus 1.5`, `--pids-limit 100`), checked before anything is created and turned into the
//! numbers that cgroup files take.
//!
//! The conversions follow `docker run` and runc: `--cpus` becomes a CFS quota per 100 ms period
//! (the kernel's `sched-bwc.rst`), `--cpu-shares` a v1 share or a v2 weight, `--memory-swap` the
//! total of memory and swap. See cgroups(7) and docker-run(1).

use std::collections::BTreeSet;
use std::fmt;

use clap::Args;

use crate::error::LimitError;

/// The smallest memory limit Docker accepts: below it, a container cannot even start.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The CFS period `--cpus` uses, in microseconds (Docker's and the kernel's default).
pub const CFS_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel takes, in microseconds (1 ms: `--cpus 0.01`).
pub const MIN_CFS_QUOTA_US: u64 = 1_000;
/// The range of v1 `cpu.shares` (the kernel clamps to it; skiff refuses what lies outside).
pub const CPU_SHARES: (u64, u64) = (2, 262_144);
/// The range of `--blkio-weight` (0 means "not set", as in Docker).
pub const BLKIO_WEIGHT: (u16, u16) = (10, 1000);

// ANCHOR: cgroup_args
/// The resource flags of `run`, Docker's names and units. A stage binary flattens this into its
/// own arguments and turns it into [`Limits`] with [`CgroupArgs::limits`].
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct CgroupArgs {
    /// Memory limit: a number with an optional unit b, k, m or g (at least 6m)
    #[arg(short = 'm', long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory: Option<String>,

    /// Memory plus swap, in total (at least --memory); -1 for unlimited swap. Default: no swap
    #[arg(
        long = "memory-swap",
        value_name = "BYTES",
        allow_negative_numbers = true
    )]
    pub memory_swap: Option<String>,

    /// Number of CPUs' worth of time (1.5), from 0.01 to the host's CPU count
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub cpus: Option<String>,

    /// CPU shares: a weight relative to other cgroups (default 1024)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        value_name = "SHARES",
        allow_negative_numbers = true
    )]
    pub cpu_shares: Option<String>,

    /// CPUs the container may run on (0-1,3)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,

    /// Maximum number of processes (-1 or 0: unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,

    /// Block I/O weight, relative (10 to 1000; 0: not set)
    #[arg(
        long = "blkio-weight",
        value_name = "WEIGHT",
        allow_negative_numbers = true
    )]
    pub blkio_weight: Option<String>,

    /// The cgroup to create the container's cgroup in, under each controller's root
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,

    /// Print the container's resource usage when the command ends
    #[arg(long)]
    pub stats: bool,

    /// Add a rule to the devices cgroup's allow list: TYPE MAJOR:MINOR ACCESS, such as 'c 1:3 rwm' (type a, b or c; * for any number)
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    #[serde(default)]
    pub device_cgroup_rule: Vec<String>,
}
// ANCHOR_END: cgroup_args

/// Validated limits: every value is one the kernel will take. The default limits nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory, in bytes (`--memory`).
    pub memory: Option<u64>,
    /// Memory plus swap (`--memory-swap`); `None` means "no swap": the same as `memory`.
    pub memory_swap: Option<Swap>,
    /// CPU time per period (`--cpus`).
    pub cpu_quota: Option<CpuQuota>,
    /// The v1 CPU weight (`--cpu-shares`), 2 to 262144.
    pub cpu_shares: Option<u64>,
    /// The CPUs it may run on (`--cpuset-cpus`).
    pub cpuset_cpus: Option<CpuList>,
    /// The most processes it may have (`--pids-limit`).
    pub pids: Option<PidsLimit>,
    /// The block I/O weight (`--blkio-weight`), 10 to 1000.
    pub blkio_weight: Option<u16>,
}

/// A limit on memory plus swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// At most this many bytes of memory and swap together.
    Total(u64),
    /// Swap without limit.
    Unlimited,
}

/// CPU bandwidth: at most `quota_us` of CPU time in every `period_us` of wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time per period, in microseconds (it may exceed the period on several CPUs).
    pub quota_us: u64,
    /// The period, in microseconds.
    pub period_us: u64,
}

/// A limit on the number of processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidsLimit {
    /// At most this many.
    Max(u64),
    /// No limit (`pids.max` is `max`).
    Unlimited,
}

// ANCHOR: limits_for
impl CgroupArgs {
    /// Checks every flag and turns them into [`Limits`], against the host's online CPUs.
    pub fn limits(&self) -> Result<Limits, LimitError> {
        self.limits_for(&CpuList::online())
    }

    /// Like [`CgroupArgs::limits`], for a host whose online CPUs are `online`.
    pub fn limits_for(&self, online: &CpuList) -> Result<Limits, LimitError> {
        let memory = flag(&self.memory, parse_memory)?.flatten();
        let memory_swap = flag(&self.memory_swap, |t| parse_memory_swap(t, memory))?.flatten();
        Ok(Limits {
            memory,
            memory_swap,
            cpu_quota: flag(&self.cpus, |t| parse_cpus(t, online))?,
            cpu_shares: flag(&self.cpu_shares, parse_shares)?.flatten(),
            cpuset_cpus: flag(&self.cpuset_cpus, |t| parse_cpuset(t, online))?,
            pids: flag(&self.pids_limit, parse_pids)?,
            blkio_weight: flag(&self.blkio_weight, parse_blkio)?.flatten(),
        })
    }
}

/// Parses a flag's value, when the flag was given.
fn flag<T>(
    value: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, LimitError>,
) -> Result<Option<T>, LimitError> {
    value.as_deref().map(parse).transpose()
}
// ANCHOR_END: limits_for

// ANCHOR: parse_memory
/// `--memory`: Docker's sizes, at least 6 MiB; 0 means "not set".
fn parse_memory(text: &str) -> Result<Option<u64>, LimitError> {
    let bytes = parse_bytes(text).ok_or_else(|| LimitError::new("--memory", text, SIZE_HELP))?;
    match bytes {
        0 => Ok(None),
        bytes if bytes < MIN_MEMORY => Err(LimitError::new(
            "--memory",
            text,
            format!(
                "below the minimum memory limit of {} ({MIN_MEMORY} bytes): give at least 6m",
                human_bytes(MIN_MEMORY)
            ),
        )),
        bytes => Ok(Some(bytes)),
    }
}
// ANCHOR_END: parse_memory

/// `--memory-swap`: the total of memory and swap, so at least `--memory`; -1 is unlimited swap.
fn parse_memory_swap(text: &str, memory: Option<u64>) -> Result<Option<Swap>, LimitError> {
    let flag = "--memory-swap";
    let swap = match text.trim() {
        "-1" => Swap::Unlimited,
        other => match parse_bytes(other) {
            Some(0) => return Ok(None),
            Some(total) => Swap::Total(total),
            None => return Err(LimitError::new(flag, text, format!("{SIZE_HELP}, or -1"))),
        },
    };
    let Some(memory) = memory else {
        return Err(LimitError::new(
            flag,
            text,
            "needs --memory: it is the total of memory and swap, so set the memory part too",
        ));
    };
    match swap {
        Swap::Total(total) if total < memory => Err(LimitError::new(
            flag,
            text,
            format!(
                "must be at least --memory ({}): it is the total of memory and swap",
                human_bytes(memory)
            ),
        )),
        swap => Ok(Some(swap)),
    }
}

// ANCHOR: parse_cpus
/// `--cpus`: a decimal number of CPUs, 0.01 to the host's count, as a quota per 100 ms.
fn parse_cpus(text: &str, online: &CpuList) -> Result<CpuQuota, LimitError> {
    let nanos = parse_decimal(text.trim(), 9)
        .ok_or_else(|| LimitError::new("--cpus", text, "expected a number of CPUs such as 1.5"))?;
    let count = online.len().max(1);
    let max = i128::try_from(count).unwrap_or(i128::MAX) * 1_000_000_000;
    // The quota is nanos * period / 1e9; at least 1 ms of it, the kernel's floor.
    let quota_us = nanos * i128::from(CFS_PERIOD_US) / 1_000_000_000;
    if quota_us < i128::from(MIN_CFS_QUOTA_US) || nanos > max {
        // Docker's wording.
        return Err(LimitError::new(
            "--cpus",
            text,
            format!(
                "range of CPUs is from 0.01 to {count}.00, as there are only {count} CPUs available"
            ),
        ));
    }
    Ok(CpuQuota {
        quota_us: u64::try_from(quota_us).unwrap_or(u64::MAX),
        period_us: CFS_PERIOD_US,
    })
}
// ANCHOR_END: parse_cpus

/// `--cpu-shares`: 2 to 262144; 0 means "not set" (the default weight, 1024).
fn parse_shares(text: &str) -> Result<Option<u64>, LimitError> {
    let (low, high) = CPU_SHARES;
    let range = format!("must be a number from {low} to {high} (1024 is the default weight)");
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(shares) if (low..=high).contains(&shares) => Ok(Some(shares)),
        _ => Err(LimitError::new("--cpu-shares", text, range)),
    }
}

/// `--cpuset-cpus`: a CPU list whose every CPU is online on this host.
fn parse_cpuset(text: &str, online: &CpuList) -> Result<CpuList, LimitError> {
    let cpus = CpuList::parse(text).ok_or_else(|| {
        LimitError::new(
            "--cpuset-cpus",
            text,
            "expected a list of CPUs such as 0-1,3",
        )
    })?;
    if !cpus.is_subset(online) {
        return Err(LimitError::new(
            "--cpuset-cpus",
            text,
            format!("requested CPUs are not available: this host has CPUs {online}"),
        ));
    }
    Ok(cpus)
}

/// `--pids-limit`: a positive number, or -1 or 0 for unlimited.
fn parse_pids(text: &str) -> Result<PidsLimit, LimitError> {
    match text.trim().parse::<i64>() {
        Ok(-1 | 0) => Ok(PidsLimit::Unlimited),
        Ok(n) if n > 0 => Ok(PidsLimit::Max(n.unsigned_abs())),
        _ => Err(LimitError::new(
            "--pids-limit",
            text,
            "must be a positive number of processes, or -1 or 0 for unlimited",
        )),
    }
}

/// `--blkio-weight`: 10 to 1000; 0 means "not set".
fn parse_blkio(text: &str) -> Result<Option<u16>, LimitError> {
    let (low, high) = BLKIO_WEIGHT;
    match text.trim().parse::<u16>() {
        Ok(0) => Ok(None),
        Ok(weight) if (low..=high).contains(&weight) => Ok(Some(weight)),
        _ => Err(LimitError::new(
            "--blkio-weight",
            text,
            format!("must be a number from {low} to {high}, or 0 for no weight"),
        )),
    }
}

// ANCHOR: conversion
impl Limits {
    /// The controllers these limits need; the block I/O one is named `blkio` on v1 and `io` on
    /// v2, so the caller says which.
    pub fn controllers(&self, block_io: &'static str) -> Vec<&'static str> {
        [
            (self.memory.is_some(), "memory"),
            (self.cpu_quota.is_some() || self.cpu_shares.is_some(), "cpu"),
            (self.cpuset_cpus.is_some(), "cpuset"),
            (self.pids.is_some(), "pids"),
            (self.blkio_weight.is_some(), block_io),
        ]
        .into_iter()
        .filter_map(|(wanted, controller)| wanted.then_some(controller))
        .collect()
    }

    /// The memory+swap limit to set: `None` without a memory limit; the memory limit itself
    /// unless `--memory-swap` said otherwise, so that the memory limit is real and not
    /// silently extended by swap.
    pub fn memory_and_swap(&self) -> Option<Swap> {
        let memory = self.memory?;
        Some(self.memory_swap.unwrap_or(Swap::Total(memory)))
    }

    /// The swap allowed on top of memory (v2's `memory.swap.max` counts swap alone).
    pub fn swap_only(&self) -> Option<Swap> {
        let memory = self.memory?;
        Some(match self.memory_and_swap()? {
            Swap::Total(total) => Swap::Total(total.saturating_sub(memory)),
            Swap::Unlimited => Swap::Unlimited,
        })
    }
}

impl CpuQuota {
    /// v2's `cpu.max`: `"$QUOTA $PERIOD"`.
    pub fn cpu_max(&self) -> String {
        format!("{} {}", self.quota_us, self.period_us)
    }
}

/// v2's `cpu.weight` (1 to 10000, default 100) for v1 shares (2 to 262144, default 1024), the
/// formula runc and the kernel documentation use.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// v2's `io.weight` (1 to 10000) for a v1 blkio weight (10 to 1000), as runc converts it.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}
// ANCHOR_END: conversion

const SIZE_HELP: &str = "expected a size: a number with an optional unit b, k, m or g (64m, 1.5g)";

/// Parses a size the way Docker's `RAMInBytes` does: a number, possibly with a fraction, then
/// an optional unit `k`, `m`, `g`, `t` or `p` (powers of 1024), optionally followed by `i` and
/// `b` (`64m`, `64MiB`, `1.5g`, `512`). `None` when it is not a size.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let shift = match unit.chars().next() {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    let rest = if shift > 0 { &unit[1..] } else { &unit[..] };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if number.contains('.')
        && (fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        let digits = &fraction[..fraction.len().min(18)];
        let scale = 10u128.pow(u32::try_from(digits.len()).ok()?);
        (digits.parse::<u128>().ok()? << shift) / scale
    };
    let bytes = (whole << shift).checked_add(fraction_value)?;
    u64::try_from(bytes)
        .ok()
        .filter(|b| i64::try_from(*b).is_ok())
}

/// Parses a signed decimal into an integer scaled by 10^`digits` ("1.5" with 9 digits is
/// 1_500_000_000). `None` when it is not a number or has more fraction digits than that.
fn parse_decimal(text: &str, digits: u32) -> Option<i128> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !is_digits(whole)
        || !is_digits(fraction)
        || fraction.len() > digits as usize
        || whole.len() > 18
    {
        return None;
    }
    let scale = 10i128.pow(digits);
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: i128 = if fraction.is_empty() {
        0
    } else {
        let padding = 10i128.pow(digits - u32::try_from(fraction.len()).ok()?);
        fraction.parse::<i128>().ok()? * padding
    };
    let value = whole * scale + fraction;
    Some(if negative { -value } else { value })
}

/// A size for people: `32 MiB`, `18.2 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut scale: u64 = 1024;
    while unit + 1 < UNITS.len() && bytes / scale >= 1024 {
        unit += 1;
        scale *= 1024;
    }
    // Tenths, rounded, in integers: no float formatting surprises.
    let tenths = (u128::from(bytes) * 10 + u128::from(scale) / 2) / u128::from(scale);
    if tenths % 10 == 0 {
        format!("{} {}", tenths / 10, UNITS[unit])
    } else {
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// A set of CPUs, written the kernel's way: `0-3,8`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuList(BTreeSet<u32>);

/// CPU numbers beyond this are refused (the kernel's `NR_CPUS` is at most 8192).
const MAX_CPU: u32 = 8191;

impl CpuList {
    /// Parses a list such as `0-1,3`. `None` when it is not one.
    pub fn parse(text: &str) -> Option<CpuList> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let mut cpus = BTreeSet::new();
        for part in text.split(',') {
            let (low, high): (u32, u32) = match part.split_once('-') {
                Some((low, high)) => (low.trim().parse().ok()?, high.trim().parse().ok()?),
                None => {
                    let cpu = part.trim().parse().ok()?;
                    (cpu, cpu)
                }
            };
            if low > high || high > MAX_CPU {
                return None;
            }
            cpus.extend(low..=high);
        }
        Some(CpuList(cpus))
    }

    /// The CPUs this host has online (`/sys/devices/system/cpu/online`); when that cannot be
    /// read, as many as the standard library sees, from 0.
    pub fn online() -> CpuList {
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|text| CpuList::parse(&text))
            .unwrap_or_else(|| {
                let count = std::thread::available_parallelism().map_or(1, |n| n.get());
                CpuList((0..u32::try_from(count).unwrap_or(1)).collect())
            })
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for &cpu in &self.0 {
            match ranges.last_mut() {
                Some((_, high)) if *high + 1 == cpu => *high = cpu,
                _ => ranges.push((cpu, cpu)),
            }
        }
        let parts: Vec<String> = ranges
            .iter()
            .map(|&(low, high)| {
                if low == high {
                    low.to_string()
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A `run`-like command line, to check the flags as the binary will see them.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        cgroup: CgroupArgs,
        #[arg(trailing_var_arg = true)]
        command: Vec<String>,
    }

    fn two_cpus() -> CpuList {
        CpuList::parse("0-1").unwrap()
    }

    fn limits(args: &[&str]) -> Result<Limits, LimitError> {
        let cli = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map_err(|e| LimitError::new("(clap)", "", e.to_string()))?;
        cli.cgroup.limits_for(&two_cpus())
    }

    fn error(args: &[&str]) -> String {
        limits(args).unwrap_err().to_string()
    }

    #[test]
    fn no_flags_limit_nothing() {
        assert_eq!(limits(&[]).unwrap(), Limits::default());
    }

    #[test]
    fn sizes_follow_docker() {
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes("64M"), Some(64 << 20));
        assert_eq!(parse_bytes("64mb"), Some(64 << 20));
        assert_eq!(parse_bytes("64MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_bytes("1.5g"), Some(3 << 29));
        assert_eq!(parse_bytes("512k"), Some(512 << 10));
        assert_eq!(parse_bytes("100b"), Some(100));
        assert_eq!(parse_bytes("4096"), Some(4096));
        for bad in [
            "abc",
            "",
            "m",
            "-5m",
            "1.m",
            ".5m",
            "64q",
            "64 mm",
            "99999999999p",
        ] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn memory_has_docker_floor_and_units() {
        assert_eq!(limits(&["-m", "64m"]).unwrap().memory, Some(64 << 20));
        assert_eq!(
            limits(&["--memory", "6m"]).unwrap().memory,
            Some(MIN_MEMORY)
        );
        assert_eq!(limits(&["--memory", "0"]).unwrap().memory, None);
        let text = error(&["--memory", "1k"]);
        assert!(text.starts_with("--memory \"1k\": "), "{text}");
        assert!(text.contains("6 MiB"), "{text}");
        let text = error(&["--memory", "abc"]);
        assert!(text.contains("--memory \"abc\""), "{text}");
        assert!(text.contains("b, k, m or g"), "{text}");
        assert!(error(&["--memory", "-5"]).contains("--memory \"-5\""));
    }

    #[test]
    fn swap_defaults_to_none_and_follows_docker() {
        let l = limits(&["-m", "32m"]).unwrap();
        assert_eq!(l.memory_swap, None);
        assert_eq!(l.memory_and_swap(), Some(Swap::Total(32 << 20)));
        assert_eq!(l.swap_only(), Some(Swap::Total(0)));

        let l = limits(&["-m", "32m", "--memory-swap", "64m"]).unwrap();
        assert_eq!(l.memory_and_swap(), Some(Swap::Total(64 << 20)));
        assert_eq!(l.swap_only(), Some(Swap::Total(32 << 20)));

        let l = limits(&["-m", "32m", "--memory-swap", "-1"]).unwrap();
        assert_eq!(l.memory_and_swap(), Some(Swap::Unlimited));
        assert_eq!(l.swap_only(), Some(Swap::Unlimited));

        assert!(error(&["-m", "32m", "--memory-swap", "16m"]).contains("at least --memory"));
        assert!(error(&["--memory-swap", "64m"]).contains("needs --memory"));
        assert!(error(&["-m", "32m", "--memory-swap", "lots"]).contains("--memory-swap"));
        assert_eq!(Limits::default().memory_and_swap(), None);
    }

    #[test]
    fn cpus_become_a_quota_per_100ms() {
        let quota = limits(&["--cpus", "1.5"]).unwrap().cpu_quota.unwrap();
        assert_eq!(
            quota,
            CpuQuota {
                quota_us: 150_000,
                period_us: 100_000
            }
        );
        assert_eq!(quota.cpu_max(), "150000 100000");
        let quota = limits(&["--cpus", "0.01"]).unwrap().cpu_quota.unwrap();
        assert_eq!(quota.quota_us, 1000);
        assert_eq!(
            limits(&["--cpus", "2"])
                .unwrap()
                .cpu_quota
                .unwrap()
                .quota_us,
            200_000
        );
        for bad in ["-1", "0", "0.001", "2.5", "3"] {
            let text = error(&["--cpus", bad]);
            assert!(
                text.ends_with(
                    "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
                ),
                "{bad}: {text}"
            );
            assert!(text.starts_with(&format!("--cpus \"{bad}\"")), "{text}");
        }
        assert!(error(&["--cpus", "one"]).contains("a number of CPUs"));
        assert!(error(&["--cpus", "0.0000000001"]).contains("a number of CPUs"));
    }

    #[test]
    fn shares_and_their_v2_weight() {
        assert_eq!(limits(&["-c", "512"]).unwrap().cpu_shares, Some(512));
        assert_eq!(limits(&["--cpu-shares", "0"]).unwrap().cpu_shares, None);
        assert!(error(&["--cpu-shares", "1"]).contains("from 2 to 262144"));
        assert!(error(&["--cpu-shares", "-3"]).contains("--cpu-shares \"-3\""));
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn cpusets_are_checked_against_the_host() {
        let l = limits(&["--cpuset-cpus", "0-1"]).unwrap();
        assert_eq!(l.cpuset_cpus.unwrap().to_string(), "0-1");
        assert_eq!(
            limits(&["--cpuset-cpus", "1,0"])
                .unwrap()
                .cpuset_cpus
                .unwrap()
                .to_string(),
            "0-1"
        );
        let text = error(&["--cpuset-cpus", "99"]);
        assert_eq!(
            text,
            "--cpuset-cpus \"99\": requested CPUs are not available: this host has CPUs 0-1"
        );
        assert!(error(&["--cpuset-cpus", "1-0"]).contains("a list of CPUs"));
        assert!(error(&["--cpuset-cpus", "x"]).contains("a list of CPUs"));
    }

    #[test]
    fn cpu_lists_parse_and_print_the_kernel_way() {
        let list = CpuList::parse("0-3,5,7-8\n").unwrap();
        assert_eq!(list.len(), 7);
        assert_eq!(list.to_string(), "0-3,5,7-8");
        assert_eq!(CpuList::parse("0-99999"), None);
        assert_eq!(CpuList::parse(""), None);
        assert_eq!(CpuList::parse("1,,2"), None);
        assert!(!CpuList::online().is_empty());
    }

    #[test]
    fn pids_limits() {
        assert_eq!(
            limits(&["--pids-limit", "10"]).unwrap().pids,
            Some(PidsLimit::Max(10))
        );
        assert_eq!(
            limits(&["--pids-limit", "-1"]).unwrap().pids,
            Some(PidsLimit::Unlimited)
        );
        assert_eq!(
            limits(&["--pids-limit", "0"]).unwrap().pids,
            Some(PidsLimit::Unlimited)
        );
        assert!(error(&["--pids-limit", "-2"]).contains("positive number"));
        assert!(error(&["--pids-limit", "many"]).contains("--pids-limit \"many\""));
    }

    #[test]
    fn blkio_weights() {
        assert_eq!(
            limits(&["--blkio-weight", "500"]).unwrap().blkio_weight,
            Some(500)
        );
        assert_eq!(limits(&["--blkio-weight", "0"]).unwrap().blkio_weight, None);
        assert!(error(&["--blkio-weight", "5"]).contains("from 10 to 1000"));
        assert!(error(&["--blkio-weight", "1001"]).contains("from 10 to 1000"));
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(32 << 20), "32 MiB");
        assert_eq!(human_bytes(182 * (1 << 20) / 10), "18.2 MiB");
        assert_eq!(human_bytes(MIN_MEMORY), "6 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn stats_and_parent_are_plain_flags() {
        let cli =
            Cli::try_parse_from(["run", "--stats", "--cgroup-parent", "ci/jobs", "sh"]).unwrap();
        assert!(cli.cgroup.stats);
        assert_eq!(cli.cgroup.cgroup_parent.as_deref(), Some("ci/jobs"));
        assert_eq!(cli.command, ["sh"]);
    }
}
