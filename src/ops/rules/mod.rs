//! `retort rules check|dry-run|apply`: running rules over the store.
//!
//! A rule first selects what it would change (`select`), then — when applied — records one
//! action, a decision per sample with the value it replaces (so undo is exact), and makes the
//! change, all in one transaction. A dry run makes the same selection and rolls back.

pub(crate) mod select;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::rules::Rule;
use crate::store::actions::{self, Move};
use crate::store::{self, Store, Tx};

#[derive(Debug, thiserror::Error)]
pub enum RuleRunError {
    #[error(transparent)]
    EvalSet(#[from] crate::rules::ngrams::EvalSetError),
    #[error("the store: {0}")]
    Store(store::StoreError),
}

// The cause is in the message, not chained as a source: `{:#}` would print it twice.
impl From<store::StoreError> for RuleRunError {
    fn from(e: store::StoreError) -> Self {
        Self::Store(e)
    }
}

/// How rules run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Let rules overturn a curator's own decisions.
    pub override_curator: bool,
    /// Where relative paths in rules (`contaminated by "evals.jsonl"`) are found.
    pub base_dir: PathBuf,
}

/// What one rule did, or would do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleReport {
    pub name: String,
    pub rule: String,
    /// Samples the rule changes (or would change).
    pub changed: u64,
    /// The action recorded in the history, for undo; none for a dry run or when nothing changed.
    pub action_id: Option<i64>,
    /// What it moved between statuses and labels.
    #[serde(skip)]
    pub moves: Vec<Move>,
}

/// The name a rule's decisions are recorded under.
fn rule_name(rule: &Rule) -> String {
    rule.name.clone().unwrap_or_else(|| rule.to_string())
}

/// Counts what `rule` would change, writing nothing.
pub async fn dry_run(store: &Store, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    let mut tx = store.snapshot().await?;
    let changed = select::select(&mut tx, rule, opts.override_curator, &opts.base_dir).await?;
    tx.rollback().await?;
    Ok(RuleReport { name: rule_name(rule), rule: rule.to_string(), changed, action_id: None, moves: Vec::new() })
}

/// Applies `rule` in one transaction and records it in the history.
pub async fn apply(store: &Store, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    let mut tx = store.write().await?;
    let report = apply_in(&mut tx, rule, opts).await?;
    tx.commit().await?;
    if report.changed > 10_000 {
        store.checkpoint().await;
    }
    Ok(report)
}

/// Runs `rules` in order as `apply` would, each seeing the ones before it, then rolls everything
/// back: the counts a file of rules would give, with nothing written.
pub async fn dry_run_all(store: &Store, rules: &[Rule], opts: &RunOptions) -> Result<Vec<RuleReport>, RuleRunError> {
    let mut tx = store.write().await?;
    let mut reports = Vec::with_capacity(rules.len());
    for rule in rules {
        let mut report = apply_in(&mut tx, rule, opts).await?;
        report.action_id = None;
        report.moves.clear();
        reports.push(report);
    }
    tx.rollback().await?;
    Ok(reports)
}

async fn apply_in(tx: &mut Tx, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    let name = rule_name(rule);
    let changed = select::select(tx, rule, opts.override_curator, &opts.base_dir).await?;
    let rule_id = save_rule(tx, &name, rule).await?;
    let mut action_id = None;
    let mut moves = Vec::new();
    if changed > 0 {
        let actor = format!("rule:{name}");
        let id = actions::record(tx, &actor, Some(rule_id), &rule.to_string()).await?;
        actions::write_changes(tx, id, &rule.action, &actor).await?;
        moves = actions::moves(tx, id).await?;
        action_id = Some(id);
    }
    Ok(RuleReport { name, rule: rule.to_string(), changed, action_id, moves })
}

/// Saves (or updates) a rule under `name` without applying it (the TUI's Rules tab).
pub async fn save(store: &Store, name: &str, rule: &Rule) -> store::Result<()> {
    let mut tx = store.write().await?;
    save_rule(&mut tx, name, rule).await?;
    tx.commit().await
}

/// Saves (or updates) a rule by name, so the store keeps the rules that shaped it.
async fn save_rule(tx: &mut Tx, name: &str, rule: &Rule) -> store::Result<i64> {
    let mut saved = rule.clone();
    saved.name = None;
    store::rules::save(tx, name, &saved.to_string()).await
}

/// The directory relative paths in a rules file are resolved against.
#[must_use]
pub fn base_dir_of(rules_file: Option<&Path>) -> PathBuf {
    rules_file.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_owned)
}
