//! The offsets file of `restore_data_subset`.
//!
//! gpbackup_helper writes one ASCII line, usually without a trailing newline:
//! `N s1 e1 s2 e2 ... sN eN`, the byte ranges of the N tables to restore from
//! an uncompressed single-data-file backup, start inclusive, end exclusive.
//! A table missing from the TOC appears as `0 0`.

use std::ops::Range;

use crate::error::Error;

/// Parses the file's text; every problem names the offsets file.
pub fn parse(text: &str, file: &str) -> Result<Vec<Range<u64>>, Error> {
    let bad = |why: String| Error::usage(format!("offsets file {file}: {why}"));
    let mut numbers = Vec::new();
    for (i, word) in text.split_ascii_whitespace().enumerate() {
        let n: u64 = word
            .parse()
            .map_err(|_| bad(format!("word {} ({:?}) is not a non-negative whole number", i + 1, truncate(word))))?;
        numbers.push(n);
    }
    let Some((&count, pairs)) = numbers.split_first() else {
        return Err(bad("it is empty; expected `N s1 e1 ... sN eN`".to_string()));
    };
    if pairs.len() as u64 != count.saturating_mul(2) {
        return Err(bad(format!("it announces {count} ranges but holds {} numbers after the count", pairs.len())));
    }
    let mut ranges = Vec::with_capacity(pairs.len() / 2);
    for (i, pair) in pairs.chunks(2).enumerate() {
        let (start, end) = (pair[0], pair[1]);
        if start > end {
            return Err(bad(format!("range {} starts at {start}, after its end {end}", i + 1)));
        }
        ranges.push(start..end);
    }
    Ok(ranges)
}

fn truncate(word: &str) -> String {
    word.chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpbackup_forms() {
        assert_eq!(parse("1 3 10", "f").unwrap(), vec![3..10]);
        assert_eq!(parse("2 0 700000 900000 900001", "f").unwrap(), vec![0..700000, 900000..900001]);
        assert_eq!(parse("3 0 0 5 9 9 12\n", "f").unwrap(), vec![0..0, 5..9, 9..12]);
        assert_eq!(parse("0", "f").unwrap(), Vec::<Range<u64>>::new());
        assert_eq!(parse("  1\t3  10  ", "f").unwrap(), vec![3..10]);
    }

    #[test]
    fn rejects_with_the_file_named() {
        for (text, needle) in [
            ("", "empty"),
            ("1 3", "announces 1 ranges but holds 1"),
            ("2 1 2", "announces 2"),
            ("1 3 10 11", "holds 3"),
            ("1 x 10", "word 2"),
            ("1 -3 10", "word 2"),
            ("1 10 3", "starts at 10, after its end 3"),
            ("1.5 3 4", "word 1"),
            ("99999999999999999999999 1 2", "word 1"),
        ] {
            let e = parse(text, "/tmp/gprestore_offsets_1").unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("/tmp/gprestore_offsets_1"), "{text:?}: {e}");
        }
    }
}
