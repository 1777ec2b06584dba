//! The plugin configuration: the YAML file gpbackup hands to every call.
//!
//! gpbackup writes `executablepath` plus a flat `options` map of strings, and
//! adds keys of its own (`pgport`, `backup_plugin_version`, ...). We accept
//! every option the Go reference plugin accepts, with the same meaning, plus
//! our own. Unknown keys are refused by name, because a misspelt option that
//! is silently ignored (say `bucket_name`) is worse than a failed backup.
//! Every problem in one file is reported together, in one line, so an
//! operator fixes the file once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use md5::Digest as _;

use crate::error::Error;
use crate::size::{MIB, parse_size};
use crate::store::RestoreTier;

/// S3's smallest allowed part (except the last) and largest allowed part.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;

/// Storage classes S3 knows (the values of `x-amz-storage-class`).
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "EXPRESS_ONEZONE",
    "OUTPOSTS",
    "SNOW",
];

/// Classes whose objects cannot be read until a restore request has made a
/// temporary copy (GLACIER is S3 Glacier Flexible Retrieval).
pub const ARCHIVED_CLASSES: &[&str] = &["GLACIER", "DEEP_ARCHIVE"];

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the first byte of a response (covers a slow server
/// storing a 5 GiB part) before the attempt is abandoned and retried.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a restored copy of an archived object stays readable.
pub const DEFAULT_RESTORE_DAYS: u32 = 7;

/// Defaults sized for a Greenplum host that runs one plugin process per table
/// per segment: small parts, a handful in flight (about 48 MiB of buffers).
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
pub const DEFAULT_CONCURRENCY: usize = 6;
/// A request is tried this often (throttling and resets come in bursts)...
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 10;
/// ...but no retry starts later than this into a command, so a dead service
/// fails a backup in bounded time instead of holding a database session.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(600);

/// More parallel requests than this per process only adds contention.
pub const MAX_CONCURRENCY: usize = 64;

/// Options gpbackup and gprestore inject into the config copy they hand to the
/// plugin; accepted and ignored (`restore_subset` is read by gprestore itself).
const INJECTED_KEYS: &[&str] = &[
    "pgport",
    "backup_plugin_version",
    "restore_subset",
    "password_encryption",
    "replication",
    "remote_password_encryption",
];

/// Options whose values must never be echoed anywhere.
pub const SECRET_KEYS: &[&str] = &[
    "aws_secret_access_key",
    "aws_session_token",
    // The password-encryption feature injects a key named after the plugin.
    crate::PLUGIN_NAME,
];

/// Every option we understand (besides the injected ones above).
const KNOWN_KEYS: &[&str] = &[
    "region",
    "endpoint",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "bucket",
    "folder",
    "encryption",
    "http_proxy",
    "backup_multipart_chunksize",
    "backup_max_concurrent_requests",
    "restore_multipart_chunksize",
    "restore_max_concurrent_requests",
    "remove_duplicate_bucket",
    "retry_max_attempts",
    "retry_time_budget",
    "force_path_style",
    "storage_class",
    "metadata_storage_class",
    "server_side_encryption",
    "sse_kms_key_id",
    "sse_bucket_key",
    "sse_customer_key_file",
    "ca_cert_file",
    "connect_timeout",
    "read_timeout",
    "no_proxy",
    "object_tags",
    "restore_tier",
    "restore_days",
    "restore_wait_timeout",
    "restore_auto",
    "storage",
    "vault",
    "account_id",
    "glacier_endpoint",
    "vault_part_size",
    "on_retention_locked",
];

/// Static credentials from the config file. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How a stream is cut into requests in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// First part (upload) or range (download) size in bytes.
    pub part_size: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub executable_path: String,
    pub region: String,
    /// Full URL with scheme, or `None` for AWS's own endpoint of `region`.
    pub endpoint: Option<String>,
    pub keys: Option<StaticKeys>,
    pub bucket: String,
    /// Normalised: no leading, trailing or doubled slashes; never empty.
    pub folder: String,
    /// TLS on (the Go plugin's `encryption` means TLS, not SSE).
    pub tls: bool,
    pub http_proxy: Option<String>,
    pub backup: Transfer,
    pub restore: Transfer,
    /// Send requests to `<endpoint>/<key>`: the endpoint itself selects the bucket.
    pub remove_duplicate_bucket: bool,
    /// Attempts per request, the first included (`retry_max_attempts`).
    pub retry_max_attempts: u32,
    /// No retry starts after this much time into a command (`retry_time_budget`).
    pub retry_time_budget: Duration,
    /// `<endpoint>/<bucket>/<key>` rather than `<bucket>.<endpoint>/<key>`.
    pub force_path_style: bool,
    /// Storage class of `backup_data` payloads; `None`: the bucket's default.
    pub storage_class: Option<String>,
    /// Storage class of everything else (metadata, TOCs, reports, manifests).
    pub metadata_storage_class: Option<String>,
    pub encryption: Encryption,
    /// Extra trusted root certificates (PEM) for the endpoint's TLS.
    pub ca_cert: Option<CaCert>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Hosts reached without the proxy (comma-separated NO_PROXY rules).
    pub no_proxy: Option<String>,
    /// Tags set on every object the plugin writes.
    pub object_tags: Vec<(String, String)>,
    /// How archived objects are brought back (thaw, restore setup).
    pub thaw: Thaw,
    /// `storage: glacier`: payloads go to this Glacier vault; `None`: S3 only.
    pub vault: Option<Vault>,
    /// The option values that must never appear in logs, errors or uploads.
    pub secrets: Secrets,
}

/// Server-side encryption of what the plugin writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Whatever the bucket does by default.
    BucketDefault,
    /// SSE-S3 (`AES256`).
    S3Managed,
    /// SSE-KMS (`aws:kms`, or `aws:kms:dsse` for dual-layer).
    Kms { key_id: Option<String>, bucket_key: Option<bool>, dual_layer: bool },
    /// SSE-C: the key travels with every request that writes or reads data.
    Customer(CustomerKey),
}

