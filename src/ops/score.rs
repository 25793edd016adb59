//! `retort score-logprobs`: soft labels for traces that have none. Each selected sample's
//! conversation is rendered with the teacher's chat template and tokenized, sent to a vLLM
//! server as a teacher-forced prompt (`prompt_logprobs`, see [`crate::teacher::prompt_logprobs`]),
//! and the teacher's top-K at every token of the answer is stored packed, as the sample's soft
//! targets; pseudo samples become soft.
//!
//! Like `generate`: requests run concurrently under a bound, each retried by the client on
//! 429/5xx and connection errors, round-robin over endpoints; answers are written a burst per
//! transaction as they arrive; a rerun asks only for what is not stored (a sample this teacher
//! scored with at least K alternatives is done). The samples' texts are read a chunk at a time
//! and a request is built only when a slot is free, so memory stays flat however many there are.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::domain::soft::{self, Confidence, Scored};
use crate::export::{ExportFormat, ExportSample, ReasoningMode};
use crate::rules::Expr;
use crate::store::logprobs::NewScoring;
use crate::store::{self, Store};

use crate::teacher::client::{ClientError, Servers};
use crate::teacher::prompt_logprobs::{self, ReplyError};
use crate::train::data::Encoder;

/// The samples `score-logprobs` scores when not told: pseudo-labelled ones without log-probs.
pub const DEFAULT_SELECTION: &str = "label = pseudo and not has_logprobs";

#[derive(Debug, Clone, Serialize)]
pub struct ScoreOptions {
    #[serde(flatten)]
    pub servers: Servers,
    /// The model name the server serves.
    pub model: String,
    /// The teacher the log-probs are stored under (default: the model).
    pub teacher: Option<String>,
    /// The teacher's model directory: its chat template and tokenizer.json.
    pub template: PathBuf,
    /// The student's model directory: when given, each answer's tokens must be the student's too.
    pub student: Option<PathBuf>,
    pub top_k: usize,
    /// How the reasoning is placed in the assistant's turn before rendering.
    pub reasoning: ReasoningMode,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ScoreReport {
    /// Samples the predicate selects that this teacher had not scored.
    pub selected: u64,
    /// Samples answered (scored or failed) this run.
    pub done: u64,
    pub scored: u64,
    /// Answer tokens whose top-K were stored.
    pub tokens: u64,
    /// Bytes of packed log-probs stored.
    pub bytes: u64,
    /// Pseudo samples now labelled soft.
    pub relabelled: u64,
    pub failures: u64,
    pub first_errors: Vec<String>,
    /// Stopped by Ctrl-C: what had arrived is stored, the rest is asked for next time.
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("{0}")]
    Usage(String),
    #[error("the store: {0}")]
    Store(store::StoreError),
}

impl From<store::StoreError> for ScoreError {
    fn from(e: store::StoreError) -> Self {
        Self::Store(e)
    }
}

/// Why a sample got no log-probs this run.
#[derive(Debug, thiserror::Error)]
enum NoScore {
    #[error(transparent)]
    Teacher(#[from] ClientError),
    #[error("the server's answer: {0}")]
    Reply(#[from] ReplyError),
    #[error("{0}")]
    Render(String),
}

/// A request ready to go: a sample's tokens and which of them are the answer's.
struct Job {
    ids: Vec<u32>,
    answer: Range<usize>,
}

/// Samples whose texts are read in one query.
const CHUNK: usize = 256;

/// The conversation of a sample as the teacher saw it, rendered and tokenized; with a student,
/// its answer's tokens checked to be the student's too.
fn prepare(s: &ExportSample, teacher: &Encoder, student: Option<&Encoder>, reasoning: ReasoningMode) -> Result<Job, NoScore> {
    let line = crate::export::record(s, ExportFormat::Messages, reasoning, true).map_err(|e| NoScore::Render(e.to_string()))?;
    let conv = crate::train::data::conversation(&line).map_err(|e| NoScore::Render(e.to_string()))?;
    let (training, encoding, mask) = teacher.encode_text(&conv).map_err(|e| NoScore::Render(format!("the teacher's template: {e}")))?;
    if training.reasoning_dropped {
        return Err(NoScore::Render(
            "the teacher's chat template leaves the reasoning out of the assistant's turn, so its log-probs would not cover it: \
             score with --reasoning field, or a template that keeps the reasoning"
                .into(),
        ));
    }
    let answer = crate::export::kd::answer_tokens(&mask)
        .filter(|r| r.start > 0)
        .ok_or_else(|| NoScore::Render(format!("the teacher's template: {}", crate::train::data::untrained(&training))))?;
    let ids = encoding.get_ids().to_vec();
    if let Some(student) = student {
        let (_, theirs, their_mask) = student.encode_text(&conv).map_err(|e| NoScore::Render(format!("the student's template: {e}")))?;
        let theirs_answer = crate::export::kd::answer_tokens(&their_mask).map(|r| &theirs.get_ids()[r]).unwrap_or_default();
        let ours = &ids[answer.clone()];
        if theirs_answer != ours {
            let at = ours.iter().zip(theirs_answer).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs_answer.len()));
            let show = |t: &tokenizers::Tokenizer, id: Option<&u32>| {
                id.map_or_else(|| "the end".to_owned(), |id| format!("{id} {:?}", t.id_to_token(*id).unwrap_or_default()))
            };
            return Err(NoScore::Render(format!(
                "the answer's token {at} is {} for the teacher but {} for the student: teacher and student must share a tokenizer",
                show(&teacher.tokenizer, ours.get(at)),
                show(&student.tokenizer, theirs_answer.get(at)),
            )));
        }
    }
    Ok(Job { ids, answer })
}

