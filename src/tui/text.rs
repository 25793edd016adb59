//! Teacher text made safe and laid out for the terminal.
//!
//! Text from teachers is untrusted: control characters and escape sequences are shown as
//! visible symbols (ESC as `␛`, other C0 controls as their control pictures), never sent to the
//! terminal. Lines are wrapped by display width, so CJK and very long lines keep the layout.

use unicode_width::UnicodeWidthChar;

use crate::ingest::{tool_arguments, tool_function};

/// Replaces control characters with visible stand-ins; tabs become four spaces.
#[must_use]
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            '\r' => {}
            c if (c as u32) < 0x20 => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
            '\u{7f}' => out.push('␡'),
            c if ('\u{80}'..='\u{9f}').contains(&c) => out.push('�'),
            // Bidi overrides and isolates can reorder what the terminal shows.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.push('�'),
            c => out.push(c),
        }
    }
    out
}

/// Text for a terminal line by line (the CLI's reports, error messages): control characters
/// and escape sequences as visible stand-ins, as [`sanitize`] shows them, newlines and tabs
/// kept. Stored text (a teacher's name, a server's error, a prompt) is untrusted: an OSC 0 in
/// it would retitle the terminal, an OSC 52 write the clipboard.
#[must_use]
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        for part in body.split('\t').enumerate() {
            if part.0 > 0 {
                out.push('\t');
            }
            out.push_str(&sanitize(part.1));
        }
        out.push_str(end);
    }
    std::borrow::Cow::Owned(out)
}

/// Wraps sanitized text into lines of at most `width` display columns, breaking at spaces
/// where it can and inside a word only when the word alone is wider than the line.
#[must_use]
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        let mut line = String::new();
        let mut used = 0;
        for c in raw.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && !line.is_empty() {
                // Carry the unfinished word over when the line has an earlier space.
                if let Some(i) = line.rfind(' ').filter(|&i| i > 0 && c != ' ') {
                    let tail = line.split_off(i + 1);
                    lines.push(std::mem::replace(&mut line, tail));
                    used = line.chars().map(|c| c.width().unwrap_or(0)).sum();
                } else {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
                if c == ' ' && line.is_empty() {
                    continue;
                }
            }
            line.push(c);
            used += w;
        }
        lines.push(line);
    }
    lines
}

/// A token's place on a line: its first character, its length in characters, its position.
pub type TokenPlace = (usize, usize, usize);

