//! Bad input, re-import and a killed import: the store is never left half-written.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Sandbox, data, head};
use predicates::prelude::*;
use serde_json::json;
use sha2::Digest;

/// Two real Alpaca rows around one bad line; returns the file's path.
fn with_bad_line(sb: &Sandbox, name: &str, bad: &[u8]) -> std::path::PathBuf {
    let rows = head(&data("skythought/sky-t1-14b_amc23.jsonl"), 2);
    let mut lines = rows.lines();
    let mut contents = Vec::new();
    contents.extend_from_slice(lines.next().unwrap().as_bytes());
    contents.push(b'\n');
    contents.extend_from_slice(bad);
    contents.push(b'\n');
    contents.extend_from_slice(lines.next().unwrap().as_bytes());
    contents.push(b'\n');
    sb.write(name, contents)
}

/// Imports a good file, then the bad one: it must fail with `expect` and leave the store as it was.
fn assert_refused(bad: &[u8], expect: &[&str]) {
    let sb = Sandbox::new();
    sb.write("good.jsonl", head(&data("skythought/sky-t1-14b_aime24.jsonl"), 3));
    sb.retort().args(["import", "good.jsonl"]).assert().success();
    let before = sb.snapshot();
    let file = with_bad_line(&sb, "bad.jsonl", bad);
    let mut assert = sb.retort().arg("import").arg(&file).assert().code(1);
    for e in expect {
        assert = assert.stderr(predicate::str::contains(*e));
    }
    assert.stderr(predicate::str::contains("nothing was imported"));
    assert_eq!(sb.snapshot(), before, "the store changed after a refused import");

    // --skip-bad imports the two good rows and says what it left out.
    let out = sb.retort().arg("import").arg("--skip-bad").arg(&file).assert().success();
    let mut out = out.stdout(predicate::str::contains("skipped 1 bad record"));
    for e in expect {
        out = out.stdout(predicate::str::contains(*e));
    }
    assert_eq!(sb.stats()["samples"], json!(5));
}

#[test]
fn broken_json_is_located() {
    assert_refused(b"{\"question\": \"q\", \"code\": [\"a\"", &["bad.jsonl:2:", "broken JSON"]);
}

#[test]
fn invalid_utf8_is_located() {
    assert_refused(b"{\"question\": \"caf\xe9\", \"code\": [\"a\"]}", &["bad.jsonl:2:18", "invalid UTF-8"]);
}

#[test]
fn missing_field_is_named() {
    // A field the record lacks: the record's start.
    assert_refused(b"{\"question\": \"q\", \"gt\": \"1\", \"score\": [true]}", &["bad.jsonl:2:1:", "`code`"]);
}

#[test]
fn wrong_shape_is_named() {
    assert_refused(b"[\"not\", \"an\", \"object\"]", &["bad.jsonl:2:1:", "expected a JSON object, found an array"]);
    // A field of the wrong type: the column of its value.
    assert_refused(b"{\"question\": 42, \"code\": [\"a\"]}", &["bad.jsonl:2:14:", "field `question` must be a string, found a number"]);
    assert_refused(b"{\"question\": \"q\", \"code\": [\"a\", \"b\"], \"score\": [true]}", &["bad.jsonl:2:", "2 generations"]);
}

#[test]
fn record_over_the_limit_is_refused_without_holding_it() {
    let big = format!("{{\"question\": \"q\", \"code\": [\"{}\"]}}", "x".repeat(3 << 20));
    let sb = Sandbox::new();
    let file = with_bad_line(&sb, "big.jsonl", big.as_bytes());
    sb.retort()
        .args(["import", "--max-record-mb", "2"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("big.jsonl:2").and(predicate::str::contains("over the limit of 2 MiB")));
}

#[test]
fn fifty_megabyte_line_is_imported_under_the_default_limit() {
    let sb = Sandbox::new();
    let thought = "Let me think again. ".repeat((50 << 20) / 20 + 1_000);
    let trace = format!("<think>{thought}</think>The answer is 4.");
    let line = json!({"prompt": "What is 2+2?", "completion": trace}).to_string();
    assert!(line.len() > 50 << 20);
    let file = sb.write("huge.jsonl", format!("{line}\n"));
    sb.retort().arg("import").arg(&file).assert().success();
    assert_eq!(sb.query_i64("SELECT length(reasoning) FROM sample_texts"), thought.trim().len() as i64);
    assert_eq!(sb.query_string("SELECT answer FROM sample_texts").as_deref(), Some("The answer is 4."));
}

#[test]
fn json_array_errors_point_into_the_file() {
    let sb = Sandbox::new();
    let file = sb.write("rows.json", "[\n  {\"instruction\": \"a\", \"input\": \"\", \"output\": \"b\"},\n  {\"instruction\": \"c\", \"input\": \"\", \"output\": 7}\n]\n");
    sb.retort()
        .arg("import")
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("rows.json:3:47:").and(predicate::str::contains("field `output` must be a string")));
    let file = sb.write("open.json", "[\n  {\"instruction\": \"a\", \"input\": \"\", \"output\": \"b\"},\n  {\"instruction\": \"c\"");
    sb.retort().arg("import").arg(&file).assert().code(1).stderr(predicate::str::contains("never closed"));
}

