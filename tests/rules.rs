//! Rules on the real data, checked against computations made here from the raw files; undo
//! compared with whole-table snapshots.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{Sandbox, data, head, jsonl, to_jsonl};
use predicates::prelude::*;
use serde_json::{Value, json};

const SKY: [&str; 5] = [
    "skythought/qwen2.5-14b-instruct_math500.jsonl",
    "skythought/sky-t1-14b_aime24.jsonl",
    "skythought/sky-t1-14b_amc23.jsonl",
    "skythought/sky-t1-27b_math500.jsonl",
    "skythought/sky-t1-wrong-14b_amc23.jsonl",
];

fn skythought(sb: &Sandbox) {
    sb.retort().arg("import").args(SKY.iter().map(|f| data(f))).assert().success();
}

/// `retort list --json` as values.
fn listed(sb: &Sandbox, filter: &str) -> Vec<Value> {
    let out = sb.retort().args(["list", "--json", "--where", filter]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn count(sb: &Sandbox, filter: &str) -> usize {
    listed(sb, filter).len()
}

/// The samples' curation state: what undo must restore exactly.
fn curation_state(sb: &Sandbox) -> String {
    let snap = sb.snapshot();
    let mut keep = String::new();
    let mut on = false;
    for line in snap.lines() {
        if let Some(t) = line.strip_prefix("## ") {
            on = matches!(t, "samples" | "sample_tags" | "notes" | "scores" | "prompts" | "prompt_texts" | "sample_texts");
        }
        if on {
            keep.push_str(line);
            keep.push('\n');
        }
    }
    keep
}

#[test]
fn r1_curation_on_skythought_matches_an_independent_count() {
    let sb = Sandbox::new();
    skythought(&sb);
    // Independent: per question, the stored verdicts of its generations.
    let mut by_question: HashMap<String, Vec<bool>> = HashMap::new();
    for f in SKY {
        for row in jsonl(&data(f)) {
            by_question.entry(row["question"].as_str().unwrap().to_owned()).or_default().push(row["score"][0].as_bool().unwrap());
        }
    }
    let passing: usize = by_question.values().flatten().filter(|p| **p).count();
    let samples: usize = by_question.values().map(Vec::len).sum();
    let rules = sb.write(
        "curate.rules",
        "# R1-style curation\n\
         correct: accept where score.imported >= 1\n\
         best: keep best 1 per prompt by score.imported, tokens asc\n\
         reject duplicates\n\
         long: tag \"long\" where reasoning_tokens > 8000\n",
    );
    let out = sb.retort().args(["rules", "dry-run", "--json"]).arg(&rules).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dry: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry[0]["changed"], json!(passing));
    // Best-of-n rejects all but one generation of every question.
    assert_eq!(dry[1]["changed"], json!(samples - by_question.len()));
    assert_eq!(dry[2]["changed"], json!(0));
    assert_eq!(count(&sb, "status != \"pending\""), 0, "a dry run wrote something");

    sb.retort().args(["rules", "apply"]).arg(&rules).assert().success().stdout(predicate::str::contains("Applied 4 rules"));
    let all = listed(&sb, "status = \"pending\" or status != \"pending\"");
    assert_eq!(all.len(), samples);
    // Exactly one survivor per prompt, the best: passing when any generation passed, and the
    // shortest among equals.
    let mut groups: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for s in &all {
        groups.entry(s["prompt_id"].as_i64().unwrap()).or_default().push(s);
    }
    for members in groups.values() {
        let alive: Vec<&&Value> = members.iter().filter(|s| s["status"] != "rejected").collect();
        assert_eq!(alive.len(), 1, "{members:?}");
        let best = alive[0];
        let top = members.iter().map(|s| s["scores"]["imported"].as_f64().unwrap()).fold(0.0, f64::max);
        assert!((best["scores"]["imported"].as_f64().unwrap() - top).abs() < f64::EPSILON);
        let shortest =
            members.iter().filter(|s| s["scores"]["imported"].as_f64() == Some(top)).map(|s| s["tokens"].as_i64().unwrap()).min();
        assert_eq!(best["tokens"].as_i64(), shortest);
        assert_eq!(best["status"], if top >= 1.0 { "accepted" } else { "pending" });
    }
    let long = all.iter().filter(|s| s["reasoning_tokens"].as_i64().unwrap() > 8000).count();
    assert_eq!(count(&sb, "tag = \"long\""), long);
    assert_eq!(count(&sb, "status = \"accepted\""), by_question.values().filter(|v| v.iter().any(|p| *p)).count());
    // The rule that decided is recorded, and the reason of a best-of-n rejection.
    let rejected = listed(&sb, "status = \"rejected\"");
    assert!(rejected.iter().all(|s| s["decided_by"] == "rule:best"));
    let reason = sb.query_string("SELECT reason FROM decisions WHERE field = 'status' AND new_value = 'rejected' LIMIT 1").unwrap();
    assert!(reason.starts_with("ranked 2 of 2 for its prompt by score.imported, tokens asc"), "{reason}");
    // Rules are saved in the store.
    assert_eq!(sb.query_i64("SELECT count(*) FROM rules"), 4);
}

#[test]
fn undo_restores_the_exact_previous_state() {
    let sb = Sandbox::new();
    skythought(&sb);
    sb.retort().args(["rules", "apply", "--expr", "first: accept where score.imported >= 1"]).assert().success();
    let before = curation_state(&sb);
    let rules = sb.write(
        "r.rules",
        "best: keep best 1 per prompt by score.imported, tokens asc\n\
         soft: label soft where teacher = \"sky-t1-27b_math500\"\n\
         tag \"long\" where reasoning_tokens > 4000\n\
         untag \"long\" where tokens > 30000\n\
         reject where answer contains \"boxed\"\n",
    );
    sb.retort().args(["rules", "apply"]).arg(&rules).assert().success();
    assert_ne!(curation_state(&sb), before);
    sb.retort().args(["undo", "--last", "5"]).assert().success().stdout(predicate::str::contains("undid").count(5));
    assert_eq!(curation_state(&sb), before);
    // By rule name: only that rule's changes go.
    sb.retort().args(["rules", "apply"]).arg(&rules).assert().success();
    sb.retort().args(["undo", "--rule", "soft"]).assert().success();
    assert_eq!(count(&sb, "label = soft"), 0);
    assert!(count(&sb, "tag = \"long\"") > 0);
    sb.retort().args(["undo", "--rule", "first"]).assert().success();
    assert_eq!(count(&sb, "status = accepted"), 0);
}

#[test]
fn rules_leave_a_curators_decisions_alone_unless_overridden() {
    let sb = Sandbox::new();
    sb.write("gens.jsonl", head(&data("skythought/sky-t1-14b_amc23.jsonl"), 6));
    sb.retort().args(["import", "gens.jsonl"]).assert().success();
    let failing: Vec<i64> = listed(&sb, "score.imported < 1").iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert!(failing.len() >= 2);
    // The curator accepts the first failing sample by hand (what the TUI's `a` does).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = retort::store::Store::open(&sb.db()).await.unwrap();
        retort::ops::decide::set_status(&store, &failing[..1], retort::domain::Status::Accepted).await.unwrap();
        store.close().await;
    });
    sb.retort().args(["rules", "apply", "--expr", "reject where score.imported < 1"]).assert().success();
    assert_eq!(count(&sb, "status = rejected"), failing.len() - 1);
    assert_eq!(listed(&sb, "score.imported < 1 and status = accepted")[0]["decided_by"], "curator");
    sb.retort().args(["rules", "apply", "--override", "--expr", "reject where score.imported < 1"]).assert().success();
    assert_eq!(count(&sb, "status = rejected"), failing.len());
    // Undo the override, then the curator's decision: back to pending.
    sb.retort().args(["undo"]).assert().success();
    assert_eq!(count(&sb, "status = accepted"), 1);
    sb.retort().args(["undo", "--last", "2"]).assert().success();
    assert_eq!(count(&sb, "status = pending"), 6);
}

