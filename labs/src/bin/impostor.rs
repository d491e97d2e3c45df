//! `impostor`: a fake engine that proves the labs' isolation checks can fail.
//!
//! It takes the flags of every stage's `run` and does everything an engine does except isolate:
//! it resolves the command inside `--rootfs`, applies `-e` and `-w`, passes stdio, signals and
//! the exit status through, and closes stray descriptors, but it runs the command on the host,
//! in the host's root, namespaces and cgroups. The harness's own tests run every lab against it:
//! a check marked `isolation` that passes here would pass against an engine that isolates
//! nothing, so it would teach nothing.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Flags of any stage that take a value (the impostor ignores most of them).
const VALUE_FLAGS: &[&str] = &[
    "--rootfs",
    "--ip",
    "--ip6",
    "--cidfile",
    "-c",
    "--cgroup-parent",
    "-w",
    "--workdir",
    "-e",
    "--env",
    "--hostname",
    "-h",
    "-u",
    "--user",
    "--root",
    "--pid",
    "--uts",
    "--ipc",
    "--net",
    "--network",
    "--cgroupns",
    "--userns",
    "--cap-add",
    "--cap-drop",
    "--device",
    "--add-host",
    "--dns",
    "--dns-search",
    "--dns-option",
    "--network-alias",
    "--cluster-store",
    "--advertise-addr",
    "--ns",
    "-m",
    "--memory",
    "--memory-swap",
    "--cpus",
    "--cpu-shares",
    "--cpuset-cpus",
    "--pids-limit",
    "--blkio-weight",
    "--entrypoint",
    "--name",
    "-p",
    "--publish",
    "-v",
    "--volume",
    "--mount",
    "--tmpfs",
    "--commit",
    "--pull",
    "--platform",
    "--restart",
    "--stop-signal",
    "--stop-timeout",
    "-a",
    "--attach",
    "-l",
    "--label",
    "--env-file",
    "--log-opt",
    "--sig-proxy",
    "--detach-keys",
    "--security-opt",
    "--device-cgroup-rule",
];

/// Flags of any stage that take no value.
const BOOL_FLAGS: &[&str] = &[
    "--init",
    "--rm",
    "-d",
    "--detach",
    "-i",
    "--interactive",
    "-t",
    "--tty",
    "-it",
    "--privileged",
    "--read-only",
    "--stats",
    "--no-healthcheck",
];

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("impostor: {message}");
    ExitCode::from(code)
}

