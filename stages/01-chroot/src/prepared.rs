//! A container described before it exists: what runs, and the features around it.
//!
//! Each stage has a `prepare` that checks its flags and returns a [`Prepared`]; the next stage
//! calls it and adds its own features, or puts one of its own in a slot where it does the job
//! differently (stage 02 replaces the chroot of stage 01 with pivot_root). Nothing exists on the
//! host until [`Prepared::spawn`] runs the features' hooks, so a bad flag leaves nothing behind.

use crate::error::LaunchError;
use crate::launch::{self, Feature, Running, Slot};
use crate::process::Process;

// ANCHOR: prepared
/// A container ready to launch.
pub struct Prepared {
    /// What runs.
    pub process: Process,
    /// The features, in any order: the launch orders them by [`Slot`].
    pub features: Vec<Box<dyn Feature>>,
}

impl Prepared {
    /// `process`, with no feature yet.
    pub fn new(process: Process) -> Self {
        Prepared {
            process,
            features: Vec::new(),
        }
    }

    /// Adds a feature.
    pub fn add(&mut self, feature: impl Feature + 'static) {
        self.features.push(Box::new(feature));
    }

    /// Puts `feature` in its slot instead of the features there: what a later stage does
    /// differently.
    pub fn replace(&mut self, feature: impl Feature + 'static) {
        let slot = feature.slot();
        self.features.retain(|f| f.slot() != slot);
        self.add(feature);
    }

    /// The container outlives this run of its command: see [`Feature::keep`].
    pub fn keep(&mut self) {
        self.features.iter_mut().for_each(|f| f.keep());
    }

    /// The work the features hand to another process: see [`Feature::ahead`].
    pub fn ahead(&mut self) -> Vec<launch::AheadJob> {
        self.features.iter_mut().filter_map(|f| f.ahead()).collect()
    }

    /// Whether a feature fills `slot`.
    pub fn has(&self, slot: Slot) -> bool {
        self.features.iter().any(|f| f.slot() == slot)
    }

    /// Starts the container; see [`launch::spawn`].
    pub fn spawn(&mut self) -> Result<Running<'_>, LaunchError> {
        launch::spawn(&self.process, &mut self.features)
    }
}
// ANCHOR_END: prepared

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeRoot, FeatureError, Plan};

    struct Other;

    impl Feature for Other {
        fn name(&self) -> &'static str {
            "other root"
        }

        fn slot(&self) -> Slot {
            Slot::Root
        }

        fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
            Ok(())
        }
    }

    #[test]
    fn a_later_stage_replaces_what_fills_a_slot() {
        let mut prepared = Prepared::new(Process::new(vec!["/bin/true".into()]));
        prepared.add(ChangeRoot::new("/srv"));
        assert!(prepared.has(Slot::Root));
        prepared.replace(Other);
        let names: Vec<_> = prepared.features.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["other root"]);
        assert!(!prepared.has(Slot::Cgroup));
    }
}
