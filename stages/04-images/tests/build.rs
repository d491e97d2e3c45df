//! `images build` end to end, against the real binary: the busybox image from the repo's
//! Dockerfile, a build that uses every instruction, the cache, and the failures that must leave
//! nothing behind. RUN steps are containers, so these tests need root; without it they say so
//! and pass. Each test has its own store (`--root`) in a temp dir named `skiff-build-test-*`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_images");

/// A store of its own, and a build context to fill.
struct Env {
    dir: tempfile::TempDir,
}

/// What a command did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Ran {
    #[track_caller]
    fn ok(self) -> Ran {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Env {
    /// `None` (the test is skipped) unless running as root.
    fn new() -> Option<Env> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: build runs containers, which needs root");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("skiff-build-test-")
            .tempdir()
            .expect("create a temp dir");
        std::fs::create_dir(dir.path().join("context")).expect("create the context");
        Some(Env { dir })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn context(&self) -> PathBuf {
        self.dir.path().join("context")
    }

    /// Writes a file of the build context.
    fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let path = self.context().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        std::fs::write(path, contents).expect("write a context file");
    }

    /// `images SUBCOMMAND --root ROOT ARGS...`
    fn images(&self, subcommand: &str, args: &[&str]) -> Ran {
        Command::new(BIN)
            .arg(subcommand)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .expect("run the images binary")
            .into()
    }

    /// `images build --root ROOT ARGS... CONTEXT`
    fn build(&self, args: &[&str]) -> Ran {
        let mut all: Vec<&str> = args.to_vec();
        let context = self.context();
        all.push(context.to_str().expect("a UTF-8 path"));
        self.images("build", &all)
    }

    /// The busybox image, built by the repo's script from `images/busybox/Dockerfile`.
    fn busybox(&self) -> Ran {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-image");
        Command::new(script)
            .arg("--root")
            .arg(self.root())
            .arg("--bin")
            .arg(BIN)
            .output()
            .expect("run scripts/busybox-image")
            .into()
    }

    /// The image ids in the store.
    fn image_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root().join("images"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.ends_with(".json") && name != "repositories.json")
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Nothing of this store is left behind: no container directory, temp file or mount, and
    /// no cgroup of any container the output names.
    #[track_caller]
    fn assert_clean(&self, output: &str) {
        for dir in ["containers", "tmp"] {
            let left: Vec<_> = std::fs::read_dir(self.root().join(dir))
                .map(|e| e.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "left in {dir}: {left:?}");
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read mounts");
        let root = self.root().display().to_string();
        let ours: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
        assert!(ours.is_empty(), "still mounted: {ours:?}");
        let containers: Vec<&str> = output
            .lines()
            .filter_map(|l| l.strip_prefix(" ---> Running in "))
            .collect();
        let cgroups = Command::new("find")
            .args(["/sys/fs/cgroup", "-name", "*skiff*"])
            .output()
            .expect("run find");
        let cgroups = String::from_utf8_lossy(&cgroups.stdout);
        for id in containers {
            assert!(
                !cgroups.contains(id),
                "cgroup of container {id} left: {cgroups}"
            );
        }
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_busybox_image_builds_from_the_repo_dockerfile_and_runs_a_shell() {
    let Some(env) = Env::new() else { return };
    let built = env.busybox().ok();
    assert!(
        built
            .stdout
            .starts_with("Step 1/6 : FROM scratch\nStep 2/6 : COPY busybox /bin/busybox\n"),
        "{}",
        built.stdout
    );
    assert!(
        built
            .stdout
            .ends_with("Successfully tagged busybox:latest\n"),
        "{}",
        built.stdout
    );
    let ran = env.images("run", &["busybox", "sh", "-c", "echo hi"]).ok();
    assert_eq!(ran.stdout, "hi\n");
    // The tools are links to the one program; the passwd file names root.
    let ran = env
        .images(
            "run",
            &[
                "busybox",
                "sh",
                "-c",
                "readlink /bin/ls; id -un; test -d /tmp && echo tmp",
            ],
        )
        .ok();
    assert_eq!(ran.stdout, "/bin/busybox\nroot\ntmp\n");
    // Its default command is the shell.
    let inspect = env.images("inspect", &["busybox"]).ok();
    let json: serde_json::Value =
        serde_json::from_str(&inspect.stdout).expect("inspect prints JSON");
    assert_eq!(json[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    env.assert_clean(&built.stdout);
}

/// A tar archive holding `site/index.html`, for ADD.
fn site_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let body = b"<h1>skiff</h1>\n";
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_uid(0);
    header.set_gid(0);
    builder
        .append_data(&mut header, "site/index.html", &body[..])
        .expect("append to a Vec");
    builder.into_inner().expect("finish a Vec")
}

const EVERYTHING: &str = r#"# Every instruction a single-stage build knows.
FROM busybox
ARG VERSION=1.0
ENV APP_HOME=/srv/app \
    GREETING="hello there"
RUN echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd \
 && echo "app:x:1000:" >> /etc/group
WORKDIR $APP_HOME
COPY --chown=app:app conf/*.conf ./conf/
ADD site.tar /srv/www/
RUN echo "version $VERSION" > version.txt
COPY . /ctx/
USER app
EXPOSE 8080 53/udp
LABEL org.opencontainers.image.version=$VERSION maintainer="skiff"
VOLUME /data
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat version.txt; id -u; pwd"]
"#;

#[test]
fn a_build_with_every_instruction() {
    let Some(env) = Env::new() else { return };
    env.busybox().ok();
    env.write("Dockerfile", EVERYTHING);
    env.write("conf/a.conf", "a\n");
    env.write("conf/b.conf", "b\n");
    env.write("conf/skip.txt", "not a .conf\n");
    env.write("site.tar", site_tar());
    env.write("secret.key", "hunter2\n");
    env.write("notes.md", "notes\n");
    env.write(".dockerignore", "secret.key\n*.md\n");

    let built = env
        .build(&[
            "-t",
            "app:1",
            "--build-arg",
            "VERSION=2.5",
            "--build-arg",
            "UNUSED=x",
        ])
        .ok();
    let out = &built.stdout;
    assert_eq!(count(out, "Step "), 16, "{out}");
    assert!(out.contains("Step 4/16 : RUN echo"), "{out}");
    assert_eq!(
        count(out, " ---> Running in "),
        2,
        "a container per RUN only: {out}"
    );
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    assert!(out.ends_with("Successfully tagged app:1\n"), "{out}");

    // The default command, as the user and in the directory the Dockerfile set.
    let ran = env.images("run", &["app:1"]).ok();
    assert_eq!(ran.stdout, "version 2.5\n1000\n/srv/app\n");
    // Files: COPY with a glob and --chown, ADD unpacked, the context minus .dockerignore.
    let script = "stat -c '%n %u:%g %a' conf/a.conf conf/b.conf /srv/www/site/index.html; \
                  ls conf; ls -A /ctx; echo $GREETING";
    let ran = env
        .images("run", &["--entrypoint", "", "app:1", "sh", "-c", script])
        .ok();
    assert_eq!(
        ran.stdout,
        "conf/a.conf 1000:1000 644\nconf/b.conf 1000:1000 644\n/srv/www/site/index.html 0:0 644\n\
         a.conf\nb.conf\n.dockerignore\nDockerfile\nconf\nsite.tar\nhello there\n"
    );

    let inspect = env.images("inspect", &["app:1"]).ok();
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).expect("JSON");
    let config = &json[0]["Config"];
    assert_eq!(config["User"], "app");
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["cat version.txt; id -u; pwd"])
    );
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["StopSignal"], "SIGQUIT");
    assert_eq!(config["Labels"]["org.opencontainers.image.version"], "2.5");
    assert_eq!(config["Labels"]["maintainer"], "skiff");
    let env_list = config["Env"].as_array().expect("Env is a list");
    assert!(env_list.contains(&"APP_HOME=/srv/app".into()));
    assert!(env_list.contains(&"GREETING=hello there".into()));
    assert!(
        !env_list
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("VERSION=")))
    );

    // One history row per instruction: busybox's five, then these fifteen, newest first.
    let history = env.images("history", &["--no-trunc", "app:1"]).ok();
    let rows: Vec<&str> = history.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 5 + 15, "{}", history.stdout);
    let expected = [
        "#(nop)  CMD [\"cat version.txt; id -u; pwd\"]",
        "#(nop)  ENTRYPOINT [\"/bin/sh\" \"-c\"]",
        "#(nop)  STOPSIGNAL SIGQUIT",
        "#(nop)  VOLUME [/data]",
        "#(nop)  LABEL org.opencontainers.image.version=2.5 maintainer=skiff",
        "#(nop)  EXPOSE 8080 53/udp",
        "#(nop)  USER app",
        "#(nop) COPY dir:",
        "|1 VERSION=2.5 /bin/sh -c echo \"version $VERSION\" > version.txt",
        "#(nop) ADD file:",
        "#(nop) COPY multi:",
        "#(nop)  WORKDIR /srv/app",
        "|1 VERSION=2.5 /bin/sh -c echo \"app:x:1000:1000",
        "#(nop)  ENV APP_HOME=/srv/app GREETING=hello there",
        "#(nop)  ARG VERSION=1.0",
        "#(nop)  CMD [\"sh\"]",
    ];
    for (row, text) in rows.iter().zip(expected) {
        assert!(row.contains(text), "{row:?} should show {text:?}");
    }
    env.assert_clean(&built.stdout);
}

const CACHED: &str = "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCMD [\"cat\", \"/copy\"]\n";

#[test]
fn an_unchanged_rebuild_is_all_cache_and_a_change_invalidates_from_its_step() {
    let Some(env) = Env::new() else { return };
    env.busybox().ok();
    env.write("Dockerfile", CACHED);
    env.write("a.txt", "first\n");
    let first = env.build(&["-t", "cached"]).ok();
    assert_eq!(count(&first.stdout, "Using cache"), 0, "{}", first.stdout);
    let id = env.build(&["-q", "-t", "cached"]).ok().stdout;
    assert!(id.starts_with("sha256:") && id.len() == 72, "{id}");

    let again = env.build(&["-t", "cached"]).ok();
    assert_eq!(
        count(&again.stdout, " ---> Using cache"),
        4,
        "{}",
        again.stdout
    );
    assert_eq!(count(&again.stdout, "Running in"), 0);
    assert_eq!(
        env.build(&["-q", "-t", "cached"]).ok().stdout,
        id,
        "the same image"
    );
    // Touching a file changes nothing; changing its bytes does.
    env.write("a.txt", "first\n");
    assert_eq!(env.build(&["-q", "-t", "cached"]).ok().stdout, id);
    env.write("a.txt", "second\n");
    let changed = env.build(&["-t", "cached"]).ok();
    let steps: Vec<&str> = changed.stdout.split("Step ").skip(1).collect();
    assert!(
        steps[1].contains("Using cache"),
        "RUN before the COPY: {}",
        steps[1]
    );
    for step in &steps[2..] {
        assert!(!step.contains("Using cache"), "after the change: {step}");
    }
    assert_eq!(env.images("run", &["cached"]).ok().stdout, "second\n");
    let changed_id = env.build(&["-q", "-t", "cached"]).ok().stdout;
    assert_ne!(changed_id, id);

    let fresh = env.build(&["--no-cache", "-t", "cached"]).ok();
    assert_eq!(count(&fresh.stdout, "Using cache"), 0, "{}", fresh.stdout);
    assert_eq!(count(&fresh.stdout, "Running in"), 2);
    let fresh_id = env.build(&["-q", "-t", "cached"]).ok().stdout;
    assert_ne!(fresh_id, changed_id, "a new image");
    env.assert_clean(&format!(
        "{}{}{}",
        first.stdout, changed.stdout, fresh.stdout
    ));
}

#[test]
fn a_typo_fails_the_build_before_anything_runs() {
    let Some(env) = Env::new() else { return };
    env.busybox().ok();
    let before = env.image_ids();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN touch /ran\n\n# a comment\nRUNN make\n",
    );
    let ran = env.build(&["-t", "typo"]);
    assert_eq!(ran.code, 125, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("Dockerfile:5: unknown instruction \"RUNN\" (did you mean RUN?)"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "", "no step ran");
    assert_eq!(env.image_ids(), before, "no new image");
    env.assert_clean("");
}

#[test]
fn a_failing_run_fails_the_build_and_leaves_nothing_behind() {
    let Some(env) = Env::new() else { return };
    env.busybox().ok();
    let before = env.image_ids();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo partial > /file && exit 3\nCMD [\"sh\"]\n",
    );
    let ran = env.build(&["-t", "broken"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(
            "The command '/bin/sh -c echo partial > /file && exit 3' returned a non-zero code: 3"
        ),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.contains(" ---> Running in "), "{}", ran.stdout);
    assert!(!ran.stdout.contains("Successfully"), "{}", ran.stdout);
    assert_eq!(env.image_ids(), before, "the failed step made no image");
    env.assert_clean(&ran.stdout);
}

#[test]
fn a_missing_copy_source_fails_before_any_run() {
    let Some(env) = Env::new() else { return };
    env.busybox().ok();
    let before = env.image_ids();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN touch /ran\nCOPY missing.txt /srv/\n",
    );
    let ran = env.build(&["-t", "missing"]);
    assert_eq!(ran.code, 125, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("Dockerfile:3: COPY failed: file not found in build context: missing.txt"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "", "the RUN before it did not run");
    // A file .dockerignore excludes is missing too, and the message says why.
    env.write("missing.txt", "here, but ignored\n");
    env.write(".dockerignore", "missing.txt\n");
    let ran = env.build(&["-t", "missing"]);
    assert_eq!(ran.code, 125);
    assert!(
        ran.stderr.contains("(it is excluded by .dockerignore)"),
        "{}",
        ran.stderr
    );
    assert_eq!(env.image_ids(), before);
    env.assert_clean("");
}

#[test]
fn from_an_image_the_store_does_not_have() {
    let Some(env) = Env::new() else { return };
    env.write("Dockerfile", "# base\nFROM alpine:3.20\nRUN true\n");
    let ran = env.build(&["-t", "x"]);
    assert_eq!(ran.code, 125);
    assert!(
        ran.stderr.contains(
            "Dockerfile:2: FROM alpine:3.20: no such image in the store: load, import or build it first"
        ),
        "{}",
        ran.stderr
    );
    assert!(env.image_ids().is_empty());
}
