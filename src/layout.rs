//! Where things live in the bucket.
//!
//! gpbackup hands the plugin the path a file would have on local disk,
//! `<datadir>/backups/<YYYYMMDD>/<TS>/<file>`. Like the Go plugin, the key is
//! the (normalised) folder followed by the last four components of that path,
//! so `prod/gp/backups/20240315/20240315123045/gpbackup_3_20240315123045.gz`.
//! The segment's data directory is dropped; names stay unique because every
//! file name gpbackup makes embeds the content id. Keeping this byte-identical
//! to the Go plugin is what lets us restore its backups and it ours.

use crate::error::Error;

/// The object key for the local path gpbackup passed (`backup_file`,
/// `restore_file`, `backup_data`, `restore_data`, `restore_data_subset`).
pub fn key_for_path(folder: &str, path: &str) -> Result<String, Error> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.len() < 4 || parts.iter().rev().take(4).any(|p| *p == "..") {
        return Err(Error::Usage(format!(
            "path {path} does not look like <dir>/backups/<YYYYMMDD>/<YYYYMMDDHHMMSS>/<file>"
        )));
    }
    let tail = parts[parts.len() - 4..].join("/");
    Ok(join(folder, &tail))
}

/// The prefix holding every object of backup `timestamp`, with a trailing
/// slash so that deleting it cannot touch a backup whose timestamp merely
/// starts with the same digits.
pub fn backup_prefix(folder: &str, timestamp: &str) -> Result<String, Error> {
    validate_timestamp(timestamp)?;
    Ok(join(folder, &format!("backups/{}/{timestamp}/", &timestamp[..8])))
}

/// The backup timestamp in a local path gpbackup passed
/// (`.../backups/<YYYYMMDD>/<TS>/<file>` or the directory `.../<TS>`).
pub fn timestamp_of_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    parts.iter().rev().take(2).find(|p| validate_timestamp(p).is_ok()).map(|p| p.to_string())
}

/// `YYYYMMDDHHMMSS`, as gpbackup names its backups.
pub fn validate_timestamp(ts: &str) -> Result<(), Error> {
    // Digits only, not a calendar check: gpbackup's own plugin_test.sh uses
    // timestamps such as 99999812345678.
    if ts.len() == 14 && ts.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::Usage(format!("timestamp {ts:?} must have the form YYYYMMDDHHMMSS (14 digits)")))
    }
}

/// A user-given directory prefix (`list_directory`, `delete_directory`) in
/// the form used for listing: no leading slash, exactly one trailing slash,
/// so `a/b` never matches `a/bc/...`. Empty means the whole bucket.
pub fn directory_prefix(prefix: &str) -> String {
    let normal = crate::config::normalise_folder(prefix);
    if normal.is_empty() { normal } else { normal + "/" }
}

fn join(folder: &str, rest: &str) -> String {
    if folder.is_empty() { rest.to_string() } else { format!("{folder}/{rest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_paths() {
        let file = "/data/gpseg-1/backups/20240315/20240315123045/gpbackup_20240315123045_config.yaml";
        assert_eq!(timestamp_of_path(file).as_deref(), Some("20240315123045"));
        assert_eq!(
            timestamp_of_path("/data/gpseg-1/backups/20240315/20240315123045/").as_deref(),
            Some("20240315123045")
        );
        assert_eq!(timestamp_of_path("/data/gpseg-1/backups/20240315/x/f"), None);
    }

    #[test]
    fn go_plugin_examples() {
        // The Go plugin's own unit test case.
        assert_eq!(
            key_for_path("s3/Dir", "/a/b/c/tmp/datadir/gpseg-1/backups/20180101/20180101082233/backup_file").unwrap(),
            "s3/Dir/backups/20180101/20180101082233/backup_file"
        );
        let cases = [
            (
                "/data/coord/gpseg-1/backups/20240315/20240315123045/gpbackup_20240315123045_metadata.sql",
                "prod/gp/backups/20240315/20240315123045/gpbackup_20240315123045_metadata.sql",
            ),
            (
                "/data1/primary/gpseg3/backups/20240315/20240315123045/gpbackup_3_20240315123045.gz",
                "prod/gp/backups/20240315/20240315123045/gpbackup_3_20240315123045.gz",
            ),
            (
                "/data1/primary/gpseg3/backups/20240315/20240315123045/gpbackup_3_20240315123045_16384.zst",
                "prod/gp/backups/20240315/20240315123045/gpbackup_3_20240315123045_16384.zst",
            ),
            (
                "/data1/primary/gpseg3/backups/20240315/20240315123045/gpbackup_3_20240315123045_toc.yaml",
                "prod/gp/backups/20240315/20240315123045/gpbackup_3_20240315123045_toc.yaml",
            ),
        ];
        for (path, key) in cases {
            assert_eq!(key_for_path("prod/gp", path).unwrap(), key);
        }
    }

    #[test]
    fn short_or_odd_paths() {
        assert!(key_for_path("f", "/a/b/c").is_err());
        assert!(key_for_path("f", "").is_err());
        assert!(key_for_path("f", "/x/backups/../20240315123045/f").is_err());
        assert_eq!(
            key_for_path("f", "/d//backups/20240315/20240315123045//x").unwrap(),
            "f/backups/20240315/20240315123045/x"
        );
        assert_eq!(
            key_for_path("f", "backups/20240315/20240315123045/x").unwrap(),
            "f/backups/20240315/20240315123045/x"
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(backup_prefix("prod/gp", "20240315123045").unwrap(), "prod/gp/backups/20240315/20240315123045/");
        assert_eq!(directory_prefix("/prod/gp/"), "prod/gp/");
        assert_eq!(directory_prefix("prod"), "prod/");
        assert_eq!(directory_prefix("/"), "");
    }

    #[test]
    fn timestamps() {
        assert!(validate_timestamp("20240315123045").is_ok());
        assert!(validate_timestamp("99999812345678").is_ok());
        assert_eq!(timestamp_of_path("/d/gpseg-1/backups/20240315/20240315123045/").as_deref(), Some("20240315123045"));
        assert!(timestamp_of_path("/d/gpseg-1").is_none());
        for bad in ["", "2024031512304", "202403151230450", "2024031512304x", " 20240315123045", "2024-03-15T12:30"] {
            assert!(validate_timestamp(bad).is_err(), "{bad}");
        }
    }
}
