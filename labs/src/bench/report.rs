//! The results, three ways: a table on the terminal, a markdown report, an SVG chart; with the
//! memory of running containers' monitors as a table of its own (it is not a time).

use std::fmt::Write as _;
use std::io::Write as _;

use super::config::{Goal, Kind, Reference, Target};
use super::machine::Machine;
use super::resident::Resident;
use super::stats::{Summary, format_ms, format_ratio};
use super::svg::{self, Bar, Group};

/// What happened to one contestant.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Timed.
    Measured(Measurement),
    /// Not run here, and why.
    Skipped(String),
    /// Should have run, and failed: the first error line.
    Failed(String),
}

/// The figures of a timed contestant.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    /// Wall time from launch to exit, ms.
    pub time: Summary,
    /// Median over the runs of wait4's ru_maxrss, MiB.
    pub rss_mib: f64,
    /// Timed runs.
    pub runs: usize,
    /// Warm-up runs before them.
    pub warmup: usize,
}

/// One row of the results.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The contestant's name.
    pub name: String,
    /// What its time includes.
    pub measures: String,
    /// Its kind.
    pub kind: Kind,
    /// A word for the chart ("TCG").
    pub tag: Option<String>,
    /// Short notes for the table ("memory limit 64 MiB").
    pub notes: Vec<String>,
    /// Longer notes for the report ("no KVM: a probe boot hung").
    pub details: Vec<String>,
    /// What happened.
    pub outcome: Outcome,
}

impl Entry {
    /// Its median in ms, when it was measured.
    pub fn median(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m.time.median),
            _ => None,
        }
    }

    fn group(&self) -> Group {
        match self.kind {
            Kind::Stage => Group::Stage,
            Kind::Command => Group::Floor,
            Kind::Oci | Kind::Engine => Group::Peer,
            Kind::Vm => Group::Vm,
        }
    }

    fn label(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{} ({tag})", self.name),
            None => self.name.clone(),
        }
    }

    fn status(&self) -> String {
        match &self.outcome {
            Outcome::Measured(_) => self.notes.join("; "),
            Outcome::Skipped(why) => format!("skipped: {why}"),
            Outcome::Failed(why) => format!("FAILED: {why}"),
        }
    }
}

/// What happened to one memory measurement.
#[derive(Debug, Clone)]
pub enum MemoryOutcome {
    /// Measured.
    Measured(Resident),
    /// Not run here, and why.
    Skipped(String),
    /// Should have run, and failed: the first error line.
    Failed(String),
}

/// One memory measurement's results.
#[derive(Debug, Clone)]
pub struct MemoryEntry {
    /// Its name.
    pub name: String,
    /// What it measures.
    pub measures: String,
    /// What happened.
    pub outcome: MemoryOutcome,
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct Results {
    /// Where it ran.
    pub machine: Machine,
    /// The workload's command line.
    pub workload: String,
    /// The peak RSS the launcher reports for a program that does almost nothing, MiB.
    pub launcher_floor_mib: Option<f64>,
    /// One per contestant, in the bench file's order.
    pub entries: Vec<Entry>,
    /// One per memory measurement.
    pub memory: Vec<MemoryEntry>,
    /// The goals to check.
    pub targets: Vec<Target>,
    /// Published figures.
    pub references: Vec<Reference>,
}

impl Results {
    /// The fastest container's median: the reference for the ratio column (VMs excluded).
    pub fn fastest_container(&self) -> Option<f64> {
        self.entries
            .iter()
            .filter(|e| e.kind != Kind::Vm)
            .filter_map(Entry::median)
            .min_by(f64::total_cmp)
    }

