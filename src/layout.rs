//! Where things live in the bucket.
//!
//! gpbackup hands the plugin the path a file would have on local disk,
//! `<datadir>/backups/<YYYYMMDD>/<TS>/<file>`. Like the Go plugin, the key is
//! the (normalised) folder followed by the last four components of that path,
//! so `prod/gp/backups/20240315/20240315123045/gpbackup_3_20240315123045.gz`.
//! The segment's data directory is dropped; names stay unique because every
//! file name gpbackup makes embeds the content id. Keeping this byte-identical
//! to the Go plugin is what lets us restore its backups and it ours.
//!
//! The plugin also stores a few objects of its own beside a backup's files;
//! their names are defined here and nowhere else: the integrity manifest of
//! a multipart object, the catalog entry of a vault archive, and the probes
//! of `setup_plugin_for_backup` and `check`.

use crate::error::Error;

/// What follows a multipart object's key in its integrity manifest's key.
pub const MANIFEST_SUFFIX: &str = ".gpbackup_manifest";
/// What follows a payload key in its vault catalog entry's key.
pub const CATALOG_SUFFIX: &str = ".gpbackup_vault";

/// A new upload's id: 16 random hex digits, unique across the hosts of a
/// cluster.
pub fn new_upload_id() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        // No /dev/urandom: the clock and the process id, mixed.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes = crc_fast::crc64_nvme(format!("{nanos} {}", std::process::id()).as_bytes()).to_le_bytes();
    }
    hex::encode(bytes)
}

/// An upload's id, as manifest keys carry it: 16 lowercase hex digits.
pub fn is_upload_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The sidecar key holding the integrity manifest of upload `id` of a
/// multipart object (`<key>.<id>.gpbackup_manifest`), or, for objects of
/// earlier releases (no id), `<key>.gpbackup_manifest`.
pub fn manifest_key_of(key: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{key}.{id}{MANIFEST_SUFFIX}"),
        None => format!("{key}{MANIFEST_SUFFIX}"),
    }
}

/// The object a manifest key belongs to, and the upload id it names.
pub fn manifest_owner(manifest_key: &str) -> Option<(&str, Option<&str>)> {
    let rest = manifest_key.strip_suffix(MANIFEST_SUFFIX)?;
    let (owner, id) = match rest.rsplit_once('.') {
        Some((owner, id)) if is_upload_id(id) => (owner, Some(id)),
        _ => (rest, None),
    };
    (!owner.is_empty()).then_some((owner, id))
}

/// The key of a vault archive's catalog entry.
pub fn catalog_key(key: &str) -> String {
    format!("{key}{CATALOG_SUFFIX}")
}

