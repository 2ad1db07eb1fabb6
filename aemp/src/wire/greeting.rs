//! The first phase of the AEMP handshake: greeting lines, nonces, the
//! line splitter for the handshake phase and the pure negotiation rules
//! (the greeting of
//! [AnyEvent::MP::Transport](https://metacpan.org/pod/AnyEvent::MP::Transport)'s protocol).
//!
//! Nothing here does I/O: the connection code feeds bytes in and acts on
//! what comes out.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore as _;

use crate::error::{Error, Result};

/// The protocol version aemp speaks (AnyEvent::MP 0.9's version `0`).
pub const PROTOCOL_VERSION: &str = "0";

/// The default limit for one handshake line, in bytes, without its line end
/// (4 KiB).
pub const MAX_LINE: usize = 4096;

/// The longest nonce line [`check_nonce`] accepts, in bytes. 0.9 and aemp
/// send 88 characters; this leaves room for other implementations.
pub const MAX_NONCE_LEN: usize = 1024;

/// How many random bytes a nonce carries (66, as 0.9: 88 base64 characters).
pub const NONCE_BYTES: usize = 66;

/// Every [`Error::Protocol`] about a peer announcing another protocol
/// version starts with this text, so callers can tell it apart.
pub const VERSION_MISMATCH: &str = "version mismatch";

/// The value aemp sends as `provider=` (Part B): `aemp-<crate version>`.
pub const PROVIDER: &str = concat!("aemp-", env!("CARGO_PKG_VERSION"));

/// The auth methods aemp always accepts, in order of preference (Part B,
/// C.1): blake3 between aemp nodes; a 0.9 peer picks `tls_md6_64_256` under
/// TLS and `hmac_md6_64_256` without.
pub const OUR_AUTHS: [&str; 3] = ["hmac_blake3_256", "tls_md6_64_256", "hmac_md6_64_256"];

/// The auth method `tls_anon`, accepted only when the configuration asks.
pub const AUTH_TLS_ANON: &str = "tls_anon";

/// The auth method `cleartext`, accepted only when the configuration asks,
/// and never sent (C.1).
pub const AUTH_CLEARTEXT: &str = "cleartext";

/// The framings aemp speaks, in order of preference (Part B): `msgpack`
/// between aemp nodes, `json` for a 0.9 peer. `storable` is not spoken (C.2).
pub const OUR_FRAMINGS: [&str; 2] = ["msgpack", "json"];

/// A parsed greeting (handshake line 1):
/// `aemp;<version>;<nodeid>;<auths>;<framings>[;KEY=VALUE]*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The protocol version field as sent (numerically 0 after [`parse`]).
    pub version: String,
    /// The sender's node ID.
    pub node_id: String,
    /// The auth methods the sender accepts, in its order of preference.
    pub auths: Vec<String>,
    /// The framings the sender accepts, in its order of preference.
    pub framings: Vec<String>,
    /// The `KEY=VALUE` items in the order they came. An item without `=`
    /// has an empty value; empty items are skipped.
    pub kv: Vec<(String, String)>,
}

impl Greeting {
    /// The value of `key`. When a key repeats, the last one wins (as in
    /// 0.9, which reads the items into a Perl hash).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.kv.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The peer's `timeout=` in seconds: how long it may stay silent before
    /// we consider it dead. `None` when absent, not a number, not positive
    /// or not finite (read like Perl reads a number: a numeric prefix).
    pub fn timeout(&self) -> Option<f64> {
        let (n, _) = numeric_prefix(self.get("timeout")?)?;
        (n.is_finite() && n > 0.0).then_some(n)
    }

    /// Whether the peer offers TLS: `tls=` present with an integer part of
    /// at least 1 (`tls=1.0` is what 0.9 sends).
    pub fn tls(&self) -> bool {
        self.get("tls").is_some_and(int_part_at_least_one)
    }

    /// Whether the peer announced aemp's extensions (`aemp=1`, Part B); a
    /// higher integer counts too.
    pub fn is_aemp_ext(&self) -> bool {
        self.get("aemp").is_some_and(int_part_at_least_one)
    }

    /// The peer's `incarnation=` (Part B), when present and non-empty.
    pub fn incarnation(&self) -> Option<&str> {
        self.get("incarnation").filter(|v| !v.is_empty())
    }

    /// The peer's `provider=` (0.9 sends `AE-0.9`, aemp `aemp-<version>`).
    pub fn provider(&self) -> Option<&str> {
        self.get("provider")
    }

    /// The peer's `peeraddr=`: our address as the peer sees it.
    pub fn peeraddr(&self) -> Option<&str> {
        self.get("peeraddr").filter(|v| !v.is_empty())
    }

    /// The greeting as a line, without its line end:
    /// `aemp;<version>;<id>;<auths,>;<framings,>;k=v;...`. The fields are
    /// written as they are; the caller keeps them free of `;`, `,` (in
    /// list entries), CR and LF.
    pub fn to_line(&self) -> String {
        let mut line = format!(
            "aemp;{};{};{};{}",
            self.version,
            self.node_id,
            self.auths.join(","),
            self.framings.join(",")
        );
        for (k, v) in &self.kv {
            line.push(';');
            line.push_str(k);
            line.push('=');
            line.push_str(v);
        }
        line
    }
}

