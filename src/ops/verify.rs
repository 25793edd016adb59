//! `retort verify`: run a verifier over the samples that lack its score or whose check failed
//! (or all, with `force`), a page at a time, checked on worker threads, written in one transaction per page.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row};

use crate::rules::Expr;
use crate::rules::compile::{FROM, compile};
use crate::store::{self, Store, add_arg};
use crate::verify::{Outcome, SampleView, Verifier};

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

/// Registers the verifier (name, kind, settings) and returns its id.
async fn register(store: &Store, v: &dyn Verifier) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO verifiers (name, kind, config, created_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, config = excluded.config RETURNING id",
    )
    .bind(v.name())
    .bind(v.kind())
    .bind(v.config().to_string())
    .bind(store::now())
    .fetch_one(store.pool())
    .await?;
    Ok(id)
}

/// The candidate condition: the filter, and (unless forced) no score from this verifier yet —
/// a sample whose last check failed (a checker that crashed, a judge that could not be reached)
/// is a candidate again.
fn candidates(opts: &VerifyOptions, verifier_id: i64, args: &mut SqliteArguments) -> Result<String, sqlx::Error> {
    let filter = compile(opts.filter.as_ref());
    filter.add_to(args)?;
    add_arg(args, opts.force)?;
    add_arg(args, verifier_id)?;
    Ok(format!(
        "({}) AND (? OR NOT EXISTS (SELECT 1 FROM scores sc WHERE sc.sample_id = s.id AND sc.verifier_id = ? AND sc.error IS NULL))",
        filter.sql
    ))
}

/// Runs `verifier`; `progress(done, total)` after each page.
pub async fn verify(
    store: &Store,
    verifier: Arc<dyn Verifier>,
    opts: &VerifyOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<VerifyReport, sqlx::Error> {
    let verifier_id = register(store, verifier.as_ref()).await?;
    let mut args = SqliteArguments::default();
    let cond = candidates(opts, verifier_id, &mut args)?;
    let (total,): (i64,) =
        sqlx::query_as_with(AssertSqlSafe(format!("SELECT count(*) FROM {FROM} WHERE {cond}")), args).fetch_one(store.pool()).await?;
    let mut report =
        VerifyReport { verifier: verifier.name().to_owned(), checked: 0, passed: 0, errors: 0, mean: 0.0, first_errors: Vec::new() };
    let mut total_score = 0.0;
    let mut after = 0i64;
    loop {
        let mut args = SqliteArguments::default();
        add_arg(&mut args, after)?;
        let cond = candidates(opts, verifier_id, &mut args)?;
        add_arg(&mut args, PAGE)?;
        let sql = format!(
            "SELECT s.id, pt.text, pt.reference, t.reasoning, t.answer, s.finish_reason, s.tokens, p.kind, \
               json_extract(t.metadata, '$.reasoning_closed') \
             FROM {FROM} JOIN prompt_texts pt ON pt.prompt_id = s.prompt_id JOIN sample_texts t ON t.sample_id = s.id \
             WHERE s.id > ? AND {cond} ORDER BY s.id LIMIT ?"
        );
        let rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch_all(store.pool()).await?;
        if rows.is_empty() {
            break;
        }
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            page.push(SampleView {
                id: r.try_get(0)?,
                prompt: r.try_get(1)?,
                reference: r.try_get(2)?,
                reasoning: r.try_get(3)?,
                answer: r.try_get(4)?,
                finish_reason: r.try_get(5)?,
                tokens: r.try_get(6)?,
                kind: r.try_get(7)?,
                reasoning_closed: r.try_get::<Option<i64>, _>(8)?.map(|v| v != 0),
            });
        }
        after = page.last().map_or(after, |s| s.id);
        let outcomes = check_page(Arc::clone(&verifier), page.clone(), opts.jobs.max(1)).await;
        let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
        let now = store::now();
        for (s, o) in page.iter().zip(&outcomes) {
            let (value, pass, details, error) = match o {
                Outcome::Scored { score, pass, details } => {
                    report.passed += u64::from(*pass);
                    total_score += score;
                    (Some(*score), Some(i64::from(*pass)), (!details.is_null()).then(|| details.to_string()), None)
                }
                Outcome::Failed { error } => {
                    report.errors += 1;
                    if report.first_errors.len() < 5 {
                        report.first_errors.push(format!("sample {}: {error}", s.id));
                    }
                    (None, None, None, Some(error.clone()))
                }
            };
            sqlx::query(
                "INSERT INTO scores (sample_id, verifier_id, score, pass, details, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (sample_id, verifier_id) DO UPDATE SET score = excluded.score, pass = excluded.pass, \
                 details = excluded.details, error = excluded.error, created_at = excluded.created_at",
            )
            .bind(s.id)
            .bind(verifier_id)
            .bind(value)
            .bind(pass)
            .bind(details)
            .bind(error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
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
async fn check_page(verifier: Arc<dyn Verifier>, page: Vec<SampleView>, jobs: usize) -> Vec<Outcome> {
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
