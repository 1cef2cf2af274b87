//! Continues a simulated QQ NT account (`simulate qq --continue`) as the app would have
//! written it over the following days: new rows in `group_msg_table`, members who join
//! (`group_member3`, a `"<inviter>"邀请"<name>"加入了群聊` grey tip, the detail row's member
//! count), whole new groups (`group_list`, `group_detail_info_ver1`, `group_member3`), recalls
//! made in place (the row becomes a grey tip, msgType 5 / subMsgType 4, `"<name>"撤回了一条消息`,
//! at its own time and id, as QQ NT does) and rows deleted from the device. Everything the
//! continuation needs (groups, members, the account owner, the largest ids, the newest time)
//! is read from the source itself; all database changes are one transaction, so a refusal
//! or a failure leaves the databases as they were (media files already written stay, as
//! files no row references, which a source may have).
//!
//! What a test can rely on:
//! - every new row is later than the newest time an export can place (rows with impossible
//!   times, `i64::MAX` seconds or text, are not placeable), except the first new row of the
//!   first group (in the exporter's order, group numbers as text) that takes new rows: that
//!   one is at exactly that group's newest time, with a larger msgSeq, so it sorts last;
//! - new msgIds continue after the largest in use (new member uids and QQ numbers, and new
//!   group numbers, are checked against those in use), so ids stay unique;
//! - a dissolved group (it has the grey tip [`DISSOLUTION_TEXT`]) gets no rows, no joins,
//!   no recalls and no deletions;
//! - a group with rows the reader lists after every placeable time (impossible times sort
//!   last) gets members who join but no new rows: a new row would come before those rows
//!   in a whole export and after them in an increment;
//! - recalls and deletions touch only rows written before the continuation that an export
//!   can place, that are well-formed, not grey tips and of a known kind (text, voice, video,
//!   reply, card); no row is both recalled and deleted; when there are fewer such rows
//!   than asked, the report says how many were done;
//! - new rows are of the simulator's ordinary kinds, without edge cases and never a recall
//!   tip (a recall is a change in place, not a new row); `MoreReport::messages` counts
//!   every new row, join tips included;
//! - a source with a write-ahead log is continued through it; the log is checkpointed when
//!   the continuation closes the database.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::body;
use super::schema::{element_type as el, field};
use super::simulate::{
    grey_tip, media_fields, month_folder, pb, uid, BodyBuilder, MediaType, MediaWriter, Placed,
    Row, DEVICE_PREFIX, DISSOLUTION_TEXT, FACES, MSG_INSERT, RED_PACKET_TITLES, URLS,
};
use super::{INFO_DB, MSG_DB};
use crate::records::representable_seconds;
use crate::simulate::edge::{self, GroupKind};
use crate::simulate::{
    md5_hex, media, random_hex, seeded_rng, MoreOptions, MoreReport, SimError, SimRng, TimeSpread,
    DAY_MS,
};

/// Random streams of a continuation (apart from the simulator's, whose seeds may coincide).
const STREAM_PLAN: u64 = 10;
const STREAM_MESSAGES: u64 = 11;
const STREAM_MEDIA: u64 = 12;
const STREAM_FILES: u64 = 13;

/// The columns the continuation writes, by table.
const MSG_COLUMNS: [&str; 18] = [
    "40001", "40002", "40003", "40010", "40011", "40012", "40013", "40020", "40021", "40027",
    "40030", "40033", "40041", "40050", "40058", "40090", "40093", "40800",
];
const MEMBER_COLUMNS: [&str; 10] = [
    "60001", "1000", "1002", "64003", "20002", "64007", "64010", "64016", "64012", "64015",
];
const DETAIL_COLUMNS: [&str; 7] = [
    "60001", "60002", "60004", "60006", "60007", "60008", "60009",
];
const LIST_COLUMNS: [&str; 3] = ["60001", "60007", "60010"];
const MAPPING_COLUMNS: [&str; 4] = ["48901", "48902", "48912", "1002"];

/// The last second an export can write (9999-12-31T23:59:59Z).
const LAST_PLACEABLE_S: i64 = 253_402_300_799;

/// Why a source cannot be continued, in words a user can act on.
struct Refusal(String);

impl From<rusqlite::Error> for Refusal {
    fn from(error: rusqlite::Error) -> Self {
        Refusal(format!(
            "its databases cannot be read or written ({error}); is QQ still running, or is the copy damaged?"
        ))
    }
}

/// A member row, found or added.
#[derive(Debug, Clone)]
struct Member {
    uid: String,
    uin: i64,
    card: String,
    nickname: String,
    joined_s: i64,
    left: bool,
}

impl Member {
    /// The name messages show: the group card, else the nickname.
    fn shown(&self) -> &str {
        if self.card.is_empty() {
            &self.nickname
        } else {
            &self.card
        }
    }
}

/// A group as the continuation found or made it.
struct Chat {
    number: i64,
    name: String,
    kind: GroupKind,
    has_detail: bool,
    members: Vec<Member>,
    /// Members before this continuation; those after joined now.
    members_before: usize,
    /// The newest placeable message time, seconds.
    newest_s: Option<i64>,
    next_seq: i64,
    dissolved: bool,
    /// It has rows the reader lists after every placeable time.
    untimed_last: bool,
    is_new: bool,
    created_s: i64,
    weight: u32,
    /// The slot whose row opens a new group (existing groups: none needed).
    opens_at: Option<usize>,
    /// A new group's creator (`"60002"`), by member position.
    creator: Option<usize>,
}

impl Chat {
    fn takes_messages(&self) -> bool {
        !self.dissolved && !self.untimed_last
    }

    /// Whether slot `index` may hold one of this group's rows.
    fn open_at(&self, index: usize) -> bool {
        self.takes_messages() && (!self.is_new || self.opens_at.is_some_and(|o| o <= index))
    }
}

/// A row written before the continuation that may be recalled or deleted.
struct OldRow {
    id: i64,
    number: i64,
    by_owner: bool,
    shown: String,
}

/// The account owner.
#[derive(Clone)]
struct Owner {
    uid: String,
    uin: i64,
    nickname: String,
}

/// What the continuation learned from the source.
struct Learned {
    owner: Owner,
    /// In the exporter's order (group numbers as text).
    chats: Vec<Chat>,
    candidates: Vec<OldRow>,
    max_id: i64,
    uids: HashSet<String>,
    uins: HashSet<i64>,
    numbers: HashSet<i64>,
    /// `nt_data/…` paths rows name.
    named_paths: HashSet<String>,
    has_mapping: bool,
    has_list: bool,
    newest_s: i64,
}

/// What one slot of the new period holds.
#[derive(Clone, Copy)]
enum Slot {
    Ordinary,
    /// A row at exactly this group's newest time.
    AtNewest(usize),
    /// The first row of a new group.
    Opens(usize),
    /// The grey tip of member `.1` joining group `.0`.
    Joins(usize, usize),
}

