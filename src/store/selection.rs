//! What a rule would change: the temporary table `rule_selection (sample_id, reason)`, one per
//! connection, filled here and read by [`super::actions::write_changes`].
//!
//! Predicate actions and rankings are one `INSERT ... SELECT` each; near-duplicates and
//! contamination read texts (here), decide in Rust (the caller), then insert their picks.

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row};

use super::sql::{add_arg, add_params};
use super::{Result, Tx};
use crate::domain::Status;
use crate::rules::compile::{FROM, compile, order_by};
use crate::rules::{Action, Expr, Rule};

/// Rules leave a curator's own decisions alone unless told to override them.
const NOT_CURATOR: &str = "(? OR s.decided_by IS NOT 'curator')";
/// Was the sample's label last set by a curator (and not undone)?
pub(super) const CURATOR_LABEL: &str = "EXISTS (SELECT 1 FROM decisions d JOIN actions a ON a.id = d.action_id \
     WHERE d.sample_id = s.id AND d.field = 'label' AND a.actor = 'curator' AND a.undone_at IS NULL)";
const HAS_TAG: &str =
    "EXISTS (SELECT 1 FROM sample_tags st WHERE st.sample_id = s.id AND st.tag_id = (SELECT id FROM tags WHERE name = ?))";

/// Creates (or empties) the selection table.
async fn reset(tx: &mut Tx) -> Result<()> {
    let conn = tx.conn();
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS rule_selection (sample_id INTEGER PRIMARY KEY, reason TEXT)").execute(&mut *conn).await?;
    sqlx::query("DELETE FROM temp.rule_selection").execute(&mut *conn).await?;
    Ok(())
}

/// Selects the samples a rule whose action is decided in SQL would change (status, label, tag,
/// `keep best`, exact duplicates); returns how many, or none for the actions that read texts
/// ([`texts`], [`for_each_prompt`]), selecting nothing.
pub async fn by_predicate(tx: &mut Tx, rule: &Rule, override_curator: bool) -> Result<Option<u64>> {
    reset(tx).await?;
    let filter = compile(rule.filter.as_ref());
    let mut args = SqliteArguments::default();
    add_params(&mut args, &filter)?;
    let f = &filter.sql;
    let sql = match &rule.action {
        Action::SetStatus(status) => {
            add_arg(&mut args, *status)?;
            add_arg(&mut args, override_curator)?;
            format!("SELECT s.id, NULL FROM {FROM} WHERE ({f}) AND s.status != ? AND {NOT_CURATOR}")
        }
        Action::Label(label) => {
            add_arg(&mut args, *label)?;
            add_arg(&mut args, override_curator)?;
            format!("SELECT s.id, NULL FROM {FROM} WHERE ({f}) AND s.label != ? AND (? OR NOT {CURATOR_LABEL})")
        }
        Action::Tag(tag) => {
            add_arg(&mut args, tag.clone())?;
            format!("SELECT s.id, NULL FROM {FROM} WHERE ({f}) AND NOT {HAS_TAG}")
        }
        Action::Untag(tag) => {
            add_arg(&mut args, tag.clone())?;
            format!("SELECT s.id, NULL FROM {FROM} WHERE ({f}) AND {HAS_TAG}")
        }
        Action::KeepBest { keys, .. } => {
            // The reason's suffix is the first parameter in this statement.
            args = keep_best_args(rule, override_curator)?;
            format!(
                "SELECT id, 'ranked ' || rk || ' of ' || cnt || ? FROM ( \
                   SELECT s.id AS id, s.decided_by AS by, ROW_NUMBER() OVER w AS rk, count(*) OVER (PARTITION BY s.prompt_id) AS cnt \
                   FROM {FROM} WHERE ({f}) AND s.status != 'rejected' \
                   WINDOW w AS (PARTITION BY s.prompt_id ORDER BY {}, s.id)) \
                 WHERE rk > ? AND (? OR by IS NOT 'curator')",
                order_by(keys).sql
            )
        }
        Action::RejectDuplicates => {
            add_arg(&mut args, override_curator)?;
            format!(
                "SELECT id, 'duplicate of #' || first FROM ( \
                   SELECT s.id AS id, s.decided_by AS by, ROW_NUMBER() OVER w AS rn, first_value(s.id) OVER w AS first \
                   FROM {FROM} WHERE ({f}) AND s.status != 'rejected' \
                   WINDOW w AS (PARTITION BY s.content_hash ORDER BY s.id)) \
                 WHERE rn > 1 AND (? OR by IS NOT 'curator')"
            )
        }
        Action::RejectNearDuplicates { .. } | Action::RejectContaminated { .. } => return Ok(None),
    };
    let n = sqlx::query_with(AssertSqlSafe(format!("INSERT INTO temp.rule_selection (sample_id, reason) {sql}")), args)
        .execute(tx.conn())
        .await?
        .rows_affected();
    Ok(Some(n))
}

