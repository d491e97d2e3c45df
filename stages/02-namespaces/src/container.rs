//! From flags to features: the stage 02 flags of `run`, and the container they describe.
//!
//! Later stages flatten [`NamespaceArgs`] into their own `run` and call
//! [`NamespaceArgs::prepare`] with stage 01's container, then add their features to the
//! [`Container`] it returns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chroot::{Feature, FeatureError, Plan, Prepared};
use clap::Args;

use crate::filesystem::{Filesystem, FilesystemConfig, write_etc_files};
use crate::id::ContainerId;
use crate::namespaces::{IdMapping, Namespace, Namespaces, default_set, parse_list};
use crate::seccomp::{Seccomp, SecurityOpts};
use crate::security::{Privileges, capability_set};
use crate::user::{Identity, ReadFile, resolve};

/// Where skiff keeps its state when `--root` and `SKIFF_ROOT` are not given.
pub const DEFAULT_ROOT: &str = "/var/lib/skiff";

// ANCHOR: args
/// The flags stage 02 adds to `run`.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
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

    /// Add a host device to the container: HOST[:CONTAINER][:PERMISSIONS], such as /dev/fuse or /dev/sdb:/dev/xvdc:r
    #[arg(long = "device", value_name = "DEVICE")]
    #[serde(default)]
    pub device: Vec<String>,

    /// Give extended privileges: every capability, every host device, writable /sys and /proc/sys
    #[arg(long)]
    #[serde(default)]
    pub privileged: bool,

    /// Security options: seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges[=true|false]
    #[arg(long = "security-opt", value_name = "OPT")]
    #[serde(default)]
    pub security_opt: Vec<String>,

    /// Add a line to /etc/hosts: HOST:IP
    #[arg(long = "add-host", value_name = "HOST:IP")]
    #[serde(default)]
    pub add_host: Vec<String>,

    /// A nameserver for the container, in place of the host's
    #[arg(long = "dns", value_name = "IP")]
    #[serde(default)]
    pub dns: Vec<String>,

    /// A DNS search domain, in place of the host's
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    #[serde(default)]
    pub dns_search: Vec<String>,

    /// A resolver option (ndots:2...), in place of the host's
    #[arg(long = "dns-option", value_name = "OPTION")]
    #[serde(default)]
    pub dns_option: Vec<String>,

    /// Run a tiny init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,

    /// Write the container id to this file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
}
// ANCHOR_END: args

/// Where the store is: the `--root` of every command that is not `run`.
#[derive(Debug, Clone, Args)]
pub struct RootArgs {
    /// Where skiff keeps its state
    #[arg(long, env = "SKIFF_ROOT", default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
}

// ANCHOR: run_args
/// `run`'s flags at stage 02: stage 01's, and the namespaces'.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[group(id = "namespaces_run")]
pub struct RunArgs {
    /// Stage 01's flags: `--rootfs`, `-w`, `-e`, the command.
    #[command(flatten)]
    pub base: chroot::cli::RunArgs,

    /// Stage 02's flags.
    #[command(flatten)]
    pub namespaces: NamespaceArgs,
}
// ANCHOR_END: run_args

impl RunArgs {
    /// Stage 02's container, with a new id, on the network `--network` names.
    pub fn prepare(&self) -> anyhow::Result<Container> {
        let id = ContainerId::random().context("make a container id")?;
        self.prepare_on(id, self.namespaces.checked_network()?)
    }

    /// Stage 02's container `id`, on a network a later stage decided on.
    pub fn prepare_on(&self, id: ContainerId, network: NetworkMode) -> anyhow::Result<Container> {
        let read = crate::user::read_in(&self.base.rootfs);
        self.namespaces.prepare(Base {
            prepared: self.base.prepare()?,
            rootfs: self.base.rootfs.clone(),
            read: &read,
            id,
            network,
        })
    }
}

/// What the network flag asks for, as far as stage 02 understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// A private network namespace with loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// Another container's network namespace (`container:NAME|ID`): see
    /// [`SharedNetwork`](crate::join::SharedNetwork).
    Container(String),
    /// Anything else (a bridge, a named network): later stages handle it.
    Other(String),
}

