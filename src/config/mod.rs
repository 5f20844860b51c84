//! Configuration: the typed settings, their defaults and documentation.
//!
//! Layers, lowest first: built-in defaults < the config file (`/etc/allhands/allhands.toml` when
//! present, or `--config`) < `ALLHANDS_*` environment variables < command-line flags. See `load`.
//! Every key is documented in `example::OPTIONS`; `allhands config example` prints them and a test
//! keeps `packaging/allhands.toml` identical to that output.

pub mod example;
pub mod load;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use load::{ConfigSource, LoadedConfig, Overrides, Secret, load};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub delivery: DeliveryConfig,
    pub attachments: AttachmentsConfig,
    pub assist: AssistConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssistConfig {
    pub llm: LlmConfig,
}

/// The optional connector to the organisation's own OpenAI-compatible model server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    pub enabled: bool,
    /// The server's OpenAI-compatible root, e.g. "http://127.0.0.1:11434/v1".
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: Option<String>,
    /// Milliseconds a draft may take, waiting for a free slot included.
    pub timeout_ms: u64,
    /// Requests to the model server at once.
    pub max_concurrency: usize,
    /// Mask e-mail addresses and phone numbers in conversation text before it is sent.
    pub redact: bool,
    /// Consecutive failures after which drafts are refused for `breaker_cooldown_secs`.
    pub breaker_failures: u32,
    pub breaker_cooldown_secs: u64,
    /// Longest answer asked of the model, in tokens.
    pub max_tokens: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            enabled: false,
            base_url: "http://127.0.0.1:11434/v1".into(),
            api_key: None,
            model: None,
            timeout_ms: 15_000,
            max_concurrency: 2,
            redact: true,
            breaker_failures: 3,
            breaker_cooldown_secs: 30,
            max_tokens: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Types accepted, as found in the content: `image/*` or exact types.
    pub allowed_types: Vec<String>,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            max_bytes: 20 * 1024 * 1024,
            allowed_types: [
                "image/*",
                "audio/*",
                "video/*",
                "text/plain",
                "text/csv",
                "text/calendar",
                "application/json",
                "application/pdf",
                "application/zip",
                "application/gzip",
                "application/x-7z-compressed",
                "application/vnd.rar",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.spreadsheet",
                "application/rtf",
                "message/rfc822",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Seconds before the first retry of a failed outbound delivery; each retry waits 3x longer
    /// (at most an hour).
    pub retry_initial_secs: u64,
    /// Attempts before a delivery goes to the dead-letter list.
    pub max_attempts: u32,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_initial_secs: 10,
            max_attempts: 8,
            timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Plain-HTTP listener that only redirects to HTTPS; empty for none.
    pub redirect_listen: Option<SocketAddr>,
    /// The address browsers use, e.g. "https://support.example.com"; used in redirects.
    pub public_url: Option<String>,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    pub max_body_bytes: usize,
    /// Addresses of reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8443".parse().expect("valid default address"),
            redirect_listen: None,
            public_url: None,
            workers: 0,
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
            shutdown_timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Generate a self-signed certificate in the data directory on first start, and keep it.
    SelfSigned,
    /// Use `cert_file` and `key_file`; reloaded on SIGHUP.
    Files,
    /// Plain HTTP, for running behind a TLS-terminating reverse proxy on the same host.
    OffBehindProxy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Extra host names for the self-signed certificate (localhost and the listen address are
    /// always included).
    pub self_signed_names: Vec<String>,
    /// Strict-Transport-Security max-age in seconds; 0 disables the header.
    pub hsts_max_age_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::SelfSigned,
            cert_file: None,
            key_file: None,
            self_signed_names: Vec::new(),
            hsts_max_age_secs: 31_536_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Page cache of the embedded store, in MiB.
    pub cache_mib: usize,
    /// Longest time between durable commits of the store while the inbound log keeps messages
    /// durable; bounds the replay after a crash.
    pub checkpoint_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./allhands-data"),
            cache_mib: 64,
            checkpoint_ms: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub session_idle_minutes: u64,
    pub session_max_hours: u64,
    pub password_min_length: usize,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Failed logins for one account within `lockout_window_minutes` before it is throttled.
    pub max_failures_per_account: u32,
    /// Failed logins from one source address within the window before it is throttled.
    pub max_failures_per_address: u32,
    pub lockout_window_minutes: u64,
    pub api_token_max_days: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_minutes: 480,
            session_max_hours: 168,
            password_min_length: 12,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            lockout_window_minutes: 15,
            api_token_max_days: 366,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days to keep audit entries; 0 keeps them forever.
    pub retention_days: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter, e.g. "info" or "info,allhands::http=debug".
    pub level: String,
    /// Directory for the daily-rolled log files; empty means `<data_dir>/logs`.
    pub dir: Option<PathBuf>,
    /// Daily files to keep; 0 keeps all.
    pub keep_files: usize,
    pub format: LogFormat,
    pub stderr: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            dir: None,
            keep_files: 30,
            format: LogFormat::Text,
            stderr: true,
        }
    }
}

impl Config {
    pub fn log_dir(&self) -> PathBuf {
        self.log
            .dir
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("logs"))
    }

    /// Checks relations between settings that the types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.tls.mode == TlsMode::Files
            && (self.tls.cert_file.is_none() || self.tls.key_file.is_none())
        {
            return Err("tls.mode = \"files\" needs tls.cert_file and tls.key_file".into());
        }
        if self.auth.password_min_length < 8 {
            return Err("auth.password_min_length must be at least 8".into());
        }
        if self.auth.argon2_memory_kib < 8 * self.auth.argon2_parallelism.max(1)
            || self.auth.argon2_iterations == 0
            || self.auth.argon2_parallelism == 0
        {
            return Err("auth.argon2_* parameters are out of range".into());
        }
        if self.attachments.max_bytes < 1024 {
            return Err("attachments.max_bytes must be at least 1024".into());
        }
        if self.server.max_body_bytes < 1024 {
            return Err("server.max_body_bytes must be at least 1024".into());
        }
        if self.auth.session_idle_minutes == 0 || self.auth.session_max_hours == 0 {
            return Err("auth.session_* must be positive".into());
        }
        let llm = &self.assist.llm;
        if llm.enabled {
            if !(llm.base_url.starts_with("https://") || llm.base_url.starts_with("http://")) {
                return Err("assist.llm.base_url must start with https:// or http://".into());
            }
            if llm.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                return Err("assist.llm.enabled needs assist.llm.model".into());
            }
        }
        if llm.timeout_ms == 0 || llm.max_concurrency == 0 || llm.breaker_failures == 0 {
            return Err(
                "assist.llm.timeout_ms, max_concurrency and breaker_failures must be positive"
                    .into(),
            );
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("server.public_url must start with https:// or http://".into());
        }
        Ok(())
    }
}
