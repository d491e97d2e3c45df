//! The build context, and what a COPY or ADD copies from it to where.
//!
//! The *build context* is the directory given to `build` (`skiff build -t app DIR`): the only
//! files a build can read. Docker sends it to the daemon minus what `.dockerignore` excludes;
//! skiff reads it in place and applies the same filter ([`BuildContext`]).
//!
//! Dockerfile reference, "COPY" and "ADD", the rules [`BuildContext::resolve`] follows:
//!
//! - sources are relative to the context (a leading `/` too); one that leads outside it, by `..`
//!   or by a symlink, is refused; wildcards (`*.txt`, `**/*.go`) match context paths;
//! - a source directory's *contents* are copied into the destination, not the directory itself;
//! - a file goes to DEST when DEST does not end with `/`, and to DEST/NAME when it does (or when
//!   DEST is an existing directory of the image);
//! - several sources (counted after wildcards) need a destination ending with `/`;
//! - a relative DEST is relative to WORKDIR; missing directories above DEST are created;
//! - ADD unpacks a local tar archive (plain or gzip'd; recognised by content, not name) into
//!   DEST; ADD from a URL would need the network, which skiff builds do not use;
//! - a symlink named as a source is followed (inside the context); symlinks inside a copied
//!   directory are copied as symlinks.
//!
//! The plan names files by their path in the context; the copy reads them through the context
//! directory held open, with openat2(2) and no symlink followed ([`crate::beneath`]), so a file
//! swapped for a symlink after the plan was made is refused, never followed out of the context.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::cache::{field, sha256_reader};
use super::error::{DockerfileError, Location};
use super::ignore::DockerIgnore;
use super::instruction::{CopyArgs, Instruction};
use super::owner::Owner;
use super::parse::parse_chmod;
use super::pattern::{Pattern, clean, has_wildcards};
use super::plan::Step;
use crate::beneath::{Beneath, Links};

/// The build context directory and its `.dockerignore`.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The directory, canonical (symlinks resolved), so containment checks are plain prefixes.
    root: PathBuf,
    /// The same directory, held open: every file is read through it.
    dir: Beneath,
    ignore: DockerIgnore,
}

/// What one [`CopyItem`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A directory to create (if missing) with the item's mode.
    Dir,
    /// A regular file to copy.
    File,
    /// A symlink to create, pointing to this target (copied as it is, never followed).
    Symlink(PathBuf),
    /// A tar archive (gzip'd when `gzip`) to unpack into the destination directory (ADD only).
    Extract {
        /// Whether the archive is gzip-compressed.
        gzip: bool,
    },
}

/// One thing a COPY or ADD puts into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyItem {
    /// Where it is on the host (inside the build context), for messages: it is read through
    /// the context, by `context_path` ([`BuildContext::open_file`]).
    pub source: PathBuf,
    /// Its path relative to the context (`.` for the context itself).
    pub context_path: String,
    /// Where it goes in the image: an absolute path.
    pub dest: String,
    /// Directory, file, symlink, or archive to unpack.
    pub kind: ItemKind,
    /// The permission bits to give it (its own, or `--chmod`'s).
    pub mode: u32,
}

impl CopyItem {
    /// Whether the item is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == ItemKind::Dir
    }
}

/// Everything one COPY or ADD copies, in order: a directory comes before what is in it.
///
/// The executor creates missing parent directories of each `dest` (mode 755), gives every item
/// the owner of `--chown` ([`super::owner::resolve_chown`]; root without it) except what an
/// archive unpacks, which keeps the archive's owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    /// The step, for errors.
    pub at: Location,
    /// The items, in order.
    pub items: Vec<CopyItem>,
    /// `--chown`, as written (after substitution).
    pub chown: Option<String>,
    /// How many sources there were after wildcards (for the digest's `file:`/`dir:`/`multi:`).
    pub sources: usize,
}

/// One source of a COPY, after wildcards and symlinks.
struct Source {
    /// Its resolved path relative to the context (`.` for the context itself).
    rel: String,
    /// Its name as written, for DEST/NAME.
    name: String,
    /// Its resolved path on the host.
    host: PathBuf,
    /// Its metadata (symlinks followed).
    meta: Metadata,
}

/// One entry found walking the context.
struct Entry {
    rel: String,
    host: PathBuf,
    meta: Metadata, // not following symlinks
}

