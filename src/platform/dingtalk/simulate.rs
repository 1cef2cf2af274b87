//! Simulated DingTalk PC account directory (`DBFiles/dingtalk.db` in WAL mode plus media
//! caches), laid out as sources.md §4 describes and seeded with edge cases.
//!
//! What a test can rely on (with `edge_rate > 0` and a few hundred messages):
//! - the account owner's uid is the `<uid>` of `out`'s name `<uid>_v2`/`_v3` when it has
//!   one (then that uid's messages are `sent`); otherwise a generated uid no name reveals;
//! - group 0's cid contains `+` and `=`, group 1's (if any) contains `/`;
//! - with 3 or more groups the last group is dissolved: its last message is the system
//!   row [`DISSOLUTION_TEXT`];
//! - senders never in any member or profile table have uids starting with [`GHOST_PREFIX`];
//!   former members (in `tbuser_profile_v2`, in no member list) with [`LEFT_PREFIX`];
//! - content types the spec does not list: [`UNKNOWN_TYPES`]; malformed `content` and
//!   `attachments` JSON; a NULL content; rows inserted out of time order; equal times;
//! - media paths escaping the root ([`OUTSIDE_PATHS`]), a symbolic link in `ImageFiles/`
//!   to [`SYMLINK_TARGET`], a missing file, a zero-byte file, orphans, a non-UTF-8 name;
//! - with `wal`, the newest ~2% of group messages exist only in `DBFiles/dingtalk.db-wal`;
//! - with 4 or more groups, what `simulate::plant` describes: group 0 is its group A
//!   (owned by the account holder: the announcement [`plant::changed_notice`], one
//!   character off [`plant::notice`], 25 h before [`plant::dissolve_at`]; a red packet, 902
//!   with `count` 5, sent 6 h before `now` by a member and claimed once; early on a file
//!   message, 501, whose `resource_cache/` file is not there), group 1 its group B
//!   (`ownerId` the account holder's: the same announcement 23 h before; a red packet of
//!   `count` 3 sent 9 h before `now`, claimed by three others) and group 2 its group T
//!   (owned by another member, as every group but 0 and 1 is). Claims are system rows
//!   (102) `<claimer>领取了<sender>的红包`, each name the member's `nick`, else `realName`, in
//!   the slots right after the packet; other red packets have no claims;
//! - with `members` 40 and 3 or more groups, groups 0, 1, 2 have 39, 40, 41 members;
//! - written last, in group 0: system rows with NULL and empty content, a `createdAt` of
//!   [`BAD_TIME_TEXT`] and one of `i64::MAX`, and (when group 0 has members whose `nick`
//!   differs from their `realName`) a mention, a red-packet claim and a document title
//!   naming members by `realName`.

use std::fs;
use std::path::Path;
use std::time::Instant;

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::{params, Connection};

use crate::simulate::edge::{self, GroupKind};
use crate::simulate::plant::{self, Schedule};
use crate::simulate::{
    io_error, md5_hex, media, prepare_output_dir, random_digits, seeded_rng, write_file_at,
    SimError, SimOptions, SimReport, SimRng, TimeSpread, DAY_MS, HOUR_MS, SECOND_MS,
};

/// The database, relative to the account directory.
pub const DB_FILE: &str = "DBFiles/dingtalk.db";
pub const SHARDS: usize = 128;
pub const DISSOLUTION_TEXT: &str = "群主已解散该群";
pub const GHOST_PREFIX: &str = "9990";
pub const LEFT_PREFIX: &str = "8880";
pub const SYMLINK_TARGET: &str = "/etc/hostname";
/// Media paths that point outside the account directory.
pub const OUTSIDE_PATHS: [&str; 2] = ["../../etc/passwd", "/etc/passwd"];
/// Content types the spec does not list; importers keep them as kind `other`.
pub const UNKNOWN_TYPES: [i64; 4] = [1200, 2900, 104, 1101];

/// A `createdAt` planted as text that is no number (with edge cases on).
pub const BAD_TIME_TEXT: &str = "昨天";

pub use super::schema::{
    FILE as TYPE_FILE, IMAGE as TYPE_IMAGE, RED_PACKET as TYPE_RED_PACKET, SYSTEM as TYPE_SYSTEM,
    TEXT as TYPE_TEXT, VIDEO as TYPE_VIDEO, VOICE as TYPE_VOICE,
};

/// Share of the newest group messages left only in the WAL.
const WAL_SHARE: f64 = 0.02;
const OWNER_SHARE: f64 = 0.12;
const PRIVATE_CHATS: usize = 3;
const PRIVATE_MESSAGES: usize = 6;
const MEDIA_STREAM: u64 = 1 << 40;

const SCHEMA: &str = "
CREATE TABLE tbconversation (cid TEXT PRIMARY KEY, type INTEGER, title TEXT, icon TEXT, memberCount INTEGER, createAt INTEGER, lastModify INTEGER, ownerId INTEGER, status INTEGER, unreadCount INTEGER DEFAULT 0, top INTEGER DEFAULT 0, notificationOff INTEGER DEFAULT 0, tag INTEGER DEFAULT 0, extension TEXT);
CREATE TABLE tbuser_profile_v2 (uid INTEGER PRIMARY KEY, nick TEXT, realName TEXT, avatarMediaId TEXT, gender INTEGER, mobile TEXT, email TEXT, orgName TEXT, isActive INTEGER DEFAULT 1, ver INTEGER, extension TEXT);
CREATE TABLE tbconversation_member (cid TEXT, uid INTEGER, role INTEGER, joinAt INTEGER, extension TEXT, PRIMARY KEY (cid, uid));
CREATE TABLE im_image_info (id INTEGER PRIMARY KEY AUTOINCREMENT, cid TEXT, mid INTEGER, local_path TEXT, size INTEGER, width INTEGER, height INTEGER, md5 TEXT);
CREATE TABLE tbsync_info (key TEXT PRIMARY KEY, value TEXT, updatedAt INTEGER);
CREATE TABLE tbemotion_package (packageId INTEGER PRIMARY KEY, name TEXT, localPath TEXT, version INTEGER);
CREATE TABLE tbcalendar_event (eventId TEXT PRIMARY KEY, title TEXT, startAt INTEGER, endAt INTEGER);
";

const SHARD_COLUMNS: &str = "(cid TEXT, mid INTEGER NOT NULL, senderId INTEGER, createdAt INTEGER, modifiedAt INTEGER, contentType INTEGER, content TEXT, attachments TEXT, recallStatus INTEGER DEFAULT 0, status INTEGER DEFAULT 1, unreadCount INTEGER DEFAULT 0, tag INTEGER DEFAULT 0, extension TEXT, localId TEXT)";

pub(super) fn shard_table(index: usize) -> String {
    format!("tbmsg_{index:03}")
}

/// Which shard a conversation lives in: nothing in the data says, the app hashes the cid.
pub(super) fn shard_of(cid: &str) -> usize {
    let digest = md5_hex(cid.as_bytes());
    usize::from_str_radix(&digest[..4], 16).unwrap_or(0) % SHARDS
}

