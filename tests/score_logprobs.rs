//! `retort score-logprobs` on real Sky-T1 traces against a local stand-in for vLLM that answers
//! completions with `prompt_logprobs` in vLLM's exact shape (null first, the prompt's token with
//! its rank, `decoded_token`, −9999 for −∞), and misbehaves as servers do.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Sandbox, data, jsonl, read_request, student_with};
use serde_json::{Map, Value, json};

/// How the stand-in answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// vLLM, with a 429, a 500, a body cut off and a dropped connection among the first requests.
    Vllm,
    /// An OpenAI-compatible server that ignores `prompt_logprobs`.
    NoPromptLogprobs,
}

struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Value>>>,
}

/// The teacher's answer at position `i` of a prompt whose token there is `t`: most positions
/// have `t` first (log-prob −0.05) and `t+1`, `t+2`... after it; every fourth has `t` outside
/// the top-k at rank k+5, every ninth at −∞ (vLLM's −9999).
fn position(i: usize, t: u64, k: u64, vocab: u64) -> Value {
    let mut entry = Map::new();
    let outside = i.is_multiple_of(4);
    let own = if i.is_multiple_of(9) {
        -9999.0
    } else if outside {
        -6.0
    } else {
        -0.05
    };
    entry.insert(t.to_string(), json!({"logprob": own, "rank": if outside { k + 5 } else { 1 }, "decoded_token": "x"}));
    for j in 0..k {
        let id = if outside { (t + 1 + j) % vocab } else { (t + j) % vocab };
        if id == t && !outside {
            continue;
        }
        entry.insert(id.to_string(), json!({"logprob": -2.0 - j as f64, "rank": j + 1, "decoded_token": "y"}));
    }
    Value::Object(entry)
}

fn server(mode: Mode, vocab: u64, delay_ms: u64) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (seen, count) = (Arc::clone(&seen), Arc::clone(&count));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (headers, request) = read_request(&mut reader);
                assert!(headers.starts_with("POST /v1/completions "), "{headers}");
                seen.lock().unwrap().push(request.clone());
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                let i = count.fetch_add(1, Ordering::SeqCst);
                let ids: Vec<u64> = request["prompt"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
                let k = request["prompt_logprobs"].as_u64().unwrap();
                let (status, text) = match (mode, i) {
                    (Mode::Vllm, 0) => ("429 Too Many Requests\r\nRetry-After: 0", "{\"error\": \"slow down\"}".to_owned()),
                    (Mode::Vllm, 2) => ("500 Internal Server Error", "{\"error\": \"boom\"}".to_owned()),
                    (Mode::Vllm, 4) => ("200 OK", "{\"choices\": [{\"prompt_logprobs\": [null".to_owned()),
                    (Mode::Vllm, 6) => return, // the connection closes without an answer
                    (Mode::Vllm, _) => {
                        let mut logprobs = vec![Value::Null];
                        logprobs.extend(ids.iter().enumerate().skip(1).map(|(i, t)| position(i, *t, k, vocab)));
                        let body = json!({"id": format!("cmpl-{i}"), "object": "text_completion", "created": 1, "model": request["model"],
                            "choices": [{"index": 0, "text": "!", "logprobs": null, "finish_reason": "length", "stop_reason": null,
                                         "prompt_logprobs": logprobs}],
                            "usage": {"prompt_tokens": ids.len(), "total_tokens": ids.len() + 1, "completion_tokens": 1}});
                        ("200 OK", body.to_string())
                    }
                    (Mode::NoPromptLogprobs, _) => {
                        ("200 OK", json!({"choices": [{"index": 0, "text": "!", "finish_reason": "length"}]}).to_string())
                    }
                };
                let _ =
                    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}", text.len());
            });
        }
    });
    Server { url, requests }
}

/// A teacher (and student) model directory: ChatML and a word-level byte-level vocabulary of
/// the words of the traces (the rest unknown), so that ids are small and many.
fn model(sb: &Sandbox, file: &std::path::Path) -> (std::path::PathBuf, u64) {
    let mut words: Vec<String> = ["<unk>", "user", "assistant", "system", "\u{10a}"].map(str::to_owned).to_vec();
    let text = std::fs::read_to_string(file).unwrap();
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).take(3000) {
        let spelled = format!("\u{120}{w}");
        if !words.contains(&spelled) {
            words.push(spelled);
        }
    }
    let n = words.len() as u64 + 2;
    (student_with(sb, "model", &words), n)
}

fn amc(sb: &Sandbox) -> std::path::PathBuf {
    let lines: Vec<String> =
        std::fs::read_to_string(data("skythought/sky-t1-14b_amc23.jsonl")).unwrap().lines().take(12).map(str::to_owned).collect();
    sb.write("amc.jsonl", lines.join("\n") + "\n")
}

fn score_cmd(sb: &Sandbox, url: &str, model: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = sb.retort();
    cmd.args(["score-logprobs", "--endpoint", url, "--model", "sky-teacher", "--top-k", "3", "--retries", "3", "--timeout", "5"])
        .arg("--template")
        .arg(model)
        .arg("--student")
        .arg(model);
    cmd
}

