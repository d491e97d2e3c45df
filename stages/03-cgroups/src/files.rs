//! Reading and writing cgroup files: the whole interface between skiff and the kernel's cgroup
//! controllers.
//!
//! A cgroup is a directory; its settings and counters are small text files in it. Setting a
//! limit is writing a number to a file, joining a cgroup is writing a pid to `cgroup.procs`. All
//! writes go through [`write()`], so every failure names the file and the value (as youki's
//! `write_cgroup_file` does). See cgroups(7) and the kernel's `cgroup-v1/` and `cgroup-v2.rst`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::CgroupError;

// ANCHOR: write
/// Writes `value` to the cgroup file `path`. The file must exist: the kernel creates every
/// control file, so a missing one means a controller that is not there.
pub fn write(path: &Path, value: impl AsRef<str>) -> Result<(), CgroupError> {
    write_each(path, std::slice::from_ref(&value))
}

/// [`write`] of each of `values` in turn, through one open of `path`: for files that take one
/// item per write(2), as v1's `devices.allow` takes one rule.
pub fn write_each(path: &Path, values: &[impl AsRef<str>]) -> Result<(), CgroupError> {
    let failed = |value: &str, source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let Some(first) = values.first() else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| failed(first.as_ref(), e))?;
    for value in values {
        // One write(2) each: the kernel parses each write as a whole.
        let value = value.as_ref();
        file.write_all(value.as_bytes())
            .map_err(|e| failed(value, e))?;
    }
    Ok(())
}
// ANCHOR_END: write

/// Reads a cgroup file.
pub fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file that holds one number (`memory.usage_in_bytes`, `pids.current`).
pub fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text,
    })
}

/// Reads `key`'s value from a flat keyed file, lines of `key value` (`memory.events`,
/// `cpu.stat`, v1's `memory.oom_control`). `None` when the file has no such line.
pub fn read_keyed(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let text = read(path)?;
    keyed_value(&text, key)
        .transpose()
        .map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            content: text.clone(),
        })
}

/// `key`'s value in the text of a flat keyed file.
pub fn keyed_value(text: &str, key: &str) -> Option<Result<u64, std::num::ParseIntError>> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse())
    })
}

/// Reads a file if it exists: `Ok(None)` when it does not.
pub fn read_u64_if_exists(path: &Path) -> Result<Option<u64>, CgroupError> {
    match read_u64(path) {
        Err(err) if err.is_not_found() => Ok(None),
        other => other.map(Some),
    }
}

/// The process ids in a cgroup (its `cgroup.procs`).
pub fn pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = read(&path)?;
    text.split_whitespace()
        .map(|word| {
            word.parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                content: text.clone(),
            })
        })
        .collect()
}

/// The first of `names` that exists in `dir`.
pub fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_are_read_by_key() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(Ok(3)));
        assert_eq!(keyed_value(text, "oom"), None);
        assert!(matches!(
            keyed_value("oom_kill x\n", "oom_kill"),
            Some(Err(_))
        ));
    }

    #[test]
    fn writes_need_an_existing_file_and_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pids.max");
        let err = write(&path, "10").unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("pids.max"), "{err}");
        std::fs::write(&path, "max\n").unwrap();
        write(&path, "10").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "10");
    }

    #[test]
    fn procs_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), "12\n345\n").unwrap();
        assert_eq!(pids(dir.path()).unwrap(), [12, 345]);
        std::fs::write(dir.path().join("cgroup.procs"), "").unwrap();
        assert!(pids(dir.path()).unwrap().is_empty());
    }
}
