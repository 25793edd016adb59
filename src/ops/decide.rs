//! A curator's own decisions: accept, reject, label, note — one key press or one batch of marked
//! samples is one action, recorded like a rule's so `undo` reverts it. Rules leave these alone
//! unless `--override`.

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe};

use crate::domain::{LabelType, Status};
use crate::ops::rules::select::reset;
use crate::ops::rules::{record_action, write_changes};
use crate::rules::Action;
use crate::store::{self, Store};

/// Who a curator's decisions are recorded as.
pub const CURATOR: &str = "curator";

/// Puts `ids` whose `column` differs from `value` into the selection; returns how many.
async fn select_ids(conn: &mut sqlx::SqliteConnection, ids: &[i64], column: &'static str, value: &str) -> Result<u64, sqlx::Error> {
    reset(conn).await?;
    let mut n = 0;
    for chunk in ids.chunks(500) {
        let mut args = SqliteArguments::default();
        for id in chunk {
            args.add(*id).map_err(sqlx::Error::Encode)?;
        }
        args.add(value.to_owned()).map_err(sqlx::Error::Encode)?;
        let sql = format!(
            "INSERT OR IGNORE INTO temp.rule_selection (sample_id) SELECT id FROM samples WHERE id IN ({}) AND {column} IS NOT ?",
            vec!["?"; chunk.len()].join(",")
        );
        n += sqlx::query_with(AssertSqlSafe(sql), args).execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

/// Samples an action moved from one status or label to another: `n` from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub n: i64,
}

/// What an action's decisions moved of the statuses and labels (read in its transaction, from
/// its own history rows: exact, and no count of the store).
pub async fn moves(conn: &mut sqlx::SqliteConnection, action_id: i64) -> Result<Vec<Move>, sqlx::Error> {
    let rows: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT old_value, new_value, count(*) FROM decisions WHERE action_id = ? AND field IN ('status', 'label') GROUP BY 1, 2",
    )
    .bind(action_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().filter_map(|(from, to, n)| Some(Move { from: from?, to: to?, n })).collect())
}

/// A curator's decision as written: its action, and what it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub action_id: i64,
    pub moves: Vec<Move>,
}

/// Sets the status of `ids` as the curator; returns the action id, or none when nothing changed.
pub async fn set_status(store: &Store, ids: &[i64], status: Status) -> Result<Option<Decided>, sqlx::Error> {
    change(store, ids, "status", status.as_str(), &Action::SetStatus(status), &format!("{} {} sample(s)", verb(status), ids.len())).await
}

/// Sets the label type of `ids` as the curator.
pub async fn set_label(store: &Store, ids: &[i64], label: LabelType) -> Result<Option<Decided>, sqlx::Error> {
    change(store, ids, "label", label.as_str(), &Action::Label(label), &format!("label {label} {} sample(s)", ids.len())).await
}

fn verb(status: Status) -> &'static str {
    match status {
        Status::Accepted => "accept",
        Status::Rejected => "reject",
        Status::Pending => "reset",
    }
}

async fn change(
    store: &Store,
    ids: &[i64],
    column: &'static str,
    value: &str,
    action: &Action,
    description: &str,
) -> Result<Option<Decided>, sqlx::Error> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    if select_ids(&mut tx, ids, column, value).await? == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let action_id = record_action(&mut tx, CURATOR, None, description).await?;
    write_changes(&mut tx, action_id, action, CURATOR).await?;
    let moves = moves(&mut tx, action_id).await?;
    tx.commit().await?;
    Ok(Some(Decided { action_id, moves }))
}

/// Sets (or, with an empty text, removes) the curator's note on a sample.
pub async fn set_note(store: &Store, id: i64, note: &str) -> Result<i64, sqlx::Error> {
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let old: Option<(String,)> = sqlx::query_as("SELECT note FROM notes WHERE sample_id = ?").bind(id).fetch_optional(&mut *tx).await?;
    let action_id = record_action(&mut tx, CURATOR, None, &format!("note on #{id}")).await?;
    sqlx::query("INSERT INTO decisions (action_id, sample_id, field, old_value, new_value) VALUES (?, ?, 'note', ?, ?)")
        .bind(action_id)
        .bind(id)
        .bind(old.map(|(n,)| n))
        .bind(note)
        .execute(&mut *tx)
        .await?;
    if note.is_empty() {
        sqlx::query("DELETE FROM notes WHERE sample_id = ?").bind(id).execute(&mut *tx).await?;
    } else {
        sqlx::query(
            "INSERT INTO notes (sample_id, note, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (sample_id) DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(note)
        .bind(store::now())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(action_id)
}
