//! SIGTERM, SIGINT and SIGHUP (a cancelled gpbackup, a timeout, a closed
//! terminal): the command stops, what it left half-done is undone within a
//! few seconds, and the process exits non-zero with one line on stderr.
//!
//! Undone are the multipart uploads this process opened (noted in the
//! host's journal; aborted through the store) and the partial files it was
//! writing (registered here). SIGKILL cannot be caught: the journal and
//! `cleanup` handle that.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::engine::journal;
use crate::error::{Error, Result};
use crate::store::Store;

/// How long undoing may take before the process exits anyway.
const UNDO_BOUND: Duration = Duration::from_secs(5);

static PARTIAL_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static STORE: OnceLock<Arc<dyn Store>> = OnceLock::new();

/// The store this process uses, for aborting its uploads on a signal.
pub fn register_store(store: &Arc<dyn Store>) {
    let _ = STORE.set(store.clone());
}

/// A file being written that must not survive an interruption.
pub fn register_partial(path: &std::path::Path) {
    PARTIAL_FILES.lock().expect("partial files").push(path.to_path_buf());
}

/// The file is complete (or removed): no longer to be removed.
pub fn forget_partial(path: &std::path::Path) {
    PARTIAL_FILES.lock().expect("partial files").retain(|p| p != path);
}

/// Runs `command` until it ends or a signal arrives; on a signal, undoes
/// what can be undone and fails naming the signal.
pub async fn until_signal(command: impl Future<Output = Result<()>>) -> Result<()> {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        // Without signal handling the command still runs; SIGKILL's path remains.
        return command.await;
    };
    let name = tokio::select! {
        outcome = command => return outcome,
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = hup.recv() => "SIGHUP",
    };
    // The command's future is dropped here: its requests stop.
    let undone = tokio::time::timeout(UNDO_BOUND, undo()).await;
    let what = match undone {
        Ok((aborted, removed)) => format!("aborted {aborted} open uploads, removed {removed} partial files"),
        Err(_) => format!("undoing took longer than {}s and was left to `cleanup`", UNDO_BOUND.as_secs()),
    };
    Err(Error::local(format!("interrupted by {name}: {what}")))
}

/// Removes the partial files and aborts this process's open uploads.
async fn undo() -> (usize, usize) {
    let files = std::mem::take(&mut *PARTIAL_FILES.lock().expect("partial files"));
    let removed = files.iter().filter(|f| std::fs::remove_file(f).is_ok()).count();
    let mut aborted = 0;
    if let Some(store) = STORE.get() {
        for entry in journal::entries_of_this_process() {
            match store.abort_upload(&entry.key, &entry.upload_id).await {
                Ok(()) => {
                    entry.forget();
                    aborted += 1;
                }
                Err(e) => log::warn!("could not abort the upload of {} after a signal: {e}", entry.url),
            }
        }
    }
    (aborted, removed)
}
