//! The lab file format: one TOML file per stage, `labs/NN-name.toml`.
//!
//! ```toml
//! stage = 1
//! name = "01-chroot"
//! title = "chroot: run a command in another root"
//! requires = []                     # earlier labs this stage must still pass
//!
//! [[check]]
//! name = "exit-code-passes-back"
//! teaches = "The engine exits with the command's own status."
//! random = { code = { range = [1, 120] } }
//! run = "{bin} run --rootfs {rootfs} -- probe exit {code}"
//! expect = { exit = "{code}" }
//! ```
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a typo in a lab file fails loudly, with the
//! file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A malformed lab file.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The lab file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not match the format; the message holds line and column.
    #[error("{path}: {message}")]
    Parse {
        /// The lab file.
        path: PathBuf,
        /// toml's message, with the line, column and the offending text.
        message: String,
    },
    /// The TOML parses but says something impossible.
    #[error("{path}: check {check:?}: {message}")]
    Invalid {
        /// The lab file.
        path: PathBuf,
        /// The check at fault.
        check: String,
        /// What is wrong.
        message: String,
    },
}

// ANCHOR: lab_file
/// One lab: the checks of one stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// The stage number (1 for `01-chroot`).
    pub stage: u32,
    /// The lab's name, which is also its file name without `.toml` ("01-chroot").
    pub name: String,
    /// One line for reports and the book.
    pub title: String,
    /// Earlier labs that every binary of this stage must still pass.
    #[serde(default)]
    pub requires: Vec<String>,
    /// The checks, in the order the book shows them.
    #[serde(rename = "check")]
    pub checks: Vec<Check>,
}

/// One observable behaviour, and how to observe it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Short, unique within the lab; used to run one check by name.
    pub name: String,
    /// One sentence: what this check teaches. The book shows it.
    pub teaches: String,
    /// The check observes isolation: it must fail against the impostor (a binary that takes the
    /// same flags but runs the command on the host).
    #[serde(default)]
    pub isolation: bool,
    /// From this stage on, the behaviour is gone on purpose (a hole closed): the check must fail.
    pub closed_in: Option<u32>,
    /// The defence this check proves (`seccomp`, `devices`...): the labs' self-test runs it
    /// once more against the real engine with that one defence switched off
    /// (`SKIFF_UNSAFE_DISABLE=NAME`, which debug builds of skiff honour), and there it must fail.
    pub defence: Option<String>,
    /// Kernel modules the check needs (`ipvlan`, `8021q`): on a kernel without one of them
    /// (no `/sys/module/NAME`) the check does not apply, and says so; scripts/test-in-vm runs
    /// it in a VM whose kernel has them.
    #[serde(default)]
    pub kernel: Vec<String>,
    /// What the check's failure must say with its defence switched off: a regular expression
    /// (a plain fragment is one) that the failure report must match, so that a check failing
    /// for another reason without the defence (a crash, a timeout) does not count as proof.
    pub defence_says: Option<String>,
    /// Only from this stage on (a behaviour a later stage adds to an earlier lab's subject).
    pub since: Option<u32>,
    /// Only up to this stage: a later stage changes the behaviour on purpose (from stage 07 a
    /// container outlives its command), and a check of its own lab says what holds then.
    pub until: Option<u32>,
    /// Runs after every other check of the run, one at a time (for "nothing left behind").
    #[serde(default, rename = "final")]
    pub last: bool,
    /// Needs IPv6 in the kernel: skipped, with the reason, where `/proc/sys/net/ipv6` is missing
    /// (a kernel built without it, or booted with `ipv6.disable=1`).
    #[serde(default)]
    pub needs_ipv6: bool,
    /// Named random values, drawn from the lab seed.
    #[serde(default)]
    pub random: BTreeMap<String, Random>,
    /// Environment variables given to the engine.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run the engine as this uid instead of root.
    pub as_uid: Option<u32>,
    /// Hand the engine an extra open descriptor (7) that it must not pass on.
    #[serde(default)]
    pub inherit_fd: bool,
    /// Run the whole check this many times at once, from threads.
    pub parallel: Option<usize>,
    /// Host shell commands run once before all copies of a `parallel` check (with `{shared}`, a
    /// directory all copies share); each must succeed.
    #[serde(default)]
    pub setup: Vec<String>,
    /// Host shell commands before the run; each must succeed.
    #[serde(default)]
    pub host_before: Vec<String>,
    /// The engine command line(s). Every one but the last must exit 0; `expect` is about the last.
    pub run: Runs,
    /// Text written to the last command's stdin.
    pub stdin: Option<String>,
    /// Host-side actions while the last command runs.
    pub during: Option<During>,
    /// Host shell commands after the run; each must succeed.
    #[serde(default)]
    pub host_after: Vec<String>,
    /// Host shell commands that always run at the end; their outcome is ignored.
    #[serde(default)]
    pub cleanup: Vec<String>,
    /// Seconds before the last command is killed and the check fails (default 60).
    pub timeout: Option<u64>,
    /// What must hold about the last command.
    #[serde(default)]
    pub expect: Expect,
}

