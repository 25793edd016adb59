//! A scored completion laid out for reading, token by token: each position's token, the
//! teacher's log-prob of it, and its top-K alternatives, with every named token's bytes. Built
//! from a packed scoring and its stored vocabulary, or from an API's `logprobs.content`.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::soft::{PackError, for_each};

/// A completion as its teacher scored it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenTrace {
    /// The bytes of every token the trace names; the tokens below index into it.
    names: Vec<Vec<u8>>,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    /// Every position's alternatives, most likely first, one run after another.
    top: Vec<(u32, f32)>,
    /// Where each position's run starts in `top` (one entry more than positions).
    top_start: Vec<u32>,
}

/// Why a stored scoring cannot be read as a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Packed(#[from] PackError),
    #[error("the scoring's vocabulary is damaged or lacks token id {0}")]
    Vocabulary(u32),
    #[error("the stored log-probs are not a list of tokens")]
    NotAList,
}

impl TokenTrace {
    /// Positions in the trace.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bytes of the token at `position`.
    #[must_use]
    pub fn token(&self, position: usize) -> &[u8] {
        &self.names[self.tokens[position] as usize]
    }

    /// The teacher's log-prob of the trace's own token at `position`.
    #[must_use]
    pub fn logprob(&self, position: usize) -> f32 {
        self.logprobs[position]
    }

    /// The alternatives at `position`, most likely first: each token's bytes, its log-prob, and
    /// whether it is the trace's own token.
    pub fn alternatives(&self, position: usize) -> impl Iterator<Item = (&[u8], f32, bool)> {
        let run = self.top_start[position] as usize..self.top_start[position + 1] as usize;
        let own = self.tokens[position];
        self.top[run].iter().map(move |&(t, lp)| (self.names[t as usize].as_slice(), lp, t == own))
    }

    /// Where the trace's own token ranks among the teacher's alternatives (1 is the likeliest),
    /// or `None` when it is not among them.
    #[must_use]
    pub fn rank(&self, position: usize) -> Option<usize> {
        self.alternatives(position).position(|(_, _, own)| own).map(|i| i + 1)
    }

    /// Reads a packed scoring ([`super::soft::pack`]) with the packed vocabulary its ids belong
    /// to ([`super::soft::pack_vocabulary`]), keeping only the tokens it names.
    pub fn from_packed(bytes: &[u8], vocabulary: &[u8]) -> Result<Self, TraceError> {
        let mut trace = Self { top_start: vec![0], ..Self::default() };
        let mut local: HashMap<u32, u32> = HashMap::new();
        let mut wanted: Vec<u32> = Vec::new();
        let mut intern = |id: u32| {
            *local.entry(id).or_insert_with(|| {
                wanted.push(id);
                (wanted.len() - 1) as u32
            })
        };
        for_each(bytes, |token, lp, ids, lps| {
            trace.tokens.push(intern(token));
            trace.logprobs.push(lp);
            trace.top.extend(ids.iter().zip(lps).map(|(&id, &lp)| (intern(id), lp)));
            trace.top_start.push(trace.top.len() as u32);
        })?;
        trace.names = pick_tokens(vocabulary, &wanted)?;
        Ok(trace)
    }

    /// Reads an API's `logprobs.content`: per position `{token, logprob, bytes?, top_logprobs}`
    /// (OpenAI's shape), a token's `bytes` taken over its text where given.
    pub fn from_content(content: &Value) -> Result<Self, TraceError> {
        let positions = content.as_array().ok_or(TraceError::NotAList)?;
        let mut trace = Self { top_start: vec![0], ..Self::default() };
        let mut local: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut intern = |t: &Value| {
            let bytes = token_bytes(t);
            let next = local.len() as u32;
            *local.entry(bytes).or_insert(next)
        };
        let logprob = |t: &Value| t.get("logprob").and_then(Value::as_f64).map_or(f32::NEG_INFINITY, |lp| lp as f32);
        for p in positions {
            trace.tokens.push(intern(p));
            trace.logprobs.push(logprob(p));
            for t in p.get("top_logprobs").and_then(Value::as_array).into_iter().flatten() {
                let id = intern(t);
                trace.top.push((id, logprob(t)));
            }
            trace.top_start.push(trace.top.len() as u32);
        }
        trace.names = vec![Vec::new(); local.len()];
        for (bytes, id) in local {
            trace.names[id as usize] = bytes;
        }
        Ok(trace)
    }

    /// The text of every position, in order: bytes decoded across token boundaries, so a
    /// character split over two byte-level tokens belongs to the token that completes it; bytes
    /// that are no UTF-8 become U+FFFD. Control characters are left for the caller to show.
    #[must_use]
    pub fn texts(&self) -> Vec<String> {
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::with_capacity(self.tokens.len());
        for position in 0..self.tokens.len() {
            pending.extend_from_slice(self.token(position));
            let mut text = String::new();
            loop {
                match std::str::from_utf8(&pending) {
                    Ok(s) => {
                        text.push_str(s);
                        pending.clear();
                        break;
                    }
                    Err(e) => {
                        let valid = e.valid_up_to();
                        text.push_str(std::str::from_utf8(&pending[..valid]).unwrap_or_default());
                        if let Some(bad) = e.error_len() {
                            text.push('\u{FFFD}');
                            pending.drain(..valid + bad);
                        } else {
                            // A character the next token completes.
                            pending.drain(..valid);
                            break;
                        }
                    }
                }
            }
            out.push(text);
        }
        if !pending.is_empty()
            && let Some(last) = out.last_mut()
        {
            last.push('\u{FFFD}');
        }
        out
    }
}