struct Parsed {
    detach: bool,
    mounts: Vec<(String, String)>,
    network: Option<String>,
    /// `--cluster-store`: where an overlay network's record is, for the delegate's inspect.
    cluster_store: Option<String>,
    publish: Vec<String>,
    marker: Option<PathBuf>,
    root: Option<String>,
    entrypoint: Option<String>,
    cidfile: Option<PathBuf>,
    limits: Vec<(String, String)>,
    hostname: Option<String>,
    namespaces: Option<String>,
    user: Option<String>,
    security_opts: Vec<String>,
    ip: Option<String>,
    ip6: Option<String>,
    rootfs: Option<PathBuf>,
    workdir: String,
    env: Vec<(String, String)>,
    command: Vec<String>,
}

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut parsed = Parsed {
        detach: false,
        mounts: Vec::new(),
        network: None,
        cluster_store: std::env::var("SKIFF_CLUSTER_STORE").ok(),
        publish: Vec::new(),
        marker: None,
        root: std::env::var("SKIFF_ROOT").ok(),
        entrypoint: None,
        cidfile: None,
        limits: Vec::new(),
        hostname: None,
        namespaces: None,
        user: None,
        security_opts: Vec::new(),
        ip: None,
        ip6: None,
        rootfs: None,
        workdir: "/".into(),
        env: vec![("PATH".into(), DEFAULT_PATH.into())],
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            parsed.command = args[i + 1..].to_vec();
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            parsed.command = args[i..].to_vec();
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !VALUE_FLAGS.contains(&flag) && !BOOL_FLAGS.contains(&flag) {
            return Err(format!("unknown flag {flag}"));
        }
        let value = if VALUE_FLAGS.contains(&flag) {
            match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    Some(
                        args.get(i)
                            .cloned()
                            .ok_or(format!("{flag} needs a value"))?,
                    )
                }
            }
        } else {
            None
        };
        match (flag, value) {
            ("-d" | "--detach", None) => parsed.detach = true,
            ("--rootfs", Some(v)) => parsed.rootfs = Some(PathBuf::from(v)),
            ("--hostname", Some(v)) => parsed.hostname = Some(v),
            ("--cidfile", Some(v)) => parsed.cidfile = Some(PathBuf::from(v)),
            ("--root", Some(v)) => parsed.root = Some(v),
            ("--network" | "--net", Some(v)) => parsed.network = Some(v),
            ("--cluster-store", Some(v)) => parsed.cluster_store = Some(v),
            ("-p" | "--publish", Some(v)) => parsed.publish.push(v),
            ("-v" | "--volume" | "--mount" | "--tmpfs", Some(v)) => {
                let name = if flag == "-v" { "--volume" } else { flag };
                parsed.mounts.push((name.to_string(), v));
            }
            ("--entrypoint", Some(v)) => parsed.entrypoint = Some(v),
            ("-m" | "--memory" | "--cpus" | "--cpuset-cpus", Some(v)) => {
                let name = if flag == "-m" { "--memory" } else { flag };
                parsed.limits.push((name.to_string(), v));
            }
            ("--ns", Some(v)) => parsed.namespaces = Some(v),
            ("-u" | "--user", Some(v)) => parsed.user = Some(v),
            ("--security-opt", Some(v)) => parsed.security_opts.push(v),
            ("--ip", Some(v)) => parsed.ip = Some(v),
            ("--ip6", Some(v)) => parsed.ip6 = Some(v),
            // Checked as the engine checks it, never applied: the host's /etc/hosts is not ours.
            ("--add-host", Some(v)) => {
                let address = v.split_once([':', '=']).map(|(_, a)| a).unwrap_or_default();
                if address
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_err()
                {
                    return Err(format!("invalid argument {v:?} for \"--add-host\" flag"));
                }
            }
            // Checked as Docker checks it, never applied: the host has no cgroup of ours.
            ("--device-cgroup-rule", Some(v)) => {
                let words: Vec<&str> = v.split(' ').collect();
                let number =
                    |n: &str| n == "*" || n.parse::<u32>().is_ok_and(|_| !n.starts_with('+'));
                let ok = match words.as_slice() {
                    [kind, numbers, access] => {
                        matches!(*kind, "a" | "b" | "c")
                            && numbers
                                .split_once(':')
                                .is_some_and(|(major, minor)| number(major) && number(minor))
                            && (1..=3).contains(&access.len())
                            && access.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "invalid argument {v:?} for \"--device-cgroup-rule\" flag: invalid device cgroup format '{v}'"
                    ));
                }
            }
            ("-w" | "--workdir", Some(v)) => parsed.workdir = v,
            ("-e" | "--env", Some(v)) => {
                let (key, value) = match v.split_once('=') {
                    Some((k, val)) => (k.to_string(), Some(val.to_string())),
                    None => (v.clone(), std::env::var(&v).ok()),
                };
                if key.is_empty() {
                    return Err(format!("invalid environment variable {v:?}"));
                }
                if let Some(value) = value {
                    parsed.env.retain(|(k, _)| *k != key);
                    parsed.env.push((key, value));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(parsed)
}

fn validate(parsed: &Parsed, rootfs: &Path) -> Result<(), String> {
    if parsed.ip.is_some() && matches!(parsed.network.as_deref(), None | Some("bridge")) {
        return Err("user specified IP address is supported on user defined networks only".into());
    }
    if let Some(name) = &parsed.hostname {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!("invalid hostname {name:?}"));
        }
    }
    if let Some(list) = &parsed.namespaces {
        const KNOWN: &[&str] = &["pid", "uts", "ipc", "mnt", "mount", "net", "cgroup", "user"];
        if let Some(bad) = list.split(',').find(|n| !KNOWN.contains(n)) {
            return Err(format!("unknown namespace {bad:?}"));
        }
    }
    if let Some(user) = &parsed.user {
        let name = user.split(':').next().unwrap_or_default();
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
        let known = name.parse::<u32>().is_ok()
            || passwd.lines().any(|l| l.split(':').next() == Some(name));
        if !known {
            return Err(format!("unable to find user {name}"));
        }
    }
    for opt in &parsed.security_opts {
        // Checked, never applied: a seccomp profile must be readable and name known actions.
        let Some(path) = opt.strip_prefix("seccomp=").filter(|p| *p != "unconfined") else {
            continue;
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read seccomp profile {path}: {e}"))?;
        const ACTIONS: &[&str] = &[
            "ALLOW",
            "ERRNO",
            "KILL",
            "KILL_THREAD",
            "KILL_PROCESS",
            "TRAP",
            "LOG",
            "TRACE",
        ];
        for word in text.split("SCMP_ACT_").skip(1) {
            let action = word.split('"').next().unwrap_or_default();
            if !ACTIONS.contains(&action) {
                return Err(format!(
                    "seccomp profile {path}: unknown action \"SCMP_ACT_{action}\""
                ));
            }
        }
    }
    for (flag, value) in &parsed.limits {
        let bad = |why: &str| Err(format!("{flag} {value:?}: {why}"));
        match flag.as_str() {
            "--memory" => {
                let lower = value.to_ascii_lowercase();
                let (digits, shift) = match lower.strip_suffix(['b', 'k', 'm', 'g']) {
                    Some(d) if lower.ends_with('k') => (d, 10),
                    Some(d) if lower.ends_with('m') => (d, 20),
                    Some(d) if lower.ends_with('g') => (d, 30),
                    Some(d) => (d, 0),
                    None => (lower.as_str(), 0),
                };
                match digits.parse::<u64>() {
                    Ok(n) if (n << shift) < 6 << 20 => return bad("below the minimum of 6 MiB"),
                    Ok(_) => {}
                    Err(_) => return bad("not a size"),
                }
            }
            "--cpus" => match value.parse::<f64>() {
                Ok(n) if n >= 0.01 => {}
                _ => return bad("must be a number of CPUs, at least 0.01"),
            },
            _ => {
                let online =
                    std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
                let max: u32 = online
                    .trim()
                    .rsplit(['-', ','])
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let too_high = value
                    .split([',', '-'])
                    .any(|n| n.parse::<u32>().map_or(true, |n| n > max));
                if too_high {
                    return bad(&format!("this host has CPUs {}", online.trim()));
                }
            }
        }
    }
    Ok(())
}

