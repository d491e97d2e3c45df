//! Container ids: 64 random hex digits, shown as their first 12, as Docker does.
//!
//! The id names everything the engine makes for a container on the host (its directory under
//! `--root`, its cgroup, later its network devices), so all of it can be found and removed.

use std::fmt;
use std::io::Read;

/// A container's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerId(String);

impl ContainerId {
    /// A fresh random id, from the kernel's random source.
    pub fn random() -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(ContainerId(hex))
    }

    /// An id from its full hex form (for tests and for ids read back from disk).
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| ContainerId(hex.to_ascii_lowercase()))
    }

    /// All 64 digits.
    pub fn full(&self) -> &str {
        &self.0
    }

    /// The first 12 digits: the default hostname, and what `ps` shows.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let a = ContainerId::random().unwrap();
        let b = ContainerId::random().unwrap();
        assert_eq!(a.full().len(), 64);
        assert!(a.full().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.short(), &a.full()[..12]);
        assert_ne!(a, b);
        assert_eq!(ContainerId::from_hex(a.full()), Some(a));
        assert_eq!(ContainerId::from_hex("abc"), None);
    }
}