#[test]
fn broken_json_structure_is_located_and_never_hangs() {
    // Each used to loop forever (a stray `}`), pass as empty (`[`), or be taken (a trailing comma).
    let sb = Sandbox::new();
    let row = r#"{"question": "q", "answer": "1"}"#;
    let cases = [
        (
            "stray.json",
            "[}".to_owned(),
            "stray.json: is not well-formed JSON at line 1, column 2: unexpected `}` where a JSON value should start",
        ),
        ("extra.json", format!("{row}}}"), "extra.json:1:33: unexpected `}` where a JSON value should start"),
        ("open.json", "[".to_owned(), "open.json: is not well-formed JSON at line 1, column 2: the JSON array is never closed"),
        ("comma.json", format!("[{row},\n{row},]"), "comma.json:2:34: a `,` with no element after it before the `]`"),
        ("two.json", format!("[{row} {row}]"), "two.json:1:35: expected `,` or `]` after an element, found `{`"),
    ];
    for (name, text, expect) in cases {
        let file = sb.write(name, text);
        sb.retort()
            .arg("import")
            .arg(&file)
            .timeout(std::time::Duration::from_mins(1))
            .assert()
            .code(1)
            .stderr(predicate::str::contains(expect));
    }
    assert_eq!(sb.stats()["samples"], json!(0));
    assert_eq!(sb.stats()["prompts"], json!(0), "nothing written");
}

#[test]
fn a_file_without_a_record_says_why() {
    let sb = Sandbox::new();
    let cases = [
        (sb.write("empty.jsonl", ""), "the file is empty"),
        (sb.write("text.jsonl", "question,answer\n1+1,2\n"), "no record in it is valid JSON; the first error is at line 1, column 1"),
        (data("wire-formats/openai_stream_n3_live.sse"), "server-sent event stream"),
    ];
    for (file, expect) in cases {
        sb.retort().arg("import").arg(&file).assert().code(1).stderr(predicate::str::contains(expect));
    }
    assert_eq!(sb.stats()["samples"], json!(0));
}

#[test]
fn reimport_adds_nothing() {
    let sb = Sandbox::new();
    sb.write("a.jsonl", head(&data("skythought/sky-t1-14b_amc23.jsonl"), 5));
    sb.retort().args(["import", "a.jsonl"]).assert().success();
    let before = sb.snapshot();
    sb.retort().args(["import", "a.jsonl"]).assert().success().stdout(predicate::str::contains("imported before, nothing to add"));
    assert_eq!(sb.snapshot(), before);
    // The same records in another file (a copy, or the first lines of a file that grew) are
    // recognised sample by sample.
    sb.write("grown.jsonl", head(&data("skythought/sky-t1-14b_amc23.jsonl"), 8));
    sb.retort().args(["import", "grown.jsonl"]).assert().success().stdout(predicate::str::contains("+3 samples (5 already in the store)"));
    assert_eq!(sb.stats()["samples"], json!(8));
}

