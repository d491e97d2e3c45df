//! Micro-benchmarks: what creating one namespace of each kind costs.
//!
//! Each iteration clone3(2)s a child with one `CLONE_NEW*` flag, the child exits at once, and the
//! parent waits for it; `none` is the same clone with no flag (a plain fork), the baseline the
//! others add to. The kernel creates the namespace in clone and tears it down when its last
//! process exits, so both are in the figure. `seccomp/compile-docker-default` is the cost of
//! compiling Docker's seccomp profile, paid at every container start. Whole-container startup is
//! `labs bench`.
//!
//! ```text
//! cargo bench -p namespaces                # measure (as root)
//! cargo test -p namespaces --benches       # run each benchmark once, as CI does
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use namespaces::namespaces::Namespace;
use nix::errno::Errno;
use nix::sys::wait::waitpid;

/// Clones a child with `flags` that exits at once, and reaps it.
fn clone_and_reap(flags: u64) -> Result<(), Errno> {
    match chroot::launch::clone3(flags)? {
        // SAFETY: the child only calls _exit(2), a system call: nothing of the parent's state
        // (locks, allocator, buffers) is touched between the clone and the exit.
        None => unsafe { libc::_exit(0) },
        Some(pid) => waitpid(pid, None).map(|_| ()),
    }
}

fn namespace_creation(c: &mut Criterion) {
    let mut group = c.benchmark_group("clone3");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let kinds = std::iter::once(("none", 0)).chain(Namespace::ALL.into_iter().map(|ns| {
        let flag = u64::try_from(ns.clone_flag()).unwrap_or(0);
        (ns.name(), flag)
    }));
    for (name, flag) in kinds {
        // Creating most namespaces needs CAP_SYS_ADMIN: say so rather than fail.
        if let Err(errno) = clone_and_reap(flag) {
            eprintln!("clone3/{name}: skipped: {errno} (run as root)");
            continue;
        }
        group.bench_function(name, |b| {
            b.iter(|| black_box(clone_and_reap(black_box(flag))))
        });
    }
    group.finish();
}

/// Compiling Docker's seccomp profile to BPF, which every container start does (in the parent,
/// before the clone): parsing the JSON, evaluating its capability and architecture conditions,
/// and seccompiler's code generation.
fn seccomp_compile(c: &mut Criterion) {
    let caps = namespaces::security::capability_set(&[], &[]).unwrap_or_default();
    c.bench_function("seccomp/compile-docker-default", |b| {
        b.iter(|| {
            black_box(namespaces::seccomp::compile(
                black_box(namespaces::seccomp::DOCKER_DEFAULT),
                &caps,
            ))
        })
    });
}

criterion_group!(benches, namespace_creation, seccomp_compile);
criterion_main!(benches);
