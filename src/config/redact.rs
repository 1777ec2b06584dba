//! The copy of the config gpbackup uploads with every backup
//! (`gpbackup_<TS>_plugin_config.yaml`), without its secrets.
//!
//! The copy is parsed as YAML and written back with every secret replaced,
//! so every form YAML allows (flow style, quoted keys, a value on the next
//! line, block scalars) is covered and the result is still valid YAML.
//! gpbackup only ever downloads this file back whole (for incremental
//! backups) and never reads the secrets from it. A copy that does not parse
//! is refused rather than uploaded as it is.

use serde_yaml::Value;

use super::options;

/// What a secret value is replaced with.
pub const MASK: &str = "********";

/// `text` with every secret option's value, and the password of any proxy
/// URL, replaced by [`MASK`]; then any other occurrence of the `known`
/// secret values too.
pub fn redact_copy(text: &str, known: &[String]) -> Result<String, String> {
    super::yaml::guard(text, 1 << 20)?;
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| super::yaml::describe(&e))?;
    redact_value(&mut value, known);
    serde_yaml::to_string(&value).map_err(|e| e.to_string())
}

fn redact_value(value: &mut Value, known: &[String]) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                match k.as_str() {
                    Some(name) if options::secret_names().any(|s| s == name) => *v = Value::String(MASK.to_string()),
                    Some("http_proxy") => {
                        if let Value::String(url) = v {
                            *url = without_password(url);
                        }
                    }
                    _ => redact_value(v, known),
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| redact_value(v, known)),
        Value::Tagged(tagged) => redact_value(&mut tagged.value, known),
        Value::String(text) => {
            for secret in known.iter().filter(|s| !s.is_empty()) {
                *text = text.replace(secret.as_str(), MASK);
            }
        }
        _ => {}
    }
}

/// `http://user:pass@host` -> `http://user:********@host`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(MASK));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL: whatever it holds may be a secret.
        Err(_) => MASK.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
    }

    #[test]
    fn every_yaml_form_is_redacted_and_stays_yaml() {
        let cases = [
            "executablepath: /x\noptions:\n  aws_secret_access_key: TOPSECRET\n  bucket: b\n",
            "executablepath: /x\noptions: {bucket: b, aws_secret_access_key: TOPSECRET}\n",
            "executablepath: /x\noptions:\n  \"aws_secret_access_key\": 'TOPSECRET'\n",
            "executablepath: /x\noptions:\n  aws_secret_access_key:\n    TOPSECRET\n  bucket: b\n",
            "executablepath: /x\noptions:\n  aws_session_token: |\n    TOPSECRET\n",
            "executablepath: /x\noptions:\n  gpbackup_s3_plugin: TOPSECRET\n",
            "executablepath: /x\noptions:\n  http_proxy: http://me:TOPSECRET@proxy:3128\n",
        ];
        for text in cases {
            let out = redact_copy(text, &[]).unwrap();
            assert!(!out.contains("TOPSECRET"), "{text:?} -> {out}");
            let value = parses(&out);
            assert_eq!(value["executablepath"].as_str(), Some("/x"), "{out}");
        }
        let out = redact_copy(cases[6], &[]).unwrap();
        assert!(out.contains("http://me:********@proxy:3128"), "{out}");
        // Other options keep their values; a known secret is caught anywhere.
        let out =
            redact_copy("executablepath: /x\noptions:\n  bucket: b\n  folder: KNOWN\n", &["KNOWN".into()]).unwrap();
        assert_eq!(parses(&out)["options"]["bucket"].as_str(), Some("b"));
        assert!(!out.contains("KNOWN"));
        assert!(redact_copy("executablepath: [\n", &[]).is_err());
    }
}
