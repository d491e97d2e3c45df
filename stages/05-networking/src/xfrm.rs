//! Encrypted overlay networks: IPsec ESP in transport mode between two hosts, for VXLAN.
//!
//! With `--opt encrypted`, every VXLAN datagram between two hosts (UDP to port 4789) is
//! encrypted and authenticated by the kernel before it leaves: ESP (RFC 4303) in transport mode,
//! AES-GCM (`rfc4106(gcm(aes))`), as Docker's encrypted overlay does. Two things make that
//! happen, per direction, through the kernel's xfrm netlink interface (`ip xfrm`, see
//! ip-xfrm(8)):
//!
//! - a **security association** (SA): "packets from A to B with SPI n: ESP, this key";
//! - a **policy**: "UDP from A to B, port 4789, must go through ESP" (out), and "must have come
//!   through it" (in), so nothing of a container's payload crosses the underlay in clear, and
//!   nothing in clear is taken as VXLAN.
//!
//! The key is the cluster's, in etcd; the SPI of a direction is computed from the two
//! addresses, so both hosts arrive at the same numbers without talking. The messages are
//! built here by hand (the structs of `<linux/xfrm.h>`): no crate for xfrm fits the netlink
//! crates stage 05 already uses.

use std::net::Ipv4Addr;

use netlink_sys::{Socket, SocketAddr};

/// `NETLINK_XFRM`.
const NETLINK_XFRM: isize = 6;
const XFRM_MSG_NEWSA: u16 = 0x10;
const XFRM_MSG_DELSA: u16 = 0x11;
const XFRM_MSG_NEWPOLICY: u16 = 0x13;
const XFRM_MSG_DELPOLICY: u16 = 0x14;
const XFRMA_TMPL: u16 = 5;
const XFRMA_ALG_AEAD: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IPPROTO_ESP: u8 = 50;
const IPPROTO_UDP: u8 = 17;
const AF_INET: u16 = 2;
const XFRM_POLICY_IN: u8 = 0;
const XFRM_POLICY_OUT: u8 = 1;
/// What a kernel without ESP or AES-GCM says, in words.
pub const UNSUPPORTED: &str = "this kernel has no ESP or no rfc4106(gcm(aes)) (CONFIG_INET_ESP, CONFIG_CRYPTO_GCM): encrypted overlay networks cannot work here";
/// What a kernel with ESP but without the cipher's parts says, in words.
pub const NO_CIPHER: &str = "the kernel cannot make rfc4106(gcm(aes)): load the modules gcm, ctr, ghash-generic, seqiv and drbg (modprobe does it where it can)";
/// The bytes of a key: 16 of AES-128 and 4 of salt (RFC 4106).
pub const KEY_LEN: usize = 20;

/// What can go wrong with xfrm.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct XfrmError {
    /// What was being done.
    op: String,
    /// The kernel's answer.
    #[source]
    source: std::io::Error,
}

fn failed(op: &str) -> impl FnOnce(std::io::Error) -> XfrmError + '_ {
    move |source| XfrmError {
        op: op.to_string(),
        source,
    }
}

/// The SPI of packets from `src` to `dst`: the same on both hosts, never below 256 (reserved).
pub fn spi(src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
    let (s, d) = (u32::from(src), u32::from(dst));
    (s.wrapping_mul(2_654_435_761) ^ d.rotate_left(13)) | 0x100
}

/// `struct xfrm_selector`: UDP from `src` to `dst`, port 4789.
fn selector(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut b = Vec::with_capacity(56);
    b.extend(address(dst));
    b.extend(address(src));
    b.extend(crate::vxlan::VXLAN_PORT.to_be_bytes());
    b.extend(0xffff_u16.to_be_bytes());
    b.extend([0, 0, 0, 0]); // sport, sport_mask: any
    b.extend(AF_INET.to_ne_bytes());
    b.extend([32, 32, IPPROTO_UDP, 0, 0, 0]);
    b.extend(0_i32.to_ne_bytes()); // ifindex
    b.extend(0_u32.to_ne_bytes()); // user
    b
}

