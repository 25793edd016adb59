//! `retort generate` against a local stand-in for an OpenAI-compatible server that answers in
//! the recorded DeepSeek format (reasoning_content) and misbehaves on purpose.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Sandbox, data, head, read_request};
use predicates::prelude::*;
use serde_json::{Value, json};

struct Server {
    url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

/// Answers like deepseek-reasoner (the recorded example), `n` choices per request. The first
/// request gets 429 with Retry-After; prompts containing `fail_always` get 500; `echo_key` gets a
/// 401 whose body quotes the Authorization header back (as some servers do); the first request
/// for a prompt containing `flaky` gets a 200 whose body is cut off, for `drop` a closed
/// connection, for `slow` an answer after the client's timeout.
fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/deepseek_reasoner_nonstream.example.json")).unwrap()).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let flaky_done = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let slowed = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (seen, recorded, count, flaky_done) = (Arc::clone(&seen), recorded.clone(), Arc::clone(&count), Arc::clone(&flaky_done));
            let (dropped, slowed) = (Arc::clone(&dropped), Arc::clone(&slowed));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (headers, request) = read_request(&mut reader);
                let prompt = request["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .map(|m| m["content"].as_str().unwrap_or("").to_owned())
                    .unwrap_or_default();
                seen.lock().unwrap().push((headers.clone(), request.clone()));
                let n = request["n"].as_u64().unwrap_or(1);
                if prompt.contains("hang") {
                    std::thread::sleep(std::time::Duration::from_mins(1));
                }
                if prompt.contains("drop") && dropped.fetch_add(1, Ordering::SeqCst) == 0 {
                    return; // the connection closes without an answer
                }
                if prompt.contains("slow") && slowed.fetch_add(1, Ordering::SeqCst) == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                }
                let i = count.fetch_add(1, Ordering::SeqCst);
                let (status, text) = if i == 0 {
                    ("429 Too Many Requests\r\nRetry-After: 0".to_owned(), "{\"error\": \"slow down\"}".to_owned())
                } else if prompt.contains("fail_always") {
                    ("500 Internal Server Error".to_owned(), "{\"error\": \"boom\"}".to_owned())
                } else if prompt.contains("echo_key") {
                    let auth =
                        headers.lines().find(|l| l.to_ascii_lowercase().starts_with("authorization")).unwrap_or("").trim().to_owned();
                    ("401 Unauthorized".to_owned(), json!({"error": format!("Incorrect API key provided in `{auth}`")}).to_string())
                } else if prompt.contains("flaky") && flaky_done.fetch_add(1, Ordering::SeqCst) == 0 {
                    ("200 OK".to_owned(), "{\"choices\": [".to_owned())
                } else {
                    let mut response = recorded.clone();
                    let choice = response["choices"][0].clone();
                    response["choices"] = Value::Array(
                        (0..n)
                            .map(|k| {
                                let mut c = choice.clone();
                                c["index"] = json!(k);
                                c["message"]["content"] = json!(format!("Answer {k} to: {}", prompt.chars().take(30).collect::<String>()));
                                c
                            })
                            .collect(),
                    );
                    ("200 OK".to_owned(), response.to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    Server { url, requests }
}

#[test]
fn every_prompt_gets_its_samples_or_a_recorded_failure_and_a_rerun_completes() {
    let sb = Sandbox::new();
    let mut lines = head(&data("gsm8k/test.jsonl"), 4);
    lines.push_str("{\"question\": \"This one is flaky: what is 2+2?\", \"answer\": \"#### 4\"}\n");
    lines.push_str("{\"question\": \"This one will fail_always: what is 3+3?\", \"answer\": \"#### 6\"}\n");
    lines.push_str("{\"question\": \"This one is dropped once: what is 4+4?\", \"answer\": \"#### 8\"}\n");
    lines.push_str("{\"question\": \"This one is slow once: what is 5+5?\", \"answer\": \"#### 10\"}\n");
    lines.push_str("{\"question\": \"This one will echo_key back: what is 6+6?\", \"answer\": \"#### 12\"}\n");
    sb.write("prompts.jsonl", lines);
    let srv = server();
    let run = |sb: &Sandbox| {
        sb.retort()
            .env("TEACHER_KEY", "sk-very-secret")
            .args(["generate", "--prompts", "prompts.jsonl", "--endpoint", &srv.url, "--model", "deepseek-reasoner", "--n", "3"])
            .args(["--retries", "2", "--concurrency", "4", "--api-key-env", "TEACHER_KEY", "--temperature", "0.6", "--timeout", "0.5"])
            .assert()
            // What arrived is stored, and the failed requests make the exit status 1.
            .code(1)
            .stderr(predicate::str::contains("requests failed; the same command asks for them again"))
    };
    run(&sb).stdout(predicate::str::contains("9 prompts").and(predicate::str::contains("sk-very-secret").not()));
    // Seven prompts have their three samples (the dropped, the slow and the cut-off one asked
    // again); the bad one failed on 500s and the one whose server echoes the key on a 401, both
    // recorded, the key never.
    let per_prompt =
        |sb: &Sandbox| sb.query_i64("SELECT count(*) FROM (SELECT prompt_id FROM samples GROUP BY prompt_id HAVING count(*) = 3)");
    assert_eq!(per_prompt(&sb), 7);
    assert_eq!(sb.query_i64("SELECT count(*) FROM generation_failures"), 2);
    assert!(sb.query_string("SELECT error FROM generation_failures WHERE error LIKE '%500%'").is_some());
    let echoed = sb.query_string("SELECT error FROM generation_failures WHERE error LIKE '%401%'").unwrap();
    assert!(echoed.contains("Incorrect API key provided in `authorization: Bearer [the API key]`"), "{echoed}");
    // The reasoning came apart from the answer, with the parameters and the finish reason.
    assert_eq!(
        sb.query_string("SELECT DISTINCT t.name FROM samples s JOIN teachers t ON t.id = s.teacher_id").as_deref(),
        Some("deepseek-reasoner")
    );
    assert!(sb.query_string("SELECT reasoning FROM sample_texts LIMIT 1").unwrap().starts_with("Okay, the user wrote"));
    assert_eq!(
        sb.query_string("SELECT CAST(json_extract(params, '$.temperature') AS TEXT) FROM sample_texts LIMIT 1").as_deref(),
        Some("0.6")
    );
    assert_eq!(sb.query_string("SELECT DISTINCT finish_reason FROM samples").as_deref(), Some("stop"));
    // The key went out in the header only: never in the store.
    assert!(srv.requests.lock().unwrap().iter().any(|(h, _)| h.to_ascii_lowercase().contains("bearer sk-very-secret")));
    assert!(!sb.snapshot().contains("sk-very-secret"));
    // Again: only the missing prompts are asked, nothing is duplicated.
    let before = srv.requests.lock().unwrap().len();
    run(&sb).stdout(predicate::str::contains("7 already complete"));
    let asked: Vec<Value> = srv.requests.lock().unwrap()[before..].iter().map(|(_, r)| r.clone()).collect();
    assert!(asked.iter().all(|r| r["messages"][0]["content"].as_str().unwrap().contains("echo_key")
        || r["messages"][0]["content"].as_str().unwrap().contains("fail_always")));
    assert_eq!(per_prompt(&sb), 7);
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 21);
    assert_eq!(sb.query_i64("SELECT count(*) FROM (SELECT content_hash FROM samples GROUP BY content_hash HAVING count(*) > 1)"), 0);
}

#[test]
fn an_unreachable_teacher_is_named_with_the_cause_and_fails_the_run() {
    let sb = Sandbox::new();
    sb.write("prompts.jsonl", head(&data("gsm8k/test.jsonl"), 20));
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    sb.retort()
        .args(["generate", "--prompts", "prompts.jsonl", "--model", "m", "--retries", "2", "--concurrency", "1"])
        .args(["--endpoint", &format!("http://127.0.0.1:{port}/v1")])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("20 requests failed"))
        .stdout(predicate::str::contains(format!("http://127.0.0.1:{port}/v1/chat/completions: error sending request: ")))
        .stdout(predicate::str::contains("gave up after 3 attempts; last error: "))
        .stdout(predicate::str::contains("onnection refused"))
        // Once a request found no server and none has answered, the rest are not sent (each
        // would retry for seconds against a server that is down).
        .stdout(predicate::str::contains("not sent: no server could be reached (http://127.0.0.1"))
        .stderr(predicate::str::contains("20 of 20 requests failed"));
    assert_eq!(sb.query_i64("SELECT count(*) FROM generation_failures"), 20);
}

