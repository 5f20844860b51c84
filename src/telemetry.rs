//! Logging: tracing to stderr and to daily-rolled files; a request id on every request's lines
//! (from the span the request middleware opens). Secrets are never put in log fields.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat};

/// Logging for `serve`. Keep the guard alive: dropping it flushes and stops the file writer.
pub fn init_server(config: &Config) -> Result<Option<WorkerGuard>, String> {
    let filter = EnvFilter::try_new(&config.log.level)
        .map_err(|e| format!("log.level {:?} is invalid: {e}", config.log.level))?;
    let dir = config.log_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
    let mut builder = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("allhands")
        .filename_suffix("log");
    if config.log.keep_files > 0 {
        builder = builder.max_log_files(config.log.keep_files);
    }
    let appender = builder
        .build(&dir)
        .map_err(|e| format!("cannot log to {}: {e}", dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    let json = config.log.format == LogFormat::Json;
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(file_writer)
        .with_ansi(false);
    layers.push(if json {
        file_layer.json().boxed()
    } else {
        file_layer.boxed()
    });
    if config.log.stderr {
        let stderr_layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        layers.push(if json {
            stderr_layer.json().boxed()
        } else {
            stderr_layer.boxed()
        });
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|e| format!("logging setup failed: {e}"))?;
    Ok(Some(guard))
}

/// Logging for the other commands: warnings and errors to stderr.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}
