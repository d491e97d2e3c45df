//! `version` and `info`: what this skiff is, and what it manages on this host.
//!
//! Docker answers them from its client and its daemon; skiff is one program, so its client and
//! its engine have one version, and `info` reads the host (kernel, cgroups) and the store
//! (containers by state, images) directly. See docker-version(1), docker-info(1).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The Engine API version skiff's answers correspond to (what docker 20.10 speaks).
pub const API_VERSION: &str = "1.41";

// ANCHOR: version
/// `version`'s facts: Docker's two sides, so that `--format '{{.Server.Version}}'` works.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    /// Whose engine answers: `skiff Engine`, or a daemon's platform name.
    #[serde(skip)]
    pub platform: String,
    /// The program that was run.
    pub client: Side,
    /// The engine that answered: the same program here.
    pub server: Side,
}

/// One side of `version`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Side {
    /// skiff's version.
    pub version: String,
    /// The Engine API version.
    pub api_version: String,
    /// The Rust compiler it was built with (Docker shows its Go version).
    pub rust_version: String,
    /// The operating system.
    pub os: String,
    /// The architecture, as Go names it.
    pub arch: String,
    /// The kernel (the engine's side only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
}

impl Version {
    /// This skiff, on this host.
    pub fn here() -> Version {
        let side = |kernel_version| Side {
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: API_VERSION.into(),
            rust_version: env!("SKIFF_RUSTC_VERSION").into(),
            os: std::env::consts::OS.into(),
            arch: goarch().into(),
            kernel_version,
        };
        Version {
            platform: "skiff Engine".into(),
            client: side(None),
            server: side(Some(kernel())),
        }
    }

    /// Docker's layout: the client, then the engine.
    pub fn text(&self) -> String {
        let (c, s) = (&self.client, &self.server);
        format!(
            "Client: skiff\n Version:           {}\n API version:       {}\n Rust version:      {}\n OS/Arch:           {}/{}\n\n\
             Server: {}\n Engine:\n  Version:          {}\n  API version:      {}\n  Rust version:     {}\n  OS/Arch:          {}/{}\n  Kernel version:   {}\n",
            c.version,
            c.api_version,
            c.rust_version,
            c.os,
            c.arch,
            self.platform,
            s.version,
            s.api_version,
            s.rust_version,
            s.os,
            s.arch,
            s.kernel_version.as_deref().unwrap_or_default(),
        )
    }
}
// ANCHOR_END: version

/// The architecture as Docker (Go) names it.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The running kernel's release (`uname -r`).
pub fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ANCHOR: info
/// `info`'s facts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Info {
    /// The client's version (this skiff's; the daemon's may differ with `-H`).
    #[serde(skip)]
    pub client_version: String,
    /// Every container.
    pub containers: usize,
    /// Running ones.
    pub containers_running: usize,
    /// Paused ones.
    pub containers_paused: usize,
    /// The others.
    pub containers_stopped: usize,
    /// Images in the store.
    pub images: usize,
    /// The storage driver.
    pub driver: String,
    /// How cgroups are managed.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// The kernel.
    pub kernel_version: String,
    /// The distribution, from /etc/os-release.
    pub operating_system: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// The machine.
    pub architecture: String,
    /// Online CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    /// Memory, in bytes.
    pub mem_total: u64,
    /// The host's name.
    pub name: String,
    /// The store.
    pub docker_root_dir: String,
    /// skiff's version.
    pub server_version: String,
}

impl Info {
    /// What the store at `root` and this host hold.
    pub fn gather(root: &Path) -> anyhow::Result<Info> {
        use namespaces::record::Status;
        let records = crate::lifecycle::list(root)?;
        let count = |status: Status| records.iter().filter(|r| r.state.status == status).count();
        let running = count(Status::Running) + count(Status::Restarting);
        let paused = count(Status::Paused);
        let images = if root.join("images").exists() {
            images::ops::list(&images::Store::open(root)?, true)?.len()
        } else {
            0
        };
        let cgroup_version = match cgroups::Host::detect().map(|h| h.setup) {
            Ok(cgroups::Setup::Unified) => "2",
            _ => "1",
        };
        Ok(Info {
            client_version: env!("CARGO_PKG_VERSION").into(),
            containers: records.len(),
            containers_running: running,
            containers_paused: paused,
            containers_stopped: records.len() - running - paused,
            images,
            driver: "overlay2".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version.into(),
            kernel_version: kernel(),
            operating_system: os_release(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism().map_or(1, usize::from),
            mem_total: mem_total(),
            name: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            docker_root_dir: root.display().to_string(),
            server_version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    /// Docker's layout.
    pub fn text(&self) -> String {
        format!(
            "Client:\n Version:    {}\n\nServer:\n Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n Logging Driver: json-file\n Cgroup Driver: {}\n Cgroup Version: {}\n Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n Docker Root Dir: {}\n",
            self.client_version,
            self.containers,
            self.containers_running,
            self.containers_paused,
            self.containers_stopped,
            self.images,
            self.server_version,
            self.driver,
            self.cgroup_driver,
            self.cgroup_version,
            self.kernel_version,
            self.operating_system,
            self.os_type,
            self.architecture,
            self.ncpu,
            human_memory(self.mem_total),
            self.name,
            self.docker_root_dir,
        )
    }
}
// ANCHOR_END: info

fn os_release() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The host's memory, in bytes (`MemTotal` of /proc/meminfo).
pub fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Docker's `Total Memory: 23.54GiB`: binary units, four significant digits.
fn human_memory(bytes: u64) -> String {
    crate::stats::binary_size(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_as_docker_prints_it() {
        assert_eq!(human_memory(24 * 1024 * 1024 * 1024), "24GiB");
        assert_eq!(human_memory(1536 * 1024 * 1024), "1.5GiB");
    }
}
