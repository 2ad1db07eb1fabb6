use aemp::AempMessage;

#[derive(AempMessage)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
