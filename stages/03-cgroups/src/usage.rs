//! Usage: what a container has consumed, from its cgroup's counters. The kernel keeps them per
//! cgroup, so they cover every process of the container, also those that already exited.
//!
//! | counter          | cgroup v1                       | cgroup v2               |
//! |------------------|---------------------------------|-------------------------|
//! | memory now       | `memory.usage_in_bytes`         | `memory.current`        |
//! | memory peak      | `memory.max_usage_in_bytes`     | `memory.peak`           |
//! | CPU time         | `cpuacct.usage` (ns)            | `cpu.stat` `usage_usec` |
//! | processes now    | `pids.current`                  | `pids.current`          |
//! | processes peak   | `pids.peak` (Linux 6.1+)        | `pids.peak` (6.1+)      |
//!
//! See the kernel's `cgroup-v1/memory.rst`, `cgroup-v1/cpuacct.rst` and `cgroup-v2.rst`.

use std::fmt;
use std::time::Duration;

use crate::limits::human_bytes;

/// A container's usage; a counter the host does not have is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Memory in use now, in bytes (page cache included, as the kernel counts it).
    pub memory_current: Option<u64>,
    /// The most memory in use at any time, in bytes.
    pub memory_peak: Option<u64>,
    /// CPU time used, by all its processes together.
    pub cpu: Option<Duration>,
    /// Processes (and threads) now.
    pub pids_current: Option<u64>,
    /// The most processes at any time.
    pub pids_peak: Option<u64>,
}

impl Usage {
    /// The summary a finished container gets: `cpu 512ms, memory peak 18.2 MiB, pids peak 3`.
    pub fn summary(&self) -> String {
        format!(
            "cpu {}, memory peak {}, pids peak {}",
            or_dash(self.cpu.map(|cpu| format!("{}ms", cpu.as_millis()))),
            or_dash(self.memory_peak.map(human_bytes)),
            or_dash(self.pids_peak.map(|n| n.to_string())),
        )
    }
}

/// One line for a running container: `cpu 512ms, memory 12 MiB (peak 18.2 MiB), pids 3 (peak 5)`.
impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {}, memory {} (peak {}), pids {} (peak {})",
            or_dash(self.cpu.map(|cpu| format!("{}ms", cpu.as_millis()))),
            or_dash(self.memory_current.map(human_bytes)),
            or_dash(self.memory_peak.map(human_bytes)),
            or_dash(self.pids_current.map(|n| n.to_string())),
            or_dash(self.pids_peak.map(|n| n.to_string())),
        )
    }
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_show_what_is_known() {
        let usage = Usage {
            memory_current: Some(12 << 20),
            memory_peak: Some(182 * (1 << 20) / 10),
            cpu: Some(Duration::from_micros(512_345)),
            pids_current: Some(3),
            pids_peak: None,
        };
        assert_eq!(
            usage.summary(),
            "cpu 512ms, memory peak 18.2 MiB, pids peak -"
        );
        assert_eq!(
            usage.to_string(),
            "cpu 512ms, memory 12 MiB (peak 18.2 MiB), pids 3 (peak -)"
        );
        assert_eq!(
            Usage::default().summary(),
            "cpu -, memory peak -, pids peak -"
        );
    }
}
