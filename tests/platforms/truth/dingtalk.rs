//! DingTalk (sources.md §4): the sharded `dingtalk.db` (with its WAL) queried directly.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{SecondsFormat, TimeZone, Utc};
use rusqlite::types::Value;

use super::{BadInput, Base, Breakage, Cond, Fact, Members, Message, Outcome, Source, Truth};
use crate::common::ground_truth_db;

pub const DB: &str = "DBFiles/dingtalk.db";

/// A hand-written database's tables (not the simulator's), so the importer is held to the
/// spec rather than to one writer: one group, three people, no message shard.
pub const MINIMAL: &str = "
CREATE TABLE tbconversation (cid TEXT, type INTEGER, title TEXT, memberCount INTEGER, createAt INTEGER, ownerId INTEGER, status INTEGER);
CREATE TABLE tbuser_profile_v2 (uid INTEGER, nick TEXT, realName TEXT, mobile TEXT, email TEXT);
CREATE TABLE tbconversation_member (cid TEXT, uid INTEGER, role INTEGER, joinAt INTEGER);
CREATE TABLE im_image_info (cid TEXT, mid INTEGER, local_path TEXT, size INTEGER);
INSERT INTO tbconversation VALUES ('cidAB+/x==', 2, '测试群', 3, 1700000000000, 123456, 1);
INSERT INTO tbuser_profile_v2 VALUES (123456, '', '本人', NULL, NULL), (222, '小明', '王明', NULL, NULL), (333, NULL, '李四', NULL, NULL);
INSERT INTO tbconversation_member VALUES ('cidAB+/x==', 123456, 1, 1700000000000), ('cidAB+/x==', 222, 2, 1700000001000);
";

