//! An export's conversations as training rows: rendered with the model's own chat template,
//! tokenized with its `tokenizer.json`, loss on the assistant's tokens only (reasoning included).
//!
//! The assistant's part of the rendering is found by rendering the conversation up to each
//! assistant turn (with the generation prompt) and up to its end: the characters in between are
//! the turn, end-of-turn token included. Every format `retort export` writes is read: messages
//! (and kd), prompt-completion, sharegpt, alpaca.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::step::{Row, TopK};
use crate::export::template::ChatTemplate;

/// The teacher's top-k for a kd line: the sampled tokens' ids and, per token, the top-k ids and
/// log-probs.
#[derive(Debug, Clone, PartialEq)]
pub struct Soft {
    pub token_ids: Vec<u32>,
    pub target_token_ids: Vec<Vec<u32>>,
    pub logprobs: Vec<Vec<f32>>,
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

/// A line of any export format as a conversation.
pub fn conversation(line: &Value) -> Result<Conversation, String> {
    let obj = line.as_object().ok_or("a line must be a JSON object")?;
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
        return Err("no `messages`, `prompt`/`completion`, `conversations` or `instruction`: not a retort export line".into());
    };
    if !messages.iter().any(|m| m.get("role").and_then(Value::as_str) == Some("assistant")) {
        return Err("the conversation has no assistant turn to learn from".into());
    }
    let soft = match (obj.get("token_ids"), obj.get("target_token_ids"), obj.get("logprobs")) {
        (Some(ids), Some(targets), Some(lps)) => {
            let ids = serde_json::from_value::<Vec<u32>>(ids.clone()).map_err(|e| format!("`token_ids`: {e}"))?;
            let targets = serde_json::from_value::<Vec<Vec<u32>>>(targets.clone()).map_err(|e| format!("`target_token_ids`: {e}"))?;
            let lps = serde_json::from_value::<Vec<Vec<f32>>>(lps.clone()).map_err(|e| format!("`logprobs`: {e}"))?;
            if targets.len() != ids.len() || lps.len() != ids.len() || targets.iter().zip(&lps).any(|(t, l)| t.len() != l.len()) {
                return Err("`token_ids`, `target_token_ids` and `logprobs` disagree in length".into());
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
pub fn held_out(export: &Path, n: usize) -> Result<Vec<Conversation>, String> {
    let val = export.join("validation.jsonl");
    let file = if std::fs::metadata(&val).is_ok_and(|m| m.len() > 0) { val } else { export.join("train.jsonl") };
    Ok(read_file(&file)?.into_iter().take(n).collect())
}

/// Renders and tokenizes conversations for one model.
pub struct Encoder {
    pub tokenizer: tokenizers::Tokenizer,
    template: ChatTemplate,
}

/// Why a line did not become a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Longer than `--max-len` tokens (the length).
    TooLong(usize),
    /// Could not be rendered (the reason).
    Bad(String),
    /// The teacher's top-k tokens do not line up with the student's tokenization.
    ForeignTokenizer(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::TooLong(n) => write!(f, "{n} tokens, over --max-len"),
            Skip::Bad(e) | Skip::ForeignTokenizer(e) => f.write_str(e),
        }
    }
}

impl Encoder {
    pub fn load(model_dir: &Path) -> Result<Self, String> {
        let path = model_dir.join("tokenizer.json");
        let tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| format!("cannot load the model's tokenizer {}: {e}", path.display()))?;
        Ok(Self { tokenizer, template: ChatTemplate::load(model_dir)? })
    }

    /// The prompt for the model's answer to `turns`: the rendering with the generation prompt.
    pub fn render_prompt(&self, turns: &[Value], tools: Option<&Value>) -> Result<String, String> {
        self.template.render(turns, tools, true)
    }

    /// The rendering of `messages`, with reasoning moved inline (`<think>…</think>` before the
    /// answer) when the template would drop a `reasoning_content` field.
    fn render_all(&self, messages: &[Value], tools: Option<&Value>) -> Result<(Vec<Value>, String), String> {
        let full = self.template.render(messages, tools, false)?;
        let dropped = messages
            .iter()
            .any(|m| m.get("reasoning_content").and_then(Value::as_str).is_some_and(|r| !r.trim().is_empty() && !full.contains(r.trim())));
        if !dropped {
            return Ok((messages.to_vec(), full));
        }
        let inlined: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let Some(Value::String(r)) = m.as_object_mut().and_then(|o| o.remove("reasoning_content")) {
                    let content = text(m.get("content"));
                    m["content"] = json!(format!("<think>\n{}\n</think>\n\n{content}", r.trim()));
                }
                m
            })
            .collect();
        let full = self.template.render(&inlined, tools, false)?;
        Ok((inlined, full))
    }

    /// The row of a conversation: its tokens and which of them are the assistant's; and
    /// whether the chat template leaves out tools the conversation offers or tool calls it
    /// holds (a template without tool support: the student would learn calls it never saw
    /// defined).
    pub fn encode(&self, conv: &Conversation, max_len: usize) -> Result<(Row, bool), Skip> {
        let tools = conv.tools.as_ref();
        let (messages, full) = self.render_all(&conv.messages, tools).map_err(Skip::Bad)?;
        let (tools_hidden, calls_hidden) = crate::export::template::hidden_tool_use(&full, tools, &messages);
        let mut spans = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.get("role").and_then(Value::as_str) != Some("assistant") {
                continue;
            }
            let prefix = self.template.render(&messages[..i], tools, true).map_err(Skip::Bad)?;
            // Up to the last turn is the whole conversation, rendered already.
            let upto = if i + 1 == messages.len() {
                full.clone()
            } else {
                self.template.render(&messages[..=i], tools, false).map_err(Skip::Bad)?
            };
            // Templates that rewrite earlier turns (Qwen3 drops their reasoning) break the
            // prefix property there; those turns are context, not targets.
            if upto.starts_with(&prefix) && full.starts_with(&upto) && upto.len() > prefix.len() {
                spans.push((prefix.len(), upto.len()));
            }
        }
        if spans.is_empty() {
            return Err(Skip::Bad(
                "the chat template renders the conversation so that no assistant turn can be located (its rendering up to the \
                 generation prompt is not a prefix of the whole)"
                    .into(),
            ));
        }
        let encoding = self.tokenizer.encode(full.as_str(), false).map_err(|e| Skip::Bad(format!("tokenizing: {e}")))?;
        let ids = encoding.get_ids().to_vec();
        if ids.len() > max_len {
            return Err(Skip::TooLong(ids.len()));
        }
        let target: Vec<bool> =
            encoding.get_offsets().iter().map(|(start, _)| spans.iter().any(|(a, b)| start >= a && start < b)).collect();
        let soft = match &conv.soft {
            None => None,
            Some(s) => Some(align(&ids, &target, s).map_err(Skip::ForeignTokenizer)?),
        };
        Ok((Row { ids, target, soft }, tools_hidden || calls_hidden))
    }
}