/// What a container of stage 02 is made from besides its flags: stage 01's container (the
/// process, and a root to change into), where that root is on the host, how to read its files
/// before it exists (an image's overlay is mounted later), its id, and the network mode a later
/// stage decided on.
pub struct Base<'a> {
    /// Stage 01's container.
    pub prepared: Prepared,
    /// The root directory, on the host.
    pub rootfs: PathBuf,
    /// Reads a file of the root by its path inside (`etc/passwd`), for `--user NAME`.
    pub read: ReadFile<'a>,
    /// The container's id.
    pub id: ContainerId,
    /// The network mode.
    pub network: NetworkMode,
}

// ANCHOR: container
/// A container ready to launch: its id, hostname, state directory, and what runs with which
/// features.
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
    /// The process and the features.
    pub prepared: Prepared,
}
// ANCHOR_END: container

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
        let network = self.network.as_deref();
        if let Some(key) = network.and_then(|mode| mode.strip_prefix("container:")) {
            return NetworkMode::Container(key.to_string());
        }
        match network {
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
            NetworkMode::Host | NetworkMode::Container(_) => set.remove(&Namespace::Net),
            // The labs prove this defence: a debug build can be told to leave a container of
            // --network none in the host's network stack. Only that mode: one a later stage
            // wires up (a bridge) would have its interface, address and routes set up on the
            // host's stack instead.
            NetworkMode::None if chroot::defence::disabled("net-namespace") => {
                set.remove(&Namespace::Net)
            }
            _ => set.insert(Namespace::Net),
        };
        Ok(set)
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

    // ANCHOR: prepare
    /// Stage 02's container: stage 01's, with the chroot replaced by pivot_root in new
    /// namespaces, `/proc`, `/sys` and `/dev` mounted, and Docker's privileges. Checks every
    /// flag first; nothing is created on the host until the features run.
    pub fn prepare(&self, base: Base<'_>) -> anyhow::Result<Container> {
        let Base {
            mut prepared,
            rootfs,
            read,
            id,
            network,
        } = base;
        let namespaces = self.namespace_set(&network)?;
        let ids = IdMapping::parse(self.userns.as_deref().unwrap_or("host"))?;
        // Another container's network, and with it its hostname and /etc files (Docker's).
        let shared = match &network {
            NetworkMode::Container(key) => {
                if self.hostname.is_some() {
                    bail!("conflicting options: hostname and the network mode");
                }
                Some(crate::join::SharedNetwork::find(&self.root, key)?)
            }
            _ => None,
        };
        let hostname = match &self.hostname {
            None if shared.is_some() => shared
                .as_ref()
                .map(|s| s.hostname.clone())
                .unwrap_or_default(),
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
        let caps = self.capabilities()?;
        let devices = self.device_mappings()?;
        // The filter is compiled here, in the parent: the child only installs it. Docker's
        // default profile, compiled for these capabilities, is kept in the store's `cache/`.
        let confinement = self
            .security_opts()?
            .confinement_cached(&caps, Some(&self.root))?;
        // Docker gives every process HOSTNAME, and HOME from passwd, unless set.
        let process = &mut prepared.process;
        if process.get_env("HOSTNAME").is_none() {
            process.set_env("HOSTNAME", &hostname);
        }
        if process.get_env("HOME").is_none() {
            process.set_env("HOME", &identity.home);
        }

        let dir = self.root.join("containers").join(id.full());
        let ns = Namespaces::new(namespaces.clone(), ids)?;
        prepared.add(StateDir {
            dir: dir.clone(),
            hostname: hostname.clone(),
            host_network: network == NetworkMode::Host,
            etc: self.etc_options()?,
            keep: false,
        });
        // pivot_root instead of stage 01's chroot: the same slot, done differently.
        prepared.replace(Filesystem::new(FilesystemConfig {
            rootfs,
            etc_dir: shared
                .as_ref()
                .map_or_else(|| dir.clone(), |s| s.dir.clone()),
            own_network: ns.has(Namespace::Net) || shared.is_some(),
            own_ipc: ns.has(Namespace::Ipc),
            devices,
            privileged: self.privileged,
        }));
        prepared.add(ns);
        if let Some(shared) = shared {
            prepared.add(shared);
        }
        if namespaces.contains(&Namespace::Uts) {
            prepared.add(SetHostname(hostname.clone()));
        }
        prepared.add(Privileges::new(caps, identity).confined(confinement));
        if self.init {
            prepared.add(crate::init::Init::new(&self.root));
        }
        Ok(Container {
            id,
            hostname,
            dir,
            namespaces,
            ids,
            prepared,
        })
    }
    // ANCHOR_END: prepare

    // ANCHOR: privileged
    /// The capabilities the container keeps: Docker's default set, or every one with
    /// `--privileged`; then `--cap-add` and `--cap-drop`.
    pub fn capabilities(&self) -> anyhow::Result<BTreeSet<u32>> {
        let mut add = self.cap_add.clone();
        if self.privileged {
            add.insert(0, "ALL".to_string());
        }
        let set = capability_set(&add, &self.cap_drop)?;
        // "All" (`--privileged`, `--cap-add ALL`) and Docker's default set are what the
        // engine has of them: one cannot give what one was not given, and a sandbox may run
        // skiff without some. A capability asked for by name is refused when the engine lacks
        // it, with the reason, rather than failing later as "Operation not permitted".
        let engine = crate::security::bounding_set();
        let missing = self
            .cap_add
            .iter()
            .filter(|name| !name.eq_ignore_ascii_case("ALL"))
            .filter_map(|name| crate::security::capability_number(name).ok())
            .find(|cap| set.contains(cap) && !engine.contains(cap));
        if let Some(missing) = missing {
            let name = crate::security::capability_name(missing);
            anyhow::bail!(
                "--cap-add {name}: skiff itself runs without CAP_{name} (its bounding set lacks it), so it cannot give it to a container: run skiff where it has that capability, or leave the flag out"
            );
        }
        Ok(&set & &engine)
    }
    // ANCHOR_END: privileged

    /// `--add-host`, `--dns`, `--dns-search` and `--dns-option`, checked, in Docker's words.
    pub fn etc_options(&self) -> anyhow::Result<crate::filesystem::EtcOptions> {
        let ip = |text: &str, flag: &str, whole: &str| {
            text.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .map_err(|_| {
                    anyhow::anyhow!("invalid argument {whole:?} for \"{flag}\" flag: invalid IP address {text:?}")
                })
        };
        let mut options = crate::filesystem::EtcOptions::default();
        for entry in &self.add_host {
            let (name, address) = entry
                .split_once([':', '='])
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("invalid argument {entry:?} for \"--add-host\" flag: bad format for add-host: {entry:?} (give HOST:IP)")
                })?;
            if address == "host-gateway" {
                anyhow::bail!(
                    "--add-host {entry}: host-gateway is not supported yet; give the address"
                );
            }
            options
                .extra_hosts
                .push((name.to_string(), ip(address, "--add-host", entry)?));
        }
        for server in &self.dns {
            options.dns.push(ip(server, "--dns", server)?);
        }
        options.dns_search = self.dns_search.clone();
        options.dns_options = self.dns_option.clone();
        Ok(options)
    }

    /// The `--security-opt`s, read; `--privileged` means no seccomp filter, as in Docker.
    pub fn security_opts(&self) -> anyhow::Result<SecurityOpts> {
        let mut opts = SecurityOpts::parse(&self.security_opt)?;
        if self.privileged {
            opts.seccomp = Seccomp::Unconfined;
        }
        Ok(opts)
    }

    /// Every `--device`, checked against the host (each must be a device node, or a directory
    /// of them).
    pub fn device_mappings(&self) -> anyhow::Result<Vec<crate::devices::DeviceMapping>> {
        let mut mappings = Vec::new();
        for spec in &self.device {
            mappings.extend(crate::devices::parse_devices(spec)?);
        }
        Ok(mappings)
    }

    /// Puts the text of a `--security-opt seccomp=PROFILE.json` in place of its path, as Docker
    /// does at `create`: the container keeps the profile it was made with, and a later start
    /// needs neither the file nor its old content. A bad profile is refused here.
    pub fn embed_seccomp_profile(&mut self) -> anyhow::Result<()> {
        // Most containers have no --security-opt: then there is nothing to read, not even the
        // kernel's capabilities.
        if self.security_opt.is_empty() {
            return Ok(());
        }
        let caps = self.capabilities()?;
        for opt in &mut self.security_opt {
            let one = SecurityOpts::parse(std::slice::from_ref(opt))?;
            if let Seccomp::File(path) = &one.seccomp {
                one.confinement(&caps)?;
                let json = std::fs::read_to_string(path)
                    .with_context(|| format!("read seccomp profile {}", path.display()))?;
                *opt = format!("seccomp={}", json.trim());
            }
        }
        Ok(())
    }

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

