//! Training runs and their metrics.

use super::{Result, Store, now};

/// A run as recorded when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun<'a> {
    pub base_model: &'a str,
    /// The export it trains on, when the data directory is one.
    pub export_id: Option<i64>,
    /// The options, as JSON.
    pub hyperparams: &'a str,
    pub adapter_dir: &'a str,
}

/// Records a run as running; returns its id.
pub async fn start(store: &Store, run: &NewRun<'_>) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO runs (created_at, base_model, export_id, hyperparams, status, adapter_dir, started_at) \
         VALUES (?, ?, ?, ?, 'running', ?, ?) RETURNING id",
    )
    .bind(now())
    .bind(run.base_model)
    .bind(run.export_id)
    .bind(run.hyperparams)
    .bind(run.adapter_dir)
    .bind(now())
    .fetch_one(&store.pool)
    .await?;
    Ok(id)
}

/// One training step's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepMetrics {
    pub step: i64,
    pub loss: f64,
    pub lr: f64,
    pub tokens_per_s: f64,
    pub grad_norm: f64,
}

pub async fn train_step(store: &Store, run_id: i64, m: &StepMetrics) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO run_metrics (run_id, step, split, loss, lr, tokens_per_s, grad_norm, created_at) \
         VALUES (?, ?, 'train', ?, ?, ?, ?, ?)",
    )
    .bind(run_id)
    .bind(m.step)
    .bind(m.loss)
    .bind(m.lr)
    .bind(m.tokens_per_s)
    .bind(m.grad_norm)
    .bind(now())
    .execute(&store.pool)
    .await?;
    Ok(())
}

pub async fn validation(store: &Store, run_id: i64, step: i64, loss: f64) -> Result<()> {
    sqlx::query("INSERT OR REPLACE INTO run_metrics (run_id, step, split, loss, created_at) VALUES (?, ?, 'validation', ?, ?)")
        .bind(run_id)
        .bind(step)
        .bind(loss)
        .bind(now())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Records how a run ended: `finished`, `cancelled` or `failed` with its error.
pub async fn finish(store: &Store, run_id: i64, status: &str, error: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?")
        .bind(status)
        .bind(now())
        .bind(error)
        .bind(run_id)
        .execute(&store.pool)
        .await?;
    Ok(())
}
