//! A sample as chat messages, in the shape each consumer reads tool use in.
//!
//! Hugging Face chat templates (TRL, axolotl, transformers) read a tool call's `arguments` as an
//! object (`tool_call.arguments | tojson`): a JSON string would be encoded a second time. OpenAI's
//! fine-tuning format wants the string, a call `id` and `type`, and each tool result's
//! `tool_call_id`. Both want tools as `{"type": "function", "function": {...}}`, the shape vLLM
//! hands a template at inference. The store keeps what the data gave (OpenAI strings, ShareGPT's
//! bare functions, no ids); this module writes each consumer's shape from it.

use serde_json::{Map, Value, json};

use super::{ExportSample, ReasoningMode};

/// Whose tool-use conventions a conversation follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Arguments as objects; tool results carry `tool_call_id` and the function's `name`.
    HuggingFace,
    /// Arguments as JSON strings; tool results carry `tool_call_id` only; an assistant turn
    /// that only calls tools has no `content`.
    OpenAi,
}

/// A tool definition as `{"type": "function", "function": {...}}` (a bare function, as ShareGPT
/// data keeps them, is wrapped; the function's keys keep their order).
#[must_use]
pub fn tool(t: &Value) -> Value {
    match t.get("function") {
        Some(f) if f.is_object() => json!({"type": t.get("type").cloned().unwrap_or_else(|| json!("function")), "function": f}),
        _ => json!({"type": "function", "function": t}),
    }
}

/// The tools as a list of wrapped definitions; none for an empty list.
#[must_use]
pub fn tools(t: Option<&Value>) -> Option<Value> {
    let list = t?.as_array()?;
    (!list.is_empty()).then(|| Value::Array(list.iter().map(tool).collect()))
}

/// `arguments` as `style` wants them: an object parsed from OpenAI's string (text that is not a
/// JSON object stays a string: there is no object to give), or the string.
fn arguments(function: &Value, style: Style) -> Value {
    let text = crate::ingest::tool_arguments(function);
    match style {
        Style::OpenAi => Value::String(text),
        Style::HuggingFace => match serde_json::from_str::<Value>(&text) {
            Ok(v @ Value::Object(_)) => v,
            _ => Value::String(text),
        },
    }
}

/// Assigns tool-call ids and pairs tool results with the calls they answer.
struct Calls {
    /// Calls made so far in the conversation, for fresh ids (`call_0`, `call_1`…).
    made: usize,
    /// The latest tool-call turn's calls not yet answered: (id, function name).
    pending: std::collections::VecDeque<(String, String)>,
}

impl Calls {
    fn new() -> Self {
        Self { made: 0, pending: std::collections::VecDeque::new() }
    }

    /// A turn's tool calls in `style`, remembered for the results that follow.
    fn calls(&mut self, calls: &Value, style: Style) -> Value {
        self.pending.clear();
        let out: Vec<Value> = calls
            .as_array()
            .into_iter()
            .flatten()
            .map(|call| {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| format!("call_{}", self.made), str::to_owned);
                self.made += 1;
                let (function, name) = crate::ingest::tool_function(call);
                let name = name.unwrap_or_default().to_owned();
                self.pending.push_back((id.clone(), name.clone()));
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments(function, style)}})
            })
            .collect();
        Value::Array(out)
    }

    /// The call a tool result answers: its own `tool_call_id`, else the next unanswered call.
    fn answer(&mut self, result: &Map<String, Value>) -> Option<(String, Option<String>)> {
        let next = self.pending.pop_front();
        match result.get("tool_call_id").and_then(Value::as_str) {
            Some(id) => {
                Some((id.to_owned(), next.map(|(_, n)| n).or_else(|| result.get("name").and_then(Value::as_str).map(str::to_owned))))
            }
            None => next.map(|(id, name)| (id, Some(name))),
        }
    }
}

/// Why a sample cannot be written in a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    /// A tool result that answers no tool call (OpenAI needs its `tool_call_id`).
    #[error("a tool result answers no tool call, and OpenAI's format needs the id of the call it answers")]
    OrphanToolResult,
    /// No answer and no tool call: nothing for the assistant to learn.
    #[error("the answer is empty and calls no tool, and OpenAI refuses an empty assistant turn")]
    EmptyAnswer,
}

/// The assistant's text with the reasoning placed as `mode` says. A reasoning trace that was
/// cut off stays open (`<think>\n…` with no `</think>`): closing it would teach the student that
/// a thought ended where the teacher was stopped.
#[must_use]
pub fn assistant_text(s: &ExportSample, mode: ReasoningMode) -> String {
    match (&s.reasoning, mode) {
        (Some(r), ReasoningMode::Inline) if !r.is_empty() => {
            if s.reasoning_cut_off {
                if s.answer.is_empty() { format!("<think>\n{r}") } else { format!("<think>\n{r}\n\n{}", s.answer) }
            } else {
                format!("<think>\n{r}\n</think>\n\n{}", s.answer)
            }
        }
        _ => s.answer.clone(),
    }
}

