//! Builds a segment in memory block by block. Blocks are cut when adding a record would
//! push the uncompressed block past `block_max` bytes (a block always holds at least one
//! record). Blocks go straight to the writer, so memory holds one block at a time.

use std::io::Write;

use super::{encode_block, trailer, BlockRef, Footer, Record};

pub struct SegmentBuilder<W: Write> {
    start_pos: u64,
    next_pos: u64,
    block_max: usize,
    level: i32,
    out: W,
    offset: u64,
    blocks: Vec<BlockRef>,
    pending: Vec<Record>,
    pending_bytes: usize,
    payload_bytes: u64,
}

impl SegmentBuilder<Vec<u8>> {
    /// A builder that collects the segment in memory.
    pub fn new(start_pos: u64, block_max: usize, level: i32) -> Self {
        SegmentBuilder::to_writer(Vec::new(), start_pos, block_max, level)
    }
}

impl<W: Write> SegmentBuilder<W> {
    /// A builder that writes the segment to `out`.
    pub fn to_writer(out: W, start_pos: u64, block_max: usize, level: i32) -> Self {
        SegmentBuilder {
            start_pos,
            next_pos: start_pos,
            block_max: block_max.max(1),
            level,
            out,
            offset: 0,
            blocks: Vec::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            payload_bytes: 0,
        }
    }

    /// Appends the record at the next position.
    pub fn push(&mut self, key: Option<&[u8]>, data: &[u8], ts_ms: i64) -> std::io::Result<()> {
        let size = 16 + key.map_or(0, <[u8]>::len) + data.len();
        if !self.pending.is_empty() && self.pending_bytes + size > self.block_max {
            self.flush_block()?;
        }
        self.payload_bytes += data.len() as u64;
        self.pending_bytes += size;
        self.pending.push(Record {
            key: key.map(<[u8]>::to_vec),
            data: data.to_vec(),
            ts_ms,
        });
        Ok(())
    }

    /// Entries added so far.
    pub fn records(&self) -> u64 {
        self.next_pos - self.start_pos + self.pending.len() as u64
    }

    /// Payload bytes added so far.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    fn flush_block(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = encode_block(self.next_pos, &self.pending, self.level)?;
        self.blocks.push(BlockRef {
            offset: self.offset,
            first_pos: self.next_pos,
            record_count: self.pending.len() as u32,
            len: block.len() as u32,
            max_ts_ms: self.pending.iter().map(|r| r.ts_ms).max().unwrap_or(0),
            version: super::VERSION,
        });
        self.next_pos += self.pending.len() as u64;
        self.out.write_all(&block)?;
        self.offset += block.len() as u64;
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// Writes the footer and trailer; returns the writer, the segment's length in bytes and
    /// its block count.
    pub fn finish_into(mut self) -> std::io::Result<(W, u64, u32)> {
        self.flush_block()?;
        let block_count = self.blocks.len() as u32;
        let footer = Footer {
            version: super::VERSION,
            start_pos: self.start_pos,
            end_pos: self.next_pos,
            blocks: std::mem::take(&mut self.blocks),
        }
        .encode();
        self.out.write_all(&footer)?;
        self.out.write_all(&trailer(&footer))?;
        let len = self.offset + footer.len() as u64 + super::TRAILER_LEN as u64;
        Ok((self.out, len, block_count))
    }

    /// Finishes the segment and returns the writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.finish_into().map(|(w, _, _)| w)
    }
}