#[test]
fn exact_and_near_duplicates_are_rejected_with_their_reason() {
    let sb = Sandbox::new();
    let rows = jsonl(&data("skythought/sky-t1-27b_math500.jsonl"));
    let mut lines: Vec<Value> = rows[..40].to_vec();
    // Five exact copies, and ten copies with a few words changed in the trace.
    lines.extend(rows[..5].iter().cloned());
    for row in &rows[10..20] {
        let mut copy = row.clone();
        let trace = copy["code"][0].as_str().unwrap().replacen("the", "that", 3).replacen(" I ", " we ", 2);
        copy["code"][0] = json!(trace);
        lines.push(copy);
    }
    sb.write("dups.jsonl", to_jsonl(lines));
    sb.retort().args(["import", "dups.jsonl"]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "reject duplicates"]).assert().success().stdout(predicate::str::contains("5 changed"));
    let dups = listed(&sb, "status = rejected");
    assert_eq!(dups.iter().map(|s| s["id"].as_i64().unwrap()).collect::<Vec<_>>(), (41..=45).collect::<Vec<_>>());
    let reason = sb.query_string("SELECT reason FROM decisions WHERE sample_id = 41").unwrap();
    assert_eq!(reason, "duplicate of #1");
    sb.retort()
        .args(["rules", "apply", "--expr", "reject near-duplicates threshold 0.8"])
        .assert()
        .success()
        .stdout(predicate::str::contains("10 changed"));
    let near: HashSet<i64> = listed(&sb, "status = rejected").iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(near, (41..=55).collect());
    let reason = sb.query_string("SELECT reason FROM decisions WHERE sample_id = 46").unwrap();
    assert!(reason.starts_with("near-duplicate of #11 (similarity 0."), "{reason}");
}

