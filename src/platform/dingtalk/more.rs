//! `simulate dingtalk --continue`: adds to an account directory [`super::simulate`] wrote,
//! as the app would after more days of use.
//!
//! What a continuation writes (deterministic for the same source and options):
//! - `messages` new group messages (text, image, voice, video, file, red packet, system and
//!   unknown types, in the simulator's mix but with no edge cases and no recalled rows), at
//!   or after the source's newest placeable `createdAt` and spread over `days` days, with
//!   their media files when `media_files`. Impossible times (text such as
//!   [`super::simulate::BAD_TIME_TEXT`], `i64::MAX`, years outside 0000-9999) are not
//!   placeable and never count as the newest;
//! - the first new message of the first active group, in cid order (the order the exporter
//!   lists them), is a text at exactly that group's newest time: a message at a mark's own
//!   time that an earlier export lacks;
//! - `joins` new people (in `tbuser_profile_v2`) join each active group
//!   (`tbconversation_member`, role 3, `joinAt` in the new period; `memberCount` follows).
//!   Each join into a group that takes new messages is announced by a system row (102)
//!   `<inviter>邀请<joiner>加入了群聊` at the join time, and every other such joiner greets
//!   the group: both are among the new messages, as long as `messages` leaves room for them;
//! - `new_groups` new groups, each with a new owner, new members (and the account owner),
//!   a name, and a share of the new messages;
//! - `recalls` existing rows (not system rows, not already recalled) get `recallStatus` 1 in
//!   place; `deletions` other existing rows are deleted (with their `im_image_info` row; the
//!   cached file stays, as the app leaves it). Neither touches the hard rows.
//!
//! What a test can rely on:
//! - message ids stay unique across every shard (new ones continue after the largest);
//! - every new row is at or after the newest placeable time of the source before it;
//! - [`MoreReport`]'s counts are the rows written, updated and deleted;
//! - a dissolved group (`status` 0, its last row [`super::simulate::DISSOLUTION_TEXT`])
//!   takes no new members or messages: a group that is gone has neither;
//! - the group holding the untimed hard rows takes no new messages, join tips included (its
//!   new members join silently): the readers order a group's rows by `createdAt` as SQLite does, so its untimed
//!   rows sort after every new message, and a whole export of it would no longer be the
//!   earlier export followed by the increment;
//! - a source with its newest rows only in `DBFiles/dingtalk.db-wal` keeps them there, and
//!   the new rows go there too; a source without a WAL still has none afterwards;
//! - anything else is refused with [`SimError::CannotContinue`] before a byte is written.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::Path;
use std::time::Instant;

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::{params, Connection, OpenFlags};

use super::simulate::{
    json_string, shard_of, shard_table, uid_in_name, Edge, Group, Kind, Person, Row, Simulation,
    DB_FILE, GHOST_PREFIX, LEFT_PREFIX, NORMAL_KINDS, SHARDS, TYPE_SYSTEM, TYPE_TEXT,
};
use crate::records::{MAX_TIME_MS, MIN_TIME_MS};
use crate::simulate::edge::{self, GroupKind};
use crate::simulate::{
    io_error, keep_writes_in_wal, md5_hex, random_digits, MoreOptions, MoreReport, SimError,
    SimOptions, TimeSpread, DAY_MS, SECOND_MS,
};

/// Columns the continuation writes, by table: a source without them is not the simulator's.
const COLUMNS: [(&str, &[&str]); 4] = [
    (
        "tbconversation",
        &[
            "cid",
            "type",
            "title",
            "icon",
            "memberCount",
            "createAt",
            "lastModify",
            "ownerId",
            "status",
            "extension",
        ],
    ),
    (
        "tbconversation_member",
        &["cid", "uid", "role", "joinAt", "extension"],
    ),
    (
        "tbuser_profile_v2",
        &[
            "uid",
            "nick",
            "realName",
            "avatarMediaId",
            "gender",
            "mobile",
            "email",
            "orgName",
            "ver",
        ],
    ),
    (
        "im_image_info",
        &["cid", "mid", "local_path", "size", "width", "height", "md5"],
    ),
];

const SHARD_COLUMNS: [&str; 10] = [
    "cid",
    "mid",
    "senderId",
    "createdAt",
    "modifiedAt",
    "contentType",
    "content",
    "attachments",
    "recallStatus",
    "localId",
];

/// Rows the simulator writes before its first untimed hard row (two empty system rows, a
/// mention, a claim, a document): with the untimed ones, the rows no continuation touches.
const HARD_ROWS_BEFORE_UNTIMED: i64 = 5;

/// Message ids stay far from overflow: `alloc_mid` multiplies a counter by 8.
const MAX_CONTINUED_MID: i64 = i64::MAX / 16;

/// Of the new period, the share in which members join (so that they can send afterwards).
const JOIN_SHARE: f64 = 0.6;

/// An SQL expression: `createdAt` when an export can place it, else NULL.
fn placeable(column: &str) -> String {
    format!(
        "CASE WHEN typeof({column}) IN ('integer', 'real') AND {column} BETWEEN {MIN_TIME_MS} AND {MAX_TIME_MS} \
         THEN CAST({column} AS INTEGER) END"
    )
}

