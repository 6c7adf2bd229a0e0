//! The segment file format ("PSS1"): immutable, checksummed, block-addressable.
//!
//! ```text
//! segment  := block* footer trailer
//! block    := header(36) filter(filter_len) frame(compressed_len)
//! header   := "PSB1" u32 uncompressed_len u32 compressed_len u32 record_count
//!             u64 first_pos u32 filter_len u32 crc32c(filter ++ frame) u32 crc32c(header[0..32])
//! frame    := one zstd frame of the records
//! record   := u32 key_len key[key_len] u32 data_len data[data_len]
//! footer   := "PSF1" u32 version(=1) u64 start_pos u64 end_pos u32 block_count entry*block_count
//! entry    := u64 block_offset u64 first_pos u32 record_count u32 block_len
//! trailer  := u32 footer_len u32 crc32c(footer) "PSS1"
//! ```
//!
//! All integers are big-endian. `end_pos` is exclusive. `block_len` covers header, filter and
//! frame, so one ranged read fetches a whole block. The filter is empty today and is reserved
//! for a per-block routing-key filter. Every byte that is served is covered by a CRC: the
//! footer by the trailer, each block by its header. See docs/adr/0004-segment-format.md.

pub mod builder;

pub const BLOCK_MAGIC: &[u8; 4] = b"PSB1";
pub const FOOTER_MAGIC: &[u8; 4] = b"PSF1";
pub const FILE_MAGIC: &[u8; 4] = b"PSS1";
pub const BLOCK_HEADER_LEN: usize = 36;
pub const TRAILER_LEN: usize = 12;
const FOOTER_FIXED_LEN: usize = 4 + 4 + 8 + 8 + 4;
const ENTRY_LEN: usize = 8 + 8 + 4 + 4;
/// Largest record payload or key a decoder accepts (guards allocations on corrupt input).
const MAX_FIELD_LEN: u32 = 1 << 30;
/// Largest uncompressed block accepted (one record of at most `MAX_FIELD_LEN` plus framing).
const MAX_BLOCK_LEN: u32 = MAX_FIELD_LEN + 16;
/// A per-thread decompression buffer larger than this is released after use.
const KEEP_BUFFER_BYTES: usize = 4 << 20;

/// Why bytes are not a valid segment or block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segment truncated or too short")]
    Truncated,
    #[error("bad magic number")]
    Magic,
    #[error("checksum mismatch")]
    Checksum,
    #[error("unsupported segment version {0}")]
    Version(u32),
    #[error("corrupt segment: {0}")]
    Corrupt(&'static str),
    #[error("decompression failed: {0}")]
    Decompress(String),
}

/// One entry of the footer: where a block lives and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub offset: u64,
    pub first_pos: u64,
    pub record_count: u32,
    pub len: u32,
}

/// The parsed footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub start_pos: u64,
    pub end_pos: u64,
    pub blocks: Vec<BlockRef>,
}

