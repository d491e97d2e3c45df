//! The devices cgroup: which device nodes a container may open, whatever nodes it has.
//!
//! Root in a container keeps `CAP_MKNOD` (Docker's default set), so it can make a node with any
//! major and minor number: `mknod disk b 253 0` is the host's whole disk. `nodev` mounts are one
//! wall (a node on them does not open); the devices cgroup is the other, and it holds wherever
//! the node is: the kernel asks it on every open(2) and mknod(2) of a device. Docker denies
//! everything, then allows a short list ([`docker_default`]): making any node (`m`), and reading
//! and writing the harmless ones (null, zero, full, random, urandom, tty, console, ptmx, the
//! pseudo-terminals, tun). `--device` adds one rule per node; `--device-cgroup-rule 'c 189:* rwm'`
//! adds a rule of the user's own, for nodes the container will make (or that appear in a volume)
//! later; `--privileged` allows all (`a *:* rwm`).
//!
//! - cgroup v1 has a `devices` controller: write `a` to `devices.deny`, then one rule per line
//!   to `devices.allow` (the kernel's `cgroup-v1/devices.rst`).
//! - cgroup v2 has no such files. The kernel instead runs an eBPF program of type
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup: it gets the access (type, major,
//!   minor, read/write/mknod) and returns 1 to allow, 0 to refuse. runc and youki generate
//!   that program from the same rules; so does [`program`], instruction by instruction, and
//!   [`load`] and [`attach`] hand it to the kernel with bpf(2). See bpf(2), `cgroup-v2.rst`
//!   ("Device controller").

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::CgroupError;
use crate::files;

/// The kind of device a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceKind {
    /// Every device, character and block (`a`).
    All,
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
}

/// Read (`r`), write (`w`) and mknod (`m`), as bits.
pub const READ: u8 = 1;
/// Write access.
pub const WRITE: u8 = 2;
/// mknod(2).
pub const MKNOD: u8 = 4;

// ANCHOR: rule
/// One allow rule, as `devices.allow` writes it: `c 1:3 rwm`, `b *:* m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRule {
    /// Character, block, or all.
    pub kind: DeviceKind,
    /// The major number; `None` for any (`*`).
    pub major: Option<u32>,
    /// The minor number; `None` for any (`*`).
    pub minor: Option<u32>,
    /// [`READ`], [`WRITE`] and [`MKNOD`], or'ed.
    pub access: u8,
}

/// Docker's default list (runc's `AllowedDevices`): mknod of anything, and read, write and
/// mknod of the devices every program expects.
pub fn docker_default() -> Vec<DeviceRule> {
    let c = |major, minor| DeviceRule::char(major, minor, READ | WRITE | MKNOD);
    vec![
        DeviceRule::any(DeviceKind::Char, MKNOD),
        DeviceRule::any(DeviceKind::Block, MKNOD),
        c(1, Some(3)),    // /dev/null
        c(1, Some(8)),    // /dev/random
        c(1, Some(7)),    // /dev/full
        c(5, Some(0)),    // /dev/tty
        c(1, Some(5)),    // /dev/zero
        c(1, Some(9)),    // /dev/urandom
        c(5, Some(1)),    // /dev/console
        c(136, None),     // /dev/pts/*
        c(5, Some(2)),    // /dev/ptmx
        c(10, Some(200)), // /dev/net/tun
    ]
}
// ANCHOR_END: rule

// ANCHOR: rules_for
/// The rules of a container: every device with `--privileged`, else Docker's list, one rule
/// per `--device` with its permissions, and the `--device-cgroup-rule`s (`extra`).
pub fn rules_for(
    privileged: bool,
    devices: &[namespaces::devices::DeviceMapping],
    extra: &[DeviceRule],
) -> Vec<DeviceRule> {
    if privileged {
        return vec![DeviceRule::ALL];
    }
    let mut rules = docker_default();
    rules.extend(devices.iter().map(|d| DeviceRule {
        kind: if d.block {
            DeviceKind::Block
        } else {
            DeviceKind::Char
        },
        major: Some(d.major),
        minor: Some(d.minor),
        access: DeviceRule::parse_access(&d.permissions).unwrap_or(READ | WRITE | MKNOD),
    }));
    rules.extend_from_slice(extra);
    rules
}
// ANCHOR_END: rules_for