/// The sample's messages: system prompt (when `system`), the prompt's turns and the answer, tool
/// use in `style`.
pub fn messages(s: &ExportSample, mode: ReasoningMode, system: bool, style: Style) -> Result<Vec<Value>, Unfit> {
    let mut calls = Calls::new();
    let mut out = Vec::with_capacity(s.turns.len() + 2);
    if system && let Some(sys) = &s.system {
        out.push(json!({"role": "system", "content": sys}));
    }
    let answer = {
        let mut m = Map::new();
        m.insert("role".into(), json!("assistant"));
        m.insert("content".into(), json!(assistant_text(s, mode)));
        if mode == ReasoningMode::Field
            && let Some(r) = s.reasoning.as_ref().filter(|r| !r.is_empty())
        {
            m.insert("reasoning_content".into(), json!(r));
        }
        if let Some(c) = s.tool_calls.as_ref().filter(|c| c.as_array().is_some_and(|a| !a.is_empty())) {
            m.insert("tool_calls".into(), c.clone());
        }
        Value::Object(m)
    };
    for turn in s.turns.iter().chain(std::iter::once(&answer)) {
        let Some(turn) = turn.as_object() else { continue };
        let mut m = turn.clone();
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => match m.get("tool_calls").filter(|c| c.as_array().is_some_and(|a| !a.is_empty())).cloned() {
                Some(c) => {
                    m.insert("tool_calls".into(), calls.calls(&c, style));
                    if style == Style::OpenAi && m.get("content").and_then(Value::as_str).is_some_and(str::is_empty) {
                        m.remove("content");
                    }
                }
                None => {
                    m.remove("tool_calls");
                }
            },
            Some("tool") => {
                let (id, name) = match calls.answer(&m) {
                    Some(answered) => answered,
                    None if style == Style::OpenAi => return Err(Unfit::OrphanToolResult),
                    None => {
                        out.push(Value::Object(m));
                        continue;
                    }
                };
                let content = m.remove("content").unwrap_or_else(|| json!(""));
                let mut result = Map::new();
                result.insert("role".into(), json!("tool"));
                result.insert("tool_call_id".into(), json!(id));
                if style == Style::HuggingFace
                    && let Some(name) = name.filter(|n| !n.is_empty())
                {
                    result.insert("name".into(), json!(name));
                }
                result.insert("content".into(), content);
                m = result;
            }
            _ => {}
        }
        out.push(Value::Object(m));
    }
    // OpenAI refuses an assistant turn with nothing in it; Hugging Face trainers take it.
    let last = out.last().and_then(Value::as_object);
    let said = last.and_then(|m| m.get("content")).and_then(Value::as_str).is_some_and(|c| !c.trim().is_empty());
    if style == Style::OpenAi && !said && last.is_some_and(|m| !m.contains_key("tool_calls")) {
        return Err(Unfit::EmptyAnswer);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool_use() -> ExportSample {
        ExportSample {
            system: None,
            turns: vec![
                json!({"role": "user", "content": "weather in Paris and the time?"}),
                json!({"role": "assistant", "content": "", "tool_calls": [
                    {"type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "abc", "type": "function", "function": {"name": "time", "arguments": "{\"zone\":\"CET\"}"}}]}),
                json!({"role": "tool", "content": "20 C"}),
                json!({"role": "tool", "content": "14:05"}),
            ],
            tools: Some(json!([{"name": "weather", "parameters": {"type": "object"}}])),
            answer: "20 °C, 14:05.".into(),
            ..ExportSample::default()
        }
    }

    #[test]
    fn hugging_face_gets_objects_and_openai_strings_with_ids() {
        let s = tool_use();
        let hf = messages(&s, ReasoningMode::Inline, true, Style::HuggingFace).unwrap();
        assert_eq!(
            hf[1]["tool_calls"][0],
            json!({"id": "call_0", "type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}})
        );
        assert_eq!(hf[1]["tool_calls"][1]["id"], "abc");
        assert_eq!(hf[2], json!({"role": "tool", "tool_call_id": "call_0", "name": "weather", "content": "20 C"}));
        assert_eq!(hf[3]["tool_call_id"], "abc");
        let oa = messages(&s, ReasoningMode::Inline, true, Style::OpenAi).unwrap();
        assert_eq!(oa[1]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert!(oa[1].get("content").is_none(), "a call-only turn has no content: {}", oa[1]);
        assert_eq!(oa[3], json!({"role": "tool", "tool_call_id": "abc", "content": "14:05"}));
        assert_eq!(
            tools(s.tools.as_ref()).unwrap(),
            json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}])
        );
    }

    #[test]
    fn what_openai_cannot_hold_is_named() {
        let mut s = tool_use();
        s.turns.remove(1);
        assert_eq!(messages(&s, ReasoningMode::Inline, true, Style::OpenAi), Err(Unfit::OrphanToolResult));
        assert!(messages(&s, ReasoningMode::Inline, true, Style::HuggingFace).is_ok());
        let empty = ExportSample { turns: vec![json!({"role": "user", "content": "?"})], ..ExportSample::default() };
        assert_eq!(messages(&empty, ReasoningMode::Inline, true, Style::OpenAi), Err(Unfit::EmptyAnswer));
    }

    #[test]
    fn a_cut_off_thought_stays_open() {
        let s = ExportSample { reasoning: Some("so far".into()), reasoning_cut_off: true, ..ExportSample::default() };
        assert_eq!(assistant_text(&s, ReasoningMode::Inline), "<think>\nso far");
        let whole = ExportSample { reasoning: Some("done".into()), answer: "4".into(), ..ExportSample::default() };
        assert_eq!(assistant_text(&whole, ReasoningMode::Inline), "<think>\ndone\n</think>\n\n4");
    }
}
