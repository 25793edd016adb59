//! The command line as a newcomer meets it: the demo set, help, exit codes, the store's settings.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::Sandbox;
use predicates::prelude::*;
use serde_json::json;

#[test]
fn first_run_imports_the_demo_set_once() {
    let sb = Sandbox::new();
    sb.retort()
        .assert()
        .success()
        .stderr(predicate::str::contains("importing the demo set"))
        .stdout(predicate::str::contains("samples over"));
    let s = sb.stats();
    // 60 + 60 + 10 + 10 Sky-T1/Qwen traces, 60 Alpaca, 40 ShareGPT, 1 with log-probs.
    assert_eq!(s["samples"], json!(241));
    assert_eq!(s["by_label"]["soft"], json!(1));
    assert_eq!(s["by_kind"]["general"], json!(101));
    assert_eq!(s["verifiers"]["imported"]["scored"], json!(140));
    // 60 MATH500 + 10 AMC23 problems (two teachers each), 40 GSM8K, 60 Alpaca, 40 ShareGPT
    // conversations of which two share every turn before the answer (39 prompts), 1 exchange.
    let expected_prompts = 60 + 10 + 40 + 60 + 39 + 1;
    assert_eq!(s["prompts"], json!(expected_prompts));
    assert_eq!(s["unindexed"], json!(0));
    // The store is not empty any more: a second start imports nothing.
    sb.retort().assert().success().stderr(predicate::str::contains("demo").not());
    assert_eq!(sb.stats()["samples"], json!(241));
}

#[test]
fn db_flag_and_env_choose_the_store() {
    let sb = Sandbox::new();
    let other = sb.path("other.db");
    sb.retort().arg("--db").arg(&other).args(["stats", "--json"]).assert().success();
    assert!(other.exists());
    assert!(!sb.db().exists());
}

