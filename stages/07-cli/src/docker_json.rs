//! Docker's JSON of a container: the shape of `docker inspect CONTAINER`, Engine API 1.41's
//! `ContainerJSON` (`GET /containers/{id}/json`), as typed structs.
//!
//! Tools read this JSON by field name and by type: `jq .[0].State.Pid` wants a number,
//! `{{.NetworkSettings.Ports}}` a map, `HostConfig.PidsLimit` null when no limit is set. So the
//! fields here are Docker's, with Docker's names (`OOMKilled`, `IPAddress`, `ExecIDs`), in
//! Docker's order (Go's encoder writes a struct's fields in declaration order, and people diff
//! inspect outputs), with Docker's types: a Go slice or pointer left nil is `null` (`Option`
//! here), a map is an object, `omitempty` fields are skipped when empty. `serde_json::json!`
//! would sort the keys; these structs keep them where Docker has them.
//!
//! Fields that skiff has no concept for keep Docker's zero value (`""`, `0`, `false`, `null`),
//! so the shape stays the same. `inspect` fills these from the record and the stores.

use std::collections::BTreeMap;

use serde::Serialize;

/// Docker's `time.Time{}`, the zero time, as its JSON shows a time that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

// ANCHOR: container
/// A container, as `docker inspect` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerJson {
    /// 64 hex digits.
    #[serde(rename = "Id")]
    pub id: String,
    /// When it was created, RFC 3339 with nanoseconds.
    pub created: String,
    /// The program its first process runs: the entrypoint's first word, or the command's.
    pub path: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// Where it is in its life.
    pub state: StateJson,
    /// The image's id (`sha256:…`).
    pub image: String,
    /// Its `/etc/resolv.conf` on the host.
    pub resolv_conf_path: String,
    /// Its `/etc/hostname` on the host.
    pub hostname_path: String,
    /// Its `/etc/hosts` on the host.
    pub hosts_path: String,
    /// Its json-file log.
    pub log_path: String,
    /// `/` and its name.
    pub name: String,
    /// How often its restart policy started it again.
    pub restart_count: u32,
    /// The storage driver.
    pub driver: &'static str,
    /// The operating system it runs on.
    pub platform: &'static str,
    /// SELinux label of its mounts (skiff sets none).
    pub mount_label: String,
    /// SELinux label of its processes (skiff sets none).
    pub process_label: String,
    /// AppArmor profile (skiff loads none).
    pub app_armor_profile: String,
    /// Ids of its `exec` sessions.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    /// The flags it was created with, as Docker groups them.
    pub host_config: HostConfig,
    /// Where its filesystem layers are.
    pub graph_driver: GraphDriver,
    /// With `--size`: bytes of its writable layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    /// With `--size`: its writable layer and its image together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
    /// Its volumes, bind mounts and `--mount` tmpfs mounts.
    pub mounts: Vec<MountPoint>,
    /// What it runs and how.
    pub config: ConfigJson,
    /// Its networks and addresses.
    pub network_settings: NetworkSettings,
}
// ANCHOR_END: container

/// `State`: the lifecycle as booleans and times, and the status word.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateJson {
    /// created, running, paused, restarting, removing, exited or dead.
    pub status: &'static str,
    /// Running, paused or restarting (Docker counts all three as running).
    pub running: bool,
    /// Frozen.
    pub paused: bool,
    /// Waiting for its restart policy.
    pub restarting: bool,
    /// The kernel's OOM killer ended its last run.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Its removal failed halfway.
    pub dead: bool,
    /// Its first process on the host; 0 when not running.
    pub pid: i32,
    /// How its last run ended.
    pub exit_code: i32,
    /// Why its last start failed.
    pub error: String,
    /// Its last start, or [`ZERO_TIME`].
    pub started_at: String,
    /// Its last end, or [`ZERO_TIME`].
    pub finished_at: String,
}

/// A host port a container port is published on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    /// The host address (`0.0.0.0`), or `""` when `-p` gave none (in `HostConfig`).
    pub host_ip: String,
    /// The host port, as a string (Docker's type), `""` when the kernel was to pick one.
    pub host_port: String,
}

/// Container ports (`80/tcp`) and where each is published; `null` for a port exposed only.
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    /// The log driver.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// Its `--log-opt`s.
    pub config: BTreeMap<String, String>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicyJson {
    /// no, on-failure, always or unless-stopped.
    pub name: &'static str,
    /// `on-failure:N`'s N.
    pub maximum_retry_count: u32,
}

