//! The bundled demo set (assets/demo): a few hundred real samples across formats, imported when
//! retort opens an empty store.

use std::path::PathBuf;

use crate::ops::import::{FileReport, ImportError, ImportOptions, import};
use crate::store::Store;

/// (file name, contents, teacher).
const FILES: &[(&str, &str, Option<&str>)] = &[
    ("sky-t1-27b_math500.jsonl", include_str!("../assets/demo/sky-t1-27b_math500.jsonl"), Some("sky-t1-27b")),
    ("qwen2.5-14b-instruct_math500.jsonl", include_str!("../assets/demo/qwen2.5-14b-instruct_math500.jsonl"), Some("qwen2.5-14b-instruct")),
    ("sky-t1-14b_amc23.jsonl", include_str!("../assets/demo/sky-t1-14b_amc23.jsonl"), Some("sky-t1-14b")),
    ("sky-t1-wrong-14b_amc23.jsonl", include_str!("../assets/demo/sky-t1-wrong-14b_amc23.jsonl"), Some("sky-t1-wrong-14b")),
    ("gsm8k_test.jsonl", include_str!("../assets/demo/gsm8k_test.jsonl"), None),
    ("alpaca_en_demo.jsonl", include_str!("../assets/demo/alpaca_en_demo.jsonl"), None),
    ("glaive_toolcall_en_demo.jsonl", include_str!("../assets/demo/glaive_toolcall_en_demo.jsonl"), None),
    ("openai_logprobs_exchange.jsonl", include_str!("../assets/demo/openai_logprobs_exchange.jsonl"), None),
];

/// Imports the demo set through the ordinary importer.
pub async fn import_demo(store: &Store) -> Result<Vec<FileReport>, ImportError> {
    // Unique per call: two stores may be filled at once in one process (the tests do).
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("retort-demo-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| ImportError::File { path: dir.clone(), message: e.to_string() })?;
    let mut reports = Vec::new();
    let result = async {
        for (name, contents, teacher) in FILES {
            let path: PathBuf = dir.join(name);
            std::fs::write(&path, contents).map_err(|e| ImportError::File { path: path.clone(), message: e.to_string() })?;
            let opts = ImportOptions { teacher: teacher.map(str::to_owned), ..ImportOptions::default() };
            reports.extend(import(store, &[path], &opts, &|_| {}).await?);
        }
        // 241 samples: indexed before the TUI opens, so search finds them at once.
        crate::ops::index::after_import(store, crate::ops::index::IndexWhen::Now, None, &|_| {}).await?;
        Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|()| reports)
}
