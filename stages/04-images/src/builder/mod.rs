//! # `build`: a Dockerfile becomes an image, one step at a time
//!
//! `images build -t NAME DIR` reads `DIR/Dockerfile` and makes an image the way the classic
//! `docker build` does: every instruction after FROM is a *step*, and every step makes a new
//! image from the one before it.
//!
//! - **RUN** runs its command in a container of this engine, on an overlay of the image so far;
//!   what the command changed (the overlay's upper directory) is committed as a new layer
//!   (`builder/run.rs`).
//! - **COPY** and **ADD** need no container: the files are laid out in a directory of changes
//!   at their paths in the image, and that directory becomes the layer ([`layout`]).
//! - **WORKDIR** makes a layer holding its directory when the image lacks it (as BuildKit
//!   does), so that RUN and containers of the image start there.
//! - Every other instruction (ENV, CMD, USER, LABEL...) only edits the config: the new image
//!   has the same layers and an `empty_layer` history entry ([`config`]).
//!
//! The [`crate::dockerfile`] front end has already done the thinking: the whole Dockerfile is
//! parsed and every step planned (variables substituted, build arguments resolved, the config
//! after each step worked out) and every COPY source checked *before the first step runs*, so a
//! typo on line 30 fails the build before line 2's RUN has spent ten minutes.
//!
//! **The cache** ([`cache`]). A step's result is reused when the image it starts from, its
//! instruction and (for COPY and ADD) the content it copies are all unchanged; the key is
//! [`crate::dockerfile::cache_key`]. On a hit the step does not run: the build moves on from
//! the image the step made last time. An unchanged rebuild is therefore all hits, and ends on
//! the very image it ended on before — same config bytes, same creation times, same id.
//!
//! Intermediate images are untagged (`<none>`), as in the classic builder; the final one gets
//! the `-t` tags. See docs.docker.com/reference/cli/docker/build-legacy/.

pub mod cache;
pub mod config;
pub mod error;
pub mod layout;
mod run;
pub mod tree;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::Config;

pub use cache::BuildCache;
pub use error::BuildError;
pub use tree::ImageTree;

use crate::digest::Digest;
use crate::dockerfile::{
    BuildArgs, BuildContext, Dockerfile, ImageConfig, Instruction, Location, Owner, Plan, Stage,
    Step, cache_key, resolve_chown,
};
use crate::error::ImageError;
use crate::image::{create_image, history_entry};
use crate::reference::ImageRef;
use crate::store::{Store, TempPath};

/// What to build, and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context: the directory COPY and ADD read from.
    pub context: PathBuf,
    /// The Dockerfile (`-f`); `CONTEXT/Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    /// The names to give the image (`-t`).
    pub tags: Vec<ImageRef>,
    /// `--build-arg NAME=VALUE`.
    pub build_args: BuildArgs,
    /// `--no-cache`: run every step, reusing nothing.
    pub no_cache: bool,
    /// `-q`: print nothing (the caller prints the id); RUN output only when a step fails.
    pub quiet: bool,
    /// Pass the signals the engine gets (Ctrl-C) on to a running RUN, so that its container is
    /// cleaned up. Only for a single-threaded program such as the `images` binary.
    pub forward_signals: bool,
}

/// What a build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The final image.
    pub id: Digest,
    /// How many steps (FROM included) there were, and how many came from the cache.
    pub steps: usize,
    /// Steps that reused a cached result.
    pub cached: usize,
}

/// `--build-arg` values: `NAME=VALUE`, or `NAME` alone to take the value from the environment
/// (left unset when the environment has none, as Docker does).
pub fn parse_build_args(args: &[String]) -> Result<BuildArgs, BuildError> {
    let mut out = BuildArgs::new();
    for arg in args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), std::env::var(arg).ok()),
        };
        if name.is_empty() {
            return Err(BuildError::Usage(format!(
                "invalid --build-arg {arg:?}: use NAME=VALUE, or NAME to take the value from the environment"
            )));
        }
        if let Some(value) = value {
            out.insert(name.to_string(), value);
        }
    }
    Ok(out)
}

/// The build's progress, as `docker build` prints it (nothing with `-q`), and its warnings.
pub(crate) struct Progress<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    quiet: bool,
}

impl Progress<'_> {
    /// One line of progress. A closed output does not stop the build.
    fn line(&mut self, text: impl fmt::Display) {
        if !self.quiet {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }

    /// A warning (entries left out of a layer, cleanup that failed), shown even with `-q`.
    fn warn(&mut self, text: impl fmt::Display) {
        let _ = writeln!(self.err, "[Warning] {text}");
        let _ = self.err.flush();
    }
}

