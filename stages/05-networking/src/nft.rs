//! nftables through netlink: skiff's firewall rules without a process per change.
//!
//! iptables(8) is a program: every change is a fork and an exec, and iptables-nft then reads the
//! whole ruleset from the kernel, edits it, and writes it back. At one container per run that
//! was most of the time a container on the default bridge took to start. nftables is the
//! kernel's rule engine behind both: a program speaks to it over a netlink socket
//! (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_NFTABLES`), and so can skiff, directly.
//!
//! The model, as `nft list table ip skiff` prints it:
//!
//! ```text
//! table ip skiff {                                       ◀ skiff's own table: nothing else in it
//!     chain postrouting { type nat hook postrouting priority srcnat; ... masquerade }
//!     chain prerouting  { type nat hook prerouting priority dstnat;  ... dnat to 10.88.0.2:80 }
//!     chain output      { type nat hook output priority dstnat;      ... dnat to 10.88.0.2:80 }
//!     chain forward     { type filter hook forward priority filter;  ... jump isolation }
//!     chain input       { type filter hook input priority filter;    ... drop }
//!     chain isolation   { oifname "sk-..." drop }            ◀ a regular chain, reached by jump
//! }
//! ```
//!
//! A **table** holds chains; a **base chain** is hooked into one of the kernel's netfilter hooks
//! (prerouting, input, forward, output, postrouting) at a priority; a **rule** is a list of
//! **expressions** run in order over registers: `meta` loads the input interface's name into a
//! register, `cmp` compares it and stops the rule when it does not match, `payload` loads bytes
//! of a header, `bitwise` masks them, `nat` and `masq` rewrite addresses, `immediate` sets the
//! verdict. Every tool that "writes nftables rules" (nft, iptables-nft, firewalld) compiles
//! into these messages.
//!
//! Changes go in a **batch** (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`), which the kernel
//! applies as one transaction: all of it or none. Each rule carries a comment in its user data
//! (the same TLV nft writes for `comment "..."`): `skiff-net-<id>` or `skiff-ctr-<id>`, so a
//! network's or a container's rules are found by listing the table, and removed by handle.
//!
//! Because skiff's table is its own, an `accept` in it cannot overrule a `drop` in another table
//! (every base chain on a hook runs, and a drop anywhere is final): on a host whose iptables
//! FORWARD policy is DROP (a Docker host), forwarded container traffic needs iptables rules, and
//! skiff uses its iptables backend there (see the firewall module). skiff's own drops, on the
//! other hand, hold whatever other tables accept.
//!
//! See nft(8), the kernel's `include/uapi/linux/netfilter/nf_tables.h` (every attribute below),
//! netlink(7), and the nftables wiki's "Netlink" pages.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

/// What can go wrong talking to nf_tables.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The socket could not be opened or used.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a message.
    #[error("{op}: the kernel answered: {source}")]
    Refused {
        /// What was being done.
        op: String,
        /// The error it sent back.
        #[source]
        source: io::Error,
    },
    /// A reply that does not parse.
    #[error("{op}: unexpected reply: {reason}")]
    Decode {
        /// What was being done.
        op: String,
        /// What is wrong with it.
        reason: String,
    },
}

type Result<T> = std::result::Result<T, NftError>;

// --- the kernel's numbers (include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h) -------------

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFPROTO_IPV4: u8 = 2;
/// The `ip6` family: tables that see IPv6 packets only.
const NFPROTO_IPV6: u8 = 10;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// nft's user-data type for a rule's comment (libnftnl's NFTNL_UDATA_RULE_COMMENT).
const UDATA_RULE_COMMENT: u8 = 0;

/// Registers: the verdict, and two of the four 16-byte data registers.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFT_JUMP: i32 = -3;

/// The family of a table: nft's `table ip` (IPv4 packets only) or `table ip6` (IPv6 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `ip`: IPv4.
    Ip,
    /// `ip6`: IPv6.
    Ip6,
}

impl Family {
    /// The family as the kernel numbers it in a message's nfgenmsg (`NFPROTO_*`).
    fn nfproto(self) -> u8 {
        match self {
            Family::Ip => NFPROTO_IPV4,
            Family::Ip6 => NFPROTO_IPV6,
        }
    }
}