pub const SOURCE: Source = Source {
    platform: "dingtalk",
    dir_name: "123456_v2",
    read,
    reads_private: true,
    private: Some(Cond::Contains("group_id", ":")),
    wal_db: Some(DB),
    layout: &[DB],
    continues: true,
    dissolves: true,
    malformed_rows: true,
    media_statuses: &["copied", "missing", "outside_root"],
    roles: &["owner", "admin", "member"],
    // Malformed rows are reported.
    warnings: &["JSON"],
    facts: &[
        Fact::Some("messages", &[Cond::Eq("direction", "sent")]),
        Fact::Some("messages", &[Cond::Contains("group_id", "+")]),
        Fact::Some("messages", &[Cond::Contains("group_id", "/")]),
        // The dissolution notice is a system message.
        Fact::Some(
            "messages",
            &[
                Cond::Eq("direction", "system"),
                Cond::Eq("text", "群主已解散该群"),
            ],
        ),
        Fact::Some(
            "messages",
            &[Cond::Eq("kind", "image"), Cond::Prefix("text", "[image]")],
        ),
        Fact::Some(
            "messages",
            &[Cond::Eq("kind", "voice"), Cond::Prefix("text", "[voice] ")],
        ),
        Fact::Some(
            "messages",
            &[Cond::Eq("kind", "file"), Cond::Prefix("text", "[file] ")],
        ),
        Fact::Some(
            "messages",
            &[
                Cond::Eq("kind", "red_packet"),
                Cond::Prefix("text", "[red packet] "),
            ],
        ),
        Fact::Some(
            "media",
            &[Cond::Eq("kind", "image"), Cond::Eq("status", "copied")],
        ),
        Fact::Some(
            "media",
            &[Cond::Eq("kind", "voice"), Cond::Eq("status", "copied")],
        ),
        Fact::Some(
            "media",
            &[Cond::Eq("kind", "video"), Cond::Eq("status", "copied")],
        ),
        Fact::Some(
            "media",
            &[Cond::Eq("kind", "file"), Cond::Eq("status", "copied")],
        ),
        Fact::Some("members", &[Cond::Eq("role", "owner")]),
        Fact::Some("members", &[Cond::Eq("role", "admin")]),
        Fact::All("members", &[], &[Cond::Suffix("joined_at_utc", "Z")]),
    ],
    small: &["--groups", "2", "--messages", "3000", "--no-media-files"],
    bad_inputs: &[
        BadInput {
            what: "a database that is not SQLite",
            base: Base::Empty,
            breaks: &[(DB, Breakage::Noise(8192))],
            outcome: Outcome::Refused {
                code: 5,
                message: "is not an SQLite database",
            },
        },
        BadInput {
            what: "a truncated database",
            base: Base::Small,
            breaks: &[(DB, Breakage::Truncate)],
            outcome: Outcome::Refused {
                code: 5,
                message: "truncated",
            },
        },
        BadInput {
            what: "a database without tbconversation",
            base: Base::Empty,
            breaks: &[(
                DB,
                Breakage::Sqlite(&["CREATE TABLE tbmsg_000 (cid TEXT, mid INTEGER, senderId INTEGER, createdAt INTEGER, contentType INTEGER, content TEXT);"]),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "not a dingtalk database: no table `tbconversation` in DBFiles/dingtalk.db",
            },
        },
        BadInput {
            what: "a shard without createdAt",
            base: Base::Empty,
            breaks: &[(
                DB,
                Breakage::Sqlite(&[
                    MINIMAL,
                    "CREATE TABLE tbmsg_007 (cid TEXT, mid INTEGER, senderId INTEGER, contentType INTEGER, content TEXT);",
                ]),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "`tbmsg_007` in DBFiles/dingtalk.db has no column `createdAt`",
            },
        },
        BadInput {
            what: "a database locked by the app",
            base: Base::Small,
            breaks: &[(DB, Breakage::Lock)],
            outcome: Outcome::Refused {
                code: 6,
                message: "locked by another process",
            },
        },
    ],
};

/// The owner's uid, from a root named `<uid>_v2` (or `_v3`).
pub fn owner(root: &Path) -> Option<String> {
    let name = root.file_name()?.to_str()?;
    let uid = name
        .strip_suffix("_v2")
        .or_else(|| name.strip_suffix("_v3"))?;
    (!uid.is_empty()).then(|| uid.to_string())
}

/// Messages by the rules of §4 (every shard, direction by the owner from the directory's
/// name), members from `tbconversation_member`.
pub fn read(root: &Path, include_private: bool) -> Truth {
    let messages = expected_messages(root, owner(root).as_deref(), include_private);
    let (_dir, conn) = ground_truth_db(root, DB);
    let mut stmt = conn
        .prepare(
            "SELECT m.cid, count(*) FROM tbconversation_member m \
             JOIN tbconversation c ON c.cid = m.cid WHERE c.type = 2 GROUP BY m.cid",
        )
        .unwrap();
    let members = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .map(|(cid, count)| {
            (
                cid,
                Members {
                    count: count as usize,
                    left: None,
                },
            )
        })
        .collect();
    Truth {
        messages,
        members,
        sources: super::with_wal(root, &[DB]),
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Integer(i) => Some(i.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) => Some(String::from_utf8(b.clone()).unwrap()),
        Value::Real(f) => Some(f.to_string()),
        Value::Null => None,
    }
}

/// `attachments[0].extension` decodes (a JSON string holding JSON, or an object), or is absent.
fn attachments_ok(attachments: Option<&str>) -> bool {
    let Some(raw) = attachments.filter(|a| !a.trim().is_empty()) else {
        return true;
    };
    let Ok(list) = serde_json::from_str::<serde_json::Value>(raw) else {
        return false;
    };
    let Some(first) = list.as_array().and_then(|a| a.first()) else {
        return list.is_null() || list.as_array().is_some();
    };
    match first.get("extension") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::String(inner)) => serde_json::from_str::<serde_json::Value>(inner)
            .map(|v| v.is_object())
            .unwrap_or(false),
        Some(serde_json::Value::Object(_)) => true,
        Some(_) => false,
    }
}

/// The kind sources.md §4 gives a row.
fn expected_kind(
    content_type: Option<i64>,
    content: Option<&str>,
    attachments: Option<&str>,
    recall: i64,
) -> (&'static str, Option<String>) {
    if recall > 0 {
        return ("recall", None);
    }
    let body = content
        .filter(|c| !c.trim().is_empty())
        .map(serde_json::from_str::<serde_json::Value>);
    let object = match &body {
        Some(Ok(v)) if v.is_object() => Some(v),
        _ => None,
    };
    let text = object.and_then(|v| v.get("text")).and_then(|t| t.as_str());
    let media_body_ok = body.is_none() || object.is_some();
    match content_type {
        Some(1) => match text {
            Some(t) => ("text", Some(t.to_string())),
            None => ("other", None),
        },
        // An empty system row (NULL, blank, or no `text`) is still a system row.
        Some(102) => (
            if body.is_none() || object.is_some() {
                "system"
            } else {
                "other"
            },
            None,
        ),
        Some(2) => (if media_body_ok { "image" } else { "other" }, None),
        Some(code @ (300 | 400 | 501)) => {
            if media_body_ok && attachments_ok(attachments) {
                (
                    match code {
                        300 => "voice",
                        400 => "video",
                        _ => "file",
                    },
                    None,
                )
            } else {
                ("other", None)
            }
        }
        Some(902) => (
            if object.is_some() {
                "red_packet"
            } else {
                "other"
            },
            None,
        ),
        _ => ("other", None),
    }
}

