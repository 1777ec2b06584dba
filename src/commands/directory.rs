//! The Go plugin's hidden commands, kept for the sites that script them:
//! `backup_directory CFG DIR [N]`, `backup_directory_parallel CFG DIR [N]`,
//! `restore_directory CFG PREFIX [N]`, `restore_directory_parallel CFG
//! PREFIX [N]`.
//!
//! As in the Go plugin, keys are not under `folder`: a file is stored
//! under its own path, cleaned (`/tmp/dd/a` -> `tmp/dd/a`), and a restore
//! writes each object under PREFIX to `PREFIX/<its base name>`. Unlike the
//! Go plugin, a restore finds what a backup of the same absolute path
//! stored (Go lists the raw PREFIX, which never matches a cleaned key),
//! lists every page rather than the first 1,000 keys, and never hangs:
//! `N` of 0 or not a number means the default, 5. Every file goes through
//! the same verified engine as `backup_file`/`restore_file`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use crate::config::Purpose;
use crate::engine::{self, Source};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::{ObjectClass, paging};

use super::Context;
use super::output::throughput;
use super::restore_file::download_to_file;

/// Files in flight at once in the `_parallel` forms without a count.
const DEFAULT_WORKERS: usize = 5;

/// How many files go at once: 1, or the count given (0, garbage: 5).
fn workers(parallel: bool, count: Option<&str>) -> usize {
    if !parallel {
        return 1;
    }
    count.and_then(|n| n.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_WORKERS)
}

pub async fn backup(config: &Path, dir: &str, parallel: bool, count: Option<&str>) -> Result<()> {
    let ctx = Context::open(config, Purpose::Backup).await?;
    let started = Instant::now();
    let mut files = Vec::new();
    walk(Path::new(dir), &mut files)?;
    println!("dirKey = {dir}");
    let ctx = &ctx;
    let sizes: Vec<u64> = futures::stream::iter(files)
        .map(|file| async move {
            let path = file.display().to_string();
            let key = layout::clean_folder(&path).map_err(|why| Error::usage(format!("{path} {why}")))?;
            let reader = std::fs::File::open(&file).map_err(|e| Error::io(format!("cannot read {path}"), e))?;
            let began = Instant::now();
            let source = Source { reader: Box::new(reader), name: path.clone() };
            let bytes = engine::upload(
                ctx.store.clone(),
                &key,
                source,
                ctx.config.backup,
                ObjectClass::Metadata,
                ctx.transform(),
            )
            .await?;
            log::info!("Uploaded {} for {}", throughput(bytes, began.elapsed()), ctx.store.url(&key));
            if parallel {
                println!("Uploaded {bytes} bytes for {} in {:?}", base_name(&path), began.elapsed());
            }
            Ok::<u64, Error>(bytes)
        })
        .buffered(workers(parallel, count))
        .try_collect()
        .await?;
    let total: u64 = sizes.iter().sum();
    println!("Uploaded {} files ({total} bytes) in {:?}", sizes.len(), started.elapsed());
    Ok(())
}

pub async fn restore(config: &Path, prefix: &str, parallel: bool, count: Option<&str>) -> Result<()> {
    let ctx = Context::open(config, Purpose::Restore).await?;
    let started = Instant::now();
    std::fs::create_dir_all(prefix).map_err(|e| Error::io(format!("cannot create {prefix}"), e))?;
    let key_prefix = layout::clean_folder(prefix).map_err(|why| Error::usage(format!("{prefix} {why}")))?;
    let key_prefix = if key_prefix.is_empty() { String::new() } else { format!("{key_prefix}/") };
    println!("dirKey = {prefix}");
    let mut keys = Vec::new();
    let mut pages = std::pin::pin!(paging::objects(&*ctx.store, &key_prefix));
    while let Some(page) = pages.try_next().await? {
        keys.extend(page.into_iter().map(|o| o.key).filter(|k| !k.ends_with('/') && !layout::is_sidecar(k)));
    }
    let ctx = &ctx;
    let sizes: Vec<u64> = futures::stream::iter(keys)
        .map(|key| async move {
            let target = PathBuf::from(prefix).join(base_name(&key));
            let began = Instant::now();
            let bytes = download_to_file(ctx, &key, &target).await?;
            log::info!("Downloaded {} for {}", throughput(bytes, began.elapsed()), ctx.store.url(&key));
            println!("Downloaded {bytes} bytes for {} in {:?}", base_name(&key), began.elapsed());
            Ok::<u64, Error>(bytes)
        })
        .buffered(workers(parallel, count))
        .try_collect()
        .await?;
    let total: u64 = sizes.iter().sum();
    println!("Downloaded {} files ({total} bytes) in {:?}", sizes.len(), started.elapsed());
    Ok(())
}

/// Regular files under `dir` (symbolic links to files included, linked
/// directories not entered), in lexical order; anything else is an error.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let stat = std::fs::metadata(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    if stat.is_file() {
        files.push(dir.to_path_buf());
        return Ok(());
    }
    if !stat.is_dir() {
        return Err(Error::local(format!("{} is not a regular file or directory", dir.display())));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    entries.sort();
    for entry in entries {
        let linked_dir = std::fs::symlink_metadata(&entry).is_ok_and(|m| m.file_type().is_symlink())
            && std::fs::metadata(&entry).is_ok_and(|m| m.is_dir());
        if !linked_dir {
            walk(&entry, files)?;
        }
    }
    Ok(())
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_never_hang() {
        assert_eq!(workers(false, Some("9")), 1);
        assert_eq!(workers(true, None), 5);
        assert_eq!(workers(true, Some("0")), 5);
        assert_eq!(workers(true, Some("x")), 5);
        assert_eq!(workers(true, Some("3")), 3);
    }
}
