//! Reading SQLite values the way DingTalk stores them, which is not always as declared.

use rusqlite::types::ValueRef;
use rusqlite::Row;

/// An integer stored as INTEGER, REAL or a numeric string.
pub fn int(row: &Row, idx: usize) -> Option<i64> {
    match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Text, keeping every valid byte; invalid UTF-8 is replaced and flagged through `lossy`.
/// Integers (ids stored as numbers) come back in decimal.
pub fn text(row: &Row, idx: usize, lossy: &mut bool) -> Option<String> {
    match row.get_ref(idx).ok()? {
        ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
            Ok(s) => Some(s.to_string()),
            Err(_) => {
                *lossy = true;
                Some(String::from_utf8_lossy(t).into_owned())
            }
        },
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// Text where a replaced byte does not matter (names, ids in side tables).
pub fn text_lossy(row: &Row, idx: usize) -> Option<String> {
    let mut ignored = false;
    text(row, idx, &mut ignored)
}

/// Quotes an identifier for SQL.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
