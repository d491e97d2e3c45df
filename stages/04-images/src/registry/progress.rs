//! Progress of a pull or push: a bar per layer on a terminal, Docker's plain lines otherwise.
//!
//! Pull and push report what happens through the [`Progress`] trait; they print nothing
//! themselves. [`ConsoleProgress`] draws with `indicatif` when its stream is a terminal and
//! otherwise prints one line per change of a layer's status, as `docker pull` does when its
//! output is a pipe:
//!
//! ```text
//! latest: Pulling from app
//! 4f4fb700ef54: Pulling fs layer
//! 4f4fb700ef54: Download complete
//! 4f4fb700ef54: Pull complete
//! Digest: sha256:…
//! Status: Downloaded newer image for localhost:5000/app:latest
//! ```

use std::collections::HashMap;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

/// Where a pull or push reports what it does.
pub trait Progress: Sync {
    /// A line of its own: `latest: Pulling from app`, `Digest: sha256:…`.
    fn line(&self, text: &str);
    /// A layer's status changed (`Pulling fs layer`, `Download complete`, `Pushed`…); `last`
    /// when it is the layer's final one.
    fn layer(&self, digest: &Digest, status: &str, last: bool);
    /// `done` of the layer's `total` bytes have moved.
    fn bytes(&self, digest: &Digest, done: u64, total: u64);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn line(&self, _: &str) {}
    fn layer(&self, _: &Digest, _: &str, _: bool) {}
    fn bytes(&self, _: &Digest, _: u64, _: u64) {}
}

/// Reports on stdout or stderr: bars on a terminal, plain lines otherwise.
pub struct ConsoleProgress {
    to_stderr: bool,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    by_layer: Mutex<HashMap<Digest, ProgressBar>>,
}

impl std::fmt::Debug for ConsoleProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleProgress")
            .field("to_stderr", &self.to_stderr)
            .field("bars", &self.bars.is_some())
            .finish()
    }
}

impl ConsoleProgress {
    /// On stdout (`pull`, `push`).
    pub fn stdout() -> ConsoleProgress {
        ConsoleProgress::new(false, io::stdout().is_terminal())
    }

    /// On stderr (a pull done by `run`, whose stdout is the container's).
    pub fn stderr() -> ConsoleProgress {
        ConsoleProgress::new(true, io::stderr().is_terminal())
    }

    fn new(to_stderr: bool, terminal: bool) -> ConsoleProgress {
        let bars = terminal.then(|| {
            let target = if to_stderr {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::stdout()
            };
            Bars {
                multi: MultiProgress::with_draw_target(target),
                by_layer: Mutex::new(HashMap::new()),
            }
        });
        ConsoleProgress { to_stderr, bars }
    }

    fn print(&self, text: &str) {
        if let Some(bars) = &self.bars {
            let _ = bars.multi.println(text);
        } else if self.to_stderr {
            let _ = writeln!(io::stderr().lock(), "{text}");
        } else {
            let _ = writeln!(io::stdout().lock(), "{text}");
        }
    }
}

/// Statuses that only say bytes are moving: shown on a bar, not as lines.
const TRANSIENT: [&str; 3] = ["Downloading", "Extracting", "Pushing"];

fn moving_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<18} [{bar:40}] {bytes}/{total_bytes}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn still_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for ConsoleProgress {
    fn line(&self, text: &str) {
        self.print(text);
    }

    fn layer(&self, digest: &Digest, status: &str, last: bool) {
        let Some(bars) = &self.bars else {
            // Docker's plain output leaves out the statuses only a bar can show.
            if !TRANSIENT.contains(&status) {
                self.print(&format!("{}: {status}", digest.short()));
            }
            return;
        };
        let Ok(mut by_layer) = bars.by_layer.lock() else {
            return;
        };
        let bar = by_layer.entry(digest.clone()).or_insert_with(|| {
            bars.multi.add(
                ProgressBar::no_length()
                    .with_style(still_style())
                    .with_prefix(digest.short().to_string()),
            )
        });
        if last {
            bar.set_style(still_style());
            bar.finish_with_message(status.to_string());
        } else {
            bar.set_message(status.to_string());
        }
    }

    fn bytes(&self, digest: &Digest, done: u64, total: u64) {
        let Some(bars) = &self.bars else {
            return;
        };
        if let Ok(by_layer) = bars.by_layer.lock()
            && let Some(bar) = by_layer.get(digest)
        {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(moving_style());
            }
            bar.set_position(done);
        }
    }
}

/// Counts the bytes a blob's reader yields for [`Progress::bytes`], and remembers the first
/// error the reader gave: after a failed transfer, that tells whether the source failed (the
/// network on a pull, the store's copy on a push) or the other side did.
pub(crate) struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    digest: &'a Digest,
    total: u64,
    done: u64,
    /// The source's first error, if it gave one.
    pub(crate) failure: Option<String>,
}

impl<'a, R: Read> Counting<'a, R> {
    pub(crate) fn new(
        inner: R,
        progress: &'a dyn Progress,
        digest: &'a Digest,
        total: u64,
    ) -> Self {
        Counting {
            inner,
            progress,
            digest,
            total,
            done: 0,
            failure: None,
        }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.done += n as u64;
                if n > 0 {
                    self.progress.bytes(self.digest, self.done, self.total);
                }
                Ok(n)
            }
            Err(e) => {
                if self.failure.is_none() {
                    self.failure = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Progress for Recorder {
        fn line(&self, text: &str) {
            self.0.lock().unwrap().push(text.to_string());
        }
        fn layer(&self, digest: &Digest, status: &str, _: bool) {
            self.line(&format!("{}: {status}", digest.short()));
        }
        fn bytes(&self, _: &Digest, done: u64, total: u64) {
            self.line(&format!("{done}/{total}"));
        }
    }

    #[test]
    fn counting_reports_bytes_and_keeps_the_sources_error() {
        let recorder = Recorder::default();
        let digest = Digest::of_bytes(b"abc");
        let mut reader = Counting::new(&b"abc"[..], &recorder, &digest, 3);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(reader.failure, None);
        assert_eq!(recorder.0.lock().unwrap().last().unwrap(), "3/3");

        let broken = crate::registry::client::Exact::new(&b"ab"[..], 3);
        let mut reader = Counting::new(broken, &recorder, &digest, 3);
        assert!(reader.read_to_end(&mut Vec::new()).is_err());
        assert!(reader.failure.unwrap().contains("after 2 of the 3 bytes"));
    }
}
