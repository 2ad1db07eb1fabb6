//! Small helpers shared by the modules.

use rand::Rng;

/// A hash map for the node's hot lookups (ports by name, peers by node
/// ID): a fast hash, seeded at random per map, so that names chosen by
/// peers cannot be made to collide on purpose.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A random string of `n` characters from a URL-safe alphabet.
pub(crate) fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Seconds since the Unix epoch, as a float with a fraction.
pub(crate) fn epoch_f64() -> f64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let t = d.as_secs_f64();
    if t.fract() == 0.0 {
        t + 0.000_001
    } else {
        t
    }
}

/// The decimal digits of `n`, written at the end of `buf`.
pub(crate) fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}
