//! A training run recorded in the store: the `runs` row (status, hyper-parameters, adapter),
//! every step's loss, learning rate, gradient norm and tokens/s in `run_metrics`. The trainer
//! itself runs on a thread of its own; its events come back here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::store::{self, Store, runs};
use crate::train::run::{Event, TrainOptions, train};

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub steps: u64,
    pub train_rows: usize,
    pub validation_rows: usize,
    pub skipped: Vec<String>,
    pub skipped_count: usize,
    /// What the run warned about (it went on regardless).
    pub warnings: Vec<String>,
    pub last_loss: Option<f64>,
    pub last_validation_loss: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub adapter: String,
    pub cancelled: bool,
}

/// Where runs go when no out directory is given: `runs/<model>-N` in the working directory.
pub const RUNS_DIR: &str = "runs";

/// A run's directory name from its base model's: the model directory's last part, in
/// characters that need no quoting (`Qwen2.5-0.5B-Instruct`), `run` when it has none.
#[must_use]
pub fn run_name(model: &Path) -> String {
    let name: String = model
        .file_name()
        .map(|n| n.to_string_lossy().chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect())
        .unwrap_or_default();
    let name = name.trim_matches(['-', '.']);
    if name.is_empty() { "run".to_owned() } else { name.to_owned() }
}

/// Makes and returns a new directory `root/<name>-N`, N one more than the highest already
/// there (1 for the first): every run its own adapter, none overwritten. Made with
/// `create_dir`, so two runs starting at once never get the same one.
pub fn new_run_dir(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot make the runs directory {}", root.display()))?;
    let prefix = format!("{name}-");
    let highest = std::fs::read_dir(root)
        .with_context(|| format!("cannot read the runs directory {}", root.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix(&prefix)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let mut n = highest + 1;
    loop {
        let dir = root.join(format!("{prefix}{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            // Another run took it a moment ago.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot make the run directory {}", dir.display())),
        }
    }
}

/// Runs the trainer and records it; `on_event` hears every event (a progress bar, the TUI).
/// With no out directory (`opts.out` empty) the run gets a new one, `runs/<model>-N`
/// ([`new_run_dir`]); the summary's `adapter` says which.
pub async fn run(
    store: &Store,
    mut opts: TrainOptions,
    resume: Option<&Path>,
    cancel: Arc<AtomicBool>,
    on_event: &(dyn Fn(&Event) + Sync),
) -> anyhow::Result<RunSummary> {
    let made = opts.out.as_os_str().is_empty();
    if made {
        opts.out = new_run_dir(Path::new(RUNS_DIR), &run_name(&opts.model))?;
    }
    let export_id = store::exports::newest_in(store, &opts.data.display().to_string()).await?;
    let run_id = runs::start(
        store,
        &runs::NewRun {
            base_model: &opts.model.display().to_string(),
            export_id,
            hyperparams: &serde_json::to_string(&opts)?,
            adapter_dir: &opts.out.display().to_string(),
        },
    )
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let resume = resume.map(Path::to_path_buf);
    let worker = {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || {
            train(&opts, resume.as_deref(), &cancel, &mut |e| {
                let _ = tx.send(e);
            })
        })
    };
    let mut summary = RunSummary {
        run_id,
        steps: 0,
        train_rows: 0,
        validation_rows: 0,
        skipped: Vec::new(),
        skipped_count: 0,
        warnings: Vec::new(),
        last_loss: None,
        last_validation_loss: None,
        tokens_per_s: None,
        adapter: opts.out.display().to_string(),
        cancelled: false,
    };
    while let Some(event) = rx.recv().await {
        on_event(&event);
        match &event {
            Event::Started { train_rows, validation_rows, skipped, .. } => {
                summary.train_rows = *train_rows;
                summary.validation_rows = *validation_rows;
                summary.skipped_count = *skipped;
            }
            Event::Step { step, loss, lr, grad_norm, tokens_per_s, .. } => {
                summary.steps = *step;
                summary.last_loss = Some(*loss);
                summary.tokens_per_s = Some(*tokens_per_s);
                let metrics =
                    runs::StepMetrics { step: *step as i64, loss: *loss, lr: *lr, tokens_per_s: *tokens_per_s, grad_norm: *grad_norm };
                runs::train_step(store, run_id, &metrics).await?;
            }
            Event::Validation { step, loss } => {
                summary.last_validation_loss = Some(*loss);
                runs::validation(store, run_id, *step as i64, *loss).await?;
            }
            Event::Warning { message } => summary.warnings.push(message.clone()),
            Event::Checkpoint { .. } => {}
            Event::Done { cancelled, .. } => summary.cancelled = *cancelled,
        }
    }
    let result = worker.await.map_err(|e| anyhow::anyhow!("the trainer thread failed: {e}"))?;
    let (status, error) = match &result {
        Ok(_) if summary.cancelled => ("cancelled", None),
        Ok(_) => ("finished", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    runs::finish(store, run_id, status, error.as_deref()).await?;
    if made && result.is_err() {
        // A run that failed before it wrote anything leaves no empty directory behind.
        let _ = std::fs::remove_dir(&opts.out);
    }
    let (dataset, _) = result.map_err(|e| anyhow::anyhow!(e))?;
    summary.skipped = crate::train::run::skipped_summary(&dataset.skipped);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_gets_a_new_directory_after_the_highest() {
        let root = std::env::temp_dir().join(format!("retort-runs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(new_run_dir(&root, "tiny").unwrap(), root.join("tiny-1"));
        assert_eq!(new_run_dir(&root, "tiny").unwrap(), root.join("tiny-2"));
        std::fs::create_dir(root.join("tiny-7")).unwrap();
        std::fs::create_dir(root.join("tinyish-9")).unwrap();
        assert_eq!(new_run_dir(&root, "tiny").unwrap(), root.join("tiny-8"));
        assert_eq!(new_run_dir(&root, "other").unwrap(), root.join("other-1"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_run_is_named_after_its_model_directory() {
        assert_eq!(run_name(Path::new("/models/Qwen2.5-0.5B-Instruct")), "Qwen2.5-0.5B-Instruct");
        assert_eq!(run_name(Path::new("models/my model/")), "my-model");
        assert_eq!(run_name(Path::new("/")), "run");
        assert_eq!(run_name(Path::new("")), "run");
    }
}
