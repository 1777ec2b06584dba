//! `backup_data CFG KEYPATH`: standard input to the object for KEYPATH.
//!
//! Called once per segment (single-data-file mode, by gpbackup_helper) or
//! once per table per segment (`COPY ... TO PROGRAM 'gzip | plugin ...'`).
//! The stream may be empty; an empty object is stored then. This is the
//! only command whose objects are payloads: `storage_class` applies to
//! them, and to nothing else.

use std::path::Path;
use std::time::Instant;

use crate::config::Purpose;
use crate::engine::{self, Source};
use crate::error::Result;
use crate::layout;
use crate::store::ObjectClass;

use super::Context;
use super::output::throughput;

pub async fn run(config: &Path, path: &str) -> Result<()> {
    super::output::require_open(0, "stdin")?;
    let ctx = Context::open(config, Purpose::Backup).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let started = Instant::now();
    let source = Source { reader: Box::new(std::io::stdin()), name: "stdin".to_string() };
    let bytes =
        engine::upload(ctx.store.clone(), &key, source, ctx.config.backup, ObjectClass::Payload, ctx.transform())
            .await?;
    log::info!("Uploaded {} for {}", throughput(bytes, started.elapsed()), ctx.store.url(&key));
    Ok(())
}
