//! `import FILE NAME[:TAG]`: a root filesystem tarball becomes a one-layer image.
//!
//! This is `docker import`: the tarball (plain or gzip) is stored as the layer blob as it is,
//! unpacked like any layer, and given a default config for this machine's platform (no Cmd, no
//! Env), with one history entry saying where it came from.

use std::io::Read;

use oci_spec::image::Descriptor;

use crate::compression::{Compression, detect_reader};
use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::image::{Draft, history_entry};
use crate::reference::ImageRef;
use crate::store::Store;

/// What an import made.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The new image's id.
    pub id: Digest,
    /// Entries skipped while unpacking, with the reason.
    pub warnings: Vec<String>,
}

/// Imports the rootfs tarball `reader` (named `source` in the history, `-` for stdin) as an
/// image, tagged `tag` when given.
pub fn import(
    store: &Store,
    reader: impl Read,
    source: &str,
    tag: Option<&ImageRef>,
) -> Result<Imported> {
    let _lock = store.lock_shared()?;
    let what = format!("imported tarball {source}");
    let (blob, size) = store.put_blob(reader, None, &what)?;
    let compression = blob_compression(store, &blob)?;
    let (layer, warnings) = store.unpack_layer(&blob, None, &what)?;
    let mut draft = Draft::scratch();
    draft.add_layer(
        Descriptor::new(compression.media_type(), size, blob.to_oci()),
        &layer.diff_id,
        history_entry("", Some(&format!("Imported from {source}"))),
    );
    let tags: Vec<ImageRef> = tag.into_iter().cloned().collect();
    let id = draft.commit(store, &tags)?;
    Ok(Imported { id, warnings })
}

/// The compression of a stored blob, from its first bytes.
pub(crate) fn blob_compression(store: &Store, blob: &Digest) -> Result<Compression> {
    let path = store.blob_path(blob);
    let file = std::fs::File::open(&path)
        .map_err(|e| ImageError::io(format!("open {}", path.display()), e))?;
    detect_reader(&mut std::io::BufReader::new(file))
        .map_err(|e| ImageError::io(format!("read {}", path.display()), e))
}
