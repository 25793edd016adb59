//! The TUI's decisions beside other writers: every key's decision reaches the store, in the
//! order the keys were pressed, while an import holds the store's write lock again and again.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::sync::Arc;

use common::Sandbox;
use retort::domain::Status;
use retort::tui::app::{Effect, Msg};
use retort::tui::{Input, Runner};

/// A JSONL file of `n` prompt/completion rows of ~2 KB: an import that takes a while.
fn big_file(sb: &Sandbox, n: usize) -> std::path::PathBuf {
    let mut text = String::with_capacity(n * 2200);
    for i in 0..n {
        let line = serde_json::json!({"prompt": format!("Question {i}: {}", "why ".repeat(40)), "completion": format!("Answer {i}. {}", "because ".repeat(200))});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    sb.write("big.jsonl", text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_lands_in_key_order_beside_an_import() {
    let sb = Sandbox::new();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    let ids: Vec<i64> = (1..=100).collect();
    let file = big_file(&sb, 40_000);
    let import = std::process::Command::new(assert_cmd::cargo::cargo_bin("retort"))
        .arg("import")
        .arg(&file)
        .env("RETORT_DB", sb.db())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let the import reach its writing.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Input>();
    let runner = Runner::new(store.clone(), Arc::new(retort::tui::search::SearchEngine::default()), tx);
    // For each sample the keys a, then x: accept, then reject. The reject is the decision.
    for id in &ids {
        runner.run(vec![Effect::SetStatus { ids: vec![*id], status: Status::Accepted }]);
        runner.run(vec![Effect::SetStatus { ids: vec![*id], status: Status::Rejected }]);
    }
    let mut answers = 0;
    while answers < 2 * ids.len() {
        match tokio::time::timeout(std::time::Duration::from_mins(2), rx.recv()).await.unwrap().unwrap() {
            Input::Msg(Msg::Changed { .. }) => answers += 1,
            Input::Msg(Msg::Error(e)) => panic!("a decision failed: {e}"),
            _ => {}
        }
    }
    let out = import.wait_with_output().unwrap();
    assert!(out.status.success(), "the import beside the TUI: {}", String::from_utf8_lossy(&out.stderr));
    let accepted = sb.query_i64("SELECT count(*) FROM samples WHERE id <= 100 AND status = 'accepted'");
    let rejected = sb.query_i64("SELECT count(*) FROM samples WHERE id <= 100 AND status = 'rejected'");
    assert_eq!((accepted, rejected), (0, 100), "the last key wins for every sample");
    // Each sample's history in key order: accepted, then rejected.
    let orders = sb.query_i64(
        "SELECT count(*) FROM (SELECT sample_id, group_concat(new_value, ',') AS seq FROM \
         (SELECT sample_id, new_value FROM decisions WHERE field = 'status' AND sample_id <= 100 ORDER BY action_id) \
         GROUP BY sample_id) WHERE seq = 'accepted,rejected'",
    );
    assert_eq!(orders, 100);
}
