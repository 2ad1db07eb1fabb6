//! TLS (placeholder).
use std::sync::Arc;

use crate::error::{Error, Result};

/// TLS settings from a PEM.
pub(crate) struct TlsSetup {
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
}

impl TlsSetup {
    pub(crate) fn from_pem(_pem: &str) -> Result<TlsSetup> {
        Err(Error::Tls("TLS is not available yet".into()))
    }
    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
}

/// Placeholder.
pub fn generate_cert_pem(_cn: &str) -> Result<String> {
    Err(Error::Tls("not available yet".into()))
}
