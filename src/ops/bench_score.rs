//! `retort bench score-logprobs`: retort's own cost of scoring stored samples, against an
//! instant local server in vLLM's `prompt_logprobs` shape, what the scorings take in the store,
//! and how fast the kd export reads them back.
//!
//! The teacher is a ChatML template over a 151,936-token vocabulary (Qwen2.5's size, so ids take
//! 18 bits as they do for a real teacher). The server answers each request at once, so what is
//! measured is retort: rendering, tokenizing, the client, parsing the answers, packing and writing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use crate::ops::bench::{AnonPeak, peak_rss_mib, reset_peak_rss};
use crate::ops::bench_rules::fresh;
use crate::ops::score::{ScoreOptions, score};
use crate::teacher::client::Servers;

#[derive(Debug, clap::Args)]
pub struct ScoreBenchArgs {
    /// Samples in the store (nine in ten are pseudo and get scored).
    #[arg(long, default_value_t = 20_000)]
    pub samples: u64,
    /// Each sample's reasoning, in phrases of three words (0: the synthetic store's short
    /// samples, about 20 completion tokens).
    #[arg(long, default_value_t = 100)]
    pub phrases: u64,
    /// Alternatives per position.
    #[arg(long, default_value_t = 20)]
    pub top_k: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Where to put the store (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Tokens of the bench teacher's vocabulary: Qwen2.5's size.
const VOCABULARY: usize = 151_936;

/// A teacher's model directory: a byte-level WordLevel tokenizer knowing the synthetic store's
/// words (the rest of the vocabulary filler), and a ChatML template.
fn teacher_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir.join("teacher");
    std::fs::create_dir_all(&dir)?;
    let words = ["<unk>", "user", "assistant", "system", "\u{10a}", "step", "\u{120}step", "\u{120}two", "\u{120}then", "\u{120}"];
    let specials = ["<|im_start|>", "<|im_end|>"];
    let mut vocab = serde_json::Map::new();
    for (i, w) in words.iter().enumerate() {
        vocab.insert((*w).to_owned(), Value::from(i));
    }
    for i in words.len()..VOCABULARY - specials.len() {
        vocab.insert(format!("filler{i}"), Value::from(i));
    }
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let id = VOCABULARY - specials.len() + i;
            vocab.insert((*t).to_owned(), Value::from(id));
            serde_json::json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
        "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string())?;
    std::fs::write(
        dir.join("chat_template.jinja"),
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    )?;
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"eos_token": "<|im_end|>"}"#)?;
    Ok(dir)
}

