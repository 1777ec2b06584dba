//! The one table of options: every key the plugin config may hold, with
//! its group, whether its value is a secret, its default and its meaning.
//!
//! Everything else about options derives from this table: which keys are
//! known (others are refused by name), which values are redacted, which
//! apply only to a vault, the defaults the parser falls back on, and the
//! option table in the README (checked by a test). Adding an option means
//! a row here, a field in [`super::Config`] and its parsing in `super`.

/// Where an option belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The plugin's own options.
    Plugin,
    /// Options that apply only with `storage: glacier`.
    Vault,
    /// Keys gpbackup and gprestore add to the copy they hand over (or read
    /// themselves); accepted and ignored.
    Injected,
}

/// Which commands use an option: a problem with an option a command does
/// not use does not stop that command (a bad backup option never blocks a
/// restore), as with the Go plugin, which reads each value only when it
/// needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uses {
    /// Every command that talks to the storage.
    All,
    /// Only commands that write (backups, setup for a backup).
    Backup,
    /// Only commands that read back (restores, thaw, setup for a restore).
    Restore,
}

/// What a command is for, which decides the options whose problems stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A backup: every option but the restore-only ones.
    Backup,
    /// A restore (or a thaw): every option but the backup-only ones.
    Restore,
    /// `check`: every option.
    Check,
    /// Listings, deletes, cleanups, administration: the options of both.
    Other,
}

impl Purpose {
    /// Whether a problem with an option that `uses` stops this command.
    pub fn minds(self, uses: Uses) -> bool {
        matches!((self, uses), (_, Uses::All) | (Purpose::Check, _))
            || (self == Purpose::Backup && uses == Uses::Backup)
            || (self == Purpose::Restore && uses == Uses::Restore)
    }
}

