//! The full-text index over prompt, reasoning and answer.
//!
//! It is filled after a bulk import, in chunks, never by trigger (a trigger made imports 5x
//! slower, DESIGN.md §Measured). `meta.fts_indexed_upto` is the highest sample id indexed; a
//! killed indexing run resumes from there.

use sqlx::SqlitePool;

use super::{Result, Store};

const WATERMARK: &str = "fts_indexed_upto";
/// Samples indexed per transaction: ~30 ms of holding the write lock.
const CHUNK: i64 = 500;

/// How many samples are not yet in the full-text index.
pub async fn pending(store: &Store) -> Result<i64> {
    let pool = &store.pool;
    let upto = watermark(pool).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM samples WHERE id > ?").bind(upto).fetch_one(pool).await?;
    Ok(n)
}

async fn watermark(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?").bind(WATERMARK).fetch_optional(pool).await?;
    Ok(row.and_then(|(v,)| v.parse().ok()).unwrap_or(0))
}

/// Indexes every sample added since the last run, calling `progress(done)` after each chunk.
/// Each chunk commits with its watermark, so the index is never ahead of or behind it.
pub async fn catch_up(store: &Store, mut progress: impl FnMut(u64)) -> Result<u64> {
    let mut upto = watermark(&store.pool).await?;
    let mut done = 0u64;
    loop {
        // The write lock up front: a read transaction upgraded to a write fails at once with
        // "database is locked" when another process wrote meanwhile, where taking the lock
        // first waits out the busy timeout.
        let mut tx = store.write().await?;
        let (next,): (Option<i64>,) = sqlx::query_as("SELECT max(id) FROM (SELECT id FROM samples WHERE id > ? ORDER BY id LIMIT ?)")
            .bind(upto)
            .bind(CHUNK)
            .fetch_one(tx.conn())
            .await?;
        let Some(next) = next else {
            tx.rollback().await?;
            return Ok(done);
        };
        let inserted = sqlx::query(
            "INSERT INTO sample_fts (rowid, prompt, reasoning, answer) \
             SELECT s.id, p.text, t.reasoning, t.answer FROM samples s \
             JOIN prompt_texts p ON p.prompt_id = s.prompt_id \
             JOIN sample_texts t ON t.sample_id = s.id \
             WHERE s.id > ? AND s.id <= ?",
        )
        .bind(upto)
        .bind(next)
        .execute(tx.conn())
        .await?
        .rows_affected();
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(WATERMARK)
            .bind(next.to_string())
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        upto = next;
        done += inserted;
        progress(done);
    }
}
