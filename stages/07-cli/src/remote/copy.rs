//! `cp` through a daemon: the container's side is `GET`, `HEAD` and `PUT
//! /containers/{id}/archive?path=`, a tar stream whose top entry is named after the path; the
//! host's side is this process's. Where a copy lands follows Docker's rules, the same function
//! the local `cp` uses ([`crate::cp`]): into an existing directory under the source's name,
//! or as the destination's name in its parent. See docker-container-cp(1) and the Engine API
//! v1.41 ("ContainerArchive", "PutContainerArchive").

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

use super::http::{Client, DaemonError};
use super::{query, segment};
use crate::cp::{self, CpArgs, Destination};

/// `cp`, one way or the other.
pub fn command(client: &Client, args: &CpArgs) -> anyhow::Result<i32> {
    match (cp::split(&args.src), cp::split(&args.dest)) {
        ((Some(_), _), (Some(_), _)) => bail!("copying between containers is not supported"),
        ((None, _), (None, _)) => bail!("must specify at least one container source"),
        ((Some(container), src), (None, dest)) => from_container(client, container, src, dest),
        ((None, src), (Some(container), dest)) => to_container(client, args, src, container, dest),
    }
}

// ANCHOR: from_container
/// `cp CONTAINER:SRC DEST`: the daemon's archive of SRC, its entries renamed to where they
/// land, unpacked here by the `tar` crate (which keeps every entry inside the destination).
fn from_container(client: &Client, container: &str, src: &str, dest: &str) -> anyhow::Result<i32> {
    let path = format!(
        "/containers/{}/archive{}",
        segment(container),
        query([("path", src.to_string())])
    );
    let mut archive = client.call("GET", &path, None)?;
    if dest == "-" {
        io::copy(&mut archive, &mut io::stdout().lock()).context("write the archive")?;
        return Ok(0);
    }
    let mut entries = tar::Archive::new(archive);
    let mut entries = entries.entries().context("read the daemon's archive")?;
    let Some(first) = entries.next() else {
        return Ok(0);
    };
    let first = first.context("read the daemon's archive")?;
    let src_is_dir = first.header().entry_type().is_dir();
    let top = first
        .path()
        .context("read the daemon's archive")?
        .into_owned();
    let found = match std::fs::metadata(dest) {
        Ok(meta) => Destination {
            exists: true,
            is_dir: meta.is_dir(),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Destination {
            exists: false,
            is_dir: false,
        },
        Err(e) => bail!("stat {dest}: {e}"),
    };
    let src_name = top.file_name().unwrap_or(OsStr::new("."));
    let landing = cp::landing(
        dest,
        &found,
        src_is_dir,
        cp::contents_only(src),
        src_name,
        PathBuf::from(dest),
        PathBuf::from(cp::dir_name(dest)),
    )?;
    // Renamed on the way through a pipe, unpacked on the other side.
    let (reader, writer) = io::pipe().context("make a pipe")?;
    let dir = landing.dir.clone();
    let unpacker = std::thread::spawn(move || {
        let mut out = tar::Archive::new(reader);
        out.set_preserve_permissions(true);
        out.set_overwrite(true);
        out.unpack(&dir)
    });
    let mut renamed = tar::Builder::new(writer);
    let mut rename = |mut entry: tar::Entry<'_, super::http::Response>| -> anyhow::Result<()> {
        let path = entry
            .path()
            .context("read the daemon's archive")?
            .into_owned();
        let Some(rest) = below(&path, &top) else {
            return Ok(());
        };
        let name = match &landing.name {
            Some(name) => name.join(&rest),
            None if rest.as_os_str().is_empty() => return Ok(()),
            None => rest,
        };
        let mut header = entry.header().clone();
        let link = entry.link_name().ok().flatten().map(|l| l.into_owned());
        match link {
            Some(target) if header.entry_type().is_hard_link() => {
                // A hard link names another entry of the archive: renamed as the entries are.
                let target = below(&target, &top).map_or(target, |r| match &landing.name {
                    Some(name) => name.join(r),
                    None => r,
                });
                renamed.append_link(&mut header, &name, &target)?;
            }
            Some(target) => renamed.append_link(&mut header, &name, &target)?,
            None => renamed.append_data(&mut header, &name, &mut entry)?,
        }
        Ok(())
    };
    rename(first)?;
    for entry in entries {
        rename(entry.context("read the daemon's archive")?)?;
    }
    // The end of the archive, and of the pipe: the unpacker finishes.
    let mut pipe = renamed.into_inner()?;
    pipe.flush()?;
    drop(pipe);
    unpacker
        .join()
        .map_err(|_| anyhow::anyhow!("the copy's unpacker panicked"))?
        .with_context(|| format!("copy into {}", landing.dir.display()))?;
    Ok(0)
}
// ANCHOR_END: from_container