/// What an absent option means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// This value, parsed as if the file held it.
    Value(&'static str),
    /// No value; the text says what happens instead (for the README).
    Text(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub group: Group,
    pub uses: Uses,
    /// Never echoed: redacted in logs, errors and the uploaded config copy.
    pub secret: bool,
    pub default: Default,
    /// The README's "Meaning" column; empty when the option shares the row
    /// of the one above (`connect_timeout`, `read_timeout`).
    pub doc: &'static str,
}

pub static OPTIONS: &[Spec] = &[
    Spec {
        name: "bucket",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("required"),
        doc: "Bucket name; the bucket must exist.",
    },
    Spec {
        name: "folder",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("required"),
        doc: "Prefix inside the bucket. Leading, trailing and doubled slashes are ignored (`/prod//gp/` is `prod/gp`) for uploads, listings and deletes alike.",
    },
    Spec {
        name: "region",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("`us-east-1` with an `endpoint`"),
        doc: "AWS region; also used to sign requests to S3-compatible servers. One of `region` and `endpoint` is required.",
    },
    Spec {
        name: "endpoint",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("AWS"),
        doc: "URL or host of an S3-compatible server. Without a scheme, `https://` or `http://` per `encryption`. Requests to it are path-style (`/bucket/key`) unless `force_path_style: false`, as with the Go plugin.",
    },
    Spec {
        name: "force_path_style",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("`true` with an `endpoint`, `false` on AWS"),
        doc: "`true`: `<endpoint>/<bucket>/<key>`; `false`: virtual-host, `<bucket>.<endpoint host>/<key>`. For an endpoint whose host already names the bucket, give the endpoint without the bucket and `false` (the Go plugin's `remove_duplicate_bucket` is still accepted).",
    },
    Spec {
        name: "aws_access_key_id",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "Static credentials; both or neither. When given, no other source is consulted (no instance-metadata probing). When absent, the standard AWS chain: `AWS_*` environment variables, `~/.aws` profiles (`AWS_PROFILE`), web identity, ECS and EC2 instance roles.",
    },
    Spec {
        name: "aws_secret_access_key",
        group: Group::Plugin,
        uses: Uses::All,
        secret: true,
        default: Default::Text("–"),
        doc: "",
    },
    Spec {
        name: "aws_session_token",
        group: Group::Plugin,
        uses: Uses::All,
        secret: true,
        default: Default::Text("–"),
        doc: "Session token for temporary credentials (needs both keys).",
    },
    Spec {
        name: "encryption",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("on"),
        doc: "`on` or `off`: TLS to the endpoint (as in the Go plugin, this is not server-side encryption).",
    },
    Spec {
        name: "http_proxy",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("environment"),
        doc: "Proxy URL (`http://user:pass@host:port`) for all requests. Without it, `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` apply.",
    },
    Spec {
        name: "no_proxy",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("environment"),
        doc: "Comma-separated hosts, domains (`.internal`) or networks reached without the proxy; added to `NO_PROXY`, and applied to the environment's proxy when `http_proxy` is not set.",
    },
    Spec {
        name: "ca_cert_file",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "PEM file of extra trusted root certificates (a private CA, e.g. MinIO with its own certificates), trusted besides the system's. Needs TLS.",
    },
    Spec {
        name: "connect_timeout",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("10s"),
        doc: "Longest wait for a connection, and for the first byte of a response, before the attempt is retried (`retry_max_attempts`). Durations: `30s`, `5m`, `1h30m`, `2d`, `500ms`; a plain number is seconds.",
    },
    Spec {
        name: "read_timeout",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("5m"),
        doc: "",
    },
    Spec {
        name: "storage_class",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("bucket default"),
        doc: "Storage class of table data, the objects `backup_data` writes: `STANDARD`, `STANDARD_IA`, `ONEZONE_IA`, `INTELLIGENT_TIERING`, `GLACIER_IR`, `GLACIER` (Flexible Retrieval), `DEEP_ARCHIVE`, `REDUCED_REDUNDANCY`, `EXPRESS_ONEZONE`, `OUTPOSTS`, `SNOW` (case-insensitive). `GLACIER` and `DEEP_ARCHIVE` are archived: see [Cold storage](#cold-storage-and-thaw). Servers that refuse a class (InvalidStorageClass) fail at `setup_plugin_for_backup` with a message naming the option and the server.",
    },
    Spec {
        name: "metadata_storage_class",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("bucket default"),
        doc: "Storage class of everything else (metadata, TOCs, config, report, the integrity manifests): instant-access classes only, because gprestore and `gpbackup --incremental` read these files at once.",
    },
    Spec {
        name: "server_side_encryption",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("bucket default"),
        doc: "`AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `aws:kms:dsse` (dual-layer), on every object written.",
    },
    Spec {
        name: "sse_kms_key_id",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("AWS managed key"),
        doc: "KMS key id, ARN or alias for `aws:kms`.",
    },
    Spec {
        name: "sse_bucket_key",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("bucket setting"),
        doc: "`true`/`false`: S3 Bucket Key for `aws:kms` (far fewer KMS requests).",
    },
    Spec {
        name: "sse_customer_key_file",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "SSE-C: file holding the 256-bit key (32 raw bytes, or their base64); never on the command line. The key (with its MD5) is sent with every upload, part, completion, ranged download and lookup, and is redacted from logs and errors. Excludes `server_side_encryption`. Losing the key loses the backups.",
    },
    Spec {
        name: "encryption_recipients",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("– (no client-side encryption)"),
        doc: "Client-side encryption: age X25519 public keys (`age1...`), or files of them (one a line, `#` comments), separated by commas or spaces. Every object written (table data and metadata) is encrypted in the [age format](#client-side-encryption) to all of them. A malformed key fails the backup at `setup_plugin_for_backup`. Public keys: safe on every host.",
    },
    Spec {
        name: "encryption_identity_file",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Text("–"),
        doc: "Client-side encryption: file of age private keys (`AGE-SECRET-KEY-1...`, as `age-keygen` writes them) a restore decrypts with; needed only where restores run; refused when its group or others may read it (`chmod 600`). With it, every object restored must be encrypted to one of its keys, carry its integrity record and be [bound to its place](#client-side-encryption), and authenticates before a byte is written. The keys are redacted from logs and errors.",
    },
    Spec {
        name: "encryption_signing_key_file",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("– (objects unsigned)"),
        doc: "Client-side encryption, writer authentication: file of an Ed25519 private key (PKCS#8 PEM: `openssl genpkey -algorithm ed25519 -out FILE`), on the backup hosts; mode 0600 like the identity. Every encrypted object's header carries its signature over the object's binding and its file key. Needs `encryption_recipients`. Redacted from logs and errors.",
    },
    Spec {
        name: "encryption_verify_key",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Text("– (signatures not required)"),
        doc: "Client-side encryption, writer authentication: Ed25519 public keys (the base64 line `MCowBQYDK2VwAyEA...` of `openssl pkey -in FILE -pubout`, or a file of that PEM), separated by commas or spaces, where restores run. With it every object restored (and read by `verify --deep`) must carry a valid signature by one of them. Needs `encryption_identity_file`.",
    },
    Spec {
        name: "object_tags",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("–"),
        doc: "Tags on every object written, `k1=v1&k2=v2` (at most 10; letters, digits, spaces and `_ . : / = + - @`), e.g. for lifecycle rules.",
    },
    Spec {
        name: "checksums",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Text("`crc64nvme` on AWS (no `endpoint`), `crc32c` with an `endpoint`"),
        doc: "Request checksums: `crc32c` (a CRC32C header on every upload and part, unsigned payloads); `crc64nvme` (the same with CRC-64/NVME, and multipart objects stored with S3's full-object CRC-64/NVME, so an object carries its own proof even without its manifest); `md5` or `none` for legacy S3-compatible servers that refuse the newer checksum headers: exactly what the Go plugin sends (Content-MD5 on deletes, with `md5` also on uploads and parts; signed payloads). The plugin's own integrity records apply in every mode.",
    },
    Spec {
        name: "verify",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("strict"),
        doc: "A multipart object whose `.gpbackup_manifest` sidecar is missing (a copy that skipped it), and, with `encryption_identity_file`, an object without its integrity record (a copy that dropped its metadata) or without a binding (written by the previous release): `strict` refuses to restore it; `available` restores it with the checks still possible (S3's stored full-object CRC-64/NVME where the server has one, else its size only; the AEAD tags always) and a warning in the log.",
    },
    Spec {
        name: "restore_tier",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("Standard"),
        doc: "`thaw`'s restore tier: `Expedited` (minutes, GLACIER only), `Standard` (hours), `Bulk` (cheapest, up to 48 h for Deep Archive).",
    },
    Spec {
        name: "restore_days",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("7"),
        doc: "Days a restored copy stays readable (1–3650).",
    },
    Spec {
        name: "restore_auto",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("false"),
        doc: "`true`: `setup_plugin_for_restore` requests the restores of an archived backup itself.",
    },
    Spec {
        name: "restore_wait_timeout",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("0"),
        doc: "How long `setup_plugin_for_restore` waits for restores under way before failing (`0`: fail at once, naming `thaw`).",
    },
    Spec {
        name: "storage",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("s3"),
        doc: "`glacier`: table data goes to a Glacier vault, everything else stays in the bucket; see [Glacier vaults](#glacier-vaults). The options below apply only then.",
    },
    Spec {
        name: "vault",
        group: Group::Vault,
        uses: Uses::All,
        secret: false,
        default: Default::Text("required with `storage: glacier`"),
        doc: "Vault name (1–255 of `a-z A-Z 0-9 _ - .`); `setup_plugin_for_backup` creates it when missing.",
    },
    Spec {
        name: "account_id",
        group: Group::Vault,
        uses: Uses::All,
        secret: false,
        default: Default::Value("-"),
        doc: "The vault's account: `-` (the signing account) or 12 digits without dashes.",
    },
    Spec {
        name: "glacier_endpoint",
        group: Group::Vault,
        uses: Uses::All,
        secret: false,
        default: Default::Text("AWS Glacier in `region`"),
        doc: "URL or host of the Glacier service (an emulator, a VPC endpoint); without a scheme, per `encryption`.",
    },
    Spec {
        name: "vault_part_size",
        group: Group::Vault,
        uses: Uses::Backup,
        secret: false,
        default: Default::Value("16MB"),
        doc: "Part size of multipart archives: 1MB times a power of two, up to 4096MB. Archives have at most 10,000 parts (16MB: 156 GiB per data file); a stream that fits in one part is one UploadArchive.",
    },
    Spec {
        name: "object_lock_mode",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("no lock"),
        doc: "S3 Object Lock on every object a backup writes (table data, metadata, manifests): `governance` (users with `s3:BypassGovernanceRetention` may shorten it) or `compliance` (nobody can, not even the root user). Needs `object_lock_retention` and a bucket with versioning and Object Lock; each lock is read back after the write, and a lock that cannot be confirmed fails the backup. See [Object Lock](#s3-object-lock-immutable-backups).",
    },
    Spec {
        name: "object_lock_retention",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Text("–"),
        doc: "How long each object stays locked from its write: `30d`, `1y`, `12h` (at most 10 years).",
    },
    Spec {
        name: "object_lock_legal_hold",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Value("false"),
        doc: "`true`: every object written also gets a legal hold (no expiry; `legal-hold off` lifts it).",
    },
    Spec {
        name: "on_retention_locked",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("fail"),
        doc: "When a retention lock (Object Lock, a legal hold, or a vault's lock policy) refuses a delete: `fail` (delete nothing more, exit 1, say until when) or `defer` (keep what is locked for `purge`; an Object Lock backup is kept whole until none of it is locked).",
    },
    Spec {
        name: "backup_multipart_chunksize",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Value("8MB"),
        doc: "First upload part size, 5MB–5GB (0: the default; outside the range: clamped, with a warning). Parts double every 900 parts, so any start reaches 5 TiB within S3's 10,000 parts.",
    },
    Spec {
        name: "backup_max_concurrent_requests",
        group: Group::Plugin,
        uses: Uses::Backup,
        secret: false,
        default: Default::Value("6"),
        doc: "Upload parts in flight per process (1–64; 0: the default; more: 64, with a warning).",
    },
    Spec {
        name: "restore_multipart_chunksize",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("8MB"),
        doc: "Size of each ranged download request, 64KB–5GB (0: the default; outside: clamped, with a warning).",
    },
    Spec {
        name: "restore_max_concurrent_requests",
        group: Group::Plugin,
        uses: Uses::Restore,
        secret: false,
        default: Default::Value("6"),
        doc: "Ranged downloads in flight per process (1–64; 0: the default; more: 64, with a warning).",
    },
    Spec {
        name: "remove_duplicate_bucket",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("false"),
        doc: "The Go plugin's option (its archive repository, 2024; release 1.10.1 did the same for every endpoint that is not a bare IP address, and a later commit reverted it): `true` when the endpoint's host already selects the bucket: requests go to `<endpoint>/<key>`. Without an endpoint it changes nothing (AWS names the bucket in the host). Prefer `force_path_style: false`.",
    },
    Spec {
        name: "retry_max_attempts",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("10"),
        doc: "Attempts per request (1–100), the first included, for throttling (503 SlowDown, 429), other 5xx (but 501 NotImplemented, an answer), refused or reset connections, timeouts and responses cut short.",
    },
    Spec {
        name: "retry_time_budget",
        group: Group::Plugin,
        uses: Uses::All,
        secret: false,
        default: Default::Value("10m"),
        doc: "No retry of a request starts later than this after its first attempt (`90s`, `5m`, `1h`; bare numbers are seconds): every request of a stream of any length has its retries, and a dead service fails a call in bounded time.",
    },
    Spec {
        name: "restore_subset",
        group: Group::Injected,
        uses: Uses::All,
        secret: false,
        default: Default::Value("off"),
        doc: "Read by gprestore: `on` makes filtered restores of uncompressed single-data-file backups call `restore_data_subset`.",
    },
    Spec {
        name: "pgport",
        group: Group::Injected,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "Injected by gpbackup/gprestore; accepted and ignored.",
    },
    Spec {
        name: "backup_plugin_version",
        group: Group::Injected,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "",
    },
    Spec {
        name: "replication",
        group: Group::Injected,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "",
    },
    Spec {
        name: "remote_password_encryption",
        group: Group::Injected,
        uses: Uses::All,
        secret: false,
        default: Default::Text("–"),
        doc: "",
    },
    Spec {
        name: "password_encryption",
        group: Group::Injected,
        uses: Uses::All,
        secret: false,
        default: Default::Text("off"),
        doc: "Read by gpbackup too: `on` makes gpbackup add the plugin's key from `$COORDINATOR_DATA_DIRECTORY/.encrypt` to every host's config copy, under the plugin's name; `aws_secret_access_key`, `aws_session_token` and the SSE-C key file must then be sealed by `encrypt-password`. See [Sealed credentials](#sealed-credentials-password_encryption).",
    },
    Spec {
        name: "gpbackup_s3_plugin",
        group: Group::Injected,
        uses: Uses::All,
        secret: true,
        default: Default::Text("–"),
        doc: "",
    },
];

/// The spec of `name`, if it is an option at all.
pub fn spec(name: &str) -> Option<&'static Spec> {
    OPTIONS.iter().find(|s| s.name == name)
}