fn indexes() -> String {
    let mut sql = String::from(
        "CREATE INDEX idx_member_cid ON tbconversation_member (cid);\n\
         CREATE INDEX idx_image_mid ON im_image_info (cid, mid);\n",
    );
    for index in 0..SHARDS {
        let table = shard_table(index);
        sql.push_str(&format!(
            "CREATE UNIQUE INDEX {table}_mid ON {table} (mid);\n\
             CREATE INDEX {table}_cid_created ON {table} (cid, createdAt);\n"
        ));
    }
    sql
}

/// The owner uid the directory name carries (`<uid>_v2` / `_v3`).
pub(super) fn uid_in_name(out: &Path) -> Option<String> {
    let name = out.file_name()?.to_str()?;
    let uid = name
        .strip_suffix("_v2")
        .or_else(|| name.strip_suffix("_v3"))?;
    (!uid.is_empty() && uid.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| uid.to_string())
}

/// Writes a simulated DingTalk PC account directory at `opts.out`.
pub fn simulate_dingtalk(opts: &SimOptions) -> Result<SimReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    prepare_output_dir(&opts.out)?;
    let db_dir = opts.out.join("DBFiles");
    fs::create_dir_all(&db_dir).map_err(io_error(&db_dir))?;
    let db_path = opts.out.join(DB_FILE);
    let conn = Connection::open(&db_path)?;
    // Fixed page size and no journal: reproducible bytes and a fast bulk load.
    conn.execute_batch(
        "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; \
         PRAGMA cache_size=-65536;",
    )?;
    conn.set_prepared_statement_cache_capacity(SHARDS + 16);
    conn.execute_batch(SCHEMA)?;
    for index in 0..SHARDS {
        conn.execute_batch(&format!(
            "CREATE TABLE {} {SHARD_COLUMNS};",
            shard_table(index)
        ))?;
    }
    conn.execute_batch("BEGIN")?;
    let mut sim = Simulation::new(opts, conn)?;
    sim.write_people()?;
    sim.build_groups()?;
    sim.write_extra_tables()?;
    sim.write_private_chats()?;
    sim.write_group_messages()?;
    let hard_rows = sim.plant_hard_rows()?;
    sim.conn.execute_batch("COMMIT")?;
    if !sim.in_wal {
        sim.conn.execute_batch(&indexes())?;
        // DingTalk keeps its database in WAL mode; closing checkpoints and removes the log.
        let _: String = sim
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    }
    let in_wal = sim.in_wal;
    let Simulation {
        conn,
        media_written,
        group_messages,
        people,
        private_chats,
        ..
    } = sim;
    let members = people.iter().filter(|p| p.in_groups).count();
    conn.close().map_err(|(_, err)| SimError::Sqlite(err))?;
    if in_wal {
        let wal_path = opts.out.join(format!("{DB_FILE}-wal"));
        crate::simulate::fix_wal_salts(
            &wal_path,
            opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1D1_7A1C_D1D1_7A1C,
        )?;
        // The shared-memory index caches the old salts; SQLite rebuilds it from the WAL.
        let shm_path = opts.out.join(format!("{DB_FILE}-shm"));
        if shm_path.exists() {
            fs::remove_file(&shm_path).map_err(io_error(&shm_path))?;
        }
    }
    let mut media_files = media_written;
    if opts.media_files {
        media_files += write_orphans(opts)?;
    }
    Ok(SimReport {
        root: opts.out.clone(),
        platform: "dingtalk",
        groups: opts.groups,
        private_chats,
        members,
        messages: group_messages,
        hard_rows,
        media_files,
        elapsed: started.elapsed(),
    })
}

pub(super) struct Person {
    pub(super) uid: String,
    pub(super) nick: String,
    pub(super) real_name: String,
    pub(super) in_groups: bool,
}

pub(super) struct Group {
    pub(super) cid: String,
    pub(super) shard: usize,
    pub(super) kind: GroupKind,
    /// Indexes into `people`; the account owner first.
    pub(super) members: Vec<usize>,
    pub(super) last_time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Image,
    Voice,
    Video,
    File,
    RedPacket,
    System,
    Recall,
    Unknown,
}

pub(super) const NORMAL_KINDS: [(Kind, u32); 8] = [
    (Kind::Text, 700),
    (Kind::Image, 80),
    (Kind::Voice, 50),
    (Kind::Video, 20),
    (Kind::File, 40),
    (Kind::RedPacket, 20),
    (Kind::System, 30),
    (Kind::Recall, 20),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    None,
    NastyText,
    LongText,
    Pii,
    MalformedContent,
    NullContent,
    MalformedAttachments,
    BrokenAttachmentList,
    ExtensionObject,
    Ghost,
    LeftMember,
    DuplicateTime,
    OutOfOrder,
    MissingFile,
    NoImageRow,
    OutsidePath(usize),
    Symlink,
    EmptyFile,
}

const RANDOM_EDGES: [Edge; 12] = [
    Edge::NastyText,
    Edge::Pii,
    Edge::MalformedContent,
    Edge::NullContent,
    Edge::MalformedAttachments,
    Edge::Ghost,
    Edge::LeftMember,
    Edge::DuplicateTime,
    Edge::OutOfOrder,
    Edge::MissingFile,
    Edge::EmptyFile,
    Edge::NoImageRow,
];

/// A planted row (`simulate::plant`).
enum Planted {
    Notice(usize),
    RedPacket {
        group: usize,
        parts: u64,
        claims: usize,
    },
    /// A system row `<claimer>领取了<sender>的红包`.
    Claim {
        group: usize,
        text: String,
    },
    UndownloadedFile(usize),
}

/// One row of a message shard.
pub(super) struct Row {
    pub(super) content_type: i64,
    pub(super) content: Option<String>,
    pub(super) attachments: Option<String>,
    pub(super) recall: i64,
}

pub(super) struct Simulation<'a> {
    opts: &'a SimOptions,
    pub(super) conn: Connection,
    pub(super) rng: SimRng,
    pub(super) owner_uid: String,
    pub(super) people: Vec<Person>,
    left: Vec<usize>,
    pub(super) groups: Vec<Group>,
    pub(super) next_mid: i64,
    pub(super) media_written: usize,
    group_messages: usize,
    private_chats: usize,
    in_wal: bool,
    kind_picker: WeightedIndex<u32>,
    file_uses: u64,
    shard_sql: Vec<String>,
}

pub(super) fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