#[test]
fn usage_errors_exit_2_and_user_errors_exit_1() {
    let sb = Sandbox::new();
    sb.retort().args(["import"]).assert().code(2);
    sb.retort().args(["import", "--kind", "poetry", "x.jsonl"]).assert().code(2).stderr(predicate::str::contains("reasoning, general"));
    sb.retort().args(["import", "missing.jsonl"]).assert().code(1).stderr(predicate::str::contains("missing.jsonl: no such file"));
    sb.retort()
        .args(["import", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("sharegpt").and(predicate::str::contains("--skip-bad")));
}

#[test]
fn store_is_laid_out_for_speed() {
    let sb = Sandbox::new();
    sb.retort().args(["stats"]).assert().success();
    assert_eq!(sb.query_i64("PRAGMA page_size"), 16384);
    assert_eq!(sb.query_string("PRAGMA journal_mode").as_deref(), Some("wal"));
    // Every table of the data model is there.
    for table in [
        "prompts",
        "prompt_texts",
        "samples",
        "sample_texts",
        "sample_logprobs",
        "scores",
        "verifiers",
        "decisions",
        "actions",
        "rules",
        "tags",
        "sample_tags",
        "notes",
        "exports",
        "runs",
        "run_metrics",
        "imports",
        "sample_fts",
    ] {
        assert_eq!(sb.query_i64(&format!("SELECT count(*) FROM sqlite_master WHERE name = '{table}'")), 1, "{table}");
    }
}

#[test]
fn bash_completion_offers_commands_and_each_flags_values() {
    let sb = Sandbox::new();
    let script = sb.retort().args(["completions", "bash"]).assert().success().get_output().stdout.clone();
    let script = sb.write("retort.bash", script);
    // bash's completion call, as a shell makes it: the words so far and the one being completed.
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| -> String {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _retort retort '{cur}' '{prev}'; echo \"${{COMPREPLY[*]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(complete("retort exp", 1, "exp", "retort"), "export");
    assert_eq!(complete("retort export --format ''", 3, "", "--format"), "messages prompt-completion sharegpt alpaca openai kd");
    assert_eq!(complete("retort export --reasoning ''", 3, "", "--reasoning"), "inline field drop");
    assert!(complete("retort verify -v ''", 3, "", "-v").starts_with("math exact format"));
    assert!(!sb.db().exists(), "printing a script opens no store");
    // A value outside the list is a usage error that names the choices.
    sb.retort()
        .args(["export", "--format", "jsonl", "--out", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("[possible values: messages, prompt-completion, sharegpt, alpaca, openai, kd]"));
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    use std::io::Read;
    let sb = Sandbox::new();
    sb.retort().assert().success(); // the demo set
    for args in [&["list", "--json"][..], &["completions", "zsh"][..]] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("retort"))
            .env("RETORT_DB", sb.db())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -c 100`: read a little, then close the pipe.
        let mut first = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn stats_tell_each_teachers_accepted_and_rejected() {
    let sb = Sandbox::new();
    sb.retort().args(["import"]).arg(common::data("skythought/sky-t1-14b_amc23.jsonl")).assert().success();
    sb.retort().args(["import"]).arg(common::data("skythought/sky-t1-wrong-14b_amc23.jsonl")).assert().success();
    // Nothing decided yet: the plain table, without the decision columns.
    sb.retort().arg("stats").assert().success().stdout(predicate::str::contains("accepted rejected").not());
    sb.retort().args(["rules", "apply", "--expr", "accept where score.imported >= 1"]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "reject where score.imported < 1"]).assert().success();
    let s = sb.stats();
    for teacher in ["sky-t1-14b_amc23", "sky-t1-wrong-14b_amc23"] {
        let id = sb.query_i64(&format!("SELECT id FROM teachers WHERE name = '{teacher}'"));
        let count = |status: &str| sb.query_i64(&format!("SELECT count(*) FROM samples WHERE teacher_id = {id} AND status = '{status}'"));
        assert_eq!(s["decided_by_teacher"][teacher], json!({"accepted": count("accepted"), "rejected": count("rejected")}), "{teacher}");
    }
    let accepted: i64 = s["decided_by_teacher"].as_object().unwrap().values().map(|d| d["accepted"].as_i64().unwrap()).sum();
    assert_eq!(json!(accepted), s["by_status"]["accepted"]);
    let out = sb.retort().arg("stats").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("samples  share accepted rejected"), "{text}");
    let line = text.lines().find(|l| l.trim_start().starts_with("sky-t1-14b_amc23")).unwrap();
    let d = &s["decided_by_teacher"]["sky-t1-14b_amc23"];
    assert!(line.ends_with(&format!("{:>8} {:>8}", d["accepted"].as_i64().unwrap(), d["rejected"].as_i64().unwrap())), "{line}");
}

#[test]
fn stored_text_never_reaches_the_terminal_raw() {
    let sb = Sandbox::new();
    // A teacher whose name retitles the terminal (OSC 0) and writes the clipboard (OSC 52), a
    // prompt with a colour and a bell, a source with a bidi override.
    let evil = "evil\u{1b}]0;pwned\u{7}\u{1b}]52;c;aGk=\u{7}";
    let rows = [
        json!({"messages": [{"role": "user", "content": "red \u{1b}[31mtext\u{1b}[0m\u{7} here"}, {"role": "assistant", "content": "ok \u{9b}31m"}],
               "model": evil, "source": "src\u{202e}txt"}),
    ];
    sb.write("evil.jsonl", common::to_jsonl(rows));
    let runs: Vec<Vec<&str>> = vec![
        vec!["import", "evil.jsonl"],
        vec!["list"],
        vec!["stats"],
        vec!["rules", "apply", "--expr", "accept where teacher contains \"evil\""],
        vec!["undo"],
        vec!["list", "--json"],
        vec!["stats", "--json"],
    ];
    for args in runs {
        let out = sb.retort().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !bytes.contains(&0x1b) && !bytes.contains(&0x07),
                "{args:?} wrote a raw control byte to {stream}: {:?}",
                String::from_utf8_lossy(bytes)
            );
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains('\u{9b}') && !text.contains('\u{202e}'), "{args:?}: {text}");
        }
    }
    // Shown, as stand-ins.
    let listed = String::from_utf8(sb.retort().arg("list").output().unwrap().stdout).unwrap();
    assert!(listed.contains("evil␛]0;pwned␇"), "{listed}");
    // An error quoting stored text is safe too.
    let out = sb.retort().args(["undo", "--rule", "no\u{1b}[2Jsuch"]).output().unwrap();
    assert!(!out.stderr.contains(&0x1b) && !out.stdout.contains(&0x1b));
}