/// `-p` must be [IP:]HOST:CONTAINER[/udp] with ports that exist; `--network` must name a
/// network the real engine knows (the impostor attaches to none of them).
/// Docker's refusal of `--ip`/`--ip6` on a network without a subnet of that family.
const IP_WITHOUT_SUBNET: &str = "user specified IP address is supported only when connecting to networks with user configured subnets";

fn validate_network(parsed: &Parsed, delegate: Option<&Path>) -> Result<(), String> {
    for publish in &parsed.publish {
        let spec = publish.split('/').next().unwrap_or_default();
        let ports: Vec<&str> = spec.rsplitn(3, ':').collect();
        let valid = ports.len() >= 2
            && ports[..2]
                .iter()
                .all(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return Err(format!("invalid -p {publish:?}"));
        }
        if publish.starts_with("[::1]:") {
            return Err(format!(
                "invalid -p {publish:?}: cannot publish on [::1]: a NAT rule cannot answer there, and there is no userland proxy"
            ));
        }
    }
    if let (Some(network), Some(engine)) = (&parsed.network, delegate)
        && !["bridge", "host", "none"].contains(&network.as_str())
    {
        let root: Vec<String> = parsed
            .root
            .iter()
            .flat_map(|r| ["--root".to_string(), r.clone()])
            .collect();
        let store: Vec<String> = parsed
            .cluster_store
            .iter()
            .flat_map(|s| ["--cluster-store".to_string(), s.clone()])
            .collect();
        let inspect = Command::new(engine)
            .args(["network", "inspect"])
            .args(&root)
            .args(&store)
            .arg(network)
            .stderr(std::process::Stdio::null())
            .output();
        let Some(json) = inspect
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        else {
            return Err(format!("network {network} not found"));
        };
        if parsed.ip6.is_some() && !json.contains("\"EnableIPv6\": true") {
            return Err(IP_WITHOUT_SUBNET.into());
        }
    } else if parsed.ip6.is_some() {
        return Err(IP_WITHOUT_SUBNET.into());
    }
    Ok(())
}