/// An SSE-C key as S3 wants it. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    /// The file it was read from (for messages).
    pub file: String,
    /// base64 of the 32-byte key.
    pub key_base64: String,
    /// base64 of the key's MD5 (S3 checks it to catch a mangled key).
    pub key_md5_base64: String,
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerKey")
            .field("file", &self.file)
            .field("key", &"<redacted>")
            .field("key_md5", &self.key_md5_base64)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct CaCert {
    pub file: String,
    pub pem: Vec<u8>,
}

impl fmt::Debug for CaCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaCert({}, {} bytes)", self.file, self.pem.len())
    }
}

/// Restores of archived objects: defaults of `thaw` and of the restore setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thaw {
    pub tier: RestoreTier,
    /// Days a restored copy stays readable.
    pub days: u32,
    /// How long `setup_plugin_for_restore` waits for restores (0: not at all).
    pub wait_timeout: Duration,
    /// `setup_plugin_for_restore` requests the restores itself.
    pub auto: bool,
}

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

/// What `delete_backup` does when the vault's lock policy refuses to delete
/// an archive that is still inside its retention period.
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
/// 16 MiB parts: archives up to 156 GiB (10,000 parts), about 112 MiB of
/// buffers per process with the default concurrency.
pub const DEFAULT_VAULT_PART_SIZE: u64 = 16 * MIB;