/// Places a kd line's top-k on the target tokens: the teacher's sampled tokens must appear, in
/// order, among the row's assistant tokens — they do when teacher and student share a tokenizer.
fn align(ids: &[u32], target: &[bool], soft: &Soft) -> Result<Vec<Option<TopK>>, String> {
    let n = soft.token_ids.len();
    let targets: Vec<usize> = (1..ids.len()).filter(|t| target[*t]).collect();
    let mut per_target = vec![None; targets.len()];
    if n == 0 {
        return Ok(per_target);
    }
    let start = targets.windows(n).position(|w| w.iter().zip(&soft.token_ids).all(|(t, id)| ids[*t] == *id)).ok_or_else(|| {
        "the teacher's tokens (token_ids) are not among the rendered assistant tokens: the export's tokenizer is not the \
             student's, or the text changed between export and training"
            .to_owned()
    })?;
    for j in 0..n {
        per_target[start + j] = Some((soft.target_token_ids[j].clone(), soft.logprobs[j].clone()));
    }
    Ok(per_target)
}

/// Reads an export file's lines as conversations; a line that is not JSON or not a
/// conversation is an error naming file and line.
pub fn read_file(path: &Path) -> Result<Vec<Conversation>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{}:{}:{}: {e}", path.display(), i + 1, e.column()))?;
        out.push(conversation(&value).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?);
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
}

/// Encodes an export directory's `train.jsonl` and, when present, `validation.jsonl`.
pub fn load(export: &Path, encoder: &Encoder, max_len: usize) -> Result<Dataset, String> {
    let train_path = export.join("train.jsonl");
    if !train_path.exists() {
        return Err(format!("{} has no train.jsonl: give the directory `retort export --out` wrote", export.display()));
    }
    let mut data = Dataset { train: Vec::new(), validation: Vec::new(), skipped: Vec::new(), hidden_tool_use: Vec::new() };
    for (name, into_train) in [("train.jsonl", true), ("validation.jsonl", false)] {
        let path = export.join(name);
        if !path.exists() {
            continue;
        }
        for (i, conv) in read_file(&path)?.iter().enumerate() {
            let at = || format!("{}:{}", path.display(), i + 1);
            match encoder.encode(conv, max_len) {
                Ok((row, hides_tool_use)) => {
                    if hides_tool_use {
                        data.hidden_tool_use.push(at());
                    }
                    if into_train { data.train.push(row) } else { data.validation.push(row) }
                }
                // Soft labels from another tokenizer would train on the wrong tokens: stop.
                Err(Skip::ForeignTokenizer(e)) => {
                    return Err(format!("{}: {e} (teacher and student tokenizers differ)", at()));
                }
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
        assert!(conversation(&json!({"text": "x"})).unwrap_err().contains("not a retort export line"));
        assert!(conversation(&json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap_err().contains("no assistant"));
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
    fn soft_targets_land_on_the_teachers_tokens() {
        let ids = [1, 2, 3, 4, 5, 6];
        let target = [false, false, false, true, true, true];
        let soft = Soft {
            token_ids: vec![5, 6],
            target_token_ids: vec![vec![5, 9], vec![6, 9]],
            logprobs: vec![vec![-0.1, -2.0], vec![-0.2, -3.0]],
        };
        let placed = align(&ids, &target, &soft).unwrap();
        assert_eq!(placed.len(), 3);
        assert!(placed[0].is_none());
        assert_eq!(placed[1].as_ref().unwrap().0, vec![5, 9]);
        let wrong = Soft { token_ids: vec![7], target_token_ids: vec![vec![7]], logprobs: vec![vec![0.0]] };
        assert!(align(&ids, &target, &wrong).unwrap_err().contains("tokenizer"));
    }
}
