//! The build cache on disk: for each step already built, which image it made.
//!
//! A step's key ([`crate::dockerfile::cache_key`]) hashes the image the step starts from, the
//! instruction after substitution, the build arguments a RUN sees and the digest of what a COPY
//! copies. The cache maps it to the image the step made:
//!
//! ```text
//! <root>/build-cache/<key hex>     the id of the image the step made (sha256:…)
//! ```
//!
//! Each entry is written atomically ([`Store::write_atomic`]), so a reader never sees half an
//! id. An entry is only a hint: [`BuildCache::lookup`] checks that the image is still in the
//! store (`rmi` may have removed it) and treats anything else as a miss.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::store::Store;

/// The build cache of a store.
#[derive(Debug, Clone)]
pub struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    /// The cache of `store`, created when missing (private, as the rest of the store).
    pub fn open(store: &Store) -> Result<BuildCache> {
        let dir = store.root().join("build-cache");
        namespaces::private::store_dir(store.root(), "build-cache")
            .map_err(|e| ImageError::io(format!("create {}", dir.display()), e))?;
        Ok(BuildCache { dir })
    }

    /// Where the entry of `key` (`sha256:<hex>`) lives.
    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(key.strip_prefix(Digest::PREFIX).unwrap_or(key))
    }

    // ANCHOR: lookup
    /// The image a step with this key made before, if it is still in the store.
    pub fn lookup(&self, store: &Store, key: &str) -> Result<Option<Digest>> {
        let path = self.path(key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ImageError::io(format!("read {}", path.display()), e)),
        };
        let Ok(id) = Digest::parse(text.trim()) else {
            return Ok(None); // not written by skiff: a miss, and the next build overwrites it
        };
        // The image must still be whole: its record, config and layers.
        Ok(store.image(&id).is_ok().then_some(id))
    }
    // ANCHOR_END: lookup

    /// Records that the step with this key made image `id`.
    pub fn record(&self, store: &Store, key: &str, id: &Digest) -> Result<()> {
        store.write_atomic(&self.path(key), id.as_str().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::LayerTar;

    #[test]
    fn an_entry_is_found_while_its_image_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let cache = BuildCache::open(&store).unwrap();
        let key = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(cache.lookup(&store, &key).unwrap(), None);

        let tar = LayerTar::new().file("bin/tool", b"x").bytes();
        let id = crate::import::import(&store, &tar[..], "rootfs.tar", None)
            .unwrap()
            .id;
        cache.record(&store, &key, &id).unwrap();
        assert_eq!(cache.lookup(&store, &key).unwrap(), Some(id.clone()));
        assert_eq!(
            std::fs::read_to_string(store.root().join("build-cache").join("ab".repeat(32)))
                .unwrap(),
            id.as_str()
        );
        // Another key misses.
        let other = format!("sha256:{}", "cd".repeat(32));
        assert_eq!(cache.lookup(&store, &other).unwrap(), None);

        // Once the image is gone, the entry is a miss.
        crate::ops::remove(&store, id.as_str(), false).unwrap();
        assert_eq!(cache.lookup(&store, &key).unwrap(), None);
        // A damaged entry is a miss, not an error.
        std::fs::write(cache.path(&key), "not a digest").unwrap();
        assert_eq!(cache.lookup(&store, &key).unwrap(), None);
    }
}
