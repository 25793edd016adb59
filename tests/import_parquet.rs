//! Parquet inputs: a Parquet twin of a real JSONL file (written here with arrow-json's schema
//! inference, nested lists and structs as the Hub has them) imports with the JSONL file's counts,
//! a downloaded dataset folder imports with one command, and damaged files give located errors
//! that leave the store as it was (or, with `--skip-bad`, import the rest).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

use common::Sandbox;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// Writes `jsonl`'s records as Parquet at `out`, `group_rows` rows to a row group.
fn parquet_twin(jsonl: &Path, out: &Path, group_rows: usize) {
    let mut input = BufReader::new(File::open(jsonl).unwrap());
    let (schema, _) = arrow_json::reader::infer_json_schema_from_seekable(&mut input, None).unwrap();
    input.rewind().unwrap();
    let schema = Arc::new(schema);
    let reader = arrow_json::ReaderBuilder::new(Arc::clone(&schema)).with_batch_size(50).build(input).unwrap();
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(group_rows)).build();
    let mut w = ArrowWriter::try_new(File::create(out).unwrap(), schema, Some(props)).unwrap();
    for batch in reader {
        w.write(&batch.unwrap()).unwrap();
    }
    w.close().unwrap();
}

fn counts(sb: &Sandbox) -> (i64, i64, i64) {
    (
        sb.query_i64("SELECT count(*) FROM prompts"),
        sb.query_i64("SELECT count(*) FROM samples"),
        sb.query_i64("SELECT count(*) FROM scores"),
    )
}

fn imported(file: &str) -> (Sandbox, (i64, i64, i64)) {
    let sb = Sandbox::new();
    let path = sb.write("twin.jsonl", std::fs::read(common::data(file)).unwrap());
    sb.retort().args(["import"]).arg(&path).assert().success();
    let c = counts(&sb);
    (sb, c)
}

#[test]
fn parquet_twins_of_real_files_import_with_their_counts() {
    for file in ["skythought/sky-t1-14b_amc23.jsonl", "skythought/qwen2.5-14b-instruct_math500.jsonl", "gsm8k/test.jsonl"] {
        let (twin, want) = imported(file);
        assert!(want.0 > 0, "{file}");
        let sb = Sandbox::new();
        let pq = sb.path("train-00000-of-00001.parquet");
        parquet_twin(&common::data(file), &pq, 64);
        let out = sb.retort().args(["import"]).arg(&pq).assert().success();
        let said = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert_eq!(counts(&sb), want, "{file}: {said}");
        // The same texts, verdicts and references: the rows are the records.
        for sql in [
            "SELECT group_concat(text, '|') FROM (SELECT text FROM prompt_texts ORDER BY prompt_id)",
            "SELECT group_concat(reference, '|') FROM (SELECT reference FROM prompt_texts ORDER BY prompt_id)",
            "SELECT group_concat(coalesce(reasoning, '') || answer, '|') FROM (SELECT reasoning, answer FROM sample_texts ORDER BY sample_id)",
            "SELECT group_concat(pass, '') FROM (SELECT pass FROM scores ORDER BY sample_id)",
        ] {
            assert_eq!(sb.query_string(sql), twin.query_string(sql), "{file}: {sql}");
        }
    }
}

#[test]
fn a_downloaded_folder_imports_its_shards_in_order_with_one_command() {
    let file = "skythought/qwen2.5-14b-instruct_math500.jsonl";
    let (_, want) = imported(file);
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("Qwen-math500/data")).unwrap();
    let lines: Vec<String> = std::fs::read_to_string(common::data(file)).unwrap().lines().map(str::to_owned).collect();
    let half = lines.len() / 2;
    for (i, part) in [&lines[..half], &lines[half..]].iter().enumerate() {
        let jsonl = sb.write(&format!("part{i}.jsonl"), part.join("\n") + "\n");
        parquet_twin(&jsonl, &sb.path(&format!("Qwen-math500/data/train-0000{i}-of-00002.parquet")), 100);
        std::fs::remove_file(jsonl).unwrap();
    }
    sb.write("Qwen-math500/README.md", "---\nlicense: apache-2.0\n---\n# A dataset card\n");
    sb.write("Qwen-math500/.gitattributes", "*.parquet filter=lfs diff=lfs merge=lfs -text\n");
    let out = sb.retort().args(["import", "Qwen-math500"]).assert().success();
    let said = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(said.contains("README.md") && said.contains(".gitattributes"), "{said}");
    assert_eq!(counts(&sb), want);
    // In shard order: the first prompt is the first line of the first shard.
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(sb.query_string("SELECT text FROM prompt_texts ORDER BY prompt_id LIMIT 1").as_deref(), first["question"].as_str());
}