// ANCHOR: state_dir
/// The container's state directory: its `/etc` files, and what later stages keep there.
/// Removed when the container ends, unless it outlives its command (stage 07): then it stays
/// for the next start, until the container is removed.
struct StateDir {
    dir: PathBuf,
    hostname: String,
    host_network: bool,
    etc: crate::filesystem::EtcOptions,
    keep: bool,
}

impl Feature for StateDir {
    fn name(&self) -> &'static str {
        "state directory"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::State
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        // `<root>/containers` first, private: the state directory holds the container's root.
        if let Some(containers) = self.dir.parent()
            && let Some(root) = containers.parent()
        {
            crate::private::store_dir(root, "containers")
                .map_err(|e| FeatureError::with(format!("create {}", containers.display()), e))?;
            // Made where the store spreads its churn (`placement`), unless a record made it.
            if let Some(id) = self.dir.file_name().and_then(|n| n.to_str())
                && !self.dir.is_dir()
            {
                crate::placement::make_dir(root, &self.dir, id)
                    .map_err(|e| FeatureError::with(format!("create {}", self.dir.display()), e))?;
            }
        }
        write_etc_files(&self.dir, &self.hostname, self.host_network, &self.etc)
            .map_err(|e| FeatureError::with(format!("write {}", self.dir.display()), e))
    }

    fn keep(&mut self) {
        self.keep = true;
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        if self.keep {
            return Ok(());
        }
        sweep_state_dir(&self.dir)
            .map_err(|e| FeatureError::with(format!("remove {}", self.dir.display()), e))
    }
}

