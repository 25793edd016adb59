//! `retort export`.

use std::path::PathBuf;

use super::progress::ImportBar;
use crate::domain::{LabelType, Status};
use crate::export::{Container, ExportFormat, ReasoningMode};
use crate::ops::export::{ExportOptions, export, parse_mix};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// messages (TRL, axolotl chat_template: tool arguments as objects), prompt-completion (TRL),
    /// sharegpt and alpaca (LLaMA-Factory, with dataset_info.json), openai (OpenAI fine-tuning:
    /// tool call ids, string arguments), kd (soft labels: top-k log-probs as token ids).
    #[arg(long, value_name = "FORMAT", value_parser = super::one_of::<ExportFormat>(ExportFormat::ALL.iter().map(|f| f.as_str())))]
    pub format: ExportFormat,
    /// The directory to write train.jsonl, validation.jsonl and manifest.json into.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["dry_run", "check_template"])]
    pub out: Option<PathBuf>,
    /// jsonl, or parquet: the same rows as Parquet shards (snappy, row groups of 2000 rows at most)
    /// named as the Hub names them, train-00000-of-00001.parquet, that
    /// datasets.load_dataset("parquet", data_files=...) loads with the rows and columns
    /// load_dataset("json") gives for the JSON Lines. Keys or types that differ between rows (tool
    /// calls in some messages, arguments of different tools) are a JSON text column there, as
    /// datasets keeps them (its Json() feature, Arrow's arrow.json); manifest.json names them.
    #[arg(long, default_value = "jsonl", value_name = "CONTAINER", value_parser = super::one_of::<Container>(Container::ALL.iter().map(|c| c.as_str())))]
    pub container: Container,
    /// At most N rows a file, for either container: a part is written as train-00000-of-00003.jsonl
    /// (or .parquet), train-00001-of-00003... and manifest.json lists the shards with their counts
    /// and sha256. Without it a part is one file (train.jsonl; train-00000-of-00001.parquet).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_rows: Option<u64>,
    /// Only samples matching this predicate (the rule language).
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Statuses to export.
    #[arg(long, value_delimiter = ',', default_value = "accepted", value_name = "STATUS,...",
          value_parser = super::one_of::<Status>(Status::ALL.iter().map(|s| s.as_str())))]
    pub status: Vec<Status>,
    /// Label types to export (default: all).
    #[arg(long, value_delimiter = ',', value_name = "LABEL,...", value_parser = super::one_of::<LabelType>(LabelType::ALL.iter().map(|l| l.as_str())))]
    pub labels: Option<Vec<LabelType>>,
    /// inline (<think>…</think> before the answer), field (reasoning_content), or drop.
    #[arg(long, default_value = "inline", value_name = "MODE", value_parser = super::one_of::<ReasoningMode>(["inline", "field", "drop"]))]
    pub reasoning: ReasoningMode,
    /// Leave system prompts out.
    #[arg(long)]
    pub no_system: bool,
    /// The share of samples for validation.jsonl, chosen by a hash of each sample's content.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub val: f64,
    /// Seed of the order the samples are written in.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Mix by kind (`reasoning=3,general=1`) or by source (`source:gsm8k=1,source:alpaca=2`).
    #[arg(long, value_name = "KEY=WEIGHT,...")]
    pub mix: Option<String>,
    /// At most this many samples (split by the mix's weights).
    #[arg(long, value_name = "N", conflicts_with = "max_tokens")]
    pub max_samples: Option<u64>,
    /// At most this many completion tokens (split by the mix's weights).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// kd: the student's model directory (tokenizer.json and chat template). Each line is rendered
    /// as the student is trained on it and the teacher's top-k placed on its tokens, as axolotl's
    /// KD loader reads them; teacher and student must share the tokenizer.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The dataset's name in dataset_info.json (sharegpt).
    #[arg(long, default_value = "retort", value_name = "NAME")]
    pub name: String,
    /// Print the counts and token totals per part, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Render every sample through this model directory's chat template (tokenizer_config.json or
    /// chat_template.jinja) and report dropped reasoning, empty assistant parts and, with
    /// --max-len, conversations too long; writes nothing, exits 1 on a problem.
    #[arg(long, value_name = "MODEL_DIR")]
    pub check_template: Option<PathBuf>,
    /// With --check-template: the longest conversation, in the model's tokens.
    #[arg(long, value_name = "TOKENS", requires = "check_template")]
    pub max_len: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, args: ExportArgs) -> anyhow::Result<()> {
    let filter_expr = match args.filter.as_deref() {
        Some(src) => Some(crate::ops::rules::filter(store, src).await?),
        None => None,
    };
    let opts = ExportOptions {
        format: args.format,
        out: args.out.clone().unwrap_or_default(),
        filter: args.filter.clone(),
        filter_expr,
        statuses: args.status.clone(),
        labels: args.labels.clone(),
        reasoning: args.reasoning,
        system: !args.no_system,
        val: args.val,
        seed: args.seed,
        mix: args.mix.as_deref().map(parse_mix).transpose().map_err(|e| anyhow::anyhow!(e))?.unwrap_or_default(),
        max_samples: args.max_samples,
        max_tokens: args.max_tokens,
        name: args.name.clone(),
        model: args.model.clone(),
        container: args.container,
        shard_rows: args.shard_rows,
    };
    if let Some(dir) = &args.check_template {
        let report = crate::ops::export::check_template(store, &opts, dir, args.max_len).await?;
        if args.json {
            println!("{}", super::json::pretty(&report)?);
        } else {
            super::say!("checked {} conversations against {}", report.checked, dir.display());
            let show = |what: &str, f: &crate::ops::export::Finding| {
                if f.count > 0 {
                    let ids: Vec<String> = f.examples.iter().map(|i| format!("#{i}")).collect();
                    super::say!("  {:>6}  {what} (e.g. {})", f.count, ids.join(" "));
                    if let Some(e) = &f.first_error {
                        super::say!("          {e}");
                    }
                }
            };
            show("lose their reasoning in the template", &report.reasoning_dropped);
            show("offer tools the template does not show", &report.tools_dropped);
            show("hold tool calls the template leaves out", &report.tool_calls_dropped);
            show("have an empty assistant part once the prompt is masked", &report.empty_assistant);
            show("render a prompt that is not a prefix of the conversation", &report.prompt_not_prefix);
            show("are longer than --max-len tokens", &report.too_long);
            show("do not render", &report.render_errors);
            if report.generation_prompt_differs.count > 0 {
                super::say!(
                    "  note: for {} conversations the generation prompt adds text the training rendering lacks (e.g. a pre-filled <think>)",
                    report.generation_prompt_differs.count
                );
            }
            if report.problems() == 0 {
                super::say!("  no problems");
            }
        }
        if report.problems() > 0 {
            anyhow::bail!("the template check found problems in {} of the {} conversations", report.with_problems, report.checked);
        }
        return Ok(());
    }
    let bar = ImportBar::new();
    bar.update_count("export", 0, 1);
    let report = export(store, &opts, args.dry_run, &|done, total| bar.update_count("export", done, total)).await;
    bar.finish();
    let report = report?;
    if args.json {
        println!("{}", super::json::pretty(&report)?);
        return Ok(());
    }
    for (name, part) in &report.parts {
        let shards = if part.shards.is_empty() { String::new() } else { format!(" ({} shards)", part.shards.len()) };
        let file = if part.file.is_empty() { String::new() } else { format!("  {}{shards}", opts.out.join(&part.file).display()) };
        super::say!("{name:<11} {:>9} samples {:>12} tokens{file}", part.samples, part.tokens);
    }
    let mix: Vec<String> = report.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    super::say!("by kind: {}", mix.join(", "));
    if !report.left_out.is_empty() {
        super::say!("left out, as {} cannot hold them: {}", opts.format, crate::ops::export::left_out_summary(&report.left_out));
    }
    let cut = &report.cut_off_reasoning;
    if cut.count > 0 {
        let ids: Vec<String> = cut.examples.iter().map(|i| format!("#{i}")).collect();
        super::say!(
            "{} samples were cut off inside their reasoning (e.g. {}) and are written with it open, <think> without </think>; \
             --where 'not reasoning_cut_off' leaves them out",
            cut.count,
            ids.join(" ")
        );
    }
    if args.dry_run {
        super::say!("Dry run: nothing was written.");
    } else if let Some(id) = report.export_id {
        super::say!(
            "Export #{id}: {} samples, {} tokens; manifest.json has the options, hashes and how to train on it.",
            report.samples,
            report.tokens
        );
    }
    Ok(())
}
