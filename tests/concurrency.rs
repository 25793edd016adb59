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
    let file = file.to_str().unwrap();
    let writers = vec![
        ("import", retort(&sb, &["import", file])),
        ("rules", retort(&sb, &["rules", "apply", "--expr", "accept where tokens > 10"])),
        ("verify", retort(&sb, &["verify", "-v", "length", "-v", "format"])),
        ("rules again", retort(&sb, &["rules", "apply", "--expr", "tag \"long\" where tokens > 400"])),
    ];
    for (name, child) in writers {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} failed beside the others: {stderr}");
        assert!(!stderr.contains("locked"), "{name}: {stderr}");
    }
    let samples = sb.query_i64("SELECT count(*) FROM samples");
    assert!(samples >= 30_000);
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_fts"), samples, "the full-text index holds every sample");
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
}
