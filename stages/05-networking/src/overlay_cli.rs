//! The `network` commands on overlay networks: `create -d overlay`, and the cluster store's
//! networks in `ls`, `inspect` and `rm` (see docker-network-create(1), "overlay").
//!
//! They need the cluster store: `--cluster-store etcd://HOST:PORT` (or `SKIFF_CLUSTER_STORE`)
//! and, for containers, `--advertise-addr IP` (or `SKIFF_ADVERTISE_ADDR`). Without a store,
//! local networks work as before and overlay commands say what is missing.

use anyhow::{Context, bail};
use clap::Args;

use crate::etcd::Etcd;
use crate::ipam::Subnet;
use crate::overlay::{self, OverlayNetwork};

/// Where the cluster store is.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct ClusterArgs {
    /// The cluster store of overlay networks: etcd://HOST:PORT
    #[arg(long, env = "SKIFF_CLUSTER_STORE", value_name = "URL")]
    #[serde(default)]
    pub cluster_store: Option<String>,
    /// This host's address on the underlay, where other hosts send VXLAN packets
    #[arg(long, env = "SKIFF_ADVERTISE_ADDR", value_name = "IP")]
    #[serde(default)]
    pub advertise_addr: Option<String>,
}

impl ClusterArgs {
    /// The store, when one is named.
    pub fn store(&self) -> anyhow::Result<Option<Etcd>> {
        self.cluster_store
            .as_deref()
            .map(Etcd::new)
            .transpose()
            .map_err(Into::into)
    }

    /// The store and this host's address, for a container's network that may be an overlay
    /// one; `None` without a store.
    pub fn cluster(&self) -> anyhow::Result<Option<crate::overlay_attach::Cluster>> {
        let Some(store) = &self.cluster_store else {
            return Ok(None);
        };
        Etcd::new(store)?;
        let advertise = self
            .advertise_addr
            .as_deref()
            .map(|a| {
                a.parse().with_context(|| {
                    format!("invalid --advertise-addr {a:?}: expected an IPv4 address")
                })
            })
            .transpose()?;
        Ok(Some(crate::overlay_attach::Cluster {
            store: store.clone(),
            advertise,
        }))
    }

    /// The store, which an overlay operation needs.
    pub fn required(&self) -> anyhow::Result<Etcd> {
        match self.store()? {
            Some(store) => Ok(store),
            None => bail!(
                "overlay networks need a cluster store: pass --cluster-store etcd://HOST:PORT or set SKIFF_CLUSTER_STORE"
            ),
        }
    }
}

/// `network create -d overlay [--subnet CIDR] NAME`: prints the new network's id.
pub fn create(
    cluster: &ClusterArgs,
    name: &str,
    subnet: Option<&str>,
    encrypted: bool,
) -> anyhow::Result<String> {
    let store = cluster.required()?;
    let subnet = subnet.map(Subnet::parse).transpose()?;
    let id = crate::store::random_id()?;
    if encrypted {
        // The cluster's IPsec key, made once: random bytes from the kernel.
        let mut key = [0u8; crate::xfrm::KEY_LEN];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
        store.create(overlay::IPSEC_KEY, hex::encode(key).as_bytes())?;
    }
    let network = overlay::create_network_with(&store, name, subnet, &id, encrypted)?;
    Ok(network.id)
}

/// The rows `network ls` adds for the store's overlay networks.
pub fn ls_rows(cluster: &ClusterArgs) -> anyhow::Result<Vec<Vec<String>>> {
    let Some(store) = cluster.store()? else {
        return Ok(Vec::new());
    };
    Ok(overlay::list_networks(&store)?
        .iter()
        .map(|n| {
            vec![
                n.id.get(..12).unwrap_or(&n.id).to_owned(),
                n.name.clone(),
                "overlay".to_owned(),
                "global".to_owned(),
            ]
        })
        .collect())
}

/// `network inspect NAME` of an overlay network, Docker's fields, with the endpoints of every
/// host; `None` when the store has no such network.
pub fn inspect(cluster: &ClusterArgs, name: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(store) = cluster.store()? else {
        return Ok(None);
    };
    let Some(network) = overlay::network(&store, name)? else {
        return Ok(None);
    };
    let endpoints = overlay::endpoints(&store, &network)?;
    Ok(Some(view(&network, &endpoints)))
}

fn view(network: &OverlayNetwork, endpoints: &[overlay::Endpoint]) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = endpoints
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                serde_json::json!({
                    "Name": e.name,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, network.subnet.prefix_len()),
                    "Host": e.host.to_string(),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "Name": network.name,
        "Id": network.id,
        "Scope": "global",
        "Driver": "overlay",
        "IPAM": {
            "Driver": "default",
            "Config": [{
                "Subnet": network.subnet.to_string(),
                "Gateway": network.gateway.to_string(),
            }],
        },
        "Containers": containers,
        "Options": if network.encrypted {
            serde_json::json!({
                "com.docker.network.driver.overlay.vxlanid_list": network.vni.to_string(),
                "encrypted": "",
            })
        } else {
            serde_json::json!({
                "com.docker.network.driver.overlay.vxlanid_list": network.vni.to_string(),
            })
        },
    })
}

/// `network rm NAME` of an overlay network: `Ok(false)` when the store has no such network.
pub fn remove(cluster: &ClusterArgs, name: &str) -> anyhow::Result<bool> {
    let Some(store) = cluster.store()? else {
        return Ok(false);
    };
    if overlay::network(&store, name)?.is_none() {
        return Ok(false);
    }
    overlay::remove_network(&store, name)
        .with_context(|| format!("remove overlay network {name}"))?;
    Ok(true)
}

/// `network ls`'s table: the local networks, then the store's overlay networks.
pub fn ls_table(networks: &[crate::store::Network], overlays: Vec<Vec<String>>) -> String {
    let mut rows = crate::store::ls_rows(networks);
    rows.extend(overlays);
    images::human::table(&crate::store::LS_HEADERS, &rows)
}

/// `network inspect`'s JSON array: the local networks' views, then the overlay ones.
pub fn inspect_json(
    local: &[crate::store::Network],
    global: Vec<serde_json::Value>,
) -> anyhow::Result<String> {
    let mut all: Vec<serde_json::Value> = serde_json::from_str(&crate::store::inspect_json(local))?;
    all.extend(global);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&all, &mut serializer)?;
    Ok(String::from_utf8(out)?)
}
