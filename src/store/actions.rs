//! The change log: actions (one key press, one batch, one rule application — the unit undo
//! reverts) and their decisions (a row per sample and field, with the value it replaced, so an
//! undo is exact); and the writes that make and revert them.
//!
//! A rule's change is made on the samples in the temporary table `rule_selection` (see
//! [`super::selection`]), a curator's on the ids it names ([`decide`]); both in the caller's
//! write transaction.

use sqlx::SqliteConnection;

use super::{Result, Tx, now};
use crate::domain::{LabelType, Status};
use crate::rules::Action;

/// Samples an action moved from one status, or one label, to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Status { from: Status, to: Status, n: i64 },
    Label { from: LabelType, to: LabelType, n: i64 },
}

impl Move {
    /// A history row group (`field`, `old_value`, `new_value`, count) as a move; none for the
    /// fields that move no count (tags, notes).
    fn from_row((field, from, to, n): (String, Option<String>, Option<String>, i64)) -> Option<Self> {
        let (from, to) = (from?, to?);
        match field.as_str() {
            "status" => Some(Move::Status { from: from.parse().ok()?, to: to.parse().ok()?, n }),
            "label" => Some(Move::Label { from: from.parse().ok()?, to: to.parse().ok()?, n }),
            _ => None,
        }
    }
}

/// An action of the history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActionRow {
    pub id: i64,
    pub actor: String,
    pub description: String,
}

/// Which actions (not yet undone) to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The newest `n`, newest first.
    Last(u32),
    /// Every one recorded under this actor, newest first.
    Actor(String),
    /// One by id.
    Id(i64),
}

/// Starts an action: the unit undo reverts.
pub async fn record(tx: &mut Tx, actor: &str, rule_id: Option<i64>, description: &str) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as("INSERT INTO actions (actor, rule_id, description, created_at) VALUES (?, ?, ?, ?) RETURNING id")
        .bind(actor)
        .bind(rule_id)
        .bind(description)
        .bind(now())
        .fetch_one(tx.conn())
        .await?;
    Ok(id)
}

/// A curator's change of one field on some samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Status(Status),
    Label(LabelType),
}

/// Records and makes a curator's change on those of `ids` it changes, as one action under
/// `actor`; returns the action and what it moved, or none (and nothing recorded) when every
/// sample already holds the value. A key press's write: five statements, the fewest that keep
/// the history exact, since each waits on its own turn of the connection's thread, which a
/// busy machine hands out slowly.
pub async fn decide(tx: &mut Tx, ids: &[i64], change: Change, actor: &str, description: &str) -> Result<Option<(i64, Vec<Move>)>> {
    let action_id = record(tx, actor, None, description).await?;
    let moves = change_under(tx, action_id, ids, change, actor).await?;
    Ok((!moves.is_empty()).then_some((action_id, moves)))
}

/// Makes a curator's change on those of `ids` it changes, as part of action `action_id`;
/// returns what it moved (nothing when every sample already holds the value).
pub async fn change_under(tx: &mut Tx, action_id: i64, ids: &[i64], change: Change, actor: &str) -> Result<Vec<Move>> {
    let conn = tx.conn();
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    // Numbered parameters throughout: sqlx counts a plain `?` after a numbered one wrong.
    let (record, update, value) = match change {
        Change::Status(s) => (
            "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value, old_by, old_at) \
             SELECT ?1, id, 'status', status, ?2, decided_by, decided_at FROM samples \
             WHERE id IN (SELECT value FROM json_each(?3)) AND status IS NOT ?2 RETURNING old_value",
            "UPDATE samples SET status = ?1, decided_by = ?3, decided_at = ?4 WHERE id IN (SELECT value FROM json_each(?2)) AND status IS NOT ?1",
            s.as_str(),
        ),
        Change::Label(l) => (
            "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value) \
             SELECT ?1, id, 'label', label, ?2 FROM samples \
             WHERE id IN (SELECT value FROM json_each(?3)) AND label IS NOT ?2 RETURNING old_value",
            "UPDATE samples SET label = ?1 WHERE id IN (SELECT value FROM json_each(?2)) AND label IS NOT ?1",
            l.as_str(),
        ),
    };
    let old: Vec<(String,)> = sqlx::query_as(record).bind(action_id).bind(value).bind(&ids).fetch_all(&mut *conn).await?;
    if old.is_empty() {
        return Ok(Vec::new());
    }
    let update = sqlx::query(update).bind(value).bind(&ids);
    match change {
        Change::Status(_) => update.bind(actor).bind(now()),
        Change::Label(_) => update,
    }
    .execute(&mut *conn)
    .await?;
    // What moved, from the values the history rows replaced.
    let mut counts: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for (from,) in old {
        *counts.entry(from).or_default() += 1;
    }
    let moves = counts
        .into_iter()
        .filter_map(|(from, n)| match change {
            Change::Status(to) => Some(Move::Status { from: from.parse().ok()?, to, n }),
            Change::Label(to) => Some(Move::Label { from: from.parse().ok()?, to, n }),
        })
        .collect();
    Ok(moves)
}

