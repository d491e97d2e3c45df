//! Seccomp: the system calls a container may make at all.
//!
//! Capabilities decide what root may do with a system call; seccomp (seccomp(2)) decides
//! whether the call reaches the kernel in the first place. A process hands the kernel a small
//! program in classic BPF that looks at each system call's number and arguments and answers
//! "allow", "fail with this errno" or "kill". Once installed it can never be removed, it is
//! inherited by every child and kept across execve, and `/proc/PID/status` says `Seccomp: 2`.
//!
//! skiff uses Docker's default profile, unchanged: `seccomp/default.json` (moby's
//! `profiles/seccomp/default.json`). It lists about 350 calls that ordinary programs make and
//! refuses the rest with `EPERM`: `keyctl` and `add_key` (keyrings are not namespaced),
//! `unshare` and `clone` with namespace flags, `mount`, `bpf`, `perf_event_open`, kernel
//! modules, `reboot`... Some rules depend on the container's capabilities (`--cap-add
//! SYS_ADMIN` also allows `mount` and `unshare`), on the architecture, on the kernel version;
//! some on arguments (`personality` only with the few values programs use, `socket` for
//! anything but `AF_VSOCK`). [`compile`] evaluates those conditions for one container and turns
//! what remains into BPF with the `seccompiler` crate, in the parent, before the clone; the
//! child only makes the one system call that installs it ([`InstallFilter`]).
//!
//! `--security-opt seccomp=unconfined` runs without a filter, `seccomp=PROFILE.json` with
//! another profile in Docker's format.
//!
//! seccompiler gives every rule of one filter the same action, where Docker's profiles give
//! each rule its own (`clone3` fails with `ENOSYS`, so that C libraries fall back to `clone`,
//! whose flags the filter can see). So [`compile`] writes the program itself, as a search tree
//! over the call's number (runs of numbers with one answer, halved at each comparison), and
//! asks seccompiler only for the few calls whose rules look at their arguments: see `tree`.
//!
//! One machine speaks more than one system-call language: an x86_64 kernel also runs 32-bit
//! x86 programs (and a 64-bit program that executes `int $0x80`), whose calls carry another
//! number for the same name (`getpid` is 39 on x86_64, 20 on i386) and another architecture
//! word in what the filter sees (`AUDIT_ARCH_I386`). A filter that checks only the native
//! architecture must kill such a call, or it would judge i386's numbers by x86_64's table.
//! Docker's profile says which architectures go together (`archMap`: x86_64 with x86 and x32,
//! aarch64 with arm), and [`compile`] builds the same rules once per architecture, with that
//! architecture's numbers ([`Arch`]), one section after the other: a call of another
//! architecture jumps past a section to the next. Only a call of an architecture no section
//! names is killed. x32 (x86_64's 32-bit-pointer ABI) is left out: its calls are x86_64's
//! numbers plus a flag bit, with a table of their own that skiff has no source for; they get the
//! profile's default answer (`EPERM`), and kernels seldom enable x32 anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::Deserialize;

use crate::security::capability_number;

// ANCHOR: default_profile
/// Docker's default profile (moby's `profiles/seccomp/default.json`, Apache-2.0), kept as data
/// next to the code and compiled into the engine.
pub const DOCKER_DEFAULT: &str = include_str!("../seccomp/default.json");
// ANCHOR_END: default_profile

/// The kernel's limit on the length of one filter (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

/// What went wrong with `--security-opt` or a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// An option skiff does not know.
    #[error(
        "invalid --security-opt {0:?}: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false]"
    )]
    BadOption(String),
    /// The profile file cannot be read.
    #[error("read seccomp profile {path} (give a JSON file in Docker's format)")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The profile can be read but not understood.
    #[error("seccomp profile {name}: {problem}")]
    Profile {
        /// The file, or which built-in profile.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
}

// ANCHOR: seccomp
/// Which filter a container gets: `--security-opt seccomp=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter at all: `seccomp=unconfined`, and what `--privileged` means (it sets
    /// [`SecurityOpts::seccomp`] to this).
    Unconfined,
    /// A profile in Docker's format, in this file.
    File(PathBuf),
    /// A profile in Docker's format, as text: what `create` keeps in the container's record in
    /// place of the file, as Docker does, so that a later start does not need the file.
    Inline(String),
}

/// The options of `--security-opt` that skiff knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// `no-new-privileges`: setuid and file capabilities no longer raise privileges. Off by
    /// default, as in Docker.
    pub no_new_privileges: bool,
}
// ANCHOR_END: seccomp

impl SecurityOpts {
    /// Reads the `--security-opt` values, Docker's way: `KEY=VALUE` (or the older `KEY:VALUE`).
    pub fn parse(opts: &[String]) -> Result<Self, SeccompError> {
        let mut parsed = SecurityOpts::default();
        for opt in opts {
            let bad = || SeccompError::BadOption(opt.clone());
            if opt == "no-new-privileges" {
                parsed.no_new_privileges = true;
                continue;
            }
            let (key, value) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .ok_or_else(bad)?;
            match key {
                "no-new-privileges" => {
                    parsed.no_new_privileges = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad()),
                    }
                }
                "seccomp" if value == "unconfined" => parsed.seccomp = Seccomp::Unconfined,
                "seccomp" if value.trim_start().starts_with('{') => {
                    parsed.seccomp = Seccomp::Inline(value.to_string())
                }
                "seccomp" if !value.is_empty() => parsed.seccomp = Seccomp::File(value.into()),
                // There is no AppArmor or SELinux in skiff: nothing to lift.
                "apparmor" if value == "unconfined" => {}
                "label" if value == "disable" => {}
                _ => return Err(bad()),
            }
        }
        Ok(parsed)
    }

    /// The confinement of a process with the capabilities `caps`: the filter compiled for them,
    /// and no_new_privs.
    pub fn confinement(&self, caps: &BTreeSet<u32>) -> Result<Confinement, SeccompError> {
        self.confinement_cached(caps, None)
    }

    /// [`SecurityOpts::confinement`], with Docker's default profile taken from (or compiled
    /// into) the cache of the store at `store` when given (see [`cached_default`]).
    pub fn confinement_cached(
        &self,
        caps: &BTreeSet<u32>,
        store: Option<&std::path::Path>,
    ) -> Result<Confinement, SeccompError> {
        let named = |name: &str, compiled: Result<BpfProgram, String>| {
            compiled.map_err(|problem| SeccompError::Profile {
                name: name.to_string(),
                problem,
            })
        };
        let compiled = |name: &str, json: &str| named(name, compile(json, caps));
        let program = match &self.seccomp {
            Seccomp::Unconfined => None,
            // Under a millisecond (benches/namespaces.rs; 0.35 ms for x86_64 alone, about twice
            // that with i386's section), but the same program every time: kept in the store
            // when there is one.
            Seccomp::Default => Some(named(
                "Docker's default",
                match store {
                    Some(store) => cached_default(store, caps),
                    None => compile(DOCKER_DEFAULT, caps),
                },
            )?),
            Seccomp::File(path) => {
                let json = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(compiled(&path.display().to_string(), &json)?)
            }
            Seccomp::Inline(json) => Some(compiled("kept with the container", json)?),
        };
        Ok(Confinement {
            no_new_privs: self.no_new_privileges,
            filter: program.map(|p| Arc::new(InstallFilter::new(p))),
        })
    }
}