/// The five hooks of an IPv4 packet's way through the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Every packet that arrives, before routing (where DNAT happens).
    Prerouting = 0,
    /// Packets for this host.
    Input = 1,
    /// Packets routed through this host.
    Forward = 2,
    /// Packets this host sends.
    Output = 3,
    /// Every packet that leaves, after routing (where masquerading happens).
    Postrouting = 4,
}

/// A chain of a table: hooked (a base chain: type, hook, priority) or reached by jumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// Its name.
    pub name: &'static str,
    /// `(type, hook, priority)` of a base chain; `None` for a regular one.
    pub base: Option<(&'static str, Hook, i32)>,
}

// ANCHOR: expressions
/// One expression of a rule: what nft's `iifname "br0"` or `dnat to 10.88.0.2:80` compiles to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `meta KEY` into register 1 (6 iifname, 7 oifname, 16 l4proto).
    Meta(u32),
    /// Compare register 1 (equal, or with `false`, not equal) with these bytes.
    Cmp(bool, Vec<u8>),
    /// `LEN` bytes at `OFFSET` of the network (1) or transport (2) header into register 1.
    Payload(u32, u32, u32),
    /// Register 1 AND the mask (XOR nothing), back into register 1.
    Bitwise(Vec<u8>),
    /// `ct KEY` (0 state, 2 status) into register 1.
    Ct(u32),
    /// `fib daddr type` into register 1: the kind of route the destination has (2, local).
    FibDaddrType,
    /// Destination NAT to the address in register 1 and the port in register 2.
    Dnat(Ipv4Addr, u16),
    /// The same to an IPv6 address (16 bytes in registers 1 to 4), in an `ip6` table.
    Dnat6(Ipv6Addr, u16),
    /// Source NAT to the address of the interface the packet leaves by.
    Masquerade,
    /// Stop here and drop the packet.
    Drop,
    /// Stop here and accept it (for this chain).
    Accept,
    /// Go on in another chain of the table, then come back.
    Jump(&'static str),
}
// ANCHOR_END: expressions

/// nft's `iifname`/`oifname` as expressions: the name, NUL-padded to IFNAMSIZ.
pub fn ifname(outgoing: bool, equal: bool, name: &str) -> [Expr; 2] {
    let mut bytes = name.as_bytes().to_vec();
    bytes.resize(16, 0);
    [
        Expr::Meta(if outgoing { 7 } else { 6 }),
        Expr::Cmp(equal, bytes),
    ]
}

/// `ip saddr`/`ip daddr` within `network/prefix`: in the IPv4 header the source address is the
/// 4 bytes at offset 12, the destination the 4 at offset 16.
pub fn addr_in(source: bool, network: Ipv4Addr, prefix: u8) -> Vec<Expr> {
    prefix_match(if source { 12 } else { 16 }, &network.octets(), prefix)
}

// ANCHOR: addr6_in
/// `ip6 saddr`/`ip6 daddr` within `network/prefix`: in the IPv6 header the source address is
/// the 16 bytes at offset 8, the destination the 16 at offset 24.
pub fn addr6_in(source: bool, network: Ipv6Addr, prefix: u8) -> Vec<Expr> {
    prefix_match(if source { 8 } else { 24 }, &network.octets(), prefix)
}
// ANCHOR_END: addr6_in

/// The network header's address at `offset`, masked to its first `prefix` bits, compared with
/// `address` masked the same way (no mask for a whole address).
fn prefix_match(offset: u32, address: &[u8], prefix: u8) -> Vec<Expr> {
    let mut bits = usize::from(prefix);
    let mask: Vec<u8> = address
        .iter()
        .map(|_| {
            let take = bits.min(8);
            bits -= take;
            u8::MAX
                .checked_shl(u32::try_from(8 - take).unwrap_or(8))
                .unwrap_or(0)
        })
        .collect();
    let masked: Vec<u8> = address.iter().zip(&mask).map(|(a, m)| a & m).collect();
    let mut exprs = vec![Expr::Payload(
        1,
        offset,
        u32::try_from(address.len()).unwrap_or(0),
    )];
    if usize::from(prefix) < address.len() * 8 {
        exprs.push(Expr::Bitwise(mask));
    }
    exprs.push(Expr::Cmp(true, masked));
    exprs
}

