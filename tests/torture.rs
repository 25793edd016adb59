//! Everything at once on one store: the TUI deciding (its real writer, in this process), an
//! import, rule runs, a verify and an export as other processes, each killed (`kill -9`) at
//! random moments and run again. Afterwards the store is sound, every key's decision is there in
//! key order, no process met "database is locked", and the reruns complete the work.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::Sandbox;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use retort::domain::Status;
use retort::tui::app::{Effect, Msg};
use retort::tui::{Input, Runner};

fn big_file(sb: &Sandbox, name: &str, n: usize, salt: &str) -> std::path::PathBuf {
    let mut text = String::with_capacity(n * 2200);
    for i in 0..n {
        let line = serde_json::json!({"prompt": format!("{salt} question {i}: {}", "why ".repeat(40)), "completion": format!("Answer {i}. {}", "because ".repeat(200))});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    sb.write(name, text)
}

fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("retort"))
        .args(args)
        .env("RETORT_DB", sb.db())
        .current_dir(sb.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child, or kills it with SIGKILL after `after`; returns its stderr and whether it
/// finished by itself with success.
fn finish_or_kill(mut child: Child, after: Duration) -> (String, bool) {
    let deadline = std::time::Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (String::from_utf8_lossy(&out.stderr).into_owned(), status.success());
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill(); // SIGKILL
            let out = child.wait_with_output().unwrap();
            return (String::from_utf8_lossy(&out.stderr).into_owned(), false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_an_import_rules_a_verify_and_an_export_at_once_with_kills() {
    let sb = Sandbox::new();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    let files: Vec<std::path::PathBuf> = (0..3).map(|i| big_file(&sb, &format!("big{i}.jsonl"), 8_000, &format!("set {i}"))).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Input>();
    let runner = Runner::new(store.clone(), Arc::new(retort::tui::search::SearchEngine::default()), tx);
    let mut rng = StdRng::seed_from_u64(7);
    let mut stderrs = Vec::new();
    let mut expected: std::collections::BTreeMap<i64, Status> = std::collections::BTreeMap::new();
    let mut keys = 0usize;
    for (round, file) in files.iter().enumerate() {
        let file = file.to_str().unwrap().to_owned();
        let out = format!("sft{}", round % 2);
        let writers = vec![
            spawn(&sb, &["import", &file]),
            spawn(&sb, &["rules", "apply", "--expr", "tag \"t\" where tokens > 100"]),
            spawn(&sb, &["verify", "-v", "length", "-v", "format"]),
            spawn(&sb, &["export", "--format", "messages", "--status", "pending,accepted,rejected", "--val", "0.1", "--out", &out]),
        ];
        // The curator decides meanwhile: for the demo's first 100 samples, random keys.
        for _ in 0..150 {
            let id = rng.random_range(1..=100i64);
            let status = [Status::Accepted, Status::Rejected, Status::Pending][rng.random_range(0..3)];
            runner.run(vec![Effect::SetStatus { ids: vec![id], status }]);
            expected.insert(id, status);
            keys += 1;
        }
        // Each writer is killed at a random moment, or finishes first.
        for child in writers {
            let (stderr, _) = finish_or_kill(child, Duration::from_millis(rng.random_range(50..2500)));
            stderrs.push(stderr);
        }
    }
    let mut answered = 0;
    while answered < keys {
        match tokio::time::timeout(Duration::from_mins(2), rx.recv()).await.unwrap().unwrap() {
            Input::Msg(Msg::Changed { .. }) => answered += 1,
            Input::Msg(Msg::Error(e)) => panic!("a decision failed: {e}"),
            _ => {}
        }
    }
    // Reruns, uninterrupted, complete what the kills cut short.
    for file in &files {
        let (stderr, ok) = finish_or_kill(spawn(&sb, &["import", file.to_str().unwrap()]), Duration::from_mins(2));
        assert!(ok, "the import run again: {stderr}");
    }
    let (stderr, ok) = finish_or_kill(spawn(&sb, &["export", "--format", "messages", "--out", "sft0"]), Duration::from_mins(2));
    assert!(ok, "the export run again: {stderr}");
    for stderr in &stderrs {
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
    // Every key's decision, the last key for each sample winning.
    for (id, status) in &expected {
        assert_eq!(sb.query_string(&format!("SELECT status FROM samples WHERE id = {id}")).unwrap(), status.as_str(), "sample #{id}");
    }
    let samples = sb.query_i64("SELECT count(*) FROM samples");
    assert_eq!(samples, sb.query_i64("SELECT count(*) FROM samples WHERE prompt_id IN (SELECT id FROM prompts)"));
    assert!(samples >= 24_000, "{samples}");
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_fts"), samples, "the full-text index is complete");
    // The export directories hold whole sets.
    for dir in ["sft0", "sft1"] {
        let path = sb.path(dir);
        if !path.exists() {
            continue;
        }
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path.join("manifest.json")).unwrap()).unwrap();
        for part in manifest["parts"].as_object().unwrap().values() {
            let lines = std::fs::read_to_string(path.join(part["file"].as_str().unwrap())).unwrap().lines().count();
            assert_eq!(lines as u64, part["samples"].as_u64().unwrap(), "{dir}");
        }
    }
}
