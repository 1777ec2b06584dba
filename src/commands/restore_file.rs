//! `restore_file CFG PATH`: the object for PATH to the local file PATH.
//!
//! The bytes go to a temporary file beside PATH (a short name, so a PATH
//! near the file system's name limit still works) that is synced and
//! renamed into place only when complete, so a failed or interrupted
//! restore (missing object, network error, SIGTERM) leaves no partial file
//! and never clobbers an existing one, and a crash never leaves a renamed
//! but empty file.

use std::path::Path;
use std::time::Instant;

use crate::config::Purpose;
use crate::engine::{self, Output, Selection};
use crate::error::{Error, Result};
use crate::layout;

use super::output::throughput;
use super::wording::thaw_hint;
use super::{Context, interrupt};

pub async fn run(config: &Path, path: &str) -> Result<()> {
    let ctx = Context::open(config, Purpose::Restore).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let started = Instant::now();
    let bytes = download_to_file(&ctx, &key, Path::new(path)).await.map_err(|e| thaw_hint(e, path))?;
    log::info!("Downloaded {} for {}", throughput(bytes, started.elapsed()), ctx.store.url(&key));
    Ok(())
}

/// The object `key` to the local file `target`, through a temporary file
/// beside it that becomes `target` only when complete; the bytes written.
pub(super) async fn download_to_file(ctx: &Context, key: &str, target: &Path) -> Result<u64> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = target.with_file_name(format!(".{}.{}.{seq}.partial", crate::PLUGIN_NAME, std::process::id()));
    let file = std::fs::File::create(&temp).map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;
    interrupt::register_partial(&temp);
    let path = target.display().to_string();
    let result = async {
        let out = Output { writer: Box::new(SyncOnFlush(file)), name: path.clone() };
        let bytes =
            engine::download(ctx.store.clone(), key, Selection::Whole, out, ctx.config.restore, ctx.transform())
                .await?;
        std::fs::rename(&temp, target).map_err(|e| Error::io(format!("cannot move the restored file to {path}"), e))?;
        sync_dir(target).map_err(|e| Error::io(format!("cannot sync the directory of {path}"), e))?;
        Ok::<u64, Error>(bytes)
    }
    .await;
    interrupt::forget_partial(&temp);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The file's bytes reach the disk when the writer is flushed (once, at
/// the end), before the file is renamed into place.
struct SyncOnFlush(std::fs::File);

impl std::io::Write for SyncOnFlush {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

/// Syncs the directory holding `path`, so its new name survives a crash.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}
