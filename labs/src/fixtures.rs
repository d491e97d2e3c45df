//! Fixtures: what the checks run against, built once and cached under `target/lab-fixtures`.
//!
//! The main fixture is a small root filesystem: Debian's static busybox with its applet links,
//! the static probe, and a few marker files that exist only inside it (so a check can tell the
//! container's `/etc` from the host's). It is built in a temporary directory and renamed into
//! place, so parallel test processes never see half of one.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// The static busybox that Debian's `busybox-static` package installs.
pub const BUSYBOX: &str = "/bin/busybox";

/// A file that exists only in the fixture rootfs, and its content.
pub const ROOTFS_MARKER: (&str, &str) = ("etc/skiff-lab-rootfs", "lab rootfs\n");

/// Bumped when the layout below changes, so old caches are not reused.
const LAYOUT_VERSION: u32 = 1;

/// Paths of the built fixtures, plus placeholders a stage adds.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// The directory all fixtures live in.
    pub dir: PathBuf,
    /// The busybox + probe rootfs.
    pub rootfs: PathBuf,
    /// The static probe on the host.
    pub probe: PathBuf,
    /// Extra placeholders (name → value), from stages that need more fixtures (images).
    pub extra: BTreeMap<String, String>,
}

/// The probe as `build.rs` compiled it.
pub fn probe_path() -> PathBuf {
    PathBuf::from(env!("LAB_PROBE"))
}

/// Where fixtures are cached: `LAB_FIXTURES` if set, else `target/lab-fixtures`.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("LAB_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("LAB_FIXTURES")))
}

/// Builds the fixtures (once per process, and once per content on disk).
pub fn fixtures() -> anyhow::Result<&'static Fixtures> {
    static BUILT: OnceLock<Result<Fixtures, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("building the lab fixtures failed: {e}"))
}

fn build() -> anyhow::Result<Fixtures> {
    let dir = fixtures_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let probe = probe_path();
    let rootfs = build_rootfs(&dir, &probe)?;
    let mut extra = BTreeMap::new();
    // Image archives for lab 04, next to the rootfs they are made of.
    let key = rootfs
        .file_name()
        .map(|n| n.to_string_lossy().replace("rootfs-", ""))
        .unwrap_or_default();
    let images = dir.join(format!("images-{key}"));
    crate::images::build(&images, &rootfs).context("build the image fixtures")?;
    for (name, path) in crate::images::placeholders(&images) {
        extra.insert(name.to_string(), path.display().to_string());
    }
    extra.insert("busybox".into(), BUSYBOX.into());
    // The repository, for files it keeps (images/busybox/Dockerfile).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    extra.insert("repo".into(), repo.display().to_string());
    Ok(Fixtures {
        dir,
        rootfs,
        probe,
        extra,
    })
}

/// Fails unless `path` is a statically linked ELF file: one whose program headers name no
/// interpreter (`PT_INTERP`, the dynamic loader), so it runs where no C library exists.
fn check_static(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "read {}: install Debian's busybox-static (apt-get install busybox-static)",
            path.display()
        )
    })?;
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        bail!("{} is not an ELF executable", path.display());
    };
    if !bytes.starts_with(b"\x7fELF") {
        bail!("{} is not an ELF executable", path.display());
    }
    const PT_INTERP: u32 = 3;
    let dynamic = (0..usize::from(phnum)).any(|i| {
        let at = usize::try_from(phoff).unwrap_or(usize::MAX) + i * usize::from(phentsize);
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            == Some(PT_INTERP)
    });
    if dynamic {
        bail!(
            "{} is dynamically linked and cannot run in a bare rootfs: install busybox-static",
            path.display()
        );
    }
    Ok(())
}

fn content_key(files: &[&Path]) -> anyhow::Result<String> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    LAYOUT_VERSION.hash(&mut hasher);
    for file in files {
        let meta = std::fs::metadata(file).with_context(|| format!("stat {}", file.display()))?;
        meta.len().hash(&mut hasher);
        meta.modified()?.hash(&mut hasher);
    }
    Ok(format!("{:016x}", hasher.finish()))
}

fn build_rootfs(dir: &Path, probe: &Path) -> anyhow::Result<PathBuf> {
    let busybox = Path::new(BUSYBOX);
    check_static(busybox)?;
    let key = content_key(&[busybox, probe])?;
    let rootfs = dir.join(format!("rootfs-{key}"));
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    let staging = tempfile::Builder::new()
        .prefix(".rootfs-staging-")
        .tempdir_in(dir)
        .context("create a staging directory for the rootfs")?;
    let root = staging.path();
    populate(root, busybox, probe).context("populate the fixture rootfs")?;
    // Make the rootfs traversable by any uid: tempdir creates it 0700.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    match std::fs::rename(root, &rootfs) {
        Ok(()) => {
            // The directory moved: nothing left for the guard to delete.
            let _ = staging.keep();
        }
        // Another process won the race; its rootfs is as good as ours.
        Err(_) if rootfs.is_dir() => {}
        Err(e) => return Err(e).with_context(|| format!("rename into {}", rootfs.display())),
    }
    Ok(rootfs)
}

fn populate(root: &Path, busybox: &Path, probe: &Path) -> anyhow::Result<()> {
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("var/tmp", 0o1777),
        ("root", 0o700),
        ("home/lab", 0o755),
        ("srv", 0o755),
        ("mnt", 0o755),
        ("run", 0o755),
    ] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    std::fs::copy(probe, root.join("bin/probe"))?;
    let output = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .context("run busybox --list")?;
    for applet in String::from_utf8_lossy(&output.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        symlink("busybox", root.join("bin").join(applet))?;
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000:lab user:/home/lab:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nlab:x:1000:\nnogroup:x:65534:\n"),
        ROOTFS_MARKER,
        ("etc/hostname", ""),
        ("etc/hosts", ""),
        ("etc/resolv.conf", ""),
        (
            "bin/not-executable",
            "#!/bin/sh\necho this file has no execute bit\n",
        ),
    ];
    for (path, content) in files {
        std::fs::write(root.join(path), content)?;
    }
    Ok(())
}
