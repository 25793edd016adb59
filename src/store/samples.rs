//! The read model of a sample, and what verify reads of the samples it checks.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row};

use super::sql::{add_arg, add_params};
use super::{Result, Store};
use crate::domain::{Kind, LabelType, Status};
use crate::rules::Expr;
use crate::rules::compile::{FROM, compile};
use crate::verify::SampleView;

/// A sample as the store holds it: its ids, decisions, scores, tags and texts. `list` prints it;
/// the same columns are what the TUI's list, verify and export read a part of.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    pub id: i64,
    pub prompt_id: i64,
    /// The content hash (hex): what `reject duplicates` compares, and what score files may name.
    pub hash: String,
    pub status: Status,
    pub label: LabelType,
    pub teacher: String,
    pub source: Option<String>,
    pub kind: Kind,
    pub tokens: i64,
    pub reasoning_tokens: i64,
    pub answer_tokens: i64,
    pub finish_reason: Option<String>,
    pub decided_by: Option<String>,
    pub scores: BTreeMap<String, f64>,
    pub passed: BTreeMap<String, bool>,
    pub tags: Vec<String>,
    pub prompt: String,
    pub reasoning: Option<String>,
    pub answer: String,
    pub reference: Option<String>,
    /// The system prompt the teacher was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Every turn before the answer (OpenAI messages) when there is more than the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<serde_json::Value>,
    /// The tools offered to the teacher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<serde_json::Value>,
    /// The answer's tool calls (OpenAI shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
}

const COLUMNS: &str = "s.id, s.prompt_id, hex(s.content_hash), s.status, s.label, (SELECT name FROM teachers WHERE id = s.teacher_id), \
    (SELECT name FROM sources WHERE id = s.source_id), p.kind, s.tokens, s.reasoning_tokens, s.answer_tokens, s.finish_reason, s.decided_by, \
    (SELECT json_group_object(v.name, sc.score) FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id WHERE sc.sample_id = s.id AND sc.score IS NOT NULL), \
    (SELECT json_group_object(v.name, json(CASE WHEN sc.pass THEN 'true' ELSE 'false' END)) FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id \
       WHERE sc.sample_id = s.id AND sc.pass IS NOT NULL), \
    (SELECT json_group_array(t.name) FROM sample_tags st JOIN tags t ON t.id = st.tag_id WHERE st.sample_id = s.id), \
    pt.text, x.reasoning, x.answer, pt.reference, x.system, pt.messages, pt.tools, x.tool_calls";

fn json_or_default<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// Calls `each` for every sample matching `filter`, in id order, at most `limit`; stops at the
/// first error `each` returns (a closed pipe), which is returned.
pub async fn each<E: From<super::StoreError>>(
    store: &Store,
    filter: Option<&Expr>,
    limit: Option<u64>,
    mut each: impl FnMut(Sample) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    let sql_error = |e: sqlx::Error| E::from(super::StoreError::from(e));
    let compiled = compile(filter);
    let mut args = SqliteArguments::default();
    add_params(&mut args, &compiled).map_err(sql_error)?;
    add_arg(&mut args, limit.map_or(-1, |l| l as i64)).map_err(sql_error)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts x ON x.sample_id = s.id \
         WHERE ({}) ORDER BY s.id LIMIT ?",
        compiled.sql
    );
    let mut rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch(&store.pool);
    let mut n = 0;
    while let Some(r) = rows.try_next().await.map_err(sql_error)? {
        each(sample(&r).map_err(sql_error)?)?;
        n += 1;
    }
    Ok(n)
}

