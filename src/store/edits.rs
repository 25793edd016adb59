//! A curator's edits of a sample's texts: its answer, or its prompt's reference answer. The
//! edited text replaces the stored one (so every reader — list, export, verify, search — sees it
//! with no join) and the sample's label becomes hard; the text it replaced is kept in
//! `text_edits` under the edit's action, so that undo ([`super::actions::revert`]) puts back
//! text and label exactly, like any decision.

use sqlx::SqliteConnection;

use super::actions::{self, Move};
use super::{Result, Store, Tx};
use crate::domain::LabelType;

/// Which text of a sample an edit replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditField {
    /// The sample's final answer.
    Answer,
    /// The reference answer of the sample's prompt (shared by the prompt's samples).
    Reference,
}

impl EditField {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EditField::Answer => "answer",
            EditField::Reference => "reference",
        }
    }
}

impl std::fmt::Display for EditField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sample's texts as an edit starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editable {
    pub answer: String,
    pub reference: Option<String>,
    /// How its tokens were counted (its import's counter): `estimate` or `tokenizer:<file>`.
    pub token_counter: Option<String>,
}

impl Editable {
    /// The text `field` holds now (none: the prompt has no reference).
    #[must_use]
    pub fn text(&self, field: EditField) -> Option<&str> {
        match field {
            EditField::Answer => Some(&self.answer),
            EditField::Reference => self.reference.as_deref(),
        }
    }
}

/// The texts of sample `id`, or none when there is no such sample.
pub async fn editable(store: &Store, id: i64) -> Result<Option<Editable>> {
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT t.answer, pt.reference, (SELECT token_counter FROM imports WHERE id = s.import_id) \
         FROM samples s JOIN sample_texts t ON t.sample_id = s.id JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id WHERE s.id = ?",
    )
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.map(|(answer, reference, token_counter)| Editable { answer, reference, token_counter }))
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// There is no such sample.
    NoSample,
    /// The text already was this: nothing recorded.
    Unchanged,
    /// Recorded as this action; what it moved of the labels.
    Edited { action_id: i64, moves: Vec<Move> },
}

/// An edit to make: `text` into `field` of sample `sample_id`, with the answer's new token count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit<'a> {
    pub sample_id: i64,
    pub field: EditField,
    pub text: &'a str,
    /// The answer's tokens, counted as the sample's were (answer edits only).
    pub answer_tokens: Option<i64>,
}