impl<'a> Simulation<'a> {
    pub(super) fn new(opts: &'a SimOptions, conn: Connection) -> Result<Self, SimError> {
        let mut rng = seeded_rng(opts.seed, 0);
        let owner_uid = uid_in_name(&opts.out).unwrap_or_else(|| random_digits(&mut rng, 9));
        let kind_picker = WeightedIndex::new(NORMAL_KINDS.iter().map(|(_, w)| *w))
            .map_err(|err| SimError::InvalidOption(format!("message mix weights: {err}")))?;
        Ok(Simulation {
            opts,
            conn,
            rng,
            owner_uid,
            people: Vec::new(),
            left: Vec::new(),
            groups: Vec::new(),
            next_mid: 0,
            media_written: 0,
            group_messages: 0,
            private_chats: 0,
            in_wal: false,
            kind_picker,
            file_uses: 0,
            shard_sql: (0..SHARDS)
                .map(|i| {
                    format!(
                        "INSERT INTO {} (cid, mid, senderId, createdAt, modifiedAt, contentType, content, attachments, recallStatus, localId) \
                         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)",
                        shard_table(i)
                    )
                })
                .collect(),
        })
    }

    fn edges_on(&self) -> bool {
        self.opts.edge_rate > 0.0
    }

    fn start_ms(&self) -> i64 {
        self.opts.now_ms - i64::from(self.opts.days) * DAY_MS
    }

    // ------------------------------------------------------------------ people

    pub(super) fn new_person(&mut self, uid: String) -> Person {
        let real_name = edge::person_name(&mut self.rng);
        let roll = self.rng.gen_range(0..100);
        let nick = if self.edges_on() && roll < 4 {
            edge::nasty_name(&mut self.rng)
        } else if roll < 15 {
            String::new() // no nick: the real name is shown
        } else {
            edge::nickname(&mut self.rng)
        };
        Person {
            uid,
            nick,
            real_name,
            in_groups: false,
        }
    }

