//! `retort import` on the real data of ../shared/data, one test per format, with the expected
//! counts computed here independently of retort's code.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::collections::HashSet;

use common::{Sandbox, data, head, jsonl, to_jsonl};
use predicates::prelude::*;
use serde_json::{Value, json};

#[test]
fn skythought_all_files_counts_and_verdicts() {
    let sb = Sandbox::new();
    let files: Vec<_> = [
        "qwen2.5-14b-instruct_math500.jsonl",
        "sky-t1-14b_aime24.jsonl",
        "sky-t1-14b_amc23.jsonl",
        "sky-t1-27b_math500.jsonl",
        "sky-t1-wrong-14b_amc23.jsonl",
    ]
    .iter()
    .map(|f| data(&format!("skythought/{f}")))
    .collect();
    // Independent count: one sample per `code` entry, one prompt per distinct question, one
    // verdict per `score` entry.
    let (mut samples, mut passed, mut questions) = (0usize, 0usize, HashSet::new());
    for f in &files {
        for row in jsonl(f) {
            samples += row["code"].as_array().unwrap().len();
            passed += row["score"].as_array().unwrap().iter().filter(|s| s.as_bool() == Some(true)).count();
            questions.insert(row["question"].as_str().unwrap().to_owned());
        }
    }
    sb.retort().arg("import").args(&files).assert().success();
    let s = sb.stats();
    assert_eq!(s["samples"], json!(samples));
    assert_eq!(samples, 1110);
    assert_eq!(s["prompts"], json!(questions.len()));
    assert_eq!(s["prompts_with_reference"], json!(questions.len()));
    assert_eq!(s["verifiers"]["imported"]["scored"], json!(samples));
    assert_eq!(s["verifiers"]["imported"]["passed"], json!(passed));
    assert_eq!(s["by_kind"]["reasoning"], json!(samples));
    assert_eq!(s["by_label"]["pseudo"], json!(samples));
    // Sky-T1 markers split: traces with any marker have reasoning apart (and no marker left in
    // it); a thought opened and never closed (and no solution) is a cut-off trace.
    let sky27 = jsonl(&data("skythought/sky-t1-27b_math500.jsonl"));
    let marked = sky27.iter().filter(|r| r["code"][0].as_str().unwrap().contains("<|")).count();
    let cut_off = sky27
        .iter()
        .filter(|r| {
            let t = r["code"][0].as_str().unwrap();
            t.contains("<|begin_of_thought|>") && !t.contains("<|end_of_thought|>") && !t.contains("<|begin_of_solution|>")
        })
        .count();
    let with_reasoning = sb.query_i64(
        "SELECT count(*) FROM samples s JOIN teachers t ON t.id = s.teacher_id JOIN sample_texts x ON x.sample_id = s.id \
         WHERE t.name = 'sky-t1-27b_math500' AND x.reasoning IS NOT NULL AND x.reasoning NOT LIKE '%<|%'",
    );
    assert_eq!(with_reasoning, marked as i64);
    let unclosed = sb.query_i64(
        "SELECT count(*) FROM samples s JOIN teachers t ON t.id = s.teacher_id JOIN sample_texts x ON x.sample_id = s.id \
         WHERE t.name = 'sky-t1-27b_math500' AND json_extract(x.metadata, '$.reasoning_closed') = 0",
    );
    assert_eq!(unclosed, cut_off as i64);
    assert!(cut_off > 0 && marked > cut_off);
    let qwen_reasoning = sb.query_i64(
        "SELECT count(*) FROM samples s JOIN teachers t ON t.id = s.teacher_id JOIN sample_texts x ON x.sample_id = s.id \
         WHERE t.name = 'qwen2.5-14b-instruct_math500' AND x.reasoning IS NOT NULL",
    );
    assert_eq!(qwen_reasoning, 0);
    // MATH500 questions answered by two teachers are one prompt with two samples.
    let pairs = sb.query_i64("SELECT count(*) FROM (SELECT prompt_id FROM samples GROUP BY prompt_id HAVING count(*) = 2)");
    assert!(pairs >= 500, "{pairs}");
}

