//! One error type for the whole plugin, turned into one line only at the top.
//!
//! Each variant is a kind an operator reacts to differently: fix the command
//! line, fix the config file, fix a local file, look for a missing backup, or
//! look at the storage service.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// Wrong command line: unknown command, wrong arguments, bad timestamp.
    #[error("{0}")]
    Usage(String),
    /// The config file is missing, unreadable or invalid.
    #[error("{0}")]
    Config(String),
    /// A local file or stream could not be read or written.
    #[error("{0}")]
    Local(String),
    /// The object (or backup) asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The storage service refused or failed a request.
    #[error("{0}")]
    Storage(String),
    /// A failure that may pass if the request is sent again: throttling
    /// (503 SlowDown, 429), other 5xx, a refused or broken connection, a
    /// timeout, a response cut short. Retried by [`crate::store::retry`].
    #[error("{0}")]
    Transient(String),
    /// The data read back is not what was stored.
    #[error("{0}")]
    Integrity(String),
}

impl Error {
    /// Exit status: 2 for a command line gpbackup would never produce, 1 for
    /// everything else (all that gpbackup and plugin_test.sh look at is
    /// non-zero).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    pub fn local(what: impl std::fmt::Display, err: std::io::Error) -> Error {
        Error::Local(format!("{what}: {err}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
