//! Reading the teacher data people actually have: format detection and one parser per format.
//!
//! Every format parses a JSON record into the same [`Record`]: one prompt and the samples a teacher
//! gave for it (none, for prompt sets). The store layer never sees the input formats.

pub mod chat;
mod error;
pub mod json;
pub mod locate;
pub mod media;
pub mod parquet;
pub mod problems;
pub mod reader;
pub mod reasoning;
pub mod scores;
pub mod tokens;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::domain::{Kind, LabelType, UnknownName};

pub use error::RecordError;

/// The input formats retort reads (DESIGN.md §Import).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI/TRL chat: `{"messages": [{"role", "content"}...]}`; the last assistant turn is the sample.
    Messages,
    /// `{"prompt": ..., "completion": ...}`, as strings or as message lists (TRL).
    PromptCompletion,
    /// ShareGPT: `{"conversations": [{"from", "value"}...]}`, with tool calls (LLaMA-Factory).
    ShareGpt,
    /// Alpaca: `{"instruction", "input", "output"}`.
    Alpaca,
    /// R1-style rows: problem/question with `generations` (OpenR1-Math) or one reasoning + answer,
    /// per-generation `correctness_*` verdicts, a reference answer.
    R1,
    /// Sky-T1 / Qwen2.5-Math evaluation outputs: `question`, `code` (generations), `gt`, `score`.
    SkyThought,
    /// Problem sets: a question and its reference answer, no generations (GSM8K, MATH, LIMO evals).
    Problems,
    /// Logged API calls: `{"request": {chat request}, "response": {chat.completion}}`.
    Exchange,
    /// OpenAI Batch API input lines: `{"custom_id", "method", "url", "body"}`; they become prompts,
    /// and the output lines of the same command are matched to them by `custom_id`.
    BatchInput,
    /// OpenAI Batch API output lines: `{"custom_id", "response": {"status_code", "body"}, "error"}`.
    BatchOutput,
    /// Scores for samples already in the store: `{"sample_id" | "sample_hash", "verifier", "score", "pass"}`.
    Scores,
}

impl Format {
    pub const ALL: &'static [Format] = &[
        Format::Messages,
        Format::PromptCompletion,
        Format::ShareGpt,
        Format::Alpaca,
        Format::R1,
        Format::SkyThought,
        Format::Problems,
        Format::Exchange,
        Format::BatchInput,
        Format::BatchOutput,
        Format::Scores,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Messages => "messages",
            Format::PromptCompletion => "prompt-completion",
            Format::ShareGpt => "sharegpt",
            Format::Alpaca => "alpaca",
            Format::R1 => "r1",
            Format::SkyThought => "skythought",
            Format::Problems => "problems",
            Format::Exchange => "exchange",
            Format::BatchInput => "openai-batch-input",
            Format::BatchOutput => "openai-batch",
            Format::Scores => "scores",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.iter().copied().find(|f| f.as_str() == s).ok_or_else(|| UnknownName {
            kind: "format".into(),
            name: s.to_owned(),
            expected: Format::ALL.iter().map(|f| f.as_str()).collect(),
        })
    }
}

/// One chat turn of a prompt, in OpenAI's roles (`user`, `assistant`, `tool`).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub role: String,
    pub content: String,
    pub tool_calls: Option<Value>,
}

impl Turn {
    #[must_use]
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: "user".into(), content: content.into(), tool_calls: None }
    }

    /// The turn as an OpenAI chat message.
    #[must_use]
    pub fn to_message(&self) -> Value {
        let mut m = Map::new();
        m.insert("role".into(), Value::String(self.role.clone()));
        m.insert("content".into(), Value::String(self.content.clone()));
        if let Some(calls) = &self.tool_calls {
            m.insert("tool_calls".into(), calls.clone());
        }
        Value::Object(m)
    }
}

/// The function of an OpenAI tool call or tool definition (nested under `function`, or the
/// value itself when bare) and its name.
#[must_use]
pub fn tool_function(v: &Value) -> (&Value, Option<&str>) {
    let f = v.get("function").unwrap_or(v);
    (f, f.get("name").and_then(Value::as_str))
}

/// A tool call's arguments as the model writes them: OpenAI's JSON string as it is, an object
/// (as some exports keep it) as JSON text.
#[must_use]
pub fn tool_arguments(function: &Value) -> String {
    match function.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => sorted_json(other),
    }
}