/// Continues a DingTalk source the simulator wrote ([`MoreOptions`]).
pub fn simulate_more_dingtalk(opts: &MoreOptions) -> Result<MoreReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    let root = &opts.root;
    let refuse = |reason: String| SimError::CannotContinue {
        root: root.clone(),
        reason,
    };
    let db_path = root.join(DB_FILE);
    if !db_path.is_file() {
        return Err(refuse(format!(
            "there is no {DB_FILE}: continue a directory `chatvault simulate dingtalk` wrote"
        )));
    }
    match crate::source::sqlite::is_sqlite(&db_path) {
        Ok(true) => {}
        Ok(false) => return Err(refuse(format!("{DB_FILE} is not an SQLite database"))),
        Err(err) => return Err(refuse(format!("{DB_FILE} cannot be read: {err}"))),
    }
    let wal_path = root.join(format!("{DB_FILE}-wal"));
    let shm_path = root.join(format!("{DB_FILE}-shm"));
    let had_wal = wal_path.exists();
    let had_shm = shm_path.exists();
    let conn = Connection::open_with_flags(
        &db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| refuse(format!("{DB_FILE} cannot be opened: {err}")))?;
    let source = Survey::read(&conn, root).map_err(&refuse)?;
    let end_ms = source
        .newest_ms
        .checked_add(i64::from(opts.days) * DAY_MS)
        .filter(|end| *end <= MAX_TIME_MS)
        .ok_or_else(|| {
            refuse(format!(
                "{} days after its newest message lie beyond the year 9999",
                opts.days
            ))
        })?;
    let active: Vec<usize> = (0..source.groups.len())
        .filter(|&g| source.groups[g].active)
        .collect();
    let talking: Vec<usize> = active
        .iter()
        .copied()
        .filter(|&g| !source.groups[g].has_hard_rows)
        .collect();
    if opts.messages > 0 && talking.is_empty() && opts.new_groups == 0 {
        return Err(refuse(
            "no active group can take new messages; ask for --new-groups 1 or more".into(),
        ));
    }
    if had_wal {
        // The app is still running: what it writes stays in the log, beside the rows there.
        keep_writes_in_wal(&conn)?;
    }
    let sim_opts = SimOptions {
        out: root.clone(),
        groups: source.groups.len(),
        members: source.typical_members,
        messages: opts.messages,
        days: opts.days,
        seed: opts.seed,
        now_ms: end_ms,
        edge_rate: 0.0,
        media_files: opts.media_files,
        wal: false,
    };
    conn.execute_batch("BEGIN")?;
    let mut sim = Simulation::new(&sim_opts, conn)?;
    let mut more = More::new(opts, &source, &mut sim, end_ms)?;
    more.recall_and_delete(&source)?;
    more.add_new_groups()?;
    more.schedule_joins(&active)?;
    more.write_messages(&talking, source.first_group)?;
    more.finish_joins()?;
    let (messages, joined, recalled, deleted, new_groups) = (
        more.messages,
        more.joined,
        more.recalled,
        more.deleted,
        more.new_groups,
    );
    sim.conn.execute_batch("COMMIT")?;
    let media_files = sim.media_written;
    let Simulation { conn, .. } = sim;
    conn.close().map_err(|(_, err)| SimError::Sqlite(err))?;
    if had_wal && !had_shm && shm_path.exists() {
        // Rebuilt from the log on the next open, as the simulator leaves it.
        fs::remove_file(&shm_path).map_err(io_error(&shm_path))?;
    }
    Ok(MoreReport {
        root: root.clone(),
        platform: "dingtalk",
        messages,
        joined,
        recalled,
        deleted,
        new_groups,
        media_files,
        elapsed: started.elapsed(),
    })
}

/// One group chat of the source.
struct SourceGroup {
    cid: String,
    /// `status` 1: not dissolved.
    active: bool,
    /// Its member uids, by `joinAt` then uid.
    members: Vec<String>,
    /// Its newest placeable time.
    newest_ms: Option<i64>,
    /// It holds the simulator's untimed hard rows.
    has_hard_rows: bool,
}

/// A row existing before the continuation that it may recall or delete.
struct OldRow {
    cid: String,
    shard: usize,
    mid: i64,
    recallable: bool,
}

/// What the continuation learns from the source before it writes anything.
struct Survey {
    owner: String,
    /// uid → (nick, realName), sorted by uid.
    people: BTreeMap<String, (String, String)>,
    /// Every uid in use (profiles, members, senders).
    uids: HashSet<String>,
    /// Every conversation id in use.
    cids: HashSet<String>,
    /// Group chats in cid order.
    groups: Vec<SourceGroup>,
    /// Index into `groups` of the first active group without hard rows.
    first_group: Option<usize>,
    typical_members: usize,
    max_mid: i64,
    newest_ms: i64,
    /// Group rows behind the newest time, hard rows left out, by (cid, mid).
    old_rows: Vec<OldRow>,
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, String> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info(\"{table}\")"))
        .map_err(|e| e.to_string())?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(1))
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(names)
}

fn require_columns(conn: &Connection, table: &str, wanted: &[&str]) -> Result<(), String> {
    let have = columns(conn, table)?;
    if have.is_empty() {
        return Err(format!(
            "{DB_FILE} has no table `{table}`: only a directory `chatvault simulate dingtalk` wrote can be continued"
        ));
    }
    for column in wanted {
        if !have.iter().any(|c| c == column) {
            return Err(format!(
                "`{table}` in {DB_FILE} has no column `{column}`: only a directory `chatvault simulate dingtalk` wrote can be continued"
            ));
        }
    }
    Ok(())
}

