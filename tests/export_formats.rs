//! Each export format in the shape its consumer reads (CI's tests/consumers/ then runs the
//! consumers themselves on them): OpenAI's fine-tuning lines, LLaMA-Factory's columns on every
//! line, Hugging Face tool calls with object arguments, and cut-off reasoning left open.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::{Sandbox, data};
use predicates::prelude::*;
use serde_json::{Value, json};

fn lines(path: &std::path::Path) -> Vec<Value> {
    common::jsonl(path)
}

/// The glaive tool-call demo and the template fixtures' conversations (parallel calls with
/// their ids), all accepted.
fn tool_use(sb: &Sandbox) {
    let conversations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates/conversations.jsonl");
    sb.retort().arg("import").arg(data("chat-formats/llamafactory_glaive_toolcall_en_demo.json")).arg(&conversations).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where has_tools"]).assert().success();
}

fn export(sb: &Sandbox, format: &str, out: &str) -> Vec<Value> {
    sb.retort().args(["export", "--format", format, "--out", out]).assert().success();
    lines(&sb.path(&format!("{out}/train.jsonl")))
}

#[test]
fn openai_lines_have_call_ids_string_arguments_and_only_known_keys() {
    let sb = Sandbox::new();
    tool_use(&sb);
    let rows = export(&sb, "openai", "oa");
    let accepted = sb.query_i64("SELECT count(*) FROM samples WHERE status = 'accepted'");
    assert_eq!(rows.len() as i64, accepted);
    let (mut calls, mut results, mut parallel) = (0, 0, 0);
    for row in &rows {
        for key in row.as_object().unwrap().keys() {
            assert!(["messages", "tools"].contains(&key.as_str()), "{key} in {row}");
        }
        for tool in row["tools"].as_array().into_iter().flatten() {
            assert_eq!(tool["type"], "function");
            assert!(tool["function"]["name"].is_string(), "{tool}");
        }
        let mut open: Vec<String> = Vec::new();
        for m in row["messages"].as_array().unwrap() {
            let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
            match m["role"].as_str().unwrap() {
                "assistant" => {
                    assert!(keys.iter().all(|k| ["role", "content", "tool_calls"].contains(k)), "{m}");
                    let turn_calls = m["tool_calls"].as_array().map_or(0, Vec::len);
                    parallel += usize::from(turn_calls > 1);
                    for c in m["tool_calls"].as_array().into_iter().flatten() {
                        assert_eq!(c["type"], "function");
                        let args = c["function"]["arguments"].as_str().unwrap_or_else(|| panic!("arguments as a string: {c}"));
                        assert!(serde_json::from_str::<Value>(args).unwrap().is_object());
                        open.push(c["id"].as_str().unwrap().to_owned());
                        calls += 1;
                    }
                    assert!(m["content"].as_str().is_some_and(|c| !c.is_empty()) || turn_calls > 0, "an empty assistant turn: {m}");
                }
                "tool" => {
                    assert_eq!(keys, ["role", "tool_call_id", "content"], "{m}");
                    assert!(open.contains(&m["tool_call_id"].as_str().unwrap().to_owned()), "answers a call made before: {row}");
                    results += 1;
                }
                _ => assert_eq!(keys, ["role", "content"], "{m}"),
            }
        }
    }
    assert!(calls >= 200 && results >= 200 && parallel >= 1, "{calls} calls, {results} results, {parallel} parallel");
    // reasoning_content is not a key OpenAI knows.
    sb.retort()
        .args(["export", "--format", "openai", "--reasoning", "field", "--out", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("which openai has no place for: use --reasoning inline"));
}

#[test]
fn a_sample_openai_cannot_hold_is_left_out_and_named() {
    let sb = Sandbox::new();
    // A tool result that answers no call: valid for Hugging Face templates, not for OpenAI.
    let orphan = json!({"messages": [{"role": "user", "content": "weather?"}, {"role": "tool", "content": "20 C"},
                                     {"role": "assistant", "content": "20 C."}]});
    let fine = json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]});
    sb.write("rows.jsonl", common::to_jsonl([orphan, fine]));
    sb.retort().args(["import", "rows.jsonl"]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens >= 0"]).assert().success();
    let out = sb.retort().args(["export", "--format", "openai", "--out", "oa"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("left out, as openai cannot hold them: 1 sample: a tool result answers no tool call"), "{text}");
    assert_eq!(lines(&sb.path("oa/train.jsonl")).len(), 1);
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(sb.path("oa/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["samples"], 1);
    assert_eq!(manifest["parts"]["train"]["samples"], 1);
    // The Hugging Face formats take it.
    assert_eq!(export(&sb, "messages", "m").len(), 2);
}

#[test]
fn hugging_face_formats_give_templates_objects_to_render() {
    let sb = Sandbox::new();
    tool_use(&sb);
    for format in ["messages", "prompt-completion"] {
        for row in export(&sb, format, format) {
            let turns: Vec<&Value> = ["messages", "prompt", "completion"].iter().filter_map(|k| row[*k].as_array()).flatten().collect();
            for m in turns {
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    assert!(c["function"]["arguments"].is_object(), "{format}: {c}");
                    assert!(c["id"].is_string());
                }
                if m["role"] == "tool" {
                    assert!(m["tool_call_id"].is_string() && m["name"].is_string(), "{format}: {m}");
                }
            }
        }
    }
}

#[test]
fn llamafactory_columns_are_on_every_line_and_parallel_calls_round_trip() {
    let sb = Sandbox::new();
    tool_use(&sb);
    sb.retort().args(["import", data("chat-formats/llamafactory_alpaca_en_demo.json").to_str().unwrap()]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens < 200"]).assert().success();
    for (format, columns) in [("sharegpt", ["conversations", "system", "tools"]), ("alpaca", ["instruction", "system", "history"])] {
        let mut cmd = sb.retort();
        cmd.args(["export", "--format", format, "--val", "0.1", "--out", format]);
        if format == "alpaca" {
            cmd.args(["--where", "not has_tools"]);
        }
        cmd.assert().success();
        let info: Value = serde_json::from_str(&std::fs::read_to_string(sb.path(&format!("{format}/dataset_info.json"))).unwrap()).unwrap();
        for (name, entry) in info.as_object().unwrap() {
            assert_eq!(entry["formatting"], format, "{name}");
            let rows = lines(&sb.path(&format!("{format}/{}", entry["file_name"].as_str().unwrap())));
            assert!(!rows.is_empty());
            for row in &rows {
                for column in entry["columns"].as_object().unwrap().values() {
                    assert!(row.get(column.as_str().unwrap()).is_some(), "{format}: {column} missing from {row}");
                }
                for c in columns {
                    assert!(row.get(c).is_some(), "{format}: {c}");
                }
            }
        }
    }
    // ShareGPT keeps LLaMA-Factory's alternation: parallel calls in one function_call, their
    // results in one observation.
    let rows = lines(&sb.path("sharegpt/train.jsonl"));
    let parallel = rows
        .iter()
        .flat_map(|r| r["conversations"].as_array().unwrap().clone())
        .find(|t| t["from"] == "function_call" && t["value"].as_str().unwrap().starts_with('['))
        .expect("a parallel call");
    let calls: Vec<Value> = serde_json::from_str(parallel["value"].as_str().unwrap()).unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls[0]["arguments"].is_object());
    for r in &rows {
        let froms: Vec<&str> = r["conversations"].as_array().unwrap().iter().map(|t| t["from"].as_str().unwrap()).collect();
        for (i, f) in froms.iter().enumerate() {
            let even = i % 2 == 0;
            assert!(if even { ["human", "observation"].contains(f) } else { ["gpt", "function_call"].contains(f) }, "{froms:?}");
        }
    }
    // Imported back, the parallel calls are two calls again.
    let back = Sandbox::new();
    back.retort().arg("import").arg(sb.path("sharegpt/train.jsonl")).assert().success();
    let most = back
        .query_i64("SELECT max(json_array_length(json_extract(m.value, '$.tool_calls'))) FROM prompt_texts pt, json_each(pt.messages) m");
    assert_eq!(most, 2);
}

#[test]
fn a_thought_cut_off_is_written_open_and_can_be_left_out() {
    let sb = Sandbox::new();
    sb.retort().arg("import").arg(data("skythought/sky-t1-27b_math500.jsonl")).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens >= 0"]).assert().success();
    // Independently: the traces whose <|begin_of_thought|> was never closed.
    let cut = sb.query_i64("SELECT count(*) FROM sample_texts WHERE json_extract(metadata, '$.reasoning_closed') = 0");
    assert!(cut > 0);
    let out = sb.retort().args(["export", "--format", "messages", "--out", "all"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("{cut} samples were cut off inside their reasoning")), "{text}");
    let rows = lines(&sb.path("all/train.jsonl"));
    let answers: Vec<&str> = rows.iter().map(|r| r["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap()).collect();
    let open = answers.iter().filter(|a| a.starts_with("<think>\n") && !a.contains("</think>")).count();
    assert_eq!(open as i64, cut, "cut-off thoughts are not closed as if whole");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(sb.path("all/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["cut_off_reasoning"]["count"].as_i64(), Some(cut));
    sb.retort().args(["export", "--format", "messages", "--where", "not reasoning_cut_off", "--out", "whole"]).assert().success();
    assert_eq!(lines(&sb.path("whole/train.jsonl")).len(), rows.len() - cut as usize);
    let listed = sb.retort().args(["list", "--where", "reasoning_cut_off", "--json"]).output().unwrap();
    assert_eq!(listed.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as i64, cut);
}
