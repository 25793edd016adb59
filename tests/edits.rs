//! A curator's edits (`retort edit`): the edited answer or reference is the sample's hard label,
//! everything downstream (list, export, full-text search, stats) reads it, the history keeps the
//! text it replaced, and undo / redo treat it like any decision.
#![allow(clippy::unwrap_used)]

mod common;

use common::Sandbox;
use predicates::prelude::*;
use serde_json::Value;

/// An editor that writes `text` into the file it is given: what a curator would type.
fn editor_writing(text: &str) -> String {
    format!("sh -c 'printf \"%s\" \"$0\" > \"$1\"' '{text}'")
}

/// `retort edit ARGS` with `$EDITOR` set to `editor` (and `$VISUAL` out of the way).
fn edit(sb: &Sandbox, editor: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    sb.retort().arg("edit").args(args).env("EDITOR", editor).env_remove("VISUAL").assert()
}

/// 40 Sky-T1 AMC23 generations with their reference answers and verdicts.
fn imported() -> Sandbox {
    let sb = Sandbox::new();
    sb.retort().args(["import", common::data("skythought/sky-t1-14b_amc23.jsonl").to_str().unwrap()]).assert().success();
    sb
}

fn samples(sb: &Sandbox) -> Vec<Value> {
    let out = sb.retort().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn sample(sb: &Sandbox, id: i64) -> Value {
    samples(sb).into_iter().find(|s| s["id"] == id).unwrap()
}

/// Samples the full-text index finds for a word.
async fn found(store: &retort::store::Store, word: &str) -> i64 {
    retort::store::browse::counts(store, &retort::store::browse::ListFilter::Text(word.into())).await.unwrap().matching
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_answer_is_a_hard_label_that_list_export_search_and_stats_follow_and_undo_puts_back() {
    let sb = imported();
    let first = &samples(&sb)[0];
    let id = first["id"].as_i64().unwrap();
    let (original, label) = (first["answer"].as_str().unwrap().to_owned(), first["label"].as_str().unwrap().to_owned());
    assert_ne!(label, "hard");
    let hard = sb.stats()["by_label"]["hard"].as_i64().unwrap();
    // Accepted first, so the export holds it; then edited.
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens > 0"]).assert().success();
    let fixed = "The answer is \\boxed{zanzibarite}.";
    edit(&sb, &editor_writing(fixed), &[&id.to_string()])
        .success()
        .stdout(predicate::str::contains(format!("Sample #{id}: answer edited")).and(predicate::str::contains("retort undo")));

    let s = sample(&sb, id);
    assert_eq!(s["answer"], fixed);
    assert_eq!(s["label"], "hard");
    assert_eq!(s["status"], "accepted", "an edit leaves the decision as it was");
    let stats = sb.stats();
    assert_eq!(stats["edited"], 1);
    assert_eq!(stats["by_label"]["hard"], hard + 1);
    let report = sb.retort().arg("stats").output().unwrap();
    assert!(String::from_utf8_lossy(&report.stdout).contains("1 sample edited by the curator"));

    // The export writes the edited text, never the original.
    sb.retort().args(["export", "--format", "messages", "--out", "out", "--val", "0"]).assert().success();
    let written = std::fs::read_to_string(sb.path("out/train.jsonl")).unwrap();
    let rows: Vec<Value> = written.lines().filter(|l| l.contains("zanzibarite")).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    let answer = rows[0]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    assert!(answer.ends_with(fixed) && !answer.contains(original.trim()), "{answer}");

    // Full-text search finds the new word, and the history keeps the text it replaced.
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    assert_eq!(found(&store, "zanzibarite").await, 1);
    let history = retort::store::edits::history(&store, id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].old_text.as_deref(), Some(original.as_str()));
    assert_eq!(history[0].new_text, fixed);
    let detail = retort::store::browse::detail(&store, id, false).await.unwrap().unwrap();
    assert!(detail.history.iter().any(|h| h.change.starts_with("edit answer:") && h.actor == "curator"), "{:?}", detail.history);
    assert!(detail.history.iter().any(|h| h.change == format!("label {label} → hard")), "{:?}", detail.history);

    // Undo puts back text and label; the index follows.
    sb.retort().arg("undo").assert().success().stdout(predicate::str::contains(format!("edit answer of #{id}")));
    let s = sample(&sb, id);
    assert_eq!(s["answer"], original.as_str());
    assert_eq!(s["label"], label.as_str());
    assert_eq!(sb.stats()["edited"], 0);
    assert_eq!(found(&store, "zanzibarite").await, 0);

    // Redo (the TUI's ctrl-r) makes it again, with its moves for the status line.
    let redone = retort::ops::undo::redo(&store).await.unwrap().unwrap();
    assert_eq!(redone.reverted, 1);
    assert!(
        redone.moves.iter().any(|m| matches!(m, retort::store::actions::Move::Label { to: retort::domain::LabelType::Hard, n: 1, .. }))
    );
    assert_eq!(sample(&sb, id)["answer"], fixed);
    assert_eq!(found(&store, "zanzibarite").await, 1);
    assert_eq!(sb.stats()["edited"], 1);
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edit_of_a_hard_label_moves_no_count_and_the_tokens_follow_the_text() {
    let sb = imported();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let id = samples(&sb)[1]["id"].as_i64().unwrap();
    let before = sample(&sb, id);
    let first = retort::ops::edit::edit_text(&store, id, retort::ops::edit::EditField::Answer, "abcdefgh").await.unwrap().unwrap();
    assert_eq!(first.moves.len(), 1, "{:?}", first.moves);
    let after = sample(&sb, id);
    // The estimate the import counted with: 8 ASCII bytes are 2 tokens.
    assert_eq!(after["tokens"].as_i64().unwrap(), before["reasoning_tokens"].as_i64().unwrap() + 2);
    // Already hard: a second edit moves no count.
    let second = retort::ops::edit::edit_text(&store, id, retort::ops::edit::EditField::Answer, "abcd").await.unwrap().unwrap();
    assert!(second.moves.is_empty());
    // The same text again is no edit at all.
    let actions = sb.query_i64("SELECT count(*) FROM actions");
    assert!(retort::ops::edit::edit_text(&store, id, retort::ops::edit::EditField::Answer, "abcd").await.unwrap().is_none());
    assert_eq!(sb.query_i64("SELECT count(*) FROM actions"), actions);
    // Two undos: back to the teacher's answer and tokens.
    retort::ops::undo::undo(&store, &retort::ops::undo::UndoTarget::Last(2)).await.unwrap();
    let back = sample(&sb, id);
    assert_eq!((&back["answer"], &back["tokens"], &back["label"]), (&before["answer"], &before["tokens"], &before["label"]));
}

#[test]
fn the_reference_is_written_from_a_file_for_every_sample_of_the_prompt_and_undone() {
    let sb = imported();
    let all = samples(&sb);
    let s = &all[0];
    let (id, prompt) = (s["id"].as_i64().unwrap(), s["prompt_id"].clone());
    let siblings = all.iter().filter(|x| x["prompt_id"] == prompt).count();
    let old = s["reference"].clone();
    sb.write("ref.txt", "1234\n");
    edit(&sb, "false", &[&id.to_string(), "--reference", "--file", "ref.txt"])
        .success()
        .stdout(predicate::str::contains("reference edited"));
    let now = samples(&sb);
    // The editor's (here the file's) final newline is not part of the answer.
    assert_eq!(now.iter().filter(|x| x["prompt_id"] == prompt && x["reference"] == "1234").count(), siblings);
    assert_eq!(now.iter().find(|x| x["id"] == id).unwrap()["label"], "hard");
    assert_eq!(sb.stats()["edited"], 1);
    sb.retort().arg("undo").assert().success();
    assert_eq!(sample(&sb, id)["reference"], old);
    // From standard input, too.
    sb.retort().args(["edit", &id.to_string(), "--reference", "--file", "-"]).write_stdin("5678").assert().success();
    assert_eq!(sample(&sb, id)["reference"], "5678");
}

#[test]
fn no_change_an_empty_text_an_unknown_sample_and_a_failed_editor_say_so_and_store_nothing() {
    let sb = imported();
    let id = samples(&sb)[0]["id"].as_i64().unwrap().to_string();
    let before = sb.snapshot();
    // Quitting the editor without saving.
    edit(&sb, "true", &[&id]).success().stdout(predicate::str::contains("No change"));
    edit(&sb, &editor_writing(""), &[&id])
        .code(1)
        .stderr(predicate::str::contains("an empty answer is not stored").and(predicate::str::contains(format!("sample #{id}"))));
    edit(&sb, &editor_writing("   "), &[&id]).code(1).stderr(predicate::str::contains("empty answer"));
    edit(&sb, "sh -c 'exit 3' sh", &[&id])
        .code(1)
        .stderr(predicate::str::contains("failed").and(predicate::str::contains("3")).and(predicate::str::contains("nothing was changed")));
    edit(&sb, "no-such-editor-anywhere", &[&id]).code(1).stderr(predicate::str::contains("cannot start the editor"));
    edit(&sb, &editor_writing("x"), &["999999"]).code(1).stderr(predicate::str::contains("no sample #999999"));
    edit(&sb, "true", &[&id, "--file", "missing.txt"]).code(1).stderr(predicate::str::contains("missing.txt"));
    assert_eq!(sb.snapshot(), before, "nothing was written");
    sb.retort()
        .args(["edit", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hard label").and(predicate::str::contains("$EDITOR")));
}

/// Edits made while another process imports all the time: every edit and every imported sample
/// is there at the end, and the full-text index holds the edited text.
#[test]
fn edits_beside_a_running_import_lose_nothing() {
    let sb = imported();
    let ids: Vec<i64> = samples(&sb).iter().take(6).map(|s| s["id"].as_i64().unwrap()).collect();
    let mut text = String::new();
    for i in 0..20_000 {
        let line = serde_json::json!({"prompt": format!("Question {i}: {}", "why ".repeat(40)), "completion": format!("Answer {i}. {}", "because ".repeat(150))});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let big = sb.write("big.jsonl", text);
    let mut import = std::process::Command::new(assert_cmd::cargo::cargo_bin("retort"))
        .arg("import")
        .arg(&big)
        .env("RETORT_DB", sb.db())
        .current_dir(sb.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Edits one after another for as long as the import runs (its samples, then its index).
    let mut last = vec![String::new(); ids.len()];
    let mut round = 0;
    while round < ids.len() || import.try_wait().unwrap().is_none() {
        let i = round % ids.len();
        last[i] = format!("quokka{round}");
        edit(&sb, &editor_writing(&last[i]), &[&ids[i].to_string()]).success();
        round += 1;
        assert!(round < 2_000, "the import does not finish");
    }
    let out = import.wait_with_output().unwrap();
    eprintln!("{round} edits beside the import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 40 + 20_000);
    let all = samples(&sb);
    for (id, text) in ids.iter().zip(&last) {
        let s = all.iter().find(|s| s["id"] == *id).unwrap();
        assert_eq!(&s["answer"], text);
        assert_eq!(s["label"], "hard");
    }
    assert_eq!(sb.stats()["edited"], 6);
    assert_eq!(sb.query_i64("SELECT count(*) FROM actions WHERE description LIKE 'edit answer%'"), round as i64);
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_fts"), 40 + 20_000, "the index holds every sample once");
    for text in &last {
        assert_eq!(sb.query_i64(&format!("SELECT count(*) FROM sample_fts WHERE sample_fts MATCH '{text}'")), 1, "{text}");
    }
}
