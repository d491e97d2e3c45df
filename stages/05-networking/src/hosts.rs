//! Names: how containers on a user-defined network find each other.
//!
//! Before Docker had its embedded DNS server it did this with `/etc/hosts`, and so does skiff
//! (the `dns` module adds a DNS server on top, for the programs that do not read this file).
//! Every container gets its own hosts file on the host (the caller bind-mounts it as the
//! container's `/etc/hosts`). It holds the usual localhost lines, then one line per container
//! on each of its networks, `IP<TAB>NAME HOSTNAME` (hosts(5): an address, then the names that
//! resolve to it). When a container joins or leaves a network, every file of that network is
//! written again, so the others see the change.
//!
//! The files are rewritten *in place*: opened, truncated, written. A bind mount pins an inode,
//! not a path; writing a new file and renaming it over the old one (the usual atomic way) would
//! leave the container looking at the old inode forever. The cost is a short moment during
//! which a reader may see a partial file, as with Docker's own rewrites.
//!
//! As in Docker, the default network `bridge` gives no names: a container there finds only
//! itself in its hosts file. See hosts(5) and nsswitch.conf(5).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::store::{self, Endpoint, Network, StoreError};

/// What can go wrong writing hosts files.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// A hosts file could not be written.
    #[error(
        "write hosts file {path}: {source}: is the container's directory still there and writable?"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// The network store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lines every hosts file starts with (Docker's).
pub const LOCALHOST_LINES: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// The names an endpoint answers to: its container name and its hostname (once if they are
/// the same), or the first 12 characters of the container id when it has neither; then the
/// aliases `network connect --alias` gave it.
fn names(endpoint: &Endpoint) -> String {
    let mut names = match (endpoint.name.as_str(), endpoint.hostname.as_str()) {
        ("", "") => endpoint.container_id.chars().take(12).collect(),
        (name, "") => name.to_string(),
        ("", hostname) => hostname.to_string(),
        (name, hostname) if name == hostname => name.to_string(),
        (name, hostname) => format!("{name} {hostname}"),
    };
    for alias in &endpoint.aliases {
        if !names.split(' ').any(|n| n == alias) {
            names.push(' ');
            names.push_str(alias);
        }
    }
    names
}

/// The hosts file of container `container_id`, given every network: the localhost lines, its
/// own address on each of its networks, then the other containers of its user-defined networks
/// (sorted by address).
pub fn render(container_id: &str, networks: &[Network]) -> String {
    let mut own = Vec::new();
    let mut others = Vec::new();
    for network in networks {
        let Some(me) = network.endpoint(container_id) else {
            continue;
        };
        own.push(me);
        if !network.is_default() {
            others.extend(
                network
                    .endpoints
                    .iter()
                    .filter(|e| e.container_id != container_id),
            );
        }
    }
    others.sort_by_key(|e| (e.ip, e.container_id.clone()));
    let mut text = LOCALHOST_LINES.to_string();
    for endpoint in own.into_iter().chain(others) {
        text.push_str(&format!("{}\t{}\n", endpoint.ip, names(endpoint)));
        // A network with IPv6: the same names for the IPv6 address, on the next line (Docker's).
        if let Some(ip6) = endpoint.ip6 {
            text.push_str(&format!("{ip6}\t{}\n", names(endpoint)));
        }
    }
    text
}

// ANCHOR: write_in_place
/// Replaces the contents of `path` without replacing the file: open, truncate, write. The inode
/// stays the same, so a bind mount of it shows the new contents.
pub fn write_in_place(path: &Path, contents: &str) -> Result<(), HostsError> {
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(contents.as_bytes())?;
        file.flush()
    };
    write().map_err(|source| HostsError::Write {
        path: path.to_path_buf(),
        source,
    })
}
// ANCHOR_END: write_in_place

// ANCHOR: rewrite
/// Rewrites the hosts file of every container on `network`, in place, after a container joined
/// or left it. Runs under the network store's lock and reads the networks afresh, so two
/// rewrites racing each other both write the latest state.
pub fn rewrite(root: &Path, network: &Network) -> Result<(), HostsError> {
    store::with_networks(root, |networks| {
        // The record may be gone: the default network's, after its last container left.
        let Some(current) = networks.iter().find(|n| n.id == network.id) else {
            return Ok(());
        };
        for endpoint in &current.endpoints {
            if endpoint.hosts_file.as_os_str().is_empty() {
                continue;
            }
            let contents = with_extra_hosts(
                render(&endpoint.container_id, networks),
                &endpoint.hosts_file,
            );
            write_in_place(&endpoint.hosts_file, &contents)?;
        }
        Ok(())
    })
}
// ANCHOR_END: rewrite

/// The container's `--add-host` lines (stage 02 keeps them beside its hosts file), put back
/// after the localhost lines, where Docker has them.
fn with_extra_hosts(rendered: String, hosts_file: &Path) -> String {
    let extra = std::fs::read_to_string(
        hosts_file.with_file_name(namespaces::filesystem::EXTRA_HOSTS_FILE),
    )
    .unwrap_or_default();
    match rendered.strip_prefix(LOCALHOST_LINES) {
        Some(rest) if !extra.is_empty() => format!("{LOCALHOST_LINES}{extra}{rest}"),
        _ => rendered,
    }
}

