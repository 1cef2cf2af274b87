//! The sharded message tables `tbmsg_000` … `tbmsg_127`.
//!
//! A conversation's rows live in one shard and nothing says which. Scanning every shard for
//! every group would cost 128 scans per group, so the shards are surveyed once at open
//! (one `SELECT DISTINCT cid` each) into a map from conversation to the shards holding it:
//! its size grows with the number of conversations, not of messages.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;

use super::value::{quote, text_lossy};
use super::DATABASE;
use crate::records::Warning;
use crate::source::sqlite::{map_sqlite_error, Database};
use crate::source::SourceError;

const PREFIX: &str = "tbmsg_";
/// Columns every shard must have.
const REQUIRED_COLUMNS: [&str; 6] = [
    "cid",
    "mid",
    "senderId",
    "createdAt",
    "contentType",
    "content",
];

/// One message table and the optional columns it has.
#[derive(Debug, Clone)]
pub struct Shard {
    pub table: String,
    pub has_recall_status: bool,
    pub has_attachments: bool,
}

#[derive(Debug, Default)]
pub struct Shards {
    /// Sorted by shard number.
    pub tables: Vec<Shard>,
    /// Conversation id → indices into `tables`, in shard order.
    pub by_cid: HashMap<String, Vec<usize>>,
}

/// The shard number of a table name `tbmsg_<digits>`.
fn shard_number(table: &str) -> Option<u32> {
    let digits = table.strip_prefix(PREFIX)?;
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Shards {
    pub fn survey(
        conn: &Connection,
        db_path: &Path,
        tables: &[String],
        warnings: &mut Vec<Warning>,
    ) -> Result<Shards, SourceError> {
        let mut numbered: Vec<(u32, &String)> = tables
            .iter()
            .filter_map(|t| shard_number(t).map(|n| (n, t)))
            .collect();
        numbered.sort();
        let mut shards = Shards::default();
        for (_, table) in numbered {
            let columns = Database::columns(conn, db_path, table)?;
            let has = |name: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(name));
            for column in REQUIRED_COLUMNS {
                if !has(column) {
                    return Err(SourceError::MissingTable {
                        platform: &super::DINGTALK,
                        detail: format!("table `{table}` in {DATABASE} has no column `{column}`"),
                    });
                }
            }
            let index = shards.tables.len();
            shards.tables.push(Shard {
                table: table.clone(),
                has_recall_status: has("recallStatus"),
                has_attachments: has("attachments"),
            });
            let mut stmt = conn
                .prepare(&format!("SELECT DISTINCT cid FROM {}", quote(table)))
                .map_err(|e| map_sqlite_error(db_path, e))?;
            let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(db_path, e))?;
            while let Some(row) = rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
                match text_lossy(row, 0) {
                    Some(cid) => shards.by_cid.entry(cid).or_default().push(index),
                    None => warnings.push(Warning {
                        location: format!("{DATABASE} {table}"),
                        message: "rows without a conversation id (cid) belong to no group and are left out".into(),
                    }),
                }
            }
        }
        if shards.tables.is_empty() {
            warnings.push(Warning {
                location: DATABASE.into(),
                message:
                    "no message tables (tbmsg_000 … tbmsg_127): conversations have no messages"
                        .into(),
            });
        }
        Ok(shards)
    }

    /// The shards holding a conversation's rows.
    pub fn of(&self, cid: &str) -> Vec<Shard> {
        self.by_cid
            .get(cid)
            .map(|indices| {
                indices
                    .iter()
                    .filter_map(|&i| self.tables.get(i).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert_eq!(shard_number("tbmsg_000"), Some(0));
        assert_eq!(shard_number("tbmsg_127"), Some(127));
        assert_eq!(shard_number("tbmsg_"), None);
        assert_eq!(shard_number("tbmsg_01a"), None);
        assert_eq!(shard_number("tbmsg_backup"), None);
        assert_eq!(shard_number("xtbmsg_001"), None);
    }
}
