//! Importing a score file: verdicts for samples already in the store, in one transaction, so a
//! reference to a sample the store does not hold leaves the store unchanged.

use sqlx::Row;

use super::check::{FileCheck, decode};
use super::{BadRecord, FileReport, ImportError, ImportOptions, previous_import};
use crate::ingest::reader::RecordReader;
use crate::ingest::scores::SampleRef;
use crate::ingest::{Format, ParseContext, Parsed};
use crate::store::ids::IdCache;
use crate::store::{self, Store};

pub async fn import_scores(store: &Store, check: &FileCheck, opts: &ImportOptions) -> Result<FileReport, ImportError> {
    let mut report = FileReport::for_check(check);
    if previous_import(store, &check.sha256).await? {
        report.already_imported = true;
        return Ok(report);
    }
    let reader = RecordReader::open(&check.path, check.layout, opts.max_record_bytes)
        .map_err(|e| ImportError::File { path: check.path.clone(), message: format!("cannot read: {e}") })?;
    let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    let mut ids = IdCache::default();
    let now = store::now();
    let mut missing: Vec<BadRecord> = Vec::new();
    let mut missing_count = 0u64;
    let ctx = ParseContext::default();
    for raw in reader {
        let Ok(raw) = raw else { continue };
        let Ok(Parsed::Scores(rows)) = decode(&raw, Some(Format::Scores), &ctx) else { continue };
        for row in rows {
            let samples: Vec<i64> = match &row.sample {
                SampleRef::Id(id) => sqlx::query("SELECT id FROM samples WHERE id = ?").bind(id).fetch_all(&mut *tx).await?,
                SampleRef::Hash(h) => {
                    sqlx::query("SELECT id FROM samples WHERE content_hash = ?").bind(h.clone()).fetch_all(&mut *tx).await?
                }
            }
            .iter()
            .map(|r| r.get(0))
            .collect();
            if samples.is_empty() {
                missing_count += 1;
                if missing.len() < super::BAD_SHOWN {
                    missing.push(BadRecord {
                        path: check.path.clone(),
                        line: raw.line,
                        column: None,
                        reason: format!("{} is not in this store", row.sample),
                    });
                }
                continue;
            }
            let verifier = ids.verifier(&mut tx, &row.verifier, "imported").await?;
            for id in samples {
                sqlx::query(
                    "INSERT INTO scores (sample_id, verifier_id, score, pass, details, error, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?) \
                     ON CONFLICT (sample_id, verifier_id) DO UPDATE SET score = excluded.score, pass = excluded.pass, \
                     details = excluded.details, error = NULL, created_at = excluded.created_at",
                )
                .bind(id)
                .bind(verifier)
                .bind(row.score)
                .bind(i64::from(row.pass))
                .bind(row.details.as_ref().map(ToString::to_string))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                report.scores_added += 1;
            }
        }
    }
    if missing_count > 0 && !opts.skip_bad {
        tx.rollback().await?;
        return Err(ImportError::BadRecords { bad: missing, count: missing_count });
    }
    report.skipped += missing_count;
    report.bad.extend(missing.into_iter().take(super::BAD_SHOWN.saturating_sub(report.bad.len())));
    sqlx::query(
        "INSERT INTO imports (path, file_sha256, format, options, token_counter, started_at, finished_at, records, scores_added, skipped) \
         VALUES (?, ?, 'scores', ?, 'none', ?, ?, ?, ?, ?)",
    )
    .bind(check.path.display().to_string())
    .bind(&check.sha256)
    .bind(serde_json::to_string(opts).unwrap_or_default())
    .bind(now)
    .bind(store::now())
    .bind(check.records as i64)
    .bind(report.scores_added as i64)
    .bind(report.skipped as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(report)
}
