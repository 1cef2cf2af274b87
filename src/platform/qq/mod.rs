//! QQ NT: `nt_db/nt_msg.db` and `nt_db/group_info.db` (decrypted) and the `nt_data/` cache.
//! Layout: `../shared/spec/sources.md` §2.

pub(crate) mod body;
mod group;
pub(crate) mod message;
pub mod proto;
pub mod schema;

mod more;
pub mod retention;
pub mod simulate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;

use crate::platform::{Descriptor, PlatformRef};
use crate::records::{CacheClass, Group, MediaKind, Member, Role, Warning};
use crate::source::sqlite::{self, Database};
use crate::source::stream::{self, MessageStream};
use crate::source::{Source, SourceError, SourceFile};
use message::GroupKey;

/// QQ NT, as the registry knows it.
pub static QQ: Descriptor = Descriptor {
    name: "qq",
    aliases: &[],
    expected_layout: "QQ NT nt_db/nt_msg.db (table group_msg_table)",
    probe,
    open,
    cache_class,
    retention: &retention::RETENTION,
    simulate: simulate::simulate_qq,
    simulate_more: Some(more::simulate_more_qq),
};

pub const MSG_DB: &str = "nt_db/nt_msg.db";
pub const INFO_DB: &str = "nt_db/group_info.db";

/// A directory is QQ's when it holds `nt_db/nt_msg.db`, which must then be SQLite. A
/// `group_info.db` without `nt_msg.db` is a QQ directory missing its messages.
pub fn probe(root: &Path) -> Result<bool, SourceError> {
    let path = root.join(MSG_DB);
    if path.is_file() {
        if !sqlite::is_sqlite(&path)? {
            return Err(SourceError::NotSqlite { path });
        }
        return Ok(true);
    }
    if root.join(INFO_DB).is_file() {
        return Err(SourceError::Unrecognized {
            path: root.to_path_buf(),
            detail: format!(
                "{INFO_DB} is there but {MSG_DB}, which holds the messages, is missing; copy the whole nt_db directory"
            ),
        });
    }
    Ok(false)
}

pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(QqSource::open(root)?))
}

pub struct QqSource {
    root: PathBuf,
    messages_db: Arc<Database>,
    info_db: Option<Database>,
    info: group::GroupInfo,
    columns: Vec<String>,
    key: GroupKey,
    has_rowid: bool,
    owner: Option<String>,
    warnings: Mutex<Vec<Warning>>,
}

fn missing(detail: String) -> SourceError {
    SourceError::MissingTable {
        platform: &QQ,
        detail,
    }
}

impl QqSource {
    pub fn open(root: &Path) -> Result<QqSource, SourceError> {
        let path = root.join(MSG_DB);
        if !path.is_file() {
            return Err(missing(format!("no {MSG_DB} in {}", root.display())));
        }
        let messages_db = Database::open(&path)?;
        let conn = messages_db.connect()?;
        let tables = Database::tables(&conn, &path)?;
        if !tables.iter().any(|t| t == message::TABLE) {
            return Err(missing(format!(
                "no table `{}` in {MSG_DB}",
                message::TABLE
            )));
        }
        let columns = Database::columns(&conn, &path, message::TABLE)?;
        for column in message::REQUIRED_COLUMNS {
            if !columns.iter().any(|c| c == column) {
                return Err(missing(format!(
                    "table `{}` in {MSG_DB} has no column `{column}`",
                    message::TABLE
                )));
            }
        }
        let group_columns: Vec<&'static str> = message::GROUP_COLUMNS
            .into_iter()
            .filter(|g| columns.iter().any(|c| c == g))
            .collect();
        let Some(first) = group_columns.first().copied() else {
            return Err(missing(format!(
                "table `{}` in {MSG_DB} has no group number column (`40027`, `40030` or `40021`)",
                message::TABLE
            )));
        };
        let map = |e| sqlite::map_sqlite_error(&path, e);
        // Rows missing the first group column are rare; only then is the slower,
        // index-less comparison needed.
        let some_missing: bool = conn
            .query_row(
                &format!(
                    "SELECT EXISTS(SELECT 1 FROM {} WHERE \"{first}\" IS NULL)",
                    message::TABLE
                ),
                [],
                |r| r.get(0),
            )
            .map_err(map)?;
        let key = if some_missing && group_columns.len() > 1 {
            GroupKey::Coalesce(group_columns)
        } else {
            GroupKey::Column(first)
        };
        let has_rowid = conn
            .prepare(&format!("SELECT rowid FROM {} LIMIT 0", message::TABLE))
            .is_ok();
        let has = |name: &str| columns.iter().any(|c| c == name);
        // The account owner is the sender of any message sent from one of its devices.
        let owner = if has("40013") && has("40020") {
            conn.query_row(
                &format!(
                    "SELECT \"40020\" FROM {} WHERE \"40013\" IN (1, 2) AND \"40020\" IS NOT NULL AND \"40020\" != '' LIMIT 1",
                    message::TABLE
                ),
                [],
                |r| Ok(group_text(r.get_ref(0)?)),
            )
            .ok()
            .flatten()
        } else {
            None
        };
        drop(conn);

        let mut warnings: Vec<Warning> = messages_db.wal_warning(root).into_iter().collect();
        let info_path = root.join(INFO_DB);
        let (info_db, info) = if info_path.is_file() {
            let db = Database::open(&info_path)?;
            warnings.extend(db.wal_warning(root));
            let conn = db.connect()?;
            let info = group::GroupInfo::load(&conn, &mut warnings)?;
            drop(conn);
            (Some(db), info)
        } else {
            warnings.push(Warning {
                location: INFO_DB.into(),
                message: "not found: group names and member lists are left out".into(),
            });
            (None, group::GroupInfo::default())
        };
        Ok(QqSource {
            root: root.to_path_buf(),
            messages_db: Arc::new(messages_db),
            info_db,
            info,
            columns,
            key,
            has_rowid,
            owner,
            warnings: Mutex::new(warnings),
        })
    }

