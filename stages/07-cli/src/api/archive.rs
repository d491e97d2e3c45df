//! A container's files through the API: `GET`, `HEAD` and `PUT /containers/{id}/archive`
//! (what `docker cp` sends, both ways), `GET /containers/{id}/export` and
//! `GET /containers/{id}/changes` — `skiff cp`, `skiff export` and `skiff diff` served
//! ([`crate::cp`], [`crate::export`], [`crate::diff`]), each path resolved inside the container's
//! root ([`crate::beneath`]) as the CLI resolves it.
//!
//! The docker CLI does the half of `cp` that is about the host: it decides from a *stat* of the
//! container's path where things land, renames the tar's top entry itself, and asks the server
//! only for "the tar of this path" (`GET`) or "extract this tar into this directory" (`PUT`).
//! The stat travels in a header, `X-Docker-Container-Path-Stat`: base64 of
//! `{"name","size","mode","mtime","linkTarget"}`, where `mode` is Go's `os.FileMode` (the
//! permission bits, and the type in the high bits: 1<<31 a directory, 1<<27 a symlink...),
//! which `HEAD` answers alone. Reference: Engine API v1.41, ContainerArchive,
//! ContainerArchiveInfo, PutContainerArchive, ContainerExport, ContainerChanges.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, SFlag};
use serde_json::json;

use super::containers::find;
use super::http::{self, Body, Conn, Reader, Request, Streamed};
use super::{ApiError, Next, Reply, Service};
use crate::archive::{Extractor, Owner, Packer, kind};
use crate::container::Record;
use crate::cp;
use crate::rootfs::View;

/// A chunked answer's body as a `Write`: each write one chunk.
struct Chunks<'a>(&'a mut Conn);

