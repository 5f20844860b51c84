//! Reading an e-mail channel's IMAP mailbox: connect over TLS (or STARTTLS), select the
//! mailbox, ingest every message past the last UID stored, then wait with IDLE when the server
//! offers it (polling otherwise) and start over. Failures are logged, shown on the channel's
//! status, and retried with a growing wait. Messages are only read (`BODY.PEEK`): nothing in the
//! mailbox is changed.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use futures_util::TryStreamExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{EmailSettings, TlsMode};
use crate::channels::{self, Channel};
use crate::state::Core;

/// Messages fetched per FETCH command.
const BATCH: usize = 10;
/// The longest one IDLE lasts before the mailbox is checked anyway (RFC 2177: under 29 min).
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);
/// The longest any one exchange with the server may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const REMEMBER_SUCCESS_EVERY: Duration = Duration::from_secs(5 * 60);

type Session = async_imap::Session<TlsStream<TcpStream>>;

/// A TLS client configuration trusting the system's roots plus the channel's own CA.
pub fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    for cert in super::ca_certificates(ca_pem).map_err(|e| e.message)? {
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate is unusable: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads the channel's mailbox until the task is aborted.
pub async fn run(core: Arc<Core>, channel: Channel) {
    let id = channel.id;
    let settings = match EmailSettings::from_channel(&channel) {
        Ok(s) => s,
        Err(e) => {
            fail(
                &core,
                id,
                format!("the settings are unusable: {}", e.message),
            );
            return;
        }
    };
    let password = match channels::secrets(&core, &channel) {
        Ok(s) => s["imap_password"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            tracing::error!(channel = id, error = %e, "cannot unseal the channel's secrets");
            fail(
                &core,
                id,
                "the channel's secrets cannot be read on this server".into(),
            );
            return;
        }
    };
    let mut failures: u32 = 0;
    loop {
        core.channel_status
            .update(id, |s| s.state = "connecting".into());
        let error = match connect(&settings, &password).await {
            Ok(session) => {
                failures = 0;
                follow(&core, id, &settings, session).await
            }
            Err(e) => e,
        };
        failures = failures.saturating_add(1);
        tracing::warn!(channel = id, error = %error, failures, "the e-mail mailbox connection failed");
        fail(&core, id, error);
        let wait = Duration::from_secs(2u64.saturating_pow(failures.min(9)).min(300));
        tokio::time::sleep(wait).await;
    }
}

fn fail(core: &Arc<Core>, id: u64, error: String) {
    let now = core.now();
    core.channel_status.update(id, |s| {
        s.state = "error".into();
        s.last_error = Some(error.clone());
        s.last_error_at = Some(now);
    });
    remember(core, id, super::Health::Failed(error));
}

/// Keeps the health of the mailbox in the store, off the reader's path.
fn remember(core: &Arc<Core>, id: u64, health: super::Health) {
    let core = core.clone();
    tokio::spawn(async move {
        if let Err(e) = super::record_health(&core, id, health).await {
            tracing::warn!(channel = id, error = %e, "cannot store the mailbox's health");
        }
    });
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(COMMAND_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {COMMAND_TIMEOUT:?}")),
    }
}

async fn connect(settings: &EmailSettings, password: &str) -> Result<Session, String> {
    let config = tls_config(settings.ca_certificate.as_deref())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let host = settings.imap_host.trim_matches(|c| c == '[' || c == ']');
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a valid server name: {e}"))?;
    let tcp = timed(
        &format!("connecting to {host}:{}", settings.imap_port),
        TcpStream::connect((host, settings.imap_port)),
    )
    .await?;
    let client = match settings.imap_tls {
        TlsMode::Tls => {
            let tls = timed("TLS handshake", connector.connect(name, tcp)).await?;
            let mut client = Client::new(tls);
            greeting(&mut client).await?;
            client
        }
        TlsMode::Starttls | TlsMode::Plain => {
            let mut plain = Client::new(tcp);
            greeting(&mut plain).await?;
            timed("STARTTLS", plain.run_command_and_check_ok("STARTTLS", None)).await?;
            let tcp = plain.into_inner();
            let tls = timed("TLS handshake", connector.connect(name, tcp)).await?;
            Client::new(tls)
        }
    };
    let session = match tokio::time::timeout(
        COMMAND_TIMEOUT,
        client.login(&settings.imap_username, password),
    )
    .await
    {
        Ok(Ok(session)) => session,
        Ok(Err((e, _))) => return Err(format!("signing in as {}: {e}", settings.imap_username)),
        Err(_) => return Err("signing in: no answer".into()),
    };
    Ok(session)
}

async fn greeting<T>(client: &mut Client<T>) -> Result<(), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match timed("reading the server greeting", client.read_response()).await? {
        Some(_) => Ok(()),
        None => Err("the server closed the connection before greeting".into()),
    }
}