#[test]
fn gsm8k_is_a_prompt_set_with_references() {
    let sb = Sandbox::new();
    let path = data("gsm8k/test.jsonl");
    let rows = jsonl(&path);
    let distinct: HashSet<&str> = rows.iter().map(|r| r["question"].as_str().unwrap()).collect();
    sb.retort().args(["import"]).arg(&path).assert().success();
    let s = sb.stats();
    assert_eq!(rows.len(), 1319);
    assert_eq!(s["prompts"], json!(distinct.len()));
    assert_eq!(s["prompts_with_reference"], json!(distinct.len()));
    assert_eq!(s["samples"], json!(0));
    // The reference answer is the line after `####`; the worked solution is kept as metadata.
    let first_question = rows[0]["question"].as_str().unwrap().replace('\'', "''");
    let reference = sb.query_string(&format!("SELECT reference FROM prompt_texts WHERE text = '{first_question}'"));
    assert_eq!(reference.as_deref(), Some("18"));
}

#[test]
fn llamafactory_chat_formats() {
    let sb = Sandbox::new();
    let alpaca: Value =
        serde_json::from_str(&std::fs::read_to_string(data("chat-formats/llamafactory_alpaca_en_demo.json")).unwrap()).unwrap();
    let glaive: Value =
        serde_json::from_str(&std::fs::read_to_string(data("chat-formats/llamafactory_glaive_toolcall_en_demo.json")).unwrap()).unwrap();
    let mllm: Value = serde_json::from_str(&std::fs::read_to_string(data("chat-formats/llamafactory_mllm_demo.json")).unwrap()).unwrap();
    // Distinct prompts: alpaca by instruction+input; ShareGPT and messages by every turn before the last.
    let alpaca_prompts: HashSet<String> =
        alpaca.as_array().unwrap().iter().map(|r| format!("{}\n{}", r["instruction"], r["input"])).collect();
    let glaive_prompts: HashSet<String> = glaive
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let turns = r["conversations"].as_array().unwrap();
            format!("{}{}", serde_json::to_string(&turns[..turns.len() - 1]).unwrap(), r["tools"])
        })
        .collect();
    let mllm_prompts: HashSet<String> = mllm
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let turns = r["messages"].as_array().unwrap();
            serde_json::to_string(&turns[..turns.len() - 1]).unwrap()
        })
        .collect();
    sb.retort()
        .arg("import")
        .arg(data("chat-formats/llamafactory_alpaca_en_demo.json"))
        .arg(data("chat-formats/llamafactory_glaive_toolcall_en_demo.json"))
        .arg(data("chat-formats/llamafactory_mllm_demo.json"))
        .assert()
        .success()
        .stdout(
            predicates::str::contains("[alpaca]").and(predicates::str::contains("[sharegpt]")).and(predicates::str::contains("[messages]")),
        );
    let s = sb.stats();
    assert_eq!(s["samples"], json!(1000 + 300 + 6));
    assert_eq!(s["prompts"], json!(alpaca_prompts.len() + glaive_prompts.len() + mllm_prompts.len()));
    assert_eq!(s["by_kind"]["general"], json!(1306));
    // Tool calls survive: the glaive prompts that hold a function_call turn keep it as tool_calls.
    let with_calls = glaive.as_array().unwrap().iter().filter(|r| r["conversations"].to_string().contains("function_call")).count();
    assert!(with_calls > 0);
    let stored = sb.query_i64("SELECT count(*) FROM prompt_texts WHERE messages LIKE '%\"tool_calls\"%'");
    let distinct_with_calls: HashSet<String> = glaive
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["conversations"].to_string().contains("function_call"))
        .map(|r| {
            let turns = r["conversations"].as_array().unwrap();
            format!("{}{}", serde_json::to_string(&turns[..turns.len() - 1]).unwrap(), r["tools"])
        })
        .collect();
    assert_eq!(stored, distinct_with_calls.len() as i64);
    assert_eq!(sb.query_i64("SELECT count(*) FROM prompt_texts WHERE tools IS NOT NULL"), glaive_prompts.len() as i64);
}