/// Refuses URL sources, which need the network (ADD) or are not allowed at all (COPY).
pub(crate) fn refuse_urls(
    at: &Location,
    instruction: &Instruction,
    args: &CopyArgs,
) -> Result<(), DockerfileError> {
    let is_url = |s: &&String| {
        ["http://", "https://", "git@", "git://"]
            .iter()
            .any(|p| s.starts_with(p))
    };
    match (instruction, args.sources.iter().find(is_url)) {
        (_, None) => Ok(()),
        (Instruction::Add(_), Some(url)) => Err(DockerfileError::Unsupported {
            at: at.clone(),
            what: format!("ADD from a URL ({url})"),
            hint:
                "skiff builds use no network: download the file into the build context and COPY it"
                    .into(),
        }),
        (_, Some(url)) => Err(DockerfileError::Invalid {
            at: at.clone(),
            instruction: instruction.name(),
            message: format!("source can't be a URL ({url}): COPY copies from the build context"),
        }),
    }
}

/// Where DEST is in the image (absolute and clean, relative to `workdir` when relative), and
/// whether it names a directory: it ends with `/`, or is `.` or `..` or ends with one.
pub fn destination(workdir: &str, dest: &str) -> (String, bool) {
    let names_dir = dest.is_empty()
        || dest.ends_with('/')
        || [".", ".."].contains(&dest)
        || dest.ends_with("/.")
        || dest.ends_with("/..");
    let path = if dest.starts_with('/') {
        clean(dest)
    } else {
        let base = if workdir.is_empty() { "/" } else { workdir };
        clean(&format!("{base}/{dest}"))
    };
    (path, names_dir)
}

/// `dir` + `/` + `name` in the image.
fn join(dir: &str, name: &str) -> String {
    match (dir, name) {
        (d, "") => d.to_string(),
        ("/", n) => format!("/{n}"),
        (d, n) => format!("{d}/{n}"),
    }
}

