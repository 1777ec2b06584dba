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
    /// The object is in archived (cold) storage and has not been restored:
    /// it cannot be read until it is thawed.
    #[error("{0}")]
    Archived(String),
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

    /// The same kind of error, its message prefixed with `what: `.
    pub fn context(self, what: &str) -> Error {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::Usage(m) => Error::Usage(wrap(m)),
            Error::Config(m) => Error::Config(wrap(m)),
            Error::Local(m) => Error::Local(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::Archived(m) => Error::Archived(wrap(m)),
            Error::Storage(m) => Error::Storage(wrap(m)),
            Error::Integrity(m) => Error::Integrity(wrap(m)),
            Error::Transient(m) => Error::Transient(wrap(m)),
        }
    }

    pub fn local(what: impl std::fmt::Display, err: std::io::Error) -> Error {
        Error::Local(format!("{what}: {err}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
