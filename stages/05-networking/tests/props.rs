//! Property tests (proptest) for `-p`: whatever the text, [`PortMapping::parse`] answers without
//! panicking, and what it accepts holds what publishing relies on: a container port from 1 to
//! 65535, a host port that is 0 ("pick a free one") or in that range, never the IPv6 loopback
//! (no NAT can answer there), and the mapping written back as `-p` text parses to itself. `PROPTEST_CASES=N` runs more cases than the default few hundred.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use networking::firewall::{PortMapping, Protocol};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// `cases` random inputs per property, unless `PROPTEST_CASES` asks for another number. A
/// failing case is saved beside this file (`props.proptest-regressions`) and replayed first.
fn config(cases: u32) -> ProptestConfig {
    let mut config = if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(cases)
    };
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    config
}

/// The pieces a `-p` value is made of, good and bad.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..70_000).prop_map(|p| p.to_string()),
        prop::sample::select(&[
            "",
            ":",
            "::",
            "/",
            "/tcp",
            "/udp",
            "/sctp",
            "/TCP",
            "0",
            "00",
            "+80",
            "-1",
            "8000-8010",
            " 80",
            "80 ",
            "\u{663}",
            "0x50",
            "127.0.0.1",
            "0.0.0.0",
            "256.1.1.1",
            "1.2.3",
            "::1",
            "[::1]",
            "[::]",
            "[fd00::2]",
            "[",
            "]",
            "localhost",
            "\0",
        ])
        .prop_map(str::to_string),
        any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
    ]
}

/// `-p` as it is written: `[IP:][HOST:]CONTAINER[/PROTO]`.
fn mapping_text(m: &PortMapping) -> String {
    let ip = match m.host_ip {
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
        None => String::new(),
    };
    format!("{ip}:{}:{}/{}", m.host_port, m.container_port, m.protocol)
}

/// What every accepted mapping must hold.
fn well_formed(m: &PortMapping, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(m.container_port >= 1, "{:?} gave container port 0", text);
    prop_assert!(
        !m.host_ip.is_some_and(|ip| ip.is_loopback() && ip.is_ipv6()),
        "{:?}",
        text
    );
    let again = PortMapping::parse(&mapping_text(m)).map_err(|e| e.to_string());
    prop_assert_eq!(
        again.as_ref(),
        Ok(m),
        "{:?} written as {:?}",
        text,
        mapping_text(m)
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn port_specs_never_panic(text in any::<String>()) {
        if let Ok(m) = PortMapping::parse(&text) {
            well_formed(&m, &text)?;
        }
    }

    #[test]
    fn port_shaped_specs_hold_their_invariants(pieces in prop::collection::vec(piece(), 1..6)) {
        let text = pieces.concat();
        if let Ok(m) = PortMapping::parse(&text) {
            well_formed(&m, &text)?;
        }
    }

    #[test]
    fn every_good_spec_is_accepted_as_written(
        ip in prop::option::of(any::<Ipv4Addr>()),
        host in prop::option::of(any::<u16>()),
        container in 1u16..,
        udp in prop::option::of(any::<bool>()),
    ) {
        let mut text = String::new();
        if let Some(ip) = ip {
            text.push_str(&format!("{ip}:"));
        }
        if let Some(host) = host {
            text.push_str(&format!("{host}:"));
        } else if ip.is_some() {
            text.push(':');
        }
        text.push_str(&container.to_string());
        match udp {
            Some(true) => text.push_str("/udp"),
            Some(false) => text.push_str("/tcp"),
            None => {}
        }
        let m = PortMapping::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(m.container_port, container);
        prop_assert_eq!(m.host_port, host.unwrap_or(0));
        prop_assert_eq!(m.host_ip, ip.map(IpAddr::V4));
        let protocol = if udp == Some(true) { Protocol::Udp } else { Protocol::Tcp };
        prop_assert_eq!(m.protocol, protocol);
        well_formed(&m, &text)?;
    }
}