/// Secret option values; `Debug` shows only how many there are.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secrets(pub Vec<String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets(<{} redacted>)", self.0.len())
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    executablepath: Option<serde_yaml::Value>,
    options: Option<serde_yaml::Value>,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("config file {}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parses and validates config text; all problems are reported at once.
    pub fn parse(text: &str) -> Result<Config, Error> {
        let raw: RawFile = serde_yaml::from_str(text).map_err(|e| {
            // serde_yaml messages are single-line and carry the position; they
            // never echo scalar values, so no secret can leak through them.
            Error::Config(format!("invalid YAML: {}", one_line(&e.to_string())))
        })?;
        let mut problems = Vec::new();

        let executable_path = match raw.executablepath.as_ref().map(scalar) {
            Some(Some(s)) if !s.is_empty() => s,
            Some(None) => {
                problems.push("executablepath must be a string".to_string());
                String::new()
            }
            _ => {
                problems.push("executablepath is required and cannot be empty".to_string());
                String::new()
            }
        };

        let mut options = BTreeMap::new();
        match raw.options {
            None | Some(serde_yaml::Value::Null) => {
                problems.push("options is required (a map of option: value)".to_string())
            }
            Some(serde_yaml::Value::Mapping(map)) => {
                for (k, v) in map {
                    let Some(key) = scalar(&k) else {
                        problems.push("options has a key that is not a string".to_string());
                        continue;
                    };
                    match scalar(&v) {
                        Some(value) => {
                            options.insert(key, value);
                        }
                        None => problems.push(format!("option {key} must be a single value, not a list or map")),
                    }
                }
            }
            Some(_) => problems.push("options must be a map of option: value".to_string()),
        }

        for key in options.keys() {
            let known = KNOWN_KEYS.contains(&key.as_str())
                || INJECTED_KEYS.contains(&key.as_str())
                || key == crate::PLUGIN_NAME;
            if !known {
                problems.push(format!("unknown option {key}"));
            }
        }

        let opt = |k: &str| options.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());

        let bucket = opt("bucket").unwrap_or_default().to_string();
        if bucket.is_empty() {
            problems.push("bucket is required and cannot be empty".to_string());
        } else if bucket.contains('/') {
            problems.push(format!("bucket {bucket} must be a bucket name, without slashes"));
        }

        let folder = normalise_folder(opt("folder").unwrap_or_default());
        if folder.is_empty() {
            problems.push("folder is required and cannot be empty or /".to_string());
        }

        let tls = match opt("encryption") {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => {
                problems.push("encryption must be on or off (it switches TLS)".to_string());
                true
            }
        };

        let endpoint = opt("endpoint").map(|e| endpoint_url(e, tls));
        let region = match (opt("region"), &endpoint) {
            (Some(r), _) => r.to_string(),
            // S3-compatible servers sign with a region too; us-east-1 is what
            // MinIO and Garage expect when none is configured.
            (None, Some(_)) => "us-east-1".to_string(),
            (None, None) => {
                problems.push("region or endpoint is required".to_string());
                String::new()
            }
        };

        let keys = match (opt("aws_access_key_id"), opt("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Some(StaticKeys {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: opt("aws_session_token").map(str::to_string),
            }),
            (None, None) => {
                if opt("aws_session_token").is_some() {
                    problems.push("aws_session_token needs aws_access_key_id and aws_secret_access_key".to_string());
                }
                None
            }
            (Some(_), None) => {
                problems.push("aws_secret_access_key is required when aws_access_key_id is set".to_string());
                None
            }
            (None, Some(_)) => {
                problems.push("aws_access_key_id is required when aws_secret_access_key is set".to_string());
                None
            }
        };

        let backup = Transfer {
            part_size: part_size(&options, "backup_multipart_chunksize", &mut problems),
            concurrency: concurrency(&options, "backup_max_concurrent_requests", &mut problems),
        };
        let restore = Transfer {
            part_size: part_size(&options, "restore_multipart_chunksize", &mut problems),
            concurrency: concurrency(&options, "restore_max_concurrent_requests", &mut problems),
        };

        let remove_duplicate_bucket = boolean(&options, "remove_duplicate_bucket", &mut problems).unwrap_or(false);
        if remove_duplicate_bucket && endpoint.is_none() {
            problems.push("remove_duplicate_bucket needs an endpoint".to_string());
        }
        let force_path_style = match boolean(&options, "force_path_style", &mut problems) {
            Some(false) if remove_duplicate_bucket => {
                problems.push(
                    "force_path_style: false contradicts remove_duplicate_bucket: true (drop the bucket from the \
                     endpoint and use force_path_style: false alone)"
                        .to_string(),
                );
                true
            }
            Some(v) => v,
            // Path-style for S3-compatible servers, as the Go plugin always did:
            // their buckets rarely have DNS names. AWS itself: virtual-host.
            None => endpoint.is_some(),
        };

        let storage_class = class_option(&options, "storage_class", &mut problems);
        let metadata_storage_class = class_option(&options, "metadata_storage_class", &mut problems);
        if let Some(class) = &metadata_storage_class
            && ARCHIVED_CLASSES.contains(&class.as_str())
        {
            problems.push(format!(
                "metadata_storage_class {class} is an archived class: gprestore and gpbackup --incremental read \
                 metadata files at once, so they need an instant-access class (STANDARD, STANDARD_IA, \
                 INTELLIGENT_TIERING, GLACIER_IR, ...)"
            ));
        }

        let mut secrets = Secrets(
            options
                .iter()
                .filter(|(k, v)| SECRET_KEYS.contains(&k.as_str()) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
                .collect(),
        );
        let encryption = encryption(&options, &mut problems, &mut secrets);

        let ca_cert = opt("ca_cert_file").map(|file| {
            if endpoint.as_deref().is_some_and(|e| e.starts_with("http://")) {
                problems.push("ca_cert_file needs TLS, but the endpoint is http:// (encryption: off)".to_string());
            }
            let pem = match std::fs::read(file) {
                Ok(pem) => pem,
                Err(e) => {
                    problems.push(format!("ca_cert_file {file} cannot be read: {e}"));
                    Vec::new()
                }
            };
            if !pem.is_empty() && !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                problems.push(format!("ca_cert_file {file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
            }
            CaCert { file: file.to_string(), pem }
        });

        let connect_timeout = duration(&options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, false, &mut problems);
        let read_timeout = duration(&options, "read_timeout", DEFAULT_READ_TIMEOUT, false, &mut problems);
        let no_proxy = opt("no_proxy").map(|rules| rules.split(',').map(str::trim).collect::<Vec<_>>().join(","));
        let object_tags = match opt("object_tags").map(parse_tags) {
            None => Vec::new(),
            Some(Ok(tags)) => tags,
            Some(Err(why)) => {
                problems.push(format!("object_tags: {why}"));
                Vec::new()
            }
        };

        let tier = match opt("restore_tier") {
            None => RestoreTier::Standard,
            Some(t) => RestoreTier::parse(t).unwrap_or_else(|| {
                problems.push("restore_tier must be Expedited, Standard or Bulk".to_string());
                RestoreTier::Standard
            }),
        };
        let days = match opt("restore_days") {
            None => DEFAULT_RESTORE_DAYS,
            Some(d) => match d.parse::<u32>() {
                Ok(n) if (1..=MAX_RESTORE_DAYS).contains(&n) => n,
                _ => {
                    problems.push(format!("restore_days must be a whole number of days from 1 to {MAX_RESTORE_DAYS}"));
                    DEFAULT_RESTORE_DAYS
                }
            },
        };
        let wait_timeout = duration(&options, "restore_wait_timeout", Duration::ZERO, true, &mut problems);
        let auto = boolean(&options, "restore_auto", &mut problems).unwrap_or(false);
        let thaw = Thaw { tier, days, wait_timeout, auto };

        for key in ["restore_subset", "password_encryption", "replication"] {
            if let Some(v) = opt(key)
                && v != "on"
                && v != "off"
            {
                problems.push(format!("{key} must be on or off"));
            }
        }

        let http_proxy = opt("http_proxy").map(str::to_string);
        if let Some(p) = &http_proxy
            && !(p.starts_with("http://") || p.starts_with("https://"))
        {
            problems.push("http_proxy must be a URL starting with http:// or https://".to_string());
        }

        let retry_max_attempts = match opt("retry_max_attempts") {
            None => DEFAULT_RETRY_ATTEMPTS,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    problems.push("retry_max_attempts must be a whole number from 1 to 100".to_string());
                    DEFAULT_RETRY_ATTEMPTS
                }
            },
        };
        let retry_time_budget = duration(&options, "retry_time_budget", DEFAULT_RETRY_BUDGET, false, &mut problems);

        let vault = vault(&options, tls, &mut problems);

        if !problems.is_empty() {
            return Err(Error::Config(problems.join("; ")));
        }
        Ok(Config {
            executable_path,
            region,
            endpoint,
            keys,
            bucket,
            folder,
            tls,
            http_proxy,
            backup,
            restore,
            remove_duplicate_bucket,
            retry_max_attempts,
            retry_time_budget,
            force_path_style,
            storage_class,
            metadata_storage_class,
            encryption,
            ca_cert,
            connect_timeout,
            read_timeout,
            no_proxy,
            object_tags,
            thaw,
            vault,
            secrets,
        })
    }
}

/// A YAML scalar as the string gpbackup would have written; `None` for
/// sequences and maps. `~`/null is the empty string, as an unquoted empty
/// value is in the Go plugin's string-typed struct.
fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Null => Some(String::new()),
        _ => None,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `/prod//gp/` -> `prod/gp`. The same normal form serves uploads, listings
/// and deletes, so a trailing slash can never make `delete_backup` miss.
pub fn normalise_folder(folder: &str) -> String {
    folder.split('/').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("/")
}

fn part_size(options: &BTreeMap<String, String>, key: &str, problems: &mut Vec<String>) -> u64 {
    let Some(text) = options.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return DEFAULT_PART_SIZE;
    };
    match parse_size(text) {
        Ok(n) if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) => n,
        Ok(n) => {
            problems.push(format!("{key} is {n} bytes; it must be between 5MB and 5GB"));
            DEFAULT_PART_SIZE
        }
        Err(why) => {
            problems.push(format!("{key}: {why}"));
            DEFAULT_PART_SIZE
        }
    }
}

