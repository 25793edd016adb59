//! `retort bench generate`: retort's own cost per request, against an instant local server.
//!
//! The server answers every chat completion at once with a fixed reply (keep-alive HTTP/1.1 on
//! loopback), so what is measured is retort: building requests, the client, parsing answers and
//! writing samples.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::ops::bench::{peak_rss_mib, reset_peak_rss};
use crate::ops::bench_rules::fresh;
use crate::ops::generate::{GenerateOptions, PromptSource, generate};
use crate::teacher::client::Servers;

#[derive(Debug, clap::Args)]
pub struct GenerateBenchArgs {
    /// Prompts to sample (one answer each).
    #[arg(long, default_value_t = 10_000)]
    pub prompts: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Where to put the store (default: a temporary directory, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The next request's body on a keep-alive connection; `None` when it closes.
pub(crate) fn read_request(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let (mut length, mut line) = (0usize, String::new());
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).ok()?;
    Some(body)
}

/// Serves one keep-alive connection: every request gets the same completion.
fn serve(stream: std::net::TcpStream, reply: &str) {
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let _ = stream.set_nodelay(true);
    let mut writer = stream;
    while let Some(_body) = read_request(&mut reader) {
        // One write per response: head and body in separate segments would meet Nagle's
        // algorithm and the client's delayed ACK, and measure those 40 ms instead of retort.
        let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}", reply.len());
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

pub async fn generate_bench(args: &GenerateBenchArgs) -> anyhow::Result<()> {
    let temp = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("retort-bench-generate-{}", std::process::id())));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let store = fresh(&dir.join("generate.db")).await?;
    crate::store::synthetic::prompts_only(&store, args.prompts).await?;
    let reply = serde_json::json!({
        "id": "bench", "object": "chat.completion", "model": "bench-teacher",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "The answer is 4.", "reasoning_content": "Two times two is four."}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22}
    })
    .to_string();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let reply = reply.clone();
            std::thread::spawn(move || serve(stream, &reply));
        }
    });
    let opts = GenerateOptions {
        servers: Servers { endpoints: vec![url], api_key_env: None, timeout_s: 30.0, max_retries: 2 },
        model: "bench-teacher".into(),
        teacher: None,
        n: 1,
        temperature: None,
        top_p: None,
        max_tokens: None,
        system: None,
        logprobs: None,
        concurrency: args.concurrency,
        regenerate_truncated: false,
        batch_file: None,
    };
    reset_peak_rss();
    let t = Instant::now();
    let report = generate(&store, &PromptSource::All, &opts, &|_, _| {}).await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} requests, {} samples stored, {} failed in {secs:.2}s: {:.0} requests/s (concurrency {}), peak RSS {}",
        report.requests,
        report.samples,
        report.failures,
        report.requests as f64 / secs,
        args.concurrency,
        peak_rss_mib().map_or_else(|| "-".into(), |m| format!("{m:.0} MiB"))
    );
    store.close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
