//! `POST /build`: what `docker build` sends when it talks to a daemon. The client packs the
//! build context (the directory, less what `.dockerignore` leaves out) into a tar and sends it
//! as the body; the daemon unpacks it, and runs the classic builder on it — here stage 04's
//! [`images::builder::build`], the one `skiff build` runs — streaming what the builder prints as
//! JSON lines: `{"stream":"Step 1/3 : FROM busybox\n"}`, then `{"aux":{"ID":"sha256:..."}}`
//! with the image's id, which the clients read (`-q`, `--iidfile`, the SDK's `images.build`).
//!
//! Query parameters as v1.41 has them: `t` (several), `dockerfile` (a path inside the
//! context), `buildargs` and `labels` (JSON objects), `nocache`, `q`; `rm` and `forcerm` are
//! accepted and change nothing (the builder never keeps a step's container).

use std::cell::RefCell;
use std::io::Write;
use std::path::{Component, Path};

use images::builder::{BuildError, BuildOptions};
use images::{ImageRef, Store};
use serde_json::{Map, Value, json};

use super::http::{Conn, Request};
use super::images::JsonStream;
use super::{ApiError, Reply, Service};

/// What the builder prints, one JSON `stream` line per line of text.
struct Lines<'s, 'c> {
    stream: &'s RefCell<JsonStream<'c>>,
    pending: Vec<u8>,
}

impl Write for Lines<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            self.stream.borrow_mut().send(&json!({ "stream": text }));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON object of strings from query parameter `key` (`buildargs`, `labels`); a `null`
/// value (a build arg the client's environment did not have) is left out.
fn string_map(request: &Request, key: &str) -> Result<Vec<(String, String)>, ApiError> {
    let Some(text) = request.param(key).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let map: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| ApiError::new(400, format!("bad {key}: {e}: give a JSON object")))?;
    let mut pairs = Vec::new();
    for (k, v) in map {
        match v {
            Value::String(s) => pairs.push((k, s)),
            Value::Null => {}
            other => pairs.push((k, other.to_string())),
        }
    }
    Ok(pairs)
}

/// Stage 04's build failure with Docker's status, when it fails before any step ran: a
/// Dockerfile that does not parse or plan is the client's mistake (400), a FROM image the
/// store lacks is 404.
fn api_error(error: &BuildError) -> ApiError {
    let status = match error {
        BuildError::Dockerfile(_) | BuildError::Invalid { .. } => 400,
        BuildError::NoBaseImage { .. } => 404,
        _ => 500,
    };
    ApiError::new(status, error.to_string())
}

/// Unpacks the context tar (uncompressed, as the docker CLI sends it unless `--compress`)
/// into `dir`. The tar crate's unpack refuses entries that would land outside `dir` (`..`,
/// through a symbolic link).
fn unpack_context(tar_file: &Path, dir: &Path) -> Result<(), ApiError> {
    let mut magic = [0u8; 3];
    let mut file = std::fs::File::open(tar_file)?;
    let n = std::io::Read::read(&mut file, &mut magic)?;
    let magic = &magic[..n];
    std::io::Seek::rewind(&mut file)?;
    if magic.starts_with(&[0x1f, 0x8b]) || magic.starts_with(b"BZh") {
        return Err(ApiError::new(
            400,
            "compressed build context: skiff takes an uncompressed tar (build without --compress)",
        ));
    }
    std::fs::create_dir_all(dir)?;
    tar::Archive::new(file)
        .unpack(dir)
        .map_err(|e| ApiError::new(400, format!("the build context is not a tar: {e}")))
}