/// `-v`, `--mount` and `--tmpfs` must be well-formed, name valid volumes and existing bind
/// sources, and not share a target; the impostor mounts none of them.
fn validate_mounts(parsed: &Parsed) -> Result<(), String> {
    let mut targets = Vec::new();
    for (flag, value) in &parsed.mounts {
        let (source, target) = match flag.as_str() {
            "--volume" => {
                let parts: Vec<&str> = value.split(':').collect();
                match parts.as_slice() {
                    [target] => (None, target.to_string()),
                    [source, target] | [source, target, _] => {
                        (Some(source.to_string()), target.to_string())
                    }
                    _ => return Err(format!("invalid volume specification: '{value}'")),
                }
            }
            "--tmpfs" => (
                None,
                value.split(':').next().unwrap_or_default().to_string(),
            ),
            _ => {
                let field = |keys: &[&str]| {
                    value.split(',').find_map(|f| {
                        let (k, v) = f.split_once('=')?;
                        keys.contains(&k).then(|| v.to_string())
                    })
                };
                let source = field(&["source", "src"]);
                if field(&["type"]).as_deref() == Some("bind") {
                    let exists = source
                        .as_deref()
                        .is_some_and(|s| std::fs::symlink_metadata(s).is_ok());
                    if !exists {
                        return Err(format!(
                            "bind source path does not exist: {}",
                            source.unwrap_or_default()
                        ));
                    }
                }
                let target = field(&["target", "destination", "dst"]).unwrap_or_default();
                (source, target)
            }
        };
        if let Some(name) = source.filter(|s| !s.starts_with('/') && !s.starts_with('.')) {
            let valid = name.len() >= 2
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(format!(
                    "\"{name}\" includes invalid characters for a local volume name"
                ));
            }
        }
        if !target.starts_with('/') {
            return Err(format!("'{target}' mount path must be absolute"));
        }
        let target = target.trim_end_matches('/').to_string();
        if targets.contains(&target) {
            return Err(format!("Duplicate mount point: {target}"));
        }
        targets.push(target);
    }
    Ok(())
}

/// Finds the command inside the rootfs, the way PATH lookup would inside a container.
fn resolve(rootfs: &Path, command: &str, path: &str) -> Result<PathBuf, u8> {
    let inside = |p: &str| rootfs.join(p.trim_start_matches('/'));
    let candidates: Vec<PathBuf> = if command.contains('/') {
        vec![inside(command)]
    } else {
        path.split(':')
            .map(|dir| inside(dir).join(command))
            .collect()
    };
    let mut denied = false;
    for candidate in candidates {
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        denied = true;
    }
    Err(if denied { 126 } else { 127 })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let delegate = std::env::var_os("IMPOSTOR_DELEGATE").map(PathBuf::from);
    if args.first().map(String::as_str) != Some("run") {
        // Image management (load, save, images, rmi...) isolates nothing: from stage 04 on, the
        // impostor hands it to the real engine and impersonates only `run`.
        return match delegate {
            Some(engine) => {
                let error = Command::new(engine).args(&args).exec();
                fail(&format!("exec the delegate: {error}"), 125)
            }
            None => fail("usage: impostor run [FLAGS] [--] COMMAND [ARG...]", 125),
        };
    }
    let mut parsed = match parse(&args[1..]) {
        Ok(p) => p,
        Err(e) => return fail(&e, 125),
    };
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return fail("must run as root", 125);
    }
    if let Err(message) =
        validate_network(&parsed, delegate.as_deref()).and_then(|()| validate_mounts(&parsed))
    {
        return fail(&message, 125);
    }
    // `run IMAGE ...`: the image's layers flattened into a plain directory, which stands in for
    // the rootfs. It is deleted again when the command has run.
    let mut flattened = None;
    if parsed.rootfs.is_none()
        && let Some(engine) = &delegate
    {
        match image_rootfs(engine, &mut parsed) {
            Ok(dir) => {
                parsed.rootfs = Some(dir.path().join("rootfs"));
                flattened = Some(dir);
            }
            Err(message) => return fail(&message, 125),
        }
    }
    let Some(rootfs) = parsed.rootfs.clone() else {
        return fail("--rootfs is required", 125);
    };
    let code = run_parsed(&parsed, &rootfs);
    drop(flattened);
    if let Some(marker) = &parsed.marker {
        let _ = std::fs::remove_dir_all(marker);
    }
    code
}

