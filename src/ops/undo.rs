//! `retort undo`: reverting actions — one key press, one batch, one rule application.
//!
//! Each decision recorded the value it replaced; undo puts it back where the sample still holds
//! the value the decision set (a later change by someone else is not overwritten).

use serde::Serialize;
use sqlx::SqliteConnection;

use crate::store::{self, Store};

/// Which actions to undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    /// The last N actions not yet undone, newest first.
    Last(u32),
    /// Every application of the rule with this name.
    Rule(String),
    /// One action by id.
    Action(i64),
}

/// One reverted action.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Undone {
    pub action_id: i64,
    pub actor: String,
    pub description: String,
    /// Samples put back.
    pub reverted: u64,
    /// What it moved between statuses and labels.
    #[serde(skip)]
    pub moves: Vec<crate::ops::decide::Move>,
}

/// Undoes the target's actions in one transaction, newest first.
pub async fn undo(store: &Store, target: &UndoTarget) -> Result<Vec<Undone>, sqlx::Error> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let actions: Vec<(i64, String, String)> = match target {
        UndoTarget::Last(n) => {
            sqlx::query_as("SELECT id, actor, description FROM actions WHERE undone_at IS NULL ORDER BY id DESC LIMIT ?")
                .bind(i64::from(*n))
                .fetch_all(&mut *tx)
                .await?
        }
        UndoTarget::Rule(name) => {
            sqlx::query_as("SELECT id, actor, description FROM actions WHERE undone_at IS NULL AND actor = ? ORDER BY id DESC")
                .bind(format!("rule:{name}"))
                .fetch_all(&mut *tx)
                .await?
        }
        UndoTarget::Action(id) => {
            sqlx::query_as("SELECT id, actor, description FROM actions WHERE undone_at IS NULL AND id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
        }
    };
    let mut out = Vec::with_capacity(actions.len());
    for (id, actor, description) in actions {
        let moves = moving(&mut tx, id, true).await?;
        let reverted = revert(&mut tx, id).await?;
        out.push(Undone { action_id: id, actor, description, reverted, moves });
    }
    tx.commit().await?;
    store.checkpoint().await;
    Ok(out)
}

/// What undoing an action runs: every decision's old value put back, where the sample still
/// holds the value the decision set. `?1` is the action, `?2` the time.
const REVERT: [&str; 6] = [
    "UPDATE samples SET status = d.old_value, decided_by = d.old_by, decided_at = d.old_at FROM decisions d \
     WHERE d.action_id = ?1 AND d.field = 'status' AND samples.id = d.sample_id AND samples.status = d.new_value",
    "UPDATE samples SET label = d.old_value FROM decisions d \
     WHERE d.action_id = ?1 AND d.field = 'label' AND samples.id = d.sample_id AND samples.label = d.new_value",
    // `IN (subquery)` is evaluated once into a lookup table; a correlated EXISTS would scan the
    // action's decisions for every tagged sample.
    "DELETE FROM sample_tags WHERE (sample_id, tag_id) IN \
     (SELECT d.sample_id, t.id FROM decisions d JOIN tags t ON t.name = d.new_value WHERE d.action_id = ?1 AND d.field = 'tag')",
    "INSERT OR IGNORE INTO sample_tags (sample_id, tag_id) SELECT d.sample_id, t.id FROM decisions d JOIN tags t ON t.name = d.old_value \
     WHERE d.action_id = ?1 AND d.field = 'untag'",
    "DELETE FROM notes WHERE sample_id IN (SELECT sample_id FROM decisions WHERE action_id = ?1 AND field = 'note' AND old_value IS NULL)",
    "INSERT INTO notes (sample_id, note, updated_at) SELECT d.sample_id, d.old_value, ?2 FROM decisions d \
     WHERE d.action_id = ?1 AND d.field = 'note' AND d.old_value IS NOT NULL \
     ON CONFLICT (sample_id) DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at",
];