/// Compact JSON text with every object's keys sorted. Identity is hashed from it, so a file that
/// lists keys in another order names the same prompt or sample; and arguments given as an object
/// become this text, as they did when the store kept all JSON sorted, so hashes of earlier
/// imports still match.
#[must_use]
pub fn sorted_json(v: &Value) -> String {
    let mut v = v.clone();
    v.sort_all_objects();
    v.to_string()
}

/// A prompt as read from one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptDraft {
    /// The turns before the answer, system turns excluded (those belong to the sample's context).
    pub turns: Vec<Turn>,
    pub tools: Option<Value>,
    pub reference: Option<String>,
    pub kind: Option<Kind>,
    pub source: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

impl PromptDraft {
    /// The task as a curator reads it: the last user turn (or all turns when none is a user's).
    #[must_use]
    pub fn text(&self) -> String {
        self.turns
            .iter()
            .rev()
            .find(|t| t.role == "user")
            .map_or_else(|| self.turns.iter().map(|t| t.content.as_str()).collect::<Vec<_>>().join("\n\n"), |t| t.content.clone())
    }
}

/// A verdict stored in the input row (e.g. Sky-T1's `score`, OpenR1's `correctness_math_verify`).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Appended to the `--score-name` with `_` (`correctness_llama` → `imported_llama`); empty for
    /// the row's main verdict.
    pub suffix: String,
    pub pass: bool,
}

/// Top-k log-probabilities of a sample, kept in the OpenAI/vLLM `logprobs.content` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LogprobsDraft {
    pub k: usize,
    pub temperature: Option<f64>,
    pub positions: usize,
    pub content: Value,
}

/// One teacher output for a prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleDraft {
    pub teacher: Option<String>,
    pub system: Option<String>,
    pub reasoning: Option<String>,
    pub answer: String,
    pub tool_calls: Option<Value>,
    pub finish_reason: Option<String>,
    pub params: Option<Value>,
    pub logprobs: Option<LogprobsDraft>,
    pub verdicts: Vec<Verdict>,
    pub metadata: Option<Map<String, Value>>,
    pub label: Option<LabelType>,
}

impl SampleDraft {
    /// Builds a sample from a raw trace, splitting off its reasoning markers.
    #[must_use]
    pub fn from_trace(text: &str) -> Self {
        let mut s = Self::default();
        s.set_trace(text, None);
        s
    }

    /// Sets reasoning and answer: from `reasoning` when the API returned it apart, else by
    /// splitting the markers in `text`.
    pub fn set_trace(&mut self, text: &str, reasoning: Option<&str>) {
        if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
            self.reasoning = Some(r.trim().to_owned());
            text.trim().clone_into(&mut self.answer);
            return;
        }
        let split = reasoning::split(text);
        self.reasoning = split.reasoning;
        self.answer = split.answer;
        if let Some(markers) = split.markers {
            let meta = self.metadata.get_or_insert_with(Map::new);
            meta.insert("markers".into(), serde_json::to_value(markers).unwrap_or(Value::Null));
            meta.insert("reasoning_closed".into(), Value::Bool(split.closed));
        }
    }
}

/// A parsed input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A prompt with its samples.
    Row(Box<Record>),
    /// Scores for samples already in the store.
    Scores(Vec<scores::ScoreRow>),
    /// A Batch API line whose request failed: nothing to import, counted apart.
    FailedRequest(String),
}

impl Parsed {
    /// A prompt with its samples (boxed: a record is far larger than the other variants).
    #[must_use]
    pub fn row(record: Record) -> Self {
        Self::Row(Box::new(record))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub prompt: PromptDraft,
    pub samples: Vec<SampleDraft>,
    /// The Batch API `custom_id` of a request line, so output lines can find their prompt.
    pub custom_id: Option<String>,
}

/// A Batch API request, kept to give the output lines their prompt and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRequest {
    pub prompt: PromptDraft,
    pub context: chat::RequestContext,
}

/// What parsing may need beyond the record itself.
#[derive(Debug, Default, Clone)]
pub struct ParseContext {
    /// Batch API requests by `custom_id`, from the input files of the same import.
    pub batch_requests: Arc<HashMap<String, BatchRequest>>,
}

