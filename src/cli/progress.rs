//! Progress bars for long commands, drawn on stderr and only when stdout is a terminal (a pipe
//! or a file gets the summary alone).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::import::Progress;

/// One bar, re-labelled per phase.
pub struct ImportBar {
    bar: ProgressBar,
    phase: Mutex<Option<(u8, PathBuf)>>,
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

impl ImportBar {
    #[must_use]
    pub fn new() -> Self {
        let target = if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self { bar: ProgressBar::with_draw_target(None, target), phase: Mutex::new(None) }
    }

    fn enter(&self, phase: u8, path: &Path, total: u64, template: &str, message: String) {
        let Ok(mut current) = self.phase.lock() else { return };
        if current.as_ref().is_some_and(|(p, f)| *p == phase && f == path) {
            return;
        }
        *current = Some((phase, path.to_owned()));
        if let Ok(style) = ProgressStyle::with_template(template) {
            let style = style
                .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                })
                .progress_chars("█▉▊▋▌▍▎▏ ");
            self.bar.set_style(style);
        }
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.bar.set_message(message);
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
                );
                self.bar.set_position(bytes);
            }
            Progress::Writing { path, records, total } => {
                self.enter(
                    2,
                    &path,
                    total,
                    "{msg:40} [{bar:30}] {human_pos}/{human_len} records {rate} eta {eta}",
                    format!("importing {}", name(&path)),
                );
                self.bar.set_position(records);
            }
            Progress::Indexing { done, total } => {
                self.enter(
                    3,
                    Path::new(""),
                    total,
                    "{msg:40} [{bar:30}] {human_pos}/{human_len} samples {rate} eta {eta}",
                    "full-text index".into(),
                );
                self.bar.set_position(done);
            }
        }
    }

    /// A counted phase of any command (`verify math`: done of total).
    pub fn update_count(&self, label: &str, done: u64, total: u64) {
        self.enter(4, Path::new(label), total, "{msg:40} [{bar:30}] {human_pos}/{human_len} samples {rate} eta {eta}", label.to_owned());
        self.bar.set_position(done);
    }

    /// A generation: requests answered of total, with samples, tokens/s and failures so far.
    pub fn update_generate(&self, requests: u64, total: u64, samples: u64, tokens: u64, failures: u64) {
        self.enter(5, Path::new("generate"), total, "{msg:60} [{bar:25}] {human_pos}/{human_len} requests {rate} eta {eta}", String::new());
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("generate: {samples} samples, {:.0} tokens/s, {failures} failed", tokens as f64 / secs));
        self.bar.set_position(requests);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for ImportBar {
    fn default() -> Self {
        Self::new()
    }
}
