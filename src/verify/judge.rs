//! `judge`: an LLM grades each sample through an OpenAI-compatible endpoint. The rubric is a
//! minijinja template over `prompt`, `reference`, `reasoning`, `answer` and `scale`; the judge's
//! reply is read for a score (`{"score": 8}`, `Score: 8`, `8/10`, else its last number in range).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Outcome, Sample, Verifier, VerifyError};
use crate::teacher::client::{ChatClient, first_content};

/// The rubric used when none is given.
pub const DEFAULT_RUBRIC: &str = include_str!("../../assets/judge_rubric.jinja");

pub struct Judge {
    pub name: String,
    pub model: String,
    pub rubric: String,
    /// The top of the judge's scale; scores are divided by it.
    pub scale: f64,
    /// The score (in [0, 1]) from which a sample passes.
    pub pass_at: f64,
    pub client: Arc<ChatClient>,
    /// The runtime the requests run on (checks run on worker threads).
    pub runtime: tokio::runtime::Handle,
}

impl Judge {
    /// Checks the rubric renders before any request is sent.
    pub fn check_rubric(rubric: &str) -> Result<(), VerifyError> {
        let env = minijinja::Environment::new();
        env.render_str(rubric, minijinja::context! { prompt => "p", reference => "r", reasoning => "t", answer => "a", scale => 10 })
            .map(|_| ())
            .map_err(|cause| VerifyError::Rubric { cause })
    }

    fn render(&self, s: &Sample) -> Result<String, minijinja::Error> {
        let env = minijinja::Environment::new();
        env.render_str(
            &self.rubric,
            minijinja::context! {
                prompt => &s.text.prompt, reference => &s.text.reference, reasoning => &s.text.reasoning, answer => &s.text.answer, scale => self.scale
            },
        )
    }
}

/// Reads a score out of a judge's reply, in [0, scale].
#[must_use]
pub fn parse_score(reply: &str, scale: f64) -> Option<f64> {
    static PATTERNS: std::sync::LazyLock<Vec<regex::Regex>> = std::sync::LazyLock::new(|| {
        [r"(?i)score\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)", r"(-?\d+(?:\.\d+)?)\s*/\s*\d+", r"(-?\d+(?:\.\d+)?)"]
            .iter()
            .filter_map(|p| regex::Regex::new(p).ok())
            .collect()
    });
    let in_range = |v: f64| (0.0..=scale).contains(&v).then_some(v);
    // A JSON object anywhere in the reply.
    if let (Some(start), Some(end)) = (reply.find('{'), reply.rfind('}'))
        && start < end
        && let Ok(v) = serde_json::from_str::<Value>(&reply[start..=end])
        && let Some(score) = v.get("score").and_then(|s| s.as_f64().or_else(|| s.as_str().and_then(|t| t.trim().parse().ok())))
    {
        return in_range(score);
    }
    for re in PATTERNS.iter() {
        if let Some(v) = re.captures_iter(reply).filter_map(|c| c.get(1)?.as_str().parse::<f64>().ok()).filter_map(in_range).last() {
            return Some(v);
        }
    }
    None
}

impl Verifier for Judge {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "judge"
    }
    fn config(&self) -> Value {
        json!({"model": self.model, "scale": self.scale, "pass_at": self.pass_at, "rubric": self.rubric})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let content = match self.render(s) {
            Ok(c) => c,
            // A failure of this sample alone, recorded as its outcome.
            Err(e) => return Outcome::Failed { error: format!("the rubric does not render: {e}") },
        };
        let request = json!({
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": 512,
        });
        let response = match self.runtime.block_on(self.client.chat(&request)) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed { error: e.to_string() },
        };
        let Some(reply) = first_content(&response) else {
            return Outcome::Failed { error: "the judge's response has no message content".into() };
        };
        match parse_score(reply, self.scale) {
            Some(raw) => {
                let score = raw / self.scale;
                Outcome::scored(score, score >= self.pass_at, json!({"raw": raw, "reply": reply.chars().take(500).collect::<String>()}))
            }
            None => Outcome::Failed {
                error: format!("no score in 0..{} in the judge's reply: {}", self.scale, reply.chars().take(200).collect::<String>()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_from_replies() {
        assert_eq!(parse_score("{\"score\": 8, \"reason\": \"fine\"}", 10.0), Some(8.0));
        assert_eq!(parse_score("Reasoning... Score: **7**", 10.0), Some(7.0));
        assert_eq!(parse_score("I'd give it 9/10.", 10.0), Some(9.0));
        assert_eq!(parse_score("{\"score\": \"6\"}", 10.0), Some(6.0));
        assert_eq!(parse_score("{\"score\": 42}", 10.0), None);
        assert_eq!(parse_score("no idea", 10.0), None);
        assert!(Judge::check_rubric(DEFAULT_RUBRIC).is_ok());
        assert!(Judge::check_rubric("{% if %}").is_err());
    }
}
