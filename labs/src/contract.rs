//! The engine's command line as the lab files use it: every subcommand and flag that a check
//! passes to `{bin}`. The book's contract page (`book/src/contract.md`) must name each of them;
//! a test below fails when a lab starts using a flag that the page does not list, so the written
//! contract cannot fall behind the checks.

use std::collections::{BTreeMap, BTreeSet};

use crate::lab::Lab;

/// Subcommands that take a second word (`network create`, `image prune`).
const GROUPS: &[&str] = &["network", "volume", "image", "system", "container"];

/// One use of the engine in a command line: its subcommand (`run`, `network create`) and the
/// flags given to it (`--rootfs`, `-e`; the part before any `=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// The subcommand, one or two words.
    pub subcommand: String,
    /// The flags, in order.
    pub flags: Vec<String>,
}

/// The engine's uses in one command line (a `run` line or a host command): every `{bin}` and the
/// words after it, up to the end of the engine's own arguments as far as they can be told apart
/// without knowing the engine: a shell operator, `--`, or a path where no flag value is due
/// (the container's command). Words with a placeholder in a flag (`--no-such-flag-{random}`,
/// made up on purpose) and numbers (`--cpus -1`) are not flags.
pub fn uses(text: &str) -> Vec<Use> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("{bin}") {
        let mut subcommand: Vec<&str> = Vec::new();
        let mut flags = Vec::new();
        let mut value_due = false;
        for raw in text[at + "{bin}".len()..].split_whitespace() {
            if raw.contains([';', '|', '&', '>', '<', '(', ')', '`']) {
                break;
            }
            let word = raw.trim_matches(['\'', '"', '\\']);
            if word == "--" || word.is_empty() {
                break;
            }
            if word.starts_with('-') && word.len() > 1 {
                let flag = word.split('=').next().unwrap_or(word);
                let number = flag[1..].starts_with(|c: char| c.is_ascii_digit());
                if !number && !flag.contains('{') {
                    flags.push(flag.to_string());
                }
                value_due = !number && !word.contains('=');
            } else if subcommand.is_empty()
                || (subcommand.len() == 1 && GROUPS.contains(&subcommand[0]) && flags.is_empty())
            {
                subcommand.push(word);
                value_due = false;
            } else if word.starts_with('/') && !value_due {
                // The container's command: what follows is its arguments, not the engine's.
                break;
            } else {
                value_due = false;
            }
            // A word that closes a quoted string ends the engine's command line.
            if raw.len() > 1 && raw.ends_with(['\'', '"']) && !raw.starts_with(['\'', '"']) {
                break;
            }
        }
        if !subcommand.is_empty() {
            found.push(Use {
                subcommand: subcommand.join(" "),
                flags,
            });
        }
    }
    found
}

/// Every command line of a lab's checks, with the check's name.
pub fn command_lines(lab: &Lab) -> Vec<(&str, &str)> {
    let mut lines = Vec::new();
    for check in &lab.checks {
        let during = check.during.iter().flat_map(|d| d.host.iter());
        let all = check
            .run
            .lines()
            .into_iter()
            .chain(check.setup.iter().map(String::as_str))
            .chain(check.host_before.iter().map(String::as_str))
            .chain(during.map(String::as_str))
            .chain(check.host_after.iter().map(String::as_str))
            .chain(check.cleanup.iter().map(String::as_str));
        lines.extend(all.map(|line| (check.name.as_str(), line)));
    }
    lines
}

/// For each subcommand the labs use, each flag with the first check (lab/check) that uses it.
pub fn used(labs: &[Lab]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut table: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for lab in labs {
        for (check, line) in command_lines(lab) {
            for one in uses(line) {
                let flags = table.entry(one.subcommand).or_default();
                for flag in one.flags {
                    flags
                        .entry(flag)
                        .or_insert_with(|| format!("{}/{check}", lab.name));
                }
            }
        }
    }
    table
}

/// The words a Markdown text shows as code: the contents of its `code spans`, split at
/// whitespace and at the punctuation of a synopsis (`[`, `]`, `|`, `=`, `,`).
pub fn code_words(markdown: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for (i, span) in markdown.split('`').enumerate() {
        if i % 2 == 1 {
            for word in span.split(|c: char| c.is_whitespace() || "[]|=,\\".contains(c)) {
                if !word.is_empty() {
                    words.insert(word.to_string());
                }
            }
        }
    }
    words
}

/// The code spans of a Markdown text, whole.
pub fn code_spans(markdown: &str) -> Vec<&str> {
    markdown
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, span)| span)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_where_the_containers_command_starts() {
        let found = uses(
            "{bin} run --rootfs {rootfs} -w /tmp -e A=b --cpus -1 --no-such-{random} -- /bin/probe -x",
        );
        assert_eq!(
            found,
            [Use {
                subcommand: "run".into(),
                flags: ["--rootfs", "-w", "-e", "--cpus"]
                    .map(String::from)
                    .to_vec()
            }]
        );
        let found = uses("sh -c '{bin} network create --root {root} -o a=b n{random} > /dev/null'");
        assert_eq!(found[0].subcommand, "network create");
        assert_eq!(found[0].flags, ["--root", "-o"]);
        let found =
            uses("{bin} run --rm -i skiff-lab /bin/cat -n; {bin} exec -u lab c /bin/sh -c 'x'");
        assert_eq!(found[0].flags, ["--rm", "-i"]);
        assert_eq!(found[1].subcommand, "exec");
        assert_eq!(found[1].flags, ["-u"]);
    }

    /// The written contract names every subcommand and flag that a lab passes to the engine.
    #[test]
    fn the_contract_page_lists_every_flag_the_labs_use() {
        let page = crate::labs_dir().join("../book/src/contract.md");
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|e| panic!("read {}: {e}", page.display()));
        let words = code_words(&text);
        let spans = code_spans(&text);
        let labs: Vec<Lab> = crate::lab_files()
            .expect("the lab files")
            .iter()
            .map(|path| Lab::load(path, crate::STAGE_PLACEHOLDERS).expect("a lab file"))
            .collect();
        let table = used(&labs);
        // The extraction sees the engine's flags of every stage, up to lab 07's.
        for (subcommand, flag) in [
            ("run", "--rootfs"),
            ("run", "--cidfile"),
            ("run", "--volumes-from"),
            ("network create", "--ip-range"),
            ("cp", "-a"),
            ("ps", "--no-trunc"),
        ] {
            assert!(
                table.get(subcommand).is_some_and(|f| f.contains_key(flag)),
                "{subcommand} {flag} not found in the labs: {table:#?}"
            );
        }
        let mut missing = Vec::new();
        for (subcommand, flags) in table {
            let named = |span: &&str| {
                span.strip_prefix(subcommand.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            };
            if !spans.iter().any(named) {
                missing.push(format!("the subcommand `{subcommand}`"));
            }
            for (flag, first) in flags {
                if !words.contains(&flag) {
                    missing.push(format!("`{subcommand} {flag}` (first in {first})"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{} does not mention, in code, what the labs pass to the engine:\n  {}",
            page.display(),
            missing.join("\n  ")
        );
    }
}
