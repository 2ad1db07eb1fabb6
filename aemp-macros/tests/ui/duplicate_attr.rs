use aemp::AempMessage;

#[derive(AempMessage)]
enum Chat {
    #[aemp(rename = "a")]
    #[aemp(rename = "b")]
    Join,
}

fn main() {}