/// `meta l4proto P th dport PORT`.
pub fn dport(protocol: u8, port: u16) -> [Expr; 4] {
    [
        Expr::Meta(16),
        Expr::Cmp(true, vec![protocol]),
        Expr::Payload(2, 2, 2),
        Expr::Cmp(true, port.to_be_bytes().to_vec()),
    ]
}

/// A rule to add: its chain, its expressions, and the comment that says whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// The chain.
    pub chain: &'static str,
    /// What it matches and does.
    pub exprs: Vec<Expr>,
    /// Its comment: `skiff-net-…`, `skiff-ctr-…`.
    pub comment: String,
}

/// A rule that is in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its chain.
    pub chain: String,
    /// The kernel's handle for it, to delete it by.
    pub handle: u64,
    /// Its comment, if it has one.
    pub comment: Option<String>,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create the table if it is missing.
    AddTable,
    /// Create the chain if it is missing.
    AddChain(ChainSpec),
    /// Append a rule.
    AddRule(NewRule),
    /// Delete a rule by handle.
    DeleteRule(String, u64),
    /// Delete the table, with its chains and rules.
    DeleteTable,
}

// --- encoding ----------------------------------------------------------------------------------

/// Netlink attributes, written into a buffer (type-length-value, 4-byte aligned).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }

    /// A string, NUL-terminated as the kernel's NLA_STRING policies expect from nft.
    fn string(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.put(kind, &bytes)
    }

    /// A 32-bit number: nf_tables wants them in network byte order.
    fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.put(kind, &value.to_be_bytes())
    }

    fn nested(&mut self, kind: u16, inner: Attrs) -> &mut Self {
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}

fn data_value(bytes: &[u8]) -> Attrs {
    let mut data = Attrs::default();
    data.put(NFTA_DATA_VALUE, bytes);
    data
}

fn verdict(code: u32, chain: Option<&str>) -> Attrs {
    let mut verdict = Attrs::default();
    verdict.be32(NFTA_VERDICT_CODE, code);
    if let Some(chain) = chain {
        verdict.string(NFTA_VERDICT_CHAIN, chain);
    }
    let mut data = Attrs::default();
    data.nested(NFTA_DATA_VERDICT, verdict);
    data
}

fn immediate(register: u32, data: Attrs) -> (&'static str, Attrs) {
    let mut attrs = Attrs::default();
    attrs.be32(1, register).nested(2, data);
    ("immediate", attrs)
}