/// Records and makes `edit` as one action under `actor`, in the caller's write transaction:
/// the text it replaces kept in `text_edits`, the new text stored in place, the full-text index
/// updated, and the sample's label made hard (a `decisions` row of the same action, which moves
/// the counts and which rules' curator guard sees).
pub async fn edit(tx: &mut Tx, edit: &Edit<'_>, actor: &str) -> Result<Outcome> {
    let id = edit.sample_id;
    let current: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT t.answer, pt.reference, s.answer_tokens, s.prompt_id FROM samples s JOIN sample_texts t ON t.sample_id = s.id \
         JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id WHERE s.id = ?",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((answer, reference, answer_tokens, prompt_id)) = current else { return Ok(Outcome::NoSample) };
    let old = match edit.field {
        EditField::Answer => Some(answer),
        EditField::Reference => reference,
    };
    if old.as_deref() == Some(edit.text) {
        return Ok(Outcome::Unchanged);
    }
    let action_id = actions::record(tx, actor, None, &format!("edit {} of #{id}", edit.field)).await?;
    let (old_tokens, new_tokens) = match edit.field {
        EditField::Answer => (Some(answer_tokens), Some(edit.answer_tokens.unwrap_or(answer_tokens))),
        EditField::Reference => (None, None),
    };
    let conn = tx.conn();
    sqlx::query(
        "INSERT INTO text_edits (action_id, sample_id, field, old_text, new_text, old_tokens, new_tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(action_id)
    .bind(id)
    .bind(edit.field.as_str())
    .bind(&old)
    .bind(edit.text)
    .bind(old_tokens)
    .bind(new_tokens)
    .execute(&mut *conn)
    .await?;
    match edit.field {
        EditField::Answer => {
            sqlx::query("UPDATE sample_texts SET answer = ? WHERE sample_id = ?").bind(edit.text).bind(id).execute(&mut *conn).await?;
            sqlx::query("UPDATE samples SET answer_tokens = ?1, tokens = reasoning_tokens + ?1 WHERE id = ?2")
                .bind(new_tokens)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        EditField::Reference => {
            sqlx::query("UPDATE prompt_texts SET reference = ? WHERE prompt_id = ?")
                .bind(edit.text)
                .bind(prompt_id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("UPDATE prompts SET has_reference = 1 WHERE id = ?").bind(prompt_id).execute(&mut *conn).await?;
        }
    }
    reindex(conn, action_id).await?;
    let hard = LabelType::Hard.as_str();
    let old_label: Option<(String,)> = sqlx::query_as(
        "INSERT INTO decisions (action_id, sample_id, field, old_value, new_value) \
         SELECT ?1, id, 'label', label, ?2 FROM samples WHERE id = ?3 AND label IS NOT ?2 RETURNING old_value",
    )
    .bind(action_id)
    .bind(hard)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut moves = Vec::new();
    if let Some(from) = old_label.and_then(|(l,)| l.parse().ok()) {
        sqlx::query("UPDATE samples SET label = ? WHERE id = ?").bind(hard).bind(id).execute(&mut *conn).await?;
        moves.push(Move::Label { from, to: LabelType::Hard, n: 1 });
    }
    Ok(Outcome::Edited { action_id, moves })
}

/// The answers an action's edits touched, indexed again with the text they hold now: run after
/// the edit, its undo and its redo. Only samples the full-text index already holds (at or below
/// its watermark): the catch-up indexes later ones with whatever text they hold when it comes.
/// `?1` is the action.
const REINDEX: [&str; 2] = [
    "DELETE FROM sample_fts WHERE rowid IN (SELECT sample_id FROM text_edits WHERE action_id = ?1 AND field = 'answer') \
     AND rowid <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed_upto')",
    "INSERT INTO sample_fts (rowid, prompt, reasoning, answer) \
     SELECT s.id, p.text, t.reasoning, t.answer FROM samples s JOIN prompt_texts p ON p.prompt_id = s.prompt_id \
     JOIN sample_texts t ON t.sample_id = s.id \
     WHERE s.id IN (SELECT sample_id FROM text_edits WHERE action_id = ?1 AND field = 'answer') \
     AND s.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed_upto')",
];

/// What undoing an action's edits runs: the text each replaced put back (with the answer's
/// token count), where the sample still holds the text the edit set. The counts first: they
/// look at the text the edit left. `?1` is the action.
const REVERT: [&str; 4] = [
    "UPDATE samples SET answer_tokens = e.old_tokens, tokens = samples.reasoning_tokens + e.old_tokens \
     FROM text_edits e JOIN sample_texts t ON t.sample_id = e.sample_id \
     WHERE e.action_id = ?1 AND e.field = 'answer' AND samples.id = e.sample_id AND t.answer = e.new_text",
    "UPDATE sample_texts SET answer = e.old_text FROM text_edits e \
     WHERE e.action_id = ?1 AND e.field = 'answer' AND sample_texts.sample_id = e.sample_id AND sample_texts.answer = e.new_text",
    "UPDATE prompt_texts SET reference = e.old_text FROM text_edits e JOIN samples s ON s.id = e.sample_id \
     WHERE e.action_id = ?1 AND e.field = 'reference' AND prompt_texts.prompt_id = s.prompt_id AND prompt_texts.reference = e.new_text",
    HAS_REFERENCE,
];

/// What redoing an undone action's edits runs: the mirror of [`REVERT`].
const REAPPLY: [&str; 4] = [
    "UPDATE samples SET answer_tokens = e.new_tokens, tokens = samples.reasoning_tokens + e.new_tokens \
     FROM text_edits e JOIN sample_texts t ON t.sample_id = e.sample_id \
     WHERE e.action_id = ?1 AND e.field = 'answer' AND samples.id = e.sample_id AND t.answer = e.old_text",
    "UPDATE sample_texts SET answer = e.new_text FROM text_edits e \
     WHERE e.action_id = ?1 AND e.field = 'answer' AND sample_texts.sample_id = e.sample_id AND sample_texts.answer = e.old_text",
    "UPDATE prompt_texts SET reference = e.new_text FROM text_edits e JOIN samples s ON s.id = e.sample_id \
     WHERE e.action_id = ?1 AND e.field = 'reference' AND prompt_texts.prompt_id = s.prompt_id AND prompt_texts.reference IS e.old_text",
    HAS_REFERENCE,
];

/// `prompts.has_reference` of the prompts an action's reference edits touched, as their texts
/// say now (a reference written where there was none, and undone, leaves none).
const HAS_REFERENCE: &str = "UPDATE prompts SET has_reference = (SELECT reference IS NOT NULL FROM prompt_texts WHERE prompt_id = prompts.id) \
     WHERE id IN (SELECT s.prompt_id FROM text_edits e JOIN samples s ON s.id = e.sample_id WHERE e.action_id = ?1 AND e.field = 'reference')";

/// Which statements of [`REVERT`] and [`REAPPLY`] change a text: their rows are the samples
/// put back (the others follow them).
const TEXT_STATEMENTS: [usize; 2] = [1, 2];

async fn reindex(conn: &mut SqliteConnection, action_id: i64) -> Result<()> {
    for sql in REINDEX {
        sqlx::query(sql).bind(action_id).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn run(conn: &mut SqliteConnection, statements: &[&'static str], action_id: i64) -> Result<u64> {
    let mut texts = 0;
    for (i, sql) in statements.iter().enumerate() {
        let n = sqlx::query(*sql).bind(action_id).execute(&mut *conn).await?.rows_affected();
        if TEXT_STATEMENTS.contains(&i) {
            texts += n;
        }
    }
    reindex(conn, action_id).await?;
    Ok(texts)
}

/// Puts back the texts an action's edits replaced (part of [`actions::revert`]); returns the
/// samples put back.
pub(super) async fn revert(conn: &mut SqliteConnection, action_id: i64) -> Result<u64> {
    run(conn, &REVERT, action_id).await
}

/// Makes an undone action's edits again (part of [`actions::reapply`]).
pub(super) async fn reapply(conn: &mut SqliteConnection, action_id: i64) -> Result<u64> {
    run(conn, &REAPPLY, action_id).await
}

/// One edit in a sample's history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TextEdit {
    pub action_id: i64,
    pub at: i64,
    pub actor: String,
    pub field: String,
    /// The text it replaced (none: there was no reference).
    pub old_text: Option<String>,
    pub new_text: String,
    pub undone: bool,
}

/// The edits of sample `id`, newest first.
pub async fn history(store: &Store, id: i64) -> Result<Vec<TextEdit>> {
    Ok(sqlx::query_as(
        "SELECT e.action_id, a.created_at AS at, a.actor, e.field, e.old_text, e.new_text, a.undone_at IS NOT NULL AS undone \
         FROM text_edits e JOIN actions a ON a.id = e.action_id WHERE e.sample_id = ? ORDER BY e.action_id DESC LIMIT 20",
    )
    .bind(id)
    .fetch_all(&store.pool)
    .await?)
}

/// Samples with an edit in force (not undone), of their answer or their reference.
pub async fn edited(store: &Store) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(DISTINCT e.sample_id) FROM text_edits e JOIN actions a ON a.id = e.action_id WHERE a.undone_at IS NULL",
    )
    .fetch_one(&store.pool)
    .await?)
}