fn concurrency(options: &BTreeMap<String, String>, key: &str, problems: &mut Vec<String>) -> usize {
    let Some(text) = options.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return DEFAULT_CONCURRENCY;
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => n,
        _ => {
            problems.push(format!("{key} must be a whole number from 1 to {MAX_CONCURRENCY}"));
            DEFAULT_CONCURRENCY
        }
    }
}

/// The longest a restored copy may be asked to stay (ten years).
pub const MAX_RESTORE_DAYS: u32 = 3650;

fn option<'a>(options: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    options.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// `true`/`false`; `None` when the option is absent (or wrong: then a problem).
fn boolean(options: &BTreeMap<String, String>, key: &str, problems: &mut Vec<String>) -> Option<bool> {
    match option(options, key)? {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            problems.push(format!("{key} must be true or false"));
            None
        }
    }
}

/// A storage class name, upper-cased; `None` when absent or wrong.
fn class_option(options: &BTreeMap<String, String>, key: &str, problems: &mut Vec<String>) -> Option<String> {
    let value = option(options, key)?.to_ascii_uppercase();
    if STORAGE_CLASSES.contains(&value.as_str()) {
        Some(value)
    } else {
        problems.push(format!("{key} {value} is not a storage class (one of {})", STORAGE_CLASSES.join(", ")));
        None
    }
}

/// `server_side_encryption`, `sse_kms_key_id`, `sse_bucket_key` and
/// `sse_customer_key_file`, checked together.
fn encryption(options: &BTreeMap<String, String>, problems: &mut Vec<String>, secrets: &mut Secrets) -> Encryption {
    let kms_key_id = option(options, "sse_kms_key_id").map(str::to_string);
    let bucket_key = boolean(options, "sse_bucket_key", problems);
    let key_file = option(options, "sse_customer_key_file");
    let mode = option(options, "server_side_encryption");
    let kms = match mode {
        None => None,
        Some("AES256") => Some(false),
        Some("aws:kms") | Some("aws:kms:dsse") => Some(true),
        Some(_) => {
            problems.push("server_side_encryption must be AES256, aws:kms or aws:kms:dsse".to_string());
            None
        }
    };
    if kms != Some(true) {
        for (key, set) in [("sse_kms_key_id", kms_key_id.is_some()), ("sse_bucket_key", bucket_key.is_some())] {
            if set {
                problems.push(format!("{key} needs server_side_encryption: aws:kms"));
            }
        }
    }
    if let Some(file) = key_file {
        if mode.is_some() {
            problems.push(
                "sse_customer_key_file (SSE-C) and server_side_encryption exclude each other; set only one".to_string(),
            );
        }
        return match read_customer_key(file) {
            Ok((key, text)) => {
                secrets.0.push(key.key_base64.clone());
                if let Some(text) = text {
                    secrets.0.push(text);
                }
                Encryption::Customer(key)
            }
            Err(why) => {
                problems.push(format!("sse_customer_key_file {file}: {why}"));
                Encryption::BucketDefault
            }
        };
    }
    match (mode, kms) {
        (Some(mode), Some(true)) => {
            Encryption::Kms { key_id: kms_key_id, bucket_key, dual_layer: mode == "aws:kms:dsse" }
        }
        (Some(_), Some(false)) => Encryption::S3Managed,
        _ => Encryption::BucketDefault,
    }
}

/// Reads an SSE-C key file: the raw 32-byte key, or its base64 (one line).
/// Returns the key and, when the file held text, that text (a secret too).
/// Messages never contain a byte of the file.
pub fn read_customer_key(file: &str) -> Result<(CustomerKey, Option<String>), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot be read: {e}"))?;
    let (raw, text) = if bytes.len() == 32 {
        (bytes, None)
    } else {
        let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or_default();
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(raw) if raw.len() == 32 && !text.is_empty() => (raw, Some(text.to_string())),
            _ => {
                return Err(format!(
                    "must hold a 256-bit key: 32 raw bytes or their base64 (44 characters); it holds {} bytes",
                    bytes.len()
                ));
            }
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = CustomerKey {
        file: file.to_string(),
        key_base64: b64.encode(&raw),
        key_md5_base64: b64.encode(md5::Md5::digest(&raw)),
    };
    Ok((key, text))
}

/// An endpoint as a URL: without a scheme, `https://` or `http://` as
/// `encryption` (TLS) says; no trailing slash.
fn endpoint_url(text: &str, tls: bool) -> String {
    let e = text.trim_end_matches('/');
    if e.starts_with("http://") || e.starts_with("https://") {
        e.to_string()
    } else if tls {
        format!("https://{e}")
    } else {
        format!("http://{e}")
    }
}

