//! The AEMP wire protocol, pure: handshake lines, authentication tokens and
//! message framing, as functions over bytes and strings (no I/O).

pub mod auth;
pub mod codec;
pub mod greeting;
