//! The built-in cleaning verifiers of an R1-style recipe: length, format, repetition, language.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{Outcome, Sample, Verifier};

/// `length`: passes when the completion fits the budget; the score falls as it grows past it.
pub struct Length {
    pub name: String,
    pub max_tokens: i64,
}

impl Verifier for Length {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "length"
    }
    fn config(&self) -> Value {
        json!({"max_tokens": self.max_tokens})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let score = if s.tokens <= self.max_tokens { 1.0 } else { self.max_tokens as f64 / s.tokens as f64 };
        Outcome::scored(score, s.tokens <= self.max_tokens, json!({"tokens": s.tokens, "max_tokens": self.max_tokens}))
    }
}

/// `format`: the trace is whole — not cut off by the token limit, its reasoning closed, an answer
/// given. The score is the share of checks passed; passing needs all.
pub struct Format {
    pub name: String,
}

impl Verifier for Format {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "format"
    }
    fn config(&self) -> Value {
        json!({})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let not_truncated = s.finish_reason.as_deref() != Some("length");
        let reasoning_closed = s.text.reasoning_closed != Some(false);
        let has_answer = !s.text.answer.trim().is_empty();
        let passed = [not_truncated, reasoning_closed, has_answer].iter().filter(|b| **b).count();
        Outcome::scored(
            passed as f64 / 3.0,
            passed == 3,
            json!({"not_truncated": not_truncated, "reasoning_closed": reasoning_closed, "has_answer": has_answer}),
        )
    }
}

/// Words per n-gram when measuring repetition: long enough that ordinary phrasing ("let me check
/// again") does not count, short enough to catch a looping sentence.
const REPEAT_NGRAM: usize = 10;

/// `repetition`: the share of distinct 10-word n-grams in reasoning and answer. A healthy trace
/// scores above 0.9; a degenerate loop falls towards 0. Passing needs 0.5.
pub struct Repetition {
    pub name: String,
}

/// The distinct-n-gram share of a text, and its most repeated line with its count.
#[must_use]
pub fn repetition(text: &str) -> (f64, Option<(String, usize)>) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let score = if words.len() < REPEAT_NGRAM * 2 {
        1.0
    } else {
        let grams: Vec<&[&str]> = words.windows(REPEAT_NGRAM).collect();
        let distinct: HashSet<&[&str]> = grams.iter().copied().collect();
        distinct.len() as f64 / grams.len() as f64
    };
    let mut lines: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in text.lines().map(str::trim).filter(|l| l.len() >= 20) {
        *lines.entry(l).or_default() += 1;
    }
    let top = lines.into_iter().max_by_key(|(l, n)| (*n, l.len())).filter(|(_, n)| *n > 2).map(|(l, n)| (l.chars().take(120).collect(), n));
    (score, top)
}

impl Verifier for Repetition {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "repetition"
    }
    fn config(&self) -> Value {
        json!({"ngram": REPEAT_NGRAM, "pass_at": 0.5})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let text = format!("{}\n{}", s.text.reasoning.as_deref().unwrap_or(""), s.text.answer);
        let (score, top) = repetition(&text);
        let details = match top {
            Some((line, n)) => json!({"distinct_ngram_share": score, "most_repeated_line": line, "times": n}),
            None => json!({"distinct_ngram_share": score}),
        };
        Outcome::scored(score, score >= 0.5, details)
    }
}

/// Script counts of a text with its mathematics left out: CJK characters and Latin words of two
/// letters or more (single letters are variables), and words in other scripts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scripts {
    pub cjk: usize,
    pub latin: usize,
    pub other: usize,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Removes `$…$`, `$$…$$`, `\(…\)`, `\[…\]` and LaTeX commands: formulas are no language.
