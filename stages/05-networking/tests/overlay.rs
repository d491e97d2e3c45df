//! Two simulated hosts on one overlay network, with etcd as the cluster store.
//!
//! Every host is a network namespace: `sk-i16-h1` and `sk-i16-h2`, plus `sk-i16-e` running etcd,
//! all plugged by veths into a bridge inside `sk-i16-u` (the underlay, 10.216.0.0/24). Each
//! "container" is a namespace of its own (`sk-i16-c1` on host 1, `sk-i16-c2` on host 2) whose
//! `eth0` plugs into its host's overlay bridge. Nothing of the test is in the host's namespace;
//! a guard deletes every namespace and stops etcd, also when the test fails.
//!
//! Needs root and Debian's etcd-server (`etcd`); skips with the reason printed otherwise.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use networking::etcd::Etcd;
use networking::ipam::{Mac, Subnet};
use networking::netlink::Netlink;
use networking::overlay::{self, OverlayError};
use networking::vxlan;

const NAMESPACES: [&str; 7] = [
    "sk-i16-u",
    "sk-i16-e",
    "sk-i16-h1",
    "sk-i16-h2",
    "sk-i16-c1",
    "sk-i16-c2",
    "sk-i16-c3",
];
const ETCD_DIR: &str = "/tmp/i16-etcd";
/// Each host's own local store.
const ROOTS: [&str; 2] = ["/tmp/i16-r1", "/tmp/i16-r2"];
const STORE: &str = "etcd://10.216.0.1:23790";
const H1: Ipv4Addr = Ipv4Addr::new(10, 216, 0, 2);
const H2: Ipv4Addr = Ipv4Addr::new(10, 216, 0, 3);

/// Removes everything the test made, whatever happened.
struct Cleanup {
    etcd: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut etcd) = self.etcd.take() {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        for ns in NAMESPACES {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        for link in [
            "sk-i16-ve",
            "sk-i16-v1",
            "sk-i16-v2",
            "sk-i16-c1h",
            "sk-i16-c2h",
        ] {
            let _ = Command::new("ip")
                .args(["link", "del", link])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(ETCD_DIR);
        for root in ROOTS {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "{args:?}: {status:?}"
    );
}

fn output(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread inside network namespace `ns`.
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open the namespace");
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("the thread in the namespace")
    })
}

