//! Finding the final answer in a trace. Candidates are gathered in math-verify's priority order
//! (boxed and "final answer is ... I hope" first, then "final answer ... is", "answer:",
//! "answer", then any math environment or number); inside a priority level the rightmost match
//! is tried first and the first one that parses wins. On top of that, retort-specific forms come
//! first: a Sky-T1 solution block or the text after `</think>` is searched instead of the whole
//! trace, GSM8K's `#### 18` line is taken as is, and a bare short answer (`\frac{1}{3}`, `18`) is
//! read whole.

use super::build::make_set;
use super::latex::parse_latex;
use super::node::Node;
use super::normalize::{BoxedMode, normalize};
use super::scan::{self, Found, Match, Part, skip_ws, starts, starts_ci};

/// What was read from one side of a comparison.
pub(crate) struct Answer {
    /// The parsed answer and the normalized text it came from.
    pub(crate) parsed: Option<(Node, String)>,
    /// Other readings of an ambiguous bare answer: `-2,1` is the decimal -2.1 (European comma)
    /// and the list {-2, 1}; either may match.
    pub(crate) alternates: Vec<Node>,
    /// The first candidate's normalized text, parsed or not: two unparseable answers still match
    /// when they are spelled the same (`12:00` and `12:00`).
    pub(crate) fallback: Option<String>,
}

pub(crate) fn find_answer(raw: &str) -> Answer {
    let focused = focus(raw);
    let answer = find_in(focused);
    // A truncated solution block without an answer: the thoughts may still state one.
    if answer.parsed.is_none() && focused.len() < raw.len() {
        let whole = find_in(raw);
        if whole.parsed.is_some() {
            return whole;
        }
    }
    answer
}

fn find_in(text: &str) -> Answer {
    let c: Vec<char> = text.chars().collect();
    let mut fallback = None;
    for (group, all_readings) in candidate_groups(text, &c) {
        let mut parsed: Option<(Node, String)> = None;
        let mut alternates = Vec::new();
        for m in group {
            let (node, text) = interpret(&m.found);
            if fallback.is_none() && !text.trim().is_empty() {
                fallback = Some(text.trim().to_string());
            }
            match (node, &parsed) {
                (Some(node), None) => parsed = Some((node, text)),
                (Some(node), Some(_)) => alternates.push(node),
                (None, _) => {}
            }
            if parsed.is_some() && !all_readings {
                break;
            }
        }
        if parsed.is_some() {
            return Answer { parsed, alternates, fallback };
        }
    }
    Answer { parsed: None, alternates: Vec::new(), fallback }
}

/// The part of a trace that holds the final answer: the last Sky-T1 solution block, else the
/// text after `</think>`, else everything.
fn focus(raw: &str) -> &str {
    if let Some(i) = raw.rfind("<|begin_of_solution|>") {
        let body = &raw[i + "<|begin_of_solution|>".len()..];
        let body = body.find("<|end_of_solution|>").map_or(body, |e| &body[..e]);
        if !body.trim().is_empty() {
            return body;
        }
    }
    if let Some(i) = raw.rfind("</think>") {
        let after = &raw[i + "</think>".len()..];
        if after.chars().any(|c| c.is_ascii_alphanumeric()) {
            return after;
        }
    }
    raw
}

/// Candidate groups in priority order; the flag marks groups whose every reading is kept.
fn candidate_groups(text: &str, c: &[char]) -> Vec<(Vec<Match>, bool)> {
    let mut groups = Vec::new();
    // GSM8K's `#### 18`; a markdown heading (`#### Step 2`) is not an answer line.
    if let Some(i) = text.rfind("####") {
        let line = text[i + 4..].lines().next().unwrap_or("").trim();
        let line_chars: Vec<char> = line.chars().collect();
        let numeric = scan::expr_or_number_at(&line_chars, 0, true, true).is_some_and(|m| skip_ws(&line_chars, m.end) >= line_chars.len());
        if !line.is_empty() && (numeric || is_bare(line)) {
            groups.push((bare_candidates(line), true));
        }
    }
    if is_bare(text) {
        groups.push((bare_candidates(text.trim()), true));
    }
    let mut by_priority: [Vec<Match>; 5] = Default::default();
    by_priority[0].extend(scan::find_envs(c, true));
    if let Some(m) = plain_boxed(c) {
        by_priority[0].push(m);
    }
    anchored(c, &mut by_priority);
    by_priority[4].extend(scan::find_envs(c, false));
    by_priority[4].extend(scan::find_exprs(c));
    for mut group in by_priority {
        group.sort_by(|a, b| b.end.cmp(&a.end).then(a.start.cmp(&b.start)));
        groups.push((group, false));
    }
    if let Some(m) = last_choice_letter(c) {
        groups.push((vec![m], false));
    }
    let short = text.trim();
    if !short.is_empty() && short.chars().count() <= 200 && !short.contains('\n') {
        groups.push((vec![Match { start: 0, end: c.len(), found: Found::Latex(vec![part(short)]) }], false));
    }
    groups
}

