//! Verifiers and their scores.

use super::{Result, Store, Tx, now};

/// Registers a verifier (or updates its kind and settings); returns its id.
pub async fn register_verifier(store: &Store, name: &str, kind: &str, config: &str) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO verifiers (name, kind, config, created_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, config = excluded.config RETURNING id",
    )
    .bind(name)
    .bind(kind)
    .bind(config)
    .bind(now())
    .fetch_one(&store.pool)
    .await?;
    Ok(id)
}

/// A verifier's verdict on one sample: a score, or the reason it could not judge.
#[derive(Debug, Clone, PartialEq)]
pub struct NewScore {
    pub sample_id: i64,
    pub verifier_id: i64,
    pub score: Option<f64>,
    pub pass: Option<bool>,
    /// JSON.
    pub details: Option<String>,
    pub error: Option<String>,
}

/// Writes a verdict, replacing the verifier's earlier one on the sample.
pub async fn write(tx: &mut Tx, s: &NewScore) -> Result<()> {
    sqlx::query(
        "INSERT INTO scores (sample_id, verifier_id, score, pass, details, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (sample_id, verifier_id) DO UPDATE SET score = excluded.score, pass = excluded.pass, \
         details = excluded.details, error = excluded.error, created_at = excluded.created_at",
    )
    .bind(s.sample_id)
    .bind(s.verifier_id)
    .bind(s.score)
    .bind(s.pass.map(i64::from))
    .bind(&s.details)
    .bind(&s.error)
    .bind(now())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The verifiers with at least one verdict in the store (a score, or a recorded failure), by
/// name: the names `score.X` and `pass.X` can use.
pub async fn verifier_names(store: &Store) -> Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM verifiers v WHERE EXISTS (SELECT 1 FROM scores s WHERE s.verifier_id = v.id) ORDER BY name")
            .fetch_all(&store.pool)
            .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}
