//! What each attribute of `#[derive(AempMessage)]` does to tags and shapes,
//! and the decoding errors the derived code reports.

use aemp::{msg, AempMessage, Message, Msg, PortId, TypedPortId, Value};

#[derive(AempMessage, Debug, PartialEq)]
enum Defaults {
    JoinRoom,
    HTTPGet,
    V2Ping,
    r#Type,
}

#[test]
fn default_tags_are_snake_case_variant_names() {
    assert_eq!(Defaults::TAGS, ["join_room", "http_get", "v2_ping", "type"]);
    assert_eq!(Defaults::HTTPGet.tag(), "http_get");
    assert_eq!(Defaults::r#Type.to_msg().unwrap(), msg!["type"]);
}

macro_rules! rule {
    ($name:ident, $rule:literal) => {
        #[derive(AempMessage, Debug, PartialEq)]
        #[aemp(rename_all = $rule)]
        enum $name {
            JoinRoom,
            #[aemp(rename = "Kept As-Is")]
            Renamed,
        }
    };
}

rule!(Snake, "snake_case");
rule!(Lower, "lowercase");
rule!(Upper, "UPPERCASE");
rule!(Camel, "camelCase");
rule!(Pascal, "PascalCase");
rule!(ScreamingSnake, "SCREAMING_SNAKE_CASE");
rule!(Kebab, "kebab-case");
rule!(ScreamingKebab, "SCREAMING-KEBAB-CASE");

#[test]
fn rename_all_spells_every_tag_and_rename_overrides_it() {
    assert_eq!(Snake::TAGS, ["join_room", "Kept As-Is"]);
    assert_eq!(Lower::TAGS[0], "joinroom");
    assert_eq!(Upper::TAGS[0], "JOINROOM");
    assert_eq!(Camel::TAGS[0], "joinRoom");
    assert_eq!(Pascal::TAGS[0], "JoinRoom");
    assert_eq!(ScreamingSnake::TAGS[0], "JOIN_ROOM");
    assert_eq!(Kebab::TAGS[0], "join-room");
    assert_eq!(ScreamingKebab::TAGS[0], "JOIN-ROOM");
    assert_eq!(Kebab::from_msg(&msg!["Kept As-Is"]).unwrap(), Kebab::Renamed);
    assert_eq!(Kebab::JoinRoom.to_msg().unwrap(), msg!["join-room"]);
}

#[derive(AempMessage, Debug, PartialEq)]
struct PlainStruct {
    a: u8,
    b: String,
}

#[derive(AempMessage, Debug, PartialEq)]
#[aemp(tag = "custom")]
struct Tuple(i64, Option<bool>);

#[derive(AempMessage, Debug, PartialEq)]
#[aemp(rename = "hb")]
struct Heartbeat;

#[test]
fn structs_are_one_message_with_a_fixed_tag() {
    assert_eq!(PlainStruct::TAGS, ["plain_struct"]);
    let v = PlainStruct { a: 1, b: "x".into() };
    assert_eq!(v.to_msg().unwrap(), msg!["plain_struct", 1, "x"]);
    assert_eq!(PlainStruct::from_msg(&msg!["plain_struct", 1, "x"]).unwrap(), v);

    assert_eq!(Tuple(-1, None).to_msg().unwrap(), msg!["custom", -1, Value::Null]);
    assert_eq!(Tuple::from_msg(&msg!["custom", 3, true]).unwrap(), Tuple(3, Some(true)));

    assert_eq!(Heartbeat.into_msg().unwrap(), msg!["hb"]);
    assert_eq!(Heartbeat::from_msg(&msg!["hb"]).unwrap(), Heartbeat);
    assert_eq!(Heartbeat.tag(), "hb");
}

/// A path to the aemp crate under another name.
mod reexport {
    pub use aemp as renamed_aemp;
}

#[derive(AempMessage, Debug, PartialEq)]
#[aemp(crate = "reexport::renamed_aemp")]
enum ViaPath {
    One(u8),
}

#[test]
fn crate_sets_the_path_of_aemp_in_generated_code() {
    assert_eq!(ViaPath::One(1).to_msg().unwrap(), msg!["one", 1]);
}

#[derive(AempMessage, Debug, PartialEq)]
enum Fields {
    Ports { plain: PortId, typed: TypedPortId<Fields>, many: Vec<PortId> },
    Nested(Vec<(String, u32)>, std::collections::BTreeMap<String, Vec<f64>>),
    Raw { r#type: Value, rest: Msg },
}

#[test]
fn fields_take_any_serde_type_port_ids_included() {
    let p: PortId = "n#a".parse().unwrap();
    let v = Fields::Ports {
        plain: p.clone(),
        typed: TypedPortId::new_unchecked(p.clone()),
        many: vec![p.clone()],
    };
    let m = v.to_msg().unwrap();
    assert_eq!(m, msg!["ports", "n#a", "n#a", vec![Value::from("n#a")]]);
    assert_eq!(Fields::from_msg(&m).unwrap(), v);

    let v = Fields::Nested(vec![("a".into(), 1)], [("k".to_owned(), vec![1.5])].into());
    assert_eq!(Fields::from_msg(&v.to_msg().unwrap()).unwrap(), v);

    let v = Fields::Raw { r#type: Value::from(3), rest: msg!["x", 1] };
    let m = v.to_msg().unwrap();
    assert_eq!(m, msg!["raw", 3, vec![Value::from("x"), Value::from(1)]]);
    assert_eq!(Fields::from_msg(&m).unwrap(), v);
    let e = Fields::from_msg(&msg!["raw", 3, 4]).unwrap_err().to_string();
    assert!(e.starts_with(r#"message "raw": field "rest" (element 2): "#), "{e}");
}

#[derive(AempMessage, Debug, PartialEq)]
enum Chat {
    Join { client: PortId, nick: String },
    Say(String),
    Leave,
}

fn err(m: Msg) -> String {
    Chat::from_msg(&m).unwrap_err().to_string()
}

#[test]
fn decoding_errors_name_the_tag_the_field_and_what_was_found() {
    assert_eq!(
        err(msg!["join", "n#p", 5]),
        r#"message "join": field "nick" (element 2): invalid type: expected a string, found integer 5"#
    );
    assert_eq!(
        err(msg!["say", [1, 2].to_vec()]),
        r#"message "say": field 0 (element 1): invalid type: expected a string, found array of 2 elements"#
    );
    assert_eq!(
        err(msg!["join", "n#p"]),
        r#"message "join": missing field "nick" (element 2): expected 3 elements, found 2"#
    );
    assert_eq!(
        err(msg!["join"]),
        r#"message "join": missing field "client" (element 1): expected 3 elements, found 1"#
    );
    assert_eq!(err(msg!["say", "a", "b"]), r#"message "say": too many elements: expected 2, found 3"#);
    assert_eq!(err(msg!["leave", Value::Null]), r#"message "leave": too many elements: expected 1, found 2"#);
    assert_eq!(err(msg!["part"]), r#"unknown message tag "part": expected one of "join", "say", "leave""#);
    assert_eq!(
        Heartbeat::from_msg(&msg!["ping"]).unwrap_err().to_string(),
        r#"unknown message tag "ping": expected "hb""#
    );
    assert_eq!(
        err(msg![5, "x"]),
        "the first element must be the message tag: invalid type: expected a string, found integer 5"
    );
    assert_eq!(err(msg![]), "empty message: expected a string tag first");
}

#[test]
fn from_fields_decodes_what_a_tag_callback_receives() {
    let fields = msg!["n#p", "bob"];
    let v = Chat::from_fields("join", &fields).unwrap();
    assert_eq!(v, Chat::Join { client: "n#p".parse().unwrap(), nick: "bob".into() });
}
