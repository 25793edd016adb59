//! Chat-shaped formats: OpenAI/TRL messages, prompt/completion, ShareGPT, Alpaca, logged API
//! exchanges and the OpenAI Batch API.

use serde_json::{Map, Value};

use super::hub;
use super::json::{content_text, opt_str, req_str, rest};
use super::problems::as_answer_text;
use super::{BatchRequest, LogprobsDraft, ParseContext, Parsed, PromptDraft, Record, RecordError, SampleDraft, Turn};
use crate::domain::LabelType;

/// A conversation split at its last assistant turn.
pub(super) struct Conversation {
    pub system: Option<String>,
    pub turns: Vec<Turn>,
    pub answer: Option<SampleDraft>,
}

/// Splits OpenAI-shaped messages: system turns apart, the last assistant turn as the sample.
pub(super) fn split_messages(messages: &Value, path: &str) -> Result<Conversation, RecordError> {
    let Value::Array(list) = messages else {
        return Err(RecordError::value_type(path, "an array of messages", messages));
    };
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(RecordError::value_type(format!("{path}[{i}]"), "an object with `role` and `content`", m));
        };
        let role = req_str(m, "role").map_err(|e| RecordError::Within { path: format!("{path}[{i}]"), inner: Box::new(e) })?;
        let content = content_text(m.get("content"), &format!("{path}[{i}].content"))?;
        match role {
            "system" | "developer" => system.push(content),
            "user" | "assistant" | "tool" | "function" => {
                // No calls is no calls, written `null` or `[]` (a Parquet list column).
                let tool_calls = m.get("tool_calls").filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())).cloned();
                let mut turn = Turn { role: role.into(), content, tool_calls };
                if role == "function" {
                    turn.role = "tool".into();
                }
                // Keep reasoning fields of a final assistant turn for the sample.
                if role == "assistant" && i == list.len() - 1 {
                    let reasoning = reasoning_field(m)?;
                    let mut sample = SampleDraft { tool_calls: turn.tool_calls.clone(), ..SampleDraft::default() };
                    sample.set_trace(&turn.content, reasoning);
                    return Ok(Conversation { system: join_system(system), turns, answer: Some(sample) });
                }
                turns.push(turn);
            }
            other => {
                return Err(RecordError::UnexpectedValue {
                    path: format!("{path}[{i}].role"),
                    value: other.to_owned(),
                    expected: "system, user, assistant or tool",
                });
            }
        }
    }
    Ok(Conversation { system: join_system(system), turns, answer: None })
}