fn part(content: &str) -> Part {
    Part { content: content.to_string(), percent: false, boxed_last: false }
}

/// A whole text that is itself an answer: one line of math without prose words
/// (`\frac{1}{3}`, `x = 2`, `\text{(C)}`, `1,000`).
fn is_bare(text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 1000 || t.contains('\n') || t.contains("\\boxed") || t.contains("\\fbox") {
        return false;
    }
    if t.contains("\\(") || t.contains("\\[") || t.replace("\\$", "").contains('$') || t.to_lowercase().contains("answer") {
        return false;
    }
    // Letters that are not part of a command or of a \text{...} argument.
    let mut prose = String::new();
    let mut chars = t.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            let mut name = String::new();
            while let Some(&n) = chars.peek().filter(|n| n.is_ascii_alphabetic()) {
                name.push(n);
                chars.next();
            }
            let takes_text =
                ["text", "mathrm", "mbox", "textbf", "textit", "operatorname", "begin", "end", "mathbb", "textnormal", "mathbf"];
            if takes_text.contains(&name.as_str()) && chars.peek() == Some(&'{') {
                let mut depth = 0;
                for n in chars.by_ref() {
                    depth += i32::from(n == '{') - i32::from(n == '}');
                    if depth == 0 {
                        break;
                    }
                }
            }
            prose.push(' ');
        } else {
            prose.push(if ch.is_ascii_alphabetic() { ch } else { ' ' });
        }
    }
    !prose.split_whitespace().any(|w| w.len() >= 3)
}

/// A bare answer is a choice letter (`(B)`), a number (with its separators), a plain expression or
/// a LaTeX answer; a number written with a comma is also read as LaTeX, where the comma separates
/// a list.
fn bare_candidates(text: &str) -> Vec<Match> {
    let c: Vec<char> = text.chars().collect();
    let letter: Vec<char> = c.iter().copied().filter(|x| !matches!(x, '(' | ')' | '.' | '*' | ' ')).collect();
    if let [l @ 'A'..='E'] = letter[..] {
        return vec![Match { start: 0, end: c.len(), found: Found::Letter(l) }];
    }
    let whole = Match { start: 0, end: c.len(), found: Found::Latex(vec![part(text)]) };
    match scan::expr_or_number_at(&c, 0, true, true).filter(|m| skip_ws(&c, m.end) >= c.len()) {
        Some(m) if text.contains(',') => vec![m, whole],
        Some(m) => vec![m],
        None => vec![whole],
    }
}

/// `\boxed{` (or `\fbox{`) through the last `}` of the text, read in "last box" mode; a
/// brace-less `\boxed 5` runs to the end of its line.
fn plain_boxed(c: &[char]) -> Option<Match> {
    let braced = (0..c.len()).find(|&k| starts(c, k, "\\boxed{") || starts(c, k, "\\fbox{"));
    if let Some(start) = braced
        && let Some(end) = (start + 7..c.len()).rev().find(|&k| c[k] == '}')
    {
        let content: String = c[start..=end].iter().collect();
        return Some(Match { start, end: end + 1, found: Found::Latex(vec![Part { content, percent: false, boxed_last: true }]) });
    }
    let start = (0..c.len()).rev().find(|&k| starts(c, k, "\\boxed") && c.get(k + 6).is_some_and(|x| *x == ' '))?;
    let end = (start..c.len()).find(|&k| c[k] == '\n' || c[k] == '$').unwrap_or(c.len());
    let content: String = c[start..end].iter().collect::<String>().trim_end().trim_end_matches('.').to_string();
    Some(Match { start, end, found: Found::Latex(vec![Part { content, percent: false, boxed_last: true }]) })
}

