//! Micro-benchmark: what a container's cgroup costs, made and removed, on this host's setup.
//!
//! Each iteration creates `skiff/bench-<n>` with a 64 MiB memory limit in every hierarchy a
//! container joins, then removes it (and the parent when empty): what stage 03 adds to every
//! container, minus the join, which the child makes itself. Whole-container startup is
//! `labs bench`.
//!
//! ```text
//! cargo bench -p cgroups                   # measure (as root)
//! cargo test -p cgroups --benches          # run each benchmark once, as CI does
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cgroups::{CgroupArgs, CgroupPath, Host, open};
use criterion::{Criterion, criterion_group, criterion_main};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn create_and_remove(c: &mut Criterion) {
    let Ok(host) = Host::detect() else {
        eprintln!("cgroup/create+remove: skipped: no cgroup filesystem to detect");
        return;
    };
    let limits = match (CgroupArgs {
        memory: Some("64m".into()),
        ..CgroupArgs::default()
    })
    .limits()
    {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("cgroup/create+remove: skipped: {e}");
            return;
        }
    };
    let host = cgroups::v1::narrow(host, &limits);
    let once = || -> Result<(), String> {
        let id = format!(
            "bench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = CgroupPath::skiff(&id).map_err(|e| e.to_string())?;
        let mut cgroup = open(&host, path);
        let created = cgroup.create(&limits).map_err(|e| e.to_string());
        cgroup.remove().map_err(|e| e.to_string())?;
        created
    };
    if let Err(e) = once() {
        eprintln!("cgroup/create+remove: skipped: {e} (run as root)");
        return;
    }
    let mut group = c.benchmark_group("cgroup");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("create+remove (64m)", |b| b.iter(|| black_box(once())));
    group.finish();
}

criterion_group!(benches, create_and_remove);
criterion_main!(benches);
