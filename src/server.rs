//! Start-up and shutdown of `allhands serve`: lock the data directory, open and migrate the
//! store, bootstrap the first administrator, bind HTTPS (and the optional redirect listener),
//! the control socket and the background jobs, then wait for a signal.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use serde_json::json;

use crate::audit::{self, Actor, AuditEvent};
use crate::clock::SharedClock;
use crate::config::{ConfigSource, LoadedConfig};
use crate::http::metrics::{ConnectionGuard, HttpMetrics};
use crate::http::{self, AppState, tls};
use crate::state::Core;
use crate::storage::{DataDirLock, Store};

/// Where the bound HTTPS address is written, for `healthcheck` and tests when the port is 0.
pub const ADDRESS_FILE: &str = "server.addr";

pub struct Running {
    pub address: SocketAddr,
    pub redirect_address: Option<SocketAddr>,
    core: Arc<Core>,
    server: actix_web::dev::ServerHandle,
    redirect: Option<actix_web::dev::ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    resolver: Option<Arc<tls::CertResolver>>,
    _lock: DataDirLock,
}

pub async fn start(loaded: LoadedConfig, clock: SharedClock) -> anyhow::Result<Running> {
    // Outbound HTTPS (webhooks, channel APIs) uses the same cryptography as the listener.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Arc::new(loaded.config.clone());
    let data_dir = config.storage.data_dir.clone();
    let lock = DataDirLock::acquire(&data_dir).map_err(|e| anyhow::anyhow!(e.message))?;
    let store = Store::open(&lock, &config.storage, crate::channels::replay_logged)
        .map_err(|e| anyhow::anyhow!(e.detail.unwrap_or(e.message)))?;
    let core = Arc::new(
        Core::new(config.clone(), store, clock).map_err(|e| anyhow::anyhow!(e.to_string()))?,
    );

    let generated = crate::auth::service::bootstrap(&core, loaded.admin_password.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    record_config_change(&core, &loaded).await?;

    let resolver =
        tls::resolver(&config).map_err(|e| anyhow::anyhow!(e.detail.unwrap_or(e.message)))?;
    let listener = TcpListener::bind(config.server.listen)
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let address = listener.local_addr()?;
    let config_file = match &loaded.source {
        ConfigSource::File(path) => Some(path.display().to_string()),
        ConfigSource::Defaults => None,
    };
    let metrics = HttpMetrics::new(&core.store.metrics);
    let state = web::Data::new(AppState::new(
        core.clone(),
        metrics.clone(),
        config_file,
        resolver.is_some(),
    ));
    let workers = if config.server.workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        config.server.workers
    };
    let connections = metrics.open_connections.clone();
    let app_state = state.clone();
    let builder = HttpServer::new(move || {
        App::new()
            .wrap(Compress::default())
            .wrap(from_fn(http::middleware::observe))
            .configure(http::configure(app_state.clone()))
    })
    .workers(workers)
    .shutdown_timeout(config.server.shutdown_timeout_secs)
    .disable_signals()
    .on_connect(move |io, extensions| {
        latency_sensitive_nodelay(io);
        extensions.insert(ConnectionGuard::new(&connections));
    });
    let builder = match &resolver {
        Some(resolver) => builder.listen_rustls_0_23(
            listener,
            tls::server_config(resolver.clone()).map_err(|e| anyhow::anyhow!(e.to_string()))?,
        )?,
        None => {
            tracing::warn!(
                "TLS is off (tls.mode = \"off-behind-proxy\"): serving plain HTTP for a TLS-terminating proxy"
            );
            builder.listen(listener)?
        }
    };
    let server = builder.run();
    let server_handle = server.handle();
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the HTTP server stopped with an error");
        }
    })];

    let (redirect, redirect_address) = match config.server.redirect_listen {
        Some(addr) => {
            let (handle, bound, task) =
                start_redirect(addr, address.port(), config.server.public_url.clone())?;
            tasks.push(task);
            (Some(handle), Some(bound))
        }
        None => (None, None),
    };

    tasks.push(crate::control::serve(core.clone()).context("cannot open the control socket")?);
    tasks.push(tokio::spawn(maintenance(core.clone())));
    tasks.push(tokio::spawn(crate::channels::delivery::run(core.clone())));
    tasks.push(tokio::spawn(crate::channels::email::supervise(
        core.clone(),
    )));
    tasks.push(tokio::spawn(crate::conversations::service::wake_snoozed(
        core.clone(),
    )));
    tasks.push(tokio::spawn(crate::systemd::watchdog(core.clone())));
    crate::routing::live::RoutingHandle::start(&core);
    {
        // The index catches up with the store in the background; search answers meanwhile
        // with what is indexed so far. The emotion models are trained there too.
        let core = core.clone();
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            // The emotion models train on first use; not in the first customer's request.
            let _ = tokio::task::spawn_blocking(|| {
                crate::assist::emotion::models();
            })
            .await;
            crate::knowledge::ops::sync_index(&core).await;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "knowledge index ready"
            );
        }));
    }
    crate::storage::write_private_file(
        &data_dir.join(ADDRESS_FILE),
        address.to_string().as_bytes(),
    )
    .map_err(|e| anyhow::anyhow!(e.to_string()))?;

    let scheme = if resolver.is_some() { "https" } else { "http" };
    let shown = if address.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), address.port())
    } else {
        address
    };
    tracing::info!(address = %address, config = ?loaded.source, data_dir = %data_dir.display(), "allhands {} is serving", env!("CARGO_PKG_VERSION"));
    if let Some(password) = generated {
        print_first_password(&format!("{scheme}://{shown}/"), &password, &data_dir);
    }
    crate::systemd::ready(&format!("serving on {scheme}://{address}"));
    Ok(Running {
        address,
        redirect_address,
        core,
        server: server_handle,
        redirect,
        tasks,
        resolver,
        _lock: lock,
    })
}

