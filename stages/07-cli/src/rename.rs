//! `rename`: a container's name changed, everywhere it is used: its record (under the store's
//! lock, so the new name is as unique as a new container's) and its networks, where the other
//! containers resolve it by name. See docker-rename(1).

use std::path::Path;

use namespaces::records::{RecordError, check_name};

use crate::container::Record;
use crate::lifecycle;

// ANCHOR: rename
/// Renames `record` to `name`.
pub fn rename(root: &Path, record: &Record, name: &str) -> anyhow::Result<()> {
    let name = name.strip_prefix('/').unwrap_or(name);
    check_name(name)?;
    if record.name == name {
        anyhow::bail!("Renaming a container with the same name as its current name");
    }
    {
        let records = lifecycle::store(root);
        let locked = records.lock()?;
        locked.check_name_free(name, &record.id)?;
        locked
            .update::<crate::spec::RunArgs>(&record.id, |r| {
                r.name = name.to_string();
                r.spec.volumes.network.network.name = Some(name.to_string());
            })?
            .ok_or_else(|| RecordError::NoSuchContainer(record.id.clone()))?;
    }
    for network in networking::store::rename(root, &record.id, name)? {
        networking::hosts::rewrite(root, &network)?;
    }
    let mut renamed = record.clone();
    renamed.name = name.to_string();
    crate::events::emit(
        root,
        "rename",
        &renamed,
        &[("oldName", format!("/{}", record.name))],
    );
    Ok(())
}
// ANCHOR_END: rename
