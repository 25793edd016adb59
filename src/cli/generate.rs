//! `retort generate`.

use std::path::PathBuf;

use super::progress::ImportBar;
use crate::ops::generate::{GenerateOptions, PromptSource, generate};
use crate::store::Store;
use crate::teacher::client::Servers;

/// How `generate` and `score-logprobs` reach their servers, besides the endpoints.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The environment variable holding the API key (never stored or printed).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "VAR")]
    pub api_key_env: String,
    /// Seconds before a request is abandoned and retried.
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Retries of a request on 429, 5xx and connection errors before it is reported failed.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

impl ServerArgs {
    /// The servers at `endpoints`, reached as these flags say.
    pub fn servers(&self, endpoints: Vec<String>) -> Servers {
        Servers { endpoints, api_key_env: Some(self.api_key_env.clone()), timeout_s: self.timeout, max_retries: self.retries }
    }
}

/// The end of a run's report: its first errors, an interruption, and that a rerun does the rest.
pub fn say_unfinished(first_errors: &[String], interrupted: bool, failures: u64, rerun: &str) {
    for e in first_errors {
        super::say!("  {e}");
    }
    if interrupted {
        super::say!("Interrupted: everything that had arrived is stored.");
    }
    if failures > 0 || interrupted {
        super::say!("Running the same command again {rerun} only what is missing.");
    }
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Prompts from a file in any format retort imports (GSM8K, MATH, LIMO sets, messages...).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["filter", "all"])]
    pub prompts: Option<PathBuf>,
    /// The prompts of the samples this predicate selects.
    #[arg(long = "where", value_name = "EXPR", conflicts_with = "all")]
    pub filter: Option<String>,
    /// Every prompt in the store.
    #[arg(long)]
    pub all: bool,
    /// An OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (repeat: requests round-robin).
    #[arg(long = "endpoint", required_unless_present = "batch_file", value_name = "URL")]
    pub endpoints: Vec<String>,
    /// The model to ask.
    #[arg(long, value_name = "NAME")]
    pub model: String,
    /// The teacher name the samples are stored under (default: the model).
    #[arg(long, value_name = "NAME")]
    pub teacher: Option<String>,
    /// Samples per prompt; a prompt with fewer gets only the missing ones.
    #[arg(long, default_value_t = 4)]
    pub n: u32,
    /// Sampling temperature (default: the server's; R1 recommends 0.6 for reasoning)
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold (default: the server's; R1 recommends 0.95)
    #[arg(long)]
    pub top_p: Option<f64>,
    /// The most tokens an answer may have; answers cut off are stored with finish_reason = length
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// A system prompt for every request.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Keep the top K log-probs per token (soft labels).
    #[arg(long, value_name = "K")]
    pub logprobs: Option<u32>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Ask again only for samples cut off by the token limit (finish_reason = length); the ones
    /// replaced are tagged `regenerated` (filter them with `tag = "regenerated"`).
    #[arg(long)]
    pub regenerate_truncated: bool,
    /// Write the requests as OpenAI Batch API input lines to this file instead of sending them;
    /// import the input and the batch's output file together to bring the answers in.
    #[arg(long, value_name = "FILE")]
    pub batch_file: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, args: GenerateArgs) -> anyhow::Result<()> {
    let source = match (&args.prompts, &args.filter, args.all) {
        (Some(file), _, _) => PromptSource::File(file.clone()),
        (None, Some(expr), _) => PromptSource::Where(crate::ops::rules::filter(store, expr).await?),
        (None, None, true) => PromptSource::All,
        (None, None, false) => anyhow::bail!("say which prompts: --prompts FILE, --where EXPR or --all"),
    };
    let opts = GenerateOptions {
        servers: args.server.servers(args.endpoints),
        model: args.model,
        teacher: args.teacher,
        n: args.n,
        temperature: args.temperature,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
        system: args.system,
        logprobs: args.logprobs,
        concurrency: args.server.concurrency,
        batch_file: args.batch_file.clone(),
        regenerate_truncated: args.regenerate_truncated,
    };
    let bar = ImportBar::new();
    let report = generate(store, &source, &opts, &|r, total| {
        bar.update_generate(r.requests, total, r.samples, r.tokens, r.failures);
    })
    .await;
    bar.finish();
    let report = report?;
    if let Some(path) = &args.batch_file {
        super::say!("{} requests written to {} (Batch API input lines)", report.requests, path.display());
        return Ok(());
    }
    if args.json {
        println!("{}", super::json::pretty(&report)?);
    } else {
        super::say!(
            "{} prompts ({} already complete): {} requests, {} samples stored ({} tokens), {} requests failed",
            report.prompts,
            report.complete,
            report.requests,
            report.samples,
            report.tokens,
            report.failures
        );
        say_unfinished(&report.first_errors, report.interrupted, report.failures, "requests");
    }
    // What arrived is stored either way; a failed request still makes the run a failure for a
    // script (a Ctrl-C the user pressed does not).
    if report.failures > 0 {
        anyhow::bail!("{} of {} requests failed; the same command asks for them again", report.failures, report.requests);
    }
    Ok(())
}
