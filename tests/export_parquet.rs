//! `retort export --container parquet [--shard-rows N]`: every format as Parquet shards holding
//! the rows of its JSON Lines twin, the manifest's counts and hashes per shard, the same bytes on
//! every run; `--shard-rows` for JSON Lines too. (CI's tests/consumers/datasets_check.py then
//! loads each Parquet export with `datasets` against its JSON Lines twin, row by row.)
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::path::{Path, PathBuf};

use arrow_schema::{DataType, Field};
use common::{Sandbox, data};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use predicates::prelude::*;
use serde_json::{Value, json};
use sha2::Digest;

/// Tool use (the glaive demo, the template fixtures' parallel calls) and reasoning (SkyThought),
/// all accepted.
fn store(sb: &Sandbox) {
    let conversations = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates/conversations.jsonl");
    sb.retort()
        .arg("import")
        .arg(data("chat-formats/llamafactory_glaive_toolcall_en_demo.json"))
        .arg(&conversations)
        .arg(data("skythought/sky-t1-27b_math500.jsonl"))
        .assert()
        .success();
    sb.retort().args(["rules", "apply", "--expr", "accept where score.imported >= 1 or has_tools"]).assert().success();
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A part's files with their manifest entries: the part's own, or its shards'.
fn files(dir: &Path, part: &Value) -> Vec<(PathBuf, Value)> {
    match part["shards"].as_array() {
        Some(shards) => shards.iter().map(|s| (dir.join(s["file"].as_str().unwrap()), s.clone())).collect(),
        None => vec![(dir.join(part["file"].as_str().unwrap()), part.clone())],
    }
}

fn sha256(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The value as a comparison sees it: no null members (a struct column has every key, null
/// where a row lacks it) and numbers as f64 (a `double` column writes 1 as 1.0).
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, canonical(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        Value::Number(n) => json!(n.as_f64().unwrap()),
        other => other,
    }
}

/// A value read from Parquet with its JSON text columns (arrow.json) parsed, as `datasets` does.
fn parsed(v: Value, field: &Field) -> Value {
    if field.metadata().get("ARROW:extension:name").map(String::as_str) == Some("arrow.json") {
        return match v {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            other => other,
        };
    }
    match (v, field.data_type()) {
        (Value::Array(items), DataType::List(item)) => Value::Array(items.into_iter().map(|v| parsed(v, item)).collect()),
        (Value::Object(m), DataType::Struct(fields)) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let f = fields.iter().find(|f| *f.name() == k).unwrap();
                    let v = parsed(v, f);
                    (k, v)
                })
                .collect(),
        ),
        (v, _) => v,
    }
}

/// A Parquet file's column names and rows, its row groups' sizes.
fn parquet_rows(path: &Path) -> (Vec<String>, Vec<Value>, Vec<i64>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let groups = builder.metadata().row_groups().iter().map(parquet::file::metadata::RowGroupMetaData::num_rows).collect();
    let root = Field::new("", DataType::Struct(schema.fields().clone()), true);
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let mut w = arrow_json::ArrayWriter::new(Vec::new());
        w.write(&batch.unwrap()).unwrap();
        w.finish().unwrap();
        let out = w.into_inner();
        let batch_rows: Vec<Value> = if out.is_empty() { Vec::new() } else { serde_json::from_slice(&out).unwrap() };
        rows.extend(batch_rows.into_iter().map(|r| parsed(r, &root)));
    }
    (schema.fields().iter().map(|f| f.name().clone()).collect(), rows, groups)
}

