//! Compressed inputs: a `.jsonl.gz` or `.jsonl.zst` imports as its plain twin does, in a folder
//! too, and a truncated one is an error that names the place reached and leaves the store as it was.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;

use common::Sandbox;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn counts(sb: &Sandbox) -> (i64, i64, i64) {
    (
        sb.query_i64("SELECT count(*) FROM prompts"),
        sb.query_i64("SELECT count(*) FROM samples"),
        sb.query_i64("SELECT count(*) FROM scores"),
    )
}

#[test]
fn a_gzipped_file_imports_with_its_plain_twins_counts() {
    let plain = std::fs::read(common::data("skythought/sky-t1-14b_amc23.jsonl")).unwrap();
    let twin = Sandbox::new();
    twin.write("amc.jsonl", &plain);
    twin.retort().args(["import", "amc.jsonl"]).assert().success();
    let want = counts(&twin);
    assert_eq!(want.1, 40);

    let sb = Sandbox::new();
    sb.write("amc.jsonl.gz", gzip(&plain));
    sb.retort().args(["import", "amc.jsonl.gz"]).assert().success();
    assert_eq!(counts(&sb), want);
    assert_eq!(
        sb.query_string("SELECT reasoning FROM sample_texts ORDER BY sample_id LIMIT 1"),
        twin.query_string("SELECT reasoning FROM sample_texts ORDER BY sample_id LIMIT 1")
    );

    // A downloaded folder with a gzipped shard and its README.
    let dir = Sandbox::new();
    std::fs::create_dir_all(dir.path("data")).unwrap();
    dir.write("data/train-00000.jsonl.gz", gzip(&plain));
    dir.write("data/README.md", "# a dataset\n");
    dir.retort().args(["import", "data"]).assert().success();
    assert_eq!(counts(&dir), want);
}

#[test]
fn a_bad_record_in_a_gzipped_file_is_located_in_its_text() {
    let sb = Sandbox::new();
    sb.write("bad.jsonl.gz", gzip(b"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"c\", \n"));
    let out = sb.retort().args(["import", "bad.jsonl.gz"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("bad.jsonl.gz") && err.contains(":2:"), "{err}");
    assert_eq!(counts(&sb).1, 0, "nothing written");
}

#[test]
fn a_truncated_gzip_is_an_error_and_the_store_is_left_as_it_was() {
    let plain = std::fs::read(common::data("skythought/sky-t1-14b_amc23.jsonl")).unwrap();
    let sb = Sandbox::new();
    sb.write("first.jsonl", common::head(&common::data("gsm8k/test.jsonl"), 3));
    sb.retort().args(["import", "first.jsonl"]).assert().success();
    let before = counts(&sb);
    let gz = gzip(&plain);
    sb.write("cut.jsonl.gz", &gz[..gz.len() / 2]);
    let out = sb.retort().args(["import", "cut.jsonl.gz"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("cut.jsonl.gz: cannot read past line "), "{err}");
    assert_eq!(counts(&sb), before);
}

#[test]
fn a_zstd_file_imports_with_its_plain_twins_counts_and_a_truncated_one_fails() {
    let plain = std::fs::read(common::data("skythought/sky-t1-14b_amc23.jsonl")).unwrap();
    let twin = Sandbox::new();
    twin.write("amc.jsonl", &plain);
    twin.retort().args(["import", "amc.jsonl"]).assert().success();
    let want = counts(&twin);

    let sb = Sandbox::new();
    // Two frames, as `cat a.zst b.zst` (or a stream compressor's output, with no content size).
    let half = plain.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut zst = zstd::encode_all(&plain[..half], 3).unwrap();
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(&plain[half..]).unwrap();
    zst.extend(enc.finish().unwrap());
    sb.write("amc.jsonl.zst", &zst);
    sb.retort().args(["import", "amc.jsonl.zst"]).assert().success();
    assert_eq!(counts(&sb), want);

    let dir = Sandbox::new();
    std::fs::create_dir_all(dir.path("data")).unwrap();
    dir.write("data/train.jsonl.zst", &zst);
    dir.write("data/.gitattributes", "*.zst filter=lfs\n");
    let out = dir.retort().args(["import", "data"]).assert().success();
    assert_eq!(counts(&dir), want);
    let said = String::from_utf8_lossy(&out.get_output().stderr).to_string() + &String::from_utf8_lossy(&out.get_output().stdout);
    assert!(said.contains(".gitattributes"), "the file left out is named: {said}");

    let cut = Sandbox::new();
    cut.write("cut.jsonl.zst", &zst[..zst.len() - 40]);
    let out = cut.retort().args(["import", "cut.jsonl.zst"]).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("cut.jsonl.zst: cannot read past line "), "{err}");
    assert_eq!(counts(&cut).1, 0, "nothing written");
}
