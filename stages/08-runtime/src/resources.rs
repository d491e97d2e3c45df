//! `linux.cgroupsPath` and `linux.resources`, mapped onto stage 03 (runtime-spec config-linux.md,
//! "Control groups"; cgroups(7)).
//!
//! The limits become stage 03's own flags (`--memory`, `--pids-limit`...), so they are checked
//! by the same rules as the CLI's; what stage 03 has no flag for is refused by name.

use std::path::Path;

use crate::config::{ConfigError, invalid, refuse_given, unsupported};

/// The cgroup parent when `linux.cgroupsPath` is not given: skiff's own, which stage 03 removes
/// once empty.
pub const DEFAULT_CGROUP_PARENT: &str = cgroups::DEFAULT_PARENT;

/// Stage 03's cgroup at `linux.cgroupsPath` with `linux.resources`' limits.
pub fn cgroup(
    linux: &oci_spec::runtime::Linux,
    id: &str,
) -> Result<cgroups::CgroupFeature, ConfigError> {
    let (parent, name) = cgroup_path(linux.cgroups_path().as_deref(), id)?;
    let mut args = match linux.resources() {
        Some(resources) => cgroup_args(resources)?,
        None => cgroups::CgroupArgs::default(),
    };
    args.cgroup_parent = Some(parent);
    let mut feature = args
        .feature(&name)
        .map_err(|e| invalid("linux.resources", e.to_string()))?;
    let spec_rules = linux.resources().as_ref().and_then(|r| r.devices().clone());
    feature.devices = Some(device_rules(spec_rules.as_deref().unwrap_or_default())?);
    Ok(feature)
}

// ANCHOR: device_rules
/// `linux.resources.devices` as stage 03's device rules (the same code `--device` and
/// `--device-cgroup-rule` use). Stage 03 keeps one model: deny everything, then allow a list.
/// The spec's list is ordered allows and denies, so it is folded into that model: a deny of
/// everything (`{"allow": false}`, no type or type `a`, no numbers) empties the list; an allow
/// adds its rule; a deny of one device removes the allows it equals. A deny that would carve
/// a hole in a wider allow has no place in the model and is refused by name. Docker's default
/// list (null, zero, tty, pts...) stays allowed, as runc keeps its own defaults after the
/// spec's rules.
pub fn device_rules(
    spec: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<Vec<cgroups::DeviceRule>, ConfigError> {
    use cgroups::{DeviceKind, DeviceRule};
    use oci_spec::runtime::LinuxDeviceType;
    const FIELD: &str = "linux.resources.devices";
    let mut allowed: Vec<DeviceRule> = Vec::new();
    for rule in spec {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => continue, // FIFOs are not devices to the cgroup
        };
        let number = |n: Option<i64>| match n {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| invalid(FIELD, format!("device number {n} out of range"))),
        };
        let access = match rule.access().as_deref().unwrap_or("") {
            "" => cgroups::devices::READ | cgroups::devices::WRITE | cgroups::devices::MKNOD,
            text => DeviceRule::parse_access(text)
                .ok_or_else(|| invalid(FIELD, format!("access {text:?}: use r, w and m")))?,
        };
        let parsed = DeviceRule {
            kind,
            major: number(rule.major())?,
            minor: number(rule.minor())?,
            access,
        };
        if rule.allow() {
            allowed.push(parsed);
        } else if kind == DeviceKind::All && parsed.major.is_none() && parsed.minor.is_none() {
            allowed.clear();
        } else if allowed.iter().any(|a| *a != parsed && covers(a, &parsed)) {
            return Err(unsupported(format!(
                "{FIELD} (a deny of part of an earlier allow: {rule})"
            )));
        } else {
            allowed.retain(|a| *a != parsed);
        }
    }
    let mut rules = cgroups::devices::docker_default();
    rules.extend(allowed);
    Ok(rules)
}

/// Whether allow rule `wide` lets through some of what `narrow` is about.
fn covers(wide: &cgroups::DeviceRule, narrow: &cgroups::DeviceRule) -> bool {
    use cgroups::DeviceKind;
    let kind =
        wide.kind == DeviceKind::All || narrow.kind == DeviceKind::All || wide.kind == narrow.kind;
    let number = |w: Option<u32>, n: Option<u32>| w.is_none() || n.is_none() || w == n;
    kind && number(wide.major, narrow.major)
        && number(wide.minor, narrow.minor)
        && wide.access & narrow.access != 0
}
// ANCHOR_END: device_rules

