//! What a run shows a person at a terminal while it works: its stage and a bar of the stage's
//! units (delivery files read, pieces of the rules computed, partner export folders written).
//! Drawn on stderr only when stderr is a terminal and `-q` is not given, so a run under cron
//! prints nothing extra; each stage is also an `info` log line (`-v`, JSON logs).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A run's progress; cheap to clone and to share between threads.
#[derive(Clone)]
pub(crate) struct Progress {
    show: bool,
    /// The current stage's bar (a new one per stage, drawn whole from its first frame).
    bar: Arc<Mutex<indicatif::ProgressBar>>,
    step: Arc<AtomicUsize>,
    started: std::time::Instant,
    /// Export folders written so far (they are written from the rules' stage on).
    folders: Arc<AtomicU64>,
}

/// The stages of a run, in order.
const STEPS: usize = 5;

/// The stage whose bar counts export folders.
const EXPORT_STEP: usize = 4;

impl Progress {
    /// Drawn when `show` (not `-q`) and stderr is a terminal; otherwise log lines only.
    pub(crate) fn new(show: bool) -> Progress {
        use std::io::IsTerminal;
        Progress {
            show: show && std::io::stderr().is_terminal(),
            bar: Arc::new(Mutex::new(indicatif::ProgressBar::hidden())),
            step: Arc::new(AtomicUsize::new(0)),
            started: std::time::Instant::now(),
            folders: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Shows nothing (tests).
    #[cfg(test)]
    pub(crate) fn hidden() -> Progress {
        Progress::new(false)
    }

    fn current(&self) -> std::sync::MutexGuard<'_, indicatif::ProgressBar> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the next stage: `what`, counted in `units` up to `len` when given.
    pub(crate) fn stage(&self, what: &str, units: Option<(u64, &str)>) {
        let step = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let elapsed_s = crate::logs::seconds(self.started.elapsed());
        tracing::info!(stage = step, elapsed_s, "{what}");
        let mut current = self.current();
        current.finish_and_clear();
        if !self.show {
            return;
        }
        let (template, len) = match units {
            Some((len, unit)) => (
                format!("[{step}/{STEPS}] {{msg}} {{wide_bar}} {{pos}}/{{len}} {unit} ({{elapsed}})"),
                Some(len),
            ),
            None => (format!("[{step}/{STEPS}] {{msg}} {{spinner}} ({{elapsed}})"), None),
        };
        let style = indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let done = if step == EXPORT_STEP { self.folders.load(Ordering::Relaxed) } else { 0 };
        let bar = indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(what.to_string())
            .with_position(done);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        *current = bar;
    }

    /// `n` more units of the current stage done.
    pub(crate) fn inc(&self, n: u64) {
        self.current().inc(n);
    }

    /// One more export folder written (counted on the bar while exports are the stage).
    pub(crate) fn folder_written(&self) {
        self.folders.fetch_add(1, Ordering::Relaxed);
        if self.step.load(Ordering::Relaxed) == EXPORT_STEP {
            self.inc(1);
        }
    }

    /// The run's end: the bar goes, the time stays in the log.
    pub(crate) fn done(&self) {
        self.current().finish_and_clear();
        tracing::info!(elapsed_s = crate::logs::seconds(self.started.elapsed()), "published");
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A failed run: clear the bar before its error is printed.
        if Arc::strong_count(&self.step) == 1 {
            self.current().finish_and_clear();
        }
    }
}
