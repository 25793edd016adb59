//! `retort import` (no `--format`) of the Hub's distillation schemas, JSONL side: the fixtures in
//! tests/fixtures/hub/ are real generations and problems from ../shared/data in each dataset's
//! schema, written by tests/consumers/make_hub_sets.py (`--rows 2 --jsonl-only`), whose
//! expected.json counts, from the rows it wrote, the prompts, samples and stored verdicts each
//! file holds. What each schema maps to (teachers, labels, references, reasoning) is counted here
//! from the rows, independently of retort's parsers.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::path::{Path, PathBuf};

use common::{Sandbox, jsonl};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub").join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

/// Imports one fixture into a fresh store; checks the detected format and the counts expected.json
/// gives for it.
fn import(name: &str, format: &str) -> Sandbox {
    let sb = Sandbox::new();
    let out = sb.retort().arg("import").arg(fixture(name)).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("[{format}]")), "{name} not read as {format}: {stdout}");
    let want = &expected()[name];
    let s = sb.stats();
    let scored: u64 = s["verifiers"].as_object().unwrap().values().map(|v| v["scored"].as_u64().unwrap()).sum();
    assert_eq!((&s["prompts"], &s["samples"], scored), (&want["prompts"], &want["samples"], want["verdicts"].as_u64().unwrap()), "{name}");
    assert!(want["rows"].as_u64().unwrap() > 0, "{name}: no rows");
    sb
}

fn count(sb: &Sandbox, sql: &str) -> i64 {
    sb.query_i64(sql)
}

/// No sample keeps a reasoning marker in its answer or reasoning.
fn no_markers_left(sb: &Sandbox, name: &str) {
    let left = count(
        sb,
        "SELECT count(*) FROM sample_texts WHERE answer LIKE '%<think>%' OR answer LIKE '%</think>%' OR answer LIKE '%<|%' \
         OR answer LIKE '%<answer>%' OR reasoning LIKE '%<think>%' OR reasoning LIKE '%<|%'",
    );
    assert_eq!(left, 0, "{name}: markers left in texts");
}

#[test]
fn every_fixture_is_counted_in_expected() {
    let want = expected();
    let mut files: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| Path::new(f).extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = want.as_object().unwrap().keys().cloned().collect();
    listed.sort();
    assert_eq!(files, listed);
    assert_eq!(files.len(), 11);
}

#[test]
fn openr1_math_generations_and_both_verdict_lists() {
    let name = "OpenR1-Math-220k.jsonl";
    let sb = import(name, "r1");
    let rows = jsonl(&fixture(name));
    let verify: Vec<bool> =
        rows.iter().flat_map(|r| r["correctness_math_verify"].as_array().unwrap().clone()).map(|v| v.as_bool().unwrap()).collect();
    let llama: Vec<bool> =
        rows.iter().filter_map(|r| r["correctness_llama"].as_array().cloned()).flatten().filter_map(|v| v.as_bool()).collect();
    assert!(rows.iter().any(|r| r["correctness_llama"].is_null()), "fixture lacks a null correctness_llama");
    assert!(rows.iter().any(|r| r["correctness_llama"].as_array().is_some_and(|l| l.iter().any(Value::is_null))));
    let s = sb.stats();
    assert_eq!(s["verifiers"]["imported_math_verify"]["scored"], json!(verify.len()));
    assert_eq!(s["verifiers"]["imported_math_verify"]["passed"], json!(verify.iter().filter(|v| **v).count()));
    assert_eq!(s["verifiers"]["imported_llama"]["scored"], json!(llama.len()));
    assert_eq!(s["prompts_with_reference"], json!(rows.len()));
    // The `<think>` generations have their reasoning apart; the reference is the short `answer`.
    let thinking =
        rows.iter().flat_map(|r| r["generations"].as_array().unwrap().clone()).filter(|g| g.as_str().unwrap().contains("</think>")).count();
    assert_eq!(count(&sb, "SELECT count(*) FROM sample_texts WHERE reasoning IS NOT NULL"), i64::try_from(thinking).unwrap());
    let answer = rows[0]["answer"].as_str().unwrap();
    assert_eq!(sb.query_string("SELECT reference FROM prompt_texts ORDER BY prompt_id LIMIT 1").as_deref(), Some(answer));
    no_markers_left(&sb, name);
}

