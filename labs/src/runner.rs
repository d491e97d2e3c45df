//! Running one check: fill in the placeholders, run the host commands and the engine, and
//! compare what came back with what the check expects.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fixtures::Fixtures;
use crate::lab::{Check, ExitSpec, Lab, Random, substitute};
use crate::leaks::{self, Snapshot};

/// How long a process the last command started may take to exit before it counts as left behind:
/// the engine has returned, but a container's processes may still be on their way out.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The binary under test, and the stage it claims to be.
#[derive(Debug, Clone)]
pub struct Target {
    /// The stage number: decides which `closed_in` and `since` checks apply.
    pub stage: u32,
    /// The engine binary.
    pub bin: PathBuf,
    /// More environment for every engine command (the self-test switches a defence off here).
    pub env: Vec<(String, String)>,
}

/// Everything a check needs besides itself.
#[derive(Debug, Clone)]
pub struct Context {
    /// The binary under test.
    pub target: Target,
    /// The built fixtures.
    pub fixtures: Fixtures,
    /// The lab seed: the same seed draws the same random values.
    pub seed: u64,
}

/// How a check relates to the stage under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Runs, and must pass.
    Normally,
    /// Runs, and must fail: a later stage closed the hole it demonstrates.
    Closed,
    /// Does not apply yet (`since` is a later stage).
    NotYet,
    /// No longer applies (`until` is an earlier stage): a later stage changed the behaviour on
    /// purpose, and a check of its own lab says what holds then.
    Superseded,
    /// This host's kernel lacks a module the check needs (`kernel`).
    Unsupported,
}

impl Applies {
    /// The check does not run at this stage.
    pub fn skipped(self) -> bool {
        matches!(
            self,
            Applies::NotYet | Applies::Superseded | Applies::Unsupported
        )
    }
}

impl Check {
    /// How this check relates to `stage`.
    pub fn applies(&self, stage: u32) -> Applies {
        if self.since.is_some_and(|since| stage < since) {
            Applies::NotYet
        } else if self.until.is_some_and(|until| stage > until) {
            Applies::Superseded
        } else if self.kernel_lacks().is_some() {
            Applies::Unsupported
        } else if self.closed_in.is_some_and(|closed| stage >= closed) {
            Applies::Closed
        } else {
            Applies::Normally
        }
    }
}

impl Check {
    /// The first kernel module the check needs that this kernel does not have loaded or built in.
    pub fn kernel_lacks(&self) -> Option<&str> {
        self.kernel
            .iter()
            .map(String::as_str)
            .find(|name| !std::path::Path::new("/sys/module").join(name).exists())
    }
}

/// Runs `check` of `lab`: `Ok` when it holds (or, for a closed check, when it fails as it must).
pub fn run_check(ctx: &Context, lab: &Lab, check: &Check) -> Result<(), String> {
    let outcome = run_all(ctx, lab, check);
    match (check.applies(ctx.target.stage), outcome) {
        (Applies::Closed, Ok(())) => Err(format!(
            "this check demonstrates a hole that stage {:02} closes, so it must fail against a \
             stage {:02} binary, but it passed",
            check.closed_in.unwrap_or_default(),
            ctx.target.stage
        )),
        (Applies::Closed, Err(_)) => Ok(()),
        (_, outcome) => outcome,
    }
}

fn run_all(ctx: &Context, lab: &Lab, check: &Check) -> Result<(), String> {
    let shared = tempfile::Builder::new()
        .prefix("skiff-lab-shared-")
        .tempdir()
        .map_err(|e| format!("create a temporary directory: {e}"))?;
    let shared = shared.path();
    if !check.setup.is_empty() {
        let values = values(ctx, lab, check, 0, shared, shared);
        for command in &check.setup {
            host(command, &values, "setting up", &ctx.target.env).map_err(|e| with_seed(ctx, e))?;
        }
    }
    let copies = check.parallel.unwrap_or(1);
    if copies == 1 {
        return run_once(ctx, lab, check, 0, shared).map_err(|e| with_seed(ctx, e));
    }
    let errors: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..copies)
            .map(|i| scope.spawn(move || run_once(ctx, lab, check, i, shared)))
            .collect();
        handles
            .into_iter()
            .enumerate()
            .filter_map(|(i, handle)| match handle.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("run {i} of {copies}: {e}")),
                Err(_) => Some(format!("run {i} of {copies}: the harness thread panicked")),
            })
            .collect()
    });
    if errors.is_empty() {
        Ok(())
    } else {
        let shown: Vec<&str> = errors.iter().take(3).map(String::as_str).collect();
        Err(with_seed(
            ctx,
            format!(
                "{} of {copies} concurrent runs failed; the first:\n{}",
                errors.len(),
                shown.join("\n")
            ),
        ))
    }
}

