//! The second phase of the AEMP handshake: auth methods, tokens and the
//! auth line (the authentication of
//! [AnyEvent::MP::Transport](https://metacpan.org/pod/AnyEvent::MP::Transport)'s protocol).
//!
//! Let L1, L2 be this side's greeting lines and R1, R2 the peer's, without
//! line ends, and T(a,b,c,d) = `a\nb\nc\nd\n` ([`transcript`]). We send a
//! token over T(L1,L2,R1,R2) ([`token`]) and check the peer's against
//! T(R1,R2,L1,L2) ([`verify`]). Nothing here does I/O.

use crate::error::{Error, Result};

/// The MD6 block size HMAC-MD6 uses, in bytes (as Perl's Digest::HMAC).
const HMAC_BLOCK: usize = 64;

/// The blake3 key-derivation context for `hmac_blake3_256` (Part B).
pub const BLAKE3_CONTEXT: &str = "aemp 2026 shared secret";

/// The longest auth line [`AuthLine::parse`] accepts, in bytes, line end
/// not counted (the handshake line limit).
pub const MAX_AUTH_LINE: usize = 4096;

/// An auth method named in greetings and auth lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `hmac_blake3_256` (Part B): blake3 keyed hash of the transcript with
    /// a key derived from the secret. aemp's first choice.
    HmacBlake3,
    /// `tls_md6_64_256`: MD6-256 of the transcript, no secret; only under
    /// TLS, where the certificates authenticate.
    TlsMd6,
    /// `hmac_md6_64_256`: 0.9's method with a secret and no TLS.
    HmacMd6,
    /// `cleartext`: the hex of the secret itself. Accepted only when
    /// configured, never sent by aemp.
    Cleartext,
    /// `tls_anon`: an empty token; only under TLS and only when configured.
    TlsAnon,
}

