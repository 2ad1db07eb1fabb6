use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp(tag = "chat", rename = "chat")]
enum Chat {
    #[aemp(rename_all = "UPPERCASE", crate = "aemp")]
    Join,
}

#[derive(AempMessage)]
#[aemp(rename_all = "camelCase")]
struct Ping {
    #[aemp(rename = "n")]
    seq: u64,
}

fn main() {}
