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

/// Why `undo --rule NAME` did not run.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// No rule of that name was ever saved or applied in this store.
    #[error("{}", unknown_rule(name, known))]
    UnknownRule { name: String, known: Vec<String> },
    #[error("the store: {0}")]
    Store(store::StoreError),
}

// The cause is in the message, not chained as a source: `{:#}` would print it twice.
impl From<store::StoreError> for UndoError {
    fn from(e: store::StoreError) -> Self {
        Self::Store(e)
    }
}

/// How many known rule names an error lists.
const NAMES_SHOWN: usize = 20;

fn unknown_rule(name: &str, known: &[String]) -> String {
    use std::fmt::Write as _;
    if known.is_empty() {
        return format!("no rule named `{name}`: no rule has been applied to this store");
    }
    let hint = crate::rules::names::suggest(name, known).map_or_else(String::new, |s| format!("; did you mean `{s}`?"));
    let mut list = known.iter().take(NAMES_SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if known.len() > NAMES_SHOWN {
        let _ = write!(list, " and {} more", known.len() - NAMES_SHOWN);
    }
    format!("no rule named `{name}`: the rules this store knows are {list}{hint}")
}

/// Undoes every application of the rule `name` not undone yet (newest first, in one
/// transaction). A name no rule was ever saved or applied under is an error naming those that
/// were; a known rule whose applications are all undone already reverts nothing.
pub async fn undo_rule(store: &Store, name: &str) -> Result<Vec<Undone>, UndoError> {
    let known = store::rules::known_names(store).await?;
    if !known.iter().any(|k| k == name) {
        return Err(UndoError::UnknownRule { name: name.to_owned(), known });
    }
    Ok(undo(store, &UndoTarget::Rule(name.to_owned())).await?)
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
