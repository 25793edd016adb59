//! `cmd`: an external checker (a code-execution sandbox, a unit-test runner, a proof checker).
//!
//! Run once per sample, directly (never through a shell): one JSON object on stdin — the sample's
//! `id`, `prompt`, `reference`, `reasoning`, `answer`, `finish_reason`, `tokens`, `kind` — and one
//! JSON object on stdout: `{"score": 0..1, "pass"?: bool, "details"?: any}`. A checker that exits
//! non-zero, times out or prints something else is recorded as a failure with the reason, never
//! as a score of 0.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Outcome, Sample, Verifier, VerifyError};

/// Why a checker gave no reply: recorded as the sample's failure, never as a score.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("cannot run {program:?}: {cause}")]
    Spawn { program: String, cause: std::io::Error },
    /// A pipe asked for was not there (`stdin`, `stdout`, `stderr`).
    #[error("no {0}")]
    NoPipe(&'static str),
    /// Waiting for the checker failed; the system's reason as it is.
    #[error("{0}")]
    Wait(std::io::Error),
    #[error("timed out after {:.1}s", .0.as_secs_f64())]
    TimedOut(Duration),
}

pub struct Cmd {
    pub name: String,
    pub argv: Vec<String>,
    pub timeout: Duration,
}

impl Cmd {
    /// Splits a command line the way a shell would, without running one.
    pub fn new(name: String, command: &str, timeout: Duration) -> Result<Self, VerifyError> {
        let argv = shell_words::split(command).map_err(|cause| VerifyError::CmdSyntax { command: command.to_owned(), cause })?;
        if argv.is_empty() {
            return Err(VerifyError::EmptyCmd);
        }
        Ok(Self { name, argv, timeout })
    }

    fn run(&self, input: &[u8]) -> Result<(String, String, Option<i32>), RunError> {
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|cause| RunError::Spawn { program: self.argv[0].clone(), cause })?;
        let mut stdin = child.stdin.take().ok_or(RunError::NoPipe("stdin"))?;
        let input = input.to_vec();
        // Feed stdin and drain the pipes on their own threads so a chatty checker never blocks.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut stdout = child.stdout.take().ok_or(RunError::NoPipe("stdout"))?;
        let mut stderr = child.stderr.take().ok_or(RunError::NoPipe("stderr"))?;
        let out = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(RunError::Wait)? {
                break status;
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::TimedOut(self.timeout));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = writer.join();
        let out = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
        let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
        Ok((out, err, status.code()))
    }
}

fn tail(s: &str) -> String {
    let s = s.trim();
    let start = s.char_indices().rev().nth(299).map_or(0, |(i, _)| i);
    s[start..].to_owned()
}

impl Verifier for Cmd {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "cmd"
    }
    fn config(&self) -> Value {
        json!({"argv": self.argv, "timeout_s": self.timeout.as_secs_f64()})
    }
    fn check(&self, s: &Sample) -> Outcome {
        let input = match serde_json::to_vec(s) {
            Ok(i) => i,
            Err(e) => return Outcome::Failed { error: e.to_string() },
        };
        let (out, err, code) = match self.run(&input) {
            Ok(r) => r,
            Err(error) => return Outcome::Failed { error: error.to_string() },
        };
        if code != Some(0) {
            let code = code.map_or_else(|| "a signal".to_owned(), |c| format!("status {c}"));
            return Outcome::Failed { error: format!("exited with {code}: {}", tail(&err)) };
        }
        let reply: Value = match serde_json::from_str(out.trim()) {
            Ok(v) => v,
            Err(e) => return Outcome::Failed { error: format!("stdout is not one JSON object ({e}): {}", tail(&out)) },
        };
        let Some(score) = reply.get("score").and_then(Value::as_f64).filter(|s| (0.0..=1.0).contains(s)) else {
            return Outcome::Failed { error: format!("no \"score\" in [0, 1] in the reply: {}", tail(&out)) };
        };
        let pass = reply.get("pass").and_then(Value::as_bool).unwrap_or(score >= 0.5);
        Outcome::scored(score, pass, reply.get("details").cloned().unwrap_or(Value::Null))
    }
}
