//! The TLS configuration: rustls with the `ring` provider, from PEM files.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config;

pub fn acceptor(tls: &config::Tls) -> Result<TlsAcceptor, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("TLS: cannot read {}: {e}", p.display()))
    };
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&read(&tls.cert)?) {
        if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
            certs.push(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
        }
    }
    if certs.is_empty() {
        return Err(format!("TLS: no certificate in {}", tls.cert.display()));
    }
    let key = ureq::tls::parse_pem(&read(&tls.key)?)
        .find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => {
                rustls::pki_types::PrivateKeyDer::try_from(k.der().to_vec()).ok()
            }
            _ => None,
        })
        .ok_or_else(|| format!("TLS: no private key in {}", tls.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS: certificate and key do not work together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