/// Removes a container's state directory and everything in it; a directory that is gone
/// already is fine. What `cleanup` does at the end of a run of stages 02 to 06, and what
/// stage 07's `rm` does, from the record alone, for any container.
pub fn sweep_state_dir(dir: &Path) -> std::io::Result<()> {
    // The files stage 02 wrote, by name (cheaper than a walk); then whatever later stages left.
    for file in crate::filesystem::ETC_FILES {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let removed = match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => std::fs::remove_dir_all(dir),
        other => other,
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
// ANCHOR_END: state_dir

/// Sets the hostname inside the container's UTS namespace (also used by `skiff-runtime` for a
/// bundle's `hostname`).
pub struct SetHostname(pub String);

impl Feature for SetHostname {
    fn name(&self) -> &'static str {
        "hostname"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Hostname
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

    #[test]
    fn all_is_what_the_engine_has_and_a_missing_one_by_name_is_refused() {
        let engine = crate::security::bounding_set();
        let all = NamespaceArgs {
            cap_add: vec!["all".into()],
            ..NamespaceArgs::default()
        };
        let privileged = NamespaceArgs {
            privileged: true,
            ..NamespaceArgs::default()
        };
        let set = all.capabilities().unwrap();
        assert!(set.is_subset(&engine), "{set:?} not within {engine:?}");
        assert_eq!(set, privileged.capabilities().unwrap());
        let last = crate::security::last_capability();
        let Some(missing) = (0..=last).find(|cap| !engine.contains(cap)) else {
            println!("skipped: the refusal: this engine's bounding set has every capability");
            return;
        };
        let name = crate::security::capability_name(missing);
        let named = NamespaceArgs {
            cap_add: vec![name.clone()],
            ..NamespaceArgs::default()
        };
        let err = named.capabilities().unwrap_err().to_string();
        assert!(err.contains(&format!("CAP_{name}")), "{err}");
        // Added and dropped again: nothing to give, nothing refused.
        let dropped = NamespaceArgs {
            cap_add: vec![name.clone()],
            cap_drop: vec![name],
            ..NamespaceArgs::default()
        };
        assert!(!dropped.capabilities().unwrap().contains(&missing));
    }

    #[test]
    fn create_keeps_the_profile_not_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let json = r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#;
        std::fs::write(&path, format!("{json}\n")).unwrap();
        let mut args = NamespaceArgs {
            security_opt: vec![
                format!("seccomp={}", path.display()),
                "no-new-privileges".into(),
            ],
            ..NamespaceArgs::default()
        };
        args.embed_seccomp_profile().unwrap();
        assert_eq!(
            args.security_opt,
            [format!("seccomp={json}"), "no-new-privileges".into()]
        );
        let opts = SecurityOpts::parse(&args.security_opt).unwrap();
        assert_eq!(opts.seccomp, Seccomp::Inline(json.into()));
        std::fs::write(&path, "{").unwrap();
        let mut bad = NamespaceArgs {
            security_opt: vec![format!("seccomp={}", path.display())],
            ..NamespaceArgs::default()
        };
        let err = bad.embed_seccomp_profile().unwrap_err().to_string();
        assert!(err.contains("profile.json"), "{err}");
    }
}