fn join_system(parts: Vec<String>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// `reasoning_content` (DeepSeek, vLLM ≤ 0.10) or `reasoning` (vLLM ≥ 0.11).
fn reasoning_field(m: &Map<String, Value>) -> Result<Option<&str>, RecordError> {
    match opt_str(m, "reasoning_content")? {
        Some(r) => Ok(Some(r)),
        None => opt_str(m, "reasoning"),
    }
}

pub(super) fn require_user_turn(turns: &[Turn], path: &str) -> Result<(), RecordError> {
    if turns.iter().any(|t| t.role == "user") { Ok(()) } else { Err(RecordError::NoUserTurn { path: path.to_owned() }) }
}

fn record(prompt: PromptDraft, samples: Vec<SampleDraft>) -> Record {
    Record { prompt, samples, custom_id: None }
}

/// `{"messages": [...], "tools"?: ...}`: OpenAI chat fine-tuning, TRL conversational; also
/// Nemotron post-training rows (the teacher in `generator`, the kind in `category`) and
/// AM-DeepSeek-R1-Distilled rows (each turn's `info`: see [`turn_info`]).
pub fn parse_messages(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let messages = obj.get("messages").ok_or_else(|| RecordError::missing("messages"))?;
    let conv = split_messages(messages, "messages")?;
    require_user_turn(&conv.turns, "messages")?;
    let info = turn_info(messages)?;
    let mut skip = vec!["messages", "tools", "model", "generator"];
    let mut sample = conv.answer.map(|mut s| {
        s.system = conv.system;
        s
    });
    if let Some(s) = &mut sample {
        if let Some(answer) = &info.answer {
            let tool_calls = s.tool_calls.take();
            *s = SampleDraft { system: s.system.take(), tool_calls, ..SampleDraft::default() };
            s.set_trace(answer, info.think.as_deref());
        } else if info.any {
            s.answer = unwrap_answer_tags(&s.answer);
        }
        if let Some(extra) = info.sample {
            s.metadata.get_or_insert_with(Map::new).insert("info".into(), Value::Object(extra));
        }
        // Lenient: a general chat set may use these names for something else.
        let generator = obj.get("generator").and_then(Value::as_str);
        s.teacher = obj.get("model").and_then(Value::as_str).or(generator).map(str::to_owned);
        if generator.is_some() {
            for key in hub::NEMOTRON_SAMPLE_KEYS {
                if let Some(v) = obj.get(*key).filter(|v| !v.is_null()) {
                    s.metadata.get_or_insert_with(Map::new).insert((*key).to_owned(), v.clone());
                    skip.push(key);
                }
            }
        }
    }
    let source = info.source.or_else(|| obj.get("source").and_then(Value::as_str).map(str::to_owned));
    if source.is_some() {
        skip.push("source");
    }
    let mut metadata = rest(obj, &skip);
    if let Some(extra) = info.prompt {
        metadata.get_or_insert_with(Map::new).insert("info".into(), Value::Object(extra));
    }
    let prompt = PromptDraft {
        turns: conv.turns,
        tools: obj.get("tools").filter(|v| !v.is_null()).cloned(),
        reference: info.reference,
        kind: obj.get("category").and_then(Value::as_str).and_then(hub::category_kind),
        source,
        metadata,
    };
    Ok(record(prompt, sample.into_iter().collect()))
}

/// What the turns' `info` objects tell (AM-DeepSeek-R1-Distilled): the user turn's
/// `reference_answer`, `source` and `test_case`; the final assistant turn's `think_content` and
/// `answer_content` (its `content` apart, without the `<think>`/`<answer>` tags) and `source`.
#[derive(Default)]
struct TurnInfo {
    /// Some turn has an `info` object.
    any: bool,
    reference: Option<String>,
    source: Option<String>,
    /// The user turn's other `info` fields (`test_case`), for the prompt's metadata.
    prompt: Option<Map<String, Value>>,
    think: Option<String>,
    answer: Option<String>,
    /// The answer turn's other `info` fields (its `source`), for the sample's metadata.
    sample: Option<Map<String, Value>>,
}

/// Reads the `info` of the last user turn and of a final assistant turn; nulls are absent.
fn turn_info(messages: &Value) -> Result<TurnInfo, RecordError> {
    let mut out = TurnInfo::default();
    let Value::Array(list) = messages else { return Ok(out) };
    let info = |i: usize| -> Result<Option<&Map<String, Value>>, RecordError> {
        match list[i].get("info") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(RecordError::value_type(format!("messages[{i}].info"), "an object", other)),
        }
    };
    let text = |i: usize, m: &Map<String, Value>, key: &str| -> Result<Option<String>, RecordError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(RecordError::value_type(format!("messages[{i}].info.{key}"), "a string", other)),
        }
    };
    let others = |m: &Map<String, Value>, taken: &[&str]| rest(m, taken);
    let role = |i: usize| list[i].get("role").and_then(Value::as_str);
    if let Some(u) = (0..list.len()).rev().find(|&i| role(i) == Some("user"))
        && let Some(m) = info(u)?
    {
        out.any = true;
        out.reference = match m.get("reference_answer") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                as_answer_text("reference_answer", v)
                    .map_err(|e| RecordError::Within { path: format!("messages[{u}].info"), inner: Box::new(e) })?
                    .trim()
                    .to_owned(),
            )
            .filter(|r| !r.is_empty()),
        };
        out.source = text(u, m, "source")?;
        out.prompt = others(m, &["reference_answer", "source", "think_content", "answer_content"]);
    }
    if let Some(a) = list.len().checked_sub(1).filter(|&i| role(i) == Some("assistant"))
        && let Some(m) = info(a)?
    {
        out.any = true;
        out.think = text(a, m, "think_content")?;
        out.answer = text(a, m, "answer_content")?;
        out.sample = others(m, &["think_content", "answer_content", "reference_answer", "test_case"]);
    }
    Ok(out)
}

/// An answer written `<answer>…</answer>` (AM-DeepSeek-R1-Distilled), without the tags.
fn unwrap_answer_tags(answer: &str) -> String {
    let t = answer.trim();
    t.strip_prefix("<answer>").and_then(|a| a.strip_suffix("</answer>")).map_or_else(|| t.to_owned(), |a| a.trim().to_owned())
}

