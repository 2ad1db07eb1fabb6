use aemp::AempMessage;

#[derive(AempMessage)]
enum Chat {
    #[aemp(rename)]
    Join,
    #[aemp(rename("x"))]
    Leave,
}

fn main() {}
