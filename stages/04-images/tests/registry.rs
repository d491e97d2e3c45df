//! `pull`, `push`, `login`, `logout` and `search` against a real registry: Debian's
//! `docker-registry` (the CNCF distribution registry), started by each test on 127.0.0.1 and a
//! free port with its own storage directory, plain, behind htpasswd Basic authentication, and
//! behind a bearer-token flow (a token issuer in this file signs JWTs with a key whose
//! self-signed certificate the registry trusts) with blob downloads redirected to another host.
//! Images come from `images import` of a small busybox rootfs built here. Nothing leaves this
//! machine: every address is on loopback.
//!
//! Needs root (containers run), and the Debian packages `docker-registry`, `apache2-utils`
//! (htpasswd), `openssl`, `skopeo` and `busybox-static`, which scripts/test installs; a test
//! whose tools are missing says so and passes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use images::Digest;

const BIN: &str = env!("CARGO_BIN_EXE_images");
const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pass";

// --- tools -----------------------------------------------------------------------------------

/// Whether `program` can be run; says why a test is skipped when it cannot.
fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("{program} is not installed: skipping (scripts/test installs it)");
    }
    found
}

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: skipping (containers need root)");
        return false;
    }
    have("docker-registry") && Path::new("/bin/busybox").is_file()
}

/// A port nothing listens on right now.
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

// --- the registry ----------------------------------------------------------------------------

