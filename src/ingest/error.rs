//! Why a record could not be read as its format says: the field at fault (in backticks, so the
//! importer can find its column with [`super::locate::field_offset`]) and what was wrong with it.

use serde_json::Value;

use super::Format;
use super::json::describe;
use super::scores::BadVerifierName;

/// Why one input record could not be parsed, or its format not told.
///
/// The messages are the importer's report to the user, one per bad record; a cause (a JSON or
/// hex error) is part of the message and not chained as a source, so `{:#}` prints it once.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record is a JSON value other than an object.
    #[error("expected a JSON object, found {found}")]
    NotObject { found: &'static str },
    #[error("missing field `{key}`")]
    MissingField { key: String },
    /// A top-level field of the wrong JSON type.
    #[error("field `{key}` must be {expected}, found {found}")]
    FieldType { key: String, expected: &'static str, found: &'static str },
    /// A top-level field absent or of the wrong shape.
    #[error("field `{key}` must be {expected}")]
    FieldShape { key: &'static str, expected: &'static str },
    /// A nested value (`messages[0].content`) of the wrong JSON type.
    #[error("`{path}` must be {expected}, found {found}")]
    ValueType { path: String, expected: &'static str, found: &'static str },
    /// A nested value of the wrong shape.
    #[error("`{path}` must be {expected}")]
    ValueShape { path: String, expected: &'static str },
    /// A value lacks a part it needs (`response` has no `choices` array).
    #[error("`{path}` has no {what}")]
    Lacks { path: String, what: &'static str },
    /// A string that is none of the values the format allows (a chat role, a ShareGPT speaker).
    #[error("`{path}` is {value:?}; expected {expected}")]
    UnexpectedValue { path: String, value: String, expected: &'static str },
    /// An error about a field of the nested object at `path`.
    #[error("`{path}`: {inner}")]
    Within { path: String, inner: Box<RecordError> },
    #[error("`{path}` has no user turn before the answer: there is no prompt")]
    NoUserTurn { path: String },
    #[error("`conversations[{index}]` has neither `from` nor `role`")]
    NoSpeaker { index: usize },
    /// LLaMA-Factory's `tools`, a JSON string, does not parse.
    #[error("field `tools` is not valid JSON: {cause}")]
    ToolsNotJson { cause: serde_json::Error },
    #[error("`conversations[{index}].value` (a function_call) is not valid JSON: {cause}")]
    FunctionCallNotJson { index: usize, cause: serde_json::Error },
    #[error("`{path}.content[{index}]` needs a string `token` and a number `logprob`")]
    LogprobPosition { path: String, index: usize },
    #[error("`{path}` has `tokens` but no `token_logprobs`")]
    TokensWithoutLogprobs { path: String },
    /// A Batch API output line whose input line was not imported before it.
    #[error(
        "custom_id {custom_id:?} has no request: import the Batch API input file (the .jsonl that was \
         uploaded) in the same command, before this output file"
    )]
    NoBatchRequest { custom_id: String },
    #[error("missing the problem: none of the fields `problem`, `question`, `prompt`")]
    NoProblem,
    #[error("no generations: expected `generations` (a list), `response`/`generation`, or `reasoning` with `answer`")]
    NoGenerations,
    /// A per-generation list (`correctness_*`, `finish_reasons`) of another length than the generations.
    #[error("field `{key}` has {entries} entries but there are {generations} generations: they must pair up one to one")]
    GenerationCount { key: String, entries: usize, generations: usize },
    /// A score line lacks what names its sample or its verifier.
    #[error("missing {what}")]
    Missing { what: &'static str },
    #[error("`sample_hash` is not hex: {cause}")]
    HashNotHex { cause: hex::FromHexError },
    #[error("`sample_hash` must be 64 hex digits (sha256), found {digits}")]
    HashLength { digits: usize },
    #[error("`{path}` score {score} is outside [0, 1]")]
    ScoreRange { path: String, score: f64 },
    #[error(transparent)]
    VerifierName(#[from] BadVerifierName),
    /// Detection: the first record is not an object.
    #[error("cannot tell the format: the first record is {found}, not a JSON object")]
    DetectNotObject { found: &'static str },
    /// Detection: an API response without its request.
    #[error(
        "this is a bare chat.completion response: it carries no prompt. Import the calls as \
         {{\"request\": {{...}}, \"response\": {{...}}}} lines (format `exchange`), or a Batch API output \
         together with its input file"
    )]
    BareCompletion,
    /// Detection: no format has these fields (the first twelve).
    #[error("cannot tell the format from the fields {keys:?}; name it with --format (one of: {})", format_names())]
    Undetectable { keys: Vec<String> },
}

fn format_names() -> String {
    Format::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
}

impl RecordError {
    pub(crate) fn missing(key: &str) -> Self {
        Self::MissingField { key: key.to_owned() }
    }

    pub(crate) fn field_type(key: &str, expected: &'static str, found: &Value) -> Self {
        Self::FieldType { key: key.to_owned(), expected, found: describe(found) }
    }

    pub(crate) fn value_type(path: impl Into<String>, expected: &'static str, found: &Value) -> Self {
        Self::ValueType { path: path.into(), expected, found: describe(found) }
    }

    pub(crate) fn lacks(path: impl Into<String>, what: &'static str) -> Self {
        Self::Lacks { path: path.into(), what }
    }
}
