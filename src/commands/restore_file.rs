//! `restore_file CFG PATH`: the object for PATH to the local file PATH.
//!
//! The bytes go to a temporary file beside PATH that is renamed into place
//! only when complete, so a failed restore (missing object, network error)
//! leaves no partial file and never clobbers an existing one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::engine::{self, Output, Selection};
use crate::error::{Error, Result};
use crate::layout;

use super::Context;
use super::output::throughput;
use super::wording::thaw_hint;

pub async fn run(config: &Path, path: &str) -> Result<()> {
    let ctx = Context::open(config).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let target = PathBuf::from(path);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = target.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let file = std::fs::File::create(&temp).map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;

    let started = Instant::now();
    let result = async {
        let out = Output { writer: Box::new(file), name: path.to_string() };
        let bytes =
            engine::download(ctx.store.clone(), &key, Selection::Whole, out, ctx.config.restore, ctx.transform())
                .await
                .map_err(|e| thaw_hint(e, path))?;
        std::fs::rename(&temp, &target)
            .map_err(|e| Error::io(format!("cannot move the restored file to {path}"), e))?;
        Ok::<u64, Error>(bytes)
    }
    .await;
    match result {
        Ok(bytes) => {
            log::info!("Downloaded {} for {}", throughput(bytes, started.elapsed()), ctx.store.url(&key));
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}
