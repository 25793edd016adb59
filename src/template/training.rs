//! A conversation rendered for training: the text and the parts of it the loss is taken on.
//!
//! A template with `{% generation %}` blocks (TRL's `*_training.jinja`) says itself what is
//! trained: the blocks' text, as transformers' `return_assistant_tokens_mask`. Any other template
//! is probed: each assistant turn is the text between the rendering of the conversation before
//! it (with the generation prompt) and the rendering up to its end, end-of-turn tokens included.
//! The trainer, `export --check-template` and `template render` all mask by this one function.

use std::ops::Range;

use serde_json::Value;

use super::{ChatTemplate, TemplateError};

/// How the trained text was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Marking {
    /// The template's own `{% generation %}` blocks.
    GenerationBlocks,
    /// Rendering up to each assistant turn and comparing prefixes.
    Prefixes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainingText {
    pub text: String,
    /// Byte ranges of `text` the loss is taken on, in order.
    pub trained: Vec<Range<usize>>,
    pub marking: Marking,
    /// The template leaves a message's reasoning (`reasoning_content`) out: the student is not
    /// trained on it (export with `--reasoning inline` to keep it in the content).
    pub reasoning_dropped: bool,
    /// The generation prompt adds text the rendered conversation does not hold (DeepSeek-R1's
    /// `<think>\n`): training and inference see different text there.
    pub generation_prompt_differs: bool,
    /// Whether the last message is an assistant turn whose text is the last trained range.
    pub answer_located: bool,
    /// Assistant turns whose text could not be located (a template that rewrites earlier turns,
    /// as Qwen3 drops their reasoning): context, not targets.
    pub unlocated_turns: usize,
}

fn is_assistant(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some("assistant")
}

/// Whether a template left a message's reasoning out of `text`.
fn drops_reasoning(messages: &[Value], text: &str) -> bool {
    messages.iter().any(|m| {
        super::REASONING_FIELDS
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_str))
            .is_some_and(|r| !r.trim().is_empty() && !text.contains(r.trim()))
    })
}

impl ChatTemplate {
    /// Renders a whole conversation (no generation prompt) and finds the text the loss is taken on.
    pub fn render_training(&self, messages: &[Value], tools: Option<&Value>) -> Result<TrainingText, TemplateError> {
        let rendering = self.render_tracked(messages, tools, false)?;
        let reasoning_dropped = drops_reasoning(messages, &rendering.text);
        let assistant_turns = messages.iter().filter(|m| is_assistant(m)).count();
        let mut out = TrainingText {
            text: String::new(),
            trained: Vec::new(),
            marking: Marking::Prefixes,
            reasoning_dropped,
            generation_prompt_differs: false,
            unlocated_turns: 0,
            answer_located: false,
        };
        let answers = messages.last().is_some_and(is_assistant);
        if self.has_generation_blocks() {
            out.marking = Marking::GenerationBlocks;
            // Empty blocks too: transformers marks a token that straddles one.
            out.trained = rendering.generation;
            out.unlocated_turns = assistant_turns.saturating_sub(out.trained.len());
            out.answer_located = answers && !out.trained.is_empty();
        } else {
            let full = &rendering.text;
            for (i, m) in messages.iter().enumerate() {
                if !is_assistant(m) {
                    continue;
                }
                // Nothing before it: there is no prompt to find it after.
                if i == 0 {
                    out.unlocated_turns += 1;
                    continue;
                }
                let upto = if i + 1 == messages.len() { full.clone() } else { self.render(&messages[..=i], tools, false)? };
                let located = |prefix: &str| upto.starts_with(prefix) && full.starts_with(&upto) && upto.len() > prefix.len();
                let prompt = self.render(&messages[..i], tools, true)?;
                let start = if located(&prompt) {
                    Some(prompt.len())
                } else {
                    let plain = self.render(&messages[..i], tools, false)?;
                    out.generation_prompt_differs |= located(&plain);
                    located(&plain).then_some(plain.len())
                };
                match start {
                    Some(start) => {
                        out.trained.push(start..upto.len());
                        out.answer_located = answers && i + 1 == messages.len();
                    }
                    None => out.unlocated_turns += 1,
                }
            }
        }
        out.text = rendering.text;
        Ok(out)
    }
}

/// Which tokens the loss is taken on: those overlapping a trained range, as transformers builds
/// `assistant_masks` from a tokenizer's offsets (`offsets` and `trained` in the same units).
#[must_use]
pub fn assistant_mask(offsets: &[(usize, usize)], trained: &[Range<usize>]) -> Vec<bool> {
    let mut mask = vec![false; offsets.len()];
    let mut span = 0;
    for (i, &(start, end)) in offsets.iter().enumerate() {
        while span < trained.len() && start >= trained[span].end {
            span += 1;
        }
        if span == trained.len() {
            break;
        }
        if end > trained[span].start {
            mask[i] = true;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    fn chatml() -> ChatTemplate {
        ChatTemplate::from_source(CHATML, "t.jinja".into(), Vec::new()).unwrap()
    }

    #[test]
    fn prefixes_locate_every_assistant_turn() {
        let messages = [
            json!({"role": "user", "content": "a"}),
            json!({"role": "assistant", "content": "b"}),
            json!({"role": "user", "content": "c"}),
            json!({"role": "assistant", "content": "d"}),
        ];
        let t = chatml().render_training(&messages, None).unwrap();
        let trained: Vec<&str> = t.trained.iter().map(|r| &t.text[r.clone()]).collect();
        assert_eq!(trained, ["b<|im_end|>\n", "d<|im_end|>\n"]);
        assert_eq!(t.marking, Marking::Prefixes);
    }

    #[test]
    fn dropped_reasoning_is_reported_not_rewritten() {
        let messages = [json!({"role": "user", "content": "a"}), json!({"role": "assistant", "content": "4", "reasoning_content": "add"})];
        let t = chatml().render_training(&messages, None).unwrap();
        assert!(t.reasoning_dropped);
        // What transformers renders: the template has no place for the reasoning.
        assert_eq!(&t.text[t.trained[0].clone()], "4<|im_end|>\n");
    }

    #[test]
    fn the_mask_takes_every_token_a_range_overlaps() {
        // Tokens: [0,3) [3,5) [5,9) [9,10); trained [4,9).
        let offsets = [(0, 3), (3, 5), (5, 9), (9, 10)];
        let one: Vec<Range<usize>> = std::iter::once(4..9).collect();
        assert_eq!(assistant_mask(&offsets, &one), [false, true, true, false]);
        assert_eq!(assistant_mask(&offsets, &[0..3, 9..10]), [true, false, false, true]);
        assert_eq!(assistant_mask(&offsets, &[]), [false; 4]);
    }
}
