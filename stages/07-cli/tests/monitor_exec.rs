//! The monitor for a multi-threaded caller: a program of its own (`skiff container-monitor`),
//! which prepares the container from its record. The `skiff` binary forks its monitors instead,
//! so the labs never take this path; a test harness has threads, so here it is taken.

use std::path::Path;
use std::process::Command;

use clap::Parser;
use skiff::monitor::Report;
use skiff::spec::RunArgs;

#[derive(Parser)]
struct Run {
    #[command(flatten)]
    run: RunArgs,
}

fn skiff(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(args)
        .env("SKIFF_ROOT", root)
        .output()
        .expect("run skiff")
}

#[test]
fn a_threaded_caller_gets_an_execd_monitor_that_runs_the_container() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let fixtures = labs::fixtures().expect("the lab fixtures");
    let tar = &fixtures.extra["image_tar"];
    let store = tempfile::Builder::new()
        .prefix("skiff-monitor-exec-")
        .tempdir()
        .expect("a store");
    let root = store.path();
    assert!(skiff(root, &["load", "-q", "-i", tar]).status.success());
    // SAFETY: set before this test starts any thread of its own; the other tests of this binary
    // do not read the environment.
    unsafe { std::env::set_var("SKIFF_ENGINE", env!("CARGO_BIN_EXE_skiff")) };
    let root_arg = root.to_str().expect("a UTF-8 path");
    let args = Run::try_parse_from([
        "run",
        "--root",
        root_arg,
        "--network",
        "none",
        "skiff-lab",
        "/bin/sh",
        "-c",
        "echo from-the-exec-path; exit 3",
    ])
    .expect("the flags parse")
    .run;
    let (record, _) = skiff::container::create_prepared(&args).expect("create");
    // A second thread makes this process one that must not fork a monitor.
    let helper = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(5)));
    match skiff::lifecycle::start(root, &record, None, None, None).expect("start") {
        Report::Started(pid) => assert!(pid > 0),
        Report::Failed(code, message) => panic!("start failed ({code}): {message}"),
    }
    assert_eq!(skiff::lifecycle::wait(root, &record.id).expect("wait"), 3);
    let logs = skiff(root, &["logs", &record.id]);
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        "from-the-exec-path\n"
    );
    let after = skiff::lifecycle::find(root, &record.id).expect("the record");
    assert_eq!(after.state.status.as_str(), "exited");
    skiff::lifecycle::remove(root, &after, false, true).expect("rm");
    assert!(!root.join("containers").join(&record.id).exists());
    drop(helper);
}
