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

/// Why a sample's stored log-probs cannot become a kd line for the student.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdError {
    #[error("the stored log-probs are not a list")]
    NotAList,
    /// A teacher token (`token` as the JSON text the store holds) the student's vocabulary lacks.
    #[error("position {position}: the teacher's token {token} is not in the tokenizer: teacher and student must share a tokenizer")]
    UnknownToken { position: usize, token: String },
    #[error("the student's chat template trains no token of this conversation")]
    NothingTrained,
    #[error("the stored log-probs have no positions")]
    NoPositions,
    #[error("a position of the stored log-probs has no top-k alternatives")]
    NoAlternatives,
    #[error(
        "the teacher's tokens are not among the student's tokens of the answer: teacher and student tokenizers \
         differ, or the answer's text is not the teacher's"
    )]
    NotInAnswer,
    #[error(
        "position {position}: the teacher's token id {id} is past the student's vocabulary of {size}: teacher and student must share a tokenizer"
    )]
    ForeignId { position: usize, id: u32, size: usize },
    #[error("the stored log-probs: {0}")]
    Packed(crate::domain::soft::PackError),
}

/// Per completion position: the sampled token's id, and the top-k ids with their log-probs,
/// held flat (one run after another) so reading millions of positions allocates a few vectors,
/// not two per position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftTargets {
    pub token_ids: Vec<u32>,
    top_ids: Vec<u32>,
    top_logprobs: Vec<f64>,
    /// Where each position's run starts (one entry more than positions).
    starts: Vec<usize>,
}

impl SoftTargets {
    fn with_capacity(positions: usize, k: usize) -> Self {
        let mut starts = Vec::with_capacity(positions + 1);
        starts.push(0);
        Self {
            token_ids: Vec::with_capacity(positions),
            top_ids: Vec::with_capacity(positions * k),
            top_logprobs: Vec::with_capacity(positions * k),
            starts,
        }
    }

    /// From per-position rows (the token, its top ids, their log-probs).
    #[must_use]
    pub fn from_rows(token_ids: Vec<u32>, ids: &[Vec<u32>], logprobs: &[Vec<f64>]) -> Self {
        let mut out = Self::with_capacity(token_ids.len(), 0);
        out.token_ids = token_ids;
        for (i, l) in ids.iter().zip(logprobs) {
            out.push_top(i.iter().copied(), l.iter().copied());
        }
        out
    }

    fn push_top(&mut self, ids: impl IntoIterator<Item = u32>, logprobs: impl IntoIterator<Item = f64>) {
        self.top_ids.extend(ids);
        self.top_logprobs.extend(logprobs);
        self.starts.push(self.top_ids.len());
    }

    /// Position `i`'s top ids and their log-probs, most likely first.
    #[must_use]
    pub fn top(&self, i: usize) -> (&[u32], &[f64]) {
        let run = self.starts[i]..self.starts[i + 1];
        (&self.top_ids[run.clone()], &self.top_logprobs[run])
    }

    /// The fewest alternatives any position has.
    fn k(&self) -> usize {
        self.starts.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0)
    }
}

/// Maps a sample's `logprobs.content` to ids; an unknown token is an error naming it and its
/// position: teacher and student must share a tokenizer.
pub fn soft_targets(tokenizer: &tokenizers::Tokenizer, content: &Value) -> Result<SoftTargets, KdError> {
    let positions = content.as_array().ok_or(KdError::NotAList)?;
    let mut out = SoftTargets::with_capacity(positions.len(), 0);
    let unknown = |i: usize, t: &Value| KdError::UnknownToken {
        position: i,
        token: t.get("token").map_or_else(|| "?".to_owned(), ToString::to_string),
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
        out.push_top(ids, lps);
    }
    Ok(out)
}

