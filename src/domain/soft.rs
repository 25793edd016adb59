//! Soft targets as a teacher scored them: per position of a completion, the token the trace has
//! with its log-prob, and the teacher's top-K alternatives, as token ids of one vocabulary.
//!
//! Stored packed (migration 0007): a header, then a bit stream holding per position the token
//! (`id_bits`), its log-prob (16 bits), and K pairs of id and log-prob. Log-probs are quantised
//! to 1/1024 nat (an error of at most 0.0005 nat, a probability off by 0.05 % of itself) and
//! clamped at −64 nat (e^−64 ≈ 1.6e−28): at K = 20 and a 152k vocabulary (18-bit ids) a token
//! takes 21 × 34 bits ≈ 89 bytes.

/// A position of a scored completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The token the trace has here.
    pub token: u32,
    pub logprob: f32,
    /// The teacher's top-K, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// A scored completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub k: usize,
    pub positions: Vec<Position>,
}

/// Why stored bytes are not a packed scoring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("packed log-probs of version {0}, which this retort does not read (a newer retort wrote them)")]
    Version(u8),
    #[error("packed log-probs cut short: {0} bytes")]
    Short(usize),
    #[error("packed log-probs with {0}-bit token ids")]
    IdBits(u8),
}

const VERSION: u8 = 1;
const HEADER: usize = 8;
/// Quantisation steps per nat.
const SCALE: f32 = 1024.0;
const LP_BITS: u32 = 16;
/// The lowest log-prob stored; lower ones (vLLM writes −9999 for −∞) are stored as this.
pub const FLOOR: f32 = -(u16::MAX as f32) / SCALE;

fn quantise(lp: f32) -> u64 {
    if lp.is_nan() {
        return u64::from(u16::MAX);
    }
    (-lp.min(0.0) * SCALE).round().min(f32::from(u16::MAX)) as u64
}

fn dequantise(q: u64) -> f32 {
    -(q as f32) / SCALE
}

/// Bits an id takes when the largest is `max`.
fn id_bits(max: u32) -> u32 {
    (32 - max.leading_zeros()).max(1)
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, width: u32) {
        self.acc |= value << self.bits;
        self.bits += width;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Packs a scoring; every position must hold `k` alternatives (fewer are padded with the
/// position's own token at the floor).
#[must_use]
pub fn pack(scored: &Scored) -> Vec<u8> {
    let k = scored.k;
    let max = scored.positions.iter().flat_map(|p| std::iter::once(p.token).chain(p.top.iter().map(|t| t.0))).max().unwrap_or(0);
    let bits = id_bits(max);
    let per_position = (bits + LP_BITS) as usize * (k + 1);
    let mut w = BitWriter { out: Vec::with_capacity(HEADER + (per_position * scored.positions.len()).div_ceil(8)), acc: 0, bits: 0 };
    w.out.push(VERSION);
    w.out.push(bits as u8);
    w.out.extend_from_slice(&(k as u16).to_le_bytes());
    w.out.extend_from_slice(&(scored.positions.len() as u32).to_le_bytes());
    for p in &scored.positions {
        w.put(u64::from(p.token), bits);
        w.put(quantise(p.logprob), LP_BITS);
        for i in 0..k {
            let (id, lp) = p.top.get(i).copied().unwrap_or((p.token, FLOOR));
            w.put(u64::from(id), bits);
            w.put(quantise(lp), LP_BITS);
        }
    }
    w.finish()
}

/// The header of packed bytes: (id bits, k, positions).
fn header(bytes: &[u8]) -> Result<(u32, usize, usize), PackError> {
    if bytes.len() < HEADER {
        return Err(PackError::Short(bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(PackError::Version(bytes[0]));
    }
    let bits = u32::from(bytes[1]);
    if !(1..=32).contains(&bits) {
        return Err(PackError::IdBits(bytes[1]));
    }
    let k = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
    let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let need = HEADER + ((bits + LP_BITS) as usize * (k + 1) * n).div_ceil(8);
    if bytes.len() < need {
        return Err(PackError::Short(bytes.len()));
    }
    Ok((bits, k, n))
}

/// Reads fixed-width fields from a bit stream.
struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
    acc: u64,
    bits: u32,
}

impl BitReader<'_> {
    #[inline]
    fn take(&mut self, width: u32) -> u64 {
        while self.bits < width {
            let byte = self.bytes.get(self.at).copied().unwrap_or(0);
            self.at += 1;
            self.acc |= u64::from(byte) << self.bits;
            self.bits += 8;
        }
        let v = self.acc & ((1u64 << width) - 1);
        self.acc >>= width;
        self.bits -= width;
        v
    }
}

/// A packing's positions and alternatives per position, from its header.
pub fn shape(bytes: &[u8]) -> Result<(usize, usize), PackError> {
    header(bytes).map(|(_, k, n)| (n, k))
}

/// Calls `each(token, logprob, top_ids, top_logprobs)` for every position, reusing two buffers:
/// the fast path of an export reading millions of tokens.
pub fn for_each(bytes: &[u8], mut each: impl FnMut(u32, f32, &[u32], &[f32])) -> Result<usize, PackError> {
    let (bits, k, n) = header(bytes)?;
    let mut r = BitReader { bytes: &bytes[HEADER..], at: 0, acc: 0, bits: 0 };
    let (mut ids, mut lps) = (vec![0u32; k], vec![0f32; k]);
    for _ in 0..n {
        let token = r.take(bits) as u32;
        let lp = dequantise(r.take(LP_BITS));
        for i in 0..k {
            ids[i] = r.take(bits) as u32;
            lps[i] = dequantise(r.take(LP_BITS));
        }
        each(token, lp, &ids, &lps);
    }
    Ok(k)
}

/// Unpacks a scoring.
pub fn unpack(bytes: &[u8]) -> Result<Scored, PackError> {
    let mut positions = Vec::new();
    let k = for_each(bytes, |token, logprob, ids, lps| {
        positions.push(Position { token, logprob, top: ids.iter().copied().zip(lps.iter().copied()).collect() });
    })?;
    Ok(Scored { k, positions })
}

/// How sure the teacher is of a completion's own tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    pub mean_logprob: f64,
    pub min_logprob: f64,
}

impl Confidence {
    /// Of the log-probs of a completion's tokens; `None` for none.
    pub fn of(logprobs: impl IntoIterator<Item = f64>) -> Option<Self> {
        let (mut sum, mut n, mut min) = (0.0, 0usize, f64::INFINITY);
        for lp in logprobs.into_iter().filter(|lp| lp.is_finite()) {
            sum += lp;
            n += 1;
            min = min.min(lp);
        }
        (n > 0).then(|| Self { mean_logprob: sum / n as f64, min_logprob: min })
    }

    /// exp(−mean log-prob): the number of equally likely tokens the teacher hesitated among, on average.
    #[must_use]
    pub fn perplexity(&self) -> f64 {
        (-self.mean_logprob).exp()
    }
}

/// A vocabulary's tokens as bytes, packed for the store: per token a LEB128 length, then the bytes.
#[must_use]
pub fn pack_vocabulary(tokens: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tokens.iter().map(|t| t.len() + 1).sum());
    for t in tokens {
        let mut n = t.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(t);
    }
    out
}

