//! `retort verify`.

use std::time::Duration;

use super::progress::ImportBar;
use crate::ops::verify::{VerifyOptions, VerifyReport, verify};
use crate::store::Store;
use crate::verify::{Spec, build};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Verifier(s) to run: math, exact, format, length, repetition, language, cmd (repeatable).
    #[arg(long = "verifier", short = 'v', required = true, value_name = "NAME", value_parser = crate::verify::KINDS.to_vec())]
    pub verifiers: Vec<String>,
    /// Store the scores under this name instead of the verifier's (one verifier only).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Score again samples that already have a score from this verifier.
    #[arg(long)]
    pub force: bool,
    /// Only samples matching this predicate (the rule language).
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Samples checked at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// length: the token budget.
    #[arg(long, default_value_t = 16_384, value_name = "N")]
    pub max_tokens: i64,
    /// cmd: the checker to run per sample, e.g. 'python3 check.py --strict' (no shell).
    #[arg(long, value_name = "COMMAND")]
    pub cmd: Option<String>,
    /// cmd: seconds before a checker is killed; judge: seconds before a request is retried.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// judge: an OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (repeat for round-robin).
    #[arg(long = "endpoint", value_name = "URL")]
    pub endpoints: Vec<String>,
    /// judge: the judge model's name.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// judge: a minijinja rubric over prompt, reference, reasoning, answer, scale (default: built in).
    #[arg(long, value_name = "FILE")]
    pub rubric: Option<std::path::PathBuf>,
    /// judge: the environment variable holding the API key (never stored or printed).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "VAR")]
    pub api_key_env: String,
    /// judge: the top of the rubric's scale.
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub scale: f64,
    /// judge: the score in [0, 1] from which a sample passes.
    #[arg(long, default_value_t = 0.7, value_name = "F")]
    pub pass_at: f64,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, args: VerifyArgs) -> anyhow::Result<()> {
    if args.name.is_some() && args.verifiers.len() > 1 {
        anyhow::bail!("--name renames one verifier; give one --verifier with it");
    }
    let filter = match args.filter.as_deref() {
        Some(src) => Some(crate::ops::rules::filter(store, src).await?),
        None => None,
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get));
    let rubric = match &args.rubric {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read the rubric {}: {e}", path.display()))?),
        None => None,
    };
    let verifiers = args
        .verifiers
        .iter()
        .map(|kind| {
            build(&Spec {
                kind: kind.clone(),
                name: args.name.clone(),
                max_tokens: args.max_tokens,
                cmd: args.cmd.clone(),
                timeout: Duration::from_secs_f64(args.timeout.max(0.001)),
                endpoints: args.endpoints.clone(),
                model: args.model.clone(),
                rubric: rubric.clone(),
                api_key_env: Some(args.api_key_env.clone()),
                scale: args.scale,
                pass_at: args.pass_at,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let opts = VerifyOptions { force: args.force, filter, jobs };
    let mut reports = Vec::new();
    for v in verifiers {
        let bar = ImportBar::new();
        let name = v.name().to_owned();
        let report = verify(store, v, &opts, &|done, total| bar.update_count(&format!("verify {name}"), done, total)).await;
        bar.finish();
        let report = report?;
        if !args.json {
            super::say!("{}", outcome_line(&report));
            for e in &report.first_errors {
                super::say!("  {e}");
            }
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", super::json::pretty(&reports)?);
    }
    Ok(())
}

/// What a verifier found, with each rate's base said: ``math: 756 of 1,108 checked passed
/// (68.2%), mean score 0.682; 1,308 could not be checked``. The pass rate and the mean are of the
/// samples it could judge; those it could not are counted apart, never as failures.
#[must_use]
pub fn outcome_line(r: &VerifyReport) -> String {
    use std::fmt::Write as _;

    use indicatif::HumanCount;
    if r.checked == 0 {
        return format!("{}: nothing to check (every sample has this verifier's score; --force checks again)", r.verifier);
    }
    let judged = r.checked - r.errors;
    let mut line = if judged == 0 {
        format!("{}: no sample could be checked", r.verifier)
    } else {
        format!(
            "{}: {} of {} checked passed ({:.1}%), mean score {:.3}",
            r.verifier,
            HumanCount(r.passed),
            HumanCount(judged),
            100.0 * r.passed as f64 / judged as f64,
            r.mean
        )
    };
    if r.errors > 0 && judged > 0 {
        let _ = write!(line, "; {} could not be checked", HumanCount(r.errors));
    } else if r.errors > 0 {
        let _ = write!(line, " ({} tried)", HumanCount(r.errors));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checked: u64, passed: u64, errors: u64, mean: f64) -> VerifyReport {
        VerifyReport { verifier: "math".into(), checked, passed, errors, mean, first_errors: Vec::new() }
    }

    #[test]
    fn pass_rates_say_their_base() {
        assert_eq!(
            outcome_line(&report(2_416, 756, 1_308, 0.682)),
            "math: 756 of 1,108 checked passed (68.2%), mean score 0.682; 1,308 could not be checked"
        );
        assert_eq!(outcome_line(&report(500, 310, 0, 0.62)), "math: 310 of 500 checked passed (62.0%), mean score 0.620");
        assert_eq!(outcome_line(&report(3, 0, 3, 0.0)), "math: no sample could be checked (3 tried)");
        assert!(outcome_line(&report(0, 0, 0, 0.0)).starts_with("math: nothing to check"));
    }
}