/// Lays tokens' texts out as lines of at most `width` columns, as [`wrap`] does (an unfinished
/// word carried to the next line), keeping where each token is: per line, its text and every
/// token's first character, length in characters and position (an index into `texts`). A
/// newline shows as `↵` at the end of its line, so a token of only newlines can be seen.
#[must_use]
pub fn wrap_tokens(texts: &[String], width: usize) -> Vec<(String, Vec<TokenPlace>)> {
    let width = width.max(1);
    let mut lines: Vec<Vec<(char, usize)>> = Vec::new();
    let mut line: Vec<(char, usize)> = Vec::new();
    let mut used = 0;
    let columns = |l: &[(char, usize)]| l.iter().map(|(c, _)| c.width().unwrap_or(0)).sum::<usize>();
    for (position, text) in texts.iter().enumerate() {
        for c in sanitize(text).chars() {
            let (shown, w) = if c == '\n' { ('↵', 1) } else { (c, c.width().unwrap_or(0)) };
            // A space may hang past the edge: a token of spaces keeps a place on the line.
            if used + w > width && !line.is_empty() && shown != ' ' {
                if let Some(i) = line.iter().rposition(|&(c, _)| c == ' ').filter(|&i| i > 0 && c != '\n') {
                    let tail = line.split_off(i + 1);
                    lines.push(std::mem::replace(&mut line, tail));
                    used = columns(&line);
                } else {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
            }
            line.push((shown, position));
            used += w;
            if c == '\n' {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| {
            let text: String = l.iter().map(|(c, _)| *c).collect();
            let mut spans: Vec<TokenPlace> = Vec::new();
            for (i, &(_, position)) in l.iter().enumerate() {
                match spans.last_mut() {
                    Some(last) if last.2 == position => last.1 += 1,
                    _ => spans.push((i, 1, position)),
                }
            }
            (text, spans)
        })
        .collect()
}

/// Cuts sanitized text to `width` columns on one line, with `…` when cut.
#[must_use]
pub fn truncate(text: &str, width: usize) -> String {
    let flat = || text.chars().map(|c| if c == '\n' { ' ' } else { c });
    if flat().map(|c| c.width().unwrap_or(0)).sum::<usize>() <= width {
        return flat().collect();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in flat() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Tool calls (OpenAI shape) as `→ name(arguments)` lines.
#[must_use]
pub fn tool_call_lines(calls: Option<&serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let Some(Value::Array(calls)) = calls else { return Vec::new() };
    calls
        .iter()
        .map(|call| {
            let (f, name) = tool_function(call);
            format!("→ {}({})", name.unwrap_or("?"), tool_arguments(f))
        })
        .collect()
}

/// Tool definitions (OpenAI's `{"type": "function", "function": {..}}` or bare) as
/// `name(param, optional?) — description` lines.
#[must_use]
pub fn tool_lines(tools: Option<&serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let Some(Value::Array(tools)) = tools else { return Vec::new() };
    tools
        .iter()
        .map(|tool| {
            let (f, name) = tool_function(tool);
            let name = name.unwrap_or("?");
            let required: Vec<&str> = f
                .pointer("/parameters/required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let params: Vec<String> = f
                .pointer("/parameters/properties")
                .and_then(Value::as_object)
                .map(|props| props.keys().map(|k| if required.contains(&k.as_str()) { k.clone() } else { format!("{k}?") }).collect())
                .unwrap_or_default();
            match f.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{name}({}) — {d}", params.join(", ")),
                _ => format!("{name}({})", params.join(", ")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_sent() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{7}\tb"), "a␛[31mred␇    b");
        assert_eq!(sanitize("x\u{202e}y"), "x�y");
    }

    #[test]
    fn wrapping_counts_display_width() {
        assert_eq!(wrap("已知集合已知", 4), vec!["已知", "集合", "已知"]);
        assert_eq!(wrap("abcdef\ngh", 4), vec!["abcd", "ef", "gh"]);
        assert_eq!(wrap("the quick brown fox", 10), vec!["the quick ", "brown fox"]);
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("hi", 6), "hi");
        assert_eq!(truncate("集合集合", 5), "集合…");
    }

    #[test]
    fn tokens_wrap_and_keep_their_places() {
        let texts: Vec<String> = ["The", " quick", " brown", "\n\n", "fox", "\u{1b}"].map(str::to_owned).to_vec();
        let lines = wrap_tokens(&texts, 10);
        let shown: Vec<&str> = lines.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(shown, vec!["The quick ", "brown↵", "↵", "fox␛"]);
        assert_eq!(lines[0].1, vec![(0, 3, 0), (3, 6, 1), (9, 1, 2)]);
        // A space past the edge hangs there, kept on its line.
        let spaced = wrap_tokens(&["abcd".to_owned(), " ".to_owned(), "e".to_owned()], 4);
        assert_eq!(spaced.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), vec!["abcd ", "e"]);
        assert_eq!(lines[1].1, vec![(0, 5, 2), (5, 1, 3)]);
        assert_eq!(lines[2].1, vec![(0, 1, 3)]);
        assert_eq!(lines[3].1, vec![(0, 3, 4), (3, 1, 5)]);
        assert_eq!(wrap_tokens(&[], 10), vec![(String::new(), Vec::new())]);
        // An unfinished word goes to the next line whole.
        let words: Vec<String> = ["ab", " cd", "ef"].map(str::to_owned).to_vec();
        let lines = wrap_tokens(&words, 6);
        assert_eq!(lines.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), vec!["ab ", "cdef"]);
        assert_eq!(lines[1].1, vec![(0, 2, 1), (2, 2, 2)]);
    }
}