/// A uid or cid as text, however it is stored.
fn id_text(value: rusqlite::types::ValueRef) -> Option<String> {
    match value {
        rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
        rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_string),
        _ => None,
    }
}

fn name_text(value: rusqlite::types::ValueRef) -> String {
    match value {
        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        _ => String::new(),
    }
}

impl Survey {
    fn read(conn: &Connection, root: &Path) -> Result<Survey, String> {
        let sql_error = |e: rusqlite::Error| format!("{DB_FILE} cannot be read: {e}");
        for (table, wanted) in COLUMNS {
            require_columns(conn, table, wanted)?;
        }
        for index in 0..SHARDS {
            require_columns(conn, &shard_table(index), &SHARD_COLUMNS)?;
        }

        let mut people = BTreeMap::new();
        let mut uids = HashSet::new();
        {
            let mut stmt = conn
                .prepare("SELECT uid, nick, realName FROM tbuser_profile_v2")
                .map_err(sql_error)?;
            let mut rows = stmt.query([]).map_err(sql_error)?;
            while let Some(row) = rows.next().map_err(sql_error)? {
                let Some(uid) = row.get_ref(0).ok().and_then(id_text) else {
                    continue;
                };
                let nick = row.get_ref(1).map(name_text).unwrap_or_default();
                let real = row.get_ref(2).map(name_text).unwrap_or_default();
                uids.insert(uid.clone());
                people.insert(uid, (nick, real));
            }
        }

        let mut cids = HashSet::new();
        let mut private_cids = Vec::new();
        let mut groups = Vec::new();
        {
            let mut stmt = conn
                .prepare("SELECT cid, type, status FROM tbconversation ORDER BY cid")
                .map_err(sql_error)?;
            let mut rows = stmt.query([]).map_err(sql_error)?;
            while let Some(row) = rows.next().map_err(sql_error)? {
                let Some(cid) = row.get_ref(0).ok().and_then(id_text) else {
                    return Err("a conversation in `tbconversation` has no cid".into());
                };
                let kind: Option<i64> = row.get(1).ok();
                let status: Option<i64> = row.get(2).ok();
                cids.insert(cid.clone());
                match kind {
                    Some(2) => groups.push(SourceGroup {
                        cid,
                        active: status == Some(1),
                        members: Vec::new(),
                        newest_ms: None,
                        has_hard_rows: false,
                    }),
                    _ => private_cids.push(cid),
                }
            }
        }
        let group_index: BTreeMap<String, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.cid.clone(), i))
            .collect();
        {
            let mut stmt = conn
                .prepare("SELECT cid, uid FROM tbconversation_member ORDER BY cid, joinAt, uid")
                .map_err(sql_error)?;
            let mut rows = stmt.query([]).map_err(sql_error)?;
            while let Some(row) = rows.next().map_err(sql_error)? {
                let cid = row.get_ref(0).ok().and_then(id_text);
                let uid = row.get_ref(1).ok().and_then(id_text);
                if let (Some(cid), Some(uid)) = (cid, uid) {
                    uids.insert(uid.clone());
                    if let Some(&g) = group_index.get(&cid) {
                        groups[g].members.push(uid);
                    }
                }
            }
        }

        let owner = match uid_in_name(root) {
            Some(uid) => uid,
            None => infer_owner(&groups, &private_cids).ok_or_else(|| {
                "the account owner cannot be told (the directory is not named `<uid>_v2` and no uid is in every group)".to_string()
            })?,
        };

        let mut max_mid = i64::MIN;
        let mut newest_ms: Option<i64> = None;
        // cid → (shard, smallest and largest untimed mid).
        let mut untimed: BTreeMap<String, (usize, i64, i64)> = BTreeMap::new();
        let time = placeable("createdAt");
        for index in 0..SHARDS {
            let table = shard_table(index);
            let (bad_mids, shard_max): (i64, Option<i64>) = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FILTER (WHERE typeof(mid) != 'integer'), max(mid) FROM {table}"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sql_error)?;
            if bad_mids > 0 {
                return Err(format!(
                    "`{table}` has message ids that are not integers: not a source the simulator wrote"
                ));
            }
            if let Some(m) = shard_max {
                max_mid = max_mid.max(m);
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT cid, max({time}), min(CASE WHEN {time} IS NULL THEN mid END), \
                     max(CASE WHEN {time} IS NULL THEN mid END) FROM {table} GROUP BY cid"
                ))
                .map_err(sql_error)?;
            let mut rows = stmt.query([]).map_err(sql_error)?;
            while let Some(row) = rows.next().map_err(sql_error)? {
                let Some(cid) = row.get_ref(0).ok().and_then(id_text) else {
                    continue;
                };
                let newest: Option<i64> = row.get(1).map_err(sql_error)?;
                let first_untimed: Option<i64> = row.get(2).map_err(sql_error)?;
                let last_untimed: Option<i64> = row.get(3).map_err(sql_error)?;
                if let Some(t) = newest {
                    newest_ms = Some(newest_ms.map_or(t, |n| n.max(t)));
                }
                if let Some(&g) = group_index.get(&cid) {
                    if let Some(t) = newest {
                        let group = &mut groups[g];
                        group.newest_ms = Some(group.newest_ms.map_or(t, |n| n.max(t)));
                    }
                    if let (Some(a), Some(b)) = (first_untimed, last_untimed) {
                        untimed.insert(cid, (index, a, b));
                    }
                }
            }
            let mut senders = conn
                .prepare(&format!("SELECT DISTINCT senderId FROM {table}"))
                .map_err(sql_error)?;
            let mut rows = senders.query([]).map_err(sql_error)?;
            while let Some(row) = rows.next().map_err(sql_error)? {
                if let Some(uid) = row.get_ref(0).ok().and_then(id_text) {
                    uids.insert(uid);
                }
            }
        }
        let Some(newest_ms) = newest_ms else {
            return Err("it holds no message with a time to continue after".into());
        };
        if max_mid > MAX_CONTINUED_MID {
            return Err(format!(
                "its largest message id {max_mid} leaves no room for new ones"
            ));
        }

        // The hard rows: a group's untimed rows and the rows written just before them.
        let mut hard: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (cid, (shard, first, last)) in &untimed {
            let from: Option<i64> = conn
                .query_row(
                    &format!(
                        "SELECT min(mid) FROM (SELECT mid FROM {} WHERE cid = ?1 AND mid < ?2 ORDER BY mid DESC LIMIT {HARD_ROWS_BEFORE_UNTIMED})",
                        shard_table(*shard)
                    ),
                    params![cid, first],
                    |r| r.get(0),
                )
                .map_err(sql_error)?;
            hard.insert(cid.clone(), (from.unwrap_or(*first), *last));
            if let Some(&g) = group_index.get(cid) {
                groups[g].has_hard_rows = true;
            }
        }

        let mut old_rows = Vec::new();
        for cid in group_index.keys() {
            let shard = shard_of(cid);
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT mid, contentType, coalesce(recallStatus, 0) FROM {} \
                     WHERE cid = ?1 AND {time} IS NOT NULL ORDER BY mid",
                    shard_table(shard)
                ))
                .map_err(sql_error)?;
            let mut rows = stmt.query([cid]).map_err(sql_error)?;
            while let Some(row) = rows.next().map_err(sql_error)? {
                let mid: i64 = row.get(0).map_err(sql_error)?;
                if hard
                    .get(cid)
                    .is_some_and(|(from, to)| (*from..=*to).contains(&mid))
                {
                    continue;
                }
                let content_type: Option<i64> = row.get(1).unwrap_or(None);
                let recall: i64 = row.get(2).unwrap_or(1);
                old_rows.push(OldRow {
                    cid: cid.clone(),
                    shard,
                    mid,
                    recallable: content_type.is_some_and(|t| t != TYPE_SYSTEM) && recall <= 0,
                });
            }
        }

        let mut sizes: Vec<usize> = groups.iter().map(|g| g.members.len()).collect();
        sizes.sort_unstable();
        let typical_members = sizes
            .get(sizes.len() / 2)
            .copied()
            .unwrap_or(10)
            .clamp(3, 40);
        let first_group = groups.iter().position(|g| g.active && !g.has_hard_rows);
        Ok(Survey {
            owner,
            people,
            uids,
            cids,
            groups,
            first_group,
            typical_members,
            max_mid,
            newest_ms,
            old_rows,
        })
    }
}

