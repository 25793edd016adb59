//! `retort verify`: run a verifier over the samples that lack its score or whose check failed
//! (or all, with `force`), a page at a time, checked on worker threads, written in one transaction per page.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::rules::Expr;
use crate::store::samples::Unverified;
use crate::store::scores::{self, NewScore};
use crate::store::{self, Store};
use crate::verify::{Outcome, Sample, Verifier};

const PAGE: i64 = 512;

/// How a verification runs.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Score again samples that already have this verifier's score.
    pub force: bool,
    /// Only samples matching this predicate.
    pub filter: Option<Expr>,
    /// Samples checked at once.
    pub jobs: usize,
}

/// What a verification did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub verifier: String,
    pub checked: u64,
    pub passed: u64,
    /// Samples the verifier could not judge (recorded with the reason, not as a score).
    pub errors: u64,
    pub mean: f64,
    /// The first few failures' reasons.
    pub first_errors: Vec<String>,
}

/// Runs `verifier`; `progress(done, total)` after each page.
pub async fn verify(
    store: &Store,
    verifier: Arc<dyn Verifier>,
    opts: &VerifyOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> store::Result<VerifyReport> {
    let verifier_id = scores::register_verifier(store, verifier.name(), verifier.kind(), &verifier.config().to_string()).await?;
    let unverified = Unverified { verifier_id, filter: opts.filter.as_ref(), force: opts.force };
    let total = unverified.count(store).await?;
    let mut report =
        VerifyReport { verifier: verifier.name().to_owned(), checked: 0, passed: 0, errors: 0, mean: 0.0, first_errors: Vec::new() };
    let mut total_score = 0.0;
    let mut after = 0i64;
    loop {
        let page = unverified.page(store, after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        after = page.last().map_or(after, |s| s.id);
        let outcomes = check_page(Arc::clone(&verifier), page.clone(), opts.jobs.max(1)).await;
        let mut tx = store.write().await?;
        for (s, o) in page.iter().zip(&outcomes) {
            let (value, pass, details, error) = match o {
                Outcome::Scored { score, pass, details } => {
                    report.passed += u64::from(*pass);
                    total_score += score;
                    (Some(*score), Some(*pass), (!details.is_null()).then(|| details.to_string()), None)
                }
                Outcome::Failed { error } => {
                    report.errors += 1;
                    if report.first_errors.len() < 5 {
                        report.first_errors.push(format!("sample {}: {error}", s.id));
                    }
                    (None, None, None, Some(error.clone()))
                }
            };
            scores::write(&mut tx, &NewScore { sample_id: s.id, verifier_id, score: value, pass, details, error }).await?;
        }
        tx.commit().await?;
        report.checked += page.len() as u64;
        progress(report.checked, total as u64);
    }
    let scored = report.checked - report.errors;
    report.mean = if scored > 0 { total_score / scored as f64 } else { 0.0 };
    Ok(report)
}

/// Checks a page on `jobs` threads, off the async runtime.
async fn check_page(verifier: Arc<dyn Verifier>, page: Vec<Sample>, jobs: usize) -> Vec<Outcome> {
    let n = page.len();
    tokio::task::spawn_blocking(move || {
        let next = AtomicUsize::new(0);
        let mut out: Vec<Option<Outcome>> = vec![None; n];
        let results = std::sync::Mutex::new(&mut out);
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(n.max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let o = verifier.check(&page[i]);
                        if let Ok(mut r) = results.lock() {
                            r[i] = Some(o);
                        }
                    }
                });
            }
        });
        out.into_iter().map(|o| o.unwrap_or(Outcome::Failed { error: "the verifier panicked".into() })).collect()
    })
    .await
    .unwrap_or_else(|_| vec![Outcome::Failed { error: "the verifier panicked".into() }; n])
}
