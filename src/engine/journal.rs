//! A host-local record of the multipart uploads this host has open.
//!
//! A `backup_data` killed mid-stream (segment crash, cancelled backup,
//! OOM killer) leaves a pending multipart upload: invisible, but its parts
//! are stored and billed until someone aborts it. Not every S3-compatible
//! service can list pending uploads (s3s-fs cannot), so each upload is
//! noted in `$HOME/.gpbackup_s3_plugin/uploads/` from the moment it starts
//! until it completes or is aborted; `cleanup_plugin_for_backup`, which
//! gpbackup runs on every host after a backup, aborts what a dead process
//! left there. Small streams (one request) never touch the directory, so
//! the common per-table call costs nothing extra. Failures to write the
//! journal are logged and otherwise ignored: it is a safety net, not a
//! requirement for the backup.

use std::path::PathBuf;

/// One open upload: the store's URL of the object, its key, and the id the
/// service gave the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub url: String,
    pub key: String,
    pub upload_id: String,
    file: PathBuf,
}

fn dir() -> Option<PathBuf> {
    Some(PathBuf::from(std::env::var_os("HOME")?).join(".gpbackup_s3_plugin").join("uploads"))
}

/// Notes an upload that has just started; returns the note to remove when
/// the upload ends.
pub fn record(url: &str, key: &str, upload_id: &str) -> Option<PathBuf> {
    let dir = dir()?;
    let write = || -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&dir)?;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let file = dir.join(format!("{}-{nanos}.upload", std::process::id()));
        std::fs::write(&file, format!("{url}\n{key}\n{upload_id}\n"))?;
        Ok(file)
    };
    match write() {
        Ok(file) => Some(file),
        Err(e) => {
            log::warn!("cannot note the open upload of {url} in {}: {e}", dir.display());
            None
        }
    }
}

/// Removes a note once its upload has completed or been aborted.
pub fn forget(file: Option<PathBuf>) {
    if let Some(file) = file {
        let _ = std::fs::remove_file(file);
    }
}

/// The uploads noted on this host whose object URL starts with `url_prefix`.
pub fn entries(url_prefix: &str) -> Vec<Entry> {
    let Some(dir) = dir() else { return Vec::new() };
    let Ok(read) = std::fs::read_dir(&dir) else { return Vec::new() };
    read.flatten()
        .filter_map(|e| {
            let file = e.path();
            let text = std::fs::read_to_string(&file).ok()?;
            let mut lines = text.lines();
            let (url, key, upload_id) = (lines.next()?, lines.next()?, lines.next()?);
            url.starts_with(url_prefix).then(|| Entry {
                url: url.to_string(),
                key: key.to_string(),
                upload_id: upload_id.to_string(),
                file: file.clone(),
            })
        })
        .collect()
}

/// The uploads this process noted and has not ended.
pub fn entries_of_this_process() -> Vec<Entry> {
    let prefix = format!("{}-", std::process::id());
    entries("")
        .into_iter()
        .filter(|e| e.file.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
        .collect()
}

impl Entry {
    pub fn forget(self) {
        forget(Some(self.file))
    }
}