/// The uid in every group's member list (the simulator's owner is member 0 of each), the
/// one in the one-to-one chats' cids `a:b` when several are.
fn infer_owner(groups: &[SourceGroup], private_cids: &[String]) -> Option<String> {
    let mut common: Option<BTreeSet<&str>> = None;
    for group in groups {
        let members: BTreeSet<&str> = group.members.iter().map(String::as_str).collect();
        common = Some(match common {
            None => members,
            Some(c) => c.intersection(&members).copied().collect(),
        });
    }
    let in_private = |uid: &str| {
        private_cids
            .iter()
            .all(|cid| cid.split(':').any(|part| part == uid))
    };
    match common {
        Some(common) => common
            .iter()
            .find(|uid| in_private(uid))
            .or(common.iter().next())
            .map(|uid| uid.to_string()),
        None => {
            let first = private_cids.first()?;
            first
                .split(':')
                .find(|uid| in_private(uid))
                .map(str::to_string)
        }
    }
}

/// A join waiting for its time.
struct Join {
    at_ms: i64,
    group: usize,
    person: usize,
    greets: bool,
}

/// The continuation's state beside the simulator's.
struct More<'s, 'a> {
    opts: &'s MoreOptions,
    sim: &'s mut Simulation<'a>,
    start_ms: i64,
    end_ms: i64,
    /// Existing groups: index into `sim.groups` = index into the survey's groups.
    existing: usize,
    joins: Vec<Join>,
    /// Indexes into `sim.groups` of the new groups.
    added_groups: Vec<usize>,
    uids: HashSet<String>,
    cids: HashSet<String>,
    messages: usize,
    joined: usize,
    recalled: usize,
    deleted: usize,
    new_groups: usize,
}

