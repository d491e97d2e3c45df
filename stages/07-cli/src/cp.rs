//! `cp`: files between a container and the host, both ways. See docker-container-cp(1).
//!
//! `skiff cp CONTAINER:SRC DEST` and `skiff cp SRC CONTAINER:DEST` move a file or a tree as
//! a tar stream, as Docker does (`-` for DEST writes that tar to stdout; `-` for SRC extracts
//! one from stdin). Docker's path rules decide where it lands:
//!
//! - DEST an existing directory: SRC goes *into* it, under its own name; a SRC that ends in
//!   `/.` gives its contents instead;
//! - DEST missing: SRC is created *as* DEST (its parent must exist; a DEST ending in `/` must
//!   be an existing directory);
//! - DEST an existing file: a file SRC replaces it; a directory SRC is an error.
//!
//! Every path in the container is resolved inside its root ([`crate::beneath`]): a symlink
//! there is followed as the container would follow it, never out to the host
//! (CVE-2018-15664). Without `-a`, what lands in the container belongs to its root; with `-a`
//! it keeps the owners it had. A stopped container works too ([`crate::rootfs`]).

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;
use nix::fcntl::OFlag;

use crate::archive::{Extractor, Ids, Owner, Packer};
use crate::rootfs::View;

/// `cp`'s flags.
#[derive(Args)]
pub struct CpArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a local SRC_PATH, or - (a tar on stdin)
    #[arg(value_name = "SRC")]
    pub src: String,
    /// CONTAINER:DEST_PATH, a local DEST_PATH, or - (a tar on stdout)
    #[arg(value_name = "DEST")]
    pub dest: String,
}

// ANCHOR: split
/// `CONTAINER:PATH` or a local path, as Docker splits a cp argument: an absolute path, or one
/// whose part before the first `:` starts with `.`, is local (`./file:name`).
pub fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') && !container.is_empty() => {
            (Some(container), path)
        }
        _ => (None, arg),
    }
}
// ANCHOR_END: split

/// `cp`.
pub fn command(args: &CpArgs) -> anyhow::Result<i32> {
    match (split(&args.src), split(&args.dest)) {
        ((Some(_), _), (Some(_), _)) => bail!("copying between containers is not supported"),
        ((None, _), (None, _)) => bail!("must specify at least one container source"),
        ((Some(container), src), (None, dest)) => from_container(args, container, src, dest),
        ((None, src), (Some(container), dest)) => to_container(args, src, container, dest),
    }
}

/// Where a copy lands: a directory that exists, and the name its top entry takes there
/// (`None`: the source's contents, without a top entry).
pub(crate) struct Landing<Dir> {
    pub(crate) dir: Dir,
    pub(crate) name: Option<PathBuf>,
}

/// What is known of the destination.
pub(crate) struct Destination {
    pub(crate) exists: bool,
    pub(crate) is_dir: bool,
}

// ANCHOR: rules
/// Docker's rules (its `PrepareArchiveCopy`): where SRC lands, given what DEST is. `dest` is
/// DEST as typed, `parent` its directory, `src_name` the source's name, `contents` that SRC
/// ended in `/.`.
pub(crate) fn landing<Dir>(
    dest: &str,
    found: &Destination,
    src_is_dir: bool,
    contents: bool,
    src_name: &OsStr,
    dir: Dir,
    parent: Dir,
) -> anyhow::Result<Landing<Dir>> {
    let dest_name = PathBuf::from(base_name(dest));
    Ok(match (found.exists, found.is_dir) {
        (true, true) if contents && src_is_dir => Landing { dir, name: None },
        (true, true) => Landing {
            dir,
            name: Some(PathBuf::from(src_name)),
        },
        (true, false) if src_is_dir => bail!("cannot copy directory"),
        (false, _) if !src_is_dir && dest.ends_with('/') => bail!("no such directory"),
        _ => Landing {
            dir: parent,
            name: Some(dest_name),
        },
    })
}
// ANCHOR_END: rules

/// The last component of a path as typed (`/a/b/` is `b`; `/a/b/.` is `.`).
pub fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, name)) => name,
        None if trimmed.is_empty() => "/",
        None => trimmed,
    }
}

/// The directory part of a path as typed (`a` is `.`; `/a` is `/`).
pub fn dir_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    }
}

