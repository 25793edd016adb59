//! No silent mistakes, and numbers that are true (issue 17): a misspelt verifier is an error in
//! every face, `undo` of a rule the store never saw is one too, rules that overturn each other
//! are flagged, pass rates say their base, and a downloaded folder imports with what it left out
//! said. Counts are checked against the raw files, read here.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::{Sandbox, data, head, jsonl};
use predicates::prelude::*;
use serde_json::Value;

use retort::ops::rules::{RunOptions, dry_run_saved};
use retort::rules::parse_rule;
use retort::store::Store;

const AMC: &str = "skythought/sky-t1-14b_amc23.jsonl";
const AIME: &str = "skythought/sky-t1-14b_aime24.jsonl";

/// Two Sky-T1 files, whose stored verdicts become `score.imported`.
fn two_files(sb: &Sandbox) {
    sb.retort().arg("import").arg(data(AMC)).arg(data(AIME)).assert().success();
}

/// Rows of a raw file whose stored verdict is a fail.
fn failing(rel: &str) -> usize {
    jsonl(&data(rel)).iter().filter(|r| r["score"][0] == Value::Bool(false)).count()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_verifier_is_an_error_in_every_face() {
    let sb = Sandbox::new();
    two_files(&sb);
    let before = sb.snapshot();
    // A filter: exit 1, at the column, naming what the store has and the nearest name.
    sb.retort().args(["list", "--where", "tokens > 0 and score.improted > 0"]).assert().code(1).stderr(
        predicate::str::contains("--where:1:16: unknown verifier `improted` in `score.improted`")
            .and(predicate::str::contains("this store has scores of imported; did you mean `score.imported`?")),
    );
    sb.retort().args(["list", "--where", "score.mth > 1"]).assert().code(1).stdout("").stderr(
        predicate::str::contains("unknown verifier `mth` in `score.mth`: this store has scores of imported")
            .and(predicate::str::contains("did you mean").not()),
    );
    sb.retort().args(["export", "--format", "messages", "--out", "x", "--where", "pass.nosuch"]).assert().code(1);
    sb.retort().args(["verify", "-v", "format", "--where", "score.nosuch > 0"]).assert().code(1);
    // A rules file: located in its line, and nothing runs, not even the good rule before it.
    let rules = sb.write("r.rules", "accept where score.imported >= 1\nbest: keep best 1 per prompt by score.nosuch\n");
    for cmd in ["check", "dry-run", "apply"] {
        sb.retort()
            .args(["rules", cmd])
            .arg(&rules)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("r.rules:2:33: unknown verifier `nosuch` in `score.nosuch`"));
    }
    sb.retort().args(["rules", "apply", "--expr", "reject where not pass.Imported"]).assert().code(1).stderr(
        predicate::str::contains("--expr:1:18: unknown verifier `Imported`").and(predicate::str::contains("did you mean `pass.imported`?")),
    );
    assert_eq!(sb.snapshot(), before, "a rule with an unknown verifier changed the store");
    // The known name works.
    sb.retort().args(["rules", "apply", "--expr", "reject where not pass.imported"]).assert().success();
    assert_eq!(sb.stats()["by_status"]["rejected"], failing(AMC) + failing(AIME));
}