/// Matches introduced by "final answer is", "final answer ... is", "answer:" and "answer",
/// into priority slots 0 to 3.
fn anchored(c: &[char], slots: &mut [Vec<Match>; 5]) {
    let mut i = 0;
    while i < c.len() {
        if starts_ci(c, i, "answer") {
            let colon = c.get(i + 6) == Some(&':');
            let slot = if colon { 2 } else { 3 };
            let from = i + 6 + usize::from(colon);
            if let Some(m) = latex_after(c, i, from, 50) {
                slots[slot].push(m);
            }
            if let Some(m) = expr_after_answer(c, i, from) {
                slots[slot].push(m);
            }
            if let Some(m) = letter_after(c, i, from, 50) {
                slots[slot].push(m);
            }
        }
        if starts_ci(c, i, "final answer") {
            final_answer(c, i, slots);
        }
        i += 1;
    }
}

fn final_answer(chars: &[char], i: usize, slots: &mut [Vec<Match>; 5]) {
    // "final answer is $x$. I hope"
    if starts_ci(chars, i, "final answer is") {
        let mut k = i + 15;
        if chars.get(k) == Some(&':') {
            k += 1;
        }
        let k2 = skip_ws(chars, k);
        let mut found: Option<(usize, Found)> = scan::env_group_at(chars, k2, false).map(|(e, p)| (e, Found::Latex(p)));
        if found.is_none() {
            found = (k..=k2).rev().find_map(|p| scan::expr_or_number_at(chars, p, true, true)).map(|m| (m.end, m.found));
        }
        if let Some((mut e, f)) = found {
            if chars.get(e) == Some(&'.') {
                e += 1;
            }
            if chars.get(e).is_some_and(|x| x.is_whitespace()) {
                e += 1;
            }
            if starts(chars, e, "I hope") {
                slots[0].push(Match { start: i, end: e + 6, found: f });
            }
        }
    }
    // "final answer ... is X"
    for gap in 0..=100 {
        let k = i + 12 + gap;
        if k >= chars.len() {
            break;
        }
        if !chars[k].is_whitespace() {
            continue;
        }
        let m = skip_ws(chars, k);
        if !starts(chars, m, "is") {
            continue;
        }
        let mut n = m + 2;
        if chars.get(n) == Some(&':') {
            n += 1;
        }
        let within_line = !chars[i..n].contains(&'\n');
        if let Some((end, parts)) = scan::env_group_at(chars, skip_ws(chars, n), false) {
            slots[1].push(Match { start: i, end, found: Found::Latex(parts) });
        } else if within_line && let Some(mut m) = scan::expr_or_number_at(chars, n, true, true) {
            m.start = i;
            slots[1].push(m);
        } else if let Some(m) = letter_after(chars, i, n, 0) {
            slots[1].push(m);
        } else {
            continue;
        }
        break;
    }
}

/// The first math environment that starts within `gap` characters of `from`.
fn latex_after(c: &[char], anchor: usize, from: usize, gap: usize) -> Option<Match> {
    (from..=from + gap)
        .take_while(|&k| k < c.len())
        .find_map(|k| scan::env_group_at(c, k, false).map(|(end, parts)| Match { start: anchor, end, found: Found::Latex(parts) }))
}

/// After "answer": the value after the last `=` within 100 characters, else the first
/// expression or number within 50, not itself followed by `=`.
fn expr_after_answer(c: &[char], anchor: usize, from: usize) -> Option<Match> {
    let line_end = (from..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len());
    let not_followed_by_eq = |m: &Match| c.get(skip_ws(c, m.end)) != Some(&'=');
    let limit = (from + 100).min(line_end.saturating_sub(1));
    for eq in (from..=limit).rev().filter(|&k| k < c.len() && c[k] == '=') {
        let ws_end = skip_ws(c, eq + 1);
        if let Some(m) = (eq + 1..ws_end).rev().find_map(|p| scan::expr_or_number_at(c, p, true, true)).filter(not_followed_by_eq) {
            return Some(Match { start: anchor, ..m });
        }
    }
    (from..=(from + 50).min(line_end))
        .find_map(|p| scan::expr_or_number_at(c, p, true, true).filter(not_followed_by_eq))
        .map(|m| Match { start: anchor, ..m })
}