/// Parses a greeting line (line 1 of the handshake), with or without its
/// line end.
///
/// Errors ([`Error::Protocol`]) name the problem: a line over [`MAX_LINE`]
/// bytes, a first field other than `aemp`, a version that is not a number
/// or not numerically 0 (the message then starts with [`VERSION_MISMATCH`]),
/// fewer than five fields, an empty node ID, or a node ID with `#`, CR or
/// LF.
pub fn parse(line: &str) -> Result<Greeting> {
    let line = strip_line_end(line);
    if line.len() > MAX_LINE {
        return Err(proto(format!(
            "greeting line is {} bytes long, over the limit of {MAX_LINE}",
            line.len()
        )));
    }
    let fields: Vec<&str> = line.split(';').collect();
    if fields[0] != "aemp" {
        return Err(proto(format!(
            "not an AEMP greeting: first field is {:?}, expected \"aemp\"",
            truncate(fields[0], 40)
        )));
    }
    let Some(&version) = fields.get(1) else {
        return Err(proto("greeting has too few fields: 1 of at least 5"));
    };
    match numeric_prefix(version) {
        Some((n, used)) if version[used..].trim().is_empty() => {
            if n != 0.0 {
                return Err(proto(format!(
                    "{VERSION_MISMATCH}: peer speaks protocol {}, we speak {PROTOCOL_VERSION}",
                    version.trim()
                )));
            }
        }
        _ => {
            return Err(proto(format!("greeting version field {:?} is not a number", truncate(version, 40))))
        }
    }
    if fields.len() < 5 {
        return Err(proto(format!("greeting has too few fields: {} of at least 5", fields.len())));
    }
    let node_id = fields[2];
    if node_id.is_empty() {
        return Err(proto("greeting has an empty node ID"));
    }
    if let Some(c) = node_id.chars().find(|c| matches!(c, '#' | '\r' | '\n')) {
        return Err(proto(format!("greeting node ID {:?} contains {c:?}", truncate(node_id, 80))));
    }
    let list =
        |s: &str| -> Vec<String> { s.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect() };
    let kv = fields[5..]
        .iter()
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => ((*item).to_owned(), String::new()),
        })
        .collect();
    Ok(Greeting {
        version: version.to_owned(),
        node_id: node_id.to_owned(),
        auths: list(fields[3]),
        framings: list(fields[4]),
        kv,
    })
}

/// A fresh nonce line (handshake line 2): standard base64, with padding,
/// of [`NONCE_BYTES`] random bytes (88 characters).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// A fresh incarnation string (Part B): 16 random bytes as URL-safe base64
/// without padding, so it never holds `;`, `=` or `,`. Choose it once per
/// process start.
pub fn new_incarnation() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a peer's nonce line (handshake line 2, without line end).
///
/// Lenient on purpose: any non-empty text of at most [`MAX_NONCE_LEN`]
/// bytes drawn from the base64 alphabets (standard and URL-safe, `=`
/// padding anywhere) passes; it is not decoded. Errors are
/// [`Error::Protocol`].
pub fn check_nonce(line: &str) -> Result<()> {
    let line = strip_line_end(line);
    if line.is_empty() {
        return Err(proto("peer's nonce line is empty"));
    }
    if line.len() > MAX_NONCE_LEN {
        return Err(proto(format!(
            "peer's nonce line is {} bytes long, over the limit of {MAX_NONCE_LEN}",
            line.len()
        )));
    }
    if let Some(c) =
        line.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_')))
    {
        return Err(proto(format!("peer's nonce line contains {c:?}, which is not base64")));
    }
    Ok(())
}

/// Splits the handshake phase's input into lines.
///
/// Lines end in LF or CR LF. A line longer than the limit is an error as
/// soon as that is certain, without waiting for its end. It never panics.
#[derive(Debug, Clone)]
pub struct LineReader {
    max_line: usize,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader::new()
    }
}

impl LineReader {
    /// A reader with the default limit, [`MAX_LINE`] bytes per line.
    pub fn new() -> Self {
        LineReader { max_line: MAX_LINE }
    }

    /// A reader that allows at most `max_line` bytes per line (line end
    /// not counted).
    pub fn with_max_line(max_line: usize) -> Self {
        LineReader { max_line }
    }

    /// The limit in bytes per line, line end not counted.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Takes the next line from the start of `buf`.
    ///
    /// Returns `Ok(Some((line, consumed)))` with the line without CR LF and
    /// the number of bytes (line end included) to drop from the front of
    /// `buf`; `Ok(None)` when no complete line has arrived yet; an
    /// [`Error::Protocol`] for a line over the limit (also when its end has
    /// not arrived yet) and an [`Error::Decode`] for a line that is not
    /// UTF-8.
    pub fn next_line(&mut self, buf: &[u8]) -> Result<Option<(String, usize)>> {
        // A legal line ends at most at index max_line + 1 (content, CR, LF).
        let window = self.max_line.saturating_add(2).min(buf.len());
        let Some(lf) = buf[..window].iter().position(|&b| b == b'\n') else {
            let n = buf.len();
            let too_long = n > self.max_line.saturating_add(1)
                || (n == self.max_line.saturating_add(1) && buf[n - 1] != b'\r');
            if too_long {
                return Err(self.too_long());
            }
            return Ok(None);
        };
        let mut content = &buf[..lf];
        if let [rest @ .., b'\r'] = content {
            content = rest;
        }
        if content.len() > self.max_line {
            return Err(self.too_long());
        }
        match std::str::from_utf8(content) {
            Ok(s) => Ok(Some((s.to_owned(), lf + 1))),
            Err(e) => Err(Error::Decode(format!("handshake line is not valid UTF-8 ({e})"))),
        }
    }