    fn write_people(&mut self) -> Result<(), SimError> {
        let pool = self
            .opts
            .members
            .max(self.opts.groups * self.opts.members * 3 / 4)
            .max(2);
        let owner_uid = self.owner_uid.clone();
        let mut owner = self.new_person(owner_uid);
        owner.in_groups = true;
        self.people.push(owner);
        let mut used = std::collections::HashSet::new();
        used.insert(self.owner_uid.clone());
        while self.people.len() < pool {
            let uid = random_digits(&mut self.rng, 9);
            if uid.starts_with(GHOST_PREFIX)
                || uid.starts_with(LEFT_PREFIX)
                || !used.insert(uid.clone())
            {
                continue;
            }
            let person = self.new_person(uid);
            self.people.push(person);
        }
        if self.edges_on() {
            for index in 0..3 {
                let person = self.new_person(format!("{LEFT_PREFIX}{index:05}"));
                self.left.push(self.people.len());
                self.people.push(person);
            }
        }
        let mut stmt = self.conn.prepare(
            "INSERT INTO tbuser_profile_v2 (uid, nick, realName, avatarMediaId, gender, mobile, email, orgName, ver) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
        )?;
        for person in &self.people {
            let mobile = edge::mobile_number(&mut self.rng);
            let email = if self.rng.gen_bool(0.3) {
                Some(edge::email(&mut self.rng))
            } else {
                None
            };
            let nick: Option<&str> = if person.nick.is_empty() && self.rng.gen_bool(0.5) {
                None
            } else {
                Some(&person.nick)
            };
            stmt.execute(params![
                person.uid,
                nick,
                person.real_name,
                format!("@lADP{}", md5_hex(person.uid.as_bytes())),
                self.rng.gen_range(0..3),
                mobile,
                email,
                "星辰科技",
            ])?;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ groups

    pub(super) fn new_cid(&mut self, index: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut cid = String::from("cid");
        for _ in 0..11 {
            cid.push(char::from(ALPHABET[self.rng.gen_range(0..64)]));
        }
        // Characters that break naive file names and URLs, guaranteed in the first groups.
        match index {
            0 => cid.replace_range(5..6, "+"),
            1 => cid.replace_range(5..6, "/"),
            _ => {}
        }
        cid.push_str("==");
        cid
    }

    fn build_groups(&mut self) -> Result<(), SimError> {
        let opts = self.opts;
        let pool = self.people.len() - self.left.len();
        let start = self.start_ms();
        let mut cids = std::collections::HashSet::new();
        for index in 0..opts.groups {
            let mut cid = self.new_cid(index);
            while !cids.insert(cid.clone()) {
                cid = self.new_cid(usize::MAX);
            }
            let kind = GroupKind::ALL[index % GroupKind::ALL.len()];
            let wanted = plant::sized_members(opts, index)
                .unwrap_or(opts.members)
                .min(pool)
                .max(2);
            let mut others: Vec<usize> = (1..pool).collect();
            others.shuffle(&mut self.rng);
            let mut members = vec![0];
            members.extend(others.into_iter().take(wanted - 1));
            for &m in &members {
                self.people[m].in_groups = true;
            }
            // The account owner owns group 0 (and, planted, group 1); the others are owned
            // by a member.
            let owner = if index == 0 || members.len() < 2 || (index == 1 && plant::plants(opts)) {
                0
            } else {
                members[1]
            };
            let dissolved = opts.groups >= 3 && index == opts.groups - 1;
            let name = edge::group_name(&mut self.rng, kind);
            let created = start - self.rng.gen_range(1..200) * DAY_MS;
            self.conn.execute(
                "INSERT INTO tbconversation (cid, type, title, icon, memberCount, createAt, lastModify, ownerId, status, extension) \
                 VALUES (?1, 2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '{}')",
                params![
                    cid,
                    name,
                    format!("@lALP{}", md5_hex(cid.as_bytes())),
                    members.len() as i64,
                    created,
                    opts.now_ms,
                    self.people[owner].uid,
                    if dissolved { 0 } else { 1 },
                ],
            )?;
            for (position, &m) in members.iter().enumerate() {
                let role = if m == owner {
                    1
                } else if position < 4 {
                    2
                } else {
                    3
                };
                let joined = created + self.rng.gen_range(0..(start - created).max(1));
                self.conn.execute(
                    "INSERT INTO tbconversation_member (cid, uid, role, joinAt, extension) VALUES (?1, ?2, ?3, ?4, NULL)",
                    params![cid, self.people[m].uid, role, joined],
                )?;
            }
            self.groups.push(Group {
                shard: shard_of(&cid),
                cid,
                kind,
                members,
                last_time: start,
            });
        }
        Ok(())
    }

    fn write_extra_tables(&mut self) -> Result<(), SimError> {
        self.conn.execute_batch(
            "INSERT INTO tbsync_info VALUES ('im_sync_version', '1783', 0);
             INSERT INTO tbsync_info VALUES ('device', 'PC-Windows', 0);
             INSERT INTO tbemotion_package VALUES (1, '默认表情', 'resource_cache/emotion/default', 3);
             INSERT INTO tbcalendar_event VALUES ('ev1', '周会', 0, 3600000);",
        )?;
        Ok(())
    }

    // ------------------------------------------------------------------ messages

    fn alloc_mid(&mut self) -> i64 {
        self.next_mid += 1;
        // Unique and increasing, but not dense: real message ids are server-assigned.
        10_000_000_000 + self.next_mid * 8 + self.rng.gen_range(0..8)
    }

    pub(super) fn insert(
        &mut self,
        cid: &str,
        shard: usize,
        sender: Option<&str>,
        time: i64,
        row: &Row,
    ) -> Result<i64, SimError> {
        let mid = self.alloc_mid();
        let mut stmt = self.conn.prepare_cached(&self.shard_sql[shard])?;
        stmt.execute(params![
            cid,
            mid,
            sender,
            time,
            row.content_type,
            row.content,
            row.attachments,
            row.recall,
            format!("L{mid}"),
        ])?;
        Ok(mid)
    }

    fn write_private_chats(&mut self) -> Result<(), SimError> {
        if self.opts.groups == 0 || self.people.len() < 2 {
            return Ok(());
        }
        let start = self.start_ms();
        let span = i64::from(self.opts.days) * DAY_MS;
        for chat in 0..PRIVATE_CHATS {
            let other = 1 + chat % (self.people.len() - 1);
            let (a, b) = (self.owner_uid.clone(), self.people[other].uid.clone());
            let cid = if a <= b {
                format!("{a}:{b}")
            } else {
                format!("{b}:{a}")
            };
            let inserted = self.conn.execute(
                "INSERT OR IGNORE INTO tbconversation (cid, type, title, memberCount, createAt, ownerId, status) VALUES (?1, 1, ?2, 2, ?3, NULL, 1)",
                params![cid, self.people[other].real_name, start],
            )?;
            self.private_chats += inserted;
            let shard = shard_of(&cid);
            for n in 0..PRIVATE_MESSAGES {
                let time = start
                    + span * (n as i64 + 1) / (PRIVATE_MESSAGES as i64 + 2)
                    + chat as i64 * SECOND_MS;
                let sender = if n % 2 == 0 { a.clone() } else { b.clone() };
                let text = edge::chat_text(&mut self.rng, GroupKind::Other);
                let row = Row {
                    content_type: TYPE_TEXT,
                    content: Some(format!("{{\"text\":{}}}", json_string(&text))),
                    attachments: None,
                    recall: 0,
                };
                self.insert(&cid, shard, Some(&sender), time, &row)?;
            }
        }
        Ok(())
    }

    fn forced(&self) -> Vec<(Kind, Edge)> {
        let mut forced: Vec<(Kind, Edge)> =
            NORMAL_KINDS.iter().map(|(k, _)| (*k, Edge::None)).collect();
        if self.edges_on() {
            forced.extend([
                (Kind::Text, Edge::NastyText),
                (Kind::Text, Edge::NastyText),
                (Kind::Text, Edge::NastyText),
                (Kind::Text, Edge::LongText),
                (Kind::Text, Edge::Pii),
                (Kind::Text, Edge::MalformedContent),
                (Kind::Text, Edge::NullContent),
                (Kind::File, Edge::MalformedAttachments),
                (Kind::Voice, Edge::BrokenAttachmentList),
                (Kind::Video, Edge::ExtensionObject),
                (Kind::Unknown, Edge::None),
                (Kind::Text, Edge::Ghost),
                (Kind::Text, Edge::LeftMember),
                (Kind::Text, Edge::DuplicateTime),
                (Kind::Text, Edge::OutOfOrder),
                (Kind::Image, Edge::MissingFile),
                (Kind::Image, Edge::NoImageRow),
                (Kind::Image, Edge::OutsidePath(0)),
                (Kind::File, Edge::OutsidePath(1)),
                (Kind::Image, Edge::Symlink),
                (Kind::Voice, Edge::EmptyFile),
            ]);
        }
        forced
    }

    fn pick(&mut self) -> (Kind, Edge) {
        let kind = NORMAL_KINDS[self.kind_picker.sample(&mut self.rng)].0;
        if !self.rng.gen_bool(self.opts.edge_rate) {
            return (kind, Edge::None);
        }
        let edge = *RANDOM_EDGES
            .choose(&mut self.rng)
            .unwrap_or(&Edge::NastyText);
        let kind = match edge {
            Edge::NastyText | Edge::Pii | Edge::MalformedContent | Edge::NullContent => Kind::Text,
            Edge::MalformedAttachments => Kind::File,
            Edge::MissingFile | Edge::NoImageRow => Kind::Image,
            Edge::EmptyFile => Kind::Voice,
            _ if kind == Kind::Recall || kind == Kind::System => Kind::Text,
            _ => kind,
        };
        (kind, edge)
    }

    fn write_group_messages(&mut self) -> Result<(), SimError> {
        let total = self.opts.messages;
        if total == 0 || self.groups.is_empty() {
            return Ok(());
        }
        let spread = TimeSpread::new(self.opts.now_ms, self.opts.days, total);
        let wal_from = if self.opts.wal {
            total - ((total as f64 * WAL_SHARE).ceil() as usize).clamp(1, total)
        } else {
            usize::MAX
        };
        let dissolved = (self.opts.groups >= 3).then(|| self.opts.groups - 1);
        let dissolve_at = total * 7 / 10;
        let forced = self.forced();
        let forced_span = (total * 6 / 10).max(1);
        let mut forced: std::collections::VecDeque<(usize, Kind, Edge)> = forced
            .iter()
            .enumerate()
            .map(|(k, (kind, edge))| (k * forced_span / forced.len(), *kind, *edge))
            .collect();
        let mut weights: Vec<u32> = (0..self.groups.len())
            .map(|_| self.rng.gen_range(2..10))
            .collect();
        let mut group_picker = WeightedIndex::new(&weights)
            .map_err(|err| SimError::InvalidOption(format!("group weights: {err}")))?;
        let mut plan = self.plan();
        for slot in 0..total {
            if slot == wal_from {
                self.switch_to_wal()?;
            }
            let time = spread.time_of(slot, &mut self.rng);
            self.group_messages += 1;
            if let Some(group) = dissolved.filter(|_| slot == dissolve_at) {
                plan.occupied(time);
                let row = Row {
                    content_type: TYPE_SYSTEM,
                    content: Some(format!("{{\"text\":{}}}", json_string(DISSOLUTION_TEXT))),
                    attachments: None,
                    recall: 0,
                };
                let time = time.max(self.groups[group].last_time);
                let (cid, shard) = (self.groups[group].cid.clone(), self.groups[group].shard);
                self.insert(&cid, shard, None, time, &row)?;
                self.groups[group].last_time = time;
                weights[group] = 0;
                group_picker = WeightedIndex::new(&weights)
                    .map_err(|err| SimError::InvalidOption(format!("group weights: {err}")))?;
                continue;
            }
            if let Some((at, event)) = plan.next(time) {
                self.emit_planted(&mut plan, event, at)?;
                continue;
            }
            let group = group_picker.sample(&mut self.rng);
            let (kind, edge) = if forced.front().is_some_and(|(at, _, _)| *at <= slot) {
                let (_, kind, edge) = forced.pop_front().unwrap_or((0, Kind::Text, Edge::None));
                (kind, edge)
            } else {
                self.pick()
            };
            self.emit(group, time, kind, edge)?;
        }
        Ok(())
    }

    /// The planted rows (`simulate::plant`): group 0 is A, group 1 is B.
    fn plan(&self) -> Schedule<Planted> {
        if !plant::plants(self.opts) {
            return Schedule::empty();
        }
        let (now, at) = (self.opts.now_ms, plant::dissolve_at(self.opts.now_ms));
        Schedule::new(vec![
            (
                self.start_ms() + plant::UNDOWNLOADED_AFTER_START_MS,
                Planted::UndownloadedFile(0),
            ),
            (at - plant::EARLY_NOTICE_MS, Planted::Notice(0)),
            (at - plant::LATE_NOTICE_MS, Planted::Notice(1)),
            (
                now - plant::CLAIMED_AGO_MS,
                Planted::RedPacket {
                    group: 1,
                    parts: plant::CLAIMED_PARTS,
                    claims: plant::CLAIMED_PARTS as usize,
                },
            ),
            (
                now - plant::UNCLAIMED_AGO_MS,
                Planted::RedPacket {
                    group: 0,
                    parts: plant::UNCLAIMED_PARTS,
                    claims: plant::UNCLAIMED_CLAIMS,
                },
            ),
        ])
    }

    /// A person's name as messages and claims show it: `nick`, else `realName`.
    pub(super) fn shown_name(&self, person: usize) -> &str {
        let p = &self.people[person];
        if p.nick.is_empty() {
            &p.real_name
        } else {
            &p.nick
        }
    }

    fn emit_planted(
        &mut self,
        plan: &mut Schedule<Planted>,
        event: Planted,
        at: i64,
    ) -> Result<(), SimError> {
        let group = match &event {
            Planted::Notice(g) | Planted::UndownloadedFile(g) => *g,
            Planted::RedPacket { group, .. } | Planted::Claim { group, .. } => *group,
        };
        let time = at.max(self.groups[group].last_time);
        self.groups[group].last_time = time;
        let (cid, shard) = (self.groups[group].cid.clone(), self.groups[group].shard);
        // Members other than the account holder whose name a claim can carry.
        let claimable: Vec<usize> = self.groups[group]
            .members
            .iter()
            .copied()
            .skip(1)
            .filter(|&m| plant::claimable(self.shown_name(m)))
            .collect();
        let (sender, row) = match event {
            Planted::Notice(_) => {
                let text = plant::changed_notice(self.opts.seed, self.opts.now_ms);
                let row = Row {
                    content_type: TYPE_TEXT,
                    content: Some(format!("{{\"text\":{}}}", json_string(&text))),
                    attachments: None,
                    recall: 0,
                };
                (Some(self.owner_uid.clone()), row)
            }
            Planted::RedPacket { parts, claims, .. } => {
                // With no one else to send it, the account holder sends it, unclaimed.
                let (sender, claimers) = match claimable.split_first() {
                    Some((&sender, claimers)) => (sender, claimers),
                    None => (0, &[][..]),
                };
                let sender_name = self.shown_name(sender).to_string();
                for &claimer in claimers.iter().take(claims) {
                    let text = format!("{}领取了{sender_name}的红包", self.shown_name(claimer));
                    plan.follow(Planted::Claim { group, text });
                }
                let row = Row {
                    content_type: TYPE_RED_PACKET,
                    content: Some(format!(
                        "{{\"title\":{},\"count\":{parts}}}",
                        json_string("恭喜发财，大吉大利")
                    )),
                    attachments: None,
                    recall: 0,
                };
                (Some(self.people[sender].uid.clone()), row)
            }
            Planted::Claim { text, .. } => {
                let row = Row {
                    content_type: TYPE_SYSTEM,
                    content: Some(format!("{{\"text\":{}}}", json_string(&text))),
                    attachments: None,
                    recall: 0,
                };
                (None, row)
            }
            Planted::UndownloadedFile(_) => {
                let mid_hint = self.next_mid + 1;
                // Never downloaded: the row names a `resource_cache/` file that is not there.
                let row = self.file_row(mid_hint, time, Edge::MissingFile)?;
                let sender = claimable.first().copied().unwrap_or(0);
                (Some(self.people[sender].uid.clone()), row)
            }
        };
        self.insert(&cid, shard, sender.as_deref(), time, &row)?;
        Ok(())
    }

    /// Rows written last, in group 0, so that earlier rows stay as they were: empty
    /// system rows (NULL and `""` content), times that are none ([`BAD_TIME_TEXT`]) or
    /// cannot be written (`i64::MAX`), and a member known by a `nick` whose `realName`
    /// appears in a mention, a red-packet claim and a document's title.
    fn plant_hard_rows(&mut self) -> Result<usize, SimError> {
        if !self.edges_on() || self.groups.is_empty() || self.opts.messages == 0 {
            return Ok(0);
        }
        let (cid, shard) = (self.groups[0].cid.clone(), self.groups[0].shard);
        let members = self.groups[0].members.clone();
        let named: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&m| {
                let p = &self.people[m];
                !p.nick.is_empty() && p.nick != p.real_name
            })
            .collect();
        let mut time = self.groups[0].last_time;
        let next = |time: &mut i64| {
            *time += SECOND_MS;
            *time
        };
        let system = |content: Option<String>| Row {
            content_type: TYPE_SYSTEM,
            content,
            attachments: None,
            recall: 0,
        };
        let text = |text: &str| Row {
            content_type: TYPE_TEXT,
            content: Some(format!("{{\"text\":{}}}", json_string(text))),
            attachments: None,
            recall: 0,
        };
        let mut rows: Vec<(Option<String>, i64, Row)> = vec![
            (None, next(&mut time), system(None)),
            (None, next(&mut time), system(Some(String::new()))),
        ];
        if let (Some(&a), Some(&b)) = (named.first(), named.get(1).or(named.first())) {
            let (a_uid, a_real) = (self.people[a].uid.clone(), self.people[a].real_name.clone());
            let b_real = self.people[b].real_name.clone();
            rows.push((
                Some(self.owner_uid.clone()),
                next(&mut time),
                text(&format!("@{a_real} 请看一下{b_real}发的文件")),
            ));
            rows.push((
                None,
                next(&mut time),
                system(Some(format!(
                    "{{\"text\":{}}}",
                    json_string(&format!("{a_real}领取了{b_real}的红包"))
                ))),
            ));
            // A document whose title names a member.
            let name = format!("{a_real}的简历.pdf");
            let mid_hint = self.next_mid + 1;
            let hash = md5_hex(format!("file-{mid_hint}").as_bytes());
            let rel = format!("resource_cache/{}/{}/{name}", &hash[..2], &hash[2..10]);
            let at = next(&mut time);
            if self.opts.media_files {
                let bytes = media::document(&mut self.media_rng(mid_hint, 0), "pdf", 640);
                self.write_media(&rel, &bytes, at, Edge::None)?;
            }
            rows.push((
                Some(a_uid),
                at,
                Row {
                    content_type: TYPE_FILE,
                    content: Some(format!("{{\"filename\":{}}}", json_string(&name))),
                    attachments: Some(Self::attachment(&name, 640, &rel, false)),
                    recall: 0,
                },
            ));
        }
        let last = next(&mut time);
        for (sender, at, row) in &rows {
            self.insert(&cid, shard, sender.as_deref(), *at, row)?;
        }
        self.groups[0].last_time = last;
        // Times that are not times: a word, and an instant no output can write.
        let sender = self.owner_uid.clone();
        let mid = self.insert(&cid, shard, Some(&sender), last, &text("时间是一个词"))?;
        self.conn.execute(
            &format!(
                "UPDATE {} SET createdAt = ?1 WHERE mid = ?2",
                shard_table(shard)
            ),
            params![BAD_TIME_TEXT, mid],
        )?;
        self.insert(
            &cid,
            shard,
            Some(&sender),
            i64::MAX,
            &text("来自很远的未来"),
        )?;
        self.group_messages += rows.len() + 2;
        Ok(rows.len() + 2)
    }

    fn switch_to_wal(&mut self) -> Result<(), SimError> {
        self.conn.execute_batch("COMMIT")?;
        self.conn.execute_batch(&indexes())?;
        crate::simulate::keep_writes_in_wal(&self.conn)?;
        self.conn.execute_batch("BEGIN")?;
        self.in_wal = true;
        Ok(())
    }

    fn pick_sender(&mut self, group: usize, edge: Edge) -> String {
        match edge {
            Edge::Ghost => format!("{GHOST_PREFIX}{:05}", self.rng.gen_range(0..100_000)),
            Edge::LeftMember if !self.left.is_empty() => {
                let left = self.left[self.rng.gen_range(0..self.left.len())];
                self.people[left].uid.clone()
            }
            _ => {
                let members = &self.groups[group].members;
                if members.len() < 2 || self.rng.gen_bool(OWNER_SHARE) {
                    self.owner_uid.clone()
                } else {
                    let m = members[self.rng.gen_range(1..members.len())];
                    self.people[m].uid.clone()
                }
            }
        }
    }

    pub(super) fn emit(
        &mut self,
        group: usize,
        time: i64,
        kind: Kind,
        edge: Edge,
    ) -> Result<(), SimError> {
        let sender = self.pick_sender(group, edge);
        let last = self.groups[group].last_time;
        let time = match edge {
            Edge::DuplicateTime => last,
            // Synced late: an older time than rows written before it.
            Edge::OutOfOrder => {
                (last - self.rng.gen_range(1..3600) * SECOND_MS).max(self.start_ms())
            }
            _ => time.max(last),
        };
        if edge != Edge::OutOfOrder {
            self.groups[group].last_time = time;
        }
        let (cid, shard) = (self.groups[group].cid.clone(), self.groups[group].shard);
        let mid_hint = self.next_mid + 1;
        let (row, image) = match kind {
            Kind::Text => (self.text_row(group, edge), None),
            Kind::Image => self.image_row(mid_hint, time, edge)?,
            Kind::Voice => (self.voice_row(mid_hint, time, edge)?, None),
            Kind::Video => (self.video_row(mid_hint, time, edge)?, None),
            Kind::File => (self.file_row(mid_hint, time, edge)?, None),
            Kind::RedPacket => (self.red_packet_row(), None),
            Kind::System => (self.system_row(group), None),
            Kind::Recall => {
                let mut row = self.text_row(group, Edge::None);
                row.recall = 1;
                (row, None)
            }
            Kind::Unknown => (self.unknown_row(), None),
        };
        let sender = (row.content_type != TYPE_SYSTEM).then_some(sender);
        let mid = self.insert(&cid, shard, sender.as_deref(), time, &row)?;
        if let Some((path, size)) = image {
            self.conn
                .prepare_cached(
                    "INSERT INTO im_image_info (cid, mid, local_path, size, width, height, md5) VALUES (?1, ?2, ?3, ?4, 640, 480, ?5)",
                )?
                .execute(params![cid, mid, path, size, md5_hex(path.as_bytes())])?;
        }
        Ok(())
    }

    fn member_names(&self, group: usize) -> Vec<&str> {
        self.groups[group]
            .members
            .iter()
            .take(8)
            .map(|&m| {
                let p = &self.people[m];
                if p.nick.is_empty() {
                    p.real_name.as_str()
                } else {
                    p.nick.as_str()
                }
            })
            .collect()
    }

    fn text_row(&mut self, group: usize, edge: Edge) -> Row {
        let text = match edge {
            Edge::NastyText => {
                let names: Vec<String> = self
                    .member_names(group)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                edge::nasty_text(&mut self.rng, &names)
            }
            Edge::LongText => edge::long_text(10_000),
            Edge::Pii => edge::text_with_pii(&mut self.rng),
            Edge::MalformedContent => {
                return Row {
                    content_type: TYPE_TEXT,
                    content: Some("{\"text\":\"没有结尾的JSON".into()),
                    attachments: None,
                    recall: 0,
                }
            }
            Edge::NullContent => {
                return Row {
                    content_type: TYPE_TEXT,
                    content: None,
                    attachments: None,
                    recall: 0,
                }
            }
            _ => edge::chat_text(&mut self.rng, self.groups[group].kind),
        };
        Row {
            content_type: TYPE_TEXT,
            content: Some(format!("{{\"text\":{}}}", json_string(&text))),
            attachments: None,
            recall: 0,
        }
    }

    fn media_rng(&self, mid: i64, part: u64) -> SimRng {
        seeded_rng(self.opts.seed, MEDIA_STREAM + (mid as u64) * 4 + part)
    }

    /// Writes one media file unless media are off or the edge case says it is missing.
    fn write_media(
        &mut self,
        rel: &str,
        bytes: &[u8],
        time: i64,
        edge: Edge,
    ) -> Result<(), SimError> {
        if !self.opts.media_files || edge == Edge::MissingFile {
            return Ok(());
        }
        let data: &[u8] = if edge == Edge::EmptyFile { &[] } else { bytes };
        write_file_at(&self.opts.out.join(rel), data, time)?;
        self.media_written += 1;
        Ok(())
    }

    fn image_row(
        &mut self,
        mid: i64,
        time: i64,
        edge: Edge,
    ) -> Result<(Row, Option<(String, i64)>), SimError> {
        let hash = md5_hex(format!("{}-{mid}", self.opts.seed).as_bytes());
        let row = Row {
            content_type: TYPE_IMAGE,
            content: Some(format!(
                "{{\"filename\":\"IMG_{}.jpg\",\"width\":640,\"height\":480}}",
                &hash[..8]
            )),
            attachments: None,
            recall: 0,
        };
        let len = 400 + (mid % 1200) as usize;
        let path = match edge {
            Edge::NoImageRow => return Ok((row, None)),
            Edge::OutsidePath(i) => OUTSIDE_PATHS[i % OUTSIDE_PATHS.len()].to_string(),
            Edge::Symlink => {
                let rel = format!("ImageFiles/{}/{hash}.jpg", &hash[..2]);
                if self.opts.media_files {
                    let path = self.opts.out.join(&rel);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(io_error(parent))?;
                    }
                    std::os::unix::fs::symlink(SYMLINK_TARGET, &path).map_err(io_error(&path))?;
                    self.media_written += 1;
                }
                rel
            }
            _ => {
                let rel = format!("ImageFiles/{}/{hash}.jpg", &hash[..2]);
                let bytes = media::jpeg(&mut self.media_rng(mid, 0), len);
                self.write_media(&rel, &bytes, time, edge)?;
                rel
            }
        };
        Ok((row, Some((path, len as i64))))
    }