#[test]
fn with_no_scores_yet_a_rule_on_scores_says_to_verify_first() {
    let sb = Sandbox::new();
    sb.write("chat.json", std::fs::read(data("chat-formats/llamafactory_alpaca_en_demo.json")).unwrap());
    sb.retort().args(["import", "chat.json"]).assert().success();
    sb.retort().args(["rules", "apply", "--expr", "accept where score.math >= 1"]).assert().code(1).stderr(
        predicate::str::contains("`score.math`: no verifier has scored this store yet").and(predicate::str::contains("retort verify")),
    );
    assert_eq!(sb.stats()["by_status"]["accepted"], 0);
    // Rules that read no score run as ever.
    sb.retort().args(["rules", "apply", "--expr", "accept where tokens < 100000"]).assert().success();
    assert_eq!(sb.stats()["by_status"]["accepted"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tuis_rule_runs_check_names_too() {
    let sb = Sandbox::new();
    two_files(&sb);
    let store = Store::open(&sb.db()).await.unwrap();
    let rule = parse_rule("keep best 1 per prompt by score.imprted").unwrap();
    let opts = RunOptions::default();
    let e = retort::ops::rules::dry_run(&store, &rule, &opts).await.unwrap_err().to_string();
    assert!(e.contains("unknown verifier `imprted`") && e.contains("did you mean `score.imported`?"), "{e}");
    let e = retort::ops::rules::apply(&store, &rule, &opts).await.unwrap_err().to_string();
    assert!(e.contains("unknown verifier `imprted`"), "{e}");
    assert_eq!(retort::ops::rules::verifier_names(&store).await.unwrap(), ["imported"]);
    store.close().await;
}

#[test]
fn undo_of_a_rule_the_store_never_saw_is_an_error() {
    let sb = Sandbox::new();
    two_files(&sb);
    let rules = sb.write("r.rules", "drop: reject where score.imported < 1\nkeep: accept where teacher = \"sky-t1-14b_amc23\"\n");
    sb.retort().args(["rules", "apply"]).arg(&rules).assert().success();
    sb.retort()
        .args(["undo", "--rule", "dorp"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no rule named `dorp`: the rules this store knows are drop, keep; did you mean `drop`?"));
    sb.retort().args(["undo", "--rule", "nosuch"]).assert().code(1).stderr(predicate::str::contains("did you mean").not());
    sb.retort().args(["undo", "--rule", "drop"]).assert().success().stdout(predicate::str::contains("undid"));
    // Known, and all undone already: nothing to do is no mistake.
    sb.retort().args(["undo", "--rule", "drop"]).assert().success().stdout("Nothing to undo.\n");
    let fresh = Sandbox::new();
    two_files(&fresh);
    fresh.retort().args(["undo", "--rule", "best"]).assert().code(1).stderr(predicate::str::contains("no rule has been applied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_overturn_each_other_are_flagged_and_counted_in_order() {
    let sb = Sandbox::new();
    two_files(&sb);
    // Independent: `drop` rejects the failing rows of both files; `keep` accepts AMC's 40,
    // of which it turns back those `drop` rejected.
    let (dropped, amc) = (failing(AMC) + failing(AIME), jsonl(&data(AMC)).len());
    let overturned = failing(AMC);
    assert!(overturned > 0);
    let text = "drop: reject where score.imported < 1\nkeep: accept where teacher = \"sky-t1-14b_amc23\"\n";
    let rules = sb.write("r.rules", text);
    let warning = format!("warning: rule `keep` overturns rule `drop` on {overturned} samples (status rejected -> accepted)");
    for cmd in ["check", "dry-run"] {
        sb.retort().args(["rules", cmd]).arg(&rules).assert().success().stderr(predicate::str::contains(warning.as_str()));
    }
    let out = sb.retort().args(["rules", "dry-run", "--json"]).arg(&rules).output().unwrap();
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed: Vec<u64> = reports.as_array().unwrap().iter().map(|r| r["changed"].as_u64().unwrap()).collect();
    assert_eq!(changed, [dropped as u64, amc as u64]);
    assert_eq!(reports[1]["overturns"][0]["rule"], "drop");
    assert_eq!(reports[1]["overturns"][0]["samples"], overturned);
    assert_eq!(reports[0]["overturns"], serde_json::json!([]));

    // The saved rules, dry-run in their order as the Rules tab shows them: the file's numbers.
    let store = Store::open(&sb.db()).await.unwrap();
    for line in text.lines() {
        let rule = parse_rule(line).unwrap();
        retort::ops::rules::save(&store, rule.name.as_deref().unwrap(), &rule).await.unwrap();
    }
    retort::ops::rules::save(&store, "typo", &parse_rule("accept where score.imported >= 1 and pass.imported2").unwrap()).await.unwrap();
    let saved = retort::store::rules::saved(&store).await.unwrap();
    let counts = dry_run_saved(&store, &saved, &RunOptions::default()).await.unwrap();
    let names: Vec<&str> = counts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["drop", "keep", "typo"]);
    let ok: Vec<u64> = counts.iter().filter_map(|c| c.outcome.as_ref().ok()).map(|r| r.changed).collect();
    assert_eq!(ok, changed);
    let keep = counts[1].outcome.as_ref().unwrap();
    assert_eq!((keep.overturns[0].rule.as_str(), keep.overturns[0].samples), ("drop", overturned as u64));
    let typo = counts[2].outcome.as_ref().unwrap_err();
    assert!(typo.contains("unknown verifier `imported2`") && typo.contains("did you mean `pass.imported`?"), "{typo}");
    store.close().await;

    // Applied: flagged as well, and the store holds what the dry run said.
    sb.retort().args(["rules", "apply"]).arg(&rules).assert().success().stderr(predicate::str::contains(warning.as_str()));
    let stats = sb.stats();
    assert_eq!(stats["by_status"]["accepted"], amc);
    assert_eq!(stats["by_status"]["rejected"], dropped - overturned);
    // Rules that do not overturn each other say nothing.
    let calm = sb.write("calm.rules", "reject where score.imported < 1\n");
    sb.retort().args(["rules", "dry-run"]).arg(&calm).assert().success().stderr("");
}

#[test]
fn verify_pass_rates_say_their_base() {
    let sb = Sandbox::new();
    two_files(&sb);
    // Alpaca rows have no reference answer: `math` cannot check them.
    sb.write("alpaca.json", format!("[{}]", jsonl_head_array("chat-formats/llamafactory_alpaca_en_demo.json", 7)));
    sb.retort().args(["import", "alpaca.json"]).assert().success();
    let out = sb.retort().args(["verify", "-v", "math"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    let re = regex::Regex::new(r"math: (\d+) of (\d+) checked passed \((\d+\.\d)%\), mean score [\d.]+(?:; (\d+) could not be checked)?")
        .unwrap();
    let c = re.captures(&line).unwrap_or_else(|| panic!("{line}"));
    let n = |i: usize| c.get(i).map_or(0, |m| m.as_str().parse::<i64>().unwrap());
    let (passed, judged, unchecked) = (n(1), n(2), n(4));
    let pct: f64 = c[3].parse().unwrap();
    assert!((pct - 100.0 * passed as f64 / judged as f64).abs() < 0.051, "{line}");
    assert_eq!(judged + unchecked, 40 + 30 + 7, "{line}");
    assert!(unchecked >= 7, "{line}");
    let v = &sb.stats()["verifiers"]["math"];
    assert_eq!((v["scored"].as_i64(), v["passed"].as_i64(), v["errors"].as_i64()), (Some(judged), Some(passed), Some(unchecked)));
}

/// The first `n` elements of a JSON-array file, as the text inside a JSON array.
fn jsonl_head_array(rel: &str, n: usize) -> String {
    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(data(rel)).unwrap()).unwrap();
    rows.iter().take(n).map(Value::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn a_downloaded_folder_imports_its_data_and_says_what_it_left_out() {
    let sb = Sandbox::new();
    let dir = data("chat-formats");
    let out = sb.retort().arg("import").arg(&dir).output().unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    for (file, why) in [
        ("LICENSE.llamafactory", "documentation, not data"),
        ("llamafactory_README.md", "documentation, not data"),
        ("llamafactory_dataset_info.json", "dataset metadata, not data"),
    ] {
        assert!(err.contains(&format!("note: skipped {}: {why}", dir.join(file).display())), "{file}: {err}");
    }
    // Independent: the rows of each data file, and those with images.
    let rows = |f: &str| -> Vec<Value> { serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap() };
    let mllm = rows("llamafactory_mllm_demo.json");
    let with_images = mllm.iter().filter(|r| r["images"].as_array().is_some_and(|a| !a.is_empty())).count();
    assert!(with_images > 0);
    assert!(err.contains(&format!("{with_images} rows had images; the images are not kept")), "no image warning in: {err}");
    let all = rows("llamafactory_alpaca_en_demo.json").len() + rows("llamafactory_glaive_toolcall_en_demo.json").len() + mllm.len();
    assert_eq!(sb.stats()["samples"], all);
    // The files named one by one, as a shell's `*.json` names them: the same.
    let other = Sandbox::new();
    let mut cmd = other.retort();
    cmd.arg("import");
    for f in ["llamafactory_dataset_info.json", "llamafactory_mllm_demo.json"] {
        cmd.arg(dir.join(f));
    }
    cmd.assert().success().stderr(predicate::str::contains("dataset metadata, not data").and(predicate::str::contains("had images")));
}

#[test]
fn a_broken_data_file_in_a_folder_still_fails_where_it_breaks() {
    let sb = Sandbox::new();
    let dir = sb.path("download");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("dataset_info.json"), "{\"x\": {\"file_name\": \"train.jsonl\"}}").unwrap();
    std::fs::write(dir.join("README.md"), "# a dataset\n").unwrap();
    let good = head(&data(AMC), 2);
    std::fs::write(dir.join("train.jsonl"), format!("{good}{{\"question\": \"q\", \"code\": [\"a\"], \"gt\": \n")).unwrap();
    sb.retort().arg("import").arg(&dir).assert().code(1).stderr(
        predicate::str::contains(format!("{}:3:", dir.join("train.jsonl").display())).and(predicate::str::contains("nothing was imported")),
    );
    assert_eq!(sb.stats()["samples"], 0);
    // A folder with no data at all says so.
    std::fs::remove_file(dir.join("train.jsonl")).unwrap();
    sb.retort().arg("import").arg(&dir).assert().code(1).stderr(predicate::str::contains("holds no data file"));
}
