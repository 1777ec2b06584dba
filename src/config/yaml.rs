//! Reading YAML the plugin did not write (the config file, a backup's
//! `_config.yaml` and TOC fetched from the bucket) safely: bounded in size
//! and nesting before the parser sees it (deep flow nesting costs libyaml
//! quadratic time), and with error messages that name a position, never a
//! value (a key file passed as the config must not end up on stderr).
//!
//! The nesting is measured by a small scanner that knows as much YAML as
//! counting needs: quoted scalars (backslash escapes in double quotes, `''`
//! in single quotes, both across lines), plain scalars that hold quotes and
//! brackets (text in block context, as yaml.v2 writes a table named
//! `t[1]`), comments (a `#` after a space), block scalars (`|`, `>`), and
//! flow collections across lines. Where it cannot tell, it counts a level
//! too many rather than one too few: a refusal makes a backup unreadable
//! (kept, and said so), a miss would let the parser spin.

/// Nesting deeper than this is refused before parsing; gpbackup's files
/// nest four levels at most.
const MAX_DEPTH: usize = 32;

/// Refuses `text` when it is larger than `max_bytes` or nests deeper than
/// [`MAX_DEPTH`] (block indentation levels and sequence entries plus flow
/// collections).
pub fn guard(text: &str, max_bytes: usize) -> Result<(), String> {
    if text.len() > max_bytes {
        return Err(format!("{} bytes, more than the {max_bytes} a file of this kind may have", text.len()));
    }
    let mut scan = Scanner::default();
    for line in text.lines() {
        scan.line(line)?;
    }
    Ok(())
}

/// A quoted scalar left open at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
}

#[derive(Debug, Default)]
struct Scanner {
    /// The columns of the open block levels.
    indents: Vec<usize>,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    quote: Option<Quote>,
    /// Inside a block scalar: lines indented deeper than this are its text.
    block_text_above: Option<usize>,
    /// The next character starts a node (a quote there opens a quoted
    /// scalar; elsewhere it is text).
    at_node: bool,
}