/// One `--mount`, as `HostConfig.Mounts` keeps it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostMount {
    /// volume, bind or tmpfs.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// The volume's name or the host path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The path inside.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// Mounted read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

// ANCHOR: host_config
/// `HostConfig`: the flags of `run` that concern the host, then `Resources` (the cgroup limits,
/// which Go embeds, so their fields sit at this level), in Docker's order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `-v` values as given.
    pub binds: Option<Vec<String>>,
    /// `--cidfile`.
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    /// `--log-driver` and `--log-opt`.
    pub log_config: LogConfig,
    /// `--network`: `default` when not given.
    pub network_mode: String,
    /// `-p`, as given.
    pub port_bindings: PortMap,
    /// `--restart`.
    pub restart_policy: RestartPolicyJson,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--volume-driver`.
    pub volume_driver: String,
    /// `--volumes-from`.
    pub volumes_from: Option<Vec<String>>,
    /// `--cap-add`.
    pub cap_add: Option<Vec<String>>,
    /// `--cap-drop`.
    pub cap_drop: Option<Vec<String>>,
    /// `--cgroupns`: private or host.
    pub cgroupns_mode: String,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host`.
    pub extra_hosts: Option<Vec<String>>,
    /// `--group-add`.
    pub group_add: Option<Vec<String>>,
    /// `--ipc`: private or host.
    pub ipc_mode: String,
    /// `--cgroup`.
    pub cgroup: String,
    /// `--link`.
    pub links: Option<Vec<String>>,
    /// `--oom-score-adj`.
    pub oom_score_adj: i32,
    /// `--pid`: `""` (private) or host.
    pub pid_mode: String,
    /// `--privileged`.
    pub privileged: bool,
    /// `-P`.
    pub publish_all_ports: bool,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `--security-opt`.
    pub security_opt: Option<Vec<String>>,
    /// `--tmpfs`: target and options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    /// `--uts`: `""` (private) or host.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `--userns`.
    pub userns_mode: String,
    /// Bytes of `/dev/shm`.
    pub shm_size: u64,
    /// The OCI runtime.
    pub runtime: &'static str,
    /// The terminal's size at creation (Windows).
    pub console_size: [u32; 2],
    /// Windows' isolation technology.
    pub isolation: String,
    /// The cgroup limits.
    #[serde(flatten)]
    pub resources: Resources,
    /// `--mount`s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<HostMount>>,
    /// Paths hidden from the container.
    pub masked_paths: Vec<String>,
    /// Paths made read-only inside.
    pub readonly_paths: Vec<String>,
    /// `--init`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}
// ANCHOR_END: host_config

/// `Resources`: stage 03's limits in Docker's units, and the ones skiff has not (zero or null).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    /// `--cpu-shares`; 0 for the default weight.
    pub cpu_shares: u64,
    /// `--memory` in bytes; 0 for no limit.
    pub memory: u64,
    /// `--cpus` in billionths of a CPU.
    pub nano_cpus: u64,
    /// `--cgroup-parent`.
    pub cgroup_parent: String,
    /// `--blkio-weight`; 0 when not set.
    pub blkio_weight: u16,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: Vec<()>,
    /// `--device-read-bps`.
    pub blkio_device_read_bps: Option<Vec<()>>,
    /// `--device-write-bps`.
    pub blkio_device_write_bps: Option<Vec<()>>,
    /// `--device-read-iops`.
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<()>>,
    /// `--device-write-iops`.
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<()>>,
    /// `--cpu-period`.
    pub cpu_period: u64,
    /// `--cpu-quota`.
    pub cpu_quota: u64,
    /// `--cpu-rt-period`.
    pub cpu_realtime_period: u64,
    /// `--cpu-rt-runtime`.
    pub cpu_realtime_runtime: u64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--device`.
    pub devices: Vec<DeviceJson>,
    /// `--device-cgroup-rule`.
    pub device_cgroup_rules: Option<Vec<String>>,
    /// `--gpus`.
    pub device_requests: Option<Vec<()>>,
    /// `--kernel-memory` (deprecated by the kernel).
    pub kernel_memory: u64,
    /// Kernel TCP buffer memory.
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: u64,
    /// `--memory-reservation`.
    pub memory_reservation: u64,
    /// `--memory-swap`: memory and swap together, -1 for unlimited swap, 0 when no memory limit.
    pub memory_swap: i64,
    /// `--memory-swappiness`.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--pids-limit`; null for no limit.
    pub pids_limit: Option<u64>,
    /// `--ulimit`.
    pub ulimits: Option<Vec<()>>,
    /// CPU count (Windows).
    pub cpu_count: u64,
    /// CPU percent (Windows).
    pub cpu_percent: u64,
    /// Maximum IOps (Windows).
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    /// Maximum bandwidth (Windows).
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
}

