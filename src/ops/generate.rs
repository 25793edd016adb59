//! `retort generate`: sampling a teacher n times per prompt through OpenAI-compatible servers.
//!
//! Prompts come from a file (imported first, in any prompt format retort reads) or from the store.
//! For each prompt only what is missing is requested — n minus the samples this teacher already
//! gave — so running the same command again completes an interrupted run. Requests run
//! concurrently (a semaphore bounds them), each retried by the client on 429/5xx and connection
//! errors; answers are parsed as the importer parses logged exchanges (reasoning split, top-k
//! log-probs kept as soft labels) and written as they arrive. A request that keeps failing is
//! recorded in `generation_failures` with its error.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ingest::tokens::TokenCounter;
use crate::ops::import::prepare::{Defaults, prepare};
use crate::ops::import::{ImportOptions, import};
use crate::rules::Expr;
use crate::store::imports::{self, NewImport, Writer};
use crate::store::{self, Store, prompts};
use crate::teacher::client::{ChatClient, ClientError, Servers};

/// Which prompts to sample.
#[derive(Debug, Clone)]
pub enum PromptSource {
    /// The prompts of a file (imported first).
    File(PathBuf),
    /// The prompts of the samples a predicate selects.
    Where(Expr),
    /// Every prompt in the store.
    All,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerateOptions {
    #[serde(flatten)]
    pub servers: Servers,
    pub model: String,
    /// The teacher name samples are stored under (default: the model).
    pub teacher: Option<String>,
    pub n: u32,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub system: Option<String>,
    pub logprobs: Option<u32>,
    pub concurrency: usize,
    /// Ask again only for samples cut off by the token limit (`finish_reason = length`); each
    /// one replaced is tagged `regenerated`, so a rerun does not ask twice.
    pub regenerate_truncated: bool,
    /// Write the requests as OpenAI Batch API input lines here instead of sending them.
    #[serde(skip)]
    pub batch_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GenerateReport {
    pub prompts: u64,
    /// Prompts that already had their n samples.
    pub complete: u64,
    pub requests: u64,
    pub samples: u64,
    /// Tokens of the answers stored (reasoning and answer).
    pub tokens: u64,
    pub failures: u64,
    pub first_errors: Vec<String>,
    /// Stopped by Ctrl-C: what had arrived is stored, the rest is asked for next time.
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Usage(String),
    #[error("the store: {0}")]
    Store(store::StoreError),
}

// The cause is in the message, not chained as a source: `{:#}` would print it twice.
impl From<store::StoreError> for GenerateError {
    fn from(e: store::StoreError) -> Self {
        Self::Store(e)
    }
}

/// One prompt to sample: its id and how many samples it lacks. Its chat turns are read only
/// when its requests are about to go out, a chunk at a time, so a run over 100k prompts holds
/// the texts of a few hundred.
struct Job {
    prompt_id: i64,
    missing: u32,
    /// With `--regenerate-truncated`: the cut-off samples the answers replace.
    replaces: Vec<i64>,
}

/// Prompts whose texts are read in one query.
const CHUNK: usize = 500;

/// The tag that marks a truncated sample as replaced by a regenerated one.
const REGENERATED: &str = "regenerated";

async fn prompt_ids(store: &Store, source: &PromptSource) -> Result<Vec<i64>, GenerateError> {
    Ok(match source {
        PromptSource::All => prompts::all_ids(store).await?,
        PromptSource::Where(expr) => prompts::ids_with_samples_matching(store, expr).await?,
        PromptSource::File(path) => {
            // The file's prompts enter the store as any import would; then they are found by hash.
            import(store, std::slice::from_ref(path), &ImportOptions::default(), &|_| {})
                .await
                .map_err(|e| GenerateError::Usage(e.to_string()))?;
            let hashes = crate::ops::import::prompt_hashes(path).map_err(GenerateError::Usage)?;
            prompts::ids_by_hash(store, &hashes).await?
        }
    })
}

async fn jobs(
    store: &Store,
    ids: &[i64],
    teacher: &str,
    opts: &GenerateOptions,
    report: &mut GenerateReport,
) -> Result<Vec<Job>, GenerateError> {
    let n = opts.n;
    let mut out = Vec::new();
    // A few queries per 500 prompts, not a few per prompt.
    for chunk in ids.chunks(CHUNK) {
        let mut replaces: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
        if opts.regenerate_truncated {
            for (prompt, sample) in prompts::truncated_samples(store, chunk, teacher, REGENERATED).await? {
                replaces.entry(prompt).or_default().push(sample);
            }
        }
        for (id, have) in prompts::samples_of_teacher(store, chunk, teacher).await? {
            let replaces = replaces.remove(&id).unwrap_or_default();
            report.prompts += 1;
            let missing = if opts.regenerate_truncated { replaces.len() as u32 } else { n.saturating_sub(have as u32) };
            if missing == 0 {
                report.complete += 1;
                continue;
            }
            out.push(Job { prompt_id: id, missing, replaces });
        }
    }
    Ok(out)
}

/// The chat completion request for a job.
fn request_body(job: &Job, turns: Vec<Value>, opts: &GenerateOptions) -> Value {
    let mut messages = Vec::with_capacity(turns.len() + 1);
    if let Some(system) = &opts.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(turns);
    let mut body = json!({"model": opts.model, "messages": messages, "n": job.missing});
    for (key, value) in [
        ("temperature", opts.temperature.map(|v| json!(v))),
        ("top_p", opts.top_p.map(|v| json!(v))),
        ("max_tokens", opts.max_tokens.map(|v| json!(v))),
        ("logprobs", opts.logprobs.map(|_| json!(true))),
        ("top_logprobs", opts.logprobs.map(|v| json!(v))),
    ] {
        if let Some(v) = value {
            body[key] = v;
        }
    }
    body
}

/// The chat turns of a chunk of jobs' prompts, in the jobs' order: the stored messages when the
/// prompt came as a conversation, else its text as one user turn.
async fn turns(store: &Store, jobs: &[Job]) -> store::Result<Vec<Vec<Value>>> {
    let ids: Vec<i64> = jobs.iter().map(|j| j.prompt_id).collect();
    let mut by_id = prompts::turns(store, &ids).await?;
    Ok(jobs.iter().map(|j| by_id.remove(&j.prompt_id).unwrap_or_default()).collect())
}

/// Why a prompt got no answer this run; stored as text in `generation_failures` (the key
/// already taken out of it by the client).
#[derive(Debug, thiserror::Error)]
enum NoAnswer {
    #[error(transparent)]
    Teacher(#[from] ClientError),
    #[error(transparent)]
    Reply(#[from] crate::ingest::RecordError),
}

/// Sends one request; a server that returns fewer choices than `n` (DeepSeek's API ignores `n`)
/// is asked again for the rest, and the choices come back as one response. A follow-up that
/// fails keeps what arrived: the rest is asked for next run.
async fn ask(client: &ChatClient, body: &Value) -> Result<Value, NoAnswer> {
    let wanted = body["n"].as_u64().unwrap_or(1) as usize;
    let mut response = client.chat(body).await?;
    let got = |r: &Value| r["choices"].as_array().map_or(0, Vec::len);
    while (1..wanted).contains(&got(&response)) {
        let mut more = body.clone();
        more["n"] = json!(wanted - got(&response));
        let Ok(extra) = client.chat(&more).await else { break };
        let (Some(choices), Some(extra)) = (response["choices"].as_array_mut(), extra["choices"].as_array()) else { break };
        if extra.is_empty() {
            break;
        }
        choices.extend(extra.iter().cloned());
    }
    Ok(response)
}

/// Writes the requests as Batch API input lines (`custom_id` names the prompt), for teams that
/// generate through batch APIs; `retort import input.jsonl output.jsonl` brings the answers back.
async fn write_batch(
    store: &Store,
    path: &std::path::Path,
    jobs: &[Job],
    opts: &GenerateOptions,
    mut report: GenerateReport,
) -> Result<GenerateReport, GenerateError> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| GenerateError::Usage(format!("cannot write {}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for chunk in jobs.chunks(CHUNK) {
        for (job, turns) in chunk.iter().zip(turns(store, chunk).await?) {
            let line = json!({
                "custom_id": format!("retort-prompt-{}", job.prompt_id),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": request_body(job, turns, opts),
            });
            writeln!(out, "{line}").map_err(fail)?;
            report.requests += 1;
        }
    }
    out.flush().map_err(fail)?;
    Ok(report)
}

/// How often a running generation (or scoring) refreshes its progress row.
pub(crate) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);
/// A run whose heartbeat is older than this was killed.
const STALE_AFTER_S: i64 = 15;

/// Writes how far a run is to its `imports` row, for whoever watches the store.
async fn beat(store: &Store, import_id: i64, defaults: &Defaults, report: &GenerateReport, total: u64) -> store::Result<()> {
    let running = Running {
        scoring: false,
        teacher: defaults.teacher.clone().unwrap_or_default(),
        requests: report.requests,
        total,
        samples: report.samples,
        failures: report.failures,
        tokens: report.tokens,
    };
    running.beat(store, import_id).await
}

/// A generation running now (in this process or another), as its heartbeat last said; or a
/// `score-logprobs` run, whose requests are samples and whose samples are the ones scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Running {
    #[serde(default)]
    pub scoring: bool,
    pub teacher: String,
    pub requests: u64,
    pub total: u64,
    pub samples: u64,
    pub failures: u64,
    pub tokens: u64,
}

impl Running {
    /// Writes it as run `import_id`'s progress, for whoever watches the store.
    pub(crate) async fn beat(&self, store: &Store, import_id: i64) -> store::Result<()> {
        imports::beat(store, import_id, &serde_json::to_value(self).unwrap_or_default()).await
    }
}

/// The generations running now: unfinished runs whose heartbeat is recent (a killed run's row
/// stays unfinished but its heartbeat stops).
pub async fn running(store: &Store) -> store::Result<Vec<Running>> {
    let rows = imports::running_generations(store, STALE_AFTER_S).await?;
    Ok(rows.into_iter().filter_map(|p| serde_json::from_str(&p).ok()).collect())
}

/// Samples the teacher for the prompts of `source`; `progress(report so far, total requests)`
/// after each burst of answers.
pub async fn generate(
    store: &Store,
    source: &PromptSource,
    opts: &GenerateOptions,
    progress: &(dyn Fn(&GenerateReport, u64) + Sync),
) -> Result<GenerateReport, GenerateError> {
    if opts.n == 0 {
        return Err(GenerateError::Usage("--n must be at least 1".into()));
    }
    let teacher = opts.teacher.clone().unwrap_or_else(|| opts.model.clone());
    let mut report = GenerateReport::default();
    let ids = prompt_ids(store, source).await?;
    let jobs = jobs(store, &ids, &teacher, opts, &mut report).await?;
    let total = jobs.len() as u64;
    if let Some(path) = &opts.batch_file {
        return write_batch(store, path, &jobs, opts, report).await;
    }
    let client = Arc::new(opts.servers.client().map_err(|e| GenerateError::Usage(e.to_string()))?);
    let import_id = imports::start(
        store,
        &NewImport {
            path: &opts.servers.endpoints.join(" "),
            sha256: "",
            format: "generate",
            options: &serde_json::to_string(opts).unwrap_or_default(),
            token_counter: "estimate",
        },
    )
    .await?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(i64, Vec<i64>, Result<(Value, Value), NoAnswer>)>(64);
    // A request is built and spawned only once a slot is free, so memory stays bounded by the
    // concurrency however many prompts there are.
    let feeder = {
        let (opts, store) = (opts.clone(), store.clone());
        tokio::spawn(async move {
            let mut jobs = jobs.into_iter().peekable();
            while jobs.peek().is_some() {
                let chunk: Vec<Job> = jobs.by_ref().take(CHUNK).collect();
                let turns = turns(&store, &chunk).await?;
                for (job, turns) in chunk.into_iter().zip(turns) {
                    let Ok(permit) = Arc::clone(&semaphore).acquire_owned().await else { break };
                    let (client, tx) = (Arc::clone(&client), tx.clone());
                    let body = request_body(&job, turns, &opts);
                    tokio::spawn(async move {
                        let _permit = permit;
                        let answer = ask(&client, &body).await.map(|response| (body, response));
                        let _ = tx.send((job.prompt_id, job.replaces, answer)).await;
                    });
                }
            }
            Ok::<(), store::StoreError>(())
        })
    };
    let defaults = Defaults {
        teacher: Some(teacher.clone()),
        kind: None,
        source: Some(teacher.clone()),
        fallback_name: teacher,
        score_name: "imported".into(),
        // Each run's origins hold its own import id: none can meet an older store's.
        legacy_origins: false,
    };
    let counter = TokenCounter::Estimate;
    let mut writer = Writer::new(import_id);
    let mut done = 0u64;
    // Every few seconds the run says how far it is, for the TUI's status line.
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        let next = tokio::select! {
            answer = rx.recv() => answer,
            _ = tokio::signal::ctrl_c() => {
                report.interrupted = true;
                None
            }
            _ = heartbeat.tick() => {
                beat(store, import_id, &defaults, &report, total).await?;
                continue;
            }
        };
        let Some(first) = next else { break };
        // Whatever else has arrived goes into the same transaction: one commit per burst,
        // not per answer.
        let mut arrived = vec![first];
        while arrived.len() < 256
            && let Ok(more) = rx.try_recv()
        {
            arrived.push(more);
        }
        let mut tx = store.write().await?;
        let mut prepared = Vec::with_capacity(arrived.len());
        let mut replaced = Vec::new();
        for (prompt_id, replaces, answer) in arrived {
            done += 1;
            report.requests += 1;
            match answer.and_then(|(request, response)| {
                let exchange = json!({"request": request, "response": response});
                let raw = exchange.to_string();
                let record = crate::ingest::json::as_object(exchange).and_then(|o| crate::ingest::chat::parse_exchange(&o))?;
                Ok((record, raw))
            }) {
                Ok((mut record, raw)) => {
                    record.prompt.metadata = None;
                    // Each answer is new data, even one identical to an earlier answer's text.
                    let record = prepare(record, format!("{raw}#{import_id}:{done}").as_bytes(), 0, &defaults, &counter);
                    report.tokens += record.samples.iter().map(|s| (s.reasoning_tokens + s.answer_tokens).max(0) as u64).sum::<u64>();
                    prepared.push(record);
                    replaced.extend(replaces);
                }
                Err(error) => {
                    report.failures += 1;
                    if report.first_errors.len() < 5 {
                        report.first_errors.push(format!("prompt {prompt_id}: {error}"));
                    }
                    imports::generation_failure(&mut tx, prompt_id, defaults.teacher.as_deref().unwrap_or_default(), &error.to_string())
                        .await?;
                }
            }
        }
        if !prepared.is_empty() {
            report.samples += writer.write(&mut tx, prepared).await?.samples_added;
        }
        if !replaced.is_empty() {
            writer.tag(&mut tx, &replaced, REGENERATED).await?;
        }
        tx.commit().await?;
        progress(&report, total);
    }
    if report.interrupted {
        feeder.abort();
    } else if let Ok(Err(e)) = feeder.await {
        // The prompts' texts could not be read: what arrived is stored, the rest is asked next time.
        return Err(e.into());
    }
    beat(store, import_id, &defaults, &report, total).await?;
    imports::finish_generation(store, import_id, report.samples).await?;
    store::fts::catch_up(store, |_| {}).await?;
    Ok(report)
}