/// A sample's answer as the store keeps it: packed, with how sure the teacher was of its tokens.
fn scoring(sample_id: i64, answer: &Scored) -> NewScoring {
    let confidence = Confidence::of(answer.positions.iter().map(|p| f64::from(p.logprob.max(soft::FLOOR))));
    NewScoring {
        sample_id,
        k: answer.k as i64,
        temperature: Some(prompt_logprobs::TEMPERATURE),
        positions: answer.positions.len() as i64,
        packed: soft::pack(answer),
        mean_logprob: confidence.map(|c| c.mean_logprob),
        min_logprob: confidence.map(|c| c.min_logprob),
    }
}

/// Every token of a tokenizer's vocabulary as bytes, packed for the store.
fn vocabulary(tokenizer: &tokenizers::Tokenizer) -> (usize, Vec<u8>) {
    let tokens = crate::export::kd::vocabulary_bytes(tokenizer);
    (tokens.len(), soft::pack_vocabulary(&tokens))
}

fn load(dir: &std::path::Path, what: &str) -> Result<Encoder, ScoreError> {
    Encoder::load(dir).map_err(|e| ScoreError::Usage(format!("the {what}'s model directory: {e}")))
}

/// Scores the samples `filter` selects (every sample for `None`); `progress(report so far)`
/// after each burst of answers.
pub async fn score(
    store: &Store,
    filter: Option<&Expr>,
    opts: &ScoreOptions,
    progress: &(dyn Fn(&ScoreReport) + Sync),
) -> Result<ScoreReport, ScoreError> {
    if opts.top_k == 0 || opts.top_k > usize::from(u16::MAX) {
        return Err(ScoreError::Usage(format!("--top-k must be between 1 and {}", u16::MAX)));
    }
    let teacher = Arc::new(load(&opts.template, "teacher")?);
    let student = match &opts.student {
        Some(dir) => Some(Arc::new(load(dir, "student")?)),
        None => None,
    };
    let scorer = opts.teacher.clone().unwrap_or_else(|| opts.model.clone());
    let k = opts.top_k;
    let ids = store::logprobs::unscored(store, filter, &scorer, k as i64).await?;
    let mut report = ScoreReport { selected: ids.len() as u64, ..ScoreReport::default() };
    if ids.is_empty() {
        return Ok(report);
    }
    let client = Arc::new(opts.servers.client().map_err(|e| ScoreError::Usage(e.to_string()))?);
    let (size, tokens) = {
        let teacher = Arc::clone(&teacher);
        tokio::task::spawn_blocking(move || vocabulary(&teacher.tokenizer)).await.map_err(|e| ScoreError::Usage(e.to_string()))?
    };
    let vocabulary_name = opts.template.join("tokenizer.json").display().to_string();
    // Stored with the first scoring: a run that stores nothing leaves the store as it was.
    let mut vocabulary: Result<i64, Vec<u8>> = Err(tokens);

    let semaphore = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(i64, Result<NewScoring, NoScore>)>(64);
    let feeder = {
        let (store, model, reasoning) = (store.clone(), opts.model.clone(), opts.reasoning);
        tokio::spawn(async move {
            let mut texts = store::exports::TextReader::new(&store, false).await?;
            for chunk in ids.chunks(CHUNK) {
                let samples = texts.samples(chunk).await?;
                // Rendering and tokenizing long traces is CPU work: off the runtime's threads.
                let (t, s, chunk_ids) = (Arc::clone(&teacher), student.clone(), chunk.to_vec());
                let jobs = tokio::task::spawn_blocking(move || {
                    chunk_ids.iter().zip(&samples).map(|(id, sample)| (*id, prepare(sample, &t, s.as_deref(), reasoning))).collect()
                })
                .await
                .unwrap_or_else(|e| {
                    chunk.iter().map(|id| (*id, Err(NoScore::Render(format!("preparing its request failed: {e}"))))).collect::<Vec<_>>()
                });
                for (sample, job) in jobs {
                    let Ok(permit) = Arc::clone(&semaphore).acquire_owned().await else { break };
                    let tx = tx.clone();
                    match job {
                        Err(e) => {
                            drop(permit);
                            let _ = tx.send((sample, Err(e))).await;
                        }
                        Ok(job) => {
                            let (client, model) = (Arc::clone(&client), model.clone());
                            tokio::spawn(async move {
                                let _permit = permit;
                                let body = prompt_logprobs::request(&model, &job.ids, k);
                                // Parsed and packed here, beside the other requests, not in the loop that writes.
                                let answer = match client.completions(&body).await {
                                    Ok(response) => prompt_logprobs::parse(&response, &job.ids, job.answer, k)
                                        .map(|positions| scoring(sample, &Scored { k, positions }))
                                        .map_err(NoScore::from),
                                    Err(e) => Err(NoScore::from(e)),
                                };
                                let _ = tx.send((sample, answer)).await;
                            });
                        }
                    }
                }
            }
            texts.close().await;
            Ok::<(), store::StoreError>(())
        })
    };
    // The run is recorded with its first scorings, then says every few seconds how far it is,
    // for the TUI's status line.
    let mut run: Option<i64> = None;
    let mut heartbeat = tokio::time::interval(crate::ops::generate::HEARTBEAT);
    let beat = |report: &ScoreReport| crate::ops::generate::Running {
        scoring: true,
        teacher: scorer.clone(),
        requests: report.done,
        total: report.selected,
        samples: report.scored,
        failures: report.failures,
        tokens: report.tokens,
    };
    loop {
        let next = tokio::select! {
            answer = rx.recv() => answer,
            _ = tokio::signal::ctrl_c() => {
                report.interrupted = true;
                None
            }
            _ = heartbeat.tick() => {
                if let Some(id) = run {
                    beat(&report).beat(store, id).await?;
                }
                continue;
            }
        };
        let Some(first) = next else { break };
        let mut arrived = vec![first];
        while arrived.len() < 256
            && let Ok(more) = rx.try_recv()
        {
            arrived.push(more);
        }
        let mut rows = Vec::with_capacity(arrived.len());
        for (sample, answer) in arrived {
            report.done += 1;
            match answer {
                Ok(scoring) => {
                    report.tokens += scoring.positions as u64;
                    report.bytes += scoring.packed.len() as u64;
                    rows.push(scoring);
                }
                Err(error) => {
                    report.failures += 1;
                    if report.first_errors.len() < 5 {
                        report.first_errors.push(format!("sample #{sample}: {error}"));
                    }
                }
            }
        }
        if !rows.is_empty() {
            let mut tx = store.write().await?;
            let id = match &vocabulary {
                Ok(id) => *id,
                Err(tokens) => store::logprobs::vocabulary_id(&mut tx, &vocabulary_name, size, tokens).await?,
            };
            report.relabelled += store::logprobs::write_scorings(&mut tx, &scorer, id, &rows).await?;
            let first = run.is_none();
            if first {
                let options = serde_json::to_string(opts).unwrap_or_default();
                let endpoints = opts.servers.endpoints.join(" ");
                let new = store::imports::NewImport {
                    path: &endpoints,
                    sha256: "",
                    format: "score-logprobs",
                    options: &options,
                    token_counter: "estimate",
                };
                run = Some(store::imports::start_in(&mut tx, &new).await?);
            }
            tx.commit().await?;
            vocabulary = Ok(id);
            report.scored += rows.len() as u64;
            if let (true, Some(run)) = (first, run) {
                beat(&report).beat(store, run).await?;
            }
        }
        progress(&report);
    }
    if let Some(id) = run {
        store::imports::finish_generation(store, id, 0).await?;
    }
    if report.interrupted {
        feeder.abort();
    } else if let Ok(Err(e)) = feeder.await {
        return Err(e.into());
    }
    Ok(report)
}
