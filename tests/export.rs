//! `retort export`: reproducible, split by content, mixed by weight, never half-written.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::{Sandbox, data, head};
use predicates::prelude::*;
use serde_json::Value;

fn sky(sb: &Sandbox) {
    sb.retort()
        .arg("import")
        .arg(data("skythought/sky-t1-27b_math500.jsonl"))
        .arg(data("skythought/qwen2.5-14b-instruct_math500.jsonl"))
        .assert()
        .success();
    sb.retort().args(["rules", "apply", "--expr", "accept where score.imported >= 1"]).assert().success();
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn same_store_same_options_same_bytes() {
    let sb = Sandbox::new();
    sky(&sb);
    for out in ["a", "b"] {
        sb.retort().args(["export", "--format", "messages", "--val", "0.1", "--seed", "3", "--out", out]).assert().success();
    }
    for file in ["train.jsonl", "validation.jsonl", "manifest.json"] {
        assert_eq!(read(&sb.path("a").join(file)), read(&sb.path("b").join(file)), "{file} differs");
    }
    // The manifest's hashes are the files' hashes, and the counts are the lines.
    let manifest: Value = serde_json::from_slice(&read(&sb.path("a/manifest.json"))).unwrap();
    for part in ["train", "validation"] {
        let file = sb.path("a").join(manifest["parts"][part]["file"].as_str().unwrap());
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(read(&file)))
        };
        assert_eq!(manifest["parts"][part]["sha256"], digest.as_str());
        assert_eq!(manifest["parts"][part]["samples"].as_u64().unwrap() as usize, lines(&file).len());
    }
    let accepted = sb.query_i64("SELECT count(*) FROM samples WHERE status = 'accepted'");
    assert_eq!(manifest["samples"].as_i64(), Some(accepted));
    assert_eq!(manifest["rules_applied"][0]["rule"], "accept where score.imported >= 1");
    // Another seed: the same samples in another order.
    sb.retort().args(["export", "--format", "messages", "--val", "0.1", "--seed", "4", "--out", "c"]).assert().success();
    assert_ne!(read(&sb.path("a/train.jsonl")), read(&sb.path("c/train.jsonl")));
    let mut a = lines(&sb.path("a/train.jsonl"));
    let mut c = lines(&sb.path("c/train.jsonl"));
    a.sort_by_key(ToString::to_string);
    c.sort_by_key(ToString::to_string);
    assert_eq!(a, c);
    assert_eq!(sb.query_i64("SELECT count(*) FROM exports"), 3);
}

#[test]
fn a_sample_keeps_its_side_when_the_set_grows() {
    let small = Sandbox::new();
    small.write("part.jsonl", head(&data("skythought/sky-t1-27b_math500.jsonl"), 200));
    small.retort().args(["import", "part.jsonl"]).assert().success();
    small.retort().args(["export", "--format", "alpaca", "--status", "pending", "--val", "0.2", "--out", "x"]).assert().success();
    let big = Sandbox::new();
    big.retort().arg("import").arg(data("skythought/sky-t1-27b_math500.jsonl")).assert().success();
    big.retort().args(["export", "--format", "alpaca", "--status", "pending", "--val", "0.2", "--out", "x"]).assert().success();
    let val_small: Vec<String> = lines(&small.path("x/validation.jsonl")).iter().map(|r| r["instruction"].to_string()).collect();
    let val_big: Vec<String> = lines(&big.path("x/validation.jsonl")).iter().map(|r| r["instruction"].to_string()).collect();
    assert!(!val_small.is_empty());
    assert!(val_small.iter().all(|q| val_big.contains(q)), "a validation sample moved to train");
    let share = val_big.len() as f64 / 500.0;
    assert!((0.12..0.28).contains(&share), "{share}");
}

