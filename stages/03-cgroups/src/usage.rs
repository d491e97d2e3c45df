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
//! | memory limit     | `memory.limit_in_bytes`         | `memory.max`            |
//! | inactive files   | `memory.stat` `total_inactive_file` | `memory.stat` `inactive_file` |
//! | block I/O        | `blkio.throttle.io_service_bytes` | `io.stat` `rbytes`, `wbytes` |
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
    /// The memory limit, in bytes; `None` without one.
    pub memory_limit: Option<u64>,
    /// Page cache not recently used, which the kernel drops first under pressure: `stats`
    /// leaves it out of the usage, as Docker does.
    pub memory_inactive_file: Option<u64>,
    /// Bytes read from block devices.
    pub block_read: Option<u64>,
    /// Bytes written to block devices.
    pub block_write: Option<u64>,
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

/// Bytes read and written, from v1's `blkio.throttle.io_service_bytes`: lines of
/// `MAJ:MIN Read|Write|Sync|Async|Discard|Total BYTES`, and a last `Total BYTES`.
pub fn v1_block_io(text: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_device), Some(kind), Some(bytes)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let bytes: u64 = bytes.parse().unwrap_or(0);
        match kind {
            "Read" => totals.0 += bytes,
            "Write" => totals.1 += bytes,
            _ => {}
        }
    }
    totals
}

/// Bytes read and written, from v2's `io.stat`: a line per device of `KEY=VALUE` pairs.
pub fn v2_block_io(text: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    for pair in text.split_whitespace() {
        match pair.split_once('=') {
            Some(("rbytes", n)) => totals.0 += n.parse::<u64>().unwrap_or(0),
            Some(("wbytes", n)) => totals.1 += n.parse::<u64>().unwrap_or(0),
            _ => {}
        }
    }
    totals
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_io_is_summed_over_devices() {
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\n8:16 Read 100\n8:16 Write 0\nTotal 4708\n";
        assert_eq!(v1_block_io(v1), (4196, 512));
        let v2 =
            "8:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=100 wbytes=7\n";
        assert_eq!(v2_block_io(v2), (4196, 519));
    }

    #[test]
    fn summaries_show_what_is_known() {
        let usage = Usage {
            memory_current: Some(12 << 20),
            memory_peak: Some(182 * (1 << 20) / 10),
            cpu: Some(Duration::from_micros(512_345)),
            pids_current: Some(3),
            pids_peak: None,
            ..Usage::default()
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