fn strip_math(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let close = match (c, chars.get(i + 1)) {
            ('$', Some('$')) => Some("$$"),
            ('$', _) => Some("$"),
            ('\\', Some('(')) => Some("\\)"),
            ('\\', Some('[')) => Some("\\]"),
            _ => None,
        };
        if let Some(close) = close {
            let close: Vec<char> = close.chars().collect();
            let open_len = if close.len() == 1 { 1 } else { 2 };
            let from = i + open_len;
            if let Some(end) = (from..chars.len()).find(|&j| chars[j..].starts_with(&close)) {
                i = end + close.len();
                out.push(' ');
                continue;
            }
        }
        if c == '\\' {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(' ');
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[must_use]
pub fn scripts(text: &str) -> Scripts {
    let mut s = Scripts::default();
    for word in strip_math(text).split(|c: char| !c.is_alphabetic() || is_cjk(c)).filter(|w| w.chars().count() >= 2) {
        if word.chars().all(|c| c.is_ascii_alphabetic() || ('\u{C0}'..='\u{24F}').contains(&c)) {
            s.latin += 1;
        } else {
            s.other += 1;
        }
    }
    s.cjk = text.chars().filter(|c| is_cjk(*c)).count();
    s
}

/// `language`: the share of the response written in the prompt's language (Chinese/Japanese/
/// Korean characters or Latin words), formulas left out. R1's cleaning drops traces that mix
/// languages; passing needs 0.9.
pub struct Language {
    pub name: String,
}

impl Verifier for Language {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "language"
    }
    fn config(&self) -> Value {
        json!({"pass_at": 0.9})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let prompt = scripts(&s.text.prompt);
        let cjk_prompt = prompt.cjk > prompt.latin;
        let response = scripts(&format!("{}\n{}", s.text.reasoning.as_deref().unwrap_or(""), s.text.answer));
        let total = response.cjk + response.latin + response.other;
        let expected = if cjk_prompt { response.cjk } else { response.latin };
        let score = if total == 0 { 1.0 } else { expected as f64 / total as f64 };
        Outcome::scored(
            score,
            score >= 0.9,
            json!({"prompt_language": if cjk_prompt { "cjk" } else { "latin" }, "cjk": response.cjk, "latin_words": response.latin, "other_words": response.other}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(prompt: &str, reasoning: Option<&str>, answer: &str) -> Sample {
        crate::verify::test_sample(crate::store::samples::Texts {
            prompt: prompt.into(),
            reasoning: reasoning.map(str::to_owned),
            answer: answer.into(),
            reasoning_closed: Some(true),
            ..Default::default()
        })
    }

    fn score(o: &Outcome) -> (f64, bool) {
        match o {
            Outcome::Scored { score, pass, .. } => (*score, *pass),
            Outcome::Failed { error } => panic!("{error}"),
        }
    }

    #[test]
    fn repetition_catches_loops_not_prose() {
        let prose = "We compute the area of the triangle first, then check the result against the bound. ".to_owned()
            + &(0..300).map(|i| format!("step {i} gives a new value")).collect::<Vec<_>>().join(". ");
        assert!(repetition(&prose).0 > 0.9);
        let looping = format!("{prose} {}", "Wait, let me recompute the sum of the first terms again.\n".repeat(200));
        let (s, top) = repetition(&looping);
        assert!(s < 0.5, "{s}");
        assert!(top.is_some());
        assert!(!score(&Repetition { name: "repetition".into() }.check(&sample("p", Some(&looping), "4"))).1);
    }

    #[test]
    fn language_mixing_is_measured_against_the_prompt() {
        let v = Language { name: "language".into() };
        let en = sample("Find $x$ if $2x = 4$.", Some("We divide both sides by two, so $x = 2$."), "The answer is $2$.");
        assert_eq!(score(&v.check(&en)), (1.0, true));
        let mixed = sample("Find $x$ if $2x = 4$.", Some("We divide both sides by two. 所以我们得到结果是二。"), "The answer is 2.");
        assert!(!score(&v.check(&mixed)).1);
        let zh = sample("已知 $2x = 4$，求 $x$。", Some("两边同时除以二，得到 $x = 2$。"), "答案是 $2$。");
        assert_eq!(score(&v.check(&zh)), (1.0, true));
    }

    #[test]
    fn format_and_length() {
        let mut s = sample("p", Some("r"), "a");
        assert_eq!(score(&Format { name: "format".into() }.check(&s)), (1.0, true));
        s.text.reasoning_closed = Some(false);
        s.text.answer = String::new();
        let (f, pass) = score(&Format { name: "format".into() }.check(&s));
        assert!(!pass && (f - 1.0 / 3.0).abs() < 1e-9);
        s.tokens = 200;
        assert_eq!(score(&Length { name: "length".into(), max_tokens: 100 }.check(&s)), (0.5, false));
    }
}