/// `storage`, `vault`, `account_id`, `glacier_endpoint`, `vault_part_size`
/// and `on_retention_locked`, checked together.
fn vault(options: &BTreeMap<String, String>, tls: bool, problems: &mut Vec<String>) -> Option<Vault> {
    const VAULT_KEYS: &[&str] = &["vault", "account_id", "glacier_endpoint", "vault_part_size", "on_retention_locked"];
    let glacier = match option(options, "storage").map(str::to_ascii_lowercase).as_deref() {
        None | Some("s3") => false,
        Some("glacier") => true,
        Some(_) => {
            problems.push("storage must be s3 or glacier".to_string());
            return None;
        }
    };
    if !glacier {
        let stray: Vec<&str> = VAULT_KEYS.iter().copied().filter(|k| option(options, k).is_some()).collect();
        if !stray.is_empty() {
            problems.push(format!("{} only apply with storage: glacier", stray.join(", ")));
        }
        return None;
    }
    let name = option(options, "vault").unwrap_or_default().to_string();
    if name.is_empty() {
        problems.push("vault is required with storage: glacier".to_string());
    } else if name.len() > 255 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        problems.push(format!("vault {name} must be 1 to 255 characters of a-z, A-Z, 0-9, _, - and ."));
    }
    let account_id = option(options, "account_id").unwrap_or("-").to_string();
    if account_id != "-" && !(account_id.len() == 12 && account_id.chars().all(|c| c.is_ascii_digit())) {
        problems.push("account_id must be - (the signing account) or a 12-digit AWS account id without dashes".into());
    }
    let endpoint = option(options, "glacier_endpoint").map(|e| endpoint_url(e, tls));
    let part_size = match option(options, "vault_part_size").map(parse_size) {
        None => DEFAULT_VAULT_PART_SIZE,
        Some(Ok(n))
            if (MIN_VAULT_PART_SIZE..=MAX_VAULT_PART_SIZE).contains(&n)
                && (n / MIB).is_power_of_two()
                && n % MIB == 0 =>
        {
            n
        }
        Some(Ok(n)) => {
            problems.push(format!(
                "vault_part_size is {n} bytes; Glacier needs 1MB times a power of two (1MB, 2MB, 4MB, ... 4096MB)"
            ));
            DEFAULT_VAULT_PART_SIZE
        }
        Some(Err(why)) => {
            problems.push(format!("vault_part_size: {why}"));
            DEFAULT_VAULT_PART_SIZE
        }
    };
    let on_retention_locked = match option(options, "on_retention_locked") {
        None | Some("fail") => OnRetentionLocked::Fail,
        Some("defer") => OnRetentionLocked::Defer,
        Some(_) => {
            problems.push("on_retention_locked must be fail or defer".to_string());
            OnRetentionLocked::Fail
        }
    };
    Some(Vault { name, account_id, endpoint, part_size, on_retention_locked })
}

/// A duration option; `allow_zero` for waits that may be switched off.
fn duration(
    options: &BTreeMap<String, String>,
    key: &str,
    default: Duration,
    allow_zero: bool,
    problems: &mut Vec<String>,
) -> Duration {
    let Some(text) = option(options, key) else { return default };
    match parse_duration(text) {
        Ok(d) if d.is_zero() && !allow_zero => {
            problems.push(format!("{key} must be longer than zero"));
            default
        }
        Ok(d) if d > MAX_DURATION => {
            problems.push(format!("{key} must be at most 30 days"));
            default
        }
        Ok(d) => d,
        Err(why) => {
            problems.push(format!("{key}: {why}"));
            default
        }
    }
}

const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// `10s`, `5m`, `1h30m`, `2d`, `500ms`; a plain number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (examples: 30s, 5m, 1h30m, 2d, 500ms)");
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = compact.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let millis_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let add = n.checked_mul(millis_per).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(add)).ok_or_else(bad)?;
    }
    Ok(total)
}

