//! Images skiff makes itself, so it works on a machine with no registry at hand.
//!
//! `hello-world` is one static program (`hello/hello.rs`, compiled by `build.rs`) in one layer,
//! with `Cmd ["/hello"]`, as Docker's is. The first `run hello-world` on an empty store creates
//! it; after that it is an ordinary image that `images`, `save` and `rmi` see.

use oci_spec::image::{ConfigBuilder, Descriptor, MediaType};

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::image::{Draft, history_entry};
use crate::reference::ImageRef;
use crate::store::Store;

/// The hello-world program, a static binary.
const HELLO: &[u8] = include_bytes!(env!("SKIFF_HELLO_BIN"));

/// The names skiff can make itself.
pub fn is_builtin(reference: &ImageRef) -> bool {
    reference.familiar() == "hello-world:latest"
}

/// A one-file layer tarball: `/hello`, root-owned, mode 0755, with a fixed time so the layer's
/// digest is the same on every machine.
fn hello_layer() -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(HELLO.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, "hello", HELLO)?;
    builder.into_inner()
}

// ANCHOR: hello
/// Creates the `hello-world` image in `store` and returns its id.
pub fn hello_world(store: &Store) -> Result<Digest> {
    let _lock = store.lock_shared()?;
    let layer = hello_layer().map_err(|e| ImageError::io("build the hello-world layer", e))?;
    let (blob, size) = store.put_blob(&layer[..], None, "hello-world layer")?;
    let (info, _) = store.unpack_layer(&blob, Some(&blob), "hello-world layer")?;
    let mut draft = Draft::scratch();
    draft.add_layer(
        Descriptor::new(MediaType::ImageLayer, size, blob.to_oci()),
        &info.diff_id,
        history_entry("COPY hello /hello # built into skiff", None),
    );
    let config = ConfigBuilder::default()
        .cmd(vec!["/hello".to_string()])
        .env(vec![format!("PATH={}", chroot::process::DEFAULT_PATH)])
        .build()
        .map_err(|e| ImageError::Unsupported(format!("hello-world config: {e}")))?;
    draft.set_runtime_config(config);
    let tag = ImageRef::parse("hello-world:latest")?;
    draft.commit(store, &[tag])
}
// ANCHOR_END: hello

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_is_an_ordinary_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = hello_world(&store).unwrap();
        assert_eq!(store.resolve("hello-world").unwrap(), id);
        let layers = store.layer_dirs(&id).unwrap();
        assert_eq!(layers.len(), 1);
        assert!(layers[0].join("hello").is_file());
        assert!(is_builtin(&ImageRef::parse("hello-world").unwrap()));
        assert!(!is_builtin(&ImageRef::parse("busybox").unwrap()));
        // The layer is byte-for-byte reproducible.
        assert_eq!(hello_layer().unwrap(), hello_layer().unwrap());
    }
}