impl DeviceRule {
    /// Every device (`a *:* rwm`): what `--privileged` allows.
    pub const ALL: DeviceRule = DeviceRule {
        kind: DeviceKind::All,
        major: None,
        minor: None,
        access: READ | WRITE | MKNOD,
    };

    /// Every device of `kind`, with `access`.
    pub fn any(kind: DeviceKind, access: u8) -> DeviceRule {
        DeviceRule {
            kind,
            major: None,
            minor: None,
            access,
        }
    }

    /// The character device `major:minor` (`None`: any minor).
    pub fn char(major: u32, minor: Option<u32>, access: u8) -> DeviceRule {
        DeviceRule {
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            access,
        }
    }

    /// `rwm`, `rw`, `r`...: the access letters of a rule or of `--device`. `None` for anything
    /// else, or for no letter at all.
    pub fn parse_access(text: &str) -> Option<u8> {
        if text.is_empty() {
            return None;
        }
        text.chars().try_fold(0u8, |bits, c| match c {
            'r' => Some(bits | READ),
            'w' => Some(bits | WRITE),
            'm' => Some(bits | MKNOD),
            _ => None,
        })
    }

    // ANCHOR: parse
    /// A rule as `--device-cgroup-rule` gives it, in `devices.allow`'s words and Docker's
    /// strictness (`^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`): `c 1:3 rwm`, `b *:* m`,
    /// `a 7:* r`. `None` for anything else, and for numbers the kernel's 32 bits cannot hold.
    pub fn parse(text: &str) -> Option<DeviceRule> {
        let mut parts = text.split(' ');
        let (kind, numbers, access) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || access.len() > 3 {
            return None;
        }
        let kind = match kind {
            "a" => DeviceKind::All,
            "c" => DeviceKind::Char,
            "b" => DeviceKind::Block,
            _ => return None,
        };
        let number = |text: &str| -> Option<Option<u32>> {
            match text {
                "*" => Some(None),
                digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    digits.parse().ok().map(Some)
                }
                _ => None,
            }
        };
        let (major, minor) = numbers.split_once(':')?;
        Some(DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access: DeviceRule::parse_access(access)?,
        })
    }
    // ANCHOR_END: parse

    /// The rule as `devices.allow` takes it.
    pub fn line(&self) -> String {
        self.to_string()
    }

    /// The lines `devices.allow` needs for this rule. v1 reads `a` as "everything", whatever
    /// numbers and access follow (and only in a cgroup without children), so a rule for every
    /// type but not every device, or not every access, is written once as `c` and once as `b`.
    pub fn v1_lines(&self) -> Vec<String> {
        if self.kind != DeviceKind::All || *self == DeviceRule::ALL {
            return vec![self.line()];
        }
        [DeviceKind::Char, DeviceKind::Block]
            .into_iter()
            .map(|kind| DeviceRule { kind, ..*self }.line())
            .collect()
    }
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let access: String = [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
            .iter()
            .filter(|(bit, _)| self.access & bit != 0)
            .map(|(_, c)| c)
            .collect();
        write!(
            f,
            "{kind} {}:{} {access}",
            number(self.major),
            number(self.minor)
        )
    }
}

// ANCHOR: v1
/// cgroup v1: deny everything in the container's `devices` cgroup `dir`, then allow `rules`.
/// The kernel takes `a` in `devices.deny` only while the cgroup has no children: right after
/// it is made.
pub fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    files::write(&dir.join("devices.deny"), "a")?;
    // One open for all the rules: the kernel parses each write(2) as one rule.
    let lines: Vec<String> = rules.iter().flat_map(DeviceRule::v1_lines).collect();
    files::write_each(&dir.join("devices.allow"), &lines)
}
// ANCHOR_END: v1

/// One eBPF instruction (`struct bpf_insn`): an opcode, two registers, an offset, an immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// The opcode: class, operation and source (`include/uapi/linux/bpf.h`).
    pub code: u8,
    /// The destination register.
    pub dst: u8,
    /// The source register.
    pub src: u8,
    /// A signed offset: a jump's distance or a load's displacement.
    pub off: i16,
    /// A signed immediate.
    pub imm: i32,
}

