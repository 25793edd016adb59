//! `retort rules`, `retort undo`, `retort list`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use crate::ops::list::list;
use crate::ops::rules::{RuleReport, RunOptions, apply_all, base_dir_of, dry_run_all};
use crate::ops::undo::{UndoTarget, undo, undo_rule};
use crate::rules::Rule;
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Parse rules and print them as retort reads them; nothing runs.
    Check(RulesSource),
    /// Print how many samples each rule would change, in order; nothing is written.
    DryRun(RulesRun),
    /// Apply rules in order, each in one transaction, recorded for `retort undo`.
    Apply(RulesRun),
}

#[derive(Debug, clap::Args)]
pub struct RulesSource {
    /// A rules file: one rule a line, `#` comments, optional `name:` before a rule.
    #[arg(value_name = "FILE", required_unless_present = "expr", conflicts_with = "expr")]
    pub file: Option<PathBuf>,
    /// One rule given on the command line.
    #[arg(long, value_name = "RULE")]
    pub expr: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RulesRun {
    #[command(flatten)]
    pub source: RulesSource,
    /// Let rules overturn decisions a curator made by hand.
    #[arg(long = "override")]
    pub override_curator: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reads the rules of a file or `--expr`, checked against the store's verifiers.
async fn load(store: &Store, source: &RulesSource) -> anyhow::Result<Vec<Rule>> {
    let (origin, text) = match (&source.file, &source.expr) {
        (Some(file), _) => (
            file.display().to_string(),
            std::fs::read_to_string(file).with_context(|| format!("cannot read the rules file {}", file.display()))?,
        ),
        (None, Some(expr)) => ("--expr".to_owned(), expr.clone()),
        (None, None) => anyhow::bail!("give a rules file or --expr"),
    };
    let rules = crate::ops::rules::load(store, &origin, &text).await?;
    if rules.is_empty() {
        anyhow::bail!("{origin} holds no rules");
    }
    Ok(rules.into_iter().map(|r| r.rule).collect())
}

/// Warns of every rule that overturns an earlier one's decisions.
fn warn_overturns(reports: &[RuleReport]) {
    for r in reports {
        for o in &r.overturns {
            super::note!("warning: {}", o.describe(&r.name));
        }
    }
}

pub async fn run(store: &Store, cmd: RulesCommand) -> anyhow::Result<()> {
    match cmd {
        RulesCommand::Check(source) => {
            let rules = load(store, &source).await?;
            for rule in &rules {
                super::say!("{rule}");
            }
            // Whether a rule overturns another depends on the samples: found by a dry run.
            let opts = RunOptions { override_curator: false, base_dir: base_dir_of(source.file.as_deref()) };
            let reports = dry_run_all(store, &rules, &opts).await?;
            warn_overturns(&reports);
            Ok(())
        }
        RulesCommand::DryRun(run) => {
            let rules = load(store, &run.source).await?;
            let opts = RunOptions { override_curator: run.override_curator, base_dir: base_dir_of(run.source.file.as_deref()) };
            let reports = dry_run_all(store, &rules, &opts).await?;
            if run.json {
                println!("{}", super::json::pretty(&reports)?);
            } else {
                for r in &reports {
                    super::say!("{:>9} would change  {}", r.changed, r.rule);
                }
                super::say!("Dry run: nothing was written.");
            }
            warn_overturns(&reports);
            Ok(())
        }
        RulesCommand::Apply(run) => {
            let rules = load(store, &run.source).await?;
            let opts = RunOptions { override_curator: run.override_curator, base_dir: base_dir_of(run.source.file.as_deref()) };
            let reports = apply_all(store, &rules, &opts, |report| {
                if !run.json {
                    super::say!("{:>9} changed  {}", report.changed, report.rule);
                }
            })
            .await?;
            if run.json {
                println!("{}", super::json::pretty(&reports)?);
            } else {
                super::say!(
                    "Applied {} rule{}; `retort undo --rule NAME` or `retort undo --last N` reverts them.",
                    rules.len(),
                    if rules.len() == 1 { "" } else { "s" }
                );
            }
            warn_overturns(&reports);
            Ok(())
        }
    }
}

pub async fn run_undo(store: &Store, last: Option<u32>, rule: Option<String>, json: bool) -> anyhow::Result<()> {
    let undone = match rule {
        Some(name) => undo_rule(store, &name).await?,
        None => undo(store, &UndoTarget::Last(last.unwrap_or(1))).await?,
    };
    if json {
        println!("{}", super::json::pretty(&undone)?);
    } else if undone.is_empty() {
        super::say!("Nothing to undo.");
    } else {
        for u in &undone {
            super::say!("undid #{}  {}  {} ({} samples put back)", u.action_id, u.actor, u.description, u.reverted);
        }
    }
    Ok(())
}

pub async fn run_list(store: &Store, filter: Option<String>, limit: Option<u64>, json: bool) -> anyhow::Result<()> {
    let filter = match filter.as_deref() {
        Some(src) => Some(crate::ops::rules::filter(store, src).await?),
        None => None,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !json {
        writeln!(out, "{:>8}  {:<8}  {:<6}  {:<22}  {:>7}  {:<24}  prompt", "id", "status", "label", "teacher", "tokens", "scores")?;
    }
    let n = list(store, filter.as_ref(), limit, |s| {
        if json {
            writeln!(out, "{}", super::json::line(&s)?)
        } else {
            // Stored text, shown and not obeyed: no control character reaches the terminal.
            let safe = |t: &str| crate::tui::text::terminal_safe(t).replace(['\n', '\t'], " ");
            let scores: Vec<String> = s.scores.iter().map(|(k, v)| format!("{}={v:.2}", safe(k))).collect();
            let preview: String = safe(&s.text.prompt).chars().take(60).collect();
            let teacher: String = safe(&s.teacher).chars().take(22).collect();
            writeln!(
                out,
                "{:>8}  {:<8}  {:<6}  {:<22}  {:>7}  {:<24}  {}",
                s.id,
                s.status,
                s.label,
                teacher,
                s.tokens,
                scores.join(" "),
                preview
            )
        }
    })
    .await?;
    if !json {
        writeln!(out, "{n} samples")?;
    }
    out.flush()?;
    Ok(())
}
