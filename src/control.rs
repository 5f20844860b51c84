//! The local control socket (`<data_dir>/control.sock`, mode 0600): how `allhands backup`,
//! `db verify` and `audit verify` reach a running server, which holds the store's lock.
//!
//! Protocol: the client sends one command line; the server answers `OK <length>\n` followed by
//! that many bytes, or `ERR <message>\n`. Access is the file's permission: only the server's user
//! (and root) can connect.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::UnixListener;

use crate::audit::Actor;
use crate::state::Core;

pub const SOCKET_FILE: &str = "control.sock";

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Serves the control socket until the returned task is aborted.
pub fn serve(core: Arc<Core>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(&core.data_dir);
    // We hold the data directory's lock, so a leftover socket is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let core = core.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(core, stream).await {
                    tracing::warn!(error = %e, "control connection failed");
                }
            });
        }
    }))
}

async fn handle(core: Arc<Core>, stream: tokio::net::UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    AsyncBufReader::new(read.take(256))
        .read_line(&mut line)
        .await?;
    let answer = answer(&core, line.trim()).await;
    match answer {
        Ok(Payload::Bytes(bytes)) => {
            write
                .write_all(format!("OK {}\n", bytes.len()).as_bytes())
                .await?;
            write.write_all(&bytes).await?;
        }
        Ok(Payload::File(path)) => {
            let mut file = tokio::fs::File::open(&path).await?;
            let _ = std::fs::remove_file(&path);
            let len = file.metadata().await?.len();
            write.write_all(format!("OK {len}\n").as_bytes()).await?;
            tokio::io::copy(&mut file, &mut write).await?;
        }
        Err(message) => {
            write
                .write_all(format!("ERR {}\n", message.replace('\n', " ")).as_bytes())
                .await?
        }
    }
    write.shutdown().await
}

enum Payload {
    Bytes(Vec<u8>),
    File(PathBuf),
}

async fn answer(core: &Arc<Core>, command: &str) -> Result<Payload, String> {
    match command {
        "PING" => Ok(Payload::Bytes(b"pong".to_vec())),
        "BACKUP" => {
            let tmp = core.data_dir.join("tmp");
            std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
            let file = tmp.join(format!("backup-{}.redb", crate::auth::random_token(8)));
            let actor = Actor {
                source: "local control socket".into(),
                ..Actor::system("allhands backup")
            };
            crate::ops::backup(core, &actor, file.clone())
                .await
                .map_err(|e| e.message)?;
            Ok(Payload::File(file))
        }
        "VERIFY" => {
            let store = core.store.clone();
            let report =
                tokio::task::spawn_blocking(move || crate::ops::verify_store(&store, false))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            serde_json::to_vec(&report)
                .map(Payload::Bytes)
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Client side. `Ok(None)` means no server is listening on this data directory.
pub fn request(
    data_dir: &Path,
    command: &str,
    mut sink: impl Write,
) -> Result<Option<u64>, String> {
    let path = socket_path(data_dir);
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(format!("cannot connect to {}: {e}", path.display())),
    };
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).map_err(|e| e.to_string())?;
    if let Some(message) = header.strip_prefix("ERR ") {
        return Err(message.trim().to_string());
    }
    let length: u64 = header
        .strip_prefix("OK ")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("unexpected answer from the server: {header:?}"))?;
    let copied = std::io::copy(&mut reader.take(length), &mut sink).map_err(|e| e.to_string())?;
    if copied != length {
        return Err(format!("the server sent {copied} of {length} bytes"));
    }
    Ok(Some(length))
}