    /// Adds each sender's uid, QQ number, cards and nicknames as the messages give them.
    fn message_names(
        &self,
        names: &mut std::collections::BTreeMap<
            String,
            (Option<String>, std::collections::BTreeSet<String>),
        >,
    ) -> Result<(), SourceError> {
        let column = |c: &str| {
            if self.columns.iter().any(|have| have == c) {
                format!("\"{c}\"")
            } else {
                "NULL".to_string()
            }
        };
        let sql = format!(
            "SELECT DISTINCT {}, {}, {}, {} FROM {}",
            column("40020"),
            column("40033"),
            column("40090"),
            column("40093"),
            message::TABLE
        );
        let path = Path::new(MSG_DB);
        let conn = self.messages_db.connect()?;
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| crate::source::sqlite::map_sqlite_error(path, e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| crate::source::sqlite::map_sqlite_error(path, e))?;
        let text = |value: ValueRef| match value {
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                Some(String::from_utf8_lossy(t).into_owned()).filter(|s| !s.is_empty())
            }
            ValueRef::Integer(i) if i != 0 => Some(i.to_string()),
            _ => None,
        };
        while let Some(row) = rows
            .next()
            .map_err(|e| crate::source::sqlite::map_sqlite_error(path, e))?
        {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let uin = text(get(1));
            let Some(uid) = text(get(0)).or(uin.clone()) else {
                continue;
            };
            let person = names.entry(uid).or_default();
            if person.0.is_none() {
                person.0 = uin;
            }
            person.1.extend(text(get(2)));
            person.1.extend(text(get(3)));
        }
        Ok(())
    }

    fn warn(&self, new: Vec<Warning>) {
        if let Ok(mut all) = self.warnings.lock() {
            for w in new {
                if !all.contains(&w) {
                    all.push(w);
                }
            }
        }
    }
}

