//! The roots outbound TLS is verified against: the system's trust store (so a corporate CA works),
//! or Mozilla's roots where the system has none, read once for the clients built together and only
//! when a TLS connection needs them.
//!
//! Each reqwest client with its own verifier reads and parses the whole system store when it is
//! built (rustls-platform-verifier's `Verifier::new`), and the upstream client did too: three
//! copies at every start, about 630 kB of idle memory and 40 ms before readiness on Debian's
//! store of 144 roots (docs/performance.md, "Idle RSS (issue 11)"), even for a configuration that
//! never speaks TLS. One `Roots` shared by the clients holds one copy, read on first use or in the
//! blocking pool when [`Roots::warm`] says a configuration will need it.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A server certificate verifier over the system's roots (else Mozilla's), read at most once.
/// Cheap to clone: clones share the roots.
#[derive(Debug, Clone)]
pub(crate) struct Roots(Arc<Lazy>);

#[derive(Debug)]
struct Lazy {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl Roots {
    /// Roots not read yet.
    pub(crate) fn new() -> Self {
        let provider = Arc::clone(rustls::ClientConfig::builder().crypto_provider());
        Self(Arc::new(Lazy {
            provider,
            verifier: OnceLock::new(),
        }))
    }

    /// Starts reading the roots now, in the blocking pool (reading the store is file I/O, kept off
    /// the runtime's threads), or reads them at once when there is no runtime.
    pub(crate) fn warm(&self) {
        if self.0.verifier.get().is_some() {
            return;
        }
        let roots = self.clone();
        let read = move || {
            let _ = roots.verifier();
        };
        match tokio::runtime::Handle::try_current() {
            // Nothing awaits the task: a handshake that comes first waits on the same OnceLock.
            Ok(runtime) => drop(runtime.spawn_blocking(read)),
            Err(_) => read(),
        }
    }

    /// A client configuration verifying servers against these roots, offering `alpn` in order.
    pub(crate) fn client_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self.clone()))
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    fn verifier(&self) -> &Result<Arc<WebPkiServerVerifier>, rustls::Error> {
        self.0.verifier.get_or_init(|| {
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::debug!(%error, "a system CA certificate could not be read");
            }
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(native.certs);
            if store.is_empty() {
                tracing::debug!("no system CA certificates; using the bundled Mozilla roots");
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                Arc::clone(&self.0.provider),
            )
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))
        })
    }
}

/// The certificate chain goes to webpki with the roots; signatures need no roots, so checking them
/// never reads the store.
impl ServerCertVerifier for Roots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()
            .as_ref()
            .map_err(Clone::clone)?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Roots;
    use crate::client::upstream_client;
    use crate::token::EntraClient;

    #[test]
    fn building_the_clients_reads_no_roots() {
        let roots = Roots::new();
        upstream_client(Duration::from_secs(1), &roots).unwrap();
        EntraClient::with_roots(Duration::from_secs(1), &roots).unwrap();
        assert!(roots.0.verifier.get().is_none());
    }

    #[tokio::test]
    async fn warming_reads_the_roots_once_for_every_clone() {
        let roots = Roots::new();
        let clone = roots.clone();
        roots.warm();
        let deadline = Instant::now() + Duration::from_secs(10);
        while clone.0.verifier.get().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let read = clone.0.verifier.get().expect("the roots were read");
        assert!(read.is_ok(), "{read:?}");
        clone.warm();
        assert!(std::ptr::eq(read, roots.verifier()));
    }
}
