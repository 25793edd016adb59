//! Distillation sets from the Hugging Face Hub whose rows fit none of the general formats: s1K
//! (a question, thinking trajectories and attempts, one sample per teacher in s1K-1.1),
//! NuminaMath-CoT (problems with worked solutions written by people) and Llama-Nemotron
//! (`input`/`output` rows); and what the general formats take from these sets: a solution's final
//! `\boxed{}` as the reference answer, a `category` as the prompt's kind, a teacher named by the
//! `generator` field or by a field's prefix (`deepseek_reasoning`, `gemini_attempt`).

use serde_json::{Map, Value};

use super::chat;
use super::json::{opt_str, req_str, rest};
use super::problems::{self, problem_text};
use super::{PromptDraft, Record, RecordError, SampleDraft, Turn};
use crate::domain::{Kind, LabelType};

/// The contents of the last `\boxed{...}` (or `\fbox{...}`) of a text, braces balanced and
/// escaped braces (`\{`) skipped; `None` when there is none or it is never closed.
#[must_use]
pub fn last_boxed(text: &str) -> Option<&str> {
    let start = match (text.rfind("\\boxed"), text.rfind("\\fbox")) {
        (Some(b), Some(f)) => b.max(f),
        (Some(i), None) | (None, Some(i)) => i,
        (None, None) => return None,
    };
    let after = &text[start..];
    let command = if after.starts_with("\\boxed") { "\\boxed".len() } else { "\\fbox".len() };
    let body = after[command..].trim_start();
    let body = body.strip_prefix('{')?;
    let mut depth = 1usize;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(body[..i].trim()).filter(|b| !b.is_empty());
                }
            }
            _ => {}
        }
    }
    None
}

/// A worked solution as a reference: its final `\boxed{}` answer with the whole solution kept
/// apart, or the solution itself when it boxes nothing (a proof, a program, a short answer).
#[must_use]
pub fn solution_reference(solution: &str) -> (Option<String>, Option<String>) {
    let solution = solution.trim();
    if solution.is_empty() {
        return (None, None);
    }
    match last_boxed(solution) {
        Some(answer) => (Some(answer.to_owned()), Some(solution.to_owned())),
        None => (Some(solution.to_owned()), None),
    }
}

/// The kind a dataset's `category` (or `domain`) names: maths, code and science are reasoning
/// data, chat, safety and tool calling general data (R1's 600k/200k split); `None` for others.
#[must_use]
pub fn category_kind(category: &str) -> Option<Kind> {
    match category.trim().to_ascii_lowercase().as_str() {
        "math" | "maths" | "code" | "coding" | "science" | "stem" | "reasoning" | "puzzle" | "biology" | "chemistry" | "physics" => {
            Some(Kind::Reasoning)
        }
        "chat"
        | "safety"
        | "general"
        | "tool_calling"
        | "tool calling"
        | "instruction following"
        | "instruction_following"
        | "multilingual" => Some(Kind::General),
        _ => None,
    }
}

/// Fields of a Nemotron row (Llama-Nemotron, Nemotron post-training) that describe the sample,
/// not the prompt: whether reasoning was on, the licence, the release, the models trained on it.
pub const NEMOTRON_SAMPLE_KEYS: &[&str] = &["reasoning", "license", "version", "used_in_training"];

/// Moves a Nemotron row's per-sample fields onto its sample and names its teacher from `generator`.
pub fn nemotron_sample(obj: &Map<String, Value>, sample: &mut SampleDraft) -> Result<(), RecordError> {
    if let Some(generator) = opt_str(obj, "generator")? {
        sample.teacher = Some(generator.to_owned());
    }
    for key in NEMOTRON_SAMPLE_KEYS {
        if let Some(v) = obj.get(*key).filter(|v| !v.is_null()) {
            sample.metadata.get_or_insert_with(Map::new).insert((*key).to_owned(), v.clone());
        }
    }
    Ok(())
}