fn with_seed(ctx: &Context, message: String) -> String {
    format!("{message}\n(replay with LAB_SEED={})", ctx.seed)
}

/// A random lowercase word of eight letters.
fn word(rng: &mut fastrand::Rng) -> String {
    (0..8).map(|_| rng.lowercase()).collect()
}

/// The random source of one run of a check: the seed, and what the run is — the check, its
/// copy, and the engine it runs against, so that the same check run against several engines at
/// once (the impostor self-test does) never picks the same link, netns or network names.
fn check_rng(ctx: &Context, lab: &Lab, check: &Check, index: usize) -> fastrand::Rng {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&lab.name, &check.name, index).hash(&mut hasher);
    (ctx.target.stage, &ctx.target.bin, &ctx.target.env).hash(&mut hasher);
    fastrand::Rng::with_seed(ctx.seed ^ hasher.finish())
}

/// The placeholder values of one run of a check.
fn values(
    ctx: &Context,
    lab: &Lab,
    check: &Check,
    index: usize,
    tmp: &std::path::Path,
    shared: &std::path::Path,
) -> BTreeMap<String, String> {
    let mut rng = check_rng(ctx, lab, check, index);
    let fixtures = &ctx.fixtures;
    let mut values: BTreeMap<String, String> = fixtures.extra.clone();
    let path = |p: &std::path::Path| p.display().to_string();
    values.insert("bin".into(), path(&ctx.target.bin));
    values.insert("rootfs".into(), path(&fixtures.rootfs));
    values.insert("probe".into(), path(&fixtures.probe));
    values.insert("fixtures".into(), path(&fixtures.dir));
    values.insert("tmp".into(), path(tmp));
    values.insert("shared".into(), path(shared));
    // Every run gets a store of its own, which goes away with the check's temporary directory.
    values.insert("root".into(), path(&tmp.join("root")));
    for (kind, inode) in host_namespaces() {
        values.insert(format!("host_ns_{kind}"), inode);
    }
    values.insert("random".into(), word(&mut rng));
    values.insert("seed".into(), ctx.seed.to_string());
    values.insert("i".into(), index.to_string());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    values.insert("host_hostname".into(), hostname.trim().to_string());
    for (name, random) in &check.random {
        let value = match random {
            Random::Range([low, high]) => rng.i64(*low..=*high).to_string(),
            Random::OneOf(list) => list[rng.usize(..list.len())].clone(),
        };
        values.insert(name.clone(), value);
    }
    values
}

/// The host's namespaces as `/proc/self/ns` shows them: ("pid", "pid:[4026531836]").
fn host_namespaces() -> Vec<(String, String)> {
    ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
        .iter()
        .filter_map(|kind| {
            let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
            Some((kind.to_string(), link.display().to_string()))
        })
        .collect()
}

/// Runs a host shell command; it must exit 0.
/// Runs a host command of a check with `sh -c`. It gets the target's environment too (the
/// defence switched off, say), since host commands call the engine as well: a check whose
/// attack is made by a `host_before` line must meet the same engine as its `run` line.
fn host(
    command: &str,
    values: &BTreeMap<String, String>,
    when: &str,
    env: &[(String, String)],
) -> Result<(), String> {
    let line = substitute(command, values);
    let output = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .env_remove("SKIFF_HOST")
        .env_remove("DOCKER_HOST")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{when}: cannot run sh: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{when} host command failed ({}): {line}\n{}{}",
        output.status,
        excerpt("stdout", &output.stdout),
        excerpt("stderr", &output.stderr)
    ))
}

