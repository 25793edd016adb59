//! Several retort processes on one store at once: an import, rule runs and a verify write beside
//! each other; none fails with "database is locked" and the full-text index ends complete.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::process::{Command, Stdio};

use common::Sandbox;

/// A JSONL file of `n` prompt/completion rows of ~2 KB.
fn big_file(sb: &Sandbox, n: usize) -> std::path::PathBuf {
    let mut text = String::with_capacity(n * 2200);
    for i in 0..n {
        let line = serde_json::json!({"prompt": format!("Question {i}: {}", "why ".repeat(40)), "completion": format!("Answer {i}. {}", "because ".repeat(200))});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    sb.write("big.jsonl", text)
}

fn retort(sb: &Sandbox, args: &[&str]) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("retort"))
        .args(args)
        .env("RETORT_DB", sb.db())
        .current_dir(sb.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn an_import_rules_and_a_verify_at_once_all_finish_and_the_index_is_whole() {
    let sb = Sandbox::new();
    sb.retort().assert().success(); // the demo set
    let file = big_file(&sb, 30_000);
    let import = retort(&sb, &["import", file.to_str().unwrap()]);
    let verify = retort(&sb, &["verify", "-v", "length", "-v", "format"]);
    // Rules applied one after another for as long as the import runs: some land while it writes
    // its samples, some while it fills the full-text index.
    let mut import = Some(import);
    let mut rounds = 0;
    let mut import_out = None;
    while import_out.is_none() || rounds < 4 {
        let expr = if rounds % 2 == 0 { "tag \"seen\" where tokens > 10" } else { "untag \"seen\" where tokens > 10" };
        let out = retort(&sb, &["rules", "apply", "--expr", expr]).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a rule beside the import: {stderr}");
        rounds += 1;
        if let Some(mut child) = import.take() {
            match child.try_wait().unwrap() {
                Some(_) => import_out = Some(child.wait_with_output().unwrap()),
                None => import = Some(child),
            }
        }
        assert!(rounds < 500, "the import does not finish");
    }
    for (name, out) in [("import", import_out.unwrap()), ("verify", verify.wait_with_output().unwrap())] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} failed beside the others: {stderr}");
        assert!(!stderr.contains("locked"), "{name}: {stderr}");
    }
    let samples = sb.query_i64("SELECT count(*) FROM samples");
    assert!(samples >= 30_000);
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_fts"), samples, "the full-text index holds every sample");
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_text_index_fills_while_another_process_writes_all_the_time() {
    let sb = Sandbox::new();
    let file = big_file(&sb, 12_000);
    sb.retort().arg("import").arg(&file).assert().success();
    // Empty the index again, and fill it while another connection commits without pause: a
    // transaction that reads first and then writes fails at once when a commit came between
    // (SQLITE_BUSY_SNAPSHOT); one that takes the write lock up front waits its turn.
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    sqlx::query("DELETE FROM sample_fts").execute(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM meta WHERE key = 'fts_indexed_upto'").execute(store.pool()).await.unwrap();
    let other = retort::store::Store::open(&sb.db()).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let mut commits = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sqlx::query("UPDATE samples SET decided_at = ? WHERE id = 1").bind(commits as i64).execute(other.pool()).await.unwrap();
                commits += 1;
            }
            commits
        })
    };
    let indexed = retort::store::fts::catch_up(&store, |_| {}).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits = hammer.await.unwrap();
    assert!(commits > 0, "the other writer committed meanwhile");
    assert_eq!(indexed.unwrap(), 12_000);
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_fts"), 12_000);
}

/// A write that notes `name` in `order` once it holds the lock.
fn write_in_turn(
    store: &retort::store::Store,
    order: &std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    let (store, order) = (store.clone(), std::sync::Arc::clone(order));
    tokio::spawn(async move {
        let tx = store.write().await.unwrap();
        order.lock().unwrap().push(name);
        tx.commit().await.unwrap();
    })
}

/// SQLite's lock has no queue: whoever asks at the moment it is let go of gets it. A
/// curator's key claims the next turn (the store's `-turn` file) and a batch writer that asks
/// after the claim waits for the key, however the two happen to poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curators_write_goes_before_a_batch_write_that_asked_after_it() {
    use std::sync::{Arc, Mutex};
    let sb = Sandbox::new();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let person = store.eager().unwrap();
    for _ in 0..20 {
        let order = Arc::new(Mutex::new(Vec::new()));
        // A batch writer (an import) holds the lock.
        let holder = store.write().await.unwrap();
        let key = write_in_turn(&person, &order, "key");
        while !store.wanted() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let batch = write_in_turn(&store, &order, "batch");
        // Both are waiting now; the holder lets go.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        holder.commit().await.unwrap();
        key.await.unwrap();
        batch.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["key", "batch"]);
        assert!(!store.wanted(), "the key's claim ends with its commit");
    }
}
