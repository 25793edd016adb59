//! `retort rules check|dry-run|apply`: running rules over the store.
//!
//! A rule first selects what it would change (`select`), then — when applied — records one
//! action, a decision per sample with the value it replaces (so undo is exact), and makes the
//! change, all in one transaction. A dry run makes the same selection and rolls back.

pub(crate) mod select;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::SqliteConnection;

use crate::domain::Status;
use crate::rules::{Action, Rule};
use crate::store::{self, Store};

#[derive(Debug, thiserror::Error)]
pub enum RuleRunError {
    #[error("{0}")]
    Input(String),
    #[error("the store: {0}")]
    Sql(sqlx::Error),
}

// The cause is in the message, not chained as a source: `{:#}` would print it twice.
impl From<sqlx::Error> for RuleRunError {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(e)
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
}

/// The name a rule's decisions are recorded under.
fn rule_name(rule: &Rule) -> String {
    rule.name.clone().unwrap_or_else(|| rule.to_string())
}

/// Counts what `rule` would change, writing nothing.
pub async fn dry_run(store: &Store, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    let mut tx = store.pool().begin().await?;
    let changed = select::select(&mut tx, rule, opts.override_curator, &opts.base_dir).await?;
    tx.rollback().await?;
    Ok(RuleReport { name: rule_name(rule), rule: rule.to_string(), changed, action_id: None })
}

/// Applies `rule` in one transaction and records it in the history.
pub async fn apply(store: &Store, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
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
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let mut reports = Vec::with_capacity(rules.len());
    for rule in rules {
        let mut report = apply_in(&mut tx, rule, opts).await?;
        report.action_id = None;
        reports.push(report);
    }
    tx.rollback().await?;
    Ok(reports)
}

async fn apply_in(conn: &mut SqliteConnection, rule: &Rule, opts: &RunOptions) -> Result<RuleReport, RuleRunError> {
    let name = rule_name(rule);
    let changed = select::select(conn, rule, opts.override_curator, &opts.base_dir).await?;
    let rule_id = save_rule(conn, &name, rule).await?;
    let mut action_id = None;
    if changed > 0 {
        let id = record_action(conn, &format!("rule:{name}"), Some(rule_id), &rule.to_string()).await?;
        write_changes(conn, id, &rule.action, &format!("rule:{name}")).await?;
        action_id = Some(id);
    }
    Ok(RuleReport { name, rule: rule.to_string(), changed, action_id })
}

/// Saves (or updates) a rule under `name` without applying it (the TUI's Rules tab).
pub async fn save(store: &Store, name: &str, rule: &Rule) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    save_rule(&mut tx, name, rule).await?;
    tx.commit().await
}

/// Saves (or updates) a rule by name, so the store keeps the rules that shaped it.
async fn save_rule(conn: &mut SqliteConnection, name: &str, rule: &Rule) -> Result<i64, sqlx::Error> {
    let now = store::now();
    let mut saved = rule.clone();
    saved.name = None;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO rules (name, source, created_at, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET source = excluded.source, updated_at = excluded.updated_at RETURNING id",
    )
    .bind(name)
    .bind(saved.to_string())
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Starts an action: the unit undo reverts.
pub async fn record_action(conn: &mut SqliteConnection, actor: &str, rule_id: Option<i64>, description: &str) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as("INSERT INTO actions (actor, rule_id, description, created_at) VALUES (?, ?, ?, ?) RETURNING id")
        .bind(actor)
        .bind(rule_id)
        .bind(description)
        .bind(store::now())
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

/// Writes the decisions for the samples in `rule_selection`, then changes them.
pub async fn write_changes(conn: &mut SqliteConnection, action_id: i64, action: &Action, actor: &str) -> Result<(), sqlx::Error> {
    let now = store::now();
    match action {
        Action::Label(label) => {
            sqlx::query(
                "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value, reason) \
                 SELECT ?, s.id, 'label', s.label, ?, r.reason FROM temp.rule_selection r JOIN samples s ON s.id = r.sample_id",
            )
            .bind(action_id)
            .bind(label.as_str())
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE samples SET label = ? WHERE id IN (SELECT sample_id FROM temp.rule_selection)")
                .bind(label.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Action::Tag(tag) | Action::Untag(tag) => {
            let tagging = matches!(action, Action::Tag(_));
            let (tag_id,): (i64,) =
                sqlx::query_as("INSERT INTO tags (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id")
                    .bind(tag)
                    .fetch_one(&mut *conn)
                    .await?;
            sqlx::query(
                "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value, reason) \
                 SELECT ?, sample_id, ?, ?, ?, reason FROM temp.rule_selection",
            )
            .bind(action_id)
            .bind(if tagging { "tag" } else { "untag" })
            .bind(if tagging { None } else { Some(tag) })
            .bind(if tagging { Some(tag) } else { None })
            .execute(&mut *conn)
            .await?;
            let sql = if tagging {
                "INSERT OR IGNORE INTO sample_tags (sample_id, tag_id) SELECT sample_id, ? FROM temp.rule_selection"
            } else {
                "DELETE FROM sample_tags WHERE tag_id = ? AND sample_id IN (SELECT sample_id FROM temp.rule_selection)"
            };
            sqlx::query(sql).bind(tag_id).execute(&mut *conn).await?;
        }
        status_change => {
            let status = match status_change {
                Action::SetStatus(s) => *s,
                _ => Status::Rejected,
            };
            sqlx::query(
                "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value, old_by, old_at, reason) \
                 SELECT ?, s.id, 'status', s.status, ?, s.decided_by, s.decided_at, r.reason \
                 FROM temp.rule_selection r JOIN samples s ON s.id = r.sample_id",
            )
            .bind(action_id)
            .bind(status.as_str())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE samples SET status = ?, decided_by = ?, decided_at = ? WHERE id IN (SELECT sample_id FROM temp.rule_selection)",
            )
            .bind(status.as_str())
            .bind(actor)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The directory relative paths in a rules file are resolved against.
#[must_use]
pub fn base_dir_of(rules_file: Option<&Path>) -> PathBuf {
    rules_file.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_owned)
}
