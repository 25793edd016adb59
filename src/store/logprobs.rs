//! Soft targets in the store: the JSON log-probs an API answer brought, and the packed top-K a
//! teacher scored afterwards (`retort score-logprobs`), with the vocabulary their ids belong to.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteArguments;

use super::sql::{add_arg, add_params, placeholders};
use super::{Result, Store, Tx};
use crate::rules::Expr;
use crate::rules::compile::{FROM, compile};

/// How a sample's soft targets are held.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// OpenAI's `logprobs.content`: tokens as text, mapped to ids by the student's tokenizer.
    Json(Value),
    /// Token ids of a stored vocabulary, packed by [`crate::domain::soft::pack`].
    Packed { bytes: Vec<u8>, vocabulary: i64 },
}

/// A sample's stored soft labels: the teacher's top-k per token.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftLabels {
    pub targets: Targets,
    pub k: i64,
    pub temperature: Option<f64>,
    /// The teacher whose log-probs they are: the one that scored them, else the sample's own.
    pub teacher: String,
}

/// The stored log-probs of `ids`, by sample id.
pub async fn of(store: &Store, ids: &[i64]) -> Result<HashMap<i64, SoftLabels>> {
    let sql = format!(
        "SELECT l.sample_id, l.content, l.packed, l.vocabulary_id, l.k, l.temperature, t.name \
         FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id JOIN teachers t ON t.id = coalesce(l.scorer_id, s.teacher_id) \
         WHERE l.sample_id IN ({})",
        placeholders(ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    let mut out = HashMap::with_capacity(ids.len());
    for r in q.fetch_all(&store.pool).await? {
        let content: Option<String> = r.try_get(1)?;
        let packed: Option<Vec<u8>> = r.try_get(2)?;
        let targets = match (packed, content) {
            (Some(bytes), _) => Targets::Packed { bytes, vocabulary: r.try_get::<Option<i64>, _>(3)?.unwrap_or_default() },
            (None, content) => Targets::Json(content.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or(Value::Null)),
        };
        out.insert(r.try_get(0)?, SoftLabels { targets, k: r.try_get(4)?, temperature: r.try_get(5)?, teacher: r.try_get(6)? });
    }
    Ok(out)
}

/// The id of a vocabulary (packed by [`crate::domain::soft::pack_vocabulary`]), stored in `tx`
/// if it is new. `name` says where it came from.
pub async fn vocabulary_id(tx: &mut Tx, name: &str, size: usize, tokens: &[u8]) -> Result<i64> {
    use sha2::Digest as _;
    let sha = format!("{:x}", sha2::Sha256::digest(tokens));
    sqlx::query("INSERT INTO vocabularies (sha256, name, size, tokens) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING")
        .bind(&sha)
        .bind(name)
        .bind(size as i64)
        .bind(tokens)
        .execute(tx.conn())
        .await?;
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM vocabularies WHERE sha256 = ?").bind(&sha).fetch_one(tx.conn()).await?;
    Ok(id)
}

/// A stored vocabulary's packed tokens.
pub async fn vocabulary(store: &Store, id: i64) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT tokens FROM vocabularies WHERE id = ?").bind(id).fetch_optional(&store.pool).await?)
}

/// The samples `filter` selects that `scorer` has not yet scored with at least `k` alternatives,
/// in id order: what a run of `score-logprobs` still has to do.
pub async fn unscored(store: &Store, filter: Option<&Expr>, scorer: &str, k: i64) -> Result<Vec<i64>> {
    let compiled = compile(filter);
    let mut args = SqliteArguments::default();
    add_params(&mut args, &compiled)?;
    add_arg(&mut args, scorer)?;
    add_arg(&mut args, k)?;
    let sql = format!(
        "SELECT s.id FROM {FROM} WHERE ({}) AND NOT EXISTS (SELECT 1 FROM sample_logprobs l WHERE l.sample_id = s.id \
           AND l.scorer_id = (SELECT id FROM teachers WHERE name = ?) AND l.k >= ?) ORDER BY s.id",
        compiled.sql
    );
    Ok(sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args).fetch_all(&store.pool).await?)
}

/// A sample's scoring, as `score-logprobs` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewScoring {
    pub sample_id: i64,
    pub k: i64,
    pub temperature: Option<f64>,
    pub positions: i64,
    pub packed: Vec<u8>,
    pub mean_logprob: Option<f64>,
    pub min_logprob: Option<f64>,
}

