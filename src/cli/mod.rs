//! The command line: arguments (clap) and one handler per command.
//!
//! Human-readable output goes through [`say!`]: it holds stored text (teacher names, prompts,
//! a server's error), which is shown, never obeyed by the terminal. JSON output needs nothing:
//! serde_json escapes every control character.

/// `println!` for the CLI's reports: control characters and escape sequences in the text shown
/// as visible stand-ins (`␛`), never sent to the terminal.
macro_rules! say {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", $crate::tui::text::terminal_safe(&format!($($arg)*)))
    };
}

/// `eprintln!` for the CLI's notes and warnings, as [`say!`] for standard error.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::tui::text::terminal_safe(&format!($($arg)*)))
    };
}

pub(crate) use {note, say};

mod bench;
mod edit;
mod export;
mod generate;
mod import;
mod index;
mod json;
mod progress;
mod rules;
mod score;
mod stats;
mod template;
mod train;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::domain::Kind;
use crate::ingest::Format;
use crate::store::{self, Store};

/// retort — a terminal workbench for knowledge-distillation data.
///
/// One SQLite file holds teacher trajectories (prompts, reasoning, answers, log-probs) and verifier
/// scores. Import what your teacher produced, see what you have, curate it, export an SFT set.
#[derive(Debug, Parser)]
#[command(name = "retort", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    /// The store file (created when missing).
    #[arg(long, global = true, env = "RETORT_DB", default_value = store::DEFAULT_DB, value_name = "PATH")]
    pub db: PathBuf,

    /// A config file with a [keys] table rebinding actions (default: ~/.config/retort/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The text report of `retort stats`, also shown in the TUI's Stats tab.
#[must_use]
pub fn stats_report(s: &crate::ops::stats::Stats) -> String {
    stats::render(s)
}

/// The user's config file: `--config`, else `$XDG_CONFIG_HOME/retort/config.toml`, else
/// `~/.config/retort/config.toml` when it exists.
fn config_path(flag: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.clone());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("retort/config.toml")).filter(|p| p.exists())
}

fn keymap(flag: Option<&PathBuf>) -> anyhow::Result<crate::tui::keymap::KeyMap> {
    let user = match config_path(flag) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read the config {}: {e}", path.display()))?;
            Some((path.display().to_string(), text))
        }
        None => None,
    };
    crate::tui::keymap::KeyMap::load(user.as_ref().map(|(o, t)| (o.as_str(), t.as_str()))).map_err(|e| anyhow::anyhow!(e))
}

async fn open_tui(db: &std::path::Path, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let keys = keymap(config)?;
    let store = Store::open(db).await?;
    if store.is_empty().await? {
        eprintln!("The store {} is empty: importing the demo set first.", db.display());
        crate::demo::import_demo(&store).await?;
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        crate::tui::run(store, keys).await
    } else {
        // Not a terminal (a pipe, a script): the report instead of a screen.
        stats::run(&store, false).await
    }
}

