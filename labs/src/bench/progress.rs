//! Progress while the bench runs: indicatif bars on a terminal (one per contestant, since they
//! take turns), plain lines otherwise (a log, CI).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::stats::format_ms;

/// Where progress goes: stderr, so stdout holds only the table.
#[derive(Debug, Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars when stderr is a terminal, lines when it is not.
    pub fn new() -> Progress {
        Progress {
            bars: std::io::stderr().is_terminal().then(MultiProgress::new),
        }
    }

    /// A one-line note ("podman: skipped: not installed").
    pub fn note(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("bench: {text}"));
            }
            None => eprintln!("bench: {text}"),
        }
    }

    /// A slow step with no count (a build, a download): a spinner, or one line.
    pub fn step(&self, text: &str) -> Step {
        match &self.bars {
            Some(bars) => {
                let spinner = bars.add(ProgressBar::new_spinner().with_message(text.to_string()));
                spinner.enable_steady_tick(Duration::from_millis(120));
                Step {
                    spinner: Some(spinner),
                }
            }
            None => {
                eprintln!("bench: {text}");
                Step { spinner: None }
            }
        }
    }

    /// The runs of one contestant.
    pub fn runs(&self, name: &str, warmup: usize, runs: usize) -> Runs {
        let total = warmup + runs;
        let bar = self.bars.as_ref().map(|bars| {
            let style = ProgressStyle::with_template("{prefix:>16} [{bar:24}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = bars.add(ProgressBar::new(total as u64).with_style(style));
            bar.set_prefix(name.to_string());
            bar
        });
        if bar.is_none() {
            eprintln!("bench: {name}: {warmup} warm-up + {runs} timed runs");
        }
        Runs {
            bar,
            name: name.to_string(),
            done: 0,
            total,
            finished: false,
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// A slow step in progress; dropping it clears the spinner.
pub struct Step {
    spinner: Option<ProgressBar>,
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// One contestant's runs in progress.
pub struct Runs {
    bar: Option<ProgressBar>,
    name: String,
    done: usize,
    total: usize,
    finished: bool,
}

impl Runs {
    /// One run finished after `wall`.
    pub fn tick(&mut self, wall: Duration) {
        self.done += 1;
        let ms = format_ms(wall.as_secs_f64() * 1e3);
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("last {ms} ms"));
                bar.inc(1);
            }
            // Slow runs (a VM) get a line each, so a log shows that something happens.
            None if wall >= Duration::from_secs(1) => {
                eprintln!(
                    "bench: {}: run {}/{}: {ms} ms",
                    self.name, self.done, self.total
                );
            }
            None => {}
        }
    }

    /// The contestant is done: `summary` says how it went (only the first call counts).
    pub fn finish(&mut self, summary: &str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        match &self.bar {
            Some(bar) => bar.finish_with_message(summary.to_string()),
            None => eprintln!("bench: {}: {summary}", self.name),
        }
    }
}
