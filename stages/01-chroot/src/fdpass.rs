//! Passing an open descriptor to another process.
//!
//! A descriptor is a number in one process's table; another process cannot use the number.
//! Sent over a unix socket as ancillary data of type `SCM_RIGHTS`, the kernel installs a new
//! descriptor in the receiver's table for the same open file: a terminal's master, a network
//! namespace, anything `open(2)` gave. The message must carry at least one byte of ordinary
//! data too.
//!
//! Sending uses stack buffers only, so a freshly cloned child may call it (see "Fork safety" in
//! the crate's documentation).
//!
//! See unix(7) (`SCM_RIGHTS`), cmsg(3), sendmsg(2), recvmsg(2).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

// ANCHOR: send_fd
/// Sends descriptor `fd` over unix socket `socket` (`SCM_RIGHTS`), with one byte of data.
/// Stack buffers only. `MSG_NOSIGNAL`: a receiver gone is an error (`EPIPE`), not SIGPIPE.
pub fn send_fd(socket: RawFd, fd: RawFd) -> Result<(), Errno> {
    // A control message holding one int, aligned as cmsghdr needs.
    #[repr(C)]
    struct Control {
        header: libc::cmsghdr,
        fd: libc::c_int,
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: zeroed plain data, then filled as cmsg(3) describes.
    let mut control: Control = unsafe { std::mem::zeroed() };
    // The size of one int, 4, as the u32 CMSG_LEN takes.
    let int = std::mem::size_of::<libc::c_int>()
        .try_into()
        .unwrap_or(4u32);
    // SAFETY: CMSG_LEN computes a length; no memory is touched.
    control.header.cmsg_len = unsafe { libc::CMSG_LEN(int) } as _;
    control.header.cmsg_level = libc::SOL_SOCKET;
    control.header.cmsg_type = libc::SCM_RIGHTS;
    control.fd = fd;
    // SAFETY: zeroed plain data.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = (&mut control as *mut Control).cast();
    // A size_t with glibc, a socklen_t with musl; the size is a few bytes either way.
    #[allow(clippy::cast_possible_truncation)]
    let length = std::mem::size_of::<Control>() as _;
    message.msg_controllen = length;
    // SAFETY: the message and everything it points to live on this stack during the call.
    Errno::result(unsafe { libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) }).map(drop)
}
// ANCHOR_END: send_fd

/// Receives one descriptor sent with [`send_fd`] on `socket`, close-on-exec. `Ok(None)` when
/// the message carried none, or the socket was closed without one.
pub fn receive_fd(socket: &impl AsRawFd) -> Result<Option<OwnedFd>, Errno> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_sent_arrives_as_the_same_open_file() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        send_fd(a.as_raw_fd(), file.as_raw_fd()).unwrap();
        let got = receive_fd(&b).unwrap().expect("a descriptor");
        assert_ne!(got.as_raw_fd(), file.as_raw_fd(), "a new number");
        let same = |fd: RawFd| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert_eq!(same(got.as_raw_fd()), same(file.as_raw_fd()));
        drop(a);
        assert!(receive_fd(&b).unwrap().is_none(), "closed: nothing");
    }
}