/// `{"prompt": str | messages, "completion": str | messages}`.
pub fn parse_prompt_completion(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let (system, turns) = match obj.get("prompt") {
        Some(Value::String(p)) => (None, vec![Turn::user(p.clone())]),
        Some(v @ Value::Array(_)) => {
            let conv = split_messages(v, "prompt")?;
            let mut turns = conv.turns;
            if let Some(a) = conv.answer {
                // A prompt list ending in an assistant turn: that turn is context, not the sample.
                turns.push(Turn { role: "assistant".into(), content: a.answer, tool_calls: a.tool_calls });
            }
            (conv.system, turns)
        }
        Some(other) => return Err(RecordError::field_type("prompt", "a string or a list of messages", other)),
        None => return Err(RecordError::missing("prompt")),
    };
    require_user_turn(&turns, "prompt")?;
    let mut sample = match obj.get("completion") {
        Some(Value::String(c)) => SampleDraft::from_trace(c),
        Some(v @ Value::Array(_)) => {
            split_messages(v, "completion")?.answer.ok_or_else(|| RecordError::lacks("completion", "assistant message"))?
        }
        Some(other) => return Err(RecordError::field_type("completion", "a string or a list of messages", other)),
        None => return Err(RecordError::missing("completion")),
    };
    sample.system = system;
    sample.teacher = opt_str(obj, "model")?.map(str::to_owned);
    let prompt = PromptDraft { turns, metadata: rest(obj, &["prompt", "completion", "model"]), ..PromptDraft::default() };
    Ok(record(prompt, vec![sample]))
}

/// ShareGPT `{"conversations": [{"from", "value"}...], "system"?, "tools"?}` as LLaMA-Factory
/// reads it, with `function_call` and `observation` turns.
pub fn parse_sharegpt(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let Some(Value::Array(list)) = obj.get("conversations") else {
        return Err(RecordError::FieldShape { key: "conversations", expected: "an array of turns" });
    };
    let mut messages = Vec::with_capacity(list.len() + 1);
    if let Some(system) = opt_str(obj, "system")? {
        messages.push(serde_json::json!({"role": "system", "content": system}));
    }
    for (i, turn) in list.iter().enumerate() {
        let Value::Object(t) = turn else {
            return Err(RecordError::value_type(format!("conversations[{i}]"), "an object", turn));
        };
        let (from, value) = match (opt_str(t, "from")?, opt_str(t, "role")?) {
            (Some(from), _) => (from, content_text(t.get("value"), &format!("conversations[{i}].value"))?),
            (None, Some(role)) => (role, content_text(t.get("content"), &format!("conversations[{i}].content"))?),
            (None, None) => return Err(RecordError::NoSpeaker { index: i }),
        };
        let message = match from {
            "human" | "user" => serde_json::json!({"role": "user", "content": value}),
            "gpt" | "assistant" | "model" | "chatgpt" | "bing" | "bard" => serde_json::json!({"role": "assistant", "content": value}),
            "system" => serde_json::json!({"role": "system", "content": value}),
            "observation" | "tool" | "function" => serde_json::json!({"role": "tool", "content": value}),
            "function_call" => serde_json::json!({"role": "assistant", "content": "", "tool_calls": tool_calls(&value, i)?}),
            other => {
                return Err(RecordError::UnexpectedValue {
                    path: format!("conversations[{i}].from"),
                    value: other.to_owned(),
                    expected: "human, gpt, system, function_call or observation",
                });
            }
        };
        messages.push(message);
    }
    let conv = split_messages(&Value::Array(messages), "conversations")?;
    require_user_turn(&conv.turns, "conversations")?;
    let tools = match obj.get("tools") {
        // LLaMA-Factory keeps tool definitions as a JSON string.
        Some(Value::String(s)) if !s.trim().is_empty() => {
            Some(serde_json::from_str(s).map_err(|cause| RecordError::ToolsNotJson { cause })?)
        }
        Some(v @ (Value::Array(_) | Value::Object(_))) => Some(v.clone()),
        _ => None,
    };
    // OpenThoughts3 and its kin name where the problem came from.
    let source = obj.get("source").and_then(Value::as_str).map(str::to_owned);
    let skip: &[&str] =
        if source.is_some() { &["conversations", "system", "tools", "source"] } else { &["conversations", "system", "tools"] };
    let prompt = PromptDraft { turns: conv.turns, tools, source, metadata: rest(obj, skip), ..PromptDraft::default() };
    let samples = conv
        .answer
        .map(|mut s| {
            s.system = conv.system;
            s
        })
        .into_iter()
        .collect();
    Ok(record(prompt, samples))
}

