//! Turning parsed records into rows: identities (hashes), token counts, resolved teacher, kind,
//! source and label. Runs on the reader thread, off the writer's path.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::{Kind, LabelType};
use crate::ingest::tokens::TokenCounter;
use crate::ingest::{Record, SampleDraft, Turn};
pub use crate::store::imports::{PreparedLogprobs, PreparedPrompt, PreparedRecord, PreparedSample};

/// The defaults and overrides an import applies to every record of a file.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// `--teacher`, else the record's model, else `fallback_name`.
    pub teacher: Option<String>,
    /// `--kind`, else the record's kind, else reasoning when there is a reference or reasoning.
    pub kind: Option<Kind>,
    /// `--source`, else the record's source, else `fallback_name`.
    pub source: Option<String>,
    /// The file's stem.
    pub fallback_name: String,
    pub score_name: String,
    /// The store holds imports from before migration 0006: compute each sample's legacy origin
    /// too, so that what they wrote is not written again.
    pub legacy_origins: bool,
}

fn json_text(v: Option<&Value>) -> Option<String> {
    v.map(Value::to_string)
}

/// sha256 of the prompt's turns and tools: the prompt's identity.
pub(crate) fn prompt_hash(turns: &[Turn], tools: Option<&Value>) -> [u8; 32] {
    let mut h = Sha256::new();
    for t in turns {
        h.update(t.role.as_bytes());
        h.update([0x1f]);
        h.update(t.content.as_bytes());
        if let Some(calls) = &t.tool_calls {
            h.update([0x1f]);
            h.update(crate::ingest::sorted_json(calls).as_bytes());
        }
        h.update([0x1e]);
    }
    if let Some(tools) = tools {
        h.update(b"tools\x1f");
        h.update(crate::ingest::sorted_json(tools).as_bytes());
    }
    h.finalize().into()
}

/// sha256 of (prompt, reasoning, answer, tool calls): equal for exact duplicates.
fn content_hash(prompt: &[u8; 32], s: &SampleDraft) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prompt);
    h.update(s.reasoning.as_deref().unwrap_or("").as_bytes());
    h.update([0x1f]);
    h.update(s.answer.as_bytes());
    h.update([0x1f]);
    if let Some(calls) = &s.tool_calls {
        h.update(crate::ingest::sorted_json(calls).as_bytes());
    }
    h.finalize().into()
}

/// Where a sample came from: the record number (5 bytes, big endian), the generation number
/// (1 byte) and 10 bytes of sha256 of (record bytes, record number, generation number). The
/// same file imported again, or a killed import run again, yields the same origins; one import's
/// origins ascend, so the UNIQUE index on them grows at its end (migrations/0006).
/// `record` is the hasher that has taken in the record's bytes (once, for all its samples).
/// Returns the origin and the one imports gave before migration 0006 (the hash's first 16 bytes).
pub(crate) fn origins(record: &Sha256, index: u64, generation: usize) -> ([u8; 16], [u8; 16]) {
    let mut h = record.clone();
    h.update(index.to_le_bytes());
    h.update((generation as u64).to_le_bytes());
    let full: [u8; 32] = h.finalize().into();
    let (mut origin, mut legacy) = ([0u8; 16], [0u8; 16]);
    origin[..5].copy_from_slice(&index.to_be_bytes()[3..]);
    origin[5] = u8::try_from(generation).unwrap_or(u8::MAX);
    origin[6..].copy_from_slice(&full[..10]);
    legacy.copy_from_slice(&full[..16]);
    (origin, legacy)
}

/// Tokens of tool calls (OpenAI shape): each call's function name and arguments.
fn tool_call_tokens(calls: Option<&Value>, tokens: &TokenCounter) -> u64 {
    let Some(Value::Array(calls)) = calls else { return 0 };
    calls
        .iter()
        .map(|call| {
            let (f, name) = crate::ingest::tool_function(call);
            tokens.count(name.unwrap_or_default()) + tokens.count(&crate::ingest::tool_arguments(f))
        })
        .sum()
}

