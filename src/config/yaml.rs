//! Reading YAML the plugin did not write (the config file, a backup's
//! `_config.yaml` fetched from the bucket) safely: bounded in size and
//! nesting before the parser sees it (deep nesting costs the parser
//! quadratic time), and with error messages that name a position, never a
//! value (a key file passed as the config must not end up on stderr).

/// Nesting deeper than this is refused before parsing; gpbackup's files
/// nest four levels at most.
const MAX_DEPTH: usize = 32;

/// Refuses `text` when it is larger than `max_bytes` or nests deeper than
/// [`MAX_DEPTH`] (flow collections or indentation levels).
pub fn guard(text: &str, max_bytes: usize) -> Result<(), String> {
    if text.len() > max_bytes {
        return Err(format!("{} bytes, more than the {max_bytes} a file of this kind may have", text.len()));
    }
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let body = line.trim_start_matches([' ', '-']);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while indents.last().is_some_and(|&i| i >= indent) {
            indents.pop();
        }
        indents.push(indent);
        let flow = flow_depth(body);
        if indents.len() + flow > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
    }
    Ok(())
}

/// The deepest `[`/`{` nesting on a line, outside quotes and comments.
fn flow_depth(line: &str) -> usize {
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A parser error as one line with its position, anything quoted in it
/// (a key or a value) left out.
pub fn describe(err: &serde_yaml::Error) -> String {
    let text = err.to_string();
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' | '`' => {
                if !quoted {
                    out.push('…');
                }
                quoted = !quoted;
            }
            c if !quoted => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_large_files_are_refused_before_parsing() {
        assert!(guard("a:\n  b:\n    c: [1, {d: 2}]\n", 1000).is_ok());
        let flow = format!("a: {}{}", "[".repeat(40), "]".repeat(40));
        assert!(guard(&flow, 1 << 20).unwrap_err().contains("nested"));
        let block: String = (0..40).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert!(guard(&block, 1 << 20).unwrap_err().contains("nested"));
        assert!(guard("x: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n", 1000).is_ok(), "quoted brackets are text");
        assert!(guard(&"a".repeat(2000), 1000).unwrap_err().contains("2000 bytes"));
        // A long list at one level is not deep.
        let list: String = (0..1000).map(|i| format!("- t{i}\n")).collect();
        assert!(guard(&format!("tables:\n{list}"), 1 << 20).is_ok());
    }

    #[test]
    fn errors_never_quote_the_text() {
        let err = serde_yaml::from_str::<std::collections::BTreeMap<String, String>>("c2VjcmV0").unwrap_err();
        let line = describe(&err);
        assert!(!line.contains("c2VjcmV0") && line.contains("expected a map"), "{line}");
    }
}
