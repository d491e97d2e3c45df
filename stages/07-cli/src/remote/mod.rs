//! `skiff -H URI ...`: the CLI as a client of any daemon that speaks the Docker Engine API:
//! `skiff system service`, or dockerd itself. The seed draws Docker as a client talking to a
//! daemon over a socket, "and the client can communicate with more than one daemon": with a
//! host given (`-H`, else `SKIFF_HOST`, else `DOCKER_HOST`), the container, image, network,
//! volume and system commands become requests to it instead of calls on the local store.
//!
//! The output is the local mode's: each command turns the daemon's JSON into the rows the local
//! command prints (`ps`'s, `images`'...) and hands them to the same printers, so a column, a
//! `--format` template or an error reads the same whichever side answered. A command with no
//! request yet says so and fails; it never quietly runs on the local store instead.
//!
//! - [`http`]: the requests, the version agreed with `/_ping`, errors, and the hijack;
//! - [`streams`]: multiplexed frames, raw streams, and a terminal relayed both ways;
//! - [`run`], [`containers`], [`copy`], [`image`], [`inspect`] and [`objects`]: the commands.
//!
//! Reference: docker(1) (`-H`, `DOCKER_HOST`), the Engine API v1.41.

pub mod containers;
pub mod copy;
pub mod http;
pub mod image;
pub mod inspect;
pub mod objects;
pub mod run;
pub mod streams;

use anyhow::bail;

use crate::cli::{Command, ContainerCommand, ContainerGroupCommand};
use http::{Client, Uri};

// ANCHOR: host
/// The daemon to be a client of: `-H`, else `SKIFF_HOST`, else `DOCKER_HOST` (a docker user's
/// setting is honoured only when nothing says skiff's own); `None` works on the local store.
pub fn host(flag: Option<&str>) -> Option<String> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    flag.map(str::to_string)
        .or_else(|| set("SKIFF_HOST"))
        .or_else(|| set("DOCKER_HOST"))
}
// ANCHOR_END: host

/// The daemon `command` goes to, if any: [`host`], except for commands that never go to one
/// because they do not touch an engine (completion, man pages) or they are the engine (a
/// container's monitor; `system service` when only the environment names a daemon, since a
/// shell set up for docker clients still starts its daemon here).
pub fn chosen(flag: Option<&str>, command: &Command) -> Option<String> {
    let never = matches!(
        command,
        Command::Completion(_)
            | Command::Man(_)
            | Command::ContainerMonitor(_)
            | Command::Network {
                command: crate::connect::NetworkGroup::Networks(
                    networking::cli::NetworkCommand::DnsServe { .. }
                )
            }
    );
    if never || (is_service(command) && flag.is_none()) {
        return None;
    }
    host(flag)
}

/// `system service`: the daemon itself. The skiff processes it starts (monitors, exec helpers,
/// DNS servers) must work on its store whatever its environment says of daemons, so `main`
/// removes `SKIFF_HOST` and `DOCKER_HOST` from it first.
pub fn is_service(command: &Command) -> bool {
    matches!(
        command,
        Command::System {
            command: crate::prune::SystemCommand::Service(_)
        }
    )
}

/// The exit code of a remote command's own failure: 125 for `run`, `create` and `start`, 1
/// for the others, as the docker CLI's.
pub fn failure_code(command: &Command) -> i32 {
    match command {
        Command::Container(c)
        | Command::ContainerGroup {
            command: ContainerGroupCommand::Common(c),
        } if matches!(
            c,
            ContainerCommand::Run(_) | ContainerCommand::Create(_) | ContainerCommand::Start(_)
        ) =>
        {
            chroot::cli::EXIT_ENGINE
        }
        _ => 1,
    }
}

