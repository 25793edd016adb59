//! `retort rules check|dry-run|apply`: running rules over the store.
//!
//! A rule first selects what it would change (`select`), then — when applied — records one
//! action, a decision per sample with the value it replaces (so undo is exact), and makes the
//! change, all in one transaction. A dry run makes the same selection and rolls back.

pub(crate) mod select;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::rules::{
    Expr, Rule, RuleError, RuleLine, check_filter_names, check_names, check_rule_names, parse_filter, parse_rule, parse_rules,
};
use crate::store::actions::{self, Move};
use crate::store::rules::SavedRule;
use crate::store::{self, Store, Tx};

#[derive(Debug, thiserror::Error)]
pub enum RuleRunError {
    #[error(transparent)]
    EvalSet(#[from] crate::rules::ngrams::EvalSetError),
    /// A rule or filter that does not parse, or names a verifier the store has no scores of.
    #[error(transparent)]
    Rule(#[from] RuleError),
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
    /// Decisions of rules before it in the same run that this rule changes back.
    pub overturns: Vec<Overturn>,
    /// What it moved between statuses and labels.
    #[serde(skip)]
    pub moves: Vec<Move>,
}

/// Samples whose status or label a rule changes from what an earlier rule of the same run had
/// set: the later rule overturns the earlier one (`reject` then `accept` of the same samples).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Overturn {
    /// The earlier rule, whose decisions are overturned.
    pub rule: String,
    /// `status` or `label`.
    pub field: String,
    /// What the earlier rule had set.
    pub from: String,
    /// What the later rule sets instead.
    pub to: String,
    pub samples: u64,
}

impl Overturn {
    /// One line saying it, for the rule `later` that overturns: ``rule `b` overturns rule `a`
    /// on 8 samples (rejected -> accepted)``.
    #[must_use]
    pub fn describe(&self, later: &str) -> String {
        format!(
            "rule `{later}` overturns rule `{}` on {} sample{} ({} {} -> {})",
            self.rule,
            self.samples,
            if self.samples == 1 { "" } else { "s" },
            self.field,
            self.from,
            self.to
        )
    }
}

/// The name a rule's decisions are recorded under.
fn rule_name(rule: &Rule) -> String {
    rule.name.clone().unwrap_or_else(|| rule.to_string())
}

/// The verifiers `score.X` and `pass.X` may name: those with a verdict in the store.
pub async fn verifier_names(store: &Store) -> store::Result<Vec<String>> {
    store::scores::verifier_names(store).await
}

/// Checks the verifiers `rule` names against `known` ([`crate::rules::check_names`]); the error
/// locates the name in the rule as printed without its name, which is how rules are saved.
pub fn check_rule(rule: &Rule, known: &[String]) -> Result<(), RuleError> {
    let text = Rule { name: None, ..rule.clone() }.to_string();
    check_names(&text, known).map_err(|e| RuleError::new(&format!("rule {}", rule_name(rule)), 1, &text, e))
}

/// Parses a rules file (`origin` names it in errors) and checks the verifiers its rules name
/// against the store's, each error located in its line.
pub async fn load(store: &Store, origin: &str, text: &str) -> Result<Vec<RuleLine>, RuleRunError> {
    let rules = parse_rules(origin, text)?;
    check_rule_names(origin, &rules, &verifier_names(store).await?)?;
    Ok(rules)
}

/// Parses a `--where` filter and checks the verifiers it names against the store's.
pub async fn filter(store: &Store, src: &str) -> Result<Expr, RuleRunError> {
    let expr = parse_filter(src)?;
    check_filter_names(src, &verifier_names(store).await?)?;
    Ok(expr)
}

/// Checks every rule's verifier names before anything runs.
async fn check_all(store: &Store, rules: &[&Rule]) -> Result<(), RuleRunError> {
    let known = verifier_names(store).await?;
    for rule in rules {
        check_rule(rule, &known)?;
    }
    Ok(())
}

/// Counts what `rule` would change, writing nothing.
pub async fn dry_run(store: &Store, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    check_all(store, &[rule]).await?;
    let mut tx = store.snapshot().await?;
    let changed = select::select(&mut tx, rule, opts.override_curator, &opts.base_dir).await?;
    tx.rollback().await?;
    Ok(RuleReport { name: rule_name(rule), rule: rule.to_string(), changed, action_id: None, overturns: Vec::new(), moves: Vec::new() })
}

/// Applies `rule` in one transaction and records it in the history.
pub async fn apply(store: &Store, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    check_all(store, &[rule]).await?;
    apply_one(store, rule, opts, &mut Vec::new()).await
}

/// Applies `rules` in order, each in one transaction of its own (recorded for undo, as
/// [`apply`]), calling `each` with each report as it is done; a rule's report says which earlier
/// rules of the list it overturned. Every rule's verifier names are checked before the first runs.
pub async fn apply_all(
    store: &Store,
    rules: &[Rule],
    opts: &RunOptions,
    mut each: impl FnMut(&RuleReport),
) -> Result<Vec<RuleReport>, RuleRunError> {
    check_all(store, &rules.iter().collect::<Vec<_>>()).await?;
    let mut earlier = Vec::new();
    let mut reports = Vec::with_capacity(rules.len());
    for rule in rules {
        let report = apply_one(store, rule, opts, &mut earlier).await?;
        each(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Applies one rule in its own transaction; `earlier` holds the actions (and their rules) of the
/// run so far, which it notes its overturns of and joins.
async fn apply_one(store: &Store, rule: &Rule, opts: &RunOptions, earlier: &mut Vec<(i64, String)>) -> Result<RuleReport, RuleRunError> {
    let mut tx = store.write().await?;
    let report = apply_in(&mut tx, rule, opts, earlier).await?;
    tx.commit().await?;
    if report.changed > 10_000 {
        store.checkpoint().await;
    }
    Ok(report)
}

/// Runs `rules` in order as `apply` would, each seeing the ones before it, then rolls everything
/// back: the counts a file of rules would give, and which rules overturn which, with nothing
/// written.
pub async fn dry_run_all(store: &Store, rules: &[Rule], opts: &RunOptions) -> Result<Vec<RuleReport>, RuleRunError> {
    let rules: Vec<&Rule> = rules.iter().collect();
    check_all(store, &rules).await?;
    in_order(store, &rules, opts).await
}

async fn in_order(store: &Store, rules: &[&Rule], opts: &RunOptions) -> Result<Vec<RuleReport>, RuleRunError> {
    let mut tx = store.write().await?;
    let mut reports = Vec::with_capacity(rules.len());
    let mut earlier = Vec::new();
    for rule in rules {
        let mut report = apply_in(&mut tx, rule, opts, &mut earlier).await?;
        report.action_id = None;
        report.moves.clear();
        reports.push(report);
    }
    tx.rollback().await?;
    Ok(reports)
}

/// A saved rule's part in a dry run of the saved rules in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCount {
    pub name: String,
    /// What it would change, after the rules before it; or why it cannot run (it does not parse,
    /// or names a verifier the store has no scores of): then it is left out of the order.
    pub outcome: Result<RuleReport, String>,
}

/// Dry-runs the saved rules in their order (the Rules tab's), each after the ones before it, as
/// `retort rules dry-run` runs a file: the same counts, and the same overturns. Nothing is written.
pub async fn dry_run_saved(store: &Store, saved: &[SavedRule], opts: &RunOptions) -> Result<Vec<SavedCount>, RuleRunError> {
    let known = verifier_names(store).await?;
    let parsed: Vec<Result<Rule, String>> = saved
        .iter()
        .map(|s| {
            let mut rule = parse_rule(&s.source).map_err(|e| format!("rule {}: {e}", s.name))?;
            rule.name = Some(s.name.clone());
            check_rule(&rule, &known).map_err(|e| e.to_string())?;
            Ok(rule)
        })
        .collect();
    let runnable: Vec<&Rule> = parsed.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut reports = in_order(store, &runnable, opts).await?.into_iter();
    Ok(saved
        .iter()
        .zip(parsed.iter())
        .map(|(s, p)| SavedCount {
            name: s.name.clone(),
            outcome: match p {
                Ok(_) => reports.next().ok_or_else(|| "not run".to_owned()),
                Err(e) => Err(e.clone()),
            },
        })
        .collect())
}

async fn apply_in(tx: &mut Tx, rule: &Rule, opts: &RunOptions, earlier: &mut Vec<(i64, String)>) -> Result<RuleReport, RuleRunError> {
    let name = rule_name(rule);
    let changed = select::select(tx, rule, opts.override_curator, &opts.base_dir).await?;
    let rule_id = save_rule(tx, &name, rule).await?;
    let mut action_id = None;
    let mut moves = Vec::new();
    let mut overturns = Vec::new();
    if changed > 0 {
        let actor = format!("rule:{name}");
        let id = actions::record(tx, &actor, Some(rule_id), &rule.to_string()).await?;
        actions::write_changes(tx, id, &rule.action, &actor).await?;
        moves = actions::moves(tx, id).await?;
        let ids: Vec<i64> = earlier.iter().map(|(id, _)| *id).collect();
        for (by, field, from, to, n) in actions::overturned(tx, id, &ids).await? {
            let rule = earlier.iter().find(|(id, _)| *id == by).map_or_else(String::new, |(_, name)| name.clone());
            overturns.push(Overturn { rule, field, from, to, samples: u64::try_from(n).unwrap_or(0) });
        }
        earlier.push((id, name.clone()));
        action_id = Some(id);
    }
    Ok(RuleReport { name, rule: rule.to_string(), changed, action_id, overturns, moves })
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
