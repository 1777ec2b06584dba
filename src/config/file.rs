//! The config file's shape, before any option is read: a YAML map of
//! exactly `executablepath` and `options`, every option a single value,
//! each kept as the text the file holds.

use std::collections::BTreeMap;

use super::yaml;
use crate::error::Error;

/// `executablepath`, the options as strings, and the problems found.
pub(super) type FileParts = (String, BTreeMap<String, String>, Vec<String>);

/// The largest config file read (gpbackup's are a few hundred bytes).
const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The YAML file's two keys: `executablepath` and the `options` map, each
/// value as the text the file holds (as Go's yaml.v2 decodes into strings:
/// `1.10` stays `1.10`, `0x1F` stays `0x1F`; only a null is empty), with
/// the structural problems found.
pub(super) fn read_file(text: &str) -> Result<FileParts, Error> {
    let invalid = |why: String| Error::config(format!("invalid YAML: {why}"));
    yaml::guard(text, MAX_CONFIG_BYTES).map_err(|why| invalid(format!("the file is {why}")))?;
    // First the structure, from which nothing is ever quoted...
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| invalid(yaml::describe(&e)))?;
    let serde_yaml::Value::Mapping(top) = value else {
        return Err(invalid("a plugin config is a map with the keys executablepath and options".to_string()));
    };
    let mut problems = Vec::new();
    let mut executable = None;
    let mut options = None;
    for (k, v) in top {
        match k.as_str() {
            Some("executablepath") => executable = Some(v),
            Some("options") => options = Some(v),
            Some(other) => {
                return Err(invalid(format!("unknown top-level key {other} (only executablepath and options)")));
            }
            None => return Err(invalid("a top-level key is not a string".to_string())),
        }
    }
    let mut nulls = Vec::new();
    match options {
        None | Some(serde_yaml::Value::Null) => problems.push("options is required (a map of option: value)".into()),
        Some(serde_yaml::Value::Mapping(mapping)) => {
            for (k, v) in mapping {
                let Some(key) = scalar_key(&k) else {
                    problems.push("options has a key that is not a string".to_string());
                    continue;
                };
                match v {
                    serde_yaml::Value::Null => nulls.push(key),
                    serde_yaml::Value::String(_) | serde_yaml::Value::Number(_) | serde_yaml::Value::Bool(_) => {}
                    _ => problems.push(format!("option {key} must be a single value, not a list or map")),
                }
            }
        }
        Some(_) => problems.push("options must be a map of option: value".to_string()),
    }
    let executable_ok = match &executable {
        Some(serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) | serde_yaml::Value::Tagged(_)) => {
            problems.push("executablepath must be a string".to_string());
            false
        }
        Some(serde_yaml::Value::Null) | None => {
            problems.push("executablepath is required and cannot be empty".to_string());
            false
        }
        Some(_) => true,
    };
    if !problems.is_empty() {
        return Ok((String::new(), BTreeMap::new(), problems));
    }
    // ...then the scalars' text, now that every value is known to be one.
    #[derive(serde::Deserialize)]
    struct Text {
        executablepath: Option<String>,
        #[serde(default)]
        options: BTreeMap<String, String>,
    }
    let text: Text = serde_yaml::from_str(text).map_err(|e| invalid(yaml::describe(&e)))?;
    let mut map = text.options;
    for key in nulls {
        map.insert(key, String::new());
    }
    let executable_path = text.executablepath.filter(|_| executable_ok).unwrap_or_default();
    if executable_path.is_empty() {
        problems.push("executablepath is required and cannot be empty".to_string());
    }
    Ok((executable_path, map, problems))
}

/// An option's name: a plain or quoted scalar.
fn scalar_key(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
