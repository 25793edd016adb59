//! What an export reads (candidates, texts, soft labels) and the record of each export.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteArguments;

use super::sql::{add_arg, add_params, placeholders};
use super::{Result, Store, now};
use crate::domain::{LabelType, Status};
use crate::export::ExportSample;
use crate::rules::Expr;
use crate::rules::compile::{FROM, HAS_TOOLS, compile};

/// What choosing samples for an export reads of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateRow {
    pub id: i64,
    pub content_hash: Vec<u8>,
    pub kind: String,
    /// The source's name, empty when the sample has none.
    pub source: String,
    pub tokens: i64,
}

/// Which samples an export may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Selecting<'a> {
    pub filter: Option<&'a Expr>,
    pub statuses: &'a [Status],
    pub labels: &'a [LabelType],
    /// Only samples with the teacher's log-probs kept (soft labels).
    pub with_logprobs: bool,
}

/// Streams the samples an export may take to `each`, in id order.
pub async fn candidates(store: &Store, selecting: &Selecting<'_>, mut each: impl FnMut(CandidateRow)) -> Result<()> {
    let mut args = SqliteArguments::default();
    let filter = compile(selecting.filter);
    add_params(&mut args, &filter)?;
    let statuses: Vec<&str> = selecting.statuses.iter().map(|s| s.as_str()).collect();
    add_arg(&mut args, serde_json::to_string(&statuses).unwrap_or_default())?;
    let labels: Vec<&str> = selecting.labels.iter().map(|l| l.as_str()).collect();
    add_arg(&mut args, serde_json::to_string(&labels).unwrap_or_default())?;
    let soft = if selecting.with_logprobs { "AND s.has_logprobs = 1" } else { "" };
    let sql = format!(
        "SELECT s.id, s.content_hash, p.kind, coalesce((SELECT name FROM sources WHERE id = s.source_id), ''), s.tokens FROM {FROM} \
         WHERE ({}) AND s.status IN (SELECT value FROM json_each(?)) AND s.label IN (SELECT value FROM json_each(?)) {soft} ORDER BY s.id",
        filter.sql
    );
    let mut rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch(&store.pool);
    while let Some(r) = rows.try_next().await? {
        each(CandidateRow {
            id: r.try_get(0)?,
            content_hash: r.try_get(1)?,
            kind: r.try_get(2)?,
            source: r.try_get(3)?,
            tokens: r.try_get(4)?,
        });
    }
    Ok(())
}

/// How many of `ids` involve tools, and the first of them.
pub async fn with_tools(store: &Store, ids: &[i64]) -> Result<(i64, Option<i64>)> {
    let sql = format!("SELECT count(*), min(s.id) FROM samples s WHERE s.id IN (SELECT value FROM json_each(?)) AND {HAS_TOOLS}");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(serde_json::to_string(&ids).unwrap_or_default()).fetch_one(&store.pool).await?)
}

/// A connection of its own that reads the texts of samples, optionally through a memory map.
///
/// Mapped, the texts come from the page cache without a `pread` copy each. An export writes its
/// lines in the seeded order, so each page is read about as many times as it holds samples;
/// mapped, an export of 1 GB takes 3 s where it took 5. The store's first 2 GiB are mapped
/// (SQLite's limit on Linux); the pages count as resident while mapped but are the page
/// cache's, shared and reclaimable. [`TextReader::close`] drops the map.
#[derive(Debug)]
pub struct TextReader {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    mapped: bool,
}

impl TextReader {
    pub async fn new(store: &Store, mapped: bool) -> Result<Self> {
        let mut conn = store.pool.acquire().await?;
        if mapped {
            sqlx::query("PRAGMA mmap_size = 2147418112").execute(&mut *conn).await?;
        }
        Ok(Self { conn, mapped })
    }

    /// The texts of `ids`, in that order (ids not in the store left out).
    pub async fn samples(&mut self, ids: &[i64]) -> Result<Vec<ExportSample>> {
        let sql = format!(
            "SELECT s.id, {} FROM samples s {} WHERE s.id IN ({})",
            *super::samples::TEXT_COLUMNS,
            super::samples::TEXT_JOINS,
            placeholders(ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let mut by_id = HashMap::with_capacity(ids.len());
        for r in q.fetch_all(&mut *self.conn).await? {
            by_id.insert(r.try_get::<i64, _>(0)?, ExportSample::from(super::samples::texts(&r, 1)?));
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Gives the connection back, unmapped.
    pub async fn close(mut self) {
        // A connection that cannot be reset is not handed to anyone else.
        if self.mapped && sqlx::query("PRAGMA mmap_size = 0").execute(&mut *self.conn).await.is_err() {
            self.conn.close_on_drop();
        }
    }
}

/// An export as recorded in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExport<'a> {
    pub format: &'a str,
    pub out_dir: &'a str,
    /// The options, as JSON.
    pub options: &'a str,
    pub manifest: &'a Value,
    pub samples: i64,
    pub tokens: i64,
}

/// Records a written export; returns its id.
pub async fn record(store: &Store, e: &NewExport<'_>) -> Result<i64> {
    let mut tx = store.write().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO exports (created_at, format, out_dir, options, manifest, samples, tokens) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(now())
    .bind(e.format)
    .bind(e.out_dir)
    .bind(e.options)
    .bind(e.manifest.to_string())
    .bind(e.samples)
    .bind(e.tokens)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The newest export written to `out_dir`, if any.
pub async fn newest_in(store: &Store, out_dir: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM exports WHERE out_dir = ? ORDER BY id DESC LIMIT 1")
        .bind(out_dir)
        .fetch_optional(&store.pool)
        .await?)
}
