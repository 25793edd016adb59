//! A model's own chat template, rendered as Hugging Face renders it, to check an export against.
//!
//! The template comes from `tokenizer_config.json` (`chat_template`, a string or a list of named
//! templates) or, as newer transformers save it, `chat_template.jinja`. It is rendered with
//! minijinja set up like transformers' jinja2 environment: `trim_blocks`, `lstrip_blocks`,
//! `raise_exception`, `tojson`, `strftime_now`, and Python's string methods.

use std::path::Path;

use serde_json::Value;

pub struct ChatTemplate {
    /// The environment with the template compiled once: a training set renders it several
    /// times per conversation.
    env: minijinja::Environment<'static>,
    bos_token: String,
    eos_token: String,
}

fn token_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    /// Reads the template of the model directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", config_path.display()))?,
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
        let jinja_path = dir.join("chat_template.jinja");
        let source = match from_config {
            Some(t) => t,
            None => std::fs::read_to_string(&jinja_path).map_err(|_| {
                format!("{} has no chat template: neither `chat_template` in tokenizer_config.json nor chat_template.jinja", dir.display())
            })?,
        };
        let mut env = minijinja::Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_format: String| "26 Jul 2024".to_owned());
        env.add_template_owned("chat", source).map_err(|e| format!("{}: the chat template does not render: {e}", dir.display()))?;
        let template = Self { env, bos_token: token_text(config.get("bos_token")), eos_token: token_text(config.get("eos_token")) };
        template.render(&[], None, false).map_err(|e| format!("{}: the chat template does not render: {e}", dir.display()))?;
        Ok(template)
    }

    #[must_use]
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders a conversation.
    pub fn render(&self, messages: &[Value], tools: Option<&Value>, add_generation_prompt: bool) -> Result<String, String> {
        let template = self.env.get_template("chat").map_err(|e| e.to_string())?;
        template
            .render(minijinja::context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                tools => tools.map(|t| minijinja::Value::from(minijinja::value::Serde(t))),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| e.to_string())
    }
}
