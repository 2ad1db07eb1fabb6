use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp(crate = "not a path!")]
enum Chat {
    Join,
}

fn main() {}