/// A lone token as a label: its text where it is UTF-8, with `\n`, `\t` and other control
/// characters escaped and each byte that is no UTF-8 as `\xNN`.
#[must_use]
pub fn token_label(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// An API token's bytes: its `bytes` list where it has one, else its text's.
fn token_bytes(t: &Value) -> Vec<u8> {
    if let Some(bytes) = t.get("bytes").and_then(Value::as_array) {
        let bytes: Option<Vec<u8>> = bytes.iter().map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok())).collect();
        if let Some(bytes) = bytes {
            return bytes;
        }
    }
    t.get("token").and_then(Value::as_str).unwrap_or_default().as_bytes().to_vec()
}

/// The bytes of the tokens `ids` (in that order) from a packed vocabulary, walking it once
/// without unpacking the tokens not asked for.
fn pick_tokens(vocabulary: &[u8], ids: &[u32]) -> Result<Vec<Vec<u8>>, TraceError> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_unstable_by_key(|&i| ids[i]);
    let mut out = vec![Vec::new(); ids.len()];
    let mut wanted = order.iter().peekable();
    for (index, token) in super::soft::vocabulary_tokens(vocabulary).enumerate() {
        let Some(&&next) = wanted.peek() else { break };
        let Some(token) = token else { return Err(TraceError::Vocabulary(ids[next])) };
        while let Some(&&i) = wanted.peek().filter(|&&&i| ids[i] as usize == index) {
            out[i] = token.to_vec();
            wanted.next();
        }
    }
    match wanted.next() {
        Some(&i) => Err(TraceError::Vocabulary(ids[i])),
        None => Ok(out),
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // log-probs stored exactly (multiples of the quantisation step)
mod tests {
    use super::super::soft::{Position, Scored, pack, pack_vocabulary};
    use super::*;

    fn vocabulary() -> Vec<u8> {
        // 0 "a", 1 " b", 2 the first two bytes of "已", 3 its last byte, 4 "\n", 5 unused, 6 a lone 0xFF.
        pack_vocabulary(&[b"a".to_vec(), b" b".to_vec(), vec![0xE5, 0xB7], vec![0xB2], b"\n".to_vec(), b"zz".to_vec(), vec![0xFF]])
    }

    #[test]
    fn a_packed_scoring_reads_with_its_vocabulary() {
        let scored = Scored {
            k: 2,
            positions: vec![
                Position { token: 0, logprob: -0.5, top: vec![(0, -0.5), (1, -1.0)] },
                Position { token: 2, logprob: -2.0, top: vec![(4, -0.25), (1, -1.5)] },
                Position { token: 3, logprob: 0.0, top: vec![(3, 0.0), (6, -8.0)] },
                Position { token: 4, logprob: -1.0, top: vec![(1, -0.5), (4, -1.0)] },
            ],
        };
        let trace = TokenTrace::from_packed(&pack(&scored), &vocabulary()).unwrap();
        assert_eq!(trace.len(), 4);
        // "已" is split over two tokens: it belongs to the one that completes it.
        assert_eq!(trace.texts(), vec!["a", "", "已", "\n"]);
        assert_eq!(trace.token(1), &[0xE5, 0xB7]);
        assert_eq!(trace.logprob(1), -2.0);
        assert_eq!(trace.rank(0), Some(1));
        assert_eq!(trace.rank(1), None);
        assert_eq!(trace.rank(3), Some(2));
        let alts: Vec<(String, f32, bool)> = trace.alternatives(2).map(|(t, lp, own)| (token_label(t), lp, own)).collect();
        assert_eq!(alts, vec![("\\xB2".to_owned(), 0.0, true), ("\\xFF".to_owned(), -8.0, false)]);
        assert_eq!(token_label(b"\n x"), "\\n x");
    }

    #[test]
    fn a_damaged_vocabulary_is_an_error() {
        let scored = Scored { k: 1, positions: vec![Position { token: 9, logprob: -0.5, top: vec![(0, -0.5)] }] };
        assert_eq!(TokenTrace::from_packed(&pack(&scored), &vocabulary()), Err(TraceError::Vocabulary(9)));
        assert!(matches!(TokenTrace::from_packed(&[1, 2], &vocabulary()), Err(TraceError::Packed(_))));
    }

    #[test]
    fn api_content_reads_with_bytes_over_text() {
        let content = serde_json::json!([
            {"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1}, {"token": "Hello", "logprob": -2.5}]},
            {"token": "bytes:\\xe5", "bytes": [229, 183], "logprob": -1.0, "top_logprobs": []},
            {"token": "bytes:\\xb2", "bytes": [178], "logprob": -0.2}
        ]);
        let trace = TokenTrace::from_content(&content).unwrap();
        assert_eq!(trace.texts(), vec!["Hi", "", "已"]);
        assert_eq!(trace.alternatives(0).count(), 2);
        assert_eq!(trace.rank(0), Some(1));
        assert_eq!(trace.alternatives(2).count(), 0);
        assert_eq!(TokenTrace::from_content(&serde_json::json!({"a": 1})), Err(TraceError::NotAList));
    }

    #[test]
    fn an_unfinished_character_at_the_end_is_shown_as_unreadable() {
        let scored = Scored {
            k: 0,
            positions: vec![Position { token: 0, logprob: 0.0, top: vec![] }, Position { token: 2, logprob: 0.0, top: vec![] }],
        };
        let trace = TokenTrace::from_packed(&pack(&scored), &vocabulary()).unwrap();
        assert_eq!(trace.texts(), vec!["a", "\u{FFFD}"]);
    }
}
