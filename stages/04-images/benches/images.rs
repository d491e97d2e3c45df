//! Micro-benchmarks of what stage 04 does with layers: hash one, unpack one, and mount and
//! unmount an overlay of one.
//!
//! The layer is a tarball of the lab's busybox rootfs (about 3.4 MB, the size of a small base
//! image). Whole-container startup is `labs bench`.
//!
//! ```text
//! cargo bench -p images                    # measure (the overlay needs root)
//! cargo test -p images --benches           # run each benchmark once, as CI does
//! ```

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use images::digest::Digest;
use nix::mount::{MntFlags, MsFlags};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The lab rootfs as a layer tarball, in memory.
fn layer() -> Option<Vec<u8>> {
    let fixtures = labs::fixtures().ok()?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &fixtures.rootfs).ok()?;
    builder.into_inner().ok()
}

fn layers(c: &mut Criterion) {
    let Some(tarball) = layer() else {
        eprintln!("layer: skipped: the lab fixtures could not be built");
        return;
    };
    let mut group = c.benchmark_group("layer");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("digest (sha256 of 3.4 MB)", |b| {
        b.iter(|| black_box(Digest::of_bytes(black_box(&tarball))))
    });
    let Ok(scratch) = tempfile::Builder::new().prefix("skiff-bench-").tempdir() else {
        return;
    };
    group.bench_function("unpack", |b| {
        b.iter(|| {
            let dest = scratch
                .path()
                .join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
            let unpacked = images::unpack::unpack(&tarball[..], &dest);
            let _ = std::fs::remove_dir_all(&dest);
            black_box(unpacked.is_ok())
        })
    });
    group.finish();
}

fn mount_and_unmount(dir: &Path, lower: &Path) -> nix::Result<()> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (upper, work, merged) = (
        dir.join(format!("u{n}")),
        dir.join(format!("w{n}")),
        dir.join(format!("m{n}")),
    );
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).map_err(|_| nix::errno::Errno::EIO)?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,volatile",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )?;
    let unmounted = nix::mount::umount2(&merged, MntFlags::empty());
    for d in [&upper, &work, &merged] {
        let _ = std::fs::remove_dir_all(d);
    }
    unmounted
}

fn overlay(c: &mut Criterion) {
    let Ok(fixtures) = labs::fixtures() else {
        return;
    };
    let Ok(scratch) = tempfile::Builder::new().prefix("skiff-bench-").tempdir() else {
        return;
    };
    if let Err(errno) = mount_and_unmount(scratch.path(), &fixtures.rootfs) {
        eprintln!("overlay: skipped: {errno} (run as root)");
        return;
    }
    let mut group = c.benchmark_group("overlay");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("mount+unmount", |b| {
        b.iter(|| black_box(mount_and_unmount(scratch.path(), &fixtures.rootfs)))
    });
    group.finish();
}

criterion_group!(benches, layers, overlay);
criterion_main!(benches);
