//! An export's conversations as training rows: rendered with the model's own chat template,
//! tokenized with its `tokenizer.json`, loss on the assistant's tokens only (reasoning included).
//!
//! The assistant's part of the rendering is found by rendering the conversation up to each
//! assistant turn (with the generation prompt) and up to its end: the characters in between are
//! the turn, end-of-turn token included. Every format `retort export` writes is read: messages
//! (and kd), prompt-completion, sharegpt, alpaca.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::TrainError;
use super::step::{Row, TopK};
use crate::template::{ChatTemplate, Marking, TrainingText, assistant_mask};

/// The teacher's top-k for a kd line: the sampled tokens' ids and, per token, the top-k ids and
/// log-probs.
#[derive(Debug, Clone, PartialEq)]
pub struct Soft {
    pub token_ids: Vec<u32>,
    pub target_token_ids: Vec<Vec<u32>>,
    pub logprobs: Vec<Vec<f32>>,
}

/// Why a line of an export is no conversation.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("a line must be a JSON object")]
    NotObject,
    #[error("no `messages`, `prompt`/`completion`, `conversations` or `instruction`: not a retort export line")]
    UnknownShape,
    #[error("the conversation has no messages")]
    NoMessages,
    #[error("the conversation has no assistant turn to learn from")]
    NoAssistantTurn,
    /// A kd line's soft-label field of the wrong shape; serde's reason is in the message.
    #[error("`{field}`: {cause}")]
    SoftField { field: &'static str, cause: serde_json::Error },
    #[error("`token_ids`, `target_token_ids` and `logprobs` disagree in length")]
    SoftLengths,
}

/// Why a line of a file is no conversation, and where it is.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("{}:{line}:{column}: {cause}", path.display())]
    Json { path: PathBuf, line: usize, column: usize, cause: serde_json::Error },
    #[error("{}:{line}: {cause}", path.display())]
    Conversation { path: PathBuf, line: usize, cause: ConversationError },
}

/// Why a kd line's rows do not sit on the student's rendering: it was exported for another
/// student.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misaligned {
    #[error("the kd line has {rows} rows for {tokens} tokens: it was exported for another student (`retort export --format kd --model`)")]
    Rows { rows: usize, tokens: usize },
    #[error(
        "row {row} of the kd line predicts token {predicted} where the student's rendering has {rendered}: the export was made for \
         another tokenizer or chat template (`retort export --format kd --model` with this student)"
    )]
    Token { row: usize, predicted: u32, rendered: u32 },
}

/// One line of an export, as chat turns.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub messages: Vec<Value>,
    pub tools: Option<Value>,
    pub soft: Option<Soft>,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn turns(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(m) => m.clone(),
        Value::String(s) => vec![json!({"role": "user", "content": s})],
        _ => Vec::new(),
    }
}

/// A line of any export format as a conversation to learn from: it has an assistant turn.
pub fn conversation(line: &Value) -> Result<Conversation, ConversationError> {
    let conv = any_conversation(line)?;
    if !conv.messages.iter().any(|m| m.get("role").and_then(Value::as_str) == Some("assistant")) {
        return Err(ConversationError::NoAssistantTurn);
    }
    Ok(conv)
}

