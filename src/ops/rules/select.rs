//! What a rule would change: the store selects what SQL decides; near-duplicates and
//! contamination read texts from it, decide here, and hand back their picks.

use std::collections::HashMap;
use std::path::Path;

use super::RuleRunError;
use crate::rules::minhash::{MinHasher, NearDuplicateIndex, Signature};
use crate::rules::ngrams::EvalSet;
use crate::rules::{Action, Rule};
use crate::store::{Tx, selection};

/// Fills the selection with the samples `rule` would change; returns how many.
pub async fn select(tx: &mut Tx, rule: &Rule, override_curator: bool, base: &Path) -> Result<u64, RuleRunError> {
    if let Some(n) = selection::by_predicate(tx, rule, override_curator).await? {
        return Ok(n);
    }
    let picks = match &rule.action {
        Action::RejectNearDuplicates { threshold } => near_duplicates(tx, rule, *threshold, override_curator).await?,
        Action::RejectContaminated { file, ngram } => {
            let path = if Path::new(file).is_absolute() { Path::new(file).to_owned() } else { base.join(file) };
            contaminated(tx, rule, &path, *ngram as usize, override_curator).await?
        }
        _ => Vec::new(),
    };
    selection::insert_picks(tx, &picks).await?;
    Ok(picks.len() as u64)
}

/// Signatures of a batch, computed on two threads.
fn signatures(hasher: &MinHasher, texts: &[String]) -> Vec<Signature> {
    let half = texts.len().div_ceil(2);
    std::thread::scope(|scope| {
        let (a, b) = texts.split_at(half.min(texts.len()));
        let other = scope.spawn(|| b.iter().map(|t| hasher.signature(t)).collect::<Vec<_>>());
        let mut out: Vec<Signature> = a.iter().map(|t| hasher.signature(t)).collect();
        out.extend(other.join().unwrap_or_default());
        out
    })
}

async fn near_duplicates(tx: &mut Tx, rule: &Rule, threshold: f64, override_curator: bool) -> Result<Vec<(i64, String)>, RuleRunError> {
    let rows = selection::texts(tx, rule.filter.as_ref()).await?;
    let hasher = MinHasher::default();
    let mut index = NearDuplicateIndex::new(threshold);
    let mut picks = Vec::new();
    for chunk in rows.chunks(4096) {
        let texts: Vec<String> = chunk.iter().map(|(_, t)| t.clone()).collect();
        for ((c, _), sig) in chunk.iter().zip(signatures(&hasher, &texts)) {
            if let Some(dup) = index.offer(c.id, sig)
                && (override_curator || !c.by_curator)
            {
                picks.push((c.id, format!("near-duplicate of #{} (similarity {:.2})", dup.of, dup.similarity)));
            }
        }
    }
    Ok(picks)
}

async fn contaminated(tx: &mut Tx, rule: &Rule, path: &Path, n: usize, override_curator: bool) -> Result<Vec<(i64, String)>, RuleRunError> {
    let eval = EvalSet::load(path, n)?;
    let mut verdicts: HashMap<i64, Option<u64>> = HashMap::new();
    let mut picks = Vec::new();
    selection::for_each_prompt(tx, rule.filter.as_ref(), |c, text| {
        let hit = *verdicts.entry(c.prompt_id).or_insert_with(|| eval.hit(text));
        if let Some(line) = hit
            && (override_curator || !c.by_curator)
        {
            picks.push((c.id, format!("prompt shares a {n}-gram with {}:{line}", path.display())));
        }
    })
    .await?;
    Ok(picks)
}