impl AuthMethod {
    /// Every method, in aemp's order of preference (the optional ones last).
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::HmacBlake3,
        AuthMethod::TlsMd6,
        AuthMethod::HmacMd6,
        AuthMethod::TlsAnon,
        AuthMethod::Cleartext,
    ];

    /// The method's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::HmacBlake3 => "hmac_blake3_256",
            AuthMethod::TlsMd6 => "tls_md6_64_256",
            AuthMethod::HmacMd6 => "hmac_md6_64_256",
            AuthMethod::Cleartext => "cleartext",
            AuthMethod::TlsAnon => "tls_anon",
        }
    }

    /// The method with this wire name (exact, case-sensitive), if known.
    pub fn from_name(name: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the method may only be used with TLS on (`tls_*`).
    pub fn requires_tls(self) -> bool {
        matches!(self, AuthMethod::TlsMd6 | AuthMethod::TlsAnon)
    }

    /// Whether the method's token is made from the shared secret.
    pub fn needs_secret(self) -> bool {
        matches!(self, AuthMethod::HmacBlake3 | AuthMethod::HmacMd6 | AuthMethod::Cleartext)
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// MD6 with d = 256, no key, L = 64, r = 104 (the defaults of the MD6
/// reference code's one-shot hash, which the `md6` crate calls).
pub fn md6_256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // 256 is a valid digest size, so this cannot fail.
    md6::hash(256, data, &mut out).expect("MD6-256 accepts any input");
    out
}

/// HMAC (RFC 2104) over [`md6_256`] with a 64-byte block; a key longer
/// than 64 bytes is first replaced by its MD6-256.
pub fn hmac_md6_256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; HMAC_BLOCK];
    if key.len() > HMAC_BLOCK {
        block[..32].copy_from_slice(&md6_256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Vec::with_capacity(HMAC_BLOCK + msg.len());
    inner.extend(block.iter().map(|b| b ^ 0x36));
    inner.extend_from_slice(msg);
    let inner_hash = md6_256(&inner);
    let mut outer = Vec::with_capacity(HMAC_BLOCK + 32);
    outer.extend(block.iter().map(|b| b ^ 0x5c));
    outer.extend_from_slice(&inner_hash);
    md6_256(&outer)
}

/// The handshake transcript T(a,b,c,d) = `a\nb\nc\nd\n`.
pub fn transcript(a: &str, b: &str, c: &str, d: &str) -> String {
    format!("{a}\n{b}\n{c}\n{d}\n")
}

/// The token a side with greeting lines `first` and the peer's lines
/// `second` sends, over T(first.0, first.1, second.0, second.1).
fn compute(
    method: AuthMethod,
    secret: Option<&str>,
    first: (&str, &str),
    second: (&str, &str),
) -> Result<String> {
    let secret = match (method.needs_secret(), secret) {
        (false, _) => "",
        (true, Some(s)) if !s.is_empty() => s,
        (true, _) => {
            return Err(Error::Auth(format!(
                "auth method {method} needs a shared secret, but none is configured"
            )))
        }
    };
    let t = || transcript(first.0, first.1, second.0, second.1);
    Ok(match method {
        AuthMethod::HmacMd6 => hex(&hmac_md6_256(t().as_bytes(), &md6_256(secret.as_bytes()))),
        AuthMethod::TlsMd6 => hex(&md6_256(t().as_bytes())),
        AuthMethod::HmacBlake3 => {
            let key = blake3::derive_key(BLAKE3_CONTEXT, secret.as_bytes());
            hex(blake3::keyed_hash(&key, t().as_bytes()).as_bytes())
        }
        AuthMethod::Cleartext => hex(secret.as_bytes()),
        AuthMethod::TlsAnon => String::new(),
    })
}

/// The token WE send with `method`, lowercase hex:
///
/// - `hmac_md6_64_256`: hex(HMAC-MD6-256(key = T(L1,L2,R1,R2), message =
///   MD6-256(secret))) (the transcript is the key, as 0.9 does on the wire);
/// - `tls_md6_64_256`: hex(MD6-256(T(L1,L2,R1,R2))), no secret;
/// - `hmac_blake3_256`: hex(blake3::keyed_hash(K, T(L1,L2,R1,R2))) with
///   K = blake3::derive_key([`BLAKE3_CONTEXT`], secret);
/// - `cleartext`: hex of the secret's UTF-8 bytes;
/// - `tls_anon`: empty.
///
/// `ours` = (L1, L2), `theirs` = (R1, R2), lines without line ends. A
/// method that needs a secret returns [`Error::Auth`] when `secret` is
/// `None` or empty.
pub fn token(
    method: AuthMethod,
    secret: Option<&str>,
    ours: (&str, &str),
    theirs: (&str, &str),
) -> Result<String> {
    compute(method, secret, ours, theirs)
}

/// Checks the token the peer sent with `method`: it must equal the token
/// computed over T(R1,R2,L1,L2) (the peer's [`token`]). The comparison is
/// constant-time; hex digits may be upper or lower case. The error
/// ([`Error::Auth`]) names the method, never the secret or the token.
///
/// This does not decide whether `method` is acceptable at all: see
/// [`accept_peer_method`].
pub fn verify(
    method: AuthMethod,
    secret: Option<&str>,
    ours: (&str, &str),
    theirs: (&str, &str),
    token_received: &str,
) -> Result<()> {
    let expected = compute(method, secret, theirs, ours)?;
    let received = token_received.to_ascii_lowercase();
    if ct_eq(expected.as_bytes(), received.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Auth(format!("the peer's {method} token does not match")))
    }
}

/// Whether the peer may authenticate with the method it named:
/// only methods of aemp's own accept list; `cleartext` and `tls_anon` only
/// when the configuration allows them; `tls_*` only with TLS on. The
/// secret-based methods are then always checked with the real secret by
/// [`verify`], also under TLS. Errors are [`Error::Auth`].
pub fn accept_peer_method(
    method: &str,
    allow_cleartext: bool,
    allow_tls_anon: bool,
    tls_on: bool,
) -> Result<AuthMethod> {
    let Some(m) = AuthMethod::from_name(method) else {
        return Err(Error::Auth(format!(
            "peer used auth method {:?}, which aemp does not accept",
            short(method)
        )));
    };
    if m == AuthMethod::Cleartext && !allow_cleartext {
        return Err(Error::Auth(
            "peer used auth method cleartext, which is not allowed by the configuration".into(),
        ));
    }
    if m == AuthMethod::TlsAnon && !allow_tls_anon {
        return Err(Error::Auth(
            "peer used auth method tls_anon, which is not allowed by the configuration".into(),
        ));
    }
    if m.requires_tls() && !tls_on {
        return Err(Error::Auth(format!("peer used auth method {m}, which needs TLS, but TLS is off")));
    }
    Ok(m)
}