impl Scanner {
    fn depth_check(&self) -> Result<(), String> {
        if self.indents.len() + self.flow > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn push_level(&mut self, column: usize) -> Result<(), String> {
        while self.indents.last().is_some_and(|&i| i >= column) {
            self.indents.pop();
        }
        self.indents.push(column);
        self.depth_check()
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        let chars: Vec<char> = line.chars().collect();
        let leading = chars.iter().take_while(|c| **c == ' ').count();
        if let Some(above) = self.block_text_above {
            if leading == chars.len() || leading > above {
                return Ok(());
            }
            self.block_text_above = None;
        }
        let mut i = 0;
        if self.quote.is_none() && self.flow == 0 {
            // A block line: its indentation and sequence entries.
            if leading == chars.len() || chars[leading] == '#' {
                return Ok(());
            }
            if leading == 0 && (line.starts_with("---") || line.starts_with("...")) {
                self.indents.clear();
                i = 3;
            } else {
                i = leading;
                while i < chars.len() && matches!(chars[i], '-' | '?') && chars.get(i + 1).is_none_or(|c| *c == ' ') {
                    self.push_level(i)?;
                    i += 1;
                    while chars.get(i) == Some(&' ') {
                        i += 1;
                    }
                }
                if i < chars.len() {
                    self.push_level(i)?;
                }
            }
            self.at_node = true;
        }
        let node_column = self.indents.last().copied().unwrap_or(0);
        let mut prev_space = true;
        while i < chars.len() {
            let c = chars[i];
            if let Some(quote) = self.quote {
                match (quote, c) {
                    (Quote::Double, '\\') => i += 1,
                    (Quote::Double, '"') => self.quote = None,
                    (Quote::Single, '\'') if chars.get(i + 1) == Some(&'\'') => i += 1,
                    (Quote::Single, '\'') => self.quote = None,
                    _ => {}
                }
                i += 1;
                prev_space = false;
                continue;
            }
            let next = chars.get(i + 1).copied();
            let ends_token = next.is_none_or(|n| n == ' ' || (self.flow > 0 && ",[]{}".contains(n)));
            match c {
                ' ' | '\t' => {
                    prev_space = true;
                    i += 1;
                    continue;
                }
                '#' if prev_space => return Ok(()),
                '"' if self.at_node => {
                    self.quote = Some(Quote::Double);
                    self.at_node = false;
                }
                '\'' if self.at_node => {
                    self.quote = Some(Quote::Single);
                    self.at_node = false;
                }
                '[' | '{' if self.at_node || self.flow > 0 => {
                    self.flow += 1;
                    self.depth_check()?;
                    self.at_node = true;
                }
                ']' | '}' if self.flow > 0 => {
                    self.flow -= 1;
                    self.at_node = false;
                }
                ',' if self.flow > 0 => self.at_node = true,
                '|' | '>' if self.at_node && self.flow == 0 => {
                    // The rest of the line is the header; the text follows.
                    self.block_text_above = Some(node_column);
                    return Ok(());
                }
                '&' | '!' if self.at_node => {
                    // An anchor or a tag: the node follows it.
                    while i < chars.len() && chars[i] != ' ' {
                        i += 1;
                    }
                    continue;
                }
                ':' if ends_token => self.at_node = true,
                '?' | '-' if self.at_node && ends_token => {}
                _ => self.at_node = false,
            }
            prev_space = false;
            i += 1;
        }
        Ok(())
    }
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

    fn deep(text: &str) -> bool {
        guard(text, 1 << 20).is_err_and(|e| e.contains("nested"))
    }

    #[test]
    fn deep_or_large_files_are_refused_before_parsing() {
        assert!(guard("a:\n  b:\n    c: [1, {d: 2}]\n", 1000).is_ok());
        assert!(deep(&format!("a: {}{}", "[".repeat(40), "]".repeat(40))));
        let block: String = (0..40).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert!(deep(&block));
        assert!(guard("x: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n", 1000).is_ok(), "quoted brackets are text");
        assert!(guard(&"a".repeat(2000), 1000).unwrap_err().contains("2000 bytes"));
        // A long list at one level is not deep.
        let list: String = (0..1000).map(|i| format!("- t{i}\n")).collect();
        assert!(guard(&format!("tables:\n{list}"), 1 << 20).is_ok());
    }

    /// What the old line-by-line count got wrong, both ways: text that
    /// looked deep, and nesting it did not see.
    #[test]
    fn quotes_escapes_and_plain_text_are_read_as_yaml_reads_them() {
        let b = "[".repeat(40);
        // gpbackup's TOC for a table whose quoted name holds `"`, a tab and brackets.
        let name = format!("- schema: public\n  name: \"\\\"odd\\\"\\\"name\\t{b}\\\"\"\n  oid: 1\n");
        assert!(guard(&name, 1 << 20).is_ok(), "escaped quotes inside a double-quoted scalar");
        let parsed: serde_yaml::Value = serde_yaml::from_str(&name).unwrap();
        assert_eq!(parsed[0]["name"].as_str().unwrap(), format!("\"odd\"\"name\t{b}\""));
        assert!(guard(&format!("name: 'it''s {b}'\n"), 1000).is_ok(), "'' inside a single-quoted scalar");
        assert!(guard(&format!("name: t{b}\nattributestring: (a, \"b{b}\")\n"), 1000).is_ok(), "plain text");
        assert!(guard(&format!("name: it's {b}\n"), 1000).is_ok(), "a quote inside a plain scalar");
        assert!(guard(&format!("name: x#{b}\n"), 1000).is_ok(), "a # without a space before it is text");
        assert!(guard(&format!("text: |\n  {b}\n  - - - -\nnext: 1\n"), 1000).is_ok(), "a block scalar");
        assert!(guard(&format!("q: \"a\n  {b}\"\n"), 1000).is_ok(), "a quoted scalar across lines");
        // Nesting the old count missed: across lines, after a quote that
        // only looks closed, sequences on one line, after a plain `#`.
        assert!(deep(&format!("a: {}", "[\n".repeat(40))));
        assert!(deep(&format!("a: [\"x\\\"\", {b}]\n")));
        assert!(deep(&format!("{}x\n", "- ".repeat(40))));
        assert!(deep(&format!("a: [x#y, {b}]\n")));
        assert!(deep(&format!("a: [it's, {b}]\n")), "a quote inside a flow plain scalar is text");
        assert!(deep(&format!("t: |\n  text\nu: {b}\n")), "the block scalar ends where its indentation does");
    }

    #[test]
    fn errors_never_quote_the_text() {
        let err = serde_yaml::from_str::<std::collections::BTreeMap<String, String>>("c2VjcmV0").unwrap_err();
        let line = describe(&err);
        assert!(!line.contains("c2VjcmV0") && line.contains("expected a map"), "{line}");
    }
}