/// The permission bits of a file.
fn mode_of(meta: &Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

impl BuildContext {
    /// The context in `dir`, filtered by its `.dockerignore` (if any).
    pub fn open(dir: &Path) -> Result<Self, DockerfileError> {
        let ignore = DockerIgnore::read(dir)?;
        Self::new(dir, ignore)
    }

    /// The context in `dir`, filtered by `ignore`.
    pub fn new(dir: &Path, ignore: DockerIgnore) -> Result<Self, DockerfileError> {
        let error = |source| DockerfileError::Context {
            at: Location::new(dir, 0),
            path: dir.to_path_buf(),
            source,
        };
        let root = fs::canonicalize(dir).map_err(error)?;
        let dir = Beneath::open(&root).map_err(error)?;
        Ok(BuildContext { root, dir, ignore })
    }

    /// Opens the regular file at `rel` in the context for reading, through the context
    /// directory and without following any symlink: what was checked is what is read.
    pub fn open_file(&self, rel: &str) -> io::Result<File> {
        self.dir.open_file(rel, Links::Refuse)
    }

    /// The metadata of `rel` in the context (a symlink's own), reached without following any
    /// symlink.
    pub fn symlink_metadata(&self, rel: &str) -> io::Result<Metadata> {
        self.dir.symlink_metadata(rel)
    }

    /// The context directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` in force.
    pub fn ignore(&self) -> &DockerIgnore {
        &self.ignore
    }

    /// Every path of the context a build can see, relative and sorted, directories before
    /// what they hold.
    pub fn files(&self) -> Result<Vec<String>, DockerfileError> {
        let at = Location::new(&self.root, 0);
        Ok(self.walk(&at, ".")?.into_iter().map(|e| e.rel).collect())
    }

    // ANCHOR: walk
    /// The visible entries under the context directory `dir` (`.` for all), depth first,
    /// sorted by name. An excluded directory is skipped whole, unless an exception may keep
    /// something inside it: then the walk looks in, without listing the directory itself.
    fn walk(&self, at: &Location, dir: &str) -> Result<Vec<Entry>, DockerfileError> {
        let io_err = |path: &Path, source| DockerfileError::Context {
            at: at.clone(),
            path: path.to_path_buf(),
            source,
        };
        let host_dir = self.root.join(dir);
        // Listed and looked at through the context directory: a directory swapped for a
        // symlink is not followed out of the context.
        let mut names = self.dir.read_dir(dir).map_err(|e| io_err(&host_dir, e))?;
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let rel = clean(&format!("{dir}/{}", name.to_string_lossy()));
            let host = self.root.join(&rel);
            let meta = self
                .dir
                .symlink_metadata(&rel)
                .map_err(|e| io_err(&host, e))?;
            let is_dir = meta.is_dir();
            if self.ignore.is_excluded(&rel) {
                if is_dir && self.ignore.may_keep_under(&rel) {
                    out.extend(self.walk(at, &rel)?);
                }
                continue;
            }
            out.push(Entry {
                rel: rel.clone(),
                host,
                meta,
            });
            if is_dir {
                out.extend(self.walk(at, &rel)?);
            }
        }
        Ok(out)
    }
    // ANCHOR_END: walk

    // ANCHOR: resolve
    /// What the COPY or ADD `step` copies, and where. `dir_in_image(path)` says whether the
    /// image has a directory at that absolute path (a file copied to an existing directory goes
    /// inside it).
    pub fn resolve(
        &self,
        step: &Step,
        dir_in_image: &dyn Fn(&str) -> bool,
    ) -> Result<CopyPlan, DockerfileError> {
        let at = &step.at;
        let (args, add) = match &step.instruction {
            Instruction::Copy(args) => (args, false),
            Instruction::Add(args) => (args, true),
            other => {
                return Err(DockerfileError::Invalid {
                    at: at.clone(),
                    instruction: other.name(),
                    message: "only COPY and ADD copy files from the build context".into(),
                });
            }
        };
        let name = step.instruction.name();
        if let Some(from) = &args.from {
            return Err(DockerfileError::Unsupported {
                at: at.clone(),
                what: format!("COPY --from={from}"),
                hint: "copying from another stage or image is not implemented: copy from the build context".into(),
            });
        }
        refuse_urls(at, &step.instruction, args)?;
        let chmod = args
            .chmod
            .as_deref()
            .map(parse_chmod)
            .transpose()
            .map_err(|message| DockerfileError::BadFlag {
                at: at.clone(),
                instruction: name,
                flag: "chmod".into(),
                message,
            })?;
        let (dest, dest_is_dir) = destination(&step.config.working_dir, &args.dest);

        let mut sources = Vec::new();
        for written in &args.sources {
            sources.extend(self.expand(at, name, written)?);
        }
        if sources.len() > 1 && !dest_is_dir {
            return Err(DockerfileError::DestinationNotDirectory {
                at: at.clone(),
                instruction: name,
            });
        }

        let mut items = Vec::new();
        let mode = |meta: &Metadata| chmod.unwrap_or_else(|| mode_of(meta));
        for source in &sources {
            if source.meta.is_dir() {
                // The directory's contents go into DEST, which takes the directory's mode.
                items.push(CopyItem {
                    source: source.host.clone(),
                    context_path: source.rel.clone(),
                    dest: dest.clone(),
                    kind: ItemKind::Dir,
                    mode: mode(&source.meta),
                });
                for entry in self.walk(at, &source.rel)? {
                    let inside = match source.rel.as_str() {
                        "." => entry.rel.as_str(),
                        dir => entry
                            .rel
                            .strip_prefix(&format!("{dir}/"))
                            .unwrap_or(&entry.rel),
                    };
                    let kind = if entry.meta.is_dir() {
                        ItemKind::Dir
                    } else if entry.meta.file_type().is_symlink() {
                        let target = self
                            .dir
                            .read_link(&entry.rel)
                            .map_err(|e| self.io(at, &entry.host, e))?;
                        ItemKind::Symlink(target)
                    } else if entry.meta.is_file() {
                        ItemKind::File
                    } else {
                        continue; // sockets, fifos and devices are not copied
                    };
                    items.push(CopyItem {
                        mode: match kind {
                            ItemKind::Symlink(_) => 0o777,
                            _ => mode(&entry.meta),
                        },
                        dest: join(&dest, inside),
                        source: entry.host,
                        context_path: entry.rel,
                        kind,
                    });
                }
                continue;
            }
            let archive = if add {
                self.open_file(&source.rel)
                    .and_then(archive_kind)
                    .map_err(|e| self.io(at, &source.host, e))?
            } else {
                Archive::No
            };
            let (kind, target) = match archive {
                Archive::Tar { gzip } => (ItemKind::Extract { gzip }, dest.clone()),
                Archive::Unsupported(format) => {
                    return Err(DockerfileError::Unsupported {
                        at: at.clone(),
                        what: format!("ADD of a {format}-compressed file ({})", source.rel),
                        hint: "skiff unpacks tar and gzip'd tar archives only: decompress it first, or COPY it to keep it as it is".into(),
                    });
                }
                Archive::No if dest_is_dir || dir_in_image(&dest) => {
                    (ItemKind::File, join(&dest, &source.name))
                }
                Archive::No => (ItemKind::File, dest.clone()),
            };
            items.push(CopyItem {
                source: source.host.clone(),
                context_path: source.rel.clone(),
                dest: target,
                kind,
                mode: mode(&source.meta),
            });
        }
        Ok(CopyPlan {
            at: at.clone(),
            items,
            chown: args.chown.clone(),
            sources: sources.len(),
        })
    }
    // ANCHOR_END: resolve

    fn io(&self, at: &Location, path: &Path, source: io::Error) -> DockerfileError {
        DockerfileError::Context {
            at: at.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// The sources one written source stands for: itself, or what its wildcards match.
    fn expand(
        &self,
        at: &Location,
        instruction: &'static str,
        written: &str,
    ) -> Result<Vec<Source>, DockerfileError> {
        // Sources are relative to the context, even when written with a leading `/`.
        let rel = clean(written.trim_start_matches('/'));
        if rel == ".." || rel.starts_with("../") {
            return Err(DockerfileError::OutsideContext {
                at: at.clone(),
                instruction,
                source_path: written.to_string(),
            });
        }
        let not_found = |excluded| DockerfileError::SourceNotFound {
            at: at.clone(),
            instruction,
            source_path: written.to_string(),
            excluded,
        };
        if !has_wildcards(&rel) {
            let exists = fs::symlink_metadata(self.root.join(&rel)).is_ok();
            let hidden = rel != "."
                && self.ignore.is_excluded(&rel)
                && !(self.root.join(&rel).is_dir() && self.ignore.may_keep_under(&rel));
            if !exists || hidden {
                return Err(not_found(exists));
            }
            return Ok(vec![self.source(at, instruction, written, &rel)?]);
        }
        let pattern = Pattern::new(&rel).map_err(|e| DockerfileError::Invalid {
            at: at.clone(),
            instruction,
            message: format!("bad pattern {written:?}: {e}"),
        })?;
        // A matched directory is copied whole: what is under it is not matched again.
        let mut matched: Vec<String> = Vec::new();
        for entry in self.walk(at, ".")? {
            let under_match = matched
                .iter()
                .any(|m| entry.rel.starts_with(&format!("{m}/")));
            if !under_match && pattern.matches(&entry.rel) {
                matched.push(entry.rel);
            }
        }
        if matched.is_empty() {
            return Err(not_found(false));
        }
        matched
            .iter()
            .map(|rel| self.source(at, instruction, rel, rel))
            .collect()
    }

    /// One source, its symlinks followed: it must stay inside the context, and what it leads
    /// to must not be excluded.
    fn source(
        &self,
        at: &Location,
        instruction: &'static str,
        written: &str,
        rel: &str,
    ) -> Result<Source, DockerfileError> {
        let host = self.root.join(rel);
        let not_found = |excluded| DockerfileError::SourceNotFound {
            at: at.clone(),
            instruction,
            source_path: written.to_string(),
            excluded,
        };
        // A dangling symlink resolves to nothing: not found.
        let real = fs::canonicalize(&host).map_err(|_| not_found(false))?;
        let Ok(real_rel) = real.strip_prefix(&self.root) else {
            let shown = match fs::read_link(&host) {
                Ok(target) => format!("{written} -> {}", target.display()),
                Err(_) => written.to_string(),
            };
            return Err(DockerfileError::OutsideContext {
                at: at.clone(),
                instruction,
                source_path: shown,
            });
        };
        let real_rel = match real_rel.to_string_lossy().into_owned() {
            empty if empty.is_empty() => ".".to_string(),
            r => r,
        };
        let meta = fs::metadata(&real).map_err(|e| self.io(at, &real, e))?;
        if real_rel != rel
            && self.ignore.is_excluded(&real_rel)
            && !(meta.is_dir() && self.ignore.may_keep_under(&real_rel))
        {
            return Err(not_found(true));
        }
        if !meta.is_dir() && !meta.is_file() {
            return Err(DockerfileError::Invalid {
                at: at.clone(),
                instruction,
                message: format!("{written} is not a regular file or a directory"),
            });
        }
        let name = match rel.rsplit_once('/') {
            Some((_, last)) => last.to_string(),
            None if rel == "." => String::new(),
            None => rel.to_string(),
        };
        Ok(Source {
            rel: real_rel,
            name,
            host: real,
            meta,
        })
    }
}

impl CopyPlan {
    // ANCHOR: digest
    /// The digest of everything copied, for the cache key and the history: each item's context
    /// path, destination, type, mode and contents (or link target), and the owner, sorted by
    /// destination. Modification times are left out, as Docker does: touching a file does not
    /// invalidate the cache, changing a byte does. The form is the classic builder's:
    /// `file:<hex>` for one file, `dir:<hex>` for one directory, `multi:<hex>` otherwise.
    pub fn digest(&self, context: &BuildContext, owner: Owner) -> Result<String, DockerfileError> {
        let mut items: Vec<&CopyItem> = self.items.iter().collect();
        items.sort_by(|a, b| (&a.dest, &a.context_path).cmp(&(&b.dest, &b.context_path)));
        let mut hasher = Sha256::new();
        field(
            &mut hasher,
            "owner",
            &format!("{}:{}", owner.uid, owner.gid),
        );
        for item in &items {
            field(&mut hasher, "path", &item.context_path);
            field(&mut hasher, "dest", &item.dest);
            field(&mut hasher, "mode", &format!("{:o}", item.mode));
            let content = |item: &CopyItem| {
                context
                    .open_file(&item.context_path)
                    .and_then(sha256_reader)
                    .map_err(|source| DockerfileError::Context {
                        at: self.at.clone(),
                        path: item.source.clone(),
                        source,
                    })
            };
            match &item.kind {
                ItemKind::Dir => field(&mut hasher, "dir", ""),
                ItemKind::File => field(&mut hasher, "file", &content(item)?),
                ItemKind::Symlink(target) => {
                    field(&mut hasher, "symlink", &target.to_string_lossy())
                }
                ItemKind::Extract { .. } => field(&mut hasher, "archive", &content(item)?),
            }
        }
        let prefix = match (self.sources, items.as_slice()) {
            (1, [one]) if !one.is_dir() => "file",
            (1, _) => "dir",
            _ => "multi",
        };
        Ok(format!("{prefix}:{}", hex::encode(hasher.finalize())))
    }
    // ANCHOR_END: digest
}

/// What ADD makes of a file.
#[derive(Debug, PartialEq, Eq)]
enum Archive {
    /// Not an archive: copied as it is.
    No,
    /// A tar archive, perhaps gzip'd: unpacked.
    Tar { gzip: bool },
    /// Compressed in a format skiff cannot unpack (bzip2, xz, zstd).
    Unsupported(&'static str),
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the input.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Whether a 512-byte block is a tar header: the `ustar` magic, or (old V7 archives) a
/// checksum that matches, the sum of the header's bytes with the checksum field as spaces.
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|&b| b == 0) {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&block[148..156]);
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// Recognises a local archive by its first bytes, as Docker's ADD does (the name does not
/// matter).
fn archive_kind(mut file: File) -> io::Result<Archive> {
    let mut head = [0u8; 512];
    let n = read_full(&mut file, &mut head)?;
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inner = [0u8; 512];
        file.rewind()?;
        let mut gz = flate2::read::GzDecoder::new(file);
        // A gzip'd file that is not a tar (or is broken) is copied as it is.
        let n = read_full(&mut gz, &mut inner).unwrap_or(0);
        return Ok(if is_tar_header(&inner[..n]) {
            Archive::Tar { gzip: true }
        } else {
            Archive::No
        });
    }
    let compressed: [(&[u8], &str); 3] = [
        (b"BZh", "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    ];
    if let Some((_, format)) = compressed.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Ok(Archive::Unsupported(format));
    }
    Ok(if is_tar_header(head) {
        Archive::Tar { gzip: false }
    } else {
        Archive::No
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{BuildArgs, Dockerfile, ImageConfig};
    use std::os::unix::fs::symlink;

    /// A context directory with some files, and its path.
    fn context(ignore: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, body) in [
            ("Dockerfile", "FROM scratch\n"),
            ("app.py", "print('hi')\n"),
            ("README.md", "# readme\n"),
            ("notes.txt", "notes\n"),
            ("src/main.rs", "fn main() {}\n"),
            ("src/lib/util.rs", "pub fn u() {}\n"),
            ("docs/guide.md", "guide\n"),
            ("docs/README.md", "docs readme\n"),
            ("secret.key", "hunter2\n"),
            ("logs/a.log", "log\n"),
        ] {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        }
        fs::set_permissions(root.join("app.py"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join(".dockerignore"), ignore).unwrap();
        dir
    }

    /// The COPY/ADD step of a one-instruction Dockerfile (after `WORKDIR /app` if `workdir`).
    fn step(line: &str, workdir: bool) -> Step {
        let text = format!(
            "FROM scratch\n{}{line}\n",
            if workdir { "WORKDIR /app\n" } else { "" }
        );
        let df = Dockerfile::parse("Dockerfile", &text).unwrap();
        let args = BuildArgs::new();
        let plan = df
            .single_stage(&args)
            .unwrap()
            .plan(&ImageConfig::scratch(), &args)
            .unwrap();
        plan.steps.last().unwrap().clone()
    }

    fn resolve(ctx: &tempfile::TempDir, line: &str) -> Result<CopyPlan, DockerfileError> {
        let context = BuildContext::open(ctx.path()).unwrap();
        context.resolve(&step(line, true), &|p| p == "/etc")
    }

    /// (context path, destination, is dir) of each item.
    fn summary(plan: &CopyPlan) -> Vec<(String, String, bool)> {
        plan.items
            .iter()
            .map(|i| (i.context_path.clone(), i.dest.clone(), i.is_dir()))
            .collect()
    }

    fn s(a: &str, b: &str, dir: bool) -> (String, String, bool) {
        (a.to_string(), b.to_string(), dir)
    }

    #[test]
    fn destinations() {
        assert_eq!(destination("", "/x"), ("/x".into(), false));
        assert_eq!(destination("/app", "x/"), ("/app/x".into(), true));
        assert_eq!(destination("/app", "."), ("/app".into(), true));
        assert_eq!(destination("", "a/../b"), ("/b".into(), false));
        assert_eq!(destination("/app", "/"), ("/".into(), true));
    }

    #[test]
    fn a_file_goes_to_dest_or_into_a_dest_directory() {
        let ctx = context("");
        let plan = resolve(&ctx, "COPY app.py /bin/app").unwrap();
        assert_eq!(summary(&plan), [s("app.py", "/bin/app", false)]);
        assert_eq!(plan.items[0].mode, 0o755);
        assert_eq!(plan.items[0].kind, ItemKind::File);
        let plan = resolve(&ctx, "COPY app.py /bin/").unwrap();
        assert_eq!(summary(&plan), [s("app.py", "/bin/app.py", false)]);
        // Relative to WORKDIR; `.` names a directory.
        let plan = resolve(&ctx, "COPY app.py .").unwrap();
        assert_eq!(summary(&plan), [s("app.py", "/app/app.py", false)]);
        // An existing directory of the image takes the file inside.
        let plan = resolve(&ctx, "COPY /app.py /etc").unwrap();
        assert_eq!(summary(&plan), [s("app.py", "/etc/app.py", false)]);
    }

    #[test]
    fn a_directory_copies_its_contents() {
        let ctx = context("");
        let plan = resolve(&ctx, "COPY src /code").unwrap();
        assert_eq!(
            summary(&plan),
            [
                s("src", "/code", true),
                s("src/lib", "/code/lib", true),
                s("src/lib/util.rs", "/code/lib/util.rs", false),
                s("src/main.rs", "/code/main.rs", false),
            ]
        );
    }

    #[test]
    fn the_whole_context_minus_dockerignore() {
        let ctx = context("secret.key\nlogs\n*.md\n!README.md\n.dockerignore\nDockerfile\n");
        let plan = resolve(&ctx, "COPY . .").unwrap();
        let got: Vec<_> = plan.items.iter().map(|i| i.context_path.as_str()).collect();
        assert_eq!(
            got,
            [
                ".",
                "README.md",
                "app.py",
                "docs",
                // `*.md` matches the top level only.
                "docs/README.md",
                "docs/guide.md",
                "notes.txt",
                "src",
                "src/lib",
                "src/lib/util.rs",
                "src/main.rs"
            ]
        );
        assert_eq!(plan.items[0].dest, "/app");
        let files = BuildContext::open(ctx.path()).unwrap().files().unwrap();
        assert!(!files.contains(&"Dockerfile".to_string()));
        assert!(!files.contains(&".dockerignore".to_string()));
    }

    #[test]
    fn an_exception_reaches_into_an_excluded_directory() {
        let ctx = context("docs\n!docs/README.md\n");
        let context = BuildContext::open(ctx.path()).unwrap();
        assert_eq!(
            context
                .files()
                .unwrap()
                .iter()
                .filter(|f| f.starts_with("docs"))
                .collect::<Vec<_>>(),
            ["docs/README.md"]
        );
        let plan = resolve(&ctx, "COPY docs /d/").unwrap();
        assert_eq!(
            summary(&plan),
            [
                s("docs", "/d", true),
                s("docs/README.md", "/d/README.md", false)
            ]
        );
    }

    #[test]
    fn wildcards_match_context_paths() {
        let ctx = context("");
        let plan = resolve(&ctx, "COPY *.md *.txt /docs/").unwrap();
        assert_eq!(
            summary(&plan),
            [
                s("README.md", "/docs/README.md", false),
                s("notes.txt", "/docs/notes.txt", false)
            ]
        );
        let plan = resolve(&ctx, "COPY **/*.rs /rs/").unwrap();
        assert_eq!(
            summary(&plan),
            [
                s("src/lib/util.rs", "/rs/util.rs", false),
                s("src/main.rs", "/rs/main.rs", false)
            ]
        );
        let plan = resolve(&ctx, "COPY sr? /s/").unwrap();
        assert!(plan.items[0].is_dir());
        assert_eq!(plan.sources, 1);
    }

    #[test]
    fn several_sources_need_a_directory_destination() {
        let ctx = context("");
        assert_eq!(
            resolve(&ctx, "COPY app.py notes.txt /x")
                .unwrap_err()
                .to_string(),
            "Dockerfile:3: When using COPY with more than one source file, the destination must be a directory and end with a /"
        );
        assert!(resolve(&ctx, "COPY *.md *.txt /x").is_err());
        assert!(resolve(&ctx, "COPY app.py notes.txt /x/").is_ok());
    }

    #[test]
    fn missing_and_excluded_sources() {
        let ctx = context("secret.key\n");
        assert_eq!(
            resolve(&ctx, "COPY nope.txt /x").unwrap_err().to_string(),
            "Dockerfile:3: COPY failed: file not found in build context: nope.txt"
        );
        assert_eq!(
            resolve(&ctx, "ADD secret.key /x").unwrap_err().to_string(),
            "Dockerfile:3: ADD failed: file not found in build context: secret.key (it is excluded by .dockerignore)"
        );
        assert_eq!(
            resolve(&ctx, "COPY *.nothing /x/").unwrap_err().to_string(),
            "Dockerfile:3: COPY failed: file not found in build context: *.nothing"
        );
    }

    #[test]
    fn paths_outside_the_context_are_refused() {
        let ctx = context("");
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("passwd"), "x").unwrap();
        symlink(outside.path().join("passwd"), ctx.path().join("abs-link")).unwrap();
        symlink("../../..", ctx.path().join("up")).unwrap();
        symlink("app.py", ctx.path().join("inside-link")).unwrap();
        symlink("missing", ctx.path().join("dangling")).unwrap();

        let err = resolve(&ctx, "COPY ../x /x").unwrap_err().to_string();
        assert_eq!(
            err,
            "Dockerfile:3: COPY failed: forbidden path outside the build context: ../x: only files inside the context directory can be copied"
        );
        assert!(resolve(&ctx, "COPY src/../../x /x").is_err());
        let err = resolve(&ctx, "COPY abs-link /x").unwrap_err().to_string();
        assert!(
            err.contains("forbidden path outside the build context: abs-link -> /"),
            "{err}"
        );
        assert!(
            resolve(&ctx, "COPY up /x")
                .unwrap_err()
                .to_string()
                .contains("outside the build context")
        );
        assert!(matches!(
            resolve(&ctx, "COPY dangling /x"),
            Err(DockerfileError::SourceNotFound { .. })
        ));
        // A link inside the context is followed, and keeps its own name.
        let plan = resolve(&ctx, "COPY inside-link /bin/").unwrap();
        assert_eq!(summary(&plan), [s("app.py", "/bin/inside-link", false)]);
        // Links inside a copied directory are copied as links.
        symlink("/etc/passwd", ctx.path().join("src/abs")).unwrap();
        let plan = resolve(&ctx, "COPY src /s").unwrap();
        let link = plan
            .items
            .iter()
            .find(|i| i.context_path == "src/abs")
            .unwrap();
        assert_eq!(link.kind, ItemKind::Symlink("/etc/passwd".into()));
    }

    #[test]
    fn urls_and_from_are_refused() {
        let ctx = context("");
        let context = BuildContext::open(ctx.path()).unwrap();
        let mut st = step("COPY a /b", false);
        st.instruction = Instruction::Add(CopyArgs {
            sources: vec!["https://example.com/x.tgz".into()],
            dest: "/x".into(),
            ..CopyArgs::default()
        });
        let err = context.resolve(&st, &|_| false).unwrap_err().to_string();
        assert!(
            err.contains("ADD from a URL (https://example.com/x.tgz) is not supported by skiff"),
            "{err}"
        );
        let st = step("COPY --from=builder /out /out", false);
        assert!(
            context
                .resolve(&st, &|_| false)
                .unwrap_err()
                .to_string()
                .contains("COPY --from=builder is not supported")
        );
    }

    fn make_tar(path: &Path, gzip: bool) {
        let file = File::create(path).unwrap();
        let write = |w: &mut dyn io::Write| {
            let mut b = tar::Builder::new(w);
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_mode(0o644);
            header.set_cksum();
            b.append_data(&mut header, "hello.txt", &b"hi"[..]).unwrap();
            b.finish().unwrap();
        };
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            write(&mut gz);
            gz.finish().unwrap();
        } else {
            let mut file = file;
            write(&mut file);
        }
    }

    #[test]
    fn add_unpacks_local_archives_recognised_by_content() {
        let ctx = context("");
        make_tar(&ctx.path().join("plain.bin"), false);
        make_tar(&ctx.path().join("site.tar.gz"), true);
        let mut gz = flate2::write::GzEncoder::new(
            File::create(ctx.path().join("notes.gz")).unwrap(),
            flate2::Compression::default(),
        );
        io::Write::write_all(&mut gz, b"just text, not a tar").unwrap();
        gz.finish().unwrap();
        fs::write(ctx.path().join("data.bz2"), b"BZh91AY&SY...").unwrap();

        let plan = resolve(&ctx, "ADD plain.bin /srv").unwrap();
        assert_eq!(plan.items[0].kind, ItemKind::Extract { gzip: false });
        assert_eq!(plan.items[0].dest, "/srv");
        let plan = resolve(&ctx, "ADD site.tar.gz /srv/").unwrap();
        assert_eq!(plan.items[0].kind, ItemKind::Extract { gzip: true });
        let plan = resolve(&ctx, "ADD notes.gz /srv/").unwrap();
        assert_eq!(summary(&plan), [s("notes.gz", "/srv/notes.gz", false)]);
        let plan = resolve(&ctx, "ADD app.py /srv/").unwrap();
        assert_eq!(plan.items[0].kind, ItemKind::File);
        // COPY never unpacks.
        let plan = resolve(&ctx, "COPY site.tar.gz /srv/").unwrap();
        assert_eq!(plan.items[0].kind, ItemKind::File);
        let err = resolve(&ctx, "ADD data.bz2 /srv/").unwrap_err().to_string();
        assert!(
            err.contains("ADD of a bzip2-compressed file (data.bz2) is not supported"),
            "{err}"
        );
    }

    #[test]
    fn chmod_overrides_modes() {
        let ctx = context("");
        let plan = resolve(&ctx, "COPY --chmod=600 src /s").unwrap();
        assert!(plan.items.iter().all(|i| i.mode == 0o600));
        let plan = resolve(&ctx, "COPY --chown=app:staff notes.txt /n").unwrap();
        assert_eq!(plan.chown.as_deref(), Some("app:staff"));
    }

    #[test]
    fn digest_changes_with_content_mode_owner_and_paths_only() {
        let ctx = context("");
        let context = BuildContext::open(ctx.path()).unwrap();
        let digest = |line: &str, owner: Owner| {
            resolve(&ctx, line)
                .unwrap()
                .digest(&context, owner)
                .unwrap()
        };
        let first = digest("COPY src /s", Owner::ROOT);
        assert!(first.starts_with("dir:"), "{first}");
        assert_eq!(first, digest("COPY src /s", Owner::ROOT), "stable");
        // Touching a file (same bytes, new mtime) keeps the digest.
        fs::write(ctx.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        assert_eq!(first, digest("COPY src /s", Owner::ROOT));
        // Owner, mode, contents and names all count.
        assert_ne!(first, digest("COPY src /s", Owner { uid: 1, gid: 1 }));
        fs::set_permissions(
            ctx.path().join("src/main.rs"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let moded = digest("COPY src /s", Owner::ROOT);
        assert_ne!(first, moded);
        fs::write(ctx.path().join("src/main.rs"), "fn main() { }\n").unwrap();
        let changed = digest("COPY src /s", Owner::ROOT);
        assert_ne!(moded, changed);
        fs::rename(
            ctx.path().join("src/main.rs"),
            ctx.path().join("src/other.rs"),
        )
        .unwrap();
        assert_ne!(changed, digest("COPY src /s", Owner::ROOT));
        assert!(digest("COPY app.py /a", Owner::ROOT).starts_with("file:"));
        assert!(digest("COPY app.py notes.txt /a/", Owner::ROOT).starts_with("multi:"));
    }

    #[test]
    fn tar_headers() {
        let mut block = [0u8; 512];
        assert!(!is_tar_header(&block));
        block[..5].copy_from_slice(b"hello");
        assert!(!is_tar_header(&block));
        block[257..262].copy_from_slice(b"ustar");
        assert!(is_tar_header(&block));
    }
}
