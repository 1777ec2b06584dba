//! `storage: glacier` and the vault options (`vault`, `account_id`,
//! `glacier_endpoint`, `vault_part_size`), checked together: they apply
//! only to a vault.

use super::options;
use super::values::{Values, endpoint_url};
use crate::size::{MIB, parse_size};

/// `storage: glacier`: `backup_data` payloads are archives in an Amazon
/// Glacier vault; everything else (and the catalog) stays in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vault {
    pub name: String,
    /// `-` (the account that signs the requests) or a 12-digit account id.
    pub account_id: String,
    /// Full URL, or `None` for AWS's Glacier endpoint of the region.
    pub endpoint: Option<String>,
    /// Multipart part size: a power of two MiB from 1 MiB to 4 GiB.
    pub part_size: u64,
    pub on_retention_locked: OnRetentionLocked,
}

/// What `delete_backup` does when a retention lock refuses to delete data
/// that is still inside its retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRetentionLocked {
    /// Fail, naming the archive, and delete nothing more (archives go
    /// first, so the backup's files are all still there).
    Fail,
    /// Keep the archive (and its catalog entry) for `purge` to delete later,
    /// and delete the rest of the backup.
    Defer,
}

/// Glacier part sizes: 1 MiB times a power of two, up to 4 GiB.
pub const MIN_VAULT_PART_SIZE: u64 = MIB;
pub const MAX_VAULT_PART_SIZE: u64 = 4096 * MIB;

/// The vault the options select, or `None` for S3 only.
pub fn parse(values: &mut Values, tls: bool, on_retention_locked: OnRetentionLocked) -> Option<Vault> {
    let glacier = match values.given("storage").map(str::to_ascii_lowercase).as_deref() {
        None | Some("s3") => false,
        Some("glacier") => true,
        Some(_) => {
            values.problem("storage must be s3 or glacier");
            return None;
        }
    };
    if !glacier {
        let stray: Vec<&str> = options::vault_names().filter(|k| values.given(k).is_some()).collect();
        match stray.as_slice() {
            [] => {}
            [one] => values.problem(format!("{one} applies only with storage: glacier")),
            many => values.problem(format!("{} apply only with storage: glacier", many.join(", "))),
        }
        return None;
    }
    if values.given("storage_class").is_some() {
        values.problem(
            "storage_class does not apply with storage: glacier (table data goes to the vault); remove it \
             (metadata_storage_class still applies to the files in the bucket)",
        );
    }
    let name = values.given("vault").unwrap_or_default().to_string();
    if name.is_empty() {
        values.problem("vault is required with storage: glacier");
    } else if name.len() > 255 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        values.problem(format!("vault {name} must be 1 to 255 characters of a-z, A-Z, 0-9, _, - and ."));
    }
    let account_id = values.given("account_id").or(options::default_value("account_id")).unwrap_or("-").to_string();
    if account_id != "-" && !(account_id.len() == 12 && account_id.chars().all(|c| c.is_ascii_digit())) {
        values.problem("account_id must be - (the signing account) or a 12-digit AWS account id without dashes");
    }
    let endpoint = values.given("glacier_endpoint").map(|e| endpoint_url(e, tls));
    if let Some(Err(why)) = endpoint.as_deref().map(|e| super::values::check_url(e, &["http", "https"])) {
        values.problem(format!("glacier_endpoint {why}"));
    }
    let default_part = parse_size(options::default_value("vault_part_size").unwrap_or("16MB")).unwrap_or(16 * MIB);
    let part_size = match values.given("vault_part_size").map(parse_size) {
        None => default_part,
        Some(Ok(n))
            if (MIN_VAULT_PART_SIZE..=MAX_VAULT_PART_SIZE).contains(&n)
                && (n / MIB).is_power_of_two()
                && n % MIB == 0 =>
        {
            n
        }
        Some(Ok(n)) => {
            values.problem(format!(
                "vault_part_size is {n} bytes; Glacier needs 1MB times a power of two (1MB, 2MB, 4MB, ... 4096MB)"
            ));
            default_part
        }
        Some(Err(why)) => {
            values.problem(format!("vault_part_size: {why}"));
            default_part
        }
    };
    Some(Vault { name, account_id, endpoint, part_size, on_retention_locked })
}