/// Whether a record has s1K's sample fields: `thinking_trajectories`/`attempt`, or a teacher's
/// `<teacher>_thinking_trajectory`/`<teacher>_attempt` (s1K-1.1).
#[must_use]
pub fn is_s1k(obj: &Map<String, Value>) -> bool {
    obj.iter().any(|(k, v)| !v.is_null() && s1k_field(k).is_some_and(|(_, part)| part == S1kPart::Trajectory))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S1kPart {
    Trajectory,
    Attempt,
}

/// `("", Trajectory)` for `thinking_trajectories`, `("gemini", Attempt)` for `gemini_attempt`.
fn s1k_field(key: &str) -> Option<(&str, S1kPart)> {
    for suffix in ["thinking_trajectories", "thinking_trajectory"] {
        if key == suffix {
            return Some(("", S1kPart::Trajectory));
        }
        if let Some(prefix) = key.strip_suffix(suffix).and_then(|p| p.strip_suffix('_')).filter(|p| !p.is_empty()) {
            return Some((prefix, S1kPart::Trajectory));
        }
    }
    if key == "attempt" {
        return Some(("", S1kPart::Attempt));
    }
    key.strip_suffix("_attempt").filter(|p| !p.is_empty()).map(|p| (p, S1kPart::Attempt))
}

/// A field that is a string in one release and a list of strings in another (s1K-1.1's
/// `deepseek_attempt`); null is no text.
fn strings(key: &str, v: &Value) -> Result<Vec<String>, RecordError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(RecordError::value_type(format!("{key}[{i}]"), "a string", other)),
            })
            .collect(),
        other => Err(RecordError::field_type(key, "a string or a list of strings", other)),
    }
}

/// One teacher's part of an s1K row: the field names and their texts.
#[derive(Default)]
struct S1kTeacher<'a> {
    trajectory_key: Option<&'a str>,
    trajectories: Vec<String>,
    attempt_key: Option<&'a str>,
    attempts: Vec<String>,
}

fn s1k_sample(teacher: &str, reasoning: &str, answer: &str) -> SampleDraft {
    let mut sample = SampleDraft::default();
    sample.set_trace(answer, Some(reasoning));
    if !teacher.is_empty() {
        sample.teacher = Some(teacher.to_owned());
    }
    sample
}

