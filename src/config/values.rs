//! Reading option values: the raw map with every problem collected, and
//! the value forms options share (booleans, sizes, counts, durations,
//! storage classes, tags, endpoints).
//!
//! Problems name the option and what is wrong, never the value of a secret.

use std::collections::BTreeMap;
use std::time::Duration;

use super::options;
use crate::size::parse_size;

/// The options of one file, the problems found so far (with the option
/// each is about, when it is about one), and warnings (values adjusted).
pub struct Values {
    map: BTreeMap<String, String>,
    pub problems: Vec<(Option<&'static str>, String)>,
    pub warnings: Vec<String>,
}

impl Values {
    pub fn new(map: BTreeMap<String, String>) -> Values {
        Values { map, problems: Vec::new(), warnings: Vec::new() }
    }

    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push((None, text.into()));
    }

    /// A problem with option `key` alone (a command that does not use the
    /// option is not stopped by it).
    pub fn problem_with(&mut self, key: &str, text: impl Into<String>) {
        let key = super::options::spec(key).map(|s| s.name);
        self.problems.push((key, text.into()));
    }

    /// The trimmed value the file gives, if any (empty counts as absent).
    pub fn given(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// The value the file gives, else the table's default value.
    fn value(&self, key: &str) -> Option<&str> {
        self.given(key).or_else(|| options::default_value(key))
    }

    /// Replaces the value of `key` (a sealed credential by its plaintext).
    pub fn set(&mut self, key: &str, value: String) {
        self.map.insert(key.to_string(), value);
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter()
    }

    /// `true`/`false`; `None` when absent without a default (or wrong: then
    /// a problem).
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.value(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.problem_with(key, format!("{key} must be true or false"));
                None
            }
        }
    }

    /// `on`/`off` (gpbackup's own switches and `encryption`).
    pub fn on_off(&mut self, key: &str, what: &str) -> Option<bool> {
        match self.value(key)? {
            "on" => Some(true),
            "off" => Some(false),
            _ => {
                self.problem(format!("{key} must be on or off{what}"));
                None
            }
        }
    }

    /// A byte size within `range` (`what` describes the range for the message).
    pub fn size(&mut self, key: &str, range: std::ops::RangeInclusive<u64>, what: &str) -> Option<u64> {
        let text = self.value(key)?.to_string();
        match parse_size(&text) {
            Ok(n) if range.contains(&n) => Some(n),
            Ok(n) => {
                self.problem_with(key, format!("{key} is {n} bytes; it must be {what}"));
                None
            }
            Err(why) => {
                self.problem_with(key, format!("{key}: {why}"));
                None
            }
        }
    }

    /// A byte size as the Go plugin takes it: `0` means `default`, and a
    /// value outside `min..=max` is clamped into it with a warning (S3
    /// forbids it; refusing the whole file would stop every command).
    pub fn lenient_size(&mut self, key: &str, min: u64, max: u64, default: u64) -> u64 {
        let Some(text) = self.value(key).map(str::to_string) else { return default };
        match parse_size(&text) {
            Ok(0) => default,
            Ok(n) if n < min || n > max => {
                let clamped = n.clamp(min, max);
                self.warnings.push(format!("{key} of {n} bytes is outside {min}..={max}: {clamped} bytes are used"));
                clamped
            }
            Ok(n) => n,
            Err(why) => {
                self.problem_with(key, format!("{key}: {why}"));
                default
            }
        }
    }

    /// A count as the Go plugin takes it: `0` means `default`, more than
    /// `max` is clamped with a warning.
    pub fn lenient_count(&mut self, key: &str, max: usize, default: usize) -> usize {
        let Some(text) = self.value(key).map(str::to_string) else { return default };
        match text.parse::<usize>() {
            Ok(0) => default,
            Ok(n) if n > max => {
                self.warnings.push(format!("{key} of {n} is more than {max}: {max} are used"));
                max
            }
            Ok(n) => n,
            Err(_) => {
                self.problem_with(key, format!("{key} must be a whole number from 0 (the default) to {max} or more"));
                default
            }
        }
    }

    /// A whole number within `range`.
    pub fn count<T>(&mut self, key: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Option<T>
    where
        T: std::str::FromStr + PartialOrd,
    {
        let text = self.value(key)?;
        match text.parse::<T>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.problem_with(key, format!("{key} must be {what}"));
                None
            }
        }
    }

    /// A duration; zero only with `allow_zero` (waits that may be off).
    pub fn duration(&mut self, key: &str, allow_zero: bool) -> Option<Duration> {
        let text = self.value(key)?.to_string();
        match parse_duration(&text) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.problem_with(key, format!("{key} must be longer than zero"));
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.problem_with(key, format!("{key} must be at most 30 days"));
                None
            }
            Ok(d) => Some(d),
            Err(why) => {
                self.problem_with(key, format!("{key}: {why}"));
                None
            }
        }
    }

    /// A storage class name, upper-cased; `None` when absent or wrong.
    pub fn storage_class(&mut self, key: &str) -> Option<String> {
        let value = self.given(key)?.to_ascii_uppercase();
        if STORAGE_CLASSES.contains(&value.as_str()) {
            Some(value)
        } else {
            self.problem_with(
                key,
                format!("{key} {value} is not a storage class (one of {})", STORAGE_CLASSES.join(", ")),
            );
            None
        }
    }
}

