//! The machine a benchmark ran on: a figure means little without it.
//!
//! Read from `/proc` (proc(5)): the CPU model from `/proc/cpuinfo`, the kernel release from
//! `/proc/sys/kernel/osrelease`, memory from `/proc/meminfo`, and the load average at the start,
//! which says whether something else was busy while the bench ran.

use std::time::SystemTime;

/// What the report says about the host.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The CPU model ("AMD EPYC 7763 64-Core Processor").
    pub cpu: String,
    /// The CPUs this process may run on.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// The kernel release ("6.1.0-18-amd64").
    pub kernel: String,
    /// The distribution ("Debian GNU/Linux 12 (bookworm)").
    pub os: String,
    /// The date and time of the run, UTC ("2025-01-31 14:05 UTC").
    pub date: String,
    /// The 1, 5 and 15 minute load averages at the start.
    pub load: String,
    /// Whether the CPU flags say this machine is itself a virtual machine (`hypervisor`).
    pub virtual_machine: bool,
}

impl Machine {
    /// Reads it now.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let os = os_release
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            os,
            date: utc_minutes(SystemTime::now()),
            load,
            virtual_machine: field(&cpuinfo, "flags")
                .is_some_and(|flags| flags.split_whitespace().any(|f| f == "hypervisor")),
        }
    }

    /// One line: "AMD EPYC, 2 cores, 24 GiB, Linux 6.1.0-18-amd64, 2025-01-31 14:05 UTC".
    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {:.0} GiB, Linux {}, {}",
            self.cpu, self.cores, self.memory_gib, self.kernel, self.date
        )
    }
}

/// The value of the first `key : value` line of a `/proc` file.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// `2025-01-31 14:05 UTC`.
fn utc_minutes(time: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(time).to_string();
    // "2025-01-31T14:05:09Z"
    match (stamp.get(..10), stamp.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => stamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_found_by_key() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7763\nflags\t: fpu\n";
        assert_eq!(field(text, "model name").as_deref(), Some("AMD EPYC 7763"));
        assert_eq!(field(text, "cache size"), None);
    }

    #[test]
    fn dates_are_utc_to_the_minute() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(utc_minutes(time), "2023-11-14 22:13 UTC");
    }
}