/// A `docker-registry` process with its storage in a temp dir; killed and removed on drop.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts a registry; `extra` is YAML appended to its config (`auth:`, `middleware:`).
    fn start(extra: &str) -> Registry {
        let mut dir = tempfile::tempdir().expect("temp dir");
        for _ in 0..5 {
            let port = free_port("127.0.0.1");
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: skiff-test-secret\n{extra}",
                storage = dir.path().join("storage").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write config.yml");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let mut registry = Registry { child, dir, port };
            match registry.wait_ready() {
                Ok(()) => return registry,
                Err(log) if log.contains("address already in use") => {
                    dir = registry.into_dir();
                }
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
        panic!("docker-registry found no free port in 5 tries");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("not listening after 15 s:\n{}", self.log()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// `127.0.0.1:PORT`, the registry part of image names.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps blob `digest`.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- skiff -----------------------------------------------------------------------------------

/// A store and a config directory for the `images` binary.
struct Skiff {
    root: PathBuf,
    config: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Fails as skiff fails: exit 125 and one line on stderr.
    #[track_caller]
    fn fails_with(self, message: &str) -> Out {
        assert_eq!(
            self.code, 125,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(message),
            "stderr should say {message:?}:\n{}",
            self.stderr
        );
        self
    }
}

impl Skiff {
    fn new(dir: &Path, name: &str, config: &Path) -> Skiff {
        Skiff {
            root: dir.join(name),
            config: config.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Out {
        let mut child = Command::new(BIN)
            .args(args)
            .env("SKIFF_ROOT", &self.root)
            .env("SKIFF_CONFIG", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run images");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("wait for images");
        Out {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Imports a busybox rootfs (with a marker file, so each image is its own) as `name`.
    fn import(&self, dir: &Path, name: &str, marker: &str) -> String {
        let tarball = dir.join(format!("rootfs-{marker}.tar.gz"));
        std::fs::write(&tarball, rootfs(marker)).expect("write the rootfs tarball");
        let out = self
            .run(&["import", tarball.to_str().expect("utf-8 path"), name])
            .ok();
        out.stdout.trim().to_string()
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.run(&["inspect", name]).ok();
        let all: serde_json::Value =
            serde_json::from_str(&out.stdout).expect("inspect prints JSON");
        all[0].clone()
    }

    fn id(&self, name: &str) -> String {
        self.inspect(name)["Id"]
            .as_str()
            .expect("an Id")
            .to_string()
    }

    fn entries(&self, sub: &str) -> Vec<String> {
        match std::fs::read_dir(self.root.join(sub)) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "repositories.lock")
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A gzip'd rootfs: static busybox with a few applet links, and `/etc/marker`.
fn rootfs(marker: &str) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("read /bin/busybox");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let file = |builder: &mut tar::Builder<_>, path: &str, data: &[u8], mode| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, path, data)
            .expect("append");
    };
    file(&mut builder, "bin/busybox", &busybox, 0o755);
    file(&mut builder, "etc/marker", marker.as_bytes(), 0o644);
    for applet in ["true", "sh", "echo", "cat"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_link(&mut header, format!("bin/{applet}"), "busybox")
            .expect("append link");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish the tarball")
}

/// `latest: digest: sha256:… size: N` from push's output.
fn pushed_digest(stdout: &str, tag: &str) -> (String, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("no digest line for {tag} in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{line}");
    assert!(Digest::parse(words[2]).is_ok(), "{line}");
    (words[2].to_string(), words[4].parse().expect("a size"))
}

// --- a tiny HTTP server, for the token issuer and the blob store redirects go to ---------------

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query's pairs, percent-decoded.
    fn query(&self) -> Vec<(String, String)> {
        let Some((_, query)) = self.target.split_once('?') else {
            return Vec::new();
        };
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

/// Serves one request per connection on `ip`, answering with `handler`, remembering requests.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(ip: &str, handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                seen2.lock().expect("lock").push(request.clone());
                let reply = handler(&request);
                let reason = match reply.status {
                    200 => "OK",
                    401 => "Unauthorized",
                    404 => "Not Found",
                    _ => "Other",
                };
                let head = format!(
                    "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.status,
                    reply.content_type,
                    reply.body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                if request.method != "HEAD" {
                    let _ = stream.write_all(&reply.body);
                }
            }
        });
        Server {
            addr,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Seen {
        method,
        target,
        headers,
    })
}

// --- the token issuer --------------------------------------------------------------------------

/// A key and its self-signed certificate, made with openssl: the issuer signs tokens with the
/// key, the registry trusts the certificate (`rootcertbundle`).
struct SigningKey {
    key: PathBuf,
    cert: PathBuf,
    cert_der: Vec<u8>,
}

fn signing_key(dir: &Path) -> SigningKey {
    let key = dir.join("token.key");
    let cert = dir.join("token.crt");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=skiff-test-token-issuer", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl req");
    assert!(status.success(), "openssl req failed");
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .expect("run openssl x509");
    assert!(der.status.success(), "openssl x509 failed");
    SigningKey {
        key,
        cert,
        cert_der: der.stdout,
    }
}

/// A JWT as distribution's token auth reads it (RS256, the certificate in `x5c`).
fn jwt(key: &SigningKey, subject: &str, access: serde_json::Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5c": [STANDARD.encode(&key.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": "skiff-test-issuer",
        "sub": subject,
        "aud": "skiff-test-registry",
        "exp": now + 600,
        "nbf": now - 60,
        "iat": now - 60,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl dgst");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to openssl");
    let signature = child.wait_with_output().expect("openssl dgst");
    assert!(signature.status.success(), "openssl dgst failed");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.stdout))
}

/// The realm: `GET /token?service=…&scope=…` with Basic credentials gets a token for every scope
/// asked; a wrong password gets 401; no credentials get a token that allows nothing.
fn token_issuer(key: SigningKey) -> Server {
    Server::start("127.0.0.1", move |request| {
        let good = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
        let (subject, allowed) = match request.header("authorization") {
            Some(given) if given == good => (USER, true),
            Some(_) => {
                return Reply {
                    status: 401,
                    content_type: "application/json",
                    body: br#"{"details":"incorrect username or password"}"#.to_vec(),
                };
            }
            None => ("", false),
        };
        let access: Vec<serde_json::Value> = request
            .query()
            .into_iter()
            .filter(|(k, _)| k == "scope" && allowed)
            .filter_map(|(_, scope)| {
                let mut parts = scope.rsplitn(2, ':');
                let actions = parts.next()?;
                let (kind, name) = parts.next()?.split_once(':')?;
                Some(serde_json::json!({
                    "type": kind,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let token = jwt(&key, subject, serde_json::Value::Array(access));
        // Docker's spec calls it `token`; OAuth servers say `access_token`: answer both ways.
        let field = if allowed { "access_token" } else { "token" };
        Reply {
            status: 200,
            content_type: "application/json",
            body: serde_json::json!({ field: token, "expires_in": 600 })
                .to_string()
                .into_bytes(),
        }
    })
}

// --- tests -----------------------------------------------------------------------------------

#[test]
fn push_then_pull_gives_the_same_image_and_it_runs() {
    if !can_run() {
        return;
    }
    let registry = Registry::start("");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let host = format!("localhost:{}", registry.port);
    let name = format!("{host}/x");
    let a = Skiff::new(tmp.path(), "a", &config);
    let id = a.import(tmp.path(), &name, "x");

    let out = a.run(&["push", &name]).ok();
    assert!(
        out.stdout
            .starts_with(&format!("The push refers to repository [{name}]\n")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(": Pushed\n"), "{}", out.stdout);
    let (digest, _) = pushed_digest(&out.stdout, "latest");
    assert_eq!(
        a.inspect(&name)["RepoDigests"],
        serde_json::json!([format!("{name}@{digest}")]),
        "push records the manifest digest"
    );

    // Into an empty store: the same image (same config digest), the same repo digest.
    let b = Skiff::new(tmp.path(), "b", &config);
    let out = b.run(&["pull", &name]).ok();
    for line in [
        "Using default tag: latest",
        "latest: Pulling from x",
        ": Pulling fs layer",
        ": Download complete",
        ": Pull complete",
        &format!("Digest: {digest}"),
        &format!("Status: Downloaded newer image for {name}:latest"),
    ] {
        assert!(out.stdout.contains(line), "{line:?} in:\n{}", out.stdout);
    }
    assert!(
        out.stdout.ends_with(&format!("\n{name}:latest\n")),
        "{}",
        out.stdout
    );
    assert_eq!(b.id(&name), id, "the pulled image is the pushed one");
    assert_eq!(
        b.inspect(&name)["RepoDigests"],
        serde_json::json!([format!("{name}@{digest}")])
    );
    b.run(&["run", &name, "true"]).ok();

    // A second pull downloads nothing.
    let out = b.run(&["pull", &name]).ok();
    assert!(out.stdout.contains(": Already exists"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("Pulling fs layer") && !out.stdout.contains("Download complete"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("Status: Image is up to date for {name}:latest")),
        "{}",
        out.stdout
    );

    // `run` of an absent image pulls it first, on stderr: stdout stays the container's.
    let c = Skiff::new(tmp.path(), "c", &config);
    let out = c.run(&["run", &name, "echo", "hello from a registry"]).ok();
    assert_eq!(out.stdout, "hello from a registry\n");
    assert!(
        out.stderr
            .contains(&format!("Unable to find image '{name}:latest' locally"))
            && out.stderr.contains("Pull complete"),
        "{}",
        out.stderr
    );
    let d = Skiff::new(tmp.path(), "d", &config);
    d.run(&["run", "--pull", "never", &name, "true"])
        .fails_with("Unable to find image");
    assert!(d.entries("images").iter().all(|e| e == "repositories.json"));

    // By digest: the same image, and no tag is made.
    let e = Skiff::new(tmp.path(), "e", &config);
    let by_digest = format!("{name}@{digest}");
    e.run(&["pull", &by_digest]).ok();
    assert_eq!(e.id(&by_digest), id);
    assert_eq!(e.inspect(&by_digest)["RepoTags"], serde_json::json!([]));

    // Pushing again uploads nothing; another repository of the registry mounts the blobs.
    let out = a.run(&["push", &name]).ok();
    assert!(
        out.stdout.contains(": Layer already exists"),
        "{}",
        out.stdout
    );
    let other = format!("{host}/y:2");
    a.run(&["tag", &name, &other]).ok();
    let out = a.run(&["push", &other]).ok();
    assert!(out.stdout.contains(": Mounted from x"), "{}", out.stdout);
    assert_eq!(
        pushed_digest(&out.stdout, "2").0,
        digest,
        "the manifest digest is stable"
    );

    // An unknown tag is a clear error.
    b.run(&["pull", &format!("{name}:nope")])
        .fails_with(&format!(
            "manifest for {name}:nope not found: manifest unknown"
        ));

    // search REGISTRY/TERM reads the catalog.
    let out = b.run(&["search", &format!("{host}/")]).ok();
    let names: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [name.as_str(), &format!("{host}/y")],
        "{}",
        out.stdout
    );
    assert!(out.stdout.starts_with("NAME"), "{}", out.stdout);
    let out = b.run(&["search", &format!("{host}/y")]).ok();
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
}

#[test]
fn skopeo_pulls_what_skiff_pushed_and_skiff_pulls_what_skopeo_pushed() {
    if !can_run() || !have("skopeo") {
        return;
    }
    let registry = Registry::start("");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let name = format!("{}/interop", registry.host());
    let a = Skiff::new(tmp.path(), "a", &config);
    let id = a.import(tmp.path(), &name, "interop");
    let (digest, _) = pushed_digest(&a.run(&["push", &name]).ok().stdout, "latest");

    let skopeo = |args: &[&str]| {
        let out = Command::new("skopeo")
            .arg("--insecure-policy")
            .arg("--tmpdir")
            .arg(tmp.path())
            .args(args)
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // skopeo reads skiff's push, and verifies every blob on the way.
    let layout = tmp.path().join("layout");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}:latest"),
        &format!("oci:{}:copied", layout.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"], digest,
        "skopeo keeps skiff's manifest byte for byte"
    );
    assert!(
        layout
            .join("blobs/sha256")
            .join(id.trim_start_matches("sha256:"))
            .is_file(),
        "and its config, whose digest is the image id"
    );

    // skiff reads what skopeo pushes (a Docker schema 2 manifest, layers gzip'd by skopeo).
    let archive = tmp.path().join("saved.tar");
    a.run(&["save", "-o", archive.to_str().unwrap(), &name])
        .ok();
    let theirs = format!("{}/from-skopeo:1", registry.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{theirs}"),
    ]);
    let b = Skiff::new(tmp.path(), "b", &config);
    b.run(&["pull", &theirs]).ok();
    assert_eq!(b.id(&theirs), id, "the same image, whoever moved it");
    b.run(&["run", &theirs, "cat", "/etc/marker"]).ok();
}

#[test]
fn a_multi_platform_index_gives_this_machines_image() {
    if !can_run() {
        return;
    }
    let registry = Registry::start("");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let repo = format!("{}/multi", registry.host());
    let a = Skiff::new(tmp.path(), "a", &config);
    let amd64 = format!("{repo}:amd64");
    let amd64_id = a.import(tmp.path(), &amd64, "amd64");
    let (amd64_manifest, amd64_size) =
        pushed_digest(&a.run(&["push", &amd64]).ok().stdout, "amd64");

    // An arm64 image with no layers, and the index, put by hand with the HTTP API.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("http://{}/v2/multi", registry.host());
    let arm_config = br#"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]},"config":{"Cmd":["/nothing"]}}"#;
    let arm_id = Digest::of_bytes(arm_config).to_string();
    let started = agent
        .post(format!("{base}/blobs/uploads/"))
        .send_empty()
        .expect("start an upload");
    assert_eq!(started.status().as_u16(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{}{location}", registry.host())
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = agent
        .put(format!("{location}{separator}digest={arm_id}"))
        .header("Content-Type", "application/octet-stream")
        .send(&arm_config[..])
        .expect("upload the config");
    assert_eq!(put.status().as_u16(), 201);
    let arm_manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": arm_id, "size": arm_config.len()},
        "layers": [],
    })
    .to_string();
    let put_manifest = |reference: &str, media_type: &str, body: &str| {
        let response = agent
            .put(format!("{base}/manifests/{reference}"))
            .header("Content-Type", media_type)
            .send(body)
            .expect("put a manifest");
        assert_eq!(response.status().as_u16(), 201, "PUT manifest {reference}");
    };
    put_manifest(
        "arm64",
        "application/vnd.oci.image.manifest.v1+json",
        &arm_manifest,
    );
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": Digest::of_bytes(arm_manifest.as_bytes()).to_string(), "size": arm_manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": amd64_manifest, "size": amd64_size,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    })
    .to_string();
    put_manifest("latest", "application/vnd.oci.image.index.v1+json", &index);
    let index_digest = Digest::of_bytes(index.as_bytes()).to_string();

    // This machine's entry, though it is not the first.
    let native = match std::env::consts::ARCH {
        "x86_64" => &amd64_id,
        "aarch64" => &arm_id,
        other => {
            eprintln!("no image for {other} in this test's index: skipping");
            return;
        }
    };
    let b = Skiff::new(tmp.path(), "b", &config);
    let out = b.run(&["pull", &repo]).ok();
    assert!(
        out.stdout.contains(&format!("Digest: {index_digest}")),
        "{}",
        out.stdout
    );
    assert_eq!(&b.id(&repo), native);
    let pinned = format!("{repo}@{index_digest}");
    assert_eq!(
        b.inspect(&repo)["RepoDigests"],
        serde_json::json!([pinned]),
        "the repo digest is the index's: pulling it again gives the same image"
    );
    let out = b.run(&["run", &pinned, "true"]);
    assert!(!out.stderr.contains("Unable to find"), "{}", out.stderr);

    // --platform chooses another entry; one the index lacks is Docker's error.
    let c = Skiff::new(tmp.path(), "c", &config);
    c.run(&["pull", "--platform", "linux/arm64", &repo]).ok();
    assert_eq!(c.id(&repo), arm_id);
    c.run(&["pull", "--platform", "linux/s390x", &repo])
        .fails_with("no matching manifest for linux/s390x in the manifest list entries");
}

#[test]
fn basic_auth_login_push_pull_logout() {
    if !can_run() || !have("htpasswd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .expect("run htpasswd");
    assert!(htpasswd.status.success());
    let users = tmp.path().join("htpasswd");
    std::fs::write(&users, &htpasswd.stdout).unwrap();
    let registry = Registry::start(&format!(
        "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
        users.display()
    ));
    let config = tmp.path().join("config");
    let host = registry.host();
    let name = format!("{host}/private");
    let a = Skiff::new(tmp.path(), "a", &config);
    let id = a.import(tmp.path(), &name, "private");

    a.run(&["push", &name]).fails_with(&format!(
        "push access denied for {name}, repository does not exist or may require 'images login {host}'"
    ));
    a.run_with_stdin(&["login", &host, "-u", USER, "--password-stdin"], "wrong\n")
        .fails_with("login: unauthorized: incorrect username or password");
    assert!(!config.join("config.json").exists(), "nothing stored");

    let out = a.run(&["login", &host, "-u", USER, "-p", PASSWORD]).ok();
    assert_eq!(out.stdout, "Login Succeeded\n");
    assert!(
        out.stderr
            .contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."),
        "{}",
        out.stderr
    );
    let file = config.join("config.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        stored["auths"][&host]["auth"],
        STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );

    a.run(&["push", &name]).ok();
    let b = Skiff::new(tmp.path(), "b", &config);
    b.run(&["pull", &name]).ok();
    assert_eq!(b.id(&name), id);

    let out = a.run(&["logout", &host]).ok();
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {host}\n")
    );
    let out = a.run(&["logout", &host]).ok();
    assert_eq!(out.stdout, format!("Not logged in to {host}\n"));
    let c = Skiff::new(tmp.path(), "c", &config);
    c.run(&["pull", &name]).fails_with("pull access denied");
    a.run_with_stdin(
        &["login", &host, "-u", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .ok();
}

#[test]
fn bearer_tokens_are_fetched_and_never_follow_a_redirect_to_another_host() {
    if !can_run() || !have("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = signing_key(tmp.path());
    let cert = key.cert.clone();
    let issuer = token_issuer(key);
    // Blob downloads are redirected to this "storage service" on another loopback address.
    let registry_storage: Arc<Mutex<Option<PathBuf>>> = Arc::new(Mutex::new(None));
    let storage_for_server = registry_storage.clone();
    let storage = Server::start("127.0.0.2", move |request| {
        let root = storage_for_server
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default();
        match std::fs::read(root.join(request.path().trim_start_matches('/'))) {
            Ok(body) => Reply {
                status: 200,
                content_type: "application/octet-stream",
                body,
            },
            Err(_) => Reply {
                status: 404,
                content_type: "text/plain",
                body: b"no such blob".to_vec(),
            },
        }
    });
    let registry = Registry::start(&format!(
        "auth:\n  token:\n    realm: http://{issuer}/token\n    service: skiff-test-registry\n    \
         issuer: skiff-test-issuer\n    rootcertbundle: {cert}\n\
         middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://{storage}\n",
        issuer = issuer.addr,
        cert = cert.display(),
        storage = storage.addr,
    ));
    *registry_storage.lock().unwrap() = Some(registry.storage());
    let config = tmp.path().join("config");
    let host = registry.host();
    let name = format!("{host}/app");
    let a = Skiff::new(tmp.path(), "a", &config);
    let id = a.import(tmp.path(), &name, "app");

    // Anonymous tokens allow nothing here.
    a.run(&["push", &name]).fails_with("push access denied");
    a.run_with_stdin(&["login", &host, "-u", USER, "--password-stdin"], "wrong\n")
        .fails_with("login: unauthorized: incorrect username or password");
    a.run_with_stdin(&["login", &host, "-u", USER, "--password-stdin"], PASSWORD)
        .ok();
    let before = issuer.seen().len();
    a.run(&["push", &name]).ok();
    let pushes: Vec<Seen> = issuer
        .seen()
        .into_iter()
        .skip(before)
        .filter(|r| {
            r.query()
                .iter()
                .any(|(k, v)| k == "scope" && v == "repository:app:pull,push")
        })
        .collect();
    assert!(
        !pushes.is_empty(),
        "a token was asked for push: {:?}",
        issuer.seen()
    );
    assert!(pushes.iter().all(|r| {
        r.header("authorization").is_some()
            && r.query()
                .contains(&("service".into(), "skiff-test-registry".into()))
    }));

    let b = Skiff::new(tmp.path(), "b", &config);
    b.run(&["pull", &name]).ok();
    assert_eq!(b.id(&name), id);
    b.run(&["run", &name, "cat", "/etc/marker"]).ok();

    let downloads = storage.seen();
    assert!(
        downloads
            .iter()
            .any(|r| r.method == "GET" && r.path().ends_with("/data")),
        "blobs came through the redirect: {downloads:?}"
    );
    for request in &downloads {
        assert_eq!(
            request.header("authorization"),
            None,
            "the registry's token went to another host: {request:?}"
        );
    }
}

#[test]
fn a_blob_corrupted_in_the_registry_is_refused_and_nothing_is_stored() {
    if !can_run() {
        return;
    }
    let registry = Registry::start("");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let name = format!("{}/fragile", registry.host());
    let a = Skiff::new(tmp.path(), "a", &config);
    a.import(tmp.path(), &name, "fragile");
    // The layer's blob is the one gzip blob in a's store (the others are JSON).
    let blobs = a.root.join("blobs/sha256");
    let mut layer_blob = None;
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            layer_blob = Some(format!(
                "sha256:{}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    let layer_blob = layer_blob.expect("a gzip layer blob");

    // A copy corrupted in the store is not pushed.
    let local = blobs.join(layer_blob.trim_start_matches("sha256:"));
    let good = std::fs::read(&local).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0xff;
    std::fs::write(&local, &bad).unwrap();
    a.run(&["push", &name]).fails_with(&format!(
        "push blob {layer_blob}: reading it from the store failed"
    ));
    std::fs::write(&local, &good).unwrap();
    a.run(&["push", &name]).ok();

    // A copy corrupted in the registry is not pulled.
    let data = registry.blob_file(&layer_blob);
    let mut bytes = std::fs::read(&data).expect("the registry's copy");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let b = Skiff::new(tmp.path(), "b", &config);
    let out = b
        .run(&["pull", &name])
        .fails_with(&format!("layer {layer_blob} of {name}:latest"));
    assert!(
        out.stderr.contains("should have digest")
            && out.stderr.contains("nothing of it was stored"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert_eq!(b.entries("blobs/sha256"), Vec::<String>::new(), "no blob");
    assert_eq!(b.entries("layers"), Vec::<String>::new(), "no layer");
    assert_eq!(
        b.entries("tmp"),
        Vec::<String>::new(),
        "no half-written file"
    );
    assert!(
        b.entries("images").iter().all(|e| e == "repositories.json"),
        "no image: {:?}",
        b.entries("images")
    );
    b.run(&["run", "--pull", "never", &name, "true"])
        .fails_with("Unable to find image");
}

#[test]
fn an_unreachable_registry_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port("127.0.0.1");
    let host = format!("127.0.0.1:{port}");
    let skiff = Skiff::new(tmp.path(), "a", &tmp.path().join("config"));
    let out = skiff
        .run(&["pull", &format!("{host}/x")])
        .fails_with(&format!(
            "registry {host} is unreachable: connection refused: is it running?"
        ));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