/// One command line, or several run in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Runs {
    /// A single command line.
    One(String),
    /// Several, in order.
    Many(Vec<String>),
}

/// A random value: an integer in an inclusive range, or one of a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Random {
    /// An integer in `[low, high]`.
    Range([i64; 2]),
    /// One of these strings.
    OneOf(Vec<String>),
}

/// Host actions while the command runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct During {
    /// Wait until the command's stdout holds this text before acting.
    pub wait_for: String,
    /// Host shell commands; each must succeed. `{engine_pid}` is the engine's pid.
    pub host: Vec<String>,
}

/// What must hold about a command's outcome.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The exit code: a number, or a string such as `"{code}"` or `"128 + {sig}"`.
    pub exit: Option<ExitSpec>,
    /// Stdout, exactly.
    pub stdout: Option<String>,
    /// Texts stdout must contain.
    #[serde(default)]
    pub stdout_contains: Vec<String>,
    /// Texts stdout must not contain.
    #[serde(default)]
    pub stdout_lacks: Vec<String>,
    /// A regular expression stdout must match.
    pub stdout_regex: Option<String>,
    /// Stderr, exactly.
    pub stderr: Option<String>,
    /// Texts stderr must contain.
    #[serde(default)]
    pub stderr_contains: Vec<String>,
    /// Texts stderr must not contain.
    #[serde(default)]
    pub stderr_lacks: Vec<String>,
    /// A regular expression stderr must match.
    pub stderr_regex: Option<String>,
    /// The last command leaves nothing on the host: no mount, cgroup, link, network namespace,
    /// firewall rule, process or file under the store that was not there before it. Only for
    /// `final` checks, which run alone.
    #[serde(default)]
    pub no_leaks: bool,
}

/// An expected exit code.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExitSpec {
    /// A literal code.
    Code(i32),
    /// An expression over placeholders: terms joined by `+`.
    Expr(String),
}
// ANCHOR_END: lab_file

impl Runs {
    /// The command lines, in order.
    pub fn lines(&self) -> Vec<&str> {
        match self {
            Runs::One(line) => vec![line.as_str()],
            Runs::Many(lines) => lines.iter().map(String::as_str).collect(),
        }
    }
}

/// Placeholders the harness fills in for every check. Stages may add more through
/// [`crate::Fixtures::extra`].
pub const BUILTIN_PLACEHOLDERS: &[&str] = &[
    "bin",
    "rootfs",
    "probe",
    "tmp",
    "random",
    "seed",
    "i",
    "host_hostname",
    "engine_pid",
    "fixtures",
    "root",
    "shared",
    "host_ns_cgroup",
    "host_ns_ipc",
    "host_ns_mnt",
    "host_ns_net",
    "host_ns_pid",
    "host_ns_user",
    "host_ns_uts",
];

