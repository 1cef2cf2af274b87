//! Time parsing and the fixed RFC 3339 shapes the outputs use.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a time: use RFC 3339 (2025-06-12T08:05:20+08:00), a date (2025-06-12), or Unix seconds")]
    BadTime(String),
    #[error("`{0}` is not a UTC offset: use +08:00, -05:00 or Z")]
    BadOffset(String),
}

impl TimeError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        crate::exit::USAGE
    }
}

/// `2025-06-12T00:05:20.123Z`: UTC, always with milliseconds.
pub fn utc_millis(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_utc_millis(ms, &mut out);
    out
}

/// `2025-06-12T08:05:20.123+08:00`.
pub fn local_millis(ms: i64, offset: FixedOffset) -> String {
    let mut out = String::with_capacity(29);
    write_local_millis(ms, offset, &mut out);
    out
}

/// [`utc_millis`] into a reused buffer (cleared first): the export formats two times per
/// message, and chrono's general formatter was a visible share of its time.
pub fn write_utc_millis(ms: i64, out: &mut String) {
    out.clear();
    if !write_fast(ms, None, out) {
        if let Some(t) = Utc.timestamp_millis_opt(ms).single() {
            out.push_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
    }
}

/// [`local_millis`] into a reused buffer (cleared first).
pub fn write_local_millis(ms: i64, offset: FixedOffset, out: &mut String) {
    out.clear();
    let seconds = offset.local_minus_utc();
    if seconds % 60 == 0 {
        if let Some(local) = ms.checked_add(i64::from(seconds) * 1000) {
            if write_fast(local, Some(seconds / 60), out) {
                return;
            }
        }
    }
    if let Some(t) = offset.timestamp_millis_opt(ms).single() {
        out.push_str(&t.to_rfc3339_opts(SecondsFormat::Millis, false));
    }
}

/// Writes `ms` (already shifted to local time) as RFC 3339 with milliseconds, then `Z`
/// (`offset_minutes` None) or the offset. Handles years 0000–9999, the only ones chrono
/// prints without a sign; returns false, writing nothing, for any other year.
fn write_fast(ms: i64, offset_minutes: Option<i32>, out: &mut String) -> bool {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let mut buf = [0u8; 29];
    if !write_date_time(&mut buf, days, in_day / 1000) {
        return false;
    }
    let millis = in_day % 1000;
    buf[19] = b'.';
    buf[20] = b'0' + (millis / 100) as u8;
    buf[21] = b'0' + (millis / 10 % 10) as u8;
    buf[22] = b'0' + (millis % 10) as u8;
    let len = match offset_minutes {
        None => {
            buf[23] = b'Z';
            24
        }
        Some(minutes) => {
            buf[23] = if minutes < 0 { b'-' } else { b'+' };
            let minutes = i64::from(minutes.unsigned_abs());
            if minutes >= 100 * 60 {
                return false;
            }
            two_digits(&mut buf, 24, minutes / 60);
            two_digits(&mut buf, 27, minutes % 60);
            buf[26] = b':';
            29
        }
    };
    match std::str::from_utf8(&buf[..len]) {
        Ok(text) => {
            out.push_str(text);
            true
        }
        Err(_) => false,
    }
}

/// RFC 3339 in UTC with as many fraction digits as needed (none, 3, 6 or 9), exactly as
/// chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, true)`: a plan writes three such times
/// for each of its 100,000s of files, twice (JSON and CSV).
pub fn utc_auto_si(t: &DateTime<Utc>) -> String {
    let nanos = t.timestamp_subsec_nanos();
    let days = t.timestamp().div_euclid(86_400);
    let in_day = t.timestamp().rem_euclid(86_400);
    let mut buf = [0u8; 30];
    // Nanos past 1e9 are a leap second, which chrono writes as second 60.
    if nanos >= 1_000_000_000 || !write_date_time(&mut buf, days, in_day) {
        return t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    }
    let (digits, mut fraction) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1000 == 0 => (6, n / 1000),
        n => (9, n),
    };
    let mut len = 19;
    if digits > 0 {
        buf[19] = b'.';
        for at in (20..20 + digits).rev() {
            buf[at] = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        len = 20 + digits;
    }
    buf[len] = b'Z';
    String::from_utf8_lossy(&buf[..=len]).into_owned()
}

/// `v` (0–99) as two digits at `buf[at..at + 2]`.
fn two_digits(buf: &mut [u8], at: usize, v: i64) {
    buf[at] = b'0' + (v / 10) as u8;
    buf[at + 1] = b'0' + (v % 10) as u8;
}

/// Writes `YYYY-MM-DDTHH:MM:SS` into `buf[..19]` for a day count from 1970-01-01 and a
/// second of that day. Years 0000–9999 only, the ones chrono prints without a sign;
/// `false`, with `buf` untouched, for any other.
fn write_date_time(buf: &mut [u8], days: i64, second_of_day: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) || buf.len() < 19 {
        return false;
    }
    let mut two = |at: usize, v: i64| two_digits(buf, at, v);
    two(0, year / 100);
    two(2, year % 100);
    two(5, month);
    two(8, day);
    two(11, second_of_day / 3600);
    two(14, second_of_day / 60 % 60);
    two(17, second_of_day % 60);
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        buf[at] = separator;
    }
    true
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn utc_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_offset(text: &str) -> Result<FixedOffset, TimeError> {
    let bad = || TimeError::BadOffset(text.to_string());
    if text == "Z" || text == "z" || text == "UTC" {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        // ASCII only: byte 2 of other text may be inside a character (split_at panicked on
        // "+1é1"; inputs in fuzz/regressions/time_args/).
        None if rest.len() == 4 && rest.is_ascii() => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().map_err(|_| bad())?;
    let minutes: i32 = minutes.parse().map_err(|_| bad())?;
    // Negative parts are refused too: "+-5" is no offset, and "-2147483648" overflowed
    // `hours * 3600`.
    if !(0..=14).contains(&hours) || !(0..=59).contains(&minutes) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(bad)
}

/// Parses RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` (taken as UTC), or Unix seconds.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, TimeError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(secs) = text.parse::<i64>() {
        if let Some(t) = Utc.timestamp_opt(secs, 0).single() {
            return Ok(t);
        }
    }
    Err(TimeError::BadTime(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_output_contract() {
        assert_eq!(utc_millis(1_749_686_720_123), "2025-06-12T00:05:20.123Z");
        let cst = parse_offset("+08:00").unwrap();
        assert_eq!(
            local_millis(1_749_686_720_123, cst),
            "2025-06-12T08:05:20.123+08:00"
        );
        assert_eq!(utc_millis(1_749_686_720_000), "2025-06-12T00:05:20.000Z");
    }

    #[test]
    fn parses_times_and_offsets() {
        let t = parse_time("2025-06-12T08:05:20+08:00").unwrap();
        assert_eq!(t.timestamp(), 1_749_686_720);
        assert_eq!(parse_time("1749686720").unwrap(), t);
        assert_eq!(parse_time("2025-06-12").unwrap().timestamp() % 86400, 0);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_offset("-0530").unwrap().local_minus_utc(), -19800);
        assert!(parse_offset("08:00").is_err());
    }

    fn chrono_utc(ms: i64) -> String {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_default()
    }

    fn chrono_local(ms: i64, offset: FixedOffset) -> String {
        offset
            .timestamp_millis_opt(ms)
            .single()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, false))
            .unwrap_or_default()
    }

    #[test]
    fn fast_formatting_matches_chrono_at_the_edges() {
        let offsets =
            ["+00:00", "+08:00", "-05:30", "+14:00", "-12:00"].map(|o| parse_offset(o).unwrap());
        let year_0 = -62_167_219_200_000;
        let year_10000 = 253_402_300_800_000;
        for ms in [
            0,
            -1,
            1,
            -86_400_000,
            951_782_400_000,   // 2000-02-29
            4_107_542_400_000, // 2100-03-01
            year_0,
            year_0 - 1,
            year_10000,
            year_10000 - 1,
            i64::MIN,
            i64::MAX,
            8_210_298_412_799_999,
        ] {
            assert_eq!(utc_millis(ms), chrono_utc(ms), "{ms}");
            for offset in offsets {
                assert_eq!(
                    local_millis(ms, offset),
                    chrono_local(ms, offset),
                    "{ms} {offset}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_formatting_matches_chrono(ms in -70_000_000_000_000i64..300_000_000_000_000, minutes in -840i32..=840) {
            let offset = FixedOffset::east_opt(minutes * 60).unwrap();
            proptest::prop_assert_eq!(utc_millis(ms), chrono_utc(ms));
            proptest::prop_assert_eq!(local_millis(ms, offset), chrono_local(ms, offset));
        }

        #[test]
        fn auto_si_formatting_matches_chrono(
            seconds in -70_000_000_000i64..300_000_000_000,
            nanos in proptest::prop_oneof![
                proptest::strategy::Just(0u32),
                proptest::strategy::Strategy::prop_map(0u32..1000, |m| m * 1_000_000),
                proptest::strategy::Strategy::prop_map(0u32..1_000_000, |u| u * 1000),
                0u32..2_000_000_000,
            ],
        ) {
            if let Some(t) = DateTime::from_timestamp(seconds, nanos) {
                proptest::prop_assert_eq!(
                    utc_auto_si(&t),
                    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                );
            }
        }
    }
}