/// Stores scorings (replacing what a sample held), marks the samples as having log-probs and
/// labels the pseudo ones soft, unless a curator chose their label. Returns the samples relabelled.
pub async fn write_scorings(tx: &mut Tx, scorer: &str, vocabulary: i64, rows: &[NewScoring]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    sqlx::query("INSERT INTO teachers (name) VALUES (?) ON CONFLICT (name) DO NOTHING").bind(scorer).execute(tx.conn()).await?;
    let (scorer_id,): (i64,) = sqlx::query_as("SELECT id FROM teachers WHERE name = ?").bind(scorer).fetch_one(tx.conn()).await?;
    for chunk in rows.chunks(100) {
        let mut args = SqliteArguments::default();
        for r in chunk {
            add_arg(&mut args, r.sample_id)?;
            add_arg(&mut args, r.k)?;
            add_arg(&mut args, r.temperature)?;
            add_arg(&mut args, r.positions)?;
            add_arg(&mut args, r.packed.as_slice())?;
            add_arg(&mut args, vocabulary)?;
            add_arg(&mut args, scorer_id)?;
            add_arg(&mut args, r.mean_logprob)?;
            add_arg(&mut args, r.min_logprob)?;
        }
        let values = vec!["(?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO sample_logprobs (sample_id, k, temperature, positions, content, packed, vocabulary_id, scorer_id, \
               mean_logprob, min_logprob) VALUES {values} \
             ON CONFLICT (sample_id) DO UPDATE SET k = excluded.k, temperature = excluded.temperature, \
               positions = excluded.positions, content = NULL, packed = excluded.packed, vocabulary_id = excluded.vocabulary_id, \
               scorer_id = excluded.scorer_id, mean_logprob = excluded.mean_logprob, min_logprob = excluded.min_logprob"
        );
        sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(tx.conn()).await?;
    }
    let ids = serde_json::to_string(&rows.iter().map(|r| r.sample_id).collect::<Vec<_>>()).unwrap_or_default();
    sqlx::query("UPDATE samples SET has_logprobs = 1 WHERE id IN (SELECT value FROM json_each(?)) AND has_logprobs = 0")
        .bind(&ids)
        .execute(tx.conn())
        .await?;
    let relabelled = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE samples AS s SET label = 'soft' WHERE s.id IN (SELECT value FROM json_each(?)) AND s.label = 'pseudo' AND NOT {}",
        super::selection::CURATOR_LABEL
    )))
    .bind(&ids)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(relabelled)
}

/// A sample's scoring as the sample pane shows it: who scored it, how, how sure the teacher was,
/// and (when asked for) the completion token by token.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub teacher: String,
    pub k: i64,
    pub temperature: Option<f64>,
    pub positions: i64,
    pub mean_logprob: Option<f64>,
    pub min_logprob: Option<f64>,
    /// The positions cover the whole reply as the teacher's template wrote it, reasoning too
    /// (`retort score-logprobs`), not only the answer (an API's log-probs).
    pub whole_turn: bool,
    /// `None` when not asked for; an error when the stored bytes cannot be read.
    pub tokens: Option<std::result::Result<crate::domain::trace::TokenTrace, crate::domain::trace::TraceError>>,
}

/// The scoring of sample `id`, if it has one; `tokens` also reads its positions (and the tokens
/// of its vocabulary they name).
pub async fn scoring(store: &Store, id: i64, tokens: bool) -> Result<Option<Scoring>> {
    use crate::domain::trace::TokenTrace;
    // One read: the stored bytes come along only when the tokens are asked for.
    let Some(r) = sqlx::query(
        "SELECT t.name, l.k, l.temperature, l.positions, l.mean_logprob, l.min_logprob, l.packed IS NOT NULL, \
           CASE WHEN ?2 THEN l.packed END, CASE WHEN ?2 THEN v.tokens END, CASE WHEN ?2 THEN l.content END \
         FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id JOIN teachers t ON t.id = coalesce(l.scorer_id, s.teacher_id) \
         LEFT JOIN vocabularies v ON v.id = l.vocabulary_id WHERE l.sample_id = ?1",
    )
    .bind(id)
    .bind(tokens)
    .fetch_optional(&store.pool)
    .await?
    else {
        return Ok(None);
    };
    let whole_turn: bool = r.try_get(6)?;
    let trace = match (tokens, whole_turn) {
        (false, _) => None,
        (true, true) => {
            let (packed, vocabulary): (Option<Vec<u8>>, Option<Vec<u8>>) = (r.try_get(7)?, r.try_get(8)?);
            Some(TokenTrace::from_packed(&packed.unwrap_or_default(), &vocabulary.unwrap_or_default()))
        }
        (true, false) => {
            let content: Option<String> = r.try_get(9)?;
            let content = content.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or(Value::Null);
            Some(TokenTrace::from_content(&content))
        }
    };
    Ok(Some(Scoring {
        teacher: r.try_get(0)?,
        k: r.try_get(1)?,
        temperature: r.try_get(2)?,
        positions: r.try_get(3)?,
        mean_logprob: r.try_get(4)?,
        min_logprob: r.try_get(5)?,
        whole_turn,
        tokens: trace,
    }))
}

/// What the packed scorings take: samples, positions and bytes of packed log-probs.
pub async fn footprint(store: &Store) -> Result<(i64, i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*), coalesce(sum(positions), 0), coalesce(sum(length(packed)), 0) FROM sample_logprobs WHERE packed IS NOT NULL",
    )
    .fetch_one(&store.pool)
    .await?)
}

/// The samples with a packed scoring, in id order.
pub async fn scored(store: &Store) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT sample_id FROM sample_logprobs WHERE packed IS NOT NULL ORDER BY sample_id")
        .fetch_all(&store.pool)
        .await?)
}
