//! The `images` command line as a library: the subcommands stage 04 adds (`load`, `save`,
//! `build`, `pull`...) and its `run`, so that later stages add to them instead of copying them.
//! `main.rs` of stage 04 is a few lines over this module; stage 05 flattens [`ImageCommand`]
//! into its own command line and builds its `run` on [`prepare_run`].

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use cgroups::CgroupArgs;
use chroot::cli::{self, ProcessArgs};
use clap::{Args, Subcommand};
use namespaces::{ContainerId, NamespaceArgs, RootArgs};

use crate::container::{CommitOutcome, ContainerRequest};
use crate::reference::ImageRef;
use crate::store::Store;
use crate::{Digest, ImageError};

/// The image commands of stage 04, which every later stage keeps as they are.
#[derive(Subcommand)]
pub enum ImageCommand {
    /// Load images from a docker-archive or OCI archive (a file, or stdin)
    Load(LoadArgs),
    /// Save images to a docker-archive (default) or OCI archive
    Save(SaveArgs),
    /// Create an image from a root filesystem tarball
    Import(ImportArgs),
    /// List images
    #[command(visible_alias = "ls")]
    Images(ListArgs),
    /// Remove images
    #[command(visible_alias = "rm")]
    Rmi(RmiArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Show images' details as JSON
    Inspect(InspectArgs),
    /// Show how an image was made, layer by layer
    History(HistoryArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Search Docker Hub, or a registry's catalog, for images
    Search(SearchArgs),
}

impl ImageCommand {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            ImageCommand::Load(args) => load(args),
            ImageCommand::Save(args) => save(args),
            ImageCommand::Import(args) => import(args),
            ImageCommand::Images(args) => list(args),
            ImageCommand::Rmi(args) => rmi(args),
            ImageCommand::Tag(args) => tag(args),
            ImageCommand::Inspect(args) => inspect(args),
            ImageCommand::History(args) => history(args),
            ImageCommand::Build(args) => build(args),
            ImageCommand::Pull(args) => pull(args),
            ImageCommand::Push(args) => push(args),
            ImageCommand::Login(args) => login(args),
            ImageCommand::Logout(args) => logout(args),
            ImageCommand::Search(args) => search(args),
        }
    }
}

// ANCHOR: run_args
/// `run`'s flags: stages 01 to 03's, and the image's.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[group(id = "images_run")]
pub struct RunArgs {
    /// Run in this directory instead of an image (stages 01 to 03)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Override the image's ENTRYPOINT ("" clears it)
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,

    /// Turn the container's changes into a new image when it exits
    #[arg(long, value_name = "NAME[:TAG]")]
    pub commit: Option<String>,

    /// Remove the container when it exits (always so at this stage)
    #[arg(long)]
    pub rm: bool,

    /// Pull the image before running: missing (only when absent), always, or never
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "missing",
        value_parser = ["missing", "always", "never"]
    )]
    pub pull: String,

    /// Stage 01's flags: `-w`, `-e`.
    #[command(flatten)]
    pub process: ProcessArgs,

    /// Stage 02's flags.
    #[command(flatten)]
    pub namespaces: NamespaceArgs,

    /// Stage 03's flags.
    #[command(flatten)]
    pub cgroup: CgroupArgs,

    /// The image (unless --rootfs is given), then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND]"
    )]
    pub args: Vec<String>,
}
// ANCHOR_END: run_args

/// `load`'s flags.
#[derive(Args)]
pub struct LoadArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// Read from this archive instead of stdin
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// `save`'s flags.
#[derive(Args)]
pub struct SaveArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// Write to this file instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// docker-archive (default), oci-archive (or oci), or oci-dir
    #[arg(long, default_value = "docker-archive", value_name = "FORMAT")]
    pub format: String,
    /// The images to save
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `import`'s arguments.
#[derive(Args)]
pub struct ImportArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// A root filesystem tarball (plain or gzip), or - for stdin
    #[arg(value_name = "FILE")]
    pub file: String,
    /// The new image's name
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

