//! `restore_data_subset CFG KEYPATH OFFSETS_FILE`: only the listed byte
//! ranges of the object, concatenated, to standard output.
//!
//! gprestore uses it for filtered restores (`--include-table` and friends)
//! of uncompressed single-data-file backups when the config says
//! `restore_subset: "on"`. Adjacent ranges are fetched as one ranged GET, so
//! the bytes fetched are the bytes asked for. The Go plugin has no such
//! command and downloads whole segment files instead.

use std::path::Path;
use std::time::Instant;

use crate::config::Purpose;
use crate::engine::{self, Output, Selection};
use crate::error::{Error, Result};
use crate::{layout, offsets};

use super::Context;
use super::output::throughput;
use super::wording::thaw_hint;

pub async fn run(config: &Path, path: &str, offsets_file: &Path) -> Result<()> {
    let name = offsets_file.display().to_string();
    let text = std::fs::read_to_string(offsets_file).map_err(|e| Error::io(format!("offsets file {name}"), e))?;
    let ranges = offsets::parse(&text, &name)?;
    super::output::require_open(1, "stdout")?;
    let ctx = Context::open(config, Purpose::Restore).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let requested: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let started = Instant::now();
    let out = Output { writer: Box::new(std::io::stdout()), name: "stdout".to_string() };
    let bytes =
        engine::download(ctx.store.clone(), &key, Selection::Ranges(ranges), out, ctx.config.restore, ctx.transform())
            .await
            .map_err(|e| thaw_hint(e, path))?;
    debug_assert_eq!(bytes, requested);
    log::info!(
        "Downloaded {} in {} ranges for {}",
        throughput(bytes, started.elapsed()),
        text.split_ascii_whitespace().next().unwrap_or("0"),
        ctx.store.url(&key)
    );
    Ok(())
}