/// The default value of `name` (an option with [`Default::Value`]).
pub fn default_value(name: &str) -> Option<&'static str> {
    match spec(name)?.default {
        Default::Value(v) => Some(v),
        Default::Text(_) => None,
    }
}

/// The names of the secret options.
pub fn secret_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().filter(|s| s.secret).map(|s| s.name)
}

/// The names of the options that apply only to a vault.
pub fn vault_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().filter(|s| s.group == Group::Vault).map(|s| s.name)
}

/// The README's option table, as Markdown (header included).
pub fn readme_table() -> String {
    let mut rows: Vec<(Vec<&str>, String, &str)> = Vec::new();
    for spec in OPTIONS {
        let default = match spec.default {
            Default::Value(v) => format!("`{v}`"),
            Default::Text(t) => t.to_string(),
        };
        match rows.last_mut() {
            Some((names, defaults, _)) if spec.doc.is_empty() => {
                names.push(spec.name);
                if !defaults.split(", ").any(|d| d == default) {
                    defaults.push_str(&format!(", {default}"));
                }
            }
            _ => rows.push((vec![spec.name], default, spec.doc)),
        }
    }
    let mut out = String::from("| Option | Default | Meaning |\n| --- | --- | --- |\n");
    for (names, default, doc) in rows {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&format!("| {} | {default} | {doc} |\n", names.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_rows_start_with_a_doc() {
        let mut names: Vec<&str> = OPTIONS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OPTIONS.len());
        assert!(!OPTIONS[0].doc.is_empty());
        assert!(secret_names().any(|n| n == "aws_secret_access_key"));
        assert!(secret_names().any(|n| n == crate::PLUGIN_NAME));
        assert_eq!(vault_names().count(), 4);
    }

    /// The README's option table is this table: an option documented is an
    /// option accepted, with the default the parser uses.
    #[test]
    fn the_readme_table_is_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let expected = readme_table();
        // UPDATE_README=1 writes the table into the README (between its
        // header and the first blank line after it).
        if std::env::var_os("UPDATE_README").is_some() && !readme.contains(&expected) {
            let start = readme.find("| Option | Default | Meaning |").expect("the README has an option table");
            let end = start + readme[start..].find("\n\n").expect("a blank line after the table") + 1;
            std::fs::write(path, format!("{}{expected}{}", &readme[..start], &readme[end..])).unwrap();
            return;
        }
        assert!(
            readme.contains(&expected),
            "README.md's option table differs from src/config/options.rs; it should read (UPDATE_README=1 writes it):\n{expected}"
        );
    }
}
