use aemp::AempMessage;

#[derive(AempMessage)]
struct Borrowed<'a> {
    text: &'a str,
}

fn main() {}
