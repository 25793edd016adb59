//! The SFT formats an export writes: one JSON line per sample, in the shapes TRL, axolotl,
//! LLaMA-Factory and OpenAI fine-tuning read as they are.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::domain::UnknownName;

pub mod conversation;
pub mod kd;
pub mod parquet;
pub mod staging;

pub use conversation::{Style, Unfit};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// `{"messages": [...], "tools"?}` for Hugging Face consumers (TRL conversational, axolotl
    /// `chat_template`): tool-call arguments as objects.
    Messages,
    /// `{"prompt": [...], "completion": [...], "tools"?}`: TRL conversational prompt-completion.
    PromptCompletion,
    /// `{"conversations": [{"from", "value"}...], "system", "tools"}` with a `dataset_info.json`
    /// entry: LLaMA-Factory.
    Sharegpt,
    /// `{"instruction", "input", "output", "system", "history"}` with a `dataset_info.json`
    /// entry: LLaMA-Factory, axolotl `alpaca`.
    Alpaca,
    /// OpenAI's chat fine-tuning format: tool calls with ids and string arguments, tool results
    /// with their `tool_call_id`, no keys the API does not know.
    Openai,
    /// Soft labels: `messages` plus, per completion position, the sampled `token_ids`, the
    /// teacher's top-k `target_token_ids` and their `logprobs` (samples with log-probs only).
    Kd,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 6] = [
        ExportFormat::Messages,
        ExportFormat::PromptCompletion,
        ExportFormat::Sharegpt,
        ExportFormat::Alpaca,
        ExportFormat::Openai,
        ExportFormat::Kd,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Messages => "messages",
            ExportFormat::PromptCompletion => "prompt-completion",
            ExportFormat::Sharegpt => "sharegpt",
            ExportFormat::Alpaca => "alpaca",
            ExportFormat::Openai => "openai",
            ExportFormat::Kd => "kd",
        }
    }

    /// Whether the format has a `reasoning_content` field beside the answer.
    #[must_use]
    pub fn has_reasoning_field(self) -> bool {
        matches!(self, ExportFormat::Messages | ExportFormat::PromptCompletion | ExportFormat::Kd)
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExportFormat::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| UnknownName {
            kind: "export format".into(),
            name: s.to_owned(),
            expected: ExportFormat::ALL.iter().map(|f| f.as_str()).collect(),
        })
    }
}

/// The files an export's rows are written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// JSON Lines: one record a line.
    #[default]
    Jsonl,
    /// Parquet (snappy), with the columns `datasets` infers from the JSON Lines (see `parquet`).
    Parquet,
}

impl Container {
    pub const ALL: [Container; 2] = [Container::Jsonl, Container::Parquet];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Jsonl => "jsonl",
            Container::Parquet => "parquet",
        }
    }

    /// The files' extension, which is also the `datasets` loader that reads them.
    #[must_use]
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    #[must_use]
    pub fn is_jsonl(&self) -> bool {
        *self == Container::Jsonl
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Container {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Container::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownName {
            kind: "container".into(),
            name: s.to_owned(),
            expected: Container::ALL.iter().map(|c| c.as_str()).collect(),
        })
    }
}

/// Where the chain of thought goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReasoningMode {
    /// `<think>\n…\n</think>\n\n` before the answer, as R1-style students are trained.
    #[default]
    Inline,
    /// A `reasoning_content` field beside the answer (messages formats).
    Field,
    /// Left out: the answer alone.
    Drop,
}

/// A `--reasoning` value that is none of the three modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reasoning mode {0:?}; expected inline, field or drop")]
pub struct UnknownReasoningMode(pub String);

impl FromStr for ReasoningMode {
    type Err = UnknownReasoningMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inline" => Ok(Self::Inline),
            "field" => Ok(Self::Field),
            "drop" => Ok(Self::Drop),
            other => Err(UnknownReasoningMode(other.to_owned())),
        }
    }
}

/// What an export reads of one sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSample {
    pub system: Option<String>,
    /// The prompt's turns (OpenAI messages), the last one the user's.
    pub turns: Vec<Value>,
    pub tools: Option<Value>,
    pub reasoning: Option<String>,
    pub answer: String,
    pub tool_calls: Option<Value>,
    /// The trace was cut off inside its reasoning (never closed, or stopped by the token limit
    /// before an answer): the reasoning is written open, not closed as if whole.
    pub reasoning_cut_off: bool,
}

impl From<crate::store::samples::Texts> for ExportSample {
    /// A sample's texts as an export writes them: a single prompt becomes the one user turn.
    fn from(t: crate::store::samples::Texts) -> Self {
        let turns = match t.messages {
            Some(Value::Array(turns)) => turns,
            _ => vec![json!({"role": "user", "content": t.prompt})],
        };
        Self {
            system: t.system,
            turns,
            tools: t.tools,
            reasoning: t.reasoning,
            answer: t.answer,
            tool_calls: t.tool_calls,
            reasoning_cut_off: t.reasoning_cut_off,
        }
    }
}

