//! `retort stats`: what is in the store.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::domain::{Kind, LabelType, Status};
use crate::store::Store;

/// Token length percentiles (nearest rank) over all samples.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Lengths {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub max: i64,
    pub mean: f64,
}

impl Lengths {
    fn of(mut values: Vec<i64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable();
        let rank = |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Self {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: values[values.len() - 1],
            mean: values.iter().sum::<i64>() as f64 / values.len() as f64,
        }
    }
}

/// One verifier's results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifierStats {
    /// Samples with a score from this verifier.
    pub scored: i64,
    /// Of those, how many passed.
    pub passed: i64,
    /// `passed / scored`.
    pub pass_rate: f64,
    /// Mean score.
    pub mean: f64,
    /// Samples the verifier could not score (recorded as failures, not as zeros).
    pub errors: i64,
}

/// How many of a group's samples are accepted and rejected (the rest are pending).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Decided {
    pub accepted: i64,
    pub rejected: i64,
}

/// Everything `retort stats` reports; `--json` prints it as is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub prompts: i64,
    pub prompts_with_reference: i64,
    pub samples: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_label: BTreeMap<String, i64>,
    /// Samples by their prompt's kind.
    pub by_kind: BTreeMap<String, i64>,
    pub prompts_by_kind: BTreeMap<String, i64>,
    pub by_teacher: BTreeMap<String, i64>,
    pub by_source: BTreeMap<String, i64>,
    /// Per teacher and per source: how many of its samples are accepted and rejected.
    pub decided_by_teacher: BTreeMap<String, Decided>,
    pub decided_by_source: BTreeMap<String, Decided>,
    pub verifiers: BTreeMap<String, VerifierStats>,
    /// Completion tokens (reasoning + answer).
    pub tokens: Lengths,
    pub reasoning_tokens: Lengths,
    pub answer_tokens: Lengths,
    /// Samples by how their tokens were counted: `estimate` or `tokenizer:<file>`.
    pub token_counts: BTreeMap<String, i64>,
    pub with_logprobs: i64,
    /// Samples not yet in the full-text index.
    pub unindexed: i64,
}

async fn counts(store: &Store, sql: &'static str) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(store.pool()).await?;
    rows.iter().map(|r| Ok((r.try_get::<Option<String>, _>(0)?.unwrap_or_else(|| "(none)".into()), r.try_get(1)?))).collect()
}

/// Samples per name, and how many of them are decided, from one pass over `name, count,
/// accepted, rejected` rows.
async fn grouped(store: &Store, sql: &'static str) -> Result<(BTreeMap<String, i64>, BTreeMap<String, Decided>), sqlx::Error> {
    let rows: Vec<(Option<String>, i64, i64, i64)> = sqlx::query_as(sql).fetch_all(store.pool()).await?;
    let mut counts = BTreeMap::new();
    let mut decided = BTreeMap::new();
    for (name, count, accepted, rejected) in rows {
        let name = name.unwrap_or_else(|| "(none)".into());
        counts.insert(name.clone(), count);
        decided.insert(name, Decided { accepted, rejected });
    }
    Ok((counts, decided))
}

/// Adds a zero for every name the map lacks, so JSON readers always find all keys.
fn with_all(mut map: BTreeMap<String, i64>, names: impl IntoIterator<Item = &'static str>) -> BTreeMap<String, i64> {
    for n in names {
        map.entry(n.to_owned()).or_insert(0);
    }
    map
}

pub async fn stats(store: &Store) -> Result<Stats, sqlx::Error> {
    let pool = store.pool();
    let (prompts, with_reference): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(has_reference), 0) FROM prompts").fetch_one(pool).await?;
    let (samples, with_logprobs): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(has_logprobs), 0) FROM samples").fetch_one(pool).await?;
    let by_status =
        with_all(counts(store, "SELECT status, count(*) FROM samples GROUP BY status").await?, Status::ALL.iter().map(|s| s.as_str()));
    let by_label =
        with_all(counts(store, "SELECT label, count(*) FROM samples GROUP BY label").await?, LabelType::ALL.iter().map(|l| l.as_str()));
    let by_kind = with_all(
        counts(store, "SELECT p.kind, count(*) FROM samples s JOIN prompts p ON p.id = s.prompt_id GROUP BY p.kind").await?,
        Kind::ALL.iter().map(|k| k.as_str()),
    );
    let prompts_by_kind =
        with_all(counts(store, "SELECT kind, count(*) FROM prompts GROUP BY kind").await?, Kind::ALL.iter().map(|k| k.as_str()));
    let (by_teacher, decided_by_teacher) = grouped(
        store,
        "SELECT t.name, count(*), coalesce(sum(s.status = 'accepted'), 0), coalesce(sum(s.status = 'rejected'), 0) \
         FROM samples s JOIN teachers t ON t.id = s.teacher_id GROUP BY t.name",
    )
    .await?;
    let (by_source, decided_by_source) = grouped(
        store,
        "SELECT src.name, count(*), coalesce(sum(s.status = 'accepted'), 0), coalesce(sum(s.status = 'rejected'), 0) \
         FROM samples s LEFT JOIN sources src ON src.id = s.source_id GROUP BY src.name",
    )
    .await?;
    let token_counts =
        counts(store, "SELECT i.token_counter, count(*) FROM samples s LEFT JOIN imports i ON i.id = s.import_id GROUP BY i.token_counter")
            .await?;

    let mut verifiers = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT v.name, count(sc.score), coalesce(sum(sc.pass), 0), avg(sc.score), count(*) - count(sc.score) \
         FROM verifiers v JOIN scores sc ON sc.verifier_id = v.id GROUP BY v.name",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        let scored: i64 = r.try_get(1)?;
        let passed: i64 = r.try_get(2)?;
        verifiers.insert(
            r.try_get(0)?,
            VerifierStats {
                scored,
                passed,
                pass_rate: if scored > 0 { passed as f64 / scored as f64 } else { 0.0 },
                mean: r.try_get::<Option<f64>, _>(3)?.unwrap_or(0.0),
                errors: r.try_get(4)?,
            },
        );
    }

    let rows = sqlx::query("SELECT tokens, reasoning_tokens, answer_tokens FROM samples").fetch_all(pool).await?;
    let (mut all, mut reasoning, mut answer) =
        (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for r in &rows {
        all.push(r.try_get(0)?);
        reasoning.push(r.try_get(1)?);
        answer.push(r.try_get(2)?);
    }
    Ok(Stats {
        prompts,
        prompts_with_reference: with_reference,
        samples,
        by_status,
        by_label,
        by_kind,
        prompts_by_kind,
        by_teacher,
        by_source,
        decided_by_teacher,
        decided_by_source,
        verifiers,
        tokens: Lengths::of(all),
        reasoning_tokens: Lengths::of(reasoning),
        answer_tokens: Lengths::of(answer),
        token_counts,
        with_logprobs,
        unindexed: crate::store::fts::pending(pool).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Lengths::of((1..=100).collect());
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50, 90, 99, 100));
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert_eq!(Lengths::of(vec![]), Lengths::default());
        assert_eq!(Lengths::of(vec![7]).p50, 7);
    }
}