/// A build that has been read, planned and checked: nothing has run and nothing exists yet.
struct Prepared {
    dockerfile: Dockerfile,
    stage: Stage,
    plan: Plan,
    base: Option<Digest>,
    context: BuildContext,
}

// ANCHOR: build
/// Builds the image `options` describe in `store`, printing progress to `out` and warnings to
/// `err`.
pub fn build(
    store: &Store,
    options: &BuildOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Built, BuildError> {
    // 1. Read, plan and check everything: a mistake anywhere fails here, before any step runs.
    let prepared = prepare(store, options)?;
    // 2. Run the steps, each on the image the previous one made.
    let mut progress = Progress {
        out,
        err,
        quiet: options.quiet,
    };
    let total = prepared.plan.steps.len() + 1;
    progress.line(format_args!(
        "Step 1/{total} : {}",
        from_text(&prepared.dockerfile, &prepared.stage)
    ));
    if let Some(base) = &prepared.base {
        progress.line(format_args!(" ---> {}", base.short()));
    }
    let cache = BuildCache::open(store)?;
    let texts = step_texts(&prepared);
    let mut current = prepared.base.clone();
    let mut cached = 0;
    for (n, step) in prepared.plan.steps.iter().enumerate() {
        progress.line(format_args!("Step {}/{total} : {}", n + 2, texts[n]));
        let (id, hit) = execute_step(
            store,
            options,
            &prepared.context,
            &cache,
            current.as_ref(),
            step,
            &mut progress,
        )?;
        cached += usize::from(hit);
        progress.line(format_args!(" ---> {}", id.short()));
        current = Some(id);
    }
    let id = current.ok_or_else(|| BuildError::Invalid {
        at: Location::new(&prepared.dockerfile.path, prepared.stage.line),
        message: "No image was generated. Is your Dockerfile empty?".into(),
    })?;
    // 3. Name the result.
    if !prepared.plan.unused_build_args.is_empty() {
        progress.line(format_args!(
            "[Warning] One or more build-args [{}] were not consumed",
            prepared.plan.unused_build_args.join(" ")
        ));
    }
    {
        let _lock = store.lock_shared()?;
        crate::image::tag_all(store, &id, &options.tags)?;
    }
    progress.line(format_args!("Successfully built {}", id.short()));
    for tag in &options.tags {
        progress.line(format_args!("Successfully tagged {}", tag.familiar()));
    }
    Ok(Built {
        id,
        steps: total,
        cached,
    })
}
// ANCHOR_END: build

/// Reads the Dockerfile, finds the base image, plans every step and checks every COPY source.
fn prepare(store: &Store, options: &BuildOptions) -> Result<Prepared, BuildError> {
    let context = BuildContext::open(&options.context)?;
    let path = match &options.dockerfile {
        Some(path) => path.clone(),
        None => options.context.join("Dockerfile"),
    };
    // `./Dockerfile` is named `Dockerfile` in messages.
    let path = path
        .strip_prefix(".")
        .map(Path::to_path_buf)
        .unwrap_or(path);
    let dockerfile = Dockerfile::read(&path)?;
    let stage = dockerfile.single_stage(&options.build_args)?;
    let from_at = Location::new(&dockerfile.path, stage.line);
    check_platform(&stage, &from_at)?;
    let base = find_base(store, &stage, &from_at)?;
    let base_config = match &base {
        Some(id) => config::from_oci(&runtime_config(store, Some(id))?),
        None => ImageConfig::scratch(),
    };
    let plan = stage.plan(&base_config, &options.build_args)?;
    preflight(store, &plan, &context, base.as_ref(), &from_at)?;
    Ok(Prepared {
        dockerfile,
        stage,
        plan,
        base,
        context,
    })
}

/// FROM: a local image, the built-in `hello-world`, or `scratch` (`None`: no layers at all).
fn find_base(store: &Store, stage: &Stage, at: &Location) -> Result<Option<Digest>, BuildError> {
    if stage.from.is_scratch() {
        return Ok(None);
    }
    let name = &stage.from.image;
    match store.resolve(name) {
        Ok(id) => Ok(Some(id)),
        Err(ImageError::NoSuchImage(_)) => match ImageRef::parse(name) {
            Ok(reference) if crate::builtin::is_builtin(&reference) => {
                Ok(Some(crate::builtin::hello_world(store)?))
            }
            _ => Err(BuildError::NoBaseImage {
                at: at.clone(),
                image: name.clone(),
            }),
        },
        Err(e) => Err(e.into()),
    }
}

/// `FROM --platform=`: skiff builds for the machine it runs on, and nothing else.
fn check_platform(stage: &Stage, at: &Location) -> Result<(), BuildError> {
    let host = format!("linux/{}", crate::image::host_arch());
    match &stage.from.platform {
        Some(platform) if *platform != host => Err(BuildError::Invalid {
            at: at.clone(),
            message: format!(
                "FROM --platform={platform}: skiff builds for this machine ({host}) only: remove --platform"
            ),
        }),
        _ => Ok(()),
    }
}

/// The checks that need the build context and the base image: every COPY and ADD source is in
/// the context, and a RUN has something to run on.
fn preflight(
    store: &Store,
    plan: &Plan,
    context: &BuildContext,
    base: Option<&Digest>,
    from: &Location,
) -> Result<(), BuildError> {
    if base.is_none() && plan.steps.is_empty() {
        return Err(BuildError::Invalid {
            at: from.clone(),
            message: "No image was generated. Is your Dockerfile empty?".into(),
        });
    }
    let tree = image_tree(store, base)?;
    let mut has_files = base.is_some();
    for step in &plan.steps {
        match &step.instruction {
            Instruction::Run(_) if !has_files => {
                return Err(BuildError::Invalid {
                    at: step.at.clone(),
                    message: "RUN on an empty image: FROM scratch has no files, so there is nothing to run; COPY a program in first".into(),
                });
            }
            Instruction::Copy(_) | Instruction::Add(_) => {
                context.resolve(step, &|path| tree.is_dir(path))?;
            }
            _ => {}
        }
        has_files |= step.changes_files();
    }
    Ok(())
}

// ANCHOR: step
/// Makes the image of one step on top of `current` (or takes it from the cache); returns it
/// and whether it came from the cache.
fn execute_step(
    store: &Store,
    options: &BuildOptions,
    context: &BuildContext,
    cache: &BuildCache,
    current: Option<&Digest>,
    step: &Step,
    progress: &mut Progress<'_>,
) -> Result<(Digest, bool), BuildError> {
    let tree = image_tree(store, current)?;
    // What a COPY or ADD copies, and as whom, is part of its cache key.
    let copy = match &step.instruction {
        Instruction::Copy(_) | Instruction::Add(_) => {
            let plan = context.resolve(step, &|path| tree.is_dir(path))?;
            let owner = match &plan.chown {
                Some(chown) => chown_owner(store, &tree, &step.at, chown)?,
                None => Owner::ROOT,
            };
            let digest = plan.digest(context, owner)?;
            Some((plan, owner, digest))
        }
        _ => None,
    };
    let copied = copy.as_ref().map(|(_, _, digest)| digest.as_str());
    let key = cache_key(current.map_or("scratch", Digest::as_str), step, copied);
    if !options.no_cache
        && !chroot::defence::disabled("build-cache")
        && let Some(id) = cache.lookup(store, &key)?
    {
        progress.line(" ---> Using cache");
        return Ok((id, true));
    }

    let created_by = step.created_by(copied);
    let config = config::to_oci(&step.config, &runtime_config(store, current)?);
    let id = match (&step.instruction, copy) {
        (Instruction::Run(_), _) => {
            let image = current.ok_or_else(|| BuildError::Invalid {
                at: step.at.clone(),
                message: "RUN on an empty image".into(),
            })?;
            run::run_step(
                store,
                image,
                step,
                options.quiet,
                options.forward_signals,
                progress,
            )?
        }
        (_, Some((plan, owner, _))) => commit_layer(
            store,
            current,
            &tree,
            step,
            config,
            &created_by,
            progress,
            |layout| layout.copy(&plan, context, owner),
        )?,
        (Instruction::Workdir(_), _) if !tree.is_dir(&step.config.working_dir) => {
            let dir = step.config.working_dir.clone();
            let owner = match step.config.user.as_str() {
                "" => Owner::ROOT,
                // The user of USER owns it, when the image knows them (BuildKit's rule).
                user => chown_owner(store, &tree, &step.at, user).unwrap_or(Owner::ROOT),
            };
            commit_layer(
                store,
                current,
                &tree,
                step,
                config,
                &created_by,
                progress,
                |layout| layout.make_dir(&dir, owner),
            )?
        }
        _ => {
            let history = history_entry(&created_by, None);
            create_image(store, current, None, config, history, &[])?.id
        }
    };
    cache.record(store, &key, &id)?;
    Ok((id, false))
}
// ANCHOR_END: step

/// A step that adds files without a container: `fill` lays them out in a fresh changes
/// directory, which becomes the new image's layer. The directory is removed whatever happens.
#[allow(clippy::too_many_arguments)]
fn commit_layer(
    store: &Store,
    current: Option<&Digest>,
    tree: &ImageTree,
    step: &Step,
    config: Config,
    created_by: &str,
    progress: &mut Progress<'_>,
    fill: impl FnOnce(&mut layout::Layout<'_>) -> Result<(), layout::LayoutError>,
) -> Result<Digest, BuildError> {
    // Shared, so that an `rmi` collecting garbage leaves these temp directories alone.
    let _lock = store.lock_shared()?;
    let changes = TempPath(store.temp_path("build-changes"));
    let unpack = TempPath(store.temp_path("build-unpack"));
    let layout_error = |e: layout::LayoutError| BuildError::Layout {
        at: step.at.clone(),
        instruction: step.instruction.name(),
        context: e.context.to_string(),
        path: e.path,
        source: e.source,
    };
    std::fs::create_dir(changes.path())
        .map_err(|e| ImageError::io(format!("create {}", changes.path().display()), e))?;
    let mut layout = layout::Layout::new(tree, changes.path(), unpack.path());
    fill(&mut layout).map_err(layout_error)?;
    layout.finish().map_err(layout_error)?;
    let history = history_entry(created_by, None);
    let created = create_image(store, current, Some(changes.path()), config, history, &[])?;
    for warning in layout.warnings.iter().chain(&created.warnings) {
        progress.warn(warning);
    }
    Ok(created.id)
}

/// The files of image `id` (none for `scratch`).
fn image_tree(store: &Store, id: Option<&Digest>) -> Result<ImageTree, BuildError> {
    Ok(ImageTree::new(match id {
        Some(id) => store.layer_dirs(id)?,
        None => Vec::new(),
    }))
}

/// The runtime config of image `id` (empty for `scratch`).
fn runtime_config(store: &Store, id: Option<&Digest>) -> Result<Config, BuildError> {
    Ok(match id {
        Some(id) => store.image(id)?.config.config().clone().unwrap_or_default(),
        None => Config::default(),
    })
}

/// `--chown=USER[:GROUP]` (or USER's value) as numbers, names looked up in the image's own
/// `/etc/passwd` and `/etc/group`, read through its layers.
fn chown_owner(
    store: &Store,
    tree: &ImageTree,
    at: &Location,
    chown: &str,
) -> Result<Owner, BuildError> {
    let root = TempPath(store.temp_path("build-etc"));
    let etc = root.path().join("etc");
    std::fs::create_dir_all(&etc)
        .map_err(|e| ImageError::io(format!("create {}", etc.display()), e))?;
    for file in ["passwd", "group"] {
        if let Some(bytes) = tree.read(&format!("/etc/{file}")) {
            std::fs::write(etc.join(file), bytes)
                .map_err(|e| ImageError::io(format!("write {}", etc.display()), e))?;
        }
    }
    Ok(resolve_chown(at, chown, root.path())?)
}

/// The FROM line as written.
fn from_text(dockerfile: &Dockerfile, stage: &Stage) -> String {
    dockerfile
        .lines
        .iter()
        .find(|line| line.number == stage.line)
        .map_or_else(|| format!("FROM {}", stage.from.image), |l| l.text.clone())
}

/// Each step's line as written (`RUN echo hi`), as `Step N/M :` shows it. The base image's
/// ONBUILD triggers, which come first, are shown normalised.
fn step_texts(prepared: &Prepared) -> Vec<String> {
    let steps = &prepared.plan.steps;
    let triggers = steps.len().saturating_sub(prepared.stage.body.len());
    steps
        .iter()
        .enumerate()
        .map(|(n, step)| match n.checked_sub(triggers) {
            Some(i) => prepared.stage.body[i].text.clone(),
            None => step.instruction.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_from_the_command_line() {
        let args = parse_build_args(&["A=1".into(), "B=".into(), "C=x=y".into()]).unwrap();
        assert_eq!(args["A"], "1");
        assert_eq!(args["B"], "");
        assert_eq!(args["C"], "x=y");
        // NAME alone: from the environment, or not at all.
        let args = parse_build_args(&["SKIFF_SURELY_UNSET_VARIABLE".into()]).unwrap();
        assert!(args.is_empty());
        let args = parse_build_args(&["PATH".into()]).unwrap();
        assert_eq!(args.get("PATH"), std::env::var("PATH").ok().as_ref());
        assert!(parse_build_args(&["=1".into()]).is_err());
    }

    #[test]
    fn a_bad_dockerfile_fails_before_anything_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let context = dir.path().join("context");
        std::fs::create_dir(&context).unwrap();
        let options = BuildOptions {
            context: context.clone(),
            ..BuildOptions::default()
        };
        let build = |text: &str| {
            std::fs::write(context.join("Dockerfile"), text).unwrap();
            let mut out = Vec::new();
            build(&store, &options, &mut out, &mut Vec::new())
                .unwrap_err()
                .to_string()
        };
        let err = build("FROM scratch\nCOPY a /a\nRUNN make\n");
        assert!(
            err.ends_with("Dockerfile:3: unknown instruction \"RUNN\" (did you mean RUN?)"),
            "{err}"
        );
        let err = build("FROM busybox\nRUN true\n");
        assert!(
            err.ends_with("Dockerfile:1: FROM busybox: no such image in the store: load, import or build it first"),
            "{err}"
        );
        let err = build("FROM scratch\nCOPY missing.txt /x\n");
        assert!(
            err.contains("Dockerfile:2: COPY failed: file not found in build context: missing.txt"),
            "{err}"
        );
        let err = build("FROM scratch\nENV A=1\nRUN true\n");
        assert!(err.contains("Dockerfile:3: RUN on an empty image"), "{err}");
        let err = build("FROM scratch\n");
        assert!(err.contains("No image was generated"), "{err}");
        let err = build("FROM scratch\nCMD [\"x\"]\nFROM scratch\n");
        assert!(err.contains("Dockerfile:3: a multi-stage build"), "{err}");
        assert!(store.image_ids().unwrap().is_empty());
        assert!(!store.root().join("build-cache").exists());
        assert_eq!(
            crate::testutil::tree(&store.root().join("tmp")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn config_and_copy_steps_make_images_and_an_unchanged_rebuild_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let context = dir.path().join("context");
        std::fs::create_dir(&context).unwrap();
        std::fs::write(context.join("hello.txt"), "hello\n").unwrap();
        std::fs::write(
            context.join("Dockerfile"),
            "FROM scratch\nENV GREETING=hi\nCOPY hello.txt /srv/\nWORKDIR /srv\nCMD [\"cat\", \"hello.txt\"]\n",
        )
        .unwrap();
        let options = BuildOptions {
            context: context.clone(),
            tags: vec![ImageRef::parse("demo:1").unwrap()],
            ..BuildOptions::default()
        };
        let mut out = Vec::new();
        let first = build(&store, &options, &mut out, &mut Vec::new()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("Step 1/5 : FROM scratch\nStep 2/5 : ENV GREETING=hi\n ---> "),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "Successfully built {}\nSuccessfully tagged demo:1\n",
                first.id.short()
            )),
            "{text}"
        );
        assert_eq!(first.cached, 0);

        let image = store.image(&first.id).unwrap();
        let history = image.config.history().clone().unwrap();
        assert_eq!(history.len(), 4, "one entry per instruction after FROM");
        assert_eq!(
            image.layers.len(),
            1,
            "COPY made a layer; /srv existed for WORKDIR"
        );
        let config = image.config.config().clone().unwrap();
        assert_eq!(config.working_dir().as_deref(), Some("/srv"));
        assert!(
            config
                .env()
                .clone()
                .unwrap()
                .contains(&"GREETING=hi".to_string())
        );
        assert_eq!(store.resolve("demo:1").unwrap(), first.id);

        let mut out = Vec::new();
        let again = build(&store, &options, &mut out, &mut Vec::new()).unwrap();
        assert_eq!(again.id, first.id, "same image");
        assert_eq!(again.cached, 4);
        assert_eq!(
            String::from_utf8(out)
                .unwrap()
                .matches(" ---> Using cache")
                .count(),
            4
        );

        // A changed file invalidates its COPY and what follows, not what comes before.
        std::fs::write(context.join("hello.txt"), "changed\n").unwrap();
        let changed = build(&store, &options, &mut Vec::new(), &mut Vec::new()).unwrap();
        assert_ne!(changed.id, first.id);
        assert_eq!(changed.cached, 1, "ENV only");
        // --no-cache runs everything again.
        let fresh = build(
            &store,
            &BuildOptions {
                no_cache: true,
                ..options.clone()
            },
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(fresh.cached, 0);
        assert_eq!(
            crate::testutil::tree(&store.root().join("tmp")),
            Vec::<String>::new()
        );
    }
}
