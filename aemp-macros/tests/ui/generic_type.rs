use aemp::AempMessage;

#[derive(AempMessage)]
enum Envelope<T> {
    Wrap(T),
}

#[derive(AempMessage)]
struct Sized<const N: usize>([u8; N]);

fn main() {}