/// The soft targets of a packed scoring (`retort score-logprobs`): the teacher's own token ids,
/// which must be the student's: an id past the student's vocabulary is an error naming its position.
pub fn soft_targets_packed(bytes: &[u8], student_vocabulary: usize) -> Result<SoftTargets, KdError> {
    let (positions, k) = crate::domain::soft::shape(bytes).map_err(KdError::Packed)?;
    let mut out = SoftTargets::with_capacity(positions, k);
    let mut foreign = None;
    crate::domain::soft::for_each(bytes, |token, _, ids, lps| {
        let position = out.token_ids.len();
        if foreign.is_none()
            && let Some(id) = std::iter::once(&token).chain(ids).find(|id| **id as usize >= student_vocabulary)
        {
            foreign = Some(KdError::ForeignId { position, id: *id, size: student_vocabulary });
        }
        out.token_ids.push(token);
        out.push_top(ids.iter().copied(), lps.iter().map(|lp| f64::from(*lp)));
    })
    .map_err(KdError::Packed)?;
    foreign.map_or(Ok(out), Err)
}

/// Every token of a tokenizer as bytes, in id order: a byte-level vocabulary's spelling
/// (`"ĠHow"`) undone, a SentencePiece byte (`<0x0A>`) read, `▁` as a space; special tokens as
/// they are written.
#[must_use]
pub fn vocabulary_bytes(tokenizer: &tokenizers::Tokenizer) -> Vec<Vec<u8>> {
    let byte_level = tokenizer.get_decoder().is_some_and(is_byte_level);
    (0..tokenizer.get_vocab_size(true) as u32).map(|id| token_bytes(tokenizer, id, byte_level)).collect()
}

fn token_bytes(tokenizer: &tokenizers::Tokenizer, id: u32, byte_level: bool) -> Vec<u8> {
    let Some(token) = tokenizer.id_to_token(id) else { return Vec::new() };
    if let Some(hex) = token.strip_prefix("<0x").and_then(|t| t.strip_suffix('>'))
        && hex.len() == 2
        && let Ok(b) = u8::from_str_radix(hex, 16)
    {
        return vec![b];
    }
    match byte_level.then(|| token.chars().map(char_byte).collect::<Option<Vec<u8>>>()).flatten() {
        Some(bytes) => bytes,
        _ => token.replace('\u{2581}', " ").into_bytes(),
    }
}

/// Whether a tokenizer's decoder undoes the GPT-2 byte table.
fn is_byte_level(decoder: &tokenizers::DecoderWrapper) -> bool {
    match decoder {
        tokenizers::DecoderWrapper::ByteLevel(_) => true,
        tokenizers::DecoderWrapper::Sequence(seq) => seq.get_decoders().iter().any(is_byte_level),
        _ => false,
    }
}

/// The byte a character of the GPT-2 table stands for.
fn char_byte(c: char) -> Option<u8> {
    static TABLE: std::sync::LazyLock<std::collections::HashMap<char, u8>> =
        std::sync::LazyLock::new(|| (0..=255u8).map(|b| (byte_char(b), b)).collect());
    TABLE.get(&c).copied()
}

/// A filler's log-prob for the tokens beside the true one: e^-30 ≈ 1e-13, so the row is the true
/// token with probability ≈ 1, yet finite: a trainer that renormalises and takes the log (axolotl
/// does) gets no −∞ and no NaN.
const FILLER_LOGPROB: f64 = -30.0;

/// A kd line's rows, placed for the student: row `i` is the distribution over the student's token
/// at position `first + i + 1` of its rendering, the last row sitting at the last position, as
/// axolotl's KD loader right-aligns them and compares row `t` with the student's prediction at `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The token each row predicts (the last row's is the last token: it predicts nothing).
    pub token_ids: Vec<u32>,
    pub target_token_ids: Vec<Vec<u32>>,
    pub logprobs: Vec<Vec<f64>>,
    /// Top-k kept per row.
    pub k: usize,
    /// Rows the teacher gave; the others (end-of-turn tokens the template adds, the last row)
    /// hold the true next token with probability ≈ 1.
    pub teacher_rows: usize,
}

/// A row holding `token` with probability ≈ 1 among `k` ids.
fn filler(token: u32, k: usize) -> (Vec<u32>, Vec<f64>) {
    let mut ids = vec![token];
    let mut lps = vec![0.0];
    ids.extend((0u32..).filter(|i| *i != token).take(k - 1));
    lps.resize(k, FILLER_LOGPROB);
    (ids, lps)
}

/// The answer's tokens in a rendering: the last run of trained tokens.
#[must_use]
pub fn answer_tokens(trained: &[bool]) -> Option<std::ops::Range<usize>> {
    let end = trained.iter().rposition(|m| *m)? + 1;
    let start = trained[..end].iter().rposition(|m| !*m).map_or(0, |i| i + 1);
    Some(start..end)
}

