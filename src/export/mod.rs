//! The SFT formats an export writes: one JSON line per sample, in the shapes TRL, axolotl,
//! LLaMA-Factory and OpenAI fine-tuning read as they are.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value, json};

pub mod kd;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// `{"messages": [...]}`: OpenAI fine-tuning, TRL conversational, axolotl `chat_template`.
    Messages,
    /// `{"prompt": [...], "completion": [...]}`: TRL conversational prompt-completion.
    PromptCompletion,
    /// `{"conversations": [{"from", "value"}...], "system", "tools"}` with a `dataset_info.json`
    /// entry: LLaMA-Factory.
    Sharegpt,
    /// `{"instruction", "input", "output", "system", "history"}`: LLaMA-Factory, axolotl `alpaca`.
    Alpaca,
    /// Soft labels: `messages` plus, per completion position, the sampled `token_ids`, the
    /// teacher's top-k `target_token_ids` and their `logprobs` (samples with log-probs only).
    Kd,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 5] =
        [ExportFormat::Messages, ExportFormat::PromptCompletion, ExportFormat::Sharegpt, ExportFormat::Alpaca, ExportFormat::Kd];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Messages => "messages",
            ExportFormat::PromptCompletion => "prompt-completion",
            ExportFormat::Sharegpt => "sharegpt",
            ExportFormat::Alpaca => "alpaca",
            ExportFormat::Kd => "kd",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown export format {s:?}; expected one of: messages, prompt-completion, sharegpt, alpaca, kd"))
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

impl FromStr for ReasoningMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inline" => Ok(Self::Inline),
            "field" => Ok(Self::Field),
            "drop" => Ok(Self::Drop),
            other => Err(format!("unknown reasoning mode {other:?}; expected inline, field or drop")),
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
}

/// The assistant's text with the reasoning placed as `mode` says.
fn assistant_text(s: &ExportSample, mode: ReasoningMode) -> String {
    match (&s.reasoning, mode) {
        (Some(r), ReasoningMode::Inline) if !r.is_empty() => format!("<think>\n{r}\n</think>\n\n{}", s.answer),
        _ => s.answer.clone(),
    }
}

fn assistant_message(s: &ExportSample, mode: ReasoningMode) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), json!("assistant"));
    m.insert("content".into(), json!(assistant_text(s, mode)));
    if mode == ReasoningMode::Field
        && let Some(r) = s.reasoning.as_ref().filter(|r| !r.is_empty())
    {
        m.insert("reasoning_content".into(), json!(r));
    }
    if let Some(calls) = &s.tool_calls {
        m.insert("tool_calls".into(), calls.clone());
    }
    Value::Object(m)
}

fn prompt_messages(s: &ExportSample, system: bool) -> Vec<Value> {
    let mut out = Vec::with_capacity(s.turns.len() + 1);
    if system && let Some(sys) = &s.system {
        out.push(json!({"role": "system", "content": sys}));
    }
    out.extend(s.turns.iter().cloned());
    out
}

/// Text of a message's content.
fn content(m: &Value) -> String {
    m.get("content").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A ShareGPT turn for an OpenAI message: LLaMA-Factory's `from` tags.
fn sharegpt_turn(m: &Value) -> Value {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
    if role == "assistant"
        && let Some(calls) = m.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty())
    {
        // LLaMA-Factory's function_call value: {"name", "arguments"} with arguments as an object.
        let call = &calls[0]["function"];
        let arguments =
            call.get("arguments").and_then(Value::as_str).and_then(|a| serde_json::from_str::<Value>(a).ok()).unwrap_or(json!({}));
        return json!({"from": "function_call", "value": json!({"name": call.get("name"), "arguments": arguments}).to_string()});
    }
    let from = match role {
        "assistant" => "gpt",
        "tool" => "observation",
        _ => "human",
    };
    json!({"from": from, "value": content(m)})
}