fn underlay() {
    for ns in NAMESPACES {
        sh(&["ip", "netns", "add", ns]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    sh(&[
        "ip",
        "-n",
        "sk-i16-u",
        "link",
        "add",
        "sk-i16-ub",
        "type",
        "bridge",
    ]);
    sh(&["ip", "-n", "sk-i16-u", "link", "set", "sk-i16-ub", "up"]);
    for (ns, link, addr) in [
        ("sk-i16-e", "sk-i16-ve", "10.216.0.1/24"),
        ("sk-i16-h1", "sk-i16-v1", "10.216.0.2/24"),
        ("sk-i16-h2", "sk-i16-v2", "10.216.0.3/24"),
    ] {
        sh(&[
            "ip", "-n", ns, "link", "add", link, "type", "veth", "peer", "name", link, "netns",
            "sk-i16-u",
        ]);
        sh(&[
            "ip",
            "-n",
            "sk-i16-u",
            "link",
            "set",
            link,
            "master",
            "sk-i16-ub",
            "up",
        ]);
        sh(&["ip", "-n", ns, "addr", "add", addr, "dev", link]);
        sh(&["ip", "-n", ns, "link", "set", link, "up"]);
    }
}

fn start_etcd() -> Child {
    let _ = std::fs::remove_dir_all(ETCD_DIR);
    Command::new("nsenter")
        .args([
            "--net=/run/netns/sk-i16-e",
            "etcd",
            "--data-dir",
            ETCD_DIR,
            "--listen-client-urls",
            "http://10.216.0.1:23790",
            "--advertise-client-urls",
            "http://10.216.0.1:23790",
            "--listen-peer-urls",
            "http://127.0.0.1:23800",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:23800",
            "--initial-cluster",
            "default=http://127.0.0.1:23800",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd")
}

/// A "container" namespace `ns` plugged into its host's overlay bridge, with `ip`.
fn plug(host: &str, container: &str, veth: &str, bridge: &str, ip: Ipv4Addr, mac: Mac) {
    let mtu = vxlan::mtu().to_string();
    sh(&[
        "ip", "-n", host, "link", "add", veth, "mtu", &mtu, "type", "veth", "peer", "name", "eth0",
        "netns", container,
    ]);
    sh(&[
        "ip", "-n", host, "link", "set", veth, "master", bridge, "up",
    ]);
    sh(&["ip", "-n", container, "link", "set", "eth0", "mtu", &mtu]);
    sh(&[
        "ip",
        "-n",
        container,
        "link",
        "set",
        "eth0",
        "address",
        &mac.to_string(),
    ]);
    sh(&[
        "ip",
        "-n",
        container,
        "addr",
        "add",
        &format!("{ip}/24"),
        "dev",
        "eth0",
    ]);
    sh(&["ip", "-n", container, "link", "set", "eth0", "up"]);
}

/// Stage 05's binary inside host namespace `ns`: `networking network ARGS`.
fn networking(ns: &str, root: &str, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(env!("CARGO_BIN_EXE_networking"))
        .arg("network")
        .args(args)
        .env("SKIFF_ROOT", root)
        .env("SKIFF_CLUSTER_STORE", STORE)
        .output()
        .expect("run networking")
}

#[test]
fn two_hosts_one_overlay_network() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("skipped: overlay test needs root (network namespaces, VXLAN devices)");
        return;
    }
    if !Path::new("/usr/bin/etcd").exists() {
        println!("skipped: overlay test needs etcd (apt-get install etcd-server)");
        return;
    }
    let mut cleanup = Cleanup { etcd: None };
    underlay();
    cleanup.etcd = Some(start_etcd());
    // One client per simulated host: a client keeps its connections open, and a connection
    // belongs to the namespace it was made in.
    let (store1, store2) = (
        Etcd::new(STORE).expect("store URL"),
        Etcd::new(STORE).expect("store URL"),
    );

    // etcd takes a moment to serve.
    let started = Instant::now();
    while in_ns("sk-i16-h1", || store1.get("/skiff/ping")).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "etcd did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Host 1 creates the network with the command line; host 2 lists it.
    let subnet = Subnet::parse("10.216.9.0/24").expect("subnet");
    let made = networking(
        "sk-i16-h1",
        ROOTS[0],
        &[
            "create",
            "-d",
            "overlay",
            "--subnet",
            "10.216.9.0/24",
            "sk-i16-net",
        ],
    );
    assert!(made.status.success(), "{made:?}");
    let created = in_ns("sk-i16-h2", || overlay::network(&store2, "sk-i16-net"))
        .expect("read the network")
        .expect("the network is in the store");
    assert_eq!(String::from_utf8_lossy(&made.stdout).trim(), created.id);
    let ls = networking("sk-i16-h2", ROOTS[1], &["ls"]);
    let ls = String::from_utf8_lossy(&ls.stdout).into_owned();
    assert!(
        ls.lines()
            .any(|l| l.contains("sk-i16-net") && l.contains("overlay") && l.contains("global")),
        "{ls}"
    );
    let again = in_ns("sk-i16-h2", || {
        overlay::create_network(&store2, "sk-i16-other", Some(subnet), &"cd".repeat(32))
    });
    assert!(
        matches!(again, Err(OverlayError::Overlaps { .. })),
        "{again:?}"
    );

    // A container on host 1, then one on host 2: each host reads the endpoints when its
    // container joins, so host 1 learns of host 2's container after it too joins (see below).
    let bridge = vxlan::bridge_name(created.vni);
    let vx = vxlan::vxlan_name(created.vni);
    let e1 = in_ns("sk-i16-h1", || {
        let e1 = overlay::join(&store1, &created, "c1", H1).expect("join on host 1");
        let all = overlay::endpoints(&store1, &created).expect("endpoints");
        let mut nl = Netlink::open().expect("netlink");
        vxlan::set_up(&mut nl, &created, H1, &all).expect("data path on host 1");
        e1
    });
    let e2 = in_ns("sk-i16-h2", || {
        let e2 = overlay::join(&store2, &created, "c2", H2).expect("join on host 2");
        let all = overlay::endpoints(&store2, &created).expect("endpoints");
        let mut nl = Netlink::open().expect("netlink");
        vxlan::set_up(&mut nl, &created, H2, &all).expect("data path on host 2");
        e2
    });
    assert_ne!(e1.ip, e2.ip, "two hosts took one address");
    // Without the watch, host 1 learns of c2 when asked again (what a watch will do).
    in_ns("sk-i16-h1", || {
        let all = overlay::endpoints(&store1, &created).expect("endpoints");
        let mut nl = Netlink::open().expect("netlink");
        vxlan::set_up(&mut nl, &created, H1, &all).expect("refresh on host 1");
    });
    let mac = |e: &overlay::Endpoint| Mac::parse(&e.mac).expect("MAC");
    plug(
        "sk-i16-h1",
        "sk-i16-c1",
        "sk-i16-c1h",
        &bridge,
        e1.ip,
        mac(&e1),
    );
    plug(
        "sk-i16-h2",
        "sk-i16-c2",
        "sk-i16-c2h",
        &bridge,
        e2.ip,
        mac(&e2),
    );

    let fdb = output(&["bridge", "-n", "sk-i16-h2", "fdb", "show", "dev", &vx]);
    assert!(fdb.contains(&format!("{} dst {H1}", e1.mac)), "{fdb}");
    let link = output(&["ip", "-d", "-n", "sk-i16-h2", "link", "show", &vx]);
    assert!(
        link.contains(&format!("id {}", created.vni)) && link.contains("dstport 4789"),
        "{link}"
    );
    assert!(
        link.contains("nolearning") && link.contains("mtu 1450"),
        "{link}"
    );

    // Container on host 2 reaches the one on host 1 by address, and back.
    let ping = |from: &str, to: Ipv4Addr| {
        Command::new("ip")
            .args([
                "netns", "exec", from, "busybox", "ping", "-c", "1", "-W", "3",
            ])
            .arg(to.to_string())
            .output()
            .expect("ping")
    };
    let there = ping("sk-i16-c2", e1.ip);
    assert!(there.status.success(), "{there:?}");
    let back = ping("sk-i16-c1", e2.ip);
    assert!(back.status.success(), "{back:?}");

    // inspect on host 2 shows the endpoints of both hosts; rm refuses while they exist.
    let inspect = networking("sk-i16-h2", ROOTS[1], &["inspect", "sk-i16-net"]);
    let inspect = String::from_utf8_lossy(&inspect.stdout).into_owned();
    assert!(
        inspect.contains(&e1.mac) && inspect.contains(&e2.mac) && inspect.contains("\"global\""),
        "{inspect}"
    );
    let busy = networking("sk-i16-h2", ROOTS[1], &["rm", "sk-i16-net"]);
    let said = String::from_utf8_lossy(&busy.stderr);
    assert!(
        !busy.status.success() && said.contains("active endpoints"),
        "{said}"
    );

    // A container started later on host 2; host 1 syncs with the store (what the watch will
    // do) and reaches it, without restarting anything.
    let e3 = in_ns("sk-i16-h2", || {
        let e3 = overlay::join(&store2, &created, "c3", H2).expect("join c3 on host 2");
        let all = overlay::endpoints(&store2, &created).expect("endpoints");
        vxlan::sync(&mut Netlink::open().expect("netlink"), &created, H2, &all).expect("sync");
        e3
    });
    plug(
        "sk-i16-h2",
        "sk-i16-c3",
        "sk-i16-c3h",
        &bridge,
        e3.ip,
        mac(&e3),
    );
    let sync1 = || {
        in_ns("sk-i16-h1", || {
            let all = overlay::endpoints(&store1, &created).expect("endpoints");
            vxlan::sync(&mut Netlink::open().expect("netlink"), &created, H1, &all)
                .expect("sync on host 1");
        })
    };
    sync1();
    let later = ping("sk-i16-c1", e3.ip);
    assert!(later.status.success(), "{later:?}");

    // c2 goes; host 1's sync drops its entries and keeps c3's.
    sh(&["ip", "netns", "del", "sk-i16-c2"]);
    in_ns("sk-i16-h2", || overlay::leave(&store2, &created, &e2)).expect("leave c2");
    sync1();
    let fdb = output(&["bridge", "-n", "sk-i16-h1", "fdb", "show", "dev", &vx]);
    assert!(
        // (the bridge's own learned entry for c2 ages out by itself: only the VXLAN's counts)
        !fdb.contains(&format!("{} dst", e2.mac)) && fdb.contains(&format!("{} dst {H2}", e3.mac)),
        "{fdb}"
    );
    let neigh = output(&["ip", "-n", "sk-i16-h1", "neigh", "show", "dev", &vx]);
    assert!(
        !neigh.contains(&format!("{} ", e2.ip)) && neigh.contains(&e3.mac),
        "{neigh}"
    );

    // The last container leaves each host: its records and the data path go.
    for (host, container, endpoint, store) in [
        ("sk-i16-h2", "sk-i16-c3", &e3, &store2),
        ("sk-i16-h1", "sk-i16-c1", &e1, &store1),
    ] {
        sh(&["ip", "netns", "del", container]);
        in_ns(host, || {
            overlay::leave(store, &created, endpoint).expect("leave");
            let mut nl = Netlink::open().expect("netlink");
            vxlan::tear_down(&mut nl, &created).expect("tear down");
        });
        let links = output(&["ip", "-n", host, "-o", "link", "show"]);
        assert!(!links.contains(&vx) && !links.contains(&bridge), "{links}");
        let fdb = output(&["bridge", "-n", host, "fdb", "show"]);
        assert!(!fdb.contains(" dst 10.216."), "{fdb}");
    }
    let removed = networking("sk-i16-h2", ROOTS[1], &["rm", "sk-i16-net"]);
    assert!(removed.status.success(), "{removed:?}");
    let ls = networking("sk-i16-h1", ROOTS[0], &["ls"]);
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains("sk-i16-net"),
        "{ls:?}"
    );

    // A network that is gone cannot be joined.
    let late = in_ns("sk-i16-h1", || overlay::join(&store1, &created, "late", H1));
    assert!(matches!(late, Err(OverlayError::NotFound(_))), "{late:?}");

    // Two hosts joining at once, four containers each: eight different addresses, because
    // each is taken by a transaction.
    let busy_net = in_ns("sk-i16-h1", || {
        overlay::create_network(&store1, "sk-i16-race", None, &"ef".repeat(32))
    })
    .expect("a second network");
    let joined: Vec<overlay::Endpoint> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let (ns, host) = if i % 2 == 0 {
                    ("sk-i16-h1", H1)
                } else {
                    ("sk-i16-h2", H2)
                };
                let net = &busy_net;
                scope.spawn(move || {
                    // A client of its own, connected from inside its host's namespace.
                    let store = Etcd::new(STORE).expect("store URL");
                    in_ns(ns, || overlay::join(&store, net, &format!("r{i}"), host))
                        .expect("join at once")
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a joining thread"))
            .collect()
    });
    let mut ips: Vec<Ipv4Addr> = joined.iter().map(|e| e.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 8, "{joined:?}");
    in_ns("sk-i16-h2", || {
        for endpoint in &joined {
            overlay::leave(&store2, &busy_net, endpoint).expect("leave");
        }
        overlay::remove_network(&store2, "sk-i16-race").expect("rm the second network");
    });

    let left = in_ns("sk-i16-h1", || store1.list(overlay::PREFIX)).expect("list");
    assert!(left.is_empty(), "records left in etcd: {left:?}");

    // etcd gone: local networks are still listed, overlay commands say what failed.
    if let Some(mut etcd) = cleanup.etcd.take() {
        let _ = etcd.kill();
        let _ = etcd.wait();
    }
    let ls = networking("sk-i16-h1", ROOTS[0], &["ls"]);
    let said = String::from_utf8_lossy(&ls.stderr);
    assert!(
        ls.status.success() && String::from_utf8_lossy(&ls.stdout).contains("bridge"),
        "{ls:?}"
    );
    assert!(said.contains("unreachable"), "{said}");
    let create = networking(
        "sk-i16-h1",
        ROOTS[0],
        &["create", "-d", "overlay", "sk-i16-x"],
    );
    let said = String::from_utf8_lossy(&create.stderr);
    assert!(
        !create.status.success()
            && said.contains("cluster store http://10.216.0.1:23790 unreachable"),
        "{said}"
    );
    drop(cleanup);
}
