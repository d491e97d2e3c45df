//! `stats`: what running containers use, from the kernel's own counters.
//!
//! Every number comes from a file. The cgroup (stage 03) counts for all the container's
//! processes at once: CPU time, memory in use and its limit, processes, block I/O. The network
//! counters belong to the container's network namespace, and `/proc/PID/net/dev` of any of its
//! processes shows that namespace's interfaces. CPU % is a rate, so it takes two readings: CPU
//! time used between them over the wall time between them (100% is one CPU busy). The memory
//! shown leaves out inactive page cache, which the kernel drops first, as Docker does.
//! See docker-stats(1), proc(5) (`/proc/net/dev`), and stage 03's [`cgroups::usage`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use namespaces::RootArgs;
use serde_json::{Map, Value};

use crate::container::Record;
use crate::lifecycle;

/// `stats`'s flags.
#[derive(Args)]
pub struct StatsArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Print one reading and return, instead of a new one every second
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not cut ids
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format the output with a Go template, `table TEMPLATE`, or `json`
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The containers (default: every running one)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Docker's headers for the fields of a row.
const HEADERS: [(&str, &str); 9] = [
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const DEFAULT_COLUMNS: [&str; 8] = [
    "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
];

// ANCHOR: reading
/// One reading of a container's counters.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// When it was taken.
    pub at: Option<Instant>,
    /// The cgroup's counters.
    pub usage: cgroups::Usage,
    /// Bytes received and sent by the container's interfaces (loopback aside).
    pub net: Option<(u64, u64)>,
}

/// Reads the counters of `record`, when it runs.
pub fn read(record: &Record) -> Reading {
    if !record.state.is_running() {
        return Reading::default();
    }
    let usage = record
        .cgroup
        .as_deref()
        .and_then(|path| cgroups::usage_at(path).ok())
        .unwrap_or_default();
    let net = record.state.pid.and_then(|p| {
        let text = std::fs::read_to_string(format!("/proc/{}/net/dev", p.pid)).ok()?;
        Some(net_dev(&text))
    });
    Reading {
        at: Some(Instant::now()),
        usage,
        net,
    }
}

/// Sums the bytes received and sent over the interfaces of a `/proc/net/dev`, loopback aside.
pub fn net_dev(text: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    // Two header lines, then `  eth0: RX bytes packets errs drop fifo frame compressed
    // multicast TX bytes packets ...`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        totals.0 += fields.first().copied().unwrap_or(0);
        totals.1 += fields.get(8).copied().unwrap_or(0);
    }
    totals
}
// ANCHOR_END: reading

// ANCHOR: row
/// A row of `stats`: two readings of one container, as Docker words them.
pub fn row(record: &Record, before: &Reading, after: &Reading, trunc: bool) -> Map<String, Value> {
    let cpu = match (before.at, after.at, before.usage.cpu, after.usage.cpu) {
        (Some(t0), Some(t1), Some(c0), Some(c1)) if t1 > t0 => {
            c1.saturating_sub(c0).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0
        }
        _ => 0.0,
    };
    let usage = &after.usage;
    let memory = usage
        .memory_current
        .unwrap_or(0)
        .saturating_sub(usage.memory_inactive_file.unwrap_or(0));
    let limit = usage
        .memory_limit
        .unwrap_or_else(crate::system::mem_total)
        .min(crate::system::mem_total());
    let figures = Figures {
        running: record.state.is_running(),
        cpu_percent: cpu,
        memory,
        limit,
        net: after.net,
        block: (usage.block_read, usage.block_write),
        pids: usage.pids_current.unwrap_or(0),
    };
    figures.row(&record.id, &record.name, trunc)
}
// ANCHOR_END: row

/// What a row of `stats` shows, however it was measured: from the kernel's counters here, or
/// from a daemon's `GET /containers/{id}/stats` (`skiff -H`).
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Whether the container runs (a stopped one shows zeros).
    pub running: bool,
    /// CPU time over wall time, in percent of one CPU.
    pub cpu_percent: f64,
    /// Memory in use, inactive page cache aside.
    pub memory: u64,
    /// Its limit (the host's memory when none).
    pub limit: u64,
    /// Bytes received and sent, when known.
    pub net: Option<(u64, u64)>,
    /// Bytes read and written on block devices, when known.
    pub block: (Option<u64>, Option<u64>),
    /// Processes.
    pub pids: u64,
}