    fn attachment(f_name: &str, size: usize, path: &str, as_object: bool) -> String {
        let inner = format!(
            "{{\"f_name\":{},\"f_size\":\"{size}\",\"path\":{}}}",
            json_string(f_name),
            json_string(path)
        );
        let extension = if as_object {
            inner
        } else {
            json_string(&inner)
        };
        format!("[{{\"type\":1,\"extension\":{extension}}}]")
    }

    fn voice_row(&mut self, mid: i64, time: i64, edge: Edge) -> Result<Row, SimError> {
        let duration: u32 = self.rng.gen_range(1_000..60_000);
        let name = format!("{mid}.amr");
        let rel = format!("AudioFiles/{}/{name}", &md5_hex(name.as_bytes())[..2]);
        let bytes = if self.opts.media_files {
            media::amr(&mut self.media_rng(mid, 0), duration.min(3000))
        } else {
            Vec::new()
        };
        self.write_media(&rel, &bytes, time, edge)?;
        let attachments = if edge == Edge::BrokenAttachmentList {
            "[{\"type\":1,\"extension\":".to_string()
        } else {
            Self::attachment(&name, bytes.len(), &rel, false)
        };
        Ok(Row {
            content_type: TYPE_VOICE,
            content: Some(format!("{{\"duration\":{duration}}}")),
            attachments: Some(attachments),
            recall: 0,
        })
    }

