//! Bounded input: what an image declares is all that skiff reads, and all it writes.
//!
//! Everything an image brings is untrusted, and so is its size. A registry can stream a blob
//! without end, a layout can hold a blob larger than its manifest says, and a small gzip'd layer
//! can expand a thousandfold (deflate reaches 1032:1 on zeros) into a disk-filling tree. Three
//! bounds hold that in:
//!
//! - **A blob is its declared size** ([`Exact`]): a descriptor (a manifest's, an OCI layout's)
//!   gives every blob's size; the reader stops at size + 1 byte and fails, naming the size, so a
//!   registry or a layout can never make skiff store more than the manifest promised. The digest
//!   check would refuse the content anyway, but only at the end, after the disk is full.
//! - **A layer expands at most [`EXPANSION`] times** its compressed size, and never less than
//!   [`EXPANSION_FLOOR`] ([`Budget`]), counted on the uncompressed tar stream (a GNU sparse entry's holes
//!   take no disk and have their own cap, [`crate::unpack::MAX_SPARSE_HOLES`]). Real layers
//!   compress 2 to 10 times; beyond 100 a layer is almost all one repeated byte, a bomb or a
//!   preallocated file a Dockerfile should make at run time. The floor is there because small
//!   layers compress very well legitimately (tar pads to 10 KiB records): no layer under 2.5 MiB
//!   compressed is ever refused for its ratio, and none can cost more than 256 MiB. An absolute
//!   cap alone would either refuse big real images or bound nothing on a small disk; a ratio
//!   bounds the disk a download can cost by what was downloaded.
//! - **A gzip'd archive** (`load` of `docker save | gzip`) is decompressed under the same budget.
//!
//! A failure halfway leaves nothing: blobs and layers are written under `tmp/` and renamed into
//! place only once complete and checked ([`crate::store`]), and an image record is written last.
//!
//! The defence is called `bounded-input`; a debug build run with
//! `SKIFF_UNSAFE_DISABLE=bounded-input` reads whatever comes, as skiff did before, so the labs can
//! show that their checks fail without it.

use std::io::{self, Read};

/// The name of this defence, for `SKIFF_UNSAFE_DISABLE`.
pub const DEFENCE: &str = "bounded-input";

/// How many times its compressed size a layer may expand to.
pub const EXPANSION: u64 = 100;
/// What any layer may expand to, however small it is compressed: 256 MiB.
pub const EXPANSION_FLOOR: u64 = 256 << 20;

/// Whether input is bounded (always, unless a debug build's test switched the defence off).
pub fn enabled() -> bool {
    !chroot::defence::disabled(DEFENCE)
}

// ANCHOR: exact
/// Reads exactly `size` bytes, the size a descriptor promises, and fails otherwise: a peer that
/// sends less (a cut connection) or more (a registry streaming without end) is refused. With the
/// last byte it reads once more, to see the end: so a [`crate::digest::Verified`] reader
/// underneath checks its digest before the last bytes are handed on.
pub struct Exact<R> {
    inner: R,
    size: u64,
    done: u64,
    ended: bool,
}

impl<R: Read> Exact<R> {
    /// Reads `inner`, which must hold exactly `size` bytes.
    pub fn new(inner: R, size: u64) -> Self {
        Exact {
            inner,
            size,
            done: 0,
            ended: false,
        }
    }

    /// After the last byte: the source must be at its end.
    fn check_end(&mut self) -> io::Result<()> {
        if !self.ended {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than the {} bytes its descriptor gives", self.size),
                ));
            }
            self.ended = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.done == self.size {
            if !enabled() {
                // The switched-off defence: whatever comes after the promised size is taken.
                return self.inner.read(buf);
            }
            self.check_end()?;
            return Ok(0);
        }
        let room = usize::try_from(self.size - self.done).unwrap_or(usize::MAX);
        let limit = buf.len().min(room);
        let n = self.inner.read(&mut buf[..limit])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "it ended after {} of the {} bytes its descriptor gives",
                    self.done, self.size
                ),
            ));
        }
        self.done += n as u64;
        if self.done == self.size && enabled() {
            self.check_end()?;
        }
        Ok(n)
    }
}
// ANCHOR_END: exact

// ANCHOR: budget
/// How many bytes a layer (or an archive) of a given compressed size may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The most bytes allowed out.
    pub limit: u64,
    /// The compressed size it was worked out from.
    pub compressed: u64,
}

impl Budget {
    /// The budget of `compressed` bytes: [`EXPANSION`] times that, at least [`EXPANSION_FLOOR`].
    pub fn for_compressed(compressed: u64) -> Budget {
        let limit = if enabled() {
            compressed.saturating_mul(EXPANSION).max(EXPANSION_FLOOR)
        } else {
            u64::MAX
        };
        Budget { limit, compressed }
    }

    /// How the limit was worked out, in words.
    pub fn rule(&self) -> String {
        format!(
            "{EXPANSION} times its {} compressed bytes, and at least {} MiB",
            self.compressed,
            EXPANSION_FLOOR >> 20
        )
    }
}
// ANCHOR_END: budget

/// A reader that fails as soon as more than `limit` bytes have come out of it, and remembers
/// that it did (so the caller can say why, whatever error the reader above made of it).
pub struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Capped<R> {
    /// Reads `inner`, up to `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        Capped {
            inner,
            left: limit,
            exceeded: false,
        }
    }

    /// Whether the reader was stopped at its limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One byte more than allowed is enough to know.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "it expands beyond its budget",
            ));
        }
        let room = usize::try_from(self.left).unwrap_or(usize::MAX);
        let limit = buf.len().min(room);
        let n = self.inner.read(&mut buf[..limit])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reads_refuse_short_and_long_streams() {
        let mut out = Vec::new();
        Exact::new(&b"hello"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        let err = Exact::new(&b"hell"[..], 5)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("after 4 of the 5 bytes"), "{err}");
        let err = Exact::new(&b"hello!"[..], 5)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("more than the 5 bytes"), "{err}");
    }

    #[test]
    fn exact_lets_a_verified_reader_check_its_digest_before_the_last_bytes() {
        let good = crate::digest::Digest::of_bytes(b"hello");
        let verified = crate::digest::Verified::new(&b"hellO"[..], good, "blob x");
        let mut exact = Exact::new(verified, 5);
        let mut buf = [0u8; 16];
        let err = exact.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("should have digest"), "{err}");
        let mut out = Vec::new();
        Exact::new(&b""[..], 0).read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn a_budget_is_a_ratio_with_a_floor() {
        assert_eq!(Budget::for_compressed(0).limit, EXPANSION_FLOOR);
        assert_eq!(Budget::for_compressed(1 << 20).limit, EXPANSION_FLOOR);
        assert_eq!(Budget::for_compressed(10 << 20).limit, 1000 << 20);
        assert_eq!(Budget::for_compressed(u64::MAX).limit, u64::MAX);
    }

    #[test]
    fn capped_stops_one_byte_past_its_limit() {
        let mut out = Vec::new();
        let mut capped = Capped::new(&b"hello"[..], 5);
        capped.read_to_end(&mut out).unwrap();
        assert!(!capped.exceeded());
        let mut capped = Capped::new(&b"hello!"[..], 5);
        let err = capped.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(capped.exceeded());
        // An endless source is cut off, not drained.
        let mut capped = Capped::new(io::repeat(0), 1 << 20);
        assert!(io::copy(&mut capped, &mut io::sink()).is_err());
        assert!(capped.exceeded());
    }
}