pub fn simulate_more_qq(opts: &MoreOptions) -> Result<MoreReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    let cannot = |reason: String| SimError::CannotContinue {
        root: opts.root.clone(),
        reason,
    };
    let msg_path = opts.root.join(MSG_DB);
    let info_path = opts.root.join(INFO_DB);
    for (path, rel) in [(&msg_path, MSG_DB), (&info_path, INFO_DB)] {
        if !path.is_file() {
            return Err(cannot(format!(
                "it has no {rel}: not a simulated QQ NT account (simulate it with `simulate qq` first)"
            )));
        }
        if !is_sqlite(path) {
            return Err(cannot(format!(
                "{rel} is not an SQLite database (an encrypted QQ database must be decrypted first)"
            )));
        }
    }
    let Some(info_name) = info_path.to_str() else {
        return Err(cannot(format!(
            "the path of {INFO_DB} is not UTF-8; move the account to a UTF-8 path"
        )));
    };
    let conn = Connection::open(&msg_path)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.execute("ATTACH DATABASE ?1 AS info", [info_name])
        .map_err(|e| cannot(Refusal::from(e).0))?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| cannot(Refusal::from(e).0))?;
    let mut report = MoreReport {
        root: opts.root.clone(),
        platform: "qq",
        ..MoreReport::default()
    };
    match continue_in(&conn, opts, &mut report) {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(error);
        }
    }
    conn.close().map_err(|(_, e)| SimError::Sqlite(e))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && &header == b"SQLite format 3\0"
}

/// Learns the source and writes the continuation, inside the caller's transaction.
fn continue_in(
    conn: &Connection,
    opts: &MoreOptions,
    report: &mut MoreReport,
) -> Result<(), SimError> {
    let cannot = |Refusal(reason)| SimError::CannotContinue {
        root: opts.root.clone(),
        reason,
    };
    let mut learned = learn(conn).map_err(cannot)?;
    let start_s = learned.newest_s + 1;
    let span_s = i64::from(opts.days) * (DAY_MS / 1000);
    let end_s = start_s + span_s;
    if representable_seconds(end_s).is_none() {
        return Err(cannot(Refusal(format!(
            "its newest message time ({} s) leaves no room for {} more days before the year 9999",
            learned.newest_s, opts.days
        ))));
    }
    let mut rng = seeded_rng(opts.seed, STREAM_PLAN);
    for chat in &mut learned.chats {
        chat.weight = rng.gen_range(1..10);
    }
    let joiners = add_joiners(&mut learned, opts, &mut rng);
    let first_new = learned.chats.len();
    for _ in 0..opts.new_groups {
        let chat = new_chat(&mut learned, start_s, &mut rng);
        learned.chats.push(chat);
    }
    let n = opts.messages;
    if n > 0 && !learned.chats.iter().any(Chat::takes_messages) {
        return Err(cannot(Refusal(
            "no group can take new messages (each is dissolved or ends in rows with impossible times); ask for --new-groups 1 or more".into(),
        )));
    }

    // Which slot holds what: the edge case first, new groups early, join tips anywhere.
    let mut slots = vec![Slot::Ordinary; n];
    let at_newest = learned
        .chats
        .iter()
        .position(|c| !c.is_new && c.takes_messages() && c.newest_s.is_some());
    let mut reserved = 0;
    if let (Some(chat), true) = (at_newest, n > 0) {
        slots[0] = Slot::AtNewest(chat);
        reserved = 1;
    }
    let existing_open = learned.chats[..first_new].iter().any(Chat::takes_messages);
    for (offset, chat) in (first_new..learned.chats.len()).enumerate() {
        let index = if existing_open {
            // Early in the period (its first third), so that it gets its share.
            let high = (n / 3).max(reserved + 1).min(n);
            let tries = if reserved < high { 64 } else { 0 };
            (0..tries)
                .map(|_| rng.gen_range(reserved..high))
                .find(|&i| matches!(slots[i], Slot::Ordinary))
                .or_else(|| (reserved..n).find(|&i| matches!(slots[i], Slot::Ordinary)))
        } else {
            // Only new groups take rows: they open first, so every slot has a group.
            Some(reserved + offset).filter(|&i| i < n)
        };
        if let Some(index) = index {
            slots[index] = Slot::Opens(chat);
            learned.chats[chat].opens_at = Some(index);
        }
    }
    let mut free: Vec<usize> = (reserved..n)
        .filter(|&i| matches!(slots[i], Slot::Ordinary))
        .collect();
    free.shuffle(&mut rng);
    let mut tipped = Vec::new();
    for &(chat, member) in &joiners {
        if !learned.chats[chat].takes_messages() {
            continue;
        }
        if let Some(index) = free.pop() {
            slots[index] = Slot::Joins(chat, member);
            tipped.push((chat, member, index));
        }
    }

    let spread = TimeSpread::new(end_s * 1000, opts.days, n);
    let mut times: Vec<i64> = (0..n).map(|i| spread.time_of(i, &mut rng)).collect();
    if let Some(Slot::AtNewest(chat)) = slots.first() {
        if let Some(newest) = learned.chats[*chat].newest_s {
            times[0] = newest * 1000;
        }
    }
    // Join and creation times follow the slots that announce them.
    for &(chat, member) in &joiners {
        learned.chats[chat].members[member].joined_s = rng.gen_range(start_s..end_s);
    }
    for &(chat, member, index) in &tipped {
        learned.chats[chat].members[member].joined_s = times[index].div_euclid(1000);
    }
    for chat in &mut learned.chats[first_new..] {
        if let Some(index) = chat.opens_at {
            chat.created_s = times[index].div_euclid(1000);
        }
        let created = chat.created_s;
        for m in &mut chat.members {
            m.joined_s = created;
        }
    }

    let mut writer = RowWriter {
        owner: learned.owner.clone(),
        rng: seeded_rng(opts.seed, STREAM_MESSAGES),
        builder: BodyBuilder {
            body: Vec::with_capacity(256),
            element: Vec::with_capacity(128),
            field: field::ELEMENT,
        },
        media: MediaWriter {
            root: opts.root.clone(),
            enabled: opts.media_files,
            edge_rate: 0.0,
            rng: seeded_rng(opts.seed, STREAM_MEDIA),
            files: 0,
            file_names: Default::default(),
        },
        files: FilePlacer {
            rng: seeded_rng(opts.seed, STREAM_FILES),
            taken: std::mem::take(&mut learned.named_paths),
            next_index: 0,
        },
        last_id: learned.max_id,
        written: 0,
    };
    {
        let mut insert = conn.prepare(MSG_INSERT)?;
        for (index, slot) in slots.iter().enumerate() {
            let time_ms = times[index];
            let chat = match *slot {
                Slot::AtNewest(c) | Slot::Opens(c) | Slot::Joins(c, _) => c,
                Slot::Ordinary => pick_chat(&learned.chats, index, &mut writer.rng),
            };
            writer.write(&mut insert, &mut learned.chats[chat], *slot, time_ms)?;
        }
    }
    report.messages = writer.written;

    write_members(conn, &learned, first_new, report)?;
    recall_and_delete(conn, &learned.candidates, opts, &mut writer, report)?;
    report.media_files = writer.media.files;
    Ok(())
}