/// `keep best`'s parameters in the order its SQL reads them: reason suffix, filter, order, n, override.
fn keep_best_args(rule: &Rule, override_curator: bool) -> Result<SqliteArguments, sqlx::Error> {
    let Action::KeepBest { n, keys } = &rule.action else { return Ok(SqliteArguments::default()) };
    let mut args = SqliteArguments::default();
    let by: Vec<String> = keys.iter().map(|k| format!("{}{}", k.field, if k.descending { "" } else { " asc" })).collect();
    add_arg(&mut args, format!(" for its prompt by {}", by.join(", ")))?;
    add_params(&mut args, &compile(rule.filter.as_ref()))?;
    add_params(&mut args, &order_by(keys))?;
    add_arg(&mut args, i64::from(*n))?;
    add_arg(&mut args, override_curator)?;
    Ok(args)
}

/// Selects picked samples with their reasons (after [`reset`]).
pub async fn insert_picks(tx: &mut Tx, picks: &[(i64, String)]) -> Result<()> {
    for chunk in picks.chunks(200) {
        let mut args = SqliteArguments::default();
        for (id, reason) in chunk {
            add_arg(&mut args, *id)?;
            add_arg(&mut args, reason.clone())?;
        }
        let values = vec!["(?, ?)"; chunk.len()].join(",");
        sqlx::query_with(AssertSqlSafe(format!("INSERT INTO temp.rule_selection (sample_id, reason) VALUES {values}")), args)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// A sample a text-reading rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub prompt_id: i64,
    /// Its status was last set by a curator.
    pub by_curator: bool,
}

/// Candidate rows of a text-reading action (not rejected, through `filter`), in id order.
fn candidates_sql(filter: Option<&Expr>, text: &str) -> Result<(String, SqliteArguments), sqlx::Error> {
    let filter = compile(filter);
    let mut args = SqliteArguments::default();
    add_params(&mut args, &filter)?;
    let sql = format!(
        "SELECT s.id, s.prompt_id, s.decided_by IS 'curator', {text} FROM {FROM} \
         JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts t ON t.sample_id = s.id \
         WHERE ({}) AND s.status != '{}' ORDER BY s.id",
        filter.sql,
        Status::Rejected.as_str()
    );
    Ok((sql, args))
}

/// Each candidate's whole text (prompt, reasoning, answer), for near-duplicates.
pub async fn texts(tx: &mut Tx, filter: Option<&Expr>) -> Result<Vec<(Candidate, String)>> {
    let (sql, args) = candidates_sql(filter, "pt.text || char(10) || coalesce(t.reasoning, '') || char(10) || t.answer")?;
    let mut stream = sqlx::query_with(AssertSqlSafe(sql), args).fetch(tx.conn());
    let mut rows = Vec::new();
    while let Some(row) = stream.try_next().await? {
        rows.push((Candidate { id: row.try_get(0)?, prompt_id: row.try_get(1)?, by_curator: row.try_get(2)? }, row.try_get(3)?));
    }
    Ok(rows)
}

/// Streams each candidate with its prompt's text to `each`, for contamination.
pub async fn for_each_prompt(tx: &mut Tx, filter: Option<&Expr>, mut each: impl FnMut(&Candidate, &str)) -> Result<()> {
    let (sql, args) = candidates_sql(filter, "pt.text")?;
    let mut stream = sqlx::query_with(AssertSqlSafe(sql), args).fetch(tx.conn());
    while let Some(row) = stream.try_next().await? {
        let c = Candidate { id: row.try_get(0)?, prompt_id: row.try_get(1)?, by_curator: row.try_get(2)? };
        let text: &str = row.try_get(3)?;
        each(&c, text);
    }
    Ok(())
}
