//! The plugin configuration: the YAML file gpbackup hands to every call,
//! turned into plain typed settings.
//!
//! gpbackup writes `executablepath` plus a flat `options` map of strings, and
//! adds keys of its own (`pgport`, `backup_plugin_version`, ...). We accept
//! every option the Go reference plugin accepts, with the same meaning, plus
//! our own; [`options`] is the table of them all. Unknown keys are refused
//! by name, because a misspelt option that is silently ignored (say
//! `bucket_name`) is worse than a failed backup. Every problem in one file is
//! reported together, in one line, so an operator fixes the file once.
//!
//! This is a leaf: it knows nothing of stores, the engine or commands.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::size::MIB;

mod cse;
mod file;
pub mod options;
pub use options::{Purpose, Uses};
mod lock;
mod redact;
pub mod secrets;
mod sse;
pub mod values;
mod vault;
pub mod yaml;

pub use cse::ClientEncryption;
pub use lock::{LockMode, MAX_RETENTION, ObjectLock};
pub use redact::redact_copy;
pub use sse::{CustomerKey, Encryption, read_customer_key};
pub use values::{ARCHIVED_CLASSES, STORAGE_CLASSES, parse_duration, parse_duration_with_unit};
pub use vault::{MAX_VAULT_PART_SIZE, MIN_VAULT_PART_SIZE, OnRetentionLocked, Vault};

use file::read_file;
use values::{Values, endpoint_url, parse_tags};

/// S3's smallest allowed part (except the last) and largest allowed part.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// The smallest ranged GET of a restore (smaller ones are clamped: each
/// request costs a round trip).
pub const MIN_RANGE_SIZE: u64 = 64 * 1024;
/// More parallel requests than this per process only adds contention.
pub const MAX_CONCURRENCY: usize = 64;
/// The most problems one error lists.
const MAX_PROBLEMS: usize = 20;
/// The longest a restored copy may be asked to stay (ten years).
pub const MAX_RESTORE_DAYS: u32 = 3650;

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
    /// What a restore accepts when an object's manifest is missing.
    pub verify: Verify,
}

/// What a restore does with an object whose integrity manifest is lost
/// (`verify`): refuse it (the default), or restore it with the checks
/// still possible and a warning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    #[default]
    Strict,
    Available,
}

/// Which request checksums go to the server: a CRC32C header (the
/// default with an endpoint), a full-object CRC-64/NVME (the default on
/// AWS), or what the Go plugin's SDK sends, for legacy servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checksums {
    #[default]
    Crc32c,
    Crc64nvme,
    Md5,
    None,
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
    /// Client-side encryption (age): recipients for backups, identities for restores.
    pub client_encryption: ClientEncryption,
    /// Extra trusted root certificates (PEM) for the endpoint's TLS.
    pub ca_cert: Option<CaCert>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Hosts reached without the proxy (comma-separated NO_PROXY rules).
    pub no_proxy: Option<String>,
    /// Tags set on every object the plugin writes.
    pub object_tags: Vec<(String, String)>,
    /// Which request checksums go to the server.
    pub checksums: Checksums,
    /// How archived objects are brought back (thaw, restore setup).
    pub thaw: Thaw,
    /// `storage: glacier`: payloads go to this Glacier vault; `None`: S3 only.
    pub vault: Option<Vault>,
    /// S3 Object Lock on every object written; `None`: no lock asked for.
    pub object_lock: Option<ObjectLock>,
    /// What a delete does when a retention lock refuses it.
    pub on_retention_locked: OnRetentionLocked,
    /// The option values that must never appear in logs, errors or uploads.
    pub secrets: Secrets,
    /// Values adjusted to what S3 allows (the log says so).
    pub warnings: Vec<String>,
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

/// How fast (and how dearly) an archived object is brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTier {
    Expedited,
    Standard,
    Bulk,
}

impl RestoreTier {
    /// `Expedited`, `Standard` or `Bulk`, in any case.
    pub fn parse(text: &str) -> Option<RestoreTier> {
        match text.trim().to_ascii_lowercase().as_str() {
            "expedited" => Some(RestoreTier::Expedited),
            "standard" => Some(RestoreTier::Standard),
            "bulk" => Some(RestoreTier::Bulk),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Expedited => "Expedited",
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
        }
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

/// Secret option values; `Debug` shows only how many there are.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secrets(pub Vec<String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets(<{} redacted>)", self.0.len())
    }
}