/// An auth line: `<method>;<token>;<framing-this-side-sends>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLine {
    /// The auth method's name.
    pub method: String,
    /// The token, hex (empty for `tls_anon`).
    pub token: String,
    /// The framing the sender will send with.
    pub framing: String,
}

impl AuthLine {
    /// Parses an auth line, with or without its line end. It must have
    /// exactly three `;`-separated fields: a non-empty method, a token of
    /// hex digits (possibly empty), a non-empty framing, and be at most
    /// [`MAX_AUTH_LINE`] bytes. Errors ([`Error::Protocol`]) name the
    /// problem. Whether method and framing are acceptable is checked
    /// separately ([`accept_peer_method`],
    /// [`accept_peer_framing`](super::greeting::accept_peer_framing)).
    pub fn parse(line: &str) -> Result<AuthLine> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_AUTH_LINE {
            return Err(Error::Protocol(format!(
                "auth line is {} bytes long, over the limit of {MAX_AUTH_LINE}",
                line.len()
            )));
        }
        let fields: Vec<&str> = line.split(';').collect();
        let [method, token, framing] = fields[..] else {
            return Err(Error::Protocol(format!(
                "auth line has {} fields, expected 3 (method;token;framing)",
                fields.len()
            )));
        };
        if method.is_empty() {
            return Err(Error::Protocol("auth line has an empty method".into()));
        }
        if framing.is_empty() {
            return Err(Error::Protocol("auth line has an empty framing".into()));
        }
        if let Some(c) = token.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(Error::Protocol(format!("auth line token contains {c:?}, which is not a hex digit")));
        }
        Ok(AuthLine { method: method.to_owned(), token: token.to_owned(), framing: framing.to_owned() })
    }

    /// The line without its line end: `<method>;<token>;<framing>`.
    pub fn to_line(&self) -> String {
        format!("{};{};{}", self.method, self.token, self.framing)
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Compares two byte strings in time that depends only on their lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// At most 40 characters of `s`, for error messages.
fn short(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "aemp-test-secret-0123456789";

    // auth-vectors.txt (session A)
    const C1: &str = "aemp;0;anon/Lscqse5YByBNl4qfcBWlqA=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12;peeraddr=127.0.0.1:40401";
    const C2: &str =
        "fR47gOZmuMWVIgFTj18eXHrBlBd6W2h+Rthz6IE14cOKv85l0iK3va91ftUYT3SFcqu+9zMo5eF0bqKpjR6nsGDB";
    const S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;peeraddr=127.0.0.1:52166;timeout=12";
    const S2: &str =
        "5HP9UiuK6M10r4EbSXEayX5keyC2DHR1Pb1LdQAKyalHL2AhDBCdHWFlCh56aJt1t9uJItnMavGreDpU2bVkw9xc";
    const C_TOKEN: &str = "d06217fd6654bbf30af198ac5dfa79427309c1cad91e0c877f535d9eafaeace2";
    const S_TOKEN: &str = "cdfae27e2a7b68c8a03bfbd07a2432cf72b1b776014431c55a5f7b27a4adea16";
    const MD6_256_EMPTY: &str = "bca38b24a804aa37d821d31af00f5598230122c5bbfc4c4ad5ed40e4258f04ca";
    const HMAC_XYZ_ABC: &str = "5d86d50e9f8bf314589f13641e8b156162158f42bb0cb112b5c5364f80dadcc1";
    const MD6_256_OF_SECRET: &str = "772acd8056e245a4f1844703070de7cff5f6681d5d4e188ddb5ae45d1c8b4f18";

    // transcripts-0.9.txt, session B
    const B_C1: &str = "aemp;0;anon/g6dVYjx359AbY6neK3EjsQ=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;storable;timeout=12;provider=AE-0.9;peeraddr=127.0.0.1:40403";
    const B_C2: &str =
        "mdNlNL+4mSduMuZ7k1wvB2/ilYD5Lwp6YjCpHRXzymtRdBuo9d+YAJgt2VYHbqnQsQoRjahQI7qXLy2adZiMZkQH";
    const B_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12;peeraddr=127.0.0.1:44198";
    const B_S2: &str =
        "anFxQkb4AGmMck+Q36/JYZ/AEPCC6318q1frFtgJJRk73heh2z4MjK923uwRR5EM8a5eglb098DTsNtLcj9W/Afp";
    const B_S_AUTH: &str =
        "hmac_md6_64_256;562d688aff4b670760abbaec5fbec5c7e41a4182c592c60e709d8d7c414478bf;storable";
    const B_C_AUTH: &str =
        "hmac_md6_64_256;37c7627dee534049e4bcb0ea33714bc44ff88c17a519de9ac0e7f6f16dff111d;storable";

    // session C
    const C_C1: &str = "aemp;0;pyraw;hmac_md6_64_256;json;provider=py-raw-0;timeout=30";
    const C_C2: &str =
        "H5zJa4inrdNrzXlLF5XgTTCPaa1hXiNWc/uyRZZqaESnx8CYxaqDJDKhQK5di9VSINB6iyuVuDonxZpy0qYssCLa";
    const C_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;timeout=12;provider=AE-0.9;peeraddr=127.0.0.1:36426";
    const C_S2: &str =
        "DS8gdiJuSqsUuT+lhYQe0bbdEfCSwf1vOpaluIGkpQyQ/siat3gQaIDLuG8papOJZD0vkq4w93bWj5N2r9Z5wIqZ";
    const C_S_AUTH: &str =
        "hmac_md6_64_256;01502cebcba4b5a7fa52d603f071f1a8cb0d0d75b6b102f75d61450231b038f8;json";
    const C_C_AUTH: &str = "cleartext;61656d702d746573742d7365637265742d30313233343536373839;json";

    // session D, conn#1
    const D_C1: &str = "aemp;0;pyraw;hmac_md6_64_256;json;provider=py-raw-0;timeout=30";
    const D_C2: &str =
        "wBJwFXsJHd/pnx96vF5usJ/o+DEQMRWslxYaqFxVoLKBDVehUFMkpQppDwdrp3CfoAQLVbLjc/2cPzHdF4PZGFll";
    const D_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;peeraddr=127.0.0.1:44054;timeout=12;provider=AE-0.9";
    const D_S2: &str =
        "d2veu91YGUAvdZv3Ty2Ds2musCcG4+QRsDf+lJz7Of6aY9QhVY9pxTuDCWSXztNgC+kSCDFiZeO9VPbyJeBqnRWM";
    const D_S_AUTH: &str =
        "hmac_md6_64_256;c93057e874ea57eb794a650c9d3eed2297c316616e95fa0fcd9a533909e694e1;json";
    const D_C_AUTH: &str = "cleartext;57524f4e472d736563726574;json";

    fn from_hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn primitive_vectors() {
        assert_eq!(hex(&md6_256(b"")), MD6_256_EMPTY);
        assert_eq!(hex(&hmac_md6_256(b"xyz", b"abc")), HMAC_XYZ_ABC);
        assert_eq!(hex(&md6_256(SECRET.as_bytes())), MD6_256_OF_SECRET);
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(from_hex(MD6_256_EMPTY), md6_256(b"").to_vec());
        assert_eq!(transcript("a", "b", "c", "d"), "a\nb\nc\nd\n");
    }

    #[test]
    fn hmac_md6_long_key_is_hashed_first() {
        let long = [7u8; 100];
        assert_eq!(hmac_md6_256(&long, b"m"), hmac_md6_256(&md6_256(&long), b"m"));
        // Exactly a block is used as is.
        let block = [7u8; 64];
        assert_ne!(hmac_md6_256(&block, b"m"), hmac_md6_256(&md6_256(&block), b"m"));
    }

    #[test]
    fn session_a_vectors_both_directions() {
        let m = AuthMethod::HmacMd6;
        let s = Some(SECRET);
        // The connecting side C.
        assert_eq!(token(m, s, (C1, C2), (S1, S2)).unwrap(), C_TOKEN);
        verify(m, s, (C1, C2), (S1, S2), S_TOKEN).unwrap();
        // The listening side S.
        assert_eq!(token(m, s, (S1, S2), (C1, C2)).unwrap(), S_TOKEN);
        verify(m, s, (S1, S2), (C1, C2), C_TOKEN).unwrap();
        // The token is the documented formula.
        let t = transcript(C1, C2, S1, S2);
        assert_eq!(hex(&hmac_md6_256(t.as_bytes(), &md6_256(SECRET.as_bytes()))), C_TOKEN);
        // Upper-case hex is accepted too.
        verify(m, s, (S1, S2), (C1, C2), &C_TOKEN.to_ascii_uppercase()).unwrap();
        // A token checked in the wrong direction, or our own echoed, fails.
        assert!(verify(m, s, (C1, C2), (S1, S2), C_TOKEN).is_err());
        assert!(verify(m, s, (S1, S2), (C1, C2), S_TOKEN).is_err());
        // A wrong secret fails, and the message does not leak it.
        let e = verify(m, Some("WRONG-secret"), (S1, S2), (C1, C2), C_TOKEN).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Auth(_)));
        assert!(text.contains("hmac_md6_64_256"), "{text}");
        assert!(!text.contains("WRONG-secret") && !text.contains(C_TOKEN), "{text}");
    }

    #[test]
    fn session_b_tokens() {
        let s_line = AuthLine::parse(B_S_AUTH).unwrap();
        let c_line = AuthLine::parse(B_C_AUTH).unwrap();
        assert_eq!(s_line.framing, "storable");
        let m = AuthMethod::from_name(&s_line.method).unwrap();
        assert_eq!(m, AuthMethod::HmacMd6);
        let s = Some(SECRET);
        assert_eq!(token(m, s, (B_S1, B_S2), (B_C1, B_C2)).unwrap(), s_line.token);
        assert_eq!(token(m, s, (B_C1, B_C2), (B_S1, B_S2)).unwrap(), c_line.token);
        verify(m, s, (B_C1, B_C2), (B_S1, B_S2), &s_line.token).unwrap();
        verify(m, s, (B_S1, B_S2), (B_C1, B_C2), &c_line.token).unwrap();
        assert_eq!(s_line.to_line(), B_S_AUTH);
        assert_eq!(c_line.to_line(), B_C_AUTH);
    }

    #[test]
    fn sessions_c_and_d_server_tokens() {
        let s = Some(SECRET);
        let m = AuthMethod::HmacMd6;
        let line = AuthLine::parse(C_S_AUTH).unwrap();
        assert_eq!(token(m, s, (C_S1, C_S2), (C_C1, C_C2)).unwrap(), line.token);
        verify(m, s, (C_C1, C_C2), (C_S1, C_S2), &line.token).unwrap();
        let line = AuthLine::parse(D_S_AUTH).unwrap();
        assert_eq!(token(m, s, (D_S1, D_S2), (D_C1, D_C2)).unwrap(), line.token);
        verify(m, s, (D_C1, D_C2), (D_S1, D_S2), &line.token).unwrap();
    }

    #[test]
    fn cleartext_tokens() {
        let m = AuthMethod::Cleartext;
        let ok = AuthLine::parse(C_C_AUTH).unwrap();
        assert_eq!(ok.method, "cleartext");
        assert_eq!(token(m, Some(SECRET), (C_C1, C_C2), (C_S1, C_S2)).unwrap(), ok.token);
        // The server checks the client's cleartext token.
        verify(m, Some(SECRET), (C_S1, C_S2), (C_C1, C_C2), &ok.token).unwrap();
        // Session D: the client sent the hex of "WRONG-secret".
        let bad = AuthLine::parse(D_C_AUTH).unwrap();
        assert_eq!(hex(b"WRONG-secret"), bad.token);
        let e = verify(m, Some(SECRET), (D_S1, D_S2), (D_C1, D_C2), &bad.token).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("cleartext"), "{text}");
        assert!(!text.contains(SECRET) && !text.contains(&ok.token), "{text}");
    }

    #[test]
    fn tls_md6_token() {
        let m = AuthMethod::TlsMd6;
        let t = token(m, None, (C1, C2), (S1, S2)).unwrap();
        assert_eq!(t, hex(&md6_256(transcript(C1, C2, S1, S2).as_bytes())));
        assert_eq!(t.len(), 64);
        // No secret involved: the same with one.
        assert_eq!(token(m, Some(SECRET), (C1, C2), (S1, S2)).unwrap(), t);
        verify(m, None, (S1, S2), (C1, C2), &t).unwrap();
        assert!(verify(m, None, (C1, C2), (S1, S2), &t).is_err());
    }

    #[test]
    fn blake3_tokens_are_symmetric() {
        let m = AuthMethod::HmacBlake3;
        let s = Some("sekrit ünïcode");
        let a = ("aemp;0;a;hmac_blake3_256;msgpack;aemp=1", "nonceA");
        let b = ("aemp;0;b;hmac_blake3_256;msgpack;aemp=1", "nonceB");
        let ta = token(m, s, a, b).unwrap();
        let tb = token(m, s, b, a).unwrap();
        assert_eq!(ta.len(), 64);
        assert!(ta.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(ta, tb);
        verify(m, s, b, a, &ta).unwrap();
        verify(m, s, a, b, &tb).unwrap();
        // The formula of Part B.
        let key = blake3::derive_key(BLAKE3_CONTEXT, "sekrit ünïcode".as_bytes());
        let t = transcript(a.0, a.1, b.0, b.1);
        assert_eq!(ta, blake3::keyed_hash(&key, t.as_bytes()).to_hex().as_str());
        // Wrong secret, wrong direction, truncated, empty: all fail.
        let e = verify(m, Some("other"), b, a, &ta).unwrap_err().to_string();
        assert!(e.contains("hmac_blake3_256"), "{e}");
        assert!(verify(m, s, a, b, &ta).is_err());
        assert!(verify(m, s, b, a, &ta[..63]).is_err());
        assert!(verify(m, s, b, a, "").is_err());
        // Differs from the md6 token over the same lines.
        assert_ne!(ta, token(AuthMethod::HmacMd6, s, a, b).unwrap());
    }

    #[test]
    fn secret_methods_need_a_secret() {
        for m in [AuthMethod::HmacBlake3, AuthMethod::HmacMd6, AuthMethod::Cleartext] {
            for s in [None, Some("")] {
                let e = token(m, s, (C1, C2), (S1, S2)).unwrap_err();
                assert!(matches!(e, Error::Auth(_)), "{e}");
                assert!(e.to_string().contains(m.name()), "{e}");
                assert!(verify(m, s, (C1, C2), (S1, S2), C_TOKEN).is_err());
            }
        }
        // 0.9 under TLS would accept an hmac token over an empty secret; we do not.
        let empty_key_token = hex(&hmac_md6_256(transcript(C1, C2, S1, S2).as_bytes(), &md6_256(b"")));
        assert!(verify(AuthMethod::HmacMd6, None, (S1, S2), (C1, C2), &empty_key_token).is_err());
        assert!(verify(AuthMethod::HmacMd6, Some(SECRET), (S1, S2), (C1, C2), &empty_key_token).is_err());
    }

    #[test]
    fn tls_anon_token_is_empty() {
        let m = AuthMethod::TlsAnon;
        assert_eq!(token(m, None, (C1, C2), (S1, S2)).unwrap(), "");
        verify(m, None, (C1, C2), (S1, S2), "").unwrap();
        assert!(verify(m, None, (C1, C2), (S1, S2), "00").is_err());
    }

    #[test]
    fn method_names() {
        for m in AuthMethod::ALL {
            assert_eq!(AuthMethod::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
            assert_eq!(m.requires_tls(), m.name().starts_with("tls_"));
        }
        assert_eq!(AuthMethod::from_name("HMAC_MD6_64_256"), None);
        assert_eq!(AuthMethod::from_name(""), None);
        assert_eq!(AuthMethod::from_name("hmac_blake3_256"), Some(AuthMethod::HmacBlake3));
        assert!(!AuthMethod::TlsMd6.needs_secret());
        assert!(AuthMethod::Cleartext.needs_secret());
    }

    #[test]
    fn accepting_peer_methods() {
        use AuthMethod::*;
        // Our list, without TLS.
        assert_eq!(accept_peer_method("hmac_md6_64_256", false, false, false).unwrap(), HmacMd6);
        assert_eq!(accept_peer_method("hmac_blake3_256", false, false, false).unwrap(), HmacBlake3);
        assert!(accept_peer_method("tls_md6_64_256", false, false, false).is_err());
        // Under TLS.
        assert_eq!(accept_peer_method("tls_md6_64_256", false, false, true).unwrap(), TlsMd6);
        assert_eq!(accept_peer_method("hmac_md6_64_256", false, false, true).unwrap(), HmacMd6);
        // cleartext and tls_anon only when allowed (tls_anon also needs TLS).
        let e = accept_peer_method("cleartext", false, true, true).unwrap_err().to_string();
        assert!(e.contains("cleartext"), "{e}");
        assert_eq!(accept_peer_method("cleartext", true, false, false).unwrap(), Cleartext);
        assert!(accept_peer_method("tls_anon", true, false, true).is_err());
        assert!(accept_peer_method("tls_anon", false, true, false).is_err());
        assert_eq!(accept_peer_method("tls_anon", false, true, true).unwrap(), TlsAnon);
        // Unknown names.
        for name in ["", "storable", "HMAC_MD6_64_256", "hmac_md6_64_256 "] {
            let e = accept_peer_method(name, true, true, true).unwrap_err();
            assert!(matches!(e, Error::Auth(_)), "{e}");
        }
    }

    #[test]
    fn auth_line_parsing() {
        let l = AuthLine::parse("tls_anon;;json\r\n").unwrap();
        assert_eq!(l.token, "");
        assert_eq!(l.to_line(), "tls_anon;;json");
        let l = AuthLine::parse(&format!("{C_S_AUTH}\n")).unwrap();
        assert_eq!(l.method, "hmac_md6_64_256");
        assert_eq!(l.framing, "json");
        for (line, want) in [
            ("", "1 fields"),
            ("hmac_md6_64_256", "1 fields"),
            ("hmac_md6_64_256;00", "2 fields"),
            ("hmac_md6_64_256;00;json;x", "4 fields"),
            (";00;json", "empty method"),
            ("hmac_md6_64_256;00;", "empty framing"),
            ("hmac_md6_64_256;0g;json", "not a hex digit"),
            ("hmac_md6_64_256; 00;json", "not a hex digit"),
        ] {
            let e = AuthLine::parse(line).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{line:?}: {e}");
            assert!(e.to_string().contains(want), "{line:?}: {e}");
        }
        let long = format!("cleartext;{};json", "a".repeat(MAX_AUTH_LINE));
        assert!(AuthLine::parse(&long).unwrap_err().to_string().contains("over the limit"));
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    proptest! {
        #[test]
        fn auth_line_parse_never_panics(s in "\\PC{0,200}") {
            if let Ok(l) = AuthLine::parse(&s) {
                prop_assert_eq!(AuthLine::parse(&l.to_line()).unwrap(), l);
            }
        }

        #[test]
        fn auth_line_near_misses_never_panic(s in "[a-z0-9_;\\r\\n]{0,80}") {
            let _ = AuthLine::parse(&s);
        }

        #[test]
        fn verify_never_panics(tok in "\\PC{0,100}", name in "[a-z_0-9]{0,20}") {
            for m in AuthMethod::ALL {
                let _ = verify(m, Some(SECRET), (C1, C2), (S1, S2), &tok);
            }
            let _ = accept_peer_method(&name, true, true, true);
        }

        #[test]
        fn tokens_verify_on_the_other_side(
            l1 in "[ -~]{0,50}", l2 in "[ -~]{0,50}",
            r1 in "[ -~]{0,50}", r2 in "[ -~]{0,50}",
            secret in "\\PC{1,30}",
        ) {
            for m in AuthMethod::ALL {
                let t = token(m, Some(&secret), (&l1, &l2), (&r1, &r2)).unwrap();
                prop_assert!(verify(m, Some(&secret), (&r1, &r2), (&l1, &l2), &t).is_ok());
            }
        }
    }
}
