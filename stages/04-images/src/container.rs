//! A container of an image, ready to launch: the image's config combined with the command line
//! ([`crate::run`]), stage 02's namespaces and filesystem, and an overlay of the image's layers
//! as its root ([`crate::overlay`]). `run` uses it, and so does `build` for each `RUN` step.

use std::sync::{Arc, Mutex};

use cgroups::CgroupArgs;
use chroot::cli::ProcessArgs;
use chroot::{ChangeRoot, Prepared, Process};
use namespaces::{Base, Container, ContainerId, NamespaceArgs, NetworkMode};

use crate::digest::Digest;
use crate::image::Image;
use crate::overlay::{CommitRequest, Overlay, read_through, rootfs_of};
use crate::reference::ImageRef;
use crate::store::Store;

/// Where a commit leaves the new image's id, or why there is none, once the container exited.
pub type CommitOutcome = Arc<Mutex<Option<Result<Digest, String>>>>;

/// What to run, in a container of which image.
pub struct ContainerRequest<'a> {
    /// The store holding the image.
    pub store: &'a Store,
    /// The image, read from the store once (by whoever found it).
    pub image: Image,
    /// The command after the image name (empty: the image's Cmd).
    pub command: Vec<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `-e`, `-w`.
    pub process: ProcessArgs,
    /// Stage 02's flags (`--root` among them: it must be the store's root).
    pub namespaces: NamespaceArgs,
    /// Stage 03's flags: the container gets a cgroup with these limits; none without.
    pub cgroup: Option<CgroupArgs>,
    /// Commit the changes as a new image tagged so, and report the outcome here.
    pub commit: Option<(ImageRef, CommitOutcome)>,
    /// The history line of the commit; by default `skiff run --commit: COMMAND`, with the
    /// comment `skiff run --commit`. A line given here (a build step's) has no comment.
    pub created_by: Option<String>,
    /// Tag the committed image with nothing (`build` steps are untagged until the last).
    pub untagged_commit: bool,
    /// Commit even when the command fails (`run --commit`: yes; a `build` step: no).
    pub commit_on_failure: bool,
}

impl<'a> ContainerRequest<'a> {
    /// A request to run `command` in a container of `image` (as [`Store::image`] read it), with
    /// default flags.
    pub fn new(store: &'a Store, image: Image, command: Vec<String>) -> Self {
        let namespaces = NamespaceArgs {
            root: store.root().to_path_buf(),
            ..NamespaceArgs::default()
        };
        ContainerRequest {
            store,
            image,
            command,
            entrypoint: None,
            process: ProcessArgs::default(),
            namespaces,
            cgroup: None,
            commit: None,
            created_by: None,
            untagged_commit: false,
            commit_on_failure: true,
        }
    }

    // ANCHOR: build
    /// Container `id` of the image, on `network`: stage 02's container (stage 03's, with
    /// `cgroup`), whose root is an overlay of the image's layers. Nothing exists on the host
    /// until the features' `prepare` runs.
    pub fn build(self, id: ContainerId, network: &NetworkMode) -> anyhow::Result<Container> {
        let image = &self.image;
        let config = image.config.config().clone().unwrap_or_default();
        let spec = crate::run::image_process(&config, self.entrypoint.as_deref(), &self.command)?;

        let mut process = Process::new(spec.args);
        for entry in &spec.env {
            if let Some((key, value)) = entry.split_once('=') {
                process.set_env(key, value);
            }
        }
        let mut make_dirs = Vec::new();
        if let Some(workdir) = &spec.workdir {
            process.cwd = workdir.clone();
            make_dirs.push(workdir.clone());
        }
        self.process.apply(&mut process)?;
        let mut namespaces = self.namespaces.clone();
        if namespaces.user.is_none() {
            namespaces.user = spec.user.clone();
        }

        // The root is where the overlay will be mounted; until then the image's files are read
        // through its layers.
        let dir = namespaces.root.join("containers").join(id.full());
        let rootfs = rootfs_of(&dir);
        let layers = self.store.layer_dirs_of(image);
        let read = |path: &str| read_through(&layers, path);
        let mut below = Prepared::new(process);
        below.add(ChangeRoot::new(&rootfs));
        let base = Base {
            prepared: below,
            rootfs,
            read: &read,
            id,
            network: network.clone(),
        };
        let mut container = match &self.cgroup {
            Some(cgroup) => cgroups::cli::prepare(base, &namespaces, cgroup)?,
            None => namespaces.prepare(base)?,
        };
        let mut overlay = Overlay::new(self.store, &image.id, layers.clone(), &dir, make_dirs);
        if let Some((tag, outcome)) = self.commit {
            let comment = self
                .created_by
                .is_none()
                .then(|| "skiff run --commit".to_string());
            let created_by = self.created_by.unwrap_or_else(|| {
                format!(
                    "skiff run --commit: {}",
                    container.prepared.process.args.join(" ")
                )
            });
            overlay = overlay.commit_to(CommitRequest {
                tag: (!self.untagged_commit).then_some(tag),
                created_by,
                comment,
                on_failure: self.commit_on_failure,
                config,
                outcome,
            });
        }
        // Its slot puts it after the state directory (which holds the mount) and before the
        // root change (which needs the mounted root).
        container.prepared.add(overlay);
        Ok(container)
    }
    // ANCHOR_END: build
}
