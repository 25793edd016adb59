//! The TUI's decisions beside other writers: every key's decision reaches the store, in the
//! order the keys were pressed, while an import holds the store's write lock again and again.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::sync::Arc;

use common::Sandbox;
use retort::domain::Status;
use retort::tui::action::Action;
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

/// Feeds `actions` to the App as fast as keys come, its effects to the runner, then its answers
/// back until nothing has arrived for a while.
async fn drive(app: &mut retort::tui::app::App, runner: &Runner, rx: &mut tokio::sync::mpsc::UnboundedReceiver<Input>, actions: &[Action]) {
    for a in actions {
        runner.run(app.update(*a));
    }
    while let Ok(Some(input)) = tokio::time::timeout(std::time::Duration::from_millis(800), rx.recv()).await {
        if let Input::Msg(m) = input {
            runner.run(app.receive(m));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_screen_counts_is_what_the_store_holds_after_undo_and_redo() {
    let sb = Sandbox::new();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    retort::demo::import_demo(&store).await.unwrap();
    let file = big_file(&sb, 30_000);
    let import = std::process::Command::new(assert_cmd::cargo::cargo_bin("retort"))
        .arg("import")
        .arg(&file)
        .env("RETORT_DB", sb.db())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Input>();
    let runner = Runner::new(store.clone(), Arc::new(retort::tui::search::SearchEngine::default()), tx);
    let keymap = retort::tui::keymap::KeyMap::load(None).unwrap();
    let mut app = retort::tui::app::App::new(keymap, (120, 40));
    let start = app.start();
    runner.run(start);
    drive(&mut app, &runner, &mut rx, &[]).await;
    // The keys of the issue (a, u, ctrl-r), and more, pressed while the import writes.
    let rounds: [&[Action]; 4] = [
        &[Action::Accept, Action::Undo, Action::Redo],
        &[Action::Reject, Action::SelectPrevious, Action::Accept, Action::Undo, Action::Undo, Action::Redo],
        &[Action::LabelSoft, Action::Accept, Action::Reject, Action::Undo, Action::LabelHard, Action::Redo],
        &[Action::SelectNext, Action::Reject, Action::Reject, Action::Undo, Action::Accept, Action::Redo, Action::Undo],
    ];
    for keys in rounds {
        drive(&mut app, &runner, &mut rx, keys).await;
    }
    let _ = import.wait_with_output();
    drive(&mut app, &runner, &mut rx, &[]).await;
    // The import's samples are all pending and pseudo, and the TUI counts them when it next
    // reads the counts; what the curator decided shows as the store holds it.
    let count = |sql: &str| sb.query_i64(&format!("SELECT count(*) FROM samples WHERE {sql}"));
    let c = &app.counts;
    assert_eq!(
        (c.accepted, c.rejected, c.hard, c.soft),
        (count("status = 'accepted'"), count("status = 'rejected'"), count("label = 'hard'"), count("label = 'soft'")),
        "the status line's counts are the store's"
    );
    for row in &app.rows {
        let stored = sb.query_string(&format!("SELECT status || '/' || label FROM samples WHERE id = {}", row.id)).unwrap();
        assert_eq!(format!("{}/{}", row.status, row.label), stored, "row #{} on screen", row.id);
    }
}