/// Rewrites one container's hosts file from the networks it is on now: for a container that
/// left a network but keeps running (a disconnect), whose file [`rewrite`] no longer covers.
pub fn rewrite_container(
    root: &Path,
    container_id: &str,
    hosts_file: &Path,
) -> Result<(), HostsError> {
    store::with_networks(root, |networks| {
        let contents = with_extra_hosts(render(container_id, networks), hosts_file);
        write_in_place(hosts_file, &contents)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CreateOptions, create, join, leave};
    use std::os::unix::fs::MetadataExt;

    fn with_subnet(name: &str, subnet: &str) -> CreateOptions {
        CreateOptions {
            subnet: Some(subnet.parse().expect("test subnet")),
            ..CreateOptions::new(name)
        }
    }

    #[test]
    fn hosts_names_each_endpoint_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let hosts = |n: &str| dir.path().join(format!("{n}.hosts"));
        create(root, with_subnet("app", "10.89.60.0/24")).unwrap();
        create(root, with_subnet("other", "10.89.61.0/24")).unwrap();
        let (_, _) = join(root, "app", "aaaa1", "web", "web", &hosts("a"), None).unwrap();
        let (_, _) = join(root, "app", "bbbb2", "db", "db-host", &hosts("b"), None).unwrap();
        let (_, _) = join(root, "app", "cccc3", "", "", &hosts("c"), None).unwrap();
        let (_, _) = join(root, "other", "dddd4", "x", "x", &hosts("d"), None).unwrap();
        let (_, _) = join(root, "bridge", "bbbb2", "db", "db-host", &hosts("b"), None).unwrap();
        let (_, _) = join(root, "bridge", "eeee5", "e", "e", &hosts("e"), None).unwrap();
        let networks = store::with_networks(root, |n| Ok::<_, StoreError>(n.to_vec())).unwrap();

        // This root's default network picked its own subnet: read the addresses it gave.
        let default = networks.iter().find(|n| n.is_default()).unwrap();
        let on_default = |id: &str| default.endpoint(id).unwrap().ip;
        let expected_b = format!(
            "{LOCALHOST_LINES}10.89.60.3\tdb db-host\n{}\tdb db-host\n\
             10.89.60.2\tweb\n10.89.60.4\tcccc3\n",
            on_default("bbbb2")
        );
        assert_eq!(render("bbbb2", &networks), expected_b);
        // On the default network a container finds only itself.
        assert_eq!(
            render("eeee5", &networks),
            format!("{LOCALHOST_LINES}{}\te\n", on_default("eeee5"))
        );
        assert_eq!(
            render("dddd4", &networks),
            format!("{LOCALHOST_LINES}10.89.61.2\tx\n")
        );
        assert_eq!(render("nobody", &networks), LOCALHOST_LINES);
    }

    #[test]
    fn hosts_name_aliases_after_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let hosts = |n: &str| dir.path().join(format!("{n}.hosts"));
        create(root, with_subnet("app", "10.89.64.0/24")).unwrap();
        join(root, "app", "aaaa1", "web", "web", &hosts("a"), None).unwrap();
        join(root, "app", "bbbb2", "db", "db", &hosts("b"), None).unwrap();
        let aliases = ["store".to_string(), "db".to_string()];
        let net = store::annotate(root, "app", "bbbb2", ("eth1", &aliases), false).unwrap();
        let db = net.endpoint("bbbb2").unwrap();
        assert_eq!(db.interface, "eth1");
        let networks = store::with_networks(root, |n| Ok::<_, StoreError>(n.to_vec())).unwrap();
        // `db` is its name already: said once.
        assert_eq!(
            render("aaaa1", &networks),
            format!("{LOCALHOST_LINES}10.89.64.2\tweb\n10.89.64.3\tdb store\n")
        );
    }

    #[test]
    fn hosts_rewrite_keeps_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let hosts_a = dir.path().join("a.hosts");
        let hosts_b = dir.path().join("b.hosts");
        std::fs::write(
            &hosts_a,
            "old contents, much longer than what comes next\n".repeat(50),
        )
        .unwrap();
        let inode = std::fs::metadata(&hosts_a).unwrap().ino();

        create(root, with_subnet("app", "10.89.62.0/24")).unwrap();
        let (net, _) = join(root, "app", "aaaa1", "web", "web", &hosts_a, None).unwrap();
        rewrite(root, &net).unwrap();
        let (net, _) = join(root, "app", "bbbb2", "db", "db", &hosts_b, None).unwrap();
        rewrite(root, &net).unwrap();
        let a = std::fs::read_to_string(&hosts_a).unwrap();
        assert_eq!(
            a,
            format!("{LOCALHOST_LINES}10.89.62.2\tweb\n10.89.62.3\tdb\n")
        );
        assert_eq!(std::fs::metadata(&hosts_a).unwrap().ino(), inode);
        let b = std::fs::read_to_string(&hosts_b).unwrap();
        assert!(b.ends_with("10.89.62.3\tdb\n10.89.62.2\tweb\n"), "{b}");

        let net = leave(root, "app", "bbbb2").unwrap();
        rewrite(root, &net).unwrap();
        let a = std::fs::read_to_string(&hosts_a).unwrap();
        assert_eq!(a, format!("{LOCALHOST_LINES}10.89.62.2\tweb\n"));
        assert_eq!(std::fs::metadata(&hosts_a).unwrap().ino(), inode);
        // The container that left, still running: its own file loses the network.
        rewrite_container(root, "bbbb2", &hosts_b).unwrap();
        assert_eq!(std::fs::read_to_string(&hosts_b).unwrap(), LOCALHOST_LINES);
    }

    #[test]
    fn hosts_rewrite_names_the_file_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let missing = dir.path().join("gone/hosts");
        create(root, with_subnet("app", "10.89.63.0/24")).unwrap();
        let (net, _) = join(root, "app", "aaaa1", "web", "web", &missing, None).unwrap();
        let err = rewrite(root, &net).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("write hosts file {}", missing.display())),
            "{err}"
        );
        // A network whose record is gone has no files left to write.
        let net = leave(root, "bridge", "nobody").unwrap();
        assert!(rewrite(root, &net).is_ok());
    }
}
