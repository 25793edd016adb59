//! Where in a record's text a field is: a reader's error names the field (`messages[0].content`
//! must be a string), this finds its byte offset so the error can name the column too.
//!
//! The record is already known to be well-formed JSON (serde_json parsed it): the scan only
//! walks strings and brackets to the path's value.

/// One step of a field path: `key` or `[index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `messages[0].content` as steps; `None` for text that is not a path.
fn steps(path: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() && out.is_empty() {
            return None;
        }
        if !key.is_empty() {
            if !key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                return None;
            }
            out.push(Step::Key(key.to_owned()));
        }
        while !rest.is_empty() {
            let (n, after) = rest.split_once(']')?;
            out.push(Step::Index(n.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('[') {
                return None;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The offset just past the string starting at `i` (its opening quote).
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The offset just past the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> usize {
    let mut i = i;
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                if depth == 0 {
                    return i;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' | b':' if depth == 0 => return i,
            c if depth == 0 && c.is_ascii_whitespace() => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The offset of the value at `path` inside the value starting at `i`, as deep as it goes:
/// `(offset, steps found)`.
fn find(b: &[u8], i: usize, path: &[Step]) -> (usize, usize) {
    let i = skip_ws(b, i);
    let Some((step, rest)) = path.split_first() else { return (i, 0) };
    let (open, close) = match step {
        Step::Key(_) => (b'{', b'}'),
        Step::Index(_) => (b'[', b']'),
    };
    if b.get(i) != Some(&open) {
        return (i, 0);
    }
    let mut j = skip_ws(b, i + 1);
    let mut index = 0usize;
    while j < b.len() && b[j] != close {
        let value = if let Step::Key(want) = step {
            let end = skip_string(b, j);
            let key: Option<String> = serde_json::from_slice(&b[j..end]).ok();
            let colon = skip_ws(b, end);
            let value = skip_ws(b, colon + 1);
            if key.as_deref() == Some(want.as_str()) {
                let (at, found) = find(b, value, rest);
                return (at, found + 1);
            }
            value
        } else {
            if *step == Step::Index(index) {
                let (at, found) = find(b, j, rest);
                return (at, found + 1);
            }
            j
        };
        j = skip_ws(b, skip_value(b, value));
        if b.get(j) == Some(&b',') {
            j = skip_ws(b, j + 1);
        }
        index += 1;
    }
    (i, 0)
}

/// Where the error `message` about the record `bytes` points: the byte offset of the deepest
/// field it names (in backticks) that the record has; `None` when it names none (the record as a
/// whole is at fault, or a field it lacks).
#[must_use]
pub fn field_offset(bytes: &[u8], message: &str) -> Option<usize> {
    let missing: Option<&str> = message.split("missing field `").nth(1).and_then(|m| m.split('`').next());
    let start = skip_ws(bytes, 0);
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| Some(*name) != missing)
        .filter_map(steps)
        .map(|path| find(bytes, start, &path))
        .filter(|(_, found)| *found > 0)
        .max_by_key(|(_, found)| *found)
        .map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(record: &str, message: &str) -> Option<usize> {
        field_offset(record.as_bytes(), message)
    }

    #[test]
    fn the_deepest_field_named_is_found() {
        let r = r#"{"instruction": "c", "input": "", "output": 7}"#;
        assert_eq!(at(r, "field `output` must be a string, found a number"), r.find('7'));
        let m = r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": {"x": 1}}]}"#;
        assert_eq!(at(m, "`messages[1].content` must be a string or an array of parts"), m.find("{\"x\""));
        // A field the record lacks: the object that lacks it.
        assert_eq!(at(m, "`messages[0]`: missing field `weight`"), m.find("{\"role\": \"user\""));
        assert_eq!(at(m, "missing field `prompt`"), None);
        // Keys with escapes, strings holding brackets and quotes.
        let tricky = r#"{"a\"b": "]}", "list": [ "[", {"k": "}"}, 5 ]}"#;
        assert_eq!(at(tricky, "`list[2]` is wrong"), tricky.find('5'));
        assert_eq!(at(tricky, "`list[1].k` is wrong"), tricky.find("\"}\"}"));
        assert_eq!(at(tricky, "use `--format` or `####`"), None);
    }
}
