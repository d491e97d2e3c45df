//! The virtual machine contestant: QEMU boots Debian's kernel with the fixture rootfs as its
//! initramfs, whose `/init` runs the workload and powers the machine off. The time is from
//! launching QEMU to QEMU's exit: firmware, kernel boot, the workload, power-off.
//!
//! - The kernel comes from Debian's `linux-image-*` package, fetched with `apt-get download`
//!   into a cache under `target/` (never installed), and taken out of the package's data
//!   tarball (`dpkg-deb --fsys-tarfile`, see dpkg-deb(1)): only `boot/vmlinuz-*`.
//! - The initramfs is a cpio archive the harness writes itself ([`super::cpio`]).
//! - KVM when `/dev/kvm` works: a probe boot with KVM must finish within a few seconds (nested
//!   virtualisation can hang at boot); otherwise QEMU emulates the CPU (TCG), which is many
//!   times slower, and the report says so.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::config::{KvmMode, VmSpec, parse_size};
use super::cpio::CpioWriter;
use super::prepare::{Prepared, Ready, Setup, which};
use super::progress::Progress;
use super::timing::{RunError, run_timed};

/// What the guest prints after the workload; the run counts only if the status is 0.
pub const MARKER: &str = "bench-workload-exit=";

/// Gets the VM ready: the kernel, the initramfs, and the KVM decision.
pub fn prepare(spec: &VmSpec, setup: &Setup, progress: &Progress) -> Prepared {
    let Some(qemu) = which(&spec.qemu) else {
        return Prepared::Skipped(format!(
            "{} is not installed (Debian: apt-get install qemu-system-x86)",
            spec.qemu
        ));
    };
    let kernel = match kernel(&spec.kernel_package, setup, progress) {
        Ok(kernel) => kernel,
        Err(message) => return Prepared::Failed(message),
    };
    let initramfs = setup.work.join("initramfs.cpio");
    if let Err(e) = write_initramfs(&setup.rootfs, &setup.workload, &initramfs) {
        return Prepared::Failed(format!("write {}: {e}", initramfs.display()));
    }
    let memory_mib = parse_size(&spec.memory).map_or(256, |bytes| bytes >> 20);
    let machine = Machine {
        qemu,
        kernel: kernel.clone(),
        initramfs,
        memory_mib,
    };
    let (kvm, why) = decide_kvm(spec, &machine, setup, progress);
    let kernel_name = kernel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Prepared::Ready(Box::new(Ready {
        program: machine.qemu.clone(),
        args: machine.args(kvm),
        expect_stdout: Some(format!("{MARKER}0")),
        tag: Some(if kvm { "KVM" } else { "TCG, no KVM" }.to_string()),
        notes: vec![format!(
            "kernel {}, {memory_mib} MiB, 1 vCPU",
            kernel_name.trim_start_matches("vmlinuz-")
        )],
        details: vec![format!(
            "{}: {why}",
            if kvm {
                "KVM"
            } else {
                "No KVM, so QEMU's emulator (TCG)"
            }
        )],
        ..Ready::default()
    }))
}

/// What QEMU boots.
struct Machine {
    qemu: PathBuf,
    kernel: PathBuf,
    initramfs: PathBuf,
    memory_mib: u64,
}

impl Machine {
    // ANCHOR: qemu_args
    /// QEMU's command line: no devices but a serial console on stdout, the kernel and
    /// initramfs given directly (no disk, no bootloader), and exit instead of rebooting.
    fn args(&self, kvm: bool) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-accel".into(),
            if kvm { "kvm" } else { "tcg" }.into(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            "-smp".into(),
            "1".into(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-no-reboot".into(),
        ];
        args.push("-kernel".into());
        args.push(self.kernel.to_string_lossy().into_owned());
        args.push("-initrd".into());
        args.push(self.initramfs.to_string_lossy().into_owned());
        args.push("-append".into());
        args.push("console=ttyS0 quiet panic=-1".into());
        args
    }
    // ANCHOR_END: qemu_args
}