// ANCHOR: cgroup_args
/// `linux.resources` as stage 03's flags (checked there, as `--memory` and `--pids-limit`
/// are): memory limit and swap, pids limit, cpu shares and cpus, block I/O weight. Also what
/// `update` reads.
pub fn cgroup_args(
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<cgroups::CgroupArgs, ConfigError> {
    let given = [
        (
            "linux.resources.blockIO (but weight)",
            resources.block_io().as_ref().is_some_and(|b| {
                b.leaf_weight().is_some()
                    || b.weight_device().as_ref().is_some_and(|d| !d.is_empty())
                    || b.throttle_read_bps_device()
                        .as_ref()
                        .is_some_and(|d| !d.is_empty())
                    || b.throttle_write_bps_device()
                        .as_ref()
                        .is_some_and(|d| !d.is_empty())
                    || b.throttle_read_iops_device()
                        .as_ref()
                        .is_some_and(|d| !d.is_empty())
                    || b.throttle_write_iops_device()
                        .as_ref()
                        .is_some_and(|d| !d.is_empty())
            }),
        ),
        (
            "linux.resources.hugepageLimits",
            resources
                .hugepage_limits()
                .as_ref()
                .is_some_and(|h| !h.is_empty()),
        ),
        ("linux.resources.network", resources.network().is_some()),
        ("linux.resources.rdma", resources.rdma().is_some()),
        (
            "linux.resources.unified",
            resources.unified().as_ref().is_some_and(|u| !u.is_empty()),
        ),
    ];
    refuse_given(&given)?;
    let mut args = cgroups::CgroupArgs {
        blkio_weight: resources
            .block_io()
            .as_ref()
            .and_then(|b| b.weight())
            .filter(|w| *w > 0)
            .map(|w| w.to_string()),
        ..cgroups::CgroupArgs::default()
    };
    if let Some(memory) = resources.memory() {
        let given = [
            (
                "linux.resources.memory.reservation",
                memory.reservation().is_some(),
            ),
            ("linux.resources.memory.kernel", memory.kernel().is_some()),
            (
                "linux.resources.memory.kernelTCP",
                memory.kernel_tcp().is_some(),
            ),
            (
                "linux.resources.memory.swappiness",
                memory.swappiness().is_some(),
            ),
            (
                "linux.resources.memory.disableOOMKiller",
                memory.disable_oom_killer() == Some(true),
            ),
        ];
        refuse_given(&given)?;
        args.memory = memory.limit().filter(|l| *l > 0).map(|l| l.to_string());
        args.memory_swap = memory.swap().map(|s| s.to_string());
    }
    if let Some(pids) = resources.pids() {
        args.pids_limit = Some(pids.limit().to_string());
    }
    if let Some(cpu) = resources.cpu() {
        if cpu.realtime_runtime().is_some() || cpu.mems().is_some() {
            return Err(unsupported(
                "linux.resources.cpu (only shares, cpus, quota and period are mapped)",
            ));
        }
        // A quota per period is `--cpus` (quota / period CPUs), which stage 03 writes as a
        // quota per 100 ms: the same share of the CPU, Docker's period. -1 is no limit.
        if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
            let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
            args.cpus = Some(format!("{}", quota as f64 / period as f64));
        }
        // 0 is "not set" (what Docker passes without --cpu-shares).
        args.cpu_shares = cpu.shares().filter(|s| *s > 0).map(|s| s.to_string());
        args.cpuset_cpus = cpu.cpus().clone();
    }
    Ok(args)
}
// ANCHOR_END: cgroup_args

// ANCHOR: cgroup_path
/// `linux.cgroupsPath` as stage 03's parent and name: `/default/ID` (what containerd gives) is
/// the parent `default` and the cgroup `ID`; none is `skiff/<id>`. systemd's
/// `slice:prefix:name` form is refused: there is no systemd cgroup driver here.
pub fn cgroup_path(path: Option<&Path>, id: &str) -> Result<(String, String), ConfigError> {
    let Some(path) = path else {
        return Ok((DEFAULT_CGROUP_PARENT.to_string(), id.to_string()));
    };
    let text = path.display().to_string();
    if text.contains(':') {
        return Err(unsupported(format!(
            "linux.cgroupsPath {text:?} in systemd's slice:prefix:name form (--systemd-cgroup)"
        )));
    }
    match text.trim_matches('/').rsplit_once('/') {
        Some((parent, name)) if !parent.is_empty() && !name.is_empty() => {
            Ok((parent.to_string(), name.to_string()))
        }
        _ => Err(invalid(
            "linux.cgroupsPath",
            format!("{text:?}: give a parent and a name, such as /default/{id}"),
        )),
    }
}
// ANCHOR_END: cgroup_path

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_paths_split_into_parent_and_name() {
        assert_eq!(
            cgroup_path(Some(Path::new("/default/web")), "web").unwrap(),
            ("default".to_string(), "web".to_string())
        );
        assert_eq!(
            cgroup_path(None, "web").unwrap(),
            (DEFAULT_CGROUP_PARENT.to_string(), "web".to_string())
        );
        let err = cgroup_path(Some(Path::new("system.slice:docker:web")), "web").unwrap_err();
        assert!(err.to_string().contains("systemd"), "{err}");
    }
}