/// A ShareGPT `function_call` value (`{"name", "arguments"}` as JSON text, or a list of them for
/// parallel calls, as LLaMA-Factory reads it) as OpenAI tool calls.
fn tool_calls(value: &str, i: usize) -> Result<Value, RecordError> {
    let calls: Value = serde_json::from_str(value).map_err(|cause| RecordError::FunctionCallNotJson { index: i, cause })?;
    match calls {
        Value::Array(list) => list.iter().map(|c| tool_call(c, i)).collect::<Result<Vec<_>, _>>().map(Value::Array),
        call => Ok(Value::Array(vec![tool_call(&call, i)?])),
    }
}

fn tool_call(call: &Value, i: usize) -> Result<Value, RecordError> {
    let name = call
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RecordError::lacks(format!("conversations[{i}].value"), "function `name`"))?;
    let arguments = match call.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => super::sorted_json(v),
        None => "{}".into(),
    };
    Ok(serde_json::json!({"type": "function", "function": {"name": name, "arguments": arguments}}))
}

/// Alpaca `{"instruction", "input", "output", "system"?, "history"?}`.
pub fn parse_alpaca(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let instruction = req_str(obj, "instruction")?;
    let input = opt_str(obj, "input")?.unwrap_or_default();
    let output = req_str(obj, "output")?;
    let mut turns = Vec::new();
    if let Some(history) = obj.get("history").filter(|v| !v.is_null()) {
        let Value::Array(pairs) = history else {
            return Err(RecordError::field_type("history", "an array of [question, answer] pairs", history));
        };
        for (i, pair) in pairs.iter().enumerate() {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(q), Value::String(a)]) => {
                    turns.push(Turn::user(q.clone()));
                    turns.push(Turn { role: "assistant".into(), content: a.clone(), tool_calls: None });
                }
                _ => {
                    return Err(RecordError::ValueShape {
                        path: format!("history[{i}]"),
                        expected: "a [question, answer] pair of strings",
                    });
                }
            }
        }
    }
    // LLaMA-Factory joins instruction and input with a newline.
    let text = if input.is_empty() { instruction.to_owned() } else { format!("{instruction}\n{input}") };
    turns.push(Turn::user(text));
    let mut sample = SampleDraft::from_trace(output);
    sample.system = opt_str(obj, "system")?.filter(|s| !s.is_empty()).map(str::to_owned);
    let prompt =
        PromptDraft { turns, metadata: rest(obj, &["instruction", "input", "output", "system", "history"]), ..PromptDraft::default() };
    Ok(record(prompt, vec![sample]))
}

/// What a chat request tells about its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContext {
    pub system: Option<String>,
    pub model: Option<String>,
    pub params: Option<Value>,
    pub temperature: Option<f64>,
    pub top_logprobs: Option<usize>,
}

const PARAM_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logprobs",
    "top_logprobs",
    "stop",
];

/// Reads a chat completion request body: its prompt and the parameters its samples were made with.
fn parse_request(body: &Map<String, Value>, path: &str) -> Result<(PromptDraft, RequestContext), RecordError> {
    let messages = body.get("messages").ok_or_else(|| RecordError::lacks(path, "`messages`"))?;
    let conv = split_messages(messages, &format!("{path}.messages"))?;
    let mut turns = conv.turns;
    if let Some(a) = conv.answer {
        turns.push(Turn { role: "assistant".into(), content: a.answer, tool_calls: a.tool_calls });
    }
    require_user_turn(&turns, &format!("{path}.messages"))?;
    let params: Map<String, Value> =
        PARAM_KEYS.iter().filter_map(|k| body.get(*k).filter(|v| !v.is_null()).map(|v| ((*k).to_owned(), v.clone()))).collect();
    let context = RequestContext {
        system: conv.system,
        model: opt_str(body, "model")?.map(str::to_owned),
        temperature: body.get("temperature").and_then(Value::as_f64),
        top_logprobs: body.get("top_logprobs").and_then(Value::as_u64).map(|k| k as usize),
        params: (!params.is_empty()).then_some(Value::Object(params)),
    };
    let prompt = PromptDraft { turns, tools: body.get("tools").filter(|v| !v.is_null()).cloned(), ..PromptDraft::default() };
    Ok((prompt, context))
}