    fn video_row(&mut self, mid: i64, time: i64, edge: Edge) -> Result<Row, SimError> {
        let duration: u32 = self.rng.gen_range(2_000..120_000);
        let name = format!("{mid}.mp4");
        let rel = format!("VideoFiles/{}/{name}", &md5_hex(name.as_bytes())[..2]);
        let len = 2000 + (mid % 3000) as usize;
        let bytes = if self.opts.media_files {
            media::mp4(&mut self.media_rng(mid, 0), len)
        } else {
            Vec::new()
        };
        self.write_media(&rel, &bytes, time, edge)?;
        Ok(Row {
            content_type: TYPE_VIDEO,
            content: Some(format!("{{\"duration\":{duration}}}")),
            attachments: Some(Self::attachment(
                &name,
                len,
                &rel,
                edge == Edge::ExtensionObject,
            )),
            recall: 0,
        })
    }

    fn file_row(&mut self, mid: i64, time: i64, edge: Edge) -> Result<Row, SimError> {
        let (stem, ext) = edge::file_name(self.file_uses as usize);
        self.file_uses += 1;
        let name = format!("{stem}.{ext}");
        let hash = md5_hex(format!("file-{mid}").as_bytes());
        let rel = match edge {
            Edge::OutsidePath(i) => OUTSIDE_PATHS[i % OUTSIDE_PATHS.len()].to_string(),
            _ => format!("resource_cache/{}/{}/{name}", &hash[..2], &hash[2..10]),
        };
        let len = 300 + (mid % 2000) as usize;
        if !matches!(edge, Edge::OutsidePath(_)) && self.opts.media_files {
            let bytes = media::document(&mut self.media_rng(mid, 0), ext, len);
            self.write_media(&rel, &bytes, time, edge)?;
        }
        let attachments = if edge == Edge::MalformedAttachments {
            // `extension` holds a string that is not JSON.
            "[{\"type\":1,\"extension\":\"{f_name:未加引号}\"}]".to_string()
        } else {
            Self::attachment(&name, len, &rel, false)
        };
        Ok(Row {
            content_type: TYPE_FILE,
            content: Some(format!("{{\"filename\":{}}}", json_string(&name))),
            attachments: Some(attachments),
            recall: 0,
        })
    }

