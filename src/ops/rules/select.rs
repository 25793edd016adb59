//! What a rule would change: fills the temporary table `rule_selection (sample_id, reason)`.
//!
//! Predicate actions and rankings are one `INSERT ... SELECT` each; near-duplicates and
//! contamination read texts and decide in Rust, then insert their picks.

use std::collections::HashMap;
use std::path::Path;

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::RuleRunError;
use crate::domain::Status;
use crate::rules::compile::{FROM, compile, order_by};
use crate::rules::minhash::{MinHasher, NearDuplicateIndex, Signature};
use crate::rules::ngrams::EvalSet;
use crate::rules::{Action, Rule};
use crate::store::add_arg;

/// Rules leave a curator's own decisions alone unless told to override them.
const NOT_CURATOR: &str = "(? OR s.decided_by IS NOT 'curator')";
/// Was the sample's label last set by a curator (and not undone)?
const CURATOR_LABEL: &str = "EXISTS (SELECT 1 FROM decisions d JOIN actions a ON a.id = d.action_id \
     WHERE d.sample_id = s.id AND d.field = 'label' AND a.actor = 'curator' AND a.undone_at IS NULL)";
const HAS_TAG: &str =
    "EXISTS (SELECT 1 FROM sample_tags st WHERE st.sample_id = s.id AND st.tag_id = (SELECT id FROM tags WHERE name = ?))";

/// Creates (or empties) the selection table on this connection.
pub async fn reset(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS rule_selection (sample_id INTEGER PRIMARY KEY, reason TEXT)").execute(&mut *conn).await?;
    sqlx::query("DELETE FROM temp.rule_selection").execute(&mut *conn).await?;
    Ok(())
}

/// Fills `rule_selection` with the samples `rule` would change; returns how many.
pub async fn select(conn: &mut SqliteConnection, rule: &Rule, override_curator: bool, base: &Path) -> Result<u64, RuleRunError> {
    reset(conn).await?;
    let filter = compile(rule.filter.as_ref());
    let mut args = SqliteArguments::default();
    filter.add_to(&mut args)?;
    let f = &filter.sql;
    let sql = match &rule.action {
        Action::SetStatus(status) => {
            add_arg(&mut args, status.as_str())?;
            add_arg(&mut args, override_curator)?;
            format!("SELECT s.id, NULL FROM {FROM} WHERE ({f}) AND s.status != ? AND {NOT_CURATOR}")
        }
        Action::Label(label) => {
            add_arg(&mut args, label.as_str())?;
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
        Action::RejectNearDuplicates { threshold } => return near_duplicates(conn, rule, *threshold, override_curator).await,
        Action::RejectContaminated { file, ngram } => {
            let path = if Path::new(file).is_absolute() { Path::new(file).to_owned() } else { base.join(file) };
            return contaminated(conn, rule, &path, *ngram as usize, override_curator).await;
        }
    };
    let n = sqlx::query_with(AssertSqlSafe(format!("INSERT INTO temp.rule_selection (sample_id, reason) {sql}")), args)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n)
}

/// `keep best`'s parameters in the order its SQL reads them: reason suffix, filter, order, n, override.
fn keep_best_args(rule: &Rule, override_curator: bool) -> Result<SqliteArguments, sqlx::Error> {
    let Action::KeepBest { n, keys } = &rule.action else { return Ok(SqliteArguments::default()) };
    let mut args = SqliteArguments::default();
    let by: Vec<String> = keys.iter().map(|k| format!("{}{}", k.field, if k.descending { "" } else { " asc" })).collect();
    add_arg(&mut args, format!(" for its prompt by {}", by.join(", ")))?;
    compile(rule.filter.as_ref()).add_to(&mut args)?;
    order_by(keys).add_to(&mut args)?;
    add_arg(&mut args, i64::from(*n))?;
    add_arg(&mut args, override_curator)?;
    Ok(args)
}

