//! Shared helpers for the integration tests: the real binary, a fresh store each, the real data.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// `../shared/data`, the real data the tests run on.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

/// A fresh store in its own temporary directory.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("retort.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the sandbox and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write fixture");
        p
    }

    /// The retort binary, pointed at this sandbox's store.
    pub fn retort(&self) -> Command {
        let mut cmd = Command::cargo_bin("retort").expect("binary");
        cmd.env("RETORT_DB", self.db()).env_remove("NO_COLOR").current_dir(self.dir.path());
        cmd
    }

    /// `retort stats --json`.
    pub fn stats(&self) -> Value {
        let out = self.retort().args(["stats", "--json"]).output().expect("run stats");
        assert!(out.status.success(), "stats failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }

    /// Runs a query on the store with the sqlite3 shell-free path: through rusqlite.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db()).expect("open store");
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    pub fn query_string(&self, sql: &str) -> Option<String> {
        let conn = rusqlite::Connection::open(self.db()).expect("open store");
        conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    /// Every row of every table (FTS aside), as text: equal snapshots mean an unchanged store.
    pub fn snapshot(&self) -> String {
        if !self.db().exists() {
            return String::new();
        }
        let conn = rusqlite::Connection::open(self.db()).expect("open store");
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sample_fts%' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.sort();
        let mut out = String::new();
        for t in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\" ORDER BY 1")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut cells = Vec::with_capacity(n);
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        cells.push(format!("{v:?}"));
                    }
                    Ok(cells.join("|"))
                })
                .unwrap();
            out.push_str("## ");
            out.push_str(&t);
            out.push('\n');
            for row in rows {
                out.push_str(&row.unwrap());
                out.push('\n');
            }
        }
        out
    }
}

/// Reads a JSONL file of the real data as JSON values.
pub fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read data")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("real data is JSON"))
        .collect()
}

/// The first `n` lines of a real JSONL file.
pub fn head(path: &Path, n: usize) -> String {
    std::fs::read_to_string(path).expect("read data").lines().take(n).flat_map(|l| [l, "\n"]).collect()
}

/// JSON values as JSONL text.
pub fn to_jsonl(values: impl IntoIterator<Item = Value>) -> String {
    let mut out = String::new();
    for v in values {
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// Reads one HTTP/1.1 request from a test server's connection: its header lines and its JSON
/// body (`Null` when the body is not JSON).
pub fn read_request(reader: &mut impl std::io::BufRead) -> (String, Value) {
    let (mut headers, mut length) = (String::new(), 0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        headers.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A student's model directory: a ChatML template and a word-level tokenizer.json over GPT-2's
/// byte-level pieces (`" How"` is `"ĠHow"`) whose vocabulary is `tokens` (ids in order, unknown
/// words the first), with the template's markers as special tokens.
pub fn student_with(sb: &Sandbox, name: &str, tokens: &[String]) -> std::path::PathBuf {
    let dir = sb.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut vocab: serde_json::Map<String, Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), serde_json::json!(i))).collect();
    let specials = ["<|im_start|>", "<|im_end|>"];
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            vocab.insert((*t).to_owned(), serde_json::json!(tokens.len() + i));
            serde_json::json!({"id": tokens.len() + i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                               "normalized": false, "special": true})
        })
        .collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": tokens[0]}
    });
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
    let chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    std::fs::write(dir.join("chat_template.jinja"), chatml).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"eos_token": "<|im_end|>"}"#).unwrap();
    dir
}

/// Every token a chat completion's log-probs name (sampled or in the top-k), spelled as a
/// byte-level vocabulary spells it (a leading space is `Ġ`), after the words of the students'
/// ChatML template: the vocabulary of [`student_with`] for that teacher.
pub fn logprob_vocabulary(response: &Value) -> Vec<String> {
    let mut tokens: Vec<String> = ["<unk>", "user", "assistant", "system", "\u{10a}"].map(str::to_owned).to_vec();
    for p in response["choices"][0]["logprobs"]["content"].as_array().unwrap() {
        for t in std::iter::once(p).chain(p["top_logprobs"].as_array().unwrap()) {
            let spelled = t["token"].as_str().unwrap().replace(' ', "\u{120}");
            if !tokens.contains(&spelled) {
                tokens.push(spelled);
            }
        }
    }
    tokens
}