    fn red_packet_row(&mut self) -> Row {
        let title = ["恭喜发财，大吉大利", "新年快乐", "辛苦了", "生日快乐🎂"]
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("恭喜发财");
        let count = self.rng.gen_range(1..20);
        Row {
            content_type: TYPE_RED_PACKET,
            content: Some(format!(
                "{{\"title\":{},\"count\":{count}}}",
                json_string(title)
            )),
            attachments: None,
            recall: 0,
        }
    }

    fn system_row(&mut self, group: usize) -> Row {
        let names = self.member_names(group);
        let a = names.first().copied().unwrap_or("管理员").to_string();
        let b = names.get(1).copied().unwrap_or("新成员").to_string();
        let text = match self.rng.gen_range(0..3) {
            0 => format!("{a}邀请{b}加入了群聊"),
            1 => format!(
                "{a}修改群名为\"{}\"",
                edge::group_name(&mut self.rng, GroupKind::Other)
            ),
            _ => format!("{b}已退出群聊"),
        };
        Row {
            content_type: TYPE_SYSTEM,
            content: Some(format!("{{\"text\":{}}}", json_string(&text))),
            attachments: None,
            recall: 0,
        }
    }

    fn unknown_row(&mut self) -> Row {
        let code = *UNKNOWN_TYPES.choose(&mut self.rng).unwrap_or(&1200);
        Row {
            content_type: code,
            content: Some("{\"markdown\":\"### 审批通知\\n请处理\",\"card\":{\"id\":7}}".into()),
            attachments: None,
            recall: 0,
        }
    }
}

