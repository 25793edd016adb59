//! A training run recorded in the store: the `runs` row (status, hyper-parameters, adapter),
//! every step's loss, learning rate, gradient norm and tokens/s in `run_metrics`. The trainer
//! itself runs on a thread of its own; its events come back here.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::store::{self, Store};
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
    let export_id: Option<i64> = sqlx::query_scalar("SELECT id FROM exports WHERE out_dir = ? ORDER BY id DESC LIMIT 1")
        .bind(opts.data.display().to_string())
        .fetch_optional(store.pool())
        .await?;
    let (run_id,): (i64,) = sqlx::query_as(
        "INSERT INTO runs (created_at, base_model, export_id, hyperparams, status, adapter_dir, started_at) \
         VALUES (?, ?, ?, ?, 'running', ?, ?) RETURNING id",
    )
    .bind(store::now())
    .bind(opts.model.display().to_string())
    .bind(export_id)
    .bind(serde_json::to_string(&opts)?)
    .bind(opts.out.display().to_string())
    .bind(store::now())
    .fetch_one(store.pool())
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
                sqlx::query(
                    "INSERT OR REPLACE INTO run_metrics (run_id, step, split, loss, lr, tokens_per_s, grad_norm, created_at) \
                     VALUES (?, ?, 'train', ?, ?, ?, ?, ?)",
                )
                .bind(run_id)
                .bind(*step as i64)
                .bind(loss)
                .bind(lr)
                .bind(tokens_per_s)
                .bind(grad_norm)
                .bind(store::now())
                .execute(store.pool())
                .await?;
            }
            Event::Validation { step, loss } => {
                summary.last_validation_loss = Some(*loss);
                sqlx::query("INSERT OR REPLACE INTO run_metrics (run_id, step, split, loss, created_at) VALUES (?, ?, 'validation', ?, ?)")
                    .bind(run_id)
                    .bind(*step as i64)
                    .bind(loss)
                    .bind(store::now())
                    .execute(store.pool())
                    .await?;
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
    sqlx::query("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?")
        .bind(status)
        .bind(store::now())
        .bind(error)
        .bind(run_id)
        .execute(store.pool())
        .await?;
    let (dataset, _) = result.map_err(|e| anyhow::anyhow!(e))?;
    summary.skipped = crate::train::run::skipped_summary(&dataset.skipped);
    Ok(summary)
}