/// Follows the mailbox on an open session; returns why it stopped.
async fn follow(
    core: &Arc<Core>,
    id: u64,
    settings: &EmailSettings,
    mut session: Session,
) -> String {
    let mailbox = match timed(
        "selecting the mailbox",
        session.select(&settings.imap_mailbox),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => return e,
    };
    let uid_validity = mailbox.uid_validity.unwrap_or(0);
    let idle = match timed("asking for capabilities", session.capabilities()).await {
        Ok(caps) => caps.has_str("IDLE"),
        Err(e) => return e,
    };
    let poll = Duration::from_secs(settings.poll_interval_secs.max(5));
    // A check's success is stored on the first one of a connection and then every few minutes:
    // enough to show "last checked" after a restart without a write per check.
    let mut remembered: Option<tokio::time::Instant> = None;
    loop {
        if let Err(e) = fetch_new(core, id, &mut session, uid_validity).await {
            return e;
        }
        if remembered.is_none_or(|at| at.elapsed() >= REMEMBER_SUCCESS_EVERY) {
            remember(core, id, super::Health::Checked);
            remembered = Some(tokio::time::Instant::now());
        }
        let now = core.now();
        core.channel_status.update(id, |s| {
            s.state = if idle { "idle" } else { "polling" }.into();
            s.last_success_at = Some(now);
            s.idle_supported = idle;
            s.uid_validity = Some(uid_validity);
        });
        if idle {
            let mut handle = session.idle();
            if let Err(e) = timed("starting IDLE", handle.init()).await {
                return e;
            }
            let (wait, stop) = handle.wait_with_timeout(poll.min(MAX_IDLE));
            let woke = wait.await;
            drop(stop);
            if let Err(e) = woke {
                return format!("waiting with IDLE: {e}");
            }
            session = match timed("ending IDLE", handle.done()).await {
                Ok(s) => s,
                Err(e) => return e,
            };
        } else {
            tokio::time::sleep(poll).await;
            if let Err(e) = timed("NOOP", session.noop()).await {
                return e;
            }
        }
    }
}

/// Ingests every message past the last UID stored, in UID order.
async fn fetch_new(
    core: &Arc<Core>,
    id: u64,
    session: &mut Session,
    uid_validity: u32,
) -> Result<(), String> {
    let state = core
        .store
        .read(move |txn| super::mailbox_state(txn, id))
        .await
        .map_err(|e| e.to_string())?;
    // A new UIDVALIDITY means the UIDs were renumbered: read everything again; the Message-ID
    // recognises what was stored before.
    let last = if state.uid_validity == uid_validity {
        state.last_uid
    } else {
        0
    };
    let found = timed(
        "searching for new messages",
        session.uid_search(format!("UID {}:*", last.saturating_add(1))),
    )
    .await?;
    // `n:*` always includes the newest message, even when its UID is below n.
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
    uids.sort_unstable();
    core.channel_status.update(id, |s| {
        s.last_uid = Some(last.max(uids.last().copied().unwrap_or(0)))
    });
    for chunk in uids.chunks(BATCH) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut fetched = timed("fetching messages", async {
            session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        fetched.sort_by_key(|f| f.uid);
        for message in fetched {
            let Some(uid) = message.uid else { continue };
            if uid <= last {
                continue;
            }
            let raw = message.body().unwrap_or_default().to_vec();
            super::receive(core, id, raw, Some((uid_validity, uid)))
                .await
                .map_err(|e| format!("storing message {uid}: {e}"))?;
        }
    }
    Ok(())
}
