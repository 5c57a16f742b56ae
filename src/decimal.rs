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
pub(crate) const fn pow10(exp: u32) -> i128 {
    10i128.pow(exp)
}

/// Writes `units` (of 10^-`scale`) with exactly `scale` fraction digits; zero has no sign.
pub(crate) fn format(units: i128, scale: u32) -> String {
    let mut s = Vec::new();
    write(&mut s, units, scale);
    String::from_utf8(s).expect("ASCII digits")
}

/// Appends `units` (of 10^-`scale`) with exactly `scale` fraction digits to `out`, like
/// [`format`] but without allocating.
pub(crate) fn write(out: &mut Vec<u8>, units: i128, scale: u32) {
    let abs = units.unsigned_abs();
    // Report values fit in 64 bits (Decimal(18, s)): their digits are written by hand, right
    // to left into a buffer on the stack, and appended at once (a report has millions).
    if let (Ok(mut v), true) = (u64::try_from(abs), scale <= 18) {
        let mut buf = [0u8; 24]; // up to 20 digits, a point, a sign
        let mut at = buf.len();
        // Two digits at a time from a table: the fraction's `scale` digits, the point, then
        // the whole part's (at least one).
        for _ in 0..scale / 2 {
            put_pair(&mut buf, &mut at, v % 100);
            v /= 100;
        }
        if scale % 2 == 1 {
            put(&mut buf, &mut at, b'0' + (v % 10) as u8);
            v /= 10;
        }
        if scale > 0 {
            put(&mut buf, &mut at, b'.');
        }
        while v >= 100 {
            put_pair(&mut buf, &mut at, v % 100);
            v /= 100;
        }
        if v >= 10 {
            put_pair(&mut buf, &mut at, v);
        } else {
            put(&mut buf, &mut at, b'0' + v as u8);
        }
        if units < 0 {
            put(&mut buf, &mut at, b'-');
        }
        out.extend_from_slice(&buf[at..]);
    } else {
        use std::io::Write;
        if units < 0 {
            out.push(b'-');
        }
        let p = 10u128.pow(scale);
        let _ = if scale == 0 {
            write!(out, "{abs}")
        } else {
            write!(out, "{}.{:0width$}", abs / p, abs % p, width = scale as usize)
        };
    }
}

/// Puts `b` before position `at` of `buf` (written right to left).
fn put(buf: &mut [u8], at: &mut usize, b: u8) {
    *at -= 1;
    buf[*at] = b;
}

/// Puts the two digits of `d` (below 100) before position `at` of `buf`.
fn put_pair(buf: &mut [u8], at: &mut usize, d: u64) {
    const PAIRS: &[u8; 200] = b"\
        0001020304050607080910111213141516171819202122232425262728293031323334353637383940\
        4142434445464748495051525354555657585960616263646566676869707172737475767778798081\
        828384858687888990919293949596979899";
    let d = 2 * d as usize;
    *at -= 2;
    buf[*at..*at + 2].copy_from_slice(&PAIRS[d..d + 2]);
}

/// Changes the scale of `units` from `from` to `to`, rounding half away from zero when the
/// new scale is smaller. The one rounding rule of the crate.
pub(crate) fn rescale_round(units: i128, from: u32, to: u32) -> i128 {
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

#[cfg(test)]
mod oracle {
    //! Money maths against an arbitrary-precision oracle (`bigdecimal`): an exact product of
    //! amount (10^-4) × usd_rate (10^-8) × rate (10^-8), rounded once, half away from zero.
    use super::*;
    use bigdecimal::{BigDecimal, RoundingMode};
    use proptest::prelude::*;
    use std::str::FromStr;

    /// `units` × 10^-`scale` as a BigDecimal, through its text (no float anywhere).
    fn to_big(units: i128, scale: u32) -> BigDecimal {
        BigDecimal::from_str(&format(units, scale)).unwrap()
    }

    fn oracle(parts: &[(i128, u32)], digits: u32) -> String {
        let product = parts.iter().fold(BigDecimal::from(1), |acc, (u, s)| acc * to_big(*u, *s));
        product.with_scale_round(digits as i64, RoundingMode::HalfUp).to_string()
    }

    fn ours(parts: &[(i128, u32)], digits: u32) -> String {
        let product: i128 = parts.iter().map(|(u, _)| *u).product();
        let scale: u32 = parts.iter().map(|(_, s)| *s).sum();
        format(rescale_round(product, scale, digits), digits)
    }

    /// Text form that BigDecimal prints for a value rounded to `digits` (no sign on zero).
    fn normal(s: String) -> String {
        if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
            s.trim_start_matches('-').into()
        } else {
            s
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn product_rounds_like_the_oracle(
            amount in -1_000_000_000_000_000i128..1_000_000_000_000_000,
            usd_rate in 1i128..100_000_000_000,
            rate in 0i128..=100_000_000,
            digits in prop::sample::select(vec![0u32, 2, 3]),
        ) {
            let parts = [(amount, 4), (usd_rate, 8), (rate, 8)];
            prop_assert_eq!(ours(&parts, digits), normal(oracle(&parts, digits)));
            let local = [(amount, 4), (rate, 8)];
            prop_assert_eq!(ours(&local, digits), normal(oracle(&local, digits)));
        }

        #[test]
        fn hand_written_digits_match_the_formatting_machinery(
            units in prop_oneof![any::<i64>().prop_map(i128::from), -(1i128 << 70)..(1i128 << 70), -1000i128..1000],
            scale in 0u32..=19,
        ) {
            let abs = units.unsigned_abs();
            let p = 10u128.pow(scale);
            let sign = if units < 0 { "-" } else { "" };
            let expected = if scale == 0 {
                format!("{sign}{abs}")
            } else {
                format!("{sign}{}.{:0width$}", abs / p, abs % p, width = scale as usize)
            };
            prop_assert_eq!(format(units, scale), expected);
        }

        #[test]
        fn exact_half_boundaries_round_away_from_zero(whole in -1_000_000i128..1_000_000, digits in prop::sample::select(vec![0u32, 2, 3])) {
            // whole.5 units of the last kept digit, at scale digits+1
            let units = whole * 10 + if whole < 0 { -5 } else { 5 };
            let expected = if whole < 0 { whole - 1 } else { whole + 1 };
            prop_assert_eq!(rescale_round(units, digits + 1, digits), expected);
            prop_assert_eq!(format(rescale_round(units, digits + 1, digits), digits), normal(oracle(&[(units, digits + 1)], digits)));
        }
    }
}
