//! `retort template render`: what the student is trained on, as the trainer renders it.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::json;

use crate::train::TrainError;
use crate::train::data::{Encoder, LineError, Skip, read_lines};

#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Render an export's conversations through a model's chat template, as the trainer does: the
    /// text with the trained spans highlighted, and the problems found.
    #[command(after_help = RENDER_HELP)]
    Render(RenderArgs),
}

const RENDER_HELP: &str = "\
Examples:
  retort template render --model ~/models/Qwen2.5-0.5B-Instruct sft/train.jsonl --limit 3
  retort template render --model DIR sft/train.jsonl --json | jq '.assistant_mask | add'
  retort template render --model DIR prompts.jsonl --add-generation-prompt

The template is the model's own (chat_template.jinja, or chat_template in tokenizer_config.json),
rendered as transformers' apply_chat_template renders it; the text is tokenized with the model's
tokenizer.json. The loss is taken where the template's {% generation %} blocks say, else on each
assistant turn found by rendering the conversation up to it. In a terminal the trained text is
shown in green. --json prints one object a line: text, input_ids, assistant_mask (1 where the
loss is taken) and problems; a line that does not render gives {\"error\"}. Exits 1 when a
conversation does not render.";

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The model directory: its chat template and tokenizer.json.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Export files (any format retort export writes) or other chat JSONL.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// One JSON object a line: {"text", "input_ids", "assistant_mask", "problems"}.
    #[arg(long)]
    pub json: bool,
    /// Render each conversation as a prompt for the model's next turn, as at inference (nothing
    /// is trained); lines need no assistant turn.
    #[arg(long)]
    pub add_generation_prompt: bool,
    /// At most this many conversations.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

pub fn run(cmd: TemplateCommand) -> anyhow::Result<()> {
    match cmd {
        TemplateCommand::Render(args) => render(&args),
    }
}

/// Why a line of the file has no rendering.
#[derive(Debug, thiserror::Error)]
enum LineFailure {
    /// Not JSON, or no conversation.
    #[error(transparent)]
    Read(#[from] LineError),
    #[error("{at}: {cause}")]
    Render { at: String, cause: Box<RenderError> },
}

/// Why a conversation does not render through the model's template.
#[derive(Debug, thiserror::Error)]
enum RenderError {
    /// The prompt rendering (with the generation prompt) failed.
    #[error(transparent)]
    Prompt(#[from] TrainError),
    #[error("tokenizing: {0}")]
    Tokenize(tokenizers::Error),
    /// The training rendering failed, as the trainer would skip the line.
    #[error("{0}")]
    Training(Skip),
}

/// The rendering of one line, or why it has none.
struct Rendered {
    text: String,
    ids: Vec<u32>,
    mask: Vec<bool>,
    /// Byte ranges of `text` that are trained.
    trained: Vec<std::ops::Range<usize>>,
    problems: Vec<String>,
}

fn render_line(encoder: &Encoder, conv: &crate::train::data::Conversation, add_generation_prompt: bool) -> Result<Rendered, RenderError> {
    if add_generation_prompt {
        let text = encoder.render_prompt(&conv.messages, conv.tools.as_ref())?;
        let ids = encoder.tokenizer.encode(text.as_str(), false).map_err(RenderError::Tokenize)?.get_ids().to_vec();
        let mask = vec![false; ids.len()];
        return Ok(Rendered { text, ids, mask, trained: Vec::new(), problems: Vec::new() });
    }
    let (training, encoding, mask) = encoder.encode_text(conv).map_err(RenderError::Training)?;
    let mut problems = Vec::new();
    if training.reasoning_dropped {
        problems.push("the template leaves the reasoning (reasoning_content) out: it is not trained on".to_owned());
    }
    if training.generation_prompt_differs {
        problems.push("the generation prompt adds text the conversation does not hold: training and inference differ there".into());
    }
    if training.unlocated_turns > 0 {
        problems.push(format!("{} assistant turn(s) rewritten by the template are context, not trained", training.unlocated_turns));
    }
    let (tools_hidden, calls_hidden) = crate::template::hidden_tool_use(&training.text, conv.tools.as_ref(), &conv.messages);
    if tools_hidden {
        problems.push("the template does not show the tools offered".into());
    }
    if calls_hidden {
        problems.push("the template leaves tool calls out".into());
    }
    if !mask.iter().any(|m| *m) {
        problems.push(crate::train::data::untrained(&training));
    }
    Ok(Rendered { text: training.text, ids: encoding.get_ids().to_vec(), mask, trained: training.trained, problems })
}

/// The text with its trained ranges in green (control characters shown, never sent).
fn highlighted(text: &str, trained: &[std::ops::Range<usize>], colour: bool) -> String {
    let sanitize = crate::tui::text::sanitize;
    if !colour {
        return sanitize(text);
    }
    let mut out = String::new();
    let mut at = 0;
    for r in trained {
        out.push_str(&sanitize(&text[at..r.start]));
        out.push_str("\x1b[32m");
        out.push_str(&sanitize(&text[r.clone()]).replace('\n', "\x1b[0m\n\x1b[32m"));
        out.push_str("\x1b[0m");
        at = r.end;
    }
    out.push_str(&sanitize(&text[at..]));
    out
}

fn render(args: &RenderArgs) -> anyhow::Result<()> {
    let encoder = Encoder::load(&args.model)?;
    let stdout = std::io::stdout();
    let terminal = std::io::IsTerminal::is_terminal(&stdout);
    let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut shown, mut failed, mut with_problems) = (0usize, 0usize, 0usize);
    'files: for path in &args.files {
        for (line, conv) in read_lines(path, !args.add_generation_prompt)? {
            if args.limit.is_some_and(|n| shown >= n) {
                break 'files;
            }
            shown += 1;
            let at = format!("{}:{line}", path.display());
            let rendered = conv.map_err(LineFailure::from).and_then(|c| {
                render_line(&encoder, &c, args.add_generation_prompt)
                    .map_err(|cause| LineFailure::Render { at: at.clone(), cause: Box::new(cause) })
            });
            match rendered {
                Err(e) => {
                    let e = e.to_string();
                    failed += 1;
                    if args.json {
                        writeln!(out, "{}", json!({"error": e}))?;
                    } else {
                        writeln!(out, "── {at}: does not render\n   ! {}\n", crate::tui::text::sanitize(&e))?;
                    }
                }
                Ok(r) => {
                    if !r.problems.is_empty() {
                        with_problems += 1;
                    }
                    if args.json {
                        let mask: Vec<u8> = r.mask.iter().map(|m| u8::from(*m)).collect();
                        writeln!(out, "{}", json!({"text": r.text, "input_ids": r.ids, "assistant_mask": mask, "problems": r.problems}))?;
                    } else {
                        let trained = r.mask.iter().filter(|m| **m).count();
                        writeln!(out, "── {at} · {} tokens, {trained} trained", r.ids.len())?;
                        writeln!(out, "{}", highlighted(&r.text, &r.trained, colour))?;
                        for p in &r.problems {
                            writeln!(out, "   ! {p}")?;
                        }
                        writeln!(out)?;
                    }
                }
            }
        }
    }
    out.flush()?;
    drop(out);
    if !args.json {
        super::note!(
            "{shown} conversation{} rendered with {}: {failed} failed, {with_problems} with problems.",
            if shown == 1 { "" } else { "s" },
            encoder.template_origin()
        );
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {shown} conversations do not render through {}", encoder.template_origin());
    }
    Ok(())
}