/// `path` below the archive's top entry `top`, if it is there (`top` itself is empty).
fn below(path: &Path, top: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(top).ok()?;
    // Nothing that climbs: the unpacker refuses it anyway, and it has no business here.
    rest.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        .then(|| rest.to_path_buf())
}

// ANCHOR: to_container
/// `cp SRC CONTAINER:DEST`: `HEAD .../archive?path=DEST` says whether DEST is there and a
/// directory; SRC goes as a tar stream, named where it lands, to `PUT .../archive?path=` of
/// the directory it lands in.
fn to_container(
    client: &Client,
    args: &CpArgs,
    src: &str,
    container: &str,
    dest: &str,
) -> anyhow::Result<i32> {
    let archive = |dir: &str| {
        format!(
            "/containers/{}/archive{}",
            segment(container),
            query([
                ("path", dir.to_string()),
                ("noOverwriteDirNonDir", "true".into()),
                ("copyUIDGID", args.archive.to_string()),
            ])
        )
    };
    if src == "-" {
        // A tar on stdin, unpacked in DEST as it is.
        let mut stdin = io::stdin().lock();
        client.call_with_stream("PUT", &archive(dest), "application/x-tar", &mut stdin)?;
        return Ok(0);
    }
    let meta = std::fs::symlink_metadata(src)
        .with_context(|| format!("lstat {src}"))
        .map_err(|e| anyhow::anyhow!("{}", chroot::cli::one_line(&e)))?;
    let src_is_dir = meta.is_dir() || (args.follow_link && Path::new(src).is_dir());
    let head = format!(
        "/containers/{}/archive{}",
        segment(container),
        query([("path", dest.to_string())])
    );
    let found = match client.call("HEAD", &head, None) {
        Ok(answer) => Destination {
            exists: true,
            // Docker's stat header says it too; the path ending in `/` or a directory's mode
            // are what it says: ask the header when it is there.
            is_dir: answer
                .header("x-docker-container-path-stat")
                .is_some_and(stat_is_dir),
        },
        Err(e)
            if e.downcast_ref::<DaemonError>()
                .is_some_and(|d| d.status == 404) =>
        {
            Destination {
                exists: false,
                is_dir: false,
            }
        }
        Err(e) => return Err(e),
    };
    let src_name = Path::new(cp::base_name(src)).as_os_str().to_os_string();
    let landing = cp::landing(
        dest,
        &found,
        src_is_dir,
        cp::contents_only(src),
        &src_name,
        dest.to_string(),
        cp::dir_name(dest),
    )?;
    let (mut reader, writer) = io::pipe().context("make a pipe")?;
    let source = PathBuf::from(src);
    let follow = args.follow_link;
    let packer = std::thread::spawn(move || -> io::Result<()> {
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(follow);
        let name = landing.name.unwrap_or_else(|| PathBuf::from("."));
        if src_is_dir {
            builder.append_dir_all(&name, &source)?;
        } else {
            builder.append_path_with_name(&source, &name)?;
        }
        builder.into_inner()?.flush()
    });
    let sent = client.call_with_stream(
        "PUT",
        &archive(&landing.dir),
        "application/x-tar",
        &mut reader,
    );
    drop(reader);
    let packed = packer
        .join()
        .map_err(|_| anyhow::anyhow!("the copy's packer panicked"))?;
    sent?;
    packed.with_context(|| format!("read {src}"))?;
    Ok(0)
}
// ANCHOR_END: to_container

/// Whether Docker's `X-Docker-Container-Path-Stat` (base64 of `{"mode": ...}`) says a
/// directory: Go's `os.ModeDir` is the top bit of the mode.
fn stat_is_dir(header: &str) -> bool {
    let Some(bytes) = base64_decode(header.trim()) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|stat| stat["mode"].as_u64())
        .is_some_and(|mode| mode & (1 << 31) != 0)
}

/// Standard base64 (RFC 4648, with padding), the header's encoding.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut bits = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            bits |= value(*c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_stat_header_says_directory() {
        // {"name":"etc","size":4096,"mode":2147484141,"mtime":"...","linkTarget":""}
        let dir = "eyJuYW1lIjoiZXRjIiwic2l6ZSI6NDA5NiwibW9kZSI6MjE0NzQ4NDE0MX0=";
        assert!(stat_is_dir(dir));
        // {"name":"hostname","size":13,"mode":420}
        let file = "eyJuYW1lIjoiaG9zdG5hbWUiLCJzaXplIjoxMywibW9kZSI6NDIwfQ==";
        assert!(!stat_is_dir(file));
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    }

    #[test]
    fn entries_below_the_top_are_renamed_and_nothing_climbs() {
        let top = Path::new("etc");
        assert_eq!(
            below(Path::new("etc/hosts"), top),
            Some(PathBuf::from("hosts"))
        );
        assert_eq!(below(Path::new("etc"), top), Some(PathBuf::new()));
        assert_eq!(below(Path::new("other"), top), None);
        assert_eq!(below(Path::new("etc/../x"), top), None);
    }
}