impl<'s, 'a> More<'s, 'a> {
    fn new(
        opts: &'s MoreOptions,
        source: &Survey,
        sim: &'s mut Simulation<'a>,
        end_ms: i64,
    ) -> Result<Self, SimError> {
        sim.owner_uid = source.owner.clone();
        // Continue after the largest id: `alloc_mid` gives 10^10 + 8·n + (0..8).
        sim.next_mid = (source.max_mid - 10_000_000_000).div_euclid(8).max(0) + 1;
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut person = |sim: &mut Simulation, uid: &str, names: Option<&(String, String)>| {
            if let Some(&i) = index.get(uid) {
                return i;
            }
            let (nick, real_name) = names.cloned().unwrap_or_default();
            sim.people.push(Person {
                uid: uid.to_string(),
                nick,
                real_name,
                in_groups: false,
            });
            index.insert(uid.to_string(), sim.people.len() - 1);
            sim.people.len() - 1
        };
        let owner = person(sim, &source.owner, source.people.get(&source.owner));
        for (uid, names) in &source.people {
            person(sim, uid, Some(names));
        }
        for group in &source.groups {
            let mut members = vec![owner];
            for uid in &group.members {
                let m = person(sim, uid, source.people.get(uid));
                if m != owner {
                    members.push(m);
                }
            }
            sim.groups.push(Group {
                shard: shard_of(&group.cid),
                cid: group.cid.clone(),
                kind: GroupKind::Other,
                members,
                last_time: group.newest_ms.unwrap_or(source.newest_ms),
            });
        }
        Ok(More {
            opts,
            sim,
            start_ms: source.newest_ms,
            end_ms,
            existing: source.groups.len(),
            joins: Vec::new(),
            added_groups: Vec::new(),
            uids: source.uids.clone(),
            cids: source.cids.clone(),
            messages: 0,
            joined: 0,
            recalled: 0,
            deleted: 0,
            new_groups: 0,
        })
    }

    fn new_uid(&mut self) -> String {
        loop {
            let uid = random_digits(&mut self.sim.rng, 9);
            if !uid.starts_with(GHOST_PREFIX)
                && !uid.starts_with(LEFT_PREFIX)
                && self.uids.insert(uid.clone())
            {
                return uid;
            }
        }
    }

    /// A new person, written to `tbuser_profile_v2`; their index in `sim.people`.
    fn add_person(&mut self) -> Result<usize, SimError> {
        let uid = self.new_uid();
        let mut person = self.sim.new_person(uid);
        person.in_groups = true;
        let rng = &mut self.sim.rng;
        let mobile = edge::mobile_number(rng);
        let email = rng.gen_bool(0.3).then(|| edge::email(rng));
        let gender = rng.gen_range(0..3);
        self.sim.conn.execute(
            "INSERT INTO tbuser_profile_v2 (uid, nick, realName, avatarMediaId, gender, mobile, email, orgName, ver) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
            params![
                person.uid,
                person.nick,
                person.real_name,
                format!("@lADP{}", md5_hex(person.uid.as_bytes())),
                gender,
                mobile,
                email,
                "星辰科技",
            ],
        )?;
        self.sim.people.push(person);
        Ok(self.sim.people.len() - 1)
    }

    fn add_member(
        &mut self,
        group: usize,
        person: usize,
        role: i64,
        at_ms: i64,
    ) -> Result<(), SimError> {
        let (cid, uid) = (
            self.sim.groups[group].cid.clone(),
            self.sim.people[person].uid.clone(),
        );
        self.sim.conn.execute(
            "INSERT INTO tbconversation_member (cid, uid, role, joinAt, extension) VALUES (?1, ?2, ?3, ?4, NULL)",
            params![cid, uid, role, at_ms],
        )?;
        Ok(())
    }

    /// Recalls, then deletes, rows written before the continuation (hard rows left out).
    fn recall_and_delete(&mut self, source: &Survey) -> Result<(), SimError> {
        let rng = &mut self.sim.rng;
        let recallable: Vec<&OldRow> = source.old_rows.iter().filter(|r| r.recallable).collect();
        let recalls: Vec<&OldRow> = recallable
            .choose_multiple(rng, self.opts.recalls.min(recallable.len()))
            .copied()
            .collect();
        let recalled: HashSet<i64> = recalls.iter().map(|r| r.mid).collect();
        let rest: Vec<&OldRow> = source
            .old_rows
            .iter()
            .filter(|r| !recalled.contains(&r.mid))
            .collect();
        let deletions: Vec<&OldRow> = rest
            .choose_multiple(rng, self.opts.deletions.min(rest.len()))
            .copied()
            .collect();
        let span = (self.end_ms - self.start_ms).max(1);
        for row in recalls {
            let at = self.start_ms + self.sim.rng.gen_range(0..span);
            self.recalled += self.sim.conn.execute(
                &format!(
                    "UPDATE {} SET recallStatus = 1, modifiedAt = ?1 WHERE cid = ?2 AND mid = ?3",
                    shard_table(row.shard)
                ),
                params![at, row.cid, row.mid],
            )?;
        }
        for row in deletions {
            self.deleted += self.sim.conn.execute(
                &format!(
                    "DELETE FROM {} WHERE cid = ?1 AND mid = ?2",
                    shard_table(row.shard)
                ),
                params![row.cid, row.mid],
            )?;
            self.sim.conn.execute(
                "DELETE FROM im_image_info WHERE cid = ?1 AND mid = ?2",
                params![row.cid, row.mid],
            )?;
        }
        Ok(())
    }