/// What a catalog entry that is not the current one of its key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryTag<'a> {
    /// An upload under way (or interrupted): written before its archive
    /// is completed, removed once the current entry names it.
    Intent(&'a str),
    /// An archive replaced by a newer one of the same key, kept until it
    /// can be deleted (a retention lock refused).
    Retired(&'a str),
}

/// `<key>.intent-<id>.gpbackup_vault` or `<key>.retired-<id>.gpbackup_vault`.
pub fn tagged_catalog_key(key: &str, tag: EntryTag<'_>) -> String {
    match tag {
        EntryTag::Intent(id) => format!("{key}.intent-{id}{CATALOG_SUFFIX}"),
        EntryTag::Retired(id) => format!("{key}.retired-{id}{CATALOG_SUFFIX}"),
    }
}

/// The payload key and tag of a tagged catalog entry key.
pub fn tagged_catalog_owner(entry_key: &str) -> Option<(&str, EntryTag<'_>)> {
    let rest = entry_key.strip_suffix(CATALOG_SUFFIX)?;
    let (owner, tag) = rest.rsplit_once('.')?;
    let tag = if let Some(id) = tag.strip_prefix("intent-") {
        EntryTag::Intent(id)
    } else {
        EntryTag::Retired(tag.strip_prefix("retired-")?)
    };
    let id = match tag {
        EntryTag::Intent(id) | EntryTag::Retired(id) => id,
    };
    (is_upload_id(id) && !owner.is_empty()).then_some((owner, tag))
}

/// The payload key a (current) catalog entry key belongs to.
pub fn catalog_owner(entry_key: &str) -> Option<&str> {
    if tagged_catalog_owner(entry_key).is_some() {
        return None;
    }
    entry_key.strip_suffix(CATALOG_SUFFIX).filter(|k| !k.is_empty())
}

/// Whether `key` names one of the plugin's own sidecars (a manifest or a
/// catalog entry) rather than a file gpbackup wrote.
pub fn is_sidecar(key: &str) -> bool {
    key.ends_with(MANIFEST_SUFFIX) || key.ends_with(CATALOG_SUFFIX)
}

/// The local path of `setup_plugin_for_backup`'s write probe in the backup
/// directory `dir` (mapped to a key like any file of the backup).
pub fn setup_probe_path(dir: &str) -> String {
    format!("{}/.{}_probe_{}", dir.trim_end_matches('/'), crate::PLUGIN_NAME, std::process::id())
}

/// The key of a `check` probe (`name`: data or metadata) in `folder`.
pub fn check_probe_key(folder: &str, name: &str) -> String {
    join(folder, &format!(".{}_check_{}_{name}", crate::PLUGIN_NAME, std::process::id()))
}

/// A folder (or directory) in its normal form, as the Go plugin's keys end
/// up after path cleaning: `/prod//gp/` -> `prod/gp`, `a/./b/../c` -> `a/c`,
/// `/` or `.` -> the bucket root (empty). The same form serves uploads,
/// listings and deletes, so a trailing slash can never make `delete_backup`
/// miss. A `..` that would leave the bucket, or a control character, is
/// refused: no key may name another bucket or forge a listing line.
pub fn clean_folder(folder: &str) -> Result<String, String> {
    if folder.chars().any(char::is_control) {
        return Err("contains a control character".to_string());
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in folder.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("leaves the bucket (a .. above its root)".to_string());
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The folder as a listing prefix: `prod/gp/`, or the whole bucket.
pub fn folder_prefix(folder: &str) -> String {
    if folder.is_empty() { String::new() } else { format!("{folder}/") }
}

/// The object key for the local path gpbackup passed (`backup_file`,
/// `restore_file`, `backup_data`, `restore_data`, `restore_data_subset`).
pub fn key_for_path(folder: &str, path: &str) -> Result<String, Error> {
    if path.chars().any(char::is_control) {
        return Err(Error::usage(format!("path {path:?} contains a control character")));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.len() < 4 || parts.iter().rev().take(4).any(|p| *p == "..") {
        return Err(Error::usage(format!(
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

/// An object's place in its backup: its key after the folder,
/// `backups/<YYYYMMDD>/<TS>/<file>`, the same on every host and whatever
/// the `folder` or bucket it was copied to (what an encrypted object is
/// bound to). A key of another form (the directory commands' keys) is its
/// own place.
pub fn place_of(key: &str) -> &str {
    let mut parts = key.rsplitn(5, '/');
    let (Some(file), Some(ts), Some(date), Some("backups")) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return key;
    };
    let dated = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) && validate_timestamp(ts).is_ok();
    if !dated || file.is_empty() {
        return key;
    }
    &key[key.len() - (file.len() + ts.len() + date.len() + "backups".len() + 3)..]
}

/// `YYYYMMDDHHMMSS`, as gpbackup names its backups.
pub fn validate_timestamp(ts: &str) -> Result<(), Error> {
    // Digits only, not a calendar check: gpbackup's own plugin_test.sh uses
    // timestamps such as 99999812345678.
    if ts.len() == 14 && ts.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::usage(format!("timestamp {ts:?} must have the form YYYYMMDDHHMMSS (14 digits)")))
    }
}

/// A user-given directory prefix (`list_directory`, `delete_directory`) in
/// the form used for listing: no leading slash, exactly one trailing slash,
/// so `a/b` never matches `a/bc/...`. Empty means the whole bucket.
pub fn directory_prefix(prefix: &str) -> Result<String, Error> {
    let normal = clean_folder(prefix).map_err(|why| Error::usage(format!("directory {prefix:?} {why}")))?;
    Ok(folder_prefix(&normal))
}

/// A key as a listing prints it: control characters (which would forge
/// lines or columns) as `\xNN`, everything else as it is.
pub fn printable(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.chars().any(char::is_control) {
        return key.into();
    }
    key.chars()
        .map(|c| if c.is_control() { format!("\\x{:02x}", c as u32) } else { c.to_string() })
        .collect::<String>()
        .into()
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
    fn side_objects() {
        assert_eq!(manifest_owner(&manifest_key_of("f/k", None)), Some(("f/k", None)));
        let id = "0123456789abcdef";
        assert_eq!(manifest_key_of("f/k.gz", Some(id)), "f/k.gz.0123456789abcdef.gpbackup_manifest");
        assert_eq!(manifest_owner(&manifest_key_of("f/k.gz", Some(id))), Some(("f/k.gz", Some(id))));
        assert_eq!(catalog_owner(&catalog_key("f/k")), Some("f/k"));
        let id = "0123456789abcdef";
        for tag in [EntryTag::Intent(id), EntryTag::Retired(id)] {
            let key = tagged_catalog_key("f/k.gz", tag);
            assert_eq!(tagged_catalog_owner(&key), Some(("f/k.gz", tag)));
            assert_eq!(catalog_owner(&key), None, "{key} is not a current entry");
            assert!(is_sidecar(&key));
        }
        assert_eq!(tagged_catalog_owner(&catalog_key("f/k.gz")), None);
        assert_eq!(catalog_owner("f/k.gpbackup_manifest"), None);
        assert_eq!(catalog_owner(CATALOG_SUFFIX), None);
        assert!(is_sidecar("a.gpbackup_vault") && is_sidecar("a.gpbackup_manifest") && !is_sidecar("a.gz"));
        assert!(
            setup_probe_path("/d/backups/20240101/20240101010101/")
                .starts_with("/d/backups/20240101/20240101010101/.gpbackup_s3_plugin_probe_")
        );
        assert!(check_probe_key("f", "data").starts_with("f/.gpbackup_s3_plugin_check_"));
    }

    #[test]
    fn places_are_keys_after_the_folder() {
        let tail = "backups/20240315/20240315123045/gpbackup_3_20240315123045_16384.gz";
        for folder in ["prod/gp", "a", ""] {
            let key = key_for_path(folder, &format!("/data1/gpseg3/{tail}")).unwrap();
            assert_eq!(place_of(&key), tail, "{key}");
        }
        assert_eq!(place_of("x/backups/20240315/2024031512304/f"), "x/backups/20240315/2024031512304/f");
        assert_eq!(place_of("tmp/dd/a"), "tmp/dd/a");
        assert_eq!(place_of("f/nobackups/20240315/20240315123045/f"), "f/nobackups/20240315/20240315123045/f");
        assert_eq!(place_of("backups/20240315/20240315123045/"), "backups/20240315/20240315123045/");
    }

    #[test]
    fn prefixes() {
        assert_eq!(backup_prefix("prod/gp", "20240315123045").unwrap(), "prod/gp/backups/20240315/20240315123045/");
        assert_eq!(directory_prefix("/prod/gp/").unwrap(), "prod/gp/");
        assert_eq!(directory_prefix("prod").unwrap(), "prod/");
        assert_eq!(directory_prefix("/").unwrap(), "");
        assert!(directory_prefix("../x").is_err());
        assert_eq!(backup_prefix("", "20240315123045").unwrap(), "backups/20240315/20240315123045/");
        assert_eq!(
            key_for_path("", "/d/backups/20240315/20240315123045/f").unwrap(),
            "backups/20240315/20240315123045/f"
        );
    }

    /// The keys the Go plugin's requests end up at after its SDK's path
    /// cleaning (observed with the Go plugin itself).
    #[test]
    fn folders_are_cleaned_as_go_paths_are() {
        for (folder, clean) in [
            ("prod/gp", "prod/gp"),
            ("prod/gp/", "prod/gp"),
            ("/prod/gp", "prod/gp"),
            ("//a//b//", "a/b"),
            ("/", ""),
            (".", ""),
            ("a/../b", "b"),
            ("a/./b/../c", "a/c"),
            ("x y", "x y"),
        ] {
            assert_eq!(clean_folder(folder).unwrap(), clean, "{folder}");
        }
        for bad in ["..", "../x", "a/../..", "a\nb", "a\tb"] {
            assert!(clean_folder(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_characters_are_refused_in_paths_and_escaped_in_listings() {
        let err = key_for_path("f", "/d/backups/20240315/20240315123045/a\nb").unwrap_err();
        assert!(err.to_string().contains("control character") && !err.to_string().contains('\n'), "{err}");
        assert_eq!(printable("a/b c"), "a/b c");
        assert_eq!(printable("a\tb\nc"), "a\\x09b\\x0ac");
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
