//! Clean-up of an extracted LaTeX answer before parsing, ported step by step from math-verify's
//! `normalize_latex` (boxed contents, styling commands, "and"/"or" lists, percent words, units,
//! malformed `\frac12`), so that both sides of a comparison are read the way that checker reads them.

use std::fmt::Write as _;

pub(crate) use super::boxed::BoxedMode;
use super::boxed::{extract_boxed, is_word};
use super::scan::starts;
use super::units::strip_units;

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
        s = s.split("\\\\").enumerate().fold(String::with_capacity(s.len()), |mut out, (i, piece)| {
            if i > 0 {
                out.push_str(if piece.starts_with(|c: char| c.is_ascii_alphabetic()) { "\\" } else { "\\\\" });
            }
            out.push_str(piece);
            out
        });
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

fn replacement_at(chars: &[char], i: usize) -> Option<(usize, &'static str)> {
    for style in ["rm", "it", "bf"] {
        if starts(chars, i, &format!("\\math{style}")) {
            return Some((7, "\\text"));
        }
    }
    for style in ["normal", "bf", "it", "rm"] {
        if starts(chars, i, &format!("\\text{style}")) {
            return Some((5 + style.len(), "\\text"));
        }
    }
    for prefix in ['d', 't', 'c'] {
        if starts(chars, i, &format!("\\{prefix}frac")) {
            return Some((6, "\\frac"));
        }
    }
    if chars[i].is_whitespace() && chars.get(i + 1) == Some(&'.') {
        return Some((2, " 0."));
    }
    if starts(chars, i, "{.") {
        return Some((2, "{0."));
    }
    if starts(chars, i, "~=") {
        return Some((2, "\\approx"));
    }
    let j = skip_ws(chars, i);
    if chars.get(j) == Some(&'{') {
        let k = skip_ws(chars, j + 1);
        if chars.get(k) == Some(&',') {
            let m = skip_ws(chars, k + 1);
            if chars.get(m) == Some(&'}') {
                return Some((m + 1 - i, ","));
            }
        }
    }
    // "1 and 2", "1, or 2" -> "1, 2"
    if i == 0 || !chars[i - 1].is_ascii_alphabetic() {
        let j = skip_ws(chars, if chars[i] == ',' { i + 1 } else { i });
        for word in ["and", "or"] {
            let end = j + word.len();
            if starts(chars, j, word) && chars.get(end).is_none_or(|n| !n.is_ascii_alphabetic()) {
                return Some((end - i, ","));
            }
        }
    }
    let j = skip_ws(chars, if chars[i] == ',' { i + 1 } else { i });
    if starts(chars, j, "\\text{") {
        let k = skip_ws(chars, j + 6);
        for word in ["and", "or"] {
            if starts(chars, k, word) {
                let m = skip_ws(chars, k + word.len());
                if chars.get(m) == Some(&'}') {
                    return Some((m + 1 - i, ","));
                }
            }
        }
    }
    if chars[i] == '\\' && chars.get(i + 1).is_some_and(|n| n.is_whitespace()) && (i == 0 || chars[i - 1] != '\\') {
        return Some((2, " "));
    }
    if starts(chars, i, "infinity") {
        return Some((8, "\\infty"));
    }
    let j = if chars[i] == ',' { i + 1 } else { i };
    if starts(chars, j, "\\ldots") {
        return Some((j + 6 - i, " "));
    }
    for (word, in_text) in [("percentage", "\\text{percentage}"), ("percent", "\\text{percent}"), ("pct", "\\text{pct}")] {
        let j = skip_ws(chars, i);
        let boundary_before = j == 0 || !is_word(chars[j - 1]);
        if boundary_before && starts(chars, j, word) && chars.get(j + word.len()).is_none_or(|n| !is_word(*n)) {
            return Some((j + word.len() - i, "\\%"));
        }
        if starts(chars, i, in_text) {
            return Some((in_text.len(), "%"));
        }
    }
    if starts(chars, i, "inf") && (i == 0 || chars[i - 1] != '\\') && !starts(chars, i + 3, "inity") {
        return Some((3, "\\infty"));
    }
    if starts(chars, i, " sqrt") {
        return Some((5, "\\sqrt"));
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
fn fix_frac_digits(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        if starts(&chars, i, "\\frac") && !chars.get(i + 5).is_some_and(char::is_ascii_alphabetic) {
            let j = if chars.get(i + 5) == Some(&' ') { i + 6 } else { i + 5 };
            if chars.get(j).is_some_and(char::is_ascii_digit) {
                let k = if chars.get(j + 1) == Some(&' ') { j + 2 } else { j + 1 };
                let mut m = k;
                while m < chars.len() && chars[m].is_ascii_digit() {
                    m += 1;
                }
                if m > k {
                    let den: String = chars[k..m].iter().collect();
                    let _ = write!(out, "\\frac{{{}}}{{{den}}}", chars[j]);
                    i = m;
                    continue;
                }
            }
            if chars.get(j) == Some(&'{')
                && let Some(close) = (j + 1..chars.len()).find(|&k| chars[k] == '}')
                && !chars[j + 1..close].contains(&'{')
            {
                let k = if chars.get(close + 1) == Some(&' ') { close + 2 } else { close + 1 };
                if chars.get(k).is_some_and(char::is_ascii_digit) {
                    let num: String = chars[j + 1..close].iter().collect();
                    let _ = write!(out, "\\frac{{{num}}}{{{}}}", chars[k]);
                    i = k + 1;
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}