/// What redoing an undone action runs: the mirror of [`REVERT`].
const REAPPLY: [&str; 6] = [
    "UPDATE samples SET status = d.new_value, decided_by = (SELECT actor FROM actions WHERE id = d.action_id), decided_at = ?2 \
     FROM decisions d WHERE d.action_id = ?1 AND d.field = 'status' AND samples.id = d.sample_id AND samples.status = d.old_value",
    "UPDATE samples SET label = d.new_value FROM decisions d \
     WHERE d.action_id = ?1 AND d.field = 'label' AND samples.id = d.sample_id AND samples.label = d.old_value",
    "INSERT OR IGNORE INTO sample_tags (sample_id, tag_id) SELECT d.sample_id, t.id FROM decisions d JOIN tags t ON t.name = d.new_value \
     WHERE d.action_id = ?1 AND d.field = 'tag'",
    "DELETE FROM sample_tags WHERE (sample_id, tag_id) IN \
     (SELECT d.sample_id, t.id FROM decisions d JOIN tags t ON t.name = d.old_value WHERE d.action_id = ?1 AND d.field = 'untag')",
    "DELETE FROM notes WHERE sample_id IN (SELECT sample_id FROM decisions WHERE action_id = ?1 AND field = 'note' AND new_value = '')",
    "INSERT INTO notes (sample_id, note, updated_at) SELECT d.sample_id, d.new_value, ?2 FROM decisions d \
     WHERE d.action_id = ?1 AND d.field = 'note' AND d.new_value != '' \
     ON CONFLICT (sample_id) DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at",
];

/// What undoing (`back`) or redoing an action is about to move of the statuses and labels: its
/// decisions on samples that still hold the value it left (undo) or found (redo).
async fn moving(conn: &mut SqliteConnection, action_id: i64, back: bool) -> Result<Vec<crate::ops::decide::Move>, sqlx::Error> {
    let sql = if back {
        "SELECT d.new_value, d.old_value, count(*) FROM decisions d JOIN samples s ON s.id = d.sample_id WHERE d.action_id = ? \
         AND ((d.field = 'status' AND s.status = d.new_value) OR (d.field = 'label' AND s.label = d.new_value)) GROUP BY 1, 2"
    } else {
        "SELECT d.old_value, d.new_value, count(*) FROM decisions d JOIN samples s ON s.id = d.sample_id WHERE d.action_id = ? \
         AND ((d.field = 'status' AND s.status = d.old_value) OR (d.field = 'label' AND s.label = d.old_value)) GROUP BY 1, 2"
    };
    let rows: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(sql).bind(action_id).fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().filter_map(|(from, to, n)| Some(crate::ops::decide::Move { from: from?, to: to?, n })).collect())
}

/// Runs `statements` for one action; returns the rows they changed.
async fn run_statements(conn: &mut SqliteConnection, statements: &[&'static str], action_id: i64) -> Result<u64, sqlx::Error> {
    let now = store::now();
    let mut n = 0;
    for sql in statements {
        let mut q = sqlx::query(*sql).bind(action_id);
        if sql.contains("?2") {
            q = q.bind(now);
        }
        n += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

/// Puts back what one action changed.
pub async fn revert(conn: &mut SqliteConnection, action_id: i64) -> Result<u64, sqlx::Error> {
    let n = run_statements(conn, &REVERT, action_id).await?;
    sqlx::query("UPDATE actions SET undone_at = ? WHERE id = ?").bind(store::now()).bind(action_id).execute(&mut *conn).await?;
    Ok(n)
}

/// Re-applies the most recently undone action (when nothing was decided since on its samples).
/// Undo goes newest first, so of actions undone in the same second the oldest was undone last.
pub async fn redo(store: &Store) -> Result<Option<Undone>, sqlx::Error> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let Some((id, actor, description)): Option<(i64, String, String)> = sqlx::query_as(
        "SELECT id, actor, description FROM actions WHERE undone_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM actions later WHERE later.id > actions.id AND later.undone_at IS NULL) \
         ORDER BY undone_at DESC, id ASC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tx.rollback().await?;
        return Ok(None);
    };
    let moves = moving(&mut tx, id, false).await?;
    let n = run_statements(&mut tx, &REAPPLY, id).await?;
    sqlx::query("UPDATE actions SET undone_at = NULL WHERE id = ?").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some(Undone { action_id: id, actor, description, reverted: n, moves }))
}