/// Places a sample's teacher top-k on the student's rendering of it: `ids` are the rendering's
/// tokens and `trained` says which carry the loss. The teacher's sampled tokens must appear, in
/// order, in the answer (the last run of trained tokens): they do when teacher and student share
/// a tokenizer and the text is the teacher's. The rows start where the first trained token is
/// predicted, so that every trained position has a row (earlier assistant turns get the true next
/// token), whatever a trainer's own labels train of the assistant's turns.
pub fn place(ids: &[u32], trained: &[bool], teacher: &SoftTargets) -> Result<Placed, KdError> {
    let answer = answer_tokens(trained).ok_or(KdError::NothingTrained)?;
    let first_trained = trained.iter().position(|m| *m).unwrap_or(answer.start).max(1);
    let n = teacher.token_ids.len();
    if n == 0 {
        return Err(KdError::NoPositions);
    }
    let k = teacher.k();
    if k == 0 {
        return Err(KdError::NoAlternatives);
    }
    let start = (answer.start.max(1)..answer.end.saturating_sub(n - 1))
        .find(|p| ids[*p..*p + n] == teacher.token_ids[..])
        .ok_or(KdError::NotInAnswer)?;
    let first = first_trained - 1;
    let last = ids.len() - 1;
    let mut out = Placed { token_ids: Vec::new(), target_token_ids: Vec::new(), logprobs: Vec::new(), k, teacher_rows: n };
    for t in first..=last {
        let next = ids.get(t + 1).copied().unwrap_or(ids[last]);
        let (row_ids, row_lps) = match (t + 1).checked_sub(start).filter(|j| *j < n) {
            Some(j) => {
                let (ids, lps) = teacher.top(j);
                (ids[..k].to_vec(), lps[..k].to_vec())
            }
            None => filler(next, k),
        };
        out.token_ids.push(next);
        out.target_token_ids.push(row_ids);
        out.logprobs.push(row_lps);
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

    #[test]
    fn each_row_predicts_the_next_token_and_the_last_row_sits_at_the_last_position() {
        // prompt 10 11 | answer 20 21 22 | end of turn 99 7
        let ids = [10, 11, 20, 21, 22, 99, 7];
        let trained = [false, false, true, true, true, true, false];
        let top = [vec![20, 5], vec![21, 6], vec![22, 8, 9]];
        let lps = [vec![-0.1, -2.0], vec![-0.2, -3.0], vec![-0.3, -4.0, -5.0]];
        let teacher = SoftTargets::from_rows(vec![20, 21, 22], &top, &lps);
        let p = place(&ids, &trained, &teacher).unwrap();
        assert_eq!(p.k, 2);
        // Rows from position 1 (predicting 20) to position 6, right-aligned.
        assert_eq!(p.target_token_ids.len(), 6);
        assert_eq!(p.token_ids, [20, 21, 22, 99, 7, 7]);
        assert_eq!(p.target_token_ids[0], [20, 5]);
        assert_eq!(p.logprobs[2], [-0.3, -4.0]);
        // Where the teacher said nothing: the true next token, every value finite.
        assert_eq!(p.target_token_ids[3], [99, 0]);
        assert_eq!(p.logprobs[3], [0.0, FILLER_LOGPROB]);
        let wrong = SoftTargets::from_rows(vec![21, 20], &[vec![1], vec![2]], &[vec![0.0], vec![0.0]]);
        assert_eq!(place(&ids, &trained, &wrong), Err(KdError::NotInAnswer));
        assert!(KdError::NotInAnswer.to_string().contains("teacher and student tokenizers differ, or"));
        // An earlier assistant turn (token 11) gets a row too: the true next token.
        let multi = [false, true, false, true, true, true, false];
        let p = place(&ids, &multi, &SoftTargets::from_rows(vec![21, 22], &top[1..], &lps[1..])).unwrap();
        assert_eq!(p.token_ids, [11, 20, 21, 22, 99, 7, 7]);
        assert_eq!(p.target_token_ids[0], [11, 0]);
        assert_eq!(p.target_token_ids[2], [21, 6]);
    }
}