#[test]
fn batch_file_requests_come_back_through_import() {
    let sb = Sandbox::new();
    sb.write("prompts.jsonl", head(&data("gsm8k/test.jsonl"), 3));
    sb.retort()
        .args(["generate", "--prompts", "prompts.jsonl", "--model", "gpt-4o-mini", "--n", "2", "--batch-file", "batch_in.jsonl"])
        .assert()
        .success()
        .stdout(predicate::str::contains("3 requests written"));
    // The provider's output file: one answer per request, in the recorded Batch API shape.
    let recorded: Value =
        serde_json::from_str(std::fs::read_to_string(data("wire-formats/openai_batch_output_example.jsonl")).unwrap().trim()).unwrap();
    let mut answers = Vec::new();
    for line in std::fs::read_to_string(sb.path("batch_in.jsonl")).unwrap().lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        assert_eq!(request["body"]["n"], 2);
        let mut answer = recorded.clone();
        answer["custom_id"] = request["custom_id"].clone();
        let choice = answer["response"]["body"]["choices"][0].clone();
        answer["response"]["body"]["choices"] = json!([choice.clone(), choice]);
        answers.push(answer);
    }
    sb.write("batch_out.jsonl", common::to_jsonl(answers));
    sb.retort().args(["import", "batch_in.jsonl", "batch_out.jsonl"]).assert().success();
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 6);
    assert_eq!(sb.query_i64("SELECT count(DISTINCT prompt_id) FROM samples"), 3);
    assert_eq!(sb.query_i64("SELECT count(*) FROM prompts"), 3, "the batch's prompts are the prompts asked");
}