/// A line of any export format as a conversation, with or without an assistant turn.
pub fn any_conversation(line: &Value) -> Result<Conversation, ConversationError> {
    let obj = line.as_object().ok_or(ConversationError::NotObject)?;
    let tools = obj.get("tools").filter(|t| !t.is_null()).map(|t| match t {
        // LLaMA-Factory's sharegpt keeps tools as a JSON string.
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    });
    let messages: Vec<Value> = if let Some(m) = obj.get("messages") {
        turns(m)
    } else if let (Some(p), Some(c)) = (obj.get("prompt"), obj.get("completion")) {
        let mut m = turns(p);
        match c {
            Value::String(s) => m.push(json!({"role": "assistant", "content": s})),
            other => m.extend(turns(other)),
        }
        m
    } else if let Some(Value::Array(conv)) = obj.get("conversations") {
        let mut m = Vec::new();
        if let Some(Value::String(sys)) = obj.get("system") {
            m.push(json!({"role": "system", "content": sys}));
        }
        for turn in conv {
            let role = match turn.get("from").and_then(Value::as_str).unwrap_or("human") {
                "gpt" | "assistant" | "function_call" => "assistant",
                "system" => "system",
                "observation" | "tool" => "tool",
                _ => "user",
            };
            m.push(json!({"role": role, "content": text(turn.get("value"))}));
        }
        m
    } else if let Some(instruction) = obj.get("instruction") {
        let mut m = Vec::new();
        if let Some(Value::String(sys)) = obj.get("system") {
            m.push(json!({"role": "system", "content": sys}));
        }
        if let Some(Value::Array(history)) = obj.get("history") {
            for pair in history {
                m.push(json!({"role": "user", "content": text(pair.get(0))}));
                m.push(json!({"role": "assistant", "content": text(pair.get(1))}));
            }
        }
        let input = text(obj.get("input"));
        let user = if input.is_empty() { text(Some(instruction)) } else { format!("{}\n{input}", text(Some(instruction))) };
        m.push(json!({"role": "user", "content": user}));
        m.push(json!({"role": "assistant", "content": text(obj.get("output"))}));
        m
    } else {
        return Err(ConversationError::UnknownShape);
    };
    if messages.is_empty() {
        return Err(ConversationError::NoMessages);
    }
    let soft_field = |field: &'static str| move |cause: serde_json::Error| ConversationError::SoftField { field, cause };
    let soft = match (obj.get("token_ids"), obj.get("target_token_ids"), obj.get("logprobs")) {
        (Some(ids), Some(targets), Some(lps)) => {
            let ids = serde_json::from_value::<Vec<u32>>(ids.clone()).map_err(soft_field("token_ids"))?;
            let targets = serde_json::from_value::<Vec<Vec<u32>>>(targets.clone()).map_err(soft_field("target_token_ids"))?;
            let lps = serde_json::from_value::<Vec<Vec<f32>>>(lps.clone()).map_err(soft_field("logprobs"))?;
            if targets.len() != ids.len() || lps.len() != ids.len() || targets.iter().zip(&lps).any(|(t, l)| t.len() != l.len()) {
                return Err(ConversationError::SoftLengths);
            }
            Some(Soft { token_ids: ids, target_token_ids: targets, logprobs: lps })
        }
        _ => None,
    };
    Ok(Conversation { messages, tools, soft })
}

impl Conversation {
    /// The text of the last user turn (what a prompt list shows).
    #[must_use]
    pub fn last_user_text(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content"))
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
            .unwrap_or_default()
    }
}

/// The first `n` held-out conversations of an export: its `validation.jsonl`, or its
/// `train.jsonl` when it has no validation part.
pub fn held_out(export: &Path, n: usize) -> Result<Vec<Conversation>, TrainError> {
    let val = export.join("validation.jsonl");
    let file = if std::fs::metadata(&val).is_ok_and(|m| m.len() > 0) { val } else { export.join("train.jsonl") };
    Ok(read_file(&file)?.into_iter().take(n).collect())
}

/// Renders and tokenizes conversations for one model.
pub struct Encoder {
    pub tokenizer: tokenizers::Tokenizer,
    template: ChatTemplate,
}

/// What a conversation holds that its rendering leaves out: trained on all the same, since
/// this is the text the student sees at inference, but worth a warning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Omissions {
    /// Tools offered or tool calls (a template without tool support: the student learns calls
    /// it never saw defined).
    pub tool_use: bool,
    /// A `reasoning_content` the template has no place for.
    pub reasoning: bool,
}

/// Why a line did not become a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Longer than `--max-len` tokens (the length).
    TooLong(usize),
    /// Could not be rendered (the reason).
    Bad(String),
    /// The teacher's top-k tokens do not line up with the student's tokenization.
    ForeignTokenizer(Misaligned),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::TooLong(n) => write!(f, "{n} tokens, over --max-len"),
            Skip::Bad(e) => f.write_str(e),
            Skip::ForeignTokenizer(e) => e.fmt(f),
        }
    }
}

impl Encoder {
    pub fn load(model_dir: &Path) -> Result<Self, TrainError> {
        let path = model_dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&path).map_err(|cause| TrainError::Tokenizer { path: path.clone(), cause })?;
        Ok(Self { tokenizer, template: ChatTemplate::load(model_dir)? })
    }

    /// The file the chat template came from.
    #[must_use]
    pub fn template_origin(&self) -> &str {
        self.template.origin()
    }

    /// The prompt for the model's answer to `turns`: the rendering with the generation prompt.
    pub fn render_prompt(&self, turns: &[Value], tools: Option<&Value>) -> Result<String, TrainError> {
        Ok(self.template.render(turns, tools, true)?)
    }

    /// The conversation as the student is trained on it: the rendering, its tokens and which
    /// of them carry the loss.
    pub fn encode_text(&self, conv: &Conversation) -> Result<(TrainingText, tokenizers::Encoding, Vec<bool>), Skip> {
        let training = self.template.render_training(&conv.messages, conv.tools.as_ref()).map_err(|e| Skip::Bad(e.to_string()))?;
        let encoding = self.tokenizer.encode(training.text.as_str(), false).map_err(|e| Skip::Bad(format!("tokenizing: {e}")))?;
        let target = assistant_mask(encoding.get_offsets(), &training.trained);
        Ok((training, encoding, target))
    }

    /// The row of a conversation: its tokens and which of them are the assistant's; and what
    /// the chat template leaves out of it.
    pub fn encode(&self, conv: &Conversation, max_len: usize) -> Result<(Row, Omissions), Skip> {
        let (training, encoding, target) = self.encode_text(conv)?;
        if !target.iter().any(|t| *t) {
            return Err(Skip::Bad(untrained(&training)));
        }
        let (tools_hidden, calls_hidden) = crate::template::hidden_tool_use(&training.text, conv.tools.as_ref(), &conv.messages);
        let omissions = Omissions { tool_use: tools_hidden || calls_hidden, reasoning: training.reasoning_dropped };
        let ids = encoding.get_ids().to_vec();
        if ids.len() > max_len {
            return Err(Skip::TooLong(ids.len()));
        }
        let soft = match &conv.soft {
            None => None,
            Some(s) => Some(align(&ids, &target, s).map_err(Skip::ForeignTokenizer)?),
        };
        Ok((Row { ids, target, soft }, omissions))
    }
}