impl Insn {
    /// The 8 bytes the kernel reads: opcode, `dst` in the low and `src` in the high nibble,
    /// then the offset and the immediate, little-endian (as this host's byte order).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[0] = self.code;
        out[1] = (self.dst & 0x0f) | (self.src << 4);
        out[2..4].copy_from_slice(&self.off.to_ne_bytes());
        out[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        out
    }
}

// The opcodes the program uses.
/// `dst = *(u32 *)(src + off)`.
const LDX_W: u8 = 0x61;
/// `dst &= imm` (32-bit).
const AND32_K: u8 = 0x54;
/// `dst >>= imm` (32-bit).
const RSH32_K: u8 = 0x74;
/// `dst = src` (32-bit).
const MOV32_X: u8 = 0xbc;
/// `dst = imm` (32-bit).
const MOV32_K: u8 = 0xb4;
/// `if dst != imm goto +off`.
const JNE_K: u8 = 0x55;
/// `if dst != src goto +off`.
const JNE_X: u8 = 0x5d;
/// `return r0`.
const EXIT: u8 = 0x95;

/// The kernel's device types in `struct bpf_cgroup_dev_ctx` (`BPF_DEVCG_DEV_*`).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// The kernel's access bits there (`BPF_DEVCG_ACC_*`).
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The kernel's access bits for a rule's.
fn kernel_access(access: u8) -> i32 {
    [(READ, ACC_READ), (WRITE, ACC_WRITE), (MKNOD, ACC_MKNOD)]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .fold(0, |all, (_, acc)| all | acc)
}

// ANCHOR: program
/// The `BPF_PROG_TYPE_CGROUP_DEVICE` program that allows exactly `rules`, as runc's
/// `devicefilter` writes it. The kernel calls it with `r1` pointing at
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, where `access_type`
/// holds the device type in its low 16 bits and the access asked for in its high 16.
///
/// ```text
///         r2 = type   r3 = access   r4 = major   r5 = minor
/// rule 1: if r2 != c        goto rule 2      (only when the rule names a type)
///         if r3 & rwm != r3 goto rule 2      (only when the rule allows less than rwm)
///         if r4 != 1        goto rule 2      (only when the rule names a major)
///         if r5 != 3        goto rule 2      (only when the rule names a minor)
///         return 1                           allowed
/// rule 2: ...
///         return 0                           nothing allowed it
/// ```
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut insns = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules {
        let mut block = Vec::new();
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Char => block.push(insn(JNE_K, 2, 0, 0, DEV_CHAR)),
            DeviceKind::Block => block.push(insn(JNE_K, 2, 0, 0, DEV_BLOCK)),
        }
        let allowed = kernel_access(rule.access);
        if allowed != ACC_READ | ACC_WRITE | ACC_MKNOD {
            // r1 (the context) is no longer needed: use it to test "asked ⊆ allowed".
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, allowed));
            block.push(insn(JNE_X, 1, 3, 0, 0));
        }
        if let Some(major) = rule.major {
            block.push(insn(
                JNE_K,
                4,
                0,
                0,
                i32::try_from(major).unwrap_or(i32::MAX),
            ));
        }
        if let Some(minor) = rule.minor {
            block.push(insn(
                JNE_K,
                5,
                0,
                0,
                i32::try_from(minor).unwrap_or(i32::MAX),
            ));
        }
        block.push(insn(MOV32_K, 0, 0, 0, 1));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Every jump goes to the next rule: just past this block's last instruction.
        let len = block.len();
        let mut conditional = false;
        for (i, ins) in block.iter_mut().enumerate() {
            if matches!(ins.code, JNE_K | JNE_X) {
                ins.off = i16::try_from(len - 1 - i).unwrap_or(i16::MAX);
                conditional = true;
            }
        }
        insns.extend(block);
        if !conditional {
            // A rule that allows everything ends the program: the verifier refuses code that
            // can never run.
            return insns;
        }
    }
    insns.push(insn(MOV32_K, 0, 0, 0, 0));
    insns.push(insn(EXIT, 0, 0, 0, 0));
    insns
}
// ANCHOR_END: program