/// A value parser that offers `names` to `--help`, to errors and to shell completion, and
/// parses with the type's own `FromStr`.
fn one_of<T>(names: impl IntoIterator<Item = &'static str>) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err: std::error::Error + Send + Sync + 'static> + Clone + Send + Sync + 'static,
{
    clap::builder::TypedValueParser::try_map(clap::builder::PossibleValuesParser::new(names), |s: String| s.parse::<T>())
}

const EXAMPLES: &str = "\
Examples:
  retort                                   open the store (imports the demo set when it is empty)
  retort import gens.jsonl --teacher r1    import a teacher's generations
  retort import batch_in.jsonl batch_out.jsonl   an OpenAI Batch API job, matched by custom_id
  retort edit 42                           fix sample 42's answer in $EDITOR (undo puts it back)
  retort stats                             what the store holds
  retort stats --json | jq .verifiers      the same, for programs";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import teacher data: Parquet, JSONL or JSON files (or .gz/.zst, or a downloaded dataset folder), format detected per file.
    #[command(long_about = IMPORT_HELP)]
    Import(ImportArgs),
    /// Build the full-text index of the samples not yet in it: what an import of many samples
    /// leaves to a background process, or resumes one that was stopped.
    Index {
        /// Print nothing (the background indexer an import starts).
        #[arg(long)]
        quiet: bool,
    },
    /// Report what the store holds: counts, pass rates, token lengths.
    Stats {
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Open the review TUI (the default when stdout is a terminal).
    Tui,
    /// Write the accepted set for SFT (messages, prompt-completion, sharegpt, alpaca, openai, kd) as JSONL or Parquet, with a manifest.
    Export(export::ExportArgs),
    /// Sample a teacher n times per prompt through OpenAI-compatible servers (vLLM, SGLang, OpenAI...).
    #[command(after_help = GENERATE_HELP)]
    Generate(generate::GenerateArgs),
    /// Soft labels for existing traces: a vLLM teacher's top-K log-probs at every answer token (teacher-forced).
    #[command(name = "score-logprobs", after_help = score::SCORE_HELP)]
    ScoreLogprobs(score::ScoreArgs),
    /// Score samples with a verifier (math, exact, format, length, repetition, language, cmd).
    #[command(after_help = VERIFY_HELP)]
    Verify(verify::VerifyArgs),
    /// List samples, filtered with the rule predicate language.
    #[command(after_help = FILTER_HELP)]
    List {
        /// Only samples matching this predicate, e.g. 'score.imported < 1 and tokens > 4000'.
        #[arg(long = "where", value_name = "EXPR")]
        filter: Option<String>,
        /// At most this many samples.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON object a line: texts, scores, tags, and (when there are) the system prompt,
        /// the earlier turns (`messages`), the `tools` offered and the answer's `tool_calls`.
        #[arg(long)]
        json: bool,
    },
    /// Check, dry-run or apply batch rules (accept, reject, label, tag, best-of-n, dedup, decontaminate).
    #[command(subcommand, after_help = RULES_HELP)]
    Rules(rules::RulesCommand),
    /// Edit a sample's answer (or its prompt's reference) in $EDITOR: stored as its hard label, undoable.
    #[command(after_help = edit::EDIT_HELP)]
    Edit(edit::EditArgs),
    /// Revert the last action (or the last N, or every application of one rule).
    Undo {
        /// Undo the last N actions.
        #[arg(long, value_name = "N", conflicts_with = "rule")]
        last: Option<u32>,
        /// Undo every application of the rule with this name.
        #[arg(long, value_name = "NAME")]
        rule: Option<String>,
        /// Print what was undone as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune a student with LoRA on an export (candle; CPU, or an NVIDIA GPU with the cuda build).
    #[command(after_help = TRAIN_HELP)]
    Train(train::TrainArgs),
    /// See what a student is trained on: an export rendered through a model's chat template.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Decode with a local model (and adapter) to read what the student says: greedy or sampled, KV cache.
    GenerateLocal(train::GenerateLocalArgs),
    /// Measure retort's speed on generated data.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the completion script for a shell (commands, flags, formats, file names).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

const COMPLETIONS_HELP: &str = "\
Install:
  retort completions bash > ~/.local/share/bash-completion/completions/retort
  retort completions zsh > ~/.zfunc/_retort        (with fpath+=~/.zfunc before compinit)
  retort completions fish > ~/.config/fish/completions/retort.fish";

const TRAIN_HELP: &str = "\
Examples:
  retort export --format messages --val 0.05 --out sft
  retort train --model Qwen2.5-0.5B --data sft --epochs 2    into runs/Qwen2.5-0.5B-1, then -2...
  retort train --model Qwen2.5-0.5B --data sft --out first   into first/
  retort train --resume runs/Qwen2.5-0.5B-1/checkpoint-200   continue after Ctrl-C or a crash
  retort train merge --model Qwen2.5-0.5B --adapter runs/Qwen2.5-0.5B-1 --out merged
  retort train create-model --shape tiny --out tiny          a random model to try things on

The loss is on the assistant's tokens only (reasoning included), rendered with the model's own
chat template. Rows longer than --max-len are reported and skipped. A kd export (top-k
log-probs) trains with kd-alpha·T²·KL + (1 − kd-alpha)·CE. Each run without --out gets a new
directory runs/<model>-N. Metrics go to DIR/metrics.jsonl and the store (the TUI's Train tab,
where past runs open to their loss chart); the validation loss is measured about ten times a run. The adapter is PEFT's format: PeftModel.from_pretrained loads it.";

const GENERATE_HELP: &str = "\
Examples:
  retort generate --prompts gsm8k.jsonl --model Qwen/QwQ-32B --n 8 \\
      --endpoint http://localhost:8000/v1
  retort generate --where 'pass.math = 0' --model M --n 4 --endpoint URL
  retort generate --all --model M --regenerate-truncated --endpoint URL
  retort generate --prompts set.jsonl --model gpt-4o --batch-file batch.jsonl

Rerunning the same command asks only for what is missing: answers already
stored are kept, failed requests (listed in the report, stored in the
generation_failures table) are asked again. Ctrl-C stops at once and keeps
everything that arrived.";

const VERIFY_HELP: &str = "\
Verifiers write a score in [0, 1] and a pass/fail per sample, used in rules as score.NAME and pass.NAME:
  format       the trace is whole: not cut off (finish_reason length), reasoning closed, an answer given
  length       completion tokens within --max-tokens (score falls past it)
  repetition   share of distinct 10-word n-grams; degenerate loops score low (pass >= 0.5)
  language     share of the response in the prompt's language, formulas aside (pass >= 0.9)
  math         the final answer (last \\boxed{}, Answer:, ####, Sky-T1 solution) equals the reference, as maths
  exact        the final answer equals the reference as text (case, spacing, $ aside)
  cmd          an external checker: one JSON on stdin, {\"score\", \"pass\", \"details\"} on stdout
  judge        an LLM grades against a rubric through an OpenAI-compatible endpoint (--endpoint, --model)
Samples that already have the verifier's score are skipped unless --force.
  retort verify -v format -v repetition -v language
  retort verify -v math -v exact --where 'has_reference'
  retort verify -v judge --endpoint http://localhost:8000/v1 --model Qwen2.5-72B-Instruct --where 'kind = general'
  retort verify -v cmd --name unit_tests --cmd 'python3 run_tests.py' --timeout 20 --where 'kind = reasoning'";

const FILTER_HELP: &str = "\
Predicates: score.NAME, pass.NAME, tokens, reasoning_tokens, answer_tokens,
teacher, source, kind, label, status, tag, finish_reason, has_logprobs,
mean_logprob, min_logprob, perplexity (the teacher's confidence in the trace's
own tokens, from its log-probs), has_reference, has_tools, prompt, reasoning,
answer, reference; compared with
= != < <= > >=, text with ~ \"regex\" and contains \"text\";
combined with and, or, not, ( ).
  retort list --where 'score.imported >= 1 and finish_reason != \"length\"'
  retort list --where 'prompt ~ \"^Find\" and not has_reference' --json";

const RULES_HELP: &str = "\
A rules file holds one rule a line ('#' starts a comment; 'name:' before a rule names it):
  accept where score.math >= 1 and tokens <= 16384 and finish_reason != \"length\"
  reject where score.repetition < 0.5 or score.language < 0.9
  best: keep best 1 per prompt by score.math, tokens asc     # the others are rejected
  reject duplicates                                          # exact content hash
  reject near-duplicates threshold 0.85                      # MinHash over 5-word shingles
  reject contaminated by \"aime24.jsonl\" ngram 8              # prompts sharing an 8-gram
  label soft where has_logprobs
  tag \"long\" where reasoning_tokens > 8000
Rules leave a curator's own decisions alone unless --override is given. Every change is recorded:
`retort undo --rule best` reverts that rule's changes exactly.";

const IMPORT_HELP: &str = "\
Import teacher data. Each file's format is detected from its first record (or forced with --format):

  messages            {\"messages\": [{\"role\", \"content\"}...]}  OpenAI / TRL chat; the last assistant turn is the sample
  prompt-completion   {\"prompt\": ..., \"completion\": ...}  strings or message lists
  sharegpt            {\"conversations\": [{\"from\", \"value\"}...]}  with function_call/observation turns (LLaMA-Factory)
  alpaca              {\"instruction\", \"input\", \"output\"}
  r1                  {\"problem\", \"generations\": [...], \"correctness_math_verify\": [...], \"answer\"}  (OpenR1-Math), or one
                      \"response\" with <think> inline, or \"reasoning_content\"/\"reasoning\" beside \"answer\"
  skythought          {\"question\", \"code\": [...], \"gt\", \"pred\", \"score\"}  Sky-T1 / Qwen2.5-Math evaluation outputs
  problems            {\"question\" | \"problem\", \"answer\"}  prompt sets with reference answers (GSM8K, MATH)
  exchange            {\"request\": {chat request}, \"response\": {chat.completion}}  logged API calls, with log-probs
  openai-batch-input  Batch API input lines: become prompts
  openai-batch        Batch API output lines, matched to the input file of the same command by custom_id
  scores              {\"sample_id\" | \"sample_hash\", \"verifier\", \"score\", \"pass\"}  verdicts for samples in the store

Reasoning is split from the answer at <think>...</think> (also when the opening tag is missing), at
Sky-T1's <|begin_of_thought|> markers, or taken from reasoning_content / reasoning fields. Verdicts in
the rows become scores of the verifier named by --score-name. The same prompt text is one prompt,
whatever file or teacher it came from. Importing the same data twice adds nothing.

Parquet files (as the Hugging Face Hub ships datasets) are read row by row, a row group at a time;
each row is read as the JSON record of its JSONL twin, so every format above reads in Parquet too.
.gz and .zst files are read as the text they hold, streamed.

A folder is read for its data files (*.parquet, *.jsonl, *.json, *.ndjson, the text ones plain or as .gz/.zst,
recursively, in name order): `retort import OpenR1-Math-220k/` takes a downloaded dataset's data/ shards in
turn; its README, licence, .gitattributes, dataset_info.json and other metadata are left out with a note,
here and when named.
Images, audio and video in rows are not kept (retort stores text): the import says how many rows had them.

A bad record (broken JSON, invalid UTF-8, missing field, wrong type) stops the import before anything
is written, with file:line:column (in Parquet: row, row group and column); a truncated or damaged file
is named with the place reached. --skip-bad imports the rest and reports what it left out.";

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Files or folders to import (.parquet, .jsonl, .json holding an array or one object; .gz/.zst).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Force the format instead of detecting it.
    #[arg(long, value_name = "FORMAT", value_parser = one_of::<Format>(Format::ALL.iter().map(|f| f.as_str())))]
    pub format: Option<Format>,
    /// The teacher model's name (default: the data's `model` or `generator` field, else the file's name, or a shard's dataset's).
    #[arg(long, value_name = "NAME")]
    pub teacher: Option<String>,
    /// The prompts' kind (default: reasoning when a row has a reference answer or reasoning, else general).
    #[arg(long, value_name = "KIND", value_parser = one_of::<Kind>(Kind::ALL.iter().map(|k| k.as_str())))]
    pub kind: Option<Kind>,
    /// Where the data came from (default: the `source` field of the data, else the file's name, or a shard's dataset's).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// The verifier name for verdicts stored in the rows (`score.imported` in rules).
    #[arg(long, default_value = "imported", value_name = "NAME")]
    pub score_name: String,
    /// Count tokens exactly with this tokenizer.json (default: an estimate, see the README).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Import the good records and report the bad ones, instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Refuse records larger than this many MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub max_record_mb: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// When to build the full-text index of what was added: auto (before returning when at
    /// most 100k samples wait, else in a background process), now, background, later.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub index: crate::ops::index::IndexWhen,
}

/// The CPU threads a command asks for (`train --threads`, `bench train --threads`).
#[must_use]
pub fn threads_wanted(cli: &Cli) -> Option<usize> {
    match &cli.command {
        Some(Command::Train(args)) if args.command.is_none() => args.run.threads,
        Some(Command::Bench(bench::BenchCommand::Train(args))) => Some(args.threads),
        _ => None,
    }
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Import(args)) => {
            let store = Store::open(&cli.db).await?;
            import::run(&store, args).await
        }
        Some(Command::Index { quiet }) => {
            let store = Store::open(&cli.db).await?;
            index::run(&store, quiet).await
        }
        Some(Command::Stats { json }) => {
            let store = Store::open(&cli.db).await?;
            stats::run(&store, json).await
        }
        Some(Command::Export(args)) => {
            let store = Store::open(&cli.db).await?;
            export::run(&store, args).await
        }
        Some(Command::Generate(args)) => {
            let store = Store::open(&cli.db).await?;
            generate::run(&store, args).await
        }
        Some(Command::ScoreLogprobs(args)) => {
            let store = Store::open(&cli.db).await?;
            score::run(&store, args).await
        }
        Some(Command::Verify(args)) => {
            let store = Store::open(&cli.db).await?;
            verify::run(&store, args).await
        }
        Some(Command::List { filter, limit, json }) => {
            let store = Store::open(&cli.db).await?;
            rules::run_list(&store, filter, limit, json).await
        }
        Some(Command::Rules(cmd)) => {
            let store = Store::open(&cli.db).await?;
            rules::run(&store, cmd).await
        }
        Some(Command::Edit(args)) => {
            let store = Store::open(&cli.db).await?;
            edit::run(&store, args).await
        }
        Some(Command::Undo { last, rule, json }) => {
            let store = Store::open(&cli.db).await?;
            rules::run_undo(&store, last, rule, json).await
        }
        Some(Command::Train(args)) => {
            // merge and create-model need no store.
            if args.command.is_some() {
                train::run(None, args).await
            } else {
                let store = Store::open(&cli.db).await?;
                train::run(Some(&store), args).await
            }
        }
        Some(Command::GenerateLocal(args)) => tokio::task::spawn_blocking(move || train::generate_local(&args)).await?,
        Some(Command::Template(cmd)) => tokio::task::spawn_blocking(move || template::run(cmd)).await?,
        Some(Command::Bench(cmd)) => Box::pin(bench::run(cmd)).await,
        Some(Command::Completions { shell }) => {
            // Written whole, so that a closed pipe is an error like any other write's, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "retort", &mut script);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
            Ok(())
        }
        None | Some(Command::Tui) => open_tui(&cli.db, cli.config.as_ref()).await,
    }
}
