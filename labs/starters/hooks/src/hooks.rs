//! Your pieces called from a feature's hooks, in the parent, while the launch runs: a
//! `todo!()` or an error there becomes the launch's [`FeatureError`], so the launch cleans up
//! what it made so far, as after any failed start, and the run ends with the piece's name.

use chroot::FeatureError;

use crate::starter::written;

/// Runs `piece` inside a hook.
pub fn in_hook<T>(piece: impl FnOnce() -> anyhow::Result<T>) -> Result<T, FeatureError> {
    match written(piece) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(FeatureError::msg(format!("{e:#}"))),
        Err(missing) => Err(FeatureError::msg(missing.to_string())),
    }
}
