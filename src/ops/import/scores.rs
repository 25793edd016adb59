//! Importing a score file: verdicts for samples already in the store, in one transaction, so a
//! reference to a sample the store does not hold leaves the store unchanged.

use super::check::{FileCheck, decode};
use super::{BadRecord, FileReport, ImportError, ImportOptions};
use crate::ingest::reader::Records;
use crate::ingest::{Format, ParseContext, Parsed};
use crate::store::ids::IdCache;
use crate::store::imports::{self, Counts, Finished, NewImport};
use crate::store::scores::{self, NewScore};
use crate::store::{self, Store, samples};

pub async fn import_scores(store: &Store, check: &FileCheck, opts: &ImportOptions) -> Result<FileReport, ImportError> {
    let mut report = FileReport::for_check(check);
    if imports::imported_before(store, &check.sha256).await? {
        report.already_imported = true;
        return Ok(report);
    }
    let reader = Records::open(&check.path, check.layout, opts.max_record_bytes)
        .map_err(|e| ImportError::File { path: check.path.clone(), message: format!("cannot read: {e}") })?;
    let mut tx = store.write().await?;
    let mut ids = IdCache::default();
    let now = store::now();
    let mut missing: Vec<BadRecord> = Vec::new();
    let mut missing_count = 0u64;
    let ctx = ParseContext::default();
    for raw in reader {
        let Ok(mut raw) = raw else { continue };
        let Ok(Parsed::Scores(rows)) = decode(&mut raw, Some(Format::Scores), &ctx) else { continue };
        for row in rows {
            let samples = samples::ids_named(&mut tx, &row.sample).await?;
            if samples.is_empty() {
                missing_count += 1;
                if missing.len() < super::BAD_SHOWN {
                    missing.push(BadRecord::at_line(&check.path, raw.line, None, format!("{} is not in this store", row.sample)));
                }
                continue;
            }
            let verifier = ids.verifier(&mut tx, &row.verifier, "imported").await?;
            for id in samples {
                let details = row.details.as_ref().map(ToString::to_string);
                let verdict =
                    NewScore { sample_id: id, verifier_id: verifier, score: Some(row.score), pass: Some(row.pass), details, error: None };
                scores::write(&mut tx, &verdict).await?;
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
    let options = serde_json::to_string(opts).unwrap_or_default();
    let import = NewImport {
        path: &check.path.display().to_string(),
        sha256: &check.sha256,
        format: "scores",
        options: &options,
        token_counter: "none",
    };
    let counts = Counts { scores_added: report.scores_added, ..Counts::default() };
    imports::record_scores(&mut tx, &import, now, &Finished { records: check.records, counts, skipped: report.skipped }).await?;
    tx.commit().await?;
    Ok(report)
}