impl Lab {
    /// Reads and validates a lab file.
    pub fn load(path: &Path, extra_placeholders: &[&str]) -> Result<Lab, LabError> {
        let text = std::fs::read_to_string(path).map_err(|source| LabError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Lab::parse(path, &text, extra_placeholders)
    }

    /// Parses and validates lab text; `path` is for messages.
    pub fn parse(path: &Path, text: &str, extra_placeholders: &[&str]) -> Result<Lab, LabError> {
        let lab: Lab = toml::from_str(text).map_err(|err| LabError::Parse {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })?;
        lab.validate(path, extra_placeholders)?;
        Ok(lab)
    }

    fn validate(&self, path: &Path, extra: &[&str]) -> Result<(), LabError> {
        let invalid = |check: &str, message: String| LabError::Invalid {
            path: path.to_path_buf(),
            check: check.to_string(),
            message,
        };
        let mut seen = BTreeSet::new();
        for check in &self.checks {
            if !seen.insert(check.name.as_str()) {
                return Err(invalid(&check.name, "a second check has this name".into()));
            }
            if check.teaches.trim().is_empty() {
                return Err(invalid(
                    &check.name,
                    "`teaches` is empty: say what the check shows".into(),
                ));
            }
            if check.run.lines().is_empty() {
                return Err(invalid(&check.name, "`run` holds no command".into()));
            }
            let known: BTreeSet<&str> = BUILTIN_PLACEHOLDERS
                .iter()
                .chain(extra)
                .copied()
                .chain(check.random.keys().map(String::as_str))
                .collect();
            let commands = check
                .run
                .lines()
                .into_iter()
                .chain(check.setup.iter().map(String::as_str))
                .chain(check.host_before.iter().map(String::as_str))
                .chain(check.host_after.iter().map(String::as_str))
                .chain(check.cleanup.iter().map(String::as_str))
                .chain(
                    check
                        .during
                        .iter()
                        .flat_map(|d| d.host.iter().map(String::as_str)),
                );
            for command in commands {
                for name in placeholders(command) {
                    if !known.contains(name) {
                        return Err(invalid(
                            &check.name,
                            format!("unknown placeholder {{{name}}} in {command:?}"),
                        ));
                    }
                }
            }
            for (name, random) in &check.random {
                match random {
                    Random::Range([low, high]) if low > high => {
                        return Err(invalid(&check.name, format!("random {name}: empty range")));
                    }
                    Random::OneOf(list) if list.is_empty() => {
                        return Err(invalid(&check.name, format!("random {name}: empty list")));
                    }
                    _ => {}
                }
            }
            for regex in [&check.expect.stdout_regex, &check.expect.stderr_regex]
                .into_iter()
                .flatten()
            {
                regex::Regex::new(regex)
                    .map_err(|e| invalid(&check.name, format!("bad regex {regex:?}: {e}")))?;
            }
            if check.parallel == Some(0) {
                return Err(invalid(&check.name, "parallel = 0 runs nothing".into()));
            }
            check
                .validate_stages()
                .map_err(|m| invalid(&check.name, m))?;
            check
                .validate_leaks()
                .map_err(|m| invalid(&check.name, m))?;
        }
        Ok(())
    }
}

impl Check {
    /// `since`, `until` and `closed_in` describe one span of stages.
    fn validate_stages(&self) -> Result<(), String> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && until < since
        {
            return Err(format!(
                "until = {until} is before since = {since}: the check would apply to no stage"
            ));
        }
        if let Some(defence) = &self.defence
            && (defence.is_empty()
                || !defence
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(format!(
                "defence {defence:?}: name it in lowercase letters, digits and dashes"
            ));
        }
        if let Some(says) = &self.defence_says {
            if self.defence.is_none() {
                return Err(format!(
                    "defence_says = {says:?} without `defence`: it says how the check fails \
                     without its defence, so name the defence"
                ));
            }
            if let Some(name) = placeholders(says).next() {
                return Err(format!(
                    "defence_says holds the placeholder {{{name}}}: it is matched against the \
                     failure report as it is, so write what is fixed"
                ));
            }
            regex::Regex::new(says).map_err(|e| format!("bad defence_says {says:?}: {e}"))?;
        }
        if self.until.is_some() && self.closed_in.is_some() {
            let why = "a check either stops applying (until) or must fail from a stage on \
                       (closed_in), not both";
            return Err(format!("both `until` and `closed_in` are set: {why}"));
        }
        Ok(())
    }

    /// `no_leaks` compares the whole host before and after the last command, so nothing else
    /// may run meanwhile: only a `final` check, run once, can promise that.
    fn validate_leaks(&self) -> Result<(), String> {
        if self.expect.no_leaks && (!self.last || self.parallel.is_some_and(|n| n > 1)) {
            let why = "it compares the whole host before and after the last command, and \
                       another check running meanwhile would show in the difference";
            return Err(format!(
                "no_leaks needs final = true and no parallel runs: {why}"
            ));
        }
        Ok(())
    }
}

/// The `{name}` placeholders in `text` (lower-case identifiers only, so regex braces are not).
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| {
        let name = rest.split_once('}')?.0;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && name.starts_with(|c: char| c.is_ascii_lowercase());
        valid.then_some(name)
    })
}

/// Replaces every known `{name}` in `text`; other braces are left alone.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        result.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once('}') {
            Some((name, tail)) if values.contains_key(name) => {
                result.push_str(&values[name]);
                rest = tail;
            }
            _ => {
                result.push('{');
                rest = after;
            }
        }
    }
    result.push_str(rest);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
stage = 1
name = "01-test"
title = "a test lab"

