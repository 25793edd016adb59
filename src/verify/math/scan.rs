//! Hand-written equivalents of math-verify's extraction regexes: math environments (`$..$`,
//! `\[..\]`, ...), plain numbers (`1,000.99`, `28 pct`) and plain expressions (`2/3`). They keep
//! the regexes' quirks (which digit groups count as one number, which delimiters may span lines)
//! because the verdicts must agree with that checker.

use super::node::Num;

pub(crate) struct Part {
    pub(crate) content: String,
    pub(crate) percent: bool,
    /// Read as the text of a `\boxed{...}` match: only the last box (and its neighbours) counts.
    pub(crate) boxed_last: bool,
}

pub(crate) enum Found {
    /// One or more environments joined by "and" / "or" / ",".
    Latex(Vec<Part>),
    Number {
        value: Num,
        text: String,
        percent: bool,
    },
    Expr(String),
    Letter(char),
}

pub(crate) struct Match {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) found: Found,
}

pub(crate) fn starts(c: &[char], i: usize, pat: &str) -> bool {
    (i..).zip(pat.chars()).all(|(k, p)| c.get(k) == Some(&p))
}

pub(crate) fn starts_ci(c: &[char], i: usize, pat: &str) -> bool {
    (i..).zip(pat.chars()).all(|(k, p)| c.get(k).is_some_and(|x| x.eq_ignore_ascii_case(&p)))
}

fn find(c: &[char], from: usize, pat: &str) -> Option<usize> {
    (from..c.len()).find(|&k| starts(c, k, pat))
}

pub(crate) fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

fn text(c: &[char], a: usize, b: usize) -> String {
    c[a..b].iter().collect()
}

/// A math environment starting exactly at `i`: (content start, content end, end). Inline forms
/// may not span lines; display forms may.
fn env_at(chars: &[char], i: usize, plain: bool) -> Option<(usize, usize, usize)> {
    let prev = i.checked_sub(1).map(|k| chars[k]);
    let not_escaped = prev != Some('\\');
    if starts(chars, i, "$$")
        && not_escaped
        && let Some(j) = find(chars, i + 2, "$$").filter(|&j| j > i + 2 && chars[j - 1] != '\\')
    {
        return Some((i + 2, j, j + 2));
    }
    if starts(chars, i, "\\[")
        && not_escaped
        && let Some(j) = find(chars, i + 2, "\\]").filter(|&j| j > i + 2 && chars[j - 1] != '\\')
    {
        return Some((i + 2, j, j + 2));
    }
    if chars.get(i) == Some(&'$') && !prev.is_some_and(|p| p == '\\' || p.is_ascii_digit()) {
        let mut k = i + 1;
        while k < chars.len() {
            if k > i + 1 && chars[k] == '$' && chars[k - 1] != '\\' {
                return Some((i + 1, k, k + 1));
            }
            if chars[k] == '\\' && chars.get(k + 1) == Some(&'$') {
                k += 2;
                continue;
            }
            if chars[k] == '\n' || chars[k] == '$' {
                break;
            }
            k += 1;
        }
    }
    if starts(chars, i, "\\(")
        && not_escaped
        && let Some(j) = find(chars, i + 2, "\\)").filter(|&j| j > i + 2 && chars[j - 1] != '\\' && !chars[i + 2..j].contains(&'\n'))
    {
        return Some((i + 2, j, j + 2));
    }
    if chars.get(i).is_some_and(|x| x.is_whitespace()) && chars.get(i + 1) == Some(&'[') {
        let mut k = i + 2;
        while k < chars.len() && !matches!(chars[k], '\n' | ']' | '[') {
            k += 1;
        }
        if k > i + 2 && chars.get(k) == Some(&']') && chars.get(k + 1).is_some_and(|x| x.is_whitespace()) {
            return Some((i + 2, k, k + 2));
        }
    }
    if plain {
        let j = if chars.get(i) == Some(&'-') { i + 1 } else { i };
        if starts(chars, j, "\\frac{") {
            let a = simple_number(chars, j + 6).filter(|&a| chars.get(a) == Some(&'}') && chars.get(a + 1) == Some(&'{'))?;
            let b = simple_number(chars, a + 2).filter(|&b| chars.get(b) == Some(&'}'))?;
            return Some((i, b + 1, b + 1));
        }
    }
    None
}

