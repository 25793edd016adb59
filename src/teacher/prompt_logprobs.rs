//! Teacher-forced log-probs from vLLM: a completions request whose prompt is a conversation's
//! token ids, with `max_tokens: 1` and `prompt_logprobs: K`. vLLM answers, in
//! `choices[0].prompt_logprobs`, one entry per prompt token: `null` for the first (nothing
//! predicts it), else `{"<token id>": {"logprob", "rank", "decoded_token"}}` holding the token
//! the prompt has (with its rank in the whole vocabulary) and the K most likely tokens (ranks
//! 1 to K): K entries when the prompt's token is among them, K + 1 when it is not.
//!
//! vLLM takes them from the raw logits, before temperature or any other processing (its
//! `--logprobs-mode` acts on sampled tokens only): they are the teacher's distribution at
//! temperature 1, and −∞ comes as −9999.

use std::ops::Range;

use serde_json::{Value, json};

use crate::domain::soft::Position;

/// The temperature vLLM's prompt log-probs are taken at.
pub const TEMPERATURE: f64 = 1.0;

/// The request scoring `ids` with the top `k` alternatives at every position.
#[must_use]
pub fn request(model: &str, ids: &[u32], k: usize) -> Value {
    json!({"model": model, "prompt": ids, "max_tokens": 1, "prompt_logprobs": k})
}

/// Why an answer does not hold the log-probs asked for; the path names the place in the answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplyError {
    #[error(
        "the answer has no `choices[0].prompt_logprobs`: the server does not return prompt log-probs (vLLM does, \
         `vllm serve MODEL --max-logprobs K`)"
    )]
    Missing,
    #[error("`choices[0].prompt_logprobs` has {got} positions for a prompt of {want} tokens")]
    Length { got: usize, want: usize },
    #[error("`choices[0].prompt_logprobs[{index}]`: {what}")]
    At { index: usize, what: String },
}

/// A completions answer as read off the wire: vLLM's shape read straight into its entries (a
/// 16k-token trace at K = 20 is 20 MB of JSON, several times that as a `Value`), or, when it is
/// not that shape, the JSON it is, for [`parse`] to say where it differs.
#[derive(Debug)]
pub enum Reply {
    Scored(Vec<Option<Entries>>),
    Other(Value),
}

/// One position's entries: each token id with its log-prob and rank.
#[derive(Debug, Default)]
pub struct Entries(Vec<(u32, f64, Option<u64>)>);

#[derive(serde::Deserialize)]
struct Wire {
    choices: Vec<WireChoice>,
}

#[derive(serde::Deserialize)]
struct WireChoice {
    prompt_logprobs: Vec<Option<Entries>>,
}

#[derive(serde::Deserialize)]
struct WireEntry {
    logprob: f64,
    #[serde(default)]
    rank: Option<u64>,
}

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of token ids")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let id = key.parse().map_err(|_| serde::de::Error::custom("a key that is no token id"))?;
                    let entry: WireEntry = map.next_value()?;
                    out.push((id, entry.logprob, entry.rank));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Reads an answer's text: vLLM's shape straight into its entries, else whatever JSON it is;
/// an error only when it is no JSON (a body cut short, a proxy's page).
pub fn read(body: &[u8]) -> serde_json::Result<Reply> {
    match serde_json::from_slice::<Wire>(body) {
        Ok(mut wire) if !wire.choices.is_empty() => Ok(Reply::Scored(wire.choices.swap_remove(0).prompt_logprobs)),
        _ => serde_json::from_slice(body).map(Reply::Other),
    }
}

/// The positions `range` of a scored prompt `ids`, each with its top `k`.
pub fn parse(reply: &Reply, ids: &[u32], range: Range<usize>, k: usize) -> Result<Vec<Position>, ReplyError> {
    match reply {
        Reply::Scored(entries) => {
            if entries.len() != ids.len() {
                return Err(ReplyError::Length { got: entries.len(), want: ids.len() });
            }
            range
                .map(|index| match &entries[index] {
                    Some(e) => position(index, ids[index], &e.0, k),
                    None => Err(ReplyError::At { index, what: "expected an object of token ids, found null".into() }),
                })
                .collect()
        }
        Reply::Other(value) => parse_value(value, ids, range, k),
    }
}

/// [`parse`] of an answer that is not vLLM's shape as [`read`] reads it: where it differs, located.
fn parse_value(response: &Value, ids: &[u32], range: Range<usize>, k: usize) -> Result<Vec<Position>, ReplyError> {
    let entries = response
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("prompt_logprobs"))
        .and_then(Value::as_array)
        .ok_or(ReplyError::Missing)?;
    if entries.len() != ids.len() {
        return Err(ReplyError::Length { got: entries.len(), want: ids.len() });
    }
    let mut out = Vec::with_capacity(range.len());
    for index in range {
        let at = |what: String| ReplyError::At { index, what };
        let entry =
            entries[index].as_object().ok_or_else(|| at(format!("expected an object of token ids, found {}", kind(&entries[index]))))?;
        let mut read = Vec::with_capacity(entry.len());
        for (key, value) in entry {
            let id: u32 = key.parse().map_err(|_| at(format!("the key {key:?} is not a token id")))?;
            let lp = value.get("logprob").and_then(Value::as_f64).ok_or_else(|| at(format!("token {id} has no number `logprob`")))?;
            let rank = match value.get("rank") {
                None | Some(Value::Null) => None,
                Some(r) => Some(r.as_u64().filter(|r| *r >= 1).ok_or_else(|| at(format!("token {id} has the rank {r}")))?),
            };
            read.push((id, lp, rank));
        }
        out.push(position(index, ids[index], &read, k)?);
    }
    Ok(out)
}