#[test]
fn regenerate_truncated_replaces_only_cut_off_samples_once() {
    let sb = Sandbox::new();
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/deepseek_reasoner_nonstream.example.json")).unwrap()).unwrap();
    // Two logged calls: one answer complete, one cut off by the token limit.
    let mut rows = Vec::new();
    for (question, finish) in [("What is 6*7?", "stop"), ("Prove Fermat's last theorem.", "length")] {
        let mut response = recorded.clone();
        response["choices"][0]["finish_reason"] = json!(finish);
        response["choices"][0]["message"]["content"] = json!(format!("About {question}"));
        rows.push(
            json!({"request": {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": question}]}, "response": response}),
        );
    }
    sb.write("calls.jsonl", common::to_jsonl(rows));
    sb.retort().args(["import", "calls.jsonl"]).assert().success();
    let srv = server();
    let run = |sb: &Sandbox| {
        sb.retort()
            .args(["generate", "--all", "--regenerate-truncated", "--endpoint", &srv.url, "--model", "deepseek-reasoner", "--retries", "2"])
            .assert()
            .success()
    };
    run(&sb).stdout(predicate::str::contains("1 samples stored"));
    let asked: Vec<String> =
        srv.requests.lock().unwrap().iter().filter_map(|(_, r)| r["messages"][0]["content"].as_str().map(str::to_owned)).collect();
    assert!(asked.iter().all(|q| q.contains("Fermat")), "{asked:?}");
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 3);
    assert_eq!(
        sb.query_string("SELECT s.finish_reason FROM samples s JOIN sample_tags st ON st.sample_id = s.id").as_deref(),
        Some("length")
    );
    // Nothing left to replace: a rerun asks nothing.
    let before = srv.requests.lock().unwrap().len();
    run(&sb).stdout(predicate::str::contains("2 already complete"));
    assert_eq!(srv.requests.lock().unwrap().len(), before);
}

#[test]
fn ctrl_c_keeps_what_arrived() {
    let sb = Sandbox::new();
    let mut lines = head(&data("gsm8k/test.jsonl"), 2);
    lines.push_str("{\"question\": \"This one will hang forever\", \"answer\": \"#### 1\"}\n");
    sb.write("prompts.jsonl", lines);
    let srv = server();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("retort"))
        .current_dir(sb.dir.path())
        .arg("--db")
        .arg(sb.db())
        .args(["generate", "--prompts", "prompts.jsonl", "--endpoint", &srv.url, "--model", "m", "--n", "2", "--retries", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the two quick prompts' samples, then interrupt while the third hangs.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        let stored = rusqlite::Connection::open(sb.db())
            .ok()
            .and_then(|c| c.query_row("SELECT count(*) FROM samples", [], |r| r.get::<_, i64>(0)).ok());
        if stored == Some(4) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Meanwhile the TUI's status line shows the run, from its heartbeat in the store.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let line = rt.block_on(async {
        let store = retort::store::Store::open(&sb.db()).await.unwrap();
        let mut h = retort::tui::Headless::new(store, (160, 30)).await.unwrap();
        let mut line = String::new();
        for _ in 0..100 {
            h.settle(vec![retort::tui::app::Effect::LoadGenerations]).await;
            line = h.app.status_line();
            if line.contains("4 samples") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        line
    });
    assert!(line.contains("generating m: 2/3 requests, 4 samples"), "{line}");
    assert!(line.contains("of 4 · #1 │ pending 4"), "the counts follow the samples arriving: {line}");
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Interrupted: everything that had arrived is stored"));
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 4);
    assert_eq!(sb.query_i64("SELECT count(*) FROM generation_failures"), 0);
    // Stopped, it no longer shows as running.
    let running = rt.block_on(async {
        let store = retort::store::Store::open(&sb.db()).await.unwrap();
        retort::ops::generate::running(&store).await.unwrap()
    });
    assert!(running.is_empty(), "{running:?}");
}

/// Answers with the recorded responses verbatim: the logprobs example when log-probs are asked,
/// the live n=3 example when three choices are, else deepseek-reasoner's.
fn replay_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let read = |name: &str| std::fs::read_to_string(data(&format!("wire-formats/{name}"))).unwrap();
    let (logprobs, n3, reasoner) = (
        read("openai_chat_completion_logprobs.json"),
        read("openai_chat_completion_n3_live.json"),
        read("deepseek_reasoner_nonstream.example.json"),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (headers, request) = read_request(&mut reader);
            seen.lock().unwrap().push((headers, request.clone()));
            let text = if request["logprobs"] == json!(true) {
                &logprobs
            } else if request["n"] == json!(3) {
                &n3
            } else {
                &reasoner
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    Server { url, requests }
}

#[test]
fn recorded_wire_formats_n3_logprobs_and_reasoning_content_are_stored_whole() {
    let sb = Sandbox::new();
    sb.write("prompts.jsonl", head(&data("gsm8k/test.jsonl"), 2));
    let srv = replay_server();
    let generate = |extra: &[&str]| {
        sb.retort()
            .args(["generate", "--prompts", "prompts.jsonl", "--endpoint", &srv.url, "--retries", "0"])
            .args(extra)
            .assert()
            .success()
    };
    // n=3: the three choices of the live recording, each a sample, usage kept.
    generate(&["--model", "gpt-4o", "--n", "3"]).stdout(predicate::str::contains("6 samples stored"));
    let n3: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/openai_chat_completion_n3_live.json")).unwrap()).unwrap();
    let mut expected: Vec<String> =
        n3["choices"].as_array().unwrap().iter().map(|c| c["message"]["content"].as_str().unwrap().to_owned()).collect();
    expected.sort();
    for prompt in [1, 2] {
        let got = sb.query_string(&format!(
            "SELECT group_concat(answer, '|') FROM (SELECT st.answer FROM samples s JOIN sample_texts st ON st.sample_id = s.id \
             WHERE s.prompt_id = {prompt} ORDER BY st.answer)"
        ));
        assert_eq!(got.unwrap(), expected.join("|"));
    }
    assert_eq!(
        sb.query_i64("SELECT count(*) FROM sample_texts WHERE json_extract(metadata, '$.usage.total_tokens') = 123"),
        6,
        "usage as the server reported it"
    );
    assert_eq!(sb.query_string("SELECT DISTINCT finish_reason FROM samples").as_deref(), Some("stop"));
    // The same command again: nothing is missing, nothing is asked.
    let asked = srv.requests.lock().unwrap().len();
    generate(&["--model", "gpt-4o", "--n", "3"]).stdout(predicate::str::contains("2 already complete"));
    assert_eq!(srv.requests.lock().unwrap().len(), asked);

    // Log-probs: the top-2 alternatives of every token are kept and the sample is a soft label.
    generate(&["--model", "gpt-4o-mini", "--n", "1", "--logprobs", "2"]);
    let asked = srv.requests.lock().unwrap().last().unwrap().1.clone();
    assert_eq!((asked["logprobs"].clone(), asked["top_logprobs"].clone()), (json!(true), json!(2)));
    let soft = "FROM samples s JOIN teachers t ON t.id = s.teacher_id JOIN sample_logprobs l ON l.sample_id = s.id \
                WHERE t.name = 'gpt-4o-mini'";
    assert_eq!(sb.query_i64(&format!("SELECT count(*) {soft} AND s.label = 'soft' AND l.k = 2 AND l.positions = 9")), 2);
    assert_eq!(
        sb.query_string(&format!("SELECT json_extract(l.content, '$[0].top_logprobs[1].token') {soft} LIMIT 1")).as_deref(),
        Some("Hi")
    );

    // reasoning_content: the chain of thought apart from the answer. DeepSeek's API ignores `n`:
    // the second sample of each prompt is asked for in a follow-up request.
    generate(&["--model", "deepseek-reasoner", "--n", "2"]).stdout(predicate::str::contains("4 samples stored"));
    let reasoner: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/deepseek_reasoner_nonstream.example.json")).unwrap()).unwrap();
    let message = &reasoner["choices"][0]["message"];
    let split = "FROM samples s JOIN teachers t ON t.id = s.teacher_id JOIN sample_texts st ON st.sample_id = s.id \
                 WHERE t.name = 'deepseek-reasoner'";
    assert_eq!(
        sb.query_string(&format!("SELECT reasoning {split} LIMIT 1")).unwrap(),
        message["reasoning_content"].as_str().unwrap().trim()
    );
    assert_eq!(sb.query_string(&format!("SELECT answer {split} LIMIT 1")).unwrap(), message["content"].as_str().unwrap().trim());
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 12);
    assert_eq!(sb.query_i64("SELECT count(*) FROM generation_failures"), 0);
}
