//! `retort undo`: reverting actions — one key press, one batch, one rule application.
//!
//! Each decision recorded the value it replaced; undo puts it back where the sample still holds
//! the value the decision set (a later change by someone else is not overwritten).

use serde::Serialize;

use crate::store::actions::{self, Move, Which};
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
    pub moves: Vec<Move>,
}

/// Undoes the target's actions in one transaction, newest first.
pub async fn undo(store: &Store, target: &UndoTarget) -> store::Result<Vec<Undone>> {
    let which = match target {
        UndoTarget::Last(n) => Which::Last(*n),
        UndoTarget::Rule(name) => Which::Actor(format!("rule:{name}")),
        UndoTarget::Action(id) => Which::Id(*id),
    };
    let mut tx = store.write().await?;
    let mut out = Vec::new();
    for a in actions::not_undone(&mut tx, &which).await? {
        let moves = actions::moving(&mut tx, a.id, true).await?;
        let reverted = actions::revert(&mut tx, a.id).await?;
        out.push(Undone { action_id: a.id, actor: a.actor, description: a.description, reverted, moves });
    }
    tx.commit().await?;
    store.checkpoint().await;
    Ok(out)
}

/// Re-applies the most recently undone action (when nothing was decided since on its samples).
pub async fn redo(store: &Store) -> store::Result<Option<Undone>> {
    let mut tx = store.write().await?;
    let Some(a) = actions::last_undone(&mut tx).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    let moves = actions::moving(&mut tx, a.id, false).await?;
    let reverted = actions::reapply(&mut tx, a.id).await?;
    tx.commit().await?;
    Ok(Some(Undone { action_id: a.id, actor: a.actor, description: a.description, reverted, moves }))
}