/// A position from its entries: the prompt's own token and log-prob, and the top `k` by rank.
fn position(index: usize, token: u32, entries: &[(u32, f64, Option<u64>)], k: usize) -> Result<Position, ReplyError> {
    let at = |what: String| ReplyError::At { index, what };
    let mut logprob = None;
    // (rank, id, logprob)
    let mut ranked: Vec<(u64, u32, f32)> = Vec::with_capacity(entries.len());
    for &(id, lp, rank) in entries {
        if lp.is_nan() || lp > 1e-3 {
            return Err(at(format!("token {id} has the log-prob {lp}, which no probability has")));
        }
        if rank == Some(0) {
            return Err(at(format!("token {id} has the rank 0")));
        }
        if id == token {
            logprob = Some(lp as f32);
        }
        ranked.push((rank.unwrap_or(u64::MAX), id, lp as f32));
    }
    let logprob =
        logprob.ok_or_else(|| at(format!("no entry for the prompt's token {token}: the server scored other tokens than it was sent")))?;
    // By rank, else (no ranks) most likely first; ties by id, so the order is the same on every run.
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.total_cmp(&a.2)).then(a.1.cmp(&b.1)));
    if ranked.len() < k {
        return Err(at(format!("{} alternatives where {k} were asked for", ranked.len())));
    }
    Ok(Position { token, logprob, top: ranked.into_iter().take(k).map(|(_, id, lp)| (id, lp)).collect() })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // values that are exact in binary: stored and read back unchanged
mod tests {
    use super::*;

    /// Parses an answer as it comes off the wire and as plain JSON: the two must agree.
    fn both(answer: &Value, ids: &[u32], range: Range<usize>, k: usize) -> Result<Vec<Position>, ReplyError> {
        let wire = parse(&read(answer.to_string().as_bytes()).unwrap(), ids, range.clone(), k);
        assert_eq!(wire, parse(&Reply::Other(answer.clone()), ids, range, k));
        wire
    }

    #[test]
    fn vllms_shape_is_read_straight_and_other_json_kept() {
        assert!(matches!(read(answer().to_string().as_bytes()), Ok(Reply::Scored(e)) if e.len() == 4));
        assert!(matches!(read(br#"{"choices": [{"text": "", "logprobs": null}]}"#), Ok(Reply::Other(_))));
        assert!(matches!(read(br#"{"choices": [{"prompt_logprobs": [null, {"x": {"logprob": -1}}]}]}"#), Ok(Reply::Other(_))));
        assert!(read(br#"{"choices": [{"prompt_logprobs": [null, {"#).is_err(), "a body cut short is no JSON: asked again");
    }

    /// vLLM's shape: the first position null; the prompt's token first with its rank, then the top-k.
    fn answer() -> Value {
        json!({"id": "cmpl-1", "object": "text_completion", "model": "teacher", "choices": [{
            "index": 0, "text": "!", "logprobs": null, "finish_reason": "length", "stop_reason": null,
            "prompt_logprobs": [
                null,
                {"7": {"logprob": -0.25, "rank": 1, "decoded_token": " the"}, "9": {"logprob": -1.75, "rank": 2, "decoded_token": " a"}},
                {"5": {"logprob": -4.5, "rank": 3, "decoded_token": "x"}, "2": {"logprob": -0.5, "rank": 1, "decoded_token": "y"},
                 "3": {"logprob": -1.5, "rank": 2, "decoded_token": "z"}},
                {"1": {"logprob": -9999.0, "rank": 150_000, "decoded_token": "q"}, "4": {"logprob": -0.1, "rank": 1, "decoded_token": "w"},
                 "6": {"logprob": -3.0, "rank": 2, "decoded_token": "e"}}
            ]}], "usage": {"prompt_tokens": 4, "total_tokens": 5, "completion_tokens": 1}})
    }

    #[test]
    fn reads_vllms_shape() {
        let p = both(&answer(), &[0, 7, 5, 1], 1..4, 2).unwrap();
        assert_eq!(p[0], Position { token: 7, logprob: -0.25, top: vec![(7, -0.25), (9, -1.75)] });
        // The prompt's token outside the top-2 is the trace's, not an alternative.
        assert_eq!(p[1], Position { token: 5, logprob: -4.5, top: vec![(2, -0.5), (3, -1.5)] });
        assert_eq!(p[2].logprob, -9999.0);
        assert_eq!(p[2].top, vec![(4, -0.1), (6, -3.0)]);
    }

    #[test]
    fn wrong_answers_are_located() {
        assert_eq!(both(&json!({"choices": [{"text": ""}]}), &[0, 1], 1..2, 1), Err(ReplyError::Missing));
        assert_eq!(both(&answer(), &[0, 7, 5], 1..3, 2), Err(ReplyError::Length { got: 4, want: 3 }));
        let err = both(&answer(), &[0, 7, 8, 1], 1..4, 2).unwrap_err().to_string();
        assert!(err.starts_with("`choices[0].prompt_logprobs[2]`: no entry for the prompt's token 8"), "{err}");
        let err = both(&answer(), &[0, 7, 5, 1], 1..4, 3).unwrap_err().to_string();
        assert!(err.contains("[1]`: 2 alternatives where 3 were asked for"), "{err}");
        let mut bad = answer();
        bad["choices"][0]["prompt_logprobs"][1]["7"]["logprob"] = json!(0.5);
        assert!(both(&bad, &[0, 7, 5, 1], 1..2, 1).unwrap_err().to_string().contains("log-prob 0.5"));
        bad["choices"][0]["prompt_logprobs"][1] = json!([1, 2]);
        assert!(both(&bad, &[0, 7, 5, 1], 1..2, 1).unwrap_err().to_string().contains("found a list"));
    }
}
