//! COPY and ADD without a container: the files are laid out in a directory of changes, which
//! becomes the step's layer.
//!
//! A layer is a directory tree holding what a step added, at the paths it has in the image. A
//! RUN gets it from overlayfs (the container's upper directory); a COPY can write it directly:
//! [`Layout`] puts every item of a [`CopyPlan`] into a fresh *changes* directory, which
//! [`crate::image::create_image`] then packs. The rules, Docker's:
//!
//! - a file keeps its permission bits (or `--chmod`'s) and its modification time, and belongs to
//!   root, or to `--chown`'s user and group;
//! - a directory the image already has keeps its mode and owner (the layer holds a copy of it,
//!   so that overlayfs shows it unchanged); a new one takes the source's mode and the owner;
//! - missing parent directories are created `0755`, owned by root;
//! - paths are followed through the image's symlinks ([`ImageTree::resolve`]): with `/bin ->
//!   usr/bin`, `COPY x /bin/x` writes `usr/bin/x`, and the link keeps working;
//! - ADD unpacks a local tar archive into the destination with the hardened layer unpacker
//!   ([`crate::unpack`]), keeping the archive's owners and modes;
//! - every source is read through the build context held open, without following a symlink
//!   ([`BuildContext::open_file`]): a file swapped for a link since the plan was made is refused.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::tree::ImageTree;
use crate::dockerfile::{BuildContext, CopyPlan, ItemKind, Owner};

/// A failed file operation of a layout: what, on which path, and why.
#[derive(Debug)]
pub struct LayoutError {
    /// What was being done ("copy to", "create directory").
    pub context: &'static str,
    /// The path in the changes directory (or the source).
    pub path: PathBuf,
    /// What the system said.
    pub source: io::Error,
}

/// Attaches what was being done, and where, to an I/O error.
fn at(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError {
        context,
        path,
        source,
    }
}

type Result<T> = std::result::Result<T, LayoutError>;

/// Files being laid out in a changes directory, on top of an image.
pub struct Layout<'a> {
    image: &'a ImageTree,
    changes: PathBuf,
    /// Where an ADD unpacks an archive first (it must not exist; it is removed after).
    unpack_dir: PathBuf,
    /// Whether files can be given away (chown needs root; tests may run without).
    is_root: bool,
    /// Modification times of copied directories, set last: adding files inside changes them.
    dir_times: Vec<(PathBuf, SystemTime)>,
    /// Entries an unpacked archive left out, with the reason.
    pub warnings: Vec<String>,
}

