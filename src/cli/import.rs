//! `retort import`.

use std::fmt::Write as _;

use anyhow::Context;

use super::ImportArgs;
use super::progress::ImportBar;
use crate::ingest::scores::check_verifier_name;
use crate::ops::import::{FileReport, ImportOptions, gather, import};
use crate::ops::index::{self, Indexed};
use crate::store::Store;

pub async fn run(store: &Store, args: ImportArgs) -> anyhow::Result<()> {
    check_verifier_name(&args.score_name).map_err(|e| anyhow::anyhow!("--score-name: {e}"))?;
    let index_when = args.index;
    let opts = ImportOptions {
        format: args.format,
        teacher: args.teacher,
        kind: args.kind,
        source: args.source,
        score_name: args.score_name,
        tokenizer: args.tokenizer,
        skip_bad: args.skip_bad,
        max_record_bytes: args.max_record_mb.saturating_mul(1 << 20),
    };
    let (files, skipped) = gather(&args.files, &opts)?;
    for s in skipped.iter().take(SKIPPED_SHOWN) {
        super::note!("note: skipped {}: {}", s.path.display(), s.why);
    }
    if skipped.len() > SKIPPED_SHOWN {
        super::note!("note: skipped {} more files that are not data", skipped.len() - SKIPPED_SHOWN);
    }
    let bar = ImportBar::new();
    let started = std::time::Instant::now();
    let result = match import(store, &files, &opts, &|p| bar.update(p)).await {
        Ok(reports) => {
            // The background indexer is this binary's `index` command.
            let exe = std::env::current_exe().ok();
            index::after_import(store, index_when, exe.as_deref(), &|p| bar.update(p))
                .await
                .map(|indexed| (reports, indexed))
                .map_err(Into::into)
        }
        Err(e) => Err(anyhow::Error::from(e)),
    };
    bar.finish();
    let (reports, indexed) = result?;
    if args.json {
        println!("{}", super::json::pretty(&reports).context("writing the report")?);
    } else {
        print!("{}", crate::tui::text::terminal_safe(&summary(&reports, started.elapsed())));
    }
    match indexed {
        Indexed::Done(None) => {}
        Indexed::Done(Some(why)) => super::note!("note: {why}"),
        Indexed::Background { pid, pending } => super::note!(
            "note: the full-text index of {pending} samples is being built in the background (process {pid}): search finds \
             what it has indexed so far, `retort stats` says how many are left, and should it stop, {} says why",
            index::background_log(store.path()).display()
        ),
        Indexed::Left { pending } => {
            super::note!("note: {pending} samples are not in the full-text index yet: `retort index` builds it");
        }
    }
    for r in reports.iter().filter(|r| !r.already_imported) {
        for w in r.media.warnings() {
            super::note!("warning: {}: {w}", r.path.display());
        }
    }
    Ok(())
}

/// How many skipped files are named one by one.
const SKIPPED_SHOWN: usize = 10;

/// The human summary printed after an import.
#[must_use]
pub fn summary(reports: &[FileReport], elapsed: std::time::Duration) -> String {
    let mut out = String::new();
    let (mut prompts, mut samples, mut existing, mut scores, mut skipped) = (0, 0, 0, 0, 0);
    for r in reports {
        let _ = write!(out, "{}  [{}]  {} records", r.path.display(), r.format, r.records);
        if r.already_imported {
            let _ = writeln!(out, ": imported before, nothing to add");
            continue;
        }
        let _ = write!(out, ": +{} prompts, +{} samples", r.prompts_added, r.samples_added);
        if r.samples_existing > 0 {
            let _ = write!(out, " ({} already in the store)", r.samples_existing);
        }
        if r.scores_added > 0 {
            let _ = write!(out, ", +{} scores", r.scores_added);
        }
        if r.failed_requests > 0 {
            let _ = write!(out, ", {} failed requests left out", r.failed_requests);
        }
        out.push('\n');
        if r.skipped > 0 {
            let _ = writeln!(out, "  skipped {} bad record{}:", r.skipped, if r.skipped == 1 { "" } else { "s" });
            for b in &r.bad {
                let _ = writeln!(out, "    {b}");
            }
            if r.skipped > r.bad.len() as u64 {
                let _ = writeln!(out, "    ... and {} more", r.skipped - r.bad.len() as u64);
            }
        }
        prompts += r.prompts_added;
        samples += r.samples_added;
        existing += r.samples_existing;
        scores += r.scores_added;
        skipped += r.skipped;
    }
    let _ = writeln!(
        out,
        "Imported {samples} samples and {prompts} new prompts, {scores} scores in {:.1}s{}{}.",
        elapsed.as_secs_f64(),
        if existing > 0 { format!("; {existing} samples were already in the store") } else { String::new() },
        if skipped > 0 { format!("; {skipped} bad records skipped") } else { String::new() },
    );
    out
}
