//! IP address management (IPAM): which addresses a network owns, and which container gets which.
//!
//! A network's addresses are an IPv4 *subnet* written in CIDR notation, `10.88.0.0/16`: the first
//! 16 bits name the network, the other 16 number its hosts. The first and last addresses are the
//! network and broadcast addresses and are never handed out; the first host address,
//! `10.88.0.1`, is the *gateway* (the bridge's own address, the containers' default route), and
//! containers get the following ones in order, `10.88.0.2`, `10.88.0.3`, … exactly as Docker's
//! default IPAM driver does. A released address is handed out again, lowest first.
//!
//! Every container interface also needs a MAC address. Docker derives it from the IP address,
//! `02:42` followed by the four address bytes (`10.88.0.2` → `02:42:0a:58:00:02`): `02` marks a
//! locally administered unicast address, so it can never clash with a real network card's.
//!
//! The allocation state is simply the set of addresses the network's endpoints hold; the
//! [`store`](crate::store) keeps it in the network's file. See ip-address(7) for the notation and
//! RFC 1918 for the private ranges skiff uses.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What can go wrong with subnets and addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// The text is not `A.B.C.D/N`, or names a subnet skiff cannot use.
    #[error("invalid subnet {text:?}: {reason}")]
    InvalidSubnet {
        /// What the user wrote.
        text: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// An address that should be IPv4 is not.
    #[error("invalid IPv4 address {text:?}: expected A.B.C.D")]
    InvalidAddress {
        /// What the user wrote.
        text: String,
    },
    /// A gateway or a requested address lies outside the network's subnet.
    #[error("address {ip} does not belong to subnet {subnet}: pick one inside it")]
    NotInSubnet {
        /// The address.
        ip: Ipv4Addr,
        /// The network's subnet.
        subnet: Subnet,
    },
    /// A requested address is the network or broadcast address, or the gateway.
    #[error("address {ip} is reserved in subnet {subnet} ({what}): pick another one")]
    Reserved {
        /// The address.
        ip: Ipv4Addr,
        /// The network's subnet.
        subnet: Subnet,
        /// Which reserved address it is.
        what: &'static str,
    },
    /// A requested address is held by another container.
    #[error("address {ip} is already in use on subnet {subnet}: pick another one or leave it out")]
    InUse {
        /// The address.
        ip: Ipv4Addr,
        /// The network's subnet.
        subnet: Subnet,
    },
    /// An address that should be IPv6 is not.
    #[error("invalid IPv6 address {text:?}: expected e.g. fd00:50::10")]
    InvalidAddress6 {
        /// What the user wrote.
        text: String,
    },
    /// A requested IPv6 address is outside the subnet, or reserved in it.
    #[error(
        "address {ip} cannot be used in subnet {subnet}: it is outside it, its `::` or the gateway"
    )]
    Unusable6 {
        /// The address.
        ip: Ipv6Addr,
        /// The network's IPv6 subnet.
        subnet: Subnet6,
    },
    /// A requested IPv6 address is held by another container.
    #[error("address {ip} is already in use on subnet {subnet}: pick another one or leave it out")]
    InUse6 {
        /// The address.
        ip: Ipv6Addr,
        /// The network's IPv6 subnet.
        subnet: Subnet6,
    },
    /// No IPv6 address left.
    #[error(
        "no available IPv6 addresses in subnet {subnet}: remove a container or use a larger subnet"
    )]
    Exhausted6 {
        /// The network's IPv6 subnet.
        subnet: Subnet6,
    },
    /// Every host address of the subnet is taken.
    #[error(
        "no available IPv4 addresses in subnet {subnet}: remove a container or use a larger subnet"
    )]
    Exhausted {
        /// The network's subnet.
        subnet: Subnet,
    },
}

/// An IPv4 subnet: a network address and a prefix length (`10.88.0.0/16`).
///
/// The host bits of the network address are zero (checked when parsing) and the prefix is at
/// most 30, so that the subnet holds a gateway and at least one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

/// The longest prefix skiff accepts: a /30 has two host addresses, the gateway and one container.
pub const MAX_PREFIX: u8 = 30;