    fn new_cid(&mut self) -> String {
        loop {
            let cid = self.sim.new_cid(usize::MAX);
            if self.cids.insert(cid.clone()) {
                return cid;
            }
        }
    }

    /// New groups, created at the start of the new period: the account owner, a new owner
    /// and new members.
    fn add_new_groups(&mut self) -> Result<(), SimError> {
        let size = self.sim_members();
        for _ in 0..self.opts.new_groups {
            let cid = self.new_cid();
            let kind = *GroupKind::ALL
                .choose(&mut self.sim.rng)
                .unwrap_or(&GroupKind::Other);
            let name = edge::group_name(&mut self.sim.rng, kind);
            let created = self.start_ms;
            let mut members = vec![0];
            for _ in 1..size {
                members.push(self.add_person()?);
            }
            let owner = members[1];
            self.sim.conn.execute(
                "INSERT INTO tbconversation (cid, type, title, icon, memberCount, createAt, lastModify, ownerId, status, extension) \
                 VALUES (?1, 2, ?2, ?3, ?4, ?5, ?6, ?7, 1, '{}')",
                params![
                    cid,
                    name,
                    format!("@lALP{}", md5_hex(cid.as_bytes())),
                    members.len() as i64,
                    created,
                    self.end_ms,
                    self.sim.people[owner].uid,
                ],
            )?;
            self.sim.groups.push(Group {
                shard: shard_of(&cid),
                cid,
                kind,
                members: members.clone(),
                last_time: created,
            });
            let group = self.sim.groups.len() - 1;
            for (position, &m) in members.iter().enumerate() {
                let role = if m == owner {
                    1
                } else if position < 4 {
                    2
                } else {
                    3
                };
                self.add_member(group, m, role, created)?;
            }
            self.added_groups.push(group);
            self.new_groups += 1;
        }
        Ok(())
    }

    fn sim_members(&self) -> usize {
        let mut sizes: Vec<usize> = self.sim.groups[..self.existing]
            .iter()
            .map(|g| g.members.len())
            .collect();
        sizes.sort_unstable();
        sizes
            .get(sizes.len() / 2)
            .copied()
            .unwrap_or(10)
            .clamp(3, 40)
    }

    /// The people who join each active existing group, at times in the first part of the
    /// new period.
    fn schedule_joins(&mut self, active: &[usize]) -> Result<(), SimError> {
        let window = (((self.end_ms - self.start_ms) as f64 * JOIN_SHARE) as i64).max(1);
        for &group in active {
            for n in 0..self.opts.joins {
                let person = self.add_person()?;
                let at_ms = self.start_ms + 1 + self.sim.rng.gen_range(0..window);
                self.joins.push(Join {
                    at_ms,
                    group,
                    person,
                    greets: n % 2 == 0,
                });
            }
        }
        self.joins.sort_by_key(|j| (j.at_ms, j.group, j.person));
        self.joins.reverse();
        Ok(())
    }

    /// A join whose time has come: the member row, and the tip announcing it at `time_ms`.
    fn join(&mut self, join: &Join, time_ms: i64, announce: bool) -> Result<(), SimError> {
        let group = join.group;
        let time = time_ms.max(self.sim.groups[group].last_time);
        self.add_member(group, join.person, 3, time)?;
        self.sim.conn.execute(
            "UPDATE tbconversation SET memberCount = coalesce(memberCount, 0) + 1 WHERE cid = ?1",
            params![self.sim.groups[group].cid],
        )?;
        self.sim.groups[group].members.push(join.person);
        self.joined += 1;
        if announce {
            let members = &self.sim.groups[group].members;
            let inviter = members
                .get(
                    1 + self
                        .sim
                        .rng
                        .gen_range(0..members.len().saturating_sub(2).max(1)),
                )
                .copied()
                .unwrap_or(0);
            let text = format!(
                "{}邀请{}加入了群聊",
                self.sim.shown_name(inviter),
                self.sim.shown_name(join.person)
            );
            self.insert(group, None, time, TYPE_SYSTEM, &text)?;
        }
        Ok(())
    }

    fn insert(
        &mut self,
        group: usize,
        sender: Option<String>,
        time: i64,
        content_type: i64,
        text: &str,
    ) -> Result<(), SimError> {
        let row = Row {
            content_type,
            content: Some(format!("{{\"text\":{}}}", json_string(text))),
            attachments: None,
            recall: 0,
        };
        let (cid, shard) = (
            self.sim.groups[group].cid.clone(),
            self.sim.groups[group].shard,
        );
        self.sim
            .insert(&cid, shard, sender.as_deref(), time, &row)?;
        self.sim.groups[group].last_time = time;
        self.messages += 1;
        Ok(())
    }