/// One output line for a sample.
#[must_use]
pub fn record(s: &ExportSample, format: ExportFormat, mode: ReasoningMode, system: bool) -> Value {
    let tools = s.tools.clone();
    match format {
        ExportFormat::Messages | ExportFormat::Kd => {
            let mut messages = prompt_messages(s, system);
            messages.push(assistant_message(s, mode));
            let mut out = json!({"messages": messages});
            if let Some(t) = tools {
                out["tools"] = t;
            }
            out
        }
        ExportFormat::PromptCompletion => {
            let mut out = json!({"prompt": prompt_messages(s, system), "completion": [assistant_message(s, mode)]});
            if let Some(t) = tools {
                out["tools"] = t;
            }
            out
        }
        ExportFormat::Sharegpt => {
            let mut conversations: Vec<Value> = s.turns.iter().map(sharegpt_turn).collect();
            let mut last = assistant_message(s, if mode == ReasoningMode::Field { ReasoningMode::Inline } else { mode });
            // A final tool call stays a function_call turn; beside an answer, the answer is the turn.
            if !(s.tool_calls.is_some() && s.answer.is_empty())
                && let Some(m) = last.as_object_mut()
            {
                m.remove("tool_calls");
            }
            conversations.push(sharegpt_turn(&last));
            let mut out = json!({"conversations": conversations});
            if system && let Some(sys) = &s.system {
                out["system"] = json!(sys);
            }
            if let Some(t) = tools {
                // LLaMA-Factory reads tool definitions as a JSON string.
                out["tools"] = json!(t.to_string());
            }
            out
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
            let mut out = json!({"instruction": last_user, "input": "", "output": assistant_text(s, mode)});
            if system && let Some(sys) = &s.system {
                out["system"] = json!(sys);
            }
            if !history.is_empty() {
                out["history"] = json!(history);
            }
            out
        }
    }
}

/// The `dataset_info.json` LLaMA-Factory reads beside a ShareGPT export.
#[must_use]
pub fn dataset_info(name: &str, parts: &[(&str, &str)]) -> Value {
    let mut info = Map::new();
    for (part, file) in parts {
        info.insert(
            format!("{name}_{part}"),
            json!({
                "file_name": file,
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                         "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
            }),
        );
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
            tools: None,
            reasoning: Some("add them".into()),
            answer: "4".into(),
            tool_calls: None,
        }
    }

    #[test]
    fn reasoning_modes() {
        let s = sample();
        let inline = record(&s, ExportFormat::Messages, ReasoningMode::Inline, true);
        assert_eq!(inline["messages"][2]["content"], "<think>\nadd them\n</think>\n\n4");
        assert_eq!(inline["messages"][0]["role"], "system");
        let field = record(&s, ExportFormat::Messages, ReasoningMode::Field, false);
        assert_eq!(field["messages"][1]["content"], "4");
        assert_eq!(field["messages"][1]["reasoning_content"], "add them");
        assert_eq!(field["messages"].as_array().unwrap().len(), 2);
        let dropped = record(&s, ExportFormat::Alpaca, ReasoningMode::Drop, true);
        assert_eq!(dropped, json!({"instruction": "2+2?", "input": "", "output": "4", "system": "Be brief."}));
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
        let r = record(&s, ExportFormat::Sharegpt, ReasoningMode::Drop, true);
        let froms: Vec<&str> = r["conversations"].as_array().unwrap().iter().map(|t| t["from"].as_str().unwrap()).collect();
        assert_eq!(froms, ["human", "function_call", "observation", "gpt"]);
        assert_eq!(r["tools"], "[{\"name\":\"get\"}]");
        // Name before arguments, as LLaMA-Factory's own glaive data writes a function_call.
        assert_eq!(r["conversations"][1]["value"], "{\"name\":\"get\",\"arguments\":{\"city\":\"Paris\"}}");
        let pc = record(&sample(), ExportFormat::PromptCompletion, ReasoningMode::Inline, false);
        assert_eq!(pc["prompt"], json!([{"role": "user", "content": "2+2?"}]));
        assert_eq!(pc["completion"][0]["role"], "assistant");
        assert_eq!("sharegpt".parse::<ExportFormat>().unwrap(), ExportFormat::Sharegpt);
    }
}
