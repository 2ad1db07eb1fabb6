//! TLS for aemp connections, with AnyEvent::MP 0.9's certificate scheme
//! (see [AnyEvent::MP::Transport](https://metacpan.org/pod/AnyEvent::MP::Transport)).
//!
//! A node keeps its private key and its certificates in ONE PEM. The first
//! certificate is the node's own, the others complete its chain. Both sides of
//! a connection present their certificate, require one from the peer, and
//! verify the peer against the certificates of their own PEM, which are their
//! only trust anchors. There is no host name check.
//!
//! So nodes that share one self-signed certificate (what 0.9's `aemp gencert`
//! makes: RSA-2048, `CN=AnyEvent::MP`, `CA:TRUE`) trust each other, and with a
//! real CA every node's PEM holds its own key and certificate plus the CA
//! certificate.
//!
//! Which side is the TLS client is decided by the greeting nonces,
//! not by who dialled; this module only provides the two configurations. The
//! client sends the fixed, meaningless server name [`SERVER_NAME`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, Resumption};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ParsedCertificate, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// The server name a TLS client sends. The peer's certificate is never
/// checked against it: aemp nodes are identified by their certificates'
/// trust, not by host names.
pub const SERVER_NAME: &str = "aemp-node";

/// The default common name of a generated certificate, as 0.9's `aemp gencert`.
pub const DEFAULT_COMMON_NAME: &str = "AnyEvent::MP";

/// Validity of generated certificates: ten years (of 365.25 days).
const VALIDITY: Duration = Duration::from_secs(3652 * 24 * 3600 + 12 * 3600);

/// How far back `notBefore` of generated certificates lies, to tolerate
/// peers whose clocks run behind.
const BACKDATE: Duration = Duration::from_secs(24 * 3600);

/// [`SERVER_NAME`] as the [`ServerName`] to pass to a TLS connector.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("SERVER_NAME is a valid DNS name")
}

