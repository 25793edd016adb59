//! Prompts: which to ask the teacher about, and their turns.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::sqlite::SqliteArguments;

use super::sql::{add_params, placeholders};
use super::{Result, Store};
use crate::rules::Expr;
use crate::rules::compile::{FROM, compile};

/// Every prompt's id, in order.
pub async fn all_ids(store: &Store) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM prompts ORDER BY id").fetch_all(&store.pool).await?)
}

/// The prompts with a sample matching `filter`, in order.
pub async fn ids_with_samples_matching(store: &Store, filter: &Expr) -> Result<Vec<i64>> {
    let c = compile(Some(filter));
    let mut args = SqliteArguments::default();
    add_params(&mut args, &c)?;
    let sql = format!("SELECT DISTINCT s.prompt_id FROM {FROM} WHERE {} ORDER BY s.prompt_id", c.sql);
    Ok(sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args).fetch_all(&store.pool).await?)
}

/// The ids of the prompts with these hashes (those the store holds), in order, once each.
pub async fn ids_by_hash(store: &Store, hashes: &[[u8; 32]]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(hashes.len());
    for chunk in hashes.chunks(500) {
        let sql = format!("SELECT id FROM prompts WHERE hash IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        for h in chunk {
            q = q.bind(h.to_vec());
        }
        ids.extend(q.fetch_all(&store.pool).await?);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// How many samples of `teacher` each of `ids` has, in id order (prompts not in the store left
/// out).
pub async fn samples_of_teacher(store: &Store, ids: &[i64], teacher: &str) -> Result<Vec<(i64, i64)>> {
    let sql = format!(
        "SELECT p.id, (SELECT count(*) FROM samples s WHERE s.prompt_id = p.id \
           AND s.teacher_id = (SELECT id FROM teachers WHERE name = ?)) FROM prompts p WHERE p.id IN ({}) ORDER BY p.id",
        placeholders(ids.len())
    );
    let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(teacher);
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(&store.pool).await?)
}

/// The samples of `teacher` on `ids` that the token limit cut off and that are not yet tagged
/// `replaced_tag`: (prompt, sample), in sample order.
pub async fn truncated_samples(store: &Store, ids: &[i64], teacher: &str, replaced_tag: &str) -> Result<Vec<(i64, i64)>> {
    let sql = format!(
        "SELECT s.prompt_id, s.id FROM samples s WHERE s.prompt_id IN ({}) AND s.finish_reason = 'length' \
         AND s.teacher_id = (SELECT id FROM teachers WHERE name = ?) \
         AND NOT EXISTS (SELECT 1 FROM sample_tags st JOIN tags t ON t.id = st.tag_id WHERE st.sample_id = s.id AND t.name = ?) \
         ORDER BY s.id",
        placeholders(ids.len())
    );
    let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.bind(teacher).bind(replaced_tag).fetch_all(&store.pool).await?)
}

/// The chat turns of prompts, by id: the stored messages when the prompt came as a
/// conversation, else its text as one user turn.
pub async fn turns(store: &Store, ids: &[i64]) -> Result<HashMap<i64, Vec<Value>>> {
    let sql = format!("SELECT prompt_id, text, messages FROM prompt_texts WHERE prompt_id IN ({})", placeholders(ids.len()));
    let mut q = sqlx::query_as::<_, (i64, String, Option<String>)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    Ok(q.fetch_all(&store.pool)
        .await?
        .into_iter()
        .map(|(id, text, messages)| {
            let turns = match messages.and_then(|m| serde_json::from_str::<Value>(&m).ok()) {
                Some(Value::Array(turns)) => turns,
                _ => vec![json!({"role": "user", "content": text})],
            };
            (id, turns)
        })
        .collect())
}
