//! `retort score-logprobs`.

use std::path::PathBuf;

use super::progress::ImportBar;
use crate::export::ReasoningMode;
use crate::ops::score::{ScoreOptions, score};
use crate::store::Store;

pub const SCORE_HELP: &str = "\
Soft labels for traces that have none: a teacher served by vLLM reads each selected
sample's conversation (rendered with the teacher's chat template, sent as token ids
with prompt_logprobs=K and max_tokens=1) and its top-K log-probs at every token of
the answer are stored as the sample's soft targets; pseudo samples become soft.

  vllm serve Qwen/QwQ-32B --max-logprobs 64
  retort score-logprobs --endpoint http://localhost:8000/v1 --model Qwen/QwQ-32B \\
      --template ./QwQ-32B --student ./Qwen2.5-1.5B-Instruct --top-k 20
  retort rules apply --rule 'reject where perplexity > 20'
  retort export --format kd --model ./Qwen2.5-1.5B-Instruct --out kd/

--template is the teacher's model directory (tokenizer.json and its chat template);
--student, when given, checks that each answer's tokens are the student's too (the
kd export and trainer need teacher and student to share a tokenizer). vLLM takes
prompt log-probs from the raw logits: they are stored at temperature 1. vLLM refuses
K above its --max-logprobs (20 unless raised).

Rerunning the same command scores only what is missing: a sample this teacher has
scored with at least K alternatives is done. Failed samples are listed and asked
for again next run. The API key is read from --api-key-env, never stored.";

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The samples to score (default: pseudo samples without log-probs).
    #[arg(long = "where", value_name = "EXPR", default_value = crate::ops::score::DEFAULT_SELECTION)]
    pub filter: String,
    /// A vLLM server's OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (repeat: requests round-robin).
    #[arg(long = "endpoint", required = true, value_name = "URL")]
    pub endpoints: Vec<String>,
    /// The model the server serves (the teacher).
    #[arg(long, value_name = "NAME")]
    pub model: String,
    /// The teacher name the log-probs are stored under (default: the model).
    #[arg(long, value_name = "NAME")]
    pub teacher: Option<String>,
    /// The teacher's model directory: tokenizer.json and its chat template.
    #[arg(long, value_name = "MODEL_DIR")]
    pub template: PathBuf,
    /// The student's model directory: check that each answer's tokens are the student's too.
    #[arg(long, value_name = "MODEL_DIR")]
    pub student: Option<PathBuf>,
    /// Alternatives kept per token.
    #[arg(long, default_value_t = 20, value_name = "K")]
    pub top_k: usize,
    /// Where the reasoning goes in the assistant's turn: inline (<think>…</think> before the
    /// answer) or field (reasoning_content, for templates that place it themselves).
    #[arg(long, default_value = "inline", value_name = "MODE", value_parser = super::one_of::<ReasoningMode>(["inline", "field"]))]
    pub reasoning: ReasoningMode,
    #[command(flatten)]
    pub server: super::generate::ServerArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, args: ScoreArgs) -> anyhow::Result<()> {
    let filter = crate::ops::rules::filter(store, &args.filter).await?;
    let opts = ScoreOptions {
        servers: args.server.servers(args.endpoints),
        model: args.model,
        teacher: args.teacher,
        template: args.template,
        student: args.student,
        top_k: args.top_k,
        reasoning: args.reasoning,
        concurrency: args.server.concurrency,
    };
    let bar = ImportBar::new();
    let report = score(store, Some(&filter), &opts, &|r| bar.update_score(r.done, r.selected, r.tokens, r.failures)).await;
    bar.finish();
    let report = report?;
    if args.json {
        println!("{}", super::json::pretty(&report)?);
    } else {
        let per_token = if report.tokens > 0 { report.bytes as f64 / report.tokens as f64 } else { 0.0 };
        super::say!(
            "{} samples to score: {} scored ({} tokens, {per_token:.0} bytes a token stored), {} labelled soft, {} failed",
            report.selected,
            report.scored,
            report.tokens,
            report.relabelled,
            report.failures
        );
        super::generate::say_unfinished(&report.first_errors, report.interrupted, report.failures, "scores");
    }
    if report.failures > 0 {
        anyhow::bail!("{} of {} samples failed; the same command asks for them again", report.failures, report.done);
    }
    Ok(())
}
