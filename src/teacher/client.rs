//! An OpenAI-compatible client (chat completions, and completions for scoring): round-robin over endpoints, timeouts, retries
//! with backoff on 429 and 5xx that honour `Retry-After`. The API key comes from an environment
//! variable and is never stored or printed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

/// How to reach the server(s).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URLs ending in `/v1` (e.g. `http://localhost:8000/v1`); requests go round-robin.
    pub endpoints: Vec<String>,
    /// The environment variable holding the API key (none for a local server).
    pub api_key_env: Option<String>,
    pub timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx and transport errors.
    pub max_retries: u32,
}

/// How a command reaches its servers, as its flags say: what `generate` and `score-logprobs`
/// share (and record with a run's options; the key's variable is not recorded).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Servers {
    pub endpoints: Vec<String>,
    #[serde(skip)]
    pub api_key_env: Option<String>,
    pub timeout_s: f64,
    pub max_retries: u32,
}

impl Servers {
    /// The client for these servers.
    pub fn client(&self) -> Result<ChatClient, ClientError> {
        ChatClient::new(&ClientConfig {
            endpoints: self.endpoints.clone(),
            api_key_env: self.api_key_env.clone(),
            timeout: Duration::from_secs_f64(self.timeout_s.max(0.1)),
            max_retries: self.max_retries,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Config(String),
    #[error("HTTP {status} from {url}: {body}")]
    Status { status: u16, url: String, body: String },
    #[error("gave up after {attempts} {}; last error: {last}", if *.attempts == 1 { "attempt" } else { "attempts" })]
    GaveUp { attempts: u32, last: String },
    /// Not sent: an earlier request gave up without ever reaching a server, and none has
    /// answered since the run began.
    #[error("not sent: no server could be reached ({last})")]
    Unreachable { last: String },
}

pub struct ChatClient {
    http: reqwest::Client,
    endpoints: Vec<String>,
    api_key: Option<String>,
    max_retries: u32,
    next: AtomicUsize,
    /// Whether any server has answered (with any status) since the client was made.
    answered: AtomicBool,
    /// The error of a request that gave up without reaching any server, once there is one and
    /// no server has answered: later requests then fail at once rather than each retrying
    /// for seconds against servers that are down.
    unreachable: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ChatClient")
            .field("endpoints", &self.endpoints)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// The part of a body worth showing in an error: short, one line.
fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

/// How long to wait before retry `attempt` (0-based): the server's `Retry-After` when it gave
/// one, else exponential backoff from 0.5 s, capped at 30 s.
#[must_use]
pub fn backoff(attempt: u32, retry_after: Option<&str>) -> Duration {
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0) {
        return Duration::from_secs_f64(secs.min(300.0));
    }
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(30))
}

impl ChatClient {
    pub fn new(cfg: &ClientConfig) -> Result<Self, ClientError> {
        if cfg.endpoints.is_empty() {
            return Err(ClientError::Config("no endpoint: give --endpoint URL (e.g. http://localhost:8000/v1)".into()));
        }
        let api_key = match &cfg.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.is_empty() => Some(k),
                _ => None,
            },
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        let endpoints = cfg.endpoints.iter().map(|e| e.trim_end_matches('/').to_owned()).collect();
        Ok(Self {
            http,
            endpoints,
            api_key,
            max_retries: cfg.max_retries,
            next: AtomicUsize::new(0),
            answered: AtomicBool::new(false),
            unreachable: std::sync::Mutex::new(None),
        })
    }

    /// `text` with the API key taken out: a server that echoes the key in an error body would
    /// otherwise have it stored (`generation_failures`, a verifier's reason) and printed.
    fn redact(&self, text: String) -> String {
        match &self.api_key {
            Some(key) if key.len() >= 4 && text.contains(key.as_str()) => text.replace(key.as_str(), "[the API key]"),
            _ => text,
        }
    }

    /// The error that showed no server can be reached, while none has answered.
    fn known_unreachable(&self) -> Option<String> {
        if self.answered.load(Ordering::Relaxed) {
            return None;
        }
        self.unreachable.lock().ok().and_then(|u| u.clone())
    }

    /// POSTs a chat completion request and returns the response body.
    pub async fn chat(&self, body: &Value) -> Result<Value, ClientError> {
        self.post("chat/completions", body, |bytes: &[u8]| serde_json::from_slice(bytes)).await
    }

    /// POSTs a (legacy) completion request, as teacher-forced scoring sends them.
    pub async fn completions(&self, body: &Value) -> Result<super::prompt_logprobs::Reply, ClientError> {
        self.post("completions", body, super::prompt_logprobs::read).await
    }

    /// POSTs `body` to `path` under an endpoint (the next, round-robin) and returns the answer.
    async fn post<T>(&self, path: &str, body: &Value, read: impl Fn(&[u8]) -> serde_json::Result<T>) -> Result<T, ClientError> {
        let mut last = String::new();
        // Whether every attempt failed before reaching a server (refused, no route, DNS...).
        let mut never_reached = true;
        for attempt in 0..=self.max_retries {
            if let Some(last) = self.known_unreachable() {
                return Err(ClientError::Unreachable { last });
            }
            let base = &self.endpoints[self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len()];
            let url = format!("{base}/{path}");
            let mut request = self.http.post(&url).json(body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let wait = match request.send().await {
                Ok(response) => {
                    never_reached = false;
                    self.answered.store(true, Ordering::Relaxed);
                    let status = response.status();
                    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    // A body cut off in transfer (a dropped connection, a proxy's limit) is the
                    // commonest cause of a malformed 200: asked again, like a 5xx.
                    // Bytes, read in place: a scoring's answer can be tens of MB, not copied into a String too.
                    let body = match response.bytes().await {
                        Ok(body) => body,
                        Err(e) => {
                            last = self.redact(format!("{url}: the answer was cut off: {}", cause_chain(&e)));
                            if attempt < self.max_retries {
                                tokio::time::sleep(backoff(attempt, None)).await;
                            }
                            continue;
                        }
                    };
                    let text = || String::from_utf8_lossy(&body);
                    if status.is_success() {
                        match read(&body) {
                            Ok(value) => return Ok(value),
                            Err(e) => {
                                last = self.redact(format!("{url} answered 200 with a body that is not JSON ({e}): {}", snippet(&text())));
                                if attempt < self.max_retries {
                                    tokio::time::sleep(backoff(attempt, None)).await;
                                }
                                continue;
                            }
                        }
                    }
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable {
                        return Err(ClientError::Status { status: status.as_u16(), url, body: self.redact(snippet(&text())) });
                    }
                    last = self.redact(format!("HTTP {} from {url}: {}", status.as_u16(), snippet(&text())));
                    backoff(attempt, retry_after.as_deref())
                }
                Err(e) => {
                    never_reached &= e.is_connect();
                    last = self.redact(format!("{url}: {}", cause_chain(&e)));
                    backoff(attempt, None)
                }
            };
            if attempt < self.max_retries {
                tokio::time::sleep(wait).await;
            }
        }
        if never_reached && let Ok(mut u) = self.unreachable.lock() {
            u.get_or_insert_with(|| last.clone());
        }
        Err(ClientError::GaveUp { attempts: self.max_retries + 1, last })
    }
}

/// A transport error with its causes, which reqwest keeps apart: "error sending request:
/// client error (Connect): tcp connect error: Connection refused (os error 111)" where its
/// Display alone says only "error sending request for url (…)".
fn cause_chain(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    // The URL is already in front of the message.
    if let Some(i) = text.find(" for url (") {
        text.truncate(i);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The text of the first choice of a chat completion.
#[must_use]
pub fn first_content(response: &Value) -> Option<&str> {
    response.get("choices")?.get(0)?.get("message")?.get("content")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_honours_retry_after_and_caps() {
        assert_eq!(backoff(0, Some("2")), Duration::from_secs(2));
        assert_eq!(backoff(0, None), Duration::from_millis(500));
        assert_eq!(backoff(3, None), Duration::from_secs(4));
        assert_eq!(backoff(20, None), Duration::from_secs(30));
        assert_eq!(backoff(1, Some("soon")), Duration::from_secs(1));
    }
}
