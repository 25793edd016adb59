//! Progress bars for long commands, drawn on stderr and only when stdout is a terminal (a pipe
//! or a file gets the summary alone).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::import::Progress;

/// One bar a phase (checking a file, importing it, indexing...): each made whole (its file's
/// totals, its template, its name) before it is first drawn, so that no frame shows one file's
/// count over another's total (`500/40 records`).
pub struct ImportBar {
    visible: bool,
    current: Mutex<(Option<(u8, PathBuf)>, ProgressBar)>,
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

impl ImportBar {
    #[must_use]
    pub fn new() -> Self {
        let visible = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Self { visible, current: Mutex::new((None, ProgressBar::hidden())) }
    }

    /// The bar of `phase` on `path`: the current one, or a new one with `total`, `template` and
    /// `message` in place of the last phase's.
    fn enter(&self, phase: u8, path: &Path, total: u64, template: &str, message: String) -> ProgressBar {
        let Ok(mut current) = self.current.lock() else { return ProgressBar::hidden() };
        if current.0.as_ref().is_some_and(|(p, f)| *p == phase && f == path) {
            return current.1.clone();
        }
        current.1.finish_and_clear();
        let target = if self.visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let mut bar = ProgressBar::with_draw_target(Some(total), target).with_message(message);
        if let Ok(style) = ProgressStyle::with_template(template) {
            // Rates and ETAs from what this phase did over the time it took: indicatif's own
            // estimate, fed positions that jump by pages, printed figures like `67608823/s`.
            let style = style
                .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = match rate(state.pos(), state.elapsed()) {
                        Some(r) => write!(w, "{}/s", indicatif::HumanCount(r.round() as u64)),
                        None => write!(w, "-/s"),
                    };
                })
                .with_key("bytes_per_sec", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = match rate(state.pos(), state.elapsed()) {
                        Some(r) => write!(w, "{}/s", indicatif::HumanBytes(r.round() as u64)),
                        None => write!(w, "-/s"),
                    };
                })
                .with_key("eta", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = match eta(state.pos(), state.len(), state.elapsed()) {
                        Some(d) => write!(w, "{}", indicatif::HumanDuration(d)),
                        None => write!(w, "-"),
                    };
                })
                .progress_chars("█▉▊▋▌▍▎▏ ");
            bar = bar.with_style(style);
        }
        *current = (Some((phase, path.to_owned())), bar.clone());
        bar
    }

    pub fn update(&self, p: Progress) {
        match p {
            Progress::Checking { path, bytes, total } => {
                self.enter(
                    1,
                    &path,
                    total,
                    "{msg:40} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    format!("checking {}", name(&path)),
                )
                .set_position(bytes);
            }
            Progress::Writing { path, records, total } => {
                self.enter(
                    2,
                    &path,
                    total,
                    "{msg:40} [{bar:30}] {human_pos}/{human_len} records {rate} eta {eta}",
                    format!("importing {}", name(&path)),
                )
                .set_position(records);
            }
            Progress::Indexing { done, total } => {
                self.enter(
                    3,
                    Path::new(""),
                    total,
                    "{msg:40} [{bar:30}] {human_pos}/{human_len} samples {rate} eta {eta}",
                    "full-text index".into(),
                )
                .set_position(done);
            }
        }
    }

    /// A counted phase of any command (`verify math`: done of total).
    pub fn update_count(&self, label: &str, done: u64, total: u64) {
        self.enter(4, Path::new(label), total, "{msg:40} [{bar:30}] {human_pos}/{human_len} samples {rate} eta {eta}", label.to_owned())
            .set_position(done);
    }

    /// A generation: requests answered of total, with samples, tokens/s and failures so far.
    pub fn update_generate(&self, requests: u64, total: u64, samples: u64, tokens: u64, failures: u64) {
        self.update_requests(5, "generate", "requests", 60, &format!("{samples} samples, "), (requests, total, tokens, failures));
    }

    /// A scoring: samples answered of total, with tokens/s and failures so far.
    pub fn update_score(&self, done: u64, total: u64, tokens: u64, failures: u64) {
        self.update_requests(6, "score-logprobs", "samples", 50, "", (done, total, tokens, failures));
    }

    /// A run of requests to a teacher: `done` of `total` `unit`, tokens/s and failures.
    fn update_requests(
        &self,
        phase: u8,
        name: &str,
        unit: &str,
        width: usize,
        counts: &str,
        (done, total, tokens, failures): (u64, u64, u64, u64),
    ) {
        let template = format!("{{msg:{width}}} [{{bar:25}}] {{human_pos}}/{{human_len}} {unit} {{rate}} eta {{eta}}");
        let bar = self.enter(phase, Path::new(name), total, &template, String::new());
        let secs = bar.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{name}: {counts}{:.0} tokens/s, {failures} failed", tokens as f64 / secs));
        bar.set_position(done);
    }

    pub fn finish(&self) {
        if let Ok(current) = self.current.lock() {
            current.1.finish_and_clear();
        }
    }
}

/// Items per second over a phase: `done` in `elapsed`; none before a quarter second has passed,
/// when a first page's count over a few milliseconds is no rate anyone could use.
#[must_use]
pub fn rate(done: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (secs >= 0.25).then(|| done as f64 / secs)
}

/// The time left at the phase's rate so far, when there is one.
#[must_use]
pub fn eta(done: u64, total: Option<u64>, elapsed: Duration) -> Option<Duration> {
    let r = rate(done, elapsed).filter(|r| *r > 0.0)?;
    let left = total?.saturating_sub(done);
    Some(Duration::from_secs_f64(left as f64 / r))
}

impl Default for ImportBar {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_gets_a_bar_with_its_own_total() {
        let bar = ImportBar::new();
        let (a, b) = (PathBuf::from("a.jsonl"), PathBuf::from("b.jsonl"));
        bar.update(Progress::Writing { path: a.clone(), records: 500, total: 500 });
        let first = bar.current.lock().unwrap().1.clone();
        bar.update(Progress::Writing { path: b, records: 0, total: 40 });
        let second = bar.current.lock().unwrap().1.clone();
        // Made whole before anything is drawn: B's total with B's count, never A's count.
        assert_eq!((second.length(), second.position()), (Some(40), 0));
        assert!(first.is_finished());
        bar.update(Progress::Writing { path: a, records: 10, total: 500 });
        assert_eq!(bar.current.lock().unwrap().1.length(), Some(500));
    }

    #[test]
    fn rates_are_items_over_the_time_they_took() {
        assert_eq!(rate(1_000, Duration::from_secs(2)), Some(500.0));
        // A first page counted over a millisecond is no rate yet.
        assert_eq!(rate(512, Duration::from_millis(1)), None);
        assert_eq!(eta(250, Some(1_000), Duration::from_secs(5)), Some(Duration::from_secs(15)));
        assert_eq!(eta(0, Some(1_000), Duration::from_secs(5)), None);
        assert_eq!(eta(10, None, Duration::from_secs(5)), None);
        assert_eq!(eta(1_200, Some(1_000), Duration::from_secs(5)), Some(Duration::ZERO));
    }
}