/// Options whose values go into request headers, host names or paths of
/// every request: printable ASCII without spaces (a control character
/// would otherwise reach the HTTP layer, which refuses it mid-request).
const REQUEST_BOUND: &[&str] =
    &["region", "aws_access_key_id", "aws_session_token", "sse_kms_key_id", "bucket", "vault", "account_id"];

impl Values {
    /// Checks the options of [`REQUEST_BOUND`], naming each bad one.
    pub fn check_request_bound(&mut self) {
        let bad: Vec<&str> = REQUEST_BOUND
            .iter()
            .copied()
            .filter(|name| self.given(name).is_some_and(|v| !v.bytes().all(|b| (0x21..=0x7e).contains(&b))))
            .collect();
        for name in bad {
            self.problem(format!(
                "{name} must be printable ASCII without spaces or control characters (it goes into every request)"
            ));
        }
    }
}

/// `url` with its scheme (the text before `://`) in lower case.
pub fn lower_scheme(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => url.to_string(),
    }
}

/// Checks that `url` is a URL of one of `schemes` with a host (and a valid
/// port); the reason when not, without the URL itself.
pub fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    // A scheme of another kind under the one added for a bare host.
    if url.split_once("://").is_some_and(|(_, rest)| rest.contains("://")) {
        return Err(format!(
            "must be a URL starting with {} (or a bare host name)",
            schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ")
        ));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(format!(
            "must be a URL starting with {}",
            schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ")
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("is not a valid URL (no host)".to_string());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("is not a valid URL for a service (it has a query or fragment)".to_string());
    }
    Ok(())
}

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

/// The longest duration any option takes.
const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// `10s`, `5m`, `1h30m`, `2d`, `500ms` (humantime's forms, spaces
/// ignored); a plain number is seconds, as in every earlier release.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (examples: 30s, 5m, 1h30m, 2d, 500ms)");
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // Whole numbers only, as in every earlier release.
    if compact.is_empty() || compact.contains('.') {
        return Err(bad());
    }
    if compact.bytes().all(|b| b.is_ascii_digit()) {
        return compact.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    // humantime takes units glued to numbers ("1h30m") and also months and
    // years; a leading sign or a unit without a number is refused by it.
    humantime::parse_duration(&compact).map_err(|_| bad())
}

/// A duration that names its unit (`30d`, `12h`, `90m`, `2w`, `45s`): what
/// an operator types for `expire --older-than` and `--grace`, `retention
/// extend --by`, the waits of `thaw` and `rebuild-catalog`, and
/// `object_lock_retention`. A bare number is refused: it was seconds, so
/// `--older-than 30` kept only the last 30 seconds of backups.
pub fn parse_duration_with_unit(text: &str) -> Result<Duration, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} has no unit: write {compact}d (days), {compact}h, {compact}m or {compact}s"));
    }
    parse_duration(text)
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

/// An endpoint as a URL: without a scheme, `https://` or `http://` as
/// `encryption` (TLS) says; no trailing slash.
pub fn endpoint_url(text: &str, tls: bool) -> String {
    let e = text.trim_end_matches('/');
    if e.starts_with("http://") || e.starts_with("https://") {
        e.to_string()
    } else if tls {
        format!("https://{e}")
    } else {
        format!("http://{e}")
    }
}