#[test]
fn a_truncated_or_foreign_parquet_file_is_an_error_and_the_store_is_left_as_it_was() {
    let sb = Sandbox::new();
    sb.write("first.jsonl", common::head(&common::data("gsm8k/test.jsonl"), 3));
    sb.retort().args(["import", "first.jsonl"]).assert().success();
    let before = counts(&sb);
    let pq = sb.path("whole.parquet");
    parquet_twin(&common::data("skythought/sky-t1-14b_amc23.jsonl"), &pq, 10);
    let bytes = std::fs::read(&pq).unwrap();
    sb.write("cut.parquet", &bytes[..bytes.len() * 2 / 3]);
    let out = sb.retort().args(["import", "cut.parquet"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("cut.parquet") && err.contains("is a truncated Parquet file"), "{err}");
    sb.write("notes.parquet", "problem,answer\n1+1,2\n");
    let out = sb.retort().args(["import", "notes.parquet"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("notes.parquet") && err.contains("is not a Parquet file"), "{err}");
    assert_eq!(counts(&sb), before);
}

#[test]
fn a_damaged_row_group_is_located_and_skip_bad_imports_the_rest() {
    let sb = Sandbox::new();
    let pq = sb.path("amc.parquet");
    parquet_twin(&common::data("skythought/sky-t1-14b_amc23.jsonl"), &pq, 10);
    let (_, want) = imported("skythought/sky-t1-14b_amc23.jsonl");
    assert_eq!(want.0, 40);
    // Garbage over the second row group's `code` (generations) column chunk.
    let meta = parquet::file::serialized_reader::SerializedFileReader::new(File::open(&pq).unwrap()).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&meta).clone();
    let group = meta.row_group(1);
    let code = group.columns().iter().position(|c| c.column_path().string().starts_with("code")).unwrap();
    let (start, len) = group.column(code).byte_range();
    let mut bytes = std::fs::read(&pq).unwrap();
    for b in &mut bytes[start as usize + 8..(start + len) as usize] {
        *b = 0x5A;
    }
    std::fs::write(&pq, &bytes).unwrap();
    let out = sb.retort().args(["import", "amc.parquet"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("10 bad records"), "{err}");
    assert!(err.contains("amc.parquet: row 11 (row group 1, row 1 of it): rows 11-20 cannot be read, column `code`: "), "{err}");
    assert_eq!(counts(&sb).0, 0, "nothing written");
    sb.retort().args(["import", "--skip-bad", "amc.parquet"]).assert().success();
    assert_eq!(counts(&sb).0, 30);
}

#[test]
fn a_column_of_an_unexpected_type_names_row_group_row_and_column() {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    let sb = Sandbox::new();
    let problem: ArrayRef = Arc::new(StringArray::from(vec!["What is 1+1?", "What is 2+2?"]));
    let generations: ArrayRef = Arc::new(Int64Array::from(vec![2, 4]));
    let batch = RecordBatch::try_from_iter([("problem", problem), ("generations", generations)]).unwrap();
    let path = sb.path("odd.parquet");
    let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = sb.retort().args(["import", "odd.parquet"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("odd.parquet: row 2 (row group 0, row 2 of it): field `generations` must be a list of generations, found a number"),
        "{err}"
    );
    assert_eq!(counts(&sb).0, 0);
}