    fn too_long(&self) -> Error {
        proto(format!("handshake line longer than the limit of {} bytes", self.max_line))
    }
}

/// aemp's auth accept list, in order: [`OUR_AUTHS`], then `tls_anon` and
/// `cleartext` when the configuration allows them.
pub fn our_auth_list(allow_cleartext: bool, allow_tls_anon: bool) -> Vec<String> {
    let mut list: Vec<String> = OUR_AUTHS.iter().map(|s| (*s).to_owned()).collect();
    if allow_tls_anon {
        list.push(AUTH_TLS_ANON.to_owned());
    }
    if allow_cleartext {
        list.push(AUTH_CLEARTEXT.to_owned());
    }
    list
}

/// The auth methods this side is able to send, in our order of preference:
/// the secret-based ones only with a secret, `tls_md6_64_256` always
/// (it needs only TLS), `tls_anon` when allowed. Never `cleartext` (C.1).
pub fn sendable_auths(have_secret: bool, allow_tls_anon: bool) -> Vec<&'static str> {
    let mut list = Vec::with_capacity(4);
    for m in OUR_AUTHS {
        if have_secret || m.starts_with("tls_") {
            list.push(m);
        }
    }
    if allow_tls_anon {
        list.push(AUTH_TLS_ANON);
    }
    list
}

/// The auth method to send: the first entry of the **peer's** accept list
/// that is in `we_can_send`. `tls_*` methods count only when `tls_on`;
/// `cleartext` is never chosen (C.1). `None`: no match, close.
pub fn choose_auth(peer_accepts: &[String], we_can_send: &[&str], tls_on: bool) -> Option<String> {
    peer_accepts
        .iter()
        .find(|m| {
            m.as_str() != AUTH_CLEARTEXT
                && (tls_on || !m.starts_with("tls_"))
                && we_can_send.contains(&m.as_str())
        })
        .cloned()
}

/// The framing to send: the first entry of the **peer's** framing list that
/// is in `we_support`. `None`: no match, close (C.2: a peer offering only
/// `storable` ends here).
pub fn choose_framing(peer_accepts: &[String], we_support: &[&str]) -> Option<String> {
    peer_accepts.iter().find(|f| we_support.contains(&f.as_str())).cloned()
}

/// Checks the framing named in a peer's auth line: it must be one aemp
/// speaks ([`OUR_FRAMINGS`], C.1). The error ([`Error::Protocol`]) says
/// when it is `storable` (C.2).
pub fn accept_peer_framing(framing: &str) -> Result<()> {
    if OUR_FRAMINGS.contains(&framing) {
        Ok(())
    } else if framing == "storable" {
        Err(proto("peer wants to send the storable framing, which aemp does not speak"))
    } else {
        Err(proto(format!(
            "peer wants to send framing {:?}, which aemp does not speak",
            truncate(framing, 40)
        )))
    }
}

/// Whether TLS is on for this connection: we have a certificate and the
/// peer sent `tls=` with an integer part of at least 1.
pub fn tls_on(we_have_cert: bool, peer: &Greeting) -> bool {
    we_have_cert && peer.tls()
}

/// Whether this side is the TLS client: its nonce line (the base64 text,
/// compared bytewise) is the lower one. Who opened the TCP connection does
/// not matter. Equal nonces (an echo, rejected anyway) give `false`.
pub fn we_are_tls_client(our_nonce: &str, peer_nonce: &str) -> bool {
    our_nonce.as_bytes() < peer_nonce.as_bytes()
}

/// Our greeting: version 0, our auth and framing lists, then
/// `provider=`, `timeout=`, `peeraddr=` (when known), `tls=1.0` (only with
/// a certificate), `aemp=1` and `incarnation=` (Part B).
///
/// `provider` is the whole value, normally [`PROVIDER`]; `incarnation`
/// normally comes from [`new_incarnation`]. The caller keeps the node ID
/// valid and the values free of `;`, CR and LF.
#[allow(clippy::too_many_arguments)]
pub fn our_greeting(
    node_id: &str,
    allow_cleartext: bool,
    allow_tls_anon: bool,
    have_cert: bool,
    timeout_secs: u64,
    peeraddr: Option<&str>,
    incarnation: &str,
    provider: &str,
) -> Greeting {
    let mut kv =
        vec![("provider".to_owned(), provider.to_owned()), ("timeout".to_owned(), timeout_secs.to_string())];
    if let Some(addr) = peeraddr {
        kv.push(("peeraddr".to_owned(), addr.to_owned()));
    }
    if have_cert {
        kv.push(("tls".to_owned(), "1.0".to_owned()));
    }
    kv.push(("aemp".to_owned(), "1".to_owned()));
    kv.push(("incarnation".to_owned(), incarnation.to_owned()));
    Greeting {
        version: PROTOCOL_VERSION.to_owned(),
        node_id: node_id.to_owned(),
        auths: our_auth_list(allow_cleartext, allow_tls_anon),
        framings: OUR_FRAMINGS.iter().map(|s| (*s).to_owned()).collect(),
        kv,
    }
}

