//! Clean-up of an extracted LaTeX answer before parsing, ported step by step from math-verify's
//! `normalize_latex` (boxed contents, styling commands, "and"/"or" lists, percent words, units,
//! malformed `\frac12`), so that both sides of a comparison are read the way that checker reads them.

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoxedMode {
    /// Every `\boxed{}` of the text, joined by commas: an answer written as several boxes.
    All,
    /// The last `\boxed{}`, plus earlier ones that are close by or separated by "and", "," ...
    Last,
}

pub(crate) fn normalize(text: &str, boxed: BoxedMode) -> String {
    let mut s = extract_boxed(text, boxed);
    s = basic_latex(&s);
    s = strip_units(&s);
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    if s == "0.5" {
        s = "\\frac{1}{2}".into();
    }
    fix_malformed(&s).trim().to_string()
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

fn is_word(c: char) -> bool {
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
            chars[i..].starts_with(&w)
                && (i == 0 || !is_word(chars[i - 1]))
                && chars.get(i + w.len()).is_none_or(|c| !is_word(*c))
        })
    })
}

fn basic_latex(text: &str) -> String {
    let mut s = text.replace("\\mathrm{T}", "T").replace("\\mathrm{d}", "d").replace("{\\rm d}", "d");
    s = s.replace("\\left[\\begin{matrix}", "\\begin{bmatrix}").replace("\\end{matrix}\\right]", "\\end{bmatrix}");
    for cmd in ["\\mleft", "\\mright", "\\left", "\\right"] {
        s = remove_sizing(&s, cmd);
    }
    for junk in ["\\mathrm{th}", "\\displaystyle", "\\$", "$"] {
        s = s.replace(junk, "");
    }
    s = remove_chars(&s);
    s = replace_words(&s);
    s = s.replace(['\n', '\t'], " ");
    if !s.contains("matrix") {
        // A doubled backslash before a command (`\\frac`) is an escaping accident.
        while let Some(i) = s.find("\\\\").filter(|&i| s[i + 2..].starts_with(|c: char| c.is_ascii_alphabetic())) {
            s.remove(i);
        }
    }
    s
}

