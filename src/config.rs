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

use crate::error::Error;
use crate::size::{MIB, parse_size};

/// S3's smallest allowed part (except the last) and largest allowed part.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;

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
    /// The option values that must never appear in logs, errors or uploads.
    pub secrets: Secrets,
}

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

        let endpoint = opt("endpoint").map(|e| {
            let e = e.trim_end_matches('/');
            if e.starts_with("http://") || e.starts_with("https://") {
                e.to_string()
            } else if tls {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            }
        });
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

        let remove_duplicate_bucket = match opt("remove_duplicate_bucket") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                problems.push("remove_duplicate_bucket must be true or false".to_string());
                false
            }
        };
        if remove_duplicate_bucket && endpoint.is_none() {
            problems.push("remove_duplicate_bucket needs an endpoint".to_string());
        }

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
        let retry_time_budget = match opt("retry_time_budget") {
            None => DEFAULT_RETRY_BUDGET,
            Some(v) => parse_duration(v).unwrap_or_else(|why| {
                problems.push(format!("retry_time_budget: {why}"));
                DEFAULT_RETRY_BUDGET
            }),
        };

        let secrets = Secrets(
            options
                .iter()
                .filter(|(k, v)| SECRET_KEYS.contains(&k.as_str()) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
                .collect(),
        );

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

/// `90`, `90s`, `500ms`, `5m`, `1h`: a duration; bare numbers are seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| "expected a duration such as 30s, 5m or 1h".to_string())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" | "sec" | "secs" => Duration::from_secs(n),
        "m" | "min" | "mins" => Duration::from_secs(n.saturating_mul(60)),
        "h" | "hour" | "hours" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("unrecognised duration unit {other:?} (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("must be longer than zero".to_string());
    }
    Ok(d)
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
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "0", "5x", "m", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!((c.retry_max_attempts, c.retry_time_budget), (DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BUDGET));
        let text = MINIMAL.to_string() + "  retry_max_attempts: 3\n  retry_time_budget: 2m\n";
        let c = Config::parse(&text).unwrap();
        assert_eq!((c.retry_max_attempts, c.retry_time_budget), (3, Duration::from_secs(120)));
        let text = MINIMAL.to_string() + "  retry_max_attempts: 0\n  retry_time_budget: soon\n";
        let m = err(&text);
        assert!(m.contains("retry_max_attempts") && m.contains("retry_time_budget"), "{m}");
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
}
