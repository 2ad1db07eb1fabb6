use aemp::AempMessage;

#[derive(AempMessage)]
enum Chat {
    Join,
    #[aemp(rename = "join")]
    Enter,
    #[aemp(rename = "join")]
    Hello,
}

fn main() {}
