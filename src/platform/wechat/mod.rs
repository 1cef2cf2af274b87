//! WeChat for Android: `EnMicroMsg.db` (decrypted) and its media cache.
//! Layout: `../shared/spec/sources.md` §1.

mod contact;
pub(crate) mod message;
pub mod schema;
mod spool;
pub(crate) mod xml;

pub mod more;
pub mod retention;
pub mod simulate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::platform::{Descriptor, PlatformRef};
use crate::records::{CacheClass, Group, MediaKind, Member, Warning};
use crate::source::sqlite::{self, Database};
use crate::source::stream::{self, MessageStream};
use crate::source::{Source, SourceError, SourceFile};

/// WeChat for Android, as the registry knows it.
pub static WECHAT: Descriptor = Descriptor {
    name: "wechat",
    aliases: &[],
    expected_layout: "WeChat EnMicroMsg.db (tables message, rcontact)",
    probe,
    open,
    cache_class,
    retention: &retention::RETENTION,
    simulate: simulate::simulate_wechat,
    simulate_more: Some(more::simulate_more_wechat),
};

pub const DATABASE: &str = "EnMicroMsg.db";
const REQUIRED_TABLES: [&str; 2] = ["message", "rcontact"];
const MESSAGE_COLUMNS: [&str; 7] = [
    "msgId",
    "msgSvrId",
    "type",
    "isSend",
    "createTime",
    "talker",
    "content",
];

/// A directory is WeChat's when it holds `EnMicroMsg.db`; that file must then be a WeChat
/// database, or detection fails with the reason.
pub fn probe(root: &Path) -> Result<bool, SourceError> {
    let path = root.join(DATABASE);
    if !path.is_file() {
        return Ok(false);
    }
    if !sqlite::is_sqlite(&path)? {
        return Err(SourceError::NotSqlite { path });
    }
    Ok(true)
}

pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(WechatSource::open(root)?))
}

pub struct WechatSource {
    root: PathBuf,
    db: Arc<Database>,
    owner: Option<String>,
    contacts: contact::Contacts,
    has_imginfo: bool,
    has_appattach: bool,
    warnings: Mutex<Vec<Warning>>,
    spools: Mutex<SpoolState>,
    /// Stops a scan still running when the source is dropped.
    cancel_scan: Arc<AtomicBool>,
    /// Set once `databases_read` has said so: the database must not be read again.
    released: AtomicBool,
    /// Per conversation, the earliest createTime wanted (`set_message_floors`).
    floors: Mutex<std::collections::HashMap<String, i64>>,
}

impl Drop for WechatSource {
    fn drop(&mut self) {
        self.cancel_scan.store(true, Ordering::Relaxed);
    }
}

/// The one-pass read of many conversations ([`spool`]), once prepared.
enum SpoolState {
    Unprepared,
    Scanning(std::thread::JoinHandle<Option<spool::Spools>>),
    /// `None`: no spools (not worth it, or the scan failed); read through the index.
    Done(Option<Arc<spool::Spools>>),
}