/// `images`'s flags.
#[derive(Args)]
pub struct ListArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// Show all images, also the intermediate ones build leaves for its cache
    #[arg(short, long)]
    pub all: bool,
    /// Only show image ids
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rmi`'s arguments.
#[derive(Args)]
pub struct RmiArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// Remove even if a container uses it (the image is then only untagged)
    #[arg(short, long)]
    pub force: bool,
    /// The images to remove
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `tag`'s arguments.
#[derive(Args)]
pub struct TagArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// An image name or id
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// The new name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `inspect`'s arguments.
#[derive(Args)]
pub struct InspectArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// The images to inspect
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `history`'s arguments.
#[derive(Args)]
pub struct HistoryArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// `build`'s flags.
#[derive(Args)]
pub struct BuildArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// Name the image NAME[:TAG] (may be repeated)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: DIR/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a build argument: NAME=VALUE, or NAME to take its value from the environment
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Run every step again: reuse nothing from the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context: the directory COPY and ADD read from
    #[arg(value_name = "DIR")]
    pub context: PathBuf,
}

/// Where the registry config is, and whether the registry may use plain HTTP.
/// Flags every registry command takes.
#[derive(Args)]
pub struct RegistryArgs {
    /// The directory of config.json (credentials, insecure-registries) [default: $SKIFF_CONFIG, else ~/.config/skiff]
    #[arg(long = "config", value_name = "DIR")]
    config: Option<PathBuf>,
    /// Allow plain HTTP and unverified TLS for this registry (loopback registries always may)
    #[arg(long)]
    insecure: bool,
}

impl RegistryArgs {
    fn options(&self) -> anyhow::Result<crate::registry::Options> {
        let mut options = crate::registry::Options::load(self.config.clone())?;
        options.insecure = self.insecure;
        Ok(options)
    }
}

/// `pull`'s arguments.
#[derive(Args)]
pub struct PullArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub store: RootArgs,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Choose this platform from a multi-platform image [default: this machine's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the image's full name
    #[arg(short, long)]
    pub quiet: bool,
    /// The image
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

/// `push`'s arguments.
#[derive(Args)]
pub struct PushArgs {
    #[command(flatten)]
    store: RootArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print only the image's name
    #[arg(short, long)]
    quiet: bool,
    /// The image (its name says the registry and repository)
    #[arg(value_name = "NAME[:TAG]")]
    image: String,
}

/// `login`'s arguments.
#[derive(Args)]
pub struct LoginArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The user name
    #[arg(short = 'u', long = "username", value_name = "USER")]
    username: Option<String>,
    /// The password (insecure: it shows in the process list; use --password-stdin)
    #[arg(short = 'p', long = "password", value_name = "PASSWORD")]
    password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// The registry [default: docker.io]
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// `logout`'s arguments.
#[derive(Args)]
pub struct LogoutArgs {
    /// The directory of config.json [default: $SKIFF_CONFIG, else ~/.config/skiff]
    #[arg(long = "config", value_name = "DIR")]
    config: Option<PathBuf>,
    /// The registry [default: docker.io]
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// `search`'s arguments.
#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Show at most this many results (1 to 100)
    #[arg(long, default_value_t = 25)]
    limit: usize,
    /// Do not truncate descriptions
    #[arg(long)]
    no_trunc: bool,
    /// A name to look for on Docker Hub, or REGISTRY/TERM for a registry's catalog
    /// (localhost:5000/app; localhost:5000/ lists everything)
    #[arg(value_name = "[REGISTRY/]TERM")]
    term: String,
}

// ANCHOR: find_image
/// Finds the image `run` uses, pulling it as `--pull` says (Docker's `run --pull`). The built-in
/// `hello-world` comes first: it needs no registry at all.
fn find_image(
    store: &Store,
    name: &str,
    policy: crate::registry::PullPolicy,
) -> anyhow::Result<Digest> {
    use crate::registry::PullPolicy;
    let reference = ImageRef::parse(name).ok();
    if let Some(reference) = &reference
        && crate::builtin::is_builtin(reference)
    {
        return match store.resolve(name) {
            Ok(id) => Ok(id),
            Err(ImageError::NoSuchImage(_)) => Ok(crate::builtin::hello_world(store)?),
            Err(e) => Err(e.into()),
        };
    }
    if policy != PullPolicy::Always {
        match store.resolve(name) {
            Ok(id) => return Ok(id),
            Err(ImageError::NoSuchImage(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // An image id names nothing a registry could serve.
    let pullable = reference.filter(|_| !name.starts_with(Digest::PREFIX));
    let Some(reference) = pullable.filter(|_| policy != PullPolicy::Never) else {
        bail!(
            "Unable to find image '{name}' locally: pull it (images pull {name}), load it (images load -i FILE), build it (images build -t {name} DIR) or import a rootfs tarball"
        )
    };
    if policy == PullPolicy::Missing {
        eprintln!("Unable to find image '{}' locally", reference.familiar());
    }
    let options = crate::registry::Options::load(None)?;
    let progress = crate::registry::ConsoleProgress::stderr();
    let pulled = crate::registry::pull(store, &reference, &options, &progress)?;
    for warning in &pulled.warnings {
        eprintln!("images: warning: {warning}");
    }
    Ok(pulled.id)
}
// ANCHOR_END: find_image

// ANCHOR: main_run
/// A container ready to launch, from `run`'s flags: what runs with which features, the image,
/// and where a `--commit` will leave its outcome.
pub struct PreparedRun {
    /// Its id, hostname, state directory, process and features (the cgroup's included).
    pub container: namespaces::Container,
    /// The image it runs (none for `--rootfs`).
    pub image: Option<Digest>,
    /// The image's runtime defaults (Cmd, Entrypoint, ExposedPorts, Volumes...), as read when
    /// the container was prepared: a later stage takes them from here instead of reading the
    /// image from the store again. None for `--rootfs`.
    pub config: Option<oci_spec::image::Config>,
    /// Filled in when the container exited, for `--commit`.
    pub commit: Option<CommitOutcome>,
}

impl PreparedRun {
    /// The image's `VOLUME` paths, where a later stage mounts volumes (none for `--rootfs`).
    pub fn volumes(&self) -> Vec<String> {
        self.config
            .as_ref()
            .and_then(|c| c.volumes().clone())
            .unwrap_or_default()
    }
}

/// Checks every flag, then describes the container `run` starts, on the network a later stage
/// has decided on; nothing exists on the host until its features run. With `--rootfs` it is
/// stage 03's container; with an image, stage 03's on an overlay of the image's layers.
pub fn prepare_run(
    args: &RunArgs,
    id: ContainerId,
    network: &namespaces::NetworkMode,
) -> anyhow::Result<PreparedRun> {
    let commit_tag = args
        .commit
        .as_deref()
        .map(ImageRef::parse_tag)
        .transpose()
        .context("--commit")?;
    match &args.rootfs {
        Some(rootfs) => {
            if commit_tag.is_some() {
                bail!("--commit needs an image: a --rootfs directory has no layers to add to");
            }
            let stage03 = cgroups::cli::RunArgs {
                base: namespaces::RunArgs {
                    base: chroot::cli::RunArgs {
                        rootfs: rootfs.clone(),
                        process: args.process.clone(),
                        command: args.args.clone(),
                    },
                    namespaces: args.namespaces.clone(),
                },
                cgroup: args.cgroup.clone(),
            };
            Ok(PreparedRun {
                container: stage03.prepare_on(id, network.clone())?,
                image: None,
                config: None,
                commit: None,
            })
        }
        None => run_image(args, id, commit_tag.as_ref(), network),
    }
}

/// Launches a prepared container and waits for it, forwarding signals; `name` prefixes the
/// engine's messages. A commit that failed is the engine's failure (exit 125), whatever the
/// command did.
pub fn launch_prepared(name: &str, mut prepared: PreparedRun) -> anyhow::Result<i32> {
    let code = cli::launch_and_wait(name, &mut prepared.container.prepared)?;
    if let Some(outcome) = prepared.commit
        && let Ok(guard) = outcome.lock()
        && let Some(Err(_)) = &*guard
    {
        return Ok(cli::EXIT_ENGINE);
    }
    Ok(code)
}

/// `images run`.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let id = ContainerId::random().context("make a container id")?;
    let network = args.namespaces.checked_network()?;
    let prepared = prepare_run(&args, id, &network)?;
    args.namespaces.write_cidfile(&prepared.container.id)?;
    launch_prepared("images", prepared)
}
// ANCHOR_END: main_run

/// A container of an image: the image's config combined with the command line, and an
/// overlay of its layers as the root.
fn run_image(
    args: &RunArgs,
    id: ContainerId,
    commit_tag: Option<&ImageRef>,
    network: &namespaces::NetworkMode,
) -> anyhow::Result<PreparedRun> {
    let store = Store::open(&args.namespaces.root)?;
    let (name, command) = args.args.split_first().context("no image given")?;
    let id_of_image = find_image(&store, name, args.pull.parse()?)?;
    // Read once here, and passed along: the container's process, its layers and whatever a
    // later stage needs of the config all come from this one read.
    let image = store.image(&id_of_image)?;
    let config = image.config.config().clone();
    let mut request = ContainerRequest::new(&store, image, command.to_vec());
    request.entrypoint = args.entrypoint.clone();
    request.process = args.process.clone();
    request.namespaces = args.namespaces.clone();
    request.cgroup = Some(args.cgroup.clone());
    let mut commit = None;
    if let Some(tag) = commit_tag {
        let outcome: CommitOutcome = Arc::new(Mutex::new(None));
        commit = Some(outcome.clone());
        request.commit = Some((tag.clone(), outcome));
    }
    Ok(PreparedRun {
        container: request.build(id, network)?,
        image: Some(id_of_image),
        config,
        commit,
    })
}

fn load(args: LoadArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let loaded = match &args.input {
        Some(path) => crate::archive::load(&store, path)?,
        None => {
            if std::io::stdin().is_terminal() {
                bail!(
                    "requested load from stdin, but stdin is a terminal: use -i FILE or redirect an archive in"
                );
            }
            let temp = store.temp_path("load-stdin");
            let copied = std::fs::File::create(&temp)
                .and_then(|mut file| std::io::copy(&mut std::io::stdin().lock(), &mut file));
            let result = copied
                .map_err(anyhow::Error::from)
                .and_then(|_| Ok(crate::archive::load(&store, &temp)?));
            let _ = std::fs::remove_file(&temp);
            result?
        }
    };
    for warning in &loaded.warnings {
        eprintln!("images: warning: {warning}");
    }
    if !args.quiet {
        for line in loaded.messages() {
            println!("{line}");
        }
    }
    Ok(0)
}

fn save(args: SaveArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let format: crate::archive::SaveFormat = args.format.parse()?;
    let names: Vec<&str> = args.images.iter().map(String::as_str).collect();
    match &args.output {
        Some(path) => crate::archive::save(&store, &names, format, path)?,
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal: use -o FILE or redirect stdout");
            }
            let temp = store.temp_path("save-stdout");
            let result = crate::archive::save(&store, &names, format, &temp)
                .map_err(anyhow::Error::from)
                .and_then(|()| copy_to_stdout(&temp));
            let _ = std::fs::remove_file(&temp);
            result?;
        }
    }
    Ok(0)
}

fn copy_to_stdout(path: &Path) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut stdout = std::io::stdout().lock();
    std::io::copy(&mut file, &mut stdout)?;
    stdout.flush()?;
    Ok(())
}

fn import(args: ImportArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let tag = args.name.as_deref().map(ImageRef::parse_tag).transpose()?;
    let imported = if args.file == "-" {
        crate::import::import(&store, std::io::stdin().lock(), "-", tag.as_ref())?
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("open {}: give a rootfs tarball", args.file))?;
        crate::import::import(&store, file, &args.file, tag.as_ref())?
    };
    for warning in &imported.warnings {
        eprintln!("images: warning: {warning}");
    }
    println!("{}", imported.id);
    Ok(0)
}

fn list(args: ListArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let rows = crate::ops::list(&store, args.all)?;
    print!(
        "{}",
        crate::ops::images_table(&rows, args.quiet, std::time::SystemTime::now())
    );
    Ok(0)
}

fn rmi(args: RmiArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let mut failed = None;
    for name in &args.images {
        match crate::ops::remove(&store, name, args.force) {
            Ok(removed) => removed.iter().for_each(|r| println!("{r}")),
            Err(e) => {
                eprintln!("images: {e}");
                failed = Some(e);
            }
        }
    }
    // Docker's exit code for a command that failed (125 is `run`'s, for its own errors).
    match failed {
        Some(_) => Ok(1),
        None => Ok(0),
    }
}

fn tag(args: TagArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    crate::ops::tag(&store, &args.source, &args.target)?;
    Ok(0)
}

fn inspect(args: InspectArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        match crate::ops::inspect(&store, name) {
            Ok(inspected) => found.push(inspected),
            Err(e) => missing.push(e),
        }
    }
    // Docker prints what it found, as a JSON array indented by four spaces, then the errors.
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&found, &mut serializer)?;
    println!("{}", String::from_utf8_lossy(&out));
    for e in &missing {
        eprintln!("images: {e}");
    }
    Ok(if missing.is_empty() {
        0
    } else {
        cli::EXIT_ENGINE
    })
}

fn history(args: HistoryArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let rows = crate::ops::history(&store, &args.image)?;
    print!(
        "{}",
        crate::ops::history_table(&rows, args.no_trunc, std::time::SystemTime::now())
    );
    Ok(0)
}

fn build(args: BuildArgs) -> anyhow::Result<i32> {
    let tags = args.tags.iter().map(|t| ImageRef::parse_tag(t));
    let options = crate::builder::BuildOptions {
        context: args.context,
        dockerfile: args.file,
        tags: tags.collect::<Result<_, _>>()?,
        build_args: crate::builder::parse_build_args(&args.build_args)?,
        no_cache: args.no_cache,
        quiet: args.quiet,
        forward_signals: true,
    };
    let store = Store::open(&args.store.root)?;
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    match crate::builder::build(&store, &options, &mut stdout, &mut stderr) {
        Ok(built) => {
            if args.quiet {
                println!("{}", built.id);
            }
            Ok(0)
        }
        // A RUN that failed (1, as Docker) or was interrupted (130) is not the engine's failure.
        Err(e) if e.exit_code() != cli::EXIT_ENGINE => {
            eprintln!("images: {e}");
            Ok(e.exit_code())
        }
        Err(e) => Err(e.into()),
    }
}

// ANCHOR: main_pull
fn pull(args: PullArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let mut options = args.registry.options()?;
    options.platform = args
        .platform
        .as_deref()
        .map(crate::registry::Platform::parse)
        .transpose()?;
    let reference = ImageRef::parse(&args.image)?;
    let pulled = if args.quiet {
        crate::registry::pull(&store, &reference, &options, &crate::registry::Quiet)?
    } else {
        let last = args.image.rsplit('/').next().unwrap_or(&args.image);
        if !last.contains([':', '@']) {
            println!("Using default tag: latest");
        }
        let progress = crate::registry::ConsoleProgress::stdout();
        crate::registry::pull(&store, &reference, &options, &progress)?
    };
    for warning in &pulled.warnings {
        eprintln!("images: warning: {warning}");
    }
    println!("{}", reference.full());
    Ok(0)
}
// ANCHOR_END: main_pull

fn push(args: PushArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.root)?;
    let options = args.registry.options()?;
    let reference = ImageRef::parse(&args.image)?;
    if args.quiet {
        crate::registry::push(&store, &reference, &options, &crate::registry::Quiet)?;
        println!("{}", reference.familiar());
    } else {
        let progress = crate::registry::ConsoleProgress::stdout();
        crate::registry::push(&store, &reference, &options, &progress)?;
    }
    Ok(0)
}

fn login(args: LoginArgs) -> anyhow::Result<i32> {
    let options = args.registry.options()?;
    let Some(username) = args.username.filter(|u| !u.is_empty()) else {
        bail!(
            "login needs a user name: -u USER, with --password-stdin (or -p PASSWORD); skiff does not prompt"
        );
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(password), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            password
        }
        (None, true) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                .context("read the password from stdin")?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!(
            "login needs a password: --password-stdin (or -p PASSWORD); skiff does not prompt"
        ),
    };
    if password.is_empty() {
        bail!("login: the password is empty");
    }
    let credentials = crate::registry::auth::Credentials { username, password };
    crate::registry::login(args.server.as_deref(), credentials, &options).context("login")?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        options.config.path.display()
    );
    println!("Login Succeeded");
    Ok(0)
}

fn logout(args: LogoutArgs) -> anyhow::Result<i32> {
    let options = crate::registry::Options::load(args.config)?;
    match crate::registry::logout(args.server.as_deref(), &options)? {
        crate::registry::Logout::Removed(key) => println!("Removing login credentials for {key}"),
        crate::registry::Logout::NotLoggedIn(key) => println!("Not logged in to {key}"),
    }
    Ok(0)
}

fn search(args: SearchArgs) -> anyhow::Result<i32> {
    if !(1..=100).contains(&args.limit) {
        bail!("limit {} is outside the range of [1, 100]", args.limit);
    }
    let options = args.registry.options()?;
    let results = crate::registry::search(&args.term, args.limit, &options)?;
    print!(
        "{}",
        crate::registry::search::results_table(&results, args.no_trunc)
    );
    Ok(0)
}
