//! One error type for the whole plugin, turned into one line only at the top
//! (`main.rs`).
//!
//! An error has a [`Kind`] (what an operator does about it, and the exit
//! status), a message (what failed, where, and what the service or the
//! system said), an optional hint (what to do next, worded by the command
//! that knows the context), and the error it came from. Nothing below the
//! commands words hints or mentions option names: stores return kinds and
//! facts, commands add the wording.

use std::fmt;

/// What went wrong, as far as the reaction to it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Wrong command line: unknown command, wrong arguments, bad timestamp.
    Usage,
    /// The config file is missing, unreadable or invalid.
    Config,
    /// A local file or stream could not be read or written.
    Local,
    /// The object, backup, vault or job asked for does not exist.
    NotFound,
    /// The credentials are not allowed to do this.
    AccessDenied,
    /// A retention lock (vault lock policy) refuses to delete the data yet.
    RetentionLocked,
    /// The object is in archived (cold) storage and has not been restored:
    /// it cannot be read until it is thawed.
    Archived,
    /// The data read back is not what was stored.
    Integrity,
    /// A failure that may pass if the request is sent again: throttling
    /// (503 SlowDown, 429), other 5xx (not 501), a refused or broken connection, a
    /// timeout, a response cut short. Retried by [`crate::store::retry`].
    Transient,
    /// The storage service refused or failed a request for another reason.
    Service,
}

pub struct Error {
    kind: Kind,
    message: String,
    hint: Option<String>,
    /// The service's error code (`NoSuchKey`, `InvalidStorageClass`, ...).
    code: Option<String>,
    /// The value the error is about, for the wording above (the storage
    /// class a server refused, ...).
    subject: Option<String>,
    /// Set once the retry layer has given up on this error: it is not
    /// retried again by anything above.
    retries_spent: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            hint: None,
            code: None,
            subject: None,
            retries_spent: false,
            source: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message)
    }
    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Kind::Config, message)
    }
    pub fn local(message: impl Into<String>) -> Error {
        Error::new(Kind::Local, message)
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(Kind::NotFound, message)
    }
    pub fn archived(message: impl Into<String>) -> Error {
        Error::new(Kind::Archived, message)
    }
    pub fn integrity(message: impl Into<String>) -> Error {
        Error::new(Kind::Integrity, message)
    }
    pub fn transient(message: impl Into<String>) -> Error {
        Error::new(Kind::Transient, message)
    }
    pub fn service(message: impl Into<String>) -> Error {
        Error::new(Kind::Service, message)
    }

    /// A local I/O failure: `what: <the system's words>`.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(Kind::Local, format!("{what}: {err}")).with_source(err)
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    pub fn with_code(mut self, code: Option<&str>) -> Error {
        self.code = code.map(str::to_string);
        self
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Error {
        self.subject = Some(subject.into());
        self
    }

    /// What to do about it; a later hint replaces an earlier one.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// The same error, its message prefixed with `what: `.
    pub fn context(mut self, what: &str) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The same error with `text` appended to its message.
    pub fn append(mut self, text: &str) -> Error {
        self.message.push_str(text);
        self
    }

    /// Marks an error the retry layer gave up on (see [`Error::retryable`]).
    pub fn retries_spent(mut self) -> Error {
        self.retries_spent = true;
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn is(&self, kind: Kind) -> bool {
        self.kind == kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Replaces the message (the wording layer rephrasing a typed error).
    pub fn with_message(mut self, message: impl Into<String>) -> Error {
        self.message = message.into();
        self
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether sending the same request again may succeed.
    pub fn retryable(&self) -> bool {
        self.kind == Kind::Transient && !self.retries_spent
    }

    /// Exit status: 2 for a command line gpbackup would never produce, 1 for
    /// everything else (all that gpbackup and plugin_test.sh look at is
    /// non-zero).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Usage => 2,
            _ => 1,
        }
    }
}

/// The message, then the hint: the one line an operator reads.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `a: b: c` from an error and its sources, each text once.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_hint_and_exit_codes() {
        let e = Error::archived("s3://b/k is archived").with_hint("run thaw first");
        assert_eq!(e.to_string(), "s3://b/k is archived; run thaw first");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::usage("bad").exit_code(), 2);
        let e = Error::transient("503").context("upload");
        assert_eq!(e.message(), "upload: 503");
        assert!(e.retryable());
        assert!(!e.retries_spent().retryable());
        assert!(!Error::service("403").retryable());
    }

    #[test]
    fn sources_are_kept_and_chained() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::io("cannot read /x", io);
        assert!(e.is(Kind::Local));
        assert_eq!(chain(&e), "cannot read /x: no such file");
        assert!(std::error::Error::source(&e).is_some());
    }
}
