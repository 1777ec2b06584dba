//! `check CFG`: a preflight an operator runs before the first backup.
//!
//! In order, stopping at the first failure with a non-zero exit and one
//! precise line on stderr: the config parses and validates; the settings in
//! effect (endpoint, addressing style, TLS, storage classes, encryption);
//! where the credentials come from (never the secret); the bucket exists
//! and lists; then a probe object per storage class in use is written,
//! looked up (the storage class the service recorded), read back and
//! compared (unless it is archived, which is reported), and deleted.
//! What passes is printed on stdout as it happens.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::store::{self, ObjectClass, Store};

use super::load_config;

pub async fn run(config_path: &Path) -> Result<()> {
    let config = load_config(config_path)?;
    say("config", &format!("{}: valid", config_path.display()));
    let store = store::open(&config).await?;
    say("bucket", &config.bucket);
    say("folder", &config.folder);
    for (what, value) in store.settings() {
        say(what, &value);
    }
    let source = store.credentials_source().await.map_err(|e| e.context("check: credentials"))?;
    say("credentials", &source);

    let folder = format!("{}/", config.folder);
    store.list_page(&folder, None, Some(1)).await.map_err(|e| e.context("check: bucket"))?;
    say("bucket check", &format!("{} exists and can be listed", store.url("")));
    for (what, value) in store.preflight(false).await.map_err(|e| e.context("check"))? {
        say(what, &value);
    }

    let mut probes = vec![("data", ObjectClass::Payload)];
    if config.storage_class != config.metadata_storage_class {
        probes.push(("metadata", ObjectClass::Metadata));
    }
    for (name, class) in probes {
        let key = format!("{}/.{}_check_{}_{name}", config.folder, crate::PLUGIN_NAME, std::process::id());
        let result = probe(&*store, &key, name, class).await;
        // Never leave the probe behind, whatever failed.
        let deleted = store.delete_many(std::slice::from_ref(&key)).await;
        result?;
        deleted.map_err(|e| e.context(&format!("check: delete the {name} probe")))?;
        say(&format!("{name} probe"), &format!("deleted {}", store.url(&key)));
    }
    say("result", "all checks passed");
    Ok(())
}

/// Writes, looks up and reads back one probe object.
async fn probe(store: &dyn Store, key: &str, name: &str, class: ObjectClass) -> Result<()> {
    let payload = format!("{} check probe, pid {}\n", crate::PLUGIN_NAME, std::process::id());
    let step = |what: &str| format!("check: {what} the {name} probe {}", store.url(key));
    store.put(key, Bytes::from(payload.clone()), &Vec::new(), class).await.map_err(|e| e.context(&step("write")))?;
    say(&format!("{name} probe"), &format!("wrote {}", store.url(key)));
    let state = store.object_state(key).await.map_err(|e| e.context(&step("look up")))?;
    say(&format!("{name} probe"), &format!("stored as {}", state.storage));
    if !state.readiness.readable() {
        say(
            &format!("{name} probe"),
            &format!("not read back: {} objects are readable only after a restore (thaw)", state.storage),
        );
        return Ok(());
    }
    let fetched = store.get_range(key, 0..payload.len() as u64).await.map_err(|e| e.context(&step("read")))?;
    if fetched.data != payload.as_bytes() {
        return Err(Error::Integrity(format!(
            "{}: read back {} bytes that differ from the {} written",
            step("read"),
            fetched.data.len(),
            payload.len()
        )));
    }
    say(&format!("{name} probe"), "read back identical");
    Ok(())
}

fn say(what: &str, value: &str) {
    let line = format!("{what:<22} {value}");
    crate::log::info(&format!("check: {what}: {value}"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", crate::log::redact(&line));
    let _ = out.flush();
}