/// s1K rows: `question`, `solution` (the reference), `thinking_trajectories` and `attempt` (one
/// sample); s1K-1.1 rows: `<teacher>_thinking_trajectory` and `<teacher>_attempt` for each teacher
/// (`gemini`, `deepseek`), one sample per teacher, named after it. A trajectory or attempt may be
/// a string or a list of strings; lists of equal length pair up as one sample each.
pub fn parse_s1k(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let (problem_key, text) = problem_text(obj)?;
    // Teachers in the order the row gives them.
    let mut teachers: Vec<(&str, S1kTeacher<'_>)> = Vec::new();
    for (key, value) in obj {
        let Some((prefix, part)) = s1k_field(key) else { continue };
        let texts = strings(key, value)?;
        let at = if let Some(at) = teachers.iter().position(|(p, _)| *p == prefix) {
            at
        } else {
            teachers.push((prefix, S1kTeacher::default()));
            teachers.len() - 1
        };
        let teacher = &mut teachers[at].1;
        match part {
            S1kPart::Trajectory => {
                teacher.trajectory_key = Some(key);
                teacher.trajectories = texts;
            }
            S1kPart::Attempt => {
                teacher.attempt_key = Some(key);
                teacher.attempts = texts;
            }
        }
    }
    let mut skip: Vec<&str> = vec![problem_key, "solution", "source_type", "cot", "messages"];
    let mut samples = Vec::new();
    for (prefix, t) in &teachers {
        skip.extend(t.trajectory_key.iter().chain(t.attempt_key.iter()).copied());
        let (n_traj, n_att) = (t.trajectories.len(), t.attempts.len());
        if n_traj > 1 && n_att > 1 {
            if n_traj != n_att {
                return Err(RecordError::GenerationCount {
                    key: t.attempt_key.unwrap_or("attempt").to_owned(),
                    entries: n_att,
                    generations: n_traj,
                });
            }
            for (reasoning, answer) in t.trajectories.iter().zip(&t.attempts) {
                samples.push(s1k_sample(prefix, reasoning, answer));
            }
        } else if n_traj > 0 || n_att > 0 {
            // One trajectory (perhaps written in parts) and one attempt.
            samples.push(s1k_sample(prefix, &t.trajectories.join("\n\n"), &t.attempts.join("\n\n")));
        }
    }
    if samples.is_empty() {
        return Err(RecordError::FieldShape {
            key: "thinking_trajectories",
            expected: "a string or a list of strings with its `attempt` (s1K-1.1: `<teacher>_thinking_trajectory` and `<teacher>_attempt`)",
        });
    }
    let (reference, solution) = match opt_str(obj, "solution")? {
        Some(s) => solution_reference(s),
        None => (None, None),
    };
    let mut metadata = rest(obj, &skip);
    if let Some(solution) = solution {
        metadata.get_or_insert_with(Map::new).insert("solution".into(), Value::String(solution));
    }
    let prompt = PromptDraft {
        turns: vec![Turn::user(text)],
        reference,
        source: opt_str(obj, "source_type")?.or(opt_str(obj, "source")?).map(str::to_owned),
        metadata,
        ..PromptDraft::default()
    };
    Ok(Record { prompt, samples, custom_id: None })
}

/// Problems with worked solutions written by people (NuminaMath-CoT: `problem`, `solution`,
/// `source`, and `messages` repeating the two as a chat). The solution is a sample with a hard
/// label and no teacher: a person's answer, not a model's; the reference answer is the row's
/// `answer` when it has one, else the solution's final `\boxed{}`.
pub fn parse_solution(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let (problem_key, text) = problem_text(obj)?;
    let solution = req_str(obj, "solution")?;
    let (reference, _) = match problems::reference_answer(obj)? {
        Some(answer) => (Some(answer), None),
        None => solution_reference(solution),
    };
    let sample = SampleDraft { answer: solution.trim().to_owned(), label: Some(LabelType::Hard), ..SampleDraft::default() };
    let mut skip = vec![problem_key, "solution", "messages", "source", "answer"];
    skip.extend_from_slice(problems::REFERENCE_KEYS);
    let prompt = PromptDraft {
        turns: vec![Turn::user(text)],
        reference,
        source: opt_str(obj, "source")?.map(str::to_owned),
        metadata: rest(obj, &skip),
        ..PromptDraft::default()
    };
    Ok(Record { prompt, samples: vec![sample], custom_id: None })
}

const HEADER_START: &str = "<|start_header_id|>";
const HEADER_END: &str = "<|end_header_id|>";
const END_OF_TURN: &str = "<|eot_id|>";

/// A prompt written in the Llama 3 chat template (the first Llama-Nemotron release), as messages;
/// the empty assistant header the template ends with (the generation prompt) is left out.
fn llama3_messages(text: &str) -> Option<Vec<Value>> {
    if !text.contains(HEADER_START) {
        return None;
    }
    let mut messages = Vec::new();
    for part in text.split(HEADER_START).skip(1) {
        let (role, content) = part.split_once(HEADER_END)?;
        let content = content.trim_start_matches('\n');
        let content = content.split(END_OF_TURN).next().unwrap_or(content).trim_end();
        messages.push(serde_json::json!({"role": role.trim(), "content": content}));
    }
    if messages.last().is_some_and(|m| m["role"] == "assistant" && m["content"] == "") {
        messages.pop();
    }
    Some(messages)
}

/// Llama-Nemotron post-training rows: `input` (the prompt's messages, or in the first release
/// one string in the Llama 3 chat template), `output` (the answer, `<think>` inline when
/// `reasoning` is "on"), `system_prompt` ("detailed thinking on"), `category`, `generator` (the
/// teacher), `license`, `version`, `used_in_training`.
pub fn parse_llama_nemotron(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let messages = match obj.get("input") {
        Some(Value::String(s)) => match llama3_messages(s) {
            Some(messages) => Value::Array(messages),
            None => Value::Array(vec![serde_json::json!({"role": "user", "content": s})]),
        },
        Some(v @ Value::Array(_)) => v.clone(),
        Some(other) => return Err(RecordError::field_type("input", "a list of messages or a string", other)),
        None => return Err(RecordError::missing("input")),
    };
    let conv = chat::split_messages(&messages, "input")?;
    let mut turns = conv.turns;
    if let Some(a) = conv.answer {
        // An input ending in an assistant turn: that turn is context, the `output` is the sample.
        turns.push(Turn { role: "assistant".into(), content: a.answer, tool_calls: a.tool_calls });
    }
    chat::require_user_turn(&turns, "input")?;
    let output = req_str(obj, "output")?;
    let output = output.trim_end().strip_suffix(END_OF_TURN).unwrap_or(output);
    let mut sample = SampleDraft::from_trace(output);
    let mut system: Vec<&str> =
        conv.system.as_deref().into_iter().chain(opt_str(obj, "system_prompt")?).filter(|s| !s.trim().is_empty()).collect();
    // The first release writes the system prompt both in the template and in `system_prompt`.
    system.dedup();
    sample.system = (!system.is_empty()).then(|| system.join("\n\n"));
    nemotron_sample(obj, &mut sample)?;
    let mut skip = vec!["input", "output", "system_prompt", "generator"];
    skip.extend_from_slice(NEMOTRON_SAMPLE_KEYS);
    let prompt = PromptDraft {
        turns,
        kind: opt_str(obj, "category")?.and_then(category_kind),
        metadata: rest(obj, &skip),
        ..PromptDraft::default()
    };
    Ok(Record { prompt, samples: vec![sample], custom_id: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::ingest::Verdict;
    use crate::ingest::json::test_object as obj;

    #[test]
    fn boxed_answers() {
        assert_eq!(last_boxed("so \\boxed{1} then \\boxed{\\frac{1}{2}}."), Some("\\frac{1}{2}"));
        assert_eq!(last_boxed("\\boxed {\\{1, 2\\}}"), Some("\\{1, 2\\}"));
        assert_eq!(last_boxed("\\fbox{7}"), Some("7"));
        assert_eq!(last_boxed("\\boxed{unclosed"), None);
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(solution_reference("Thus $x=2$, \\boxed{2}."), (Some("2".into()), Some("Thus $x=2$, \\boxed{2}.".into())));
        assert_eq!(solution_reference("A proof."), (Some("A proof.".into()), None));
    }

    #[test]
    fn s1k_row_is_one_sample() {
        // simplescaling/s1K: `thinking_trajectories` is a list of one string, `cot` is null.
        let r = parse_s1k(&obj(json!({
            "solution": "109", "question": "Find the remainder when 9 x 99 x ... is divided by 1000.",
            "cot_type": "math", "source_type": "qq8933/AIME_1983_2024", "metadata": "{'ID': '2010-I-2', 'Year': 2010}",
            "cot": null, "thinking_trajectories": ["The problem asks for the remainder... so 109."],
            "attempt": "The remainder is $\\boxed{109}$."
        })))
        .unwrap();
        assert_eq!(r.samples.len(), 1);
        let s = &r.samples[0];
        assert_eq!(s.reasoning.as_deref(), Some("The problem asks for the remainder... so 109."));
        assert_eq!(s.answer, "The remainder is $\\boxed{109}$.");
        assert_eq!(s.teacher, None);
        assert_eq!(r.prompt.reference.as_deref(), Some("109"));
        assert_eq!(r.prompt.source.as_deref(), Some("qq8933/AIME_1983_2024"));
        let meta = r.prompt.metadata.as_ref().unwrap();
        assert_eq!(meta["cot_type"], "math");
        assert!(!meta.contains_key("thinking_trajectories") && !meta.contains_key("attempt") && !meta.contains_key("cot"));
    }

    #[test]
    fn s1k_1_1_has_a_sample_per_teacher() {
        // s1K-1.1: gemini fields are strings, deepseek fields lists in one release.
        let r = parse_s1k(&obj(json!({
            "solution": "Let $x$... hence \\boxed{3}.", "question": "Solve x-3=0.", "cot_type": "math",
            "source_type": "AI-MO/NuminaMath-CoT/aops_forum", "metadata": "{}",
            "gemini_thinking_trajectory": "Move 3 across.", "gemini_attempt": "x = 3",
            "deepseek_thinking_trajectory": ["Okay, so x - 3 = 0."], "deepseek_attempt": ["**Answer:** \\boxed{3}"]
        })))
        .unwrap();
        let got: Vec<_> = r.samples.iter().map(|s| (s.teacher.as_deref(), s.reasoning.as_deref(), s.answer.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some("gemini"), Some("Move 3 across."), "x = 3"),
                (Some("deepseek"), Some("Okay, so x - 3 = 0."), "**Answer:** \\boxed{3}")
            ]
        );
        assert_eq!(r.prompt.reference.as_deref(), Some("3"));
        assert_eq!(r.prompt.metadata.as_ref().unwrap()["solution"], "Let $x$... hence \\boxed{3}.");
        assert!(r.samples.iter().all(|s| s.verdicts.is_empty() && s.label.is_none()));
    }

    #[test]
    fn s1k_errors_name_the_field() {
        let err = parse_s1k(&obj(json!({"question": "q", "thinking_trajectories": [1], "attempt": "a"}))).unwrap_err();
        assert_eq!(err.to_string(), "`thinking_trajectories[0]` must be a string, found a number");
        let err = parse_s1k(&obj(json!({"question": "q", "a_thinking_trajectory": ["x", "y"], "a_attempt": ["1", "2", "3"]}))).unwrap_err();
        assert_eq!(err.to_string(), "field `a_attempt` has 3 entries but there are 2 generations: they must pair up one to one");
        let err = parse_s1k(&obj(json!({"question": "q", "cot": null}))).unwrap_err();
        assert!(err.to_string().starts_with("field `thinking_trajectories` must be a string or a list of strings"), "{err}");
    }

    #[test]
    fn numina_solution_is_a_hard_sample_without_teacher() {
        let solution = "We have $2x = 6$, so $x = \\boxed{3}$.";
        let r = parse_solution(&obj(json!({
            "source": "synthetic_math", "problem": "Solve $2x=6$.", "solution": solution,
            "messages": [{"content": "Solve $2x=6$.", "role": "user"}, {"content": solution, "role": "assistant"}]
        })))
        .unwrap();
        assert_eq!(r.prompt.text(), "Solve $2x=6$.");
        assert_eq!(r.prompt.reference.as_deref(), Some("3"));
        assert_eq!(r.prompt.source.as_deref(), Some("synthetic_math"));
        assert_eq!(r.prompt.metadata, None);
        assert_eq!(r.samples.len(), 1);
        let s = &r.samples[0];
        assert_eq!(
            (s.label, s.teacher.as_deref(), s.reasoning.as_deref(), s.answer.as_str()),
            (Some(LabelType::Hard), None, None, solution)
        );
        assert_eq!(s.verdicts, Vec::<Verdict>::new());
    }

    #[test]
    fn llama_nemotron_row() {
        let r = parse_llama_nemotron(&obj(json!({
            "input": [{"role": "user", "content": "Can you explain the Pythagorean theorem?"}],
            "output": "<think>The user asks for a^2+b^2=c^2.</think>In a right triangle a² + b² = c².",
            "category": "math", "license": "cc-by-4.0", "reasoning": "on", "generator": "DeepSeek-R1",
            "used_in_training": ["Ultra", "Nano"], "version": "v1.1", "system_prompt": "detailed thinking on"
        })))
        .unwrap();
        assert_eq!(r.prompt.turns, vec![Turn::user("Can you explain the Pythagorean theorem?")]);
        assert_eq!(r.prompt.kind, Some(Kind::Reasoning));
        assert_eq!(r.prompt.metadata.as_ref().unwrap()["category"], "math");
        let s = &r.samples[0];
        assert_eq!(s.teacher.as_deref(), Some("DeepSeek-R1"));
        assert_eq!(s.system.as_deref(), Some("detailed thinking on"));
        assert_eq!(s.reasoning.as_deref(), Some("The user asks for a^2+b^2=c^2."));
        assert_eq!(s.answer, "In a right triangle a² + b² = c².");
        let meta = s.metadata.as_ref().unwrap();
        assert_eq!((meta["reasoning"].as_str(), meta["license"].as_str()), (Some("on"), Some("cc-by-4.0")));
        assert_eq!(meta["used_in_training"], json!(["Ultra", "Nano"]));
    }

    #[test]
    fn llama_nemotron_first_release_template() {
        let r = parse_llama_nemotron(&obj(json!({
            "input": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\ndetailed thinking off<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWrite a haiku.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            "output": "Autumn moonlight—\na worm digs silently\ninto the chestnut.<|eot_id|>",
            "category": "chat", "license": "cc-by-4.0", "reasoning": "off", "generator": "Llama-3.1-Nemotron-70B-Instruct",
            "used_in_training": "Ultra, Super, Nano", "version": "v1", "system_prompt": "detailed thinking off"
        })))
        .unwrap();
        assert_eq!(r.prompt.turns, vec![Turn::user("Write a haiku.")]);
        assert_eq!(r.prompt.kind, Some(Kind::General));
        let s = &r.samples[0];
        assert_eq!(s.reasoning, None);
        assert_eq!(s.answer, "Autumn moonlight—\na worm digs silently\ninto the chestnut.");
        // The template's system turn and `system_prompt` say the same: kept once.
        assert_eq!(s.system.as_deref(), Some("detailed thinking off"));
        let err = parse_llama_nemotron(&obj(json!({"input": 3, "output": "x"}))).unwrap_err();
        assert_eq!(err.to_string(), "field `input` must be a list of messages or a string, found a number");
    }
}
