//! Reading fields out of a JSON record with errors that name the field and what was wrong.

use serde_json::{Map, Value};

use super::RecordError;

/// What a JSON value is, in the words an error message uses.
#[must_use]
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The record as an object, or an error saying what it was instead.
pub fn as_object(v: Value) -> Result<Map<String, Value>, RecordError> {
    match v {
        Value::Object(map) => Ok(map),
        other => Err(RecordError::NotObject { found: describe(&other) }),
    }
}

/// The first of `keys` present and not null, with its key.
#[must_use]
pub fn first_present<'a>(obj: &'a Map<String, Value>, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// A string field; `Ok(None)` when absent or null, an error when of another type.
pub fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, RecordError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(RecordError::field_type(key, "a string", other)),
    }
}

/// A required string field.
pub fn req_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, RecordError> {
    opt_str(obj, key)?.ok_or_else(|| RecordError::missing(key))
}

/// Text content of a chat message: a string, or an array of parts whose `text` parts are joined
/// (the OpenAI multi-part shape); null is empty.
pub fn content_text(v: Option<&Value>, path: &str) -> Result<String, RecordError> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (i, part) in parts.iter().enumerate() {
                match part {
                    Value::String(s) => text.push_str(s),
                    Value::Object(p) => {
                        if let Some(Value::String(s)) = p.get("text") {
                            text.push_str(s);
                        }
                    }
                    other => return Err(RecordError::value_type(format!("{path}[{i}]"), "a string or an object", other)),
                }
            }
            Ok(text)
        }
        Some(other) => Err(RecordError::value_type(path, "a string or an array of parts", other)),
    }
}

/// The object's fields other than `skip`, or `None` when nothing is left.
#[must_use]
pub fn rest(obj: &Map<String, Value>, skip: &[&str]) -> Option<Map<String, Value>> {
    let rest: Map<String, Value> =
        obj.iter().filter(|(k, v)| !skip.contains(&k.as_str()) && !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!rest.is_empty()).then_some(rest)
}

/// A JSON object literal as a map, for tests of the parsers.
///
/// # Panics
/// When `v` is not an object: a mistake in the test itself.
#[cfg(test)]
#[must_use]
pub fn test_object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}
