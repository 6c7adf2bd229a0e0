//! The segment file format ("PSS1"): immutable, checksummed, block-addressable.
//!
//! ```text
//! segment  := block* footer trailer
//! block    := header(36) filter(filter_len) frame(compressed_len)
//! header   := "PSB1" u32 uncompressed_len u32 compressed_len u32 record_count
//!             u64 first_pos u32 filter_len u32 crc32c(filter ++ frame) u32 crc32c(header[0..32])
//! frame    := one zstd frame of the records
//! record   := (version 2) u64 ts_ms u32 key_len key u32 data_len data
//!             (version 1) u32 key_len key u32 data_len data
//! footer   := "PSF1" u32 version u64 start_pos u64 end_pos u32 block_count entry*block_count
//! entry    := u64 block_offset u64 first_pos u32 record_count u32 block_len
//!             (version 2 only) u64 max_ts_ms
//! trailer  := u32 footer_len u32 crc32c(footer) "PSS1"
//! ```
//!
//! All integers are big-endian. `end_pos` is exclusive. `block_len` covers header, filter and
//! frame, so one ranged read fetches a whole block. Every byte that is served is covered by
//! a CRC: the footer by the trailer, each block by its header.
//!
//! Version 2 (written since routing keys exist) adds each record's append time and the
//! block's latest one (for `since=` reads), a routing key that may be absent (`key_len` =
//! `0xFFFFFFFF`), and a per-block key filter in the filter slot ([`filter`]), so that a
//! keyed read skips a block without decompressing it. Version 1 segments are still read
//! (no keys, append time 0). See docs/adr/0004-segment-format.md and
//! docs/adr/0007-routing-keys.md.

pub mod builder;
pub mod filter;

pub const BLOCK_MAGIC: &[u8; 4] = b"PSB1";
pub const FOOTER_MAGIC: &[u8; 4] = b"PSF1";
pub const FILE_MAGIC: &[u8; 4] = b"PSS1";
pub const BLOCK_HEADER_LEN: usize = 36;
pub const TRAILER_LEN: usize = 12;
const FOOTER_FIXED_LEN: usize = 4 + 4 + 8 + 8 + 4;
const ENTRY_LEN_V1: usize = 8 + 8 + 4 + 4;
const ENTRY_LEN_V2: usize = ENTRY_LEN_V1 + 8;
/// The version new segments are written in.
pub const VERSION: u32 = 2;
/// `key_len` of a record without a routing key (version 2).
const NO_KEY: u32 = u32::MAX;
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
    /// The latest append time of its records (0 in version 1).
    pub max_ts_ms: i64,
    /// The segment's format version (how to read the block's records).
    pub version: u32,
}

impl BlockRef {
    /// Position after its last record.
    pub fn end_pos(&self) -> u64 {
        self.first_pos + self.record_count as u64
    }
}

/// The parsed footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub version: u32,
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

    /// Encodes the footer in its version (1 or 2).
    pub fn encode(&self) -> Vec<u8> {
        let entry_len = if self.version >= 2 {
            ENTRY_LEN_V2
        } else {
            ENTRY_LEN_V1
        };
        let mut out = Vec::with_capacity(FOOTER_FIXED_LEN + entry_len * self.blocks.len());
        out.extend_from_slice(FOOTER_MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.start_pos.to_be_bytes());
        out.extend_from_slice(&self.end_pos.to_be_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_be_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&b.offset.to_be_bytes());
            out.extend_from_slice(&b.first_pos.to_be_bytes());
            out.extend_from_slice(&b.record_count.to_be_bytes());
            out.extend_from_slice(&b.len.to_be_bytes());
            if self.version >= 2 {
                out.extend_from_slice(&b.max_ts_ms.to_be_bytes());
            }
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
        let entry_len = match version {
            1 => ENTRY_LEN_V1,
            2 => ENTRY_LEN_V2,
            v => return Err(SegmentError::Version(v)),
        };
        let start_pos = r.u64()?;
        let end_pos = r.u64()?;
        let n = r.u32()? as usize;
        if Some(b.len()) != n.checked_mul(entry_len).map(|e| e + FOOTER_FIXED_LEN) {
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
                max_ts_ms: if version >= 2 { r.u64()? as i64 } else { 0 },
                version,
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
            version,
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
    pub key: Option<Vec<u8>>,
    pub data: Vec<u8>,
    pub ts_ms: i64,
}

/// Encodes one block of the current version from records; returns the bytes.
pub fn encode_block(first_pos: u64, records: &[Record], level: i32) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    for r in records {
        raw.extend_from_slice(&r.ts_ms.to_be_bytes());
        match &r.key {
            Some(k) => {
                raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
                raw.extend_from_slice(k);
            }
            None => raw.extend_from_slice(&NO_KEY.to_be_bytes()),
        }
        raw.extend_from_slice(&(r.data.len() as u32).to_be_bytes());
        raw.extend_from_slice(&r.data);
    }
    let frame = zstd::bulk::compress(&raw, level)?;
    let filter = filter::build(records.iter().filter_map(|r| r.key.as_deref()));
    let filter: &[u8] = &filter;
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
    visit_block(b, expect, |key, data, ts_ms| {
        out.push(Record {
            key: key.map(<[u8]>::to_vec),
            data: data.to_vec(),
            ts_ms,
        });
        true
    })?;
    Ok(out)
}