impl WechatSource {
    pub fn open(root: &Path) -> Result<WechatSource, SourceError> {
        let path = root.join(DATABASE);
        let db = Database::open(&path)?;
        let conn = db.connect()?;
        let tables = Database::tables(&conn, &path)?;
        for table in REQUIRED_TABLES {
            if !tables.iter().any(|t| t == table) {
                return Err(SourceError::MissingTable {
                    platform: &WECHAT,
                    detail: format!("no table `{table}` in {DATABASE}"),
                });
            }
        }
        let columns = Database::columns(&conn, &path, "message")?;
        for column in MESSAGE_COLUMNS {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                return Err(SourceError::MissingTable {
                    platform: &WECHAT,
                    detail: format!("table `message` in {DATABASE} has no column `{column}`"),
                });
            }
        }
        let has = |name: &str| tables.iter().any(|t| t == name);
        let mut warnings = Vec::new();
        warnings.extend(db.wal_warning(root));
        let owner = contact::owner(&conn, has("userinfo"), &mut warnings)?;
        let contacts = contact::Contacts::load(&conn, has("chatroom"), &mut warnings)?;
        for optional in ["ImgInfo2", "appattach", "chatroom", "userinfo"] {
            if !has(optional) {
                warnings.push(Warning {
                    location: DATABASE.into(),
                    message: format!("no table `{optional}`: related data is left out"),
                });
            }
        }
        Ok(WechatSource {
            root: root.to_path_buf(),
            has_imginfo: has("ImgInfo2"),
            has_appattach: has("appattach"),
            db: Arc::new(db),
            owner,
            contacts,
            warnings: Mutex::new(warnings),
            spools: Mutex::new(SpoolState::Unprepared),
            cancel_scan: Arc::new(AtomicBool::new(false)),
            released: AtomicBool::new(false),
            floors: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The spool of `talker`, waiting for the scan if it is still running.
    fn spooled(&self, talker: &str) -> Option<(Arc<spool::Spools>, spool::Spooled)> {
        let mut state = self.spools.lock().ok()?;
        *state = match std::mem::replace(&mut *state, SpoolState::Unprepared) {
            SpoolState::Scanning(handle) => {
                SpoolState::Done(handle.join().ok().flatten().map(Arc::new))
            }
            other => other,
        };
        let SpoolState::Done(Some(spools)) = &*state else {
            return None;
        };
        let path = spools.take(talker)?;
        Some((Arc::clone(spools), path))
    }
}

impl Source for WechatSource {
    fn platform(&self) -> PlatformRef {
        &WECHAT
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn owner_id(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        let conn = self.db.connect()?;
        let path = Path::new(DATABASE);
        // With an index that starts with `talker`, the conversations are found by one seek
        // each instead of a pass over the whole index (a 64 ms pass at 1M messages, before
        // anything else can start).
        let sql = if talker_leads_an_index(&conn) {
            TALKERS_BY_SEEK
        } else {
            "SELECT DISTINCT talker FROM message WHERE talker IS NOT NULL"
        };
        let mut stmt = conn
            .prepare(sql)
            .map_err(|e| sqlite::map_sqlite_error(path, e))?;
        let talkers = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| sqlite::map_sqlite_error(path, e))?
            .filter_map(Result::ok);
        let mut ids: Vec<String> = talkers.collect();
        ids.extend(self.contacts.rooms.keys().cloned());
        ids.sort();
        ids.dedup();
        Ok(ids
            .into_iter()
            .map(|id| self.contacts.group(&id, self.owner.as_deref()))
            .collect())
    }

    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError> {
        let mut warnings = Vec::new();
        let members = self.contacts.members(group_id, &mut warnings);
        if !warnings.is_empty() {
            if let Ok(mut all) = self.warnings.lock() {
                for w in warnings {
                    if !all.contains(&w) {
                        all.push(w);
                    }
                }
            }
        }
        Ok(members)
    }

    fn prepare_messages(&self, group_ids: &[String]) {
        let Ok(mut state) = self.spools.lock() else {
            return;
        };
        if !matches!(*state, SpoolState::Unprepared) {
            return;
        }
        let db = Arc::clone(&self.db);
        let talkers = group_ids.to_vec();
        let (has_imginfo, has_appattach) = (self.has_imginfo, self.has_appattach);
        let cancel = Arc::clone(&self.cancel_scan);
        let scan = std::thread::Builder::new()
            .name("wechat-scan".into())
            .spawn(move || {
                // A failed scan only means the slower path: `messages` reports real errors.
                spool::build(
                    || db.connect(),
                    &talkers,
                    has_imginfo,
                    has_appattach,
                    &cancel,
                )
                .ok()
                .flatten()
            });
        *state = match scan {
            Ok(handle) => SpoolState::Scanning(handle),
            Err(_) => SpoolState::Done(None),
        };
    }

    fn set_message_floors(&self, floors: &std::collections::HashMap<String, i64>) {
        if floors.is_empty() {
            return;
        }
        if let Ok(mut mine) = self.floors.lock() {
            mine.clone_from(floors);
        }
        // An increment reads little of each conversation: the index seeks beat one scan of
        // the whole table.
        if let Ok(mut state) = self.spools.lock() {
            if matches!(*state, SpoolState::Unprepared) {
                *state = SpoolState::Done(None);
            }
        }
    }

    fn databases_read(&self) -> bool {
        // Contacts and members were read when the source was opened.
        let read = self
            .spools
            .lock()
            .is_ok_and(|state| matches!(&*state, SpoolState::Done(Some(s)) if s.complete));
        if read {
            self.released.store(true, Ordering::Relaxed);
        }
        read
    }

    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError> {
        let query = message::Query {
            talker: group_id.to_string(),
            floor_ms: self
                .floors
                .lock()
                .ok()
                .and_then(|f| f.get(group_id).copied()),
            owner: self.owner.clone(),
            is_group: group_id.ends_with("@chatroom"),
            has_imginfo: self.has_imginfo,
            has_appattach: self.has_appattach,
        };
        if let Some((spools, spooled)) = self.spooled(group_id) {
            return Ok(stream::spawn_parsed(
                "wechat",
                move |emit| {
                    let _spools = spools; // keeps the spool directory until this ends
                    spool::read(&spooled, emit)
                },
                move |raw| message::interpret(raw, &query),
            ));
        }
        if self.released.load(Ordering::Relaxed) {
            // The export has taken the databases' final hashes: reading now would escape them.
            return Err(SourceError::Corrupt {
                path: self.db.source_path.clone(),
                detail: format!(
                    "conversation {group_id} asked for after the database was released \
                     (each conversation is read once, after prepare_messages)"
                ),
            });
        }
        let db = Arc::clone(&self.db);
        let parse_query = query.clone();
        Ok(stream::spawn_parsed(
            "wechat",
            move |emit| {
                let conn = db.connect()?;
                message::read(&conn, &query, emit)
            },
            move |raw| message::interpret(raw, &parse_query),
        ))
    }

    fn source_files(&self) -> Vec<SourceFile> {
        self.db
            .files
            .iter()
            .map(|path| SourceFile::under(&self.root, path))
            .collect()
    }

    fn display_name(&self, member_id: &str) -> Option<String> {
        self.contacts.display_name(member_id).map(str::to_string)
    }

    fn people(&self) -> Vec<Member> {
        self.contacts.people()
    }

    fn unattributed_names(&self) -> Vec<String> {
        self.contacts.unattributed_names()
    }

    fn warnings(&self) -> Vec<Warning> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// The WeChat cache layout of sources.md §1. Top-level files other than the database are
/// outside the cache categories.
pub fn cache_class(rel_path: &str) -> CacheClass {
    if rel_path == DATABASE || rel_path.starts_with("EnMicroMsg.db-") {
        return CacheClass::Database;
    }
    let file_name = rel_path.rsplit('/').next().unwrap_or_default();
    let Some((top, _)) = rel_path.split_once('/') else {
        return CacheClass::Other;
    };
    match top {
        "image2" if file_name.starts_with("th_") => CacheClass::Media(MediaKind::ImageThumb),
        "image2" => CacheClass::Media(MediaKind::Image),
        "voice2" => CacheClass::Media(MediaKind::Voice),
        "video" if file_name.ends_with(".jpg") => CacheClass::Media(MediaKind::VideoThumb),
        "video" => CacheClass::Media(MediaKind::Video),
        "Download" => CacheClass::Media(MediaKind::File),
        "emoji" => CacheClass::Media(MediaKind::Emoji),
        "avatar" => CacheClass::Avatar,
        _ => CacheClass::Other,
    }
}

/// Contact display names, used by `contact` and for senders missing from member lists.
type NameMap = HashMap<String, contact::Contact>;

/// Whether the `message` table's definition names a collation, under which SQL compares
/// talkers otherwise than byte for byte.
fn message_table_declares_a_collation(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    let table_sql: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'message'",
        [],
        |r| r.get(0),
    )?;
    Ok(table_sql.to_ascii_lowercase().contains("collate"))
}

/// Every distinct talker, by one index seek each (see [`talker_leads_an_index`]).
const TALKERS_BY_SEEK: &str = "WITH RECURSIVE t(talker) AS (\
    SELECT MIN(talker) FROM message WHERE talker IS NOT NULL \
    UNION ALL SELECT (SELECT MIN(talker) FROM message WHERE talker > t.talker) \
    FROM t WHERE t.talker IS NOT NULL) SELECT talker FROM t WHERE talker IS NOT NULL";

/// Whether `message` has a full index whose first column is `talker` in the binary collation
/// of a table that declares none, so that `MIN(talker) ... WHERE talker > ?` is one seek.
fn talker_leads_an_index(conn: &rusqlite::Connection) -> bool {
    if message_table_declares_a_collation(conn).unwrap_or(true) {
        return false;
    }
    conn.query_row(
        "SELECT count(*) FROM pragma_index_list('message') l \
         JOIN pragma_index_xinfo(l.name) i \
         WHERE l.partial = 0 AND i.seqno = 0 AND i.name = 'talker' AND i.coll = 'BINARY' \
           AND i.desc = 0",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::{talker_leads_an_index, TALKERS_BY_SEEK};

    fn talkers(conn: &rusqlite::Connection, sql: &str) -> Vec<rusqlite::types::Value> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        let mut all: Vec<rusqlite::types::Value> = rows.map(Result::unwrap).collect();
        all.sort_by_key(|v| format!("{v:?}"));
        all
    }

    #[test]
    fn the_seeking_query_finds_what_distinct_finds() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE message (msgId INTEGER PRIMARY KEY, talker TEXT, createTime INTEGER);
             INSERT INTO message (talker, createTime) VALUES
               ('b@chatroom', 1), ('a@chatroom', 2), ('b@chatroom', 3), (NULL, 4),
               ('A@chatroom', 5), (7, 6), ('', 7), (x'00ff', 8), ('a@chatroom', 9);",
        )
        .unwrap();
        assert!(!talker_leads_an_index(&conn), "no index yet");
        conn.execute_batch("CREATE INDEX byTime ON message (createTime, talker)")
            .unwrap();
        assert!(
            !talker_leads_an_index(&conn),
            "talker is not its first column"
        );
        conn.execute_batch("CREATE INDEX partialTalker ON message (talker) WHERE createTime > 3")
            .unwrap();
        assert!(!talker_leads_an_index(&conn), "a partial index");
        conn.execute_batch("CREATE INDEX byTalker ON message (talker, createTime)")
            .unwrap();
        assert!(talker_leads_an_index(&conn));
        let distinct = talkers(
            &conn,
            "SELECT DISTINCT talker FROM message WHERE talker IS NOT NULL",
        );
        assert_eq!(distinct.len(), 6);
        assert_eq!(talkers(&conn, TALKERS_BY_SEEK), distinct);
    }
}
