use aemp::AempMessage;

#[derive(AempMessage)]
enum Chat {
    #[aemp(rename = 5)]
    Join,
    #[aemp(rename = leave)]
    Leave,
}

fn main() {}