impl Config {
    /// Reads and validates the config file at `path` for a command that
    /// uses the options `uses` says.
    pub fn load(path: &Path, purpose: Purpose) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read config file {}: {e}", path.display())))?;
        Config::parse_for(&text, purpose).map_err(|e| e.context(&format!("config file {}", path.display())))
    }

    /// Parses and validates config text; all problems are reported at once.
    pub fn parse(text: &str) -> Result<Config, Error> {
        Config::parse_for(text, Purpose::Check)
    }

    /// [`Config::parse`] for a command of `purpose`: problems of the options
    /// it does not use do not count.
    pub fn parse_for(text: &str, purpose: Purpose) -> Result<Config, Error> {
        let (executable_path, mut map, problems) = read_file(text)?;
        // gpbackup adds the password key under the executable's own name:
        // a renamed copy's key is ours all the same.
        let name = secrets::plugin_name();
        if name != crate::PLUGIN_NAME
            && options::spec(&name).is_none()
            && let Some(key) = map.remove(&name)
        {
            map.entry(crate::PLUGIN_NAME.to_string()).or_insert(key);
        }
        let mut values = Values::new(map);
        values.problems.extend(problems.into_iter().map(|p| (None, p)));
        let mut config = Config::from_values(executable_path, &mut values);
        config.warnings = std::mem::take(&mut values.warnings);
        // A problem of an option this command does not use is a warning:
        // it never stops the command, but the log says it.
        let (minded, ignored): (Vec<_>, Vec<_>) = values
            .problems
            .into_iter()
            .partition(|(option, _)| purpose.minds(option.and_then(options::spec).map_or(Uses::All, |s| s.uses)));
        config.warnings.extend(ignored.into_iter().map(|(_, text)| format!("{text} (not used by this command)")));
        let mut problems: Vec<String> = minded.into_iter().map(|(_, text)| text).collect();
        if problems.is_empty() {
            return Ok(config);
        }
        // Every problem at once, but not a screenful of the same one.
        if problems.len() > MAX_PROBLEMS {
            let more = problems.len() - MAX_PROBLEMS;
            problems.truncate(MAX_PROBLEMS);
            problems.push(format!("... and {more} more"));
        }
        Err(Error::config(problems.join("; ")))
    }

    fn from_values(executable_path: String, v: &mut Values) -> Config {
        let unknown: Vec<String> =
            v.keys().filter(|k| options::spec(k).is_none()).map(|k| format!("unknown option {k}")).collect();
        v.problems.extend(unknown.into_iter().map(|p| (None, p)));

        let bucket = v.given("bucket").unwrap_or_default().to_string();
        if bucket.is_empty() {
            v.problem("bucket is required and cannot be empty");
        } else if bucket.contains('/') {
            v.problem(format!("bucket {bucket} must be a bucket name, without slashes"));
        }
        // Required, as in the Go plugin; `/` or `.` mean the bucket root.
        let folder = match v.given("folder").map(crate::layout::clean_folder) {
            None => {
                v.problem("folder is required and cannot be empty");
                String::new()
            }
            Some(Ok(folder)) => folder,
            Some(Err(why)) => {
                v.problem(format!("folder {why}"));
                String::new()
            }
        };

        let tls = v.on_off("encryption", " (it switches TLS)").unwrap_or(true);
        v.check_request_bound();
        let endpoint = v.given("endpoint").map(|e| endpoint_url(e, tls));
        if let Some(Err(why)) = endpoint.as_deref().map(|e| values::check_url(e, &["http", "https"])) {
            v.problem(format!("endpoint {why}"));
        }
        let region = match (v.given("region"), &endpoint) {
            (Some(r), _) => r.to_string(),
            // S3-compatible servers sign with a region too; us-east-1 is what
            // MinIO and Garage expect when none is configured.
            (None, Some(_)) => "us-east-1".to_string(),
            (None, None) => {
                v.problem("region or endpoint is required");
                String::new()
            }
        };
        // Sealed credentials opened first: everything below sees plaintext.
        let mut secrets: Vec<String> = Vec::new();
        let password_key = secrets::open_sealed(v, &mut secrets);
        let keys = static_keys(v);

        // As the Go plugin: 0 means the default; what S3 forbids is clamped
        // with a warning rather than refused.
        let default_size =
            |key| options::default_value(key).and_then(|t| crate::size::parse_size(t).ok()).unwrap_or(8 << 20);
        let default_count = |key| options::default_value(key).and_then(|t| t.parse().ok()).unwrap_or(6);
        let backup = Transfer {
            part_size: v.lenient_size(
                "backup_multipart_chunksize",
                MIN_PART_SIZE,
                MAX_PART_SIZE,
                default_size("backup_multipart_chunksize"),
            ),
            concurrency: v.lenient_count(
                "backup_max_concurrent_requests",
                MAX_CONCURRENCY,
                default_count("backup_max_concurrent_requests"),
            ),
            verify: Verify::Strict,
        };
        // Ranged GETs have no S3 minimum; tiny ones only cost requests.
        let restore = Transfer {
            part_size: v.lenient_size(
                "restore_multipart_chunksize",
                MIN_RANGE_SIZE,
                MAX_PART_SIZE,
                default_size("restore_multipart_chunksize"),
            ),
            concurrency: v.lenient_count(
                "restore_max_concurrent_requests",
                MAX_CONCURRENCY,
                default_count("restore_max_concurrent_requests"),
            ),
            verify: match v.given("verify").unwrap_or("strict") {
                "strict" => Verify::Strict,
                "available" => Verify::Available,
                _ => {
                    v.problem("verify must be strict or available");
                    Verify::Strict
                }
            },
        };

        // As the Go plugin (archive 69583e2): accepted with or without an
        // endpoint. Without one, AWS addresses the bucket by host name, so
        // the bucket is already out of the path: nothing to remove.
        let remove_duplicate_bucket = v.boolean("remove_duplicate_bucket").unwrap_or_default() && endpoint.is_some();
        let force_path_style = match v.boolean("force_path_style") {
            Some(false) if remove_duplicate_bucket => {
                v.problem(
                    "force_path_style: false contradicts remove_duplicate_bucket: true (drop the bucket from the \
                     endpoint and use force_path_style: false alone)",
                );
                true
            }
            Some(value) => value,
            // Path-style for S3-compatible servers, as the Go plugin always did:
            // their buckets rarely have DNS names. AWS itself: virtual-host.
            None => endpoint.is_some(),
        };

        let storage_class = v.storage_class("storage_class");
        let metadata_storage_class = v.storage_class("metadata_storage_class");
        if let Some(class) = &metadata_storage_class
            && ARCHIVED_CLASSES.contains(&class.as_str())
        {
            v.problem(format!(
                "metadata_storage_class {class} is an archived class: gprestore and gpbackup --incremental read \
                 metadata files at once, so they need an instant-access class (STANDARD, STANDARD_IA, \
                 INTELLIGENT_TIERING, GLACIER_IR, ...)"
            ));
        }

        secrets.extend(options::secret_names().filter_map(|name| v.given(name)).map(str::to_string));
        let encryption = sse::parse(v, &mut secrets, password_key.as_ref());
        let client_encryption = cse::parse(v, &mut secrets);
        let ca_cert = ca_cert(v, endpoint.as_deref());

        let connect_timeout = v.duration("connect_timeout", false).unwrap_or_default();
        let read_timeout = v.duration("read_timeout", false).unwrap_or_default();
        let no_proxy = v.given("no_proxy").map(|rules| rules.split(',').map(str::trim).collect::<Vec<_>>().join(","));
        let object_tags = match v.given("object_tags").map(parse_tags) {
            None => Vec::new(),
            Some(Ok(tags)) => tags,
            Some(Err(why)) => {
                v.problem_with("object_tags", format!("object_tags: {why}"));
                Vec::new()
            }
        };
        // AWS stores a full-object CRC-64/NVME of multipart objects; other
        // servers rarely know CRC-64/NVME, and CRC32C is what they check.
        let default_checksums = if endpoint.is_some() { "crc32c" } else { "crc64nvme" };
        let checksums = match v.given("checksums").unwrap_or(default_checksums) {
            "crc32c" => Checksums::Crc32c,
            "crc64nvme" => Checksums::Crc64nvme,
            "md5" => Checksums::Md5,
            "none" => Checksums::None,
            _ => {
                v.problem("checksums must be crc32c, crc64nvme, md5 or none");
                Checksums::Crc32c
            }
        };
        let thaw = thaw(v);

        for key in ["restore_subset", "password_encryption", "replication"] {
            v.on_off(key, "");
        }
        // Schemes in any case, as Go's URL parser takes them.
        let http_proxy = v.given("http_proxy").map(values::lower_scheme);
        if http_proxy.as_deref().is_some_and(|p| p.starts_with("socks")) {
            v.problem(
                "http_proxy: SOCKS proxies are not supported (the HTTP client here speaks only to http:// and \
                 https:// proxies); use an HTTP proxy, or the Go plugin",
            );
        } else if let Some(Err(why)) = http_proxy.as_deref().map(|p| values::check_url(p, &["http", "https"])) {
            v.problem(format!("http_proxy {why}"));
        }
        // A proxy's password is as secret as the keys.
        if let Some(password) =
            http_proxy.as_deref().and_then(|p| url::Url::parse(p).ok()).and_then(|u| u.password().map(str::to_string))
        {
            secrets.push(password);
        }
        let retry_max_attempts =
            v.count("retry_max_attempts", 1..=100, "a whole number from 1 to 100").unwrap_or_default();
        let retry_time_budget = v.duration("retry_time_budget", false).unwrap_or_default();
        let on_retention_locked = lock::on_retention_locked(v);
        let vault = vault::parse(v, tls, on_retention_locked);
        let object_lock = lock::parse(v, vault.is_some());

        Config {
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
            client_encryption,
            ca_cert,
            connect_timeout,
            read_timeout,
            no_proxy,
            object_tags,
            checksums,
            thaw,
            vault,
            object_lock,
            on_retention_locked,
            secrets: Secrets(secrets),
            warnings: Vec::new(),
        }
    }
}

