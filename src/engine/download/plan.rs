//! What a download fetches: the units of a whole object (its stored parts,
//! from its integrity record, or chunks) or of the ranges asked for, every
//! one checked against the object's size before anything is fetched.

use std::ops::Range;

use bytes::Bytes;

use super::fetch::short_read;
use crate::config::Verify;
use crate::engine::integrity::{META_KEY, Manifest, Record};
use crate::error::{Error, Kind, Result};
use crate::store::glacier::treehash::{self, Hash};
use crate::store::{Store, TREE_HASH_META};

/// A piece of the output: a byte range of the object and, when stored, the
/// CRC it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub range: Range<u64>,
    pub crc: Option<u64>,
}

pub struct Plan {
    /// Made as they are fetched, so a plan costs no memory per unit.
    pub units: Box<dyn Iterator<Item = Unit> + Send>,
    /// The object's first bytes, already fetched by the probe.
    pub prefix: Bytes,
    /// The object's size.
    pub total: u64,
    /// The version every range must come from (when the store says).
    pub etag: Option<String>,
    /// The whole object's CRC, checked before the last unit is emitted.
    pub whole_crc: Option<u64>,
    /// The whole object's SHA-256 tree hash, when the store knows it (a
    /// Glacier archive), checked at the same moment.
    pub whole_tree: Option<Hash>,
}

/// What a download accepts of an object's integrity records.
#[derive(Debug, Clone, Copy)]
pub struct Records {
    /// `verify`: what to do when a record or manifest is missing.
    pub verify: Verify,
    /// Every object must carry one (an encrypted setup, where every object
    /// was written by the plugin).
    pub required: bool,
}

/// An object without an integrity record where every object has one:
/// refused, or (`verify: available`) let through with a warning.
fn unrecorded(url: &str, records: Records) -> Result<()> {
    if !records.required {
        return Ok(());
    }
    if records.verify == Verify::Available {
        log::warn!(
            "{url} has no integrity record (not written by this plugin, or a copy dropped its metadata); restoring it \
             anyway (verify: available)"
        );
        return Ok(());
    }
    Err(Error::integrity(format!(
        "{url} has no integrity record: every object of an encrypted backup is written with one, so this one was not \
         written by the plugin (planted?) or a copy dropped its metadata; it is not restored (set `verify: available` \
         in the plugin config to restore it with the checks still possible); nothing was written"
    )))
}

