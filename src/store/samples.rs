//! The read model of a sample, and which samples verify checks.

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

/// A sample as the store holds it: its ids, decisions, scores, tags and texts. The one read
/// model of a sample: `list` prints it, verify checks it, the TUI's detail shows it, and an
/// export writes its [`Texts`] (the TUI's list pages read a narrow row of their own,
/// `browse::ListRow`: 200 characters of a page of 800k samples, not their traces).
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
    #[serde(flatten)]
    pub text: Texts,
}

/// What the teacher was asked and what it answered.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Texts {
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
    /// False when the trace opened its reasoning and never closed it (known at import).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_closed: Option<bool>,
    /// The trace was cut off inside its reasoning (never closed, marked incomplete, or stopped
    /// by the token limit before an answer): an export writes the reasoning open.
    pub reasoning_cut_off: bool,
}

impl Texts {
    /// The turns before the answer, when the conversation has more than the prompt.
    #[must_use]
    pub fn turns(&self) -> &[serde_json::Value] {
        self.messages.as_ref().and_then(serde_json::Value::as_array).map_or(&[], Vec::as_slice)
    }
}

/// The tables a sample's texts are read from, `pt` and `x`, joined to sample `s`.
pub(super) const TEXT_JOINS: &str = "JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts x ON x.sample_id = s.id";

/// The columns [`texts`] reads, in its order.
pub(super) static TEXT_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "pt.text, x.reasoning, x.answer, pt.reference, x.system, pt.messages, pt.tools, x.tool_calls, \
         json_extract(x.metadata, '$.reasoning_closed'), {}",
        crate::rules::compile::reasoning_cut_off_on("x")
    )
});

/// A sample's texts from [`TEXT_COLUMNS`], starting at column `at`. Stored JSON that does not
/// parse is read as nothing rather than failing the read.
pub(super) fn texts(r: &sqlx::sqlite::SqliteRow, at: usize) -> std::result::Result<Texts, sqlx::Error> {
    Ok(Texts {
        prompt: r.try_get(at)?,
        reasoning: r.try_get(at + 1)?,
        answer: r.try_get(at + 2)?,
        reference: r.try_get(at + 3)?,
        system: r.try_get(at + 4)?,
        messages: json_or_default(r.try_get(at + 5)?),
        tools: json_or_default(r.try_get(at + 6)?),
        tool_calls: json_or_default(r.try_get(at + 7)?),
        reasoning_closed: r.try_get::<Option<i64>, _>(at + 8)?.map(|v| v != 0),
        reasoning_cut_off: r.try_get(at + 9)?,
    })
}

/// The columns [`sample`] reads, [`TEXT_COLUMNS`] last.
static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "s.id, s.prompt_id, hex(s.content_hash), s.status, s.label, (SELECT name FROM teachers WHERE id = s.teacher_id), \
    (SELECT name FROM sources WHERE id = s.source_id), p.kind, s.tokens, s.reasoning_tokens, s.answer_tokens, s.finish_reason, s.decided_by, \
    (SELECT json_group_object(v.name, sc.score) FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id WHERE sc.sample_id = s.id AND sc.score IS NOT NULL), \
    (SELECT json_group_object(v.name, json(CASE WHEN sc.pass THEN 'true' ELSE 'false' END)) FROM scores sc JOIN verifiers v ON v.id = sc.verifier_id \
       WHERE sc.sample_id = s.id AND sc.pass IS NOT NULL), \
    (SELECT json_group_array(name) FROM (SELECT t.name FROM sample_tags st JOIN tags t ON t.id = st.tag_id WHERE st.sample_id = s.id ORDER BY t.name)), {}",
        *TEXT_COLUMNS
    )
});

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
    let sql = format!("SELECT {} FROM {FROM} {TEXT_JOINS} WHERE ({}) ORDER BY s.id LIMIT ?", *COLUMNS, compiled.sql);
    let mut rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch(&store.pool);
    let mut n = 0;
    while let Some(r) = rows.try_next().await.map_err(sql_error)? {
        each(sample(&r).map_err(sql_error)?)?;
        n += 1;
    }
    Ok(n)
}

/// One sample by id.
pub async fn one(store: &Store, id: i64) -> Result<Option<Sample>> {
    let sql = format!("SELECT {} FROM {FROM} {TEXT_JOINS} WHERE s.id = ?", *COLUMNS);
    let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&store.pool).await?;
    Ok(row.as_ref().map(sample).transpose()?)
}

/// The samples of one prompt in id order, at most `limit`: a best-of-n group.
pub async fn of_prompt(store: &Store, prompt_id: i64, limit: i64) -> Result<Vec<Sample>> {
    let sql = format!("SELECT {} FROM {FROM} {TEXT_JOINS} WHERE s.prompt_id = ? ORDER BY s.id LIMIT ?", *COLUMNS);
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(prompt_id).bind(limit).fetch_all(&store.pool).await?;
    Ok(rows.iter().map(sample).collect::<std::result::Result<_, _>>()?)
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
        text: texts(r, 16)?,
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
    pub async fn page(&self, store: &Store, after: i64, limit: i64) -> Result<Vec<Sample>> {
        let mut args = SqliteArguments::default();
        add_arg(&mut args, after)?;
        let cond = self.condition(&mut args)?;
        add_arg(&mut args, limit)?;
        let sql = format!("SELECT {} FROM {FROM} {TEXT_JOINS} WHERE s.id > ? AND {cond} ORDER BY s.id LIMIT ?", *COLUMNS);
        let rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch_all(&store.pool).await?;
        Ok(rows.iter().map(sample).collect::<std::result::Result<_, _>>()?)
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
