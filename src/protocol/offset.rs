//! Stream offsets on the wire.
//!
//! An offset names a position *between* entries: the number of entries a reader has
//! already consumed. Position 0 is the start of the stream; a stream's tail is its entry
//! count. On the wire an offset is the original Prisma Streams format: a 16-byte tuple
//! `epoch:u32 | pos:u64 | in_block:u32` (big-endian), read as a 128-bit integer, shifted
//! left by two bits and written as 26 Crockford base32 digits. Fixed width and MSB-first
//! digits make string order equal numeric order.
//!
//! Sentinels: `-1` (start of stream) and `now` (current tail, reads only). For
//! interoperability with clients that hard-code the reference server's zero offset,
//! `0000000000000000_0000000000000000` is accepted as an alias of the start.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Length of an encoded offset.
pub const ENCODED_LEN: usize = 26;
/// The reference server's zero offset, accepted as an alias of the stream start.
pub const REFERENCE_ZERO: &str = "0000000000000000_0000000000000000";

/// A concrete position in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    /// Storage epoch; always 0 today, carried so that future epochs keep ordering.
    pub epoch: u32,
    /// Number of entries before this position.
    pub pos: u64,
    /// Reserved position inside an entry; always 0 on output, ignored on input.
    pub in_block: u32,
}

/// What a client asked for in `offset=` or `Stream-Fork-Offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetParam {
    /// `-1` or the reference zero alias: the start of the stream.
    Start,
    /// `now`: the tail at the time of the request.
    Now,
    /// A concrete offset.
    At(Offset),
}

/// Why an offset string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    #[error("invalid offset length: {0}")]
    Length(usize),
    #[error("invalid offset character {0:?}")]
    Char(char),
}

impl Offset {
    /// The offset of position `pos` in epoch 0.
    pub const fn at(pos: u64) -> Self {
        Offset {
            epoch: 0,
            pos,
            in_block: 0,
        }
    }

    fn to_u128(self) -> u128 {
        ((self.epoch as u128) << 96) | ((self.pos as u128) << 32) | self.in_block as u128
    }

    /// Encodes to the 26-character wire form.
    pub fn encode(self) -> String {
        let v = self.to_u128();
        let mut out = [0u8; ENCODED_LEN];
        // 130 bits = 128 bits shifted left by 2; digit i holds bits [125-5i .. 130-5i) of v<<2.
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i as i32; // position of the digit's low bit in the 130-bit value
            let digit = if shift >= 2 {
                (v >> (shift - 2)) & 0x1f
            } else {
                (v << (2 - shift)) & 0x1f
            };
            *slot = ALPHABET[digit as usize];
        }
        // All bytes come from ALPHABET, which is ASCII.
        out.iter().map(|&b| b as char).collect()
    }

    /// Decodes the 26-character wire form (case-insensitive, Crockford aliases).
    pub fn decode(s: &str) -> Result<Offset, OffsetError> {
        if s.len() != ENCODED_LEN {
            return Err(OffsetError::Length(s.chars().count()));
        }
        // The 130-bit value is d0·32^25 + rest, with rest < 2^125. Shifting right by two
        // bits puts d0 at bits 123..128 and keeps the low 128 bits, as the original does.
        let mut chars = s.chars();
        let d0 = chars.next().map(decode_digit).transpose()?.unwrap_or(0) as u128;
        let mut rest: u128 = 0;
        for ch in chars {
            rest = (rest << 5) | decode_digit(ch)? as u128;
        }
        let v = (d0 << 123) | (rest >> 2);
        Ok(Offset {
            epoch: (v >> 96) as u32,
            pos: (v >> 32) as u64,
            in_block: v as u32,
        })
    }
}

fn decode_digit(ch: char) -> Result<u8, OffsetError> {
    let c = ch.to_ascii_uppercase();
    let c = match c {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&a| a as char == c)
        .map(|p| p as u8)
        .ok_or(OffsetError::Char(ch))
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl OffsetParam {
    /// Parses a client-supplied offset; `allow_now` is false where `now` has no meaning.
    pub fn parse(s: &str, allow_now: bool) -> Result<OffsetParam, OffsetError> {
        match s {
            "-1" | REFERENCE_ZERO => Ok(OffsetParam::Start),
            "now" if allow_now => Ok(OffsetParam::Now),
            _ => Offset::decode(s).map(OffsetParam::At),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors_match_the_original() {
        // seq -1, 0, 1, 999 of the original are positions 0, 1, 2, 1000 here.
        assert_eq!(Offset::at(0).encode(), "00000000000000000000000000");
        assert_eq!(Offset::at(1).encode(), "0000000000000000000G000000");
        assert_eq!(Offset::at(2).encode(), "00000000000000000010000000");
        assert_eq!(Offset::at(1000).encode(), "00000000000000000FM0000000");
    }

    #[test]
    fn sentinels_and_errors() {
        assert_eq!(OffsetParam::parse("-1", true), Ok(OffsetParam::Start));
        assert_eq!(
            OffsetParam::parse(REFERENCE_ZERO, false),
            Ok(OffsetParam::Start)
        );
        assert_eq!(OffsetParam::parse("now", true), Ok(OffsetParam::Now));
        assert_eq!(
            OffsetParam::parse("now", false),
            Err(OffsetError::Length(3))
        );
        assert_eq!(OffsetParam::parse("0", true), Err(OffsetError::Length(1)));
        assert!(matches!(
            OffsetParam::parse("0000000000000000000000000U", true),
            Err(OffsetError::Char('U'))
        ));
        assert!(Offset::decode("0000000000000000_000000000").is_err());
    }

    #[test]
    fn aliases_and_lowercase_decode() {
        let o = Offset::decode("0000000000000000000g000000").unwrap();
        assert_eq!(o.pos, 1);
        let o2 = Offset::decode("OOOOOOOOOOOOOOOOOOOgOOOOOO").unwrap();
        assert_eq!(o2, o);
    }

    proptest! {
        #[test]
        fn round_trip(epoch in any::<u32>(), pos in any::<u64>(), in_block in any::<u32>()) {
            let o = Offset { epoch, pos, in_block };
            let s = o.encode();
            prop_assert_eq!(s.len(), ENCODED_LEN);
            prop_assert_eq!(Offset::decode(&s).unwrap(), o);
            prop_assert_eq!(Offset::decode(&s.to_ascii_lowercase()).unwrap(), o);
        }

        #[test]
        fn string_order_is_numeric_order(a in any::<(u32, u64, u32)>(), b in any::<(u32, u64, u32)>()) {
            let oa = Offset { epoch: a.0, pos: a.1, in_block: a.2 };
            let ob = Offset { epoch: b.0, pos: b.1, in_block: b.2 };
            prop_assert_eq!(oa.cmp(&ob), oa.encode().cmp(&ob.encode()));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,40}") {
            let _ = OffsetParam::parse(&s, true);
        }
    }
}