fn run_parsed(parsed: &Parsed, rootfs: &Path) -> ExitCode {
    let rootfs = rootfs.to_path_buf();
    if !rootfs.is_dir() {
        return fail(
            &format!("rootfs {}: no such directory", rootfs.display()),
            125,
        );
    }
    // An honest engine validates its flags; the impostor does too, it just does not isolate.
    if let Err(message) = validate(parsed, &rootfs) {
        return fail(&message, 125);
    }
    if let Some(path) = &parsed.cidfile {
        let id: String = (0..64)
            .map(|i| char::from(b"0123456789abcdef"[(std::process::id() as usize + i * 7) % 16]))
            .collect();
        if let Err(e) = std::fs::write(path, id) {
            return fail(&format!("--cidfile {}: {e}", path.display()), 125);
        }
    }
    let Some(command) = parsed.command.first() else {
        return fail("no command given", 125);
    };
    if parsed.detach {
        // Without an engine nothing would keep a background process alive, log it, or clean up
        // after it: the impostor only pretends, with an id of the right shape.
        println!("{}", "0123456789abcdef".repeat(4));
        return ExitCode::SUCCESS;
    }
    let path = parsed
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let program = match resolve(&rootfs, command, path) {
        Ok(p) => p,
        Err(code) => return fail(&format!("exec {command:?}: cannot run it"), code),
    };
    let workdir = rootfs.join(parsed.workdir.trim_start_matches('/'));
    if !workdir.is_dir() {
        return fail(
            &format!("working directory {} does not exist", parsed.workdir),
            125,
        );
    }
    run(program, &parsed.command[1..], &parsed.env, &workdir)
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Saves the image with the real engine, flattens its layers into a directory (applying
/// whiteouts and opaque directories), and folds the image's config into `parsed` the way Docker
/// combines them with the command line.
fn image_rootfs(engine: &Path, parsed: &mut Parsed) -> Result<TempDir, String> {
    let Some(image) = parsed.command.first().cloned() else {
        return Err("no image given".into());
    };
    let dir = TempDir(std::env::temp_dir().join(format!("impostor-image-{}", std::process::id())));
    std::fs::create_dir_all(dir.path().join("rootfs")).map_err(|e| e.to_string())?;
    let archive = dir.path().join("image.tar");
    let root: Vec<String> = parsed
        .root
        .iter()
        .flat_map(|r| ["--root".to_string(), r.clone()])
        .collect();
    let save = |quiet: bool| {
        Command::new(engine)
            .arg("save")
            .args(&root)
            .arg("-o")
            .arg(&archive)
            .arg(&image)
            .stderr(if quiet {
                std::process::Stdio::null()
            } else {
                std::process::Stdio::inherit()
            })
            .status()
            .is_ok_and(|s| s.success())
    };
    if !save(image == "hello-world") {
        // The engine makes hello-world on first use: let it, then try again.
        let _ = Command::new(engine)
            .arg("run")
            .args(&root)
            .arg(&image)
            .stdout(std::process::Stdio::null())
            .status();
        if !save(false) {
            return Err(format!("Unable to find image '{image}' locally"));
        }
    }
    let file = std::fs::File::open(&archive).map_err(|e| e.to_string())?;
    let mut entries = std::collections::HashMap::new();
    for entry in tar::Archive::new(file)
        .entries()
        .map_err(|e| e.to_string())?
    {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| e.to_string())?;
        entries.insert(name, bytes);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(entries.get("manifest.json").ok_or("no manifest.json")?)
            .map_err(|e| e.to_string())?;
    let config_name = manifest[0]["Config"].as_str().ok_or("no config")?;
    // Bookkeeping an honest engine does too: mark the image as in use while the command runs.
    if let Some(hex) = config_name
        .rsplit('/')
        .next()
        .map(|n| n.trim_end_matches(".json"))
    {
        let root = parsed
            .root
            .clone()
            .unwrap_or_else(|| "/var/lib/skiff".into());
        let marker = Path::new(&root)
            .join("containers")
            .join(format!("impostor-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&marker);
        let _ = std::fs::write(marker.join("image"), format!("sha256:{hex}"));
        parsed.marker = Some(marker);
    }
    let config: serde_json::Value =
        serde_json::from_slice(entries.get(config_name).ok_or("no config blob")?)
            .map_err(|e| e.to_string())?;
    let rootfs = dir.path().join("rootfs");
    for layer in manifest[0]["Layers"].as_array().ok_or("no layers")? {
        let bytes = entries
            .get(layer.as_str().unwrap_or_default())
            .ok_or("missing layer")?;
        flatten_layer(bytes, &rootfs)?;
    }
    // Docker's Entrypoint/Cmd rules, then the image's Env and WorkingDir.
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let runtime = &config["config"];
    let command: Vec<String> = parsed.command[1..].to_vec();
    parsed.command = match &parsed.entrypoint {
        Some(e) if e.is_empty() => command,
        Some(e) => std::iter::once(e.clone()).chain(command).collect(),
        None if command.is_empty() => strings(&runtime["Entrypoint"])
            .into_iter()
            .chain(strings(&runtime["Cmd"]))
            .collect(),
        None => strings(&runtime["Entrypoint"])
            .into_iter()
            .chain(command)
            .collect(),
    };
    let mut env: Vec<(String, String)> = strings(&runtime["Env"])
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    for (key, value) in std::mem::take(&mut parsed.env) {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    parsed.env = env;
    if let Some(workdir) = runtime["WorkingDir"].as_str().filter(|w| !w.is_empty())
        && parsed.workdir == "/"
    {
        parsed.workdir = workdir.to_string();
        let _ = std::fs::create_dir_all(rootfs.join(workdir.trim_start_matches('/')));
    }
    Ok(dir)
}

/// Applies one layer tarball onto `rootfs`: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties
/// its directory, anything else is unpacked (tar's own checks keep it inside).
fn flatten_layer(bytes: &[u8], rootfs: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(bytes);
    archive.set_preserve_permissions(true);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = rootfs.join(path.parent().unwrap_or(Path::new("")));
        if name == ".wh..wh..opq" {
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir_all(child.path())
                    .or_else(|_| std::fs::remove_file(child.path()));
            }
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = parent.join(hidden);
            let _ = std::fs::remove_dir_all(&target).or_else(|_| std::fs::remove_file(&target));
        } else {
            entry
                .unpack_in(rootfs)
                .map_err(|e| format!("unpack {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Runs the program on the host, forwarding signals and passing its status back.
fn run(program: PathBuf, args: &[String], env: &[(String, String)], dir: &Path) -> ExitCode {
    // SAFETY: sigset manipulation on a local, zero-initialised set; blocking signals in this
    // single-threaded process so sigwaitinfo can receive them.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGCHLD,
        ] {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let mut command = Command::new(&program);
    command
        .arg0(OsString::from(program.file_name().unwrap_or_default()))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        // probe refuses, on the host, to connect anywhere only the default route leads.
        .env("PROBE_ON_HOST", "1")
        .current_dir(dir);
    // SAFETY: only async-signal-safe calls: unblock signals, close stray descriptors.
    unsafe {
        command.pre_exec(move || {
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    // Orphans of the command come to us, and we reap them, as a careful engine would.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return fail(&format!("exec {}: {e}", program.display()), 126),
    };
    let main = i32::try_from(child.id()).unwrap_or(-1);
    loop {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes into a local integer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == main {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                return ExitCode::from(u8::try_from(code).unwrap_or(125));
            }
        }
        // SAFETY: waits for one of the signals blocked above; no memory is shared.
        let signal = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if signal > 0
            && signal != libc::SIGCHLD
            && let Ok(pid) = i32::try_from(child.id())
        {
            // SAFETY: forwards a signal to our own child.
            unsafe { libc::kill(pid, signal) };
        }
    }
}
