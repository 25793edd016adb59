//! A model's own chat template, rendered as Hugging Face transformers renders it.
//!
//! The template comes from `tokenizer_config.json` (`chat_template`, a string or a list of named
//! templates) or, as newer transformers save it, `chat_template.jinja`. It is rendered with
//! minijinja set up like transformers' jinja2 environment (`_compile_jinja_template` and
//! `apply_chat_template` in transformers 5): `trim_blocks`, `lstrip_blocks`, loop controls,
//! `raise_exception`, `tojson`, `strftime_now`, `namespace`, Python's string methods and Python's
//! way of printing values; the tokenizer's named special tokens (`bos_token`, `eos_token`, …) as
//! variables; messages with their `None` fields dropped and their reasoning under each of the
//! names templates read it by. `{% generation %}` blocks (TRL's training templates) mark the text
//! the loss is taken on, as transformers' `return_assistant_tokens_mask` does.

mod python;
mod training;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

pub use python::tojson;
pub use training::{Marking, TrainingText, assistant_mask};

/// The names a message's reasoning goes by, the first the one templates read (transformers'
/// `_REASONING_FIELDS`).
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// Where a `{% generation %}` block's output starts and ends in a rendering: Unicode
/// noncharacters, which are set aside for a program's internal use and are refused in input.
const GENERATION_START: char = '\u{FDD0}';
const GENERATION_END: char = '\u{FDD1}';
/// The filter a `{% generation %}` block becomes.
const GENERATION_FILTER: &str = "retort_generation_span";

/// Why a template could not be loaded or could not render a conversation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The model's tokenizer_config.json is not valid JSON: where, and serde's reason.
    #[error("{}:{line}:{column}: {reason}", path.display())]
    Config { path: PathBuf, line: usize, column: usize, reason: String },
    /// The model directory has neither template file.
    #[error("{} has no chat template: neither chat_template.jinja nor `chat_template` in tokenizer_config.json", dir.display())]
    NoTemplate { dir: PathBuf },
    /// The template does not compile, or fails while rendering: where, and jinja's reason.
    #[error("{origin}:{line}: {reason}")]
    Jinja { origin: String, line: usize, reason: String },
    /// The template called `raise_exception(message)`: it refuses the conversation, as it would
    /// under transformers (the message is the template's own).
    #[error("{origin}:{line}: the chat template refuses the conversation: {message}")]
    Raised { origin: String, line: usize, message: String },
    /// transformers' own words for it.
    #[error("Cannot apply chat template to an empty conversation. Provide at least one message.")]
    EmptyConversation,
    /// The conversation holds the markers retort puts around `{% generation %}` output.
    #[error("the conversation holds the Unicode noncharacter U+FDD0 or U+FDD1, which retort reserves to mark trained text")]
    ReservedMarker,
}

/// The message a template gave `raise_exception`, carried out of minijinja as the error's source.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// A rendering, with the byte ranges of its `{% generation %}` blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendering {
    pub text: String,
    pub generation: Vec<Range<usize>>,
}