/// Cache files no row references, a zero-byte one, an avatar, and (with edge cases on)
/// a file whose name is not valid UTF-8. Returns how many were written.
fn write_orphans(opts: &SimOptions) -> Result<usize, SimError> {
    let mut rng = seeded_rng(opts.seed, 2);
    let old = opts.now_ms - i64::from(opts.days) * DAY_MS - 40 * DAY_MS;
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "ImageFiles/0a/orphan_image.jpg".into(),
            media::jpeg(&mut rng, 900),
        ),
        (
            "ImageFiles/0a/orphan_image_thumb.jpg".into(),
            media::jpeg(&mut rng, 200),
        ),
        ("AudioFiles/0b/123.amr".into(), media::amr(&mut rng, 2000)),
        ("VideoFiles/0c/456.mp4".into(), media::mp4(&mut rng, 2500)),
        (
            "resource_cache/0d/deadbeef/已删除聊天里的文件.pdf".into(),
            media::document(&mut rng, "pdf", 900),
        ),
        ("resource_cache/0e/empty.txt".into(), Vec::new()),
        (
            "AvatarFiles/avatar_1.png".into(),
            media::png(4, 4, [10, 120, 220]),
        ),
    ];
    let mut written = 0;
    for (index, (rel, bytes)) in files.iter().enumerate() {
        write_file_at(&opts.out.join(rel), bytes, old + index as i64 * HOUR_MS)?;
        written += 1;
    }
    if opts.edge_rate > 0.0 {
        crate::simulate::write_gbk_named_document(
            &opts.out.join("resource_cache/0f"),
            &mut rng,
            700,
            old,
        )?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::dingtalk::DingtalkSource;
    use crate::records::{Direction, Kind as MessageKind};
    use crate::simulate::testkit::{options, snapshot, test_dir};
    use crate::source::Source;

    fn count_group_rows(conn: &Connection) -> i64 {
        let mut total = 0;
        for index in 0..SHARDS {
            let n: i64 = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM {} m JOIN tbconversation c ON c.cid = m.cid AND c.type = 2",
                        shard_table(index)
                    ),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            total += n;
        }
        total
    }

    #[test]
    fn same_options_give_identical_bytes() {
        let first = test_dir("dingtalk", "det-a").join("123456_v2");
        let second = test_dir("dingtalk", "det-b").join("123456_v2");
        let mut opts = options(first.clone());
        opts.wal = true;
        opts.messages = 1500;
        simulate_dingtalk(&opts).unwrap();
        opts.out = second.clone();
        simulate_dingtalk(&opts).unwrap();
        let a = snapshot(&first);
        let b = snapshot(&second);
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (path, bytes) in &a {
            assert!(bytes == &b[path], "{} differs", path.display());
        }
        fs::remove_dir_all(first.parent().unwrap()).unwrap();
        fs::remove_dir_all(second.parent().unwrap()).unwrap();
    }

    #[test]
    fn wal_holds_the_newest_rows_only() {
        let out = test_dir("dingtalk", "wal").join("42_v2");
        let mut opts = options(out.clone());
        opts.wal = true;
        opts.media_files = false;
        let report = simulate_dingtalk(&opts).unwrap();
        assert!(out.join(format!("{DB_FILE}-wal")).exists());
        let alone = test_dir("dingtalk", "wal-alone");
        fs::create_dir_all(&alone).unwrap();
        fs::copy(out.join(DB_FILE), alone.join("dingtalk.db")).unwrap();
        let with_wal = {
            let copy = test_dir("dingtalk", "wal-with");
            fs::create_dir_all(&copy).unwrap();
            fs::copy(out.join(DB_FILE), copy.join("dingtalk.db")).unwrap();
            fs::copy(
                out.join(format!("{DB_FILE}-wal")),
                copy.join("dingtalk.db-wal"),
            )
            .unwrap();
            let conn = Connection::open(copy.join("dingtalk.db")).unwrap();
            let n = count_group_rows(&conn);
            drop(conn);
            fs::remove_dir_all(copy).unwrap();
            n
        };
        assert_eq!(with_wal as usize, report.messages);
        let conn = Connection::open(alone.join("dingtalk.db")).unwrap();
        assert_eq!(count_group_rows(&conn) as usize, 3000 - 60);
        drop(conn);
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
        fs::remove_dir_all(alone).unwrap();
    }

    /// Reading the simulated source with the importer gives every row, by the spec's rules.
    #[test]
    fn the_importer_reads_what_was_written() {
        let out = test_dir("dingtalk", "read").join("123456_v2");
        let mut opts = options(out.clone());
        opts.wal = true;
        opts.edge_rate = 0.1;
        let report = simulate_dingtalk(&opts).unwrap();
        let before = snapshot(&out);
        let source = DingtalkSource::open(&out).unwrap();
        assert_eq!(source.owner_id(), Some("123456"));
        let groups = source.groups().unwrap();
        let group_ids: Vec<&str> = groups
            .iter()
            .filter(|g| g.is_group)
            .map(|g| g.id.as_str())
            .collect();
        assert_eq!(group_ids.len(), opts.groups);
        assert!(group_ids.iter().any(|g| g.contains('+')));
        assert!(group_ids.iter().any(|g| g.contains('/')));
        assert_eq!(groups.iter().filter(|g| !g.is_group).count(), PRIVATE_CHATS);
        let mut total = 0;
        let mut kinds = std::collections::HashSet::new();
        let mut warned = 0;
        let mut sent = 0;
        let mut dissolved = 0;
        for id in &group_ids {
            let members = source.members(id).unwrap();
            assert!(members.iter().any(|m| m.member_id == "123456"));
            let mut last = None;
            for message in source.messages(id).unwrap() {
                let message = message.unwrap();
                if message.time_ms.is_some() {
                    assert!(message.time_ms >= last, "out of order in {id}");
                    last = message.time_ms;
                }
                total += 1;
                kinds.insert(message.kind);
                warned += usize::from(message.warning.is_some());
                sent += usize::from(message.direction == Direction::Sent);
                dissolved += usize::from(message.announces_dissolution());
                if message.direction == Direction::System {
                    assert!(message.sender_id.is_none());
                }
            }
        }
        assert_eq!(total, report.messages);
        assert!(
            sent > 0 && warned >= 4 && dissolved == 1,
            "{sent} {warned} {dissolved}"
        );
        for kind in [
            MessageKind::Text,
            MessageKind::Image,
            MessageKind::Voice,
            MessageKind::Video,
            MessageKind::File,
            MessageKind::RedPacket,
            MessageKind::System,
            MessageKind::Recall,
            MessageKind::Other,
        ] {
            assert!(kinds.contains(&kind), "no {kind:?}");
        }
        drop(source);
        assert_eq!(snapshot(&out), before, "reading changed the source");
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }

    #[test]
    fn without_an_owner_in_the_name_everything_is_received() {
        let out = test_dir("dingtalk", "noowner").join("dingtalk");
        let mut opts = options(out.clone());
        opts.messages = 400;
        opts.media_files = false;
        simulate_dingtalk(&opts).unwrap();
        let source = DingtalkSource::open(&out).unwrap();
        assert_eq!(source.owner_id(), None);
        for group in source.groups().unwrap() {
            for message in source.messages(&group.id).unwrap() {
                assert_ne!(message.unwrap().direction, Direction::Sent);
            }
        }
        assert!(!out.join(format!("{DB_FILE}-wal")).exists());
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }

    #[test]
    fn tiny_and_extreme_options_work() {
        for (index, (groups, members, messages)) in [(1, 2, 1), (1, 2, 0), (4, 3, 50), (2, 40, 5)]
            .into_iter()
            .enumerate()
        {
            let out = test_dir("dingtalk", &format!("tiny{index}")).join("7_v3");
            let opts = SimOptions {
                groups,
                members,
                messages,
                wal: index % 2 == 0,
                ..options(out.clone())
            };
            let report = simulate_dingtalk(&opts).unwrap();
            assert_eq!(report.messages - report.hard_rows, messages);
            let source = DingtalkSource::open(&out).unwrap();
            let n: usize = source
                .groups()
                .unwrap()
                .iter()
                .filter(|g| g.is_group)
                .map(|g| source.messages(&g.id).unwrap().count())
                .sum();
            assert_eq!(n, report.messages);
            fs::remove_dir_all(out.parent().unwrap()).unwrap();
        }
    }
}