/// `k1=v1&k2=v2` (S3's tag set form): at most 10 tags, unique keys of 1-128
/// and values of 0-256 characters of S3's tag alphabet (letters, digits,
/// spaces and `_ . : / = + - @`).
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        let allowed = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c));
        if k.is_empty() || k.chars().count() > 128 {
            return Err(format!("tag key {k:?} must have 1 to 128 characters"));
        }
        if v.chars().count() > 256 {
            return Err(format!("the value of tag {k} has more than 256 characters"));
        }
        if !allowed(k) || !allowed(v) {
            return Err(format!("tag {k}: only letters, digits, spaces and _ . : / = + - @ are allowed"));
        }
        if k.starts_with("aws:") {
            return Err(format!("tag key {k} uses the reserved aws: prefix"));
        }
        if tags.iter().any(|(existing, _)| existing == k) {
            return Err(format!("tag key {k} appears twice"));
        }
        tags.push((k.to_string(), v.to_string()));
    }
    if tags.len() > 10 {
        return Err(format!("{} tags given; S3 allows 10 per object", tags.len()));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "executablepath: /usr/local/gpdb/bin/gpbackup_s3_plugin\noptions:\n  region: us-west-2\n  bucket: b1\n  folder: f1\n";

    fn err(text: &str) -> String {
        match Config::parse(text) {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.region, "us-west-2");
        assert_eq!(c.endpoint, None);
        assert!(c.tls);
        assert_eq!(c.keys, None);
        assert_eq!(c.backup, Transfer { part_size: 8 * MIB, concurrency: 6 });
        assert_eq!(c.restore, Transfer { part_size: 8 * MIB, concurrency: 6 });
        assert!(!c.remove_duplicate_bucket);
    }

    #[test]
    fn gpbackup_generated_copy_is_accepted() {
        // As gpbackup writes it: sorted keys, quoted scalars, injected keys.
        let text = r#"executablepath: /usr/local/greenplum-db/bin/gpbackup_s3_plugin
options:
  aws_access_key_id: AKIAEXAMPLE
  aws_secret_access_key: s3cr3t/value
  backup_max_concurrent_requests: "4"
  backup_multipart_chunksize: 100MB
  backup_plugin_version: ""
  bucket: gpdb-backup
  encryption: "off"
  endpoint: minio.local:9000
  folder: test/backup3
  pgport: "6000"
  region: unused
  restore_subset: "on"
"#;
        let c = Config::parse(text).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://minio.local:9000"));
        assert!(!c.tls);
        assert_eq!(c.backup, Transfer { part_size: 100 * MIB, concurrency: 4 });
        assert_eq!(c.keys.as_ref().unwrap().access_key_id, "AKIAEXAMPLE");
        assert_eq!(c.secrets.0, vec!["s3cr3t/value".to_string()]);
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn unquoted_numbers_and_booleans_are_strings() {
        let text = format!(
            "{MINIMAL}  backup_max_concurrent_requests: 3\n  remove_duplicate_bucket: false\n  endpoint: http://h:1\n"
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.backup.concurrency, 3);
    }

    #[test]
    fn endpoint_only_defaults_region() {
        let text = "executablepath: /x\noptions:\n  endpoint: https://s3.example.com/\n  bucket: b\n  folder: f\n";
        let c = Config::parse(text).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint.as_deref(), Some("https://s3.example.com"));
    }

    #[test]
    fn folder_is_normalised() {
        for (raw, want) in [("prod/gp/", "prod/gp"), ("/prod/gp", "prod/gp"), ("//a//b//", "a/b"), ("x", "x")] {
            let text = MINIMAL.replace("folder: f1", &format!("folder: {raw}"));
            assert_eq!(Config::parse(&text).unwrap().folder, want, "{raw}");
        }
        assert!(err(&MINIMAL.replace("folder: f1", "folder: /")).contains("folder"));
    }

    #[test]
    fn all_problems_reported_together() {
        let text = "executablepath: /x\noptions:\n  encryption: maybe\n  aws_access_key_id: k\n  bucket_name: b\n  backup_multipart_chunksize: 1MB\n  restore_max_concurrent_requests: 0\n";
        let m = err(text);
        for needle in [
            "unknown option bucket_name",
            "bucket is required",
            "folder is required",
            "encryption must be on or off",
            "aws_secret_access_key is required",
            "region or endpoint is required",
            "backup_multipart_chunksize is 1048576 bytes",
            "restore_max_concurrent_requests must be a whole number",
        ] {
            assert!(m.contains(needle), "missing {needle:?} in {m}");
        }
        assert!(!m.contains('\n'));
    }

    #[test]
    fn structural_errors() {
        assert!(err("options:\n  bucket: b\n  folder: f\n  region: r\n").contains("executablepath is required"));
        assert!(err("executablepath: /x\n").contains("options is required"));
        assert!(err("executablepath: /x\noptions: [a, b]\n").contains("options must be a map"));
        assert!(err("executablepath: /x\nextra: 1\noptions:\n  bucket: b\n").contains("invalid YAML"));
        assert!(
            err(&format!("{MINIMAL}  folder2:\n    nested: x\n")).contains("option folder2 must be a single value")
        );
        assert!(err("executablepath: [\n").contains("invalid YAML"));
    }

    #[test]
    fn secrets_never_in_errors() {
        let text = "executablepath: /x\noptions:\n  aws_secret_access_key: TOPSECRET\n  encryption: TOPSECRET2\n";
        let m = err(text);
        assert!(!m.contains("TOPSECRET"), "{m}");
    }

    #[test]
    fn part_size_limits() {
        let with = |v: &str| MINIMAL.to_string() + &format!("  restore_multipart_chunksize: {v}\n");
        assert_eq!(Config::parse(&with("5MB")).unwrap().restore.part_size, 5 * MIB);
        assert_eq!(Config::parse(&with("5GB")).unwrap().restore.part_size, 5 * 1024 * MIB);
        assert!(err(&with("5GB1")).contains("restore_multipart_chunksize"));
        assert!(err(&with("6GB")).contains("between 5MB and 5GB"));
        assert!(err(&with("4MB")).contains("between 5MB and 5GB"));
    }

    #[test]
    fn durations_and_retries() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!((c.retry_max_attempts, c.retry_time_budget), (DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BUDGET));
        let text = MINIMAL.to_string() + "  retry_max_attempts: 3\n  retry_time_budget: 2m\n";
        let c = Config::parse(&text).unwrap();
        assert_eq!((c.retry_max_attempts, c.retry_time_budget), (3, Duration::from_secs(120)));
        let text = MINIMAL.to_string() + "  retry_max_attempts: 0\n  retry_time_budget: soon\n";
        let m = err(&text);
        assert!(m.contains("retry_max_attempts") && m.contains("retry_time_budget"), "{m}");
        let text = MINIMAL.to_string() + "  retry_time_budget: 0\n";
        assert!(err(&text).contains("retry_time_budget must be longer than zero"));
    }

    #[test]
    fn session_token_needs_keys() {
        let text = MINIMAL.to_string() + "  aws_session_token: tok\n";
        assert!(err(&text).contains("aws_session_token needs"));
        let text =
            MINIMAL.to_string() + "  aws_session_token: tok\n  aws_access_key_id: a\n  aws_secret_access_key: s\n";
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.keys.unwrap().session_token.as_deref(), Some("tok"));
        assert_eq!(c.secrets.0.len(), 2);
    }

    #[test]
    fn injected_plugin_name_key_is_a_secret() {
        let text = MINIMAL.to_string() + "  gpbackup_s3_plugin: encrypted-pw\n  password_encryption: \"on\"\n";
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.secrets.0, vec!["encrypted-pw".to_string()]);
    }
    #[test]
    fn durations() {
        for (text, secs) in [("10", 10.0), ("10s", 10.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172_800.0)] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1 h 5 s").unwrap(), Duration::from_secs(3605));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "s", "5x", "m5", "1.5h", "-3s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let with = |k: &str, v: &str| format!("{MINIMAL}  {k}: {v}\n");
        let c = Config::parse(&with("connect_timeout", "3s")).unwrap();
        assert_eq!((c.connect_timeout, c.read_timeout), (Duration::from_secs(3), DEFAULT_READ_TIMEOUT));
        assert_eq!(Config::parse(&with("read_timeout", "2m")).unwrap().read_timeout, Duration::from_secs(120));
        assert!(err(&with("connect_timeout", "0")).contains("connect_timeout must be longer than zero"));
        assert!(err(&with("read_timeout", "soon")).contains("read_timeout: \"soon\" is not a duration"));
        assert!(err(&with("read_timeout", "31d")).contains("read_timeout must be at most 30 days"));
        // A wait may be switched off.
        assert_eq!(Config::parse(&with("restore_wait_timeout", "0")).unwrap().thaw.wait_timeout, Duration::ZERO);
    }

    #[test]
    fn tags() {
        assert_eq!(
            parse_tags("team=dba&retention=90 days&path=a/b:c").unwrap(),
            vec![
                ("team".to_string(), "dba".to_string()),
                ("retention".to_string(), "90 days".to_string()),
                ("path".to_string(), "a/b:c".to_string())
            ]
        );
        assert_eq!(parse_tags("empty=").unwrap(), vec![("empty".to_string(), String::new())]);
        let eleven = (0..11).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
        for (bad, why) in [
            ("novalue", "is not key=value"),
            ("=v", "1 to 128"),
            ("a=1&a=2", "appears twice"),
            ("a=b;c", "only letters"),
            ("aws:x=1", "reserved"),
            (eleven.as_str(), "11 tags"),
        ] {
            let e = parse_tags(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let c = Config::parse(&format!("{MINIMAL}  object_tags: \"a=1&b=2\"\n")).unwrap();
        assert_eq!(c.object_tags.len(), 2);
        assert!(err(&format!("{MINIMAL}  object_tags: x\n")).contains("object_tags: \"x\" is not key=value"));
    }

    #[test]
    fn storage_classes() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!((c.storage_class, c.metadata_storage_class), (None, None));
        let c =
            Config::parse(&format!("{MINIMAL}  storage_class: deep_archive\n  metadata_storage_class: GLACIER_IR\n"))
                .unwrap();
        assert_eq!(c.storage_class.as_deref(), Some("DEEP_ARCHIVE"));
        assert_eq!(c.metadata_storage_class.as_deref(), Some("GLACIER_IR"));
        let m = err(&format!("{MINIMAL}  storage_class: FROZEN\n  metadata_storage_class: GLACIER\n"));
        assert!(m.contains("storage_class FROZEN is not a storage class"), "{m}");
        assert!(m.contains("metadata_storage_class GLACIER is an archived class"), "{m}");
    }

    #[test]
    fn glacier_vault_options() {
        let with = |extra: &str| format!("{MINIMAL}{extra}");
        assert_eq!(Config::parse(MINIMAL).unwrap().vault, None);
        let c = Config::parse(&with("  storage: glacier\n  vault: prod-gp_1.x\n")).unwrap();
        let vault = c.vault.unwrap();
        assert_eq!((vault.name.as_str(), vault.account_id.as_str()), ("prod-gp_1.x", "-"));
        assert_eq!((vault.endpoint, vault.part_size), (None, DEFAULT_VAULT_PART_SIZE));
        assert_eq!(vault.on_retention_locked, OnRetentionLocked::Fail);
        let c = Config::parse(&with(
            "  storage: GLACIER\n  vault: v\n  account_id: '123456789012'\n  glacier_endpoint: 127.0.0.1:5000\n  \
             encryption: off\n  vault_part_size: 64MB\n  on_retention_locked: defer\n",
        ))
        .unwrap();
        let vault = c.vault.unwrap();
        assert_eq!(vault.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!((vault.part_size, vault.account_id.as_str()), (64 * MIB, "123456789012"));
        assert_eq!(vault.on_retention_locked, OnRetentionLocked::Defer);

        assert!(err(&with("  storage: glacier\n")).contains("vault is required with storage: glacier"));
        assert!(err(&with("  storage: tape\n")).contains("storage must be s3 or glacier"));
        let m = err(&with("  vault: v\n  vault_part_size: 8MB\n"));
        assert!(m.contains("vault, vault_part_size only apply with storage: glacier"), "{m}");
        for (option, needle) in [
            ("vault_part_size: 3MB", "power of two"),
            ("vault_part_size: 512KB", "power of two"),
            ("vault_part_size: 8GB", "power of two"),
            ("account_id: 1234-5678-9012", "12-digit"),
            ("on_retention_locked: maybe", "fail or defer"),
        ] {
            let m = err(&with(&format!("  storage: glacier\n  vault: v\n  {option}\n")));
            assert!(m.contains(needle), "{option}: {m}");
        }
        assert!(err(&with("  storage: glacier\n  vault: 'bad name!'\n")).contains("vault bad name!"));
    }

    #[test]
    fn restore_options() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.thaw, Thaw { tier: RestoreTier::Standard, days: 7, wait_timeout: Duration::ZERO, auto: false });
        let text = format!(
            "{MINIMAL}  restore_tier: bulk\n  restore_days: 3\n  restore_wait_timeout: 2h\n  restore_auto: true\n"
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(
            c.thaw,
            Thaw { tier: RestoreTier::Bulk, days: 3, wait_timeout: Duration::from_secs(7200), auto: true }
        );
        let text = format!(
            "{MINIMAL}  restore_tier: Fast\n  restore_days: 0\n  restore_wait_timeout: forever\n  restore_auto: yes\n"
        );
        let m = err(&text);
        for needle in ["restore_tier must be", "restore_days must be", "restore_wait_timeout:", "restore_auto must be"]
        {
            assert!(m.contains(needle), "missing {needle:?} in {m}");
        }
    }

    #[test]
    fn encryption_combinations() {
        let with = |extra: &str| format!("{MINIMAL}{extra}");
        assert_eq!(Config::parse(MINIMAL).unwrap().encryption, Encryption::BucketDefault);
        assert_eq!(
            Config::parse(&with("  server_side_encryption: AES256\n")).unwrap().encryption,
            Encryption::S3Managed
        );
        let c = Config::parse(&with(
            "  server_side_encryption: aws:kms\n  sse_kms_key_id: arn:aws:kms:us-west-2:1:key/k\n  sse_bucket_key: true\n",
        ))
        .unwrap();
        assert_eq!(
            c.encryption,
            Encryption::Kms {
                key_id: Some("arn:aws:kms:us-west-2:1:key/k".to_string()),
                bucket_key: Some(true),
                dual_layer: false
            }
        );
        let c = Config::parse(&with("  server_side_encryption: aws:kms:dsse\n")).unwrap();
        assert!(matches!(c.encryption, Encryption::Kms { key_id: None, bucket_key: None, dual_layer: true }));
        let m = err(&with("  server_side_encryption: AES256\n  sse_kms_key_id: k\n  sse_bucket_key: true\n"));
        assert!(m.contains("sse_kms_key_id needs server_side_encryption: aws:kms"), "{m}");
        assert!(m.contains("sse_bucket_key needs server_side_encryption: aws:kms"), "{m}");
        assert!(err(&with("  server_side_encryption: kms\n")).contains("server_side_encryption must be"));
        assert!(err(&with("  sse_kms_key_id: k\n")).contains("sse_kms_key_id needs"));
    }

    #[test]
    fn customer_keys_from_files_never_leak() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(200)).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        let raw_file = dir.path().join("raw.key");
        std::fs::write(&raw_file, &raw).unwrap();
        let text_file = dir.path().join("b64.key");
        std::fs::write(&text_file, format!("{b64}\n")).unwrap();
        let with = |file: &std::path::Path| format!("{MINIMAL}  sse_customer_key_file: {}\n", file.display());
        for file in [&raw_file, &text_file] {
            let c = Config::parse(&with(file)).unwrap();
            let Encryption::Customer(key) = &c.encryption else { panic!("{:?}", c.encryption) };
            assert_eq!(key.key_base64, b64);
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&raw));
            assert_eq!(key.key_md5_base64, md5);
            assert!(c.secrets.0.contains(&b64), "the key is redacted everywhere");
            assert!(!format!("{c:?}").contains(&b64));
        }
        // Wrong sizes and contents: the message names the file, never its bytes.
        let short = dir.path().join("short.key");
        std::fs::write(&short, "c2VjcmV0LXRvby1zaG9ydA==").unwrap();
        let m = err(&with(&short));
        assert!(m.contains("short.key") && m.contains("256-bit key") && !m.contains("c2VjcmV0"), "{m}");
        let m = err(&with(&dir.path().join("missing.key")));
        assert!(m.contains("missing.key: cannot be read"), "{m}");
        let m = err(&format!("{}  server_side_encryption: AES256\n", with(&raw_file)));
        assert!(m.contains("exclude each other"), "{m}");
    }

    #[test]
    fn addressing_tls_and_proxy() {
        let c = Config::parse(MINIMAL).unwrap();
        assert!(!c.force_path_style, "AWS itself: virtual-host addressing");
        let with = |extra: &str| format!("{MINIMAL}  endpoint: https://minio.local:9000\n{extra}");
        assert!(Config::parse(&with("")).unwrap().force_path_style, "S3-compatible: path-style, as the Go plugin");
        assert!(!Config::parse(&with("  force_path_style: false\n")).unwrap().force_path_style);
        assert!(Config::parse(&with("  remove_duplicate_bucket: true\n")).unwrap().remove_duplicate_bucket);
        assert!(err(&with("  remove_duplicate_bucket: true\n  force_path_style: false\n")).contains("contradicts"));
        assert!(err(&with("  force_path_style: maybe\n")).contains("force_path_style must be true or false"));

        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let c = Config::parse(&with(&format!("  ca_cert_file: {}\n", pem.display()))).unwrap();
        assert_eq!(c.ca_cert.unwrap().file, pem.display().to_string());
        let not_pem = dir.path().join("ca.der");
        std::fs::write(&not_pem, [0x30, 0x82]).unwrap();
        assert!(err(&with(&format!("  ca_cert_file: {}\n", not_pem.display()))).contains("holds no PEM certificate"));
        assert!(err(&with("  ca_cert_file: /nonexistent/ca.pem\n")).contains("/nonexistent/ca.pem cannot be read"));
        let http = format!("{MINIMAL}  endpoint: http://h:1\n  ca_cert_file: {}\n", pem.display());
        assert!(err(&http).contains("ca_cert_file needs TLS"));

        let c =
            Config::parse(&with("  http_proxy: http://proxy:3128\n  no_proxy: \"localhost, .internal\"\n")).unwrap();
        assert_eq!(c.no_proxy.as_deref(), Some("localhost,.internal"));
    }

    #[test]
    fn the_cold_storage_and_kms_examples_mean_what_they_say() {
        let c = Config::parse(include_str!("../plugin-config-examples/s3-deep-archive.yaml")).unwrap();
        assert_eq!(c.storage_class.as_deref(), Some("DEEP_ARCHIVE"));
        assert_eq!(c.metadata_storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(c.thaw, Thaw { tier: RestoreTier::Bulk, days: 5, wait_timeout: Duration::ZERO, auto: false });
        assert_eq!(c.object_tags.len(), 2);
        assert!(!c.force_path_style);
        let c = Config::parse(include_str!("../plugin-config-examples/s3-sse-kms.yaml")).unwrap();
        assert!(matches!(
            &c.encryption,
            Encryption::Kms { key_id: Some(k), bucket_key: Some(true), dual_layer: false } if k.starts_with("arn:aws:kms:")
        ));
        assert_eq!((c.connect_timeout, c.read_timeout), (Duration::from_secs(10), Duration::from_secs(300)));
        assert_eq!(c.no_proxy.as_deref(), Some("169.254.169.254,.internal"));
        let c = Config::parse(include_str!("../plugin-config-examples/glacier-vault.yaml")).unwrap();
        let vault = c.vault.unwrap();
        assert_eq!(
            (vault.name.as_str(), vault.account_id.as_str(), vault.part_size),
            ("gpdb-prod-cluster1", "-", 16 * MIB)
        );
        assert_eq!(vault.on_retention_locked, OnRetentionLocked::Defer);
        assert_eq!(c.thaw.tier, RestoreTier::Bulk);
    }
}