fn sample(r: &sqlx::sqlite::SqliteRow) -> std::result::Result<Sample, sqlx::Error> {
    Ok(Sample {
        id: r.try_get(0)?,
        prompt_id: r.try_get(1)?,
        hash: r.try_get::<String, _>(2)?.to_lowercase(),
        status: r.try_get(3)?,
        label: r.try_get(4)?,
        teacher: r.try_get(5)?,
        source: r.try_get(6)?,
        kind: r.try_get(7)?,
        tokens: r.try_get(8)?,
        reasoning_tokens: r.try_get(9)?,
        answer_tokens: r.try_get(10)?,
        finish_reason: r.try_get(11)?,
        decided_by: r.try_get(12)?,
        scores: json_or_default(r.try_get(13)?),
        passed: json_or_default(r.try_get(14)?),
        tags: json_or_default(r.try_get(15)?),
        prompt: r.try_get(16)?,
        reasoning: r.try_get(17)?,
        answer: r.try_get(18)?,
        reference: r.try_get(19)?,
        system: r.try_get(20)?,
        messages: json_or_default(r.try_get(21)?),
        tools: json_or_default(r.try_get(22)?),
        tool_calls: json_or_default(r.try_get(23)?),
    })
}

/// Which samples a verifier checks: through `filter`, and (unless `force`) those without its
/// score yet — a sample whose last check failed (a checker that crashed, a judge that could not
/// be reached) is a candidate again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unverified<'a> {
    pub verifier_id: i64,
    pub filter: Option<&'a Expr>,
    pub force: bool,
}

impl Unverified<'_> {
    fn condition(&self, args: &mut SqliteArguments) -> std::result::Result<String, sqlx::Error> {
        let filter = compile(self.filter);
        add_params(args, &filter)?;
        add_arg(args, self.force)?;
        add_arg(args, self.verifier_id)?;
        Ok(format!(
            "({}) AND (? OR NOT EXISTS (SELECT 1 FROM scores sc WHERE sc.sample_id = s.id AND sc.verifier_id = ? AND sc.error IS NULL))",
            filter.sql
        ))
    }

    /// How many samples there are to check.
    pub async fn count(&self, store: &Store) -> Result<i64> {
        let mut args = SqliteArguments::default();
        let cond = self.condition(&mut args)?;
        let (n,): (i64,) =
            sqlx::query_as_with(AssertSqlSafe(format!("SELECT count(*) FROM {FROM} WHERE {cond}")), args).fetch_one(&store.pool).await?;
        Ok(n)
    }

    /// The next `limit` samples to check after sample `after`, in id order.
    pub async fn page(&self, store: &Store, after: i64, limit: i64) -> Result<Vec<SampleView>> {
        let mut args = SqliteArguments::default();
        add_arg(&mut args, after)?;
        let cond = self.condition(&mut args)?;
        add_arg(&mut args, limit)?;
        let sql = format!(
            "SELECT s.id, pt.text, pt.reference, t.reasoning, t.answer, s.finish_reason, s.tokens, p.kind, \
               json_extract(t.metadata, '$.reasoning_closed') \
             FROM {FROM} JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts t ON t.sample_id = s.id \
             WHERE s.id > ? AND {cond} ORDER BY s.id LIMIT ?"
        );
        let rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch_all(&store.pool).await?;
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            page.push(SampleView {
                id: r.try_get(0)?,
                prompt: r.try_get(1)?,
                reference: r.try_get(2)?,
                reasoning: r.try_get(3)?,
                answer: r.try_get(4)?,
                finish_reason: r.try_get(5)?,
                tokens: r.try_get(6)?,
                kind: r.try_get(7)?,
                reasoning_closed: r.try_get::<Option<i64>, _>(8)?.map(|v| v != 0),
            });
        }
        Ok(page)
    }
}

/// The samples a score file names: by id, or all with a content hash.
pub async fn ids_named(tx: &mut super::Tx, sample: &crate::ingest::scores::SampleRef) -> Result<Vec<i64>> {
    use crate::ingest::scores::SampleRef;
    Ok(match sample {
        SampleRef::Id(id) => sqlx::query_scalar("SELECT id FROM samples WHERE id = ?").bind(id).fetch_all(tx.conn()).await?,
        SampleRef::Hash(h) => {
            sqlx::query_scalar("SELECT id FROM samples WHERE content_hash = ?").bind(h.clone()).fetch_all(tx.conn()).await?
        }
    })
}