pub struct ChatTemplate {
    /// The environment with the template compiled once: a training set renders it several
    /// times per conversation.
    env: minijinja::Environment<'static>,
    /// The file the template came from, for errors (`…/chat_template.jinja`, or
    /// `…/tokenizer_config.json` for a template kept there).
    origin: String,
    /// The tokenizer's named special tokens, passed to the template as transformers does.
    special_tokens: Vec<(&'static str, String)>,
    has_generation_blocks: bool,
}

/// The named special tokens transformers passes to every template (`SPECIAL_TOKENS_ATTRIBUTES`).
const SPECIAL_TOKENS: [&str; 7] = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

fn token_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `{% generation %}` … `{% endgeneration %}` as a filter block that wraps the block's output in
/// markers; whitespace control (`{%-`, `-%}`) and `trim_blocks` apply as to the original tags.
fn rewrite_generation_blocks(source: &str) -> (String, bool) {
    let open = regex::Regex::new(r"\{%([-+]?)\s*generation\s*([-+]?)%\}").expect("a valid regex");
    let close = regex::Regex::new(r"\{%([-+]?)\s*endgeneration\s*([-+]?)%\}").expect("a valid regex");
    // As transformers detects them (render_jinja_template).
    let has = regex::Regex::new(r"\{%-?\s*generation\s*-?%\}").expect("a valid regex").is_match(source);
    let source = open.replace_all(source, format!("{{%$1 filter {GENERATION_FILTER} $2%}}"));
    let source = close.replace_all(&source, "{%$1 endfilter $2%}");
    (source.into_owned(), has)
}

/// The conversation as transformers hands it to a template: keys whose value is null dropped
/// (`_normalize_chat_messages`), and reasoning under each of its names
/// (`_alias_reasoning_fields`: `thinking` first, the message's own keys, `reasoning_content`).
fn template_messages(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let Value::Object(m) = m else { return m.clone() };
            let m: Map<String, Value> = m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
            let Some(reasoning) = REASONING_FIELDS.iter().find_map(|k| m.get(*k)).cloned() else {
                return Value::Object(m);
            };
            let mut aliased = Map::new();
            aliased.insert("thinking".into(), reasoning.clone());
            for (k, v) in m {
                aliased.insert(k, v);
            }
            aliased.insert("reasoning_content".into(), reasoning);
            Value::Object(aliased)
        })
        .collect()
}

fn holds_marker(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains([GENERATION_START, GENERATION_END]),
        Value::Array(a) => a.iter().any(holds_marker),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains([GENERATION_START, GENERATION_END]) || holds_marker(v)),
        _ => false,
    }
}

