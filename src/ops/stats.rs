//! `retort stats`: what is in the store.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Kind, LabelType, Status};
use crate::store::stats::{self, By};
use crate::store::{self, Store};

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
    /// Samples whose answer or reference the curator edited (edits undone aside): hard labels.
    pub edited: i64,
    /// Samples not yet in the full-text index.
    pub unindexed: i64,
}

/// Samples per name (`(none)` for a missing one).
async fn counts(store: &Store, by: By) -> store::Result<BTreeMap<String, i64>> {
    Ok(grouped(store, by).await?.0)
}

/// Samples per name, and how many of them are decided.
async fn grouped(store: &Store, by: By) -> store::Result<(BTreeMap<String, i64>, BTreeMap<String, Decided>)> {
    let mut counts = BTreeMap::new();
    let mut decided = BTreeMap::new();
    for t in stats::tally(store, by).await? {
        let name = t.name.unwrap_or_else(|| "(none)".into());
        counts.insert(name.clone(), t.count);
        decided.insert(name, Decided { accepted: t.accepted, rejected: t.rejected });
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

pub async fn stats(store: &Store) -> store::Result<Stats> {
    let totals = stats::totals(store).await?;
    let by_status = with_all(counts(store, By::Status).await?, Status::ALL.iter().map(|s| s.as_str()));
    let by_label = with_all(counts(store, By::Label).await?, LabelType::ALL.iter().map(|l| l.as_str()));
    let by_kind = with_all(counts(store, By::Kind).await?, Kind::ALL.iter().map(|k| k.as_str()));
    let prompts_by_kind = with_all(counts(store, By::PromptKind).await?, Kind::ALL.iter().map(|k| k.as_str()));
    let (by_teacher, decided_by_teacher) = grouped(store, By::Teacher).await?;
    let (by_source, decided_by_source) = grouped(store, By::Source).await?;
    let token_counts = counts(store, By::TokenCounter).await?;
    let verifiers = stats::verifiers(store)
        .await?
        .into_iter()
        .map(|v| {
            let stats = VerifierStats {
                scored: v.scored,
                passed: v.passed,
                pass_rate: if v.scored > 0 { v.passed as f64 / v.scored as f64 } else { 0.0 },
                mean: v.mean.unwrap_or(0.0),
                errors: v.errors,
            };
            (v.name, stats)
        })
        .collect();
    let (all, reasoning, answer) = stats::token_lengths(store).await?;
    Ok(Stats {
        prompts: totals.prompts,
        prompts_with_reference: totals.prompts_with_reference,
        samples: totals.samples,
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
        with_logprobs: totals.samples_with_logprobs,
        edited: store::edits::edited(store).await?,
        unindexed: stats::unindexed(store).await?,
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