// ANCHOR: cache
/// Docker's default profile compiled for `caps`, from the cache of the store at `store`
/// (`<store>/cache/`) when a file there was compiled by this very binary on this kernel, else
/// compiled now and kept there.
///
/// Compiling the profile (parsing 30 KiB of JSON, deciding its conditions, building three
/// search trees, one per architecture) is the dearest thing `skiff run` does before it forks
/// its monitor, and for a given set of capabilities it gives the same program every time. A
/// kept program is only as good as what it was compiled by and for, so a file starts with a
/// line naming that: the binary (device, inode, size and modification time of
/// `/proc/self/exe`: any rebuild or upgrade makes another), the kernel release (the profile's
/// `minKernel` conditions) and the machine. A file whose line differs, or whose program is not
/// a whole number of instructions, is compiled again and replaced. The directory is in skiff's
/// store, which only root may write: anyone who could change a kept filter could change the
/// container's record just as well.
///
/// The file's name carries a hash of that line as well as the capabilities: several binaries
/// share one store (a learner's stage binaries beside the installed `skiff`, the benchmark's
/// contestants run in turns), and with one file per capability set each would replace the
/// other's program on every run and none would ever find its own. Each keeps a file of its
/// own; a rebuild makes a new one, so a store keeps at most [`KEPT`] of them, the newest.
pub fn cached_default(store: &std::path::Path, caps: &BTreeSet<u32>) -> Result<BpfProgram, String> {
    let mask = caps
        .iter()
        .filter(|&&cap| cap < 64)
        .fold(0u64, |mask, cap| mask | 1 << cap);
    let Some(header) = cache_header() else {
        return compile(DOCKER_DEFAULT, caps);
    };
    let name = format!("{PREFIX}{mask:016x}-{:016x}.bpf", fnv1a(header.as_bytes()));
    let path = store.join(CACHE).join(&name);
    if let Ok(bytes) = std::fs::read(&path)
        && let Some(program) = bytes
            .strip_prefix(header.as_bytes())
            .and_then(program_from_bytes)
    {
        return Ok(program);
    }
    let program = compile(DOCKER_DEFAULT, caps)?;
    let mut bytes = header.into_bytes();
    for instruction in &program {
        bytes.extend_from_slice(&instruction.code.to_le_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_le_bytes());
    }
    // Best effort: a store that cannot keep it compiles again next time.
    if let Ok(dir) = crate::private::store_dir(store, CACHE)
        && crate::records::replace_file(&dir.join(&name), &bytes).is_ok()
    {
        keep_newest(&dir);
    }
    Ok(program)
}

/// The store's directory of things kept only to be faster, which may be deleted any time.
pub const CACHE: &str = "cache";

/// How the kept programs' names begin.
const PREFIX: &str = "seccomp-default-";

/// How many kept programs a store holds at most: one per binary and set of capabilities in use.
pub const KEPT: usize = 16;

/// Removes the oldest kept programs of `dir` beyond [`KEPT`] (those of binaries rebuilt or
/// upgraded since: a binary still in use that loses its file compiles once more).
fn keep_newest(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut kept: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if kept.len() <= KEPT {
        return;
    }
    kept.sort();
    for (_, path) in &kept[..kept.len() - KEPT] {
        let _ = std::fs::remove_file(path);
    }
}

/// FNV-1a, 64 bits: a short name for a kept program's first line (the line itself, inside the
/// file, is what is checked).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The first line of a kept program: what compiled it, for what.
fn cache_header() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let binary = std::fs::metadata("/proc/self/exe").ok()?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(format!(
        "skiff seccomp 1 {}:{} {} {}.{} {} {}\n",
        binary.dev(),
        binary.ino(),
        binary.size(),
        binary.mtime(),
        binary.mtime_nsec(),
        release.trim(),
        std::env::consts::ARCH,
    ))
}

/// A program kept as 8-byte instructions (code, jt, jf, k; little-endian).
fn program_from_bytes(bytes: &[u8]) -> Option<BpfProgram> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > MAX_INSTRUCTIONS {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|b| seccompiler::sock_filter {
                code: u16::from_le_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect(),
    )
}
// ANCHOR_END: cache

/// What [`crate::security::Privileges`] needs besides capabilities and user: no_new_privs, and
/// the seccomp filter, compiled.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// The filter to install; `None`: unconfined.
    pub filter: Option<Arc<InstallFilter>>,
}

// ANCHOR: profile
/// A seccomp profile in Docker's format (the part skiff reads; other fields are ignored, as
/// Docker ignores them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    /// What happens to a call no rule names: `SCMP_ACT_ERRNO` in Docker's.
    default_action: String,
    /// The errno of an `SCMP_ACT_ERRNO` default (1, `EPERM`, when not given).
    default_errno_ret: Option<u32>,
    /// The rules.
    syscalls: Option<Vec<Rule>>,
    /// The architectures a filter answers for, by the machine's own (Docker's, since 2021).
    arch_map: Option<Vec<ArchMapEntry>>,
    /// The architectures, in older profiles: used when `archMap` has no entry for this machine.
    architectures: Option<Vec<String>>,
}

/// One entry of `archMap`: on `architecture`, the filter also answers for these.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    /// `SCMP_ARCH_X86_64`.
    architecture: String,
    /// `SCMP_ARCH_X86`, `SCMP_ARCH_X32`.
    sub_architectures: Option<Vec<String>>,
}

/// One entry of `syscalls`: these calls get this action, when the conditions hold.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Option<Vec<String>>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold.
    args: Option<Vec<Arg>>,
    /// The rule counts only if all of these hold...
    includes: Option<When>,
    /// ...and none of these.
    excludes: Option<When>,
}

