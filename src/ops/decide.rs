//! A curator's own decisions: accept, reject, label, note — one key press or one batch of marked
//! samples is one action, recorded like a rule's so `undo` reverts it. Rules leave these alone
//! unless `--override`.

use crate::domain::{LabelType, Status};
use crate::store::actions::{self, Change, Move};
use crate::store::{self, Store};

/// Who a curator's decisions are recorded as.
pub const CURATOR: &str = "curator";

/// A curator's decision as written: its action, and what it moved (read in its transaction,
/// from its own history rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub action_id: i64,
    pub moves: Vec<Move>,
}

/// Sets the status of `ids` as the curator; returns the action, or none when nothing changed.
pub async fn set_status(store: &Store, ids: &[i64], status: Status) -> store::Result<Option<Decided>> {
    let description = format!("{} {} sample(s)", verb(status), ids.len());
    decide(store, ids, Change::Status(status), &description).await
}

/// Sets the label type of `ids` as the curator.
pub async fn set_label(store: &Store, ids: &[i64], label: LabelType) -> store::Result<Option<Decided>> {
    let description = format!("label {label} {} sample(s)", ids.len());
    decide(store, ids, Change::Label(label), &description).await
}

/// Picks the best of a prompt's samples: accepts `keep` and rejects `siblings`, as one action
/// (one undo); none when every one of them already holds its status.
pub async fn pick(store: &Store, keep: i64, siblings: &[i64]) -> store::Result<Option<Decided>> {
    let mut tx = store.write().await?;
    let description = format!("pick #{keep}, reject {} sibling(s)", siblings.len());
    let action_id = actions::record(&mut tx, CURATOR, None, &description).await?;
    let mut moves = actions::change_under(&mut tx, action_id, &[keep], Change::Status(Status::Accepted), CURATOR).await?;
    moves.extend(actions::change_under(&mut tx, action_id, siblings, Change::Status(Status::Rejected), CURATOR).await?);
    if moves.is_empty() {
        tx.rollback().await?;
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(Decided { action_id, moves }))
}

fn verb(status: Status) -> &'static str {
    match status {
        Status::Accepted => "accept",
        Status::Rejected => "reject",
        Status::Pending => "reset",
    }
}

async fn decide(store: &Store, ids: &[i64], change: Change, description: &str) -> store::Result<Option<Decided>> {
    let mut tx = store.write().await?;
    let Some((action_id, moves)) = actions::decide(&mut tx, ids, change, CURATOR, description).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    tx.commit().await?;
    Ok(Some(Decided { action_id, moves }))
}

/// Sets (or, with an empty text, removes) the curator's note on a sample.
pub async fn set_note(store: &Store, id: i64, note: &str) -> store::Result<i64> {
    let mut tx = store.write().await?;
    let action_id = actions::record(&mut tx, CURATOR, None, &format!("note on #{id}")).await?;
    actions::set_note(&mut tx, action_id, id, note).await?;
    tx.commit().await?;
    Ok(action_id)
}
