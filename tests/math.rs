//! The `math` verifier through the binary, against the verdicts stored in the Sky-T1 data.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use common::{Sandbox, data};
use serde_json::Value;

#[test]
fn math_agrees_with_the_stored_skythought_verdicts() {
    let sb = Sandbox::new();
    let files = [
        ("sky-t1-27b_math500", 0.92),
        ("qwen2.5-14b-instruct_math500", 0.98),
        ("sky-t1-14b_aime24", 0.96),
        ("sky-t1-14b_amc23", 0.97),
        ("sky-t1-wrong-14b_amc23", 0.97),
    ];
    for (f, _) in files {
        sb.retort().arg("import").arg(data(&format!("skythought/{f}.jsonl"))).assert().success();
    }
    sb.retort().args(["verify", "-v", "math"]).assert().success();
    let out = sb.retort().args(["list", "--json"]).output().unwrap();
    let rows: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (teacher, floor) in files {
        let mine: Vec<&Value> = rows.iter().filter(|r| r["teacher"] == teacher && r["passed"].get("math").is_some()).collect();
        let agree = mine.iter().filter(|r| r["passed"]["math"] == r["passed"]["imported"]).count();
        let rate = agree as f64 / mine.len() as f64;
        eprintln!("{teacher}: math agrees with the stored verdict on {agree}/{}", mine.len());
        assert!(rate >= floor, "{teacher}: {agree}/{} below {floor}", mine.len());
    }
}
