//! `port`: where a running container's ports are published on the host.
//!
//! `-p 8080:80` says where, and `-p 80` leaves the host port to the kernel; either way the
//! answer comes from the same place as `inspect`'s `NetworkSettings.Ports`: the container's
//! flags, and for a port the kernel picked, the firewall's rule for it. See docker-port(1).

use anyhow::bail;

use crate::container::Record;
use crate::inspect::{Stores, network_ports};

// ANCHOR: port
/// `port`'s lines: `80/tcp -> 0.0.0.0:8080` for every published port, or with `private`
/// (`80`, `80/udp`) the host addresses of that one port.
pub fn lines(
    record: &Record,
    stores: &Stores,
    private: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    lines_of(&network_ports(record, stores), &record.name, private)
}

/// `port`'s lines from a container's published ports (`NetworkSettings.Ports`), gathered from
/// the store or from a daemon.
pub fn lines_of(
    ports: &crate::docker_json::PortMap,
    name: &str,
    private: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let published = ports
        .iter()
        .filter_map(|(key, bindings)| Some((key, bindings.as_ref()?)));
    match private {
        None => Ok(published
            .flat_map(|(key, bindings)| {
                bindings
                    .iter()
                    .map(move |b| format!("{key} -> {}:{}", b.host_ip, b.host_port))
            })
            .collect()),
        Some(wanted) => {
            let key = if wanted.contains('/') {
                wanted.to_string()
            } else {
                format!("{wanted}/tcp")
            };
            match published.into_iter().find(|(k, _)| **k == key) {
                Some((_, bindings)) => Ok(bindings
                    .iter()
                    .map(|b| format!("{}:{}", b.host_ip, b.host_port))
                    .collect()),
                None => bail!("No public port '{key}' published for {name}"),
            }
        }
    }
}
// ANCHOR_END: port