#[test]
fn an_answer_that_calls_a_tool_keeps_the_call_and_counts_its_tokens() {
    let sb = Sandbox::new();
    sb.write(
        "call.jsonl",
        r#"{"messages":[{"role":"user","content":"Weather in Paris?"},{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]}]}
"#,
    );
    sb.retort().args(["import", "call.jsonl"]).assert().success();
    assert_eq!(sb.query_string("SELECT json_extract(tool_calls, '$[0].function.name') FROM sample_texts").unwrap(), "get_weather");
    // Not an empty answer: the call is what the teacher wrote.
    assert!(sb.query_i64("SELECT answer_tokens FROM samples") >= 5);
    // `list --json` carries the call; a single turn has no `messages`.
    let out = sb.retort().args(["list", "--json"]).assert().success().get_output().stdout.clone();
    let listed: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(listed["tool_calls"][0]["function"]["name"], "get_weather");
    assert!(listed.get("messages").is_none() && listed.get("tools").is_none());
}

/// The OpenAI log-probs example: the request body of its curl example with its recorded response.
fn logprobs_exchange() -> (Value, Value) {
    let curl = std::fs::read_to_string(data("wire-formats/openai_chat_completion_logprobs.request.curl.txt")).unwrap();
    let body = &curl[curl.find("-d '").unwrap() + 4..curl.rfind('\'').unwrap()];
    let request: Value = serde_json::from_str(body).unwrap();
    let response: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/openai_chat_completion_logprobs.json")).unwrap()).unwrap();
    (request, response)
}

#[test]
fn exchange_keeps_top_k_logprobs_as_soft_label() {
    let sb = Sandbox::new();
    let (request, response) = logprobs_exchange();
    let positions = response["choices"][0]["logprobs"]["content"].as_array().unwrap().len();
    let file = sb.write("calls.jsonl", format!("{}\n", json!({"request": request, "response": response})));
    sb.retort().arg("import").arg(&file).assert().success().stdout(predicates::str::contains("[exchange]"));
    let s = sb.stats();
    assert_eq!(s["samples"], json!(1));
    assert_eq!(s["by_label"]["soft"], json!(1));
    assert_eq!(s["with_logprobs"], json!(1));
    assert_eq!(s["by_teacher"]["gpt-4o-mini"], json!(1));
    assert_eq!(sb.query_i64("SELECT k FROM sample_logprobs"), 2);
    assert_eq!(sb.query_i64("SELECT positions FROM sample_logprobs"), positions as i64);
    let content: Value = serde_json::from_str(&sb.query_string("SELECT content FROM sample_logprobs").unwrap()).unwrap();
    assert_eq!(content, response["choices"][0]["logprobs"]["content"]);
}