/// Parses one record of a known format.
pub fn parse(format: Format, value: Value, ctx: &ParseContext) -> Result<Parsed, RecordError> {
    let obj = json::as_object(value)?;
    match format {
        Format::Messages => chat::parse_messages(&obj).map(Parsed::row),
        Format::PromptCompletion => chat::parse_prompt_completion(&obj).map(Parsed::row),
        Format::ShareGpt => chat::parse_sharegpt(&obj).map(Parsed::row),
        Format::Alpaca => chat::parse_alpaca(&obj).map(Parsed::row),
        Format::Exchange => chat::parse_exchange(&obj).map(Parsed::row),
        Format::BatchInput => chat::parse_batch_input(&obj).map(|(r, _)| Parsed::row(r)),
        Format::BatchOutput => chat::parse_batch_output(&obj, ctx),
        Format::R1 => problems::parse_r1(&obj).map(Parsed::row),
        Format::SkyThought => problems::parse_skythought(&obj).map(Parsed::row),
        Format::Problems => problems::parse_problem(&obj).map(Parsed::row),
        Format::Scores => scores::parse(&obj).map(Parsed::Scores),
    }
}

/// Guesses the format from a record's fields.
pub fn detect(value: &Value) -> Result<Format, RecordError> {
    let Value::Object(obj) = value else {
        return Err(RecordError::DetectNotObject { found: json::describe(value) });
    };
    let has = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    let has_any = |ks: &[&str]| ks.iter().any(|k| has(k));
    if has("custom_id") && obj.contains_key("response") {
        return Ok(Format::BatchOutput);
    }
    if has("custom_id") && has("body") {
        return Ok(Format::BatchInput);
    }
    if has("request") && has("response") {
        return Ok(Format::Exchange);
    }
    if obj.get("object").and_then(Value::as_str).is_some_and(|o| o.starts_with("chat.completion")) {
        return Err(RecordError::BareCompletion);
    }
    if has_any(&["sample_id", "sample_hash"]) && has_any(&["verifier", "scores"]) {
        return Ok(Format::Scores);
    }
    let problem = has_any(problems::PROBLEM_KEYS);
    if problem && has("code") && obj.get("code").is_some_and(Value::is_array) {
        return Ok(Format::SkyThought);
    }
    if problem && (has_any(problems::GENERATION_LIST_KEYS) || has_any(problems::TRACE_KEYS) || has_any(problems::REASONING_KEYS)) {
        return Ok(Format::R1);
    }
    if has("conversations") {
        return Ok(Format::ShareGpt);
    }
    if has("messages") {
        return Ok(Format::Messages);
    }
    if has("prompt") && has("completion") {
        return Ok(Format::PromptCompletion);
    }
    if has("instruction") && has("output") {
        return Ok(Format::Alpaca);
    }
    if problem {
        return Ok(Format::Problems);
    }
    Err(RecordError::Undetectable { keys: obj.keys().take(12).cloned().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_each_format() {
        let cases = [
            (json!({"messages": [{"role": "user", "content": "hi"}]}), Format::Messages),
            (json!({"prompt": "p", "completion": "c"}), Format::PromptCompletion),
            (json!({"conversations": [], "tools": "[]"}), Format::ShareGpt),
            (json!({"instruction": "i", "input": "", "output": "o"}), Format::Alpaca),
            (json!({"problem": "p", "generations": ["a"], "answer": "1"}), Format::R1),
            (json!({"question": "q", "code": ["a"], "gt": "1"}), Format::SkyThought),
            (json!({"question": "q", "answer": "#### 1"}), Format::Problems),
            (json!({"request": {}, "response": {}}), Format::Exchange),
            (json!({"custom_id": "r1", "method": "POST", "body": {}}), Format::BatchInput),
            (json!({"custom_id": "r1", "response": null, "error": {}}), Format::BatchOutput),
            (json!({"sample_id": 1, "verifier": "math", "score": 1}), Format::Scores),
        ];
        for (value, format) in cases {
            assert_eq!(detect(&value).unwrap(), format, "{value}");
            assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
        }
    }

    #[test]
    fn undetectable_names_the_fields() {
        let err = detect(&json!({"foo": 1, "bar": 2})).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot tell the format from the fields [\"foo\", \"bar\"]; name it with --format (one of: messages, "),
            "{err}"
        );
        let err = detect(&json!({"object": "chat.completion", "choices": []})).unwrap_err().to_string();
        assert!(err.contains("no prompt. Import the calls as {\"request\": {...}, \"response\": {...}} lines"), "{err}");
        let err = detect(&json!([1])).unwrap_err().to_string();
        assert!(err.contains("an array"), "{err}");
    }
}
