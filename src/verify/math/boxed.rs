//! The contents of `\boxed{...}` / `\fbox{...}`: all boxes of a math environment, or the last
//! box of a text together with the boxes written next to it (`\boxed{1} and \boxed{2}`).

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoxedMode {
    /// Every `\boxed{}` of the text, joined by commas: an answer written as several boxes.
    All,
    /// The last `\boxed{}`, plus earlier ones that are close by or separated by "and", "," ...
    Last,
}

/// Contents of the `\boxed{...}` / `\fbox{...}` groups, searched from the right.
pub(crate) fn extract_boxed(text: &str, mode: BoxedMode) -> String {
    let bytes = text.as_bytes();
    let mut results: Vec<String> = Vec::new();
    let mut current = text.len();
    let mut max_pos = text.len();
    let mut last_start: Option<usize> = None;
    loop {
        let boxed = text[..current].rfind("\\boxed");
        let fbox = text[..current].rfind("\\fbox");
        let (start, cmd_len) = match (boxed, fbox) {
            (None, None) => break,
            (Some(b), Some(f)) if f > b => (f, 5),
            (Some(b), _) => (b, 6),
            (None, Some(f)) => (f, 5),
        };
        let mut next = start + cmd_len;
        while next < max_pos && bytes[next].is_ascii_whitespace() {
            next += 1;
        }
        if next >= max_pos {
            break;
        }
        if bytes[next] != b'{' {
            if results.is_empty() {
                results.push(text[next..].to_string());
            }
            break;
        }
        let Some(close) = matching_brace(bytes, next, max_pos) else {
            if results.is_empty() {
                results.push(text[next..].to_string());
            }
            break;
        };
        let content = text[next + 1..close].trim().to_string();
        if mode == BoxedMode::Last
            && let Some(later_start) = last_start
        {
            let between = &text[close + 1..later_start];
            let later = results.last().map_or("", String::as_str);
            let near = between.chars().count() < 10;
            let separated = content != later && between.chars().count() < 70 && has_separator(between);
            if !(near || separated) {
                break;
            }
        }
        if results.last() != Some(&content) {
            results.push(content);
        }
        last_start = Some(start);
        max_pos = start;
        current = start;
    }
    if results.is_empty() {
        return text.to_string();
    }
    results.reverse();
    results.join(",")
}

fn matching_brace(bytes: &[u8], open: usize, max_pos: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (i, &b) in bytes.iter().enumerate().take(max_pos).skip(open + 1) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

pub(crate) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `\b(and|or)\b`, `,` or `;`.
fn has_separator(s: &str) -> bool {
    if s.contains(',') || s.contains(';') {
        return true;
    }
    let chars: Vec<char> = s.chars().collect();
    ["and", "or"].iter().any(|w| {
        let w: Vec<char> = w.chars().collect();
        (0..chars.len()).any(|i| {
            chars[i..].starts_with(&w) && (i == 0 || !is_word(chars[i - 1])) && chars.get(i + w.len()).is_none_or(|c| !is_word(*c))
        })
    })
}