/// A condition on the container rather than on the call.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct When {
    /// Capabilities in the container's bounding set (`CAP_SYS_ADMIN`).
    caps: Option<Vec<String>>,
    /// Architectures, in libseccomp's words (`amd64`, `arm64`).
    arches: Option<Vec<String>>,
    /// A kernel version, `4.8`.
    min_kernel: Option<String>,
}

/// A condition on one argument: `args[index] OP value`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}
// ANCHOR_END: profile

/// This machine's architecture in libseccomp's words, as profiles name it.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

// ANCHOR: arch
/// One system-call language a filter section answers for: its name in profiles, the word the
/// kernel puts in `seccomp_data.arch` for its calls, and its numbers.
#[derive(Debug, Clone, Copy)]
pub struct Arch {
    /// libseccomp's name, as profiles write it: `SCMP_ARCH_X86`.
    pub name: &'static str,
    /// `AUDIT_ARCH_*` (`include/uapi/linux/audit.h`): what the filter compares.
    pub audit: u32,
    /// Its arguments are 32 bits wide: conditions compare the low half only, as libseccomp's.
    pub narrow: bool,
    /// Its number for a system call's name; `None` where it has no such call.
    number: fn(&str) -> Option<i64>,
}

/// The numbers of the architecture the engine was built for.
fn native_number(name: &str) -> Option<i64> {
    name.parse::<syscalls::Sysno>()
        .ok()
        .map(|sysno| i64::from(sysno.id()))
}

/// The i386 numbers: 32-bit x86 programs, and `int $0x80` from a 64-bit one.
#[cfg(target_arch = "x86_64")]
fn x86_number(name: &str) -> Option<i64> {
    name.parse::<syscalls::x86::Sysno>()
        .ok()
        .map(|sysno| i64::from(sysno.id()))
}

/// The 32-bit arm numbers, which aarch64 kernels also run.
#[cfg(target_arch = "aarch64")]
fn arm_number(name: &str) -> Option<i64> {
    name.parse::<syscalls::arm::Sysno>()
        .ok()
        .map(|sysno| i64::from(sysno.id()))
}

/// The machine's own architecture.
fn native() -> Result<Arch, String> {
    let (name, audit) = match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", 0xc000_003e),
        "aarch64" => ("SCMP_ARCH_AARCH64", 0xc000_00b7),
        "riscv64" => ("SCMP_ARCH_RISCV64", 0xc000_00f3),
        other => return Err(format!("seccomp filters are not supported on {other}")),
    };
    Ok(Arch {
        name,
        audit,
        narrow: false,
        number: native_number,
    })
}

/// The architecture a profile names, if this machine runs its programs and skiff knows its
/// numbers.
fn known(name: &str) -> Result<Option<Arch>, String> {
    let native = native()?;
    if name == native.name {
        return Ok(Some(native));
    }
    #[cfg(target_arch = "x86_64")]
    if name == "SCMP_ARCH_X86" {
        return Ok(Some(Arch {
            name: "SCMP_ARCH_X86",
            audit: 0x4000_0003, // EM_386 | __AUDIT_ARCH_LE
            narrow: true,
            number: x86_number,
        }));
    }
    #[cfg(target_arch = "aarch64")]
    if name == "SCMP_ARCH_ARM" {
        return Ok(Some(Arch {
            name: "SCMP_ARCH_ARM",
            audit: 0x4000_0028, // EM_ARM | __AUDIT_ARCH_LE
            narrow: true,
            number: arm_number,
        }));
    }
    Ok(None)
}

/// The architectures a profile's filter answers for on this machine, the native one first:
/// its `archMap` entry (Docker's way), else its `architectures`, else the native one alone.
/// Names this machine does not run, or whose table skiff lacks (x32), are left out.
fn arches(profile: &Profile) -> Result<Vec<Arch>, String> {
    let native = native()?;
    let mapped = profile
        .arch_map
        .iter()
        .flatten()
        .find(|entry| entry.architecture == native.name)
        .map(|entry| entry.sub_architectures.clone().unwrap_or_default());
    let listed = mapped.or_else(|| profile.architectures.clone());
    let mut arches = vec![native];
    for name in listed.iter().flatten() {
        if let Some(arch) = known(name)?
            && !arches.iter().any(|a| a.name == arch.name)
        {
            arches.push(arch);
        }
    }
    Ok(arches)
}
// ANCHOR_END: arch

/// The running kernel's version, major and minor (`/proc/sys/kernel/osrelease`).
fn kernel_version() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|release| parse_version(&release))
        .unwrap_or((0, 0))
}

/// `6.1.0-18-amd64` is (6, 1).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// What a profile's action words mean.
fn action(word: &str, errno: Option<u32>) -> Result<SeccompAction, String> {
    let errno = errno.unwrap_or(libc::EPERM.unsigned_abs());
    Ok(match word {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno),
        other => {
            return Err(format!(
                "unknown action {other:?}: use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG or SCMP_ACT_TRACE"
            ));
        }
    })
}

/// An argument condition in seccompiler's terms. Arguments are compared as 64-bit values on
/// 64-bit architectures and as 32-bit ones on the others, as libseccomp (and so Docker) does.
fn condition(arg: &Arg, width: SeccompCmpArgLen) -> Result<SeccompCondition, String> {
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, arg.value),
        "SCMP_CMP_NE" => (SeccompCmpOp::Ne, arg.value),
        "SCMP_CMP_LT" => (SeccompCmpOp::Lt, arg.value),
        "SCMP_CMP_LE" => (SeccompCmpOp::Le, arg.value),
        "SCMP_CMP_GT" => (SeccompCmpOp::Gt, arg.value),
        "SCMP_CMP_GE" => (SeccompCmpOp::Ge, arg.value),
        // `(arg & value) == valueTwo`: clone's namespace flags all clear.
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
        other => {
            return Err(format!(
                "unknown comparison {other:?}: use SCMP_CMP_EQ, NE, LT, LE, GT, GE or MASKED_EQ"
            ));
        }
    };
    SeccompCondition::new(arg.index, width, op, value)
        .map_err(|e| format!("argument {}: {e}", arg.index))
}

