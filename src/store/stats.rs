//! What `retort stats` and the Stats tab count: tallies over the whole store.

use super::{Result, Store};

/// What samples (or prompts) are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Status,
    Label,
    /// The kind of the sample's prompt.
    Kind,
    /// Prompts, not samples, by kind.
    PromptKind,
    /// How the sample's tokens were counted (its import's counter).
    TokenCounter,
    Teacher,
    Source,
}

impl By {
    /// `name, count, accepted, rejected` per name.
    fn sql(self) -> &'static str {
        match self {
            By::Status => "SELECT status, count(*), 0, 0 FROM samples GROUP BY status",
            By::Label => "SELECT label, count(*), 0, 0 FROM samples GROUP BY label",
            By::Kind => "SELECT p.kind, count(*), 0, 0 FROM samples s JOIN prompts p ON p.id = s.prompt_id GROUP BY p.kind",
            By::PromptKind => "SELECT kind, count(*), 0, 0 FROM prompts GROUP BY kind",
            By::TokenCounter => {
                "SELECT i.token_counter, count(*), 0, 0 FROM samples s LEFT JOIN imports i ON i.id = s.import_id GROUP BY i.token_counter"
            }
            By::Teacher => {
                "SELECT t.name, count(*), coalesce(sum(s.status = 'accepted'), 0), coalesce(sum(s.status = 'rejected'), 0) \
                 FROM samples s JOIN teachers t ON t.id = s.teacher_id GROUP BY t.name"
            }
            By::Source => {
                "SELECT src.name, count(*), coalesce(sum(s.status = 'accepted'), 0), coalesce(sum(s.status = 'rejected'), 0) \
                 FROM samples s LEFT JOIN sources src ON src.id = s.source_id GROUP BY src.name"
            }
        }
    }
}

/// One name's tally: how many, and of them how many accepted and rejected (teachers and
/// sources only; zero otherwise). A missing name (a sample with no source) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub name: Option<String>,
    pub count: i64,
    pub accepted: i64,
    pub rejected: i64,
}

/// The tallies by `by`.
pub async fn tally(store: &Store, by: By) -> Result<Vec<Tally>> {
    let rows: Vec<(Option<String>, i64, i64, i64)> = sqlx::query_as(by.sql()).fetch_all(&store.pool).await?;
    Ok(rows.into_iter().map(|(name, count, accepted, rejected)| Tally { name, count, accepted, rejected }).collect())
}

/// The store's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub prompts: i64,
    pub prompts_with_reference: i64,
    pub samples: i64,
    pub samples_with_logprobs: i64,
}

pub async fn totals(store: &Store) -> Result<Totals> {
    let (prompts, prompts_with_reference): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(has_reference), 0) FROM prompts").fetch_one(&store.pool).await?;
    let (samples, samples_with_logprobs): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(has_logprobs), 0) FROM samples").fetch_one(&store.pool).await?;
    Ok(Totals { prompts, prompts_with_reference, samples, samples_with_logprobs })
}

/// One verifier's scores.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VerifierTally {
    pub name: String,
    /// Samples with a score.
    pub scored: i64,
    pub passed: i64,
    pub mean: Option<f64>,
    /// Samples it could not score.
    pub errors: i64,
}

pub async fn verifiers(store: &Store) -> Result<Vec<VerifierTally>> {
    Ok(sqlx::query_as(
        "SELECT v.name AS name, count(sc.score) AS scored, coalesce(sum(sc.pass), 0) AS passed, avg(sc.score) AS mean, \
         count(*) - count(sc.score) AS errors FROM verifiers v JOIN scores sc ON sc.verifier_id = v.id GROUP BY v.name",
    )
    .fetch_all(&store.pool)
    .await?)
}

/// Every sample's token counts: whole, reasoning, answer.
pub async fn token_lengths(store: &Store) -> Result<(Vec<i64>, Vec<i64>, Vec<i64>)> {
    let rows: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT tokens, reasoning_tokens, answer_tokens FROM samples").fetch_all(&store.pool).await?;
    let mut out = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for (all, reasoning, answer) in rows {
        out.0.push(all);
        out.1.push(reasoning);
        out.2.push(answer);
    }
    Ok(out)
}

/// Samples not yet in the full-text index.
pub async fn unindexed(store: &Store) -> Result<i64> {
    super::fts::pending(store).await
}