/// The keys of the rows, in the order first seen: the columns the JSON loader infers.
fn columns_of(rows: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        for k in r.as_object().unwrap().keys() {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out
}

/// Checks a Parquet export against its JSON Lines twin, part by part and shard by shard.
fn same_rows(parquet: &Path, jsonl: &Path, shard_rows: usize) {
    let (pm, jm) = (manifest(parquet), manifest(jsonl));
    assert_eq!(pm["samples"], jm["samples"]);
    assert_eq!(pm["tokens"], jm["tokens"]);
    assert_eq!(pm["options"]["container"], "parquet");
    let parts = jm["parts"].as_object().unwrap();
    assert_eq!(pm["parts"].as_object().unwrap().keys().collect::<Vec<_>>(), parts.keys().collect::<Vec<_>>());
    for (name, jpart) in parts {
        let ppart = &pm["parts"][name];
        assert_eq!(ppart["samples"], jpart["samples"], "{name}");
        assert_eq!(ppart["tokens"], jpart["tokens"], "{name}");
        let expected = common::jsonl(&jsonl.join(jpart["file"].as_str().unwrap()));
        let shards = files(parquet, ppart);
        let n = expected.len().div_ceil(shard_rows).max(1);
        assert_eq!(shards.len(), n, "{name}: {} rows in shards of {shard_rows}", expected.len());
        let mut rows = Vec::new();
        let (mut tokens, mut samples) = (0, 0);
        for (i, (path, entry)) in shards.iter().enumerate() {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(file, format!("{name}-{i:05}-of-{n:05}.parquet"), "the Hub's shard names");
            assert_eq!(entry["sha256"].as_str().unwrap(), sha256(path), "{file}");
            let (columns, shard, groups) = parquet_rows(path);
            assert_eq!(columns, columns_of(&expected), "{file}: the columns of every row, in the order first seen");
            assert_eq!(entry["samples"].as_u64().unwrap() as usize, shard.len(), "{file}");
            assert!(shard.len() <= shard_rows && groups.iter().all(|g| *g <= 2000), "{file}: {} rows, row groups {groups:?}", shard.len());
            samples += shard.len();
            tokens += entry["tokens"].as_u64().unwrap();
            rows.extend(shard);
        }
        assert_eq!(samples, expected.len());
        assert_eq!(json!(tokens), jpart["tokens"], "{name}: the shards' tokens are the part's");
        assert_eq!(rows.len(), expected.len(), "{name}");
        for (i, (got, want)) in rows.into_iter().zip(expected).enumerate() {
            assert_eq!(canonical(got), canonical(want), "{name} row {i}");
        }
    }
}

#[test]
fn every_sft_format_as_parquet_shards_holds_its_jsonl_rows() {
    let sb = Sandbox::new();
    store(&sb);
    for format in ["messages", "prompt-completion", "sharegpt", "alpaca", "openai"] {
        let mut args = vec!["export", "--format", format, "--val", "0.2", "--reasoning", "inline"];
        if format == "alpaca" {
            args.extend(["--where", "not has_tools"]);
        }
        let (j, p) = (format!("{format}-jsonl"), format!("{format}-parquet"));
        sb.retort().args(&args).args(["--out", &j]).assert().success();
        sb.retort().args(&args).args(["--container", "parquet", "--shard-rows", "97", "--out", &p]).assert().success();
        same_rows(&sb.path(&p), &sb.path(&j), 97);
        let m = manifest(&sb.path(&p));
        let json_columns: Vec<&str> = m["parquet"]["json_columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        match format {
            // A message with tool calls beside one without; each tool's own parameters.
            "messages" | "openai" => assert_eq!(json_columns, ["messages.[]", "tools.[].function.parameters"], "{format}"),
            "prompt-completion" => assert!(json_columns.contains(&"prompt.[]"), "{json_columns:?}"),
            // Strings and lists of strings only: every column typed.
            _ => assert!(json_columns.is_empty(), "{format}: {json_columns:?}"),
        }
        if format == "sharegpt" {
            // One LLaMA-Factory entry per shard (it reads one file an entry), named in the manifest.
            let info: Value = serde_json::from_slice(&std::fs::read(sb.path(&p).join("dataset_info.json")).unwrap()).unwrap();
            let named: Vec<&str> = info.as_object().unwrap().values().map(|e| e["file_name"].as_str().unwrap()).collect();
            let shards: Vec<String> = ["train", "validation"]
                .iter()
                .flat_map(|part| files(&sb.path(&p), &m["parts"][part]))
                .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(named, shards);
            assert!(
                info.get("retort_train_00000").is_some()
                    && m["train_with"]["llamafactory"].as_str().unwrap().contains("retort_train_00000,retort_train_00001")
            );
        }
    }
}

#[test]
fn the_same_export_twice_is_the_same_bytes_and_replaces_its_old_shards() {
    let sb = Sandbox::new();
    store(&sb);
    let export = |out: &str, shard_rows: &str| {
        sb.retort()
            .args(["export", "--format", "messages", "--val", "0.1", "--container", "parquet", "--shard-rows", shard_rows, "--out", out])
            .assert()
            .success();
    };
    export("a", "100");
    export("b", "100");
    let names = |dir: &str| {
        let mut n: Vec<String> =
            std::fs::read_dir(sb.path(dir)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    };
    assert!(names("a").len() > 3, "{:?}", names("a"));
    assert_eq!(names("a"), names("b"));
    for f in names("a") {
        assert_eq!(std::fs::read(sb.path("a").join(&f)).unwrap(), std::fs::read(sb.path("b").join(&f)).unwrap(), "{f} differs");
    }
    // Fewer, larger shards in the same place: the old set goes whole, nothing else is left.
    export("a", "100000");
    assert_eq!(names("a"), ["manifest.json", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]);
    let m = manifest(&sb.path("a"));
    assert_eq!(m["parts"]["train"]["file"], "train-00000-of-00001.parquet");
    assert_eq!(m["parts"]["train"]["sha256"].as_str().unwrap(), sha256(&sb.path("a/train-00000-of-00001.parquet")));
    assert!(m["parts"]["train"].get("shards").is_none(), "one file: no shard list");
    assert_eq!(
        std::fs::read_dir(sb.dir.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("staging")).count(),
        0
    );
}

#[test]
fn jsonl_shards_are_the_jsonl_file_cut_at_n_lines() {
    let sb = Sandbox::new();
    store(&sb);
    sb.retort().args(["export", "--format", "sharegpt", "--out", "whole"]).assert().success();
    sb.retort().args(["export", "--format", "sharegpt", "--shard-rows", "128", "--out", "cut"]).assert().success();
    let whole = std::fs::read(sb.path("whole/train.jsonl")).unwrap();
    let m = manifest(&sb.path("cut"));
    let shards = files(&sb.path("cut"), &m["parts"]["train"]);
    let lines = String::from_utf8_lossy(&whole).lines().count();
    assert_eq!(shards.len(), lines.div_ceil(128));
    assert_eq!(m["parts"]["train"]["file"], "train-*.jsonl");
    let mut joined = Vec::new();
    for (i, (path, entry)) in shards.iter().enumerate() {
        assert_eq!(path.file_name().unwrap().to_string_lossy(), format!("train-{i:05}-of-{:05}.jsonl", shards.len()));
        assert_eq!(entry["sha256"].as_str().unwrap(), sha256(path));
        let bytes = std::fs::read(path).unwrap();
        let n = String::from_utf8_lossy(&bytes).lines().count();
        assert_eq!(entry["samples"].as_u64().unwrap() as usize, n);
        assert!(n == 128 || i == shards.len() - 1, "shard {i}: {n} lines");
        joined.extend(bytes);
    }
    assert_eq!(joined, whole, "the shards, in order, are the whole file");
    // The JSON Lines manifest without shards is as it was: no container, no shard list.
    let w = manifest(&sb.path("whole"));
    assert!(w["options"].get("container").is_none() && w["options"].get("shard_rows").is_none());
    assert!(w["parts"]["train"].get("shards").is_none() && w.get("parquet").is_none());
    sb.retort()
        .args(["export", "--format", "sharegpt", "--shard-rows", "0", "--out", "zero"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--shard-rows"));
    sb.retort()
        .args(["export", "--format", "sharegpt", "--container", "csv", "--out", "csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("parquet"));
}

#[test]
fn kd_as_parquet_holds_the_soft_labels_and_axolotl_is_told_the_container() {
    let sb = Sandbox::new();
    sb.retort().assert().success(); // the demo set holds the OpenAI log-probs example
    let response: Value =
        serde_json::from_str(&std::fs::read_to_string(data("wire-formats/openai_chat_completion_logprobs.json")).unwrap()).unwrap();
    let tokens = common::logprob_vocabulary(&response);
    let student = common::student_with(&sb, "student", &tokens);
    let kd = ["export", "--format", "kd", "--status", "pending", "--model"];
    sb.retort().args(kd).arg(&student).args(["--out", "j"]).assert().success();
    sb.retort().args(kd).arg(&student).args(["--container", "parquet", "--out", "p"]).assert().success();
    same_rows(&sb.path("p"), &sb.path("j"), usize::MAX);
    let (columns, rows, _) = parquet_rows(&sb.path("p/train-00000-of-00001.parquet"));
    assert!(["token_ids", "target_token_ids", "logprobs"].iter().all(|c| columns.iter().any(|k| k == c)), "{columns:?}");
    assert!(!rows[0]["logprobs"].as_array().unwrap().is_empty());
    let m = manifest(&sb.path("p"));
    assert_eq!(
        m["train_with"]["axolotl"]["datasets"][0],
        json!({"path": "train-00000-of-00001.parquet", "type": "axolotl.integrations.kd.chat_template", "field_messages": "messages",
               "logprobs_field": "logprobs", "temperature": 1.0, "ds_type": "parquet"})
    );
}