// ANCHOR: build
/// `POST /build?t=NAME&dockerfile=PATH&buildargs=JSON&nocache=1&q=1`, the context tar as body.
pub fn build(
    service: &Service,
    conn: &mut Conn,
    request: &Request,
    reader: &mut super::http::Reader,
) -> Reply {
    // The context goes to a file as it arrives (a context is as big as it is), before anything
    // else may answer: the connection stays in step whatever the answer.
    let store = Store::open(&service.root).map_err(|e| ApiError::new(500, e.to_string()))?;
    let context_tar = store.temp_path("api-build-context");
    let in_step = super::http::body_into_file(request, reader, conn, &context_tar);
    let reply = match &in_step {
        Ok(_) => build_from(&store, conn, request, &context_tar),
        Err(e) => Err(ApiError::new(
            400,
            format!("read the build context from the request: {e}"),
        )),
    };
    let _ = std::fs::remove_file(&context_tar);
    match in_step {
        Ok(true) => reply,
        _ => match reply {
            Ok(_) => Ok(super::Next::Close),
            Err(e) => super::error(conn, request, e.status, &e.message)
                .map(|()| super::Next::Close)
                .map_err(ApiError::from),
        },
    }
}

/// The build itself, its context's tar in `context_tar`.
fn build_from(store: &Store, conn: &mut Conn, request: &Request, context_tar: &Path) -> Reply {
    let tags = request
        .query
        .iter()
        .filter(|(k, v)| k == "t" && !v.is_empty())
        .map(|(_, v)| ImageRef::parse_tag(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let dockerfile = request
        .param("dockerfile")
        .filter(|d| !d.is_empty())
        .unwrap_or("Dockerfile");
    if Path::new(dockerfile)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ApiError::new(
            400,
            format!("dockerfile {dockerfile}: give a path inside the build context"),
        ));
    }
    let build_args: Vec<String> = string_map(request, "buildargs")?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let build_args = images::builder::parse_build_args(&build_args)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let labels = string_map(request, "labels")?;
    let quiet = request.flag("q");

    let context = store.temp_path("api-build");
    let result = unpack_context(context_tar, &context).and_then(|()| {
        let path = context.join(dockerfile);
        add_labels(&path, &labels)?;
        let options = BuildOptions {
            context: context.clone(),
            dockerfile: Some(path),
            tags,
            build_args,
            no_cache: request.flag("nocache"),
            quiet,
            forward_signals: false,
        };
        Ok(run(store, &options, conn))
    });
    let _ = std::fs::remove_dir_all(&context);
    result?
}
// ANCHOR_END: build

/// Runs the build, its output streamed; the image's id as `aux` at the end.
fn run(store: &Store, options: &BuildOptions, conn: &mut Conn) -> Reply {
    let stream = RefCell::new(JsonStream::new(conn));
    let built = {
        let mut out = Lines {
            stream: &stream,
            pending: Vec::new(),
        };
        let mut err = Lines {
            stream: &stream,
            pending: Vec::new(),
        };
        images::builder::build(store, options, &mut out, &mut err)
    };
    let mut stream = stream.into_inner();
    match built {
        Ok(built) => {
            stream.send(&json!({ "aux": { "ID": built.id.as_str() } }));
            if options.quiet {
                stream.send(&json!({ "stream": format!("{}\n", built.id) }));
            }
            stream.finish(Ok(()))
        }
        // A RUN's exit code goes in the error line, as Docker's classic builder puts it: the
        // CLI exits with it.
        Err(e @ BuildError::RunFailed { code, .. }) => {
            let message = e.to_string();
            stream.send(&json!({
                "errorDetail": { "code": code, "message": message },
                "error": message,
            }));
            stream.finish(Ok(()))
        }
        Err(e) => stream.finish(Err(api_error(&e))),
    }
}

/// `labels`, as Docker's classic builder applies them: a LABEL step added at the end of the
/// Dockerfile (so `Step N/N : LABEL ...` shows in the output).
fn add_labels(dockerfile: &Path, labels: &[(String, String)]) -> Result<(), ApiError> {
    if labels.is_empty() {
        return Ok(());
    }
    let mut text = std::fs::read_to_string(dockerfile).map_err(|e| {
        ApiError::new(
            400,
            format!(
                "Cannot locate specified Dockerfile: {}: {e}",
                dockerfile.display()
            ),
        )
    })?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("LABEL");
    for (k, v) in labels {
        text.push_str(&format!(" {}={}", json!(k), json!(v)));
    }
    text.push('\n');
    std::fs::write(dockerfile, text)?;
    Ok(())
}
