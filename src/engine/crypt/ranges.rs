//! A filtered restore of an encrypted object: which stored chunks age's
//! seekable reader needs for the plaintext ranges asked for ([`Map`]), and
//! the object as that reader sees it, assembled from the header in memory
//! and the chunks as they arrive ([`Sparse`]).

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

use bytes::Bytes;

use super::stream::ChannelReader;
use super::{CHUNK, STORED_CHUNK};
use crate::error::{Error, Result};

/// Which stored chunks a filtered restore reads, in the order age's
/// seekable reader reads them.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Map {
    /// The last chunk (age reads it to authenticate the length when a
    /// range starts at a chunk boundary), fetched first when needed.
    pub(super) last: Range<u64>,
    pub(super) needs_last: bool,
    /// Every other chunk read, as stored ranges (runs of chunks joined).
    pub(super) segments: Vec<Range<u64>>,
}

impl Map {
    /// `start`: where the first chunk is stored; `total`: the stored size.
    pub(super) fn new(start: u64, total: u64, ranges: &[Range<u64>]) -> Result<Map> {
        let stored = total
            .checked_sub(start)
            .filter(|n| *n >= 16)
            .ok_or_else(|| Error::integrity("the encrypted object ends within its header (truncated)"))?;
        let chunks = stored.div_ceil(STORED_CHUNK);
        let plain = stored - chunks * 16;
        if let Some((i, r)) = ranges.iter().enumerate().find(|(_, r)| r.end > plain || r.start > r.end) {
            return Err(Error::local(format!(
                "range {} (bytes {}..{}) ends past the end of the decrypted object, which has {plain} bytes; \
                 nothing was written",
                i + 1,
                r.start,
                r.end
            )));
        }
        let last_index = chunks - 1;
        let at = |k: u64| start + k * STORED_CHUNK..(start + (k + 1) * STORED_CHUNK).min(total);
        let mut needs_last = false;
        let mut segments: Vec<Range<u64>> = Vec::new();
        let mut read = |k: u64, needs_last: &mut bool| {
            if k == last_index {
                *needs_last = true;
                return;
            }
            let r = at(k);
            match segments.last_mut() {
                Some(prev) if prev.end == r.start => prev.end = r.end,
                _ => segments.push(r),
            }
        };
        // Replays age's StreamReader: `have` is the chunk it holds decrypted.
        let (mut pos, mut have) = (0u64, None::<u64>);
        for r in ranges.iter().filter(|r| r.start < r.end) {
            if r.start != pos {
                let (target, current) = (r.start / CHUNK, pos / CHUNK);
                if target != current {
                    have = None;
                    if r.start % CHUNK == 0 {
                        // age computes (and authenticates) the length here.
                        needs_last = true;
                    } else {
                        read(target, &mut needs_last);
                        have = Some(target);
                    }
                }
            }
            for k in r.start / CHUNK..=(r.end - 1) / CHUNK {
                if have != Some(k) {
                    read(k, &mut needs_last);
                    have = Some(k);
                }
            }
            pos = r.end;
            if pos % CHUNK == 0 {
                have = None;
            }
        }
        Ok(Map { last: at(last_index), needs_last, segments })
    }
}

/// The stored object as age's seekable reader sees it during a filtered
/// restore: the header from memory, the last chunk (when fetched: it comes
/// first) kept in memory, every other chunk read once, in order, as it
/// arrives. A read anywhere else is an error, never made-up bytes.
pub(super) struct Sparse {
    pub(super) prefix: Bytes,
    pub(super) last_range: Option<Range<u64>>,
    pub(super) last: Option<Vec<u8>>,
    pub(super) segments: VecDeque<Range<u64>>,
    /// The position of the next byte from `input` in the front segment.
    pub(super) cursor: Option<u64>,
    pub(super) input: ChannelReader,
    pub(super) pos: u64,
    pub(super) total: u64,
}

impl Sparse {
    fn load_last(&mut self) -> io::Result<()> {
        if let (Some(r), None) = (&self.last_range, &self.last) {
            let mut data = vec![0; (r.end - r.start) as usize];
            self.input.read_exact(&mut data)?;
            self.last = Some(data);
        }
        Ok(())
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.pos;
        let n = if pos < self.prefix.len() as u64 {
            let from = &self.prefix[pos as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else if pos >= self.total {
            0
        } else if self.last_range.as_ref().is_some_and(|r| r.contains(&pos)) {
            self.load_last()?;
            let r = self.last_range.as_ref().expect("checked");
            let from = &self.last.as_ref().expect("loaded")[(pos - r.start) as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else {
            self.load_last()?;
            while let Some(front) = self.segments.front() {
                let cursor = *self.cursor.get_or_insert(front.start);
                if cursor < front.end {
                    break;
                }
                self.segments.pop_front();
                self.cursor = None;
            }
            let (Some(front), Some(cursor)) = (self.segments.front(), self.cursor) else {
                return Err(io::Error::other(Error::local(format!("decrypting: byte {pos} was not fetched"))));
            };
            if cursor != pos {
                return Err(io::Error::other(Error::local(format!(
                    "decrypting: byte {pos} read out of order (next fetched: {cursor})"
                ))));
            }
            let want = ((front.end - cursor) as usize).min(buf.len());
            let n = self.input.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the fetched ranges ended early"));
            }
            self.cursor = Some(cursor + n as u64);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.total.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}