    /// The new messages, slot by slot: joins (with their tips and greetings) when their time
    /// comes, otherwise the simulator's mix in a group chosen by weight.
    fn write_messages(&mut self, talking: &[usize], first: Option<usize>) -> Result<(), SimError> {
        let total = self.opts.messages;
        let mut candidates: Vec<usize> = talking.to_vec();
        candidates.extend(self.added_groups.iter().copied());
        if total == 0 || candidates.is_empty() {
            return Ok(());
        }
        let weights: Vec<u32> = candidates
            .iter()
            .map(|_| self.sim.rng.gen_range(2..10))
            .collect();
        let group_picker = WeightedIndex::new(&weights)
            .map_err(|err| SimError::InvalidOption(format!("group weights: {err}")))?;
        // The simulator's mix, without recalls: a recalled row is a change of its own.
        let kinds: Vec<(Kind, u32)> = NORMAL_KINDS
            .iter()
            .copied()
            .filter(|(k, _)| *k != Kind::Recall)
            .collect();
        let kind_picker = WeightedIndex::new(kinds.iter().map(|(_, w)| *w))
            .map_err(|err| SimError::InvalidOption(format!("message mix weights: {err}")))?;
        let spread = TimeSpread::new(self.end_ms, self.opts.days, total);
        let mut greetings: Vec<(usize, usize)> = Vec::new();
        for slot in 0..total {
            let time = spread.time_of(slot, &mut self.sim.rng);
            if slot == 0 {
                if let Some(group) = first {
                    // At the group's newest time exactly: beside the messages already there.
                    let at = self.sim.groups[group].last_time;
                    let sender = self.sim.owner_uid.clone();
                    let text = edge::chat_text(&mut self.sim.rng, GroupKind::Other);
                    self.insert(group, Some(sender), at, TYPE_TEXT, &text)?;
                    continue;
                }
            }
            if let Some((group, person)) = greetings.pop() {
                let at = time.max(self.sim.groups[group].last_time) + SECOND_MS;
                let text = format!("大家好，我是{}，请多关照", self.sim.shown_name(person));
                let uid = self.sim.people[person].uid.clone();
                self.insert(group, Some(uid), at, TYPE_TEXT, &text)?;
                continue;
            }
            // Joins into a group that takes no messages are silent and take no slot.
            let mut announced = false;
            while self.joins.last().is_some_and(|j| j.at_ms <= time) {
                let Some(join) = self.joins.pop() else {
                    break;
                };
                let announce = candidates.contains(&join.group);
                self.join(&join, time, announce)?;
                if announce {
                    if join.greets {
                        greetings.push((join.group, join.person));
                    }
                    announced = true;
                    break;
                }
            }
            if announced {
                continue;
            }
            let group = candidates[group_picker.sample(&mut self.sim.rng)];
            let kind = kinds[kind_picker.sample(&mut self.sim.rng)].0;
            let before = self.sim.next_mid;
            self.sim.emit(group, time, kind, Edge::None)?;
            self.messages += usize::from(self.sim.next_mid > before);
        }
        Ok(())
    }

    /// Joins the messages left no room for: members all the same, without a tip.
    fn finish_joins(&mut self) -> Result<(), SimError> {
        while let Some(join) = self.joins.pop() {
            self.join(&join, join.at_ms, false)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::dingtalk::simulate::simulate_dingtalk;
    use crate::simulate::testkit::{options, snapshot, test_dir};

    /// The database (with its log) copied beside `root`: closing a connection to the
    /// source itself would checkpoint its log away.
    fn open_copy(root: &Path) -> Connection {
        let copy = root.with_file_name("copy");
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir_all(&copy).unwrap();
        fs::copy(root.join(DB_FILE), copy.join("dingtalk.db")).unwrap();
        let wal = root.join(format!("{DB_FILE}-wal"));
        if wal.exists() {
            fs::copy(wal, copy.join("dingtalk.db-wal")).unwrap();
        }
        Connection::open(copy.join("dingtalk.db")).unwrap()
    }

    /// Every group row: (cid, mid, createdAt if an integer, recallStatus).
    fn rows(root: &Path) -> Vec<(String, i64, Option<i64>, i64)> {
        let conn = open_copy(root);
        let mut all = Vec::new();
        for index in 0..SHARDS {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT m.cid, m.mid, CASE WHEN typeof(m.createdAt) = 'integer' THEN m.createdAt END, \
                     coalesce(m.recallStatus, 0) FROM {} m JOIN tbconversation c ON c.cid = m.cid AND c.type = 2",
                    shard_table(index)
                ))
                .unwrap();
            let found = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(Result::unwrap);
            all.extend(found);
        }
        all
    }

    /// Member rows by group.
    fn member_rows(root: &Path) -> BTreeMap<String, usize> {
        let conn = open_copy(root);
        let mut stmt = conn
            .prepare("SELECT cid, count(*) FROM tbconversation_member GROUP BY cid")
            .unwrap();
        let counts = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        counts
    }

