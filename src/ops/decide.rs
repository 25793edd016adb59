//! A curator's own decisions: accept, reject, label, note — one key press or one batch of marked
//! samples is one action, recorded like a rule's so `undo` reverts it. Rules leave these alone
//! unless `--override`.

use crate::domain::{LabelType, Status};
use crate::rules::Action;
use crate::store::actions::{self, Move};
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
    let mut tx = store.write().await?;
    if actions::select_other_status(&mut tx, ids, status).await? == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let description = format!("{} {} sample(s)", verb(status), ids.len());
    record(tx, &Action::SetStatus(status), &description).await.map(Some)
}

/// Sets the label type of `ids` as the curator.
pub async fn set_label(store: &Store, ids: &[i64], label: LabelType) -> store::Result<Option<Decided>> {
    let mut tx = store.write().await?;
    if actions::select_other_label(&mut tx, ids, label).await? == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let description = format!("label {label} {} sample(s)", ids.len());
    record(tx, &Action::Label(label), &description).await.map(Some)
}

fn verb(status: Status) -> &'static str {
    match status {
        Status::Accepted => "accept",
        Status::Rejected => "reject",
        Status::Pending => "reset",
    }
}

/// Records the action on the selected samples and commits.
async fn record(mut tx: store::Tx, action: &Action, description: &str) -> store::Result<Decided> {
    let action_id = actions::record(&mut tx, CURATOR, None, description).await?;
    actions::write_changes(&mut tx, action_id, action, CURATOR).await?;
    let moves = actions::moves(&mut tx, action_id).await?;
    tx.commit().await?;
    Ok(Decided { action_id, moves })
}

/// Sets (or, with an empty text, removes) the curator's note on a sample.
pub async fn set_note(store: &Store, id: i64, note: &str) -> store::Result<i64> {
    let mut tx = store.write().await?;
    let action_id = actions::record(&mut tx, CURATOR, None, &format!("note on #{id}")).await?;
    actions::set_note(&mut tx, action_id, id, note).await?;
    tx.commit().await?;
    Ok(action_id)
}