fn excerpt(name: &str, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.is_empty() {
        return format!("  {name}: (empty)\n");
    }
    let shown: String = text.chars().take(1500).collect();
    let more = if text.chars().count() > 1500 {
        "\n  …"
    } else {
        ""
    };
    format!(
        "  {name}: {}{more}\n",
        shown.trim_end().replace('\n', "\n    ")
    )
}

fn split(line: &str, values: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let words = shlex::split(line).ok_or_else(|| format!("unbalanced quotes in {line:?}"))?;
    Ok(words.iter().map(|w| substitute(w, values)).collect())
}

/// What an engine run produced.
struct Outcome {
    command: String,
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    timed_out: bool,
}

impl Outcome {
    fn describe(&self) -> String {
        let status = match (self.code, self.signal, self.timed_out) {
            (_, _, true) => "timed out and was killed".to_string(),
            (Some(code), _, _) => format!("exit {code}"),
            (None, Some(signal), _) => format!("killed by signal {signal}"),
            _ => "no status".to_string(),
        };
        format!(
            "command: {}\n  status: {status}\n{}{}",
            self.command,
            excerpt("stdout", &self.stdout),
            excerpt("stderr", &self.stderr)
        )
    }
}

fn spawn_reader(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .map(|mut v| v.extend_from_slice(&buf[..n]))
                    .unwrap_or(()),
            }
        }
    });
}

/// Stops a run that took too long. The engine's container is killed first, so the engine sees
/// it end and cleans up (a killed engine would leave its cgroup, mounts and state behind); only
/// an engine that still has not exited after a few seconds is killed itself, with its group.
fn stop(child: &mut Child) {
    let Ok(engine) = i32::try_from(child.id()) else {
        return;
    };
    for member in process_group(engine).into_iter().filter(|p| *p != engine) {
        // SAFETY: kill(2) on a process of the group the harness made for this run.
        unsafe { libc::kill(member, libc::SIGKILL) };
    }
    let grace = Instant::now() + Duration::from_secs(5);
    while Instant::now() < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) with a negative pid signals the process group we created for the run.
    unsafe { libc::kill(-engine, libc::SIGKILL) };
}

/// The processes whose process group is `group`.
fn process_group(group: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                == Some(group)
        })
        .collect()
}

