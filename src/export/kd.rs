//! Soft labels for knowledge distillation: the teacher's top-k log-probs per completion position,
//! as token ids of the tokenizer teacher and student share.
//!
//! Teachers report tokens as text (and bytes); a byte-level BPE vocabulary (GPT-2, Llama 3, Qwen)
//! spells them through the GPT-2 byte-to-character table (`" How"` is `"ĠHow"`), so a token is
//! looked up as given, then by its bytes in that spelling.

use serde_json::Value;

/// The GPT-2 byte-to-character table of byte-level BPE vocabularies.
fn byte_char(b: u8) -> char {
    let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable {
        return char::from(b);
    }
    // The other bytes take the code points from 256 on, in byte order.
    let rank = (0..b).filter(|x| !matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)).count() as u32;
    char::from_u32(256 + rank).unwrap_or('?')
}

/// A token's spelling in a byte-level vocabulary.
#[must_use]
pub fn byte_level(bytes: &[u8]) -> String {
    bytes.iter().map(|b| byte_char(*b)).collect()
}

/// Looks up the id of a teacher token (`{"token", "bytes"?}`).
#[must_use]
pub fn token_id(tokenizer: &tokenizers::Tokenizer, token: &Value) -> Option<u32> {
    let text = token.get("token").and_then(Value::as_str)?;
    if let Some(id) = tokenizer.token_to_id(text) {
        return Some(id);
    }
    let bytes: Vec<u8> = match token.get("bytes").and_then(Value::as_array) {
        Some(b) => b.iter().filter_map(|x| x.as_u64().and_then(|v| u8::try_from(v).ok())).collect(),
        None => text.as_bytes().to_vec(),
    };
    tokenizer.token_to_id(&byte_level(&bytes))
}

/// Per completion position: the sampled token's id, and the top-k ids with their log-probs.
pub struct SoftTargets {
    pub token_ids: Vec<u32>,
    pub target_token_ids: Vec<Vec<u32>>,
    pub logprobs: Vec<Vec<f64>>,
}

/// Maps a sample's `logprobs.content` to ids; an unknown token is an error naming it and its
/// position: teacher and student must share a tokenizer.
pub fn soft_targets(tokenizer: &tokenizers::Tokenizer, content: &Value) -> Result<SoftTargets, String> {
    let positions = content.as_array().ok_or("the stored log-probs are not a list")?;
    let mut out = SoftTargets { token_ids: Vec::new(), target_token_ids: Vec::new(), logprobs: Vec::new() };
    let unknown = |i: usize, t: &Value| {
        format!(
            "position {i}: the teacher's token {} is not in the tokenizer: teacher and student must share a tokenizer",
            t.get("token").map_or_else(|| "?".to_owned(), ToString::to_string)
        )
    };
    for (i, p) in positions.iter().enumerate() {
        out.token_ids.push(token_id(tokenizer, p).ok_or_else(|| unknown(i, p))?);
        let top = p.get("top_logprobs").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut ids = Vec::with_capacity(top.len());
        let mut lps = Vec::with_capacity(top.len());
        for t in &top {
            ids.push(token_id(tokenizer, t).ok_or_else(|| unknown(i, t))?);
            lps.push(t.get("logprob").and_then(Value::as_f64).unwrap_or(f64::NEG_INFINITY));
        }
        out.target_token_ids.push(ids);
        out.logprobs.push(lps);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_byte_table() {
        assert_eq!(byte_level(b" How"), "ĠHow");
        assert_eq!(byte_level(b"\n"), "Ċ");
        assert_eq!(byte_level(b"a!"), "a!");
        assert_eq!(byte_level(&[0xE4, 0xB8, 0xAD]), "ä¸Ń");
    }
}