/// `-?\d+(?:[.,]\d+)?`, returning its end.
fn simple_number(c: &[char], i: usize) -> Option<usize> {
    let mut k = if c.get(i) == Some(&'-') { i + 1 } else { i };
    let d = k;
    while k < c.len() && c[k].is_ascii_digit() {
        k += 1;
    }
    if k == d {
        return None;
    }
    if matches!(c.get(k), Some('.' | ',')) && c.get(k + 1).is_some_and(char::is_ascii_digit) {
        k += 1;
        while k < c.len() && c[k].is_ascii_digit() {
            k += 1;
        }
    }
    Some(k)
}

fn boxed_inside(content: &[char]) -> bool {
    (0..content.len()).any(|k| starts(content, k, "\\boxed{") && content[k + 7..].iter().skip(1).any(|&x| x == '}'))
}

/// A percent word or sign after an answer: `$28$ %`, `28 pct`.
fn percent_after(c: &[char], i: usize, allow_backslash: bool) -> Option<usize> {
    let k = skip_ws(c, i);
    if allow_backslash && starts(c, k, "\\%") {
        return Some(k + 2);
    }
    if c.get(k) == Some(&'%') {
        return Some(k + 1);
    }
    for word in ["percentage", "percent", "pct"] {
        if starts_ci(c, k, word) && c[k].eq_ignore_ascii_case(&'p') && starts(c, k + 1, &word[1..]) {
            return Some(k + word.len());
        }
    }
    None
}

/// An environment at `i` (with percent suffix) followed by up to five more joined by
/// "and" / "or" / ",": `$1$ and $2$` is one answer with two parts.
pub(crate) fn env_group_at(c: &[char], i: usize, boxed: bool) -> Option<(usize, Vec<Part>)> {
    let one = |at: usize| -> Option<(usize, Part)> {
        let (cs, ce, end) = env_at(c, at, !boxed)?;
        if boxed && !boxed_inside(&c[cs..ce]) {
            return None;
        }
        let pct_end = percent_after(c, end, true);
        Some((pct_end.unwrap_or(end), Part { content: text(c, cs, ce), percent: pct_end.is_some(), boxed_last: false }))
    };
    let (mut end, first) = one(i)?;
    let mut parts = vec![first];
    for _ in 0..5 {
        let k = skip_ws(c, end);
        let after_sep = [",and", "and", ",or", "or", ","].iter().find(|s| starts(c, k, s)).map(|s| k + s.chars().count());
        let Some(next) = after_sep.and_then(|k2| one(skip_ws(c, k2))) else { break };
        end = next.0;
        parts.push(next.1);
    }
    Some((end, parts))
}

/// All environments, left to right and non-overlapping, like `re.finditer`.
pub(crate) fn find_envs(c: &[char], boxed: bool) -> Vec<Match> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if let Some((end, parts)) = env_group_at(c, i, boxed) {
            out.push(Match { start: i, end, found: Found::Latex(parts) });
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

const CURRENCY: &str = "$€£¥₹₽₪₩₫฿₡₢₣₤₥₦₧₨₭₮₯₰₱₲₳₴₵₶₷₸₺₻₼₾₿";

fn is_expr_char(x: char) -> bool {
    x.is_ascii_digit() || x.is_whitespace() || is_op(x) || x == '.'
}

fn is_op(x: char) -> bool {
    matches!(x, '+' | '-' | '*' | '×' | '/' | '^' | '(' | ')' | '÷')
}

/// A number at `i`: thousands groups (`1 000`, `7,425,000.5`), a decimal point or comma
/// (`1000,99`), a bare fraction (`.4`) or an integer, with an optional percent word.
fn number_at(chars: &[char], i: usize) -> Option<(usize, Num, String, bool)> {
    let neg = chars.get(i) == Some(&'-');
    let d = if neg { i + 1 } else { i };
    let mut run = d;
    while run < chars.len() && chars[run].is_ascii_digit() {
        run += 1;
    }
    let digits = |a: usize, b: usize| b <= chars.len() && (a..b).all(|k| chars[k].is_ascii_digit());
    let mut int_end = None;
    let mut decimal: Option<(usize, usize)> = None;
    if run > d && run - d <= 3 && chars[d] != '0' {
        let mut k = run;
        while matches!(chars.get(k), Some(' ' | ',')) && digits(k + 1, k + 4) {
            k += 4;
        }
        if k > run {
            int_end = Some(k);
            if chars.get(k) == Some(&'.') && chars.get(k + 1).is_some_and(char::is_ascii_digit) {
                let mut e = k + 1;
                while e < chars.len() && chars[e].is_ascii_digit() {
                    e += 1;
                }
                decimal = Some((k, e));
            }
        }
    }
    if int_end.is_none() && run > d && matches!(chars.get(run), Some('.' | ',')) && chars.get(run + 1).is_some_and(char::is_ascii_digit) {
        let mut e = run + 1;
        while e < chars.len() && chars[e].is_ascii_digit() {
            e += 1;
        }
        int_end = Some(run);
        decimal = Some((run, e));
    }
    let (int_text, start_frac) = match int_end {
        Some(e) => (text(chars, i, e), decimal),
        None if run > d => (text(chars, i, run), None),
        None if !neg && chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
            let mut e = i + 1;
            while e < chars.len() && chars[e].is_ascii_digit() {
                e += 1;
            }
            (String::new(), Some((i, e)))
        }
        None => return None,
    };
    let end = start_frac.map_or(int_end.unwrap_or(run), |f| f.1);
    let mut int_clean: String = int_text.chars().filter(|x| *x != ',' && *x != ' ').collect();
    let sign = if int_clean.starts_with('-') { "-" } else { "" };
    int_clean = int_clean.trim_start_matches('-').trim_start_matches('0').to_string();
    if int_clean.is_empty() {
        int_clean = "0".into();
    }
    let frac_text = start_frac.map(|(a, b)| format!(".{}", text(chars, a + 1, b))).unwrap_or_default();
    let number_text = format!("{sign}{int_clean}{frac_text}");
    let value = super::build::number_from_text(number_text.trim_start_matches('-'))?;
    let value = if sign.is_empty() { value } else { value.negated() };
    let pct = percent_after(chars, end, false);
    Some((pct.unwrap_or(end), value, number_text, pct.is_some()))
}

