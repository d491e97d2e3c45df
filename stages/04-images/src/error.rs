//! What can go wrong with images, and the words a user sees when it does.
//!
//! Two enums: [`LayerError`] for one layer tarball (it names the entry that failed, because a
//! hostile or broken tarball is fixed by knowing which entry), and [`ImageError`] for everything
//! else: the store, references, archives, image operations. Every message says what failed, on
//! which object, and when there is something to do, what.

use std::path::PathBuf;

/// A failure while turning a layer tarball into a directory, or a directory into a tarball.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry would write outside the layer directory, or through a symlink: refused.
    #[error("layer entry {entry:?} is refused: {reason}")]
    Unsafe {
        /// The entry's path, as the tarball names it.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The entry's kind is not one a layer can hold.
    #[error(
        "layer entry {entry:?} has unsupported type {kind}: a layer holds files, directories, links and fifos"
    )]
    Unsupported {
        /// The entry's path.
        entry: String,
        /// The tar type byte, described.
        kind: String,
    },
    /// A system call on an entry failed.
    #[error("layer entry {entry:?}: {op}: {source}")]
    Entry {
        /// The entry's path.
        entry: String,
        /// What was being done ("create file", "set owner").
        op: &'static str,
        /// The error the kernel returned.
        source: std::io::Error,
    },
    /// The tar stream itself could not be read.
    #[error("read layer tarball: {0}: the file is truncated or not a tar archive")]
    Read(#[source] std::io::Error),
    /// The layer is compressed with an algorithm skiff does not decode.
    #[error(
        "layer is compressed with {0}, which skiff does not decode: recompress it with gzip or leave it uncompressed"
    )]
    Compression(&'static str),
    /// The unpacked content does not hash to the diff_id the image config promises.
    #[error(
        "layer content has diff_id {actual}, but the image config says {expected}: the archive is corrupt or was tampered with"
    )]
    DiffIdMismatch {
        /// What the config says.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// The layer expands beyond what its compressed size allows (a decompression bomb).
    #[error(
        "layer expands to more than {limit} bytes, the most skiff unpacks from it ({}): refused as a decompression bomb",
        crate::bounded::Budget { limit: *limit, compressed: *compressed }.rule()
    )]
    TooLarge {
        /// The budget, in bytes.
        limit: u64,
        /// The compressed size it came from (0 when unknown).
        compressed: u64,
    },
    /// Writing a layer tarball failed.
    #[error("write layer tarball: {0}")]
    Write(#[source] std::io::Error),
    /// Reading a directory of changes (an overlayfs upper dir) failed.
    #[error("read changes at {path}: {source}")]
    Changes {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Everything else that can go wrong with images and the store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image has this name, tag or id.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// A name that is not a valid image reference.
    #[error(
        "invalid reference format {input:?}: {reason}: use NAME[:TAG] or NAME@sha256:DIGEST, with a lowercase NAME"
    )]
    Reference {
        /// What the user gave.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error(
        "invalid digest {digest:?}: {reason}: expected sha256: followed by 64 lowercase hex digits"
    )]
    BadDigest {
        /// The text given.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob whose content does not hash to its name: refused.
    #[error(
        "{what} should have digest {expected} but its content hashes to {actual}: it is corrupt; remove the image (skiff rmi) and load it again"
    )]
    DigestMismatch {
        /// Which blob ("blob in the store", "layer 2 of archive x.tar").
        what: String,
        /// The digest it is named by.
        expected: String,
        /// The digest of its content.
        actual: String,
    },
    /// An id prefix that matches more than one image.
    #[error("image id prefix {0:?} is ambiguous: it matches several images; give more digits")]
    Ambiguous(String),
    /// An operation Docker also refuses without `--force`.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An archive (docker-archive or OCI layout) that skiff cannot read.
    #[error("archive {path}: {reason}")]
    Archive {
        /// The archive's path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON document (manifest, config, index, tag index) that does not parse.
    #[error("{what}: invalid JSON: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, on which path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A layer could not be unpacked or packed.
    #[error("{context}: {source}")]
    Layer {
        /// Which layer.
        context: String,
        /// What went wrong.
        source: LayerError,
    },
    /// Something the image spec allows but skiff does not do.
    #[error("{0}")]
    Unsupported(String),
}

impl ImageError {
    /// An I/O error with the operation and path it happened on.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }

    /// A JSON error with the document it happened in.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        ImageError::Json {
            what: what.into(),
            source,
        }
    }

    /// An archive error.
    pub fn archive(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ImageError::Archive {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// A layer error, with the layer it happened in.
    pub fn layer(context: impl Into<String>, source: LayerError) -> Self {
        ImageError::Layer {
            context: context.into(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