impl<'a> Layout<'a> {
    /// Lays out into `changes` (an empty directory standing for the image's `/`) on top of
    /// `image`. `unpack_dir` is a path next to it, not yet existing, for ADD's archives.
    pub fn new(image: &'a ImageTree, changes: &Path, unpack_dir: &Path) -> Self {
        Layout {
            image,
            changes: changes.to_path_buf(),
            unpack_dir: unpack_dir.to_path_buf(),
            is_root: nix::unistd::geteuid().is_root(),
            dir_times: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Where the image path `path` is in the changes directory.
    fn host(&self, path: &str) -> PathBuf {
        self.changes.join(path.trim_start_matches('/'))
    }

    // ANCHOR: copy
    /// Lays out everything `plan` copies from `context`, owned by `owner`.
    pub fn copy(&mut self, plan: &CopyPlan, context: &BuildContext, owner: Owner) -> Result<()> {
        for item in &plan.items {
            // Only the last component of a file or link is not followed: it is replaced.
            let follow_last = matches!(item.kind, ItemKind::Dir | ItemKind::Extract { .. });
            let path = self
                .image
                .resolve(&item.dest, follow_last)
                .map_err(at("resolve", Path::new(&item.dest)))?;
            self.make_parents(&path)?;
            match &item.kind {
                ItemKind::Dir => {
                    let (host, created) = self.ensure_dir(&path, item.mode, owner)?;
                    if created
                        && let Ok(time) = context
                            .symlink_metadata(&item.context_path)
                            .and_then(|m| m.modified())
                    {
                        self.dir_times.push((host, time));
                    }
                }
                ItemKind::File => {
                    // Opened through the context, no symlink followed: what was checked.
                    let mut source = context
                        .open_file(&item.context_path)
                        .map_err(at("read", &item.source))?;
                    let meta = source.metadata().map_err(at("read", &item.source))?;
                    let host = self.replace(&path)?;
                    let mut file = fs::File::create(&host).map_err(at("copy to", &host))?;
                    io::copy(&mut source, &mut file).map_err(at("copy to", &host))?;
                    self.set_owner(&host, owner)?;
                    set_mode(&host, item.mode)?;
                    set_mtime(&host, &meta)?;
                }
                ItemKind::Symlink(target) => {
                    let host = self.replace(&path)?;
                    std::os::unix::fs::symlink(target, &host)
                        .map_err(at("create symlink", &host))?;
                    self.set_owner(&host, owner)?;
                    let meta = context
                        .symlink_metadata(&item.context_path)
                        .map_err(at("read", &item.source))?;
                    set_mtime(&host, &meta)?;
                }
                ItemKind::Extract { .. } => {
                    let archive = context
                        .open_file(&item.context_path)
                        .map_err(at("read", &item.source))?;
                    let (host, _) = self.ensure_dir(&path, 0o755, Owner::ROOT)?;
                    self.extract(archive, &item.source, &host)?;
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: copy

    /// Creates the directory `path` (WORKDIR), owned by `owner` when it is new.
    pub fn make_dir(&mut self, path: &str, owner: Owner) -> Result<()> {
        let path = self
            .image
            .resolve(path, true)
            .map_err(at("resolve", Path::new(path)))?;
        self.make_parents(&path)?;
        self.ensure_dir(&path, 0o755, owner)?;
        Ok(())
    }

    /// Sets the copied directories' times, now that nothing more is added to them.
    pub fn finish(&mut self) -> Result<()> {
        for (dir, time) in self.dir_times.drain(..).rev() {
            let file = fs::File::open(&dir).map_err(at("open", &dir))?;
            file.set_modified(time)
                .map_err(at("set the time of", &dir))?;
        }
        Ok(())
    }

    /// Creates the missing directories above `path` (root's, `0755`, unless the image has them).
    fn make_parents(&mut self, path: &str) -> Result<()> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for end in 1..parts.len() {
            let parent = format!("/{}", parts[..end].join("/"));
            self.ensure_dir(&parent, 0o755, Owner::ROOT)?;
        }
        Ok(())
    }

    /// Makes sure the changes hold directory `path`. A directory of the image is copied with
    /// its mode and owner; a new one gets `mode` and `owner`. Returns where it is, and whether
    /// it is new to the image.
    fn ensure_dir(&mut self, path: &str, mode: u32, owner: Owner) -> Result<(PathBuf, bool)> {
        let host = self.host(path);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.is_dir() => return Ok((host, false)),
            Ok(_) => fs::remove_file(&host).map_err(at("replace", &host))?,
            Err(_) => {}
        }
        fs::create_dir(&host).map_err(at("create directory", &host))?;
        let existing = self.image.lookup(path).filter(|(_, meta)| meta.is_dir());
        let (mode, owner) = match &existing {
            Some((_, meta)) => (
                meta.mode() & 0o7777,
                Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
            ),
            None => (mode, owner),
        };
        self.set_owner(&host, owner)?;
        set_mode(&host, mode)?;
        Ok((host, existing.is_none()))
    }

    /// Clears the way for a file or link at `path`: whatever an earlier item put there goes.
    fn replace(&self, path: &str) -> Result<PathBuf> {
        let host = self.host(path);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&host).map_err(at("replace", &host))?,
            Ok(_) => fs::remove_file(&host).map_err(at("replace", &host))?,
            Err(_) => {}
        }
        Ok(host)
    }

    fn set_owner(&self, path: &Path, owner: Owner) -> Result<()> {
        if !self.is_root {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
            .map_err(at("set the owner of", path))
    }

    /// ADD of a local archive (`file`, named `archive` in messages): unpacked aside with the
    /// layer unpacker, then moved into `dir`.
    fn extract(&mut self, file: fs::File, archive: &Path, dir: &Path) -> Result<()> {
        let size = file.metadata().map_err(at("read", archive))?.len();
        let budget = crate::bounded::Budget::for_compressed(size);
        let result = crate::unpack::unpack_within(file, &self.unpack_dir, budget)
            .map_err(|e| LayoutError {
                context: "unpack",
                path: archive.to_path_buf(),
                source: io::Error::other(e.to_string()),
            })
            .and_then(|unpacked| {
                self.warnings.extend(unpacked.warnings);
                merge(&self.unpack_dir, dir, self.is_root)
            });
        let _ = fs::remove_dir_all(&self.unpack_dir);
        result
    }
}

/// Moves everything in `from` into `into`: directories on both sides are merged (the archive's
/// metadata wins), anything else in the way is replaced.
fn merge(from: &Path, into: &Path, is_root: bool) -> Result<()> {
    for entry in fs::read_dir(from).map_err(at("list", from))? {
        let entry = entry.map_err(at("list", from))?;
        let (src, dst) = (entry.path(), into.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(at("read", &src))?;
        match fs::symlink_metadata(&dst) {
            Ok(existing) if existing.is_dir() && meta.is_dir() => {
                merge(&src, &dst, is_root)?;
                if is_root {
                    std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))
                        .map_err(at("set the owner of", &dst))?;
                }
                set_mode(&dst, meta.mode() & 0o7777)?;
                set_mtime(&dst, &meta)?;
                continue;
            }
            Ok(existing) if existing.is_dir() => {
                fs::remove_dir_all(&dst).map_err(at("replace", &dst))?
            }
            Ok(_) => fs::remove_file(&dst).map_err(at("replace", &dst))?,
            Err(_) => {}
        }
        fs::rename(&src, &dst).map_err(at("move into place", &dst))?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(at("set the mode of", path))
}

/// Gives `path` (a link itself, not what it points to) the modification time in `meta`.
fn set_mtime(path: &Path, meta: &Metadata) -> Result<()> {
    let since_epoch = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::from_duration(since_epoch),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|errno| at("set the time of", path)(errno.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{BuildArgs, BuildContext, Dockerfile, ImageConfig, Step};
    use crate::testutil::{is_root, tree};
    use std::os::unix::fs::symlink;

    /// The last step of `FROM scratch` + `lines`.
    fn step(lines: &str) -> Step {
        let df = Dockerfile::parse("Dockerfile", &format!("FROM scratch\n{lines}\n")).unwrap();
        let args = BuildArgs::new();
        let plan = df
            .single_stage(&args)
            .unwrap()
            .plan(&ImageConfig::scratch(), &args)
            .unwrap();
        plan.steps.last().unwrap().clone()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        context: PathBuf,
        image: ImageTree,
        changes: PathBuf,
        unpack: PathBuf,
    }

    /// A context with a few files, an image with `/bin -> usr/bin` and a private `/home/app`.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("context");
        for (path, body, mode) in [
            ("app.sh", "#!/bin/sh\n", 0o755),
            ("conf/a.conf", "a\n", 0o644),
            ("conf/b.conf", "b\n", 0o600),
            ("conf/sub/c.conf", "c\n", 0o644),
            ("notes.txt", "notes\n", 0o644),
        ] {
            let p = context.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, body).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        symlink("a.conf", context.join("conf/link")).unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir_all(layer.join("usr/bin")).unwrap();
        fs::create_dir_all(layer.join("home/app")).unwrap();
        fs::set_permissions(layer.join("home/app"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("usr/bin", layer.join("bin")).unwrap();
        let changes = dir.path().join("changes");
        fs::create_dir(&changes).unwrap();
        Fixture {
            context,
            image: ImageTree::new(vec![layer]),
            changes,
            unpack: dir.path().join("unpack"),
            _dir: dir,
        }
    }

    fn lay_out(f: &Fixture, line: &str, owner: Owner) {
        let context = BuildContext::open(&f.context).unwrap();
        let plan = context
            .resolve(&step(line), &|p| f.image.is_dir(p))
            .unwrap();
        let mut layout = Layout::new(&f.image, &f.changes, &f.unpack);
        layout.copy(&plan, &context, owner).unwrap();
        layout.finish().unwrap();
    }

    #[test]
    fn a_source_swapped_for_a_symlink_after_the_plan_is_not_followed() {
        let f = fixture();
        let secret = f.context.parent().unwrap().join("host-secret");
        fs::write(&secret, "host secret\n").unwrap();
        let context = BuildContext::open(&f.context).unwrap();
        for line in ["COPY conf /etc/app/", "COPY conf/a.conf /etc/a.conf"] {
            let plan = context
                .resolve(&step(line), &|p| f.image.is_dir(p))
                .unwrap();
            // Between the check and the copy, the file becomes a link to a host file...
            let file = f.context.join("conf/a.conf");
            let original = fs::read(&file).unwrap();
            fs::remove_file(&file).unwrap();
            symlink(&secret, &file).unwrap();
            let mut layout = Layout::new(&f.image, &f.changes, &f.unpack);
            let err = layout.copy(&plan, &context, Owner::ROOT).unwrap_err();
            // ...which is refused, not followed.
            assert_eq!(err.source.kind(), io::ErrorKind::PermissionDenied, "{line}");
            assert!(
                err.source.to_string().contains("symbolic link"),
                "{}",
                err.source
            );
            assert!(err.path.ends_with("conf/a.conf"), "{}", err.path.display());
            let copied = fs::read_to_string(f.changes.join("etc/app/a.conf"))
                .or_else(|_| fs::read_to_string(f.changes.join("etc/a.conf")));
            assert!(!copied.is_ok_and(|t| t.contains("host secret")));
            fs::remove_file(&file).unwrap();
            fs::write(&file, original).unwrap();
        }
        // A directory on the way swapped for a link to a host directory: refused as well.
        let plan = context
            .resolve(&step("COPY conf/a.conf /a.conf"), &|p| f.image.is_dir(p))
            .unwrap();
        fs::rename(f.context.join("conf"), f.context.join("conf.old")).unwrap();
        symlink(secret.parent().unwrap(), f.context.join("conf")).unwrap();
        fs::write(secret.parent().unwrap().join("a.conf"), "host secret\n").unwrap();
        let mut layout = Layout::new(&f.image, &f.changes, &f.unpack);
        assert!(layout.copy(&plan, &context, Owner::ROOT).is_err());
        assert!(!f.changes.join("a.conf").exists());
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn files_land_at_their_destination_with_parents() {
        let f = fixture();
        lay_out(&f, "COPY app.sh /srv/bin/", Owner::ROOT);
        lay_out(&f, "COPY notes.txt /srv/README", Owner::ROOT);
        assert_eq!(
            tree(&f.changes),
            ["srv", "srv/README", "srv/bin", "srv/bin/app.sh"]
        );
        assert_eq!(mode(&f.changes.join("srv/bin/app.sh")), 0o755);
        assert_eq!(mode(&f.changes.join("srv")), 0o755);
        assert_eq!(
            fs::read_to_string(f.changes.join("srv/README")).unwrap(),
            "notes\n"
        );
        // The source's modification time is kept.
        let source = fs::metadata(f.context.join("app.sh"))
            .unwrap()
            .modified()
            .unwrap();
        let copied = fs::metadata(f.changes.join("srv/bin/app.sh"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(source, copied);
    }

    #[test]
    fn a_directory_copies_its_contents_and_links_stay_links() {
        let f = fixture();
        lay_out(&f, "COPY conf /etc/app", Owner::ROOT);
        assert_eq!(
            tree(&f.changes),
            [
                "etc",
                "etc/app",
                "etc/app/a.conf",
                "etc/app/b.conf",
                "etc/app/link",
                "etc/app/sub",
                "etc/app/sub/c.conf"
            ]
        );
        assert_eq!(mode(&f.changes.join("etc/app/b.conf")), 0o600);
        assert_eq!(
            fs::read_link(f.changes.join("etc/app/link")).unwrap(),
            Path::new("a.conf")
        );
    }

    #[test]
    fn symlinks_of_the_image_are_followed() {
        let f = fixture();
        // /bin is a link to usr/bin in the image: the file goes where the link leads, so the
        // layer holds no `bin/` directory that would hide the link.
        lay_out(&f, "COPY app.sh /bin/app", Owner::ROOT);
        assert_eq!(tree(&f.changes), ["usr", "usr/bin", "usr/bin/app"]);
    }

    #[test]
    fn a_destination_the_image_has_as_a_directory_takes_the_file_inside() {
        let f = fixture();
        // No trailing slash, but /home/app is a directory of the image: the file goes in it.
        lay_out(&f, "COPY notes.txt /home/app", Owner::ROOT);
        // The same through a symlink to a directory.
        lay_out(&f, "COPY app.sh /bin", Owner::ROOT);
        // A path the image does not have names the file itself.
        lay_out(&f, "COPY notes.txt /srv/notes", Owner::ROOT);
        assert_eq!(
            tree(&f.changes),
            [
                "home",
                "home/app",
                "home/app/notes.txt",
                "srv",
                "srv/notes",
                "usr",
                "usr/bin",
                "usr/bin/app.sh"
            ]
        );
    }

    #[test]
    fn existing_directories_keep_their_mode_and_owner() {
        let f = fixture();
        lay_out(&f, "COPY notes.txt /home/app/", Owner::ROOT);
        assert_eq!(mode(&f.changes.join("home/app")), 0o700, "as in the image");
        assert_eq!(mode(&f.changes.join("home")), 0o755);
    }

    #[test]
    fn chown_owns_everything_copied_but_not_the_parents() {
        if !is_root() {
            eprintln!("skipped: giving files away needs root");
            return;
        }
        let f = fixture();
        let owner = Owner { uid: 1000, gid: 50 };
        lay_out(&f, "COPY --chown=1000:50 conf /opt/app/conf", owner);
        let owner_of = |p: &str| {
            let m = fs::symlink_metadata(f.changes.join(p)).unwrap();
            (m.uid(), m.gid())
        };
        for path in [
            "opt/app/conf",
            "opt/app/conf/a.conf",
            "opt/app/conf/link",
            "opt/app/conf/sub",
            "opt/app/conf/sub/c.conf",
        ] {
            assert_eq!(owner_of(path), (1000, 50), "{path}");
        }
        assert_eq!(owner_of("opt"), (0, 0), "created parents belong to root");
        assert_eq!(owner_of("opt/app"), (0, 0));
    }

    #[test]
    fn add_unpacks_a_tar_into_the_destination() {
        let f = fixture();
        let tar = crate::testutil::LayerTar::new()
            .dir("site")
            .file("site/index.html", b"<h1>hi</h1>")
            .file("top.txt", b"top")
            .bytes();
        fs::write(f.context.join("site.tar"), &tar).unwrap();
        lay_out(&f, "ADD site.tar /srv/", Owner::ROOT);
        assert_eq!(
            tree(&f.changes),
            ["srv", "srv/site", "srv/site/index.html", "srv/top.txt"]
        );
        assert!(!f.unpack.exists(), "the unpack directory is removed");
    }

    #[test]
    fn workdir_makes_its_directory() {
        let f = fixture();
        let mut layout = Layout::new(&f.image, &f.changes, &f.unpack);
        layout.make_dir("/app/data", Owner::ROOT).unwrap();
        assert_eq!(tree(&f.changes), ["app", "app/data"]);
    }

    #[test]
    fn a_destination_through_a_link_to_the_host_stays_in_the_image() {
        // An image whose /etc and /up lead to a directory of the host, absolutely and by `..`.
        let f = fixture();
        let host = f._dir.path().join("host");
        fs::create_dir_all(&host).unwrap();
        let layer = f._dir.path().join("evil");
        fs::create_dir_all(&layer).unwrap();
        symlink(&host, layer.join("etc")).unwrap();
        symlink("../../../../../../../../..", layer.join("up")).unwrap();
        let image = ImageTree::new(vec![layer]);
        let context = BuildContext::open(&f.context).unwrap();
        for line in ["COPY notes.txt /etc/notes", "COPY app.sh /up/tmp/app.sh"] {
            let plan = context.resolve(&step(line), &|p| image.is_dir(p)).unwrap();
            let mut layout = Layout::new(&image, &f.changes, &f.unpack);
            layout.copy(&plan, &context, Owner::ROOT).unwrap();
        }
        assert_eq!(fs::read_dir(&host).unwrap().count(), 0);
        let inside = f.changes.join(host.strip_prefix("/").unwrap());
        assert!(inside.join("notes").is_file());
        assert!(f.changes.join("tmp/app.sh").is_file());
    }
}
