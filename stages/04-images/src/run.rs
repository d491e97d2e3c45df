//! What runs in a container of an image: the image's config combined with the command line,
//! exactly as Docker combines them.
//!
//! | image has        | `run IMAGE`                | `run IMAGE a b`        | `run --entrypoint x IMAGE a` |
//! |------------------|----------------------------|------------------------|------------------------------|
//! | Cmd only         | Cmd                        | `a b`                  | `x a`                        |
//! | Entrypoint only  | Entrypoint                 | Entrypoint `a b`       | `x a`                        |
//! | both             | Entrypoint Cmd             | Entrypoint `a b`       | `x a`                        |
//!
//! `--entrypoint` clears the image's Cmd too; `--entrypoint ""` clears the Entrypoint. Env,
//! WorkingDir and User come from the image unless `-e`, `-w` or `-u` say otherwise. See
//! Docker's "ENTRYPOINT and CMD interact" table in the Dockerfile reference.

use oci_spec::image::Config;

use crate::error::{ImageError, Result};

/// The process a container of an image runs, before `-e`/`-w` are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProcess {
    /// The argument vector.
    pub args: Vec<String>,
    /// The image's environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// The image's working directory, if it sets one.
    pub workdir: Option<String>,
    /// The image's user, if it sets one.
    pub user: Option<String>,
}

// ANCHOR: combine
/// Combines the image's `config` with `--entrypoint` and the command given after the image.
pub fn image_process(
    config: &Config,
    entrypoint: Option<&str>,
    command: &[String],
) -> Result<ImageProcess> {
    let image_entrypoint = config.entrypoint().clone().unwrap_or_default();
    let image_cmd = config.cmd().clone().unwrap_or_default();
    let args: Vec<String> = match entrypoint {
        // --entrypoint replaces the Entrypoint and drops the image's Cmd.
        Some("") => command.to_vec(),
        Some(flag) => std::iter::once(flag.to_string())
            .chain(command.iter().cloned())
            .collect(),
        None if command.is_empty() => image_entrypoint.into_iter().chain(image_cmd).collect(),
        None => image_entrypoint
            .into_iter()
            .chain(command.iter().cloned())
            .collect(),
    };
    if args.is_empty() {
        return Err(ImageError::Unsupported(
            "no command specified: the image has no Entrypoint or Cmd, so give one after the image name".into(),
        ));
    }
    let nonempty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    Ok(ImageProcess {
        args,
        env: config.env().clone().unwrap_or_default(),
        workdir: nonempty(config.working_dir()),
        user: nonempty(config.user()),
    })
}
// ANCHOR_END: combine

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    fn config(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> Config {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut builder = ConfigBuilder::default();
        if let Some(e) = entrypoint {
            builder = builder.entrypoint(strings(e));
        }
        if let Some(c) = cmd {
            builder = builder.cmd(strings(c));
        }
        builder.build().unwrap()
    }

    fn args(c: &Config, entrypoint: Option<&str>, command: &[&str]) -> Vec<String> {
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        image_process(c, entrypoint, &command).unwrap().args
    }

    #[test]
    fn dockers_table() {
        let cmd_only = config(None, Some(&["sh"]));
        assert_eq!(args(&cmd_only, None, &[]), ["sh"]);
        assert_eq!(args(&cmd_only, None, &["a", "b"]), ["a", "b"]);
        assert_eq!(args(&cmd_only, Some("x"), &["a"]), ["x", "a"]);
        let ep_only = config(Some(&["/ep"]), None);
        assert_eq!(args(&ep_only, None, &[]), ["/ep"]);
        assert_eq!(args(&ep_only, None, &["a"]), ["/ep", "a"]);
        let both = config(Some(&["/ep", "-v"]), Some(&["default"]));
        assert_eq!(args(&both, None, &[]), ["/ep", "-v", "default"]);
        assert_eq!(args(&both, None, &["mine"]), ["/ep", "-v", "mine"]);
        assert_eq!(args(&both, Some("x"), &[]), ["x"]);
        assert_eq!(args(&both, Some(""), &["sh"]), ["sh"]);
    }

    #[test]
    fn nothing_to_run_is_an_error() {
        let empty = config(None, None);
        let err = image_process(&empty, None, &[]).unwrap_err();
        assert!(err.to_string().contains("no command specified"), "{err}");
        assert!(image_process(&config(Some(&["/ep"]), None), Some(""), &[]).is_err());
    }
}