/// Runs one engine command line and collects what it did.
fn engine(
    check: &Check,
    argv: &[String],
    last: bool,
    values: &mut BTreeMap<String, String>,
    env: &[(String, String)],
) -> Result<Outcome, String> {
    // Stdin and the `during` actions belong to the last command; earlier ones only prepare.
    let stdin = check.stdin.as_deref().filter(|_| last);
    let during = check.during.as_ref().filter(|_| last);
    let (program, args) = argv.split_first().ok_or("an empty command line")?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // The engine under test works on its own store: a shell set up for a docker client
        // (rootless docker sets DOCKER_HOST) would make skiff a client of that daemon instead.
        .env_remove("SKIFF_HOST")
        .env_remove("DOCKER_HOST");
    if let Some(root) = values.get("root") {
        command.env("SKIFF_ROOT", root);
    }
    for (key, value) in &check.env {
        command.env(key, substitute(value, values));
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(uid) = check.as_uid {
        command.uid(uid).gid(uid);
    }
    let extra_fd = if check.inherit_fd {
        Some(std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?)
    } else {
        None
    };
    if let Some(file) = &extra_fd {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; it gives the engine a descriptor 7 without
        // close-on-exec, which a careful engine closes before its command starts.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(fd, 7) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let shown = argv.join(" ");
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    drop(extra_fd);
    values.insert("engine_pid".into(), child.id().to_string());
    // Each run's process group, to be emptied when the check is over.
    let groups = values.entry("engine_groups".into()).or_default();
    groups.push_str(&format!("{} ", child.id()));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(pipe) = child.stdout.take() {
        spawn_reader(pipe, stdout.clone());
    }
    if let Some(pipe) = child.stderr.take() {
        spawn_reader(pipe, stderr.clone());
    }
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let text = substitute(text, values);
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    let deadline = Instant::now() + Duration::from_secs(check.timeout.unwrap_or(60));
    let mut during_error = None;
    if let Some(during) = during {
        let wanted = substitute(&during.wait_for, values);
        let seen = loop {
            let has = stdout
                .lock()
                .map(|v| String::from_utf8_lossy(&v).contains(&wanted))
                .unwrap_or(false);
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if has || exited || Instant::now() > deadline {
                break has;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if seen {
            during_error = during
                .host
                .iter()
                .find_map(|cmd| host(cmd, values, "during the run", env).err());
        } else {
            during_error = Some(format!("the command never printed {wanted:?}"));
        }
        // The check already failed: do not wait out the timeout.
        if during_error.is_some() {
            stop(&mut child);
        }
    }
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false),
            Ok(None) if Instant::now() > deadline => {
                stop(&mut child);
                break (child.wait().ok(), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("wait for {program}: {e}")),
        }
    };
    // The readers finish when the pipes close; a leftover process holding them open must not
    // hang the harness, so wait a bounded time.
    let drained = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&stdout) + Arc::strong_count(&stderr) > 2 && Instant::now() < drained {
        std::thread::sleep(Duration::from_millis(2));
    }
    use std::os::unix::process::ExitStatusExt;
    let outcome = Outcome {
        command: shown,
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout: stdout.lock().map(|v| v.clone()).unwrap_or_default(),
        stderr: stderr.lock().map(|v| v.clone()).unwrap_or_default(),
        timed_out,
    };
    match during_error {
        Some(error) => Err(format!("{error}\n{}", outcome.describe())),
        None => Ok(outcome),
    }
}

fn expected_exit(spec: &ExitSpec, values: &BTreeMap<String, String>) -> Result<i32, String> {
    match spec {
        ExitSpec::Code(code) => Ok(*code),
        ExitSpec::Expr(expr) => substitute(expr, values)
            .split('+')
            .map(|term| {
                term.trim()
                    .parse::<i32>()
                    .map_err(|_| format!("exit expression {expr:?}: {term:?} is not a number"))
            })
            .sum(),
    }
}

/// Compares an outcome with the check's expectations; lists every mismatch.
fn compare(
    check: &Check,
    outcome: &Outcome,
    values: &BTreeMap<String, String>,
) -> Result<(), String> {
    let expect = &check.expect;
    let mut problems = Vec::new();
    if outcome.timed_out {
        problems.push(format!(
            "the command did not finish within {} s",
            check.timeout.unwrap_or(60)
        ));
    }
    if let Some(spec) = &expect.exit {
        let wanted = expected_exit(spec, values)?;
        if outcome.code != Some(wanted) {
            problems.push(format!("expected exit {wanted}"));
        }
    }
    let streams = [
        (
            "stdout",
            &outcome.stdout,
            &expect.stdout,
            &expect.stdout_contains,
            &expect.stdout_lacks,
            &expect.stdout_regex,
        ),
        (
            "stderr",
            &outcome.stderr,
            &expect.stderr,
            &expect.stderr_contains,
            &expect.stderr_lacks,
            &expect.stderr_regex,
        ),
    ];
    for (name, bytes, exact, contains, lacks, regex) in streams {
        let text = String::from_utf8_lossy(bytes);
        if let Some(exact) = exact {
            let wanted = substitute(exact, values);
            if text != wanted {
                problems.push(format!("expected {name} exactly {wanted:?}"));
            }
        }
        for needle in contains {
            let needle = substitute(needle, values);
            if !text.contains(&needle) {
                problems.push(format!("expected {name} to contain {needle:?}"));
            }
        }
        for needle in lacks {
            let needle = substitute(needle, values);
            if text.contains(&needle) {
                problems.push(format!("expected {name} not to contain {needle:?}"));
            }
        }
        if let Some(pattern) = regex {
            let pattern = substitute(pattern, values);
            let re = regex::Regex::new(&pattern).map_err(|e| format!("bad regex: {e}"))?;
            if !re.is_match(&text) {
                problems.push(format!("expected {name} to match /{pattern}/"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{}", problems.join("\n"), outcome.describe()))
    }
}

fn run_once(
    ctx: &Context,
    lab: &Lab,
    check: &Check,
    index: usize,
    shared: &std::path::Path,
) -> Result<(), String> {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-lab-")
        .tempdir()
        .map_err(|e| format!("create a temporary directory: {e}"))?;
    let mut values = values(ctx, lab, check, index, tmp.path(), shared);
    let result = run_steps(check, &mut values, &ctx.target.env);
    for command in &check.cleanup {
        let _ = host(command, &values, "cleanup", &ctx.target.env);
    }
    kill_leftovers(&values);
    result
}

/// Kills what is left in the process groups of a check's runs, once the check is over: the
/// command of an engine that the check killed (`kill -9 {engine_pid}`) would live on. After the
/// check, so its own host commands still see whatever an engine left. A real engine's monitor
/// has a session of its own and is not touched.
fn kill_leftovers(values: &BTreeMap<String, String>) {
    let groups = values
        .get("engine_groups")
        .map(String::as_str)
        .unwrap_or_default();
    for group in groups
        .split_whitespace()
        .filter_map(|g| g.parse::<i32>().ok())
    {
        if group > 1 {
            // SAFETY: kill(2) with a negative pid signals the process group made for that run.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}

fn run_steps(
    check: &Check,
    values: &mut BTreeMap<String, String>,
    env: &[(String, String)],
) -> Result<(), String> {
    for command in &check.host_before {
        host(command, values, "before the run", env)?;
    }
    let lines = check.run.lines();
    let (last, first) = lines.split_last().ok_or("no command to run")?;
    for line in first {
        let argv = split(line, values)?;
        let outcome = engine(check, &argv, false, values, env)?;
        if outcome.code != Some(0) {
            return Err(format!(
                "a preparatory command failed\n{}",
                outcome.describe()
            ));
        }
    }
    let argv = split(last, values)?;
    // What the last command must not leave behind is what it adds to the host, so the host is
    // looked at right before it, after the preparatory commands made what they make. Checks with
    // `no_leaks` are `final` (`Lab::validate` insists): the harness runs them one at a time after
    // every other check, so no other check's containers come and go between the two looks.
    let store = PathBuf::from(values.get("root").cloned().unwrap_or_default());
    let before = check.expect.no_leaks.then(|| Snapshot::take(&store));
    let outcome = engine(check, &argv, true, values, env)?;
    compare(check, &outcome, values)?;
    for command in &check.host_after {
        host(command, values, "after the run", env)?;
    }
    if let Some(before) = before {
        let left = leaks::left_behind(&before, &store, EXIT_GRACE);
        if !left.is_empty() {
            return Err(format!(
                "the last command added these to the host and nothing removed them (what \
                 existed before the check does not count):\n  {}",
                left.join("\n  ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stages: &str) -> Check {
        let text = format!(
            "stage = 2\nname = \"02-x\"\ntitle = \"x\"\n\n[[check]]\nname = \"c\"\n\
             teaches = \"Something.\"\n{stages}\nrun = \"{{bin}} run\"\n"
        );
        let lab = Lab::parse(std::path::Path::new("x.toml"), &text, &[]).unwrap();
        lab.checks[0].clone()
    }

    #[test]
    fn since_and_until_bound_the_stages_a_check_runs_at() {
        let check = check("since = 3\nuntil = 6");
        let at = |stage| check.applies(stage);
        assert_eq!(
            [at(2), at(3), at(6), at(7)],
            [
                Applies::NotYet,
                Applies::Normally,
                Applies::Normally,
                Applies::Superseded
            ]
        );
        assert!(at(2).skipped() && at(7).skipped() && !at(6).skipped());
    }

    #[test]
    fn a_closed_check_runs_and_is_not_skipped() {
        let check = check("closed_in = 2");
        assert_eq!(check.applies(1), Applies::Normally);
        assert_eq!(check.applies(2), Applies::Closed);
        assert!(!Applies::Closed.skipped());
    }
}