impl Subnet {
    /// The subnet `network/prefix`; fails when the prefix is longer than [`MAX_PREFIX`] or the
    /// address has host bits set (`10.88.0.1/16` means `10.88.0.0/16`, and saying so is clearer
    /// than guessing).
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Subnet, IpamError> {
        let invalid = |reason: String| IpamError::InvalidSubnet {
            text: format!("{network}/{prefix}"),
            reason,
        };
        if prefix > MAX_PREFIX {
            return Err(invalid(format!(
                "a /{prefix} leaves no room for a gateway and a container: use /{MAX_PREFIX} or shorter"
            )));
        }
        let subnet = Subnet { network, prefix };
        let base = Ipv4Addr::from(u32::from(network) & subnet.mask());
        if base != network {
            return Err(invalid(format!(
                "host bits are set: did you mean {base}/{prefix}?"
            )));
        }
        Ok(subnet)
    }

    /// The subnet `a.b.c.d/prefix` when it is valid, usable in constants.
    pub const fn from_octets(octets: [u8; 4], prefix: u8) -> Option<Subnet> {
        if prefix > MAX_PREFIX {
            return None;
        }
        let bits = u32::from_be_bytes(octets);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix as u32)
        };
        if bits & mask != bits {
            return None;
        }
        let [a, b, c, d] = octets;
        Some(Subnet {
            network: Ipv4Addr::new(a, b, c, d),
            prefix,
        })
    }

    /// Parses `A.B.C.D/N`.
    pub fn parse(text: &str) -> Result<Subnet, IpamError> {
        let expected = || IpamError::InvalidSubnet {
            text: text.to_string(),
            reason: "expected A.B.C.D/N".into(),
        };
        let (address, prefix) = text.split_once('/').ok_or_else(expected)?;
        let network = Ipv4Addr::from_str(address).map_err(|_| expected())?;
        // `u8::from_str` accepts "+8"; CIDR does not.
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(expected());
        }
        let prefix: u8 = prefix.parse().map_err(|_| expected())?;
        if prefix > 32 {
            return Err(IpamError::InvalidSubnet {
                text: text.to_string(),
                reason: "the prefix length must be 32 or less".into(),
            });
        }
        Subnet::new(network, prefix).map_err(|e| match e {
            IpamError::InvalidSubnet { reason, .. } => IpamError::InvalidSubnet {
                text: text.to_string(),
                reason,
            },
            other => other,
        })
    }

    /// The network address (`10.88.0.0`).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length (`16`).
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a number (`0xffff0000` for a /16).
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The netmask as an address (`255.255.0.0`).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }

    /// The broadcast address, the last of the subnet (`10.88.255.255`).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The default gateway: the first host address (`10.88.0.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `ip` lies in the subnet (network and broadcast addresses included).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Whether the two subnets share any address (one then contains the other).
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The host addresses, lowest first: every address but the network and broadcast ones.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        let first = u32::from(self.network) + 1;
        let last = u32::from(self.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from)
    }

    /// How many host addresses the subnet has.
    pub fn host_count(&self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix))) - 2
    }

    /// Checks that `gateway` can be this subnet's gateway: inside it, and a host address.
    pub fn check_gateway(&self, gateway: Ipv4Addr) -> Result<(), IpamError> {
        if !self.contains(gateway) {
            return Err(IpamError::NotInSubnet {
                ip: gateway,
                subnet: *self,
            });
        }
        self.check_host(gateway)
    }

    /// Refuses the network and broadcast addresses.
    fn check_host(&self, ip: Ipv4Addr) -> Result<(), IpamError> {
        let what = if ip == self.network {
            "the network address"
        } else if ip == self.broadcast() {
            "the broadcast address"
        } else {
            return Ok(());
        };
        Err(IpamError::Reserved {
            ip,
            subnet: *self,
            what,
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;
    fn from_str(text: &str) -> Result<Subnet, IpamError> {
        Subnet::parse(text)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Subnet, D::Error> {
        let text = String::deserialize(deserializer)?;
        Subnet::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses an IPv4 address a user gave (`--ip`, `--gateway`), with an error naming it.
pub fn parse_ip(text: &str) -> Result<Ipv4Addr, IpamError> {
    Ipv4Addr::from_str(text).map_err(|_| IpamError::InvalidAddress {
        text: text.to_string(),
    })
}

// ANCHOR: subnet6
/// An IPv6 subnet (`fd00:50::/64`), the second subnet of a network created with `--ipv6`.
///
/// IPv6 has no broadcast address; Docker's default IPAM gives the gateway the subnet's `::1`
/// and the containers the following addresses in order (`::2`, `::3`, ...), as for IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet6 {
    network: Ipv6Addr,
    prefix: u8,
}

impl Subnet6 {
    /// Parses `ADDR/N`; the host bits must be zero and the prefix leave room for a gateway and
    /// a container (at most /126).
    pub fn parse(text: &str) -> Result<Subnet6, IpamError> {
        let invalid = |reason: &str| IpamError::InvalidSubnet {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected ADDR/PREFIX, e.g. fd00:50::/64"))?;
        let network: Ipv6Addr = addr
            .parse()
            .map_err(|_| invalid("the address is not IPv6"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=126).contains(p))
            .ok_or_else(|| invalid("the prefix length must be 1 to 126"))?;
        let subnet = Subnet6 { network, prefix };
        if subnet.mask() & u128::from(network) != u128::from(network) {
            return Err(invalid(
                "host bits are set: write the subnet's first address",
            ));
        }
        Ok(subnet)
    }

    fn mask(&self) -> u128 {
        u128::MAX << (128 - u32::from(self.prefix))
    }

    /// The network address (`fd00:50::`).
    pub fn network(&self) -> Ipv6Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// The default gateway: the subnet's `::1`.
    pub fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The lowest address from `::2` up that is neither the gateway nor in `used`.
    pub fn allocate(
        &self,
        gateway: Ipv6Addr,
        used: &BTreeSet<Ipv6Addr>,
    ) -> Result<Ipv6Addr, IpamError> {
        let last = u128::from(self.network) | !self.mask();
        (u128::from(self.network) + 2..=last)
            .map(Ipv6Addr::from)
            .find(|ip| *ip != gateway && !used.contains(ip))
            .ok_or(IpamError::Exhausted6 { subnet: *self })
    }

    /// Checks a requested address (`--ip6`): inside, not the subnet-router anycast address
    /// (`::`), not the gateway, not taken.
    pub fn request(
        &self,
        ip: Ipv6Addr,
        gateway: Ipv6Addr,
        used: &BTreeSet<Ipv6Addr>,
    ) -> Result<Ipv6Addr, IpamError> {
        if !self.contains(ip) || ip == self.network || ip == gateway {
            return Err(IpamError::Unusable6 { ip, subnet: *self });
        }
        if used.contains(&ip) {
            return Err(IpamError::InUse6 { ip, subnet: *self });
        }
        Ok(ip)
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Subnet6 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet6 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Subnet6, D::Error> {
        let text = String::deserialize(deserializer)?;
        Subnet6::parse(&text).map_err(serde::de::Error::custom)
    }
}
// ANCHOR_END: subnet6

/// Parses an IPv6 address a user gave (`--ip6`).
pub fn parse_ip6(text: &str) -> Result<Ipv6Addr, IpamError> {
    Ipv6Addr::from_str(text).map_err(|_| IpamError::InvalidAddress6 {
        text: text.to_string(),
    })
}

// ANCHOR: allocator
/// Hands out a network's addresses: the lowest free host address that is not the gateway.
///
/// The allocator holds no state of its own beyond the set of used addresses, which the caller
/// reads from the network's endpoints and writes back after a change, under the store's lock.
#[derive(Debug, Clone)]
pub struct Allocator {
    subnet: Subnet,
    gateway: Ipv4Addr,
    used: BTreeSet<Ipv4Addr>,
    range: Option<Subnet>,
}

impl Allocator {
    /// An allocator for `subnet` with `gateway` reserved and `used` already taken.
    pub fn new(
        subnet: Subnet,
        gateway: Ipv4Addr,
        used: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Allocator {
        Allocator {
            subnet,
            gateway,
            used: used.into_iter().collect(),
            range: None,
        }
    }

    /// Hands out addresses of `range` only (`--ip-range`), when there is one; `--ip` may still
    /// ask for any address of the subnet.
    pub fn within(mut self, range: Option<Subnet>) -> Allocator {
        self.range = range;
        self
    }

    /// Takes the lowest free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let pool = self.range.unwrap_or(self.subnet);
        let free = pool
            .hosts()
            .find(|ip| {
                *ip != self.gateway
                    && !self.used.contains(ip)
                    && self.subnet.check_host(*ip).is_ok()
            })
            .ok_or(IpamError::Exhausted { subnet: pool })?;
        self.used.insert(free);
        Ok(free)
    }

    /// Takes a specific address (`--ip`): it must be a host address of the subnet, not the
    /// gateway, and free.
    pub fn request(&mut self, ip: Ipv4Addr) -> Result<Ipv4Addr, IpamError> {
        let subnet = self.subnet;
        if !subnet.contains(ip) {
            return Err(IpamError::NotInSubnet { ip, subnet });
        }
        subnet.check_host(ip)?;
        if ip == self.gateway {
            return Err(IpamError::Reserved {
                ip,
                subnet,
                what: "the gateway",
            });
        }
        if !self.used.insert(ip) {
            return Err(IpamError::InUse { ip, subnet });
        }
        Ok(ip)
    }

    /// Gives `ip` back; returns whether it was taken.
    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        self.used.remove(&ip)
    }
}
// ANCHOR_END: allocator

impl Allocator {
    /// Whether `ip` is taken.
    pub fn is_used(&self, ip: Ipv4Addr) -> bool {
        self.used.contains(&ip)
    }

    /// The taken addresses, lowest first.
    pub fn used(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.used.iter().copied()
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Docker's MAC for a container address: `02:42` and the four address bytes.
    pub fn for_ip(ip: Ipv4Addr) -> Mac {
        let [a, b, c, d] = ip.octets();
        Mac([0x02, 0x42, a, b, c, d])
    }

    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Parses `aa:bb:cc:dd:ee:ff`.
    pub fn parse(text: &str) -> Option<Mac> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next()?;
            if part.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(bytes))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Mac, D::Error> {
        let text = String::deserialize(deserializer)?;
        Mac::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid MAC address {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_subnets_hand_out_addresses_after_the_gateway() {
        let subnet = Subnet6::parse("fd00:50::/64").unwrap();
        assert_eq!(subnet.gateway(), "fd00:50::1".parse::<Ipv6Addr>().unwrap());
        let mut used = BTreeSet::new();
        let first = subnet.allocate(subnet.gateway(), &used).unwrap();
        assert_eq!(first.to_string(), "fd00:50::2");
        used.insert(first);
        assert_eq!(
            subnet
                .allocate(subnet.gateway(), &used)
                .unwrap()
                .to_string(),
            "fd00:50::3"
        );
        let wanted: Ipv6Addr = "fd00:50::99".parse().unwrap();
        assert_eq!(subnet.request(wanted, subnet.gateway(), &used), Ok(wanted));
        assert!(subnet.request(first, subnet.gateway(), &used).is_err());
        assert!(
            subnet
                .request(subnet.gateway(), subnet.gateway(), &used)
                .is_err()
        );
        assert!(
            subnet
                .request("fd00:51::2".parse().unwrap(), subnet.gateway(), &used)
                .is_err()
        );
        assert!(Subnet6::parse("fd00:50::1/64").is_err());
        assert!(Subnet6::parse("10.0.0.0/8").is_err());
        assert!(Subnet6::parse("fd00:50::/127").is_err());
        let small = Subnet6::parse("fd00:50::/126").unwrap();
        let used = BTreeSet::from(["fd00:50::2".parse().unwrap(), "fd00:50::3".parse().unwrap()]);
        assert!(small.allocate(small.gateway(), &used).is_err());
        assert!(subnet.overlaps(&Subnet6::parse("fd00:50::/96").unwrap()));
        assert!(!subnet.overlaps(&Subnet6::parse("fd00:51::/64").unwrap()));
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().expect("test address")
    }

    fn subnet(text: &str) -> Subnet {
        Subnet::parse(text).expect("test subnet")
    }

    #[test]
    fn ipam_parses_subnets() {
        let s = subnet("10.88.0.0/16");
        assert_eq!(s.network(), ip("10.88.0.0"));
        assert_eq!(s.prefix_len(), 16);
        assert_eq!(s.netmask(), ip("255.255.0.0"));
        assert_eq!(s.broadcast(), ip("10.88.255.255"));
        assert_eq!(s.gateway(), ip("10.88.0.1"));
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.host_count(), 65534);
        assert_eq!(subnet("0.0.0.0/0").netmask(), ip("0.0.0.0"));
        assert_eq!(subnet("192.168.1.252/30").host_count(), 2);
    }

    #[test]
    fn ipam_refuses_bad_subnets() {
        for bad in [
            "10.88.0/16",
            "10.88.0.0",
            "10.88.0.0/",
            "10.88.0.0/+8",
            "10.88.0.0/x",
            "/16",
            "",
            "10.88.0.256/24",
        ] {
            assert_eq!(
                Subnet::parse(bad).unwrap_err().to_string(),
                format!("invalid subnet {bad:?}: expected A.B.C.D/N"),
            );
        }
        assert_eq!(
            Subnet::parse("10.88.0.1/16").unwrap_err().to_string(),
            "invalid subnet \"10.88.0.1/16\": host bits are set: did you mean 10.88.0.0/16?"
        );
        assert!(
            Subnet::parse("10.0.0.0/33")
                .unwrap_err()
                .to_string()
                .contains("32 or less")
        );
        assert!(
            Subnet::parse("10.0.0.0/31")
                .unwrap_err()
                .to_string()
                .contains("use /30 or shorter")
        );
    }

    #[test]
    fn ipam_subnets_contain_and_overlap() {
        let s = subnet("10.89.3.0/24");
        assert!(s.contains(ip("10.89.3.0")));
        assert!(s.contains(ip("10.89.3.255")));
        assert!(!s.contains(ip("10.89.4.0")));
        assert!(s.overlaps(&subnet("10.89.0.0/16")));
        assert!(subnet("10.89.0.0/16").overlaps(&s));
        assert!(s.overlaps(&s));
        assert!(!s.overlaps(&subnet("10.89.4.0/24")));
        assert!(!subnet("10.88.0.0/16").overlaps(&subnet("10.89.0.0/16")));
    }

    #[test]
    fn ipam_iterates_hosts() {
        let hosts: Vec<_> = subnet("10.0.0.0/29").hosts().collect();
        assert_eq!(hosts.first(), Some(&ip("10.0.0.1")));
        assert_eq!(hosts.last(), Some(&ip("10.0.0.6")));
        assert_eq!(hosts.len(), 6);
    }

    #[test]
    fn a_range_narrows_the_pool_and_aux_addresses_stay_free() {
        let s: Subnet = "10.0.0.0/24".parse().unwrap();
        let range: Subnet = "10.0.0.128/25".parse().unwrap();
        let mut a = Allocator::new(s, s.gateway(), [ip("10.0.0.129")]).within(Some(range));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.130"));
        // --ip may still ask outside the range.
        assert_eq!(a.request(ip("10.0.0.7")).unwrap(), ip("10.0.0.7"));
    }

    #[test]
    fn ipam_allocates_in_order_after_the_gateway() {
        let s = subnet("10.89.0.0/24");
        let mut a = Allocator::new(s, s.gateway(), []);
        assert_eq!(a.allocate(), Ok(ip("10.89.0.2")));
        assert_eq!(a.allocate(), Ok(ip("10.89.0.3")));
        assert_eq!(a.allocate(), Ok(ip("10.89.0.4")));
        // Released addresses come back, lowest first.
        assert!(a.release(ip("10.89.0.3")));
        assert!(!a.release(ip("10.89.0.3")));
        assert_eq!(a.allocate(), Ok(ip("10.89.0.3")));
        assert_eq!(a.allocate(), Ok(ip("10.89.0.5")));
        assert_eq!(a.used().count(), 4);
    }

    #[test]
    fn ipam_skips_a_custom_gateway_and_used_addresses() {
        let s = subnet("10.0.0.0/29");
        let mut a = Allocator::new(s, ip("10.0.0.3"), [ip("10.0.0.1")]);
        assert_eq!(a.allocate(), Ok(ip("10.0.0.2")));
        assert_eq!(a.allocate(), Ok(ip("10.0.0.4")));
        assert_eq!(a.allocate(), Ok(ip("10.0.0.5")));
        assert_eq!(a.allocate(), Ok(ip("10.0.0.6")));
        assert_eq!(a.allocate(), Err(IpamError::Exhausted { subnet: s }));
        assert!(a.is_used(ip("10.0.0.6")));
    }

    #[test]
    fn ipam_grants_requested_addresses() {
        let s = subnet("10.89.0.0/24");
        let mut a = Allocator::new(s, s.gateway(), []);
        assert_eq!(a.request(ip("10.89.0.9")), Ok(ip("10.89.0.9")));
        let err = a.request(ip("10.89.0.9")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 10.89.0.9 is already in use on subnet 10.89.0.0/24: pick another one or leave it out"
        );
        let err = a.request(ip("10.89.1.9")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 10.89.1.9 does not belong to subnet 10.89.0.0/24: pick one inside it"
        );
        let err = a.request(ip("10.89.0.1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 10.89.0.1 is reserved in subnet 10.89.0.0/24 (the gateway): pick another one"
        );
        assert!(matches!(
            a.request(ip("10.89.0.255")),
            Err(IpamError::Reserved {
                what: "the broadcast address",
                ..
            })
        ));
        assert!(matches!(
            a.request(ip("10.89.0.0")),
            Err(IpamError::Reserved {
                what: "the network address",
                ..
            })
        ));
        // Allocation goes around requested addresses.
        assert_eq!(a.allocate(), Ok(ip("10.89.0.2")));
    }

    #[test]
    fn ipam_checks_gateways() {
        let s = subnet("10.89.0.0/24");
        assert!(s.check_gateway(ip("10.89.0.254")).is_ok());
        assert!(s.check_gateway(ip("10.89.1.1")).is_err());
        assert!(s.check_gateway(ip("10.89.0.0")).is_err());
        assert_eq!(
            parse_ip("10.1").unwrap_err().to_string(),
            "invalid IPv4 address \"10.1\": expected A.B.C.D"
        );
    }

    #[test]
    fn ipam_macs_follow_docker() {
        let mac = Mac::for_ip(ip("172.17.0.2"));
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        assert_eq!(Mac::parse("02:42:ac:11:00:02"), Some(mac));
        assert_eq!(Mac::parse("02:42:ac:11:00"), None);
        assert_eq!(Mac::parse("02:42:ac:11:00:02:03"), None);
        assert_eq!(Mac::parse("02:42:ac:11:00:zz"), None);
        assert_eq!(
            Mac::for_ip(ip("10.88.0.2")).octets(),
            [2, 0x42, 10, 88, 0, 2]
        );
    }

    #[test]
    fn ipam_subnets_and_macs_round_trip_through_json() {
        let s = subnet("10.89.7.0/24");
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(json, "\"10.89.7.0/24\"");
        assert_eq!(serde_json::from_str::<Subnet>(&json).ok(), Some(s));
        assert!(serde_json::from_str::<Subnet>("\"10.89.7.1/24\"").is_err());
        let mac = Mac::for_ip(ip("10.89.7.2"));
        let json = serde_json::to_string(&mac).expect("serialize");
        assert_eq!(serde_json::from_str::<Mac>(&json).ok(), Some(mac));
    }
}
