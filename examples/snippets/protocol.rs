//! Snippets of the chapter "The wire protocol": the pure functions of
//! `aemp::wire`, which do no I/O.

// ANCHOR: imports
use aemp::msg;
use aemp::wire::auth::{self, AuthMethod};
use aemp::wire::codec::{self, FrameReader, JsonReader, Limits, MsgpackReader};
use aemp::wire::greeting;
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub fn run() -> aemp::Result<()> {
    negotiate()?;
    authenticate()?;
    frames()
}

// ANCHOR: negotiate
/// Reading a 0.9 node's greeting and choosing what to answer.
///
/// # Errors
/// When the greeting does not parse.
pub fn negotiate() -> aemp::Result<()> {
    let line = "aemp;0;perl-node;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;\
                json,storable;provider=AE-0.9;timeout=12;peeraddr=127.0.0.1:50012";
    let peer = greeting::parse(line)?;
    assert_eq!(peer.node_id, "perl-node");
    assert_eq!(peer.timeout(), Some(12.0));
    assert!(!peer.is_aemp_ext()); // no aemp=1: a 0.9 node
                                  // The auth method: the first of the peer's list that we can send.
                                  // Without TLS the tls_* methods do not count.
    let we_can_send = greeting::sendable_auths(true, false);
    let method = greeting::choose_auth(&peer.auths, &we_can_send, false);
    assert_eq!(method.as_deref(), Some("hmac_md6_64_256"));
    // The framing: the first of the peer's list that aemp speaks.
    let framing = greeting::choose_framing(&peer.framings, &greeting::OUR_FRAMINGS);
    assert_eq!(framing.as_deref(), Some("json"));
    // Another protocol version is refused.
    let err = greeting::parse("aemp;1;future-node;x;json").unwrap_err();
    assert!(err.to_string().contains(greeting::VERSION_MISMATCH));
    Ok(())
}
// ANCHOR_END: negotiate

// ANCHOR: authenticate
/// Both sides' auth tokens: each proves it knows the secret and binds
/// both greetings and nonces.
///
/// # Errors
/// When a token cannot be computed.
pub fn authenticate() -> aemp::Result<()> {
    let hello = |id: &str| {
        let g = greeting::our_greeting(id, false, false, false, 12, None, "inc", greeting::PROVIDER);
        (g.to_line(), greeting::new_nonce())
    };
    let (a1, a2) = hello("node-a");
    let (b1, b2) = hello("node-b");
    let secret = Some("chat secret");
    // a's token covers a's lines, then b's.
    let token = auth::token(AuthMethod::HmacBlake3, secret, (&a1, &a2), (&b1, &b2))?;
    // b checks it from its own point of view: its lines first.
    auth::verify(AuthMethod::HmacBlake3, secret, (&b1, &b2), (&a1, &a2), &token)?;
    let wrong = auth::verify(AuthMethod::HmacBlake3, Some("guess"), (&b1, &b2), (&a1, &a2), &token);
    assert!(wrong.is_err());
    // Plain-text secrets are refused unless the configuration allows them.
    assert!(auth::accept_peer_method("cleartext", false, false, false).is_err());
    Ok(())
}
// ANCHOR_END: authenticate

// ANCHOR: frames
/// One message in both framings: `[destination port name, payload...]`.
///
/// # Errors
/// When encoding or decoding fails.
pub fn frames() -> aemp::Result<()> {
    let payload = msg!["said", "bob", "hi"];
    let mut json = Vec::new();
    codec::encode_json_dest("c1.7", &payload, &mut json)?;
    assert_eq!(String::from_utf8_lossy(&json).trim_end(), r#"["c1.7","said","bob","hi"]"#);

    let mut packed = Vec::new();
    codec::encode_msgpack_dest("c1.7", &payload, &mut packed)?;
    // A BER length, then one MessagePack array.
    assert_eq!(usize::from(packed[0]), packed.len() - 1);

    // Readers take bytes and give back whole messages; `None` means
    // "not complete yet", never an error.
    let mut reader = MsgpackReader::new(Limits::default());
    assert!(reader.decode(&packed[..5])?.is_none());
    let (message, used) = reader.decode(&packed)?.expect("a whole message");
    assert_eq!((message, used), (msg!["c1.7", "said", "bob", "hi"].into_vec(), packed.len()));
    let mut reader = JsonReader::new(Limits::default());
    assert!(reader.decode(b"[\"c1.7\",[1,2").is_ok());
    assert!(reader.decode(b"[\"c1.7\",}").is_err());
    Ok(())
}
// ANCHOR_END: frames
