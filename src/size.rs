//! Byte sizes as operators write them in the config.
//!
//! The Go plugin parses sizes with go-bytesize: a number (decimals allowed)
//! and a case-insensitive unit `B`, `KB`, `MB`, `GB`, `TB`, `PB` or the long
//! forms (`megabytes`), always in binary multiples, so `10MB` is 10 * 2^20.
//! Existing configs must keep their meaning, so we do the same, and also take
//! what the Go plugin refused but people write anyway: a plain byte count,
//! one-letter units (`500M`) and IEC units (`8MiB`).

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// Why a size did not parse; never echoes more than the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeError {
    /// Not a number followed by a unit.
    Malformed,
    /// The unit is not one of ours.
    Unit(String),
    /// More bytes than 64 bits hold.
    TooLarge,
}

impl std::fmt::Display for SizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeError::Malformed => f.write_str("expected a size such as 8MB, 1GB or 10485760"),
            SizeError::Unit(unit) => write!(f, "unrecognised size unit {unit:?} (use B, KB, MB, GB or TB)"),
            SizeError::TooLarge => f.write_str("size is too large"),
        }
    }
}

impl std::error::Error for SizeError {}

/// Parses `text` into bytes; the error says what was wrong without echoing
/// anything but the unit.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.matches('.').count() > 1 || number == "." {
        return Err(SizeError::Malformed);
    }
    let multiplier = unit_multiplier(unit.trim()).ok_or_else(|| SizeError::Unit(unit.trim().to_string()))?;
    let value = if let Some((whole, frac)) = number.split_once('.') {
        // Exact decimal arithmetic: 1.5GB is exactly 1.5 * 2^30.
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| SizeError::TooLarge)? };
        let digits = frac.len().min(9) as u32;
        let frac: u64 =
            if digits == 0 { 0 } else { frac[..digits as usize].parse().map_err(|_| SizeError::Malformed)? };
        let scale = 10u64.pow(digits);
        let whole_bytes = whole.checked_mul(multiplier);
        let frac_bytes = (u128::from(frac) * u128::from(multiplier) / u128::from(scale)) as u64;
        whole_bytes.and_then(|w| w.checked_add(frac_bytes))
    } else {
        number.parse::<u64>().ok().and_then(|n| n.checked_mul(multiplier))
    };
    value.ok_or(SizeError::TooLarge)
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    let u = unit.to_ascii_lowercase();
    let m = match u.as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kb" | "kib" | "kilobyte" | "kilobytes" => KIB,
        "m" | "mb" | "mib" | "megabyte" | "megabytes" => MIB,
        "g" | "gb" | "gib" | "gigabyte" | "gigabytes" => GIB,
        "t" | "tb" | "tib" | "terabyte" | "terabytes" => GIB * 1024,
        "p" | "pb" | "pib" | "petabyte" | "petabytes" => GIB * 1024 * 1024,
        "e" | "eb" | "eib" | "exabyte" | "exabytes" => GIB * 1024 * 1024 * 1024,
        _ => return None,
    };
    Some(m)
}

/// `1536` -> `1.5 KiB`, for log lines.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_plugin_forms() {
        assert_eq!(parse_size("10MB"), Ok(10 * MIB));
        assert_eq!(parse_size("10GB"), Ok(10 * GIB));
        assert_eq!(parse_size("500mb"), Ok(500 * MIB));
        assert_eq!(parse_size("1.5GB"), Ok(GIB + GIB / 2));
        assert_eq!(parse_size("10 MB"), Ok(10 * MIB));
        assert_eq!(parse_size("2 megabytes"), Ok(2 * MIB));
        assert_eq!(parse_size("1TB"), Ok(1024 * GIB));
        assert_eq!(parse_size("1EB"), Ok(1 << 60));
        assert_eq!(parse_size("2 exabytes"), Ok(2 << 60));
        assert_eq!(parse_size("16EB"), Err(SizeError::TooLarge));
    }

    #[test]
    fn forms_beyond_the_go_plugin() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("10485760"), Ok(10 * MIB));
        assert_eq!(parse_size("500M"), Ok(500 * MIB));
        assert_eq!(parse_size("8MiB"), Ok(8 * MIB));
        assert_eq!(parse_size("1g"), Ok(GIB));
        assert_eq!(parse_size(".5KB"), Ok(512));
    }

    #[test]
    fn rejects() {
        for bad in ["", "MB", "ten MB", "10XB", "1.2.3MB", "-5MB", "99999999999999999999", "18446744073709551615KB"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human(5), "5 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(8 * MIB), "8.0 MiB");
    }
}