/// Integers as the reader takes them (`"40050"` may be stored as REAL or text).
fn int(value: ValueRef) -> Option<i64> {
    match value {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: ValueRef) -> String {
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

/// A time the reader can place, in seconds.
fn placeable_s(value: ValueRef) -> Option<i64> {
    int(value).filter(|&s| representable_seconds(s).is_some())
}

/// Whether SQLite orders this `"40050"` after every placeable integer time.
fn sorts_after_times(value: ValueRef) -> bool {
    match value {
        ValueRef::Text(_) | ValueRef::Blob(_) => true,
        ValueRef::Integer(i) => i > LAST_PLACEABLE_S,
        ValueRef::Real(f) => f > LAST_PLACEABLE_S as f64,
        ValueRef::Null => false,
    }
}

/// A table's columns, or `None` when it does not exist.
fn columns(conn: &Connection, schema: &str, table: &str) -> Result<Option<Vec<String>>, Refusal> {
    let mut stmt = conn.prepare(&format!("PRAGMA {schema}.table_info(\"{table}\")"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!names.is_empty()).then_some(names))
}

/// Whether the table has every column, refusing when `required` and it has not.
fn has_table(
    conn: &Connection,
    schema: &str,
    file: &str,
    table: &str,
    needed: &[&str],
    required: bool,
) -> Result<bool, Refusal> {
    let Some(have) = columns(conn, schema, table)? else {
        if required {
            return Err(Refusal(format!(
                "{file} has no table `{table}`: not a simulated QQ NT account"
            )));
        }
        return Ok(false);
    };
    for column in needed {
        if !have.iter().any(|c| c == column) {
            if required {
                return Err(Refusal(format!(
                    "table `{table}` in {file} has no column `{column}`: not the simulated QQ NT layout"
                )));
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// What the rows say of one group.
#[derive(Default)]
struct Facts {
    name: String,
    owner_uid: Option<String>,
    has_detail: bool,
    created_s: Option<i64>,
    members: Vec<Member>,
    newest_s: Option<i64>,
    max_seq: Option<i64>,
    dissolved: bool,
    untimed_last: bool,
}

fn learn(conn: &Connection) -> Result<Learned, Refusal> {
    has_table(conn, "main", MSG_DB, "group_msg_table", &MSG_COLUMNS, true)?;
    has_table(
        conn,
        "info",
        INFO_DB,
        "group_member3",
        &MEMBER_COLUMNS,
        true,
    )?;
    has_table(
        conn,
        "info",
        INFO_DB,
        "group_detail_info_ver1",
        &DETAIL_COLUMNS,
        true,
    )?;
    let has_list = has_table(conn, "info", INFO_DB, "group_list", &LIST_COLUMNS, false)?;
    let has_mapping = has_table(
        conn,
        "main",
        MSG_DB,
        "nt_uid_mapping_table",
        &MAPPING_COLUMNS,
        false,
    )?;

    let mut facts: BTreeMap<i64, Facts> = BTreeMap::new();
    let mut uids = HashSet::new();
    let mut uins = HashSet::new();
    let mut named_paths = HashSet::new();
    let mut rows_seen = Vec::new();
    let mut max_id = 0i64;
    {
        let mut stmt = conn.prepare(
            r#"SELECT "40001", "40003", "40011", "40012", "40013", "40027", "40050", "40090", "40093", "40800", "40020", "40033" FROM main.group_msg_table"#,
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let id = match get(0) {
                ValueRef::Integer(i) => Some(i),
                _ => None,
            };
            if let Some(id) = id {
                max_id = max_id.max(id);
            }
            let sender = text(get(10));
            if !sender.is_empty() {
                uids.insert(sender);
            }
            uins.extend(int(get(11)).filter(|&u| u != 0));
            let Some(number) = int(get(5)) else {
                continue;
            };
            let group = facts.entry(number).or_default();
            if let Some(seq) = int(get(1)) {
                group.max_seq = Some(group.max_seq.map_or(seq, |m| m.max(seq)));
            }
            let time = get(6);
            let placed = placeable_s(time);
            if let Some(t) = placed {
                group.newest_s = Some(group.newest_s.map_or(t, |n| n.max(t)));
            }
            let late = sorts_after_times(time);
            group.untimed_last |= late;
            let msg_type = int(get(2));
            let system = msg_type == Some(5);
            let elements = match get(9) {
                ValueRef::Blob(b) | ValueRef::Text(b) => body::parse(b).ok(),
                _ => None,
            };
            if let Some(elements) = &elements {
                for element in elements {
                    if let Some(path) = element.file_path {
                        let path = String::from_utf8_lossy(path);
                        if let Some(at) = path.find("nt_data/") {
                            named_paths.insert(path[at..].to_string());
                        }
                    }
                }
                if system && body::grey_tip_text(elements).0 == DISSOLUTION_TEXT {
                    group.dissolved = true;
                }
            }
            let recallable = !system
                && placed.is_some()
                && !late
                && elements.is_some()
                && matches!(msg_type, Some(2 | 6 | 7 | 9 | 11));
            if let (Some(id), true) = (id, recallable) {
                let card = text(get(7));
                rows_seen.push(OldRow {
                    id,
                    number,
                    by_owner: matches!(int(get(4)), Some(1 | 2)),
                    shown: if card.is_empty() { text(get(8)) } else { card },
                });
            }
        }
    }
    {
        let mut stmt = conn.prepare(
            r#"SELECT "60001", "60002", "60004", "60007" FROM info.group_detail_info_ver1"#,
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let Some(number) = int(get(0)) else {
                continue;
            };
            let group = facts.entry(number).or_default();
            group.has_detail = true;
            group.owner_uid = Some(text(get(1))).filter(|s| !s.is_empty());
            group.created_s = int(get(2));
            group.name = text(get(3));
        }
    }
    {
        let mut stmt = conn.prepare(
            r#"SELECT "60001", "1000", "1002", "64003", "20002", "64007", "64016" FROM info.group_member3 ORDER BY rowid"#,
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let uid = text(get(1));
            let uin = int(get(2)).unwrap_or(0);
            if !uid.is_empty() {
                uids.insert(uid.clone());
            }
            if uin != 0 {
                uins.insert(uin);
            }
            let Some(number) = int(get(0)) else {
                continue;
            };
            facts.entry(number).or_default().members.push(Member {
                uid,
                uin,
                card: text(get(3)),
                nickname: text(get(4)),
                joined_s: int(get(5)).unwrap_or(0),
                left: int(get(6)).is_some_and(|f| f != 0),
            });
        }
    }
    let mut first_mapped: Option<(String, i64)> = None;
    if has_mapping {
        let mut stmt = conn
            .prepare(r#"SELECT "48901", "1002" FROM main.nt_uid_mapping_table ORDER BY rowid"#)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let uid = text(get(0));
            let uin = int(get(1)).unwrap_or(0);
            if first_mapped.is_none() && !uid.is_empty() {
                first_mapped = Some((uid.clone(), uin));
            }
            uids.insert(uid);
            uins.insert(uin);
        }
    }

    // The owner as the reader finds it: the sender of a row sent from one of its devices.
    let sent_by_owner: Option<String> = conn
        .query_row(
            r#"SELECT "40020" FROM main.group_msg_table WHERE "40013" IN (1, 2) AND "40020" IS NOT NULL AND "40020" != '' LIMIT 1"#,
            [],
            |r| Ok(text(r.get_ref(0)?)),
        )
        .optional()?;
    let owner_uid = sent_by_owner
        .or_else(|| first_mapped.as_ref().map(|(u, _)| u.clone()))
        .ok_or_else(|| {
            Refusal(
                "no account owner can be found (no message sent by the account, no nt_uid_mapping_table)".into(),
            )
        })?;
    let known = facts
        .values()
        .flat_map(|f| &f.members)
        .find(|m| m.uid == owner_uid);
    let owner = Owner {
        uin: known
            .map(|m| m.uin)
            .or_else(|| {
                first_mapped
                    .as_ref()
                    .filter(|(u, _)| *u == owner_uid)
                    .map(|(_, n)| *n)
            })
            .unwrap_or(0),
        nickname: known.map(|m| m.nickname.clone()).unwrap_or_default(),
        uid: owner_uid,
    };

    let newest_s = facts
        .values()
        .filter_map(|f| f.newest_s)
        .max()
        .or_else(|| {
            // No message yet: after the newest join or creation.
            facts
                .values()
                .flat_map(|f| f.members.iter().map(|m| m.joined_s).chain(f.created_s))
                .filter(|&s| representable_seconds(s).is_some())
                .max()
        })
        .ok_or_else(|| {
            Refusal("it has no message, member or group with a time to continue after".into())
        })?;

    let numbers: HashSet<i64> = facts.keys().copied().collect();
    let mut chats: Vec<Chat> = facts
        .into_iter()
        .map(|(number, f)| Chat {
            number,
            kind: kind_of(&f.name),
            name: f.name,
            has_detail: f.has_detail,
            members_before: f.members.len(),
            members: f.members,
            newest_s: f.newest_s,
            next_seq: f.max_seq.map_or(1, |s| s.saturating_add(1)),
            dissolved: f.dissolved,
            untimed_last: f.untimed_last,
            is_new: false,
            created_s: f.created_s.unwrap_or(0),
            weight: 1,
            opens_at: None,
            creator: None,
        })
        .collect();
    chats.sort_by_key(|c| c.number.to_string());
    let dissolved: HashSet<i64> = chats
        .iter()
        .filter(|c| c.dissolved)
        .map(|c| c.number)
        .collect();
    rows_seen.retain(|r| !dissolved.contains(&r.number));
    Ok(Learned {
        owner,
        chats,
        candidates: rows_seen,
        max_id,
        uids,
        uins,
        numbers,
        named_paths,
        has_mapping,
        has_list,
        newest_s,
    })
}

/// A group's kind, guessed from its name, for the texts its members write.
fn kind_of(name: &str) -> GroupKind {
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if has(&["班", "课", "家长", "学", "老师", "培训", "教育"]) {
        GroupKind::Education
    } else if has(&["团购", "订单", "商城", "代购", "售后", "拼单", "电商"]) {
        GroupKind::Ecommerce
    } else if has(&["公司", "项目", "合作", "客户", "商务"]) {
        GroupKind::Commercial
    } else if has(&["家"]) {
        GroupKind::Family
    } else if has(&["部", "周报", "研发", "通知"]) {
        GroupKind::Work
    } else {
        GroupKind::Other
    }
}

/// Someone new to the account: a uid and QQ number no row uses yet.
fn new_person(learned: &mut Learned, kind: GroupKind, rng: &mut SimRng) -> Member {
    let uid = loop {
        let id = uid(rng);
        if learned.uids.insert(id.clone()) {
            break id;
        }
    };
    let uin = loop {
        let digits = rng.gen_range(6..=10u32);
        let uin = rng.gen_range(10i64.pow(digits - 1)..10i64.pow(digits));
        if learned.uins.insert(uin) {
            break uin;
        }
    };
    let nickname = edge::nickname(rng);
    let card = if rng.gen_bool(0.6) {
        edge::group_nickname(rng, kind, &nickname)
    } else {
        String::new()
    };
    Member {
        uid,
        uin,
        card,
        nickname,
        joined_s: 0,
        left: false,
    }
}

/// `joins` new members for each existing group not dissolved; (group, member) positions.
fn add_joiners(learned: &mut Learned, opts: &MoreOptions, rng: &mut SimRng) -> Vec<(usize, usize)> {
    let mut joiners = Vec::new();
    for chat in 0..learned.chats.len() {
        if learned.chats[chat].dissolved {
            continue;
        }
        for _ in 0..opts.joins {
            let kind = learned.chats[chat].kind;
            let member = new_person(learned, kind, rng);
            let members = &mut learned.chats[chat].members;
            members.push(member);
            joiners.push((chat, members.len() - 1));
        }
    }
    joiners
}

/// A new group: the account owner, new people and a few people the account already knows.
fn new_chat(learned: &mut Learned, created_s: i64, rng: &mut SimRng) -> Chat {
    let number = loop {
        let n = rng.gen_range(100_000_000i64..4_000_000_000);
        if learned.numbers.insert(n) {
            break n;
        }
    };
    let kind = *GroupKind::ALL.choose(rng).unwrap_or(&GroupKind::Other);
    let owner = &learned.owner;
    let mut members = vec![Member {
        uid: owner.uid.clone(),
        uin: owner.uin,
        card: String::new(),
        nickname: owner.nickname.clone(),
        joined_s: created_s,
        left: false,
    }];
    let mut known: Vec<Member> = Vec::new();
    for chat in &learned.chats {
        for m in chat.members.iter().filter(|m| !m.left) {
            if m.uid != owner.uid && !known.iter().any(|k| k.uid == m.uid) {
                known.push(Member {
                    card: String::new(),
                    ..m.clone()
                });
            }
        }
    }
    for _ in 0..rng.gen_range(0..=3usize).min(known.len()) {
        let pick = known.swap_remove(rng.gen_range(0..known.len()));
        members.push(pick);
    }
    for _ in 0..rng.gen_range(5..=15) {
        let member = new_person(learned, kind, rng);
        members.push(member);
    }
    // The account owner creates it, or one of the new people does.
    let creator = if rng.gen_bool(0.4) {
        0
    } else {
        members.len() - 1
    };
    Chat {
        number,
        name: edge::group_name(rng, kind),
        kind,
        has_detail: true,
        members_before: 0,
        members,
        newest_s: None,
        next_seq: rng.gen_range(1_000..100_000),
        dissolved: false,
        untimed_last: false,
        is_new: true,
        created_s,
        weight: rng.gen_range(1..10),
        opens_at: None,
        creator: Some(creator),
    }
}

/// A group for an ordinary row at slot `index`, by weight among those open then.
fn pick_chat(chats: &[Chat], index: usize, rng: &mut SimRng) -> usize {
    let open: Vec<usize> = (0..chats.len())
        .filter(|&c| chats[c].open_at(index))
        .collect();
    let weight: u32 = open.iter().map(|&c| chats[c].weight).sum();
    let mut target = rng.gen_range(0..weight.max(1));
    for &c in &open {
        if target < chats[c].weight {
            return c;
        }
        target -= chats[c].weight;
    }
    // Callers make sure some group is open; the first is as good as any otherwise.
    open.first().copied().unwrap_or(0)
}

/// Names new group files as QQ does (`name(1).ext`), never as a file that is there or
/// that a row already names (a missing file must stay missing).
struct FilePlacer {
    rng: SimRng,
    taken: HashSet<String>,
    next_index: usize,
}

impl FilePlacer {
    fn place(&mut self, media: &mut MediaWriter, time_ms: i64) -> Result<Placed, SimError> {
        self.next_index += 1;
        let (stem, ext) = edge::file_name(self.next_index);
        let mut copy = 0usize;
        let (name, rel) = loop {
            let name = if copy == 0 {
                format!("{stem}.{ext}")
            } else {
                format!("{stem}({copy}).{ext}")
            };
            let rel = format!("nt_data/File/{name}");
            let on_disk = std::fs::symlink_metadata(media.root.join(&rel)).is_ok();
            if !on_disk && !self.taken.contains(&rel) {
                break (name, rel);
            }
            copy += 1;
        };
        self.taken.insert(rel.clone());
        let len = self.rng.gen_range(200..8_000);
        let (md5, size) = if media.enabled {
            let bytes = media::document(&mut self.rng, ext, len);
            media.write(&rel, &bytes, time_ms)?;
            (md5_hex(&bytes), bytes.len() as u64)
        } else {
            (random_hex(&mut self.rng, 32), len as u64)
        };
        Ok(Placed {
            device_path: Some(format!("{DEVICE_PREFIX}{rel}")),
            md5,
            size,
            name,
        })
    }
}

/// Writes the new rows.
struct RowWriter {
    owner: Owner,
    rng: SimRng,
    builder: BodyBuilder,
    media: MediaWriter,
    files: FilePlacer,
    last_id: i64,
    written: usize,
}

/// Who sends a row: uid, QQ number, card, nickname, sendType.
struct Sender {
    uid: String,
    uin: i64,
    card: String,
    nickname: String,
    send_type: i64,
}

impl RowWriter {
    fn next_id(&mut self, time_s: i64) -> Result<i64, SimError> {
        // QQ's msgIds lead with the time; the largest in use is the floor.
        let shaped = if (0..1i64 << 31).contains(&time_s) {
            (time_s << 32) | i64::from(self.rng.gen::<u32>())
        } else {
            0
        };
        let floor = self
            .last_id
            .checked_add(1)
            .ok_or_else(|| SimError::CannotContinue {
                root: self.media.root.clone(),
                reason: "its largest msgId is i64::MAX: no larger one is left".into(),
            })?;
        self.last_id = shaped.max(floor);
        Ok(self.last_id)
    }

    /// A sender of a row at `time_s`: `forced`, or the owner now and then, else a current
    /// member other than `exclude`.
    fn sender(
        &mut self,
        chat: &Chat,
        time_s: i64,
        forced: Option<usize>,
        exclude: Option<usize>,
    ) -> Sender {
        let owner_at = chat
            .members
            .iter()
            .position(|m| m.uid == self.owner.uid && !m.left);
        let position = forced.or_else(|| {
            if self.rng.gen_bool(0.12) && owner_at.is_some() {
                return owner_at;
            }
            let others: Vec<usize> = (0..chat.members.len())
                .filter(|&i| {
                    let m = &chat.members[i];
                    !m.left && m.joined_s <= time_s && m.uid != self.owner.uid && Some(i) != exclude
                })
                .collect();
            others.choose(&mut self.rng).copied().or(owner_at)
        });
        match position.and_then(|p| chat.members.get(p)) {
            Some(m) => {
                let send_type = if m.uid == self.owner.uid {
                    if self.rng.gen_bool(0.7) {
                        1
                    } else {
                        2
                    }
                } else {
                    0
                };
                Sender {
                    uid: m.uid.clone(),
                    uin: m.uin,
                    card: m.card.clone(),
                    nickname: m.nickname.clone(),
                    send_type,
                }
            }
            None => Sender {
                uid: self.owner.uid.clone(),
                uin: self.owner.uin,
                card: String::new(),
                nickname: self.owner.nickname.clone(),
                send_type: 1,
            },
        }
    }

    fn write(
        &mut self,
        insert: &mut rusqlite::Statement,
        chat: &mut Chat,
        slot: Slot,
        time_ms: i64,
    ) -> Result<(), SimError> {
        let time_s = time_ms.div_euclid(1000);
        self.builder.body.clear();
        self.builder.field = if self.rng.gen_bool(0.1) {
            field::ELEMENT_ALT
        } else {
            field::ELEMENT
        };
        let (sender, row) = match slot {
            Slot::Joins(_, member) => {
                let inviter = self.sender(chat, time_s, None, Some(member));
                let inviter_name = if inviter.card.is_empty() {
                    inviter.nickname
                } else {
                    inviter.card
                };
                let joiner = chat
                    .members
                    .get(member)
                    .map(|m| m.nickname.clone())
                    .unwrap_or_default();
                let tip = format!("\"{inviter_name}\"邀请\"{joiner}\"加入了群聊");
                (None, grey_tip(&mut self.builder, &mut self.rng, &tip, 1))
            }
            Slot::Opens(_) => {
                // The group's creator greets it.
                let sender = self.sender(chat, time_s, chat.creator, None);
                let text = format!("欢迎大家加入「{}」", chat.name);
                self.builder.text(&mut self.rng, &text);
                (
                    Some(sender),
                    Row {
                        msg_type: 2,
                        sub_type: Some(1),
                    },
                )
            }
            Slot::AtNewest(_) => {
                let sender = self.sender(chat, time_s, None, None);
                let text = edge::chat_text(&mut self.rng, chat.kind);
                self.builder.text(&mut self.rng, &text);
                (
                    Some(sender),
                    Row {
                        msg_type: 2,
                        sub_type: Some(1),
                    },
                )
            }
            Slot::Ordinary => {
                let sender = self.sender(chat, time_s, None, None);
                let row = self.ordinary_body(chat, &sender, time_ms)?;
                let system = row.msg_type == 5;
                (if system { None } else { Some(sender) }, row)
            }
        };
        let seq = chat.next_seq;
        chat.next_seq = chat.next_seq.saturating_add(1);
        let msg_id = self.next_id(time_s)?;
        let day_start = (time_s + 8 * 3600).div_euclid(86_400) * 86_400 - 8 * 3600;
        let sender = sender.unwrap_or(Sender {
            uid: String::new(),
            uin: 0,
            card: String::new(),
            nickname: String::new(),
            send_type: 0,
        });
        insert.execute(params![
            msg_id,
            self.rng.gen::<u32>(),
            seq,
            row.msg_type,
            row.sub_type,
            sender.send_type,
            sender.uid,
            chat.number.to_string(),
            chat.number,
            sender.uin,
            time_s,
            day_start,
            sender.card,
            sender.nickname,
            self.builder.body,
        ])?;
        self.written += 1;
        Ok(())
    }

    /// The simulator's ordinary mix, without its edge cases and without recall tips.
    fn ordinary_body(
        &mut self,
        chat: &Chat,
        sender: &Sender,
        time_ms: i64,
    ) -> Result<Row, SimError> {
        let rng = &mut self.rng;
        let builder = &mut self.builder;
        let month = month_folder(time_ms);
        let row = |msg_type: i64, sub_type: i64| Row {
            msg_type,
            sub_type: Some(sub_type),
        };
        Ok(match rng.gen_range(0..1000) {
            0..=549 => {
                let mut sub = 1;
                if rng.gen_bool(0.05) {
                    if let Some(target) = chat.members.choose(rng) {
                        builder.start(rng, el::TEXT);
                        pb::bytes(
                            &mut builder.element,
                            field::TEXT,
                            format!("@{} ", target.shown()).as_bytes(),
                        );
                        pb::uint(&mut builder.element, field::AT_TYPE, 2);
                        pb::bytes(&mut builder.element, field::AT_UID, target.uid.as_bytes());
                        builder.finish();
                    }
                }
                let text = if rng.gen_bool(0.03) {
                    edge::text_with_pii(rng)
                } else {
                    edge::chat_text(rng, chat.kind)
                };
                builder.text(rng, &text);
                if rng.gen_bool(0.1) {
                    sub |= 16;
                    let (index, face) = FACES[rng.gen_range(0..FACES.len())];
                    builder.start(rng, el::FACE);
                    pb::uint(&mut builder.element, field::FACE_INDEX, index);
                    pb::bytes(&mut builder.element, field::FACE_TEXT, face.as_bytes());
                    builder.finish();
                }
                row(2, sub)
            }
            550..=679 => {
                let placed = self.media.place(MediaType::Picture, &month, time_ms, 0)?;
                let mut sub = 2;
                if rng.gen_bool(0.1) {
                    builder.text(rng, "看这个");
                    sub |= 1;
                }
                builder.start(rng, el::PICTURE);
                media_fields(&mut builder.element, &placed);
                pb::uint(
                    &mut builder.element,
                    field::PIC_WIDTH,
                    rng.gen_range(100..4000),
                );
                pb::uint(
                    &mut builder.element,
                    field::PIC_HEIGHT,
                    rng.gen_range(100..4000),
                );
                builder.finish();
                row(2, sub)
            }
            680..=699 => {
                let url = URLS[rng.gen_range(0..URLS.len())];
                builder.text(rng, url);
                row(2, 129)
            }
            700..=729 => {
                let placed = self.files.place(&mut self.media, time_ms)?;
                builder.start(rng, el::FILE);
                media_fields(&mut builder.element, &placed);
                builder.finish();
                row(3, 0)
            }
            730..=759 => {
                let shown = if sender.card.is_empty() {
                    &sender.nickname
                } else {
                    &sender.card
                };
                let target = chat
                    .members
                    .choose(rng)
                    .map(|m| m.nickname.clone())
                    .unwrap_or_default();
                grey_tip(builder, rng, &format!("{shown} 戳了戳 {target}"), 12)
            }
            760..=809 => {
                let seconds = rng.gen_range(1..60);
                let placed = self
                    .media
                    .place(MediaType::Voice, &month, time_ms, seconds)?;
                builder.start(rng, el::VOICE);
                media_fields(&mut builder.element, &placed);
                pb::uint(
                    &mut builder.element,
                    field::VOICE_SECONDS,
                    u64::from(seconds),
                );
                builder.finish();
                row(6, 0)
            }
            810..=839 => {
                let seconds = rng.gen_range(1..300);
                let placed = self
                    .media
                    .place(MediaType::Video, &month, time_ms, seconds)?;
                builder.start(rng, el::VIDEO);
                media_fields(&mut builder.element, &placed);
                pb::uint(
                    &mut builder.element,
                    field::VIDEO_SECONDS,
                    u64::from(seconds),
                );
                builder.finish();
                row(7, 0)
            }
            840..=849 => {
                builder.start(rng, el::MULTI_FORWARD);
                pb::bytes(
                    &mut builder.element,
                    field::FORWARD_XML,
                    "<msg brief=\"[聊天记录]\"><title>群聊的聊天记录</title></msg>".as_bytes(),
                );
                builder.finish();
                row(8, 0)
            }
            850..=899 => {
                builder.start(rng, el::REPLY);
                let seq = rng.gen_range(1..chat.next_seq.max(2)) as u64;
                pb::uint(&mut builder.element, field::REPLY_SEQ, seq);
                pb::bytes(
                    &mut builder.element,
                    field::REPLY_UID,
                    sender.uid.as_bytes(),
                );
                builder.finish();
                let text = edge::chat_text(rng, chat.kind);
                builder.text(rng, &text);
                row(9, 33)
            }
            900..=929 => {
                builder.start(rng, el::RED_PACKET);
                pb::uint(
                    &mut builder.element,
                    field::RED_PACKET_AMOUNT,
                    rng.gen_range(1..20_000),
                );
                let title = RED_PACKET_TITLES[rng.gen_range(0..RED_PACKET_TITLES.len())];
                pb::bytes(
                    &mut builder.element,
                    field::RED_PACKET_TITLE,
                    title.as_bytes(),
                );
                builder.finish();
                row(10, 0)
            }
            _ => {
                builder.start(rng, el::ARK);
                pb::bytes(
                    &mut builder.element,
                    field::ARK_JSON,
                    r#"{"app":"com.tencent.structmsg","prompt":"[分享]"}"#.as_bytes(),
                );
                builder.finish();
                row(11, 0)
            }
        })
    }
}

/// Member rows of joiners and new groups, new groups' own rows, new people's uid mapping.
fn write_members(
    conn: &Connection,
    learned: &Learned,
    first_new: usize,
    report: &mut MoreReport,
) -> Result<(), SimError> {
    let mut member = conn.prepare(
        r#"INSERT INTO info.group_member3 ("60001", "1000", "1002", "64003", "20002", "64007", "64010", "64016", "64012", "64015") VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, 0)"#,
    )?;
    let mut count = conn.prepare(
        r#"UPDATE info.group_detail_info_ver1 SET "60006" = COALESCE("60006", 0) + ?2 WHERE "60001" = ?1"#,
    )?;
    let mut detail = conn.prepare(
        r#"INSERT INTO info.group_detail_info_ver1 ("60001", "60002", "60004", "60006", "60007", "60008", "60009") VALUES (?1, ?2, ?3, ?4, ?5, '', 0)"#,
    )?;
    let mut mapping = learned
        .has_mapping
        .then(|| {
            conn.prepare(
                r#"INSERT OR IGNORE INTO main.nt_uid_mapping_table ("48901", "48902", "48912", "1002") VALUES (?1, '', 0, ?2)"#,
            )
        })
        .transpose()?;
    let mut list = learned
        .has_list
        .then(|| {
            conn.prepare(
                r#"INSERT OR IGNORE INTO info.group_list ("60001", "60007", "60010") VALUES (?1, ?2, 0)"#,
            )
        })
        .transpose()?;
    for (index, chat) in learned.chats.iter().enumerate() {
        let added = &chat.members[chat.members_before..];
        if added.is_empty() {
            continue;
        }
        if chat.is_new {
            let creator = chat.creator.and_then(|c| chat.members.get(c));
            detail.execute(params![
                chat.number,
                creator.map_or("", |m| m.uid.as_str()),
                chat.created_s,
                chat.members.len() as i64,
                chat.name
            ])?;
            if let Some(list) = list.as_mut() {
                list.execute(params![chat.number, chat.name])?;
            }
            report.new_groups += 1;
        } else if chat.has_detail {
            count.execute(params![chat.number, added.len() as i64])?;
        }
        for m in added {
            member.execute(params![
                chat.number,
                m.uid,
                m.uin,
                m.card,
                m.nickname,
                m.joined_s
            ])?;
            if let Some(mapping) = mapping.as_mut() {
                mapping.execute(params![m.uid, m.uin])?;
            }
        }
        if index < first_new {
            report.joined += added.len();
        }
    }
    Ok(())
}

/// Recalls in place and deletes among the rows written before the continuation.
fn recall_and_delete(
    conn: &Connection,
    candidates: &[OldRow],
    opts: &MoreOptions,
    writer: &mut RowWriter,
    report: &mut MoreReport,
) -> Result<(), SimError> {
    let wanted = opts
        .recalls
        .saturating_add(opts.deletions)
        .min(candidates.len());
    let mut rng = seeded_rng(opts.seed, STREAM_PLAN + 2);
    let chosen = rand::seq::index::sample(&mut rng, candidates.len(), wanted).into_vec();
    let (recalls, deletions) = chosen.split_at(opts.recalls.min(chosen.len()));
    let mut recall = conn.prepare(
        r#"UPDATE main.group_msg_table SET "40011" = 5, "40012" = 4, "40800" = ?2 WHERE "40001" = ?1"#,
    )?;
    for &index in recalls {
        let old = &candidates[index];
        let tip = if old.by_owner {
            "你撤回了一条消息".to_string()
        } else {
            format!("\"{}\"撤回了一条消息", old.shown)
        };
        writer.builder.body.clear();
        writer.builder.field = field::ELEMENT;
        grey_tip(&mut writer.builder, &mut writer.rng, &tip, 4);
        report.recalled += recall.execute(params![old.id, writer.builder.body])?;
    }
    let mut delete = conn.prepare(r#"DELETE FROM main.group_msg_table WHERE "40001" = ?1"#)?;
    for &index in deletions {
        report.deleted += delete.execute([candidates[index].id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use rusqlite::types::Value;
    use rusqlite::Connection;

    use super::*;
    use crate::platform::qq;
    use crate::simulate::SimOptions;

    /// One row of `group_msg_table`: group, msgType, subMsgType, time.
    type Stored = (i64, Option<i64>, Option<i64>, Value);

    struct Snapshot {
        rows: BTreeMap<i64, Stored>,
        /// Member rows per group.
        members: BTreeMap<i64, usize>,
    }

    fn snapshot(root: &Path) -> Snapshot {
        let conn = Connection::open(root.join(MSG_DB)).unwrap();
        let mut stmt = conn
            .prepare(r#"SELECT "40001", "40027", "40011", "40012", "40050" FROM group_msg_table"#)
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let info = Connection::open(root.join(INFO_DB)).unwrap();
        let mut stmt = info
            .prepare(r#"SELECT "60001", count(*) FROM group_member3 GROUP BY "60001""#)
            .unwrap();
        let members = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Snapshot { rows, members }
    }

    fn placeable(time: &Value) -> Option<i64> {
        match time {
            Value::Integer(s) => representable_seconds(*s).map(|_| *s),
            _ => None,
        }
    }

    fn simulated(dir: &Path, name: &str, edge_rate: f64, wal: bool) -> PathBuf {
        let mut opts = SimOptions::new(dir.join(name));
        opts.groups = 4;
        opts.members = 12;
        opts.messages = 800;
        opts.days = 10;
        opts.seed = 7;
        opts.edge_rate = edge_rate;
        opts.wal = wal;
        opts.media_files = false;
        opts.now_ms = 1_749_715_200_000;
        super::super::simulate::simulate_qq(&opts).unwrap();
        opts.out
    }

    fn more(root: &Path, seed: u64) -> MoreOptions {
        MoreOptions {
            messages: 300,
            days: 3,
            joins: 2,
            recalls: 3,
            deletions: 2,
            new_groups: 1,
            seed,
            media_files: false,
            ..MoreOptions::new(root.to_path_buf())
        }
    }

    /// Continues `root` and checks what the continuation wrote against what it reports.
    fn continue_and_check(root: &Path, opts: &MoreOptions) {
        let before = snapshot(root);
        let report = simulate_more_qq(opts).unwrap();
        let after = snapshot(root);

        let max_old = before.rows.keys().max().copied().unwrap_or(0);
        let added: Vec<(&i64, &Stored)> = after
            .rows
            .iter()
            .filter(|(id, _)| !before.rows.contains_key(id))
            .collect();
        assert_eq!(added.len(), report.messages);
        assert!(added.iter().all(|(id, _)| **id > max_old), "ids continue");
        assert!(added.iter().all(|(_, r)| r.2 != Some(4)), "no recall rows");

        // Every new row is after the newest placeable time but one, at its group's newest.
        let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
        for (group, _, _, time) in before.rows.values() {
            if let Some(t) = placeable(time) {
                let n = newest.entry(*group).or_insert(t);
                *n = (*n).max(t);
            }
        }
        let overall = newest.values().max().copied().unwrap_or(i64::MIN);
        let early: Vec<&Stored> = added
            .iter()
            .map(|(_, r)| *r)
            .filter(|r| placeable(&r.3).is_some_and(|t| t <= overall))
            .collect();
        assert_eq!(early.len(), 1, "one row at a group's newest time");
        assert_eq!(placeable(&early[0].3), newest.get(&early[0].0).copied());
        assert!(added.iter().all(|(_, r)| placeable(&r.3).is_some()));

        let deleted = before
            .rows
            .keys()
            .filter(|id| !after.rows.contains_key(id))
            .count();
        assert_eq!((deleted, report.deleted), (opts.deletions, opts.deletions));
        let recalled = before
            .rows
            .iter()
            .filter(|(id, old)| {
                after
                    .rows
                    .get(id)
                    .is_some_and(|new| old.1 != Some(5) && (new.1, new.2) == (Some(5), Some(4)))
            })
            .count();
        assert_eq!((recalled, report.recalled), (opts.recalls, opts.recalls));

        let joined: usize = before
            .members
            .iter()
            .map(|(group, n)| after.members.get(group).copied().unwrap_or(0) - n)
            .sum();
        assert_eq!(joined, report.joined);
        assert!(joined > 0);
        let new_groups = after
            .members
            .keys()
            .filter(|g| !before.members.contains_key(g))
            .count();
        assert_eq!((new_groups, report.new_groups), (1, 1));

        // The reader reads every row back.
        let source = qq::open(root).unwrap();
        let mut read = 0;
        for group in source.groups().unwrap() {
            read += source.messages(&group.id).unwrap().count();
        }
        assert_eq!(read, after.rows.len());
    }

    #[test]
    fn two_continuations_keep_ids_unique_times_after_the_newest_and_counts_true() {
        let dir = tempfile::tempdir().unwrap();
        for (name, edge_rate, wal) in [("e0", 0.0, false), ("e10", 0.1, false), ("wal", 0.05, true)]
        {
            let root = simulated(dir.path(), name, edge_rate, wal);
            continue_and_check(&root, &more(&root, 8));
            continue_and_check(&root, &more(&root, 9));
            let conn = Connection::open(root.join(MSG_DB)).unwrap();
            let (all, distinct): (i64, i64) = conn
                .query_row(
                    r#"SELECT count(*), count(DISTINCT "40001") FROM group_msg_table"#,
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(all, distinct, "{name}");
        }
    }

    fn dump(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for (db, tables) in [
            (MSG_DB, &["group_msg_table", "nt_uid_mapping_table"][..]),
            (
                INFO_DB,
                &["group_member3", "group_detail_info_ver1", "group_list"][..],
            ),
        ] {
            let conn = Connection::open(root.join(db)).unwrap();
            for table in tables {
                let mut stmt = conn
                    .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
                    .unwrap();
                let width = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| {
                        let cells: Vec<Value> =
                            (0..width).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                        Ok(format!("{table} {cells:?}"))
                    })
                    .unwrap();
                out.extend(rows.map(Result::unwrap));
            }
        }
        out
    }

    #[test]
    fn the_same_source_and_options_write_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let a = simulated(dir.path(), "a", 0.05, false);
        let b = simulated(dir.path(), "b", 0.05, false);
        simulate_more_qq(&more(&a, 8)).unwrap();
        simulate_more_qq(&more(&b, 8)).unwrap();
        assert_eq!(dump(&a), dump(&b));
        let c = simulated(dir.path(), "c", 0.05, false);
        simulate_more_qq(&more(&c, 9)).unwrap();
        assert_ne!(dump(&a), dump(&c), "the seed matters");
    }

    #[test]
    fn media_files_are_new_files_and_none_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = SimOptions::new(dir.path().join("media"));
        opts.groups = 3;
        opts.messages = 600;
        opts.seed = 3;
        opts.now_ms = 1_749_715_200_000;
        super::super::simulate::simulate_qq(&opts).unwrap();
        let root = opts.out;
        let files_before = crate::simulate::testkit::snapshot(&root.join("nt_data"));
        let report = simulate_more_qq(&MoreOptions {
            media_files: true,
            ..more(&root, 4)
        })
        .unwrap();
        let files_after = crate::simulate::testkit::snapshot(&root.join("nt_data"));
        for (path, bytes) in &files_before {
            assert_eq!(files_after.get(path), Some(bytes), "{}", path.display());
        }
        assert_eq!(files_after.len() - files_before.len(), report.media_files);
        assert!(report.media_files > 0);
    }

    #[test]
    fn refuses_what_it_cannot_continue_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |root: &Path, opts: &MoreOptions| -> String {
            match simulate_more_qq(opts) {
                Err(SimError::CannotContinue { root: r, reason }) => {
                    assert_eq!(r, root);
                    reason
                }
                other => panic!("{other:?}"),
            }
        };
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(refused(&empty, &more(&empty, 1)).contains("nt_msg.db"));

        let garbage = simulated(dir.path(), "garbage", 0.0, false);
        std::fs::write(garbage.join(MSG_DB), b"SQLCipher bytes, not SQLite......").unwrap();
        assert!(refused(&garbage, &more(&garbage, 1)).contains("not an SQLite database"));

        // One group, ending in rows with impossible times, and no new group to write to.
        let mut opts = SimOptions::new(dir.path().join("one"));
        opts.groups = 1;
        opts.members = 5;
        opts.messages = 50;
        opts.media_files = false;
        opts.now_ms = 1_749_715_200_000;
        super::super::simulate::simulate_qq(&opts).unwrap();
        let before = dump(&opts.out);
        let only = MoreOptions {
            new_groups: 0,
            ..more(&opts.out, 1)
        };
        assert!(refused(&opts.out, &only).contains("no group can take new messages"));
        assert_eq!(dump(&opts.out), before, "a refusal writes nothing");
        // With a new group it can: the old group's members still join.
        let report = simulate_more_qq(&more(&opts.out, 1)).unwrap();
        assert_eq!((report.joined, report.new_groups), (2, 1));
    }

    #[test]
    fn fewer_messages_than_groups_and_joins_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(dir.path(), "few", 0.05, false);
        for messages in [0, 1, 2] {
            let report = simulate_more_qq(&MoreOptions {
                messages,
                new_groups: 2,
                ..more(&root, 10 + messages as u64)
            })
            .unwrap();
            assert_eq!(report.messages, messages);
            assert_eq!(report.new_groups, 2);
        }
    }

    #[test]
    fn a_source_without_messages_continues() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = SimOptions::new(dir.path().join("quiet"));
        opts.groups = 2;
        opts.messages = 0;
        opts.media_files = false;
        opts.now_ms = 1_749_715_200_000;
        super::super::simulate::simulate_qq(&opts).unwrap();
        let report = simulate_more_qq(&more(&opts.out, 2)).unwrap();
        assert_eq!(report.messages, 300);
        assert_eq!((report.recalled, report.deleted), (0, 0));
        let source = qq::open(&opts.out).unwrap();
        let groups: BTreeSet<String> = source.groups().unwrap().into_iter().map(|g| g.id).collect();
        assert_eq!(groups.len(), 3);
    }
}