impl Footer {
    /// The block that holds position `pos`.
    pub fn block_for(&self, pos: u64) -> Option<usize> {
        let i = self.blocks.partition_point(|b| b.first_pos <= pos);
        let i = i.checked_sub(1)?;
        let b = self.blocks[i];
        (pos < b.first_pos + b.record_count as u64).then_some(i)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_FIXED_LEN + ENTRY_LEN * self.blocks.len());
        out.extend_from_slice(FOOTER_MAGIC);
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&self.start_pos.to_be_bytes());
        out.extend_from_slice(&self.end_pos.to_be_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_be_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&b.offset.to_be_bytes());
            out.extend_from_slice(&b.first_pos.to_be_bytes());
            out.extend_from_slice(&b.record_count.to_be_bytes());
            out.extend_from_slice(&b.len.to_be_bytes());
        }
        out
    }

    /// Parses footer bytes (without the trailer), checking internal consistency.
    pub fn decode(b: &[u8]) -> Result<Footer, SegmentError> {
        let mut r = Cursor::new(b);
        if r.take(4)? != FOOTER_MAGIC {
            return Err(SegmentError::Magic);
        }
        let version = r.u32()?;
        if version != 1 {
            return Err(SegmentError::Version(version));
        }
        let start_pos = r.u64()?;
        let end_pos = r.u64()?;
        let n = r.u32()? as usize;
        if b.len() != FOOTER_FIXED_LEN + n * ENTRY_LEN {
            return Err(SegmentError::Corrupt("footer length"));
        }
        let mut blocks = Vec::with_capacity(n);
        let mut expect_pos = start_pos;
        let mut expect_off = 0u64;
        for _ in 0..n {
            let blk = BlockRef {
                offset: r.u64()?,
                first_pos: r.u64()?,
                record_count: r.u32()?,
                len: r.u32()?,
            };
            if blk.first_pos != expect_pos || blk.offset != expect_off || blk.record_count == 0 {
                return Err(SegmentError::Corrupt("footer entries are not contiguous"));
            }
            expect_pos += blk.record_count as u64;
            expect_off += blk.len as u64;
            blocks.push(blk);
        }
        if expect_pos != end_pos {
            return Err(SegmentError::Corrupt("footer range"));
        }
        Ok(Footer {
            start_pos,
            end_pos,
            blocks,
        })
    }

    /// Byte length of the block area (where the footer starts).
    pub fn blocks_len(&self) -> u64 {
        self.blocks.last().map_or(0, |b| b.offset + b.len as u64)
    }
}

/// Encodes the trailer for a footer.
pub fn trailer(footer_bytes: &[u8]) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[0..4].copy_from_slice(&(footer_bytes.len() as u32).to_be_bytes());
    t[4..8].copy_from_slice(&crc32c::crc32c(footer_bytes).to_be_bytes());
    t[8..12].copy_from_slice(FILE_MAGIC);
    t
}

/// Parses the trailer: `(footer_len, footer_crc)`.
pub fn parse_trailer(t: &[u8]) -> Result<(u32, u32), SegmentError> {
    if t.len() != TRAILER_LEN {
        return Err(SegmentError::Truncated);
    }
    if &t[8..12] != FILE_MAGIC {
        return Err(SegmentError::Magic);
    }
    let len = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
    let crc = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    Ok((len, crc))
}

/// Checks the footer bytes against the trailer and parses them.
pub fn decode_footer(footer_bytes: &[u8], crc: u32, file_len: u64) -> Result<Footer, SegmentError> {
    if crc32c::crc32c(footer_bytes) != crc {
        return Err(SegmentError::Checksum);
    }
    let f = Footer::decode(footer_bytes)?;
    if f.blocks_len() + footer_bytes.len() as u64 + TRAILER_LEN as u64 != file_len {
        return Err(SegmentError::Corrupt(
            "file length does not match the footer",
        ));
    }
    Ok(f)
}

/// Decodes a whole segment held in memory (used by tests and small segments).
pub fn decode_all(bytes: &[u8]) -> Result<(Footer, Vec<Record>), SegmentError> {
    if bytes.len() < TRAILER_LEN {
        return Err(SegmentError::Truncated);
    }
    let (flen, crc) = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..])?;
    let fstart = (bytes.len() - TRAILER_LEN)
        .checked_sub(flen as usize)
        .ok_or(SegmentError::Truncated)?;
    let footer = decode_footer(
        &bytes[fstart..bytes.len() - TRAILER_LEN],
        crc,
        bytes.len() as u64,
    )?;
    let mut out = Vec::new();
    for b in &footer.blocks {
        let start = b.offset as usize;
        let blk = &bytes[start..start + b.len as usize];
        out.extend(decode_block(blk, b)?);
    }
    Ok((footer, out))
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub data: Vec<u8>,
}

