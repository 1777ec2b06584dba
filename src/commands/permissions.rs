//! `check`'s permission report: which S3 actions the credentials are
//! allowed, tried one request each, and which commands need each one.
//!
//! Least-privilege roles are normal (a backup role with PutObject and
//! GetObject only, deletes left to a retention role), so a denial is
//! reported with what it disables rather than stopping the check; `check`
//! fails only when the config's backups or restores cannot run at all.

use super::output::say_setting as say;
use crate::error::{Error, Kind, Result};

/// An S3 action the plugin uses, and what needs it.
pub struct Action {
    pub name: &'static str,
    pub needed_by: &'static str,
}

pub const PUT: Action = Action {
    name: "s3:PutObject",
    needed_by: "backups (backup_data, backup_file, setup_plugin_for_backup's probe, multipart uploads)",
};
pub const GET: Action = Action {
    name: "s3:GetObject",
    needed_by: "restores (restore_data, restore_data_subset, restore_file), verify, object lookups",
};
pub const LIST: Action = Action {
    name: "s3:ListBucket",
    needed_by: "list_directory, delete_backup, delete_directory, backups, verify, expire, history export",
};
pub const DELETE: Action = Action {
    name: "s3:DeleteObject",
    needed_by: "delete_backup, delete_directory, expire, purge (optional for hooks: the write probe's clean-up)",
};
pub const LIST_UPLOADS: Action = Action {
    name: "s3:ListBucketMultipartUploads",
    needed_by: "finding uploads a killed backup left open (optional: hooks warn and go on)",
};
pub const ABORT: Action = Action {
    name: "s3:AbortMultipartUpload",
    needed_by: "cleaning up a failed or abandoned upload (optional: S3 lifecycle rules can do it)",
};
pub const RESTORE: Action =
    Action { name: "s3:RestoreObject", needed_by: "thaw and restore_auto (archived storage classes only)" };

/// What one request said about an action.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    Denied,
    /// The server does not implement the operation.
    Unsupported,
    /// Another failure (its message): the answer says nothing either way.
    Failed(String),
}

impl Answer {
    pub fn of<T>(result: &Result<T>) -> Answer {
        match result {
            Ok(_) => Answer::Allowed,
            Err(e) if is_denial(e) => Answer::Denied,
            Err(e) if e.code() == Some("NotImplemented") => Answer::Unsupported,
            Err(e) => Answer::Failed(e.to_string()),
        }
    }
}

/// Whether `e` is a policy's refusal of an action. Keys the service does
/// not know or signatures it rejects are not: everything fails with them,
/// and `check` stops at the first.
pub fn is_denial(e: &Error) -> bool {
    e.is(Kind::AccessDenied) && !matches!(e.code(), Some("InvalidAccessKeyId" | "SignatureDoesNotMatch"))
}

/// The answers so far, said as they come.
#[derive(Default)]
pub struct Report {
    rows: Vec<(&'static Action, Answer)>,
}

impl Report {
    /// Notes (and says) what `result` tells about `action`; returns whether
    /// it was a denial.
    pub fn note<T>(&mut self, action: &'static Action, result: &Result<T>) -> bool {
        self.add(action, Answer::of(result))
    }

    /// The first answer about an action is said; later ones (a second
    /// probe) only replace it when they are denials.
    pub fn add(&mut self, action: &'static Action, answer: Answer) -> bool {
        let denied = answer == Answer::Denied;
        if let Some(row) = self.rows.iter_mut().find(|(a, _)| a.name == action.name) {
            if denied {
                row.1 = answer;
            }
            return denied;
        }
        let text = match &answer {
            Answer::Allowed => "allowed".to_string(),
            Answer::Denied => format!("DENIED: without it, no {}", action.needed_by),
            Answer::Unsupported => "not implemented by this server".to_string(),
            Answer::Failed(why) => format!("unknown: {why}"),
        };
        say("permission", &format!("{} {text}", action.name));
        self.rows.push((action, answer));
        denied
    }

    pub fn denied(&self) -> Vec<&'static str> {
        self.rows.iter().filter(|(_, a)| *a == Answer::Denied).map(|(action, _)| action.name).collect()
    }

    pub fn is_denied(&self, action: &Action) -> bool {
        self.rows.iter().any(|(a, answer)| a.name == action.name && *answer == Answer::Denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_tell_denials_from_other_failures() {
        assert_eq!(Answer::of(&Ok::<(), Error>(())), Answer::Allowed);
        assert_eq!(Answer::of::<()>(&Err(Error::new(Kind::AccessDenied, "403 AccessDenied"))), Answer::Denied);
        let wrong_key = Error::new(Kind::AccessDenied, "403").with_code(Some("SignatureDoesNotMatch"));
        assert!(matches!(Answer::of::<()>(&Err(wrong_key)), Answer::Failed(_)));
        let gone = Err::<(), _>(Error::transient("connection reset"));
        assert!(matches!(Answer::of(&gone), Answer::Failed(why) if why.contains("reset")));
        let mut report = Report::default();
        assert!(report.add(&DELETE, Answer::Denied));
        assert!(!report.add(&PUT, Answer::Allowed));
        // A second probe's denial wins; its allowance does not hide one.
        assert!(!report.add(&DELETE, Answer::Allowed));
        assert!(report.add(&PUT, Answer::Denied) && report.is_denied(&PUT));
        report.rows.retain(|(a, _)| a.name != PUT.name);
        assert!(!report.add(&PUT, Answer::Allowed));
        assert_eq!(report.denied(), vec!["s3:DeleteObject"]);
        assert!(report.is_denied(&DELETE) && !report.is_denied(&PUT));
    }
}
