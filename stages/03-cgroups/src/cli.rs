//! Stage 03 on the command line: `run`'s flags (stage 02's and the limits), and the container
//! they describe: stage 02's, with a cgroup.

use clap::Args;
use namespaces::{Base, Container, ContainerId, NamespaceArgs, NetworkMode};

use crate::devices::DeviceRule;
use crate::limits::CgroupArgs;

// ANCHOR: run_args
/// `run`'s flags at stage 03.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[group(id = "cgroups_run")]
pub struct RunArgs {
    /// Stage 02's flags, and stage 01's within them.
    #[command(flatten)]
    pub base: namespaces::RunArgs,

    /// Stage 03's flags: the limits.
    #[command(flatten)]
    pub cgroup: CgroupArgs,
}
// ANCHOR_END: run_args

// ANCHOR: prepare
/// Stage 03's container: stage 02's, in a cgroup of its own with the limits. Every limit is
/// checked before anything exists on the host. A later stage calls this with its own base (an
/// image's root, a network mode of its own).
pub fn prepare(
    base: Base<'_>,
    namespaces: &NamespaceArgs,
    cgroup: &CgroupArgs,
) -> anyhow::Result<Container> {
    let mut feature = cgroup.feature(base.id.full())?;
    // The devices the container may open: Docker's list, --device, --device-cgroup-rule, or
    // all with --privileged.
    let devices = namespaces.device_mappings()?;
    let extra = device_cgroup_rules(cgroup)?;
    feature.devices = Some(crate::devices::rules_for(
        namespaces.privileged,
        &devices,
        &extra,
    ));
    let mut container = namespaces.prepare(base)?;
    container.prepared.add(feature);
    Ok(container)
}
// ANCHOR_END: prepare

/// The `--device-cgroup-rule`s, read; a bad one is refused in Docker's words.
pub fn device_cgroup_rules(cgroup: &CgroupArgs) -> anyhow::Result<Vec<DeviceRule>> {
    cgroup
        .device_cgroup_rule
        .iter()
        .map(|text| {
            DeviceRule::parse(text).ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid argument {text:?} for \"--device-cgroup-rule\" flag: invalid device cgroup format '{text}' (give TYPE MAJOR:MINOR ACCESS: type a, b or c, a number or * for each, some of r, w and m; such as 'c 1:3 rwm')"
                )
            })
        })
        .collect()
}

impl RunArgs {
    /// Stage 03's container, with a new id, on the network `--network` names.
    pub fn prepare(&self) -> anyhow::Result<Container> {
        let id = ContainerId::random()?;
        let network = self.base.namespaces.checked_network()?;
        self.prepare_on(id, network)
    }

    /// Stage 03's container `id`, on a network a later stage decided on.
    pub fn prepare_on(&self, id: ContainerId, network: NetworkMode) -> anyhow::Result<Container> {
        let rootfs = &self.base.base.rootfs;
        let read = namespaces::user::read_in(rootfs);
        let base = Base {
            prepared: self.base.base.prepare()?,
            rootfs: rootfs.clone(),
            read: &read,
            id,
            network,
        };
        prepare(base, &self.base.namespaces, &self.cgroup)
    }
}