/// Text of a message's content.
fn content(m: &Value) -> String {
    m.get("content").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A function call as LLaMA-Factory's `function_call` value holds it: `{"name", "arguments"}`
/// with the arguments as an object (name first, as its glaive data writes it).
fn function_call(call: &Value) -> Value {
    let (f, name) = crate::ingest::tool_function(call);
    json!({"name": name, "arguments": f.get("arguments").cloned().unwrap_or_else(|| json!({}))})
}

/// ShareGPT turns for LLaMA-Factory: `human` and `observation` at even positions, `gpt` and
/// `function_call` at odd ones, as its converter requires. A turn that calls tools becomes a
/// `function_call` holding the call (a list for parallel calls; text beside the calls is left
/// out, as LLaMA-Factory's own OpenAI converter leaves it), and consecutive tool results one
/// `observation`, joined as LLaMA-Factory joins them.
fn sharegpt_turns(messages: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut results: Vec<String> = Vec::new();
    let flush = |out: &mut Vec<Value>, results: &mut Vec<String>| {
        if !results.is_empty() {
            out.push(json!({"from": "observation", "value": results.join("\n</tool_response>\n<tool_response>\n")}));
            results.clear();
        }
    };
    for m in messages {
        let Value::Object(mut m) = m else { continue };
        // The texts are moved, not copied: a reasoning trace is kilobytes.
        let text = match m.remove("content") {
            Some(Value::String(t)) => t,
            _ => String::new(),
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        if role == "tool" {
            results.push(text);
            continue;
        }
        flush(&mut out, &mut results);
        let turn = match (role, m.get("tool_calls").and_then(Value::as_array)) {
            ("system", _) => continue,
            ("assistant", Some(calls)) if !calls.is_empty() => {
                let value = if calls.len() == 1 { function_call(&calls[0]) } else { calls.iter().map(function_call).collect() };
                json!({"from": "function_call", "value": value.to_string()})
            }
            ("assistant", _) => json!({"from": "gpt", "value": text}),
            _ => json!({"from": "human", "value": text}),
        };
        out.push(turn);
    }
    flush(&mut out, &mut results);
    out
}

/// The tools as LLaMA-Factory's `tools` column holds them: a JSON string of the functions (its
/// glaive data's shape), or empty.
fn sharegpt_tools(tools: Option<&Value>) -> String {
    match tools.and_then(Value::as_array).filter(|t| !t.is_empty()) {
        Some(list) => Value::Array(list.iter().map(|t| crate::ingest::tool_function(t).0.clone()).collect()).to_string(),
        None => String::new(),
    }
}

/// One output line for a sample, or why the format cannot hold it.
pub fn record(s: &ExportSample, format: ExportFormat, mode: ReasoningMode, system: bool) -> Result<Value, Unfit> {
    let style = if format == ExportFormat::Openai { Style::OpenAi } else { Style::HuggingFace };
    // Formats without a reasoning field take it inline (`--reasoning field` is refused for them
    // before anything is written).
    let mode = if mode == ReasoningMode::Field && !format.has_reasoning_field() { ReasoningMode::Inline } else { mode };
    let mut messages = conversation::messages(s, mode, system, style)?;
    let with_tools = |mut out: Value| {
        if let Some(t) = conversation::tools(s.tools.as_ref()) {
            out["tools"] = t;
        }
        out
    };
    Ok(match format {
        ExportFormat::Messages | ExportFormat::Kd | ExportFormat::Openai => with_tools(json!({"messages": messages})),
        ExportFormat::PromptCompletion => {
            let answer = messages.pop().unwrap_or_default();
            with_tools(json!({"prompt": messages, "completion": [answer]}))
        }
        ExportFormat::Sharegpt => {
            // Every line has every column dataset_info.json names: LLaMA-Factory reads them by key.
            let system = if system { s.system.clone().unwrap_or_default() } else { String::new() };
            json!({"conversations": sharegpt_turns(messages), "system": system, "tools": sharegpt_tools(s.tools.as_ref())})
        }
        ExportFormat::Alpaca => {
            // Earlier turns become `history` pairs; the last user turn is the instruction.
            let mut history = Vec::new();
            let mut pending: Option<String> = None;
            let (last_user, earlier) = s.turns.split_last().map_or((String::new(), &[][..]), |(l, e)| (content(l), e));
            for m in earlier {
                match m.get("role").and_then(Value::as_str) {
                    Some("user") => pending = Some(content(m)),
                    Some("assistant") => history.push(json!([pending.take().unwrap_or_default(), content(m)])),
                    _ => {}
                }
            }
            let system = if system { s.system.clone().unwrap_or_default() } else { String::new() };
            json!({"instruction": last_user, "input": "", "output": conversation::assistant_text(s, mode), "system": system, "history": history})
        }
    })
}

/// The `dataset_info.json` LLaMA-Factory reads beside a ShareGPT or Alpaca export: one entry per
/// part, naming only columns every line has.
#[must_use]
pub fn dataset_info(name: &str, format: ExportFormat, parts: &[(&str, &str)]) -> Value {
    let mut info = Map::new();
    for (part, file) in parts {
        let entry = match format {
            ExportFormat::Alpaca => json!({
                "file_name": file,
                "formatting": "alpaca",
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}
            }),
            _ => json!({
                "file_name": file,
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                         "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
            }),
        };
        info.insert(format!("{name}_{part}"), entry);
    }
    Value::Object(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExportSample {
        ExportSample {
            system: Some("Be brief.".into()),
            turns: vec![json!({"role": "user", "content": "2+2?"})],
            reasoning: Some("add them".into()),
            answer: "4".into(),
            ..ExportSample::default()
        }
    }

    #[test]
    fn reasoning_modes() {
        let s = sample();
        let inline = record(&s, ExportFormat::Messages, ReasoningMode::Inline, true).unwrap();
        assert_eq!(inline["messages"][2]["content"], "<think>\nadd them\n</think>\n\n4");
        assert_eq!(inline["messages"][0]["role"], "system");
        let field = record(&s, ExportFormat::Messages, ReasoningMode::Field, false).unwrap();
        assert_eq!(field["messages"][1]["content"], "4");
        assert_eq!(field["messages"][1]["reasoning_content"], "add them");
        assert_eq!(field["messages"].as_array().unwrap().len(), 2);
        let dropped = record(&s, ExportFormat::Alpaca, ReasoningMode::Drop, true).unwrap();
        assert_eq!(dropped, json!({"instruction": "2+2?", "input": "", "output": "4", "system": "Be brief.", "history": []}));
        // Every column on every line, empty when there is nothing.
        let bare = record(&s, ExportFormat::Sharegpt, ReasoningMode::Drop, false).unwrap();
        assert_eq!(bare["system"], "");
        assert_eq!(bare["tools"], "");
    }

    #[test]
    fn sharegpt_and_prompt_completion_shapes() {
        let mut s = sample();
        s.turns = vec![
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Paris\"}"}}]}),
            json!({"role": "tool", "content": "{\"t\":20}"}),
        ];
        s.tools = Some(json!([{"name": "get"}]));
        let r = record(&s, ExportFormat::Sharegpt, ReasoningMode::Drop, true).unwrap();
        let froms: Vec<&str> = r["conversations"].as_array().unwrap().iter().map(|t| t["from"].as_str().unwrap()).collect();
        assert_eq!(froms, ["human", "function_call", "observation", "gpt"]);
        assert_eq!(r["tools"], "[{\"name\":\"get\"}]");
        // Name before arguments, as LLaMA-Factory's own glaive data writes a function_call.
        assert_eq!(r["conversations"][1]["value"], "{\"name\":\"get\",\"arguments\":{\"city\":\"Paris\"}}");
        let pc = record(&sample(), ExportFormat::PromptCompletion, ReasoningMode::Inline, false).unwrap();
        assert_eq!(pc["prompt"], json!([{"role": "user", "content": "2+2?"}]));
        assert_eq!(pc["completion"][0]["role"], "assistant");
        assert_eq!("sharegpt".parse::<ExportFormat>().unwrap(), ExportFormat::Sharegpt);
        assert_eq!(
            "csv".parse::<ExportFormat>().unwrap_err().to_string(),
            "unknown export format \"csv\"; expected one of: messages, prompt-completion, sharegpt, alpaca, openai, kd"
        );
        assert_eq!(
            "none".parse::<ReasoningMode>().unwrap_err().to_string(),
            "unknown reasoning mode \"none\"; expected inline, field or drop"
        );
    }

    #[test]
    fn parallel_calls_and_their_results_keep_llamafactorys_alternation() {
        let mut s = sample();
        s.turns = vec![
            json!({"role": "user", "content": "both?"}),
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "a", "arguments": "{\"x\":1}"}}, {"function": {"name": "b", "arguments": "{}"}}]}),
            json!({"role": "tool", "content": "1"}),
            json!({"role": "tool", "content": "2"}),
        ];
        let r = record(&s, ExportFormat::Sharegpt, ReasoningMode::Drop, true).unwrap();
        let turns = r["conversations"].as_array().unwrap();
        assert_eq!(turns.len(), 4, "{r}");
        assert_eq!(turns[1]["value"], "[{\"name\":\"a\",\"arguments\":{\"x\":1}},{\"name\":\"b\",\"arguments\":{}}]");
        assert_eq!(turns[2], json!({"from": "observation", "value": "1\n</tool_response>\n<tool_response>\n2"}));
    }
}