/// `GraphDriver`: the storage driver and its directories.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// The directories; null for a container on a `--rootfs` directory.
    pub data: Option<GraphData>,
    /// The driver.
    pub name: &'static str,
}

/// The overlay's directories.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphData {
    /// The image's layers, topmost first, `:`-separated (as overlayfs takes them).
    pub lower_dir: String,
    /// The container's root as it sees it.
    pub merged_dir: String,
    /// The container's writable layer.
    pub upper_dir: String,
    /// overlayfs's work directory.
    pub work_dir: String,
}

/// One entry of `Mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// volume, bind or tmpfs.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// The volume's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Where the content is on the host (`""` for tmpfs).
    pub source: String,
    /// Where it is inside.
    pub destination: String,
    /// The volume driver.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// The options as `-v` gives them (`ro`; `z` for a volume).
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Mount propagation (`rprivate` for a bind mount).
    pub propagation: &'static str,
}

// ANCHOR: config
/// `Config`: what the container runs, from the image and the flags.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigJson {
    /// The hostname inside.
    pub hostname: String,
    /// The domain name inside.
    pub domainname: String,
    /// `--user`, or the image's.
    pub user: String,
    /// A foreground `run` attached stdin.
    pub attach_stdin: bool,
    /// A foreground `run` attached stdout.
    pub attach_stdout: bool,
    /// A foreground `run` attached stderr.
    pub attach_stderr: bool,
    /// The image's `EXPOSE`d ports and the published ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// Stdin closes when the attached client leaves (`run -i` in the foreground).
    pub stdin_once: bool,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// The command.
    pub cmd: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    /// The image's `VOLUME`s and `-v /path`'s anonymous volumes.
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// The working directory.
    pub working_dir: String,
    /// The entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// The image's `ONBUILD` triggers.
    pub on_build: Option<Vec<String>>,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
}
// ANCHOR_END: config

/// Go's `struct{}`: a set's member, `{}` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Empty {}

// ANCHOR: network_settings
/// `NetworkSettings`: the default bridge's address at the top (Docker's old single-network
/// fields), every network's in `Networks`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// Always empty since Docker 1.9.
    pub bridge: String,
    /// The network sandbox's id.
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// Hairpin NAT on the veth.
    pub hairpin_mode: bool,
    /// IPv6 link-local address.
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    /// Its prefix length.
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: u8,
    /// Published and exposed ports while it runs; `{}` otherwise.
    pub ports: PortMap,
    /// Its network namespace.
    pub sandbox_key: String,
    /// More IPv4 addresses.
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<String>>,
    /// More IPv6 addresses.
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<String>>,
    /// The default bridge's part.
    #[serde(flatten)]
    pub default: EndpointAddress,
    /// Each network it is on, by name.
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `DefaultNetworkSettings`: the container's address on the default bridge.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointAddress {
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The network's gateway.
    pub gateway: String,
    /// IPv6 address.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Its prefix length.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// IPv4 address.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// IPv6 gateway.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// The interface's MAC address.
    pub mac_address: String,
}

/// `--ip`, as an endpoint's `IPAMConfig` keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct IpamConfig {
    /// The address asked for.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// One entry of `Networks`: the configuration first, then what the running container has.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    /// `--ip`.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    /// `--link`.
    pub links: Option<Vec<String>>,
    /// Other names the container has on the network.
    pub aliases: Option<Vec<String>>,
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The network's gateway.
    pub gateway: String,
    /// IPv4 address.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// IPv6 gateway.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// IPv6 address.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Its prefix length.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// The interface's MAC address.
    pub mac_address: String,
    /// Driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
}
// ANCHOR_END: network_settings

/// One `--device`, as Docker's inspect shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceJson {
    /// The node on the host.
    pub path_on_host: String,
    /// Its path in the container.
    pub path_in_container: String,
    /// What the devices cgroup allows (`rwm`).
    pub cgroup_permissions: String,
}