#[test]
fn sky_t1_conversations_openthoughts_and_bespoke() {
    for name in ["OpenThoughts-114k.jsonl", "Bespoke-Stratos-17k.jsonl", "OpenThoughts3-1.2M.jsonl"] {
        let sb = import(name, "sharegpt");
        let rows = jsonl(&fixture(name));
        // Every trace is whole (the fixtures keep closed thoughts): reasoning and answer apart.
        assert_eq!(
            count(&sb, "SELECT count(*) FROM sample_texts WHERE reasoning <> '' AND answer <> ''"),
            i64::try_from(rows.len()).unwrap(),
            "{name}"
        );
        no_markers_left(&sb, name);
        let systems = rows.iter().filter(|r| r["system"].is_string()).count();
        assert_eq!(count(&sb, "SELECT count(*) FROM sample_texts WHERE system IS NOT NULL"), i64::try_from(systems).unwrap(), "{name}");
        // OpenThoughts3 names the problem's source.
        if let Some(source) = rows[0]["source"].as_str() {
            assert_eq!(sb.stats()["by_source"][source], json!(rows.len()), "{name}");
        }
    }
}

#[test]
fn openthoughts_metadata_teacher_prefix_and_ground_truth() {
    let name = "OpenThoughts-114k-metadata.jsonl";
    let sb = import(name, "r1");
    let rows = jsonl(&fixture(name));
    let s = sb.stats();
    assert_eq!(s["by_teacher"], json!({"deepseek": rows.len()}));
    assert_eq!(s["prompts_with_reference"], json!(rows.len()));
    let first = &rows[0];
    let answer = sb.query_string("SELECT answer FROM sample_texts ORDER BY sample_id LIMIT 1").unwrap();
    assert_eq!(answer, first["deepseek_solution"].as_str().unwrap().trim());
    let reasoning = sb.query_string("SELECT reasoning FROM sample_texts ORDER BY sample_id LIMIT 1").unwrap();
    assert_eq!(reasoning, first["deepseek_reasoning"].as_str().unwrap().trim());
    // The reference is the ground-truth solution's final box, not the whole solution.
    let reference = sb.query_string("SELECT reference FROM prompt_texts ORDER BY prompt_id LIMIT 1").unwrap();
    assert!(first["ground_truth_solution"].as_str().unwrap().contains(&format!("\\boxed{{{reference}}}")), "{reference}");
}

#[test]
fn s1k_one_sample_and_s1k_1_1_a_sample_per_teacher() {
    let sb = import("s1K.jsonl", "s1k");
    let rows = jsonl(&fixture("s1K.jsonl"));
    assert_eq!(sb.stats()["prompts_with_reference"], json!(rows.len()));
    let reasoning = sb.query_string("SELECT reasoning FROM sample_texts ORDER BY sample_id LIMIT 1").unwrap();
    assert_eq!(reasoning, rows[0]["thinking_trajectories"][0].as_str().unwrap().trim());
    assert_eq!(sb.stats()["by_source"][rows[0]["source_type"].as_str().unwrap()], json!(rows.len()));

    let sb = import("s1K-1.1.jsonl", "s1k");
    let rows = jsonl(&fixture("s1K-1.1.jsonl"));
    // `gemini_*` are strings, `deepseek_*` lists: both become one sample per teacher.
    assert!(rows[0]["gemini_attempt"].is_string() && rows[0]["deepseek_attempt"].is_array());
    assert_eq!(sb.stats()["by_teacher"], json!({"gemini": rows.len(), "deepseek": rows.len()}));
    let deepseek = sb
        .query_string("SELECT x.answer FROM sample_texts x JOIN samples s ON s.id = x.sample_id JOIN teachers t ON t.id = s.teacher_id WHERE t.name = 'deepseek' ORDER BY s.id LIMIT 1")
        .unwrap();
    assert_eq!(deepseek, rows[0]["deepseek_attempt"][0].as_str().unwrap().trim());
}

