//! The optional connector to the organisation's own OpenAI-compatible model server (vLLM,
//! Ollama, llama.cpp's `llama-server`): one non-streaming chat completion per draft, and
//! `GET <base_url>/models` as the health check. Off unless `[assist.llm] enabled`.
//!
//! Every call is bounded so that a slow or dead server costs the employee a quick, stable error
//! and never a stuck editor: one deadline covers waiting for one of `max_concurrency` slots and
//! the request itself, and a circuit breaker refuses at once for a cool-down after
//! `breaker_failures` consecutive failures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::LlmConfig;
use crate::error::{AppError, AppResult, ErrorCode};

/// Largest answer body read from the model server.
const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// How long a health probe's result is reused.
const PROBE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    /// The model that answered, as the server names it.
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Disabled,
    Ok,
    /// No answer in time, or the connection was refused.
    Unreachable,
    /// An answer that was an error status or not an OpenAI-compatible model list.
    BadResponse,
    /// Recent requests failed; drafts are refused until the cool-down ends.
    CircuitOpen,
}

/// What the console needs to know of the connector.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LlmStatus {
    pub enabled: bool,
    pub model: Option<String>,
    pub health: Health,
    /// Whether the server's model list names the configured model (unknown when it did not
    /// answer).
    pub model_listed: Option<bool>,
}

/// Consecutive failures open the circuit for a cool-down; after it, requests are tried again
/// and the first failure opens it again.
#[derive(Debug)]
struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            open_until: None,
        }
    }

    /// `Err(wait)` while the circuit is open.
    fn allow(&self, now: Instant) -> Result<(), Duration> {
        match self.open_until {
            Some(until) if now < until => Err(until - now),
            _ => Ok(()),
        }
    }

    fn record(&mut self, succeeded: bool, now: Instant) {
        if succeeded {
            self.failures = 0;
            self.open_until = None;
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.threshold {
                self.open_until = Some(now + self.cooldown);
            }
        }
    }
}

/// Why a request failed: the connector's two error codes, and whether the breaker counts it.
#[derive(Debug)]
enum Failure {
    Unavailable(String),
    BadResponse(String),
}

impl Failure {
    fn into_error(self) -> AppError {
        match self {
            Failure::Unavailable(why) => AppError::new(ErrorCode::LlmUnavailable, why),
            Failure::BadResponse(why) => AppError::new(ErrorCode::LlmBadResponse, why),
        }
    }
}

fn transport_failure(error: &reqwest::Error, timeout: Duration) -> Failure {
    if error.is_timeout() {
        Failure::Unavailable(format!(
            "the model server did not answer within {} ms",
            timeout.as_millis()
        ))
    } else if error.is_connect() {
        Failure::Unavailable("the model server refused the connection or cannot be reached".into())
    } else {
        Failure::Unavailable("the connection to the model server failed".into())
    }
}

pub struct Connector {
    settings: LlmConfig,
    /// Present only when enabled.
    client: Option<reqwest::Client>,
    slots: tokio::sync::Semaphore,
    breaker: Mutex<Breaker>,
    probe: Mutex<Option<(Instant, Health, Option<bool>)>>,
}

