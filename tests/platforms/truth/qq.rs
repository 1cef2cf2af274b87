//! QQ NT (sources.md §2): `nt_msg.db` and `group_info.db` queried directly, message bodies
//! decoded with this file's own protobuf reader.

use std::collections::BTreeMap;
use std::path::Path;

use super::{BadInput, Base, Breakage, Cond, Fact, Members, Message, Outcome, Source, Truth};
use crate::common::{expected_time_utc, ground_truth_db};

pub const MSG_DB: &str = "nt_db/nt_msg.db";
pub const INFO_DB: &str = "nt_db/group_info.db";

const KINDS: &[&str] = &[
    "text",
    "image",
    "voice",
    "video",
    "file",
    "link",
    "quote",
    "red_packet",
    "recall",
    "system",
    "other",
];

pub const SOURCE: Source = Source {
    platform: "qq",
    dir_name: "qq",
    read,
    reads_private: false,
    private: None,
    wal_db: Some(MSG_DB),
    layout: &[MSG_DB, INFO_DB, "RecycleBin"],
    continues: true,
    dissolves: true,
    malformed_rows: true,
    media_statuses: &["copied", "missing", "outside_root"],
    roles: &["owner", "admin", "member"],
    warnings: &["malformed message body"],
    facts: &[
        Fact::All("messages", &[], &[Cond::In("kind", KINDS)]),
        Fact::Some("messages", &[Cond::Eq("kind", "text")]),
        Fact::Some("messages", &[Cond::Eq("kind", "image")]),
        Fact::Some("messages", &[Cond::Eq("kind", "voice")]),
        Fact::Some("messages", &[Cond::Eq("kind", "video")]),
        Fact::Some("messages", &[Cond::Eq("kind", "file")]),
        Fact::Some("messages", &[Cond::Eq("kind", "link")]),
        Fact::Some("messages", &[Cond::Eq("kind", "quote")]),
        Fact::Some("messages", &[Cond::Eq("kind", "red_packet")]),
        Fact::Some("messages", &[Cond::Eq("kind", "recall")]),
        Fact::Some("messages", &[Cond::Eq("kind", "system")]),
        Fact::Some("messages", &[Cond::Eq("kind", "other")]),
        // Unknown codes keep their raw code.
        Fact::All(
            "messages",
            &[Cond::Eq("kind", "other"), Cond::NonEmpty("raw_type")],
            &[Cond::StartsWithDigit("raw_type")],
        ),
        Fact::All(
            "media",
            &[Cond::Eq("status", "copied")],
            &[Cond::Prefix("source_path", "nt_data/")],
        ),
        Fact::Some("media", &[Cond::Eq("kind", "image")]),
        Fact::Some("media", &[Cond::Eq("kind", "image_thumb")]),
        Fact::Some("media", &[Cond::Eq("kind", "voice")]),
        Fact::Some("media", &[Cond::Eq("kind", "video")]),
        Fact::Some("media", &[Cond::Eq("kind", "file")]),
        Fact::Some("members", &[Cond::Eq("role", "owner")]),
        // The group number is the id.
        Fact::All("groups", &[], &[Cond::U64("group_id")]),
    ],
    small: &["--groups", "2", "--messages", "200", "--seed", "5"],
    bad_inputs: &[
        BadInput {
            what: "a database that is not SQLite",
            base: Base::Small,
            breaks: &[(
                MSG_DB,
                Breakage::Bytes(b"SQLCipher encrypted bytes..........."),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "not an SQLite database",
            },
        },
        BadInput {
            what: "a truncated database",
            base: Base::Small,
            breaks: &[(MSG_DB, Breakage::Truncate)],
            outcome: Outcome::Refused {
                code: 5,
                message: "truncated",
            },
        },
        BadInput {
            what: "a database without the message table",
            base: Base::Empty,
            breaks: &[(
                MSG_DB,
                Breakage::Sqlite(&["CREATE TABLE c2c_msg_table (\"40001\" INTEGER PRIMARY KEY);"]),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "group_msg_table",
            },
        },
        BadInput {
            what: "group_info.db without nt_msg.db",
            base: Base::Small,
            breaks: &[(MSG_DB, Breakage::Remove)],
            outcome: Outcome::Refused {
                code: 4,
                message: "nt_msg.db",
            },
        },
        BadInput {
            what: "a missing group_info.db",
            base: Base::Small,
            breaks: &[(INFO_DB, Breakage::Remove)],
            outcome: Outcome::Exported {
                warning: "group_info.db",
                senders_named_by_id: false,
            },
        },
        BadInput {
            what: "a database locked by the app",
            base: Base::Small,
            breaks: &[(MSG_DB, Breakage::Lock)],
            outcome: Outcome::Refused {
                code: 6,
                message: "locked by another process",
            },
        },
    ],
};

/// One decoded protobuf field: number and either an integer or bytes.
enum Field<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// All top-level fields, or `None` if the bytes are not valid protobuf (groups skipped).
fn decode(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    let mut depth = 0usize;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        if number == 0 {
            return None;
        }
        let field = match wire {
            0 => Field::Int(varint(buf, &mut pos)?),
            1 => {
                pos = pos.checked_add(8).filter(|p| *p <= buf.len())?;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            3 => {
                depth += 1;
                if depth > 32 {
                    return None;
                }
                continue;
            }
            4 => {
                depth = depth.checked_sub(1)?;
                continue;
            }
            5 => {
                pos = pos.checked_add(4).filter(|p| *p <= buf.len())?;
                continue;
            }
            _ => return None,
        };
        if depth == 0 {
            out.push((number, field));
        }
    }
    (depth == 0).then_some(out)
}

/// An element's type and its string fields.
type Element = (u64, BTreeMap<u64, Vec<u8>>);

/// A body's elements, or `None` when malformed.
fn elements(body: &[u8]) -> Option<Vec<Element>> {
    let mut out = Vec::new();
    for (number, field) in decode(body)? {
        if number != 40800 && number != 48000 {
            continue;
        }
        let Field::Bytes(bytes) = field else {
            return None;
        };
        let mut element_type = 0;
        let mut strings = BTreeMap::new();
        for (inner, value) in decode(bytes)? {
            match (inner, value) {
                (45002, Field::Int(t)) => element_type = t,
                (45101 | 47602 | 45403 | 45402, Field::Bytes(b)) => {
                    strings.insert(inner, b.to_vec());
                }
                (45101 | 47602 | 45403 | 45402 | 45002, _) => return None,
                _ => {}
            }
        }
        out.push((element_type, strings));
    }
    Some(out)
}

/// Messages by the rules of §2 (text = text and face elements; kinds by msgType and
/// subMsgType), members from `group_member3`.
pub fn read(root: &Path, _include_private: bool) -> Truth {
    let (_dir, conn) = ground_truth_db(root, MSG_DB);
    let mut stmt = conn
        .prepare(
            r#"SELECT "40027", "40001", "40011", "40012", "40013", "40020", "40050", "40090", "40093", CAST("40800" AS BLOB)
               FROM group_msg_table ORDER BY CAST("40027" AS TEXT), "40050", "40003", "40001""#,
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut messages: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    while let Some(row) = rows.next().unwrap() {
        let group: i64 = row.get(0).unwrap();
        let msg_id: i64 = row.get(1).unwrap();
        let msg_type: i64 = row.get(2).unwrap();
        let sub: Option<i64> = row.get(3).unwrap();
        let send_type: Option<i64> = row.get(4).unwrap();
        let uid: Option<String> = row.get(5).unwrap();
        let seconds: rusqlite::types::Value = row.get(6).unwrap();
        let card: Option<String> = row.get(7).unwrap();
        let nick: Option<String> = row.get(8).unwrap();
        let body: Option<Vec<u8>> = row.get(9).unwrap();
        let system = msg_type == 5;
        let direction = if system {
            "system"
        } else if matches!(send_type, Some(1 | 2)) {
            "sent"
        } else {
            "received"
        };
        let parsed = body.as_deref().and_then(elements);
        let text_of = |els: &[Element]| -> String {
            els.iter()
                .filter_map(|(t, f)| match t {
                    1 => f.get(&45101),
                    6 => f.get(&47602),
                    _ => None,
                })
                .map(|b| String::from_utf8(b.clone()).unwrap())
                .collect()
        };
        let (kind, text) = match &parsed {
            // A grey tip with no body is still a system message.
            None if system && body.is_none() => (Some("system"), None),
            None => (Some("other"), None),
            Some(els) => match msg_type {
                2 => {
                    let text = text_of(els);
                    let pictures = els.iter().any(|(t, _)| *t == 2);
                    if sub.unwrap_or(0) & 128 != 0 {
                        (Some("link"), None)
                    } else if text.is_empty() && pictures {
                        (Some("image"), None)
                    } else {
                        (Some("text"), Some(text))
                    }
                }
                3 => (Some("file"), None),
                5 if sub == Some(4) => (Some("recall"), None),
                5 => (Some("system"), None),
                6 => (Some("voice"), None),
                7 => (Some("video"), None),
                9 => (Some("quote"), None),
                10 => (Some("red_packet"), None),
                11 => (Some("link"), None),
                8 | 1 | 12 | 17 | 99 => (Some("other"), None),
                _ => (None, None),
            },
        };
        let name = card
            .filter(|c| !c.is_empty())
            .or(nick.filter(|n| !n.is_empty()));
        messages
            .entry(group.to_string())
            .or_default()
            .push(Message {
                message_id: msg_id.to_string(),
                time_utc: expected_time_utc(&seconds, 1000),
                direction,
                sender_id: if system {
                    String::new()
                } else {
                    uid.unwrap_or_default()
                },
                sender_name: if system { None } else { name },
                kind,
                raw_type: None,
                text,
            });
    }
    let mut members = BTreeMap::new();
    let mut sources = vec![MSG_DB];
    if root.join(INFO_DB).exists() {
        sources.push(INFO_DB);
        let (_d, info) = ground_truth_db(root, INFO_DB);
        let mut stmt = info
            .prepare(
                r#"SELECT "60001", count(*), sum("64016" != 0) FROM group_member3 GROUP BY "60001""#,
            )
            .unwrap();
        let counts: Vec<(i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (group, count, left) in counts {
            members.insert(
                group.to_string(),
                Members {
                    count: count as usize,
                    left: Some(left as usize),
                },
            );
        }
    }
    Truth {
        messages,
        members,
        sources: super::with_wal(root, &sources),
    }
}