// ANCHOR: execute
/// Runs `command` as requests to the daemon at `host`.
pub fn execute(host: &str, command: Command) -> anyhow::Result<i32> {
    // What cannot go is refused before any connection: the answer does not depend on one.
    if !objects::remote(&command) {
        return Err(local_only());
    }
    let client = Client::connect(Uri::parse(host)?)?;
    match command {
        Command::Container(command)
        | Command::ContainerGroup {
            command: ContainerGroupCommand::Common(command),
        } => containers::execute(&client, command),
        other => objects::execute(&client, other),
    }
}
// ANCHOR_END: execute

/// The error for a command that has no request yet: named as the user typed it.
pub fn local_only() -> anyhow::Error {
    let name = typed_command(std::env::args().skip(1));
    anyhow::anyhow!(
        "`skiff {name}` works on the local store only, it cannot go to a daemon yet: run it without -H, SKIFF_HOST and DOCKER_HOST"
    )
}

/// The command's words as typed, without `-H URI`: `ps`, `network connect`, `image save`.
fn typed_command(args: impl Iterator<Item = String>) -> String {
    let mut words = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "-H" || arg == "--host" {
            args.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        let group = matches!(
            arg.as_str(),
            "container" | "image" | "network" | "volume" | "system"
        );
        words.push(arg);
        if !group {
            break;
        }
        if let Some(next) = args.next() {
            words.push(next);
        }
        break;
    }
    words.join(" ")
}

/// Each of `keys` in turn, as the docker CLI does for `stop a b c`: the key printed when the
/// request succeeded, the daemon's error printed when not, and exit 1 if any failed.
pub fn each(keys: &[String], mut act: impl FnMut(&str) -> anyhow::Result<()>) -> i32 {
    let mut failed = false;
    for key in keys {
        match act(key) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("{}", message(&e));
                failed = true;
            }
        }
    }
    i32::from(failed)
}

/// An error as the docker CLI prints it: the daemon's words as they are (`Error response
/// from daemon: ...`), anything else after `Error: `.
pub fn message(error: &anyhow::Error) -> String {
    let text = chroot::cli::one_line(error);
    if error.downcast_ref::<http::DaemonError>().is_some() {
        text
    } else {
        format!("Error: {text}")
    }
}

/// A path segment: a name or id, escaped for a URL path.
pub fn segment(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A query string from pairs (`?a=1&b=x`), empty for none.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, &value);
    }
    let text = serializer.finish();
    if text.is_empty() {
        text
    } else {
        format!("?{text}")
    }
}

/// Docker's `filters` parameter from `--filter KEY=VALUE` flags: `{"KEY": {"VALUE": true}}`.
pub fn filters(flags: &[String]) -> anyhow::Result<Option<String>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for flag in flags {
        let Some((key, value)) = flag.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        let entry = map
            .entry(key.to_string())
            .or_insert_with(|| serde_json::json!({}));
        if let Some(values) = entry.as_object_mut() {
            values.insert(value.to_string(), serde_json::Value::Bool(true));
        }
    }
    Ok(Some(serde_json::Value::Object(map).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> String {
        typed_command(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn the_refused_command_is_named_as_typed() {
        assert_eq!(words(&["-H", "unix:///s", "cp", "a:/x", "."]), "cp");
        assert_eq!(
            words(&["--host", "tcp://h:1", "network", "prune"]),
            "network prune"
        );
        assert_eq!(words(&["image", "save", "-o", "x"]), "image save");
    }

    #[test]
    fn filters_are_dockers_json() {
        let flags = ["status=running".to_string(), "status=paused".into()];
        assert_eq!(
            filters(&flags).unwrap().unwrap(),
            r#"{"status":{"paused":true,"running":true}}"#
        );
        assert!(filters(&["bad".into()]).is_err());
        assert_eq!(
            query([("a", "1".into()), ("b", "x y".into())]),
            "?a=1&b=x+y"
        );
    }

    #[test]
    fn versions_are_compared_as_numbers() {
        assert_eq!(http::lower_version("1.9", "1.41"), "1.9");
        assert_eq!(http::lower_version("1.43", "1.41"), "1.41");
        assert_eq!(http::lower_version("1.41", "1.41"), "1.41");
    }
}
