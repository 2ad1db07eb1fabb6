//! The framings a link can speak: JSON text or msgpack.

use crate::error::Result;
use crate::value::Value;
use crate::wire::codec::{self, JsonReader, Limits, MsgpackReader, SplitReader};

/// The framing of one direction of a link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Framing {
    Json,
    Msgpack,
}

impl Framing {
    pub(super) fn from_name(s: &str) -> Option<Framing> {
        match s {
            "json" => Some(Framing::Json),
            "msgpack" => Some(Framing::Msgpack),
            _ => None,
        }
    }

    pub(super) fn encode(self, msg: &[Value], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Framing::Json => codec::encode_json(msg, out),
            Framing::Msgpack => codec::encode_msgpack(msg, out),
        }
    }

    pub(super) fn encode_dest(self, dest: &str, payload: &[Value], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Framing::Json => codec::encode_json_dest(dest, payload, out),
            Framing::Msgpack => codec::encode_msgpack_dest(dest, payload, out),
        }
    }

    pub(super) fn reader(self, limits: Limits) -> Box<dyn SplitReader + Send> {
        match self {
            Framing::Json => Box::new(JsonReader::new(limits)),
            Framing::Msgpack => Box::new(MsgpackReader::new(limits)),
        }
    }
}
