//! Inbound TLS: the server certificate chain and key, and the CA client certificates must chain to
//! (mutual TLS), read into a rustls server configuration. The files are watched for renewal.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::validator::Validator;
use super::{ConfigError, RawTls, WatchedFile};
use crate::digest::content_fingerprint;

/// Reads `[server.tls]`: the certificate chain and key, and the CA that client certificates
/// must chain to (mutual TLS). The files are watched: a renewed certificate is picked up.
pub(super) fn server_config(
    v: &mut Validator<'_>,
    raw: RawTls,
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let mut read = |field: &str, path: &Path| -> Result<Vec<u8>, ConfigError> {
        let path = v.base.join(path);
        let content = crate::file::read(&path).map_err(|e| {
            v.invalid(
                format!("server.tls.{field}"),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        v.files.push(WatchedFile {
            fingerprint: Some(content_fingerprint(&content)),
            path,
        });
        Ok(content)
    };
    let cert_pem = read("cert", &raw.cert)?;
    let key_pem = read("key", &raw.key)?;
    let ca_pem = raw
        .client_ca
        .as_deref()
        .map(|ca| read("client_ca", ca))
        .transpose()?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .ok()
        .filter(|certs: &Vec<_>| !certs.is_empty())
        .ok_or_else(|| v.invalid("server.tls.cert", "no PEM certificate in the file"))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| v.invalid("server.tls.key", format!("no usable PEM private key: {e}")))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca_pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca_pem) {
                let cert = cert.map_err(|e| v.invalid("server.tls.client_ca", e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| v.invalid("server.tls.client_ca", e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| v.invalid("server.tls.client_ca", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        v.invalid(
            "server.tls",
            format!("the certificate and key do not fit together: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
