//! The OpenMetrics number grammar, stricter than Rust's or Go's float parsing:
//! no hexadecimal, no `_` separators, no `0b`/`0o` prefixes.

/// A sample or exemplar value: a real number, `[sign]inf`, `[sign]infinity`
/// or `nan` (the ABNF's literals are case-insensitive).
pub(super) fn value(token: &str) -> Option<f64> {
    if let Some(v) = real(token) {
        return Some(v);
    }
    let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if token.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    token.eq_ignore_ascii_case("nan").then_some(f64::NAN)
}

/// A `realnumber`: `[sign] digits [. digits] [e [sign] digits]` with at least
/// one digit before the exponent. Timestamps allow only this form.
pub(super) fn real(token: &str) -> Option<f64> {
    let bytes = token.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let whole = digits(bytes, at);
    at += whole;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        fraction = digits(bytes, at + 1);
        at += 1 + fraction;
    }
    if whole + fraction == 0 {
        return None;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(bytes, at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    // What is left is the grammar Rust's parser accepts too.
    (at == bytes.len()).then(|| token.parse().ok()).flatten()
}

fn digits(bytes: &[u8], from: usize) -> usize {
    bytes.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    })
}

/// Seconds since the epoch to whole milliseconds; values beyond `i64`
/// saturate (a consumer with a time window then rejects them).
pub(super) fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_numbers_follow_the_abnf() {
        for ok in ["1", "-1", "+1.5", "1.", ".5", "0001.2e-1", "1E5", "1e+05"] {
            assert!(real(ok).is_some(), "{ok}");
        }
        for bad in [
            "", ".", "+", "1e", "1_2", "0x1", "0x1p-3", "1.1.1", "1z", "Inf", "NaN",
        ] {
            assert!(real(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn values_also_take_infinities_and_nan_in_any_case() {
        assert_eq!(value("+Inf"), Some(f64::INFINITY));
        assert_eq!(value("-infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(value("INF"), Some(f64::INFINITY));
        assert!(value("nan").unwrap().is_nan());
        assert!(value("-nan").is_none());
        assert!(value("0b1").is_none());
    }

    #[test]
    fn timestamps_become_milliseconds_and_saturate() {
        assert_eq!(seconds_to_ms(1.5), 1500);
        assert_eq!(seconds_to_ms(1_700_000_000.123), 1_700_000_000_123);
        assert_eq!(seconds_to_ms(1.2e19), i64::MAX);
    }
}