impl Figures {
    /// The row, as Docker words it.
    pub fn row(&self, id: &str, name: &str, trunc: bool) -> Map<String, Value> {
        let running = self.running;
        let (memory, limit) = (self.memory, self.limit);
        // Precision is not a concern for a percentage shown with two decimals.
        #[allow(clippy::cast_precision_loss)]
        let memory_percent = if limit > 0 {
            memory as f64 / limit as f64 * 100.0
        } else {
            0.0
        };
        // A counter the host does not keep for this container (block I/O on v1 without a
        // blkio hierarchy, which a container joins only for `--blkio-weight`) is `--`, not a
        // made-up 0.
        let pair = |a: Option<u64>, b: Option<u64>| match (a, b) {
            _ if !running => "0B / 0B".to_string(),
            (None, None) => "--".to_string(),
            (a, b) => format!(
                "{} / {}",
                images::human::human_size(a.unwrap_or(0)),
                images::human::human_size(b.unwrap_or(0))
            ),
        };
        let id = if trunc {
            id.get(..12).unwrap_or(id)
        } else {
            id
        };
        let fields = [
            ("Container", id.to_string()),
            ("ID", id.to_string()),
            ("Name", name.to_string()),
            ("CPUPerc", format!("{:.2}%", self.cpu_percent)),
            (
                "MemUsage",
                if running {
                    format!("{} / {}", binary_size(memory), binary_size(limit))
                } else {
                    "0B / 0B".to_string()
                },
            ),
            ("MemPerc", format!("{memory_percent:.2}%")),
            ("NetIO", pair(self.net.map(|n| n.0), self.net.map(|n| n.1))),
            ("BlockIO", pair(self.block.0, self.block.1)),
            ("PIDs", self.pids.to_string()),
        ];
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect()
    }
}

/// `stats`' columns.
pub const COLUMNS: crate::format::Columns<'static> = crate::format::Columns {
    headers: &HEADERS,
    default: &DEFAULT_COLUMNS,
};

/// A size in binary units with four significant digits, as Docker's memory columns show it
/// (go-units' `BytesSize`: `1.48MiB`, `7.667GiB`).
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    // Four significant digits need no more than f64 has.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = if value < 10.0 {
        3
    } else if value < 100.0 {
        2
    } else if value < 1000.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

/// Runs `stats`.
pub fn command(args: StatsArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let columns = COLUMNS;
    let pick = || -> anyhow::Result<Vec<Record>> {
        if args.containers.is_empty() {
            let records = lifecycle::list(root)?;
            Ok(records
                .into_iter()
                .filter(|r| args.all || r.state.is_running())
                .collect())
        } else {
            args.containers
                .iter()
                .map(|key| lifecycle::find(root, key))
                .collect()
        }
    };
    let mut records = pick()?;
    let mut before: BTreeMap<String, Reading> =
        records.iter().map(|r| (r.id.clone(), read(r))).collect();
    let trunc = !args.no_trunc;
    loop {
        std::thread::sleep(if args.no_stream {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        });
        let mut rows = Vec::new();
        let mut after = BTreeMap::new();
        for record in &records {
            // A container's state may have changed meanwhile: its record says.
            let record = lifecycle::find(root, &record.id).unwrap_or_else(|_| record.clone());
            let reading = read(&record);
            let earlier = before.get(&record.id).cloned().unwrap_or_default();
            rows.push(row(&record, &earlier, &reading, trunc));
            after.insert(record.id.clone(), reading);
        }
        let text = crate::format::list(args.format.as_deref(), &columns, &rows)
            .context("format the stats")?;
        if args.no_stream {
            print!("{text}");
            return Ok(0);
        }
        // Docker's screen: cleared, then the table at the top.
        print!("\x1b[2J\x1b[H{text}");
        use std::io::Write;
        std::io::stdout().flush()?;
        before = after;
        if args.containers.is_empty() {
            records = pick()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1552384), "1.48MiB");
        assert_eq!(binary_size(8_232_000_000), "7.667GiB");
        assert_eq!(binary_size(64 << 20), "64MiB");
    }

    #[test]
    fn the_network_is_counted_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  eth0:    1046      11    0    0    0     0          0         0      516       6    0    0    0     0       0          0\n";
        assert_eq!(net_dev(text), (1046, 516));
    }
}