/// A packed vocabulary's tokens in id order, without copying them; an item is `None` where the
/// bytes stop being one (and nothing follows it).
pub fn vocabulary_tokens(bytes: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut at = 0usize;
    let mut broken = false;
    std::iter::from_fn(move || {
        if broken || at >= bytes.len() {
            return None;
        }
        let token = (|| {
            let (mut n, mut shift) = (0usize, 0);
            loop {
                let b = *bytes.get(at)?;
                at += 1;
                n |= usize::from(b & 0x7f).checked_shl(shift)?;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let token = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(token)
        })();
        broken = token.is_none();
        Some(token)
    })
}

/// The tokens of a packed vocabulary; `None` when the bytes are not one.
#[must_use]
pub fn unpack_vocabulary(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    vocabulary_tokens(bytes).map(|t| t.map(<[u8]>::to_vec)).collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // values that are exact in binary: stored and read back unchanged
mod tests {
    use super::*;

    fn sample(k: usize, n: usize, vocab: u32) -> Scored {
        Scored {
            k,
            positions: (0..n)
                .map(|i| Position {
                    token: (i as u32 * 7919) % vocab,
                    logprob: -(i as f32) * 0.37,
                    top: (0..k).map(|j| ((i as u32 * 31 + j as u32 * 104_729) % vocab, -(j as f32) * 1.5 - 0.01)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips_within_the_quantisation_step() {
        for (k, vocab) in [(1, 2), (20, 151_936), (64, 128_256), (5, u32::MAX)] {
            let s = sample(k, 50, vocab);
            let back = unpack(&pack(&s)).unwrap();
            assert_eq!(back.k, k);
            assert_eq!(back.positions.len(), 50);
            for (a, b) in s.positions.iter().zip(&back.positions) {
                assert_eq!(a.token, b.token);
                assert!((a.logprob.max(FLOOR) - b.logprob).abs() <= 0.5 / SCALE + 1e-6, "{} {}", a.logprob, b.logprob);
                for (x, y) in a.top.iter().zip(&b.top) {
                    assert_eq!(x.0, y.0);
                    assert!((x.1.max(FLOOR) - y.1).abs() <= 0.5 / SCALE + 1e-6);
                }
            }
        }
    }

    #[test]
    fn size_per_token_is_the_bit_count() {
        let bytes = pack(&sample(20, 1000, 151_936));
        // 18-bit ids and 16-bit log-probs, 21 of each a token.
        assert_eq!(bytes.len(), HEADER + (34 * 21 * 1000usize).div_ceil(8));
    }

    #[test]
    fn clamps_what_it_cannot_hold() {
        let s = Scored { k: 2, positions: vec![Position { token: 3, logprob: -9999.0, top: vec![(3, f32::NAN), (1, 0.5)] }] };
        let back = unpack(&pack(&s)).unwrap();
        assert_eq!(back.positions[0].logprob, FLOOR);
        assert_eq!(back.positions[0].top, vec![(3, FLOOR), (1, 0.0)]);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let good = pack(&sample(3, 10, 1000));
        for cut in 0..good.len() {
            assert!(unpack(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut newer = good.clone();
        newer[0] = 9;
        assert_eq!(unpack(&newer), Err(PackError::Version(9)));
        let mut wide = good;
        wide[1] = 40;
        assert_eq!(unpack(&wide), Err(PackError::IdBits(40)));
    }

    #[test]
    fn confidence_and_perplexity() {
        let c = Confidence::of([-0.5, -1.5, f64::NEG_INFINITY]).unwrap();
        assert_eq!(c.mean_logprob, -1.0);
        assert_eq!(c.min_logprob, -1.5);
        assert!((c.perplexity() - std::f64::consts::E).abs() < 1e-12);
        assert_eq!(Confidence::of([]), None);
    }

    #[test]
    fn vocabulary_round_trips() {
        let tokens: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], vec![0xE4, 0xB8], vec![b'x'; 300]];
        assert_eq!(unpack_vocabulary(&pack_vocabulary(&tokens)).unwrap(), tokens);
        assert_eq!(unpack_vocabulary(&[0x85]), None);
        assert_eq!(unpack_vocabulary(&[3, b'a']), None);
    }
}
