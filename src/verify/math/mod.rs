//! The `math` answer verifier: does a teacher trace (or a bare answer) give the reference answer?
//!
//! It mirrors Hugging Face's math-verify (answer extraction priorities, LaTeX normalization and
//! its comparison rules) so that scores agree with that widely used checker, but runs without
//! sympy: expressions are parsed into a small tree and compared numerically (exact where both
//! sides are exact, rounded to `precision` places where one side is a float literal, and at random
//! points for expressions with free variables).
//!
//! Entry points: [`extract_answer`] (what does this trace answer?) and [`verify`].

mod atoms;
mod boxed;
mod build;
mod compare;
mod cursor;
mod eval;
mod extract;
mod latex;
mod lexer;
mod node;
mod normalize;
mod scan;
mod sets;
mod units;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// Options mirroring math-verify's knobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MathOptions {
    /// Decimal places for float comparison: with 6, `1/3` matches `0.333333` but not `0.3333`.
    /// Only applies when one side is a float literal; other values must agree exactly.
    pub precision: u32,
    /// Variables must match by name (`f(x)` is not `f(y)`); when false they match by position.
    pub strict: bool,
    /// Also compare a relation in the prediction against a set in the gold
    /// (`-2 \le x \le 7` vs `x \in [-2, 7]`). The other direction is always allowed.
    pub allow_set_relation_comp: bool,
}

impl Default for MathOptions {
    fn default() -> Self {
        MathOptions { precision: 6, strict: true, allow_set_relation_comp: false }
    }
}

/// The outcome of one comparison, with what was read from each side for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MathVerdict {
    pub pass: bool,
    /// The gold answer as extracted and normalized, if any was found.
    pub gold: Option<String>,
    /// The predicted answer as extracted and normalized, if any was found.
    pub predicted: Option<String>,
    /// A short explanation: which comparison decided, or what could not be read.
    pub reason: String,
}

/// The final answer a trace gives: last `\boxed{...}` (nested braces, also `\fbox` and `\boxed`
/// without braces), Sky-T1 `<|begin_of_solution|>` blocks, "Answer:" / "The answer is" /
/// "final answer is" lines, GSM8K `#### 18`, multiple-choice letters ("(B)", "Answer: C"), else
/// the last number or the whole short text. The answer comes back normalized (`\dfrac13` as
/// `\frac{1}{3}`, units and `$` removed).
#[must_use]
pub fn extract_answer(text: &str) -> Option<String> {
    let answer = extract::find_answer(text);
    answer.parsed.map(|(_, text)| text).or(answer.fallback).filter(|t| !t.is_empty())
}

/// Does the prediction text (a whole trace or a bare answer) give the gold answer? Both sides go
/// through extraction (gold may itself be `$\frac{1}{3}$`, `#### 18` or a full solution).
#[must_use]
pub fn verify(gold: &str, prediction: &str, opts: &MathOptions) -> MathVerdict {
    let g = extract::find_answer(gold);
    let p = extract::find_answer(prediction);
    let shown = |a: &extract::Answer| a.parsed.as_ref().map(|(_, t)| t.clone()).or_else(|| a.fallback.clone());
    let (gold_text, pred_text) = (shown(&g), shown(&p));
    let cx = compare::Ctx { precision: opts.precision, strict: opts.strict, allow_set_relation_comp: opts.allow_set_relation_comp };
    let verdict = |pass: bool, reason: String| MathVerdict { pass, gold: gold_text.clone(), predicted: pred_text.clone(), reason };
    if g.parsed.is_none() && g.fallback.is_none() {
        return verdict(false, "no answer found in gold".into());
    }
    if p.parsed.is_none() && p.fallback.is_none() {
        return verdict(false, "no answer found in prediction".into());
    }
    let readings = |a: &extract::Answer| a.parsed.iter().map(|(n, _)| n.clone()).chain(a.alternates.iter().cloned()).collect::<Vec<_>>();
    for gn in &readings(&g) {
        for pn in &readings(&p) {
            if compare::expr_eq(gn, pn, &cx) {
                return verdict(true, format!("equivalent: {gn} = {pn}"));
            }
        }
    }
    if g.fallback.is_some() && g.fallback == p.fallback {
        return verdict(true, "same answer text".into());
    }
    let reason = match (&g.parsed, &p.parsed) {
        (Some((gn, _)), Some((pn, _))) => format!("not equivalent: {gn} vs {pn}"),
        (None, _) => "gold answer could not be parsed".into(),
        (_, None) => "predicted answer could not be parsed".into(),
    };
    verdict(false, reason)
}