/// Writes the decisions for the selected samples, then changes them.
pub async fn write_changes(tx: &mut Tx, action_id: i64, action: &Action, actor: &str) -> Result<()> {
    let conn = tx.conn();
    match action {
        Action::Label(label) => {
            sqlx::query(
                "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value, reason) \
                 SELECT ?, s.id, 'label', s.label, ?, r.reason FROM temp.rule_selection r JOIN samples s ON s.id = r.sample_id",
            )
            .bind(action_id)
            .bind(label)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE samples SET label = ? WHERE id IN (SELECT sample_id FROM temp.rule_selection)")
                .bind(label)
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
            .bind(status)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE samples SET status = ?, decided_by = ?, decided_at = ? WHERE id IN (SELECT sample_id FROM temp.rule_selection)",
            )
            .bind(status)
            .bind(actor)
            .bind(now())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Sets (or, with an empty text, removes) the note on a sample, recorded under `action_id`.
pub async fn set_note(tx: &mut Tx, action_id: i64, sample_id: i64, note: &str) -> Result<()> {
    let conn = tx.conn();
    let old: Option<(String,)> =
        sqlx::query_as("SELECT note FROM notes WHERE sample_id = ?").bind(sample_id).fetch_optional(&mut *conn).await?;
    sqlx::query("INSERT INTO decisions (action_id, sample_id, field, old_value, new_value) VALUES (?, ?, 'note', ?, ?)")
        .bind(action_id)
        .bind(sample_id)
        .bind(old.map(|(n,)| n))
        .bind(note)
        .execute(&mut *conn)
        .await?;
    if note.is_empty() {
        sqlx::query("DELETE FROM notes WHERE sample_id = ?").bind(sample_id).execute(&mut *conn).await?;
    } else {
        sqlx::query(
            "INSERT INTO notes (sample_id, note, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (sample_id) DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at",
        )
        .bind(sample_id)
        .bind(note)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What an action's decisions moved of the statuses and labels, from its own history rows:
/// exact, and no count of the store.
pub async fn moves(tx: &mut Tx, action_id: i64) -> Result<Vec<Move>> {
    moves_on(tx.conn(), action_id).await
}

async fn moves_on(conn: &mut SqliteConnection, action_id: i64) -> Result<Vec<Move>> {
    let rows: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT field, old_value, new_value, count(*) FROM decisions WHERE action_id = ? AND field IN ('status', 'label') GROUP BY 1, 2, 3",
    )
    .bind(action_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().filter_map(Move::from_row).collect())
}

/// The actions not yet undone that `which` names, newest first.
pub async fn not_undone(tx: &mut Tx, which: &Which) -> Result<Vec<ActionRow>> {
    let conn = tx.conn();
    Ok(match which {
        Which::Last(n) => {
            sqlx::query_as("SELECT id, actor, description FROM actions WHERE undone_at IS NULL ORDER BY id DESC LIMIT ?")
                .bind(i64::from(*n))
                .fetch_all(conn)
                .await?
        }
        Which::Actor(actor) => {
            sqlx::query_as("SELECT id, actor, description FROM actions WHERE undone_at IS NULL AND actor = ? ORDER BY id DESC")
                .bind(actor)
                .fetch_all(conn)
                .await?
        }
        Which::Id(id) => {
            sqlx::query_as("SELECT id, actor, description FROM actions WHERE undone_at IS NULL AND id = ?").bind(id).fetch_all(conn).await?
        }
    })
}

/// The action a redo re-applies: the one undone last, when nothing after it is in force.
/// Undo goes newest first, so of actions undone in the same second the oldest was undone last.
pub async fn last_undone(tx: &mut Tx) -> Result<Option<ActionRow>> {
    Ok(sqlx::query_as(
        "SELECT id, actor, description FROM actions WHERE undone_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM actions later WHERE later.id > actions.id AND later.undone_at IS NULL) \
         ORDER BY undone_at DESC, id ASC LIMIT 1",
    )
    .fetch_optional(tx.conn())
    .await?)
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
pub async fn moving(tx: &mut Tx, action_id: i64, back: bool) -> Result<Vec<Move>> {
    let sql = if back {
        "SELECT d.field, d.new_value, d.old_value, count(*) FROM decisions d JOIN samples s ON s.id = d.sample_id WHERE d.action_id = ? \
         AND ((d.field = 'status' AND s.status = d.new_value) OR (d.field = 'label' AND s.label = d.new_value)) GROUP BY 1, 2, 3"
    } else {
        "SELECT d.field, d.old_value, d.new_value, count(*) FROM decisions d JOIN samples s ON s.id = d.sample_id WHERE d.action_id = ? \
         AND ((d.field = 'status' AND s.status = d.old_value) OR (d.field = 'label' AND s.label = d.old_value)) GROUP BY 1, 2, 3"
    };
    let rows: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(sql).bind(action_id).fetch_all(tx.conn()).await?;
    Ok(rows.into_iter().filter_map(Move::from_row).collect())
}

/// Runs `statements` for one action; returns the rows they changed.
async fn run_statements(conn: &mut SqliteConnection, statements: &[&'static str], action_id: i64) -> Result<u64> {
    let now = now();
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

/// Puts back what one action changed and marks it undone; returns the rows put back. An edit's
/// action changes one sample, its text and perhaps its label: one sample put back.
pub async fn revert(tx: &mut Tx, action_id: i64) -> Result<u64> {
    let conn = tx.conn();
    let n = run_statements(conn, &REVERT, action_id).await?.max(super::edits::revert(conn, action_id).await?);
    sqlx::query("UPDATE actions SET undone_at = ? WHERE id = ?").bind(now()).bind(action_id).execute(&mut *conn).await?;
    Ok(n)
}

/// Makes an undone action's changes again and marks it in force; returns the rows changed.
pub async fn reapply(tx: &mut Tx, action_id: i64) -> Result<u64> {
    let conn = tx.conn();
    let n = run_statements(conn, &REAPPLY, action_id).await?.max(super::edits::reapply(conn, action_id).await?);
    sqlx::query("UPDATE actions SET undone_at = NULL WHERE id = ?").bind(action_id).execute(&mut *conn).await?;
    Ok(n)
}

/// What action `action_id` overturned of the earlier actions `earlier`: per earlier action,
/// field and (old, new) value, how many of its samples' statuses or labels it changed back from
/// the value that earlier action had set (the latest of them to touch the sample).
pub async fn overturned(tx: &mut Tx, action_id: i64, earlier: &[i64]) -> Result<Vec<(i64, String, String, String, i64)>> {
    if earlier.is_empty() {
        return Ok(Vec::new());
    }
    let earlier = serde_json::to_string(earlier).unwrap_or_else(|_| "[]".into());
    let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
        "SELECT by_action, field, old_value, new_value, count(*) FROM ( \
           SELECT d.field AS field, d.old_value AS old_value, d.new_value AS new_value, \
             (SELECT e.action_id FROM json_each(?2) ids JOIN decisions e ON e.action_id = ids.value \
                AND e.sample_id = d.sample_id AND e.field = d.field AND e.new_value = d.old_value \
              ORDER BY e.action_id DESC LIMIT 1) AS by_action \
           FROM decisions d WHERE d.action_id = ?1 AND d.field IN ('status', 'label') AND d.old_value IS NOT NULL) \
         WHERE by_action IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    .bind(action_id)
    .bind(earlier)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}
