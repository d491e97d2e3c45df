//! # Stage 05: networking — containers on networks
//!
//! Stage 02 gave each container a network namespace holding only `lo`. This stage plugs it in:
//! a Linux bridge per network (the switch), a veth pair per container (the cable, one end born
//! inside the container's namespace as `eth0`), addresses from the network's subnet, NAT rules in
//! the host's firewall (the router), published ports, names between the containers of a
//! network, and macvlan networks that put a container directly on a host link.
//!
//! - [`netlink`]: links, addresses and routes through rtnetlink, as `ip` does;
//! - [`ipam`]: subnets and address allocation;
//! - [`store`]: networks on disk, and which container holds which address;
//! - [`firewall`]: the NAT and published-port rules (nftables or iptables, IPv4 and IPv6);
//! - [`hosts`]: names, through each container's `/etc/hosts`;
//! - [`dns`]: names by DNS, a server for each user network;
//! - [`etcd`]: the cluster store, etcd v3 through its JSON gateway;
//! - [`overlay`]: overlay networks across hosts, their records in the cluster store;
//! - [`overlay_agent`]: an overlay network's agent on each host: the watch, the lease, names;
//! - [`overlay_attach`]: a container on an overlay network: its endpoint in the store, the data path;
//! - [`overlay_cli`]: the `network` commands on overlay networks;
//! - [`vxlan`]: the overlay's data path on one host: bridge, VXLAN device, FDB and neighbours;
//! - [`xfrm`]: encrypted overlay networks: IPsec ESP between hosts, through xfrm netlink;
//! - [`feature`]: the hooks into the launch sequence;
//! - [`cli`]: `run --network/-p/--name/--ip` and the `network` commands.
pub mod cli;
pub mod dns;
pub mod etcd;
pub mod feature;
pub mod firewall;
pub mod hosts;
pub mod ipam;
pub mod netlink;
pub mod nft;
pub mod overlay;
pub mod overlay_agent;
pub mod overlay_attach;
pub mod overlay_cli;
pub mod store;
pub mod vxlan;
pub mod xfrm;