/// Encodes one block from records; returns the bytes.
pub fn encode_block(first_pos: u64, records: &[Record], level: i32) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    for r in records {
        raw.extend_from_slice(&(r.key.len() as u32).to_be_bytes());
        raw.extend_from_slice(&r.key);
        raw.extend_from_slice(&(r.data.len() as u32).to_be_bytes());
        raw.extend_from_slice(&r.data);
    }
    let frame = zstd::bulk::compress(&raw, level)?;
    let filter: &[u8] = &[];
    let mut body_crc = crc32c::crc32c(filter);
    body_crc = crc32c::crc32c_append(body_crc, &frame);
    let mut out = Vec::with_capacity(BLOCK_HEADER_LEN + frame.len());
    out.extend_from_slice(BLOCK_MAGIC);
    out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    out.extend_from_slice(&first_pos.to_be_bytes());
    out.extend_from_slice(&(filter.len() as u32).to_be_bytes());
    out.extend_from_slice(&body_crc.to_be_bytes());
    let hcrc = crc32c::crc32c(&out[..32]);
    out.extend_from_slice(&hcrc.to_be_bytes());
    out.extend_from_slice(filter);
    out.extend_from_slice(&frame);
    Ok(out)
}

/// Verifies and decodes one block (header, filter and frame) described by `expect`.
pub fn decode_block(b: &[u8], expect: &BlockRef) -> Result<Vec<Record>, SegmentError> {
    let mut out = Vec::with_capacity(expect.record_count as usize);
    visit_block(b, expect, |key, data| {
        out.push(Record {
            key: key.to_vec(),
            data: data.to_vec(),
        });
        true
    })?;
    Ok(out)
}

/// Checks and decompresses a block, then calls `f(key, data)` for its records in order
/// until it returns false. The whole block is verified before the first call, so a
/// damaged block never yields a record.
pub fn visit_block(
    b: &[u8],
    expect: &BlockRef,
    mut f: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), SegmentError> {
    if b.len() != expect.len as usize || b.len() < BLOCK_HEADER_LEN {
        return Err(SegmentError::Truncated);
    }
    let mut h = Cursor::new(&b[..BLOCK_HEADER_LEN]);
    if h.take(4)? != BLOCK_MAGIC {
        return Err(SegmentError::Magic);
    }
    let ulen = h.u32()?;
    let clen = h.u32()?;
    let count = h.u32()?;
    let first_pos = h.u64()?;
    let flen = h.u32()?;
    let body_crc = h.u32()?;
    let hcrc = h.u32()?;
    if crc32c::crc32c(&b[..32]) != hcrc {
        return Err(SegmentError::Checksum);
    }
    if BLOCK_HEADER_LEN as u64 + flen as u64 + clen as u64 != b.len() as u64 {
        return Err(SegmentError::Corrupt("block length"));
    }
    if first_pos != expect.first_pos || count != expect.record_count {
        return Err(SegmentError::Corrupt(
            "block header does not match the footer",
        ));
    }
    let body = &b[BLOCK_HEADER_LEN..];
    if crc32c::crc32c(body) != body_crc {
        return Err(SegmentError::Checksum);
    }
    let frame = &body[flen as usize..];
    if ulen > MAX_BLOCK_LEN {
        return Err(SegmentError::Corrupt("uncompressed length"));
    }
    // `f` must not decode another block itself (the per-thread buffer is in use).
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (dctx, raw) = &mut *slot;
        let result =
            decompress(dctx, frame, ulen, raw).and_then(|()| walk_records(raw, count, &mut f));
        if raw.capacity() > KEEP_BUFFER_BYTES {
            *raw = Vec::new();
        }
        result
    })
}

/// Decompresses one frame into `raw`, which must come out exactly `ulen` bytes long.
fn decompress(
    dctx: &mut Option<zstd::bulk::Decompressor<'static>>,
    frame: &[u8],
    ulen: u32,
    raw: &mut Vec<u8>,
) -> Result<(), SegmentError> {
    let err = |e: std::io::Error| SegmentError::Decompress(e.to_string());
    if dctx.is_none() {
        *dctx = Some(zstd::bulk::Decompressor::new().map_err(err)?);
    }
    let Some(dctx) = dctx.as_mut() else {
        unreachable!("set above")
    };
    raw.clear();
    raw.reserve(ulen as usize);
    let n = dctx.decompress_to_buffer(frame, raw).map_err(err)?;
    if n != ulen as usize {
        return Err(SegmentError::Corrupt("uncompressed length"));
    }
    Ok(())
}

