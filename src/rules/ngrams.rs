//! Contamination: prompts that share a word n-gram with an evaluation set (as open-r1's
//! decontamination does, 8-grams by default).
//!
//! Words are runs of ASCII letters and digits, lowercased; every other letter (CJK, accented)
//! counts as a word on its own, so Chinese problems are compared character by character. A text
//! shorter than n words is one n-gram, so a short question copied whole is still caught.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::ingest::reader::{Records, sniff_layout};

/// The words of a text, as the comparison sees them.
#[must_use]
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        } else {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            if c.is_alphanumeric() {
                out.extend(c.to_lowercase().map(String::from));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn gram_hash(words: &[String]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for w in words {
        for b in w.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        h = (h ^ 0x1F).wrapping_mul(0x100_0000_01B3);
    }
    h
}

fn grams(text: &str, n: usize) -> Vec<u64> {
    let w = words(text);
    if w.is_empty() {
        return Vec::new();
    }
    if w.len() < n {
        return vec![gram_hash(&w)];
    }
    w.windows(n).map(gram_hash).collect()
}

/// The task texts of one evaluation record: its problem/question/prompt, or its user turns.
fn record_texts(v: &Value) -> Vec<String> {
    let Value::Object(obj) = v else {
        return v.as_str().map(|s| vec![s.to_owned()]).unwrap_or_default();
    };
    for key in ["problem", "question", "prompt", "instruction", "input", "text"] {
        if let Some(Value::String(s)) = obj.get(key) {
            return vec![s.clone()];
        }
    }
    let turns = obj.get("messages").or_else(|| obj.get("conversations"));
    turns
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter(|t| matches!(t.get("role").or_else(|| t.get("from")).and_then(Value::as_str), Some("user" | "human")))
                .filter_map(|t| t.get("content").or_else(|| t.get("value")).and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Why an evaluation set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalSetError {
    /// The file cannot be opened or read; the system's reason is in the message.
    #[error("cannot read the evaluation set {}: {cause}", path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{}: a record is unreadable or over 64 MiB", path.display())]
    Record { path: PathBuf },
    #[error("{}:{line}: invalid UTF-8", path.display())]
    Utf8 { path: PathBuf, line: u64 },
    #[error("the evaluation set {} holds no problems", path.display())]
    Empty { path: PathBuf },
}

/// The n-grams of an evaluation set, each with the line it came from.
pub struct EvalSet {
    pub n: usize,
    pub texts: usize,
    grams: HashMap<u64, u64>,
}

impl EvalSet {
    /// Reads an evaluation file: JSONL or JSON records (problem/question/prompt, or user turns),
    /// or plain text, one problem a line.
    pub fn load(path: &Path, n: usize) -> Result<Self, EvalSetError> {
        let unreadable = |cause: std::io::Error| EvalSetError::Read { path: path.to_owned(), cause };
        let layout = sniff_layout(path).map_err(unreadable)?;
        let reader = Records::open(path, layout, 64 << 20).map_err(unreadable)?;
        let mut set = Self { n, texts: 0, grams: HashMap::new() };
        for raw in reader {
            let raw = raw.map_err(|_| EvalSetError::Record { path: path.to_owned() })?;
            let text = String::from_utf8(raw.bytes).map_err(|_| EvalSetError::Utf8 { path: path.to_owned(), line: raw.line })?;
            let texts = match serde_json::from_str::<Value>(&text) {
                Ok(v) => record_texts(&v),
                Err(_) => vec![text],
            };
            for t in texts {
                set.texts += 1;
                for g in grams(&t, n) {
                    set.grams.entry(g).or_insert(raw.line);
                }
            }
        }
        if set.texts == 0 {
            return Err(EvalSetError::Empty { path: path.to_owned() });
        }
        Ok(set)
    }

    /// The line of the evaluation set that `text` shares an n-gram with, if any.
    #[must_use]
    pub fn hit(&self, text: &str) -> Option<u64> {
        grams(text, self.n).iter().find_map(|g| self.grams.get(g).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_ascii_runs_and_cjk_characters() {
        assert_eq!(words("Find x, if 2x+3=7."), vec!["find", "x", "if", "2x", "3", "7"]);
        assert_eq!(words("已知集合 M"), vec!["已", "知", "集", "合", "m"]);
    }

    #[test]
    fn shared_ngram_is_a_hit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eval.jsonl");
        std::fs::write(&path, "{\"problem\": \"Every morning Aya goes for a 9 kilometer long walk and stops at a coffee shop\"}\n{\"question\": \"short one\"}\n").unwrap();
        let set = EvalSet::load(&path, 8).unwrap();
        assert_eq!(set.texts, 2);
        assert_eq!(set.hit("Solve: every morning, Aya goes for a 9-kilometer-long walk. Then what?"), Some(1));
        assert_eq!(set.hit("Every morning Bob runs."), None);
        assert_eq!(set.hit("Short one!"), Some(2));
    }
}