impl Write for Chunks<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        http::chunk(self.0, data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `path` parameter; 400 without one.
fn path_param(request: &Request) -> Result<&str, ApiError> {
    request
        .param("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::new(400, "bad parameter: path cannot be empty"))
}

// ANCHOR: go_mode
/// A stat's mode as Go's `os.FileMode`: the permission bits (with setuid, setgid and sticky
/// moved to Go's own bits) and the file's type in the high bits.
pub fn go_mode(stat: &FileStat) -> u32 {
    let mut mode = stat.st_mode & 0o777;
    mode |= match kind(stat) {
        SFlag::S_IFDIR => 1 << 31,
        SFlag::S_IFLNK => 1 << 27,
        SFlag::S_IFBLK => 1 << 26,
        SFlag::S_IFCHR => (1 << 26) | (1 << 21),
        SFlag::S_IFIFO => 1 << 25,
        SFlag::S_IFSOCK => 1 << 24,
        _ => 0,
    };
    for (unix, go) in [(0o4000, 1 << 23), (0o2000, 1 << 22), (0o1000, 1 << 20)] {
        if stat.st_mode & unix != 0 {
            mode |= go;
        }
    }
    mode
}
// ANCHOR_END: go_mode

/// What the archive endpoints found at a container's path.
struct Found {
    fs: crate::rootfs::ContainerFs,
    parent: std::os::fd::OwnedFd,
    name: String,
    stat: FileStat,
}

/// `path` in the container `record`: its parent resolved inside the container's root, the
/// last name not followed; 404 in Docker's words when there is none.
fn locate(service: &Service, record: &Record, path: &str) -> Result<Found, ApiError> {
    let fs = crate::rootfs::open(&service.root, record, View::Process)?;
    let not_found = || ApiError::new(404, cp::not_found(path, &record.name).to_string());
    let (parent, name) = fs
        .root
        .parent(&crate::beneath::clean(path))
        .map_err(|_| not_found())?;
    let name = name.unwrap_or_else(|| ".".into());
    let stat = nix::sys::stat::fstatat(parent.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|_| not_found())?;
    Ok(Found {
        fs,
        parent,
        name,
        stat,
    })
}

/// The header `X-Docker-Container-Path-Stat` for what was found at `path`.
fn stat_header(found: &Found, path: &str) -> String {
    let link_target = if kind(&found.stat) == SFlag::S_IFLNK {
        nix::fcntl::readlinkat(found.parent.as_fd(), found.name.as_str())
            .map(|target| {
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    target
                } else {
                    let dir = cp::dir_name(&format!("/{}", crate::beneath::clean(path)));
                    format!("/{}", crate::beneath::clean(&format!("{dir}/{target}")))
                }
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(found.stat.st_mtime).unwrap_or(0));
    let name = cp::base_name(path);
    let stat = json!({
        "name": name,
        "size": found.stat.st_size,
        "mode": go_mode(&found.stat),
        "mtime": humantime::format_rfc3339_seconds(mtime).to_string(),
        "linkTarget": link_target,
    });
    base64::engine::general_purpose::STANDARD.encode(stat.to_string())
}

// ANCHOR: get
/// `GET /containers/{id}/archive?path=SRC`: the tar of SRC (its contents for `SRC/.`), named as
/// `skiff cp CONTAINER:SRC -` names it, with the stat header; `HEAD` the header alone.
pub fn get(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let path = path_param(request)?;
    let found = locate(service, &record, path)?;
    let is_dir = kind(&found.stat) == SFlag::S_IFDIR;
    if (path.ends_with('/') || cp::contents_only(path)) && !is_dir {
        return Err(ApiError::new(
            400,
            format!("not a directory: {path} in container {}", record.name),
        ));
    }
    let header = format!(
        "X-Docker-Container-Path-Stat: {}\r\n",
        stat_header(&found, path)
    );
    if request.method == "HEAD" {
        http::respond_with(conn, request, 200, "application/x-tar", &header, &[])?;
        return Ok(Next::KeepAlive);
    }
    let top = if cp::contents_only(path) && is_dir {
        PathBuf::from(".")
    } else {
        PathBuf::from(cp::base_name(path))
    };
    http::start_chunked_with(conn, 200, "application/x-tar", &header)?;
    let packed = (|| -> io::Result<()> {
        let out = io::BufWriter::with_capacity(64 * 1024, Chunks(conn));
        let mut packer = Packer::new(out, false, crate::rootfs::ids(&record));
        packer.entry(found.parent.as_fd(), OsStr::new(&found.name), &top)?;
        packer.finish()?.flush()
    })();
    drop(found.fs);
    if packed.is_err() {
        // Half an archive: the answer cannot be finished, so the connection is.
        return Ok(Next::Close);
    }
    http::end_chunked(conn)?;
    Ok(Next::KeepAlive)
}
// ANCHOR_END: get

// ANCHOR: put
/// `PUT /containers/{id}/archive?path=DIR&copyUIDGID=1`: extracts the tar in the body into the
/// directory DIR of the container, as `skiff cp - CONTAINER:DIR` does: owned by the
/// container's root, or by the archive's owners with `copyUIDGID`.
pub fn put(
    service: &Service,
    conn: &mut Conn,
    request: &Request,
    reader: &mut Reader,
    key: &str,
) -> Reply {
    let streamed = request.streamed.unwrap_or(Streamed::Length(0));
    let mut body = Body::new(reader, conn, streamed);
    let extracted = extract(service, request, &mut body, key);
    // What the tar left unread (its end's padding), so the next request starts where it should.
    let drained = io::copy(&mut body, &mut io::sink()).is_ok() && body.is_done();
    let answered = match extracted {
        Ok(()) => super::empty(conn, request, 200),
        Err(e) => super::error(conn, request, e.status, &e.message)
            .map(|()| Next::KeepAlive)
            .map_err(ApiError::from),
    };
    // A body that could not be read to its end leaves the connection out of step.
    if drained {
        answered
    } else {
        answered.map(|_| Next::Close)
    }
}

fn extract(
    service: &Service,
    request: &Request,
    body: &mut Body<'_>,
    key: &str,
) -> Result<(), ApiError> {
    let record = find(service, key)?;
    let path = path_param(request)?;
    let fs = crate::rootfs::open(&service.root, &record, View::Process)?;
    let dir = fs
        .root
        .open(path, OFlag::O_PATH)
        .map_err(|_| ApiError::new(404, cp::not_found(path, &record.name).to_string()))?;
    if kind(&nix::sys::stat::fstat(&dir).map_err(io::Error::from)?) != SFlag::S_IFDIR {
        return Err(ApiError::new(400, "extraction point is not a directory"));
    }
    let ids = crate::rootfs::ids(&record);
    let owner = if request.flag("copyUIDGID") {
        Owner::Archive(ids)
    } else {
        Owner::Root(ids)
    };
    Extractor::new(&fs.root, path, owner)
        .extract(body)
        .map_err(|e| ApiError::from_anyhow(&e, 400))
}
// ANCHOR_END: put

/// `GET /containers/{id}/export`: `skiff export`'s tar, streamed.
pub fn export(service: &Service, conn: &mut Conn, key: &str) -> Reply {
    let record = find(service, key)?;
    http::start_chunked(conn, 200, "application/x-tar")?;
    if crate::export::write(&service.root, &record, Chunks(conn)).is_err() {
        return Ok(Next::Close);
    }
    http::end_chunked(conn)?;
    Ok(Next::KeepAlive)
}

/// `GET /containers/{id}/changes`: `skiff diff`'s lines as `[{"Path", "Kind"}]`, Kind 0
/// changed, 1 added, 2 deleted.
pub fn changes(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    if record.image_id.is_empty() {
        return Err(ApiError::new(
            400,
            format!(
                "container {} runs on a root directory, not on an image's layers: it has no changes to show",
                record.name
            ),
        ));
    }
    let changes = crate::diff::of(&service.root, &record)?;
    let list: Vec<_> = changes
        .iter()
        .map(|(path, change)| {
            let kind = match change {
                crate::diff::Kind::Changed => 0,
                crate::diff::Kind::Added => 1,
                crate::diff::Kind::Deleted => 2,
            };
            json!({ "Path": path, "Kind": kind })
        })
        .collect();
    super::json(conn, request, 200, &list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_gos_file_mode() {
        let dir = nix::sys::stat::stat("/").unwrap();
        assert_eq!(go_mode(&dir) >> 31, 1, "a directory has Go's ModeDir");
        assert_eq!(go_mode(&dir) & 0o777, dir.st_mode & 0o777);
        let tmp = nix::sys::stat::stat("/tmp").unwrap();
        assert_ne!(go_mode(&tmp) & (1 << 20), 0, "/tmp's sticky bit");
        let file = nix::sys::stat::stat("/etc/hostname")
            .or_else(|_| nix::sys::stat::stat("/etc/passwd"))
            .unwrap();
        assert_eq!(go_mode(&file) >> 24, 0, "a regular file has no type bits");
    }
}