/// An arithmetic expression at `i` (`2/3`, `(9+1)`): digits and operators with at least one
/// operator, which must be followed by punctuation, space, `)`, `$` or the end.
fn expr_at(c: &[char], i: usize) -> Option<(usize, String)> {
    let mut j = i;
    if c.get(j) == Some(&'-') {
        j += 1;
    }
    if c.get(j) == Some(&'(') {
        j += 1;
    }
    if c.get(j) == Some(&'-') {
        j += 1;
    }
    if !c.get(j).is_some_and(char::is_ascii_digit) {
        return None;
    }
    let body = j + 1;
    let mut run_end = body;
    while run_end < c.len() && is_expr_char(c[run_end]) {
        run_end += 1;
    }
    for e in (body + 2..=run_end).rev() {
        if !(body..e - 1).any(|k| is_op(c[k])) {
            continue;
        }
        for close in [true, false] {
            let mut e2 = e;
            if close {
                if c.get(e2) != Some(&')') {
                    continue;
                }
                e2 += 1;
            }
            let e3 = if starts(c, e2, "**") { e2 + 2 } else { e2 };
            match c.get(e3) {
                None => return Some((e3, text(c, i, e2))),
                Some(x) if matches!(x, '.' | ',' | ':' | ')' | '$') || x.is_whitespace() => return Some((e3 + 1, text(c, i, e2))),
                _ => {}
            }
        }
    }
    None
}

/// `(?:^|\s|=)(?:\*\*)?` then an expression or a (currency-prefixed) number. `p` is the prefix
/// position; the prefix is empty only at the start of the text.
pub(crate) fn expr_or_number_at(c: &[char], p: usize, want_expr: bool, want_number: bool) -> Option<Match> {
    let mut starts_at = Vec::with_capacity(2);
    if p == 0 {
        starts_at.push(0);
    }
    if c.get(p).is_some_and(|x| x.is_whitespace() || *x == '=') {
        starts_at.push(p + 1);
    }
    for s in starts_at {
        let s = if starts(c, s, "**") { s + 2 } else { s };
        if want_expr && let Some((end, expr)) = expr_at(c, s) {
            return Some(Match { start: p, end, found: Found::Expr(expr) });
        }
        if want_number {
            let n = if c.get(s).is_some_and(|x| CURRENCY.contains(*x)) { s + 1 } else { s };
            if let Some((end, value, text, percent)) = number_at(c, n) {
                return Some(Match { start: p, end, found: Found::Number { value, text, percent } });
            }
        }
    }
    None
}

/// Non-overlapping plain expressions, then plain numbers (two separate scans, as two regexes).
pub(crate) fn find_exprs(c: &[char]) -> Vec<Match> {
    let mut out = Vec::new();
    for (want_expr, want_number) in [(true, false), (false, true)] {
        let mut i = 0;
        while i < c.len() {
            if let Some(m) = expr_or_number_at(c, i, want_expr, want_number) {
                i = m.end.max(i + 1);
                out.push(m);
            } else {
                i += 1;
            }
        }
    }
    out
}
