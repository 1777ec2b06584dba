//! `delete_directory CFG DIR`: every object under DIR. DIR is taken as a
//! directory (`a/b` never matches `a/bc/...`), relative to the bucket root as
//! in the Go plugin, and the bucket root itself is refused.

use std::path::Path;

use crate::error::{Error, Result};
use crate::{layout, store};

use super::Context;

pub async fn run(config: &Path, dir: &str) -> Result<()> {
    let prefix = layout::directory_prefix(dir);
    if prefix.is_empty() {
        return Err(Error::Usage(format!(
            "delete_directory: directory {dir:?} is the bucket root; name a directory inside the bucket"
        )));
    }
    let ctx = Context::open(config).await?;
    let deleted = store::delete_prefix(&*ctx.store, &prefix).await?;
    crate::log::info(&format!("Deleted {deleted} objects under {}", ctx.store.url(&prefix)));
    Ok(())
}