fn group_text(value: ValueRef) -> Option<String> {
    match value {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

impl Source for QqSource {
    fn platform(&self) -> PlatformRef {
        &QQ
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn owner_id(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        let conn = self.messages_db.connect()?;
        let path = Path::new(MSG_DB);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT DISTINCT {} FROM {}",
                self.key.expression(),
                message::TABLE
            ))
            .map_err(|e| sqlite::map_sqlite_error(path, e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| sqlite::map_sqlite_error(path, e))?;
        let mut ids: Vec<String> = self
            .info
            .details
            .keys()
            .chain(&self.info.member_groups)
            .cloned()
            .collect();
        let mut without_group = false;
        while let Some(row) = rows.next().map_err(|e| sqlite::map_sqlite_error(path, e))? {
            match row.get_ref(0).ok().and_then(message::group_id_of) {
                Some(id) => ids.push(id),
                None => without_group = true,
            }
        }
        if without_group {
            self.warn(vec![Warning {
                location: format!("{MSG_DB} {}", message::TABLE),
                message: "some rows have no group number (40027/40030/40021): they belong to no group and are left out".into(),
            }]);
        }
        ids.sort();
        ids.dedup();
        Ok(ids
            .into_iter()
            .map(|id| {
                let detail = self.info.details.get(&id);
                Group {
                    name: detail.map(|d| d.name.clone()).unwrap_or_default(),
                    owner_id: detail.and_then(|d| d.owner_uid.clone()),
                    declared_member_count: detail.and_then(|d| d.member_count),
                    created_ms: detail
                        .and_then(|d| d.created_s)
                        .and_then(|s| s.checked_mul(1000)),
                    // group_msg_table holds group chats only (one-to-one chats live elsewhere).
                    is_group: true,
                    id,
                }
            })
            .collect())
    }

    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError> {
        let Some(db) = &self.info_db else {
            return Ok(Vec::new());
        };
        let conn = db.connect()?;
        let mut warnings = Vec::new();
        let members = self.info.members(&conn, group_id, &mut warnings)?;
        self.warn(warnings);
        Ok(members)
    }

    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError> {
        let db = Arc::clone(&self.messages_db);
        let query = message::Query {
            group_id: group_id.to_string(),
            key: self.key.clone(),
            columns: self.columns.clone(),
            has_rowid: self.has_rowid,
        };
        Ok(stream::spawn("qq-messages", move |emit| {
            let conn = db.connect()?;
            message::read(&conn, &query, emit)
        }))
    }

    fn source_files(&self) -> Vec<SourceFile> {
        let info_files = self.info_db.iter().flat_map(|db| db.files.iter());
        self.messages_db
            .files
            .iter()
            .chain(info_files)
            .map(|path| SourceFile::under(&self.root, path))
            .collect()
    }

    fn display_name(&self, member_id: &str) -> Option<String> {
        self.info.nicknames.get(member_id).cloned()
    }

    /// Everyone in `group_member3`, with every nickname and group card they have, and
    /// every sender with the cards and nicknames their messages carry (`40090`, `40093`):
    /// a sender in no member list is still named in grey tips. One scan of the message
    /// table, bounded in memory by distinct names.
    fn people(&self) -> Vec<Member> {
        let mut names = self.info.names.clone();
        if let Err(error) = self.message_names(&mut names) {
            self.warn(vec![Warning {
                location: MSG_DB.into(),
                message: format!(
                    "cannot read the senders' names from the messages ({error}): names only \
                     the messages hold may be left in anonymized text"
                ),
            }]);
        }
        names
            .iter()
            .map(|(uid, (uin, names))| Member {
                member_id: uid.clone(),
                alias: uin.clone(),
                display_name: String::new(),
                group_nickname: String::new(),
                other_names: names.iter().cloned().collect(),
                role: Role::Member,
                joined_ms: None,
                left: false,
            })
            .collect()
    }

    fn warnings(&self) -> Vec<Warning> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// The QQ NT cache layout of sources.md §2.
pub fn cache_class(rel_path: &str) -> CacheClass {
    let parts: Vec<&str> = rel_path.split('/').filter(|p| !p.is_empty()).collect();
    let in_thumb_dir = parts
        .iter()
        .rev()
        .skip(1)
        .any(|p| p.eq_ignore_ascii_case("Thumb"));
    match parts.as_slice() {
        ["RecycleBin", ..] => CacheClass::RecycleBin,
        ["nt_db", _, ..] => CacheClass::Database,
        ["nt_data", area, _, ..] => match area.to_ascii_lowercase().as_str() {
            "pic" if in_thumb_dir => CacheClass::Media(MediaKind::ImageThumb),
            "pic" => CacheClass::Media(MediaKind::Image),
            "ptt" => CacheClass::Media(MediaKind::Voice),
            "video" if in_thumb_dir => CacheClass::Media(MediaKind::VideoThumb),
            "video" => CacheClass::Media(MediaKind::Video),
            "file" => CacheClass::Media(MediaKind::File),
            "emoji" | "emoji_temp" | "marketface" => CacheClass::Media(MediaKind::Emoji),
            "avatar" | "head" => CacheClass::Avatar,
            _ if in_thumb_dir => CacheClass::Media(MediaKind::ImageThumb),
            _ => CacheClass::Other,
        },
        _ => CacheClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::proto::tests::{bytes_field, key, varint};
    use super::*;
    use crate::records::{Direction, Kind, Message};

    /// A body with one text element under `field`.
    fn text_body(field: u32, text: &str) -> Vec<u8> {
        let mut element = Vec::new();
        key(&mut element, 45002, 0);
        varint(&mut element, 1);
        bytes_field(&mut element, 45101, text.as_bytes());
        let mut body = Vec::new();
        bytes_field(&mut body, field, &element);
        body
    }

    /// A QQ directory whose nt_msg.db is built by `sql`.
    fn source_with(sql: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("qq");
        std::fs::create_dir_all(root.join("nt_db")).unwrap();
        let conn = rusqlite::Connection::open(root.join(MSG_DB)).unwrap();
        conn.execute_batch(sql).unwrap();
        (dir, root)
    }

    fn read_all(source: &dyn Source, group: &str) -> Vec<Message> {
        source
            .messages(group)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    const MINIMAL: &str = r#"CREATE TABLE group_msg_table ("40001" INTEGER, "40011" INTEGER, "40050" INTEGER, "40800" BLOB, "40027" INTEGER, "40030" INTEGER, "40021" TEXT, "40020" TEXT, "40013" INTEGER);"#;

    #[test]
    fn rows_without_the_first_group_column_are_still_found() {
        let (_dir, root) = source_with(MINIMAL);
        let conn = rusqlite::Connection::open(root.join(MSG_DB)).unwrap();
        let mut insert = conn
            .prepare(r#"INSERT INTO group_msg_table VALUES (?1, 2, ?2, ?3, ?4, ?5, ?6, 'u_a', 0)"#)
            .unwrap();
        type Row<'a> = (Option<i64>, i64, Option<i64>, Option<i64>, Option<&'a str>);
        let rows: [Row; 4] = [
            (Some(1), 100, Some(123), Some(123), Some("123")),
            (Some(2), 101, None, Some(123), Some("123")),
            (Some(3), 102, None, None, Some("123")),
            (None, 99, Some(456), Some(456), None),
        ];
        for (id, time, g1, g2, code) in rows {
            insert
                .execute(rusqlite::params![
                    id,
                    time,
                    text_body(48000, "hi"),
                    g1,
                    g2,
                    code
                ])
                .unwrap();
        }
        drop(insert);
        drop(conn);
        let source = open(&root).unwrap();
        let groups: Vec<String> = source.groups().unwrap().into_iter().map(|g| g.id).collect();
        assert_eq!(groups, ["123", "456"]);
        let messages = read_all(source.as_ref(), "123");
        assert_eq!(messages.len(), 3);
        assert!(messages
            .iter()
            .all(|m| m.text == "hi" && m.kind == Kind::Text));
        assert_eq!(messages[0].time_ms, Some(100_000));
        // No msgId: the row id stands in, with a warning.
        let other = read_all(source.as_ref(), "456");
        assert_eq!(other[0].message_id, "rowid:4");
        assert!(other[0].warning.is_some());
        assert!(source
            .warnings()
            .iter()
            .any(|w| w.location == INFO_DB && w.message.contains("not found")));
    }

    #[test]
    fn missing_tables_and_columns_are_clear_errors() {
        let (_dir, root) = source_with("CREATE TABLE c2c_msg_table (x);");
        assert!(probe(&root).unwrap());
        let error = open(&root).err().unwrap().to_string();
        assert!(error.contains("group_msg_table"), "{error}");
        let (_dir, root) = source_with(
            r#"CREATE TABLE group_msg_table ("40001" INTEGER, "40011" INTEGER, "40050" INTEGER, "40027" INTEGER);"#,
        );
        let error = open(&root).err().unwrap().to_string();
        assert!(error.contains("`40800`"), "{error}");
        let (_dir, root) = source_with(
            r#"CREATE TABLE group_msg_table ("40001" INTEGER, "40011" INTEGER, "40050" INTEGER, "40800" BLOB);"#,
        );
        let error = open(&root).err().unwrap().to_string();
        assert!(error.contains("group number"), "{error}");
    }

    #[test]
    fn probe_decides_by_content() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!probe(dir.path()).unwrap());
        std::fs::create_dir_all(dir.path().join("nt_db")).unwrap();
        std::fs::write(dir.path().join(INFO_DB), b"x").unwrap();
        assert!(
            probe(dir.path()).is_err(),
            "group_info.db without nt_msg.db"
        );
        std::fs::write(dir.path().join(MSG_DB), b"encrypted garbage, not sqlite").unwrap();
        assert!(matches!(
            probe(dir.path()),
            Err(SourceError::NotSqlite { .. })
        ));
    }

    #[test]
    fn directions_senders_and_names_follow_the_row() {
        let (_dir, root) = source_with(
            r#"CREATE TABLE group_msg_table ("40001" INTEGER PRIMARY KEY, "40003" INTEGER, "40011" INTEGER, "40012" INTEGER, "40013" INTEGER, "40020" TEXT, "40027" INTEGER, "40050" INTEGER, "40090" TEXT, "40093" TEXT, "40800" BLOB);"#,
        );
        let conn = rusqlite::Connection::open(root.join(MSG_DB)).unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO group_msg_table VALUES (?1, ?2, ?3, ?4, ?5, ?6, 7, 1000, ?7, ?8, ?9)",
            )
            .unwrap();
        let text = text_body(40800, "x");
        let mut tip = Vec::new();
        {
            let mut element = Vec::new();
            key(&mut element, 45002, 0);
            varint(&mut element, 8);
            bytes_field(&mut element, 45101, "你撤回了一条消息".as_bytes());
            bytes_field(&mut tip, 40800, &element);
        }
        type Row<'a> = (
            i64,
            i64,
            i64,
            Option<i64>,
            i64,
            &'a str,
            &'a str,
            &'a str,
            &'a [u8],
        );
        let rows: [Row; 5] = [
            (10, 1, 2, Some(1), 0, "u_b", "", "昵称", &text),
            (11, 2, 2, Some(1), 1, "u_me", "名片", "me", &text),
            (12, 3, 2, Some(1), 2, "u_me", "", "", &text),
            (13, 4, 5, Some(4), 0, "", "", "", &tip),
            (14, 5, 4242, None, 0, "u_c", "", "", &text),
        ];
        for (id, seq, t, sub, send, uid, card, nick, body) in rows {
            insert
                .execute(rusqlite::params![
                    id, seq, t, sub, send, uid, card, nick, body
                ])
                .unwrap();
        }
        drop(insert);
        drop(conn);
        let source = open(&root).unwrap();
        assert_eq!(source.owner_id(), Some("u_me"));
        let m = read_all(source.as_ref(), "7");
        let summary: Vec<_> = m
            .iter()
            .map(|m| {
                (
                    m.direction,
                    m.sender_id.as_deref(),
                    m.sender_name.as_deref(),
                    m.kind,
                    m.raw_type.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Direction::Received,
                    Some("u_b"),
                    Some("昵称"),
                    Kind::Text,
                    "2/1"
                ),
                (
                    Direction::Sent,
                    Some("u_me"),
                    Some("名片"),
                    Kind::Text,
                    "2/1"
                ),
                (Direction::Sent, Some("u_me"), None, Kind::Text, "2/1"),
                (Direction::System, None, None, Kind::Recall, "5/4"),
                (Direction::Received, Some("u_c"), None, Kind::Other, "4242"),
            ]
        );
        assert_eq!(m[3].text, "你撤回了一条消息");
        assert_eq!(m[4].text, "x");
        assert!(m.iter().all(|m| m.warning.is_none()));
    }

    #[test]
    fn classifies_the_cache_layout() {
        let media = CacheClass::Media;
        let cases = [
            ("nt_db/nt_msg.db", CacheClass::Database),
            ("nt_db/nt_msg.db-wal", CacheClass::Database),
            ("nt_db/group_info.db", CacheClass::Database),
            ("RecycleBin/Pic/a.jpg", CacheClass::RecycleBin),
            (
                "RecycleBin/nt_data/Pic/2025-06/Thumb/a_0.jpg",
                CacheClass::RecycleBin,
            ),
            ("nt_data/Pic/2025-06/Ori/a.jpg", media(MediaKind::Image)),
            (
                "nt_data/Pic/2025-06/Thumb/a_0.jpg",
                media(MediaKind::ImageThumb),
            ),
            ("nt_data/Ptt/2025-06/Ori/a.amr", media(MediaKind::Voice)),
            ("nt_data/Video/2025-06/Ori/a.mp4", media(MediaKind::Video)),
            (
                "nt_data/Video/2025-06/Thumb/a_0.png",
                media(MediaKind::VideoThumb),
            ),
            ("nt_data/File/报价单.xlsx", media(MediaKind::File)),
            ("nt_data/Emoji/x.gif", media(MediaKind::Emoji)),
            ("nt_data/avatar/x.png", CacheClass::Avatar),
            ("nt_data/Other/Thumb/x.jpg", media(MediaKind::ImageThumb)),
            ("nt_data/Other/x", CacheClass::Other),
            ("nt_data", CacheClass::Other),
            ("Thumb", CacheClass::Other),
            ("readme.txt", CacheClass::Other),
        ];
        for (path, want) in cases {
            assert_eq!(cache_class(path), want, "{path}");
        }
    }
}
