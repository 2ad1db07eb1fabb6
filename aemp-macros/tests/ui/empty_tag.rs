use aemp::AempMessage;

#[derive(AempMessage)]
enum Chat {
    #[aemp(rename = "")]
    Join,
}

#[derive(AempMessage)]
#[aemp(tag = "")]
struct Ping;

fn main() {}
