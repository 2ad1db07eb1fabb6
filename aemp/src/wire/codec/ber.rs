//! BER compressed integers (Perl `pack "w"`): the length in front of every
//! msgpack frame, written by [`ber_encode`] and read by [`ber_decode`].

use super::decode_err;
use crate::error::Result;

/// Writes `n` as a BER compressed integer (Perl `pack "w"`): base 128, most
/// significant group first, the high bit set on every byte but the last.
///
/// ```
/// let mut out = Vec::new();
/// aemp::wire::codec::ber_encode(300, &mut out);
/// assert_eq!(out, [0x82, 0x2c]);
/// ```
pub fn ber_encode(n: usize, out: &mut Vec<u8>) {
    let mut buf = [0u8; 10];
    out.extend_from_slice(ber_bytes(n as u64, &mut buf));
}

/// The BER bytes of `n`, written into the end of `buf`.
pub(super) fn ber_bytes(mut n: u64, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len() - 1;
    buf[i] = (n & 0x7f) as u8;
    n >>= 7;
    while n > 0 {
        i -= 1;
        buf[i] = (n & 0x7f) as u8 | 0x80;
        n >>= 7;
    }
    &buf[i..]
}

/// Reads a BER compressed integer from the front of `buf`.
///
/// Returns `Ok(Some((value, bytes_used)))`, or `Ok(None)` if `buf` ends
/// before the last byte (the one without the high bit). Redundant leading
/// `0x80` bytes are accepted, as Perl does.
///
/// ```
/// use aemp::wire::codec::ber_decode;
/// assert_eq!(ber_decode(&[0x82, 0x2c, 0xff]).unwrap(), Some((300, 2)));
/// assert_eq!(ber_decode(&[0x82]).unwrap(), None);
/// ```
///
/// # Errors
/// [`Error::Decode`](crate::error::Error::Decode) when the number takes more than 10 bytes or does not fit
/// `usize`.
pub fn ber_decode(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut n: u64 = 0;
    for (i, &c) in buf.iter().enumerate() {
        if i >= 10 {
            return Err(decode_err("BER length is longer than 10 bytes"));
        }
        if n > u64::MAX >> 7 {
            return Err(decode_err("BER length does not fit in 64 bits"));
        }
        n = (n << 7) | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            let v =
                usize::try_from(n).map_err(|_| decode_err(format!("BER length {n} does not fit usize")))?;
            return Ok(Some((v, i + 1)));
        }
    }
    if buf.len() >= 10 {
        return Err(decode_err("BER length is longer than 10 bytes"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ber() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x81, 0x00]),
            (0x68, &[0x68]),
            (300, &[0x82, 0x2c]),
            (16383, &[0xff, 0x7f]),
            (16384, &[0x81, 0x80, 0x00]),
        ];
        for &(n, bytes) in cases {
            let mut out = vec![9];
            ber_encode(n, &mut out);
            assert_eq!(&out[1..], bytes, "{n}");
            assert_eq!(ber_decode(bytes).unwrap(), Some((n, bytes.len())));
            for k in 0..bytes.len() {
                assert_eq!(ber_decode(&bytes[..k]).unwrap(), None);
            }
        }
        let mut out = Vec::new();
        ber_encode(usize::MAX, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(ber_decode(&out).unwrap(), Some((usize::MAX, 10)));
        // Redundant leading 0x80 bytes are fine (Perl accepts them).
        assert_eq!(ber_decode(&[0x80, 0x80, 0x05]).unwrap(), Some((5, 3)));
        // Too long, overflow.
        assert!(err_text(ber_decode(&[0x80; 11])).contains("longer than 10 bytes"));
        assert!(ber_decode(&[0x80; 10]).unwrap_err().to_string().contains("longer than 10 bytes"));
        assert!(err_text(ber_decode(&[0xff; 10])).contains("64 bits"));
        assert!(ber_decode(&[0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err());
        assert_eq!(
            ber_decode(&[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).unwrap(),
            Some((u64::MAX as usize, 10))
        );
    }

    proptest! {
        #[test]
        fn ber_round_trip(n in any::<usize>()) {
            let mut out = Vec::new();
            ber_encode(n, &mut out);
            prop_assert_eq!(ber_decode(&out).unwrap(), Some((n, out.len())));
        }
    }
}
