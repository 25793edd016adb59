//! `retort verify` on real traces; external checkers' failures are recorded as failures.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::collections::HashSet;

use common::{Sandbox, data, head, jsonl};
use predicates::prelude::*;
use serde_json::{Value, json};

fn listed(sb: &Sandbox, filter: &str) -> Vec<Value> {
    let out = sb.retort().args(["list", "--json", "--where", filter]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn cleaning_verifiers_on_sky_t1_traces() {
    let sb = Sandbox::new();
    let file = data("skythought/sky-t1-27b_math500.jsonl");
    sb.retort().arg("import").arg(&file).assert().success();
    sb.retort()
        .args(["verify", "-v", "format", "-v", "length", "-v", "repetition", "-v", "language", "--max-tokens", "8000"])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"format: \d+ of 500 checked passed")
                .unwrap()
                .and(predicate::str::is_match(r"language: \d+ of 500 checked passed").unwrap()),
        );
    // Independent: traces whose thought opened and never closed (cut off) must fail `format`.
    let rows = jsonl(&file);
    let cut_off: HashSet<String> = rows
        .iter()
        .filter(|r| {
            let t = r["code"][0].as_str().unwrap();
            t.contains("<|begin_of_thought|>") && !t.contains("<|end_of_thought|>") && !t.contains("<|begin_of_solution|>")
        })
        .map(|r| r["question"].as_str().unwrap().to_owned())
        .collect();
    let failing: HashSet<String> = listed(&sb, "not pass.format").iter().map(|s| s["prompt"].as_str().unwrap().to_owned()).collect();
    assert!(!cut_off.is_empty() && cut_off.is_subset(&failing), "{} cut off, {} failing", cut_off.len(), failing.len());
    // `length` agrees with the token counts it read.
    assert_eq!(listed(&sb, "not pass.length").len(), listed(&sb, "tokens > 8000").len());
    // All English: no language mixing.
    assert_eq!(listed(&sb, "score.language < 0.9").len(), 0);
    // Scores are there for rules, and a second run adds nothing unless forced.
    sb.retort().args(["verify", "-v", "format"]).assert().success().stdout(predicate::str::contains("format: nothing to check"));
    sb.retort().args(["verify", "-v", "format", "--force", "--where", "tokens < 1000"]).assert().success();
    let s = sb.stats();
    assert_eq!(s["verifiers"]["repetition"]["scored"], json!(500));
}

#[test]
fn external_checker_failures_are_recorded_not_scored_zero() {
    let sb = Sandbox::new();
    sb.write("gens.jsonl", head(&data("skythought/sky-t1-14b_amc23.jsonl"), 6));
    sb.retort().args(["import", "gens.jsonl"]).assert().success();
    // A checker: boxed answers pass; sample 3 crashes; sample 5 prints nonsense.
    let script = sb.write(
        "check.py",
        "import json, sys\n\
         s = json.load(sys.stdin)\n\
         if s['id'] == 3:\n    sys.stderr.write('checker blew up'); sys.exit(2)\n\
         if s['id'] == 5:\n    print('not json'); sys.exit(0)\n\
         print(json.dumps({'score': 1.0 if 'boxed' in s['answer'] else 0.0, 'details': {'chars': len(s['answer'])}}))\n",
    );
    let cmd = format!("python3 {}", script.display());
    sb.retort()
        .args(["verify", "-v", "cmd", "--name", "boxed", "--cmd", &cmd])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 could not be checked").and(predicate::str::contains("checker blew up")));
    assert_eq!(sb.query_i64("SELECT count(*) FROM scores WHERE error IS NOT NULL AND score IS NULL"), 2);
    assert_eq!(sb.stats()["verifiers"]["boxed"]["errors"], json!(2));
    // A failed check is neither low nor high: rules on the score leave those samples out.
    let scored = listed(&sb, "score.boxed >= 0 ").len();
    assert_eq!(scored, 4);
    // Run again, the checker mended: only the two that failed are checked, and now scored.
    let mended = sb.write("mended.py", "import json, sys\ns = json.load(sys.stdin)\nprint(json.dumps({'score': 0.5}))\n");
    sb.retort()
        .args(["verify", "-v", "cmd", "--name", "boxed", "--cmd", &format!("python3 {}", mended.display())])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"boxed: \d of 2 checked passed").unwrap());
    assert_eq!(sb.query_i64("SELECT count(*) FROM scores WHERE error IS NOT NULL"), 0);
    assert_eq!(listed(&sb, "score.boxed = 0.5").len(), 2);
    // A checker that hangs is killed at the timeout.
    let slow = sb.write("slow.py", "import time; time.sleep(5)\n");
    sb.retort()
        .args(["verify", "-v", "cmd", "--name", "slow", "--timeout", "0.3", "--where", "tokens > 0"])
        .args(["--cmd", &format!("python3 {}", slow.display())])
        .assert()
        .success()
        .stdout(predicate::str::contains("timed out after 0.3s"));
    sb.retort().args(["verify", "-v", "cmd"]).assert().code(1).stderr(predicate::str::contains("--cmd"));
    // A name outside the list is a usage error that lists the verifiers.
    sb.retort().args(["verify", "-v", "astrology"]).assert().code(2).stderr(predicate::str::contains("[possible values: math, exact,"));
}