#[test]
fn pseudo_traces_become_soft_through_a_vllm_shaped_server() {
    let sb = Sandbox::new();
    let file = amc(&sb);
    let (model, vocab) = model(&sb, &file);
    sb.retort().arg("import").arg(&file).assert().success();
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE label = 'pseudo'"), 12);
    let server = server(Mode::Vllm, vocab, 0);
    let out = score_cmd(&sb, &server.url, &model).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("12 samples to score: 12 scored"), "{stdout}");
    assert!(stdout.contains("12 labelled soft, 0 failed"), "{stdout}");

    // The request is vLLM's teacher-forcing one: token ids, one token to generate, K prompt log-probs.
    let first = server.requests.lock().unwrap()[0].clone();
    assert_eq!(first["max_tokens"], 1);
    assert_eq!(first["prompt_logprobs"], 3);
    assert_eq!(first["model"], "sky-teacher");
    assert!(first["prompt"].as_array().unwrap().len() > 100);

    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE label = 'soft' AND has_logprobs = 1"), 12);
    // The run is recorded (for the TUI's status line while it runs), finished.
    assert_eq!(
        sb.query_string(
            "SELECT json_extract(progress, '$.scoring') || ' ' || json_extract(progress, '$.total') || ' ' || (finished_at IS NOT NULL) \
             FROM imports WHERE format = 'score-logprobs'"
        ),
        Some("1 12 1".to_owned())
    );
    assert_eq!(
        sb.query_i64(
            "SELECT count(*) FROM sample_logprobs l JOIN teachers t ON t.id = l.scorer_id \
             WHERE t.name = 'sky-teacher' AND l.k = 3 AND l.temperature = 1.0 AND l.packed IS NOT NULL AND l.content IS NULL \
             AND l.vocabulary_id IS NOT NULL AND l.mean_logprob < 0 AND l.min_logprob <= l.mean_logprob"
        ),
        12
    );
    assert_eq!(sb.query_i64("SELECT size FROM vocabularies"), vocab as i64);
    // The teacher's least likely token is vLLM's −∞, stored at the floor.
    assert_eq!(sb.query_string("SELECT CAST(min(min_logprob) AS TEXT) FROM sample_logprobs").unwrap(), "-63.9990234375");

    // A rerun has nothing left to do.
    let again = score_cmd(&sb, &server.url, &model).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 samples to score"), "{}", String::from_utf8_lossy(&again.stdout));

    // Rules read the teacher's confidence: perplexity is exp(−mean log-prob).
    let threshold: f64 =
        sb.query_string("SELECT CAST(-avg(mean_logprob) AS TEXT) FROM sample_logprobs").unwrap().parse::<f64>().unwrap().exp();
    let above = sb.query_i64(&format!("SELECT count(*) FROM sample_logprobs WHERE mean_logprob < {}", -threshold.ln()));
    assert!(above > 0 && above < 12, "{above}");
    let listed = sb.retort().args(["list", "--json", "--where", &format!("perplexity > {threshold}")]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count() as i64, above);
    sb.retort().args(["rules", "apply", "--expr", &format!("reject where perplexity > {threshold}")]).assert().success();
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), above);
    sb.retort().args(["rules", "apply", "--expr", "accept where min_logprob > -70 and status = pending"]).assert().success();

    // The kd export takes the scored samples as they are: rows hold the server's top-k.
    sb.retort().args(["export", "--format", "kd", "--out", "kd"]).arg("--model").arg(&model).assert().success();
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(sb.path("kd/manifest.json")).unwrap()).unwrap();
    let soft = &manifest["soft_labels"];
    assert_eq!(soft["top_k"], 3);
    let stored =
        sb.query_i64("SELECT sum(positions) FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id WHERE s.status = 'accepted'");
    assert_eq!(soft["teacher_rows"].as_i64().unwrap(), stored);
    let by_source = soft["by_source"].as_object().unwrap();
    assert_eq!(by_source.values().flat_map(|t| t.as_object().unwrap().keys().cloned()).collect::<Vec<_>>(), ["sky-teacher k=3 T=1"]);
    let lines = jsonl(&sb.path("kd/train.jsonl"));
    assert_eq!(lines.len() as i64, 12 - above);
    let mut seen_own = 0;
    for line in &lines {
        let (ids, targets, lps) =
            (line["token_ids"].as_array().unwrap(), line["target_token_ids"].as_array().unwrap(), line["logprobs"].as_array().unwrap());
        assert_eq!(ids.len(), targets.len());
        assert_eq!(line["temperature"], 1.0);
        for ((t, row), lp) in ids.iter().zip(targets).zip(lps) {
            let t = t.as_u64().unwrap();
            if row[0].as_u64() == Some(t) && (lp[0].as_f64().unwrap() + 0.05).abs() < 1e-3 {
                assert_eq!(row[1].as_u64(), Some((t + 1) % vocab));
                assert!((lp[1].as_f64().unwrap() + 3.0).abs() < 1e-3, "{lp}");
                seen_own += 1;
            }
        }
    }
    assert!(seen_own > 100, "{seen_own}");
}