/// Inserts picked samples with their reasons.
async fn insert_picks(conn: &mut SqliteConnection, picks: &[(i64, String)]) -> Result<(), sqlx::Error> {
    for chunk in picks.chunks(200) {
        let mut args = SqliteArguments::default();
        for (id, reason) in chunk {
            add_arg(&mut args, *id)?;
            add_arg(&mut args, reason.clone())?;
        }
        let values = vec!["(?, ?)"; chunk.len()].join(",");
        sqlx::query_with(AssertSqlSafe(format!("INSERT INTO temp.rule_selection (sample_id, reason) VALUES {values}")), args)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Candidate rows of a text-reading action, in id order.
fn candidates_sql(rule: &Rule, columns: &str) -> (String, SqliteArguments, Result<(), sqlx::Error>) {
    let filter = compile(rule.filter.as_ref());
    let mut args = SqliteArguments::default();
    let bound = filter.add_to(&mut args);
    let sql = format!(
        "SELECT s.id, s.decided_by IS 'curator', {columns} FROM {FROM} \
         JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts t ON t.sample_id = s.id \
         WHERE ({}) AND s.status != '{}' ORDER BY s.id",
        filter.sql,
        Status::Rejected.as_str()
    );
    (sql, args, bound)
}

/// Signatures of a batch, computed on two threads.
fn signatures(hasher: &MinHasher, texts: &[String]) -> Vec<Signature> {
    let half = texts.len().div_ceil(2);
    std::thread::scope(|scope| {
        let (a, b) = texts.split_at(half.min(texts.len()));
        let other = scope.spawn(|| b.iter().map(|t| hasher.signature(t)).collect::<Vec<_>>());
        let mut out: Vec<Signature> = a.iter().map(|t| hasher.signature(t)).collect();
        out.extend(other.join().unwrap_or_default());
        out
    })
}

async fn near_duplicates(conn: &mut SqliteConnection, rule: &Rule, threshold: f64, override_curator: bool) -> Result<u64, RuleRunError> {
    let (sql, args, bound) = candidates_sql(rule, "pt.text || char(10) || coalesce(t.reasoning, '') || char(10) || t.answer");
    bound?;
    let rows: Vec<(i64, bool, String)> = {
        let mut stream = sqlx::query_with(AssertSqlSafe(sql), args).fetch(&mut *conn);
        let mut rows = Vec::new();
        while let Some(row) = stream.try_next().await? {
            rows.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
        rows
    };
    let hasher = MinHasher::default();
    let mut index = NearDuplicateIndex::new(threshold);
    let mut picks = Vec::new();
    for chunk in rows.chunks(4096) {
        let texts: Vec<String> = chunk.iter().map(|(_, _, t)| t.clone()).collect();
        for ((id, by_curator, _), sig) in chunk.iter().zip(signatures(&hasher, &texts)) {
            if let Some(dup) = index.offer(*id, sig)
                && (override_curator || !by_curator)
            {
                picks.push((*id, format!("near-duplicate of #{} (similarity {:.2})", dup.of, dup.similarity)));
            }
        }
    }
    insert_picks(conn, &picks).await?;
    Ok(picks.len() as u64)
}

async fn contaminated(
    conn: &mut SqliteConnection,
    rule: &Rule,
    path: &Path,
    n: usize,
    override_curator: bool,
) -> Result<u64, RuleRunError> {
    let eval = EvalSet::load(path, n).map_err(|e| RuleRunError::Input(e.to_string()))?;
    let (sql, args, bound) = candidates_sql(rule, "s.prompt_id, pt.text");
    bound?;
    let mut verdicts: HashMap<i64, Option<u64>> = HashMap::new();
    let mut picks = Vec::new();
    {
        let mut stream = sqlx::query_with(AssertSqlSafe(sql), args).fetch(&mut *conn);
        while let Some(row) = stream.try_next().await? {
            let (id, by_curator, prompt_id): (i64, bool, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let hit = if let Some(hit) = verdicts.get(&prompt_id) {
                *hit
            } else {
                let text: String = row.try_get(3)?;
                let hit = eval.hit(&text);
                verdicts.insert(prompt_id, hit);
                hit
            };
            if let Some(line) = hit
                && (override_curator || !by_curator)
            {
                picks.push((id, format!("prompt shares a {n}-gram with {}:{line}", path.display())));
            }
        }
    }
    insert_picks(conn, &picks).await?;
    Ok(picks.len() as u64)
}