/// Whether a rule applies to a container with these capabilities, on this machine.
fn applies(rule: &Rule, caps: &BTreeSet<u32>, kernel: (u32, u32)) -> Result<bool, String> {
    let has_cap = |name: &String| -> Result<bool, String> {
        let number = capability_number(name).map_err(|e| e.to_string())?;
        Ok(caps.contains(&number))
    };
    let at_least = |version: &String| -> Result<bool, String> {
        let wanted = parse_version(version)
            .ok_or_else(|| format!("minKernel {version:?} is not a version such as 4.8"))?;
        Ok(kernel >= wanted)
    };
    let arch = native_arch();
    if let Some(when) = &rule.includes {
        for cap in when.caps.iter().flatten() {
            if !has_cap(cap)? {
                return Ok(false);
            }
        }
        if let Some(arches) = &when.arches
            && !arches.iter().any(|a| a == arch)
        {
            return Ok(false);
        }
        if let Some(version) = &when.min_kernel
            && !at_least(version)?
        {
            return Ok(false);
        }
    }
    if let Some(when) = &rule.excludes {
        for cap in when.caps.iter().flatten() {
            if has_cap(cap)? {
                return Ok(false);
            }
        }
        if when.arches.iter().flatten().any(|a| a == arch) {
            return Ok(false);
        }
        if let Some(version) = &when.min_kernel
            && at_least(version)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The rules of one action: each call's alternatives (an empty list: the call always matches).
type Rules = BTreeMap<i64, Vec<SeccompRule>>;

// ANCHOR: compile
/// Compiles a profile in Docker's format to a BPF program for a container whose bounding set
/// is `caps`: one section per architecture the profile pairs with this machine's. An error is a
/// sentence about what is wrong with the profile.
pub fn compile(json: &str, caps: &BTreeSet<u32>) -> Result<BpfProgram, String> {
    let profile: Profile = serde_json::from_str(json).map_err(|e| format!("not valid: {e}"))?;
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let kernel = kernel_version();
    // The rules that count for this container. Their conditions on capabilities, kernel and
    // architecture are about the machine, so they are decided once for every section.
    let mut chosen = Vec::new();
    for rule in profile.syscalls.iter().flatten() {
        let act = action(&rule.action, rule.errno_ret)?;
        for arg in rule.args.iter().flatten() {
            condition(arg, SeccompCmpArgLen::Qword)?;
        }
        // A rule that does what the default does changes nothing (libseccomp refuses it).
        if applies(rule, caps, kernel)? && act != default {
            chosen.push((act, rule));
        }
    }
    let arches = arches(&profile)?;
    let mut program = BpfProgram::new();
    for (index, arch) in arches.iter().enumerate() {
        let mut section = tree(&groups(&chosen, arch)?, &default, arch)?;
        if index + 1 < arches.len() {
            pass_on_other_arches(&mut section)?;
        }
        program.append(&mut section);
    }
    if program.len() > MAX_INSTRUCTIONS {
        return Err(format!(
            "it compiles to {} BPF instructions, more than the kernel's {MAX_INSTRUCTIONS}",
            program.len()
        ));
    }
    Ok(program)
}
// ANCHOR_END: compile

/// The chosen rules in one architecture's numbers, one group per action, in the order the
/// profile first uses each action.
fn groups(
    chosen: &[(SeccompAction, &Rule)],
    arch: &Arch,
) -> Result<Vec<(SeccompAction, Rules)>, String> {
    let width = || {
        if arch.narrow {
            SeccompCmpArgLen::Dword
        } else {
            SeccompCmpArgLen::Qword
        }
    };
    let mut groups: Vec<(SeccompAction, Rules)> = Vec::new();
    for (act, rule) in chosen {
        let conditions = rule
            .args
            .iter()
            .flatten()
            .map(|arg| condition(arg, width()))
            .collect::<Result<Vec<_>, _>>()?;
        let names = rule.names.iter().flatten().chain(rule.name.iter());
        // Calls this architecture does not have (`chown32` on x86_64) are left out, as runc
        // leaves them out.
        let numbers: Vec<i64> = names.filter_map(|name| (arch.number)(name)).collect();
        let index = match groups.iter().position(|(a, _)| a == act) {
            Some(index) => index,
            None => {
                groups.push((act.clone(), Rules::new()));
                groups.len() - 1
            }
        };
        let rules = &mut groups[index].1;
        for number in numbers {
            match rules.get_mut(&number) {
                // Already matched whatever its arguments: a condition cannot add to that.
                Some(alternatives) if alternatives.is_empty() => {}
                Some(alternatives) if conditions.is_empty() => alternatives.clear(),
                Some(alternatives) => alternatives.push(rule_of(&conditions)?),
                None if conditions.is_empty() => {
                    rules.insert(number, Vec::new());
                }
                None => {
                    rules.insert(number, vec![rule_of(&conditions)?]);
                }
            }
        }
    }
    Ok(groups)
}

fn rule_of(conditions: &[SeccompCondition]) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions.to_vec()).map_err(|e| e.to_string())
}

/// The machine's architecture for seccompiler.
fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        format!(
            "seccomp filters are not supported on {}",
            std::env::consts::ARCH
        )
    })
}

// ANCHOR: tree
/// What a run of call numbers gets: an answer, or a block of its own that looks at the
/// arguments (an index into the section's blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answer(u32),
    Block(usize),
}