/// Reads the samples (one per choice) of a `chat.completion` response body.
fn parse_completion(body: &Map<String, Value>, ctx: &RequestContext, path: &str) -> Result<Vec<SampleDraft>, RecordError> {
    let Some(Value::Array(choices)) = body.get("choices") else {
        return Err(RecordError::lacks(path, "`choices` array"));
    };
    let model = opt_str(body, "model")?.map(str::to_owned).or_else(|| ctx.model.clone());
    let mut samples = Vec::with_capacity(choices.len());
    for (i, choice) in choices.iter().enumerate() {
        let here = format!("{path}.choices[{i}]");
        let Value::Object(choice) = choice else {
            return Err(RecordError::value_type(here, "an object", choice));
        };
        let Some(Value::Object(message)) = choice.get("message") else {
            return Err(RecordError::lacks(here, "`message` object"));
        };
        let content = content_text(message.get("content"), &format!("{here}.message.content"))?;
        let mut sample = SampleDraft {
            teacher: model.clone(),
            system: ctx.system.clone(),
            tool_calls: message.get("tool_calls").filter(|v| v.as_array().is_some_and(|a| !a.is_empty())).cloned(),
            finish_reason: opt_str(choice, "finish_reason")?.map(str::to_owned),
            params: ctx.params.clone(),
            ..SampleDraft::default()
        };
        sample.set_trace(&content, reasoning_field(message)?);
        // The response's token usage (shared by its n choices) and id, as the server reported them.
        for key in ["usage", "id"] {
            if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
                let field = if key == "id" { "response_id" } else { key };
                sample.metadata.get_or_insert_with(Map::new).insert(field.into(), v.clone());
            }
        }
        if let Some(lp) = choice.get("logprobs").filter(|v| !v.is_null()) {
            sample.logprobs = parse_logprobs(lp, ctx, &format!("{here}.logprobs"))?;
            if sample.logprobs.is_some() {
                sample.label = Some(LabelType::Soft);
            }
        }
        samples.push(sample);
    }
    Ok(samples)
}

/// Token log-probs in the chat shape (`{"content": [{token, logprob, bytes, top_logprobs}]}`), or
/// the legacy completions shape (`{tokens, token_logprobs, top_logprobs: [{token: logprob}]}`)
/// converted to it.
fn parse_logprobs(lp: &Value, ctx: &RequestContext, path: &str) -> Result<Option<LogprobsDraft>, RecordError> {
    let Value::Object(obj) = lp else {
        return Err(RecordError::value_type(path, "an object", lp));
    };
    let content = if let Some(content) = obj.get("content").filter(|v| !v.is_null()) {
        let Value::Array(positions) = content else {
            return Err(RecordError::value_type(format!("{path}.content"), "an array", content));
        };
        for (i, p) in positions.iter().enumerate() {
            if p.get("token").and_then(Value::as_str).is_none() || p.get("logprob").and_then(Value::as_f64).is_none() {
                return Err(RecordError::LogprobPosition { path: path.to_owned(), index: i });
            }
        }
        content.clone()
    } else if let Some(Value::Array(tokens)) = obj.get("tokens") {
        let logprobs = obj
            .get("token_logprobs")
            .and_then(Value::as_array)
            .ok_or_else(|| RecordError::TokensWithoutLogprobs { path: path.to_owned() })?;
        let tops = obj.get("top_logprobs").and_then(Value::as_array);
        let converted: Vec<Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let top: Vec<Value> = tops
                    .and_then(|t| t.get(i))
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(tok, lp)| serde_json::json!({"token": tok, "logprob": lp})).collect())
                    .unwrap_or_default();
                serde_json::json!({"token": t, "logprob": logprobs.get(i).cloned().unwrap_or(Value::Null), "top_logprobs": top})
            })
            .collect();
        Value::Array(converted)
    } else {
        return Ok(None);
    };
    let positions = content.as_array().map_or(0, Vec::len);
    if positions == 0 {
        return Ok(None);
    }
    let widest = content
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("top_logprobs").and_then(Value::as_array).map(Vec::len))
        .max()
        .unwrap_or(0);
    Ok(Some(LogprobsDraft { k: ctx.top_logprobs.unwrap_or(widest).max(widest), temperature: ctx.temperature, positions, content }))
}

