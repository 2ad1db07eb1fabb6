use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp(tag = "ping", rename = "pong")]
struct Ping;

fn main() {}