/// Probes the object and decides its units from its integrity record.
pub async fn whole(store: &dyn Store, key: &str, chunk: u64, records: Records) -> Result<Plan> {
    let verify = records.verify;
    let url = store.url(key);
    let first = store.get_range(key, 0..chunk).await?;
    let total = first.total_size;
    let expect = (chunk.min(total)) as usize;
    if first.data.len() != expect {
        return Err(short_read(&url, &(0..chunk.min(total)), first.data.len()));
    }
    let (units, whole_crc): (Box<dyn Iterator<Item = Unit> + Send>, _) =
        match Record::parse(first.meta(META_KEY), &url)? {
            Record::None => {
                unrecorded(&url, records)?;
                (Box::new(chunks(std::iter::once(0..total).collect(), chunk)), None)
            }
            Record::Single { size, crc } => {
                if size != total {
                    return Err(Error::integrity(format!("{url} has {total} bytes but was stored with {size}")));
                }
                (Box::new(std::iter::once(Unit { range: 0..total, crc: Some(crc) })), Some(crc))
            }
            record @ Record::Manifest { .. } => {
                let manifest_key = record.manifest_key(key).unwrap_or_default();
                match load_manifest(store, &manifest_key).await {
                    Ok(manifest) => {
                        if manifest.size != total {
                            return Err(Error::integrity(format!(
                                "{url} has {total} bytes but its manifest says {}",
                                manifest.size
                            )));
                        }
                        let mut start = 0u64;
                        let units: Vec<Unit> = manifest
                            .parts
                            .iter()
                            .map(|p| {
                                let unit = Unit { range: start..start + p.size, crc: Some(p.crc) };
                                start += p.size;
                                unit
                            })
                            .collect();
                        (Box::new(units.into_iter()), Some(manifest.crc))
                    }
                    Err(e) if e.is(Kind::NotFound) && verify == Verify::Available => {
                        let whole = without_manifest(store, key, total, &manifest_key).await?;
                        (Box::new(chunks(std::iter::once(0..total).collect(), chunk)), whole)
                    }
                    Err(e) if e.is(Kind::NotFound) => {
                        return Err(Error::integrity(format!(
                            "{} is missing: {url} cannot be verified, so it is not restored (copy the manifest \
                             back beside it, or set `verify: available` in the plugin config to restore it with \
                             the checks still possible)",
                            store.url(&manifest_key)
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
    let whole_tree = match first.meta(TREE_HASH_META) {
        None => None,
        Some(text) => Some(
            treehash::from_hex(text)
                .ok_or_else(|| Error::integrity(format!("{url} has a damaged tree hash record: {text:?}")))?,
        ),
    };
    Ok(Plan { units, prefix: first.data, total, etag: first.etag, whole_crc, whole_tree })
}

/// The units of `ranges`, after checking every range against the object's
/// size: a range past the end (a damaged or foreign offsets file) fails
/// before a byte is fetched or written. Subsets are checked for length and
/// version only: stored CRCs cover whole parts, and fetching whole parts
/// would defeat a filtered restore.
pub async fn ranges(
    store: &dyn Store,
    key: &str,
    ranges: Vec<Range<u64>>,
    chunk: u64,
    records: Records,
) -> Result<Plan> {
    let url = store.url(key);
    let probe = store.get_range(key, 0..1).await?;
    let total = probe.total_size;
    if Record::parse(probe.meta(META_KEY), &url)? == Record::None {
        unrecorded(&url, records)?;
    }
    if let Some((i, r)) = ranges.iter().enumerate().find(|(_, r)| r.end > total) {
        return Err(Error::local(format!(
            "range {} (bytes {}..{}) ends past the end of {url}, which has {total} bytes; nothing was written",
            i + 1,
            r.start,
            r.end
        )));
    }
    Ok(Plan {
        units: Box::new(chunks(coalesce(&ranges), chunk)),
        prefix: Bytes::new(),
        total,
        etag: probe.etag,
        whole_crc: None,
        whole_tree: None,
    })
}

async fn load_manifest(store: &dyn Store, manifest_key: &str) -> Result<Manifest> {
    let url = store.url(manifest_key);
    // 10,000 parts take about 400 KiB; anything near this limit is not ours.
    let fetched = store.get_range(manifest_key, 0..(16 << 20)).await?;
    let text = std::str::from_utf8(&fetched.data)
        .map_err(|_| Error::integrity(format!("manifest {url} is damaged: not text")))?;
    Manifest::parse(text, &url)
}

/// What `verify: available` can still check of a multipart object whose
/// manifest is lost: its size, and the service's full-object CRC-64/NVME
/// where it keeps one (returned, to be checked before the last byte).
async fn without_manifest(store: &dyn Store, key: &str, total: u64, manifest_key: &str) -> Result<Option<u64>> {
    let url = store.url(key);
    let head = store.head(key).await?;
    if head.size != total {
        return Err(Error::transient(format!("{url} changed during the restore ({total} then {} bytes)", head.size)));
    }
    let checks = match head.full_crc64 {
        Some(_) => "checked against the service's full-object CRC-64/NVME",
        None => "the service keeps no full-object checksum of it, so only its size is checked",
    };
    log::warn!("{} is missing; restoring {url} anyway (verify: available): {checks}", store.url(manifest_key));
    Ok(head.full_crc64)
}

/// Joins ranges that touch (`a..b` then `b..c`) and drops empty ones, keeping
/// the order: the output is the concatenation in the order given.
pub fn coalesce(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges.iter().filter(|r| !r.is_empty()) {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r.clone()),
        }
    }
    out
}

/// Cuts ranges into units of at most `chunk` bytes, without checksums, one
/// at a time.
fn chunks(ranges: Vec<Range<u64>>, chunk: u64) -> impl Iterator<Item = Unit> + Send {
    let chunk = chunk.max(1);
    ranges.into_iter().flat_map(move |r| {
        let mut start = r.start;
        std::iter::from_fn(move || {
            (start < r.end).then(|| {
                let end = start.saturating_add(chunk).min(r.end);
                let unit = Unit { range: start..end, crc: None };
                start = end;
                unit
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_adjacent_ranges_only() {
        assert_eq!(coalesce(&[0..10, 10..20, 25..30, 30..31]), vec![0..20, 25..31]);
        assert_eq!(coalesce(&[0..0, 5..10, 0..0, 10..12]), vec![5..12]);
        // Out-of-order ranges keep their order (the output is a concatenation).
        assert_eq!(coalesce(&[20..30, 0..10, 10..20]), vec![20..30, 0..20]);
        assert_eq!(coalesce(&[]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn splits_into_chunks() {
        let cut = |range: Range<u64>| chunks(std::iter::once(range).collect(), 10).map(|u| u.range).collect::<Vec<_>>();
        assert_eq!(cut(0..25), vec![0..10, 10..20, 20..25]);
        let several = chunks(vec![3..10, 10..10, 12..13], 10).map(|u| u.range).collect::<Vec<_>>();
        assert_eq!(several, vec![3..10, 12..13]);
        assert_eq!(cut(0..20), vec![0..10, 10..20]);
        // Near the top of the range: no overflow, no unit past the end.
        assert_eq!(cut(u64::MAX - 15..u64::MAX), vec![u64::MAX - 15..u64::MAX - 5, u64::MAX - 5..u64::MAX]);
    }
}
