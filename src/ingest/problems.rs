//! Problem-shaped formats: R1-style rows (OpenR1-Math and the like), Sky-T1 evaluation outputs,
//! and plain problem sets with reference answers (GSM8K, MATH, LIMO evaluation sets).

use serde_json::{Map, Value};

use super::json::{first_present, rest};
use super::{PromptDraft, Record, RecordError, SampleDraft, Turn, Verdict};

/// Fields that hold the problem statement.
pub const PROBLEM_KEYS: &[&str] = &["problem", "question", "prompt"];
/// Fields that hold several generations for the problem.
pub const GENERATION_LIST_KEYS: &[&str] = &["generations", "responses", "outputs", "completions"];
/// Fields that hold one whole generation (reasoning markers inline).
pub const TRACE_KEYS: &[&str] = &["generation", "response", "output", "model_output"];
/// Fields that hold a reasoning trace kept apart from the answer.
pub const REASONING_KEYS: &[&str] = &["reasoning_content", "reasoning", "thinking", "deepseek_reasoning"];
/// Fields that hold the reference answer, best first. `answer` is last: in rows that also carry a
/// model's reasoning, `answer` is the model's own final answer.
pub const REFERENCE_KEYS: &[&str] = &["reference", "reference_answer", "gt", "ground_truth", "gold", "gold_answer", "expected_answer"];
/// Fields that hold a worked reference solution (OpenThoughts' metadata rows): its final
/// `\boxed{}` is the reference answer, the whole solution is kept beside it.
const REFERENCE_SOLUTION_KEYS: &[&str] = &["ground_truth_solution"];

pub(crate) fn problem_text(obj: &Map<String, Value>) -> Result<(&'static str, String), RecordError> {
    match first_present(obj, PROBLEM_KEYS) {
        Some((key, Value::String(s))) => Ok((key, s.clone())),
        Some((key, other)) => Err(RecordError::field_type(key, "a string", other)),
        None => Err(RecordError::NoProblem),
    }
}

/// A reference answer as text; numbers (AMC's `27.0`) are written as JSON writes them, and
/// multi-part answers (`{"integer": 42, "square_of": 84}` in LIMO's sets) as compact JSON.
pub(crate) fn as_answer_text(key: &str, v: &Value) -> Result<String, RecordError> {
    match v {
        Value::Object(parts) if !parts.is_empty() => Ok(v.to_string()),
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Array(items) if items.iter().all(|i| i.is_string() || i.is_number()) => {
            Ok(items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect::<Vec<_>>().join(", "))
        }
        other => Err(RecordError::field_type(key, "a string, a number or an object of parts", other)),
    }
}

/// The row's reference answer as text (a reference field, else `answer`), without a solution.
pub(crate) fn reference_answer(obj: &Map<String, Value>) -> Result<Option<String>, RecordError> {
    match first_present(obj, REFERENCE_KEYS).or_else(|| first_present(obj, &["answer"])) {
        Some((key, value)) => Ok(Some(as_answer_text(key, value)?.trim().to_owned()).filter(|a| !a.is_empty())),
        None => Ok(None),
    }
}

/// The reference answer and, for GSM8K-style answers (`... #### 18`) and worked reference
/// solutions, the worked solution apart.
fn reference(obj: &Map<String, Value>, answer_is_reference: bool) -> Result<(Option<String>, Option<String>), RecordError> {
    let found = first_present(obj, REFERENCE_KEYS).or_else(|| if answer_is_reference { first_present(obj, &["answer"]) } else { None });
    let (key, value) = match found {
        Some(kv) => kv,
        None => match (first_present(obj, REFERENCE_SOLUTION_KEYS), first_present(obj, &["solution"])) {
            (Some((_, Value::String(s))), _) => return Ok(super::hub::solution_reference(s)),
            (Some((key, other)), _) => return Err(RecordError::field_type(key, "a string", other)),
            (None, Some(kv)) if answer_is_reference => kv,
            _ => return Ok((None, None)),
        },
    };
    let text = as_answer_text(key, value)?;
    // GSM8K: the reference answer is what follows the last `####`.
    if let Some(i) = text.rfind("####") {
        let final_answer = text[i + 4..].trim().to_owned();
        if !final_answer.is_empty() {
            return Ok((Some(final_answer), Some(text)));
        }
    }
    Ok((Some(text.trim().to_owned()), None))
}

