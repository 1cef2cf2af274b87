//! WeChat (sources.md §1): `EnMicroMsg.db` queried directly.

use std::collections::BTreeMap;
use std::path::Path;

use super::{BadInput, Base, Breakage, Cond, Fact, Members, Message, Outcome, Source, Truth};
use crate::common::{expected_time_utc, ground_truth_db};

pub const DB: &str = "EnMicroMsg.db";

pub const SOURCE: Source = Source {
    platform: "wechat",
    dir_name: "wx",
    read,
    reads_private: true,
    private: Some(Cond::NotSuffix("group_id", "@chatroom")),
    wal_db: Some(DB),
    layout: &[DB],
    continues: true,
    dissolves: true,
    malformed_rows: false,
    media_statuses: &["copied", "missing", "outside_root", "not_downloaded"],
    roles: &["owner", "admin", "member"],
    warnings: &[],
    facts: &[
        Fact::All("messages", &[], &[Cond::Suffix("group_id", "@chatroom")]),
        Fact::Some("members", &[]),
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
            what: "a database without the message table",
            base: Base::Empty,
            breaks: &[(
                DB,
                Breakage::Sqlite(&["CREATE TABLE rcontact(username TEXT PRIMARY KEY, alias TEXT, conRemark TEXT, nickname TEXT, type INT);"]),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "not a wechat database: no table `message` in EnMicroMsg.db",
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

/// Messages by the rules of §1: the sender of a received group message is the prefix before
/// the first `:` (ending before the first newline); sent messages are the owner's; system
/// rows (10000) have none. A one-to-one chat's received messages are from its talker.
pub fn read(root: &Path, include_private: bool) -> Truth {
    let (_dir, conn) = ground_truth_db(root, DB);
    let owner: String = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    let filter = if include_private {
        "talker IS NOT NULL"
    } else {
        "talker LIKE '%@chatroom'"
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT talker, msgId, msgSvrId, type, isSend, createTime, CAST(content AS BLOB) FROM message \
             WHERE {filter} ORDER BY talker, createTime, msgId"
        ))
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut messages: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    while let Some(row) = rows.next().unwrap() {
        let talker: String = row.get(0).unwrap();
        let local: i64 = row.get(1).unwrap();
        let server: Option<i64> = row.get(2).unwrap();
        let kind: Option<i64> = row.get(3).unwrap();
        let is_send: Option<i64> = row.get(4).unwrap();
        let created: rusqlite::types::Value = row.get(5).unwrap();
        let content: Option<Vec<u8>> = row.get(6).unwrap();
        let content = content.map(|c| String::from_utf8(c).unwrap());
        let group = talker.ends_with("@chatroom");
        let (direction, sender_id, payload) = if kind == Some(10000) {
            ("system", String::new(), content.clone())
        } else if is_send == Some(1) {
            ("sent", owner.clone(), content.clone())
        } else if !group {
            ("received", talker.clone(), content.clone())
        } else {
            match content.as_deref().and_then(|c| {
                let colon = c.find(':')?;
                let nl = c.find('\n')?;
                (colon > 0 && colon < nl).then(|| (c[..colon].to_string(), c[nl + 1..].to_string()))
            }) {
                Some((sender, payload)) => ("received", sender, Some(payload)),
                None => ("received", String::new(), content.clone()),
            }
        };
        messages.entry(talker).or_default().push(Message {
            message_id: match server {
                Some(s) if s != 0 => s.to_string(),
                _ => local.to_string(),
            },
            time_utc: expected_time_utc(&created, 1),
            direction,
            sender_id,
            sender_name: None,
            kind: None,
            raw_type: None,
            text: if kind == Some(1) { payload } else { None },
        });
    }
    let mut members = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT chatroomname, memberlist FROM chatroom")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let room: String = row.get(0).unwrap();
        let list: Option<String> = row.get(1).unwrap();
        let count = list
            .unwrap_or_default()
            .split(';')
            .filter(|m| !m.is_empty())
            .count();
        members.insert(room, Members { count, left: None });
    }
    Truth {
        messages,
        members,
        sources: super::with_wal(root, &[DB]),
    }
}
