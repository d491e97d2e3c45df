//! From flags to features: the stage 02 flags of `run`, and the container they describe.
//!
//! Later stages flatten [`NamespaceArgs`] into their own `run` and call [`NamespaceArgs::build`],
//! then add their features to the list it returns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chroot::{Feature, FeatureError, Plan, Process};
use clap::Args;

use crate::filesystem::{Filesystem, FilesystemConfig, write_etc_files};
use crate::id::ContainerId;
use crate::namespaces::{IdMapping, Namespace, Namespaces, default_set, parse_list};
use crate::security::{Privileges, capability_set};
use crate::user::{Identity, resolve};

/// Where skiff keeps its state when `--root` and `SKIFF_ROOT` are not given.
pub const DEFAULT_ROOT: &str = "/var/lib/skiff";

// ANCHOR: args
/// The flags stage 02 adds to `run`.
#[derive(Debug, Clone, Default, Args)]
pub struct NamespaceArgs {
    /// Where skiff keeps its state
    #[arg(long, env = "SKIFF_ROOT", default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,

    /// The container's hostname (default: the short container id)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// The namespaces to create, comma-separated (default: pid,uts,ipc,mnt,net,cgroup)
    #[arg(long, value_name = "LIST")]
    pub ns: Option<String>,

    /// PID namespace: private (default) or host
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,

    /// UTS namespace (hostname): private (default) or host
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,

    /// IPC namespace: private (default) or host
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,

    /// Cgroup namespace: private (default) or host
    #[arg(long, value_name = "MODE")]
    pub cgroupns: Option<String>,

    /// Network: none (a private namespace with loopback only, the default here) or host
    #[arg(long = "network", visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,

    /// User namespace: host (default), remap (root inside is uid 100000 outside) or START:COUNT
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,

    /// Run as this user: UID, UID:GID, NAME or NAME:GROUP of the container's /etc/passwd
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Keep a capability Docker's default profile drops (or ALL)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability (or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Run a tiny init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,

    /// Write the container id to this file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
}
// ANCHOR_END: args

/// What the network flag asks for, as far as stage 02 understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// A private network namespace with loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// Anything else (a bridge, a named network): later stages handle it.
    Other(String),
}

/// A container ready to launch: its id, hostname, state directory and features.
pub struct Container {
    /// The container's id.
    pub id: ContainerId,
    /// Its hostname.
    pub hostname: String,
    /// Its state directory, `<root>/containers/<id>`.
    pub dir: PathBuf,
    /// The namespaces it gets.
    pub namespaces: BTreeSet<Namespace>,
    /// The user-namespace mapping, if any.
    pub ids: Option<IdMapping>,
    /// The features, in launch order.
    pub features: Vec<Box<dyn Feature>>,
}

fn private(flag: &'static str, value: Option<&str>) -> anyhow::Result<Option<bool>> {
    match value {
        None => Ok(None),
        Some("private") => Ok(Some(true)),
        Some("host") => Ok(Some(false)),
        Some(other) => Err(crate::namespaces::NsError::BadMode {
            flag,
            value: other.to_string(),
        }
        .into()),
    }
}

/// Checks a hostname: 1 to 64 letters, digits, dots and dashes (RFC 1123), as sethostname(2)
/// and resolvers accept it.
pub fn check_hostname(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.']);
    if !valid {
        bail!(
            "invalid hostname {name:?}: use 1 to 64 letters, digits, dots and dashes ({} given)",
            name.len()
        );
    }
    Ok(())
}

impl NamespaceArgs {
    /// The network mode asked for (`none` by default at this stage).
    pub fn network_mode(&self) -> NetworkMode {
        match self.network.as_deref() {
            None | Some("none") => NetworkMode::None,
            Some("host") => NetworkMode::Host,
            Some(other) => NetworkMode::Other(other.to_string()),
        }
    }

    /// The set of namespaces to create.
    pub fn namespace_set(&self, network: &NetworkMode) -> anyhow::Result<BTreeSet<Namespace>> {
        let mut set = match &self.ns {
            Some(list) => parse_list(list)?,
            None => default_set(),
        };
        let modes = [
            ("pid", Namespace::Pid, self.pid.as_deref()),
            ("uts", Namespace::Uts, self.uts.as_deref()),
            ("ipc", Namespace::Ipc, self.ipc.as_deref()),
            ("cgroupns", Namespace::Cgroup, self.cgroupns.as_deref()),
        ];
        for (flag, ns, value) in modes {
            match private(flag, value)? {
                Some(true) => set.insert(ns),
                Some(false) => set.remove(&ns),
                None => false,
            };
        }
        match network {
            NetworkMode::Host => set.remove(&Namespace::Net),
            _ => set.insert(Namespace::Net),
        };
        Ok(set)
    }

    // ANCHOR: build
    /// Validates every flag, then describes the container: nothing is created on the host until
    /// its features run.
    pub fn build(&self, rootfs: &Path, process: &mut Process) -> anyhow::Result<Container> {
        let network = self.checked_network()?;
        self.build_with_network(rootfs, process, &network)
    }

    /// The network mode, refusing the ones a later stage brings.
    pub fn checked_network(&self) -> anyhow::Result<NetworkMode> {
        let network = self.network_mode();
        if let NetworkMode::Other(mode) = &network {
            bail!(
                "invalid --network {mode:?}: this stage knows none and host (bridge networks come in stage 05)"
            );
        }
        Ok(network)
    }