#[test]
fn a_server_without_prompt_logprobs_fails_each_sample_and_changes_nothing() {
    let sb = Sandbox::new();
    let file = amc(&sb);
    let (model, vocab) = model(&sb, &file);
    sb.retort().arg("import").arg(&file).assert().success();
    let before = sb.snapshot();
    let server = server(Mode::NoPromptLogprobs, vocab, 0);
    let out = score_cmd(&sb, &server.url, &model).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("12 failed"), "{stdout}");
    assert!(stdout.contains("the answer has no `choices[0].prompt_logprobs`"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the same command asks for them again"));
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_logprobs"), 0);
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_student_with_another_tokenizer_is_a_located_error() {
    let sb = Sandbox::new();
    let file = amc(&sb);
    let (model, vocab) = model(&sb, &file);
    let other = student_with(&sb, "other", &["<unk>".to_owned(), "\u{120}the".to_owned()]);
    sb.retort().arg("import").arg(&file).assert().success();
    let server = server(Mode::Vllm, vocab, 0);
    let out = sb
        .retort()
        .args(["score-logprobs", "--endpoint", &server.url, "--model", "m", "--top-k", "2", "--template"])
        .arg(&model)
        .arg("--student")
        .arg(&other)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sample #1: the answer's token "), "{stdout}");
    assert!(stdout.contains(" for the teacher but 0 \"<unk>\" for the student"), "{stdout}");
    assert!(stdout.contains("teacher and student must share a tokenizer"), "{stdout}");
    // Nothing was sent for a sample the student could not learn from.
    assert!(server.requests.lock().unwrap().is_empty());
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_logprobs"), 0);
}

/// Killed at random moments beside a curator's writer, then run again: every sample scored
/// once, no curator decision lost, and nothing half-written in between.
#[test]
fn killed_beside_another_writer_a_rerun_completes_it() {
    let sb = Sandbox::new();
    let file = amc(&sb);
    let (model, vocab) = model(&sb, &file);
    sb.retort().arg("import").arg(&file).assert().success();
    let server = server(Mode::Vllm, vocab, 40);
    let bin = assert_cmd::cargo::cargo_bin("retort");
    let writer = {
        let (bin, db, dir) = (bin.clone(), sb.db(), sb.dir.path().to_owned());
        std::thread::spawn(move || {
            for i in 0..12 {
                let expr = if i % 2 == 0 { "accept where tokens > 0" } else { "reject where tokens > 0" };
                let ok = std::process::Command::new(&bin)
                    .args(["rules", "apply", "--expr", expr])
                    .env("RETORT_DB", &db)
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
            }
        })
    };
    for wait_ms in [300, 700] {
        let mut child = std::process::Command::new(&bin)
            .args([
                "score-logprobs",
                "--endpoint",
                &server.url,
                "--model",
                "t",
                "--top-k",
                "3",
                "--concurrency",
                "2",
                "--where",
                "tokens > 0",
            ])
            .arg("--template")
            .arg(&model)
            .env("RETORT_DB", sb.db())
            .current_dir(sb.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever was stored is whole: a scored sample is marked and soft.
        assert_eq!(
            sb.query_i64(
                "SELECT count(*) FROM sample_logprobs l JOIN samples s ON s.id = l.sample_id WHERE s.has_logprobs = 0 OR s.label != 'soft'"
            ),
            0
        );
    }
    writer.join().unwrap();
    let out = sb
        .retort()
        .args(["score-logprobs", "--endpoint", &server.url, "--model", "t", "--top-k", "3", "--where", "tokens > 0"])
        .arg("--template")
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_logprobs"), 12);
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE label = 'soft'"), 12);
    // The other writer's twelve applications all landed, the last one a reject.
    assert_eq!(sb.query_i64("SELECT count(*) FROM actions"), 12);
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'rejected'"), 12);
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
}

#[test]
fn the_benchmark_scores_reads_back_and_exports_what_it_says() {
    let sb = Sandbox::new();
    let dir = sb.path("bench");
    let out = sb.retort().args(["bench", "score-logprobs", "--samples", "40", "--phrases", "5", "--dir"]).arg(&dir).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    // Nine in ten synthetic samples are pseudo: 36 scored, each "step two then" ×5 plus the turn's tokens.
    assert!(text.contains("36 of 40 samples scored (0 failed)"), "{text}");
    // 18-bit ids at K = 20: 21 × 34 bits a token, and the header.
    assert!(text.contains("B/token packed") && text.contains("89."), "{text}");
    assert!(text.contains("read back as the kd export reads them") && text.contains("retort export --format kd: 40 samples"), "{text}");
    let lines = std::fs::read_to_string(dir.join("kd").join("train.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 40);
}