/// Word n-grams as the README defines them, written again here.
fn ngrams(text: &str, n: usize) -> HashSet<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            cur.push(c.to_ascii_lowercase());
        } else {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            if c.is_alphanumeric() {
                words.push(c.to_lowercase().collect());
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    if words.len() < n {
        return HashSet::from([words]);
    }
    words.windows(n).map(<[String]>::to_vec).collect()
}

#[test]
fn contamination_by_an_evaluation_set() {
    let sb = Sandbox::new();
    skythought(&sb);
    let eval: HashSet<Vec<String>> =
        jsonl(&data("prompts-limo-eval/aime.test.jsonl")).iter().flat_map(|r| ngrams(r["problem"].as_str().unwrap(), 8)).collect();
    let expected: usize = SKY
        .iter()
        .flat_map(|f| jsonl(&data(f)))
        .filter(|r| ngrams(r["question"].as_str().unwrap(), 8).iter().any(|g| eval.contains(g)))
        .count();
    assert!(expected >= 30, "the 30 AIME 2024 problems are in both");
    let rule = format!("decon: reject contaminated by \"{}\"", data("prompts-limo-eval/aime.test.jsonl").display());
    sb.retort()
        .args(["rules", "apply", "--expr", &rule])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{expected} changed")));
    assert_eq!(count(&sb, "status = rejected"), expected);
    let reason = sb.query_string("SELECT reason FROM decisions LIMIT 1").unwrap();
    assert!(reason.contains("shares a 8-gram with") && reason.contains("aime.test.jsonl:"), "{reason}");
    sb.retort()
        .args(["rules", "apply", "--expr", "reject contaminated by \"no/such/file.jsonl\""])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no/such/file.jsonl"));
}

#[test]
fn bad_rules_are_located_and_nothing_runs() {
    let sb = Sandbox::new();
    skythought(&sb);
    let rules = sb.write("bad.rules", "accept where score.imported >= 1\nreject where tokens > \"many\"\n");
    sb.retort()
        .args(["rules", "apply"])
        .arg(&rules)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bad.rules:2:23: `tokens` compares with a number").and(predicate::str::contains("^")));
    assert_eq!(count(&sb, "status = accepted"), 0);
    sb.retort()
        .args(["list", "--where", "scor.math > 1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--where:1:1: unknown field `scor`"));
    sb.retort()
        .args(["rules", "check", "--expr", "keep best 2 per prompt by score.imported desc, tokens asc"])
        .assert()
        .success()
        .stdout("\"--expr:1\": keep best 2 per prompt by score.imported, tokens asc\n");
}

#[test]
fn list_json_carries_what_programs_need() {
    let sb = Sandbox::new();
    sb.write("gens.jsonl", head(&data("skythought/sky-t1-27b_math500.jsonl"), 3));
    sb.retort().args(["import", "gens.jsonl"]).assert().success();
    let rows = listed(&sb, "prompt contains \"polar\"");
    assert_eq!(rows.len(), 1);
    let s = &rows[0];
    for key in [
        "id",
        "prompt_id",
        "status",
        "label",
        "teacher",
        "kind",
        "tokens",
        "finish_reason",
        "scores",
        "passed",
        "prompt",
        "reasoning",
        "answer",
        "reference",
        "hash",
    ] {
        assert!(s.get(key).is_some(), "{key} missing");
    }
    assert_eq!(s["reference"], "(3,\\frac{\\pi}{2})");
    assert_eq!(s["passed"]["imported"], true);
    assert_eq!(s["hash"].as_str().unwrap().len(), 64);
    // Regex and text filters, and limits.
    assert_eq!(count(&sb, "prompt ~ \"^Convert\""), 1);
    let out = sb.retort().args(["list", "--limit", "2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 samples"));
}

#[test]
fn best_of_n_on_the_demo_set() {
    let sb = Sandbox::new();
    sb.retort().assert().success();
    // Independent: distinct prompts that have samples, from the bundled files themselves.
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let mut prompts: HashSet<String> = HashSet::new();
    let mut samples = 0;
    for f in ["sky-t1-27b_math500", "qwen2.5-14b-instruct_math500", "sky-t1-14b_amc23", "sky-t1-wrong-14b_amc23"] {
        for r in jsonl(&demo.join(format!("{f}.jsonl"))) {
            prompts.insert(format!("q:{}", r["question"]));
            samples += 1;
        }
    }
    for r in jsonl(&demo.join("alpaca_en_demo.jsonl")) {
        prompts.insert(format!("a:{}\n{}", r["instruction"], r["input"]));
        samples += 1;
    }
    for r in jsonl(&demo.join("glaive_toolcall_en_demo.jsonl")) {
        let turns = r["conversations"].as_array().unwrap();
        prompts.insert(format!("g:{}{}", serde_json::to_string(&turns[..turns.len() - 1]).unwrap(), r["tools"]));
        samples += 1;
    }
    prompts.insert("exchange".into());
    samples += 1;
    assert_eq!(sb.stats()["samples"], json!(samples));
    sb.retort()
        .args(["rules", "apply", "--expr", "best: keep best 1 per prompt by score.imported, tokens asc"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{} changed", samples - prompts.len())));
    assert_eq!(count(&sb, "status != rejected"), prompts.len());
}

#[test]
fn hostile_rules_are_errors_at_their_column_and_long_chains_run() {
    let sb = Sandbox::new();
    skythought(&sb);
    // Each used to overflow the stack (exit 134).
    let deep = format!("{}tokens > 1{}", "(".repeat(10_000), ")".repeat(10_000));
    sb.retort()
        .args(["list", "--where", &deep])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--where:1:101: nested more than 100 levels"));
    let nots = format!("reject where {}has_logprobs", "not ".repeat(100_000));
    sb.write("deep.rules", &nots);
    sb.retort().args(["rules", "check", "deep.rules"]).assert().code(1).stderr(predicate::str::contains("deep.rules:1:"));
    // A chain of 5,000 terms: SQLite refuses expressions deeper than 1,000, so it is grouped.
    let chain = (0..5_000).map(|i| format!("tokens = {i}")).collect::<Vec<_>>().join(" or ");
    let independent = sb.query_i64("SELECT count(*) FROM samples WHERE tokens < 5000");
    assert_eq!(count(&sb, &chain) as i64, independent);
    sb.retort().args(["rules", "dry-run", "--expr", &format!("accept where {chain}")]).assert().success();
}