/// `\left(` becomes `(`; `\left.` and commands that merely start with "left" are kept.
fn remove_sizing(s: &str, cmd: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(cmd) {
        let after = &rest[i + cmd.len()..];
        out.push_str(&rest[..i]);
        if !after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '.') && !after.is_empty() {
            rest = after;
        } else {
            out.push_str(cmd);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Drops `\!` (with following spaces), empty `\text{}` and unescaped quotes.
fn remove_chars(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && c.get(i + 1) == Some(&'!') {
            i += 2;
            while i < c.len() && c[i].is_whitespace() {
                i += 1;
            }
            continue;
        }
        if starts(&c, i, "\\text") {
            let mut j = i + 5;
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            if c.get(j) == Some(&'{') {
                j += 1;
                while j < c.len() && c[j].is_whitespace() {
                    j += 1;
                }
                if c.get(j) == Some(&'}') {
                    i = j + 1;
                    continue;
                }
            }
        }
        if (c[i] == '"' || c[i] == '\'') && (i == 0 || c[i - 1] != '\\') {
            i += 1;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

fn starts(c: &[char], i: usize, pat: &str) -> bool {
    let mut k = i;
    for p in pat.chars() {
        if c.get(k) != Some(&p) {
            return false;
        }
        k += 1;
    }
    true
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

/// One left-to-right pass of the reference's replacement table; at each position the first
/// pattern that matches wins, exactly like its regex alternation.
fn replace_words(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if let Some((len, rep)) = replacement_at(&c, i) {
            out.push_str(rep);
            i += len.max(1);
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn replacement_at(c: &[char], i: usize) -> Option<(usize, &'static str)> {
    for style in ["rm", "it", "bf"] {
        if starts(c, i, &format!("\\math{style}")) {
            return Some((7, "\\text"));
        }
    }
    for style in ["normal", "bf", "it", "rm"] {
        if starts(c, i, &format!("\\text{style}")) {
            return Some((5 + style.len(), "\\text"));
        }
    }
    for prefix in ['d', 't', 'c'] {
        if starts(c, i, &format!("\\{prefix}frac")) {
            return Some((6, "\\frac"));
        }
    }
    if c[i].is_whitespace() && c.get(i + 1) == Some(&'.') {
        return Some((2, " 0."));
    }
    if starts(c, i, "{.") {
        return Some((2, "{0."));
    }
    if starts(c, i, "~=") {
        return Some((2, "\\approx"));
    }
    let j = skip_ws(c, i);
    if c.get(j) == Some(&'{') {
        let k = skip_ws(c, j + 1);
        if c.get(k) == Some(&',') {
            let m = skip_ws(c, k + 1);
            if c.get(m) == Some(&'}') {
                return Some((m + 1 - i, ","));
            }
        }
    }
    // "1 and 2", "1, or 2" -> "1, 2"
    if i == 0 || !c[i - 1].is_ascii_alphabetic() {
        let j = skip_ws(c, if c[i] == ',' { i + 1 } else { i });
        for word in ["and", "or"] {
            let end = j + word.len();
            if starts(c, j, word) && c.get(end).is_none_or(|n| !n.is_ascii_alphabetic()) {
                return Some((end - i, ","));
            }
        }
    }
    let j = skip_ws(c, if c[i] == ',' { i + 1 } else { i });
    if starts(c, j, "\\text{") {
        let k = skip_ws(c, j + 6);
        for word in ["and", "or"] {
            if starts(c, k, word) {
                let m = skip_ws(c, k + word.len());
                if c.get(m) == Some(&'}') {
                    return Some((m + 1 - i, ","));
                }
            }
        }
    }
    if c[i] == '\\' && c.get(i + 1).is_some_and(|n| n.is_whitespace()) && (i == 0 || c[i - 1] != '\\') {
        return Some((2, " "));
    }
    if starts(c, i, "infinity") {
        return Some((8, "\\infty"));
    }
    let j = if c[i] == ',' { i + 1 } else { i };
    if starts(c, j, "\\ldots") {
        return Some((j + 6 - i, " "));
    }
    for (word, in_text) in [("percentage", "\\text{percentage}"), ("percent", "\\text{percent}"), ("pct", "\\text{pct}")] {
        let j = skip_ws(c, i);
        let boundary_before = j == 0 || !is_word(c[j - 1]);
        if boundary_before && starts(c, j, word) && c.get(j + word.len()).is_none_or(|n| !is_word(*n)) {
            return Some((j + word.len() - i, "\\%"));
        }
        if starts(c, i, in_text) {
            return Some((in_text.len(), "%"));
        }
    }
    if starts(c, i, "inf") && (i == 0 || c[i - 1] != '\\') && !starts(c, i + 3, "inity") {
        return Some((3, "\\infty"));
    }
    if starts(c, i, " sqrt") {
        return Some((5, "\\sqrt"));
    }
    None
}

const UNITS: &[&str] = &[
    "integerpoint", "feet", "sue", "digit", "pound", "meal", "edge", "student", "children ticket", "multiple", "east", "degree", "mph", "kmph", "ft",
    "m square", " m east", "sq m", "deg", "mile", "q .", "monkey", "prime", "ratio", "profit of rs", "rd", "o", "gm", "p . m", "lb", "tile", "per",
    "dm", "lt", "gain", "ab", "way", "west", "a .", "b .", "c .", "d .", "e .", "f .", "g .", "h .", "t", "h", "no change", "men", "soldier", "pie",
    "bc", "excess", "st", "inches", "noon", "cent", "by", "gal", "kmh", "c", "acre", "rise", "a . m", "th", "π r 2", "sq", "mark", "l", "toy",
    "coin", "sq . m", "gallon", "° f", "profit", "minw", "yr", "women", "am", "pm", "hr", "cu cm", "square", "v â € ™", "are", "rupee", "rounds",
    "cubic", "cc", "mtr", "s", "ohm", "number", "kmph", "day", "hour", "minute", "min", "second", "man", "woman", "sec", "cube", "mt", "sq inch",
    "mp", "∏ cm ³", "hectare", "more", "sec", "unit", "cu . m", "cm 2", "rs .", "rs", "kg", "g", "month", "km", "m", "cm", "mm", "apple", "liter",
    "loss", "yard", "pure", "year", "increase", "decrease", "d", "less", "Surface", "litre", "pi sq m", "s .", "metre", "meter", "inch",
];

/// Removes a trailing `\text{...}` unit (`15\mbox{ cm}^2`) and trailing unit words (`125 miles`).
fn strip_units(text: &str) -> String {
    let mut s = text.to_string();
    if let Some(cut) = trailing_text_unit(&s) {
        let shortened = s[..cut].trim().to_string();
        if !shortened.is_empty() {
            s = shortened;
        }
    }
    for _ in 0..2 {
        if let Some(cut) = trailing_unit_word(&s)
            && cut > 0
        {
            s.truncate(cut);
        }
    }
    s
}

/// Start of the first `\text{`/`\mbox{` when the text ends in the closing brace (optionally
/// followed by `^2` or `{^2}`).
fn trailing_text_unit(s: &str) -> Option<usize> {
    let first = [s.find("\\text{"), s.find("\\mbox{")].into_iter().flatten().min()?;
    let b = s.as_bytes();
    let n = b.len();
    let close = if s.ends_with('}') {
        n - 1
    } else if n >= 3 && b[n - 2] == b'^' && b[n - 1].is_ascii_digit() && b[n - 3] == b'}' {
        n - 3
    } else {
        return None;
    };
    (close > first + 5).then_some(first)
}

/// Byte length to keep when the text ends with a unit word preceded by a digit, `}` or space.
fn trailing_unit_word(s: &str) -> Option<usize> {
    let trimmed = s.trim_end();
    let idx: Vec<(usize, char)> = trimmed.char_indices().collect();
    for (k, &(pos, ch)) in idx.iter().enumerate() {
        if !(ch.is_ascii_digit() || ch == '}' || ch.is_whitespace()) {
            continue;
        }
        let after = idx.get(k + 1).map_or(trimmed.len(), |p| p.0);
        let rest = trimmed[after..].trim_start();
        if rest.is_empty() || rest.len() > 24 {
            continue;
        }
        let is_unit = UNITS.iter().any(|u| rest == *u || rest.strip_prefix(*u).is_some_and(|tail| tail == "s" || tail == "es"));
        if is_unit {
            return Some(pos + ch.len_utf8());
        }
    }
    None
}

/// `\frac12` -> `\frac{1}{2}`, `\frac{3}3`, `a^(b)` -> `a^{b}`, `sqrt(x)`, and a bare `a/b`.
fn fix_malformed(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(i) = out.find("^(").or_else(|| out.find("^ (")) {
        let open = i + out[i..].find('(').unwrap_or(1);
        let Some(close) = out[open..].find(')').map(|k| open + k) else { break };
        out = format!("{}^{{{}}}{}", &out[..i], &out[open + 1..close], &out[close + 1..]);
    }
    let mut search = 0;
    while let Some(k) = out[search..].find("sqrt(").map(|k| search + k) {
        let Some(close) = out[k..].find(')').map(|c| k + c) else { break };
        let slash = if k > 0 && out.as_bytes()[k - 1] == b'\\' { "" } else { "\\" };
        out = format!("{}{slash}sqrt{{{}}}{}", &out[..k], &out[k + 5..close], &out[close + 1..]);
        search = k + 1;
    }
    out = fix_frac_digits(&out);
    out = out.replace(" sqrt", "\\sqrt");
    if let Some((a, b)) = out.split_once('/')
        && let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>())
        && out == format!("{a}/{b}")
    {
        return format!("\\frac{{{a}}}{{{b}}}");
    }
    out
}

/// `\frac 1 23` -> `\frac{1}{23}` and `\frac{3}3` -> `\frac{3}{3}` (the reference reads the
/// whole trailing digit run as the denominator).
fn fix_frac_digits(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if starts(&c, i, "\\frac") && !c.get(i + 5).is_some_and(char::is_ascii_alphabetic) {
            let j = if c.get(i + 5) == Some(&' ') { i + 6 } else { i + 5 };
            if c.get(j).is_some_and(char::is_ascii_digit) {
                let k = if c.get(j + 1) == Some(&' ') { j + 2 } else { j + 1 };
                let mut m = k;
                while m < c.len() && c[m].is_ascii_digit() {
                    m += 1;
                }
                if m > k {
                    let den: String = c[k..m].iter().collect();
                    out.push_str(&format!("\\frac{{{}}}{{{den}}}", c[j]));
                    i = m;
                    continue;
                }
            }
            if c.get(j) == Some(&'{')
                && let Some(close) = (j + 1..c.len()).find(|&k| c[k] == '}')
                && !c[j + 1..close].contains(&'{')
            {
                let k = if c.get(close + 1) == Some(&' ') { close + 2 } else { close + 1 };
                if c.get(k).is_some_and(char::is_ascii_digit) {
                    let num: String = c[j + 1..close].iter().collect();
                    out.push_str(&format!("\\frac{{{num}}}{{{}}}", c[k]));
                    i = k + 1;
                    continue;
                }
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}
