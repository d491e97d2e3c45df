//! `inspect`: the details of containers (and images, networks, volumes) as JSON. (First version.)

use clap::Args;
use namespaces::RootArgs;

/// `inspect`'s flags.
#[derive(Args)]
pub struct InspectArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Format the output with a Go template
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only this kind of object: container, image, network or volume
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// The objects
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// `inspect`.
pub fn command(args: InspectArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match crate::lifecycle::find(root, name) {
            Ok(record) => found.push(container_json(&record)),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match &args.format {
        Some(format) => {
            for value in &found {
                println!("{}", crate::format::render(format, value)?);
            }
        }
        None => {
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&found, &mut serializer)?;
            println!("{}", String::from_utf8_lossy(&out));
        }
    }
    Ok(i32::from(failed))
}

/// Docker's JSON of a container.
pub fn container_json(record: &crate::container::Record) -> serde_json::Value {
    let state = &record.state;
    serde_json::json!({
        "Id": record.id,
        "Created": record.created,
        "Path": record.config.entrypoint.iter().chain(&record.config.cmd).next(),
        "Args": record.config.entrypoint.iter().chain(&record.config.cmd).skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state.status.as_str(),
            "Running": state.status == namespaces::record::Status::Running,
            "Paused": state.status == namespaces::record::Status::Paused,
            "Restarting": state.status == namespaces::record::Status::Restarting,
            "OOMKilled": state.oom_killed,
            "Dead": state.status == namespaces::record::Status::Dead,
            "Pid": state.pid.map_or(0, |p| p.pid),
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": state.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": state.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": record.image_id,
        "Name": format!("/{}", record.name),
        "RestartCount": state.restart_count,
        "Config": record.config,
    })
}
