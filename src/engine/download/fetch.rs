//! Fetching one unit and proving it is what was asked for: exactly its
//! bytes, from the object (the same size and version) the restore began
//! with, and matching its stored CRC when it has one.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::plan::Unit;
use crate::engine::integrity;
use crate::error::{Error, Result};
use crate::store::{Fetched, Store};

/// What every answer of one download must agree with.
#[derive(Debug, Clone)]
pub struct Expect {
    pub total: u64,
    pub etag: Option<String>,
}

/// A unit's bytes, and its stored CRC when it had one.
pub type Checked = (Bytes, Option<u64>);

/// Fetches one unit (using the probe's bytes where they cover it) and checks
/// its length and CRC; returns its bytes and, when it had a stored CRC, that
/// CRC (so that the whole object's check need not hash them again).
pub async fn unit(store: &dyn Store, key: &str, unit: Unit, prefix: Bytes, expect: &Expect) -> Result<Checked> {
    let Range { start, end } = unit.range.clone();
    let have = prefix.len() as u64;
    let data = if end <= have {
        prefix.slice(start as usize..end as usize)
    } else if start < have {
        let rest = fetch(store, key, have..end, expect).await?;
        let mut buf = BytesMut::with_capacity((end - start) as usize);
        buf.extend_from_slice(&prefix[start as usize..]);
        buf.extend_from_slice(&rest.data);
        buf.freeze()
    } else if start == end {
        Bytes::new()
    } else {
        fetch(store, key, start..end, expect).await?.data
    };
    if let Some(crc) = unit.crc
        && integrity::crc64(&data) != crc
    {
        return Err(Error::integrity(format!(
            "{}: bytes {start}..{end} do not match their stored checksum; nothing of them was written",
            store.url(key)
        )));
    }
    Ok((data, unit.crc))
}

/// Fetches `range` and checks that exactly its bytes came back, from the
/// object as it was when the restore began (its size and its ETag).
async fn fetch(store: &dyn Store, key: &str, range: Range<u64>, expect: &Expect) -> Result<Fetched> {
    let fetched = store.get_range(key, range.clone()).await?;
    let url = store.url(key);
    if fetched.total_size != expect.total {
        return Err(Error::integrity(format!(
            "{url} changed size during the restore ({} then {} bytes)",
            expect.total, fetched.total_size
        )));
    }
    if expect.etag.is_some() && fetched.etag != expect.etag {
        return Err(Error::integrity(format!(
            "{url} changed during the restore (ETag {} then {}); nothing of the new version was written",
            expect.etag.as_deref().unwrap_or("-"),
            fetched.etag.as_deref().unwrap_or("none")
        )));
    }
    if range.end > fetched.total_size {
        return Err(Error::integrity(format!(
            "{url} has {} bytes; bytes {}..{} were asked for",
            fetched.total_size, range.start, range.end
        )));
    }
    if fetched.data.len() as u64 != range.end - range.start {
        return Err(short_read(&url, &range, fetched.data.len()));
    }
    Ok(fetched)
}

pub fn short_read(url: &str, range: &Range<u64>, got: usize) -> Error {
    Error::integrity(format!("short read from {url}: bytes {}..{} returned {got} bytes", range.start, range.end))
}