/// Prepares a parsed record read from `raw` (record number `index`) for writing.
#[must_use]
pub fn prepare(record: Record, raw: &[u8], index: u64, defaults: &Defaults, tokens: &TokenCounter) -> PreparedRecord {
    let Record { prompt, samples, .. } = record;
    let hash = prompt_hash(&prompt.turns, prompt.tools.as_ref());
    let kind = defaults.kind.or(prompt.kind).unwrap_or_else(|| {
        if prompt.reference.is_some() || samples.iter().any(|s| s.reasoning.is_some()) { Kind::Reasoning } else { Kind::General }
    });
    let messages = (prompt.turns.len() > 1 || prompt.turns.iter().any(|t| t.tool_calls.is_some()))
        .then(|| Value::Array(prompt.turns.iter().map(Turn::to_message).collect()).to_string());
    let prepared_prompt = PreparedPrompt {
        hash,
        kind,
        source: defaults.source.clone().or_else(|| prompt.source.clone()).unwrap_or_else(|| defaults.fallback_name.clone()),
        text: prompt.text(),
        messages,
        tools: json_text(prompt.tools.as_ref()),
        reference: prompt.reference.clone(),
        metadata: prompt.metadata.map(|m| Value::Object(m).to_string()),
    };
    let record = Sha256::new_with_prefix(raw);
    let samples = samples
        .into_iter()
        .enumerate()
        .map(|(g, s)| {
            let (origin, legacy_origin) = origins(&record, index, g);
            let reasoning_tokens = s.reasoning.as_deref().map_or(0, |r| tokens.count(r)) as i64;
            // An answer that calls tools is that much longer: the calls' names and arguments.
            let answer_tokens = (tokens.count(&s.answer) + tool_call_tokens(s.tool_calls.as_ref(), tokens)) as i64;
            let verdicts = s
                .verdicts
                .iter()
                .map(|v| {
                    let name =
                        if v.suffix.is_empty() { defaults.score_name.clone() } else { format!("{}_{}", defaults.score_name, v.suffix) };
                    (name, v.pass)
                })
                .collect();
            PreparedSample {
                origin,
                legacy_origin: defaults.legacy_origins.then_some(legacy_origin),
                content_hash: content_hash(&hash, &s),
                teacher: defaults.teacher.clone().or_else(|| s.teacher.clone()).unwrap_or_else(|| defaults.fallback_name.clone()),
                label: s.label.unwrap_or(if s.logprobs.is_some() { LabelType::Soft } else { LabelType::Pseudo }),
                finish_reason: s.finish_reason.clone(),
                reasoning_tokens,
                answer_tokens,
                tool_calls: json_text(s.tool_calls.as_ref()),
                params: json_text(s.params.as_ref()),
                metadata: s.metadata.map(|m| Value::Object(m).to_string()),
                logprobs: s.logprobs.map(|l| {
                    let confidence = crate::domain::soft::Confidence::of(
                        l.content.as_array().into_iter().flatten().filter_map(|p| p.get("logprob").and_then(Value::as_f64)),
                    );
                    PreparedLogprobs {
                        k: l.k as i64,
                        temperature: l.temperature,
                        positions: l.positions as i64,
                        content: l.content.to_string(),
                        mean_logprob: confidence.map(|c| c.mean_logprob),
                        min_logprob: confidence.map(|c| c.min_logprob),
                    }
                }),
                system: s.system,
                reasoning: s.reasoning,
                answer: s.answer,
                verdicts,
            }
        })
        .collect();
    PreparedRecord { prompt: prepared_prompt, samples }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A prompt's identity does not depend on the order a file lists JSON keys in, and equals
    /// what stores written when all JSON was kept sorted hold (the hex below is Python's sha256
    /// over the same layout, with `json.dumps(sort_keys=True, separators=(",", ":"))`).
    #[test]
    fn prompt_identity_ignores_key_order_and_matches_earlier_stores() {
        let turns = |calls: Value| {
            vec![
                Turn::user("Weather in Paris?"),
                Turn { role: "assistant".into(), content: String::new(), tool_calls: Some(calls) },
                Turn { role: "tool".into(), content: "18°C".into(), tool_calls: None },
                Turn::user("And tomorrow?"),
            ]
        };
        let dataset_order = prompt_hash(
            &turns(json!([{"type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Paris\"}"}}])),
            Some(&json!([{"type": "function", "function": {"name": "get", "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])),
        );
        let other_order = prompt_hash(
            &turns(json!([{"function": {"arguments": "{\"city\":\"Paris\"}", "name": "get"}, "type": "function"}])),
            Some(&json!([{"function": {"parameters": {"properties": {"city": {"type": "string"}}, "type": "object"},
                "description": "Weather in a city", "name": "get"}, "type": "function"}])),
        );
        assert_eq!(dataset_order, other_order);
        assert_eq!(hex::encode(dataset_order), "a80baf8fbc750eb160f180e96a2dd67366c0bedc71fff143fccbf8e9121e53be");
    }
}