/// A multiple-choice letter right after the anchor: "Answer: C", "answer is (B).", "**D**".
fn letter_after(c: &[char], anchor: usize, from: usize, gap: usize) -> Option<Match> {
    let line_end = (from..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len());
    (from..=(from + gap).min(line_end)).find_map(|k| {
        let before_ok = k == 0 || matches!(c[k - 1], ' ' | '(' | '*' | ':' | '\t');
        let mut j = k;
        while matches!(c.get(j), Some('*' | '(')) {
            j += 1;
        }
        let letter = *c.get(j).filter(|x| ('A'..='E').contains(*x))?;
        let mut e = j + 1;
        while matches!(c.get(e), Some('*' | ')')) {
            e += 1;
        }
        let after_ok = c.get(e).is_none_or(|x| matches!(x, '\n' | '.' | ',' | ';' | ')' | '$'));
        (before_ok && after_ok && c.get(k).is_some_and(|x| !x.is_whitespace())).then_some(Match {
            start: anchor,
            end: e,
            found: Found::Letter(letter),
        })
    })
}

/// The last parenthesized choice letter, `(A)` to `(E)`, for a prose answer with nothing else
/// to read ("The correct option is (B)").
fn last_choice_letter(c: &[char]) -> Option<Match> {
    (0..c.len().saturating_sub(2)).rev().find(|&k| c[k] == '(' && ('A'..='E').contains(&c[k + 1]) && c[k + 2] == ')').map(|k| Match {
        start: k,
        end: k + 3,
        found: Found::Letter(c[k + 1]),
    })
}

/// Parses one candidate; returns the value (if it parses) and its normalized text.
fn interpret(found: &Found) -> (Option<Node>, String) {
    match found {
        Found::Number { value, text, percent } => {
            let n = Node::Num(value.clone());
            (Some(if *percent { Node::Percent(Box::new(n)) } else { n }), text.clone())
        }
        Found::Expr(expr) => {
            let cleaned = expr.replace('×', "*").replace('÷', "/").replace("**", "^").replace('\n', " ");
            (parse_latex(&cleaned), expr.clone())
        }
        Found::Letter(l) => (Some(Node::Sym(l.to_ascii_lowercase().to_string())), l.to_string()),
        Found::Latex(parts) => {
            let read: Vec<(Option<Node>, String)> = parts
                .iter()
                .map(|p| {
                    let text = normalize(&p.content, if p.boxed_last { BoxedMode::Last } else { BoxedMode::All });
                    let node = parse_with_last_equation(&text).map(|n| if p.percent { Node::Percent(Box::new(n)) } else { n });
                    (node, text)
                })
                .collect();
            if read.len() > 1 && read.iter().all(|r| r.0.is_some()) {
                let text = read.iter().map(|r| r.1.as_str()).collect::<Vec<_>>().join(" and ");
                let items = read.into_iter().filter_map(|r| r.0).flat_map(|n| if let Node::Set(v) = n { v } else { vec![n] }).collect();
                return (Some(make_set(items)), text);
            }
            read.into_iter().next().unwrap_or((None, String::new()))
        }
    }
}

/// If a chain like `1 = \zzz = x = 0` does not parse, its last side may (`0`).
fn parse_with_last_equation(text: &str) -> Option<Node> {
    if let Some(n) = parse_latex(text) {
        return Some(n);
    }
    if text.contains(',') || text.contains(';') {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let splits: Vec<usize> =
        (0..chars.len()).filter(|&k| chars[k] == '=' && (k == 0 || !matches!(chars[k - 1], '\\' | '<' | '!' | '>'))).collect();
    let last = *splits.last()?;
    if splits.len() < 2 {
        return None;
    }
    parse_latex(&chars[last + 1..].iter().collect::<String>())
}
