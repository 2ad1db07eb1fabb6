use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp(rename_all = "lowercase")]
enum Shout {
    JoinRoom,
    Joinroom,
}

fn main() {}