    /// [`NamespaceArgs::build`] for a network mode a later stage has already decided on.
    pub fn build_with_network(
        &self,
        rootfs: &Path,
        process: &mut Process,
        network: &NetworkMode,
    ) -> anyhow::Result<Container> {
        let id = ContainerId::random().context("make a container id")?;
        let read = crate::user::read_in(rootfs);
        self.build_with(id, rootfs, &read, process, network)
    }

    /// The general form: container `id`, whose root will be at `rootfs` once earlier features
    /// have prepared it (an image's overlay is mounted later), and whose files can already be
    /// read with `read` (for `--user NAME`).
    pub fn build_with(
        &self,
        id: ContainerId,
        rootfs: &Path,
        read: crate::user::ReadFile<'_>,
        process: &mut Process,
        network: &NetworkMode,
    ) -> anyhow::Result<Container> {
        let namespaces = self.namespace_set(network)?;
        let ids = IdMapping::parse(self.userns.as_deref().unwrap_or("host"))?;
        let hostname = match &self.hostname {
            Some(name) if !namespaces.contains(&Namespace::Uts) => {
                bail!(
                    "--hostname {name:?} cannot be used with the host's UTS namespace (--uts host)"
                )
            }
            Some(name) => name.clone(),
            None if namespaces.contains(&Namespace::Uts) => id.short().to_string(),
            None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        };
        check_hostname(&hostname)?;
        let identity = match &self.user {
            Some(spec) => resolve(spec, read)?,
            None => Identity::root(),
        };
        let caps = capability_set(&self.cap_add, &self.cap_drop)?;
        // Docker gives every process HOSTNAME, and HOME from passwd, unless set.
        if process.get_env("HOSTNAME").is_none() {
            process.set_env("HOSTNAME", &hostname);
        }
        if process.get_env("HOME").is_none() {
            process.set_env("HOME", &identity.home);
        }

        let dir = self.root.join("containers").join(id.full());
        let ns = Namespaces::new(namespaces.clone(), ids)?;
        let filesystem = Filesystem::new(FilesystemConfig {
            rootfs: rootfs.to_path_buf(),
            etc_dir: dir.clone(),
            user_namespace: ids.is_some(),
            own_network: ns.has(Namespace::Net),
            own_ipc: ns.has(Namespace::Ipc),
        });
        let mut features: Vec<Box<dyn Feature>> = vec![
            Box::new(StateDir {
                dir: dir.clone(),
                hostname: hostname.clone(),
                host_network: *network == NetworkMode::Host,
            }),
            Box::new(ns),
            Box::new(filesystem),
        ];
        if ns_has_uts(&namespaces) {
            features.push(Box::new(SetHostname(hostname.clone())));
        }
        features.push(Box::new(Privileges::new(caps, identity)));
        if self.init {
            features.push(Box::new(crate::init::Init));
        }
        Ok(Container {
            id,
            hostname,
            dir,
            namespaces,
            ids,
            features,
        })
    }
    // ANCHOR_END: build

    /// Writes the container id to `--cidfile`, refusing to overwrite, as Docker does.
    pub fn write_cidfile(&self, id: &ContainerId) -> anyhow::Result<()> {
        let Some(path) = &self.cidfile else {
            return Ok(());
        };
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| {
                format!(
                    "write container id to --cidfile {}: it must not exist yet",
                    path.display()
                )
            })?;
        file.write_all(id.full().as_bytes())?;
        Ok(())
    }
}

fn ns_has_uts(set: &BTreeSet<Namespace>) -> bool {
    set.contains(&Namespace::Uts)
}

/// The container's state directory: its `/etc` files now, more in later stages. Removed when
/// the container ends.
struct StateDir {
    dir: PathBuf,
    hostname: String,
    host_network: bool,
}

impl Feature for StateDir {
    fn name(&self) -> &'static str {
        "state directory"
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        write_etc_files(&self.dir, &self.hostname, self.host_network)
            .map_err(|e| FeatureError::with(format!("write {}", self.dir.display()), e))
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        // The files this feature wrote, by name (cheaper than a walk); then whatever later
        // stages left in the directory.
        for file in crate::filesystem::ETC_FILES {
            let _ = std::fs::remove_file(self.dir.join(file));
        }
        let removed = match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                std::fs::remove_dir_all(&self.dir)
            }
            other => other,
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(FeatureError::with(
                format!("remove {}", self.dir.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

/// Sets the hostname inside the container's UTS namespace.
struct SetHostname(String);

impl Feature for SetHostname {
    fn name(&self) -> &'static str {
        "hostname"
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let name = chroot::plan::cstr(&self.0).map_err(|e| FeatureError::msg(e.to_string()))?;
        plan.after_root.push(chroot::Step::Hostname(name));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked() {
        check_hostname("web-1.example").unwrap();
        check_hostname(&"a".repeat(64)).unwrap();
        for bad in ["", "-x", "a b", &"a".repeat(65), "x_y"] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_modes_remove_namespaces() {
        let args = NamespaceArgs {
            pid: Some("host".into()),
            network: Some("host".into()),
            ..NamespaceArgs::default()
        };
        let set = args.namespace_set(&args.network_mode()).unwrap();
        assert!(!set.contains(&Namespace::Pid));
        assert!(!set.contains(&Namespace::Net));
        assert!(set.contains(&Namespace::Uts));
        let bad = NamespaceArgs {
            ipc: Some("shared".into()),
            ..NamespaceArgs::default()
        };
        assert!(bad.namespace_set(&NetworkMode::None).is_err());
    }
}
