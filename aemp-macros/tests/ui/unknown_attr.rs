use aemp::AempMessage;

#[derive(AempMessage)]
#[aemp(bogus = "x")]
enum Chat {
    #[aemp(renme = "x")]
    Join,
    #[aemp(rename_al = "x")]
    Leave,
}

fn main() {}