fn tls_err(text: impl Into<String>) -> Error {
    Error::Tls(text.into())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A node's TLS identity and trust, loaded from its PEM, with the client and
/// server configurations built from it once.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

/// The parts of a PEM that matter here.
struct PemParts {
    key: PrivateKeyDer<'static>,
    certs: Vec<CertificateDer<'static>>,
}

/// Splits a PEM into its private key and certificates, with errors that say
/// what is missing. `what` names the PEM in messages ("PEM", "CA PEM").
fn parse_pem(text: &str, what: &str) -> Result<PemParts> {
    if text.trim().is_empty() {
        return Err(tls_err(format!("the {what} is empty (expected a private key and a certificate)")));
    }
    let mut keys = Vec::new();
    let mut certs = Vec::new();
    let mut sections = 0usize;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = item.map_err(|e| tls_err(format!("malformed {what}: {}", pem_error(&e))))?;
        sections += 1;
        match kind {
            SectionKind::Certificate => certs.push(CertificateDer::from(der)),
            SectionKind::PrivateKey => keys.push(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::RsaPrivateKey => keys.push(PrivateKeyDer::Pkcs1(der.into())),
            SectionKind::EcPrivateKey => keys.push(PrivateKeyDer::Sec1(der.into())),
            _ => {}
        }
    }
    let encrypted = text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED");
    if sections == 0 && !encrypted {
        return Err(tls_err(format!(
            "the {what} holds no PEM sections (expected a private key and a certificate)"
        )));
    }
    if keys.len() > 1 {
        return Err(tls_err(format!("the {what} holds {} private keys, expected one", keys.len())));
    }
    let Some(key) = keys.pop() else {
        return Err(tls_err(if encrypted {
            format!("the private key in the {what} is encrypted; aemp needs an unencrypted key")
        } else {
            format!("the {what} holds no private key (expected PKCS#8, PKCS#1 RSA or SEC1 EC)")
        }));
    };
    if certs.is_empty() {
        return Err(tls_err(format!("the {what} holds no certificate")));
    }
    Ok(PemParts { key, certs })
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("missing {:?}", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad section start {:?}", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

impl TlsSetup {
    /// Loads a node's PEM: one unencrypted private key (PKCS#8 `PRIVATE KEY`,
    /// PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`) and one or more
    /// certificates, in any order. The first certificate is the node's own
    /// and must match the key; the others are sent along as its chain. Every
    /// certificate in the PEM is trusted for verifying peers: a peer may
    /// present any of them as its own (the shared self-signed case), and
    /// those with `CA:TRUE` are the anchors of the chains peers present.
    ///
    /// Errors are [`Error::Tls`] naming the problem: no key, no certificate,
    /// an unusable key, a key that does not match the first certificate, a
    /// certificate that cannot be parsed.
    pub fn from_pem(pem: &str) -> Result<TlsSetup> {
        let PemParts { key, certs } = parse_pem(pem, "PEM")?;
        let provider = provider();

        let signing_key = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| tls_err(format!("unusable private key in the PEM: {e}")))?;
        for (i, cert) in certs.iter().enumerate() {
            ParsedCertificate::try_from(cert)
                .map_err(|e| tls_err(format!("certificate {} in the PEM cannot be used: {e}", i + 1)))?;
        }
        match CertifiedKey::new(certs.clone(), signing_key).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(tls_err("the private key in the PEM does not match its first certificate"))
            }
            Err(e) => return Err(tls_err(format!("cannot check the key against the certificate: {e}"))),
        }

        let verifier = build_verifier(&certs, &provider)?;

        let client = Arc::new(build_client_config(&provider, &verifier, &certs, &key, VERSIONS)?);

        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(|e| tls_err(format!("server configuration: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| tls_err(format!("server configuration: {e}")))?;
        // Every connection does a full handshake with certificates: sessions
        // are not resumed, so no tickets are sent and nothing is cached.
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        Ok(TlsSetup { client, server: Arc::new(server) })
    }

    /// The configuration for the side that is the TLS client (the lower
    /// nonce). It presents our certificate and verifies the peer's
    /// against our PEM. Connect with [`server_name()`].
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The configuration for the side that is the TLS server. It presents our
    /// certificate, requires one from the peer, and verifies it against our
    /// PEM.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }
}

/// The trust anchors for chain verification among `certs`: those that may
/// issue certificates (see [`der::TbsInfo::may_issue`]).
fn issuing_roots(certs: &[CertificateDer<'static>], what: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        let info = der::tbs_info(cert)
            .ok_or_else(|| tls_err(format!("certificate {} in the {what} cannot be parsed", i + 1)))?;
        if info.may_issue() {
            roots.add(cert.clone()).map_err(|e| {
                tls_err(format!("certificate {} in the {what} cannot be a trust anchor: {e}", i + 1))
            })?;
        }
    }
    Ok(roots)
}

/// The verifier for both roles: every certificate of our PEM is trusted as
/// it is, and those that may issue are the anchors for peers' chains.
fn build_verifier(
    certs: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<PeerVerifier>> {
    let roots = issuing_roots(certs, "PEM")?;
    Ok(Arc::new(PeerVerifier::new(certs.to_vec(), Arc::new(roots), provider.clone())?))
}

fn build_client_config(
    provider: &Arc<CryptoProvider>,
    verifier: &Arc<PeerVerifier>,
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ClientConfig> {
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| tls_err(format!("client configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_auth_cert(certs.to_vec(), key.clone_key())
        .map_err(|e| tls_err(format!("client configuration: {e}")))?;
    // The server name is the same for every peer, so a session cache keyed
    // by it would be meaningless: always do a full handshake.
    client.resumption = Resumption::disabled();
    Ok(client)
}

/// Verifies a peer's certificate against our PEM, in either TLS role.
///
/// The rule, the same for both roles:
///
/// 1. If the peer's end-entity certificate is byte-identical to one of our
///    trust anchors, it is accepted (after a check of its validity period).
///    This is 0.9's shared self-signed certificate: it has `CA:TRUE`, and
///    webpki refuses a CA certificate as an end entity
///    (`CaUsedAsEndEntity`), so it must not reach webpki. Trusting a
///    certificate we hold as a trust anchor is exactly what OpenSSL does for
///    0.9; proof that the peer holds its private key comes from the
///    handshake signature, which is always verified.
/// 2. Otherwise webpki verifies the chain the peer sent up to one of our
///    certificates that may issue others (`CA:TRUE`, or a self-signed v1
///    certificate: what OpenSSL accepts as an issuer; webpki itself would
///    let any anchor issue), checking signatures, validity, basic
///    constraints of the chain, and the EKU for the peer's role.
///    No host name is checked, and not by a trick: for a TLS server peer we
///    call [`verify_server_cert_signed_by_trust_anchor`], which does the
///    path validation only (the name check is the separate
///    `verify_server_name`, which we never call); for a TLS client peer we
///    use [`WebPkiClientVerifier`], which has no name to check.
#[derive(Debug)]
struct PeerVerifier {
    anchors: Vec<CertificateDer<'static>>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    /// webpki's client chain check; `None` when no certificate of ours may
    /// issue, so only rule 1 can accept.
    client_chain: Option<Arc<dyn ClientCertVerifier>>,
}

impl PeerVerifier {
    fn new(
        anchors: Vec<CertificateDer<'static>>,
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> Result<PeerVerifier> {
        let client_chain = if roots.is_empty() {
            None
        } else {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| tls_err(format!("certificate verifier: {e}")))?;
            Some(verifier)
        };
        Ok(PeerVerifier { anchors, roots, provider, client_chain })
    }

    /// Rule 1: the peer presents one of our own trust anchors.
    fn is_anchor(&self, end_entity: &CertificateDer<'_>) -> bool {
        self.anchors.iter().any(|a| a.as_ref() == end_entity.as_ref())
    }
}

/// Checks the validity period of a certificate that is trusted as it is.
fn check_validity(cert: &CertificateDer<'_>, now: UnixTime) -> std::result::Result<(), rustls::Error> {
    let info = der::tbs_info(cert).ok_or(CertificateError::BadEncoding)?;
    let (not_before, not_after) = info.validity;
    let time = now.as_secs() as i64;
    let unix = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t.max(0) as u64));
    if time < not_before {
        return Err(CertificateError::NotValidYetContext { time: now, not_before: unix(not_before) }.into());
    }
    if time > not_after {
        return Err(CertificateError::ExpiredContext { time: now, not_after: unix(not_after) }.into());
    }
    Ok(())
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self.is_anchor(end_entity) {
            check_validity(end_entity, now)?;
        } else if self.roots.is_empty() {
            return Err(CertificateError::UnknownIssuer.into());
        } else {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No CA hints: a client (0.9's OpenSSL or rustls) sends its one
    /// configured certificate anyway, and an empty list means "send it".
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        if self.is_anchor(end_entity) {
            check_validity(end_entity, now)?;
            Ok(ClientCertVerified::assertion())
        } else if let Some(chain) = &self.client_chain {
            chain.verify_client_cert(end_entity, intermediates, now)
        } else {
            Err(CertificateError::UnknownIssuer.into())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A fresh ECDSA P-256 key pair and certificate parameters for it: valid for
/// [`VALIDITY`] from [`BACKDATE`] ago, usable for TLS client and server
/// authentication.
fn new_key_and_params() -> Result<(rcgen::CertificateParams, rcgen::KeyPair)> {
    let now =
        SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| tls_err("system clock is before 1970"))?;
    let start = now.saturating_sub(BACKDATE);
    let mut params = rcgen::CertificateParams::default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + start;
    params.not_after = epoch + start + VALIDITY;
    params.extended_key_usages =
        vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().map_err(|e| tls_err(format!("key generation failed: {e}")))?;
    Ok((params, key))
}

fn subject(common_name: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, common_name);
    dn
}

/// Makes a new ECDSA P-256 key and a self-signed certificate for it, the
/// in-process counterpart of 0.9's `aemp gencert` (which made RSA-2048;
/// `ring` cannot generate RSA keys, and 0.9 peers accept ECDSA).
///
/// The certificate has the given common name (call sites default to
/// [`DEFAULT_COMMON_NAME`]), is valid for ten years (from a day ago), has
/// `CA:TRUE` without a path length limit so it can also sign node
/// certificates ([`generate_signed_by`]), and key usages for signing
/// certificates and for TLS client and server authentication.
///
/// Returns one PEM: the private key (PKCS#8), then the certificate. Nodes
/// configured with the same PEM trust each other.
pub fn generate_cert_pem(common_name: &str) -> Result<String> {
    let (mut params, key) = new_key_and_params()?;
    params.distinguished_name = subject(common_name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert =
        params.self_signed(&key).map_err(|e| tls_err(format!("certificate generation failed: {e}")))?;
    Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
}

/// Makes a node certificate signed by a CA, for operators and tests.
///
/// `ca_pem` holds the CA's private key and certificate (its first
/// certificate is the CA's; any others are its chain), for example from
/// [`generate_cert_pem`] or 0.9's `aemp gencert`. The new certificate has a
/// fresh ECDSA P-256 key, the given common name, `CA:FALSE`, TLS client and
/// server usages and ten years of validity.
///
/// Returns one PEM: the node's private key, the node's certificate, then the
/// certificates of `ca_pem`, so that the node presents its chain and trusts
/// every certificate signed by the CA. The new certificate is checked to
/// verify against the CA certificate before it is returned.
pub fn generate_signed_by(ca_pem: &str, common_name: &str) -> Result<String> {
    let (node_key, node, ca_certs) = sign_unchecked(ca_pem, common_name)?;
    let roots = issuing_roots(&ca_certs, "CA PEM")?;
    let node_parsed = ParsedCertificate::try_from(node.der())
        .map_err(|e| tls_err(format!("generated certificate cannot be parsed: {e}")))?;
    let algs = provider().signature_verification_algorithms.all;
    let now = UnixTime::now();
    verify_server_cert_signed_by_trust_anchor(&node_parsed, &roots, &ca_certs[1..], now, algs).map_err(
        |e| {
            tls_err(format!(
                "the new certificate does not verify against the CA certificate ({e}); \
             is it a CA certificate (CA:TRUE) and still valid?"
            ))
        },
    )?;

    let mut out = node_key.serialize_pem();
    out.push_str(&node.pem());
    for cert in &ca_certs {
        out.push_str(&pem_block("CERTIFICATE", cert));
    }
    Ok(out)
}

/// The signing part of [`generate_signed_by`], without checking that the
/// result verifies: the node key, the node certificate and the
/// certificates of `ca_pem`.
fn sign_unchecked(
    ca_pem: &str,
    common_name: &str,
) -> Result<(rcgen::KeyPair, rcgen::Certificate, Vec<CertificateDer<'static>>)> {
    let PemParts { key: ca_key, certs: ca_certs } = parse_pem(ca_pem, "CA PEM")?;
    let ca_cert = &ca_certs[0];
    let ca_parsed = ParsedCertificate::try_from(ca_cert)
        .map_err(|e| tls_err(format!("the CA certificate cannot be used: {e}")))?;
    let ca_key = rcgen_key(&ca_key)?;
    if ca_key.public_key_der() != ca_parsed.subject_public_key_info().as_ref() {
        return Err(tls_err("the private key in the CA PEM does not match its first certificate"));
    }
    let ca_info = der::tbs_info(ca_cert).ok_or_else(|| tls_err("the CA certificate cannot be parsed"))?;
    let ca_subject = der::rcgen_name(ca_info.subject_content)
        .map_err(|e| tls_err(format!("the CA certificate's subject name cannot be used: {e}")))?;

    // rcgen signs with an issuer given as a `Certificate`; only its subject
    // name is taken from it, so a throwaway self-signed one carries the CA's.
    let mut issuer_params = rcgen::CertificateParams::default();
    issuer_params.distinguished_name = ca_subject;
    let issuer = issuer_params
        .self_signed(&ca_key)
        .map_err(|e| tls_err(format!("cannot sign with the CA key: {e}")))?;

    let (mut params, node_key) = new_key_and_params()?;
    params.distinguished_name = subject(common_name);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let node = params
        .signed_by(&node_key, &issuer, &ca_key)
        .map_err(|e| tls_err(format!("cannot sign with the CA key: {e}")))?;

    let node_info =
        der::tbs_info(node.der()).ok_or_else(|| tls_err("generated certificate cannot be parsed"))?;
    if node_info.issuer != ca_info.subject {
        return Err(tls_err("the CA certificate's subject name cannot be reproduced exactly"));
    }
    Ok((node_key, node, ca_certs))
}

/// Loads a private key for signing with rcgen, which (with `ring`) takes
/// only PKCS#8: PKCS#1 and SEC1 keys are wrapped into PKCS#8 first.
fn rcgen_key(key: &PrivateKeyDer<'_>) -> Result<rcgen::KeyPair> {
    let candidates: Vec<Vec<u8>> = match key {
        PrivateKeyDer::Pkcs8(k) => vec![k.secret_pkcs8_der().to_vec()],
        PrivateKeyDer::Pkcs1(k) => vec![der::pkcs8_from_pkcs1(k.secret_pkcs1_der())],
        PrivateKeyDer::Sec1(k) => der::pkcs8_from_sec1(k.secret_sec1_der()),
        _ => vec![],
    };
    let mut last = None;
    for der in candidates {
        match rcgen::KeyPair::try_from(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))) {
            Ok(kp) => return Ok(kp),
            Err(e) => last = Some(e),
        }
    }
    Err(tls_err(match last {
        Some(e) => format!("the CA private key cannot be used for signing: {e}"),
        None => "the CA private key has an unsupported format".to_string(),
    }))
}

/// PEM-encodes DER bytes (base64, 64 characters a line).
fn pem_block(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// Just enough DER to read a certificate's validity and names, and to wrap
/// PKCS#1/SEC1 keys into PKCS#8.
mod der {
    /// One tag-length-value element.
    pub(super) struct Tlv<'a> {
        pub tag: u8,
        pub content: &'a [u8],
        pub whole: &'a [u8],
    }

    /// Reads one element (single-byte tags, definite lengths up to 4 bytes).
    pub(super) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
        let (&tag, rest) = input.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |len, &b| (len << 8) | usize::from(b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let header = input.len() - rest.len();
        Some((Tlv { tag, content: &rest[..len], whole: &input[..header + len] }, &rest[len..]))
    }

    /// Reads one element with the expected tag.
    fn expect(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
        read(input).filter(|(tlv, _)| tlv.tag == tag)
    }

    /// Encodes one element.
    pub(super) fn write(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// What we need from a certificate's `tbsCertificate`.
    pub(super) struct TbsInfo<'a> {
        /// `notBefore` and `notAfter`, seconds since 1970.
        pub validity: (i64, i64),
        /// The issuer Name, tag and length included.
        pub issuer: &'a [u8],
        /// The subject Name, tag and length included.
        pub subject: &'a [u8],
        /// The contents of the subject Name (its RDNs).
        pub subject_content: &'a [u8],
        /// The certificate's version field (0 for v1, 2 for v3).
        pub version: u8,
        /// `cA` of the basic constraints extension, if present.
        pub basic_ca: Option<bool>,
    }

    impl TbsInfo<'_> {
        /// Whether the certificate may issue others, as OpenSSL decides it:
        /// basic constraints with `cA` TRUE, or a self-signed v1 certificate
        /// (which cannot carry extensions).
        pub(super) fn may_issue(&self) -> bool {
            self.basic_ca == Some(true) || (self.version == 0 && self.issuer == self.subject)
        }
    }

    /// Parses a DER certificate as far as the subject name.
    pub(super) fn tbs_info(cert: &[u8]) -> Option<TbsInfo<'_>> {
        let (certificate, _) = expect(cert, 0x30)?;
        let (tbs, _) = expect(certificate.content, 0x30)?;
        let mut rest = tbs.content;
        let mut version = 0;
        if rest.first() == Some(&0xa0) {
            let (explicit, after) = read(rest)?;
            let (number, _) = expect(explicit.content, 0x02)?;
            version = *number.content.last()?;
            rest = after;
        }
        let (_serial, rest) = expect(rest, 0x02)?;
        let (_signature, rest) = expect(rest, 0x30)?;
        let (issuer, rest) = expect(rest, 0x30)?;
        let (validity, rest) = expect(rest, 0x30)?;
        let (subject, rest) = expect(rest, 0x30)?;
        let (_spki, mut rest) = expect(rest, 0x30)?;
        let (not_before, after) = read(validity.content)?;
        let (not_after, _) = read(after)?;
        let mut basic_ca = None;
        while let Some((field, after)) = read(rest) {
            rest = after;
            if field.tag != 0xa3 {
                continue; // issuerUniqueID, subjectUniqueID
            }
            let (extensions, _) = expect(field.content, 0x30)?;
            let mut list = extensions.content;
            while !list.is_empty() {
                let (extension, after) = expect(list, 0x30)?;
                list = after;
                let (oid, mut value) = expect(extension.content, 0x06)?;
                if oid.content != OID_BASIC_CONSTRAINTS {
                    continue;
                }
                if value.first() == Some(&0x01) {
                    value = read(value)?.1; // critical
                }
                let (octets, _) = expect(value, 0x04)?;
                let (constraints, _) = expect(octets.content, 0x30)?;
                basic_ca = Some(match expect(constraints.content, 0x01) {
                    Some((flag, _)) => flag.content.first().is_some_and(|&b| b != 0),
                    None => false,
                });
            }
        }
        Some(TbsInfo {
            validity: (time(&not_before)?, time(&not_after)?),
            issuer: issuer.whole,
            subject: subject.whole,
            subject_content: subject.content,
            version,
            basic_ca,
        })
    }

    /// An X.509 Time (UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime
    /// `YYYYMMDDHHMMSSZ`) as seconds since 1970.
    pub(super) fn time(t: &Tlv<'_>) -> Option<i64> {
        let text = t.content;
        let (year, rest) = match (t.tag, text.len()) {
            (0x17, 13) => {
                let yy = digits(&text[..2])?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
            }
            (0x18, 15) => (digits(&text[..4])?, &text[4..]),
            _ => return None,
        };
        if rest[10] != b'Z' {
            return None;
        }
        let month = digits(&rest[0..2])?;
        let day = digits(&rest[2..4])?;
        let hour = digits(&rest[4..6])?;
        let minute = digits(&rest[6..8])?;
        let second = digits(&rest[8..10])?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        Some(days_since_1970(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
    }

    fn digits(text: &[u8]) -> Option<i64> {
        text.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    }

    fn is_leap(year: i64) -> bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// Days from 1970-01-01 to the given date of the Gregorian calendar
    /// (year 1 or later).
    pub(super) fn days_since_1970(year: i64, month: i64, day: i64) -> i64 {
        // Leap years in 1..=y.
        let leaps = |y: i64| y / 4 - y / 100 + y / 400;
        const BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let mut days = 365 * (year - 1970) + leaps(year - 1) - leaps(1969);
        days += BEFORE_MONTH[(month - 1) as usize] + day - 1;
        if month > 2 && is_leap(year) {
            days += 1;
        }
        days
    }

    /// Decodes an OBJECT IDENTIFIER's contents into its arcs.
    fn oid_arcs(content: &[u8]) -> Option<Vec<u64>> {
        let mut values = Vec::new();
        let mut value: u64 = 0;
        for (i, &b) in content.iter().enumerate() {
            if value > (u64::MAX >> 7) {
                return None;
            }
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                values.push(value);
                value = 0;
            } else if i + 1 == content.len() {
                return None;
            }
        }
        let (&first, rest) = values.split_first()?;
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let mut arcs = vec![a, b];
        arcs.extend_from_slice(rest);
        Some(arcs)
    }

    /// Converts a Name's RDNs into rcgen's form, keeping attribute order and
    /// string types so that rcgen writes the same bytes again. Supports what
    /// rcgen can express: one attribute per RDN, each attribute type once.
    pub(super) fn rcgen_name(mut rdns: &[u8]) -> Result<rcgen::DistinguishedName, String> {
        use rcgen::DnValue;
        let bad = || "malformed name".to_string();
        let mut dn = rcgen::DistinguishedName::new();
        let mut seen = Vec::new();
        while !rdns.is_empty() {
            let (rdn, rest) = expect(rdns, 0x31).ok_or_else(bad)?;
            rdns = rest;
            let (atv, more) = expect(rdn.content, 0x30).ok_or_else(bad)?;
            if !more.is_empty() {
                return Err("multi-valued RDNs are not supported".into());
            }
            let (oid, rest) = expect(atv.content, 0x06).ok_or_else(bad)?;
            let (value, _) = read(rest).ok_or_else(bad)?;
            let ty = rcgen::DnType::from_oid(&oid_arcs(oid.content).ok_or_else(bad)?);
            if seen.contains(&ty) {
                return Err(format!("attribute {ty:?} appears more than once"));
            }
            seen.push(ty.clone());
            let text = || std::str::from_utf8(value.content).map_err(|_| bad());
            let value = match value.tag {
                0x0c => DnValue::Utf8String(text()?.to_string()),
                0x13 => DnValue::PrintableString(text()?.try_into().map_err(|e| format!("{e}"))?),
                0x16 => DnValue::Ia5String(text()?.try_into().map_err(|e| format!("{e}"))?),
                0x14 => DnValue::TeletexString(text()?.try_into().map_err(|e| format!("{e}"))?),
                0x1e => DnValue::BmpString(
                    rcgen::BmpString::from_utf16be(value.content.to_vec()).map_err(|e| format!("{e}"))?,
                ),
                0x1c => DnValue::UniversalString(
                    rcgen::UniversalString::from_utf32be(value.content.to_vec())
                        .map_err(|e| format!("{e}"))?,
                ),
                tag => return Err(format!("unsupported string type (tag {tag:#04x})")),
            };
            dn.push(ty, value);
        }
        Ok(dn)
    }

    /// 2.5.29.19, basicConstraints.
    const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    const VERSION_0: &[u8] = &[0x02, 0x01, 0x00];
    const OID_RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const NULL: &[u8] = &[0x05, 0x00];
    const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

    fn pkcs8(algorithm: &[u8], private_key: &[u8]) -> Vec<u8> {
        let mut body = VERSION_0.to_vec();
        body.extend(write(0x30, algorithm));
        body.extend(write(0x04, private_key));
        write(0x30, &body)
    }

    /// Wraps a PKCS#1 RSAPrivateKey into PKCS#8.
    pub(super) fn pkcs8_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
        pkcs8(&[OID_RSA_ENCRYPTION, NULL].concat(), pkcs1)
    }

    /// Wraps a SEC1 ECPrivateKey into PKCS#8: with the curve it names, or
    /// with each supported curve to try when it names none.
    pub(super) fn pkcs8_from_sec1(sec1: &[u8]) -> Vec<Vec<u8>> {
        let named = expect(sec1, 0x30).and_then(|(key, _)| {
            let (_version, rest) = expect(key.content, 0x02)?;
            let (_key, rest) = expect(rest, 0x04)?;
            let (params, _) = expect(rest, 0xa0)?;
            let (oid, _) = expect(params.content, 0x06)?;
            Some(oid.whole)
        });
        let curves: Vec<&[u8]> = match named {
            Some(oid) => vec![oid],
            None => vec![OID_P256, OID_P384],
        };
        curves.into_iter().map(|curve| pkcs8(&[OID_EC_PUBLIC_KEY, curve].concat(), sec1)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::ProtocolVersion;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// 0.9 `aemp gencert` style: self-signed RSA-2048, CN=AnyEvent::MP, CA:TRUE
    /// (made with `openssl req -new -nodes -x509 -newkey rsa:2048`, 100 years).
    const RSA_CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIDETCCAfmgAwIBAgIUA4HFvZSkeid1IpcFYleB3dc5LUgwDQYJKoZIhvcNAQEL
BQAwFzEVMBMGA1UEAwwMQW55RXZlbnQ6Ok1QMCAXDTI2MTEyNjIwMzMyNFoYDzIx
MjYxMTAyMjAzMzI0WjAXMRUwEwYDVQQDDAxBbnlFdmVudDo6TVAwggEiMA0GCSqG
SIb3DQEBAQUAA4IBDwAwggEKAoIBAQCeZKHpTFjobzNvwfRLD2MnYNdz6vrlhMvD
18Ttl1IkIvgKx+soX0mxJ8LdI9KYSI+bEgPS/Xz3XWoQfNxLcjQNYRNDvkfVpMzz
O2hho8t1m8Zim79KtNB3dt/gnOYvI558jW0HbhIK0q24+JkDXs+twxCRp2qbmDrA
Fn8RZzWwTKNgq2P7/o+ssuflOr06mOxxBgrrFXbL024ZXRVaeGqWyylQx7or4HUE
zq0RM6G9G73NYqUGWgMc0cgT/zY32SriC9pVVqO13N149oea/n3RCLLtN1rrWrMP
u8bWOsd5F33mGsf/yWE4Y5KVh7VRPE8fhfwLsTqM1AtMk67auHbDAgMBAAGjUzBR
MB0GA1UdDgQWBBS7zuRerD2ziCOLGzRgIti3cM2MgzAfBgNVHSMEGDAWgBS7zuRe
rD2ziCOLGzRgIti3cM2MgzAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA
A4IBAQB90x0tK92TWW5RlRvLV5hC3Zt3a2NhADrEWp+MlyjTf9JU7YmqcR7lm/lP
Lqwin7RJbPTR95JpnpVWshZOzXbyUVzqVuG3AxR+YQOLc/HgSbQtCDjPPKRWQo4j
+K8pZQCa3lW5zQxoiwhEHzAfaDyXcBP/iUfPDW4dkWvE315t2/NKkuSAgTRJyt10
6kZKANd2YhY3lr7TfGsULPOWVEok0q8efiuYDT9mazxeA1bgYnlIbiO1wjsoLAUj
+Vj5Fg4OrMmVpN4c2jLHkPKenFtxPxivXfdPtoem4ec7c6aeRSIuDqlYsa/LRIxf
oJr0mEyFmdxuzwruBMmK9pCDIaym
-----END CERTIFICATE-----
";
    /// The key of [`RSA_CERT`] as PKCS#8 (`BEGIN PRIVATE KEY`).
    const RSA_KEY_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCeZKHpTFjobzNv
wfRLD2MnYNdz6vrlhMvD18Ttl1IkIvgKx+soX0mxJ8LdI9KYSI+bEgPS/Xz3XWoQ
fNxLcjQNYRNDvkfVpMzzO2hho8t1m8Zim79KtNB3dt/gnOYvI558jW0HbhIK0q24
+JkDXs+twxCRp2qbmDrAFn8RZzWwTKNgq2P7/o+ssuflOr06mOxxBgrrFXbL024Z
XRVaeGqWyylQx7or4HUEzq0RM6G9G73NYqUGWgMc0cgT/zY32SriC9pVVqO13N14
9oea/n3RCLLtN1rrWrMPu8bWOsd5F33mGsf/yWE4Y5KVh7VRPE8fhfwLsTqM1AtM
k67auHbDAgMBAAECggEADo3kqtFPIhyFt3E1B2ikjcvCQG6JG2n2Z0p+V+6dp6Bm
9makXxNSbCrhJvzRrxiLyY4AN/T+9KPqyRUQEQavbcNLx9/GLgV0p6z/zGkGmwnz
UsBI9Y5j0XZk3/jK1e4J9BvytsoQcloliGefd8XQg4D3Fssxapa0X04x4uF+93IO
U3f9jnFe3zoKCCm06AMF77/dAwZSsrZcG0g3NTMHh/jLozf2bBCZZCYXOABgQKlN
ppgjUJjVk7lu2pwqUXgUFnvxV0MY7iXPYAoEuMmep44vATsfzmWQQkTKX3ZktLkX
t9LxFvD66K1Vav9XJfTiYTXLjby0WKD/rAnJIVQ+wQKBgQDPTNFQQyNL5Oiyokgo
SuoLmNVUiPB7TVcuTtw62Fflm9d5T+s3BRDjGogZwdghFJWvuhrxSwMKDtnXIUo+
2KrZVsgAm7x7u/Ysj56+QT1XUbe6m+zkRrG4UZTyF/kJvnxbQZam0l09ivIaQdpu
XxNoHDCtRZH04d9qKb7VS78PkwKBgQDDmoM59qC2ygv2FPZG+8JZtlw2DE0KEuNY
dmc9wNzlb+1/XtPFNlOL7ox9dJ02pToITFardBXWxGHEvCor7kFh2B+Nv+AJJTsN
gaRxkvWh5hJeyx8O7+5URxOshGjYCcUIPzo0/g/7ehRzzoA1oaSYMamd3SbrqISO
5blWk+6aEQKBgA6ExMwoR5qTJ7ELKJ6Z0JaLV7WZ+a3JFugJYedFK7LLHWZDsKej
1TDytMGJEAgRFwK9uBFaPZZAwAUPMdIA/sZGC6/vOF46Jd2tGWMd0pwA/ys0rHy4
bs4H+LST9T83diI2D8UTSrB6wMYSAqhkREmwX8Bi9Pv/rdQTpGfv7Cu9AoGACMZZ
tLP3qbuOpc9y7ORGZ7fikxoiKp2GTWWiZAbO4gwPX3NllKdHQDPHYalllBn9bHng
OXjPsf7FVAoM6kOZ80W6xKUi68YbzBNQyTeKhWTI1i/OiOEClA1MOKUH/wkRKbmM
Zuwu0106padR4RYLSDiSH17YbCH3MGHl2phwT8ECgYEAyTrn0cNXAlOMroM5pw+d
MT6OIzxnLhMwxBdOAKt3/L8IoivGNGiI4fYKP2OZSvZbt8gRnBR7yotdZgKOeOoc
0/ZnHPJyGNB68OmG68JRKz9/fkm1sIOoHVIPXHyq+uFyQbbPYRfDJJQSSHR3idgV
DI1LUr4FXedWPf/46+xo8g8=
-----END PRIVATE KEY-----
";
    /// The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    const RSA_KEY_PKCS1: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAnmSh6UxY6G8zb8H0Sw9jJ2DXc+r65YTLw9fE7ZdSJCL4Csfr
KF9JsSfC3SPSmEiPmxID0v18911qEHzcS3I0DWETQ75H1aTM8ztoYaPLdZvGYpu/
SrTQd3bf4JzmLyOefI1tB24SCtKtuPiZA17PrcMQkadqm5g6wBZ/EWc1sEyjYKtj
+/6PrLLn5Tq9OpjscQYK6xV2y9NuGV0VWnhqlsspUMe6K+B1BM6tETOhvRu9zWKl
BloDHNHIE/82N9kq4gvaVVajtdzdePaHmv590Qiy7Tda61qzD7vG1jrHeRd95hrH
/8lhOGOSlYe1UTxPH4X8C7E6jNQLTJOu2rh2wwIDAQABAoIBAA6N5KrRTyIchbdx
NQdopI3LwkBuiRtp9mdKflfunaegZvZmpF8TUmwq4Sb80a8Yi8mOADf0/vSj6skV
EBEGr23DS8ffxi4FdKes/8xpBpsJ81LASPWOY9F2ZN/4ytXuCfQb8rbKEHJaJYhn
n3fF0IOA9xbLMWqWtF9OMeLhfvdyDlN3/Y5xXt86CggptOgDBe+/3QMGUrK2XBtI
NzUzB4f4y6M39mwQmWQmFzgAYECpTaaYI1CY1ZO5btqcKlF4FBZ78VdDGO4lz2AK
BLjJnqeOLwE7H85lkEJEyl92ZLS5F7fS8Rbw+uitVWr/VyX04mE1y428tFig/6wJ
ySFUPsECgYEAz0zRUEMjS+TosqJIKErqC5jVVIjwe01XLk7cOthX5ZvXeU/rNwUQ
4xqIGcHYIRSVr7oa8UsDCg7Z1yFKPtiq2VbIAJu8e7v2LI+evkE9V1G3upvs5Eax
uFGU8hf5Cb58W0GWptJdPYryGkHabl8TaBwwrUWR9OHfaim+1Uu/D5MCgYEAw5qD
OfagtsoL9hT2RvvCWbZcNgxNChLjWHZnPcDc5W/tf17TxTZTi+6MfXSdNqU6CExW
q3QV1sRhxLwqK+5BYdgfjb/gCSU7DYGkcZL1oeYSXssfDu/uVEcTrIRo2AnFCD86
NP4P+3oUc86ANaGkmDGpnd0m66iEjuW5VpPumhECgYAOhMTMKEeakyexCyiemdCW
i1e1mfmtyRboCWHnRSuyyx1mQ7Cno9Uw8rTBiRAIERcCvbgRWj2WQMAFDzHSAP7G
Rguv7zheOiXdrRljHdKcAP8rNKx8uG7OB/i0k/U/N3YiNg/FE0qwesDGEgKoZERJ
sF/AYvT7/63UE6Rn7+wrvQKBgAjGWbSz96m7jqXPcuzkRme34pMaIiqdhk1lomQG
zuIMD19zZZSnR0Azx2GpZZQZ/Wx54Dl4z7H+xVQKDOpDmfNFusSlIuvGG8wTUMk3
ioVkyNYvzojhApQNTDilB/8JESm5jGbsLtNdOqWnUeEWC0g4kh9e2Gwh9zBh5dqY
cE/BAoGBAMk659HDVwJTjK6DOacPnTE+jiM8Zy4TMMQXTgCrd/y/CKIrxjRoiOH2
Cj9jmUr2W7fIEZwUe8qLXWYCjnjqHNP2ZxzychjQevDphuvCUSs/f35JtbCDqB1S
D1x8qvrhckG2z2EXwySUEkh0d4nYFQyNS1K+BV3nVj3/+OvsaPIP
-----END RSA PRIVATE KEY-----
";
    /// A SEC1 P-256 key (`BEGIN EC PRIVATE KEY`, by `openssl ecparam -genkey`).
    const EC_KEY_SEC1: &str = "\
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIH7LgCxPWGgzXFivPOT+QjPmDhgqilTfs0Qhs30KqiUMoAoGCCqGSM49
AwEHoUQDQgAEF8nURJOta/3KkzuSnmPqo/i9oLbtkn4SKxEy9pJAFRYa2YiT8Nwm
k5wt20Eb2lEXSZZvX0lEqG/eTp3E6wqUTA==
-----END EC PRIVATE KEY-----
";
    /// A self-signed certificate for [`EC_KEY_SEC1`].
    const EC_CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBfDCCASGgAwIBAgIUbTs2/pINBdKYYjhRZtp6VzQfIiwwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHZWMtbm9kZTAgFw0yNjExMjYyMDMzMjRaGA8yMTI2MTEwMjIw
MzMyNFowEjEQMA4GA1UEAwwHZWMtbm9kZTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABBfJ1ESTrWv9ypM7kp5j6qP4vaC27ZJ+EisRMvaSQBUWGtmIk/DcJpOcLdtB
G9pRF0mWb19JRKhv3k6dxOsKlEyjUzBRMB0GA1UdDgQWBBToGArDa/3SDQQ7MaYI
o89K/zAksDAfBgNVHSMEGDAWgBToGArDa/3SDQQ7MaYIo89K/zAksDAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQC9DPpadVEeYqOOJSIHe1C3fkx2
K1KJ//ze+aeTBhxqxgIhAPMbcZi8nKzWmdHO3TImq4xUFnKwF/MxWmAlGK8Y2CMv
-----END CERTIFICATE-----
";

    fn setup(pem: &str) -> TlsSetup {
        TlsSetup::from_pem(pem).unwrap_or_else(|e| panic!("from_pem failed: {e}"))
    }

    /// The certificates of a PEM, in order.
    fn certs_of(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes()).map(|c| c.unwrap()).collect()
    }

    /// The certificate sections of a PEM, as PEM text.
    fn cert_pem(pem: &str) -> String {
        certs_of(pem).iter().map(|c| pem_block("CERTIFICATE", c)).collect()
    }

    /// The key section of a PEM, as PEM text.
    fn key_pem(pem: &str) -> String {
        let end = "-----END PRIVATE KEY-----\n";
        let at = pem.find(end).expect("a PKCS#8 key") + end.len();
        pem[..at].to_string()
    }

    fn tls_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Tls(text)) => text,
            other => panic!("expected Error::Tls, got {other:?}"),
        }
    }

    fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
        e.get_ref()?.downcast_ref::<rustls::Error>()
    }

    fn is_invalid_cert(e: &std::io::Error) -> bool {
        matches!(rustls_error(e), Some(rustls::Error::InvalidCertificate(_)))
    }

    /// A handshake between a TLS client and a TLS server config over the
    /// given streams; on success each side sends a line and reads the
    /// other's. Returns the client's result (with the negotiated version
    /// and the peer's end-entity certificate) and the server's.
    async fn exchange<IO>(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        a: IO,
        b: IO,
    ) -> (std::io::Result<(ProtocolVersion, CertificateDer<'static>)>, std::io::Result<()>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let connector = TlsConnector::from(client);
        let acceptor = TlsAcceptor::from(server);
        let client_side = async move {
            let mut s = connector.connect(server_name(), a).await?;
            s.write_all(b"hello from client\n").await?;
            s.flush().await?;
            let mut buf = [0u8; 18];
            s.read_exact(&mut buf).await?;
            assert_eq!(&buf, b"hello from server\n");
            let conn = s.get_ref().1;
            let version = conn.protocol_version().expect("version");
            let peer = conn.peer_certificates().expect("peer certificate")[0].clone();
            Ok((version, peer))
        };
        let server_side = async move {
            let mut s = acceptor.accept(b).await?;
            assert!(s.get_ref().1.peer_certificates().is_some(), "client sent a certificate");
            let mut buf = [0u8; 18];
            s.read_exact(&mut buf).await?;
            assert_eq!(&buf, b"hello from client\n");
            s.write_all(b"hello from server\n").await?;
            s.flush().await?;
            Ok(())
        };
        tokio::join!(client_side, server_side)
    }

    /// [`exchange`] over an in-memory pipe.
    async fn exchange_mem(
        client: &TlsSetup,
        server: &TlsSetup,
    ) -> (std::io::Result<(ProtocolVersion, CertificateDer<'static>)>, std::io::Result<()>) {
        let (a, b) = tokio::io::duplex(1 << 16);
        exchange(client.client_config(), server.server_config(), a, b).await
    }

    /// Both must succeed; returns the client's result.
    async fn connects(client: &TlsSetup, server: &TlsSetup) -> (ProtocolVersion, CertificateDer<'static>) {
        let (c, s) = exchange_mem(client, server).await;
        s.unwrap_or_else(|e| panic!("server side failed: {e}"));
        c.unwrap_or_else(|e| panic!("client side failed: {e}"))
    }

    /// The client must refuse the server's certificate, and the server must
    /// see the handshake fail.
    async fn client_refuses(client: &TlsSetup, server: &TlsSetup) {
        let (c, s) = exchange_mem(client, server).await;
        let c = c.expect_err("client must refuse the server");
        assert!(is_invalid_cert(&c), "client error is a certificate error: {c:?}");
        s.expect_err("server handshake must fail too");
    }

    /// The server must refuse the client's certificate, and the client must
    /// see the connection fail (in TLS 1.3 after its side of the handshake).
    async fn server_refuses(client: &TlsSetup, server: &TlsSetup) {
        let (c, s) = exchange_mem(client, server).await;
        let s = s.expect_err("server must refuse the client");
        assert!(is_invalid_cert(&s), "server error is a certificate error: {s:?}");
        let c = c.expect_err("client must see the refusal");
        assert!(
            matches!(rustls_error(&c), Some(rustls::Error::AlertReceived(_)))
                || c.kind() == std::io::ErrorKind::UnexpectedEof,
            "client error: {c:?}"
        );
    }

    /// A TLS 1.2-only client config for a PEM, with the same verifier.
    fn tls12_client(pem: &str) -> Arc<ClientConfig> {
        let parts = parse_pem(pem, "PEM").unwrap();
        let provider = provider();
        let verifier = build_verifier(&parts.certs, &provider).unwrap();
        let config =
            build_client_config(&provider, &verifier, &parts.certs, &parts.key, &[&rustls::version::TLS12])
                .unwrap();
        Arc::new(config)
    }

    #[tokio::test]
    async fn shared_generated_cert_both_roles() {
        let pem = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        let (x, y) = (setup(&pem), setup(&pem));
        let (version, peer) = connects(&x, &y).await;
        assert_eq!(version, ProtocolVersion::TLSv1_3);
        assert_eq!(peer, certs_of(&pem)[0]);
        connects(&y, &x).await;
    }

    #[tokio::test]
    async fn shared_cert_over_loopback_tcp_both_roles() {
        let pem = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        let (x, y) = (setup(&pem), setup(&pem));
        for (client, server) in [(&x, &y), (&y, &x)] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // The dialler is the TLS server here: the role does not follow
            // who opened the connection.
            let (dialled, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), async {
                listener.accept().await.map(|(s, _)| s)
            });
            let (c, s) =
                exchange(client.client_config(), server.server_config(), accepted.unwrap(), dialled.unwrap())
                    .await;
            s.unwrap();
            c.unwrap();
        }
    }

    #[tokio::test]
    async fn shared_09_rsa_ca_cert_tls13_and_tls12() {
        let pem = format!("{RSA_KEY_PKCS8}{RSA_CERT}");
        let (x, y) = (setup(&pem), setup(&pem));
        assert_eq!(connects(&x, &y).await.0, ProtocolVersion::TLSv1_3);
        connects(&y, &x).await;

        let (a, b) = tokio::io::duplex(1 << 16);
        let (c, s) = exchange(tls12_client(&pem), y.server_config(), a, b).await;
        s.unwrap();
        assert_eq!(c.unwrap().0, ProtocolVersion::TLSv1_2);

        // The same with the key in PKCS#1 form, as older `aemp gencert` wrote it.
        let pkcs1 = setup(&format!("{RSA_KEY_PKCS1}{RSA_CERT}"));
        connects(&pkcs1, &x).await;
        connects(&x, &pkcs1).await;
    }

    #[tokio::test]
    async fn generated_ecdsa_cert_over_tls12() {
        let pem = generate_cert_pem("tls12").unwrap();
        let (a, b) = tokio::io::duplex(1 << 16);
        let (c, s) = exchange(tls12_client(&pem), setup(&pem).server_config(), a, b).await;
        s.unwrap();
        assert_eq!(c.unwrap().0, ProtocolVersion::TLSv1_2);
    }

    #[tokio::test]
    async fn different_self_signed_cert_refused_both_ways() {
        let a_pem = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        let b_pem = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        let (a, b) = (setup(&a_pem), setup(&b_pem));
        // The TLS client refuses the server, whichever node is the client.
        client_refuses(&a, &b).await;
        client_refuses(&b, &a).await;
        // The server refuses the client: the client trusts the server's
        // certificate (its PEM holds it too), the server does not trust the
        // client's.
        let a_trusting_b = setup(&format!("{a_pem}{}", cert_pem(&b_pem)));
        server_refuses(&a_trusting_b, &b).await;
        // With the roles swapped, b as the client refuses a's certificate.
        client_refuses(&b, &a_trusting_b).await;
    }

    #[tokio::test]
    async fn ca_scheme() {
        let ca = generate_cert_pem("aemp test CA").unwrap();
        let n1_pem = generate_signed_by(&ca, "node1").unwrap();
        let n2_pem = generate_signed_by(&ca, "node2").unwrap();
        assert_eq!(certs_of(&n1_pem).len(), 2, "node PEM holds node and CA certificates");
        assert_eq!(certs_of(&n1_pem)[1], certs_of(&ca)[0]);
        let (n1, n2) = (setup(&n1_pem), setup(&n2_pem));
        let (_, peer) = connects(&n1, &n2).await;
        assert_eq!(peer, certs_of(&n2_pem)[0]);
        connects(&n2, &n1).await;

        // A node of another CA is refused by either side.
        let other_ca = generate_cert_pem("other CA").unwrap();
        let n3_pem = generate_signed_by(&other_ca, "node3").unwrap();
        let n3 = setup(&n3_pem);
        client_refuses(&n1, &n3).await;
        client_refuses(&n3, &n1).await;
        let n3_trusting_ca = setup(&format!("{n3_pem}{}", cert_pem(&ca)));
        server_refuses(&n3_trusting_ca, &n1).await;

        // A node holding the CA's own certificate and key is trusted too
        // (byte-identical to an anchor, used as an end entity).
        let ca_node = setup(&ca);
        connects(&ca_node, &n1).await;
        connects(&n1, &ca_node).await;
    }

    #[tokio::test]
    async fn nodes_signed_by_09_rsa_ca_and_sec1_ec_ca() {
        for ca in [format!("{RSA_KEY_PKCS1}{RSA_CERT}"), format!("{EC_KEY_SEC1}{EC_CERT}")] {
            let n1 = setup(&generate_signed_by(&ca, "node1").unwrap());
            let n2 = setup(&generate_signed_by(&ca, "node2").unwrap());
            connects(&n1, &n2).await;
            connects(&n2, &n1).await;
        }
    }

    #[test]
    fn verifier_ignores_server_name_and_checks_validity_of_identical_cert() {
        let ca = generate_cert_pem("CA").unwrap();
        let node = generate_signed_by(&ca, "node").unwrap();
        let provider = provider();
        let verifier = build_verifier(&certs_of(&ca), &provider).unwrap();
        let node_certs = certs_of(&node);
        let now = UnixTime::now();
        for name in ["example.com", "aemp-node", "127.0.0.1"] {
            let name = ServerName::try_from(name).unwrap();
            verifier.verify_server_cert(&node_certs[0], &node_certs[1..], &name, &[], now).unwrap();
        }
        verifier.verify_client_cert(&node_certs[0], &node_certs[1..], now).unwrap();

        // The shared self-signed certificate is trusted as it is, but only
        // while it is valid.
        let own = &certs_of(&ca)[0];
        let name = server_name();
        verifier.verify_server_cert(own, &[], &name, &[], now).unwrap();
        let late = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 20 * 366 * 86400));
        let early = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() - 2 * 86400));
        let expired = verifier.verify_server_cert(own, &[], &name, &[], late).unwrap_err();
        assert!(matches!(
            expired,
            rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
        ));
        let early_err = verifier.verify_client_cert(own, &[], early).unwrap_err();
        assert!(
            matches!(
                early_err,
                rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{early_err:?}"
        );

        // A node certificate is checked by webpki, expiry included.
        assert!(verifier.verify_client_cert(&node_certs[0], &[], late).is_err());
        // An unrelated certificate is refused in both roles.
        let stranger = certs_of(&generate_cert_pem("CA").unwrap());
        assert!(verifier.verify_server_cert(&stranger[0], &[], &name, &[], now).is_err());
        assert!(verifier.verify_client_cert(&stranger[0], &[], now).is_err());
    }

    #[test]
    fn only_ca_certificates_of_the_pem_issue() {
        let ca = generate_cert_pem("CA").unwrap();
        let node = generate_signed_by(&ca, "node").unwrap();
        // A certificate signed with the node's key (CA:FALSE): webpki alone
        // would accept it with the node certificate as anchor; we do not.
        let (_, sub, _) = sign_unchecked(&node, "sub").unwrap();
        let provider = provider();
        let verifier = build_verifier(&certs_of(&node), &provider).unwrap();
        let now = UnixTime::now();
        let err = verifier.verify_client_cert(sub.der(), &[], now).unwrap_err();
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err:?}");
        let chain = [certs_of(&node)[0].clone()];
        assert!(verifier.verify_server_cert(sub.der(), &chain, &server_name(), &[], now).is_err());

        let mut only_node = RootCertStore::empty();
        only_node.add(certs_of(&node)[0].clone()).unwrap();
        let parsed = ParsedCertificate::try_from(sub.der()).unwrap();
        let algs = provider.signature_verification_algorithms.all;
        verify_server_cert_signed_by_trust_anchor(&parsed, &only_node, &[], now, algs).unwrap();

        // A PEM whose only certificate is CA:FALSE trusts just that one.
        let lonely = format!("{}{}", key_pem(&node), pem_block("CERTIFICATE", &certs_of(&node)[0]));
        let verifier = build_verifier(&certs_of(&lonely), &provider).unwrap();
        verifier.verify_client_cert(&certs_of(&node)[0], &[], now).unwrap();
        assert!(verifier.verify_client_cert(sub.der(), &[], now).is_err());
    }

    #[test]
    fn generated_cert_properties() {
        let pem = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(pem.trim_end().ends_with("-----END CERTIFICATE-----"));
        let cert = &certs_of(&pem)[0];
        let info = der::tbs_info(cert).unwrap();
        assert_eq!(info.issuer, info.subject, "self-signed");
        assert_eq!((info.version, info.basic_ca), (2, Some(true)));
        let node = certs_of(&generate_signed_by(&pem, "node").unwrap())[0].clone();
        assert_eq!(der::tbs_info(&node).unwrap().basic_ca, Some(false));
        let rsa = certs_of(RSA_CERT)[0].clone();
        assert_eq!(der::tbs_info(&rsa).unwrap().basic_ca, Some(true));
        assert!(info.subject.windows(12).any(|w| w == b"AnyEvent::MP"));
        let (not_before, not_after) = info.validity;
        let now = UnixTime::now().as_secs() as i64;
        assert!(not_before <= now && now - not_before <= 86400 + 60);
        let years = (not_after - not_before) as f64 / (365.25 * 86400.0);
        assert!((years - 10.0).abs() < 0.01, "{years} years");
        // CA:TRUE: it can sign node certificates that verify against it.
        generate_signed_by(&pem, "node").unwrap();
    }

    #[test]
    fn signing_needs_a_ca_certificate_and_its_key() {
        let ca = generate_cert_pem("CA").unwrap();
        let node = generate_signed_by(&ca, "node").unwrap();
        // A CA:FALSE node certificate cannot act as a CA.
        let text = tls_text(generate_signed_by(&node, "sub"));
        assert!(text.contains("does not verify against the CA certificate"), "{text}");
        // A key that is not the CA's.
        let other = generate_cert_pem("x").unwrap();
        let text = tls_text(generate_signed_by(&format!("{}{}", key_pem(&other), cert_pem(&ca)), "n"));
        assert!(text.contains("does not match"), "{text}");
        let text = tls_text(generate_signed_by("", "n"));
        assert!(text.contains("CA PEM is empty"), "{text}");
    }

    #[test]
    fn from_pem_errors_name_the_problem() {
        let pem = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        let other = generate_cert_pem(DEFAULT_COMMON_NAME).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            (" \n\n".into(), "empty"),
            ("this is not a PEM at all".into(), "no PEM sections"),
            (cert_pem(&pem), "no private key"),
            (key_pem(&pem), "no certificate"),
            ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(), "malformed PEM"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n".into(), "malformed PEM"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
                "encrypted",
            ),
            (format!("{}{pem}", key_pem(&other)), "2 private keys"),
            (format!("{}{}", key_pem(&other), cert_pem(&pem)), "does not match"),
            (
                format!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}", cert_pem(&pem)),
                "unusable private key",
            ),
            (
                format!("{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key_pem(&pem)),
                "certificate 1",
            ),
        ];
        for (input, expected) in cases {
            let text = tls_text(TlsSetup::from_pem(&input));
            assert!(text.contains(expected), "{input:?}: {text:?} should mention {expected:?}");
            let shown = Error::Tls(text).to_string();
            assert!(shown.starts_with("TLS: "), "{shown}");
        }
    }

    #[test]
    fn key_formats_and_section_order_load() {
        setup(&format!("{RSA_KEY_PKCS8}{RSA_CERT}"));
        setup(&format!("{RSA_KEY_PKCS1}{RSA_CERT}"));
        setup(&format!("{EC_KEY_SEC1}{EC_CERT}"));
        setup(&format!("{RSA_CERT}\n{RSA_KEY_PKCS1}"));
        let pem = generate_cert_pem("x").unwrap();
        setup(&pem);
        setup(&format!("{}{}", cert_pem(&pem), key_pem(&pem)));
        // The RSA key does not match the EC certificate.
        let text = tls_text(TlsSetup::from_pem(&format!("{RSA_KEY_PKCS1}{EC_CERT}")));
        assert!(text.contains("does not match"), "{text}");
    }

    #[test]
    fn der_times() {
        assert_eq!(der::days_since_1970(1970, 1, 1), 0);
        assert_eq!(der::days_since_1970(2000, 2, 29) * 86400, 951_782_400);
        assert_eq!(der::days_since_1970(2000, 3, 1) * 86400, 951_868_800);
        assert_eq!(der::days_since_1970(1969, 12, 31), -1);
        let utc = der::Tlv { tag: 0x17, content: b"380119031407Z", whole: &[] };
        assert_eq!(der::time(&utc), Some(2_147_483_647));
        let utc_1999 = der::Tlv { tag: 0x17, content: b"991231235959Z", whole: &[] };
        assert_eq!(der::time(&utc_1999), Some(946_684_799));
        let generalized = der::Tlv { tag: 0x18, content: b"21261102203324Z", whole: &[] };
        assert_eq!(der::time(&generalized), Some(4_949_325_204));
        for bad in [&b"3801190314Z"[..], b"381319031407Z", b"38011903140aZ", b"380119031407+"] {
            assert_eq!(der::time(&der::Tlv { tag: 0x17, content: bad, whole: &[] }), None);
        }
        // The 0.9-style fixture: GeneralizedTime notAfter in 2126.
        let certs = certs_of(RSA_CERT);
        let info = der::tbs_info(&certs[0]).unwrap();
        assert!(info.validity.1 > 4_900_000_000);
    }

    #[test]
    fn pem_block_round_trips() {
        for len in 0..70 {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = pem_block("CERTIFICATE", &der);
            let back = CertificateDer::from_pem_slice(text.as_bytes());
            if len == 0 {
                continue;
            }
            assert_eq!(back.unwrap().as_ref(), &der[..]);
        }
    }
}
