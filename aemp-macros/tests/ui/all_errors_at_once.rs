use aemp::AempMessage;

// Every mistake in one type is reported in one compilation.
#[derive(AempMessage)]
#[aemp(rename_all = "Title Case", crate = "aemp")]
enum Chat<'a, T> {
    #[aemp(renme = "x")]
    Join(&'a T),
    #[aemp(rename = "leave")]
    Part,
    Leave,
}

fn main() {}
