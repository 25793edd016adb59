//! `retort stats`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::ops::stats::{Decided, Lengths, Stats, stats};
use crate::store::Store;

pub async fn run(store: &Store, json: bool) -> anyhow::Result<()> {
    let s = stats(store).await?;
    if json {
        println!("{}", super::json::pretty(&s)?);
    } else {
        print!("{}", crate::tui::text::terminal_safe(&render(&s)));
    }
    Ok(())
}

fn pct(n: i64, total: i64) -> String {
    if total == 0 { "-".into() } else { format!("{:.1}%", 100.0 * n as f64 / total as f64) }
}

/// A table's rows: the largest count first, then by name.
fn by_count(map: &BTreeMap<String, i64>) -> Vec<(&String, &i64)> {
    let mut rows: Vec<_> = map.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    rows
}

fn table(out: &mut String, title: &str, map: &BTreeMap<String, i64>, total: i64) {
    let _ = writeln!(out, "\n{title}");
    let rows = by_count(map);
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0).min(48);
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v:>9}  {:>6}", pct(*v, total));
    }
}

/// A table of samples per name with, once anything is decided, how many are accepted and
/// rejected.
fn decided_table(out: &mut String, title: &str, map: &BTreeMap<String, i64>, decided: &BTreeMap<String, Decided>, total: i64) {
    if decided.values().all(|d| d.accepted == 0 && d.rejected == 0) {
        return table(out, title, map, total);
    }
    let rows = by_count(map);
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0).clamp(12, 40);
    let _ = writeln!(out, "\n{title:<width$}  {:>7} {:>6} {:>8} {:>8}", "samples", "share", "accepted", "rejected");
    for (k, v) in rows {
        let d = decided.get(k).copied().unwrap_or_default();
        let name: String = k.chars().take(width).collect();
        let _ = writeln!(out, "  {name:<w$}{v:>7} {:>6} {:>8} {:>8}", pct(*v, total), d.accepted, d.rejected, w = width);
    }
}

fn lengths(out: &mut String, name: &str, l: &Lengths) {
    let _ = writeln!(out, "  {name:<17} {:>8} {:>8} {:>8} {:>8} {:>10.1}", l.p50, l.p90, l.p99, l.max, l.mean);
}

/// "1 sample", "2 samples".
fn count_of(n: i64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// The human report.
#[must_use]
pub fn render(s: &Stats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} samples over {} prompts ({} with a reference answer)\n{} with log-probs",
        s.samples,
        s.prompts,
        s.prompts_with_reference,
        count_of(s.with_logprobs, "sample")
    );
    table(&mut out, "Status", &s.by_status, s.samples);
    table(&mut out, "Label", &s.by_label, s.samples);
    if s.edited > 0 {
        let _ = writeln!(out, "  {} edited by the curator (answer or reference): hard labels", count_of(s.edited, "sample"));
    }
    table(&mut out, "Kind (samples)", &s.by_kind, s.samples);
    decided_table(&mut out, "Teacher", &s.by_teacher, &s.decided_by_teacher, s.samples);
    decided_table(&mut out, "Source", &s.by_source, &s.decided_by_source, s.samples);
    if !s.verifiers.is_empty() {
        let _ = writeln!(out, "\nVerifiers          scored   passed  pass rate   mean  errors");
        for (name, v) in &s.verifiers {
            let _ = writeln!(
                out,
                "  {name:<15} {:>8} {:>8} {:>10} {:>6.3} {:>7}",
                v.scored,
                v.passed,
                pct(v.passed, v.scored),
                v.mean,
                v.errors
            );
        }
    }
    let _ = writeln!(out, "\nTokens per sample      p50      p90      p99      max       mean");
    lengths(&mut out, "completion", &s.tokens);
    lengths(&mut out, "reasoning", &s.reasoning_tokens);
    lengths(&mut out, "answer", &s.answer_tokens);
    let methods: Vec<String> = s.token_counts.iter().map(|(k, v)| format!("{k} ({v})")).collect();
    if !methods.is_empty() {
        let _ = writeln!(out, "  counted by: {}", methods.join(", "));
    }
    if s.unindexed > 0 {
        let _ = writeln!(out, "\n{} samples are not yet in the full-text index.", s.unindexed);
    }
    out
}
