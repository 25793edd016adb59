//! The full-text index built by the background indexer an import starts (`--index
//! background`, and `auto` past 100k samples) is the index the command builds itself, and a
//! killed indexer is finished by `retort index` with nothing indexed twice.

mod common;

use std::time::{Duration, Instant};

use common::Sandbox;

/// `n` prompt/completion rows whose texts mix words, math and accents (phrase queries: `f(x)`
/// is the phrase "f x", `3.14` is "3 14").
fn mixed_file(sb: &Sandbox, n: usize) -> std::path::PathBuf {
    const WORDS: &[&str] =
        &["why", "because", "f(x)", "x+y", "3.14", "café", "Cafe", "the", "root", "prime", "don't", "e.g.", "17", "x", "f"];
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut text = String::new();
    for i in 0..n {
        let mut words = |k: usize| (0..k).map(|_| WORDS[next() % WORDS.len()]).collect::<Vec<_>>().join(" ");
        let line = serde_json::json!({
            "prompt": format!("Question {i}: {}", words(3)),
            "completion": format!("<think>{}</think>{}", words(8), words(2)),
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    sb.write("mixed.jsonl", text)
}

/// What each query finds: the matching sample ids, in order.
fn results(sb: &Sandbox) -> Vec<(String, String)> {
    let queries =
        [r#""why""#, r#""f(x)""#, r#""x+y""#, r#""3.14""#, r#""cafe""#, r#""café" "root""#, r#""don't" "prime""#, r#""question" "17""#];
    queries
        .iter()
        .map(|q| {
            let ids = sb
                .query_string(&format!(
                    "SELECT group_concat(rowid) FROM (SELECT rowid FROM sample_fts WHERE sample_fts MATCH '{}' ORDER BY rowid)",
                    q.replace('\'', "''")
                ))
                .unwrap_or_default();
            ((*q).to_owned(), ids)
        })
        .collect()
}

/// Waits until the store's full-text index holds every sample.
fn wait_indexed(sb: &Sandbox) {
    let deadline = Instant::now() + Duration::from_mins(3);
    while sb.stats()["unindexed"].as_i64() != Some(0) {
        assert!(Instant::now() < deadline, "the background indexer did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The process id the import's note names: "...in the background (process 1234)...".
fn background_pid(stderr: &str) -> u32 {
    let at = stderr.find("(process ").unwrap_or_else(|| panic!("no background indexer named: {stderr}"));
    stderr[at + 9..].split(')').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{stderr}"))
}

#[test]
fn the_background_index_finds_what_the_commands_index_finds() {
    let now = Sandbox::new();
    let file = mixed_file(&now, 3_000);
    now.retort().args(["import", "--index", "now"]).arg(&file).assert().success();
    let expected = results(&now);
    assert!(expected.iter().all(|(_, ids)| !ids.is_empty()), "every query finds something: {expected:?}");
    assert_ne!(expected[1].1, expected[2].1, "the phrases f(x) and x(f) are in different samples: positions are kept");

    let background = Sandbox::new();
    let file = mixed_file(&background, 3_000);
    let out = background.retort().args(["import", "--index", "background"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    background_pid(&String::from_utf8_lossy(&out.stderr));
    wait_indexed(&background);
    assert_eq!(results(&background), expected);
    let samples = background.query_i64("SELECT count(*) FROM samples");
    assert_eq!(background.query_i64("SELECT count(*) FROM sample_fts"), samples, "each sample indexed once");
}

#[test]
fn a_killed_background_indexer_is_finished_by_retort_index() {
    let reference = Sandbox::new();
    let file = mixed_file(&reference, 20_000);
    reference.retort().args(["import", "--index", "now"]).arg(&file).assert().success();
    let expected = results(&reference);

    let sb = Sandbox::new();
    let file = mixed_file(&sb, 20_000);
    let out = sb.retort().args(["import", "--index", "background"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid = background_pid(&String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    // kill -9, wherever it is: between chunks, inside one, or done already.
    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
    // A second indexer beside a possibly live one: chunks interleave, none is indexed twice.
    sb.retort().arg("index").assert().success();
    assert_eq!(sb.stats()["unindexed"].as_i64(), Some(0));
    assert_eq!(results(&sb), expected);
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_fts"), sb.query_i64("SELECT count(*) FROM samples"));
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
}