    fn median_of(&self, name: &str) -> Result<f64, String> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("{name} was not run (--only)"))?;
        match &entry.outcome {
            Outcome::Measured(m) => Ok(m.time.median),
            Outcome::Skipped(why) => Err(format!("{name} skipped: {why}")),
            Outcome::Failed(why) => Err(format!("{name} failed: {why}")),
        }
    }

    fn resident_of(&self, name: &str) -> Result<&Resident, String> {
        let entry = self
            .memory
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("{name} was not run (--only)"))?;
        match &entry.outcome {
            MemoryOutcome::Measured(resident) => Ok(resident),
            MemoryOutcome::Skipped(why) => Err(format!("{name} skipped: {why}")),
            MemoryOutcome::Failed(why) => Err(format!("{name} failed: {why}")),
        }
    }

    /// One line per target: met, not met, or not measured; for a ratio, where every stage
    /// stands against the same contestant.
    pub fn target_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for target in &self.targets {
            let line = match target.compares() {
                Some(Goal::Ratio {
                    contestant,
                    of,
                    max,
                }) => self.ratio_line(contestant, of, max),
                Some(Goal::Memory { memory, max_mib }) => self.memory_line(memory, max_mib),
                None => "not a valid target.".into(),
            };
            lines.push(format!("{}: {line}", target.goal.get_ref()));
        }
        lines
    }

    fn ratio_line(&self, name: &str, of: &str, max: f64) -> String {
        let verdict = match (self.median_of(name), self.median_of(of)) {
            (Ok(value), Ok(base)) => {
                let ratio = value / base;
                format!(
                    "{name} / {of} = {} (target at most {}): {}",
                    format_ratio(ratio),
                    format_ratio(max),
                    met(ratio <= max)
                )
            }
            (Err(why), _) | (_, Err(why)) => format!("not measured: {why}"),
        };
        let stages: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.kind == Kind::Stage)
            .filter_map(|e| {
                let ratio = e.median()? / self.median_of(of).ok()?;
                Some(format!("{} {}", e.name, format_ratio(ratio)))
            })
            .collect();
        let context = if stages.is_empty() {
            String::new()
        } else {
            format!(" Stages against {of}: {}.", stages.join(", "))
        };
        format!("{verdict}.{context}")
    }

    fn memory_line(&self, name: &str, max_mib: f64) -> String {
        match self.resident_of(name) {
            Ok(resident) => format!(
                "median RSS {} MiB (target at most {} MiB): {}; median PSS {} MiB.",
                format_mib(resident.rss_mib.median),
                format_mib(max_mib),
                met(resident.rss_mib.median <= max_mib),
                format_mib(resident.pss_mib.median),
            ),
            Err(why) => format!("not measured: {why}."),
        }
    }

    /// The memory measurements as a table for the terminal.
    pub fn memory_table(&self) -> String {
        let mut writer = tabwriter::TabWriter::new(Vec::new()).padding(2);
        let _ = writeln!(
            writer,
            "MEMORY	CONTAINERS	RSS MiB	MIN	MAX	PSS MiB	MIN	MAX	MONITOR RUNS"
        );
        for entry in &self.memory {
            let _ = writeln!(writer, "{}", memory_cells(entry).join("\t"));
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The memory measurements as a markdown table (the book quotes it).
    pub fn memory_markdown_table(&self) -> String {
        let mut out = String::from(
            "| measurement | running containers | RSS MiB, median | min | max | PSS MiB, median | min | max | the monitor runs |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for entry in &self.memory {
            let cells: Vec<String> = memory_cells(entry)
                .into_iter()
                .map(|c| c.replace('|', "\\|"))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// The table for the terminal.
    pub fn table(&self) -> String {
        let fastest = self.fastest_container();
        let mut writer = tabwriter::TabWriter::new(Vec::new()).padding(2);
        let _ = writeln!(
            writer,
            "CONTESTANT\tMEDIAN ms\tMIN ms\tMAX ms\tPEAK RSS MiB\tVS FASTEST\tRUNS\tNOTES"
        );
        for entry in &self.entries {
            let cells = cells(entry, fastest);
            let _ = writeln!(writer, "{}", cells.join("\t"));
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The markdown table alone (the book quotes it).
    pub fn markdown_table(&self) -> String {
        let fastest = self.fastest_container();
        let mut out = String::from(
            "| contestant | median ms | min ms | max ms | peak RSS MiB | vs fastest container | runs (+warm-up) | notes |\n\
             |---|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for entry in &self.entries {
            let cells: Vec<String> = cells(entry, fastest)
                .into_iter()
                .map(|c| c.replace('|', "\\|"))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// The whole markdown report.
    pub fn markdown(&self, chart_file: &str) -> String {
        let m = &self.machine;
        let mut out = String::from("# Container startup: skiff's stages and their peers\n\n");
        let _ = writeln!(
            out,
            "Measured on {} ({}), {} cores, {:.0} GiB, kernel {}, on {}. Load average at the start: {}.\n",
            m.cpu, m.os, m.cores, m.memory_gib, m.kernel, m.date, m.load
        );
        if m.virtual_machine {
            out.push_str(
                "This machine is itself a virtual machine (its CPU flags say `hypervisor`): \
                 every figure includes the cost of virtualised system calls and page faults.\n\n",
            );
        }
        let _ = writeln!(
            out,
            "Each figure is the wall time from launching the contestant's command to its exit, \
             with `{}` as the workload in the busybox fixture rootfs: the median of the timed \
             runs after untimed warm-up runs, with the fastest and slowest run beside it. \
             *Peak RSS* is wait4(2)'s `ru_maxrss`: the largest resident set of any single \
             process of the launched tree (engine, helpers, the workload; for QEMU, the guest's \
             memory it touched), median over the runs; it is not the sum of the tree. \
             *vs fastest container* divides by the fastest non-VM median.\n",
            self.workload
        );
        if let Some(floor) = self.launcher_floor_mib {
            let _ = writeln!(
                out,
                "The launcher that forks each contestant holds about {floor:.1} MiB when it \
                 forks (the peak it reports for the static probe, which does almost nothing): \
                 a figure near that says little more than \"no bigger\".\n"
            );
        }
        out.push_str(&self.markdown_table());
        if !self.memory.is_empty() {
            out.push_str(
                "\n## Memory per running container\n\n\
                 Not a time: the resident memory of each running container's monitor, read \
                 from /proc while the containers run. *RSS* (`VmRSS` in /proc/PID/status) \
                 counts every page the monitor has resident; *PSS* (`Pss` in \
                 /proc/PID/smaps_rollup) divides each page by the number of processes sharing \
                 it, so the monitors' common code counts once between them.\n\n",
            );
            out.push_str(&self.memory_markdown_table());
        }
        out.push_str("\n## What each contestant measures\n\n");
        for entry in &self.entries {
            let _ = write!(out, "- **{}**: {}", entry.name, entry.measures);
            for detail in &entry.details {
                let _ = write!(out, ". {detail}");
            }
            out.push('\n');
        }
        for entry in &self.memory {
            let _ = writeln!(out, "- **{}**: {}", entry.name, entry.measures);
        }
        if !self.targets.is_empty() {
            out.push_str("\n## Targets\n\n");
            for line in self.target_lines() {
                let _ = writeln!(out, "- {line}");
            }
        }
        if !self.references.is_empty() {
            out.push_str("\n## Published figures (not measured here)\n\n");
            for reference in &self.references {
                let _ = writeln!(
                    out,
                    "- {}: {} ms. {}",
                    reference.name,
                    format_ms(reference.ms),
                    reference.source
                );
            }
        }
        let _ = writeln!(out, "\n![startup per contestant]({chart_file})");
        out
    }

    /// The chart: one bar per measured contestant, then the published references.
    pub fn svg(&self) -> String {
        let mut bars: Vec<Bar> = self
            .entries
            .iter()
            .filter_map(|entry| {
                let Outcome::Measured(m) = &entry.outcome else {
                    return None;
                };
                Some(Bar {
                    label: entry.label(),
                    median: m.time.median,
                    min: m.time.min,
                    max: m.time.max,
                    group: entry.group(),
                    note: format!("{} ms", format_ms(m.time.median)),
                })
            })
            .collect();
        let runs: Vec<usize> = self
            .entries
            .iter()
            .filter_map(|e| match &e.outcome {
                Outcome::Measured(m) => Some(m.runs),
                _ => None,
            })
            .collect();
        for reference in &self.references {
            bars.push(Bar {
                label: reference.name.clone(),
                median: reference.ms,
                min: reference.ms,
                max: reference.ms,
                group: Group::Reference,
                note: format!("{} ms (published)", format_ms(reference.ms)),
            });
        }
        let not_shown: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.median().is_none())
            .map(|e| e.name.as_str())
            .collect();
        let run_counts = match (runs.iter().min(), runs.iter().max()) {
            (Some(low), Some(high)) if low != high => format!("{low} to {high} runs"),
            (Some(n), _) => format!("{n} runs"),
            _ => "no runs".into(),
        };
        let mut caption = vec![
            format!(
                "Bars: median of {run_counts} from launch to exit of {} in a busybox rootfs; whiskers: fastest to slowest run.",
                self.workload
            ),
            format!(
                "Measured on {}{}, {} cores, Linux {}, {} (load at start {}).",
                self.machine.cpu,
                if self.machine.virtual_machine {
                    " (itself a VM)"
                } else {
                    ""
                },
                self.machine.cores,
                self.machine.kernel,
                self.machine.date,
                self.machine.load
            ),
        ];
        if !not_shown.is_empty() {
            caption.push(format!(
                "Not shown (skipped or failed): {}.",
                not_shown.join(", ")
            ));
        }
        svg::chart(
            &format!("Container startup: {} (log scale)", self.workload),
            &bars,
            &caption,
        )
    }
}

fn met(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// MiB with two decimals: `1.18`.
fn format_mib(mib: f64) -> String {
    format!("{mib:.2}")
}

fn memory_cells(entry: &MemoryEntry) -> Vec<String> {
    match &entry.outcome {
        MemoryOutcome::Measured(r) => vec![
            entry.name.clone(),
            r.containers.to_string(),
            format_mib(r.rss_mib.median),
            format_mib(r.rss_mib.min),
            format_mib(r.rss_mib.max),
            format_mib(r.pss_mib.median),
            format_mib(r.pss_mib.min),
            format_mib(r.pss_mib.max),
            r.programs.join(", "),
        ],
        MemoryOutcome::Skipped(why) | MemoryOutcome::Failed(why) => {
            let word = if matches!(entry.outcome, MemoryOutcome::Skipped(_)) {
                "skipped"
            } else {
                "FAILED"
            };
            let mut row = vec![entry.name.clone()];
            row.extend(std::iter::repeat_n("-".to_string(), 7));
            row.push(format!("{word}: {why}"));
            row
        }
    }
}

fn cells(entry: &Entry, fastest: Option<f64>) -> Vec<String> {
    match &entry.outcome {
        Outcome::Measured(m) => vec![
            entry.label(),
            format_ms(m.time.median),
            format_ms(m.time.min),
            format_ms(m.time.max),
            format!("{:.1}", m.rss_mib),
            fastest.map_or("-".into(), |f| format_ratio(m.time.median / f)),
            format!("{} (+{})", m.runs, m.warmup),
            entry.status(),
        ],
        _ => {
            let mut row = vec![entry.name.clone()];
            row.extend(std::iter::repeat_n("-".to_string(), 6));
            row.push(entry.status());
            row
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: Kind, median: Option<f64>) -> Entry {
        Entry {
            name: name.into(),
            measures: format!("what {name} does"),
            kind,
            tag: (kind == Kind::Vm).then(|| "TCG, no KVM".to_string()),
            notes: vec![],
            details: vec![],
            outcome: match median {
                Some(median) => Outcome::Measured(Measurement {
                    time: Summary {
                        median,
                        min: median * 0.9,
                        max: median * 1.2,
                    },
                    rss_mib: 3.5,
                    runs: 20,
                    warmup: 2,
                }),
                None => Outcome::Skipped("no binary yet".into()),
            },
        }
    }

    fn results() -> Results {
        let text = r#"
goal = "04 at most twice the floor"
contestant = "04-images"
of = "floor"
max = 2.0
"#;
        let target: Target = toml::from_str(text).unwrap();
        let mut runc_target = target.clone();
        runc_target.goal = toml::Spanned::new(0..0, "02 under a third of runc".to_string());
        runc_target.contestant = Some("02-namespaces".into());
        runc_target.of = Some("runc".into());
        runc_target.max = Some(1.0 / 3.0);
        let memory_target = |goal: &str, memory: &str, max_mib: f64| -> Target {
            toml::from_str(&format!(
                "goal = {goal:?}\nmemory = {memory:?}\nmax_mib = {max_mib:?}\n"
            ))
            .unwrap()
        };
        Results {
            machine: Machine {
                cpu: "AMD EPYC".into(),
                cores: 2,
                memory_gib: 24.0,
                kernel: "6.1.0".into(),
                os: "Debian".into(),
                date: "2025-01-31 14:05 UTC".into(),
                load: "0.10 0.20 0.30".into(),
                virtual_machine: true,
            },
            workload: "/bin/true".into(),
            launcher_floor_mib: Some(0.4),
            entries: vec![
                entry("01-chroot", Kind::Stage, Some(1.0)),
                entry("02-namespaces", Kind::Stage, Some(4.0)),
                entry("04-images", Kind::Stage, None),
                entry("floor", Kind::Command, Some(2.0)),
                entry("runc", Kind::Oci, Some(100.0)),
                entry("vm", Kind::Vm, Some(5000.0)),
            ],
            memory: vec![
                MemoryEntry {
                    name: "07-monitor".into(),
                    measures: "what a monitor holds".into(),
                    outcome: MemoryOutcome::Measured(Resident {
                        containers: 10,
                        rss_mib: Summary {
                            median: 1.5,
                            min: 1.25,
                            max: 1.75,
                        },
                        pss_mib: Summary {
                            median: 0.25,
                            min: 0.2,
                            max: 0.5,
                        },
                        programs: vec!["skiff-pump".into()],
                    }),
                },
                MemoryEntry {
                    name: "05-monitor".into(),
                    measures: "stage 05 has no monitor".into(),
                    outcome: MemoryOutcome::Skipped("no run -d yet".into()),
                },
            ],
            targets: vec![
                target,
                runc_target,
                memory_target("monitor at most 2 MiB", "07-monitor", 2.0),
                memory_target("monitor at most 1 MiB", "07-monitor", 1.0),
                memory_target("05's monitor", "05-monitor", 1.0),
            ],
            references: vec![Reference {
                name: "Firecracker".into(),
                ms: 125.0,
                source: "published".into(),
            }],
        }
    }

    #[test]
    fn ratios_are_to_the_fastest_container_not_the_vm() {
        let results = results();
        assert_eq!(results.fastest_container(), Some(1.0));
        let table = results.table();
        let vm = table.lines().find(|l| l.starts_with("vm")).unwrap();
        assert!(vm.contains("5000×"), "{vm}");
        assert!(vm.starts_with("vm (TCG, no KVM)"), "{vm}");
        let floor = table.lines().find(|l| l.starts_with("floor")).unwrap();
        assert!(floor.contains("2.00×"), "{floor}");
    }

    #[test]
    fn skipped_contestants_say_why_in_the_table() {
        let table = results().markdown_table();
        assert!(
            table.contains("| 04-images | - | - | - | - | - | - | skipped: no binary yet |"),
            "{table}"
        );
    }

    #[test]
    fn targets_report_met_unmet_and_unmeasured() {
        let lines = results().target_lines();
        assert_eq!(
            lines[0],
            "04 at most twice the floor: not measured: 04-images skipped: no binary yet. \
             Stages against floor: 01-chroot 0.50×, 02-namespaces 2.00×."
        );
        assert_eq!(
            lines[1],
            "02 under a third of runc: 02-namespaces / runc = 0.04× (target at most 0.33×): met. \
             Stages against runc: 01-chroot 0.01×, 02-namespaces 0.04×."
        );
    }

    #[test]
    fn memory_targets_compare_the_median_rss_and_state_the_pss() {
        let lines = results().target_lines();
        assert_eq!(
            lines[2],
            "monitor at most 2 MiB: median RSS 1.50 MiB (target at most 2.00 MiB): met; \
             median PSS 0.25 MiB."
        );
        assert_eq!(
            lines[3],
            "monitor at most 1 MiB: median RSS 1.50 MiB (target at most 1.00 MiB): NOT met; \
             median PSS 0.25 MiB."
        );
        assert_eq!(
            lines[4],
            "05's monitor: not measured: 05-monitor skipped: no run -d yet."
        );
    }

    #[test]
    fn memory_is_a_table_of_its_own_not_a_time() {
        let results = results();
        let table = results.memory_table();
        let row = table.lines().find(|l| l.starts_with("07-monitor")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "07-monitor",
                "10",
                "1.50",
                "1.25",
                "1.75",
                "0.25",
                "0.20",
                "0.50",
                "skiff-pump"
            ]
        );
        let markdown = results.markdown("startup.svg");
        assert!(markdown.contains("## Memory per running container"));
        assert!(
            markdown
                .contains("| 05-monitor | - | - | - | - | - | - | - | skipped: no run -d yet |")
        );
        assert!(
            !results.markdown_table().contains("07-monitor"),
            "not a row of the time table"
        );
        assert!(
            !results.svg().contains("07-monitor"),
            "not a bar of the chart"
        );
    }

    #[test]
    fn the_report_states_machine_measure_and_chart() {
        let results = results();
        let report = results.markdown("startup.svg");
        assert!(report.contains("Measured on AMD EPYC (Debian), 2 cores, 24 GiB, kernel 6.1.0"));
        assert!(report.contains("ru_maxrss"));
        assert!(report.contains("about 0.4 MiB when it forks"));
        assert!(report.contains("itself a virtual machine"));
        assert!(report.contains("- Firecracker: 125 ms. published"));
        assert!(report.ends_with("![startup per contestant](startup.svg)\n"));
        let svg = results.svg();
        assert!(svg.contains("Not shown (skipped or failed): 04-images."));
        assert!(svg.contains("AMD EPYC (itself a VM), 2 cores, Linux 6.1.0"));
    }
}