[[check]]
name = "one"
teaches = "Something."
random = { code = { range = [1, 9] }, sig = { one_of = ["9"] } }
run = "{bin} run --rootfs {rootfs} -- probe exit {code}"
expect = { exit = "{code}", stdout_regex = "^\\d{3}$" }
"#;

    #[test]
    fn a_good_lab_parses() {
        let lab = Lab::parse(Path::new("good.toml"), GOOD, &[]).unwrap();
        assert_eq!(lab.checks.len(), 1);
        assert!(matches!(
            lab.checks[0].random["code"],
            Random::Range([1, 9])
        ));
    }

    #[test]
    fn an_unknown_key_names_file_and_line() {
        let text = GOOD.replace("teaches =", "teachez =");
        let err = Lab::parse(Path::new("labs/bad.toml"), &text, &[]).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("labs/bad.toml: "), "{message}");
        assert!(message.contains("line 8"), "{message}");
        assert!(message.contains("teachez"), "{message}");
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        let text = GOOD.replace("probe exit {code}", "probe exit {cod}");
        let err = Lab::parse(Path::new("x.toml"), &text, &[]).unwrap_err();
        assert!(
            err.to_string().contains("unknown placeholder {cod}"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[check]]").unwrap()..]);
        let err = Lab::parse(Path::new("x.toml"), &text, &[]).unwrap_err();
        assert!(err.to_string().contains("a second check"), "{err}");
    }

    #[test]
    fn until_must_not_be_before_since() {
        let text = GOOD.replace("[[check]]\n", "[[check]]\nsince = 5\nuntil = 4\n");
        let err = Lab::parse(Path::new("x.toml"), &text, &[]).unwrap_err();
        assert!(
            err.to_string().contains("until = 4 is before since = 5"),
            "{err}"
        );
        let text = GOOD.replace("[[check]]\n", "[[check]]\nsince = 5\nuntil = 5\n");
        assert!(Lab::parse(Path::new("x.toml"), &text, &[]).is_ok());
    }

    #[test]
    fn until_and_closed_in_are_not_both_set() {
        let text = GOOD.replace("[[check]]\n", "[[check]]\nuntil = 6\nclosed_in = 4\n");
        let err = Lab::parse(Path::new("x.toml"), &text, &[]).unwrap_err();
        assert!(
            err.to_string().contains("both `until` and `closed_in`"),
            "{err}"
        );
    }

    #[test]
    fn defence_says_needs_a_defence_and_a_good_regex() {
        let says = GOOD.replace("[[check]]\n", "[[check]]\ndefence_says = \"escaped\"\n");
        let err = Lab::parse(Path::new("x.toml"), &says, &[]).unwrap_err();
        assert!(err.to_string().contains("without `defence`"), "{err}");
        let named = says.replace("[[check]]\n", "[[check]]\ndefence = \"pivot-root\"\n");
        let lab = Lab::parse(Path::new("x.toml"), &named, &[]).unwrap();
        assert_eq!(lab.checks[0].defence_says.as_deref(), Some("escaped"));
        let bad = named.replace("\"escaped\"", "\"(escaped\"");
        let err = Lab::parse(Path::new("x.toml"), &bad, &[]).unwrap_err();
        assert!(err.to_string().contains("bad defence_says"), "{err}");
        let placeholder = named.replace("\"escaped\"", "\"escaped {code}\"");
        let err = Lab::parse(Path::new("x.toml"), &placeholder, &[]).unwrap_err();
        assert!(err.to_string().contains("placeholder {code}"), "{err}");
    }

    #[test]
    fn no_leaks_needs_a_final_check() {
        let text = GOOD.replace("expect = { exit", "expect = { no_leaks = true, exit");
        let err = Lab::parse(Path::new("x.toml"), &text, &[]).unwrap_err();
        assert!(
            err.to_string().contains("no_leaks needs final = true"),
            "{err}"
        );
        let text = text.replace("[[check]]\n", "[[check]]\nfinal = true\n");
        assert!(Lab::parse(Path::new("x.toml"), &text, &[]).is_ok());
    }

    #[test]
    fn substitution_leaves_regex_braces_alone() {
        let values = BTreeMap::from([("code".to_string(), "7".to_string())]);
        assert_eq!(
            substitute("exit {code} \\d{3} {x}", &values),
            "exit 7 \\d{3} {x}"
        );
        assert_eq!(
            placeholders("a {b} {c_1} {3} {D}").collect::<Vec<_>>(),
            ["b", "c_1"]
        );
    }
}
