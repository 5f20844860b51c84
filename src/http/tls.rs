//! TLS with rustls: certificates from files (reloaded on SIGHUP without dropping connections)
//! or a self-signed certificate generated on first start and kept in the data directory.
//! Only TLS 1.3 and TLS 1.2 with forward-secret AEAD suites are offered.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, TlsMode};
use crate::error::{AppError, AppResult};

pub const SELF_SIGNED_CERT: &str = "tls/self-signed.crt";
pub const SELF_SIGNED_KEY: &str = "tls/self-signed.key";

/// The certificate every new handshake gets; swapped atomically on reload.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertResolver {
    pub fn load(cert_file: &Path, key_file: &Path) -> AppResult<Arc<CertResolver>> {
        let key = load_certified_key(cert_file, key_file)?;
        Ok(Arc::new(CertResolver {
            current: ArcSwap::from_pointee(key),
            cert_file: cert_file.into(),
            key_file: key_file.into(),
        }))
    }

    /// Re-reads the files; on any problem the current certificate stays in use.
    pub fn reload(&self) -> AppResult<()> {
        let key = load_certified_key(&self.cert_file, &self.key_file)?;
        self.current.store(Arc::new(key));
        Ok(())
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::{cipher_suite as cs, default_provider};
    let mut provider = default_provider();
    provider.cipher_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(provider)
}

fn load_certified_key(cert_file: &Path, key_file: &Path) -> AppResult<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| {
            AppError::internal(format!(
                "cannot read certificate {}: {e}",
                cert_file.display()
            ))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            AppError::internal(format!(
                "cannot parse certificate {}: {e}",
                cert_file.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(AppError::internal(format!(
            "{} holds no certificate",
            cert_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        AppError::internal(format!(
            "cannot read private key {}: {e}",
            key_file.display()
        ))
    })?;
    let signing_key = provider().key_provider.load_private_key(key).map_err(|e| {
        AppError::internal(format!(
            "unsupported private key in {}: {e}",
            key_file.display()
        ))
    })?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|e| {
        AppError::internal(format!(
            "{} does not belong to {}: {e}",
            key_file.display(),
            cert_file.display()
        ))
    })?;
    Ok(certified)
}

/// Makes the self-signed certificate on first start; later starts reuse it.
pub fn ensure_self_signed(config: &Config) -> AppResult<(PathBuf, PathBuf)> {
    let dir = &config.storage.data_dir;
    let cert = dir.join(SELF_SIGNED_CERT);
    let key = dir.join(SELF_SIGNED_KEY);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = config.server.listen.ip();
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    names.extend(config.tls.self_signed_names.iter().cloned());
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| AppError::internal(format!("invalid certificate name: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "AllHands self-signed");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "AllHands");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(825);
    let key_pair = rcgen::KeyPair::generate()
        .map_err(|e| AppError::internal(format!("cannot generate a key: {e}")))?;
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| AppError::internal(format!("cannot sign the certificate: {e}")))?;
    std::fs::create_dir_all(dir.join("tls"))?;
    crate::storage::write_private_file(&key, key_pair.serialize_pem().as_bytes())?;
    crate::storage::write_private_file(&cert, certificate.pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

/// The resolver for the configured mode, or `None` when TLS is off behind a proxy.
pub fn resolver(config: &Config) -> AppResult<Option<Arc<CertResolver>>> {
    match config.tls.mode {
        TlsMode::OffBehindProxy => Ok(None),
        TlsMode::SelfSigned => {
            let (cert, key) = ensure_self_signed(config)?;
            CertResolver::load(&cert, &key).map(Some)
        }
        TlsMode::Files => {
            let cert = config
                .tls
                .cert_file
                .as_deref()
                .ok_or_else(|| AppError::internal("tls.cert_file is not set"))?;
            let key = config
                .tls
                .key_file
                .as_deref()
                .ok_or_else(|| AppError::internal("tls.key_file is not set"))?;
            CertResolver::load(cert, key).map(Some)
        }
    }
}

pub fn server_config(resolver: Arc<CertResolver>) -> AppResult<rustls::ServerConfig> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| AppError::internal(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(config)
}
