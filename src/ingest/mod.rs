//! Reading the teacher data people actually have: format detection and one parser per format.
//!
//! Every format parses a JSON record into the same [`Record`]: one prompt and the samples a teacher
//! gave for it (none, for prompt sets). The store layer never sees the input formats.

pub mod chat;
mod error;
pub mod hub;
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
    /// s1K rows: `question`, `solution`, `thinking_trajectories` and `attempt`; s1K-1.1's
    /// `<teacher>_thinking_trajectory` and `<teacher>_attempt`, one sample per teacher.
    S1k,
    /// Problems with worked solutions written by people, the solution also as the chat's answer
    /// (NuminaMath-CoT: `problem`, `solution`, `messages`): the solution is a hard-labelled sample.
    Solutions,
    /// Llama-Nemotron post-training rows: `input` (messages), `output` (`<think>` inline),
    /// `generator` (the teacher), `category`, `reasoning` on/off, `system_prompt`.
    LlamaNemotron,
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
        Format::S1k,
        Format::Solutions,
        Format::LlamaNemotron,
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
            Format::S1k => "s1k",
            Format::Solutions => "solutions",
            Format::LlamaNemotron => "llama-nemotron",
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
        Format::S1k => hub::parse_s1k(&obj).map(Parsed::row),
        Format::Solutions => hub::parse_solution(&obj).map(Parsed::row),
        Format::LlamaNemotron => hub::parse_llama_nemotron(&obj).map(Parsed::row),
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
    // Llama-Nemotron's `input`/`output` (Alpaca's have an `instruction`).
    if has("input") && has("output") && !has("instruction") {
        return Ok(Format::LlamaNemotron);
    }
    let problem = has_any(problems::PROBLEM_KEYS);
    if problem && has("code") && obj.get("code").is_some_and(Value::is_array) {
        return Ok(Format::SkyThought);
    }
    // Before `messages`: s1K-1.1 copies carry a chat of one teacher's answer beside both teachers.
    if problem && hub::is_s1k(obj) {
        return Ok(Format::S1k);
    }
    if problem && (has_any(problems::GENERATION_LIST_KEYS) || has_any(problems::TRACE_KEYS) || has_any(problems::REASONING_KEYS)) {
        return Ok(Format::R1);
    }
    // A worked solution that is also the chat's answer, and no model generations (those are
    // `conversations` in OpenThoughts-114k-math, `generations` in OpenR1-Math).
    if problem && has("solution") && has("messages") && !has("conversations") {
        return Ok(Format::Solutions);
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

    /// The Hub's distillation sets, each in the shape its dataset card gives, and as a Parquet row
    /// reads (every column present, null where the row has no value).
    #[test]
    fn detects_hub_schemas() {
        let cases = [
            (
                "OpenR1-Math-220k",
                json!({"problem": "p", "solution": "s", "answer": "4", "problem_type": "Algebra", "question_type": "math-word-problem",
                    "source": "olympiads", "uuid": "5e0d2a3b", "is_reasoning_complete": [true], "generations": ["<think>a</think>4"],
                    "correctness_math_verify": [true], "correctness_llama": null, "finish_reasons": null, "correctness_count": 1,
                    "messages": [{"content": "p", "role": "user"}, {"content": "<think>a</think>4", "role": "assistant"}]}),
                Format::R1,
            ),
            (
                "OpenThoughts-114k",
                json!({"system": "Your role as an assistant involves thoroughly exploring questions...",
                    "conversations": [{"from": "user", "value": "q"}, {"from": "assistant", "value": "<|begin_of_thought|>t<|end_of_thought|><|begin_of_solution|>a<|end_of_solution|>"}]}),
                Format::ShareGpt,
            ),
            (
                "OpenThoughts-114k metadata",
                json!({"problem": "p", "deepseek_reasoning": "t", "deepseek_solution": "a", "ground_truth_solution": "\\boxed{1}",
                    "domain": "math", "source": "numina_math", "test_cases": null, "starter_code": null}),
                Format::R1,
            ),
            (
                "OpenThoughts3-1.2M",
                json!({"difficulty": 6, "source": "nvidia/OpenCodeReasoning", "domain": "code",
                    "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "<think>t</think>a"}]}),
                Format::ShareGpt,
            ),
            (
                "s1K",
                json!({"solution": "109", "question": "q", "cot_type": "math", "source_type": "qq8933/AIME_1983_2024",
                    "metadata": "{}", "cot": null, "thinking_trajectories": ["t"], "attempt": "a"}),
                Format::S1k,
            ),
            (
                "s1K-1.1",
                json!({"solution": "109", "question": "q", "cot_type": "math", "source_type": "s", "metadata": "{}",
                    "gemini_thinking_trajectory": "t", "gemini_attempt": "a", "deepseek_thinking_trajectory": ["t"],
                    "deepseek_attempt": ["a"], "messages": [{"content": "q", "role": "user"}, {"content": "a", "role": "assistant"}]}),
                Format::S1k,
            ),
            (
                "NuminaMath-CoT",
                json!({"source": "synthetic_math", "problem": "p", "solution": "s \\boxed{2}",
                    "messages": [{"content": "p", "role": "user"}, {"content": "s \\boxed{2}", "role": "assistant"}]}),
                Format::Solutions,
            ),
            (
                "Nemotron-Post-Training-Dataset-v1",
                json!({"uuid": "u", "license": "CC BY 4.0", "generator": "DeepSeek-R1-0528", "version": "v1", "category": "math",
                    "reasoning": "on", "metadata": "{}", "messages": [
                        {"role": "system", "content": "", "tool_calls": null},
                        {"role": "user", "content": "q", "tool_calls": null},
                        {"role": "assistant", "content": "<think>t</think>a", "tool_calls": null}]}),
                Format::Messages,
            ),
            (
                "Llama-Nemotron-Post-Training-Dataset",
                json!({"input": [{"role": "user", "content": "q"}], "output": "<think>t</think>a", "category": "math",
                    "license": "cc-by-4.0", "reasoning": "on", "generator": "DeepSeek-R1", "used_in_training": "Ultra, Nano",
                    "version": "v1.1", "system_prompt": "detailed thinking on"}),
                Format::LlamaNemotron,
            ),
            (
                "AM-DeepSeek-R1-Distilled-1.4M",
                json!({"messages": [
                    {"role": "user", "content": "q", "info": {"source": "natural_reasoning", "reference_answer": "1", "test_case": null,
                        "think_content": null, "answer_content": null}},
                    {"role": "assistant", "content": "<think>t</think>\n<answer>a</answer>", "info": {"source": "am-0309",
                        "reference_answer": null, "test_case": null, "think_content": "t", "answer_content": "a"}}]}),
                Format::Messages,
            ),
        ];
        for (name, value, format) in cases {
            assert_eq!(detect(&value).unwrap(), format, "{name}: {value}");
            let Parsed::Row(record) = parse(format, value, &ParseContext::default()).unwrap() else { panic!("{name}: not a row") };
            assert_eq!(record.samples.len(), if name == "s1K-1.1" { 2 } else { 1 }, "{name}");
        }
        // Alpaca keeps its format beside Llama-Nemotron's `input`/`output`.
        assert_eq!(detect(&json!({"instruction": "i", "input": "x", "output": "o"})).unwrap(), Format::Alpaca);
        // Problems with a solution but no chat stay problem sets (MATH, NuminaMath-1.5).
        assert_eq!(detect(&json!({"problem": "p", "solution": "s", "answer": "1"})).unwrap(), Format::Problems);
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
