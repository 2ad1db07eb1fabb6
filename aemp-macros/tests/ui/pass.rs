use aemp::{msg, AempMessage, Message, PortId, TypedPortId};

#[derive(AempMessage, Debug, PartialEq)]
#[aemp(rename_all = "kebab-case", crate = "::aemp")]
enum Chat {
    JoinRoom { client: TypedPortId<Chat>, nick: String },
    #[aemp(rename = "say")]
    Speak(String, Option<u32>),
    Leave,
}

#[derive(AempMessage, Debug, PartialEq)]
#[aemp(tag = "hb")]
struct Heartbeat;

#[derive(AempMessage)]
struct Named {
    port: PortId,
    r#type: String,
}

#[derive(AempMessage)]
struct Tuple(u8, Vec<String>);

#[derive(AempMessage)]
enum WithWhere
where
    String: Clone,
{
    One,
}

fn main() {
    assert_eq!(Chat::TAGS, ["join-room", "say", "leave"]);
    assert_eq!(Heartbeat.to_msg().unwrap(), msg!["hb"]);
    assert_eq!(Named::TAGS, ["named"]);
    assert_eq!(Tuple::TAGS, ["tuple"]);
    assert_eq!(WithWhere::TAGS, ["one"]);
}
