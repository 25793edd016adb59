//! Hostile input, as files and people produce it: a thousand mutations of real data files through
//! the importer, and thousands of rule strings through the parser. Nothing may panic, abort or
//! hang; every refusal names its place; a refused import writes nothing.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a test fails loudly

mod common;

use std::time::Duration;

use common::{Sandbox, data, head};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use retort::ops::import::{ImportError, ImportOptions, import};

/// Small slices of the real data, in each layout the reader knows: JSONL lines, a JSON array,
/// one pretty-printed object.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let array = |file: &str, n: usize| {
        let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(data(file)).unwrap()).unwrap();
        serde_json::to_vec_pretty(&rows[..n]).unwrap()
    };
    vec![
        ("sky.jsonl", head(&data("skythought/sky-t1-14b_amc23.jsonl"), 3).into_bytes()),
        ("gsm8k.jsonl", head(&data("gsm8k/test.jsonl"), 20).into_bytes()),
        ("glaive.json", array("chat-formats/llamafactory_glaive_toolcall_en_demo.json", 6)),
        ("alpaca.json", array("chat-formats/llamafactory_alpaca_en_demo.json", 10)),
        ("exchange.json", std::fs::read(data("wire-formats/openai_chat_completion_logprobs.json")).unwrap()),
    ]
}

/// One random change of the kinds a broken download, an editor or a person makes.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    const PIECES: [&[u8]; 14] =
        [b"{", b"}", b"[", b"]", b",", b":", b"\"", b"\\", b"\n", b"\x00", b"\xff\xfe", b"null", b"[[[[[[[[[[", b"\xe2\x80"];
    if bytes.is_empty() {
        bytes.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())]);
        return;
    }
    let at = rng.random_range(0..bytes.len());
    match rng.random_range(0..7) {
        0 => bytes[at] ^= 1 << rng.random_range(0..8),
        1 => {
            let end = (at + rng.random_range(1..64)).min(bytes.len());
            bytes.drain(at..end);
        }
        2 => {
            let piece = PIECES[rng.random_range(0..PIECES.len())];
            bytes.splice(at..at, piece.iter().copied());
        }
        3 => bytes.truncate(at),
        4 => {
            let end = (at + rng.random_range(1..200)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
        5 => bytes[at] = rng.random(),
        _ => {
            // Nesting far deeper than any parser's recursion.
            let depth = rng.random_range(100..20_000);
            bytes.splice(at..at, std::iter::repeat_n(b'[', depth));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_mutated_files_are_imported_or_refused_with_their_place() {
    let sb = Sandbox::new();
    let store = retort::store::Store::open(&sb.db()).await.unwrap();
    let mut rng = StdRng::seed_from_u64(20_261_202);
    let seeds = seeds();
    let (mut imported, mut refused) = (0, 0);
    for case in 0..1000 {
        let (name, seed) = &seeds[case % seeds.len()];
        let mut bytes = seed.clone();
        for _ in 0..rng.random_range(1..4) {
            mutate(&mut rng, &mut bytes);
        }
        let path = sb.write(&format!("{case}-{name}"), &bytes);
        let samples = |s: &retort::store::Store| {
            let s = s.clone();
            async move { sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM samples").fetch_one(s.pool()).await.unwrap().0 }
        };
        let before = samples(&store).await;
        let run = {
            let (store, path) = (store.clone(), path.clone());
            tokio::spawn(async move {
                let opts = ImportOptions::default();
                import(&store, &[path], &opts, &|_| {}).await
            })
        };
        let outcome = match tokio::time::timeout(Duration::from_mins(1), run).await {
            Err(elapsed) => panic!("case {case} ({name}) hangs ({elapsed}): {}", path.display()),
            Ok(Err(join)) => panic!("case {case} ({name}) panicked: {join} ({})", path.display()),
            Ok(Ok(outcome)) => outcome,
        };
        match outcome {
            Ok(_) => imported += 1,
            Err(e) => {
                refused += 1;
                let text = e.to_string();
                match &e {
                    ImportError::BadRecords { bad, .. } => {
                        for b in bad {
                            assert!(b.line >= 1 && b.column.is_some(), "case {case}: unlocated: {text}");
                        }
                    }
                    ImportError::File { message, .. } => assert!(!message.is_empty(), "case {case}"),
                    other => panic!("case {case}: {other}"),
                }
                assert!(text.contains(&format!("{case}-{name}")), "case {case}: the error names the file: {text}");
                assert_eq!(samples(&store).await, before, "case {case}: a refused import wrote: {text}");
            }
        }
    }
    assert!(imported > 50 && refused > 500, "{imported} imported, {refused} refused");
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(store.pool()).await.unwrap();
    assert_eq!(check.0, "ok");
}
