//! Transfer buffers, reused within the process.
//!
//! Every ranged GET is read into one buffer of the announced length, a
//! download unit (8 MiB by default), and every upload part is read from
//! the stream into one buffer. A fresh buffer of that size comes from
//! the kernel as untouched pages: filling it costs one page fault and one
//! page cleared per 4 KiB, which measured about a quarter of a restore's
//! CPU (BENCHMARKS.md, section 9). A buffer whose bytes are no longer
//! referenced comes back here instead, and the next GET fills it again.
//!
//! This adds no memory: a buffer is either in use or idle here, and a new
//! one is allocated only when none idle is large enough, so the buffers
//! never outnumber the most that were in use at once (bounded by the
//! transfer's budget). At most [`KEEP`] idle buffers are kept.

use std::sync::Mutex;

use bytes::Bytes;

/// Idle buffers kept for reuse.
const KEEP: usize = 16;

static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with room for `len` bytes: an idle one when one is large
/// enough (and not more than twice as large: a small read must not pin a
/// part-sized buffer), else a new one.
pub fn take(len: usize) -> Vec<u8> {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    let fits = |b: &Vec<u8>| b.capacity() >= len && b.capacity() <= len.saturating_mul(2).max(64 << 10);
    match idle.iter().position(fits) {
        Some(i) => idle.swap_remove(i),
        None => Vec::with_capacity(len),
    }
}

/// `buf` as `Bytes`; once no slice of it is left, it goes back to the idle
/// buffers.
pub fn freeze(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Recycled(buf))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP {
            idle.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_buffer_is_filled_again() {
        let mut buf = take(1 << 20);
        buf.extend_from_slice(&[7; 1000]);
        let at = buf.as_ptr() as usize;
        let bytes = freeze(buf);
        let part = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(&part[..], &[7; 10]);
        // Still referenced by `part`: a new buffer.
        let other = take(1 << 20);
        assert_ne!(other.as_ptr() as usize, at);
        drop(part);
        let again = take(1 << 20);
        assert!(again.is_empty() && again.capacity() >= 1 << 20);
        // Tests run in parallel: another test may have taken it first.
        let _ = (again, other);
    }
}
