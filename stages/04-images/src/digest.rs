//! Content addressing: every blob is named by the SHA-256 of its bytes.
//!
//! A name that is a hash cannot lie: whoever holds the bytes can check that they are the ones the
//! name promises. An image is a tree of such names: its id is the digest of its config, the config
//! lists the digests of its layers' contents (`diff_id`s), and a manifest lists the digests of the
//! config and of the layer blobs. This follows the OCI image spec, `descriptor.md` ("Digests");
//! skiff only uses `sha256`, the algorithm every image in the wild uses.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::{ImageError, Result};

/// A `sha256:<64 lowercase hex>` digest, validated on creation, so its hex part is always safe to
/// use as a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The prefix of every digest skiff handles.
    pub const PREFIX: &'static str = "sha256:";

    /// Parses `sha256:<hex>`; anything else is an error that names the text.
    pub fn parse(text: &str) -> Result<Digest> {
        let bad = |reason: &str| ImageError::BadDigest {
            digest: text.to_string(),
            reason: reason.to_string(),
        };
        let hex = text
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| bad("skiff only handles sha256 digests"))?;
        Self::from_hex(hex).map_err(|_| bad("the hex part is not 64 lowercase hex digits"))
    }

    /// A digest from its 64 hex digits (no `sha256:`).
    pub fn from_hex(hex: &str) -> Result<Digest> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Digest(format!("{}{hex}", Self::PREFIX)))
        } else {
            Err(ImageError::BadDigest {
                digest: hex.to_string(),
                reason: "not 64 lowercase hex digits".into(),
            })
        }
    }

    /// The digest of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        Digest(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(hasher.finalize())
        ))
    }

    /// The 64 hex digits, without `sha256:`: the file name of the blob.
    pub fn hex(&self) -> &str {
        &self.0[Self::PREFIX.len()..]
    }

    /// The first 12 hex digits, as Docker shows ids.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// The whole digest, `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same digest as the oci-spec type, for descriptors.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        self.0
            .parse()
            .expect("a validated sha256 digest is a valid OCI digest")
    }

    /// A digest from the oci-spec type; refused unless it is sha256.
    pub fn from_oci(digest: &oci_spec::image::Digest) -> Result<Digest> {
        Digest::parse(digest.as_ref())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Hashes everything that passes through it, read or written, and counts the bytes.
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    count: u64,
}

impl<T> Hashing<T> {
    /// Wraps a reader or a writer.
    pub fn new(inner: T) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and length of what went through so far.
    pub fn digest(&self) -> (Digest, u64) {
        let hex = hex::encode(self.hasher.clone().finalize());
        (Digest(format!("{}{hex}", Digest::PREFIX)), self.count)
    }

    /// The wrapped reader or writer.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Gives back the wrapped reader or writer.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a blob and fails at its end if the bytes do not hash to the expected digest. A reader
/// must read to the end (as `io::copy` and `read_to_end` do) for the check to happen.
pub struct Verified<R> {
    inner: Hashing<R>,
    expected: Digest,
    what: String,
}

impl<R: Read> Verified<R> {
    /// Checks `inner` against `expected`; `what` names the blob in the error.
    pub fn new(inner: R, expected: Digest, what: impl Into<String>) -> Self {
        Verified {
            inner: Hashing::new(inner),
            expected,
            what: what.into(),
        }
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let (actual, _) = self.inner.digest();
            if actual != self.expected && !chroot::defence::disabled("verify-digests") {
                let err = ImageError::DigestMismatch {
                    what: self.what.clone(),
                    expected: self.expected.to_string(),
                    actual: actual.to_string(),
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
        Ok(n)
    }
}

/// The digest and length of everything `reader` yields, read to its end.
pub fn digest_reader(reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut hashing = Hashing::new(reader);
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(hashing.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn the_digest_of_nothing_is_the_well_known_one() {
        assert_eq!(Digest::of_bytes(b"").as_str(), EMPTY);
        assert_eq!(
            digest_reader(&b""[..]).unwrap(),
            (Digest::parse(EMPTY).unwrap(), 0)
        );
    }

    #[test]
    fn only_sha256_with_64_lowercase_hex_digits_parses() {
        assert!(Digest::parse(EMPTY).is_ok());
        for bad in [
            "sha512:abcd",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../etc/passwd",
            "sha256:",
        ] {
            let err = Digest::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid digest"), "{bad}: {err}");
        }
    }

    #[test]
    fn hex_and_short_forms() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.to_oci().to_string(), EMPTY);
        assert_eq!(Digest::from_oci(&d.to_oci()).unwrap(), d);
    }

    #[test]
    fn a_verified_reader_refuses_content_that_does_not_match() {
        let good = Digest::of_bytes(b"hello");
        let mut out = Vec::new();
        Verified::new(&b"hello"[..], good.clone(), "blob")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let err = Verified::new(&b"hellO"[..], good, "blob x")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string().contains("blob x should have digest"),
            "{err}"
        );
    }
}