impl Config {
    /// What a delete does when a retention lock refuses it.
    pub fn on_retention_locked(&self) -> OnRetentionLocked {
        self.on_retention_locked
    }

    /// Whether table data goes to an S3 storage class whose objects may
    /// need a restore (RestoreObject) before a read. A vault's retrievals
    /// are jobs of its own, not S3 restores.
    pub fn data_in_archive_class(&self) -> bool {
        self.vault.is_none()
            && self
                .storage_class
                .as_deref()
                .is_some_and(|c| ARCHIVED_CLASSES.contains(&c) || c == "INTELLIGENT_TIERING")
    }
}

fn static_keys(v: &mut Values) -> Option<StaticKeys> {
    match (v.given("aws_access_key_id"), v.given("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Some(StaticKeys {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: v.given("aws_session_token").map(str::to_string),
        }),
        (None, None) => {
            if v.given("aws_session_token").is_some() {
                v.problem("aws_session_token needs aws_access_key_id and aws_secret_access_key");
            }
            None
        }
        (Some(_), None) => {
            v.problem("aws_secret_access_key is required when aws_access_key_id is set");
            None
        }
        (None, Some(_)) => {
            v.problem("aws_access_key_id is required when aws_secret_access_key is set");
            None
        }
    }
}

fn ca_cert(v: &mut Values, endpoint: Option<&str>) -> Option<CaCert> {
    let file = v.given("ca_cert_file")?.to_string();
    if endpoint.is_some_and(|e| e.starts_with("http://")) {
        v.problem("ca_cert_file needs TLS, but the endpoint is http:// (encryption: off)");
    }
    let pem = match std::fs::read(&file) {
        Ok(pem) => pem,
        Err(e) => {
            v.problem(format!("ca_cert_file {file} cannot be read: {e}"));
            Vec::new()
        }
    };
    if !pem.is_empty() && !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        v.problem(format!("ca_cert_file {file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Some(CaCert { file, pem })
}

fn thaw(v: &mut Values) -> Thaw {
    let tier = match v.given("restore_tier").or(options::default_value("restore_tier")) {
        None => RestoreTier::Standard,
        Some(t) => RestoreTier::parse(t).unwrap_or_else(|| {
            v.problem_with("restore_tier", "restore_tier must be Expedited, Standard or Bulk");
            RestoreTier::Standard
        }),
    };
    let days = v
        .count("restore_days", 1..=MAX_RESTORE_DAYS, &format!("a whole number of days from 1 to {MAX_RESTORE_DAYS}"))
        .unwrap_or_default();
    let wait_timeout = v.duration("restore_wait_timeout", true).unwrap_or_default();
    let auto = v.boolean("restore_auto").unwrap_or_default();
    Thaw { tier, days, wait_timeout, auto }
}

#[cfg(test)]
mod tests;