/// `{"request": {chat request}, "response": {chat.completion}}`: logged API calls.
pub fn parse_exchange(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let Some(Value::Object(request)) = obj.get("request") else {
        return Err(RecordError::FieldShape { key: "request", expected: "the chat completion request object" });
    };
    let Some(Value::Object(response)) = obj.get("response") else {
        return Err(RecordError::FieldShape { key: "response", expected: "the chat.completion response object" });
    };
    let (mut prompt, ctx) = parse_request(request, "request")?;
    prompt.metadata = rest(obj, &["request", "response"]);
    let samples = parse_completion(response, &ctx, "response")?;
    Ok(record(prompt, samples))
}

/// A Batch API input line: a prompt waiting for (or matched with) its output line.
pub fn parse_batch_input(obj: &Map<String, Value>) -> Result<(Record, BatchRequest), RecordError> {
    let custom_id = req_str(obj, "custom_id")?;
    let Some(Value::Object(body)) = obj.get("body") else {
        return Err(RecordError::FieldShape { key: "body", expected: "the request object" });
    };
    let (mut prompt, context) = parse_request(body, "body")?;
    let mut meta = Map::new();
    meta.insert("custom_id".into(), Value::String(custom_id.to_owned()));
    prompt.metadata = Some(meta);
    let request = BatchRequest { prompt: prompt.clone(), context };
    Ok((Record { prompt, samples: Vec::new(), custom_id: Some(custom_id.to_owned()) }, request))
}