impl Connector {
    pub fn new(settings: &LlmConfig) -> AppResult<Connector> {
        let client = if settings.enabled {
            let mut headers = reqwest::header::HeaderMap::new();
            if let Some(key) = &settings.api_key {
                let mut value =
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.0)).map_err(
                        |_| AppError::internal("assist.llm.api_key is not a valid header value"),
                    )?;
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(settings.timeout_ms))
                .connect_timeout(Duration::from_millis(settings.timeout_ms.min(5_000)))
                .user_agent(concat!("AllHands/", env!("CARGO_PKG_VERSION")))
                // A redirect would carry the conversation somewhere nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .map_err(|e| AppError::internal(format!("the model server's client: {e}")))?;
            tracing::info!(
                base_url = %settings.base_url,
                model = settings.model.as_deref().unwrap_or(""),
                redact = settings.redact,
                "reply drafts use the configured model server"
            );
            Some(client)
        } else {
            None
        };
        Ok(Connector {
            slots: tokio::sync::Semaphore::new(settings.max_concurrency.max(1)),
            breaker: Mutex::new(Breaker::new(
                settings.breaker_failures,
                Duration::from_secs(settings.breaker_cooldown_secs),
            )),
            probe: Mutex::new(None),
            settings: settings.clone(),
            client,
        })
    }

    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }

    pub fn model(&self) -> Option<&str> {
        self.settings.model.as_deref().filter(|_| self.enabled())
    }

    pub fn redacts(&self) -> bool {
        self.settings.redact
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.base_url.trim_end_matches('/'))
    }

    /// `llm_disabled` unless the connector is on.
    pub fn require_enabled(&self) -> AppResult<()> {
        self.client().map(|_| ())
    }

    fn client(&self) -> AppResult<&reqwest::Client> {
        self.client.as_ref().ok_or_else(|| {
            AppError::new(
                ErrorCode::LlmDisabled,
                "drafting with AI is not configured on this server ([assist.llm] enabled = false)",
            )
        })
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One chat completion, within the deadline and through the breaker.
    pub async fn chat(&self, messages: &[ChatMessage]) -> AppResult<Completion> {
        let client = self.client()?;
        let model = self.settings.model.clone().unwrap_or_default();
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let deadline = tokio::time::Instant::now() + timeout;
        if let Err(wait) = self.breaker().allow(Instant::now()) {
            let mut error = AppError::new(
                ErrorCode::LlmUnavailable,
                "the model server failed repeatedly; drafting is paused for a moment",
            );
            error.retry_after = Some(wait.as_secs().max(1));
            return Err(error);
        }
        let Ok(slot) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
            let mut error = AppError::new(
                ErrorCode::LlmUnavailable,
                "the model server is busy with other drafts; try again shortly",
            );
            error.retry_after = Some(1);
            return Err(error);
        };
        let _slot = slot.map_err(|e| AppError::internal(format!("draft slots: {e}")))?;
        let body = json!({
            "model": model,
            "messages": messages,
            "temperature": 0.2,
            "max_tokens": self.settings.max_tokens,
            "stream": false,
        });
        let result = match tokio::time::timeout_at(deadline, self.complete(client, &body)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Unavailable(format!(
                "the model server did not answer within {} ms",
                timeout.as_millis()
            ))),
        };
        self.breaker().record(result.is_ok(), Instant::now());
        match result {
            Ok(completion) => Ok(completion),
            Err(failure) => {
                tracing::warn!(?failure, "a draft request to the model server failed");
                Err(failure.into_error())
            }
        }
    }

    async fn complete(
        &self,
        client: &reqwest::Client,
        body: &Value,
    ) -> Result<Completion, Failure> {
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let response = client
            .post(self.endpoint("chat/completions"))
            .json(body)
            .send()
            .await
            .map_err(|e| transport_failure(&e, timeout))?;
        let status = response.status();
        let bytes = read_bounded(response)
            .await
            .map_err(|e| transport_failure(&e, timeout))?;
        if !status.is_success() {
            return Err(Failure::BadResponse(format!(
                "the model server answered {status}"
            )));
        }
        parse_completion(&bytes).map_err(Failure::BadResponse)
    }

    /// Whether the server answers and lists the model; probed at most every 30 s.
    pub async fn status(&self) -> LlmStatus {
        let Ok(client) = self.client() else {
            return LlmStatus {
                enabled: false,
                model: None,
                health: Health::Disabled,
                model_listed: None,
            };
        };
        let model = self.settings.model.clone();
        let now = Instant::now();
        if self.breaker().allow(now).is_err() {
            return LlmStatus {
                enabled: true,
                model,
                health: Health::CircuitOpen,
                model_listed: None,
            };
        }
        let cached = *self.probe.lock().unwrap_or_else(|p| p.into_inner());
        let (health, listed) = match cached {
            Some((at, health, listed)) if now.duration_since(at) < PROBE_TTL => (health, listed),
            _ => {
                let (health, listed) = self.probe_models(client).await;
                *self.probe.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), health, listed));
                (health, listed)
            }
        };
        LlmStatus {
            enabled: true,
            model,
            health,
            model_listed: listed,
        }
    }

    async fn probe_models(&self, client: &reqwest::Client) -> (Health, Option<bool>) {
        let timeout = Duration::from_millis(self.settings.timeout_ms.min(3_000));
        let answer = client
            .get(self.endpoint("models"))
            .timeout(timeout)
            .send()
            .await;
        let response = match answer {
            Ok(response) if response.status().is_success() => response,
            Ok(_) => return (Health::BadResponse, None),
            Err(_) => return (Health::Unreachable, None),
        };
        let Ok(bytes) = read_bounded(response).await else {
            return (Health::Unreachable, None);
        };
        let Ok(list) = serde_json::from_slice::<Value>(&bytes) else {
            return (Health::BadResponse, None);
        };
        let Some(models) = list["data"].as_array() else {
            return (Health::BadResponse, None);
        };
        let wanted = self.settings.model.as_deref().unwrap_or_default();
        let listed = models.iter().any(|m| m["id"].as_str() == Some(wanted));
        (Health::Ok, Some(listed))
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(bytes)
}