/// KVM or not, and why.
fn decide_kvm(
    spec: &VmSpec,
    machine: &Machine,
    setup: &Setup,
    progress: &Progress,
) -> (bool, String) {
    match spec.kvm {
        KvmMode::Off => (false, "kvm = \"off\" in bench.toml".into()),
        KvmMode::On => (true, "kvm = \"on\" in bench.toml".into()),
        KvmMode::Auto => {
            let usable = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm");
            if let Err(e) = usable {
                return (false, format!("/dev/kvm is not usable here ({e})"));
            }
            let _step = progress.step(&format!(
                "probing KVM: one boot with -accel kvm, at most {}s",
                spec.kvm_probe_timeout
            ));
            let mut probe = Command::new(&machine.qemu);
            probe.args(machine.args(true));
            let timeout = Duration::from_secs(spec.kvm_probe_timeout);
            match run_timed(&probe, timeout, &setup.logs()) {
                Ok(done) if done.succeeded() && done.stdout.contains(&format!("{MARKER}0")) => {
                    (true, "a probe boot with KVM succeeded".into())
                }
                Ok(done) => (
                    false,
                    format!("a probe boot with KVM failed ({})", done.failure()),
                ),
                Err(RunError::TimedOut { after, .. }) => (
                    false,
                    format!(
                        "/dev/kvm exists, but a probe boot with KVM did not finish within {}s (nested virtualisation can hang at boot)",
                        after.as_secs()
                    ),
                ),
                Err(e) => (false, format!("a probe boot with KVM failed ({e})")),
            }
        }
    }
}

// ANCHOR: init_script
/// The guest's `/init`: the kernel runs it as PID 1. It runs the workload, prints its status on
/// the serial console, and powers off at once (`-f`: no init system to ask).
fn init_script(workload: &[String]) -> String {
    let command =
        shlex::try_join(workload.iter().map(String::as_str)).unwrap_or_else(|_| "/bin/true".into());
    format!("#!/bin/sh\n{command}\necho \"{MARKER}$?\"\nexec poweroff -f\n")
}
// ANCHOR_END: init_script

