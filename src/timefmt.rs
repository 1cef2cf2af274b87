//! Time parsing and the fixed RFC 3339 shapes the outputs use.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a time: use RFC 3339 (2025-06-12T08:05:20+08:00), a date (2025-06-12), or Unix seconds")]
    BadTime(String),
    #[error("`{0}` is not a UTC offset: use +08:00, -05:00 or Z")]
    BadOffset(String),
}

/// `2025-06-12T00:05:20.123Z`: UTC, always with milliseconds.
pub fn utc_millis(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// `2025-06-12T08:05:20.123+08:00`.
pub fn local_millis(ms: i64, offset: FixedOffset) -> String {
    match offset.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, false),
        None => String::new(),
    }
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
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().map_err(|_| bad())?;
    let minutes: i32 = minutes.parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
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
}
