//! Micro-benchmark: one whole stage-01 launch, in process.
//!
//! `launch::run` with [`ChangeRoot`] into the lab's busybox rootfs, running `/bin/true`: prepare
//! the plan, clone3, the child's steps (wait for the go-ahead, chroot, chdir), execve, the
//! parent's wait. Unlike `labs bench`, no engine binary is started, so this is the cost of the
//! launch sequence itself.
//!
//! ```text
//! cargo bench -p chroot                    # measure (as root)
//! cargo test -p chroot --benches           # run it once, as CI does
//! ```

use std::hint::black_box;

use chroot::{ChangeRoot, Feature, Process, launch};
use criterion::{Criterion, criterion_group, criterion_main};

fn launch_true(rootfs: &std::path::Path) -> Result<i32, chroot::LaunchError> {
    let process = Process::new(vec!["/bin/true".into()]);
    let mut features: Vec<Box<dyn Feature>> = vec![Box::new(ChangeRoot::new(rootfs))];
    Ok(launch::run(&process, &mut features)?.code())
}

fn whole_launch(c: &mut Criterion) {
    let rootfs = match labs::fixtures() {
        Ok(fixtures) => fixtures.rootfs.clone(),
        Err(e) => {
            eprintln!("launch/chroot-true: skipped: {e:#}");
            return;
        }
    };
    // chroot(2) needs root: say so rather than fail.
    match launch_true(&rootfs) {
        Ok(0) => {}
        Ok(code) => {
            eprintln!("launch/chroot-true: skipped: /bin/true exited {code}");
            return;
        }
        Err(e) => {
            eprintln!("launch/chroot-true: skipped: {e}");
            return;
        }
    }
    c.bench_function("launch/chroot-true", |b| {
        b.iter(|| black_box(launch_true(black_box(&rootfs))))
    });
}

criterion_group!(benches, whole_launch);
criterion_main!(benches);
