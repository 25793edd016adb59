//! Splitting a teacher's text into its chain of thought and its final answer.
//!
//! Teachers mark reasoning in several ways: DeepSeek-R1/QwQ/Qwen3 wrap it in
//! `<think>…</think>` (and chat templates that pre-fill `<think>\n` leave only the closing tag in
//! the output); Sky-T1 uses `<|begin_of_thought|>…<|end_of_thought|>` followed by
//! `<|begin_of_solution|>…<|end_of_solution|>`. APIs that parse reasoning return it in a separate
//! `reasoning_content` (DeepSeek, vLLM ≤ 0.10) or `reasoning` (vLLM ≥ 0.11) field, handled by the
//! formats themselves.

use serde::Serialize;

/// The markers a trace used, kept so an export can write the trace back the way it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Markers {
    /// `<think>…</think>`
    Think,
    /// `<|begin_of_thought|>…<|end_of_thought|><|begin_of_solution|>…<|end_of_solution|>`
    SkyT1,
}

/// A trace split into reasoning and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub reasoning: Option<String>,
    pub answer: String,
    pub markers: Option<Markers>,
    /// False when the reasoning was opened and never closed: the trace was cut off.
    pub closed: bool,
}

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
const SKY_THOUGHT_OPEN: &str = "<|begin_of_thought|>";
const SKY_THOUGHT_CLOSE: &str = "<|end_of_thought|>";
const SKY_SOLUTION_OPEN: &str = "<|begin_of_solution|>";
const SKY_SOLUTION_CLOSE: &str = "<|end_of_solution|>";

/// Where `needle` first is in `text` (SIMD, unlike `str::find`: every trace is searched).
fn find(text: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(text.as_bytes(), needle.as_bytes())
}

/// Splits `text` at its reasoning markers; text without markers is all answer.
#[must_use]
pub fn split(text: &str) -> Split {
    // Sky-T1's markers all start `<|`: one search rules them out for most traces.
    if find(text, "<|").is_some()
        && (find(text, SKY_THOUGHT_OPEN).is_some() || find(text, SKY_THOUGHT_CLOSE).is_some() || find(text, SKY_SOLUTION_OPEN).is_some())
    {
        return split_sky(text);
    }
    if let Some(close) = find(text, THINK_CLOSE) {
        // The opening tag may be missing when the chat template pre-filled it.
        let before = &text[..close];
        let reasoning = find(before, THINK_OPEN).map_or(before, |open| &before[open + THINK_OPEN.len()..]);
        let answer = &text[close + THINK_CLOSE.len()..];
        return Split {
            reasoning: Some(reasoning.trim().to_owned()),
            answer: answer.trim().to_owned(),
            markers: Some(Markers::Think),
            closed: true,
        };
    }
    if let Some(open) = find(text, THINK_OPEN) {
        // Opened, never closed: the generation stopped inside its reasoning.
        return Split {
            reasoning: Some(text[open + THINK_OPEN.len()..].trim().to_owned()),
            answer: String::new(),
            markers: Some(Markers::Think),
            closed: false,
        };
    }
    Split { reasoning: None, answer: text.trim().to_owned(), markers: None, closed: true }
}

fn split_sky(text: &str) -> Split {
    let after_open = find(text, SKY_THOUGHT_OPEN).map_or(0, |i| i + SKY_THOUGHT_OPEN.len());
    let (reasoning, rest, closed) = match find(&text[after_open..], SKY_THOUGHT_CLOSE) {
        Some(i) => (&text[after_open..after_open + i], &text[after_open + i + SKY_THOUGHT_CLOSE.len()..], true),
        None => match find(&text[after_open..], SKY_SOLUTION_OPEN) {
            // A solution without a closed thought: take everything before it as the thought.
            Some(i) => (&text[after_open..after_open + i], &text[after_open + i..], true),
            None => (&text[after_open..], "", false),
        },
    };
    let solution = match find(rest, SKY_SOLUTION_OPEN) {
        Some(i) => {
            let body = &rest[i + SKY_SOLUTION_OPEN.len()..];
            find(body, SKY_SOLUTION_CLOSE).map_or(body, |j| &body[..j])
        }
        None => rest,
    };
    Split { reasoning: Some(reasoning.trim().to_owned()), answer: solution.trim().to_owned(), markers: Some(Markers::SkyT1), closed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_tags() {
        let s = split("<think>\nLet me see.\n</think>\n\nThe answer is 4.");
        assert_eq!(s.reasoning.as_deref(), Some("Let me see."));
        assert_eq!(s.answer, "The answer is 4.");
        assert_eq!(s.markers, Some(Markers::Think));
        assert!(s.closed);
    }

    #[test]
    fn think_without_opening_tag() {
        let s = split("Okay, so 2+2.\n</think>\n4");
        assert_eq!(s.reasoning.as_deref(), Some("Okay, so 2+2."));
        assert_eq!(s.answer, "4");
    }

    #[test]
    fn think_never_closed_is_truncated() {
        let s = split("<think>I keep thinking and");
        assert_eq!(s.reasoning.as_deref(), Some("I keep thinking and"));
        assert_eq!(s.answer, "");
        assert!(!s.closed);
    }

    #[test]
    fn sky_t1_markers() {
        let s =
            split("<|begin_of_thought|>\n\nSo r = 3.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n\\boxed{3}\n\n<|end_of_solution|>");
        assert_eq!(s.reasoning.as_deref(), Some("So r = 3."));
        assert_eq!(s.answer, "\\boxed{3}");
        assert_eq!(s.markers, Some(Markers::SkyT1));
        assert!(s.closed);
    }

    #[test]
    fn sky_t1_cut_off() {
        let s = split("<|begin_of_thought|>\n\nSo r = 3 and then");
        assert_eq!(s.reasoning.as_deref(), Some("So r = 3 and then"));
        assert_eq!(s.answer, "");
        assert!(!s.closed);
    }

    #[test]
    fn plain_text_is_answer() {
        let s = split("  Just an answer. ");
        assert_eq!(s.reasoning, None);
        assert_eq!(s.answer, "Just an answer.");
        assert!(s.closed);
    }
}
