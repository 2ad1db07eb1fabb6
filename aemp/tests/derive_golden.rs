//! Golden tests: the wire shape of derived messages in both framings
//! (json and msgpack), pinned byte for byte, and read back.

use std::collections::BTreeMap;

use aemp::wire::codec::{encode_json, encode_msgpack, FrameReader, JsonReader, MsgpackReader};
use aemp::{msg, AempMessage, Bytes, Message, Msg, PortId, TypedPortId};
use serde::{Deserialize, Serialize};

#[derive(AempMessage, Debug, Clone, PartialEq)]
enum Chat {
    Join {
        client: PortId,
        nick: String,
    },
    Say(String, u32),
    Leave,
    #[aemp(rename = "kick!")]
    KickUser {
        nick: String,
        reason: Option<String>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Pos {
    x: i32,
    y: i32,
}

#[derive(AempMessage, Debug, Clone, PartialEq)]
#[aemp(tag = "upd")]
struct Update {
    at: Pos,
    path: Vec<Pos>,
    labels: BTreeMap<String, f64>,
    owner: TypedPortId<Chat>,
    flag: bool,
}

#[derive(AempMessage, Debug, Clone, PartialEq)]
struct Blob(serde_bytes_like::Raw);

/// A field type with a hand-written serde form: bytes.
mod serde_bytes_like {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Debug, Clone, PartialEq)]
    pub struct Raw(pub Vec<u8>);

    impl Serialize for Raw {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Raw {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Raw;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
                    Ok(Raw(v.to_vec()))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

fn json(m: &Msg) -> String {
    let mut out = Vec::new();
    encode_json(m, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn msgpack(m: &Msg) -> Vec<u8> {
    let mut out = Vec::new();
    encode_msgpack(m, &mut out).unwrap();
    out
}

/// Encodes `value`, checks both framings against the golden bytes, reads
/// the bytes back with the framing readers and decodes them again.
fn golden<M: Message + PartialEq + std::fmt::Debug>(value: &M, want_json: &str, want_msgpack: &[u8]) {
    let m = value.to_msg().unwrap();
    assert_eq!(json(&m), want_json, "json of {value:?}");
    assert_eq!(msgpack(&m), want_msgpack, "msgpack of {value:?}");

    let (got, used) = JsonReader::default().decode(want_json.as_bytes()).unwrap().unwrap();
    assert_eq!(used, want_json.len());
    assert_eq!(&M::from_msg(&Msg::from(got)).unwrap(), value);

    let (got, used) = MsgpackReader::default().decode(want_msgpack).unwrap().unwrap();
    assert_eq!(used, want_msgpack.len());
    assert_eq!(&M::from_msg(&Msg::from(got)).unwrap(), value);
}

fn pid(s: &str) -> PortId {
    s.parse().unwrap()
}

#[test]
fn struct_variant_is_tag_then_fields_in_order() {
    let v = Chat::Join { client: pid("n#p"), nick: "bob".into() };
    golden(&v, r#"["join","n#p","bob"]"#, b"\x0e\x93\xa4join\xa3n#p\xa3bob");
}

#[test]
fn tuple_variant_is_tag_then_elements() {
    golden(&Chat::Say("hi".into(), 300), r#"["say","hi",300]"#, b"\x0b\x93\xa3say\xa2hi\xcd\x01\x2c");
}

#[test]
fn unit_variant_is_the_tag_alone() {
    golden(&Chat::Leave, r#"["leave"]"#, b"\x07\x91\xa5leave");
}

#[test]
fn renamed_variant_uses_its_tag_and_none_is_null() {
    let v = Chat::KickUser { nick: "eve".into(), reason: None };
    golden(&v, r#"["kick!","eve",null]"#, b"\x0c\x93\xa5kick!\xa3eve\xc0");
    let v = Chat::KickUser { nick: "eve".into(), reason: Some("spam".into()) };
    golden(&v, r#"["kick!","eve","spam"]"#, b"\x10\x93\xa5kick!\xa3eve\xa4spam");
}

#[test]
fn struct_message_nests_serde_values_as_maps_and_arrays() {
    let v = Update {
        at: Pos { x: 1, y: -2 },
        path: vec![Pos { x: 0, y: 0 }],
        labels: BTreeMap::from([("a".to_owned(), 0.5)]),
        owner: TypedPortId::new_unchecked(pid("n#o")),
        flag: true,
    };
    let mut mp = b"\x00\x96\xa3upd\x82\xa1x\x01\xa1y\xfe\x91\x82\xa1x\x00\xa1y\x00\x81\xa1a".to_vec();
    mp.extend(b"\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00\xa3n#o\xc3");
    mp[0] = (mp.len() - 1) as u8;
    golden(&v, r#"["upd",{"x":1,"y":-2},[{"x":0,"y":0}],{"a":0.5},"n#o",true]"#, &mp);
}

#[test]
fn bytes_fields_travel_as_msgpack_bin_and_are_refused_by_json() {
    let v = Blob(serde_bytes_like::Raw(vec![0, 255]));
    let m = v.to_msg().unwrap();
    assert_eq!(m, msg!["blob", Bytes(vec![0, 255])]);
    assert_eq!(msgpack(&m), b"\x0a\x92\xa4blob\xc4\x02\x00\xff");
    let (got, _) = MsgpackReader::default().decode(&msgpack(&m)).unwrap().unwrap();
    assert_eq!(Blob::from_msg(&Msg::from(got)).unwrap(), v);
    assert!(encode_json(&m, &mut Vec::new()).is_err());
}

#[test]
fn a_message_from_a_perl_peer_decodes_with_whitespace_and_integer_forms() {
    // What an AnyEvent::MP node might write: spaces, and an integer the
    // sender packed as uint 64.
    let (got, _) = JsonReader::default().decode(br#"[ "say" , "yo" , 7 ]"#).unwrap().unwrap();
    assert_eq!(Chat::from_msg(&Msg::from(got)).unwrap(), Chat::Say("yo".into(), 7));
    let (got, _) = MsgpackReader::default()
        .decode(b"\x11\x93\xa3say\xa2yo\xcf\x00\x00\x00\x00\x00\x00\x00\x07")
        .unwrap()
        .unwrap();
    assert_eq!(Chat::from_msg(&Msg::from(got)).unwrap(), Chat::Say("yo".into(), 7));
}