#[test]
fn deepseek_reasoning_content_is_kept_apart() {
    let sb = Sandbox::new();
    let response: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/deepseek_reasoner_nonstream.example.json")).unwrap()).unwrap();
    // A bare response has no prompt: refused with a message that says what to do.
    sb.retort()
        .arg("import")
        .arg(data("wire-formats/deepseek_reasoner_nonstream.example.json"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("carries no prompt"));
    let request = json!({"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "hello"}]});
    let file = sb.write("calls.jsonl", format!("{}\n", json!({"request": request, "response": response})));
    sb.retort().arg("import").arg(&file).assert().success();
    let reasoning = sb.query_string("SELECT reasoning FROM sample_texts").unwrap();
    assert_eq!(reasoning, response["choices"][0]["message"]["reasoning_content"].as_str().unwrap());
    assert_eq!(sb.query_string("SELECT answer FROM sample_texts").unwrap(), "Hello! How can I assist you today?");
    assert_eq!(sb.query_string("SELECT finish_reason FROM samples").as_deref(), Some("stop"));
}

#[test]
fn openai_batch_output_is_matched_to_its_input() {
    let sb = Sandbox::new();
    let input = std::fs::read_to_string(data("wire-formats/openai_batch_input_example.jsonl")).unwrap();
    let output = std::fs::read_to_string(data("wire-formats/openai_batch_output_example.jsonl")).unwrap();
    // The two real examples come from different pages of the docs: request-1 in, request-2 out.
    let in_path = data("wire-formats/openai_batch_input_example.jsonl");
    let out_path = data("wire-formats/openai_batch_output_example.jsonl");
    sb.retort().arg("import").arg(&out_path).arg(&in_path).assert().code(1).stderr(
        predicates::str::contains("openai_batch_output_example.jsonl:1").and(predicates::str::contains("\"request-2\" has no request")),
    );
    assert_eq!(sb.query_i64("SELECT count(*) FROM prompts") + sb.query_i64("SELECT count(*) FROM imports"), 0);
    // A matching pair: the input line under the output's custom_id. Output listed first on purpose.
    let mut req: Value = serde_json::from_str(input.trim()).unwrap();
    req["custom_id"] = json!("request-2");
    let in_file = sb.write("batch_in.jsonl", format!("{req}\n"));
    let out_file = sb.write("batch_out.jsonl", &output);
    sb.retort().arg("import").arg(&out_file).arg(&in_file).assert().success();
    let s = sb.stats();
    assert_eq!(s["prompts"], json!(1));
    assert_eq!(s["samples"], json!(1));
    assert_eq!(s["by_teacher"]["gpt-4o-mini"], json!(1));
    assert_eq!(sb.query_string("SELECT system FROM sample_texts").as_deref(), Some("You are a helpful assistant."));
    assert_eq!(sb.query_string("SELECT text FROM prompt_texts").as_deref(), Some("What is 2+2?"));
}

#[test]
fn openr1_shaped_rows_from_real_generations() {
    // OpenR1-Math rows built from real generations: the Sky-T1 27B and Qwen answers to the same
    // MATH500 problems, with their stored verdicts as `correctness_math_verify`.
    let sb = Sandbox::new();
    let sky = jsonl(&data("skythought/sky-t1-27b_math500.jsonl"));
    let qwen = jsonl(&data("skythought/qwen2.5-14b-instruct_math500.jsonl"));
    let mut rows = Vec::new();
    let mut passed = 0;
    for (a, b) in sky.iter().zip(&qwen).take(20) {
        let verdicts = [a["score"][0].clone(), b["score"][0].clone()];
        passed += verdicts.iter().filter(|v| v.as_bool() == Some(true)).count();
        let row = json!({
            "problem": a["question"], "solution": a["solution"], "answer": a["answer"], "source": "math500",
            "generations": [a["code"][0], b["code"][0]],
            "correctness_math_verify": verdicts, "correctness_llama": null,
            "finish_reasons": [null, null], "is_reasoning_complete": [true, true],
        });
        rows.push(row);
    }
    let file = sb.write("openr1.jsonl", to_jsonl(rows));
    sb.retort().arg("import").arg(&file).arg("--teacher").arg("mixed").assert().success().stdout(predicates::str::contains("[r1]"));
    let s = sb.stats();
    assert_eq!(s["prompts"], json!(20));
    assert_eq!(s["samples"], json!(40));
    assert_eq!(s["by_source"]["math500"], json!(40));
    assert_eq!(s["verifiers"]["imported_math_verify"]["passed"], json!(passed));
    assert_eq!(s["by_teacher"]["mixed"], json!(40));
}

#[test]
fn prompt_completion_and_forced_format() {
    let sb = Sandbox::new();
    let alpaca: Value =
        serde_json::from_str(&std::fs::read_to_string(data("chat-formats/llamafactory_alpaca_en_demo.json")).unwrap()).unwrap();
    let lines = to_jsonl(alpaca.as_array().unwrap()[..25].iter().map(|r| json!({"prompt": r["instruction"], "completion": r["output"]})));
    let file = sb.write("pc.jsonl", &lines);
    sb.retort().arg("import").arg(&file).assert().success().stdout(predicates::str::contains("[prompt-completion]"));
    assert_eq!(sb.stats()["samples"], json!(25));
    // Forcing a format that does not fit is a located error.
    let other = Sandbox::new();
    other
        .retort()
        .args(["import", "--format", "sharegpt"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("pc.jsonl:1").and(predicates::str::contains("conversations")));
}

#[test]
fn score_file_adds_verdicts_to_samples_in_the_store() {
    let sb = Sandbox::new();
    sb.write("gens.jsonl", head(&data("skythought/sky-t1-14b_amc23.jsonl"), 10));
    sb.retort().args(["import", "gens.jsonl"]).assert().success();
    let ids: Vec<i64> = (1..=10).collect();
    let lines: String = to_jsonl(ids.iter().map(|id| json!({"sample_id": id, "verifier": "judge", "score": 0.25 * (*id % 4) as f64})));
    sb.write("scores.jsonl", &lines);
    sb.retort().args(["import", "scores.jsonl"]).assert().success().stdout(predicates::str::contains("+10 scores"));
    let s = sb.stats();
    assert_eq!(s["verifiers"]["judge"]["scored"], json!(10));
    // score >= 0.5 passes when the file gives no `pass`: ids with id % 4 in {2, 3}.
    assert_eq!(s["verifiers"]["judge"]["passed"], json!(5));
    // A score for a sample the store does not hold: nothing is written.
    let before = sb.snapshot();
    sb.write(
        "bad_scores.jsonl",
        "{\"sample_id\": 1, \"verifier\": \"x\", \"score\": 1}\n{\"sample_id\": 999, \"verifier\": \"x\", \"score\": 1}\n",
    );
    sb.retort()
        .args(["import", "bad_scores.jsonl"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("bad_scores.jsonl:2").and(predicates::str::contains("sample_id 999 is not in this store")));
    assert_eq!(sb.snapshot(), before);
    // Mixing data files and score files in one command is refused.
    sb.retort().args(["import", "gens.jsonl", "scores.jsonl"]).assert().code(1).stderr(predicates::str::contains("score files"));
}

#[test]
fn tokenizer_json_gives_exact_counts_and_is_recorded() {
    let sb = Sandbox::new();
    // A tiny word-level tokenizer.json: every whitespace-separated word is one token.
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1}, "unk_token": "[UNK]"}
    });
    let tok = sb.write("tokenizer.json", tokenizer.to_string());
    let file = sb.write("pc.jsonl", "{\"prompt\": \"Say hi\", \"completion\": \"hello there my friend\"}\n");
    sb.retort().arg("import").arg(&file).arg("--tokenizer").arg(&tok).assert().success();
    assert_eq!(sb.query_i64("SELECT answer_tokens FROM samples"), 4);
    let s = sb.stats();
    let methods: Vec<&String> = s["token_counts"].as_object().unwrap().keys().collect();
    assert_eq!(methods.len(), 1);
    assert!(methods[0].starts_with("tokenizer:") && methods[0].ends_with("tokenizer.json"), "{methods:?}");
    // Without one, the documented estimate: 21 ASCII bytes -> ceil(21 / 4) = 6.
    let other = Sandbox::new();
    let file = other.write("pc.jsonl", "{\"prompt\": \"Say hi\", \"completion\": \"hello there my friend\"}\n");
    other.retort().arg("import").arg(&file).assert().success();
    assert_eq!(other.query_i64("SELECT answer_tokens FROM samples"), 6);
    assert_eq!(other.stats()["token_counts"]["estimate"], json!(1));
}