/// SRC ends in `/.`: its contents, not itself.
pub fn contents_only(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// An error as Go prints it (`no such file or directory`), for Docker's messages.
fn go_error(e: &std::io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    };
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// Docker's words for a path the container does not have.
pub fn not_found(path: &str, container: &str) -> anyhow::Error {
    anyhow::anyhow!("Could not find the file {path} in container {container}")
}

// ANCHOR: from_container
/// `cp CONTAINER:SRC DEST`.
fn from_container(args: &CpArgs, container: &str, src: &str, dest: &str) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, container)?;
    let fs = crate::rootfs::open(root, &record, View::Process)?;
    let mut path = crate::beneath::clean(src);
    if args.follow_link {
        path = follow(&fs.root, &path).map_err(|_| not_found(src, container))?;
    }
    // The parent resolved in the container's root; the last name is never followed.
    let (parent, name) = fs
        .root
        .parent(&path)
        .map_err(|_| not_found(src, container))?;
    let name = name.unwrap_or_else(|| ".".into());
    let stat = nix::sys::stat::fstatat(
        parent.as_fd(),
        name.as_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|_| not_found(src, container))?;
    let src_is_dir = crate::archive::kind(&stat) == nix::sys::stat::SFlag::S_IFDIR;
    if (src.ends_with('/') || contents_only(src)) && !src_is_dir {
        bail!("not a directory: {src} in container {container}");
    }
    let ids = crate::rootfs::ids(&record);
    let contents = contents_only(src) && src_is_dir;
    if dest == "-" {
        // The archive of SRC, named as Docker names it: `src` or `.` for `src/.`.
        let top = if contents {
            PathBuf::from(".")
        } else {
            PathBuf::from(base_name(src))
        };
        let stdout = std::io::stdout().lock();
        let mut packer = Packer::new(std::io::BufWriter::new(stdout), false, ids);
        packer.entry(parent.as_fd(), OsStr::new(&name), &top)?;
        packer.finish()?.flush()?;
        return Ok(0);
    }
    let found = match std::fs::metadata(dest) {
        Ok(meta) => Destination {
            exists: true,
            is_dir: meta.is_dir(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir_name(dest);
            std::fs::metadata(&parent)
                .map_err(|e| anyhow::anyhow!("lstat {parent}: {}", go_error(&e)))?;
            Destination {
                exists: false,
                is_dir: false,
            }
        }
        Err(e) => bail!("stat {dest}: {e}"),
    };
    let landing = landing(
        dest,
        &found,
        src_is_dir,
        contents,
        OsStr::new(base_name(src)),
        PathBuf::from(dest),
        PathBuf::from(dir_name(dest)),
    )?;
    // A tar from the container's side, extracted on the host's: a pipe between two threads.
    let (reader, writer) = std::io::pipe().context("make a pipe")?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let packing = scope.spawn(|| -> anyhow::Result<()> {
            let mut packer = Packer::new(std::io::BufWriter::new(writer), false, ids);
            match &landing.name {
                Some(top) => packer.entry(parent.as_fd(), OsStr::new(&name), top)?,
                None => {
                    let dir = crate::beneath::open_at(
                        parent.as_fd(),
                        OsStr::new(&name),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    )?;
                    packer.contents(&dir, None)?;
                }
            }
            packer.finish()?.flush()?;
            Ok(())
        });
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_preserve_ownerships(args.archive);
        archive.set_overwrite(true);
        let unpacked = archive
            .unpack(&landing.dir)
            .with_context(|| format!("copy to {dest}"));
        drop(archive);
        let packed = packing
            .join()
            .map_err(|_| anyhow::anyhow!("the copy's reader panicked"))?;
        unpacked?;
        packed.with_context(|| format!("read {src} in container {container}"))
    })?;
    Ok(0)
}
// ANCHOR_END: from_container

/// `path` with its last component followed while it is a symlink (`-L`), as a path inside
/// the container: each link is read, never followed by the host.
fn follow(root: &crate::beneath::Root, path: &str) -> anyhow::Result<String> {
    let mut path = path.to_string();
    for _ in 0..40 {
        let (parent, Some(name)) = root.parent(&path)? else {
            return Ok(path);
        };
        match nix::fcntl::readlinkat(parent.as_fd(), name.as_str()) {
            Ok(target) => {
                let target = target.to_string_lossy().into_owned();
                path = if target.starts_with('/') {
                    crate::beneath::clean(&target)
                } else {
                    crate::beneath::clean(&format!("{}/{target}", dir_name(&format!("/{path}"))))
                };
            }
            Err(_) => return Ok(path),
        }
    }
    bail!("too many levels of symbolic links: {path}")
}

