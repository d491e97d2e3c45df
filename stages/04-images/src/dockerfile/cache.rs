//! The build cache: when a step can reuse the result of an earlier build instead of running.
//!
//! `docker build` reuses a step's result when everything that decides it is unchanged: what came
//! before, the instruction, and for COPY and ADD the files copied (Dockerfile reference, and
//! Docker's "Build cache" guide: "for ADD and COPY, the contents of the files are examined"; "the
//! last-modified and last-accessed times of the files are not considered"). A RUN is *not* run
//! to see whether its result would differ: `RUN apt-get update` stays cached until something
//! before it changes.
//!
//! The key of a step is a hash of:
//!
//! - the key of the previous step (for the first step, the base image's id): keys form a chain,
//!   so a change anywhere invalidates that step and every step after it;
//! - the instruction's normalised text after substitution (`COPY ["a","/x/"]`);
//! - for RUN, the build arguments it can see (`NAME=value`): they reach the command through its
//!   environment, not its text, so `--build-arg V=2` must change the key;
//! - for COPY and ADD, the digest of what is copied ([`super::context::CopyPlan::digest`]):
//!   every file's relative path, type, mode, owner and contents, in sorted order.
//!
//! An unchanged rebuild therefore finds every key, and yields the same layers and image.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::instruction::Instruction;
use super::plan::Step;

/// Feeds one named, length-prefixed field to a hash, so that no two different lists of fields
/// can produce the same bytes (`a` + `bc` and `ab` + `c` stay apart).
pub(crate) fn field(hasher: &mut Sha256, name: &str, value: &str) {
    hasher.update(format!("{name} {}:", value.len()).as_bytes());
    hasher.update(value.as_bytes());
    hasher.update(b"\n");
}

/// The SHA-256 of a file's contents, as hex, read in blocks so that size does not matter.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_reader(File::open(path)?)
}

/// The SHA-256 of what `file` holds from where it stands, as hex.
pub fn sha256_reader(mut file: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

// ANCHOR: cache_key
/// The cache key of `step`: `sha256:<hex>`. `previous` is the key of the step before it, or
/// the id of the base image for the first step; `copied` is the digest of what a COPY or ADD
/// copies (ignored for other instructions).
pub fn cache_key(previous: &str, step: &Step, copied: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    field(&mut hasher, "skiff build cache", "1");
    field(&mut hasher, "previous", previous);
    field(&mut hasher, "instruction", &step.instruction.to_string());
    match &step.instruction {
        Instruction::Run(_) => {
            for arg in &step.build_args {
                field(&mut hasher, "build-arg", arg);
            }
        }
        Instruction::Copy(_) | Instruction::Add(_) => {
            field(&mut hasher, "copied", copied.unwrap_or_default());
        }
        _ => {}
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
// ANCHOR_END: cache_key

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{BuildArgs, Dockerfile, ImageConfig};

    fn steps(text: &str, args: &[(&str, &str)]) -> Vec<Step> {
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        let args: BuildArgs = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let stage = df.single_stage(&args).unwrap();
        stage.plan(&ImageConfig::scratch(), &args).unwrap().steps
    }

    fn keys(text: &str, args: &[(&str, &str)]) -> Vec<String> {
        let mut previous = "sha256:base".to_string();
        steps(text, args)
            .iter()
            .map(|s| {
                previous = cache_key(&previous, s, Some("file:abc"));
                previous.clone()
            })
            .collect()
    }

    const FILE: &str = "FROM scratch\nARG V\nENV A=1\nRUN echo $V\nCOPY x /x\nCMD [\"/x\"]\n";

    #[test]
    fn unchanged_build_has_the_same_keys() {
        let first = keys(FILE, &[("V", "1")]);
        assert_eq!(first, keys(FILE, &[("V", "1")]));
        assert_eq!(first.len(), 5);
        assert!(
            first
                .iter()
                .all(|k| k.starts_with("sha256:") && k.len() == 71)
        );
        // Comments, blank lines, spacing and case do not change what a step does.
        let reformatted =
            "# build\nfrom scratch\narg V\n\nenv A=1\nRUN echo $V\ncopy  x  /x\nCMD [ \"/x\" ]\n";
        assert_eq!(first, keys(reformatted, &[("V", "1")]));
    }

    #[test]
    fn a_change_invalidates_that_step_and_the_rest() {
        let first = keys(FILE, &[("V", "1")]);
        let changed = keys(&FILE.replace("A=1", "A=2"), &[("V", "1")]);
        assert_eq!(first[0], changed[0], "ARG V is before the change");
        assert!(first[1..].iter().zip(&changed[1..]).all(|(a, b)| a != b));
    }

    #[test]
    fn build_args_reach_the_key_of_run() {
        let one = keys(FILE, &[("V", "1")]);
        let two = keys(FILE, &[("V", "2")]);
        assert_eq!(one[..2], two[..2], "ARG and ENV do not show the value");
        assert_ne!(one[2], two[2], "RUN sees V in its environment");
    }

    #[test]
    fn copied_content_reaches_the_key_of_copy_only() {
        let s = steps(FILE, &[]);
        let (env, copy) = (&s[1], &s[3]);
        assert_ne!(
            cache_key("p", copy, Some("file:1")),
            cache_key("p", copy, Some("file:2"))
        );
        assert_eq!(
            cache_key("p", env, Some("file:1")),
            cache_key("p", env, Some("file:2"))
        );
        assert_ne!(cache_key("p", env, None), cache_key("q", env, None));
    }

    #[test]
    fn file_digest_reads_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![7u8; 200_000]).unwrap();
        let a = sha256_file(&path).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(a, sha256_file(&path).unwrap());
    }
}