impl ChatTemplate {
    /// Reads the template of the model directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TemplateError::Config {
                path: config_path.clone(),
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            })?,
            Err(_) => Value::Null,
        };
        let from_config = match config.get("chat_template") {
            Some(Value::String(t)) => Some(t.clone()),
            Some(Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .or_else(|| named.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        // transformers 5 prefers chat_template.jinja when both are present.
        let jinja_path = dir.join("chat_template.jinja");
        let (source, origin): (String, PathBuf) = match std::fs::read_to_string(&jinja_path) {
            Ok(t) => (t, jinja_path),
            Err(_) => match from_config {
                Some(t) => (t, config_path),
                None => {
                    return Err(TemplateError::NoTemplate { dir: dir.to_owned() });
                }
            },
        };
        let special_tokens = SPECIAL_TOKENS.iter().filter_map(|name| token_text(config.get(*name)).map(|t| (*name, t))).collect();
        Self::from_source(&source, origin.display().to_string(), special_tokens)
    }

    /// Compiles `source`; `origin` names it in errors.
    pub fn from_source(source: &str, origin: String, special_tokens: Vec<(&'static str, String)>) -> Result<Self, TemplateError> {
        let (source, has_generation_blocks) = rewrite_generation_blocks(source);
        let mut env = minijinja::Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError::Jinja { origin: origin.clone(), line: 0, reason: e.to_string() })?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python::format);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg.clone()).with_source(Raised(msg)))
        });
        env.add_function("strftime_now", python::strftime_now);
        env.add_filter("tojson", python::tojson);
        env.add_filter("string", python::string);
        env.add_test("sequence", python::is_sequence);
        env.add_test("iterable", python::is_iterable);
        env.add_filter(GENERATION_FILTER, |body: String| format!("{GENERATION_START}{body}{GENERATION_END}"));
        let mut template = Self { env, origin, special_tokens, has_generation_blocks };
        template.env.add_template_owned("chat", source).map_err(|e| template.error(&e, "does not compile"))?;
        Ok(template)
    }

    /// The file the template came from.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the template marks the trained text with `{% generation %}` blocks.
    #[must_use]
    pub fn has_generation_blocks(&self) -> bool {
        self.has_generation_blocks
    }

    #[must_use]
    pub fn eos_token(&self) -> &str {
        self.special_tokens.iter().find(|(n, _)| *n == "eos_token").map_or("", |(_, t)| t.as_str())
    }

    /// `e` located in the template's file; `failure` says what went wrong ("fails").
    fn error(&self, e: &minijinja::Error, failure: &str) -> TemplateError {
        let line = e.line().unwrap_or(0);
        let origin = self.origin.clone();
        if let Some(raised) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<Raised>()) {
            return TemplateError::Raised { origin, line, message: raised.0.clone() };
        }
        let mut reason = format!("the chat template {failure}: {}", e.kind());
        if let Some(detail) = e.detail() {
            reason = format!("{reason}: {detail}");
        }
        if let (Some(range), Some(source)) = (e.range(), e.template_source())
            && let Some(text) = source.get(range)
        {
            reason = format!("{reason} (at `{}`)", text.trim());
        }
        TemplateError::Jinja { origin, line, reason }
    }

    /// Renders a conversation, as `apply_chat_template(messages, tools=tools, tokenize=False,
    /// add_generation_prompt=...)` does.
    pub fn render(&self, messages: &[Value], tools: Option<&Value>, add_generation_prompt: bool) -> Result<String, TemplateError> {
        Ok(self.render_tracked(messages, tools, add_generation_prompt)?.text)
    }

    /// Renders a conversation and says where its `{% generation %}` blocks put their text.
    pub fn render_tracked(
        &self,
        messages: &[Value],
        tools: Option<&Value>,
        add_generation_prompt: bool,
    ) -> Result<Rendering, TemplateError> {
        if messages.is_empty() {
            return Err(TemplateError::EmptyConversation);
        }
        if messages.iter().any(holds_marker) || tools.is_some_and(holds_marker) {
            return Err(TemplateError::ReservedMarker);
        }
        let template = self.env.get_template("chat").map_err(|e| self.error(&e, "fails"))?;
        let mut context = Map::new();
        for (name, token) in &self.special_tokens {
            context.insert((*name).into(), json!(token));
        }
        context.insert("messages".into(), Value::Array(template_messages(messages)));
        context.insert("tools".into(), tools.cloned().unwrap_or(Value::Null));
        context.insert("documents".into(), Value::Null);
        context.insert("add_generation_prompt".into(), json!(add_generation_prompt));
        let marked = template.render(minijinja::Value::from(minijinja::value::Serde(&context))).map_err(|e| self.error(&e, "fails"))?;
        Ok(strip_markers(&marked))
    }
}

/// The text without its generation markers, and the byte ranges they enclosed.
fn strip_markers(marked: &str) -> Rendering {
    let mut text = String::with_capacity(marked.len());
    let mut generation = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for c in marked.chars() {
        match c {
            GENERATION_START => open.push(text.len()),
            GENERATION_END => {
                if let Some(start) = open.pop() {
                    // A block inside another counts once, as the outer one's text.
                    if open.is_empty() {
                        generation.push(start..text.len());
                    }
                }
            }
            c => text.push(c),
        }
    }
    Rendering { text, generation }
}