/// The program as the bytes bpf(2) reads.
pub fn program_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// `BPF_PROG_LOAD`'s part of `union bpf_attr`, up to the field skiff sets last.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `BPF_PROG_ATTACH`'s part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the cgroups above run too, and all must allow (runc attaches the same way).
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, nix::errno::Errno> {
    let size = std::mem::size_of::<T>();
    // SAFETY: `attr` is a live, initialised `repr(C)` prefix of `union bpf_attr` of `size`
    // bytes; the kernel reads (and for a load's log, writes) only within it and the buffers
    // it points to, which outlive the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) };
    nix::errno::Errno::result(ret)
}

// ANCHOR: load
/// Loads `insns` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program: the kernel's verifier checks it
/// first, and its log is in the error when it refuses.
pub fn load(insns: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let bytes = program_bytes(insns);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"skiff_device");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
        insns: bytes.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: u32::try_from(log.len()).unwrap_or(u32::MAX),
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => {
            let fd = i32::try_from(fd).map_err(|_| CgroupError::BpfLoad {
                errno: nix::errno::Errno::EBADF,
                log: String::new(),
            })?;
            // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor that nothing else
            // owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
        Err(source) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(CgroupError::BpfLoad {
                errno: source,
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
            })
        }
    }
}

/// Attaches the loaded program `prog` to the cgroup v2 directory `dir`: from now on every
/// open and mknod of a device by a process in it asks the program.
pub fn attach(prog: &OwnedFd, dir: &Path) -> Result<(), CgroupError> {
    let attach_failed = |errno| CgroupError::BpfAttach {
        path: dir.to_path_buf(),
        errno,
    };
    let cgroup = std::fs::File::open(dir)
        .map_err(|e| attach_failed(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    let mut attr = ProgAttachAttr {
        target_fd: u32::try_from(cgroup.as_raw_fd()).unwrap_or(u32::MAX),
        attach_bpf_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(attach_failed)?;
    Ok(())
}
// ANCHOR_END: load

/// cgroup v2: the program for `rules`, loaded and attached to `dir`. The cgroup keeps it; our
/// descriptor goes, and the program with the cgroup.
pub fn apply_v2(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let prog = load(&program(rules))?;
    attach(&prog, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program as the kernel would for one access: a tiny interpreter of the eight
    /// opcodes [`program`] uses. Returns r0.
    #[allow(clippy::cast_possible_truncation)] // 32-bit ALU operations truncate, as the kernel's.
    fn run(insns: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [u32::try_from(access << 16 | kind).unwrap(), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = insns[pc];
            let (d, s) = (usize::from(i.dst), usize::from(i.src));
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[usize::try_from(i.off).unwrap() / 4]);
                }
                AND32_K => r[d] = (r[d] as u32 & i.imm as u32).into(),
                RSH32_K => r[d] = (r[d] as u32 >> i.imm).into(),
                MOV32_X => r[d] = (r[s] as u32).into(),
                MOV32_K => r[d] = (i.imm as u32).into(),
                JNE_K if r[d] != u64::from(i.imm as u32) => pc += usize::try_from(i.off).unwrap(),
                JNE_X if r[d] != r[s] => pc += usize::try_from(i.off).unwrap(),
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn rules_print_as_devices_allow_takes_them() {
        let lines: Vec<String> = docker_default().iter().map(DeviceRule::line).collect();
        assert_eq!(lines[0], "c *:* m");
        assert_eq!(lines[1], "b *:* m");
        assert_eq!(lines[2], "c 1:3 rwm");
        assert!(lines.contains(&"c 136:* rwm".to_string()));
        assert!(lines.contains(&"c 10:200 rwm".to_string()));
        assert_eq!(DeviceRule::ALL.line(), "a *:* rwm");
        assert_eq!(DeviceRule::parse_access("rw"), Some(READ | WRITE));
        assert_eq!(DeviceRule::parse_access("rwx"), None);
        assert_eq!(DeviceRule::parse_access(""), None);
    }

    #[test]
    fn devices_and_privileged_make_their_rules() {
        let null = namespaces::devices::parse_device("/dev/null:/dev/mynull:rw").unwrap();
        let rules = rules_for(false, std::slice::from_ref(&null), &[]);
        assert_eq!(rules.len(), docker_default().len() + 1);
        assert_eq!(rules.last().unwrap().line(), "c 1:3 rw");
        assert_eq!(
            rules_for(true, std::slice::from_ref(&null), &[]),
            [DeviceRule::ALL]
        );
        // --device-cgroup-rule comes last, after the --device rules.
        let usb = DeviceRule::parse("c 189:* rwm").unwrap();
        let rules = rules_for(false, &[null], &[usb]);
        assert_eq!(rules.len(), docker_default().len() + 2);
        assert_eq!(rules.last().unwrap().line(), "c 189:* rwm");
    }

    #[test]
    fn device_cgroup_rules_parse_as_docker_reads_them() {
        for (text, line) in [
            ("c 1:3 rwm", "c 1:3 rwm"),
            ("b *:* m", "b *:* m"),
            ("a 7:* r", "a 7:* r"),
            ("c 10:200 wr", "c 10:200 rw"),
            ("c 4294967295:0 r", "c 4294967295:0 r"),
        ] {
            assert_eq!(
                DeviceRule::parse(text).map(|r| r.line()).as_deref(),
                Some(line)
            );
        }
        for bad in [
            "",
            "c",
            "c 1:3",
            "x 1:3 rwm",
            "c 1:3 rwx",
            "c 1:3 rwmr",
            "c 1 rwm",
            "c 1:3  rwm",
            "c -1:3 rwm",
            "c 1:3 rwm ",
            "c 4294967296:0 r",
            "c +1:3 r",
            "C 1:3 r",
        ] {
            assert_eq!(DeviceRule::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn v1_writes_an_all_type_rule_as_char_and_block() {
        assert_eq!(DeviceRule::ALL.v1_lines(), ["a *:* rwm"]);
        assert_eq!(
            DeviceRule::parse("a 7:* r").unwrap().v1_lines(),
            ["c 7:* r", "b 7:* r"]
        );
        assert_eq!(
            DeviceRule::parse("a *:* rw").unwrap().v1_lines(),
            ["c *:* rw", "b *:* rw"]
        );
        assert_eq!(DeviceRule::char(1, Some(3), READ).v1_lines(), ["c 1:3 r"]);
    }

    #[test]
    fn the_program_follows_a_users_rule() {
        let mut rules = docker_default();
        rules.push(DeviceRule::parse("c 10:* r").unwrap());
        rules.push(DeviceRule::parse("a 7:1 rw").unwrap());
        let insns = program(&rules);
        assert_eq!(run(&insns, DEV_CHAR, ACC_READ, 10, 237), 1);
        assert_eq!(run(&insns, DEV_CHAR, ACC_WRITE, 10, 237), 0);
        assert_eq!(run(&insns, DEV_BLOCK, ACC_READ, 10, 237), 0);
        assert_eq!(run(&insns, DEV_BLOCK, ACC_READ | ACC_WRITE, 7, 1), 1);
        assert_eq!(run(&insns, DEV_CHAR, ACC_READ, 7, 1), 1);
        assert_eq!(run(&insns, DEV_CHAR, ACC_READ, 7, 2), 0);
    }

    #[test]
    fn v1_denies_all_then_allows_each_rule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("devices.deny"), "").unwrap();
        std::fs::write(dir.path().join("devices.allow"), "").unwrap();
        apply_v1(dir.path(), &[DeviceRule::char(1, Some(3), READ)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("devices.deny")).unwrap(),
            "a"
        );
        // Each rule is one write that truncates: the last one is left in the fake file.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("devices.allow")).unwrap(),
            "c 1:3 r"
        );
    }

    #[test]
    fn the_program_for_null_is_runcs() {
        let insns = program(&[DeviceRule::char(1, Some(3), READ | WRITE | MKNOD)]);
        let bytes = program_bytes(&insns);
        // The prologue, one block (type, major, minor, allow), the default deny.
        assert_eq!(insns.len(), 6 + 5 + 2);
        assert_eq!(&bytes[..8], [0x61, 0x12, 0, 0, 0, 0, 0, 0]); // r2 = *(u32 *)(r1 + 0)
        assert_eq!(&bytes[48..56], [0x55, 0x02, 4, 0, 2, 0, 0, 0]); // if r2 != 2 goto +4
        assert_eq!(&bytes[56..64], [0x55, 0x04, 3, 0, 1, 0, 0, 0]); // if r4 != 1 goto +3
        assert_eq!(&bytes[64..72], [0x55, 0x05, 2, 0, 3, 0, 0, 0]); // if r5 != 3 goto +2
        assert_eq!(&bytes[72..80], [0xb4, 0x00, 0, 0, 1, 0, 0, 0]); // r0 = 1
        assert_eq!(&bytes[80..88], [0x95, 0, 0, 0, 0, 0, 0, 0]); // exit
        assert_eq!(&bytes[88..96], [0xb4, 0x00, 0, 0, 0, 0, 0, 0]); // r0 = 0
    }

    #[test]
    fn the_default_program_allows_what_docker_allows() {
        let insns = program(&docker_default());
        let rw = ACC_READ | ACC_WRITE;
        // null, zero, a pts, tun: read and write.
        for (major, minor) in [(1, 3), (1, 5), (136, 4), (10, 200), (5, 2)] {
            assert_eq!(
                run(&insns, DEV_CHAR, rw, major, minor),
                1,
                "{major}:{minor}"
            );
        }
        // Making any node is allowed; opening the host's disk or memory is not.
        assert_eq!(run(&insns, DEV_BLOCK, ACC_MKNOD, 253, 0), 1);
        assert_eq!(run(&insns, DEV_CHAR, ACC_MKNOD, 1, 1), 1);
        assert_eq!(run(&insns, DEV_BLOCK, ACC_READ, 253, 0), 0);
        assert_eq!(run(&insns, DEV_CHAR, ACC_READ, 1, 1), 0);
        assert_eq!(run(&insns, DEV_CHAR, rw, 10, 237), 0); // loop-control
        // 1:3 as a block device is another device.
        assert_eq!(run(&insns, DEV_BLOCK, rw, 1, 3), 0);
    }

    #[test]
    fn partial_access_and_all() {
        let read_only = program(&[DeviceRule::char(1, Some(3), READ)]);
        assert_eq!(run(&read_only, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&read_only, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&read_only, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 0);
        let all = program(&[DeviceRule::ALL]);
        assert_eq!(all.len(), 6 + 2);
        assert_eq!(run(&all, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0), 1);
        let none = program(&[]);
        assert_eq!(run(&none, DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn the_kernel_verifier_accepts_the_programs() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: loading a BPF program needs root (CAP_BPF)");
            return;
        }
        for rules in [docker_default(), vec![DeviceRule::ALL], Vec::new()] {
            let fd = load(&program(&rules)).unwrap_or_else(|e| panic!("{rules:?}: {e}"));
            assert!(fd.as_raw_fd() > 2);
        }
    }

    #[test]
    fn a_refused_program_brings_the_verifiers_log() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: loading a BPF program needs root (CAP_BPF)");
            return;
        }
        // No exit: the verifier refuses a program that falls off its end.
        let err = load(&[insn(MOV32_K, 0, 0, 0, 1)]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("BPF_PROG_LOAD"), "{text}");
        assert!(text.contains("verifier"), "{text}");
    }

    #[test]
    fn attached_to_a_v2_cgroup_the_program_refuses_an_open() {
        let unified = Path::new("/sys/fs/cgroup/unified");
        if !nix::unistd::Uid::effective().is_root()
            || crate::detect::FsKind::of(unified).ok() != Some(crate::detect::FsKind::Cgroup2)
        {
            eprintln!(
                "skipped: needs root and a cgroup v2 tree at {}",
                unified.display()
            );
            return;
        }
        /// Removes the test's cgroup, whatever happens.
        struct Gone(std::path::PathBuf);
        impl Drop for Gone {
            fn drop(&mut self) {
                for _ in 0..50 {
                    if std::fs::remove_dir(&self.0).is_ok() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
        let dir = unified.join(format!("skiff-devtest-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let _gone = Gone(dir.clone());
        apply_v2(&dir, &[DeviceRule::char(1, Some(3), READ | WRITE)]).unwrap();
        // A shell moves itself in, then tries /dev/null (allowed) and /dev/zero (not).
        let script = format!(
            "echo $$ > {}/cgroup.procs && echo > /dev/null && echo null-ok; \
             head -c 1 /dev/zero > /dev/null 2>&1 || echo zero-refused",
            dir.display()
        );
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "null-ok\nzero-refused\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
