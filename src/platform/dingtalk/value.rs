//! Reading SQLite values the way DingTalk stores them, which is not always as declared.

use rusqlite::Row;

use crate::source::sqlite;

/// An integer stored as INTEGER, REAL or a numeric string.
pub fn int(row: &Row, idx: usize) -> Option<i64> {
    sqlite::lenient_int(row.get_ref(idx).ok()?)
}

/// Text, keeping every valid byte; invalid UTF-8 is replaced and flagged through `lossy`.
/// Integers (ids stored as numbers) come back in decimal.
pub fn text(row: &Row, idx: usize, lossy: &mut bool) -> Option<String> {
    sqlite::lenient_text(row.get_ref(idx).ok()?, lossy)
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