/// vLLM's answer to `prompt_logprobs = k` over `ids`, handed to `emit` piece by piece: the
/// first position null, then each position's own token with its rank and the top-k (the own
/// token outside them at every fifth position, as a real teacher's sometimes is).
fn reply(body: &[u8], emit: &mut dyn FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let ids: Vec<u64> = request["prompt"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    let k = request["prompt_logprobs"].as_u64().unwrap_or(1) as usize;
    // The alternatives: ids the teacher's words never are.
    let mut others = String::new();
    for r in 2..=k {
        let _ = write!(others, r#","{}":{{"logprob":-{}.5,"rank":{r},"decoded_token":"filler"}}"#, 20_000 + r, r);
    }
    let mut out = String::with_capacity(1 << 16);
    out.push_str(r#"{"id":"cmpl-bench","object":"text_completion","created":0,"model":"bench-teacher","choices":[{"index":0,"text":"x","logprobs":null,"finish_reason":"length","stop_reason":null,"prompt_logprobs":[null"#);
    for (i, id) in ids.iter().enumerate().skip(1) {
        if i % 5 == 0 {
            let _ = write!(
                out,
                r#",{{"{id}":{{"logprob":-{}.25,"rank":{},"decoded_token":"w"}},"20001":{{"logprob":-0.1,"rank":1,"decoded_token":"filler"}}{others}}}"#,
                k + 1,
                k + 3
            );
        } else {
            let _ = write!(out, r#",{{"{id}":{{"logprob":-0.0{},"rank":1,"decoded_token":"w"}}{others}}}"#, i % 10);
        }
        if out.len() > 1 << 15 {
            emit(&out)?;
            out.clear();
        }
    }
    let _ = write!(out, r#"]}}],"usage":{{"prompt_tokens":{},"completion_tokens":1,"total_tokens":{}}}}}"#, ids.len(), ids.len() + 1);
    emit(&out)
}

/// Serves one keep-alive connection, each answer sent in chunks as it is made: the server's
/// memory stays small beside retort's, whose peak is measured in this process.
fn serve(stream: std::net::TcpStream) {
    use std::io::{BufReader, Write};
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = std::io::BufWriter::with_capacity(1 << 16, stream);
    while let Some(body) = crate::ops::bench_generate::read_request(&mut reader) {
        let sent =
            writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").and_then(|()| {
                reply(&body, &mut |piece| write!(writer, "{:x}\r\n{piece}\r\n", piece.len()))?;
                writer.write_all(b"0\r\n\r\n")?;
                writer.flush()
            });
        if sent.is_err() {
            return;
        }
    }
}

/// Reads every packed scoring back as the kd export does (a task reading chunks of soft labels
/// while the last one is unpacked): bytes, positions and seconds.
async fn read_back(store: &crate::store::Store) -> anyhow::Result<(u64, usize, f64)> {
    let ids = crate::store::logprobs::scored(store).await?;
    let t = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let from = store.clone();
    let reader = tokio::spawn(async move {
        for chunk in ids.chunks(500) {
            let labels = crate::store::logprobs::of(&from, chunk).await;
            let failed = labels.is_err();
            if tx.send(labels).await.is_err() || failed {
                break;
            }
        }
    });
    let (mut bytes, mut decoded) = (0u64, 0usize);
    while let Some(labels) = rx.recv().await {
        for labels in labels?.into_values() {
            if let crate::store::logprobs::Targets::Packed { bytes: packed, .. } = labels.targets {
                let targets = crate::export::kd::soft_targets_packed(&packed, VOCABULARY).map_err(|e| anyhow::anyhow!("{e}"))?;
                bytes += packed.len() as u64;
                decoded += targets.token_ids.len();
            }
        }
    }
    reader.await?;
    Ok((bytes, decoded, t.elapsed().as_secs_f64()))
}

/// The store's file and write-ahead log, in bytes.
fn store_bytes(db: &Path) -> u64 {
    ["", "-wal"].iter().filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok()).map(|m| m.len()).sum()
}

pub async fn score_bench(args: &ScoreBenchArgs) -> anyhow::Result<()> {
    let temp = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("retort-bench-score-{}", std::process::id())));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("score.db");
    let store = fresh(&db).await?;
    crate::store::synthetic::short_samples(&store, args.samples).await?;
    if args.phrases > 0 {
        crate::store::synthetic::wordy_reasoning(&store, args.phrases).await?;
    }
    let template = teacher_dir(&dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    let opts = ScoreOptions {
        servers: Servers { endpoints: vec![url], api_key_env: None, timeout_s: 60.0, max_retries: 2 },
        model: "bench-teacher".into(),
        teacher: None,
        template,
        student: None,
        top_k: args.top_k,
        reasoning: crate::export::ReasoningMode::Inline,
        concurrency: args.concurrency,
    };
    let filter = crate::rules::parse_filter(crate::ops::score::DEFAULT_SELECTION)?;
    let before = store_bytes(&db);
    reset_peak_rss();
    let anon = AnonPeak::start();
    let t = Instant::now();
    let report = score(&store, Some(&filter), &opts, &|_| {}).await?;
    let secs = t.elapsed().as_secs_f64();
    let (anon, peak) = (anon.stop(), peak_rss_mib());
    // Closed, the store's log is folded in and removed: the file alone holds what scoring added.
    store.close().await;
    let grown = store_bytes(&db).saturating_sub(before);
    let store = crate::store::Store::open(&db).await?;
    let (rows, positions, packed) = crate::store::logprobs::footprint(&store).await?;
    let mib = |m: Option<f64>| m.map_or_else(|| "-".into(), |m| format!("{m:.0} MiB"));
    println!(
        "score-logprobs: {} of {} samples scored ({} failed), {} tokens at K={} in {secs:.2}s: {:.0} samples/s, {:.0} tokens/s \
         (concurrency {}); peak RSS {}, anonymous {}",
        report.scored,
        args.samples,
        report.failures,
        report.tokens,
        args.top_k,
        report.scored as f64 / secs,
        report.tokens as f64 / secs,
        args.concurrency,
        mib(peak),
        mib(anon),
    );
    let per_token = |bytes: f64| if positions > 0 { bytes / positions as f64 } else { 0.0 };
    println!(
        "stored: {rows} scorings, {positions} positions: {:.1} B/token packed, {:.1} B/token of store file ({:.1} MB added)",
        per_token(packed as f64),
        per_token(grown as f64),
        grown as f64 / 1e6
    );
    let (bytes, decoded, secs) = read_back(&store).await?;
    println!(
        "read back as the kd export reads them: {:.1} MB of packed log-probs, {decoded} positions in {secs:.2}s: {:.0} MB/s, {:.2}M positions/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        decoded as f64 / 1e6 / secs
    );
    // The whole export a user runs: rendered with the student's template, placed, written.
    let out = dir.join("kd");
    let opts = crate::ops::export::ExportOptions {
        format: crate::export::ExportFormat::Kd,
        out: out.clone(),
        filter: Some("has_logprobs".into()),
        filter_expr: Some(crate::rules::parse_filter("has_logprobs")?),
        statuses: vec![crate::domain::Status::Pending],
        labels: None,
        reasoning: crate::export::ReasoningMode::Inline,
        system: true,
        val: 0.0,
        seed: 0,
        mix: Vec::new(),
        max_samples: None,
        max_tokens: None,
        name: "bench".into(),
        model: Some(dir.join("teacher")),
        container: crate::export::Container::Jsonl,
        shard_rows: None,
    };
    let t = Instant::now();
    let exported = crate::ops::export::export(&store, &opts, false, &|_, _| {}).await?;
    let secs = t.elapsed().as_secs_f64();
    let written: u64 = exported.parts.values().filter_map(|p| std::fs::metadata(out.join(&p.file)).ok()).map(|m| m.len()).sum();
    println!(
        "retort export --format kd: {} samples in {secs:.2}s: {:.0} samples/s, {:.1} MB of packed log-probs read at {:.0} MB/s, {:.0} MB of JSONL written",
        exported.samples,
        exported.samples as f64 / secs,
        packed as f64 / 1e6,
        packed as f64 / 1e6 / secs,
        written as f64 / 1e6
    );
    store.close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