// ANCHOR: to_container
/// `cp SRC CONTAINER:DEST`.
fn to_container(args: &CpArgs, src: &str, container: &str, dest: &str) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, container)?;
    let fs = crate::rootfs::open(root, &record, View::Process)?;
    let ids = crate::rootfs::ids(&record);
    let owner = if args.archive {
        Owner::Archive(ids)
    } else {
        Owner::Root(ids)
    };
    // DEST as the container sees it: followed inside its root.
    let found = match fs.root.open(dest, OFlag::O_PATH) {
        Ok(fd) => Destination {
            exists: true,
            is_dir: crate::archive::kind(&nix::sys::stat::fstat(&fd)?)
                == nix::sys::stat::SFlag::S_IFDIR,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Destination {
            exists: false,
            is_dir: false,
        },
        Err(e) => bail!("resolve {dest} in container {container}: {e}"),
    };
    if src == "-" {
        if !found.is_dir {
            bail!("destination \"{container}:{dest}\" must be a directory");
        }
        let stdin = std::io::stdin().lock();
        Extractor::new(&fs.root, dest, owner).extract(stdin)?;
        return Ok(0);
    }
    let mut source = PathBuf::from(src);
    if args.follow_link {
        source = std::fs::canonicalize(src)
            .map_err(|e| anyhow::anyhow!("lstat {src}: {}", go_error(&e)))?;
    }
    let meta = std::fs::symlink_metadata(&source)
        .map_err(|e| anyhow::anyhow!("lstat {src}: {}", go_error(&e)))?;
    let src_is_dir = meta.is_dir();
    let contents = contents_only(src) && src_is_dir;
    let landing = landing(
        dest,
        &found,
        src_is_dir,
        contents,
        OsStr::new(base_name(src)),
        dest.to_string(),
        dir_name(&format!("/{}", crate::beneath::clean(dest))),
    )?;
    if fs
        .root
        .open(&landing.dir, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .is_err()
    {
        return Err(not_found(&landing.dir, container));
    }
    let host_parent = source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let host_name = source
        .file_name()
        .map_or_else(|| OsStr::new(".").to_owned(), ToOwned::to_owned);
    let parent = crate::beneath::Root::at(host_parent)
        .with_context(|| format!("open {}", host_parent.display()))?;
    let (reader, writer) = std::io::pipe().context("make a pipe")?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let packing = scope.spawn(|| -> anyhow::Result<()> {
            let mut packer = Packer::new(std::io::BufWriter::new(writer), false, Ids::default());
            match &landing.name {
                Some(top) => packer.entry(parent.fd(), &host_name, top)?,
                None => {
                    let dir = crate::beneath::open_at(
                        parent.fd(),
                        &host_name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    )?;
                    packer.contents(&dir, None)?;
                }
            }
            packer.finish()?.flush()?;
            Ok(())
        });
        let extracted = Extractor::new(&fs.root, &landing.dir, owner).extract(reader);
        let packed = packing
            .join()
            .map_err(|_| anyhow::anyhow!("the copy's reader panicked"))?;
        extracted?;
        packed.with_context(|| format!("read {src}"))
    })?;
    Ok(0)
}
// ANCHOR_END: to_container

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_dockers() {
        assert_eq!(split("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("-"), (None, "-"));
    }

    #[test]
    fn names_as_typed() {
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/b/."), ".");
        assert_eq!(base_name("b"), "b");
        assert_eq!(dir_name("/a/b"), "/a");
        assert_eq!(dir_name("/a"), "/");
        assert_eq!(dir_name("a"), ".");
        assert!(contents_only("/a/."));
        assert!(!contents_only("/a/"));
    }

    #[test]
    fn dockers_landing_rules() {
        let dir = Destination {
            exists: true,
            is_dir: true,
        };
        let file = Destination {
            exists: true,
            is_dir: false,
        };
        let none = Destination {
            exists: false,
            is_dir: false,
        };
        let land = |dest, found, src_dir, contents| {
            landing(dest, found, src_dir, contents, OsStr::new("src"), "D", "P")
                .map(|l| (l.dir, l.name.map(|n| n.display().to_string())))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            land("/d", &dir, false, false),
            Ok(("D", Some("src".into())))
        );
        assert_eq!(land("/d", &dir, true, true), Ok(("D", None)));
        assert_eq!(land("/d", &file, false, false), Ok(("P", Some("d".into()))));
        assert_eq!(
            land("/d", &file, true, false),
            Err("cannot copy directory".into())
        );
        assert_eq!(
            land("/d/", &none, false, false),
            Err("no such directory".into())
        );
        assert_eq!(land("/d", &none, true, false), Ok(("P", Some("d".into()))));
        assert_eq!(land("/d", &none, false, false), Ok(("P", Some("d".into()))));
    }
}