/// Why a rendering has nothing to train on.
#[must_use]
pub fn untrained(training: &TrainingText) -> String {
    match training.marking {
        Marking::GenerationBlocks => "the chat template's {% generation %} blocks mark none of the conversation".into(),
        Marking::Prefixes => "no assistant turn can be located in the rendering: the template renders the conversation up to \
                              a turn (with the generation prompt) as other text than the start of the whole, so the turn \
                              cannot be told from its prompt (a training template with {% generation %} blocks marks it)"
            .into(),
    }
}

/// Places a kd line's top-k on the target tokens. `retort export --format kd --model STUDENT`
/// writes row `i` as the distribution over token `L - R + i + 1` of the student's rendering (`R`
/// rows right-aligned to its `L` tokens, as axolotl reads them), with the token it predicts in
/// `token_ids`: those must be this rendering's tokens, or the export was made for another
/// tokenizer or template.
fn align(ids: &[u32], target: &[bool], soft: &Soft) -> Result<Vec<Option<TopK>>, Misaligned> {
    let rows = soft.token_ids.len();
    let offset = ids.len().checked_sub(rows).ok_or(Misaligned::Rows { rows, tokens: ids.len() })?;
    if let Some(i) = (0..rows.saturating_sub(1)).find(|i| soft.token_ids[*i] != ids[offset + i + 1]) {
        return Err(Misaligned::Token { row: i, predicted: soft.token_ids[i], rendered: ids[offset + i + 1] });
    }
    Ok((1..ids.len())
        .filter(|t| target[*t])
        .map(|t| (t - 1).checked_sub(offset).map(|i| (soft.target_token_ids[i].clone(), soft.logprobs[i].clone())))
        .collect())
}

/// Reads an export file's lines as conversations; a line that is not JSON or not a
/// conversation is an error naming file and line.
pub fn read_file(path: &Path) -> Result<Vec<Conversation>, TrainError> {
    Ok(read_lines(path, true)?.into_iter().map(|(_, conv)| conv).collect::<Result<_, _>>()?)
}

/// A file's line: its 1-based number and its conversation, or why it is none.
pub type Line = (usize, Result<Conversation, LineError>);

/// Each non-blank line of a file (its 1-based number) as a conversation, or why it is none
/// (`file:line: reason`, `file:line:column: reason` for broken JSON); `learnable`: it must
/// have an assistant turn.
pub fn read_lines(path: &Path, learnable: bool) -> Result<Vec<Line>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|cause| TrainError::Read { path: path.to_owned(), cause })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let conv = match serde_json::from_str::<Value>(line) {
            Err(cause) => Err(LineError::Json { path: path.to_owned(), line: i + 1, column: cause.column(), cause }),
            Ok(value) => (if learnable { conversation(&value) } else { any_conversation(&value) })
                .map_err(|cause| LineError::Conversation { path: path.to_owned(), line: i + 1, cause }),
        };
        out.push((i + 1, conv));
    }
    Ok(out)
}

/// The training and validation rows of an export, with what was skipped.
pub struct Dataset {
    pub train: Vec<Row>,
    pub validation: Vec<Row>,
    /// `(file:line, why)` of every line left out.
    pub skipped: Vec<(String, Skip)>,
    /// `file:line` of the rows whose tools or tool calls the chat template does not render:
    /// trained on all the same, but the student never sees them.
    pub hidden_tool_use: Vec<String>,
    /// `file:line` of the rows whose reasoning the chat template leaves out.
    pub dropped_reasoning: Vec<String>,
}

