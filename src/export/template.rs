//! A model's own chat template, rendered as Hugging Face renders it, to check an export against.
//!
//! The template comes from `tokenizer_config.json` (`chat_template`, a string or a list of named
//! templates) or, as newer transformers save it, `chat_template.jinja`. It is rendered with
//! minijinja set up like transformers' jinja2 environment: `trim_blocks`, `lstrip_blocks`,
//! `raise_exception`, `tojson`, `strftime_now`, and Python's string methods.

use std::fmt::Write as _;
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

/// Python's `json.dumps` separators without an indent: `", "` between items, `": "` after keys.
struct PythonSeparators;

impl serde_json::ser::Formatter for PythonSeparators {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// transformers' `tojson`, which replaces jinja's: `json.dumps(x, ensure_ascii=False,
/// indent=None, sort_keys=False)`, with Python's separators and no HTML escaping. minijinja's
/// own writes no spaces and escapes `<`, `>`, `&` and `'`, so tool definitions would render
/// unlike transformers and vLLM render them, and a model would be trained on text it never sees
/// at inference.
#[allow(clippy::needless_pass_by_value)] // minijinja hands a filter its keyword arguments by value
fn tojson(value: &minijinja::Value, kwargs: minijinja::value::Kwargs) -> Result<String, minijinja::Error> {
    let fail = |e: &dyn std::fmt::Display| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("tojson: {e}"));
    let indent: Option<minijinja::Value> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    // Keys in the order the dataset gave them, as Python's dicts keep them.
    let mut json = serde_json::to_value(value).map_err(|e| fail(&e))?;
    if sort_keys.unwrap_or(false) {
        json.sort_all_objects();
    }
    let mut out = Vec::new();
    match indent.filter(|i| !i.is_none()) {
        None => serde::Serialize::serialize(&json, &mut serde_json::Serializer::with_formatter(&mut out, PythonSeparators)),
        Some(i) => {
            // An int counts spaces; a string is the indent itself, as in Python.
            let unit = match i.as_str() {
                Some(s) => s.to_owned(),
                None => " ".repeat(usize::try_from(i).map_err(|e| fail(&e))?),
            };
            let pretty = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
            serde::Serialize::serialize(&json, &mut serde_json::Serializer::with_formatter(&mut out, pretty))
        }
    }
    .map_err(|e| fail(&e))?;
    let text = String::from_utf8(out).map_err(|e| fail(&e))?;
    if !ensure_ascii.unwrap_or(false) {
        return Ok(text);
    }
    // ensure_ascii=True: every non-ASCII character as \uXXXX (UTF-16 units, surrogate pairs).
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(ascii, "\\u{u:04x}");
            }
        }
    }
    Ok(ascii)
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
        env.add_filter("tojson", tojson);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, tools: &Value) -> String {
        let mut env = minijinja::Environment::new();
        env.add_filter("tojson", tojson);
        env.render_str(source, minijinja::context! { tools => minijinja::Value::from(minijinja::value::Serde(tools)) }).unwrap()
    }

    #[test]
    fn tojson_writes_what_pythons_json_dumps_writes() {
        // Keys in the dataset's order, not sorted: Python's dicts keep insertion order.
        let tools = serde_json::json!([{"name": "f", "description": "user's <b> & ü",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]);
        // Each expected string is Python's json.dumps of the same list.
        assert_eq!(
            render("{{ tools | tojson }}", &tools),
            r#"[{"name": "f", "description": "user's <b> & ü", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]"#
        );
        assert_eq!(
            render("{{ tools | tojson(ensure_ascii=true) }}", &tools),
            r#"[{"name": "f", "description": "user's <b> & \u00fc", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]"#
        );
        assert_eq!(
            render("{{ tools | tojson(sort_keys=true) }}", &tools),
            r#"[{"description": "user's <b> & ü", "name": "f", "parameters": {"properties": {"x": {"type": "integer"}}, "required": ["x"], "type": "object"}}]"#
        );
        assert_eq!(render("{{ tools[0].parameters.required | tojson(indent=2) }}", &tools), "[\n  \"x\"\n]");
        assert_eq!(render("{{ [1.5, 2, none, true] | tojson }}", &tools), "[1.5, 2, null, true]");
    }
}
