//! Near-duplicate detection: MinHash signatures over word shingles, banded LSH for candidates,
//! and the signature agreement as the estimate of Jaccard similarity.
//!
//! Samples are taken in order (lowest id first); one is a near-duplicate when an earlier sample
//! that was kept estimates at least the threshold similar. Only kept samples are indexed, so a
//! chain of small edits is cut at its first member, not at every link.

use std::collections::HashMap;

/// Hash functions in a signature. 64 keeps the estimate's standard error near 0.05 at J = 0.8.
pub const PERMUTATIONS: usize = 64;
/// Words per shingle.
pub const SHINGLE: usize = 5;

/// A MinHash signature.
pub type Signature = [u32; PERMUTATIONS];

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The permutations: `(a·h + b) mod 2³²` with odd `a`, from a fixed seed so results are
/// reproducible. 32-bit lanes let the compiler run several permutations per instruction.
fn permutations() -> ([u32; PERMUTATIONS], [u32; PERMUTATIONS]) {
    let mut state = 0x5EED_u64;
    let (mut a, mut b) = ([0u32; PERMUTATIONS], [0u32; PERMUTATIONS]);
    for i in 0..PERMUTATIONS {
        a[i] = (splitmix(&mut state) as u32) | 1;
        b[i] = splitmix(&mut state) as u32;
    }
    (a, b)
}

/// FNV-1a over a word, lowercased.
fn hash_word(word: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in word.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x100_0000_01B3);
    }
    h
}

/// A shingle's hash from its words' hashes (position matters), mixed down to 32 bits.
fn hash_shingle(words: &[u64]) -> u32 {
    let mut h: u64 = 0;
    for (i, w) in words.iter().enumerate() {
        h ^= w.rotate_left(i as u32 * 13);
    }
    let mut s = h;
    let mixed = splitmix(&mut s);
    (mixed ^ (mixed >> 32)) as u32
}

/// Computes signatures; reuse one for many texts.
pub struct MinHasher {
    a: [u32; PERMUTATIONS],
    b: [u32; PERMUTATIONS],
}

impl Default for MinHasher {
    fn default() -> Self {
        let (a, b) = permutations();
        Self { a, b }
    }
}

impl MinHasher {
    /// The signature of a text's word shingles (a text shorter than a shingle is one shingle).
    #[must_use]
    pub fn signature(&self, text: &str) -> Signature {
        let words: Vec<u64> = text.split_whitespace().map(hash_word).collect();
        let mut sig = [u32::MAX; PERMUTATIONS];
        let mut add = |h: u32| {
            for ((slot, a), b) in sig.iter_mut().zip(&self.a).zip(&self.b) {
                *slot = (*slot).min(a.wrapping_mul(h).wrapping_add(*b));
            }
        };
        if words.len() < SHINGLE {
            add(hash_shingle(&words));
        } else {
            for w in words.windows(SHINGLE) {
                add(hash_shingle(w));
            }
        }
        sig
    }
}

/// The estimated Jaccard similarity of two signatures.
#[must_use]
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / PERMUTATIONS as f64
}

/// Bands × rows for a threshold: the LSH curve's midpoint (1/b)^(1/r) sits below the threshold,
/// so candidates are found with high recall and the estimate then decides.
fn banding(threshold: f64) -> (usize, usize) {
    if threshold >= 0.75 {
        (8, 8)
    } else if threshold >= 0.5 {
        (16, 4)
    } else {
        (32, 2)
    }
}

/// A near-duplicate found: `id` resembles the earlier kept `of` with estimated `similarity`.
#[derive(Debug, Clone, PartialEq)]
pub struct NearDuplicate {
    pub id: i64,
    pub of: i64,
    pub similarity: f64,
}

/// Finds near-duplicates among `(id, signature)` taken in the given order.
pub struct NearDuplicateIndex {
    threshold: f64,
    bands: usize,
    rows: usize,
    buckets: HashMap<(usize, u64), Vec<usize>>,
    kept: Vec<(i64, Signature)>,
}

impl NearDuplicateIndex {
    #[must_use]
    pub fn new(threshold: f64) -> Self {
        let (bands, rows) = banding(threshold);
        Self { threshold, bands, rows, buckets: HashMap::new(), kept: Vec::new() }
    }

    fn band_key(&self, sig: &Signature, band: usize) -> u64 {
        let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ band as u64;
        for v in &sig[band * self.rows..(band + 1) * self.rows] {
            h = (h ^ u64::from(*v)).wrapping_mul(0x100_0000_01B3);
        }
        h
    }

    /// Offers the next sample: `Some` when it near-duplicates an earlier kept one, else it is kept.
    pub fn offer(&mut self, id: i64, sig: Signature) -> Option<NearDuplicate> {
        let mut best: Option<(usize, f64)> = None;
        for band in 0..self.bands {
            if let Some(members) = self.buckets.get(&(band, self.band_key(&sig, band))) {
                for &m in members {
                    let s = similarity(&sig, &self.kept[m].1);
                    if s >= self.threshold && best.is_none_or(|(_, b)| s > b) {
                        best = Some((m, s));
                    }
                }
            }
        }
        if let Some((m, s)) = best {
            return Some(NearDuplicate { id, of: self.kept[m].0, similarity: s });
        }
        let index = self.kept.len();
        for band in 0..self.bands {
            let key = self.band_key(&sig, band);
            self.buckets.entry((band, key)).or_default().push(index);
        }
        self.kept.push((id, sig));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, seed: u64) -> Vec<String> {
        let mut s = seed;
        (0..n).map(|_| format!("w{}", splitmix(&mut s) % 5000)).collect()
    }

    #[test]
    fn estimate_tracks_true_jaccard() {
        let hasher = MinHasher::default();
        let base = words(400, 1);
        let mut edited = base.clone();
        for i in (0..400).step_by(40) {
            edited[i] = "CHANGED".into();
        }
        let original = hasher.signature(&base.join(" "));
        let changed = hasher.signature(&edited.join(" "));
        // 10 words changed: up to 50 of 396 shingles differ each side; Jaccard ≈ 346/446 ≈ 0.78.
        let estimate = similarity(&original, &changed);
        assert!((0.6..0.95).contains(&estimate), "{estimate}");
        assert!((similarity(&original, &original) - 1.0).abs() < f64::EPSILON);
        let unrelated = hasher.signature(&words(400, 2).join(" "));
        assert!(similarity(&original, &unrelated) < 0.1);
    }

    #[test]
    fn index_keeps_the_first_and_flags_copies() {
        let h = MinHasher::default();
        let base = words(300, 7).join(" ");
        let almost = format!("{base} and one more line at the end");
        let other = words(300, 8).join(" ");
        let mut idx = NearDuplicateIndex::new(0.85);
        assert_eq!(idx.offer(1, h.signature(&base)), None);
        assert_eq!(idx.offer(2, h.signature(&other)), None);
        let dup = idx.offer(3, h.signature(&almost)).unwrap();
        assert_eq!((dup.id, dup.of), (3, 1));
        assert!(dup.similarity >= 0.85);
        // Case and spacing do not matter; short texts are one shingle.
        assert!(idx.offer(4, h.signature(&base.to_uppercase().replace(' ', "  "))).is_some());
        assert_eq!(idx.offer(5, h.signature("yes")), None);
        assert!(idx.offer(6, h.signature("YES")).is_some());
    }
}