/// What of a conversation's tool use its rendering `rendered` leaves out: `(tools, calls)` —
/// whether a tool offered does not show (probed by its description, else its name: a name may
/// well occur in the talk) and whether a tool call among `messages` does not (by its function's
/// name).
#[must_use]
pub fn hidden_tool_use(rendered: &str, tools: Option<&Value>, messages: &[Value]) -> (bool, bool) {
    let missing = |values: Option<&Value>, field: &str| {
        values.and_then(Value::as_array).into_iter().flatten().any(|v| {
            let (f, name) = crate::ingest::tool_function(v);
            let probe = f.get(field).and_then(Value::as_str).or(name).unwrap_or_default();
            let probe: String = probe.chars().take(60).collect();
            !probe.is_empty() && !rendered.contains(&probe)
        })
    };
    (missing(tools, "description"), messages.iter().any(|m| missing(m.get("tool_calls"), "name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate::from_source(source, "chat_template.jinja".into(), vec![("eos_token", "</s>".into())]).unwrap()
    }

    #[test]
    fn generation_blocks_mark_the_trained_text() {
        let t = template(
            "{% for m in messages %}{{ m.role }}: {% if m.role == 'assistant' %}{% generation %}{{ m.content }}{{ eos_token }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}",
        );
        assert!(t.has_generation_blocks());
        let messages = [json!({"role": "user", "content": "hi"}), json!({"role": "assistant", "content": "hello"})];
        let r = t.render_tracked(&messages, None, false).unwrap();
        // As jinja2 renders it: trim_blocks eats the newline after `{% endif %}`.
        assert_eq!(r.text, "user: hiassistant: hello</s>");
        assert_eq!(&r.text[r.generation[0].clone()], "hello</s>");
        assert_eq!(t.render(&messages, None, false).unwrap(), r.text);
    }

    #[test]
    fn whitespace_control_on_generation_tags_applies_as_on_the_original() {
        let t = template("{% for m in messages %}\n  {%- generation -%}\n  [{{ m.content }}]\n  {%- endgeneration %}\n{% endfor %}");
        let r = t.render_tracked(&[json!({"role": "assistant", "content": "x"})], None, false).unwrap();
        assert_eq!(r.text, "[x]");
        assert_eq!(r.generation, vec![0..3]);
    }

    #[test]
    fn an_empty_conversation_is_refused_as_transformers_refuses_it() {
        let t = template("{{ messages[0]['role'] }}");
        let e = t.render(&[], None, true).unwrap_err();
        assert!(e.to_string().contains("Cannot apply chat template to an empty conversation"), "{e}");
    }

    #[test]
    fn a_model_directory_without_a_template_or_with_broken_json_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = ChatTemplate::load(dir.path()).err().unwrap();
        assert_eq!(e, TemplateError::NoTemplate { dir: dir.path().to_owned() });
        assert!(e.to_string().ends_with(" has no chat template: neither chat_template.jinja nor `chat_template` in tokenizer_config.json"));
        std::fs::write(dir.path().join("tokenizer_config.json"), "{\n  \"chat_template\": ,\n}").unwrap();
        let e = ChatTemplate::load(dir.path()).err().unwrap().to_string();
        let config = dir.path().join("tokenizer_config.json");
        assert_eq!(e, format!("{}:2:20: expected value at line 2 column 20", config.display()));
    }

    #[test]
    fn raise_exception_and_jinja_errors_name_the_file_and_line() {
        let t = template("{% if messages[0].role != 'user' %}\n{{ raise_exception('Conversation roles must alternate') }}\n{% endif %}");
        let e = t.render(&[json!({"role": "assistant", "content": "x"})], None, false).unwrap_err();
        assert_eq!(e.to_string(), "chat_template.jinja:2: the chat template refuses the conversation: Conversation roles must alternate");
        let t = template("line one\n{{ messages[0].content.nope.deeper }}");
        let e = t.render(&[json!({"role": "user", "content": "x"})], None, false).unwrap_err().to_string();
        assert!(e.starts_with("chat_template.jinja:2: the chat template fails: undefined value"), "{e}");
        let broken = ChatTemplate::from_source("{% if x %}", "model/chat_template.jinja".into(), Vec::new()).err().unwrap();
        assert!(
            broken.to_string().starts_with("model/chat_template.jinja:1: the chat template does not compile: syntax error"),
            "{broken}"
        );
    }

    #[test]
    fn messages_reach_the_template_as_transformers_passes_them() {
        let t = template("{% for m in messages %}{{ m | tojson }}\n{% endfor %}");
        let messages = [json!({"role": "assistant", "content": "4", "tool_calls": null, "reasoning_content": "add"})];
        assert_eq!(
            t.render(&messages, None, false).unwrap(),
            r#"{"thinking": "add", "role": "assistant", "content": "4", "reasoning_content": "add"}"#.to_owned() + "\n"
        );
    }
}
