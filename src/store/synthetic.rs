//! Synthetic stores for the benchmarks (`retort bench`): rows made in SQL, a million in seconds.

use super::{Result, Store};

/// Fills an empty store with `rows` short samples: 8 per prompt, three teachers, one `math`
/// score each, a few exact duplicates, cut-off traces and soft labels among them.
pub async fn short_samples(store: &Store, rows: u64) -> Result<()> {
    let mut tx = store.write().await?;
    let conn = tx.conn();
    for sql in [
        "INSERT INTO teachers (id, name) VALUES (1, 'teacher-a'), (2, 'teacher-b'), (3, 'teacher-c')",
        "INSERT INTO sources (id, name) VALUES (1, 'bench')",
        "INSERT INTO verifiers (id, name, kind, created_at) VALUES (1, 'math', 'math', 0)",
    ] {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    let prompts = rows.div_ceil(8) as i64;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO prompts (id, hash, kind, source_id, has_reference, created_at) \
         SELECT i, randomblob(32), CASE WHEN i % 4 = 0 THEN 'general' ELSE 'reasoning' END, 1, 1, 0 FROM n",
    )
    .bind(prompts)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO prompt_texts (prompt_id, text, reference) SELECT id, 'Problem ' || id || ': find the value.', id % 10 FROM prompts",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO samples (id, prompt_id, teacher_id, source_id, origin, content_hash, label, finish_reason, tokens, \
                              reasoning_tokens, answer_tokens, has_logprobs, created_at) \
         SELECT i, (i - 1) / 8 + 1, 1 + i % 3, 1, randomblob(16), \
                CAST(CASE WHEN i % 50 = 0 THEN i - 1 ELSE i END AS BLOB), \
                CASE WHEN i % 10 = 0 THEN 'soft' ELSE 'pseudo' END, \
                CASE WHEN i % 17 = 0 THEN 'length' ELSE 'stop' END, \
                200 + (i * 7919) % 32000, 150 + (i * 7919) % 30000, 50, i % 10 = 0, 0 FROM n",
    )
    .bind(rows as i64)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO sample_texts (sample_id, reasoning, answer) SELECT id, 'step ' || id, '\\boxed{' || (id % 10) || '}' FROM samples",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO scores (sample_id, verifier_id, score, pass, created_at) \
         SELECT id, 1, ((id * 104729) % 101) / 100.0, ((id * 104729) % 101) >= 50, 0 FROM samples",
    )
    .execute(&mut *conn)
    .await?;
    tx.commit().await?;
    store.checkpoint().await;
    Ok(())
}

/// Makes every sample R1-sized (a 5 KB reasoning, a 200-byte answer) and accepted.
pub async fn r1_sized_accepted(store: &Store) -> Result<()> {
    let mut tx = store.write().await?;
    sqlx::query(
        "UPDATE sample_texts SET reasoning = printf('%.*c', 5000, 'x') || sample_id, \
         answer = printf('%.*c', 200, 'y') || '\\boxed{' || sample_id || '}'",
    )
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE samples SET status = 'accepted'").execute(tx.conn()).await?;
    tx.commit().await?;
    store.checkpoint().await;
    Ok(())
}

/// Gives sample `id` a long trace to scroll through (100 KB of reasoning).
pub async fn long_trace(store: &Store, id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE sample_texts SET reasoning = (SELECT group_concat('Let me check the sum of the first terms again, step by step. ', '') \
         FROM (SELECT 1 FROM samples LIMIT 1700)) WHERE sample_id = ?",
    )
    .bind(id)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// Fills an empty store with `n` prompts and no samples.
pub async fn prompts_only(store: &Store, n: u64) -> Result<()> {
    let mut tx = store.write().await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO prompts (id, hash, kind, has_reference, created_at) SELECT i, randomblob(32), 'reasoning', 0, 0 FROM n",
    )
    .bind(n as i64)
    .execute(tx.conn())
    .await?;
    sqlx::query("INSERT INTO prompt_texts (prompt_id, text) SELECT id, 'Problem ' || id || ': what is ' || id || ' squared?' FROM prompts")
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Gives every sample a reasoning of `phrases` × "step two then " (three words each).
pub async fn wordy_reasoning(store: &Store, phrases: u64) -> Result<()> {
    sqlx::query("UPDATE sample_texts SET reasoning = replace(printf('%.*c', ?, 'x'), 'x', 'step two then ')")
        .bind(phrases as i64)
        .execute(&store.pool)
        .await?;
    store.checkpoint().await;
    Ok(())
}