/// One architecture's section as a search tree over the call's number. The numbers are cut
/// into runs that get the same answer (most calls are allowed, in long runs of neighbouring
/// numbers; the gaps get the default), and each comparison halves the runs left: a call meets
/// about a dozen instructions, not every rule listed before its own. That matters twice: for
/// every call the container makes, and once when the filter is installed, since the kernel
/// runs it for every call number to cache the ones it always allows (seccomp(2),
/// `seccomp_cache_prepare` in kernel/seccomp.c). One filter per action, chained, was 3,478
/// instructions for Docker's profile, and installing it the slowest step of a container's
/// start. A number whose rules look at its arguments leads to a block: seccompiler's code for
/// that one call and each action in the profile's order, then the default.
fn tree(
    groups: &[(SeccompAction, Rules)],
    default: &SeccompAction,
    section: &Arch,
) -> Result<BpfProgram, String> {
    let default_code = u32::from(default.clone());
    // A "no match" answer that no real action of this profile uses, for `conditional`.
    let used: Vec<u32> = groups.iter().map(|(a, _)| u32::from(a.clone())).collect();
    let next = (0..=0xffff)
        .map(SeccompAction::Trace)
        .find(|a| !used.contains(&u32::from(a.clone())) && a != default)
        .ok_or("the profile uses every SCMP_ACT_TRACE value")?;
    let numbers: BTreeSet<i64> = groups
        .iter()
        .flat_map(|(_, rules)| rules.keys().copied())
        .collect();
    // Every number's outcome, and the start of the default again after it.
    let mut points: Vec<(u32, Outcome)> = vec![(0, Outcome::Answer(default_code))];
    let mut blocks: Vec<BpfProgram> = Vec::new();
    for number in numbers {
        let nr = u32::try_from(number).map_err(|_| format!("bad call number {number}"))?;
        let mut block = BpfProgram::new();
        let mut answer = None;
        for (act, rules) in groups {
            match rules.get(&number) {
                None => {}
                Some(alternatives) if alternatives.is_empty() => {
                    answer = Some(u32::from(act.clone()));
                    break;
                }
                Some(alternatives) => {
                    block.append(&mut conditional(number, alternatives, act, &next, section)?);
                }
            }
        }
        let answer = answer.unwrap_or(default_code);
        let outcome = if block.is_empty() {
            Outcome::Answer(answer)
        } else {
            block.push(statement(RET, answer));
            blocks.push(block);
            Outcome::Block(blocks.len() - 1)
        };
        points.push((nr, outcome));
        if let Some(next) = nr.checked_add(1) {
            points.push((next, Outcome::Answer(default_code)));
        }
    }
    // Runs: each point starts one, until the next; a later point at the same number wins, and
    // neighbours with the same answer merge.
    let mut runs: Vec<(u32, Outcome)> = Vec::new();
    for (start, outcome) in points {
        if runs.last().is_some_and(|(s, _)| *s == start) {
            runs.pop();
        }
        if runs.last().is_none_or(|(_, o)| *o != outcome) {
            runs.push((start, outcome));
        }
    }
    // The section: the architecture, the number, the tree, the blocks.
    let mut code = vec![
        statement(LD_ARCH.0, LD_ARCH.1),
        jump(JEQ, section.audit, 1, 0),
        statement(RET, SECCOMP_RET_KILL_PROCESS),
        statement(LD_NR.0, LD_NR.1),
    ];
    let mut to_blocks = Vec::new();
    search(&runs, &mut code, &mut to_blocks)?;
    let mut starts = Vec::new();
    for mut block in blocks {
        starts.push(code.len());
        code.append(&mut block);
    }
    for (at, index) in to_blocks {
        code[at].k = u32::try_from(starts[index] - at - 1).map_err(|e| e.to_string())?;
    }
    Ok(code)
}

/// The search over `runs` (sorted by start, the first from 0): one run answers or jumps to its
/// block; more compare the number with the middle run's start, `>=` goes right. Only forward
/// jumps, and the long ones as `ja`, whose offset is 32 bits (a conditional jump's is 8).
fn search(
    runs: &[(u32, Outcome)],
    code: &mut BpfProgram,
    to_blocks: &mut Vec<(usize, usize)>,
) -> Result<(), String> {
    match runs {
        [] => Err("an empty run of call numbers".into()),
        [(_, Outcome::Answer(answer))] => {
            code.push(statement(RET, *answer));
            Ok(())
        }
        [(_, Outcome::Block(index))] => {
            to_blocks.push((code.len(), *index));
            code.push(statement(JA, 0));
            Ok(())
        }
        _ => {
            let middle = runs.len() / 2;
            let at = code.len();
            // True: the next instruction, the jump to the right half; false: past it.
            code.push(jump(JGE, runs[middle].0, 0, 1));
            code.push(statement(JA, 0));
            search(&runs[..middle], code, to_blocks)?;
            code[at + 1].k = u32::try_from(code.len() - at - 2).map_err(|e| e.to_string())?;
            search(&runs[middle..], code, to_blocks)
        }
    }
}

/// seccompiler's code for call `number` with `alternatives` (rules on its arguments) answering
/// `act`: where no rule matches (seccompiler's answer `next`, which no real action uses), it
/// falls through to what follows instead of answering.
fn conditional(
    number: i64,
    alternatives: &[SeccompRule],
    act: &SeccompAction,
    next: &SeccompAction,
    section: &Arch,
) -> Result<BpfProgram, String> {
    let next_code = u32::from(next.clone());
    let rules: Rules = [(number, alternatives.to_vec())].into_iter().collect();
    let filter = SeccompFilter::new(rules, next.clone(), act.clone(), target_arch()?)
        .map_err(|e| e.to_string())?;
    let mut part: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let len = part.len();
    let native = native()?.audit;
    for at in 0..len {
        if part[at].code == RET && part[at].k == next_code {
            part[at].code = JA;
            part[at].k = u32::try_from(len - at - 1).map_err(|e| e.to_string())?;
        }
        // Its own architecture check is seccompiler's, for the native one: the section's.
        if at > 0
            && (part[at - 1].code, part[at - 1].k) == LD_ARCH
            && part[at].code == JEQ
            && part[at].k == native
        {
            part[at].k = section.audit;
        }
    }
    Ok(part)
}

fn statement(code: u16, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}
// ANCHOR_END: tree

/// `BPF_RET | BPF_K`: answer.
const RET: u16 = 0x06;
/// `BPF_JMP | BPF_JA`: jump.
const JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`: compare with a constant.
const JEQ: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`: compare with a constant, unsigned.
const JGE: u16 = 0x35;
/// `BPF_LD | BPF_W | BPF_ABS` of `seccomp_data.arch` (offset 4).
const LD_ARCH: (u16, u32) = (0x20, 4);
/// `BPF_LD | BPF_W | BPF_ABS` of `seccomp_data.nr` (offset 0).
const LD_NR: (u16, u32) = (0x20, 0);
/// `SECCOMP_RET_KILL_PROCESS`: what a call of an architecture no section names gets.
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

// ANCHOR: pass_on
/// Makes a section that is not the last let other architectures' calls through to the next
/// section: its first instructions load the architecture, compare it, and kill on a mismatch
/// (seccompiler's check); the kill becomes a jump past the section's end.
fn pass_on_other_arches(section: &mut BpfProgram) -> Result<(), String> {
    let len = section.len();
    match section.get_mut(..3) {
        Some([load, compare, kill])
            if (load.code, load.k) == LD_ARCH && compare.code == JEQ && kill.code == RET =>
        {
            kill.code = JA;
            kill.k = u32::try_from(len - 3).map_err(|e| e.to_string())?;
            Ok(())
        }
        _ => Err("seccompiler's program does not start with its architecture check".into()),
    }
}
// ANCHOR_END: pass_on