fn prompt(obj: &Map<String, Value>, text: String, reference: Option<String>, solution: Option<String>, skip: &[&str]) -> PromptDraft {
    let mut metadata = rest(obj, skip);
    if let Some(solution) = solution {
        metadata.get_or_insert_with(Map::new).insert("solution".into(), Value::String(solution));
    }
    PromptDraft {
        turns: vec![Turn::user(text)],
        reference,
        source: obj.get("source").and_then(Value::as_str).map(str::to_owned),
        metadata,
        ..PromptDraft::default()
    }
}

/// A per-generation list field (`correctness_llama`, `finish_reasons`...), checked for length.
fn per_generation<'a>(obj: &'a Map<String, Value>, key: &str, n: usize) -> Result<Option<&'a Vec<Value>>, RecordError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() == n => Ok(Some(items)),
        Some(Value::Array(items)) => Err(RecordError::GenerationCount { key: key.to_owned(), entries: items.len(), generations: n }),
        Some(other) => Err(RecordError::field_type(key, "a list (one entry per generation)", other)),
    }
}

/// A verifier suffix with one verdict per generation (`None` where the row has no verdict).
type VerdictList = (String, Vec<Option<bool>>);

/// Verdict lists: `correctness_math_verify` → suffix `math_verify`, `correctness` → main verdict.
fn verdict_lists(obj: &Map<String, Value>, n: usize, keys: &[&str]) -> Result<Vec<VerdictList>, RecordError> {
    let mut lists = Vec::new();
    let mut names: Vec<&String> = obj.keys().filter(|k| k.starts_with("correctness") && *k != "correctness_count").collect();
    names.sort();
    let extra = keys.iter().filter(|k| obj.contains_key(**k));
    for key in names.into_iter().map(String::as_str).chain(extra.copied()) {
        let Some(items) = per_generation(obj, key, n)? else { continue };
        let suffix = key.strip_prefix("correctness").unwrap_or("").trim_start_matches('_').to_owned();
        let suffix = if keys.contains(&key) { String::new() } else { suffix };
        let verdicts = items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Bool(b) => Ok(Some(*b)),
                Value::Null => Ok(None),
                other => Err(RecordError::value_type(format!("{key}[{i}]"), "true, false or null", other)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        lists.push((suffix, verdicts));
    }
    Ok(lists)
}

fn attach_verdicts(samples: &mut [SampleDraft], lists: &[VerdictList]) {
    for (suffix, verdicts) in lists {
        for (sample, verdict) in samples.iter_mut().zip(verdicts) {
            if let Some(pass) = verdict {
                sample.verdicts.push(Verdict { suffix: suffix.clone(), pass: *pass });
            }
        }
    }
}

fn generation(key: &str, i: usize, v: &Value) -> Result<SampleDraft, RecordError> {
    match v {
        Value::String(s) => Ok(SampleDraft::from_trace(s)),
        Value::Object(g) => {
            let text = first_present(g, &["text", "content", "generation", "response"])
                .and_then(|(_, v)| v.as_str())
                .ok_or_else(|| RecordError::lacks(format!("{key}[{i}]"), "`text` or `content` string"))?;
            let mut sample = SampleDraft::default();
            let reasoning = first_present(g, REASONING_KEYS).and_then(|(_, v)| v.as_str());
            sample.set_trace(text, reasoning);
            sample.finish_reason = g.get("finish_reason").and_then(Value::as_str).map(str::to_owned);
            Ok(sample)
        }
        other => Err(RecordError::value_type(format!("{key}[{i}]"), "a string", other)),
    }
}

/// R1-style rows: a problem with a list of `generations` (OpenR1-Math), or with one trace
/// (`response`/`generation`, reasoning inline) or a reasoning field beside the answer.
pub fn parse_r1(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let (problem_key, text) = problem_text(obj)?;
    let mut skip: Vec<&str> = vec![problem_key, "messages", "source", "finish_reasons", "is_reasoning_complete", "answer", "solution"];
    skip.extend_from_slice(REFERENCE_KEYS);
    skip.extend_from_slice(REFERENCE_SOLUTION_KEYS);
    let mut samples = Vec::new();
    let answer_is_reference;
    if let Some((key, list)) = first_present(obj, GENERATION_LIST_KEYS) {
        let Value::Array(items) = list else {
            return Err(RecordError::field_type(key, "a list of generations", list));
        };
        skip.push(key);
        for (i, item) in items.iter().enumerate() {
            samples.push(generation(key, i, item)?);
        }
        answer_is_reference = true;
    } else if let Some((key, trace)) = first_present(obj, TRACE_KEYS) {
        skip.push(key);
        samples.push(generation(key, 0, trace)?);
        answer_is_reference = true;
    } else if let Some((key, reasoning)) = first_present(obj, REASONING_KEYS) {
        let Value::String(reasoning) = reasoning else {
            return Err(RecordError::field_type(key, "a string", reasoning));
        };
        skip.push(key);
        // A teacher's reasoning field pairs with its answer field and names it:
        // `deepseek_reasoning` with `deepseek_solution` (OpenThoughts' metadata rows).
        let teacher = key.strip_suffix("_reasoning");
        let own: &[&'static str] = match teacher {
            Some("deepseek") => &["deepseek_solution", "deepseek_answer"],
            _ => &[],
        };
        let answer = match first_present(obj, own).or_else(|| first_present(obj, &["final_answer", "answer", "content"])) {
            Some((k, v)) => {
                skip.push(k);
                v.as_str().ok_or_else(|| RecordError::field_type(k, "a string", v))?
            }
            None => "",
        };
        let mut sample = SampleDraft::default();
        sample.set_trace(answer, Some(reasoning));
        sample.teacher = teacher.map(str::to_owned);
        samples.push(sample);
        answer_is_reference = false;
    } else {
        return Err(RecordError::NoGenerations);
    }
    let n = samples.len();
    attach_verdicts(&mut samples, &verdict_lists(obj, n, &[])?);
    // The verdict lists became verdicts; `correctness_count` (how many passed) stays as metadata.
    skip.extend(obj.keys().filter(|k| k.starts_with("correctness") && *k != "correctness_count").map(String::as_str));
    if let Some(reasons) = per_generation(obj, "finish_reasons", n)? {
        for (s, r) in samples.iter_mut().zip(reasons) {
            s.finish_reason = r.as_str().map(str::to_owned).or(s.finish_reason.take());
        }
    }
    if let Some(complete) = per_generation(obj, "is_reasoning_complete", n)? {
        for (s, c) in samples.iter_mut().zip(complete) {
            if let Some(c) = c.as_bool() {
                s.metadata.get_or_insert_with(Map::new).insert("reasoning_complete".into(), Value::Bool(c));
            }
        }
    }
    if let Some(model) = obj.get("model").and_then(Value::as_str) {
        skip.push("model");
        for s in &mut samples {
            s.teacher = Some(model.to_owned());
        }
    }
    let (reference, solution) = reference(obj, answer_is_reference)?;
    let mut p = prompt(obj, text, reference, solution, &skip);
    // A reference solution (OpenR1's `solution`) is worth keeping beside a short `answer`.
    if let Some(Value::String(sol)) = obj.get("solution") {
        p.metadata.get_or_insert_with(Map::new).entry("solution").or_insert_with(|| Value::String(sol.clone()));
    }
    Ok(Record { prompt: p, samples, custom_id: None })
}

/// Sky-T1 / Qwen2.5-Math evaluation outputs: `question`, `code` (the generations), `gt` (the
/// reference), `pred` (extracted answers) and `score` (the stored verdicts).
pub fn parse_skythought(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let (problem_key, text) = problem_text(obj)?;
    let Some(Value::Array(code)) = obj.get("code") else {
        return Err(RecordError::FieldShape { key: "code", expected: "the list of generations" });
    };
    let mut samples = code.iter().enumerate().map(|(i, g)| generation("code", i, g)).collect::<Result<Vec<_>, _>>()?;
    let n = samples.len();
    attach_verdicts(&mut samples, &verdict_lists(obj, n, &["score"])?);
    if let Some(preds) = per_generation(obj, "pred", n)? {
        for (s, p) in samples.iter_mut().zip(preds) {
            s.metadata.get_or_insert_with(Map::new).insert("pred".into(), p.clone());
        }
    }
    let (reference, solution) = reference(obj, true)?;
    let skip = [problem_key, "code", "pred", "score", "report", "gt", "gt_cot"];
    Ok(Record { prompt: prompt(obj, text, reference, solution, &skip), samples, custom_id: None })
}

/// A problem and its reference answer, without generations: a prompt set.
pub fn parse_problem(obj: &Map<String, Value>) -> Result<Record, RecordError> {
    let (problem_key, text) = problem_text(obj)?;
    let (reference, solution) = reference(obj, true)?;
    let mut skip = vec![problem_key, "answer", "source"];
    skip.extend_from_slice(REFERENCE_KEYS);
    if solution.is_some() {
        skip.push("solution");
    }
    Ok(Record { prompt: prompt(obj, text, reference, solution, &skip), samples: Vec::new(), custom_id: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::ingest::json::test_object as obj;

    #[test]
    fn openr1_row_with_generations_and_verdicts() {
        let r = parse_r1(&obj(json!({
            "problem": "What is 2+2?", "solution": "It is 4.", "answer": "4", "source": "olympiads",
            "generations": ["<think>add</think>\\boxed{4}", "<think>hmm</think>\\boxed{5}"],
            "correctness_math_verify": [true, false], "correctness_llama": null,
            "finish_reasons": ["stop", "length"], "is_reasoning_complete": [true, false],
            "messages": [{"role": "user", "content": "What is 2+2?"}]
        })))
        .unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some("4"));
        assert_eq!(r.prompt.source.as_deref(), Some("olympiads"));
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.samples[0].verdicts, vec![Verdict { suffix: "math_verify".into(), pass: true }]);
        assert_eq!(r.samples[1].finish_reason.as_deref(), Some("length"));
        assert_eq!(r.samples[1].answer, "\\boxed{5}");
        assert_eq!(r.prompt.metadata.as_ref().unwrap()["solution"], "It is 4.");
    }

    #[test]
    fn openr1_parquet_row_with_null_verdicts() {
        // OpenR1-Math-220k as its Parquet reads: `correctness_llama` null, or holding nulls where
        // the judge was not asked; `messages` is generation 0 as a chat and adds nothing.
        let r = parse_r1(&obj(json!({
            "problem": "Find x if 2x = 6.", "solution": "x = 3", "answer": "3", "problem_type": "Algebra",
            "question_type": "math-word-problem", "source": "olympiads", "uuid": "0f3c",
            "is_reasoning_complete": [true, true], "generations": ["<think>\nhalve\n</think>\n\\boxed{3}", "<think>\nhm\n</think>\n\\boxed{2}"],
            "correctness_math_verify": [true, false], "correctness_llama": [null, false], "finish_reasons": null,
            "correctness_count": 1, "messages": [{"content": "Find x if 2x = 6.", "role": "user"}, {"content": "<think>\nhalve\n</think>\n\\boxed{3}", "role": "assistant"}]
        })))
        .unwrap();
        assert_eq!(r.samples[0].verdicts, vec![Verdict { suffix: "math_verify".into(), pass: true }]);
        assert_eq!(
            r.samples[1].verdicts,
            vec![Verdict { suffix: "llama".into(), pass: false }, Verdict { suffix: "math_verify".into(), pass: false }]
        );
        let meta = r.prompt.metadata.as_ref().unwrap();
        assert_eq!(
            (meta["uuid"].as_str(), meta["problem_type"].as_str(), meta["correctness_count"].as_i64()),
            (Some("0f3c"), Some("Algebra"), Some(1))
        );
        assert!(!meta.contains_key("messages") && !meta.contains_key("generations"));
        assert_eq!(r.samples[0].metadata.as_ref().unwrap()["reasoning_complete"], true);
    }

    #[test]
    fn openthoughts_metadata_row() {
        // OpenThoughts-114k's `metadata` config: the teacher's reasoning and solution apart, the
        // ground-truth solution as the reference.
        let r = parse_r1(&obj(json!({
            "problem": "Return your final response within \\boxed{}. What is 3 * 4?",
            "deepseek_reasoning": "Okay, 3 times 4 is 12.", "deepseek_solution": "The product is \\boxed{12}.",
            "ground_truth_solution": "Multiply: $3 \\cdot 4 = \\boxed{12}$.", "domain": "math", "source": "numina_math",
            "test_cases": null, "starter_code": null
        })))
        .unwrap();
        let s = &r.samples[0];
        assert_eq!(s.teacher.as_deref(), Some("deepseek"));
        assert_eq!((s.reasoning.as_deref(), s.answer.as_str()), (Some("Okay, 3 times 4 is 12."), "The product is \\boxed{12}."));
        assert_eq!(r.prompt.reference.as_deref(), Some("12"));
        assert_eq!(r.prompt.source.as_deref(), Some("numina_math"));
        let meta = r.prompt.metadata.as_ref().unwrap();
        assert_eq!(meta["solution"], "Multiply: $3 \\cdot 4 = \\boxed{12}$.");
        assert_eq!(meta["domain"], "math");
        assert!(!meta.contains_key("deepseek_solution") && !meta.contains_key("ground_truth_solution"));
        // A code row: the reference solution is a program, kept whole.
        let r = parse_r1(&obj(json!({"problem": "Print 1.", "deepseek_reasoning": "t", "deepseek_solution": "print(1)",
            "ground_truth_solution": "print(1)", "domain": "code", "source": "apps", "test_cases": "{\"inputs\": []}", "starter_code": ""})))
        .unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some("print(1)"));
        assert_eq!(r.prompt.metadata.as_ref().unwrap()["test_cases"], "{\"inputs\": []}");
    }

    #[test]
    fn verdict_list_must_pair_with_generations() {
        let err = parse_r1(&obj(json!({"problem": "p", "generations": ["a", "b"], "correctness_math_verify": [true]}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `correctness_math_verify` has 1 entries but there are 2 generations: they must pair up one to one"
        );
    }

    #[test]
    fn reasoning_field_with_answer() {
        let r = parse_r1(&obj(json!({"question": "q", "reasoning_content": "think", "answer": "42", "gt": "42"}))).unwrap();
        assert_eq!(r.samples[0].reasoning.as_deref(), Some("think"));
        assert_eq!(r.samples[0].answer, "42");
        assert_eq!(r.prompt.reference.as_deref(), Some("42"));
    }

    #[test]
    fn skythought_row() {
        let r = parse_skythought(&obj(json!({
            "idx": 0, "question": "Convert (0,3).", "gt": "(3,\\frac{\\pi}{2})", "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
            "code": ["<|begin_of_thought|>\n\nr=3<|end_of_thought|><|begin_of_solution|>\\boxed{(3,\\frac{\\pi}{2})}<|end_of_solution|>"],
            "pred": ["(3,\\frac{\\pi}{2})"], "report": [null], "score": [true]
        })))
        .unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some("(3,\\frac{\\pi}{2})"));
        assert_eq!(r.samples[0].verdicts, vec![Verdict { suffix: String::new(), pass: true }]);
        assert_eq!(r.samples[0].reasoning.as_deref(), Some("r=3"));
        assert_eq!(r.samples[0].metadata.as_ref().unwrap()["pred"], "(3,\\frac{\\pi}{2})");
    }

    #[test]
    fn gsm8k_reference_is_after_the_hashes() {
        let r = parse_problem(&obj(json!({"question": "Janet's ducks?", "answer": "16 - 3 - 4 = 9\n9 * 2 = 18\n#### 18"}))).unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some("18"));
        assert!(r.prompt.metadata.as_ref().unwrap()["solution"].as_str().unwrap().contains("9 * 2"));
        assert!(r.samples.is_empty());
    }

    #[test]
    fn numeric_answers_are_text() {
        let r = parse_problem(&obj(json!({"problem": "p", "answer": 27.0}))).unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some("27.0"));
        let r = parse_problem(&obj(json!({"problem": "p", "answer": {"integer": 42, "square_of": 84}}))).unwrap();
        assert_eq!(r.prompt.reference.as_deref(), Some(r#"{"integer":42,"square_of":84}"#));
        let err = parse_problem(&obj(json!({"problem": "p", "answer": true}))).unwrap_err();
        assert_eq!(err.to_string(), "field `answer` must be a string, a number or an object of parts, found a boolean");
    }
}