// ANCHOR: encode_expr
/// One expression as the kernel reads it: its name and its attributes (the numbers are each
/// expression's NFTA_*_ enum: NFTA_META_DREG = 1, NFTA_META_KEY = 2, and so on).
fn encode_expr(expr: &Expr) -> Vec<(&'static str, Attrs)> {
    let mut a = Attrs::default();
    let one = match expr {
        Expr::Meta(key) => {
            a.be32(1, REG_1).be32(2, *key);
            ("meta", a)
        }
        Expr::Cmp(equal, bytes) => {
            a.be32(1, REG_1)
                .be32(2, if *equal { 0 } else { 1 })
                .nested(3, data_value(bytes));
            ("cmp", a)
        }
        Expr::Payload(base, offset, len) => {
            a.be32(1, REG_1)
                .be32(2, *base)
                .be32(3, *offset)
                .be32(4, *len);
            ("payload", a)
        }
        Expr::Bitwise(mask) => {
            let len = u32::try_from(mask.len()).unwrap_or(0);
            a.be32(1, REG_1)
                .be32(2, REG_1)
                .be32(3, len)
                .nested(4, data_value(mask))
                .nested(5, data_value(&vec![0; mask.len()]));
            ("bitwise", a)
        }
        Expr::Ct(key) => {
            a.be32(1, REG_1).be32(2, *key);
            ("ct", a)
        }
        Expr::FibDaddrType => {
            // NFTA_FIB_RESULT 3 = address type; NFTA_FIB_FLAGS 2 = look up the destination.
            a.be32(1, REG_1).be32(2, 3).be32(3, 2);
            ("fib", a)
        }
        Expr::Dnat(ip, port) => {
            let mut nat = Attrs::default();
            // NFT_NAT_DNAT 1, family, the registers holding the address and the port.
            nat.be32(1, 1)
                .be32(2, u32::from(NFPROTO_IPV4))
                .be32(3, REG_1)
                .be32(5, REG_2);
            return vec![
                immediate(REG_1, data_value(&ip.octets())),
                immediate(REG_2, data_value(&port.to_be_bytes())),
                ("nat", nat),
            ];
        }
        Expr::Dnat6(ip, port) => {
            let mut nat = Attrs::default();
            nat.be32(1, 1)
                .be32(2, u32::from(NFPROTO_IPV6))
                .be32(3, REG_1)
                .be32(5, REG_2);
            return vec![
                immediate(REG_1, data_value(&ip.octets())),
                immediate(REG_2, data_value(&port.to_be_bytes())),
                ("nat", nat),
            ];
        }
        Expr::Masquerade => ("masq", a),
        Expr::Drop => immediate(REG_VERDICT, verdict(NF_DROP, None)),
        Expr::Accept => immediate(REG_VERDICT, verdict(NF_ACCEPT, None)),
        Expr::Jump(chain) => immediate(REG_VERDICT, verdict(NFT_JUMP as u32, Some(chain))),
    };
    vec![one]
}
// ANCHOR_END: encode_expr

/// A rule's comment as nft stores it in the rule's user data: type, length, text and a NUL.
fn comment_udata(comment: &str) -> Vec<u8> {
    let text = &comment.as_bytes()[..comment.len().min(250)];
    let mut data = vec![
        UDATA_RULE_COMMENT,
        u8::try_from(text.len() + 1).unwrap_or(0),
    ];
    data.extend_from_slice(text);
    data.push(0);
    data
}

/// Reads the comment back out of a rule's user data.
fn udata_comment(mut data: &[u8]) -> Option<String> {
    while data.len() >= 2 {
        let (kind, len) = (data[0], usize::from(data[1]));
        let value = data.get(2..2 + len)?;
        if kind == UDATA_RULE_COMMENT {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        data = &data[2 + len..];
    }
    None
}

/// One netlink message: header, nfgenmsg (family, version 0, resource id), attributes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &Attrs) -> Vec<u8> {
    let len = 16 + 4 + attrs.0.len();
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&seq.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.extend_from_slice(&[family, 0]);
    bytes.extend_from_slice(&res_id.to_be_bytes());
    bytes.extend_from_slice(&attrs.0);
    bytes
}

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// The message that makes `change` in table `table`.
fn encode_change(table: &str, change: &Change, seq: u32, family: u8) -> Vec<u8> {
    let mut attrs = Attrs::default();
    let (msg, flags) = match change {
        Change::AddTable => {
            attrs.string(NFTA_TABLE_NAME, table);
            (NFT_MSG_NEWTABLE, NLM_F_CREATE)
        }
        Change::DeleteTable => {
            attrs.string(NFTA_TABLE_NAME, table);
            (NFT_MSG_DELTABLE, 0)
        }
        Change::AddChain(spec) => {
            attrs
                .string(NFTA_CHAIN_TABLE, table)
                .string(NFTA_CHAIN_NAME, spec.name);
            if let Some((kind, hook, priority)) = spec.base {
                let mut h = Attrs::default();
                h.be32(NFTA_HOOK_HOOKNUM, hook as u32)
                    .be32(NFTA_HOOK_PRIORITY, priority as u32);
                attrs
                    .nested(NFTA_CHAIN_HOOK, h)
                    .be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
                    .string(NFTA_CHAIN_TYPE, kind);
            }
            (NFT_MSG_NEWCHAIN, NLM_F_CREATE)
        }
        Change::AddRule(rule) => {
            let mut list = Attrs::default();
            for (name, data) in rule.exprs.iter().flat_map(encode_expr) {
                let mut elem = Attrs::default();
                elem.string(NFTA_EXPR_NAME, name)
                    .nested(NFTA_EXPR_DATA, data);
                list.nested(NFTA_LIST_ELEM, elem);
            }
            attrs
                .string(NFTA_RULE_TABLE, table)
                .string(NFTA_RULE_CHAIN, rule.chain)
                .nested(NFTA_RULE_EXPRESSIONS, list)
                .put(NFTA_RULE_USERDATA, &comment_udata(&rule.comment));
            (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND)
        }
        Change::DeleteRule(chain, handle) => {
            attrs
                .string(NFTA_RULE_TABLE, table)
                .string(NFTA_RULE_CHAIN, chain)
                .put(NFTA_RULE_HANDLE, &handle.to_be_bytes());
            (NFT_MSG_DELRULE, 0)
        }
    };
    message(
        nft_type(msg),
        NLM_F_REQUEST | NLM_F_ACK | flags,
        seq,
        family,
        0,
        &attrs,
    )
}