#[test]
fn mix_and_budget_and_dry_run() {
    let sb = Sandbox::new();
    sb.retort().assert().success(); // the demo set: 140 reasoning, 101 general samples
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens > 0"]).assert().success();
    let out =
        sb.retort().args(["export", "--format", "messages", "--mix", "reasoning=1,general=1", "--dry-run", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["by_kind"]["reasoning"], 101);
    assert_eq!(report["by_kind"]["general"], 101);
    let out = sb
        .retort()
        .args(["export", "--format", "messages", "--mix", "reasoning=3,general=1", "--max-samples", "80", "--json", "--out", "m"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["by_kind"]["reasoning"], 60);
    assert_eq!(report["by_kind"]["general"], 20);
    assert_eq!(lines(&sb.path("m/train.jsonl")).len(), 80);
    // Reasoning dropped, system left out, and a token budget.
    sb.retort()
        .args(["export", "--format", "messages", "--reasoning", "drop", "--no-system", "--max-tokens", "5000", "--out", "d"])
        .assert()
        .success();
    let rows = lines(&sb.path("d/train.jsonl"));
    assert!(rows.iter().all(|r| !r.to_string().contains("<think>") && r["messages"][0]["role"] != "system"));
    let manifest: Value = serde_json::from_slice(&read(&sb.path("d/manifest.json"))).unwrap();
    assert!(manifest["tokens"].as_u64().unwrap() <= 5000);
    sb.retort()
        .args(["export", "--format", "messages", "--mix", "poetry=1", "--dry-run"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--mix"));
    let empty = Sandbox::new();
    empty.retort().args(["stats"]).assert().success();
    empty
        .retort()
        .args(["export", "--format", "messages", "--out", "e"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing to export"));
}

/// The files of an export directory, each checked against the manifest's sha256: the set is
/// whole (every part the manifest names, with its hash, and nothing else).
fn whole_set(dir: &std::path::Path) -> Vec<String> {
    use sha2::Digest;
    let manifest: Value = serde_json::from_slice(&read(&dir.join("manifest.json"))).unwrap();
    let mut expected = vec!["manifest.json".to_owned()];
    for part in manifest["parts"].as_object().unwrap().values() {
        let file = part["file"].as_str().unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(read(&dir.join(file)))), part["sha256"].as_str().unwrap(), "{file}");
        expected.push(file.to_owned());
    }
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "exactly the manifest's files");
    names
}

#[test]
fn a_killed_export_leaves_the_old_set_or_the_new_one_whole() {
    let sb = Sandbox::new();
    sky(&sb);
    sb.retort().args(["export", "--format", "messages", "--val", "0.1", "--out", "sft"]).assert().success();
    let old = read(&sb.path("sft/validation.jsonl"));
    // Killed at moments through an export without --val into the same directory: each time the
    // directory holds the old set (with its validation part) or the new one (without), whole.
    let mut seen_new = false;
    for delay_ms in [5u64, 20, 40, 60, 90, 130, 200, 400] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("retort"))
            .arg("--db")
            .arg(sb.db())
            .args(["export", "--format", "messages", "--seed", &delay_ms.to_string(), "--out"])
            .arg(sb.path("sft"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let names = whole_set(&sb.path("sft"));
        if names.contains(&"validation.jsonl".to_owned()) {
            assert!(!seen_new || read(&sb.path("sft/validation.jsonl")) != old, "an old set does not come back once replaced");
        } else {
            seen_new = true;
        }
        // A killed export's staging directory stays hidden beside it; the next export clears it.
    }
    sb.retort().args(["export", "--format", "messages", "--out", "sft"]).assert().success();
    assert_eq!(whole_set(&sb.path("sft")), ["manifest.json", "train.jsonl"], "the stale validation split is gone");
    let leftovers: Vec<String> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A directory holding files of its own is refused, and left as it was.
    std::fs::create_dir_all(sb.path("mine")).unwrap();
    std::fs::write(sb.path("mine/notes.txt"), "keep me").unwrap();
    sb.retort()
        .args(["export", "--format", "messages", "--out", "mine"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds files that are not part of a retort export (notes.txt)"));
    assert_eq!(std::fs::read_dir(sb.path("mine")).unwrap().count(), 1);
}

#[test]
fn template_check_catches_reasoning_the_template_drops() {
    let sb = Sandbox::new();
    sky(&sb);
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/r1-distill-model");
    // Independent: accepted samples that carry whole reasoning. A thought that was cut off
    // (Sky-T1's <|begin_of_thought|> never closed) is written open, so the template keeps it.
    let with_reasoning = sb.query_i64(
        "SELECT count(*) FROM samples s JOIN sample_texts t ON t.sample_id = s.id WHERE s.status = 'accepted' \
         AND coalesce(t.reasoning, '') != '' AND json_extract(t.metadata, '$.reasoning_closed') IS NOT 0",
    );
    assert!(with_reasoning > 0);
    let out = sb.retort().args(["export", "--format", "messages", "--json", "--check-template"]).arg(&model).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "problems exit 1");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reasoning_dropped"]["count"].as_i64(), Some(with_reasoning));
    assert_eq!(report["checked"].as_i64(), Some(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'accepted'")));
    assert_eq!(report["render_errors"]["count"], 0);
    // The template pre-fills `<think>` in its generation prompt: noted, not a problem. Open
    // thoughts keep their `<think>`, so the prompt is a prefix there.
    let open = sb.query_i64(
        "SELECT count(*) FROM samples s JOIN sample_texts t ON t.sample_id = s.id WHERE s.status = 'accepted' \
         AND json_extract(t.metadata, '$.reasoning_closed') = 0",
    );
    assert!(open > 0, "Sky-T1 has traces cut off inside their reasoning");
    assert_eq!(report["generation_prompt_differs"]["count"].as_i64(), Some(report["checked"].as_i64().unwrap() - open));
    // Without reasoning in the export there is nothing to lose.
    sb.retort()
        .args(["export", "--format", "messages", "--reasoning", "drop", "--check-template"])
        .arg(&model)
        .assert()
        .success()
        .stdout(predicate::str::contains("no problems"));
    // A template kept in tokenizer_config.json, ChatML style: reasoning inline survives.
    let chatml = sb.path("chatml");
    std::fs::create_dir_all(&chatml).unwrap();
    let template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    std::fs::write(
        chatml.join("tokenizer_config.json"),
        serde_json::json!({"chat_template": template, "eos_token": "<|im_end|>"}).to_string(),
    )
    .unwrap();
    sb.retort()
        .args(["export", "--format", "messages", "--check-template"])
        .arg(&chatml)
        .assert()
        .success()
        .stdout(predicate::str::contains("no problems"));
    // And one that cannot render is an error naming the model directory.
    std::fs::write(chatml.join("tokenizer_config.json"), r#"{"chat_template": "{% for m in messages %}"}"#).unwrap();
    sb.retort()
        .args(["export", "--format", "messages", "--check-template"])
        .arg(&chatml)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("chatml/tokenizer_config.json:1: the chat template does not compile: syntax error"));
}

#[test]
fn kd_export_places_the_teachers_top_k_where_the_student_predicts_each_token() {
    let sb = Sandbox::new();
    sb.retort().assert().success(); // the demo set holds the OpenAI log-probs example
    let response: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/openai_chat_completion_logprobs.json")).unwrap()).unwrap();
    let positions = response["choices"][0]["logprobs"]["content"].as_array().unwrap().clone();
    let tokens = common::logprob_vocabulary(&response);
    let student = common::student_with(&sb, "student", &tokens);
    sb.retort().args(["export", "--format", "kd", "--status", "pending", "--out", "kd", "--model"]).arg(&student).assert().success();
    let rows = lines(&sb.path("kd/train.jsonl"));
    assert_eq!(rows.len(), 1, "only the sample with log-probs");
    let row = &rows[0];
    assert_eq!(row["messages"][1]["content"], "Hello! How can I assist you today?");
    let id = |t: &str| tokens.iter().position(|x| *x == t.replace(' ', "\u{120}")).unwrap_or_else(|| panic!("{t}"));
    // The student's tokens, independently: the rendering as ChatML, tokenized by the vocabulary.
    let tokenizer = tokenizers::Tokenizer::from_file(student.join("tokenizer.json")).unwrap();
    let text = format!(
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n{}<|im_end|>\n",
        row["messages"][0]["content"].as_str().unwrap(),
        row["messages"][1]["content"].as_str().unwrap()
    );
    let ids = tokenizer.encode(text.as_str(), false).unwrap().get_ids().to_vec();
    let n = positions.len();
    let first_answer = ids.len() - 2 - n; // the answer, then <|im_end|> and the newline
    assert_eq!(ids[first_answer] as usize, id(positions[0]["token"].as_str().unwrap()));
    // Rows right-aligned to the tokens; row t is the distribution over token t + 1.
    let targets = row["target_token_ids"].as_array().unwrap();
    assert_eq!(targets.len(), ids.len() - (first_answer - 1));
    let offset = ids.len() - targets.len();
    for t in offset..ids.len() - 1 {
        assert_eq!(row["token_ids"][t - offset], ids[t + 1], "row {t} predicts the next token");
    }
    for (i, p) in positions.iter().enumerate() {
        let top = p["top_logprobs"].as_array().unwrap();
        let want: Vec<usize> = top.iter().map(|t| id(t["token"].as_str().unwrap())).collect();
        assert_eq!(row["target_token_ids"][i], serde_json::json!(want), "the teacher's top-k for its token {i}");
        let lps: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
        assert_eq!(row["logprobs"][i], serde_json::json!(lps));
    }
    // Past the teacher's tokens: the template's <|im_end|> with probability ≈ 1, finite.
    assert_eq!(row["target_token_ids"][n][0], tokens.len() + 1);
    assert_eq!(row["logprobs"][n], serde_json::json!([0.0, -30.0]));
    let manifest: Value = serde_json::from_slice(&read(&sb.path("kd/manifest.json"))).unwrap();
    assert_eq!(manifest["soft_labels"]["top_k"], 2);
    assert_eq!(manifest["soft_labels"]["teacher_rows"], n);
    let axolotl = &manifest["train_with"]["axolotl"];
    assert_eq!(
        axolotl["datasets"][0],
        serde_json::json!({"path": "train.jsonl", "type": "axolotl.integrations.kd.chat_template",
        "field_messages": "messages", "logprobs_field": "logprobs", "temperature": 1.0})
    );
    // A student that lacks a teacher token: teacher and student must share a tokenizer.
    let partial = common::student_with(&sb, "other", &tokens[..6]);
    sb.retort()
        .args(["export", "--format", "kd", "--status", "pending", "--out", "kd2", "--model"])
        .arg(&partial)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not in the tokenizer").and(predicate::str::contains("share a tokenizer")));
    assert!(!sb.path("kd2/train.jsonl").exists());
    sb.retort()
        .args(["export", "--format", "kd", "--status", "pending", "--out", "kd3"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--format kd needs --model DIR"));
}

/// LLaMA-Factory's glaive tool-call demo imported and every sample accepted; its rows as the
/// file holds them.
fn glaive_accepted(sb: &Sandbox) -> Vec<Value> {
    let file = data("chat-formats/llamafactory_glaive_toolcall_en_demo.json");
    sb.retort().arg("import").arg(&file).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens >= 0"]).assert().success();
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

#[test]
fn alpaca_refuses_tool_use_rather_than_writing_it_wrong() {
    let sb = Sandbox::new();
    let rows = glaive_accepted(&sb);
    // Independently of retort: the rows that offer tools or hold a call or a tool's result.
    let with_tools = rows
        .iter()
        .filter(|r| {
            let tools: Value = serde_json::from_str(r["tools"].as_str().unwrap_or("[]")).unwrap();
            tools.as_array().is_some_and(|t| !t.is_empty())
                || r["conversations"].as_array().unwrap().iter().any(|t| t["from"] == "function_call" || t["from"] == "observation")
        })
        .count();
    assert!(with_tools > 0 && with_tools < rows.len());
    sb.retort().args(["list", "--where", "has_tools"]).assert().success().stdout(predicate::str::contains(format!("{with_tools} samples")));

    let out = sb.path("alpaca");
    sb.retort()
        .args(["export", "--format", "alpaca", "--out"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("alpaca cannot hold tool use: {with_tools} of the {} samples", rows.len())))
        .stderr(predicate::str::contains("--where 'not has_tools'"));
    assert!(!out.exists(), "nothing is written");

    // Without them, every sample is an instruction with its answer.
    sb.retort().args(["export", "--format", "alpaca", "--where", "not has_tools", "--out"]).arg(&out).assert().success();
    let written = lines(&out.join("train.jsonl"));
    assert_eq!(written.len(), rows.len() - with_tools);
    assert!(written.iter().all(|r| !r["output"].as_str().unwrap().is_empty() && !r["instruction"].as_str().unwrap().is_empty()));
    // ShareGPT holds them all.
    let all = sb.path("sharegpt");
    sb.retort().args(["export", "--format", "sharegpt", "--out"]).arg(&all).assert().success();
    assert_eq!(lines(&all.join("train.jsonl")).len(), rows.len());
}

#[test]
fn template_check_catches_tools_and_calls_the_template_leaves_out() {
    let sb = Sandbox::new();
    let rows = glaive_accepted(&sb);
    // Independently of retort: the rows that offer tools, and those that hold a function call.
    let offers = |r: &Value| r["tools"].as_str().is_some_and(|t| t.trim() != "[]" && !t.trim().is_empty());
    let calls = |r: &Value| r["conversations"].as_array().unwrap().iter().any(|t| t["from"] == "function_call");
    let offer = rows.iter().filter(|r| offers(r)).count();
    let call = rows.iter().filter(|r| calls(r)).count();
    let either = rows.iter().filter(|r| offers(r) || calls(r)).count();
    assert!(offer > 0 && call > 0);
    let model = sb.path("chatml");
    std::fs::create_dir_all(&model).unwrap();
    let write = |template: &str| {
        std::fs::write(
            model.join("tokenizer_config.json"),
            serde_json::json!({"chat_template": template, "eos_token": "<|im_end|>"}).to_string(),
        )
        .unwrap();
    };
    // Contents only: the tools and the calls are lost.
    let turns = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
    write(&format!("{turns}{{% if add_generation_prompt %}}<|im_start|>assistant\n{{% endif %}}"));
    let out = sb.retort().args(["export", "--format", "messages", "--json", "--check-template"]).arg(&model).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "problems exit 1");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tools_dropped"]["count"].as_u64(), Some(offer as u64));
    assert_eq!(report["tool_calls_dropped"]["count"].as_u64(), Some(call as u64));
    // A conversation with two problems counts once.
    assert_eq!(report["with_problems"].as_u64(), Some(either as u64));
    sb.retort()
        .args(["export", "--format", "messages", "--check-template"])
        .arg(&model)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("found problems in {either} of the {} conversations", rows.len())));
    // Qwen2.5's way: the tools in the system turn, each call as JSON in the assistant's turn.
    let qwen = "{% if tools %}<|im_start|>system\n<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools><|im_end|>\n{% endif %}\
                {% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}{% endif %}<|im_end|>\n{% endfor %}\
                {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    write(qwen);
    sb.retort()
        .args(["export", "--format", "messages", "--check-template"])
        .arg(&model)
        .assert()
        .success()
        .stdout(predicate::str::contains("no problems"));
}

#[test]
fn tool_definitions_keep_the_datasets_key_order() {
    // transformers renders a tool with json.dumps, which keeps a dict's key order; a student
    // trained on tools with sorted keys would see them unlike it does at inference.
    let sb = Sandbox::new();
    let rows = glaive_accepted(&sb);
    // The file's tools as text, keys in the file's order (Python's json.loads + dumps would agree).
    let mut expected: Vec<String> = rows
        .iter()
        .filter_map(|r| r["tools"].as_str())
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        .map(|t| t.to_string())
        .collect();
    assert!(expected.iter().any(|t| t.starts_with(r#"[{"name":"#)), "the file lists name before description");
    let out = sb.path("messages");
    sb.retort().args(["export", "--format", "messages", "--out"]).arg(&out).assert().success();
    // Each written as OpenAI and transformers give a template its tools: {"type": "function",
    // "function": the file's definition}.
    let mut written: Vec<String> = lines(&out.join("train.jsonl"))
        .iter()
        .filter(|r| r["tools"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|r| {
            let tools = r["tools"].as_array().unwrap();
            assert!(tools.iter().all(|t| t["type"] == "function"), "{r}");
            Value::Array(tools.iter().map(|t| t["function"].clone()).collect()).to_string()
        })
        .collect();
    // Prompts are deduplicated and exports ordered by id: compare as sets of texts.
    expected.sort();
    expected.dedup();
    written.sort();
    written.dedup();
    assert_eq!(written, expected);
}
