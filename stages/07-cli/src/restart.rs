//! Restart policies (`--restart`): what a container's monitor does when its command ends.
//!
//! | policy             | starts it again when                                            |
//! |--------------------|-----------------------------------------------------------------|
//! | `no` (default)     | never                                                           |
//! | `on-failure[:N]`   | it exited with a code other than 0; at most N times             |
//! | `always`           | it ended, whatever the code                                     |
//! | `unless-stopped`   | as `always`                                                     |
//!
//! None of them starts a container that `stop` or `kill` ended: the user meant that. Docker's
//! `always` and `unless-stopped` differ only when the daemon itself restarts: then `always`
//! starts the container even if the user had stopped it, `unless-stopped` only if not. skiff
//! has no daemon; its equivalent is the host's boot, when `skiff system boot` (what a boot-time
//! unit runs, as Podman's `podman-restart.service`) makes the same choice ([`RestartPolicy::at_boot`]). Between starts the monitor waits, as Docker does: 100 ms,
//! then twice as long each time, at most a minute, back to 100 ms after a run of 10 seconds.
//! See docker-run(1), "Restart policies".

use std::time::Duration;

use anyhow::bail;

// ANCHOR: policy
/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never.
    No,
    /// After a non-zero exit; at most this many times (0: no limit).
    OnFailure(u32),
    /// After every end.
    Always,
    /// After every end (the same as `Always` without a daemon).
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses `--restart`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        Ok(match (name, count) {
            ("no" | "", None) => RestartPolicy::No,
            ("always", None) => RestartPolicy::Always,
            ("unless-stopped", None) => RestartPolicy::UnlessStopped,
            ("on-failure", None) => RestartPolicy::OnFailure(0),
            ("on-failure", Some(count)) => match count.parse() {
                Ok(count) => RestartPolicy::OnFailure(count),
                Err(_) => bail!("maximum retry count must be a number: {count:?}"),
            },
            ("always" | "unless-stopped" | "no", Some(_)) => bail!(
                "invalid restart policy {text:?}: only on-failure takes a maximum retry count"
            ),
            _ => bail!(
                "invalid restart policy {text:?}: use no, always, unless-stopped or on-failure[:max-retries]"
            ),
        })
    }

    /// Docker's name for it (`on-failure`), as `inspect` shows it.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure(_) => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// The maximum retry count (`on-failure:N`), 0 otherwise.
    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure(count) => count,
            _ => 0,
        }
    }

    /// Whether a container that ended with `exit_code`, after `restarts` restarts already,
    /// starts again; never when the user stopped it.
    pub fn restarts(self, exit_code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure(max) => exit_code != 0 && (max == 0 || restarts < max),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }

    /// Whether `skiff system boot` starts a container that is not running, as Docker's daemon
    /// does when it starts: never one that was never started; `always` even if the user
    /// stopped it, `unless-stopped` only if the user did not, `on-failure` if its last run
    /// failed (and the user did not stop it).
    pub fn at_boot(self, started_before: bool, stopped_by_user: bool, exit_code: i32) -> bool {
        started_before
            && match self {
                RestartPolicy::No => false,
                RestartPolicy::Always => true,
                RestartPolicy::UnlessStopped => !stopped_by_user,
                RestartPolicy::OnFailure(_) => !stopped_by_user && exit_code != 0,
            }
    }
}
// ANCHOR_END: policy

/// Docker's wait before the next start: 100 ms doubling per restart, at most a minute.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// A backoff whose next wait is `millis` (0: the first, 100 ms).
    pub fn from_millis(millis: u64) -> Self {
        match millis {
            0 => Backoff::default(),
            millis => Backoff {
                next: Duration::from_millis(millis),
            },
        }
    }

    /// The next wait, in milliseconds, to hand over to the next monitor.
    pub fn millis(&self) -> u64 {
        u64::try_from(self.next.as_millis()).unwrap_or(u64::MAX)
    }

    /// How long to wait after a run that lasted `ran`.
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= Duration::from_secs(10) {
            self.next = Duration::from_millis(100);
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(60));
        wait
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_boot_always_and_unless_stopped_differ_only_for_a_stopped_container() {
        use RestartPolicy::*;
        // Stopped by the user: only always starts it again.
        assert!(Always.at_boot(true, true, 137));
        assert!(!UnlessStopped.at_boot(true, true, 137));
        // Ended by the host going down: both do.
        assert!(Always.at_boot(true, false, 0));
        assert!(UnlessStopped.at_boot(true, false, 0));
        // Never started, or no policy: neither.
        assert!(!Always.at_boot(false, false, 0));
        assert!(!No.at_boot(true, false, 1));
        assert!(OnFailure(3).at_boot(true, false, 1));
        assert!(!OnFailure(3).at_boot(true, false, 0));
    }

    use super::*;

    #[test]
    fn policies_parse_as_docker_spells_them() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("always").unwrap(),
            RestartPolicy::Always
        );
        assert_eq!(
            RestartPolicy::parse("on-failure:2").unwrap(),
            RestartPolicy::OnFailure(2)
        );
        assert_eq!(
            RestartPolicy::parse("on-failure").unwrap(),
            RestartPolicy::OnFailure(0)
        );
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        assert!(RestartPolicy::parse("always:3").is_err());
    }

    #[test]
    fn on_failure_restarts_exactly_n_times_and_never_after_a_stop() {
        let policy = RestartPolicy::OnFailure(2);
        assert!(policy.restarts(1, 0, false));
        assert!(policy.restarts(1, 1, false));
        assert!(!policy.restarts(1, 2, false));
        assert!(!policy.restarts(0, 0, false));
        assert!(!RestartPolicy::Always.restarts(0, 5, true));
        assert!(RestartPolicy::Always.restarts(0, 5, false));
    }

    #[test]
    fn the_backoff_doubles_and_resets_after_a_long_run() {
        let mut backoff = Backoff::default();
        let short = Duration::from_secs(1);
        assert_eq!(backoff.after(short), Duration::from_millis(100));
        assert_eq!(backoff.after(short), Duration::from_millis(200));
        assert_eq!(backoff.after(short), Duration::from_millis(400));
        assert_eq!(
            backoff.after(Duration::from_secs(11)),
            Duration::from_millis(100)
        );
        for _ in 0..20 {
            backoff.after(short);
        }
        assert_eq!(backoff.after(short), Duration::from_secs(60));
    }
}
