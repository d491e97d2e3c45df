//! Stage 05's idea, yours to write: networks. A bridge on the host with a subnet, a veth pair
//! from it into each container's network namespace, an address from the subnet, NAT out and
//! published ports in. Fill the pieces in this order, running the check named in each after it
//! (book: chapter 5, "Build it yourself"):
//!
//! 1. [`create`], [`find`]      — `labs check 05 --bin ./target/debug/my-skiff-05 unknown-network`
//! 2. [`list`], [`remove`]      — `... network-ls`
//! 3. [`attach`], [`detach`]    — set `DEFAULT_BRIDGE` in `wiring.rs`, then
//!    `... default-bridge-gives-eth0`, `... veth-on-the-host-bridge`, and labs 01 to 04 again
//! 4. [`publish`]               — `... published-port-reaches-the-container`
//!
//! Lab 05 checks more (names by DNS, isolation between networks, IPv6, macvlan, `network
//! prune`): the chapter takes them one at a time. ip-link(8), veth(4), nft(8).
// Until a piece is written its arguments go unused.
#![allow(unused_variables, dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;

/// A network: a bridge on the host and the subnet its containers get addresses from.
#[derive(Debug, Clone)]
pub struct Network {
    /// Its name (`bridge` is the default one).
    pub name: String,
    /// The bridge's link name on the host.
    pub bridge: String,
    /// The subnet, `10.89.1.0/24`.
    pub subnet: String,
    /// The bridge's own address in it, the containers' gateway.
    pub gateway: Ipv4Addr,
}

/// A container's place on a network: what [`attach`] made, for [`detach`] and [`publish`].
#[derive(Debug)]
pub struct Endpoint {
    /// The network.
    pub network: String,
    /// The host's end of the veth pair.
    pub host_link: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// What [`publish`] set up, for [`detach`] to remove.
    pub published: Vec<String>,
}

/// `network create NAME`: records the network under `store`, with `subnet` or a free /24 of
/// your own range, and makes its bridge. An existing name is an error that names it.
///
/// Book: chapter 5, "A bridge, a cable, a route" and "Addresses: IPAM".
pub fn create(store: &Path, name: &str, subnet: Option<&str>) -> anyhow::Result<Network> {
    todo!(
        "create() in src/network.rs: a network, its subnet and its bridge (book: chapter 5, \"A bridge, a cable, a route\" and \"Addresses: IPAM\")"
    )
}

/// The network `name`; `bridge`, the default one, is made on first use. An unknown name is an
/// error that names it (Docker's words: `network NAME not found`).
///
/// Book: chapter 5, "The four network modes".
pub fn find(store: &Path, name: &str) -> anyhow::Result<Network> {
    todo!(
        "find() in src/network.rs: a network by its name, the default bridge made on first use (book: chapter 5, \"The four network modes\")"
    )
}

/// `network ls`: every network.
///
/// Book: chapter 5, "The network commands".
pub fn list(store: &Path) -> anyhow::Result<Vec<Network>> {
    todo!(
        "list() in src/network.rs: the networks in the store (book: chapter 5, \"The network commands\")"
    )
}

/// `network rm NAME`: its bridge and its record.
///
/// Book: chapter 5, "The network commands" and "Cleaning up".
pub fn remove(store: &Path, name: &str) -> anyhow::Result<()> {
    todo!(
        "remove() in src/network.rs: a network's bridge and record (book: chapter 5, \"The network commands\")"
    )
}

/// Puts container `id`, whose first process is `pid` (waiting for the go-ahead, in a network
/// namespace of its own with loopback only), on `network`: a veth pair, one end on the bridge,
/// the other moved into the container as `eth0` with an address of the subnet and a default
/// route through the gateway. The host's end is named `sk-` and the first 8 digits of the id:
/// the labs look for it (the book's contract page).
///
/// Book: chapter 5, "A bridge, a cable, a route".
pub fn attach(network: &Network, id: &str, pid: i32) -> anyhow::Result<Endpoint> {
    todo!(
        "attach() in src/network.rs: a veth pair from the bridge into the container, an address, a route (book: chapter 5, \"A bridge, a cable, a route\")"
    )
}

/// Takes the container off its network once it exited: its veth pair, its address back to the
/// pool, whatever [`publish`] set up.
///
/// Book: chapter 5, "Cleaning up".
pub fn detach(endpoint: &Endpoint) -> anyhow::Result<()> {
    todo!(
        "detach() in src/network.rs: the veth pair, the address, the published ports (book: chapter 5, \"Cleaning up\")"
    )
}

/// `-p [IP:]HOST:CONT[/udp]`: traffic to the host's port reaches the container's (DNAT), noted
/// in `endpoint.published` for [`detach`]. A bad spec is an error that names it.
///
/// Book: chapter 5, "Out and in: NAT".
pub fn publish(endpoint: &mut Endpoint, spec: &str) -> anyhow::Result<()> {
    todo!(
        "publish() in src/network.rs: -p, a DNAT rule to the container (book: chapter 5, \"Out and in: NAT\")"
    )
}
