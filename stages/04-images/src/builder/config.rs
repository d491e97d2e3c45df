//! The Dockerfile's view of a config and the image spec's, both ways.
//!
//! The Dockerfile front end works on [`ImageConfig`]: what instructions change. An image stores
//! the OCI runtime config (`oci-spec`'s [`Config`], image spec `config.md`): `Env`, `Cmd`,
//! `Entrypoint`, `WorkingDir`, `User`, `ExposedPorts`, `Labels`, `Volumes`, `StopSignal`. A
//! build reads the base image's config into an [`ImageConfig`] ([`from_oci`]) and writes the
//! config after each step back ([`to_oci`]).
//!
//! Four things a Dockerfile can set have no field in the OCI config: `SHELL`, `HEALTHCHECK`,
//! `ONBUILD` (Docker keeps them in its own config format) and `MAINTAINER` (the image's
//! `author`, outside the runtime config). They act on the rest of the build (SHELL changes how
//! later shell forms run) and appear in the history, but the image does not keep them.

use std::collections::HashMap;

use oci_spec::image::Config;

use crate::dockerfile::ImageConfig;

// ANCHOR: to_oci
/// The OCI runtime config of an image whose Dockerfile config is `config`. Fields the
/// Dockerfile does not govern are kept from `base`, the parent image's config.
pub fn to_oci(config: &ImageConfig, base: &Config) -> Config {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let list = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let mut out = base.clone();
    out.set_env(list(config.env.clone()));
    out.set_cmd(config.cmd.clone());
    out.set_entrypoint(config.entrypoint.clone());
    out.set_working_dir(text(&config.working_dir));
    out.set_user(text(&config.user));
    out.set_exposed_ports(list(config.exposed_ports.iter().cloned().collect()));
    out.set_labels((!config.labels.is_empty()).then(|| {
        config
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>()
    }));
    out.set_volumes(list(config.volumes.iter().cloned().collect()));
    out.set_stop_signal(config.stop_signal.clone());
    out
}
// ANCHOR_END: to_oci

/// The Dockerfile's view of an image's runtime config: where a build FROM it starts.
pub fn from_oci(config: &Config) -> ImageConfig {
    ImageConfig {
        env: config.env().clone().unwrap_or_default(),
        cmd: config.cmd().clone(),
        entrypoint: config.entrypoint().clone(),
        working_dir: config.working_dir().clone().unwrap_or_default(),
        user: config.user().clone().unwrap_or_default(),
        exposed_ports: config.exposed_ports().iter().flatten().cloned().collect(),
        labels: config
            .labels()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        volumes: config.volumes().iter().flatten().cloned().collect(),
        stop_signal: config.stop_signal().clone(),
        ..ImageConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{BuildArgs, Dockerfile};

    fn planned(text: &str) -> ImageConfig {
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        let args = BuildArgs::new();
        let plan = df
            .single_stage(&args)
            .unwrap()
            .plan(&ImageConfig::scratch(), &args)
            .unwrap();
        plan.steps.last().unwrap().config.clone()
    }

    #[test]
    fn every_field_a_dockerfile_sets_reaches_the_oci_config() {
        let config = planned(
            "FROM scratch\nENV A=1\nWORKDIR /app\nUSER app:staff\nEXPOSE 80 53/udp\n\
             LABEL version=1.0 \"name\"=\"skiff demo\"\nVOLUME /data\nSTOPSIGNAL SIGQUIT\n\
             ENTRYPOINT [\"/bin/app\"]\nCMD [\"--serve\"]\n",
        );
        let oci = to_oci(&config, &Config::default());
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            oci.env().as_deref(),
            Some(
                strings(&[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "A=1"
                ])
                .as_slice()
            )
        );
        assert_eq!(
            oci.entrypoint().as_deref(),
            Some(&["/bin/app".to_string()][..])
        );
        assert_eq!(oci.cmd().as_deref(), Some(&["--serve".to_string()][..]));
        assert_eq!(oci.working_dir().as_deref(), Some("/app"));
        assert_eq!(oci.user().as_deref(), Some("app:staff"));
        assert_eq!(
            oci.exposed_ports().as_deref(),
            Some(strings(&["53/udp", "80/tcp"]).as_slice())
        );
        let labels = oci.labels().clone().unwrap();
        assert_eq!(labels["version"], "1.0");
        assert_eq!(labels["name"], "skiff demo");
        assert_eq!(oci.volumes().as_deref(), Some(&["/data".to_string()][..]));
        assert_eq!(oci.stop_signal().as_deref(), Some("SIGQUIT"));
        // And back: what a build FROM this image starts with.
        assert_eq!(from_oci(&oci), config);
    }

    #[test]
    fn unset_fields_stay_out_and_unknown_ones_are_kept() {
        let oci = to_oci(&ImageConfig::default(), &Config::default());
        assert_eq!(oci, Config::default());
        // A field the Dockerfile never touches survives from the base.
        let mut base = Config::default();
        base.set_env(Some(vec!["OLD=1".into()]));
        base.set_cmd(Some(vec!["sh".into()]));
        let config = from_oci(&base);
        assert_eq!(config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        let mut changed = config.clone();
        changed.cmd = None;
        let oci = to_oci(&changed, &base);
        assert_eq!(oci.cmd(), &None);
        assert_eq!(oci.env().as_deref(), Some(&["OLD=1".to_string()][..]));
    }
}
