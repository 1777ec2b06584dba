//! `restore_data CFG KEYPATH`: the object for KEYPATH to standard output.
//!
//! KEYPATH may name an older backup (incremental restore) or another
//! segment's file (resize restore); the key rule is positional, so both
//! just work. Nothing unverified is ever written: see [`crate::engine::download`].

use std::path::Path;
use std::time::Instant;

use crate::config::Purpose;
use crate::engine::{self, Output, Selection};
use crate::error::Result;
use crate::layout;

use super::Context;
use super::output::throughput;
use super::wording::thaw_hint;

pub async fn run(config: &Path, path: &str) -> Result<()> {
    super::output::require_open(1, "stdout")?;
    let ctx = Context::open(config, Purpose::Restore).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let started = Instant::now();
    let out = Output { writer: Box::new(std::io::stdout()), name: "stdout".to_string() };
    let bytes = engine::download(ctx.store.clone(), &key, Selection::Whole, out, ctx.config.restore, ctx.transform())
        .await
        .map_err(|e| thaw_hint(e, path))?;
    log::info!("Downloaded {} for {}", throughput(bytes, started.elapsed()), ctx.store.url(&key));
    Ok(())
}