/// Writes the initramfs: the rootfs, `/init`, and `/dev/console` (the kernel opens it for
/// init's stdin, stdout and stderr).
pub fn write_initramfs(rootfs: &Path, workload: &[String], out: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(out)?;
    let mut cpio = CpioWriter::new(std::io::BufWriter::new(file));
    cpio.tree(rootfs)?;
    if !rootfs.join("dev").is_dir() {
        cpio.directory("dev", 0o755)?;
    }
    if !rootfs.join("dev/console").exists() {
        cpio.char_device("dev/console", 0o600, 5, 1)?;
    }
    cpio.file("init", 0o755, init_script(workload).as_bytes())?;
    cpio.finish()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// The kernel image: from the cache, or fetched from Debian's mirror into it.
fn kernel(package: &str, setup: &Setup, progress: &Progress) -> Result<PathBuf, String> {
    let dir = setup.cache.join("kernel");
    if let Some(found) = cached_kernel(&dir) {
        return Ok(found);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let package = resolve_package(package, setup)?;
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&dir)
        .map_err(|e| format!("create a download directory in {}: {e}", dir.display()))?;
    {
        let _step = progress.step(&format!("apt-get download {package}"));
        let mut command = Command::new("apt-get");
        command
            .args(["download", &package])
            .current_dir(download.path());
        match run_timed(&command, Duration::from_secs(600), &setup.logs()) {
            Ok(done) if done.succeeded() => {}
            Ok(done) => return Err(format!("apt-get download {package}: {}", done.failure())),
            Err(e) => return Err(format!("apt-get download {package}: {e}")),
        }
    }
    let deb = std::fs::read_dir(download.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {package} left no .deb file"))?;
    let _step = progress.step(&format!("taking boot/vmlinuz-* out of {}", deb.display()));
    extract_vmlinuz(&deb, &dir)?;
    cached_kernel(&dir).ok_or_else(|| format!("{} holds no boot/vmlinuz-*", deb.display()))
}

fn cached_kernel(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// `linux-image-amd64` is a metapackage: the kernel is in the package it depends on.
fn resolve_package(package: &str, setup: &Setup) -> Result<String, String> {
    let mut command = Command::new("apt-cache");
    command.args(["depends", package]);
    let output = match run_timed(&command, Duration::from_secs(60), &setup.logs()) {
        Ok(done) if done.succeeded() => done.stdout,
        Ok(done) => {
            return Err(format!(
                "apt-cache depends {package}: {} (run apt-get update first)",
                done.failure()
            ));
        }
        Err(e) => return Err(format!("apt-cache depends {package}: {e}")),
    };
    Ok(depended_kernel(&output).unwrap_or_else(|| package.to_string()))
}

/// The first `Depends: linux-image-…` line of `apt-cache depends`, if any.
fn depended_kernel(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        name.starts_with("linux-image-").then(|| name.to_string())
    })
}

/// Streams the package's data tarball from `dpkg-deb --fsys-tarfile` and keeps only the
/// kernel image, so the modules (hundreds of MB) never touch the disk.
fn extract_vmlinuz(deb: &Path, dir: &Path) -> Result<(), String> {
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run dpkg-deb: {e}"))?;
    let stdout = child.stdout.take().ok_or("dpkg-deb has no stdout")?;
    let mut archive = tar::Archive::new(stdout);
    let mut result = Err(format!("{} holds no boot/vmlinuz-*", deb.display()));
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let Some(name) = path
            .strip_prefix("./boot")
            .or_else(|_| path.strip_prefix("boot"))
            .ok()
            .and_then(|rest| rest.to_str())
            .filter(|name| name.starts_with("vmlinuz-") && !name.contains('/'))
            .map(str::to_string)
        else {
            continue;
        };
        let partial = dir.join(format!(".{name}.partial"));
        result = entry
            .unpack(&partial)
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::rename(&partial, dir.join(&name)).map_err(|e| e.to_string()));
        break;
    }
    // Read the rest so dpkg-deb is not killed by SIGPIPE mid-write, then reap it.
    let mut rest = archive.into_inner();
    let _ = std::io::copy(&mut rest, &mut std::io::sink());
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() && result.is_err() {
        return Err(format!(
            "dpkg-deb --fsys-tarfile {}: {stderr}",
            deb.display()
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metapackage_resolves_to_the_kernel_it_depends_on() {
        let output =
            "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware\n";
        assert_eq!(
            depended_kernel(output).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(depended_kernel("linux-image-6.1.0-56-amd64\n"), None);
    }

    #[test]
    fn init_runs_the_workload_reports_and_powers_off() {
        let script = init_script(&["/bin/echo".into(), "a b".into()]);
        assert_eq!(
            script,
            "#!/bin/sh\n/bin/echo 'a b'\necho \"bench-workload-exit=$?\"\nexec poweroff -f\n"
        );
    }

    #[test]
    fn the_initramfs_holds_the_rootfs_init_and_a_console() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("bin")).unwrap();
        std::fs::write(root.path().join("bin/true"), "").unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("initramfs.cpio");
        write_initramfs(root.path(), &["/bin/true".into()], &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for name in [
            "bin\0",
            "bin/true\0",
            "dev\0",
            "dev/console\0",
            "init\0",
            "TRAILER!!!\0",
        ] {
            assert!(text.contains(name), "{name:?} missing");
        }
        assert!(text.contains("exec poweroff -f"));
    }

    #[test]
    fn qemu_gets_no_devices_but_a_serial_console() {
        let machine = Machine {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/k/vmlinuz-6.1".into(),
            initramfs: "/w/initramfs.cpio".into(),
            memory_mib: 256,
        };
        let args = machine.args(false).join(" ");
        assert!(
            args.starts_with("-accel tcg -m 256M -smp 1 -nodefaults"),
            "{args}"
        );
        assert!(args.ends_with(
            "-kernel /k/vmlinuz-6.1 -initrd /w/initramfs.cpio -append console=ttyS0 quiet panic=-1"
        ));
        assert!(machine.args(true).join(" ").starts_with("-accel kvm"));
    }
}
