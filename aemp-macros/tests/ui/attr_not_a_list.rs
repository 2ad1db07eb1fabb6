use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp = "x"]
enum Chat {
    #[aemp]
    Join,
}

fn main() {}