fn print_first_password(url: &str, password: &str, data_dir: &std::path::Path) {
    use std::io::Write;
    let file = data_dir.join("initial-admin-password");
    // One write, whose failure is ignored: a reader that closes the pipe once it has the
    // password (or a terminal that went away) must not stop the server. `eprintln!` writes
    // piece by piece and panics when stderr is gone.
    let banner = format!(
        "\n============================================================================\n  \
         AllHands is ready. Open {url} in a browser.\n  \
         First administrator:  admin\n  \
         One-time password:    {password}\n  \
         (shown only now; also kept in {} until it is changed)\n  \
         You must choose a new password at first sign-in.\n\
         ============================================================================\n\n",
        file.display()
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
}

/// Audits a change of the effective configuration since the last start (not its secrets).
async fn record_config_change(core: &Core, loaded: &LoadedConfig) -> anyhow::Result<()> {
    let current = serde_json::to_value(&loaded.config)?;
    let source = match &loaded.source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Defaults => "built-in defaults".into(),
    };
    let now = core.now();
    core.store
        .write(move |txn| {
            let previous: Option<serde_json::Value> =
                crate::storage::meta_get_in_write(txn, "effective_config")?
                    .and_then(|b| serde_json::from_slice(&b).ok());
            if previous.as_ref() == Some(&current) {
                return Ok(());
            }
            let changes = previous
                .as_ref()
                .map(|p| crate::org::service::changed_sections(p, &current));
            crate::storage::meta_set(txn, "effective_config", &serde_json::to_vec(&current)?)?;
            let action = if previous.is_some() {
                "config.changed"
            } else {
                "config.initial"
            };
            audit::append(
                txn,
                now,
                AuditEvent::new(&Actor::system("server start"), action)
                    .details(json!({ "source": source, "changes": changes })),
            )?;
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))
}