    /// The newest placeable time of each conversation.
    fn newest(rows: &[(String, i64, Option<i64>, i64)]) -> BTreeMap<String, i64> {
        let mut newest = BTreeMap::new();
        for (cid, _, time, _) in rows {
            if let Some(t) = time.filter(|t| (MIN_TIME_MS..=MAX_TIME_MS).contains(t)) {
                let n = newest.entry(cid.clone()).or_insert(t);
                *n = (*n).max(t);
            }
        }
        newest
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
            ..MoreOptions::new(root.to_path_buf())
        }
    }

    /// Two continuations: ids unique, times after the newest, counts as written.
    fn continue_twice(name: &str, edge_rate: f64, wal: bool) {
        let out = test_dir("dingtalk", name).join("123456_v2");
        let mut opts = options(out.clone());
        opts.messages = 1500;
        opts.edge_rate = edge_rate;
        opts.wal = wal;
        simulate_dingtalk(&opts).unwrap();
        for seed in [22, 23] {
            let before = rows(&out);
            let members_before = member_rows(&out);
            let mark = newest(&before);
            let report = simulate_more_dingtalk(&more(&out, seed)).unwrap();
            let after = rows(&out);
            assert_eq!(out.join(format!("{DB_FILE}-wal")).exists(), wal, "{name}");
            let mut mids: Vec<i64> = after.iter().map(|r| r.1).collect();
            mids.sort_unstable();
            let len = mids.len();
            mids.dedup();
            assert_eq!(mids.len(), len, "{name}: ids unique");
            let old: HashSet<i64> = before.iter().map(|r| r.1).collect();
            let new: Vec<_> = after.iter().filter(|r| !old.contains(&r.1)).collect();
            assert_eq!(new.len(), report.messages, "{name}: messages");
            assert_eq!(report.messages, 300, "{name}");
            let max_old = before.iter().map(|r| r.1).max().unwrap();
            assert!(new.iter().all(|r| r.1 > max_old), "{name}: ids continue");
            let overall = mark.values().copied().max().unwrap();
            for (cid, mid, time, _) in &new {
                // A group's first new message may be at its own newest time; new groups
                // start at the source's newest.
                let from = mark.get(cid).copied().unwrap_or(overall);
                assert!(
                    time.is_some_and(|t| t >= from),
                    "{name}: {cid} {mid} at {time:?}, before {from}"
                );
            }
            let after_overall = new
                .iter()
                .filter(|r| r.2.is_some_and(|t| t >= overall))
                .count();
            assert!(after_overall + 1 >= new.len(), "{name}: one at a mark");
            let kept: HashSet<i64> = after.iter().map(|r| r.1).collect();
            assert_eq!(
                old.iter().filter(|m| !kept.contains(m)).count(),
                report.deleted
            );
            assert_eq!(report.deleted, 2, "{name}");
            let recalled_before = before.iter().filter(|r| r.3 > 0).count();
            let recalled_after = after
                .iter()
                .filter(|r| r.3 > 0 && old.contains(&r.1))
                .count();
            assert_eq!(report.recalled, 3, "{name}");
            assert!(recalled_after >= recalled_before + 3 - 2, "{name}: recalls");
            let members_after = member_rows(&out);
            let joined: usize = members_before
                .iter()
                .map(|(cid, n)| members_after[cid] - n)
                .sum();
            assert_eq!(joined, report.joined, "{name}: joins");
            assert!(report.joined > 0, "{name}");
            assert_eq!(
                members_after.len(),
                members_before.len() + report.new_groups,
                "{name}: new groups have members"
            );
            assert_eq!(report.new_groups, 1);
            // The importer reads it all.
            let source = crate::platform::dingtalk::DingtalkSource::open(&out).unwrap();
            let groups = crate::source::Source::groups(&source).unwrap();
            let read: usize = groups
                .iter()
                .filter(|g| g.is_group)
                .map(|g| {
                    crate::source::Source::messages(&source, &g.id)
                        .unwrap()
                        .count()
                })
                .sum();
            assert_eq!(read, after.len(), "{name}: read back");
        }
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }

    #[test]
    fn two_continuations_keep_ids_times_and_counts() {
        continue_twice("more-005", 0.05, false);
    }

    #[test]
    fn continues_without_edges_and_with_many() {
        continue_twice("more-0", 0.0, false);
        continue_twice("more-01", 0.1, false);
    }

    #[test]
    fn continues_a_source_whose_newest_rows_are_in_the_wal() {
        continue_twice("more-wal", 0.05, true);
    }

    #[test]
    fn same_source_and_options_give_identical_bytes() {
        let mut snapshots = Vec::new();
        for name in ["det-more-a", "det-more-b"] {
            let out = test_dir("dingtalk", name).join("123456_v2");
            let mut opts = options(out.clone());
            opts.messages = 800;
            opts.wal = true;
            simulate_dingtalk(&opts).unwrap();
            simulate_more_dingtalk(&more(&out, 5)).unwrap();
            snapshots.push(snapshot(&out));
            fs::remove_dir_all(out.parent().unwrap()).unwrap();
        }
        assert!(snapshots[0] == snapshots[1]);
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let dir = test_dir("dingtalk", "more-refuse");
        fs::create_dir_all(dir.join("DBFiles")).unwrap();
        let refused = |dir: &Path| match simulate_more_dingtalk(&more(dir, 1)) {
            Err(SimError::CannotContinue { .. }) => {}
            other => panic!("{other:?}"),
        };
        refused(&dir);
        fs::write(dir.join(DB_FILE), b"not a database at all, just some bytes").unwrap();
        refused(&dir);
        fs::remove_file(dir.join(DB_FILE)).unwrap();
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        conn.execute_batch("CREATE TABLE tbconversation (cid TEXT, type INTEGER);")
            .unwrap();
        drop(conn);
        let before = snapshot(&dir);
        refused(&dir);
        assert_eq!(snapshot(&dir), before, "a refusal writes nothing");
        fs::remove_dir_all(&dir).unwrap();
    }
}
