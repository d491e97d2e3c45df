//! Property tests (proptest) for `-v`, `--mount` and `--tmpfs`: whatever the text, the parsers
//! answer without panicking, and what they accept holds what mounting relies on: a target that
//! is absolute, clean (no `.`, `..`, `//` or trailing `/`) and not `/`; a volume name that cannot
//! climb out of the volume store (Docker's alphabet, never `.` or `..`); a bind source that is
//! absolute; a tmpfs that is `nodev` and `nosuid` unless asked otherwise. [`volumes::spec::all`]
//! never returns two mounts on one target, and lists a mount after the one it lands in.
//! `PROPTEST_CASES=N` runs more cases than the default few hundred.

use std::path::{Component, Path};

use nix::mount::MsFlags;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use volumes::spec::{MountSpec, Source, all, clean_target, parse_mount, parse_tmpfs, parse_volume};

/// `cases` random inputs per property, unless `PROPTEST_CASES` asks for another number. A
/// failing case is saved beside this file (`props.proptest-regressions`) and replayed first.
fn config(cases: u32) -> ProptestConfig {
    let mut config = if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(cases)
    };
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    config
}

/// A path as someone might type it, or mistype it.
fn path_text() -> impl Strategy<Value = String> {
    let part = prop::sample::select(&[
        "srv", "data", "a", ".", "..", "", "...", ".wh.x", "x,y", "x=y", "x:y", "é", "\0", " ",
        "proc", "etc",
    ]);
    (
        prop::sample::select(&["/", "/", "//", "./", "../", "", "~/"]),
        prop::collection::vec(part, 0..5),
        prop::sample::select(&["", "", "/", "/.", "/.."]),
    )
        .prop_map(|(lead, parts, trail)| format!("{lead}{}{trail}", parts.join("/")))
}

/// A volume name, good or bad.
fn name_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,12}",
        prop::sample::select(&[".", "..", "-x", "_x", "a/b", "a@b", "x", "..x", "a..", ""])
            .prop_map(str::to_string),
        any::<String>(),
    ]
}

/// `-v` text: `TARGET`, `SOURCE:TARGET` or `SOURCE:TARGET:OPTIONS`, and worse.
fn volume_text() -> impl Strategy<Value = String> {
    let option = prop::sample::select(&[
        "ro", "rw", "nocopy", "z", "Z", "rprivate", "shared", "cached", "bogus", "", "ro,ro",
    ]);
    (
        prop::option::of(prop_oneof![name_text(), path_text()]),
        path_text(),
        prop::collection::vec(option, 0..3),
        any::<bool>(),
    )
        .prop_map(|(source, target, options, extra_colon)| {
            let mut text = source.map(|s| format!("{s}:")).unwrap_or_default();
            text.push_str(&target);
            if !options.is_empty() {
                text.push(':');
                text.push_str(&options.join(","));
            }
            if extra_colon {
                text.push(':');
            }
            text
        })
}

/// `--mount` text: comma-separated fields, good and bad.
fn mount_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        prop::sample::select(&[
            "type=volume",
            "type=bind",
            "type=tmpfs",
            "type=nfs",
            "readonly",
            "ro=false",
            "ro=maybe",
            "volume-nocopy",
            "tmpfs-size=64m",
            "tmpfs-size=lots",
            "tmpfs-mode=1777",
            "tmpfs-mode=9",
            "bind-propagation=rslave",
            "consistency=cached",
            "volume-driver=local",
            "volume-driver=nfs",
            "colour=blue",
            "",
            "src=",
            "src=/",
            "src=/tmp",
            "src=.",
            "dst=",
        ])
        .prop_map(str::to_string),
        path_text().prop_map(|p| format!("dst={p}")),
        path_text().prop_map(|p| format!("target={p}")),
        name_text().prop_map(|n| format!("source={n}")),
    ];
    prop::collection::vec(field, 0..6).prop_map(|fields| fields.join(","))
}

/// `--tmpfs` text: `TARGET[:OPTIONS]`.
fn tmpfs_text() -> impl Strategy<Value = String> {
    let option = prop::sample::select(&[
        "size=64m",
        "size=50%",
        "size=%",
        "size=é%",
        "size=huge",
        "mode=1777",
        "mode=8",
        "uid=0",
        "gid=x",
        "nr_inodes=10",
        "ro",
        "rw",
        "exec",
        "noexec",
        "suid",
        "dev",
        "nodev",
        "noatime",
        "colour=blue",
        "",
        "size=",
        "=",
    ]);
    (path_text(), prop::collection::vec(option, 0..4)).prop_map(|(target, options)| {
        if options.is_empty() {
            target
        } else {
            format!("{target}:{}", options.join(","))
        }
    })
}