fn start_redirect(
    addr: SocketAddr,
    https_port: u16,
    public_url: Option<String>,
) -> anyhow::Result<(
    actix_web::dev::ServerHandle,
    SocketAddr,
    tokio::task::JoinHandle<()>,
)> {
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (server.redirect_listen)"))?;
    let bound = listener.local_addr()?;
    let server = HttpServer::new(move || {
        let public_url = public_url.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let target = redirect_target(&req, https_port, public_url.as_deref());
            async move {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", target))
                    .finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(async move {
        let _ = server.await;
    });
    Ok((handle, bound, task))
}

fn redirect_target(req: &HttpRequest, https_port: u16, public_url: Option<&str>) -> String {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if let Some(base) = public_url {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    let info = req.connection_info();
    let host = info.host();
    let name = match host.rsplit_once(':') {
        Some((name, port))
            if port.chars().all(|c| c.is_ascii_digit())
                && !name.ends_with(']')
                && name.contains(':') =>
        {
            host
        }
        Some((name, _)) => name,
        None => host,
    };
    if https_port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{https_port}{path}")
    }
}

/// Housekeeping: expired sessions hourly, audit retention daily.
async fn maintenance(core: Arc<Core>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    let mut hours = 0u64;
    loop {
        tick.tick().await;
        let now = core.now();
        let idle_ms = core.config.auth.session_idle_minutes as i64 * 60_000;
        match core
            .store
            .write(move |txn| crate::auth::session::remove_expired(txn, now, idle_ms))
            .await
        {
            Ok(n) if n > 0 => tracing::info!(removed = n, "removed expired sessions"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session cleanup failed"),
        }
        // Idempotency keys are kept a day: long enough for any sender's retries.
        let day_ago = now - 86_400_000;
        if let Err(e) = core
            .store
            .write(move |txn| crate::channels::api::forget_idempotency_keys(txn, day_ago))
            .await
        {
            tracing::warn!(error = %e, "idempotency key cleanup failed");
        }
        match core
            .store
            .write(move |txn| {
                crate::attachments::remove_unbound(txn, now - crate::attachments::UNBOUND_TTL_MS)
            })
            .await
        {
            Ok(n) if n > 0 => tracing::info!(removed = n, "removed uploads no message took"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "upload cleanup failed"),
        }
        let days = core.config.audit.retention_days;
        if days > 0 && hours.is_multiple_of(24) {
            let before = now - days as i64 * 86_400_000;
            let result = core
                .store
                .write(move |txn| {
                    let removed = audit::prune(txn, before)?;
                    if removed > 0 {
                        audit::append(
                            txn,
                            now,
                            AuditEvent::new(&Actor::system("audit retention"), "audit.pruned")
                                .details(json!({ "removed": removed, "retention_days": days })),
                        )?;
                    }
                    Ok(removed)
                })
                .await;
            match result {
                Ok(n) if n > 0 => {
                    tracing::info!(removed = n, "pruned audit entries past retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit retention failed"),
            }
        }
        hours += 1;
    }
}

impl Running {
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Serves until SIGINT or SIGTERM; reloads certificates on SIGHUP.
    pub async fn wait_for_signals(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    crate::systemd::reloading();
                    self.reload_certificates();
                    crate::systemd::ready(&format!("serving on {}", self.address));
                }
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }
        self.stop().await;
        Ok(())
    }

    pub fn reload_certificates(&self) {
        match &self.resolver {
            Some(resolver) => match resolver.reload() {
                Ok(()) => tracing::info!("reloaded the TLS certificate"),
                Err(e) => {
                    tracing::error!(error = %e, "could not reload the TLS certificate; keeping the current one")
                }
            },
            None => tracing::info!("SIGHUP: TLS is off, nothing to reload"),
        }
    }

    /// Stops accepting, lets requests finish, then closes the store.
    pub async fn stop(self) {
        tracing::info!("shutting down");
        crate::systemd::stopping();
        self.core.hub.close_all();
        self.server.stop(true).await;
        if let Some(redirect) = &self.redirect {
            redirect.stop(true).await;
        }
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_file(crate::control::socket_path(&self.core.data_dir));
        let _ = std::fs::remove_file(self.core.data_dir.join(ADDRESS_FILE));
        let store = self.core.store.clone();
        let core = self.core.clone();
        let _ = tokio::task::spawn_blocking(move || core.routing.stop()).await;
        drop(self.core);
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        tracing::info!("stopped");
    }
}

/// HTTP/1.1 connections carry the console's and the widget's WebSockets, whose small pushed
/// frames must leave at once rather than wait for the peer's delayed ACK (Nagle). HTTP/2
/// connections multiplex many answers, and letting the kernel coalesce them costs less CPU
/// under load for the same latency.
fn latency_sensitive_nodelay(io: &dyn std::any::Any) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    use actix_web::rt::net::TcpStream;
    let socket = if let Some(tls) = io.downcast_ref::<TlsStream<TcpStream>>() {
        let (socket, session) = tls.get_ref();
        if session.alpn_protocol() == Some(b"h2") {
            return;
        }
        socket
    } else if let Some(plain) = io.downcast_ref::<TcpStream>() {
        plain
    } else {
        return;
    };
    let _ = socket.set_nodelay(true);
}