/// `xfrm_address_t`: 16 bytes, an IPv4 address in the first 4.
fn address(ip: Ipv4Addr) -> [u8; 16] {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&ip.octets());
    a
}

/// `struct xfrm_lifetime_cfg` without limits, then `xfrm_lifetime_cur` zeroed.
fn lifetimes() -> Vec<u8> {
    let mut b = Vec::with_capacity(96);
    for _ in 0..4 {
        b.extend(u64::MAX.to_ne_bytes());
    }
    b.extend([0; 32 + 32]);
    b
}

fn attribute(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut b = Vec::with_capacity(len + 3);
    b.extend(u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    b.extend(kind.to_ne_bytes());
    b.extend(payload);
    b.resize(len.next_multiple_of(4), 0);
    b
}

// ANCHOR: sa
/// `XFRM_MSG_NEWSA`: ESP from `src` to `dst` in transport mode, with `key`.
fn new_sa(src: Ipv4Addr, dst: Ipv4Addr, key: &[u8; KEY_LEN]) -> Vec<u8> {
    let mut b = selector(src, dst);
    b.extend(address(dst)); // id.daddr
    b.extend(spi(src, dst).to_be_bytes()); // id.spi
    b.extend([IPPROTO_ESP, 0, 0, 0]); // id.proto
    b.extend(address(src)); // saddr
    b.extend(lifetimes()); // lft, curlft
    b.extend([0; 12]); // stats
    b.extend(0_u32.to_ne_bytes()); // seq
    b.extend(0_u32.to_ne_bytes()); // reqid
    b.extend(AF_INET.to_ne_bytes());
    b.extend([0, 32, 0]); // mode transport, replay window, flags
    b.resize(224, 0);
    let mut aead = vec![0; 64];
    aead[..17].copy_from_slice(b"rfc4106(gcm(aes))");
    aead.extend((u32::try_from(KEY_LEN * 8).unwrap_or(0)).to_ne_bytes());
    aead.extend(128_u32.to_ne_bytes()); // ICV bits
    aead.extend(key);
    b.extend(attribute(XFRMA_ALG_AEAD, &aead));
    b
}

/// `XFRM_MSG_NEWPOLICY`: UDP 4789 from `src` to `dst` goes (`dir` out) or came (in) through
/// ESP in transport mode.
fn new_policy(src: Ipv4Addr, dst: Ipv4Addr, dir: u8) -> Vec<u8> {
    let mut b = selector(src, dst);
    b.extend(lifetimes());
    b.extend(0_u32.to_ne_bytes()); // priority
    b.extend(0_u32.to_ne_bytes()); // index
    b.extend([dir, 0, 0, 0]); // dir, action allow, flags, share
    b.resize(168, 0);
    let mut tmpl = Vec::with_capacity(64);
    tmpl.extend(address(dst));
    tmpl.extend(0_u32.to_be_bytes()); // any SPI
    tmpl.extend([IPPROTO_ESP, 0, 0, 0]);
    tmpl.extend(AF_INET.to_ne_bytes());
    tmpl.extend([0, 0]);
    tmpl.extend(address(src));
    tmpl.extend(0_u32.to_ne_bytes()); // reqid
    tmpl.extend([0, 0, 0, 0]); // mode transport, share, optional
    for _ in 0..3 {
        tmpl.extend(u32::MAX.to_ne_bytes()); // any algorithms
    }
    b.extend(attribute(XFRMA_TMPL, &tmpl));
    b
}
// ANCHOR_END: sa

/// Sends one request and reads the kernel's acknowledgement; `ok` errnos count as success.
fn request(kind: u16, flags: u16, payload: &[u8], op: &str, ok: &[i32]) -> Result<(), XfrmError> {
    let socket = Socket::new(NETLINK_XFRM).map_err(failed(op))?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(failed(op))?;
    let len = 16 + payload.len();
    let mut message = Vec::with_capacity(len);
    message.extend(u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    message.extend(kind.to_ne_bytes());
    message.extend((NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
    message.extend(1_u32.to_ne_bytes());
    message.extend(0_u32.to_ne_bytes());
    message.extend(payload);
    socket.send(&message, 0).map_err(failed(op))?;
    let mut answer = vec![0; 4096];
    let n = socket.recv(&mut &mut answer[..], 0).map_err(failed(op))?;
    let asked = kind;
    let kind = answer.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let errno = answer
        .get(16..20)
        .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (n >= 20, kind, errno) {
        (true, Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (true, Some(NLMSG_ERROR), Some(errno)) if ok.contains(&errno) => Ok(()),
        (true, Some(NLMSG_ERROR), Some(libc::ENOSYS)) => {
            let op = format!("{op}: {UNSUPPORTED}");
            Err(failed(&op)(std::io::Error::from_raw_os_error(libc::ENOSYS)))
        }
        // ESP is there but the cipher cannot be made: a module the kernel could not load.
        (true, Some(NLMSG_ERROR), Some(libc::ENOENT)) if asked == XFRM_MSG_NEWSA => {
            let op = format!("{op}: {NO_CIPHER}");
            Err(failed(&op)(std::io::Error::from_raw_os_error(libc::ENOENT)))
        }
        (true, Some(NLMSG_ERROR), Some(errno)) => {
            Err(failed(op)(std::io::Error::from_raw_os_error(errno)))
        }
        _ => Err(failed(op)(std::io::Error::other("no acknowledgement"))),
    }
}

// ANCHOR: secure
/// Encrypts the VXLAN traffic between this host, `local`, and `remote`, both ways: two SAs and
/// two policies. Ones already there are kept (another encrypted network made them).
pub fn secure(local: Ipv4Addr, remote: Ipv4Addr, key: &[u8; KEY_LEN]) -> Result<(), XfrmError> {
    let create = NLM_F_CREATE | NLM_F_EXCL;
    let exists = [libc::EEXIST];
    for (src, dst) in [(local, remote), (remote, local)] {
        let op = format!("add the ESP SA {src} -> {dst}");
        request(XFRM_MSG_NEWSA, create, &new_sa(src, dst, key), &op, &exists)?;
    }
    let op = format!("add the ESP policies between {local} and {remote}");
    request(
        XFRM_MSG_NEWPOLICY,
        create,
        &new_policy(local, remote, XFRM_POLICY_OUT),
        &op,
        &exists,
    )?;
    request(
        XFRM_MSG_NEWPOLICY,
        create,
        &new_policy(remote, local, XFRM_POLICY_IN),
        &op,
        &exists,
    )
}
// ANCHOR_END: secure

/// Removes what [`secure`] made; what is gone already is not an error.
pub fn unsecure(local: Ipv4Addr, remote: Ipv4Addr) -> Result<(), XfrmError> {
    let gone = [libc::ENOENT, libc::ESRCH];
    for (src, dst, dir) in [
        (local, remote, XFRM_POLICY_OUT),
        (remote, local, XFRM_POLICY_IN),
    ] {
        let mut id = selector(src, dst);
        id.extend(0_u32.to_ne_bytes()); // index
        id.extend([dir, 0, 0, 0]);
        let op = format!("delete the ESP policy {src} -> {dst}");
        request(XFRM_MSG_DELPOLICY, 0, &id, &op, &gone)?;
        let mut sa = Vec::with_capacity(24);
        sa.extend(address(dst));
        sa.extend(spi(src, dst).to_be_bytes());
        sa.extend(AF_INET.to_ne_bytes());
        sa.extend([IPPROTO_ESP, 0]);
        let op = format!("delete the ESP SA {src} -> {dst}");
        request(XFRM_MSG_DELSA, 0, &sa, &op, &gone)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_kernels_sizes() {
        let (a, b) = (Ipv4Addr::new(10, 216, 0, 2), Ipv4Addr::new(10, 216, 0, 3));
        assert_eq!(selector(a, b).len(), 56);
        assert_eq!(
            new_sa(a, b, &[7; KEY_LEN]).len(),
            224 + 4 + 64 + 8 + KEY_LEN
        );
        assert_eq!(new_policy(a, b, XFRM_POLICY_OUT).len(), 168 + 4 + 64);
        assert_ne!(spi(a, b), spi(b, a));
    }
}
