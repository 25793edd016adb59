//! The full-text index over prompt, reasoning and answer.
//!
//! It is filled after a bulk import, in chunks, never by trigger (a trigger made imports 5x
//! slower, DESIGN.md §Measured). `meta.fts_indexed_upto` is the highest sample id indexed; a
//! killed indexing run resumes from there.

use std::time::{Duration, Instant};

use super::{Result, Store};

const WATERMARK: &str = "fts_indexed_upto";

/// How many samples are not yet in the full-text index.
pub async fn pending(store: &Store) -> Result<i64> {
    let pool = &store.pool;
    let upto = watermark(pool).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM samples WHERE id > ?").bind(upto).fetch_one(pool).await?;
    Ok(n)
}

/// The highest sample id indexed, read on the pool or inside a transaction.
async fn watermark<'e>(on: impl sqlx::SqliteExecutor<'e>) -> Result<i64, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?").bind(WATERMARK).fetch_optional(on).await?;
    Ok(row.and_then(|(v,)| v.parse().ok()).unwrap_or(0))
}

/// Indexes every sample added since the last run, calling `progress(done)` after each chunk.
/// Each chunk commits with its watermark, so the index is never ahead of or behind it.
///
/// Every transaction here holds the write lock for about [`HOLD`], so that a curator's key
/// waits no longer than that: chunks are sized by how long the last one took, and FTS5's
/// merging of its segments, which on its own runs inside whichever insert crosses a threshold
/// (350 ms beside an import), is done here in steps of its own.
pub async fn catch_up(store: &Store, mut progress: impl FnMut(u64)) -> Result<u64> {
    // Nothing to index (most calls after a generate or a small import): no write at all.
    if pending(store).await? == 0 {
        return Ok(0);
    }
    let mut done = 0u64;
    let mut chunk = FIRST_CHUNK;
    set_automerge(store, 0).await?;
    let indexed = async {
        loop {
            // The write lock up front: a read transaction upgraded to a write fails at once with
            // "database is locked" when another process wrote meanwhile, where taking the lock
            // first waits out the busy timeout.
            let mut tx = store.write().await?;
            let started = Instant::now();
            // Read under the write lock: another indexer (a background one, the TUI's) may
            // have committed chunks since, and a sample indexed twice is found twice.
            let upto = watermark(tx.conn()).await?;
            let (next,): (Option<i64>,) = sqlx::query_as("SELECT max(id) FROM (SELECT id FROM samples WHERE id > ? ORDER BY id LIMIT ?)")
                .bind(upto)
                .bind(chunk)
                .fetch_one(tx.conn())
                .await?;
            let Some(next) = next else {
                tx.rollback().await?;
                break;
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
            chunk = resize(chunk, started.elapsed());
            done += inserted;
            progress(done);
            // Merging the segments the chunks made, as they come: FTS5 merges a level once it
            // holds 4 segments (its `usermerge`, left at that default).
            merge_step(store).await?;
        }
        // Then what FTS5's own merging would have left: fewer than 4 segments a level.
        while merge_step(store).await? {}
        Ok(done)
    }
    .await;
    // Whatever happened, later writes (one sample's edit) merge on their own again; after a
    // kill the next catch-up sets it back.
    set_automerge(store, AUTOMERGE).await?;
    indexed
}

/// How long one transaction of the catch-up aims to hold the write lock.
const HOLD: Duration = Duration::from_millis(15);
/// Samples in the first chunk; R1-sized ones take about 0.1 ms each.
const FIRST_CHUNK: i64 = 100;
/// Leaf pages written by one merge step: about 5 ms beside an import, up to 20 ms where it
/// merges large segments. What a step costs depends on the segments it merges, not on how
/// long the last one took, so it is not sized by time as the chunks are.
const MERGE_PAGES: i64 = 300;
/// FTS5's default: a level is merged once it holds this many segments.
const AUTOMERGE: i64 = 4;

/// The next size of a unit of work that took `took` at size `size`, aiming at [`HOLD`].
fn resize(size: i64, took: Duration) -> i64 {
    let aim = HOLD.as_secs_f64() / took.as_secs_f64().max(1e-4);
    ((size as f64 * aim.clamp(0.5, 2.0)) as i64).clamp(8, 5_000)
}

async fn set_automerge(store: &Store, n: i64) -> Result<()> {
    let mut tx = store.write().await?;
    sqlx::query("INSERT INTO sample_fts (sample_fts, rank) VALUES ('automerge', ?)").bind(n).execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(())
}

/// One bounded step of FTS5's merging (about [`MERGE_PAGES`] leaf pages written, merging
/// levels of at least `usermerge`, 4, segments) in a transaction of its own; whether there
/// was anything to merge.
async fn merge_step(store: &Store) -> Result<bool> {
    let mut tx = store.write().await?;
    let before = total_changes(&mut tx).await?;
    sqlx::query("INSERT INTO sample_fts (sample_fts, rank) VALUES ('merge', ?)").bind(MERGE_PAGES).execute(tx.conn()).await?;
    // FTS5's documented test: the merge did work when the total changes moved by 2 or more.
    let worked = total_changes(&mut tx).await? - before >= 2;
    tx.commit().await?;
    Ok(worked)
}

async fn total_changes(tx: &mut super::Tx) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT total_changes()").fetch_one(tx.conn()).await?;
    Ok(n)
}
