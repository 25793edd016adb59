//! What transformers' jinja2 environment does that minijinja does differently: values printed
//! as Python prints them (`True`, `None`, `{'a': 1}`), Python's `json.dumps` for `tojson`, jinja2's
//! `sequence` test, `strftime_now`.
//!
//! Each difference here is one a chat template in the wild runs into: a template that prints a
//! boolean argument, or `tool_call.arguments | string`, renders Python's spelling under
//! transformers, and a student must be trained on the text it sees at inference.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// `str(value)` in Python: what `{{ value }}` and `| string` write.
#[must_use]
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_owned(),
        _ => py_repr(v),
    }
}

/// `repr(value)` in Python: how a value inside a list or dict prints.
#[must_use]
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number => {
            if v.is_integer() {
                let _ = write!(out, "{v}");
            } else {
                out.push_str(&py_float(f64::try_from(v.clone()).unwrap_or(f64::NAN)));
            }
        }
        ValueKind::String => write_str_repr(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = v.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &item);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = v.try_iter() {
                for (i, key) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &key);
                    out.push_str(": ");
                    write_repr(out, &v.get_item(&key).unwrap_or_default());
                }
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Python's `repr` of a string: single quotes unless the text holds one and no double quote.
fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                let _ = match n {
                    0..=0xff => write!(out, "\\x{n:02x}"),
                    0x100..=0xffff => write!(out, "\\u{n:04x}"),
                    _ => write!(out, "\\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for the characters text actually holds: control characters,
/// separators other than the space, and the invisible format characters are escaped.
fn printable(c: char) -> bool {
    !matches!(c as u32,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x3000 | 0xd800..=0xdfff | 0xfeff | 0xfff9..=0xfffb)
}

/// Python's `repr` of a float: the shortest text that reads back, fixed between 1e-4 and 1e16,
/// else with a signed exponent of at least two digits.
#[must_use]
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let magnitude = f.abs();
    if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
        let text = format!("{f}");
        return if text.contains('.') { text } else { format!("{text}.0") };
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// The output formatter: `{{ value }}` writes `str(value)`, as jinja2 does.
pub fn format(out: &mut minijinja::Output, _state: &mut minijinja::State, value: &Value) -> Result<(), Error> {
    out.write_str(&py_str(value)).map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}

/// jinja2's `string` filter: `str(value)`, a string as it is.
#[must_use]
#[allow(clippy::needless_pass_by_value)] // minijinja hands filters their values by value
pub fn string(value: Value) -> Value {
    if value.kind() == ValueKind::String { value } else { Value::from(py_str(&value)) }
}

/// jinja2's `sequence` test: anything with a length and items, strings and mappings included.
#[must_use]
#[allow(clippy::needless_pass_by_value)]
pub fn is_sequence(value: Value) -> bool {
    matches!(value.kind(), ValueKind::Undefined | ValueKind::String | ValueKind::Seq | ValueKind::Map)
}

/// jinja2's `iterable` test: `iter(value)` works — not for none, numbers or booleans (minijinja
/// iterates none as empty).
#[must_use]
#[allow(clippy::needless_pass_by_value)]
pub fn is_iterable(value: Value) -> bool {
    matches!(value.kind(), ValueKind::Undefined | ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable)
}

/// `strftime_now(format)`: the local time now, as Python's `datetime.now().strftime` writes it
/// (templates such as Llama 3.1's print today's date into the system prompt). chrono and Python
/// share C's directives; one chrono does not know is an error, not another text.
#[allow(clippy::needless_pass_by_value)]
pub fn strftime_now(format: String) -> Result<String, Error> {
    let mut out = String::new();
    write!(out, "{}", chrono::Local::now().format(&format)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now({format:?}): a directive retort's renderer does not write as Python does"),
        )
    })?;
    Ok(out)
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
/// indent=None, separators=None, sort_keys=False)`, with Python's separators and no HTML
/// escaping. minijinja's own writes no spaces and escapes `<`, `>`, `&` and `'`, so tool
/// definitions would render unlike transformers and vLLM render them, and a model would be
/// trained on text it never sees at inference.
#[allow(clippy::needless_pass_by_value)] // minijinja hands a filter its keyword arguments by value
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let fail = |e: &dyn std::fmt::Display| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}"));
    let indent: Option<Value> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    if separators.is_some_and(|s| !s.is_none()) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson(separators=...) is not supported by retort's renderer: it would render other text than transformers",
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> minijinja::Environment<'static> {
        let mut env = minijinja::Environment::new();
        env.add_filter("tojson", tojson);
        env.add_filter("string", string);
        env.add_test("sequence", is_sequence);
        env.add_test("iterable", is_iterable);
        env.set_formatter(format);
        env
    }

    fn render(source: &str, value: &serde_json::Value) -> String {
        env().render_str(source, minijinja::context! { v => Value::from(minijinja::value::Serde(value)) }).unwrap()
    }

    #[test]
    fn tojson_writes_what_pythons_json_dumps_writes() {
        // Keys in the dataset's order, not sorted: Python's dicts keep insertion order.
        let tools = serde_json::json!([{"name": "f", "description": "user's <b> & ü",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]);
        // Each expected string is Python's json.dumps of the same list.
        assert_eq!(
            render("{{ v | tojson }}", &tools),
            r#"[{"name": "f", "description": "user's <b> & ü", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]"#
        );
        assert_eq!(
            render("{{ v | tojson(ensure_ascii=true) }}", &tools),
            r#"[{"name": "f", "description": "user's <b> & \u00fc", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]"#
        );
        assert_eq!(
            render("{{ v | tojson(sort_keys=true) }}", &tools),
            r#"[{"description": "user's <b> & ü", "name": "f", "parameters": {"properties": {"x": {"type": "integer"}}, "required": ["x"], "type": "object"}}]"#
        );
        assert_eq!(render("{{ v[0].parameters.required | tojson(indent=2) }}", &tools), "[\n  \"x\"\n]");
        assert_eq!(render("{{ [1.5, 2, none, true] | tojson }}", &tools), "[1.5, 2, null, true]");
    }

    #[test]
    fn values_print_as_python_prints_them() {
        let v = serde_json::json!({"city": "Paris", "n": 2, "ok": true, "none": null, "x": 0.5, "list": ["it's", "a\nb"]});
        // Each expected string is Python's str() of the same value.
        assert_eq!(render("{{ v }}", &v), r#"{'city': 'Paris', 'n': 2, 'ok': True, 'none': None, 'x': 0.5, 'list': ["it's", 'a\nb']}"#);
        assert_eq!(render("{{ v.ok }} {{ v.none }} {{ v.missing }}|", &v), "True None |");
        assert_eq!(render("{{ v.list | string }}", &v), r#"["it's", 'a\nb']"#);
        assert_eq!(render("{{ v.city | string }}", &v), "Paris");
        assert_eq!(render("{{ v.city is sequence }} {{ v is sequence }} {{ v.n is sequence }}", &v), "True True False");
        assert_eq!(render("{{ v.none is iterable }} {{ v.list is iterable }} {{ v.missing is iterable }}", &v), "False True True");
    }

    #[test]
    fn strftime_writes_cs_directives_and_refuses_others() {
        let today = strftime_now("%d %b %Y".into()).unwrap();
        assert_eq!(today, chrono::Local::now().format("%d %b %Y").to_string());
        assert!(strftime_now("%Q".into()).is_err());
    }

    #[test]
    fn floats_print_as_pythons_repr() {
        for (f, python) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (-0.0, "-0.0"),
            (1e-4, "0.0001"),
        ] {
            assert_eq!(py_float(f), python, "{f}");
        }
    }
}