/// The first choice's text of an OpenAI-compatible chat completion.
fn parse_completion(bytes: &[u8]) -> Result<Completion, String> {
    let answer: Value = serde_json::from_slice(bytes)
        .map_err(|_| "the model server's answer is not JSON".to_string())?;
    let text = answer["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| "the model server's answer has no choices[0].message.content".to_string())?
        .trim()
        .to_string();
    if text.is_empty() {
        return Err("the model answered with empty text".into());
    }
    Ok(Completion {
        text,
        model: answer["model"].as_str().unwrap_or_default().to_string(),
    })
}

// ---------------------------------------------------------------- redaction

/// Masks e-mail addresses as `[email]` and phone numbers (7 to 15 digits, with spaces, dashes,
/// dots or brackets between them, an optional leading `+`) as `[phone]`. Dates written
/// `2024-05-01` are kept.
pub fn redact(text: &str) -> String {
    mask_phones(&mask_emails(text))
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

fn mask_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > 0 && is_local_char(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && is_domain_char(chars[end]) {
                end += 1;
            }
            // A sentence's full stop after the address is not part of it.
            while end > i + 1 && chars[end - 1] == '.' {
                end -= 1;
            }
            let domain: String = chars[i + 1..end].iter().collect();
            let local_len = i - start;
            if local_len > 0
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.starts_with('-')
            {
                // Drop the local part already copied.
                for _ in 0..local_len {
                    out.pop();
                }
                out.push_str("[email]");
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')')
}

fn looks_like_date(run: &str) -> bool {
    let parts: Vec<&str> = run.split(['-', '.', '/']).collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts[1..].iter().all(|p| (1..=2).contains(&p.len()))
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn mask_phones(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            || (chars[i] == '(' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        // Only at the start of a number, not inside a word or a longer token.
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if starts && boundary {
            let mut end = i + 1;
            while end < chars.len()
                && (chars[end].is_ascii_digit() || is_phone_separator(chars[end]))
            {
                end += 1;
            }
            while end > i + 1 && !chars[end - 1].is_ascii_digit() {
                end -= 1;
            }
            let run: String = chars[i..end].iter().collect();
            let digits = run.chars().filter(char::is_ascii_digit).count();
            let glued = chars
                .get(end)
                .is_some_and(|c| c.is_alphabetic() && c.is_ascii());
            if (7..=15).contains(&digits) && !looks_like_date(&run) && !glued {
                out.push_str("[phone]");
                i = end;
                continue;
            }
            out.push_str(&run);
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_closes_on_success() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(3, Duration::from_secs(30));
        breaker.record(false, t0);
        breaker.record(false, t0);
        assert!(breaker.allow(t0).is_ok());
        breaker.record(true, t0);
        breaker.record(false, t0);
        breaker.record(false, t0);
        assert!(breaker.allow(t0).is_ok(), "a success resets the count");
        breaker.record(false, t0);
        let wait = breaker.allow(t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        // After the cool-down one request is tried; its failure opens the circuit again.
        let later = t0 + Duration::from_secs(31);
        assert!(breaker.allow(later).is_ok());
        breaker.record(false, later);
        assert!(breaker.allow(later).is_err());
        breaker.record(true, later);
        assert!(breaker.allow(later).is_ok());
    }

    #[test]
    fn redaction_masks_addresses_and_phone_numbers_only() {
        assert_eq!(
            redact("Write to li.lei+shop@example.com.cn. Thanks"),
            "Write to [email]. Thanks"
        );
        assert_eq!(
            redact("我的手机 13812345678，座机 (010) 6552-1234，国外 +44 20 7946 0958"),
            "我的手机 [phone]，座机 [phone]，国外 [phone]"
        );
        assert_eq!(
            redact("订单 2024-05-01 下的，3 到 5 个工作日，退款 199.00 元，SKU A1234567B"),
            "订单 2024-05-01 下的，3 到 5 个工作日，退款 199.00 元，SKU A1234567B"
        );
        assert_eq!(
            redact("user@localhost and @handle"),
            "user@localhost and @handle"
        );
        assert_eq!(redact("a@b.co"), "[email]");
    }

    #[test]
    fn completions_are_parsed_strictly() {
        let ok = parse_completion(
            br#"{"model":"m1","choices":[{"message":{"role":"assistant","content":" Hi [12] "}}]}"#,
        )
        .unwrap();
        assert_eq!((ok.text.as_str(), ok.model.as_str()), ("Hi [12]", "m1"));
        assert!(parse_completion(b"<html>oops</html>").is_err());
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
        assert!(parse_completion(br#"{"choices":[{"message":{"content":"  "}}]}"#).is_err());
    }
}
