//! `retort list`: samples matching a predicate, with their texts and scores.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Row};

use crate::rules::Expr;
use crate::rules::compile::{FROM, compile};
use crate::store::Store;

/// One sample as `list --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ListedSample {
    pub id: i64,
    pub prompt_id: i64,
    /// The content hash (hex): what `reject duplicates` compares, and what score files may name.
    pub hash: String,
    pub status: String,
    pub label: String,
    pub teacher: String,
    pub source: Option<String>,
    pub kind: String,
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

/// Calls `each` for every sample matching `filter`, in id order, at most `limit`.
pub async fn list(
    store: &Store,
    filter: Option<&Expr>,
    limit: Option<u64>,
    mut each: impl FnMut(ListedSample) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let compiled = compile(filter);
    let mut args = SqliteArguments::default();
    compiled.add_to(&mut args)?;
    args.add(limit.map_or(-1, |l| l as i64)).map_err(sqlx::Error::Encode)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts x ON x.sample_id = s.id \
         WHERE ({}) ORDER BY s.id LIMIT ?",
        compiled.sql
    );
    let mut rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch(store.pool());
    let mut n = 0;
    while let Some(r) = rows.try_next().await? {
        each(ListedSample {
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
        })?;
        n += 1;
    }
    Ok(n)
}