/// Encodes an export directory's `train.jsonl` and, when present, `validation.jsonl`.
pub fn load(export: &Path, encoder: &Encoder, max_len: usize) -> Result<Dataset, TrainError> {
    let train_path = export.join("train.jsonl");
    if !train_path.exists() {
        return Err(TrainError::NoTrainFile { export: export.to_owned() });
    }
    let mut data = Dataset {
        train: Vec::new(),
        validation: Vec::new(),
        skipped: Vec::new(),
        hidden_tool_use: Vec::new(),
        dropped_reasoning: Vec::new(),
    };
    for (name, into_train) in [("train.jsonl", true), ("validation.jsonl", false)] {
        let path = export.join(name);
        if !path.exists() {
            continue;
        }
        for (i, conv) in read_file(&path)?.iter().enumerate() {
            let at = || format!("{}:{}", path.display(), i + 1);
            match encoder.encode(conv, max_len) {
                Ok((row, omitted)) => {
                    if omitted.tool_use {
                        data.hidden_tool_use.push(at());
                    }
                    if omitted.reasoning {
                        data.dropped_reasoning.push(at());
                    }
                    if into_train { data.train.push(row) } else { data.validation.push(row) }
                }
                // Soft labels from another tokenizer would train on the wrong tokens: stop.
                Err(Skip::ForeignTokenizer(cause)) => return Err(TrainError::ForeignTokenizer { at: at(), cause }),
                Err(skip) => data.skipped.push((at(), skip)),
            }
        }
    }
    Ok(data)
}

/// Length-bucketed batches: rows sorted by length and grouped while the padded batch
/// (`rows × longest`) stays within `batch_tokens` (a longer row goes alone), then the batches
/// shuffled by `seed` and `epoch`.
#[must_use]
pub fn batches(lengths: &[usize], batch_tokens: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|i| (lengths[*i], *i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let longest = lengths[i];
        if !current.is_empty() && (current.len() + 1) * longest > batch_tokens {
            out.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch));
    out.shuffle(&mut rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_export_format_reads_as_a_conversation() {
        let lines = [
            json!({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}),
            json!({"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}),
            json!({"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]}),
            json!({"instruction": "2+2?", "input": "", "output": "4"}),
        ];
        for line in &lines {
            let c = conversation(line).unwrap();
            assert_eq!(c.messages.len(), 2, "{line}");
            assert_eq!(c.messages[1]["content"], "4");
        }
        assert!(conversation(&json!({"text": "x"})).unwrap_err().to_string().contains("not a retort export line"));
        assert_eq!(
            conversation(&json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap_err().to_string(),
            "the conversation has no assistant turn to learn from"
        );
    }

    #[test]
    fn batches_stay_within_the_token_budget_and_cover_every_row() {
        let lengths = [10, 300, 20, 25, 200, 12, 5000, 30];
        let b = batches(&lengths, 512, 7, 0);
        let mut seen: Vec<usize> = b.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for batch in &b {
            let longest = batch.iter().map(|i| lengths[*i]).max().unwrap();
            assert!(batch.len() == 1 || batch.len() * longest <= 512, "{batch:?}");
        }
        assert_ne!(batches(&lengths, 64, 7, 0), batches(&lengths, 64, 7, 1), "each epoch shuffles anew");
        assert_eq!(batches(&lengths, 64, 7, 1), batches(&lengths, 64, 7, 1));
    }

    #[test]
    fn kd_rows_land_where_the_student_predicts_their_token() {
        // Tokens 1 2 | 3 4 5 6: targets are 3..6 (each predicted from the position before).
        let ids = [1, 2, 3, 4, 5, 6];
        let target = [false, false, true, true, true, true];
        // Three rows right-aligned: positions 3, 4, 5 predicting 5, 6 and (the last) nothing.
        let soft = Soft {
            token_ids: vec![5, 6, 6],
            target_token_ids: vec![vec![5, 9], vec![6, 9], vec![6, 0]],
            logprobs: vec![vec![-0.1, -2.0], vec![-0.2, -3.0], vec![0.0, -30.0]],
        };
        let placed = align(&ids, &target, &soft).unwrap();
        assert_eq!(placed.len(), 4, "one per target");
        assert!(placed[0].is_none() && placed[1].is_none(), "targets 3 and 4 are predicted before the rows start");
        assert_eq!(placed[2].as_ref().unwrap().0, vec![5, 9], "token 5 from the row at position 3: {placed:?}");
        assert_eq!(placed[3].as_ref().unwrap().0, vec![6, 9]);
        let wrong = Soft { token_ids: vec![7, 6], target_token_ids: vec![vec![7], vec![6]], logprobs: vec![vec![0.0], vec![0.0]] };
        assert!(align(&ids, &target, &wrong).unwrap_err().to_string().contains("another tokenizer or chat template"));
        let long = Soft { token_ids: vec![1; 7], target_token_ids: vec![vec![1]; 7], logprobs: vec![vec![0.0]; 7] };
        assert!(align(&ids, &target, &long).unwrap_err().to_string().contains("it was exported for another student"));
    }
}