/// The attributes of a message's payload after its nfgenmsg: `(type, value)`.
fn parse_attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut attrs = Vec::new();
    while data.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        let kind = u16::from_ne_bytes([data[2], data[3]]) & !NLA_F_NESTED;
        let Some(value) = data.get(4..len.max(4)) else {
            break;
        };
        attrs.push((kind, value));
        data = data.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    attrs
}

fn attr_string(value: &[u8]) -> String {
    let text = value.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

// --- the socket ----------------------------------------------------------------------------------

/// A netlink socket to nf_tables.
pub struct Nft {
    socket: Socket,
    seq: u32,
    /// The family of the tables [`Nft::rules`] and [`Nft::apply`] speak of.
    family: Family,
}

/// A reply message: its type and its payload after the nfgenmsg.
type Reply = (u16, Vec<u8>);

impl Nft {
    /// Opens a socket in this process's network namespace.
    pub fn open() -> Result<Nft> {
        let failed = |source| NftError::Io {
            op: "open a NETLINK_NETFILTER socket".to_string(),
            source,
        };
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(failed)?;
        socket.bind_auto().map_err(failed)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(failed)?;
        // A kernel that never answers must not hang a container's start.
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: setsockopt reads a timeval we own, of the size given.
        let set = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::timeval>()).unwrap_or(16),
            )
        };
        if set != 0 {
            return Err(failed(io::Error::last_os_error()));
        }
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .subsec_nanos();
        Ok(Nft {
            socket,
            seq,
            family: Family::Ip,
        })
    }

    // ANCHOR: open6
    /// Opens a socket for the `ip6` tables: the same messages, with family `NFPROTO_IPV6` in
    /// their nfgenmsg. `ip skiff` and `ip6 skiff` are two tables that share a name.
    pub fn open6() -> Result<Nft> {
        let mut nft = Nft::open()?;
        nft.family = Family::Ip6;
        Ok(nft)
    }
    // ANCHOR_END: open6

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Reads replies until every sequence number in `acks` was acknowledged (a batch) or a dump
    /// is done; the first error the kernel sends back ends it.
    fn receive(&mut self, op: &str, mut acks: Vec<u32>, dump: Option<u32>) -> Result<Vec<Reply>> {
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let len = match self.socket.recv(&mut &mut buf[..], 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(NftError::Io {
                        op: op.to_string(),
                        source,
                    });
                }
                Ok(len) => len,
            };
            let mut data = &buf[..len];
            while data.len() >= 16 {
                let msg_len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
                let kind = u16::from_ne_bytes([data[4], data[5]]);
                let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
                let Some(body) = data.get(16..msg_len.max(16)) else {
                    return Err(NftError::Decode {
                        op: op.to_string(),
                        reason: format!("a message of {msg_len} bytes in {} bytes", data.len()),
                    });
                };
                data = data.get(msg_len.next_multiple_of(4)..).unwrap_or_default();
                match kind {
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if code != 0 {
                            return Err(NftError::Refused {
                                op: op.to_string(),
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                        acks.retain(|s| *s != seq);
                        if dump.is_none() && acks.is_empty() {
                            return Ok(replies);
                        }
                    }
                    NLMSG_DONE if Some(seq) == dump => return Ok(replies),
                    _ if Some(seq) == dump => {
                        replies.push((kind, body.get(4..).unwrap_or_default().to_vec()));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Dumps objects of one kind (`NFT_MSG_GET…`) of table `table` of `family`; `None` when
    /// there is no such table.
    fn dump(
        &mut self,
        op: &str,
        (msg, table_attr): (u16, u16),
        family: Family,
        table: &str,
    ) -> Result<Option<Vec<Reply>>> {
        let seq = self.next_seq();
        let mut attrs = Attrs::default();
        attrs.string(table_attr, table);
        let request = message(
            nft_type(msg),
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family.nfproto(),
            0,
            &attrs,
        );
        self.send(op, &request)?;
        match self.receive(op, Vec::new(), Some(seq)) {
            Err(NftError::Refused { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    fn send(&mut self, op: &str, bytes: &[u8]) -> Result<()> {
        self.socket
            .send(bytes, 0)
            .map(drop)
            .map_err(|source| NftError::Io {
                op: op.to_string(),
                source,
            })
    }

    // ANCHOR: list
    /// Every rule of table `table` of this socket's family, in chain order, with its handle and
    /// comment (none when there is no such table).
    pub fn rules(&mut self, table: &str) -> Result<Vec<Listed>> {
        Ok(self.listing(self.family, table)?.unwrap_or_default())
    }

    /// The rules of table `table` of `family`: one dump. `None` when the kernel says there is
    /// no such table; a kernel may also answer a dump of a missing table with nothing at all.
    pub fn listing(&mut self, family: Family, table: &str) -> Result<Option<Vec<Listed>>> {
        let Some(replies) = self.dump(
            "list nftables rules",
            (NFT_MSG_GETRULE, NFTA_RULE_TABLE),
            family,
            table,
        )?
        else {
            return Ok(None);
        };
        let mut rules = Vec::new();
        for (_, body) in replies {
            let mut rule = Listed {
                chain: String::new(),
                handle: 0,
                comment: None,
            };
            let mut ours = false;
            for (kind, value) in parse_attrs(&body) {
                match kind {
                    NFTA_RULE_TABLE => ours = attr_string(value) == table,
                    NFTA_RULE_CHAIN => rule.chain = attr_string(value),
                    NFTA_RULE_HANDLE if value.len() == 8 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(value);
                        rule.handle = u64::from_be_bytes(b);
                    }
                    NFTA_RULE_USERDATA => rule.comment = udata_comment(value),
                    _ => {}
                }
            }
            if ours {
                rules.push(rule);
            }
        }
        Ok(Some(rules))
    }
    // ANCHOR_END: list

    /// The policy of base chain `chain` of IPv4 table `table` (`Some(true)`: accept), if the
    /// chain exists: how skiff sees that iptables-nft's FORWARD drops by default.
    pub fn chain_policy_accepts(&mut self, table: &str, chain: &str) -> Result<Option<bool>> {
        let replies = self.dump(
            "list nftables chains",
            (NFT_MSG_GETCHAIN, NFTA_CHAIN_TABLE),
            self.family,
            table,
        )?;
        for (_, body) in replies.unwrap_or_default() {
            let attrs = parse_attrs(&body);
            let named = |k| attrs.iter().find(|(kind, _)| *kind == k).map(|(_, v)| *v);
            if named(NFTA_CHAIN_TABLE).map(attr_string).as_deref() == Some(table)
                && named(NFTA_CHAIN_NAME).map(attr_string).as_deref() == Some(chain)
            {
                return Ok(named(NFTA_CHAIN_POLICY)
                    .and_then(|v| v.get(..4))
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) == NF_ACCEPT));
            }
        }
        Ok(None)
    }

    // ANCHOR: apply
    /// Makes `changes` to table `table` as one transaction: all of them, or (on an error) none.
    pub fn apply(&mut self, table: &str, changes: &[Change]) -> Result<()> {
        self.apply_batch(table, &[(self.family, changes)])
    }

    /// The same for tables of several families at once (`ip skiff` and `ip6 skiff`): every
    /// message of a batch names its own family, and the kernel commits them together.
    pub fn apply_batch(&mut self, table: &str, parts: &[(Family, &[Change])]) -> Result<()> {
        if parts.iter().all(|(_, changes)| changes.is_empty()) {
            return Ok(());
        }
        let res_id = NFNL_SUBSYS_NFTABLES;
        let mut batch = message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            self.next_seq(),
            0,
            res_id,
            &Attrs::default(),
        );
        let mut acks = Vec::new();
        for (family, changes) in parts {
            for change in *changes {
                let seq = self.next_seq();
                acks.push(seq);
                batch.extend(encode_change(table, change, seq, family.nfproto()));
            }
        }
        batch.extend(message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            self.next_seq(),
            0,
            res_id,
            &Attrs::default(),
        ));
        self.send("send an nftables batch", &batch)?;
        self.receive("apply an nftables batch", acks, None)
            .map(drop)
    }
    // ANCHOR_END: apply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_ip6_addresses_are_16_bytes_at_8_and_24() {
        let exprs = addr6_in(true, "fd00:50::".parse().unwrap(), 64);
        assert_eq!(exprs[0], Expr::Payload(1, 8, 16));
        let mut mask = vec![0xff; 8];
        mask.extend([0; 8]);
        assert_eq!(exprs[1], Expr::Bitwise(mask));
        let mut net = vec![0xfd, 0, 0, 0x50];
        net.extend([0; 12]);
        assert_eq!(exprs[2], Expr::Cmp(true, net));
        assert_eq!(
            addr6_in(false, "fd00::1".parse().unwrap(), 128)[0],
            Expr::Payload(1, 24, 16)
        );
        assert_eq!(addr6_in(false, "fd00::1".parse().unwrap(), 128).len(), 2);
    }

    #[test]
    fn nft_attributes_are_aligned_and_nested() {
        let mut inner = Attrs::default();
        inner.string(1, "ab");
        let mut outer = Attrs::default();
        outer.nested(4, inner).be32(2, 7);
        // 4 + "ab\0" padded to 8; the nest's header; a be32.
        assert_eq!(
            outer.0,
            [
                12, 0, 4, 0x80, 7, 0, 1, 0, b'a', b'b', 0, 0, 8, 0, 2, 0, 0, 0, 0, 7
            ]
        );
    }

    #[test]
    fn nft_comments_round_trip_through_user_data() {
        let data = comment_udata("skiff-net-0123456789ab");
        assert_eq!(data[0], UDATA_RULE_COMMENT);
        assert_eq!(
            udata_comment(&data).as_deref(),
            Some("skiff-net-0123456789ab")
        );
        assert_eq!(udata_comment(&[]), None);
        assert_eq!(udata_comment(&[1, 200]), None);
    }

    #[test]
    fn nft_prefixes_mask_the_address() {
        let exprs = addr_in(true, "10.88.3.7".parse().unwrap(), 16);
        assert_eq!(
            exprs,
            vec![
                Expr::Payload(1, 12, 4),
                Expr::Bitwise(vec![255, 255, 0, 0]),
                Expr::Cmp(true, vec![10, 88, 0, 0]),
            ]
        );
        assert_eq!(
            addr6_in(true, "fd00:50::7".parse().unwrap(), 60),
            vec![
                Expr::Payload(1, 8, 16),
                Expr::Bitwise([[255; 7].as_slice(), &[0xf0], &[0; 8]].concat()),
                Expr::Cmp(true, [[0xfd, 0, 0, 0x50].as_slice(), &[0; 12]].concat()),
            ]
        );
        assert_eq!(
            addr_in(false, "127.0.0.1".parse().unwrap(), 32),
            vec![Expr::Payload(1, 16, 4), Expr::Cmp(true, vec![127, 0, 0, 1])]
        );
    }

    #[test]
    fn nft_a_dnat_is_two_immediates_and_a_nat() {
        let names: Vec<&str> = encode_expr(&Expr::Dnat("10.88.0.2".parse().unwrap(), 80))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["immediate", "immediate", "nat"]);
    }
}