/// A Batch API output line, matched to its request by `custom_id`.
pub fn parse_batch_output(obj: &Map<String, Value>, ctx: &ParseContext) -> Result<Parsed, RecordError> {
    let custom_id = req_str(obj, "custom_id")?;
    if let Some(error) = obj.get("error").filter(|v| !v.is_null()) {
        return Ok(Parsed::FailedRequest(format!("request {custom_id:?} failed: {error}")));
    }
    let Some(Value::Object(response)) = obj.get("response") else {
        return Err(RecordError::FieldShape { key: "response", expected: "an object" });
    };
    let status = response.get("status_code").and_then(Value::as_u64).unwrap_or(200);
    if status != 200 {
        return Ok(Parsed::FailedRequest(format!("request {custom_id:?} failed with HTTP {status}")));
    }
    let Some(Value::Object(body)) = response.get("body") else {
        return Err(RecordError::ValueShape { path: "response.body".into(), expected: "the chat.completion object" });
    };
    let request = ctx.batch_requests.get(custom_id).ok_or_else(|| RecordError::NoBatchRequest { custom_id: custom_id.to_owned() })?;
    let samples = parse_completion(body, &request.context, "response.body")?;
    let mut prompt = request.prompt.clone();
    prompt.metadata.get_or_insert_with(Map::new).insert("custom_id".into(), Value::String(custom_id.to_owned()));
    Ok(Parsed::row(record(prompt, samples)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::ingest::json::test_object as obj;

    #[test]
    fn messages_last_assistant_is_the_sample() {
        let r = parse_messages(&obj(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>add</think>4", "reasoning_content": null}
        ]})))
        .unwrap();
        assert_eq!(r.prompt.turns, vec![Turn::user("2+2?")]);
        assert_eq!(r.samples.len(), 1);
        assert_eq!(r.samples[0].system.as_deref(), Some("Be brief."));
        assert_eq!(r.samples[0].reasoning.as_deref(), Some("add"));
        assert_eq!(r.samples[0].answer, "4");
    }

    #[test]
    fn messages_without_assistant_is_a_prompt() {
        let r = parse_messages(&obj(json!({"messages": [{"role": "user", "content": "hi"}]}))).unwrap();
        assert!(r.samples.is_empty());
        let err = parse_messages(&obj(json!({"messages": [{"role": "assistant", "content": "hi"}]}))).unwrap_err();
        assert_eq!(err.to_string(), "`messages` has no user turn before the answer: there is no prompt");
        let err = parse_messages(&obj(json!({"messages": [{"role": "user", "content": 5}]}))).unwrap_err();
        assert_eq!(err.to_string(), "`messages[0].content` must be a string or an array of parts, found a number");
        let err = parse_messages(&obj(json!({"messages": [{"content": "hi"}]}))).unwrap_err();
        assert_eq!(err.to_string(), "`messages[0]`: missing field `role`");
        let err = parse_messages(&obj(json!({"messages": [{"role": "bot", "content": "hi"}]}))).unwrap_err();
        assert_eq!(err.to_string(), "`messages[0].role` is \"bot\"; expected system, user, assistant or tool");
    }

    #[test]
    fn am_distilled_turn_info() {
        // AM-DeepSeek-R1-Distilled-1.4M, as a Parquet row reads: both turns' `info` have every field.
        let r = parse_messages(&obj(json!({"messages": [
            {"role": "user", "content": "Find the integral of $e^{-x} + e^{-2x}$.", "info": {
                "source": "natural_reasoning", "reference_answer": "-e^{-x} - \\frac{1}{2}e^{-2x} + C", "test_case": null,
                "think_content": null, "answer_content": null}},
            {"role": "assistant", "content": "<think>Integrate term by term.</think>\n<answer>$-e^{-x} - \\frac{1}{2}e^{-2x} + C$</answer>", "info": {
                "source": "am-0309", "reference_answer": null, "test_case": null,
                "think_content": "Integrate term by term.", "answer_content": "$-e^{-x} - \\frac{1}{2}e^{-2x} + C$"}}
        ]})))
        .unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some("-e^{-x} - \\frac{1}{2}e^{-2x} + C"));
        assert_eq!(r.prompt.source.as_deref(), Some("natural_reasoning"));
        assert_eq!(r.prompt.metadata, None);
        let s = &r.samples[0];
        assert_eq!(s.reasoning.as_deref(), Some("Integrate term by term."));
        assert_eq!(s.answer, "$-e^{-x} - \\frac{1}{2}e^{-2x} + C$");
        assert_eq!(s.metadata.as_ref().unwrap()["info"], json!({"source": "am-0309"}));
        // Without the split fields, the tags are taken off the content.
        let r = parse_messages(&obj(json!({"messages": [
            {"role": "user", "content": "q", "info": {"source": "codeio", "reference_answer": null, "test_case": "{\"inputs\": [1]}"}},
            {"role": "assistant", "content": "<think>t</think>\n<answer>\nprint(1)\n</answer>", "info": {"source": "am-0309"}}
        ]})))
        .unwrap();
        assert_eq!((r.samples[0].reasoning.as_deref(), r.samples[0].answer.as_str()), (Some("t"), "print(1)"));
        assert_eq!(r.prompt.reference, None);
        assert_eq!(r.prompt.metadata.as_ref().unwrap()["info"], json!({"test_case": "{\"inputs\": [1]}"}));
        let err =
            parse_messages(&obj(json!({"messages": [{"role": "user", "content": "q", "info": {"reference_answer": true}}]}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`messages[0].info`: field `reference_answer` must be a string, a number or an object of parts, found a boolean"
        );
    }

    #[test]
    fn nemotron_post_training_row() {
        // nvidia/Nemotron-Post-Training-Dataset-v1, tool_calling split: calls in OpenAI's shape.
        let r = parse_messages(&obj(json!({
            "uuid": "9b0f", "license": "CC BY 4.0", "generator": "Qwen3-235B-A22B", "version": "v1", "category": "tool_calling",
            "reasoning": "on", "metadata": "{\"tools\": []}",
            "messages": [
                {"role": "system", "content": "", "tool_calls": []},
                {"role": "user", "content": "Weather in Paris?", "tool_calls": []},
                {"role": "assistant", "content": "<think>\nCall the tool.\n</think>\n\n", "tool_calls": [
                    {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}
            ]
        })))
        .unwrap();
        assert_eq!(r.prompt.turns, vec![Turn::user("Weather in Paris?")]);
        assert_eq!(r.prompt.kind, Some(crate::domain::Kind::General));
        let meta = r.prompt.metadata.as_ref().unwrap();
        assert_eq!((meta["uuid"].as_str(), meta["category"].as_str()), (Some("9b0f"), Some("tool_calling")));
        assert!(!meta.contains_key("generator") && !meta.contains_key("reasoning"));
        let s = &r.samples[0];
        assert_eq!(s.teacher.as_deref(), Some("Qwen3-235B-A22B"));
        assert_eq!(s.system, None);
        assert_eq!(s.reasoning.as_deref(), Some("Call the tool."));
        assert_eq!(s.tool_calls.as_ref().unwrap()[0]["function"]["name"], "get_weather");
        assert_eq!(s.metadata.as_ref().unwrap()["reasoning"], "on");
    }

    #[test]
    fn sharegpt_source_and_sky_t1_markers() {
        // OpenThoughts3-1.2M (`human`/`gpt`), and OpenThoughts-114k / Bespoke-Stratos (`user`/`assistant`, Sky-T1 markers).
        let r = parse_sharegpt(&obj(json!({"difficulty": 6, "source": "nvidia/OpenCodeReasoning", "domain": "code",
            "conversations": [{"from": "human", "value": "Sort a list."}, {"from": "gpt", "value": "<think>\nUse sorted.\n</think>\n\nsorted(xs)"}]})))
        .unwrap();
        assert_eq!(r.prompt.source.as_deref(), Some("nvidia/OpenCodeReasoning"));
        assert_eq!(r.prompt.metadata.as_ref().unwrap()["difficulty"], 6);
        assert_eq!((r.samples[0].reasoning.as_deref(), r.samples[0].answer.as_str()), (Some("Use sorted."), "sorted(xs)"));
        let r = parse_sharegpt(&obj(json!({"system": "Your role as an assistant involves thoroughly exploring questions.",
            "conversations": [{"from": "user", "value": "2+2?"}, {"from": "assistant",
                "value": "<|begin_of_thought|>\n\nAdd them.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n\\boxed{4}\n\n<|end_of_solution|>"}]})))
        .unwrap();
        let s = &r.samples[0];
        assert_eq!((s.reasoning.as_deref(), s.answer.as_str()), (Some("Add them."), "\\boxed{4}"));
        assert_eq!(s.system.as_deref(), Some("Your role as an assistant involves thoroughly exploring questions."));
        assert_eq!(r.prompt.source, None);
    }

    #[test]
    fn sharegpt_tool_calls() {
        let r = parse_sharegpt(&obj(json!({
            "conversations": [
                {"from": "human", "value": "weather?"},
                {"from": "function_call", "value": "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"},
                {"from": "observation", "value": "{\"temp\": 20}"},
                {"from": "gpt", "value": "It is 20 degrees."}
            ],
            "tools": "[{\"name\": \"get_weather\"}]"
        })))
        .unwrap();
        assert_eq!(r.prompt.turns.len(), 3);
        assert_eq!(r.prompt.turns[1].tool_calls.as_ref().unwrap()[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(r.prompt.turns[2].role, "tool");
        assert_eq!(r.prompt.tools, Some(json!([{"name": "get_weather"}])));
        assert_eq!(r.samples[0].answer, "It is 20 degrees.");
    }

    #[test]
    fn alpaca_joins_instruction_and_input() {
        let r = parse_alpaca(&obj(json!({"instruction": "Translate", "input": "bonjour", "output": "hello"}))).unwrap();
        assert_eq!(r.prompt.text(), "Translate\nbonjour");
        assert_eq!(r.samples[0].answer, "hello");
        let err = parse_alpaca(&obj(json!({"instruction": "x", "output": 3}))).unwrap_err();
        assert_eq!(err.to_string(), "field `output` must be a string, found a number");
    }

    #[test]
    fn exchange_keeps_logprobs_and_params() {
        let r = parse_exchange(&obj(json!({
            "request": {"model": "m", "messages": [{"role": "user", "content": "Hello!"}], "logprobs": true, "top_logprobs": 2, "temperature": 0.7},
            "response": {"object": "chat.completion", "model": "gpt-x", "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hi"},
                "logprobs": {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1}, {"token": "Hey", "logprob": -2.0}]}]}}]}
        })))
        .unwrap();
        let s = &r.samples[0];
        assert_eq!(s.teacher.as_deref(), Some("gpt-x"));
        assert_eq!(s.label, Some(LabelType::Soft));
        let lp = s.logprobs.as_ref().unwrap();
        assert_eq!((lp.k, lp.positions, lp.temperature), (2, 1, Some(0.7)));
        assert_eq!(s.params.as_ref().unwrap()["temperature"], 0.7);
    }

    #[test]
    fn batch_output_needs_its_request() {
        let line =
            obj(json!({"custom_id": "request-2", "response": {"status_code": 200, "body": {"model": "m", "choices": []}}, "error": null}));
        let err = parse_batch_output(&line, &ParseContext::default()).unwrap_err().to_string();
        assert!(
            err.starts_with("custom_id \"request-2\" has no request: import the Batch API input file (the .jsonl that was uploaded)"),
            "{err}"
        );
        let failed = obj(json!({"custom_id": "r", "response": {"status_code": 500, "body": {}}, "error": null}));
        assert!(matches!(parse_batch_output(&failed, &ParseContext::default()).unwrap(), Parsed::FailedRequest(_)));
    }
}
