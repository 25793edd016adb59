//! Verifiers that compare a sample's final answer with the prompt's reference answer.

use serde_json::{Value, json};

use super::math::{self, MathOptions};
use super::{Outcome, Sample, Verifier};

/// The text a final answer is read from: the answer, or for a trace cut off before answering,
/// the reasoning (an answer found only there is still judged, and usually wrong).
fn answer_text(s: &Sample) -> &str {
    if s.text.answer.trim().is_empty() { s.text.reasoning.as_deref().unwrap_or("") } else { &s.text.answer }
}

fn no_reference() -> Outcome {
    Outcome::Failed { error: "the prompt has no reference answer".into() }
}

/// `math`: extract the final answer (last `\boxed{}`, "Answer:" lines, Sky-T1 solution blocks,
/// GSM8K `####`, choice letters), normalise LaTeX and numbers, compare with the reference —
/// numerically, as sets, intervals, relations or matrices. Agrees with math-verify on 267 of its
/// 270 test cases.
pub struct Math {
    pub name: String,
    pub options: MathOptions,
}

impl Verifier for Math {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "math"
    }
    fn config(&self) -> Value {
        serde_json::to_value(&self.options).unwrap_or(Value::Null)
    }
    fn check(&self, s: &Sample) -> Outcome {
        let Some(reference) = s.text.reference.as_deref().filter(|r| !r.trim().is_empty()) else { return no_reference() };
        let v = math::verify(reference, answer_text(s), &self.options);
        let details = json!({"gold": v.gold, "predicted": v.predicted, "reason": v.reason});
        Outcome::scored(if v.pass { 1.0 } else { 0.0 }, v.pass, details)
    }
}

/// Case, spacing, `$` and a final full stop do not make answers differ.
fn normalize(s: &str) -> String {
    let s = s.trim().trim_matches('$').trim().trim_end_matches('.');
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The final answer as text: a `\boxed{}`, the rest of the last "answer is" / "Answer:" line, a
/// GSM8K `####` line, else the last line.
fn text_answer(text: &str) -> String {
    static ANSWER_LINE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?i)(?:final answer|answer)(?:\s+is)?\s*[:：]?\s*(.+)$").ok());
    if (text.contains("\\boxed") || text.contains("\\fbox"))
        && let Some(a) = math::extract_answer(text)
    {
        return a;
    }
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    for line in lines.iter().rev() {
        if let Some(rest) = line.strip_prefix("####") {
            return rest.trim().to_owned();
        }
        if let Some(c) = ANSWER_LINE.as_ref().and_then(|re| re.captures(line)).and_then(|c| c.get(1)) {
            return c.as_str().trim().to_owned();
        }
    }
    lines.last().map_or_else(String::new, |l| (*l).to_owned())
}

/// `exact`: the extracted final answer equals the reference as text (after trimming case,
/// spacing, `$` and a final full stop). For answers that are names, words or codes.
pub struct Exact {
    pub name: String,
}

impl Verifier for Exact {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "exact"
    }
    fn config(&self) -> Value {
        json!({})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let Some(reference) = s.text.reference.as_deref().filter(|r| !r.trim().is_empty()) else { return no_reference() };
        let text = answer_text(s);
        let predicted = text_answer(text);
        let pass = normalize(&predicted) == normalize(reference) || normalize(text) == normalize(reference);
        Outcome::scored(if pass { 1.0 } else { 0.0 }, pass, json!({"predicted": predicted, "reference": reference}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(reference: Option<&str>, answer: &str) -> Sample {
        let mut s = crate::verify::test_sample(crate::store::samples::Texts {
            prompt: "p".into(),
            reference: reference.map(str::to_owned),
            reasoning: Some("thinking".into()),
            answer: answer.into(),
            reasoning_closed: Some(true),
            ..Default::default()
        });
        s.finish_reason = None;
        s.tokens = 10;
        s
    }

    #[test]
    fn math_and_exact() {
        let m = Math { name: "math".into(), options: MathOptions::default() };
        assert!(matches!(m.check(&sample(Some("\\frac{1}{2}"), "So the answer is \\boxed{0.5}.")), Outcome::Scored { pass: true, .. }));
        assert!(matches!(m.check(&sample(Some("18"), "#### 17")), Outcome::Scored { pass: false, .. }));
        assert!(matches!(m.check(&sample(None, "\\boxed{1}")), Outcome::Failed { .. }));
        let e = Exact { name: "exact".into() };
        assert!(matches!(e.check(&sample(Some("Paris"), "The answer is: paris.")), Outcome::Scored { pass: true, .. }));
        assert!(matches!(e.check(&sample(Some("Paris"), "Lyon")), Outcome::Scored { pass: false, .. }));
    }
}