/// Walks the records twice: first checks the framing of all of them, then hands them out,
/// so that a caller never sees part of a damaged block.
fn walk_records(
    raw: &[u8],
    count: u32,
    f: &mut impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), SegmentError> {
    for pass in 0..2 {
        let mut r = Cursor::new(raw);
        for _ in 0..count {
            let klen = r.u32()?;
            let key = r.take_field(klen)?;
            let dlen = r.u32()?;
            let data = r.take_field(dlen)?;
            if pass == 1 && !f(key, data) {
                return Ok(());
            }
        }
        if r.pos != raw.len() {
            return Err(SegmentError::Corrupt("trailing bytes in block"));
        }
    }
    Ok(())
}

thread_local! {
    /// A zstd decompression context and output buffer per thread, reused across blocks.
    static DECOMPRESSOR: std::cell::RefCell<(Option<zstd::bulk::Decompressor<'static>>, Vec<u8>)> =
        const { std::cell::RefCell::new((None, Vec::new())) };
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SegmentError> {
        let end = self.pos.checked_add(n).ok_or(SegmentError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(SegmentError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn take_field(&mut self, n: u32) -> Result<&'a [u8], SegmentError> {
        if n > MAX_FIELD_LEN {
            return Err(SegmentError::Corrupt("field length"));
        }
        self.take(n as usize)
    }
    fn u32(&mut self) -> Result<u32, SegmentError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, SegmentError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(start: u64, records: &[Record], block_max: usize) -> Vec<u8> {
        let mut b = builder::SegmentBuilder::new(start, block_max, 3);
        for r in records {
            b.push(r.key.clone(), r.data.clone()).unwrap();
        }
        b.finish().unwrap()
    }

    fn recs(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                key: if i % 3 == 0 {
                    vec![]
                } else {
                    format!("k{i}").into_bytes()
                },
                data: format!("payload-{i}-{}", "x".repeat(i % 50)).into_bytes(),
            })
            .collect()
    }

    #[test]
    fn blocks_are_addressable_by_position() {
        let r = recs(100);
        let bytes = build(10, &r, 256);
        let (footer, all) = decode_all(&bytes).unwrap();
        assert_eq!(all, r);
        assert_eq!((footer.start_pos, footer.end_pos), (10, 110));
        assert!(footer.blocks.len() > 3);
        for pos in [10, 11, 57, 109] {
            let i = footer.block_for(pos).unwrap();
            let b = footer.blocks[i];
            assert!(b.first_pos <= pos && pos < b.first_pos + b.record_count as u64);
            let blk = &bytes[b.offset as usize..(b.offset + b.len as u64) as usize];
            let got = decode_block(blk, &b).unwrap();
            assert_eq!(got[(pos - b.first_pos) as usize], r[(pos - 10) as usize]);
        }
        assert_eq!(footer.block_for(9), None);
        assert_eq!(footer.block_for(110), None);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let bytes = build(0, &recs(20), 128);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode_all(&bad).is_err(), "flip at {i} went unnoticed");
        }
        for len in 0..bytes.len() {
            assert!(
                decode_all(&bytes[..len]).is_err(),
                "truncation to {len} went unnoticed"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip(
            start in 0u64..1_000_000,
            data in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..8), proptest::collection::vec(any::<u8>(), 0..300)),
                1..60,
            ),
            block_max in 1usize..2048,
        ) {
            let r: Vec<Record> = data.into_iter().map(|(key, data)| Record { key, data }).collect();
            let bytes = build(start, &r, block_max);
            let (footer, all) = decode_all(&bytes).unwrap();
            prop_assert_eq!(footer.end_pos, start + r.len() as u64);
            prop_assert_eq!(all, r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_all(&b);
            let _ = Footer::decode(&b);
            let expect = BlockRef { offset: 0, first_pos: 0, record_count: 1, len: b.len() as u32 };
            let _ = decode_block(&b, &expect);
        }
    }
}
