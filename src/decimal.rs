//! Exact decimal numbers as scaled `i128` integers: parsing the strict text form of the feeds
//! (`-?[0-9]+(\.[0-9]+)?`, never through a float) and writing fixed-scale text for reports.
//! Money in this crate is always an `i128` count of 10^-scale units; the scale travels with
//! the column, not with each value.

/// Why a decimal cell was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not of the form `-?[0-9]+(\.[0-9]+)?`, or more fraction digits than allowed.
    Syntax,
    /// Well-formed, but too large to hold (more than 30 integer digits).
    TooLarge,
}

/// Parses `text` exactly into units of 10^-`scale`, allowing at most `scale` fraction digits.
pub fn parse(text: &str, scale: u32) -> Result<i128, DecimalError> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !all_digits(int_part) {
        return Err(DecimalError::Syntax);
    }
    let frac = match frac_part {
        Some(f) if !all_digits(f) => return Err(DecimalError::Syntax),
        Some(f) if f.len() > scale as usize => return Err(DecimalError::Syntax),
        Some(f) => f,
        None => &[][..],
    };
    let significant = int_part.iter().skip_while(|&&b| b == b'0').count();
    if significant > 30 {
        return Err(DecimalError::TooLarge);
    }
    let mut value: i128 = 0;
    for &b in int_part.iter().chain(frac) {
        value = value * 10 + i128::from(b - b'0');
    }
    value *= 10i128.pow(scale - frac.len() as u32);
    Ok(if negative { -value } else { value })
}

/// 10^`exp` as `i128`.
pub const fn pow10(exp: u32) -> i128 {
    10i128.pow(exp)
}

/// Writes `units` (of 10^-`scale`) with exactly `scale` fraction digits; zero has no sign.
pub fn format(units: i128, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{abs}");
    }
    let p = 10u128.pow(scale);
    format!("{sign}{}.{:0width$}", abs / p, abs % p, width = scale as usize)
}

/// Changes the scale of `units` from `from` to `to`, rounding half away from zero when the
/// new scale is smaller. The one rounding rule of the crate.
pub fn rescale_round(units: i128, from: u32, to: u32) -> i128 {
    if to >= from {
        return units * pow10(to - from);
    }
    let div = pow10(from - to);
    let q = units / div;
    let r = units % div;
    if r.abs() * 2 >= div { q + units.signum() } else { q }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_strict_form_only() {
        assert_eq!(parse("1250", 4), Ok(12_500_000));
        assert_eq!(parse("-0.5", 4), Ok(-5_000));
        assert_eq!(parse("0012.3400", 4), Ok(123_400));
        for bad in ["", "-", "1e3", "1,5", "+1", ".5", "5.", "1.23456", " 1", "1 ", "--1", "1.2.3", "０"] {
            assert_eq!(parse(bad, 4), Err(DecimalError::Syntax), "{bad:?}");
        }
        assert_eq!(parse("0.12345678", 8), Ok(12_345_678));
        assert_eq!(parse(&"9".repeat(31), 4), Err(DecimalError::TooLarge));
    }

    #[test]
    fn formats_fixed_scale_without_negative_zero() {
        assert_eq!(format(12_500_000, 4), "1250.0000");
        assert_eq!(format(-1250, 2), "-12.50");
        assert_eq!(format(0, 2), "0.00");
        assert_eq!(format(-7, 0), "-7");
        assert_eq!(format(-5, 3), "-0.005");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(rescale_round(125, 2, 1), 13);
        assert_eq!(rescale_round(-125, 2, 1), -13);
        assert_eq!(rescale_round(124, 2, 1), 12);
        assert_eq!(rescale_round(-124, 2, 1), -12);
        assert_eq!(rescale_round(5, 1, 0), 1);
        assert_eq!(rescale_round(-5, 1, 0), -1);
        assert_eq!(rescale_round(7, 0, 2), 700);
    }
}