fn proto(msg: impl Into<String>) -> Error {
    Error::Protocol(msg.into())
}

/// Drops one trailing LF, then one trailing CR.
fn strip_line_end(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// At most `max` characters of `s`, for error messages.
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Whether a value read as a Perl number has an integer part of at least 1.
fn int_part_at_least_one(v: &str) -> bool {
    numeric_prefix(v).is_some_and(|(n, _)| n.trunc() >= 1.0)
}

/// Reads the numeric prefix of `s` the way Perl does (leading whitespace,
/// sign, digits, fraction, exponent): the value and the bytes used, or
/// `None` when there is no digit.
fn numeric_prefix(s: &str) -> Option<(f64, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    if i < b.len() && matches!(b[i], b'+' | b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if digits > 0 || j > frac_start {
            digits += j - frac_start;
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    s[start..i].parse::<f64>().ok().map(|n| (n, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A_C1: &str = "aemp;0;anon/Lscqse5YByBNl4qfcBWlqA=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12;peeraddr=127.0.0.1:40401";
    const A_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;peeraddr=127.0.0.1:52166;timeout=12";
    const B_C1: &str = "aemp;0;anon/g6dVYjx359AbY6neK3EjsQ=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;storable;timeout=12;provider=AE-0.9;peeraddr=127.0.0.1:40403";
    const B_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12;peeraddr=127.0.0.1:44198";
    const C_C1: &str = "aemp;0;pyraw;hmac_md6_64_256;json;provider=py-raw-0;timeout=30";
    const C_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;timeout=12;provider=AE-0.9;peeraddr=127.0.0.1:36426";
    const D_S1A: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;peeraddr=127.0.0.1:44054;timeout=12;provider=AE-0.9";
    const D_S1B: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;timeout=12;peeraddr=127.0.0.1:44058;provider=AE-0.9";
    const D_V1: &str = "aemp;1;pyv1;hmac_md6_64_256;json";
    const E_S1: &str = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;timeout=12;provider=AE-0.9;tls=1.0;peeraddr=127.0.0.1:34142";
    const E_C1: &str = "aemp;0;anon/BwsYPFgYqphhknIgHJjAAQ=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;timeout=12;tls=1.0;provider=AE-0.9;peeraddr=127.0.0.1:40431";
    const E_S2: &str =
        "T42dDcbFHQAiAEUoikvf6Qs6JxFotf3qCb+HVY/0NaW2RMPaags39jEIlM0BndlZXKRAh17iS1AOhz3IVB0hto3C";
    const E_C2: &str =
        "2rfgaBV4iR2qlCN5v9GapjhpBB8mc3kDspDwjdKlqCmPGPhHAv9k4ps20qjSpkp46L699UR0HmLb0WWt3q0XZugl";

    const NONCES: [&str; 11] = [
        "fR47gOZmuMWVIgFTj18eXHrBlBd6W2h+Rthz6IE14cOKv85l0iK3va91ftUYT3SFcqu+9zMo5eF0bqKpjR6nsGDB",
        "5HP9UiuK6M10r4EbSXEayX5keyC2DHR1Pb1LdQAKyalHL2AhDBCdHWFlCh56aJt1t9uJItnMavGreDpU2bVkw9xc",
        "mdNlNL+4mSduMuZ7k1wvB2/ilYD5Lwp6YjCpHRXzymtRdBuo9d+YAJgt2VYHbqnQsQoRjahQI7qXLy2adZiMZkQH",
        "anFxQkb4AGmMck+Q36/JYZ/AEPCC6318q1frFtgJJRk73heh2z4MjK923uwRR5EM8a5eglb098DTsNtLcj9W/Afp",
        "H5zJa4inrdNrzXlLF5XgTTCPaa1hXiNWc/uyRZZqaESnx8CYxaqDJDKhQK5di9VSINB6iyuVuDonxZpy0qYssCLa",
        "DS8gdiJuSqsUuT+lhYQe0bbdEfCSwf1vOpaluIGkpQyQ/siat3gQaIDLuG8papOJZD0vkq4w93bWj5N2r9Z5wIqZ",
        "wBJwFXsJHd/pnx96vF5usJ/o+DEQMRWslxYaqFxVoLKBDVehUFMkpQppDwdrp3CfoAQLVbLjc/2cPzHdF4PZGFll",
        "d2veu91YGUAvdZv3Ty2Ds2musCcG4+QRsDf+lJz7Of6aY9QhVY9pxTuDCWSXztNgC+kSCDFiZeO9VPbyJeBqnRWM",
        "NupLYE58tSm5PiqSql02D2QRa+rT6cCOGkveZtcp+mwgz2HGorJCKUnZTvVxasxyZpXutnIyRKkP+eeMfS4Ra0Fm",
        "Cev+m4keUkovd65+saqbmWzueUVjgUlWdM7o9wlaXc2C1T/fp+3V5x94CELC/PWiMX5dO97U3T8h+kzc3KT3VrmW",
        E_S2,
    ];

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn msg(r: Result<Greeting>) -> String {
        match r {
            Ok(g) => panic!("expected an error, got {g:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_every_version0_transcript_greeting() {
        for line in [A_C1, A_S1, B_C1, B_S1, C_C1, C_S1, D_S1A, D_S1B, E_S1, E_C1] {
            let g = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(g.version, "0");
            assert_eq!(g.to_line(), line, "round trip");
            assert!(!g.is_aemp_ext());
            assert_eq!(g.incarnation(), None);
        }
        let g = parse(A_C1).unwrap();
        assert_eq!(g.node_id, "anon/Lscqse5YByBNl4qfcBWlqA=");
        assert_eq!(g.auths, strings(&["tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext"]));
        assert_eq!(g.framings, strings(&["json", "storable"]));
        assert_eq!(g.provider(), Some("AE-0.9"));
        assert_eq!(g.timeout(), Some(12.0));
        assert_eq!(g.peeraddr(), Some("127.0.0.1:40401"));
        assert!(!g.tls());
        assert_eq!(parse(B_C1).unwrap().framings, strings(&["storable"]));
        assert!(parse(E_S1).unwrap().tls());
        assert!(parse(E_C1).unwrap().tls());
    }

    #[test]
    fn parses_the_minimal_python_greeting() {
        let g = parse(C_C1).unwrap();
        assert_eq!(g.node_id, "pyraw");
        assert_eq!(g.auths, strings(&["hmac_md6_64_256"]));
        assert_eq!(g.framings, strings(&["json"]));
        assert_eq!(g.provider(), Some("py-raw-0"));
        assert_eq!(g.timeout(), Some(30.0));
        assert_eq!(g.peeraddr(), None);
        assert!(!g.tls());
        // With its line end, as read from the wire.
        assert_eq!(parse(&format!("{C_C1}\r\n")).unwrap(), g);
        assert_eq!(parse(&format!("{C_C1}\n")).unwrap(), g);
    }

    #[test]
    fn version_1_is_a_version_mismatch() {
        let m = msg(parse(D_V1));
        assert!(m.contains("version mismatch: peer speaks protocol 1, we speak 0"), "{m}");
        let m = msg(parse("aemp;1"));
        assert!(m.contains(VERSION_MISMATCH), "{m}");
        let m = msg(parse("aemp;2.5;x;a;b;c=d"));
        assert!(m.contains("peer speaks protocol 2.5"), "{m}");
    }

    #[test]
    fn version_compares_numerically() {
        for v in ["0", "0.0", "00", "0e0", "-0", "+0.000", ".0", "0."] {
            let g = parse(&format!("aemp;{v};n;hmac_md6_64_256;json")).unwrap();
            assert_eq!(g.version, v);
        }
        for v in ["0.1", "1", "1.0", "-1"] {
            let m = msg(parse(&format!("aemp;{v};n;a;b")));
            assert!(m.contains(VERSION_MISMATCH), "{v}: {m}");
        }
        for v in ["", "x", "0x", "zero", "inf", "NaN", "."] {
            let m = msg(parse(&format!("aemp;{v};n;a;b")));
            assert!(m.contains("is not a number"), "{v:?}: {m}");
            assert!(!m.contains(VERSION_MISMATCH), "{v:?}: {m}");
        }
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let m = msg(parse("AEMP;0;n;a;b"));
        assert!(m.contains("not an AEMP greeting"), "{m}");
        let m = msg(parse("GET / HTTP/1.1"));
        assert!(m.contains("not an AEMP greeting"), "{m}");
        let m = msg(parse(""));
        assert!(m.contains("not an AEMP greeting"), "{m}");
        let m = msg(parse("aemp"));
        assert!(m.contains("too few fields"), "{m}");
        let m = msg(parse("aemp;0;n;a"));
        assert!(m.contains("too few fields: 4"), "{m}");
        let m = msg(parse("aemp;0;;a;b"));
        assert!(m.contains("empty node ID"), "{m}");
        let m = msg(parse("aemp;0;n#p;a;b"));
        assert!(m.contains("node ID") && m.contains('#'), "{m}");
        let m = msg(parse("aemp;0;n\rx;a;b"));
        assert!(m.contains("node ID"), "{m}");
        let long = format!("aemp;0;n;a;b;x={}", "y".repeat(MAX_LINE));
        let m = msg(parse(&long));
        assert!(m.contains("over the limit"), "{m}");
        // Exactly at the limit is fine.
        let base = "aemp;0;n;a;b;x=";
        let at = format!("{base}{}", "y".repeat(MAX_LINE - base.len()));
        assert_eq!(at.len(), MAX_LINE);
        assert!(parse(&at).is_ok());
    }

    #[test]
    fn key_values() {
        let g = parse("aemp;0;n;a,,b;;timeout=;tls=2;x;;y=a=b;x=1;tls=0.9;aemp=1;incarnation=").unwrap();
        assert_eq!(g.auths, strings(&["a", "b"]));
        assert!(g.framings.is_empty());
        assert_eq!(g.timeout(), None);
        assert!(!g.tls(), "last tls= wins and 0.9 has integer part 0");
        assert_eq!(g.get("y"), Some("a=b"));
        assert_eq!(g.get("x"), Some("1"));
        assert!(g.is_aemp_ext());
        assert_eq!(g.incarnation(), None);
        assert_eq!(g.get("nope"), None);
        let g = parse("aemp;0;n;a;b;timeout=7.5s;tls= 1;aemp=0").unwrap();
        assert_eq!(g.timeout(), Some(7.5));
        assert!(g.tls());
        assert!(!g.is_aemp_ext());
        for t in ["0", "-3", "abc", "1e999"] {
            let g = parse(&format!("aemp;0;n;a;b;timeout={t}")).unwrap();
            assert_eq!(g.timeout(), None, "{t}");
        }
    }

    #[test]
    fn our_greeting_round_trips() {
        let g = our_greeting("node-1", false, false, false, 12, Some("127.0.0.1:4040"), "inc123", PROVIDER);
        let line = g.to_line();
        assert_eq!(
            line,
            format!(
                "aemp;0;node-1;hmac_blake3_256,tls_md6_64_256,hmac_md6_64_256;msgpack,json;\
                 provider={PROVIDER};timeout=12;peeraddr=127.0.0.1:4040;aemp=1;incarnation=inc123"
            )
        );
        assert!(PROVIDER.starts_with("aemp-"));
        let p = parse(&line).unwrap();
        assert_eq!(p, g);
        assert!(p.is_aemp_ext());
        assert!(!p.tls());
        assert_eq!(p.incarnation(), Some("inc123"));
        assert_eq!(p.timeout(), Some(12.0));

        let inc = new_incarnation();
        let g = our_greeting("n", true, true, true, 30, None, &inc, "aemp-9");
        let p = parse(&g.to_line()).unwrap();
        assert_eq!(
            p.auths,
            strings(&["hmac_blake3_256", "tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext"])
        );
        assert!(p.tls());
        assert_eq!(p.get("tls"), Some("1.0"));
        assert_eq!(p.peeraddr(), None);
        assert_eq!(p.incarnation(), Some(inc.as_str()));
        assert_eq!(p.provider(), Some("aemp-9"));
        let g = our_greeting("n", true, false, false, 1, None, "i", "p");
        assert_eq!(g.auths.last().map(String::as_str), Some("cleartext"));
        assert!(!g.auths.iter().any(|a| a == "tls_anon"));
    }

    #[test]
    fn nonces() {
        for _ in 0..20 {
            let n = new_nonce();
            assert_eq!(n.len(), 88);
            check_nonce(&n).unwrap();
            assert_eq!(STANDARD.decode(&n).unwrap().len(), NONCE_BYTES);
        }
        assert_ne!(new_nonce(), new_nonce());
        for n in NONCES.iter().chain([&E_C2]) {
            check_nonce(n).unwrap();
        }
        check_nonce("abc").unwrap();
        check_nonce("ab-_c=").unwrap();
        assert!(check_nonce("").unwrap_err().to_string().contains("empty"));
        assert!(check_nonce("ab c").is_err());
        assert!(check_nonce("abc;").is_err());
        assert!(check_nonce("aemp;0;n;a;b").is_err());
        assert!(check_nonce(&"A".repeat(MAX_NONCE_LEN + 1)).is_err());
        check_nonce(&"A".repeat(MAX_NONCE_LEN)).unwrap();
        let inc = new_incarnation();
        assert!(inc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    const PERL_AUTHS: [&str; 4] = ["tls_md6_64_256", "hmac_md6_64_256", "tls_anon", "cleartext"];

    #[test]
    fn choose_auth_against_09_and_aemp() {
        let perl = parse(A_S1).unwrap().auths;
        let we = sendable_auths(true, false);
        assert_eq!(we, vec!["hmac_blake3_256", "tls_md6_64_256", "hmac_md6_64_256"]);
        assert_eq!(choose_auth(&perl, &we, true).as_deref(), Some("tls_md6_64_256"));
        assert_eq!(choose_auth(&perl, &we, false).as_deref(), Some("hmac_md6_64_256"));
        let aemp = our_auth_list(false, false);
        assert_eq!(choose_auth(&aemp, &we, false).as_deref(), Some("hmac_blake3_256"));
        assert_eq!(choose_auth(&aemp, &we, true).as_deref(), Some("hmac_blake3_256"));
        // Without a secret only the TLS methods are left.
        let we = sendable_auths(false, false);
        assert_eq!(we, vec!["tls_md6_64_256"]);
        assert_eq!(choose_auth(&perl, &we, true).as_deref(), Some("tls_md6_64_256"));
        assert_eq!(choose_auth(&perl, &we, false), None);
        assert_eq!(choose_auth(&aemp, &we, true).as_deref(), Some("tls_md6_64_256"));
        // tls_anon only under TLS and only when allowed.
        let we = sendable_auths(false, true);
        let anon_first = strings(&["tls_anon", "tls_md6_64_256"]);
        assert_eq!(choose_auth(&anon_first, &we, true).as_deref(), Some("tls_anon"));
        assert_eq!(choose_auth(&anon_first, &we, false), None);
        // The python client accepts only hmac_md6_64_256.
        let py = parse(C_C1).unwrap().auths;
        assert_eq!(choose_auth(&py, &sendable_auths(true, false), true).as_deref(), Some("hmac_md6_64_256"));
        // cleartext is never chosen, even when listed as sendable.
        let clear = strings(&["cleartext"]);
        assert_eq!(choose_auth(&clear, &["cleartext"], false), None);
        assert_eq!(choose_auth(&strings(&PERL_AUTHS), &["cleartext"], true), None);
        assert_eq!(choose_auth(&[], &OUR_AUTHS, true), None);
        // Unknown names are skipped.
        let odd = strings(&["sha1_magic", "hmac_md6_64_256"]);
        assert_eq!(choose_auth(&odd, &OUR_AUTHS, false).as_deref(), Some("hmac_md6_64_256"));
    }

    #[test]
    fn choose_framing_cases() {
        let perl = parse(A_S1).unwrap().framings;
        assert_eq!(choose_framing(&perl, &OUR_FRAMINGS).as_deref(), Some("json"));
        let aemp = our_greeting("n", false, false, false, 1, None, "i", "p").framings;
        assert_eq!(choose_framing(&aemp, &OUR_FRAMINGS).as_deref(), Some("msgpack"));
        let storable_only = parse(B_C1).unwrap().framings;
        assert_eq!(choose_framing(&storable_only, &OUR_FRAMINGS), None);
        // 0.9 picks from our list only what it knows.
        assert_eq!(choose_framing(&aemp, &["json", "storable"]).as_deref(), Some("json"));
        accept_peer_framing("json").unwrap();
        accept_peer_framing("msgpack").unwrap();
        let e = accept_peer_framing("storable").unwrap_err().to_string();
        assert!(e.contains("storable"), "{e}");
        assert!(accept_peer_framing("JSON").is_err());
        assert!(accept_peer_framing("").is_err());
    }

    #[test]
    fn tls_decision_and_role() {
        let e_server = parse(E_S1).unwrap();
        let e_client = parse(E_C1).unwrap();
        assert!(tls_on(true, &e_server));
        assert!(!tls_on(false, &e_server));
        assert!(!tls_on(true, &parse(A_S1).unwrap()));
        assert!(tls_on(true, &e_client));
        // Session E: the client's nonce starts with "2" < "T".
        assert!(we_are_tls_client(E_C2, E_S2));
        assert!(!we_are_tls_client(E_S2, E_C2));
        assert!(!we_are_tls_client(E_S2, E_S2));
        // Bytewise, so uppercase sorts before lowercase and "+" before digits.
        assert!(we_are_tls_client("Z", "a"));
        assert!(we_are_tls_client("+", "0"));
        assert!(we_are_tls_client("ab", "abc"));
    }

    /// Feeds `input` to a reader in chunks that end at the given offsets,
    /// collecting lines the way the connection code would.
    fn feed(reader: &mut LineReader, input: &[u8], cuts: &[usize]) -> Result<Vec<String>> {
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        let mut pos = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            buf.extend_from_slice(&input[pos..cut]);
            pos = cut;
            while let Some((line, used)) = reader.next_line(&buf)? {
                lines.push(line);
                buf.drain(..used);
            }
        }
        Ok(lines)
    }

    #[test]
    fn line_reader_split_at_every_byte() {
        let input = format!("{C_C1}\n{}\r\nhmac_md6_64_256;00;json\n[1]", NONCES[4]);
        let want = vec![C_C1.to_owned(), NONCES[4].to_owned(), "hmac_md6_64_256;00;json".to_owned()];
        for cut in 0..=input.len() {
            let lines = feed(&mut LineReader::new(), input.as_bytes(), &[cut]).unwrap();
            assert_eq!(lines, want, "cut at {cut}");
        }
        let every: Vec<usize> = (0..input.len()).collect();
        assert_eq!(feed(&mut LineReader::new(), input.as_bytes(), &every).unwrap(), want);
    }

    #[test]
    fn line_reader_basics() {
        let mut r = LineReader::default();
        assert_eq!(r.max_line(), MAX_LINE);
        assert_eq!(r.next_line(b"").unwrap(), None);
        assert_eq!(r.next_line(b"abc").unwrap(), None);
        assert_eq!(r.next_line(b"abc\r").unwrap(), None);
        assert_eq!(r.next_line(b"abc\r\nxyz").unwrap(), Some(("abc".to_owned(), 5)));
        assert_eq!(r.next_line(b"abc\nxyz").unwrap(), Some(("abc".to_owned(), 4)));
        assert_eq!(r.next_line(b"\n").unwrap(), Some((String::new(), 1)));
        assert_eq!(r.next_line(b"\r\n").unwrap(), Some((String::new(), 2)));
        // Only the CR right before LF is a line end.
        assert_eq!(r.next_line(b"a\rb\r\r\n").unwrap(), Some(("a\rb\r".to_owned(), 6)));
    }

    #[test]
    fn line_reader_limits() {
        let mut r = LineReader::with_max_line(8);
        assert_eq!(r.next_line(b"12345678\n").unwrap(), Some(("12345678".to_owned(), 9)));
        assert_eq!(r.next_line(b"12345678\r\n").unwrap(), Some(("12345678".to_owned(), 10)));
        assert_eq!(r.next_line(b"12345678").unwrap(), None);
        assert_eq!(r.next_line(b"12345678\r").unwrap(), None);
        // Known too long before the line end arrives.
        let e = r.next_line(b"123456789").unwrap_err();
        assert!(matches!(e, Error::Protocol(_)), "{e}");
        assert!(e.to_string().contains("limit of 8"), "{e}");
        assert!(r.next_line(b"12345678\r\r").is_err());
        assert!(r.next_line(b"123456789\n").is_err());
        assert!(r.next_line(b"12345678\r\r\n").is_err());
        // The default limit: an oversized line errors after max_line + 1 bytes.
        let mut r = LineReader::new();
        let big = vec![b'a'; MAX_LINE + 1];
        assert!(r.next_line(&big).is_err());
        assert_eq!(r.next_line(&big[..MAX_LINE]).unwrap(), None);
        let mut huge = vec![b'a'; 10 * MAX_LINE];
        huge.push(b'\n');
        assert!(r.next_line(&huge).is_err());
        // Zero and huge limits do not overflow.
        let mut r = LineReader::with_max_line(0);
        assert_eq!(r.next_line(b"\n").unwrap(), Some((String::new(), 1)));
        assert_eq!(r.next_line(b"\r").unwrap(), None);
        assert!(r.next_line(b"a").is_err());
        let mut r = LineReader::with_max_line(usize::MAX);
        assert_eq!(r.next_line(b"abc").unwrap(), None);
        assert_eq!(r.next_line(b"ab\n").unwrap(), Some(("ab".to_owned(), 3)));
    }

    #[test]
    fn line_reader_invalid_utf8() {
        let mut r = LineReader::new();
        let e = r.next_line(b"ab\xff\xfecd\n").unwrap_err();
        assert!(matches!(e, Error::Decode(_)), "{e}");
        // Incomplete UTF-8 without a line end is simply not a line yet.
        assert_eq!(r.next_line(b"ab\xc3").unwrap(), None);
        assert_eq!(
            r.next_line("zażółć\n".as_bytes()).unwrap(),
            Some(("zażółć".to_owned(), "zażółć\n".len()))
        );
    }

    #[test]
    fn numeric_prefix_reads_like_perl() {
        assert_eq!(numeric_prefix("12"), Some((12.0, 2)));
        assert_eq!(numeric_prefix(" 1.0abc"), Some((1.0, 4)));
        assert_eq!(numeric_prefix("1e3x"), Some((1000.0, 3)));
        assert_eq!(numeric_prefix("1e"), Some((1.0, 1)));
        assert_eq!(numeric_prefix("-.5"), Some((-0.5, 3)));
        assert_eq!(numeric_prefix("5."), Some((5.0, 2)));
        assert_eq!(numeric_prefix("."), None);
        assert_eq!(numeric_prefix("+"), None);
        assert_eq!(numeric_prefix(""), None);
        assert_eq!(numeric_prefix("abc"), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
            let _ = check_nonce(&s);
        }

        #[test]
        fn parse_never_panics_on_near_greetings(
            fields in proptest::collection::vec("[a-z0-9_.=,#+ \\-]{0,12}", 0..9)
        ) {
            let line = format!("aemp;{}", fields.join(";"));
            if let Ok(g) = parse(&line) {
                prop_assert!(!g.node_id.is_empty());
                let _ = (g.timeout(), g.tls(), g.is_aemp_ext(), g.incarnation());
            }
        }

        #[test]
        fn parsed_greetings_write_back_to_themselves(
            fields in proptest::collection::vec("[a-z0-9_.=,#+ \\r-]{0,12}", 0..9),
            version in prop_oneof![Just("0"), Just("0.0"), Just(" 0 "), Just("00")],
        ) {
            let line = format!("aemp;{version};{}", fields.join(";"));
            if let Ok(g) = parse(&line) {
                let again = g.to_line();
                prop_assert!(again.len() <= line.len() + fields.len());
                // (A CR at the very end would be read as part of a CR LF.)
                if !again.ends_with('\r') {
                    prop_assert_eq!(parse(&again).unwrap(), g);
                }
            }
        }

        #[test]
        fn line_reader_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            max in 0usize..100,
        ) {
            let mut r = LineReader::with_max_line(max);
            let mut rest: &[u8] = &data;
            while let Ok(Some((line, used))) = r.next_line(rest) {
                prop_assert!(used >= 1 && used <= rest.len());
                prop_assert!(line.len() <= max);
                rest = &rest[used..];
            }
        }

        #[test]
        fn line_reader_finds_lines_in_any_split(
            lines in proptest::collection::vec("[ -~]{0,20}", 1..6),
            crlf in any::<bool>(),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let input: String = lines.iter().map(|l| format!("{l}{end}")).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            let got = feed(&mut LineReader::with_max_line(20), input.as_bytes(), &cuts).unwrap();
            prop_assert_eq!(got, lines);
        }

        #[test]
        fn greetings_round_trip(
            id in "[a-zA-Z0-9/=.:_-]{1,30}",
            timeout in 1u64..100_000,
            cert in any::<bool>(),
            clear in any::<bool>(),
            anon in any::<bool>(),
        ) {
            let g = our_greeting(&id, clear, anon, cert, timeout, Some("1.2.3.4:5"), "inc", PROVIDER);
            let p = parse(&g.to_line()).unwrap();
            prop_assert_eq!(&p, &g);
            prop_assert_eq!(p.tls(), cert);
            prop_assert_eq!(p.timeout(), Some(timeout as f64));
        }
    }
}