/// How SQLite orders a value: NULL, then numbers, then text.
type SqlOrder = (u8, i64, String);

fn sql_order(value: &Value) -> SqlOrder {
    match value {
        Value::Null => (0, 0, String::new()),
        Value::Integer(i) => (1, *i, String::new()),
        Value::Real(f) => (1, *f as i64, String::new()),
        Value::Text(t) => (2, 0, t.clone()),
        Value::Blob(_) => (3, 0, String::new()),
    }
}

/// RFC 3339 with milliseconds for an integer time of years 0000-9999; empty for anything
/// else (no time, text, an instant no output can write).
fn time_utc(value: &Value) -> String {
    match value {
        Value::Integer(ms) if (-62_167_219_200_000..=253_402_300_799_999).contains(ms) => Utc
            .timestamp_millis_opt(*ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => String::new(),
    }
}

/// The shard tables of a database, with their numbers.
fn shards(conn: &rusqlite::Connection) -> Vec<(u32, String)> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tbmsg\\_%' ESCAPE '\\'")
        .unwrap();
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut numbered: Vec<(u32, String)> = names
        .into_iter()
        .filter_map(|n| n["tbmsg_".len()..].parse().ok().map(|i| (i, n)))
        .collect();
    numbered.sort();
    numbered
}

/// What messages.csv must hold for each group, computed from the database (with its WAL) by
/// the spec's rules, independently of the importer.
fn expected_messages(
    root: &Path,
    owner: Option<&str>,
    include_private: bool,
) -> BTreeMap<String, Vec<Message>> {
    let (_dir, conn) = ground_truth_db(root, DB);
    // (cid, createdAt as SQLite orders it, shard, rowid) orders rows; the rest is what the
    // export must show.
    let mut rows: Vec<((String, SqlOrder, u32, i64), Message)> = Vec::new();
    let types = if include_private { "1, 2" } else { "2" };
    for (number, table) in shards(&conn) {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT m.cid, m.rowid, m.mid, m.senderId, m.createdAt, m.contentType, \
                 CAST(m.content AS BLOB), m.recallStatus, CAST(m.attachments AS BLOB) \
                 FROM {table} m JOIN tbconversation c ON c.cid = m.cid WHERE c.type IN ({types})"
            ))
            .unwrap();
        let mut result = stmt.query([]).unwrap();
        while let Some(row) = result.next().unwrap() {
            let cid: String = row.get(0).unwrap();
            let rowid: i64 = row.get(1).unwrap();
            let mid = as_text(&row.get::<_, Value>(2).unwrap()).unwrap_or_default();
            let sender = as_text(&row.get::<_, Value>(3).unwrap()).unwrap_or_default();
            let created: Value = row.get(4).unwrap();
            let content_type: Option<i64> = row.get(5).unwrap();
            let content: Option<Vec<u8>> = row.get(6).unwrap();
            let content = content.map(|c| String::from_utf8(c).unwrap());
            let recall: Option<i64> = row.get(7).unwrap();
            let attachments: Option<Vec<u8>> = row.get(8).unwrap();
            let attachments = attachments.map(|c| String::from_utf8(c).unwrap());
            let (direction, sender_id) = if content_type == Some(102) {
                ("system", String::new())
            } else if owner.is_some_and(|o| o == sender) {
                ("sent", sender)
            } else {
                ("received", sender)
            };
            let (kind, text) = expected_kind(
                content_type,
                content.as_deref(),
                attachments.as_deref(),
                recall.unwrap_or(0),
            );
            rows.push((
                (cid, sql_order(&created), number, rowid),
                Message {
                    message_id: mid,
                    time_utc: time_utc(&created),
                    direction,
                    sender_id,
                    sender_name: None,
                    kind: Some(kind),
                    raw_type: Some(content_type.map(|c| c.to_string()).unwrap_or_default()),
                    text,
                },
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    for ((cid, ..), expected) in rows {
        out.entry(cid).or_default().push(expected);
    }
    out
}
