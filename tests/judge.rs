//! The LLM judge against a local OpenAI-compatible stand-in: retries on 429, scores parsed,
//! unparseable replies recorded as failures, the API key never stored or printed.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{Sandbox, data, head, read_request};
use predicates::prelude::*;
use serde_json::{Value, json};

/// Serves chat completions on loopback: the first request gets 429, then the judge "scores" each
/// sample 8/10, except prompts mentioning "octagon", which get a reply without a score.
fn judge_server(requests: Arc<Mutex<Vec<(String, Value)>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (headers, request) = read_request(&mut reader);
            let prompt = request["messages"][0]["content"].as_str().unwrap_or("").to_owned();
            requests.lock().unwrap().push((headers, request));
            let (status, reply) = if n == 0 {
                ("429 Too Many Requests\r\nRetry-After: 0", json!({"error": {"message": "slow down"}}))
            } else {
                let content = if prompt.contains("octagon") { "I cannot grade this." } else { "{\"score\": 8, \"reason\": \"correct\"}" };
                (
                    "200 OK",
                    json!({"object": "chat.completion", "model": "judge", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}),
                )
            };
            let body = reply.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/v1")
}

#[test]
fn judge_scores_through_an_openai_compatible_endpoint() {
    let sb = Sandbox::new();
    sb.write("gens.jsonl", head(&data("skythought/sky-t1-14b_aime24.jsonl"), 4));
    sb.retort().args(["import", "gens.jsonl"]).assert().success();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let endpoint = judge_server(Arc::clone(&requests));
    sb.retort()
        .env("JUDGE_KEY", "sk-secret-123")
        .args(["verify", "-v", "judge", "--endpoint", &endpoint, "--model", "grader", "--api-key-env", "JUDGE_KEY", "--jobs", "1"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("judge: 3 of 3 checked passed (100.0%), mean score 0.800; 1 could not be checked")
                .and(predicate::str::contains("sk-secret").not()),
        );
    let seen = requests.lock().unwrap();
    // One 429 retried, then one request per sample, each with the key and the rendered rubric.
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter().all(|(h, _)| h.contains("authorization: Bearer sk-secret-123") || h.contains("Authorization: Bearer sk-secret-123"))
    );
    assert_eq!(seen[1].1["model"], "grader");
    assert!(seen[1].1["messages"][0]["content"].as_str().unwrap().contains("The reference answer is"));
    let octagon = head(&data("skythought/sky-t1-14b_aime24.jsonl"), 4).matches("octagon").count();
    let s = sb.stats();
    assert_eq!(s["verifiers"]["judge"]["errors"], json!(octagon.min(1)));
    assert!((s["verifiers"]["judge"]["mean"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    assert_eq!(sb.query_i64("SELECT count(*) FROM scores WHERE error LIKE '%no score%'"), octagon.min(1) as i64);
    assert_eq!(sb.query_i64("SELECT count(*) FROM verifiers WHERE config LIKE '%sk-secret%'"), 0);
    // Missing settings are usage errors, found before any request.
    sb.retort().args(["verify", "-v", "judge", "--endpoint", &endpoint]).assert().code(1).stderr(predicate::str::contains("--model"));
    sb.retort().args(["verify", "-v", "judge", "--model", "m"]).assert().code(1).stderr(predicate::str::contains("--endpoint"));
}
