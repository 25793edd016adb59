//! A training run recorded in the store: the `runs` row (status, hyper-parameters, adapter),
//! every step's loss, learning rate, gradient norm and tokens/s in `run_metrics`. The trainer
//! itself runs on a thread of its own; its events come back here.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

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

/// Runs the trainer and records it; `on_event` hears every event (a progress bar, the TUI).
pub async fn run(
    store: &Store,
    opts: TrainOptions,
    resume: Option<&Path>,
    cancel: Arc<AtomicBool>,
    on_event: &(dyn Fn(&Event) + Sync),
) -> anyhow::Result<RunSummary> {
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
    let (dataset, _) = result.map_err(|e| anyhow::anyhow!(e))?;
    summary.skipped = crate::train::run::skipped_summary(&dataset.skipped);
    Ok(summary)
}