/// The key filter of a whole block, after checking its header and body checksums (a
/// damaged filter could otherwise hide records).
pub fn checked_filter<'a>(b: &'a [u8], expect: &BlockRef) -> Result<&'a [u8], SegmentError> {
    if b.len() != expect.len as usize {
        return Err(SegmentError::Truncated);
    }
    let flen = block_filter_len(b)?;
    let body_crc = u32::from_be_bytes([b[28], b[29], b[30], b[31]]);
    if crc32c::crc32c(&b[BLOCK_HEADER_LEN..]) != body_crc {
        return Err(SegmentError::Checksum);
    }
    b.get(BLOCK_HEADER_LEN..BLOCK_HEADER_LEN + flen)
        .ok_or(SegmentError::Truncated)
}

/// The filter length a block's header declares (after checking the header's CRC).
fn block_filter_len(header: &[u8]) -> Result<usize, SegmentError> {
    let h = header
        .get(..BLOCK_HEADER_LEN)
        .ok_or(SegmentError::Truncated)?;
    if &h[..4] != BLOCK_MAGIC {
        return Err(SegmentError::Magic);
    }
    let hcrc = u32::from_be_bytes([h[32], h[33], h[34], h[35]]);
    if crc32c::crc32c(&h[..32]) != hcrc {
        return Err(SegmentError::Checksum);
    }
    let flen = u32::from_be_bytes([h[24], h[25], h[26], h[27]]);
    if flen > MAX_FILTER_LEN {
        return Err(SegmentError::Corrupt("filter length"));
    }
    Ok(flen as usize)
}

/// Largest block filter accepted.
const MAX_FILTER_LEN: u32 = 1 << 20;

