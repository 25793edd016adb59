//! Verifiers: programs that score a sample in [0, 1] with a pass/fail verdict (DESIGN.md §Verify).
//!
//! Built-in ones run in-process on worker threads; `cmd` runs an external checker per sample; a
//! verifier that cannot run records the failure as such, never as a score of 0.

pub mod answer;
pub mod builtin;
pub mod cmd;
pub mod judge;
pub mod math;

use serde_json::Value;

use crate::domain::UnknownName;
use crate::ingest::scores::BadVerifierName;
use crate::teacher::client::ClientError;

pub use crate::store::samples::Sample;

/// A pending reasoning sample holding `text`, for the verifiers' tests.
#[cfg(test)]
pub(crate) fn test_sample(text: crate::store::samples::Texts) -> Sample {
    use crate::domain::{Kind, LabelType, Status};
    Sample {
        id: 1,
        prompt_id: 1,
        hash: String::new(),
        status: Status::Pending,
        label: LabelType::Pseudo,
        teacher: "t".into(),
        source: None,
        kind: Kind::Reasoning,
        tokens: 100,
        reasoning_tokens: 0,
        answer_tokens: 0,
        finish_reason: Some("stop".into()),
        decided_by: None,
        scores: std::collections::BTreeMap::new(),
        passed: std::collections::BTreeMap::new(),
        tags: Vec::new(),
        text,
    }
}

/// A verifier's result for one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Scored {
        score: f64,
        pass: bool,
        details: Value,
    },
    /// The verifier could not judge (no reference answer, a checker that crashed or timed out).
    Failed {
        error: String,
    },
}

impl Outcome {
    #[must_use]
    pub fn scored(score: f64, pass: bool, details: Value) -> Self {
        Outcome::Scored { score: score.clamp(0.0, 1.0), pass, details }
    }
}

/// A verifier ready to run.
pub trait Verifier: Send + Sync {
    /// The name scores are stored under (`score.<name>` in rules).
    fn name(&self) -> &str;
    /// Which built-in it is (`math`, `length`, `cmd`...), stored with the verifier.
    fn kind(&self) -> &'static str;
    /// Its settings, stored with the verifier so a score can be traced to how it was made.
    fn config(&self) -> Value;
    fn check(&self, sample: &Sample) -> Outcome;
}

/// The verifiers `retort verify --verifier NAME` knows.
pub const KINDS: &[&str] = &["math", "exact", "format", "length", "repetition", "language", "cmd", "judge"];

/// What the command line says about the verifier to build.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: String,
    /// The name its scores are stored under (default: the kind).
    pub name: Option<String>,
    pub max_tokens: i64,
    pub cmd: Option<String>,
    pub timeout: std::time::Duration,
    /// judge: OpenAI-compatible base URLs (`http://host:8000/v1`), the model, the rubric
    /// template (default: assets/judge_rubric.jinja), the API key's variable, the scale, the pass mark.
    pub endpoints: Vec<String>,
    pub model: Option<String>,
    pub rubric: Option<String>,
    pub api_key_env: Option<String>,
    pub scale: f64,
    pub pass_at: f64,
}

/// Why a verifier cannot be built from what the command line says.
///
/// Causes (a shell-syntax error, jinja's reason) are in the message, not chained as sources, so
/// `{:#}` prints them once.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Name(#[from] BadVerifierName),
    #[error(transparent)]
    Unknown(#[from] UnknownName),
    #[error("the cmd verifier needs --cmd 'PROGRAM ARGS...'")]
    NoCmd,
    /// `--cmd` does not split into words (an unclosed quote).
    #[error("--cmd {command:?}: {cause}")]
    CmdSyntax { command: String, cause: shell_words::ParseError },
    #[error("--cmd is empty")]
    EmptyCmd,
    #[error("the judge verifier needs --model NAME")]
    NoModel,
    #[error("the rubric template does not render: {cause}")]
    Rubric { cause: minijinja::Error },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the judge needs an async runtime")]
    NoRuntime,
    #[error("--scale must be above 0")]
    Scale,
}

/// Builds a verifier from its spec.
pub fn build(spec: &Spec) -> Result<std::sync::Arc<dyn Verifier>, VerifyError> {
    let name = spec.name.clone().unwrap_or_else(|| spec.kind.clone());
    crate::ingest::scores::check_verifier_name(&name)?;
    Ok(match spec.kind.as_str() {
        "math" => std::sync::Arc::new(answer::Math { name, options: math::MathOptions::default() }),
        "exact" => std::sync::Arc::new(answer::Exact { name }),
        "format" => std::sync::Arc::new(builtin::Format { name }),
        "length" => std::sync::Arc::new(builtin::Length { name, max_tokens: spec.max_tokens }),
        "repetition" => std::sync::Arc::new(builtin::Repetition { name }),
        "language" => std::sync::Arc::new(builtin::Language { name }),
        "cmd" => {
            let command = spec.cmd.as_deref().ok_or(VerifyError::NoCmd)?;
            std::sync::Arc::new(cmd::Cmd::new(name, command, spec.timeout)?)
        }
        "judge" => {
            let model = spec.model.clone().ok_or(VerifyError::NoModel)?;
            let rubric = spec.rubric.clone().unwrap_or_else(|| judge::DEFAULT_RUBRIC.to_owned());
            judge::Judge::check_rubric(&rubric)?;
            let client = crate::teacher::client::ChatClient::new(&crate::teacher::client::ClientConfig {
                endpoints: spec.endpoints.clone(),
                api_key_env: spec.api_key_env.clone(),
                timeout: spec.timeout,
                max_retries: 4,
            })?;
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| VerifyError::NoRuntime)?;
            if spec.scale.is_nan() || spec.scale <= 0.0 {
                return Err(VerifyError::Scale);
            }
            std::sync::Arc::new(judge::Judge {
                name,
                model,
                rubric,
                scale: spec.scale,
                pass_at: spec.pass_at,
                client: std::sync::Arc::new(client),
                runtime,
            })
        }
        other => return Err(UnknownName { kind: "verifier".into(), name: other.to_owned(), expected: KINDS.to_vec() }.into()),
    })
}