#[test]
fn numina_solutions_are_hard_labels() {
    let name = "NuminaMath-CoT.jsonl";
    let sb = import(name, "solutions");
    let rows = jsonl(&fixture(name));
    let s = sb.stats();
    assert_eq!(s["by_label"], json!({"hard": rows.len(), "soft": 0, "pseudo": 0}));
    assert_eq!(s["prompts_with_reference"], json!(rows.len()));
    assert_eq!(s["by_source"][rows[0]["source"].as_str().unwrap()], json!(rows.len()));
    let answer = sb.query_string("SELECT answer FROM sample_texts ORDER BY sample_id LIMIT 1").unwrap();
    assert_eq!(answer, rows[0]["solution"].as_str().unwrap().trim());
    assert_eq!(count(&sb, "SELECT count(*) FROM sample_texts WHERE reasoning IS NOT NULL"), 0);
}

#[test]
fn nemotron_generators_categories_and_tool_calls() {
    let name = "Nemotron-Post-Training-Dataset-v1.jsonl";
    let sb = import(name, "messages");
    let rows = jsonl(&fixture(name));
    let s = sb.stats();
    let mut teachers = serde_json::Map::new();
    for r in &rows {
        let n = teachers.entry(r["generator"].as_str().unwrap()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap() + 1);
    }
    assert_eq!(s["by_teacher"], Value::Object(teachers));
    let tools = rows.iter().filter(|r| r["category"] == "tool_calling").count();
    assert!(tools > 0);
    assert_eq!(s["prompts_by_kind"], json!({"general": tools, "reasoning": rows.len() - tools}));
    // The calls of a tool-calling row are in its prompt's turns; `reasoning: on` rows have reasoning.
    assert_eq!(count(&sb, "SELECT count(*) FROM prompt_texts WHERE messages LIKE '%\"tool_calls\"%'"), i64::try_from(tools).unwrap());
    let on = rows.iter().filter(|r| r["reasoning"] == "on").count();
    assert_eq!(count(&sb, "SELECT count(*) FROM sample_texts WHERE reasoning <> ''"), i64::try_from(on).unwrap());
    no_markers_left(&sb, name);
}

#[test]
fn llama_nemotron_input_output_rows() {
    let name = "Llama-Nemotron-Post-Training-Dataset.jsonl";
    let sb = import(name, "llama-nemotron");
    let rows = jsonl(&fixture(name));
    let on = rows.iter().filter(|r| r["reasoning"] == "on").count();
    assert_eq!(count(&sb, "SELECT count(*) FROM sample_texts WHERE reasoning <> ''"), i64::try_from(on).unwrap());
    assert_eq!(count(&sb, "SELECT count(*) FROM sample_texts WHERE system LIKE 'detailed thinking %'"), i64::try_from(rows.len()).unwrap());
    let chat = rows.iter().filter(|r| r["category"] == "chat").count();
    assert_eq!(sb.stats()["prompts_by_kind"], json!({"general": chat, "reasoning": rows.len() - chat}));
    assert_eq!(sb.stats()["by_teacher"].as_object().unwrap().len(), 3);
    no_markers_left(&sb, name);
}

#[test]
fn am_distilled_turn_info() {
    let name = "AM-DeepSeek-R1-Distilled-1.4M.jsonl";
    let sb = import(name, "messages");
    let rows = jsonl(&fixture(name));
    let s = sb.stats();
    assert_eq!(s["prompts_with_reference"], json!(rows.len()));
    let first = &rows[0]["messages"];
    let reference = sb.query_string("SELECT reference FROM prompt_texts ORDER BY prompt_id LIMIT 1").unwrap();
    assert_eq!(reference, first[0]["info"]["reference_answer"].as_str().unwrap());
    let answer = sb.query_string("SELECT answer FROM sample_texts ORDER BY sample_id LIMIT 1").unwrap();
    assert_eq!(answer, first[1]["info"]["answer_content"].as_str().unwrap().trim());
    // The source is the user turn's `info.source`, not the answer's (`am-0309`, the generation run).
    let mut sources = serde_json::Map::new();
    for r in &rows {
        let n = sources.entry(r["messages"][0]["info"]["source"].as_str().unwrap()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap() + 1);
    }
    assert_eq!(s["by_source"], Value::Object(sources));
    no_markers_left(&sb, name);
}