/// Checks and decompresses a block, then calls `f(key, data, ts_ms)` for its records in
/// order until it returns false. The whole block is verified before the first call, so a
/// damaged block never yields a record.
pub fn visit_block(
    b: &[u8],
    expect: &BlockRef,
    mut f: impl FnMut(Option<&[u8]>, &[u8], i64) -> bool,
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
        let result = decompress(dctx, frame, ulen, raw)
            .and_then(|()| walk_records(raw, count, expect.version, &mut f));
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
    version: u32,
    f: &mut impl FnMut(Option<&[u8]>, &[u8], i64) -> bool,
) -> Result<(), SegmentError> {
    for pass in 0..2 {
        let mut r = Cursor::new(raw);
        for _ in 0..count {
            let (ts, key) = if version >= 2 {
                let ts = r.u64()? as i64;
                let klen = r.u32()?;
                let key = if klen == NO_KEY {
                    None
                } else {
                    Some(r.take_field(klen)?)
                };
                (ts, key)
            } else {
                // Version 1 stored an empty key for every record: no key.
                let klen = r.u32()?;
                let key = r.take_field(klen)?;
                (0, (!key.is_empty()).then_some(key))
            };
            let dlen = r.u32()?;
            let data = r.take_field(dlen)?;
            if pass == 1 && !f(key, data, ts) {
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
            b.push(r.key.as_deref(), &r.data, r.ts_ms).unwrap();
        }
        b.finish().unwrap()
    }

    fn recs(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                key: match i % 3 {
                    0 => None,
                    1 => Some(vec![]),
                    _ => Some(format!("k{i}").into_bytes()),
                },
                data: format!("payload-{i}-{}", "x".repeat(i % 50)).into_bytes(),
                ts_ms: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    /// A version 1 segment, as written before routing keys.
    fn build_v1(start: u64, data: &[&[u8]]) -> Vec<u8> {
        let mut raw = Vec::new();
        for d in data {
            raw.extend_from_slice(&0u32.to_be_bytes());
            raw.extend_from_slice(&(d.len() as u32).to_be_bytes());
            raw.extend_from_slice(d);
        }
        let frame = zstd::bulk::compress(&raw, 3).unwrap();
        let mut blk = Vec::new();
        blk.extend_from_slice(BLOCK_MAGIC);
        blk.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        blk.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        blk.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blk.extend_from_slice(&start.to_be_bytes());
        blk.extend_from_slice(&0u32.to_be_bytes());
        blk.extend_from_slice(&crc32c::crc32c(&frame).to_be_bytes());
        let h = crc32c::crc32c(&blk[..32]);
        blk.extend_from_slice(&h.to_be_bytes());
        blk.extend_from_slice(&frame);
        let footer = Footer {
            version: 1,
            start_pos: start,
            end_pos: start + data.len() as u64,
            blocks: vec![BlockRef {
                offset: 0,
                first_pos: start,
                record_count: data.len() as u32,
                len: blk.len() as u32,
                max_ts_ms: 0,
                version: 1,
            }],
        }
        .encode();
        blk.extend_from_slice(&footer);
        blk.extend_from_slice(&trailer(&footer));
        blk
    }

    #[test]
    fn version_1_segments_are_still_read() {
        let bytes = build_v1(7, &[b"a", b"bc"]);
        let (footer, all) = decode_all(&bytes).unwrap();
        assert_eq!(footer.version, 1);
        assert_eq!(
            all,
            vec![
                Record {
                    key: None,
                    data: b"a".to_vec(),
                    ts_ms: 0
                },
                Record {
                    key: None,
                    data: b"bc".to_vec(),
                    ts_ms: 0
                },
            ]
        );
    }

    #[test]
    fn blocks_carry_their_latest_time_and_a_filter_of_their_keys() {
        let r = recs(40);
        let bytes = build(0, &r, 200);
        let (footer, _) = decode_all(&bytes).unwrap();
        assert_eq!(footer.version, VERSION);
        for b in &footer.blocks {
            let recs = &r[b.first_pos as usize..b.end_pos() as usize];
            assert_eq!(b.max_ts_ms, recs.iter().map(|r| r.ts_ms).max().unwrap());
            let blk = &bytes[b.offset as usize..(b.offset + b.len as u64) as usize];
            let f = checked_filter(blk, b).unwrap();
            for rec in recs {
                if let Some(k) = &rec.key {
                    assert!(filter::might_contain(f, k), "no false negatives");
                }
            }
        }
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
                (
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                    proptest::collection::vec(any::<u8>(), 0..300),
                    any::<i64>(),
                ),
                1..60,
            ),
            block_max in 1usize..2048,
        ) {
            let r: Vec<Record> = data
                .into_iter()
                .map(|(key, data, ts_ms)| Record { key, data, ts_ms })
                .collect();
            let bytes = build(start, &r, block_max);
            let (footer, all) = decode_all(&bytes).unwrap();
            prop_assert_eq!(footer.end_pos, start + r.len() as u64);
            prop_assert_eq!(all, r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_all(&b);
            let _ = Footer::decode(&b);
            for version in [1, 2] {
                let expect = BlockRef {
                    offset: 0,
                    first_pos: 0,
                    record_count: 1,
                    len: b.len() as u32,
                    max_ts_ms: 0,
                    version,
                };
                let _ = decode_block(&b, &expect);
            }
            let expect = BlockRef {
                offset: 0,
                first_pos: 0,
                record_count: 1,
                len: b.len() as u32,
                max_ts_ms: 0,
                version: 2,
            };
            let _ = checked_filter(&b, &expect);
        }
    }
}