// ANCHOR: install
/// The child's step that installs a compiled filter: one seccomp(2) call on a program made
/// before the clone.
pub struct InstallFilter {
    program: BpfProgram,
    /// The length, as the kernel's `sock_fprog` wants it (checked when compiled).
    len: u16,
}

impl InstallFilter {
    /// The step for `program`, which [`compile`] made (at most 4096 instructions).
    pub fn new(program: BpfProgram) -> Self {
        let len = u16::try_from(program.len()).unwrap_or(u16::MAX);
        InstallFilter { program, len }
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (never, for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }
}

impl chroot::ChildStep for InstallFilter {
    fn run(&self) -> Result<(), Errno> {
        let fprog = libc::sock_fprog {
            len: self.len,
            // seccompiler's `sock_filter` has the kernel's layout, as libc's has.
            filter: self.program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `fprog` points at `len` instructions of `program`, which lives as long as the
        // step; the kernel copies the program and keeps no pointer into it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &fprog as *const libc::sock_fprog,
            )
        };
        Errno::result(rc).map(drop)
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        match errno {
            Errno::EACCES => Some("installing a filter needs CAP_SYS_ADMIN or no_new_privs"),
            Errno::EINVAL => Some(
                "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER): run with --security-opt seccomp=unconfined",
            ),
            _ => None,
        }
    }
}
// ANCHOR_END: install

impl fmt::Debug for InstallFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstallFilter({} instructions)", self.program.len())
    }
}