/// Writes `n` R1-sized rows (~3 KB each) in the messages format.
fn big_file(sb: &Sandbox, n: usize) -> std::path::PathBuf {
    let path = sb.path("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let filler = "We check the sum again, and then the product. ".repeat(60);
    for i in 0..n {
        let row = json!({"messages": [
            {"role": "user", "content": format!("Problem {}: what is {} squared?", i / 4, i / 4)},
            {"role": "assistant", "content": format!("<think>{filler} step {i}</think>The answer is {}.", (i / 4) * (i / 4))}
        ]});
        writeln!(f, "{row}").unwrap();
    }
    f.flush().unwrap();
    path
}

#[test]
fn killed_import_leaves_a_consistent_store_and_a_rerun_completes_it() {
    let sb = Sandbox::new();
    let rows = 60_000;
    let file = big_file(&sb, rows);
    let bin = assert_cmd::cargo::cargo_bin("retort");
    let mut child = std::process::Command::new(&bin)
        .arg("--db")
        .arg(sb.db())
        .arg("import")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some batches are committed.
    let started = Instant::now();
    let mut at_kill = 0;
    while started.elapsed() < Duration::from_mins(2) {
        if sb.db().exists()
            && let Ok(conn) = rusqlite::Connection::open(sb.db())
        {
            at_kill = conn.query_row("SELECT count(*) FROM samples", [], |r| r.get::<_, i64>(0)).unwrap_or(0);
            if at_kill > 0 {
                break;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(at_kill > 0 && at_kill < rows as i64, "the import was not caught mid-way ({at_kill} of {rows})");

    // Consistent: integrity holds, every committed sample has its texts and its prompt.
    assert_eq!(sb.query_string("PRAGMA integrity_check").as_deref(), Some("ok"));
    let samples = sb.query_i64("SELECT count(*) FROM samples");
    assert!(samples < rows as i64, "{samples}");
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_texts"), samples);
    assert_eq!(
        sb.query_i64("SELECT count(*) FROM samples s LEFT JOIN prompt_texts p ON p.prompt_id = s.prompt_id WHERE p.prompt_id IS NULL"),
        0
    );
    assert_eq!(sb.query_i64("SELECT count(*) FROM imports WHERE finished_at IS NULL"), 1);

    // Running it again completes it, without duplicates.
    sb.retort().arg("import").arg(&file).assert().success().stdout(predicate::str::contains(format!("({samples} already in the store)")));
    let s = sb.stats();
    assert_eq!(s["samples"], json!(rows));
    assert_eq!(s["prompts"], json!(rows / 4));
    assert_eq!(sb.query_i64("SELECT count(*) FROM (SELECT content_hash FROM samples GROUP BY content_hash HAVING count(*) > 1)"), 0);
    assert_eq!(sb.query_i64("SELECT count(*) FROM sample_texts"), rows as i64);
}

#[test]
fn an_import_killed_before_the_upgrade_is_completed_after_it_without_duplicates() {
    // A store from before migration 0006 keyed samples by sha256(line, record number,
    // generation)[..16]. Its import of 30 Sky-T1 traces was killed after 18; a curator had
    // accepted one of them. Run again under this retort, the import adds the other 12 only.
    let sb = Sandbox::new();
    let text = head(&data("skythought/sky-t1-14b_amc23.jsonl"), 30);
    let file = sb.write("amc.jsonl", &text);
    sb.retort().arg("import").arg(&file).assert().success();
    {
        let conn = rusqlite::Connection::open(sb.db()).unwrap();
        assert_eq!(conn.query_row("SELECT count(*) FROM samples", [], |r| r.get::<_, i64>(0)).unwrap(), 30);
        let origins: Vec<(i64, Vec<u8>)> = {
            let mut q = conn.prepare("SELECT id, origin FROM samples ORDER BY id").unwrap();
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        for (i, ((id, origin), line)) in origins.iter().zip(text.lines()).enumerate() {
            // This retort's origins start with the record number: the row is that line's.
            assert_eq!(origin[..5], (i as u64).to_be_bytes()[3..], "sample {id}");
            let full: [u8; 32] = sha2::Sha256::digest([line.as_bytes(), &(i as u64).to_le_bytes(), &0u64.to_le_bytes()].concat()).into();
            conn.execute("UPDATE samples SET origin = ?1 WHERE id = ?2", rusqlite::params![&full[..16], id]).unwrap();
        }
        // What the killed import had not written yet: its samples, their texts and index rows.
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute("DELETE FROM samples WHERE id > 18", []).unwrap();
        conn.execute("DELETE FROM sample_fts WHERE rowid > 18", []).unwrap();
        conn.execute("UPDATE meta SET value = '18' WHERE key = 'fts_indexed_upto'", []).unwrap();
        conn.execute("UPDATE imports SET origin_scheme = 1, finished_at = NULL", []).unwrap();
        conn.execute("UPDATE samples SET status = 'accepted', decided_by = 'curator', decided_at = 1 WHERE id = 3", []).unwrap();
    }
    sb.retort().arg("import").arg(&file).assert().success().stdout(predicate::str::contains("(18 already in the store)"));
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 30);
    assert_eq!(sb.query_i64("SELECT count(*) FROM (SELECT content_hash FROM samples GROUP BY content_hash HAVING count(*) > 1)"), 0);
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples WHERE status = 'accepted'"), 1);
    assert_eq!(sb.query_i64("SELECT id FROM samples WHERE status = 'accepted'"), 3);
    // A second file imported beside the old ones is checked too, and still imports whole.
    sb.write("aime.jsonl", head(&data("skythought/sky-t1-14b_aime24.jsonl"), 5));
    sb.retort().arg("import").arg(sb.path("aime.jsonl")).assert().success();
    assert_eq!(sb.query_i64("SELECT count(*) FROM samples"), 35);
}

#[test]
fn bad_records_across_a_large_file_are_counted_and_the_first_shown_in_order() {
    // 1,000 records, every 37th broken: they fall in batches decoded by both of the check's
    // threads, and the report must still list the first ten by line, with the full count.
    let sb = Sandbox::new();
    let mut contents = String::new();
    let mut bad_lines = Vec::new();
    for i in 1..=1000u64 {
        if i % 37 == 0 {
            contents.push_str("{\"messages\": [\n");
            bad_lines.push(i);
        } else {
            contents.push_str(
                &json!({"messages": [{"role": "user", "content": format!("q{i}")}, {"role": "assistant", "content": "a"}]}).to_string(),
            );
            contents.push('\n');
        }
    }
    let file = sb.write("many.jsonl", contents);
    let out = sb.retort().arg("import").arg(&file).assert().code(1).get_output().stderr.clone();
    let err = String::from_utf8(out).unwrap();
    let shown: Vec<u64> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{}:", file.display())))
        .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(shown, bad_lines[..10], "{err}");
    assert!(err.contains(&format!("{} bad records", bad_lines.len())), "{err}");
    assert_eq!(sb.stats()["samples"], json!(0));
}