/// What every accepted mount must hold.
fn well_formed(spec: &MountSpec, text: &str) -> Result<(), TestCaseError> {
    let target = &spec.target;
    prop_assert!(
        target.starts_with('/'),
        "{:?}: target {:?} is not absolute",
        text,
        target
    );
    prop_assert_ne!(target.as_str(), "/", "{:?}: a mount on /", text);
    prop_assert!(!target.ends_with('/'), "{:?}: target {:?}", text, target);
    prop_assert!(!target.contains("//"), "{:?}: target {:?}", text, target);
    for component in Path::new(target).components() {
        prop_assert!(
            matches!(component, Component::RootDir | Component::Normal(_)),
            "{:?}: target {:?} has {:?}",
            text,
            target,
            component
        );
    }
    let cleaned = clean_target(spec.kind(), target, text).map_err(|e| e.to_string());
    prop_assert_eq!(
        cleaned.as_deref(),
        Ok(target.as_str()),
        "cleaning is idempotent"
    );
    match &spec.source {
        Source::Volume(Some(name)) => {
            prop_assert!(name.len() >= 2, "{:?}: volume name {:?}", text, name);
            prop_assert!(!name.contains('/'), "{:?}: volume name {:?}", text, name);
            prop_assert!(!name.starts_with('.'), "{:?}: volume name {:?}", text, name);
            prop_assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                "{:?}: volume name {:?}",
                text,
                name
            );
        }
        Source::Volume(None) => {}
        Source::Bind(path) => {
            prop_assert!(path.is_absolute(), "{:?}: bind source {:?}", text, path);
        }
        Source::Tmpfs(options) => {
            prop_assert!(
                !options.contains('\0'),
                "{:?}: tmpfs options {:?}",
                text,
                options
            );
        }
    }
    if spec.nocopy {
        prop_assert!(
            matches!(spec.source, Source::Volume(_)),
            "{:?}: nocopy on a non-volume",
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn volume_specs_never_panic(text in prop_oneof![any::<String>(), volume_text()]) {
        if let Ok(spec) = parse_volume(&text) {
            well_formed(&spec, &text)?;
        }
    }

    #[test]
    fn mount_specs_never_panic(text in prop_oneof![any::<String>(), mount_text()]) {
        if let Ok(spec) = parse_mount(&text) {
            well_formed(&spec, &text)?;
        }
    }

    #[test]
    fn tmpfs_specs_never_panic(text in prop_oneof![any::<String>(), tmpfs_text()]) {
        if let Ok(spec) = parse_tmpfs(&text) {
            well_formed(&spec, &text)?;
            let asked = |word: &str| text.split([':', ',']).any(|o| o == word);
            // Docker's defaults hold unless the very option that lifts them was given.
            if !asked("dev") {
                prop_assert!(spec.flags.contains(MsFlags::MS_NODEV), "{:?}", text);
            }
            if !asked("suid") {
                prop_assert!(spec.flags.contains(MsFlags::MS_NOSUID), "{:?}", text);
            }
        }
    }

    #[test]
    fn all_mounts_have_distinct_targets_and_parents_first(
        volumes in prop::collection::vec(volume_text(), 0..4),
        mounts in prop::collection::vec(mount_text(), 0..3),
        tmpfs in prop::collection::vec(tmpfs_text(), 0..3),
    ) {
        let Ok(specs) = all(&volumes, &mounts, &tmpfs) else {
            return Ok(());
        };
        let mut targets: Vec<&str> = specs.iter().map(|s| s.target.as_str()).collect();
        for (i, spec) in specs.iter().enumerate() {
            well_formed(spec, &spec.target)?;
            // A mount inside another comes after it.
            for later in &specs[i + 1..] {
                let inside = spec.target.starts_with(&format!("{}/", later.target));
                prop_assert!(!inside, "{:?} comes before {:?}", spec.target, later.target);
            }
        }
        targets.sort_unstable();
        let count = targets.len();
        targets.dedup();
        prop_assert_eq!(targets.len(), count, "two mounts on one target");
    }
}