impl fmt::Display for InstallFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("install the seccomp filter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::capability_set;

    fn docker_caps() -> BTreeSet<u32> {
        capability_set(&[], &[]).unwrap()
    }

    fn same(a: &BpfProgram, b: &BpfProgram) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
    }

    #[test]
    fn the_default_profile_is_kept_compiled_and_what_is_kept_must_match() {
        let store = tempfile::tempdir().unwrap();
        let caps = docker_caps();
        let fresh = compile(DOCKER_DEFAULT, &caps).unwrap();
        let first = cached_default(store.path(), &caps).unwrap();
        assert!(same(&first, &fresh));
        let kept: Vec<_> = std::fs::read_dir(store.path().join(CACHE))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let [file] = kept.as_slice() else {
            panic!("one kept program: {kept:?}")
        };
        let bytes = std::fs::read(file).unwrap();
        let header = cache_header().unwrap();
        assert!(
            bytes.starts_with(header.as_bytes()),
            "names what compiled it"
        );
        assert_eq!(bytes.len(), header.len() + 8 * fresh.len());
        // Read back: the same program. Kept by another binary, or cut short: compiled again.
        assert!(same(&cached_default(store.path(), &caps).unwrap(), &fresh));
        let other = header.replace("skiff seccomp 1 ", "skiff seccomp 1 9");
        let mut forged = other.into_bytes();
        forged.extend_from_slice(&[0; 8]);
        std::fs::write(file, &forged).unwrap();
        assert!(same(&cached_default(store.path(), &caps).unwrap(), &fresh));
        assert_eq!(std::fs::read(file).unwrap(), bytes, "replaced");
        std::fs::write(file, &bytes[..bytes.len() - 3]).unwrap();
        assert!(same(&cached_default(store.path(), &caps).unwrap(), &fresh));
        // Other capabilities, another file and another program.
        let mut admin = caps.clone();
        admin.insert(21); // CAP_SYS_ADMIN
        let with_admin = cached_default(store.path(), &admin).unwrap();
        assert!(same(&with_admin, &compile(DOCKER_DEFAULT, &admin).unwrap()));
        assert!(!same(&with_admin, &fresh));
        assert_eq!(
            std::fs::read_dir(store.path().join(CACHE)).unwrap().count(),
            2
        );
    }

    #[test]
    fn each_binary_keeps_its_own_program_and_a_store_keeps_the_newest() {
        let store = tempfile::tempdir().unwrap();
        let cache = store.path().join(CACHE);
        let caps = docker_caps();
        cached_default(store.path(), &caps).unwrap();
        let kept: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let [ours] = kept.as_slice() else {
            panic!("one kept program: {kept:?}")
        };
        let ours = ours.clone();
        let bytes = std::fs::read(&ours).unwrap();
        // Another build of skiff, sharing the store, keeps its program beside ours: neither
        // replaces the other's.
        let theirs = cache.join(format!("{PREFIX}00000000a80425fb-0123456789abcdef.bpf"));
        std::fs::write(&theirs, b"skiff seccomp 1 9:9 other binary\n").unwrap();
        std::fs::remove_file(&ours).unwrap();
        cached_default(store.path(), &caps).unwrap();
        assert_eq!(std::fs::read(&ours).unwrap(), bytes, "ours again");
        assert!(theirs.exists(), "another binary's program is left alone");
        // Past KEPT programs (rebuilds), the oldest go when one is written.
        for n in 0..KEPT {
            let old = cache.join(format!("{PREFIX}00000000a80425fb-{n:016x}.bpf"));
            std::fs::write(&old, b"old").unwrap();
            let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(n as u64);
            std::fs::File::options()
                .write(true)
                .open(&old)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        std::fs::remove_file(&ours).unwrap();
        cached_default(store.path(), &caps).unwrap();
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left.len(), KEPT);
        assert!(left.contains(&ours), "the program just written stays");
        assert!(left.contains(&theirs), "newer than the rebuilds' programs");
        assert!(
            !cache
                .join(format!("{PREFIX}00000000a80425fb-{:016x}.bpf", 0))
                .exists()
        );
    }

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;

    /// Runs `program` on one x86_64 system call, as the kernel would.
    /// The filter as skiff built it before [`tree`]: one seccompiler filter per action,
    /// chained, each section linear. Kept as the reference the tree must agree with.
    /// One program from one seccompiler filter per action: each filter's "no match" becomes a jump
    /// to the start of the next filter, and the last program answers `default`.
    fn chain(
        groups: Vec<(SeccompAction, Rules)>,
        default: SeccompAction,
        section: &Arch,
    ) -> Result<BpfProgram, String> {
        let arch = target_arch()?;
        // A "no match" answer that no real action of this profile uses.
        let used: Vec<u32> = groups.iter().map(|(a, _)| u32::from(a.clone())).collect();
        let next = (0..=0xffff)
            .map(SeccompAction::Trace)
            .find(|a| !used.contains(&u32::from(a.clone())) && *a != default)
            .ok_or("the profile uses every SCMP_ACT_TRACE value")?;
        let next_code = u32::from(next.clone());
        let mut program = BpfProgram::new();
        for (act, rules) in groups {
            let filter =
                SeccompFilter::new(rules, next.clone(), act, arch).map_err(|e| e.to_string())?;
            let mut part: BpfProgram = filter
                .try_into()
                .map_err(|e: seccompiler::BackendError| e.to_string())?;
            let len = part.len();
            for (at, instruction) in part.iter_mut().enumerate() {
                if instruction.code == RET && instruction.k == next_code {
                    instruction.code = JA;
                    instruction.k = u32::try_from(len - at - 1).map_err(|e| e.to_string())?;
                }
            }
            program.append(&mut part);
        }
        // No rule at all, with the default answer: checks the architecture, then answers.
        let last =
            SeccompFilter::new(Rules::new(), default, next, arch).map_err(|e| e.to_string())?;
        let mut last: BpfProgram = last
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        program.append(&mut last);
        // seccompiler knows only the native architecture: each filter starts by checking that
        // word, which becomes the section's own.
        let native = native()?.audit;
        for at in 1..program.len() {
            if program[at - 1].code == LD_ARCH.0
                && program[at - 1].k == LD_ARCH.1
                && program[at].code == JEQ
                && program[at].k == native
            {
                program[at].k = section.audit;
            }
        }
        Ok(program)
    }

    /// [`compile`] with the chained sections instead of the tree.
    fn chained(json: &str, caps: &BTreeSet<u32>) -> BpfProgram {
        let profile: Profile = serde_json::from_str(json).unwrap();
        let default = action(&profile.default_action, profile.default_errno_ret).unwrap();
        let kernel = kernel_version();
        let mut chosen = Vec::new();
        for rule in profile.syscalls.iter().flatten() {
            let act = action(&rule.action, rule.errno_ret).unwrap();
            if applies(rule, caps, kernel).unwrap() && act != default {
                chosen.push((act, rule));
            }
        }
        let arches = arches(&profile).unwrap();
        let mut program = BpfProgram::new();
        for (index, arch) in arches.iter().enumerate() {
            let mut section = chain(groups(&chosen, arch).unwrap(), default.clone(), arch).unwrap();
            if index + 1 < arches.len() {
                pass_on_other_arches(&mut section).unwrap();
            }
            program.append(&mut section);
        }
        program
    }

    /// The search tree answers every call as the chained filters did: every number of both
    /// architectures (and x32's and out-of-range ones), with arguments that the profile's
    /// conditions look at (clone's namespace flags, personality's values, socket's AF_VSOCK).
    #[test]
    fn the_tree_answers_as_the_chained_filters_did() {
        for caps in [docker_caps(), BTreeSet::new()] {
            let tree = compile(DOCKER_DEFAULT, &caps).unwrap();
            let chained = chained(DOCKER_DEFAULT, &caps);
            assert!(
                tree.len() * 3 < chained.len(),
                "{} vs {}",
                tree.len(),
                chained.len()
            );
            let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
            let args: [[u64; 6]; 6] = [
                [0; 6],
                [flags, 0, 0, 0, 0, 0],
                [0x0008, 0, 0, 0, 0, 0],
                [0xffff_ffff, 0, 0, 0, 0, 0],
                [40, 1, 0, 0, 0, 0],
                [u64::MAX, u64::MAX, 7, 0, 0, 0],
            ];
            let numbers = (0..600).chain([
                0x4000_0000,
                0x4000_0001,
                0x4000_0101,
                0x7fff_ffff,
                0xffff_fffe,
            ]);
            for nr in numbers {
                for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0x1234] {
                    for a in args {
                        assert_eq!(
                            verdict_of(&tree, arch, nr, a),
                            verdict_of(&chained, arch, nr, a),
                            "call {nr} of arch {arch:#x} with {a:?}"
                        );
                    }
                }
            }
        }
    }

    fn verdict(program: &BpfProgram, nr: i64, args: [u64; 6]) -> u32 {
        verdict_of(program, AUDIT_ARCH_X86_64, nr, args)
    }

    /// Runs `program` on one system call of the architecture `arch`: a tiny classic-BPF
    /// interpreter for the instructions seccompiler emits.
    fn verdict_of(program: &BpfProgram, arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&u32::try_from(nr).unwrap().to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_ne_bytes());
        }
        let word = |at: usize| u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &program[pc];
            pc += 1;
            match i.code {
                0x20 => a = word(i.k as usize),
                0x54 => a &= i.k,
                0x05 => pc += i.k as usize,
                0x15 | 0x25 | 0x35 => {
                    let taken = match i.code {
                        0x15 => a == i.k,
                        0x25 => a > i.k,
                        _ => a >= i.k,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                0x06 => return i.k,
                code => panic!("instruction {code:#x} not interpreted"),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const ENOSYS: u32 = 0x0005_0026;
    const KILL_PROCESS: u32 = 0x8000_0000;

    #[test]
    fn dockers_profile_allows_the_ordinary_and_refuses_the_rest() {
        let program = compile(DOCKER_DEFAULT, &docker_caps()).unwrap();
        eprintln!("Docker's profile: {} instructions", program.len());
        assert!(program.len() < MAX_INSTRUCTIONS);
        let run = |nr, args| verdict(&program, nr, args);
        assert_eq!(run(libc::SYS_read, [0; 6]), ALLOW);
        assert_eq!(run(libc::SYS_execve, [0; 6]), ALLOW);
        assert_eq!(run(libc::SYS_keyctl, [0; 6]), EPERM);
        assert_eq!(run(libc::SYS_add_key, [0; 6]), EPERM);
        assert_eq!(run(libc::SYS_unshare, [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(libc::SYS_mount, [0; 6]), EPERM);
        // clone: a plain fork is fine, a new user namespace is not.
        assert_eq!(run(libc::SYS_clone, [0x0120_0011, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(libc::SYS_clone, [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
        // clone3 says "not here" so that the C library falls back to clone.
        assert_eq!(run(libc::SYS_clone3, [0; 6]), ENOSYS);
        // personality: only the values programs use.
        assert_eq!(run(libc::SYS_personality, [0; 6]), ALLOW);
        assert_eq!(
            run(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]),
            EPERM
        );
        // socket: anything but AF_VSOCK.
        assert_eq!(run(libc::SYS_socket, [2, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(libc::SYS_socket, [40, 0, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    fn capabilities_open_their_system_calls() {
        let admin = capability_set(&["SYS_ADMIN".into()], &[]).unwrap();
        let program = compile(DOCKER_DEFAULT, &admin).unwrap();
        assert_eq!(verdict(&program, libc::SYS_mount, [0; 6]), ALLOW);
        assert_eq!(verdict(&program, libc::SYS_unshare, [0; 6]), ALLOW);
        assert_eq!(verdict(&program, libc::SYS_clone3, [0; 6]), ALLOW);
        let without_chroot = capability_set(&[], &["SYS_CHROOT".into()]).unwrap();
        let program = compile(DOCKER_DEFAULT, &without_chroot).unwrap();
        assert_eq!(verdict(&program, libc::SYS_chroot, [0; 6]), EPERM);
        let program = compile(DOCKER_DEFAULT, &docker_caps()).unwrap();
        assert_eq!(verdict(&program, libc::SYS_chroot, [0; 6]), ALLOW);
        // Every capability opens the most rules: still within the kernel's limit, for every
        // architecture.
        let all = capability_set(&["ALL".into()], &[]).unwrap();
        assert!(compile(DOCKER_DEFAULT, &all).unwrap().len() <= MAX_INSTRUCTIONS);
    }

    #[test]
    fn options_are_dockers() {
        let parse = |opts: &[&str]| {
            SecurityOpts::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(parse(&[]).unwrap(), SecurityOpts::default());
        let opts = parse(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(opts.seccomp, Seccomp::Unconfined);
        assert!(opts.no_new_privileges);
        assert!(
            !parse(&["no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert!(
            parse(&["no-new-privileges:true"])
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            parse(&["seccomp=/etc/p.json"]).unwrap().seccomp,
            Seccomp::File("/etc/p.json".into())
        );
        assert!(matches!(
            parse(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
                .unwrap()
                .seccomp,
            Seccomp::Inline(_)
        ));
        for bad in [
            "seccomp",
            "no-new-privileges=maybe",
            "selinux=on",
            "apparmor=x",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let caps = docker_caps();
        let err = compile("{", &caps).unwrap_err();
        assert!(err.contains("not valid"), "{err}");
        let err = compile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, &caps).unwrap_err();
        assert!(err.contains("SCMP_ACT_NOPE"), "{err}");
        let bad_op = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],
            "action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_SOMETIMES"}]}]}"#;
        let err = compile(bad_op, &caps).unwrap_err();
        assert!(err.contains("SCMP_CMP_SOMETIMES"), "{err}");
        let bad_index = bad_op
            .replace("\"index\":0", "\"index\":9")
            .replace("SOMETIMES", "EQ");
        assert!(compile(&bad_index, &caps).is_err());
    }

    #[test]
    fn a_deny_list_profile_allows_by_default() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","chown32"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
        let program = compile(json, &docker_caps()).unwrap();
        assert_eq!(verdict(&program, libc::SYS_mkdir, [0; 6]), 0x0005_000d);
        assert_eq!(verdict(&program, libc::SYS_read, [0; 6]), ALLOW);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn i386_calls_get_the_same_rules_with_their_own_numbers() {
        let program = compile(DOCKER_DEFAULT, &docker_caps()).unwrap();
        let i386 = |nr, args| verdict_of(&program, AUDIT_ARCH_I386, nr, args);
        // getpid is 20 on i386 (39 on x86_64); chown32 exists only there.
        assert_eq!(i386(20, [0; 6]), ALLOW);
        assert_eq!(i386(212, [0; 6]), ALLOW);
        // kexec_load (283), add_key (286), unshare (310) of a user namespace: refused.
        assert_eq!(i386(283, [0; 6]), EPERM);
        assert_eq!(i386(286, [0; 6]), EPERM);
        assert_eq!(i386(310, [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
        // Arguments are 32-bit there: personality(0xffffffff) is the query programs make.
        assert_eq!(i386(136, [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(i386(136, [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
        // x86_64's numbers are judged by x86_64's rules still: 39 is getpid there...
        assert_eq!(verdict(&program, 39, [0; 6]), ALLOW);
        // ...and an architecture no section names is killed.
        assert_eq!(verdict_of(&program, 0xc000_00b7, 39, [0; 6]), KILL_PROCESS);
    }

    #[test]
    fn a_profile_without_an_arch_map_answers_for_the_native_architecture_only() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let program = compile(json, &docker_caps()).unwrap();
        assert_eq!(verdict(&program, libc::SYS_getpid, [0; 6]), ALLOW);
        assert_eq!(
            verdict_of(&program, AUDIT_ARCH_I386, 20, [0; 6]),
            KILL_PROCESS
        );
        // An old profile's `architectures` list works as Docker's archMap does.
        let listed = json.replace(
            r#""syscalls""#,
            r#""architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls""#,
        );
        let program = compile(&listed, &docker_caps()).unwrap();
        let i386 = if cfg!(target_arch = "x86_64") {
            ALLOW
        } else {
            KILL_PROCESS
        };
        assert_eq!(verdict_of(&program, AUDIT_ARCH_I386, 20, [0; 6]), i386);
    }

    /// The kernel's own judgement: the labs' probe, run under Docker's profile, makes i386
    /// system calls with `int $0x80`, which the kernel takes as a 32-bit program's
    /// (`AUDIT_ARCH_I386`) even from a 64-bit process (`probe i386`).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_kernel_lets_i386_calls_through_the_filter() {
        use std::os::unix::process::CommandExt;
        let probe = || {
            let mut command = std::process::Command::new(labs::fixtures::probe_path());
            command.arg("i386");
            command
        };
        let unfiltered = probe().output().unwrap();
        if !unfiltered.status.success() {
            eprintln!("skipped: this kernel runs no i386 system calls (CONFIG_IA32_EMULATION)");
            return;
        }
        let filter = InstallFilter::new(compile(DOCKER_DEFAULT, &docker_caps()).unwrap());
        let mut filtered = probe();
        // SAFETY: between fork and exec the child makes two system calls, prctl and seccomp, on
        // the filter compiled before the fork.
        unsafe {
            filtered.pre_exec(move || {
                use chroot::ChildStep;
                nix::sys::prctl::set_no_new_privs()?;
                filter.run()?;
                Ok(())
            });
        }
        let out = filtered.output().unwrap();
        // A filter of x86_64 alone kills the probe at its first i386 call (SIGSYS, no output).
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "i386 getpid: ok\ni386 unshare(CLONE_NEWUSER): Operation not permitted (os error 1)\n",
            "{:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
    }
}
