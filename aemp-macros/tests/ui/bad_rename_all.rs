use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp(rename_all = "bogus")]
enum Chat {
    Join,
}

fn main() {}
