//! `delete_directory CFG DIR`: every object under DIR. DIR is taken as a
//! directory (`a/b` never matches `a/bc/...`), relative to the bucket root as
//! in the Go plugin, and the bucket root itself is refused.

use std::path::Path;

use crate::config::Purpose;
use crate::engine::delete;
use crate::error::{Error, Result};
use crate::layout;

use super::Context;

pub async fn run(config: &Path, dir: &str) -> Result<()> {
    let prefix = layout::directory_prefix(dir)?;
    if prefix.is_empty() {
        return Err(Error::usage(format!(
            "delete_directory: directory {dir:?} is the bucket root; name a directory inside the bucket"
        )));
    }
    let ctx = Context::open(config, Purpose::Other).await?;
    let done = delete::delete_prefix(&*ctx.store, &prefix, ctx.config.on_retention_locked(), false).await?;
    log::info!("Deleted {} objects under {}", done.deleted, ctx.store.url(&prefix));
    Ok(())
}
