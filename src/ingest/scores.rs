//! Score files: verdicts for samples already in the store, from a checker that ran elsewhere.
//!
//! One JSON object a line, naming the sample by `sample_id` (retort's id, as `list --json` prints
//! it) or `sample_hash` (the hex content hash), and either one verdict
//! (`"verifier", "score", "pass"?, "details"?`) or several (`"scores": {"name": 0.5 | {"score",
//! "pass", "details"}}`). `pass` defaults to `score >= 0.5`.

use serde_json::{Map, Value};

use super::RecordError;
use super::json::opt_str;

/// How a score file names a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleRef {
    Id(i64),
    Hash(Vec<u8>),
}

impl std::fmt::Display for SampleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SampleRef::Id(id) => write!(f, "sample_id {id}"),
            SampleRef::Hash(h) => write!(f, "sample_hash {}", hex::encode(h)),
        }
    }
}

/// One verdict for one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub sample: SampleRef,
    pub verifier: String,
    pub score: f64,
    pub pass: bool,
    pub details: Option<Value>,
}

/// A verifier name that rules could not name as `score.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verifier name {name:?} must start with a letter and hold only letters, digits, `_` and `-`")]
pub struct BadVerifierName {
    pub name: String,
}

/// A verifier name usable in rules as `score.<name>`.
pub fn check_verifier_name(name: &str) -> Result<(), BadVerifierName> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok { Ok(()) } else { Err(BadVerifierName { name: name.to_owned() }) }
}

fn sample_ref(obj: &Map<String, Value>) -> Result<SampleRef, RecordError> {
    if let Some(v) = obj.get("sample_id").filter(|v| !v.is_null()) {
        return v.as_i64().map(SampleRef::Id).ok_or_else(|| RecordError::value_type("sample_id", "an integer", v));
    }
    let hash = opt_str(obj, "sample_hash")?.ok_or(RecordError::Missing { what: "`sample_id` or `sample_hash`" })?;
    let bytes = hex::decode(hash).map_err(|cause| RecordError::HashNotHex { cause })?;
    if bytes.len() != 32 {
        return Err(RecordError::HashLength { digits: hash.len() });
    }
    Ok(SampleRef::Hash(bytes))
}

fn verdict(sample: &SampleRef, verifier: &str, v: &Value, path: &str) -> Result<ScoreRow, RecordError> {
    check_verifier_name(verifier)?;
    let (score, pass, details) = match v {
        Value::Number(n) => (n.as_f64(), None, None),
        Value::Bool(b) => (Some(if *b { 1.0 } else { 0.0 }), Some(*b), None),
        Value::Object(o) => {
            let score = match o.get("score") {
                Some(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
                Some(s) => Some(s.as_f64().ok_or_else(|| RecordError::value_type(format!("{path}.score"), "a number", s))?),
                None => None,
            };
            let pass = match o.get("pass") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => return Err(RecordError::value_type(format!("{path}.pass"), "true or false", other)),
            };
            (score.or(pass.map(|p| if p { 1.0 } else { 0.0 })), pass, o.get("details").filter(|d| !d.is_null()).cloned())
        }
        other => return Err(RecordError::value_type(path, "a number, a boolean or an object", other)),
    };
    let score = score.ok_or_else(|| RecordError::lacks(path, "`score`"))?;
    if !(0.0..=1.0).contains(&score) {
        return Err(RecordError::ScoreRange { path: path.to_owned(), score });
    }
    Ok(ScoreRow { sample: sample.clone(), verifier: verifier.to_owned(), score, pass: pass.unwrap_or(score >= 0.5), details })
}

/// Parses one score line into its verdicts.
pub fn parse(obj: &Map<String, Value>) -> Result<Vec<ScoreRow>, RecordError> {
    let sample = sample_ref(obj)?;
    if let Some(scores) = obj.get("scores") {
        let Value::Object(scores) = scores else {
            return Err(RecordError::value_type("scores", "an object of verifier → score", scores));
        };
        return scores.iter().map(|(name, v)| verdict(&sample, name, v, &format!("scores.{name}"))).collect();
    }
    let verifier = opt_str(obj, "verifier")?.ok_or(RecordError::Missing { what: "`verifier` (or a `scores` object)" })?;
    let mut fields = obj.clone();
    fields.remove("sample_id");
    fields.remove("sample_hash");
    fields.remove("verifier");
    Ok(vec![verdict(&sample, verifier, &Value::Object(fields), "line")?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_and_many() {
        let one = parse(json!({"sample_id": 3, "verifier": "judge", "score": 0.8, "details": {"why": "ok"}}).as_object().unwrap()).unwrap();
        assert_eq!(
            one,
            vec![ScoreRow {
                sample: SampleRef::Id(3),
                verifier: "judge".into(),
                score: 0.8,
                pass: true,
                details: Some(json!({"why": "ok"}))
            }]
        );
        let many = parse(json!({"sample_id": 3, "scores": {"a": 0.2, "b": {"pass": true}}}).as_object().unwrap()).unwrap();
        assert_eq!(many.len(), 2);
        assert!(!many[0].pass);
        assert!((many[1].score - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn bad_scores_are_explained() {
        let err = |line: Value| parse(line.as_object().unwrap()).unwrap_err().to_string();
        assert_eq!(err(json!({"sample_id": 3, "verifier": "m", "score": 7})), "`line` score 7 is outside [0, 1]");
        assert_eq!(
            err(json!({"sample_id": 3, "verifier": "score.x", "score": 1})),
            "verifier name \"score.x\" must start with a letter and hold only letters, digits, `_` and `-`"
        );
        assert!(err(json!({"sample_hash": "zz", "verifier": "m", "score": 1})).starts_with("`sample_hash` is not hex: "));
        assert_eq!(err(json!({"verifier": "m", "score": 1})), "missing `sample_id` or `sample_hash`");
        assert_eq!(
            err(json!({"sample_id": 3, "scores": {"m": "high"}})),
            "`scores.m` must be a number, a boolean or an object, found a string"
        );
    }
}
