use aemp::AempMessage;

#[derive(AempMessage)]
enum Nothing {}

fn main() {}
