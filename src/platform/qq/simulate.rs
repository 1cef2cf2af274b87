//! QQ NT simulator: `nt_db/nt_msg.db`, `nt_db/group_info.db`, the `nt_data/` media cache
//! and a `RecycleBin/`, in the layout of sources.md §2. Message bodies are protobuf,
//! written by the small encoder below.
//!
//! What a test can rely on (with 4 or more groups and a few hundred messages), besides the
//! edge cases: group 0 is dissolved a third of the way before `now` (its last message the
//! grey tip `群主已解散该群`) and owned by another member (`"60002"`: `simulate::plant`'s
//! group T); groups 1 and 2 are the account holder's, `plant`'s groups A and B. Group 1 has
//! the announcement [`plant::other_notice`] by the holder 25 h before
//! [`plant::dissolve_at`], a red packet (msgType 10, element type 9 with `48444` = 5 parts)
//! sent 6 h before `now` by a member and claimed once (the hard rows' claim tip may name
//! its sender too, a second claim of its 5 parts), and early on a group file
//! (msgType 3) whose `nt_data/File/` file is not there; group 2 has the same announcement
//! 23 h before and a red packet of 3 parts sent 9 h before `now`, claimed by three others.
//! Claims are grey tips `<claimer>领取了<sender>的红包`, each name the member's group card,
//! else their nickname, in the slots right after the packet. Other red packets carry no
//! `48444` (parts unknown) and no claims. With `members` 40 and 3 or more groups, groups 0,
//! 1, 2 have 39, 40, 41 current members and one more who left.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::{params, Connection};

use crate::simulate::edge::{self, GroupKind};
use crate::simulate::plant::{self, Schedule};
use crate::simulate::{
    io_error, md5_hex, media, prepare_output_dir, random_hex, seeded_rng, write_file_at, SimError,
    SimOptions, SimReport, SimRng, TimeSpread, DAY_MS, HOUR_MS,
};

/// Where QQ keeps its files on an Android device; rows name media by this absolute path.
pub(super) const DEVICE_PREFIX: &str =
    "/storage/emulated/0/Android/data/com.tencent.mobileqq/files/";

/// Random streams, so that unrelated choices do not shift each other.
const STREAM_WORLD: u64 = 0;
const STREAM_MESSAGES: u64 = 1;
const STREAM_MEDIA: u64 = 2;
const STREAM_FILES: u64 = 3;

/// The real table's column list (the importer relies only on some of them).
const MSG_TABLE_DDL: &str = r#"CREATE TABLE group_msg_table ("40001" INTEGER PRIMARY KEY, "40002" INTEGER, "40003" INTEGER, "40010" INTEGER, "40011" INTEGER, "40012" INTEGER, "40013" INTEGER, "40020" TEXT, "40026" INTEGER, "40021" TEXT, "40027" INTEGER, "40040" INTEGER, "40041" INTEGER, "40050" INTEGER, "40052" INTEGER, "40090" TEXT, "40093" TEXT, "40800" BLOB, "40900" BLOB, "40105" INTEGER, "40005" INTEGER, "40058" INTEGER, "40006" TEXT, "40100" INTEGER, "40600" BLOB, "40060" INTEGER, "40850" INTEGER, "40851" INTEGER, "40601" BLOB, "40801" BLOB, "40605" BLOB, "40030" INTEGER, "40033" INTEGER, "40062" BLOB, "40083" INTEGER, "40084" INTEGER)"#;
pub(super) const MSG_INSERT: &str = r#"INSERT INTO group_msg_table ("40001", "40002", "40003", "40010", "40011", "40012", "40013", "40020", "40021", "40027", "40030", "40033", "40041", "40050", "40058", "40090", "40093", "40800") VALUES (?1, ?2, ?3, 2, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, 2, ?11, ?12, ?13, ?14, ?15)"#;

use super::schema::{element_type as el, field};
use super::{INFO_DB, MSG_DB};

/// A minimal protobuf encoder for message bodies.
pub(super) mod pb {
    pub const VARINT: u8 = 0;
    pub const FIXED64: u8 = 1;
    pub const LEN: u8 = 2;
    pub const START_GROUP: u8 = 3;
    pub const END_GROUP: u8 = 4;
    pub const FIXED32: u8 = 5;

    pub fn varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    pub fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire_type));
    }

    pub fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
        key(out, field, VARINT);
        varint(out, value);
    }

    pub fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
        key(out, field, LEN);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

struct Person {
    uid: String,
    uin: u64,
    nickname: String,
}

struct SimMember {
    person: usize,
    card: String,
    joined_s: i64,
    admin: bool,
    left: bool,
}

struct SimGroup {
    number: u64,
    name: String,
    kind: GroupKind,
    owner: usize,
    created_s: i64,
    members: Vec<SimMember>,
    /// When the owner dissolved it (the last message is the notice).
    dissolved_ms: Option<i64>,
    weight: u32,
    next_seq: i64,
}

struct World {
    people: Vec<Person>,
    groups: Vec<SimGroup>,
}

/// The grey tip that ends a dissolved group.
pub(super) const DISSOLUTION_TEXT: &str = "群主已解散该群";

/// The account owner is person 0.
const OWNER: usize = 0;

pub(super) fn uid(rng: &mut SimRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::with_capacity(24);
    id.push_str("u_");
    for _ in 0..22 {
        id.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    id
}

fn build_world(opts: &SimOptions, rng: &mut SimRng) -> World {
    let now_s = opts.now_ms / 1000;
    let pool = (opts.groups * (opts.members - 1) * 3 / 4).max(opts.members - 1) + 1;
    let mut uins = HashSet::new();
    let mut people = Vec::with_capacity(pool);
    for index in 0..pool {
        let uin = loop {
            let digits = rng.gen_range(6..=10u32);
            let uin = rng.gen_range(10u64.pow(digits - 1)..10u64.pow(digits));
            if uins.insert(uin) {
                break uin;
            }
        };
        let nickname = if index != OWNER && rng.gen_bool(opts.edge_rate) {
            edge::nasty_name(rng)
        } else {
            edge::nickname(rng)
        };
        people.push(Person {
            uid: uid(rng),
            uin,
            nickname,
        });
    }
    let mut numbers = HashSet::new();
    let mut groups = Vec::with_capacity(opts.groups);
    for index in 0..opts.groups {
        let kind = GroupKind::ALL[index % GroupKind::ALL.len()];
        let number = loop {
            let n = rng.gen_range(100_000_000u64..4_000_000_000);
            if numbers.insert(n) {
                break n;
            }
        };
        let created_s = now_s - i64::from(opts.days) * 86_400 - rng.gen_range(86_400..400 * 86_400);
        // A sized group has its size in current members plus one who left.
        let sized = plant::sized_members(opts, index);
        let wanted = sized.unwrap_or(opts.members - 1);
        let others = rand::seq::index::sample(rng, pool - 1, wanted.min(pool - 1));
        let mut member_people = vec![OWNER];
        member_people.extend(others.iter().map(|i| i + 1));
        let drawn_owner = if rng.gen_bool(0.4) {
            OWNER
        } else {
            member_people[1.min(member_people.len() - 1)]
        };
        // Planted: groups 1 and 2 (A, B) are the account holder's, group 0 (T) another's.
        let owner = match index {
            1 | 2 if plant::plants(opts) => OWNER,
            0 if plant::plants(opts) && member_people.len() > 1 => member_people[1],
            _ => drawn_owner,
        };
        let mut members: Vec<SimMember> = member_people
            .iter()
            .map(|&person| {
                let card = if rng.gen_bool(opts.edge_rate) {
                    edge::nasty_name(rng)
                } else if rng.gen_bool(0.6) {
                    edge::group_nickname(rng, kind, &people[person].nickname)
                } else {
                    String::new()
                };
                SimMember {
                    person,
                    card,
                    joined_s: rng.gen_range(created_s..now_s - i64::from(opts.days) * 86_400 + 1),
                    admin: person != owner && rng.gen_bool(0.05),
                    left: person != OWNER && person != owner && rng.gen_bool(0.05),
                }
            })
            .collect();
        if sized.is_some() {
            let last = members.len() - 1;
            for (position, m) in members.iter_mut().enumerate() {
                m.left = position == last && m.person != OWNER && m.person != owner;
            }
        }
        groups.push(SimGroup {
            number,
            name: edge::group_name(rng, kind),
            kind,
            owner,
            created_s,
            members,
            dissolved_ms: None,
            weight: rng.gen_range(1..10),
            next_seq: rng.gen_range(1_000..100_000),
        });
    }
    // One group (of two or more) is dissolved by its owner a third of the way before now.
    if groups.len() >= 2 {
        groups[0].dissolved_ms = Some(opts.now_ms - i64::from(opts.days) * DAY_MS / 3);
    }
    World { people, groups }
}

fn write_group_info(root: &Path, world: &World, opts: &SimOptions) -> Result<(), SimError> {
    let path = root.join(INFO_DB);
    let conn = Connection::open(&path)?;
    conn.execute_batch(
        r#"PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
        CREATE TABLE group_detail_info_ver1 ("60001" INTEGER PRIMARY KEY, "60002" TEXT, "60003" TEXT, "60004" INTEGER, "60005" INTEGER, "60006" INTEGER, "60007" TEXT, "60008" TEXT, "60009" INTEGER, "60010" INTEGER, "60011" INTEGER, "60026" INTEGER, "60040" BLOB);
        CREATE TABLE group_member3 ("60001" INTEGER, "1000" TEXT, "1002" INTEGER, "64003" TEXT, "20002" TEXT, "64007" INTEGER, "64010" INTEGER, "64016" INTEGER, "64012" INTEGER, "64015" INTEGER, "64018" TEXT, "64020" INTEGER, PRIMARY KEY ("60001", "1000"));
        CREATE TABLE group_list ("60001" INTEGER PRIMARY KEY, "60007" TEXT, "60010" INTEGER);
        BEGIN;"#,
    )?;
    {
        let mut detail = conn.prepare(
            r#"INSERT INTO group_detail_info_ver1 ("60001", "60002", "60004", "60006", "60007", "60008", "60009") VALUES (?1, ?2, ?3, ?4, ?5, '', 0)"#,
        )?;
        let mut list = conn
            .prepare(r#"INSERT INTO group_list ("60001", "60007", "60010") VALUES (?1, ?2, 0)"#)?;
        let mut member = conn.prepare(
            r#"INSERT INTO group_member3 ("60001", "1000", "1002", "64003", "20002", "64007", "64010", "64016", "64012", "64015") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0)"#,
        )?;
        let last = world.groups.len().saturating_sub(1);
        for (index, group) in world.groups.iter().enumerate() {
            list.execute(params![group.number as i64, group.name])?;
            // Edge case: the newest group has no detail row (no name, no owner).
            let skip_detail = opts.edge_rate > 0.0 && world.groups.len() >= 4 && index == last;
            if !skip_detail {
                detail.execute(params![
                    group.number as i64,
                    world.people[group.owner].uid,
                    group.created_s,
                    group.members.iter().filter(|m| !m.left).count() as i64,
                    group.name,
                ])?;
            }
            for m in &group.members {
                let person = &world.people[m.person];
                member.execute(params![
                    group.number as i64,
                    person.uid,
                    person.uin as i64,
                    m.card,
                    person.nickname,
                    m.joined_s,
                    i64::from(m.admin),
                    i64::from(m.left),
                ])?;
            }
        }
    }
    conn.execute_batch("COMMIT;")?;
    Ok(())
}

/// What a message row carries besides its body.
pub(super) struct Row {
    pub(super) msg_type: i64,
    pub(super) sub_type: Option<i64>,
}

/// Writes media files, or (without `media_files`) only invents what rows need.
pub(super) struct MediaWriter {
    pub(super) root: PathBuf,
    pub(super) enabled: bool,
    pub(super) edge_rate: f64,
    pub(super) rng: SimRng,
    pub(super) files: usize,
    pub(super) file_names: HashMap<String, usize>,
}

/// Where a media element points.
pub(super) struct Placed {
    /// `45403`, or `None` when the element names only its md5.
    pub(super) device_path: Option<String>,
    pub(super) md5: String,
    pub(super) size: u64,
    pub(super) name: String,
}

#[derive(Clone, Copy)]
pub(super) enum MediaType {
    Picture,
    Voice,
    Video,
}

impl MediaWriter {
    pub(super) fn write(&mut self, rel: &str, bytes: &[u8], mtime_ms: i64) -> Result<(), SimError> {
        write_file_at(&self.root.join(rel), bytes, mtime_ms)?;
        self.files += 1;
        Ok(())
    }

    /// Creates (or, without media files, only names) one picture, voice note or video.
    pub(super) fn place(
        &mut self,
        what: MediaType,
        month: &str,
        time_ms: i64,
        seconds: u32,
    ) -> Result<Placed, SimError> {
        let rng = &mut self.rng;
        let (bytes, ext, area) = if self.enabled {
            match what {
                MediaType::Picture => match rng.gen_range(0..10) {
                    0 => (
                        media::png(8, 8, [rng.gen(), rng.gen(), rng.gen()]),
                        "png",
                        "Pic",
                    ),
                    _ => {
                        let len = rng.gen_range(600..4_000);
                        (media::jpeg(rng, len), "jpg", "Pic")
                    }
                },
                MediaType::Voice => (media::amr(rng, seconds * 1000), "amr", "Ptt"),
                MediaType::Video => {
                    let len = rng.gen_range(2_000..12_000);
                    (media::mp4(rng, len), "mp4", "Video")
                }
            }
        } else {
            let (ext, area) = match what {
                MediaType::Picture => ("jpg", "Pic"),
                MediaType::Voice => ("amr", "Ptt"),
                MediaType::Video => ("mp4", "Video"),
            };
            (Vec::new(), ext, area)
        };
        let md5 = if self.enabled {
            md5_hex(&bytes)
        } else {
            random_hex(rng, 32)
        };
        let name = format!("{}.{ext}", md5.to_uppercase());
        let rel = format!("nt_data/{area}/{month}/Ori/{md5}.{ext}");
        let mut placed = Placed {
            device_path: Some(format!("{DEVICE_PREFIX}{rel}")),
            md5: md5.clone(),
            size: bytes.len() as u64,
            name,
        };
        let edge_case = rng.gen_bool(self.edge_rate);
        if edge_case {
            match rng.gen_range(0..6) {
                // Never downloaded / deleted by the user: the row names a file that is not there.
                0 => return Ok(placed),
                // A path that escapes the cache after `nt_data/`, and one elsewhere entirely.
                1 => {
                    placed.device_path = Some(format!(
                        "{DEVICE_PREFIX}nt_data/../../../../../../etc/passwd"
                    ));
                    return Ok(placed);
                }
                2 => {
                    placed.device_path = Some("/etc/passwd".into());
                    return Ok(placed);
                }
                // A symbolic link pointing out of the root.
                3 if self.enabled => {
                    let link = self.root.join(&rel);
                    if let Some(parent) = link.parent() {
                        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
                    }
                    std::os::unix::fs::symlink("/etc/hostname", &link).map_err(io_error(&link))?;
                    self.files += 1;
                    return Ok(placed);
                }
                // A zero-byte file.
                4 if self.enabled => {
                    placed.size = 0;
                    self.write(&rel, &[], time_ms)?;
                    return Ok(placed);
                }
                // A picture named only by its md5: found through the layout.
                _ if matches!(what, MediaType::Picture) && ext == "jpg" => {
                    placed.device_path = None;
                }
                _ => {}
            }
        }
        if self.enabled {
            self.write(&rel, &bytes, time_ms)?;
            if matches!(what, MediaType::Picture) {
                let thumb_len = self.rng.gen_range(200..600);
                let thumb = media::jpeg(&mut self.rng, thumb_len);
                self.write(
                    &format!("nt_data/Pic/{month}/Thumb/{md5}_0.jpg"),
                    &thumb,
                    time_ms,
                )?;
            }
        }
        Ok(placed)
    }

    /// A received group file, named as QQ names duplicates: `name(1).ext`; never written
    /// unless `downloaded`.
    fn place_file(
        &mut self,
        index: usize,
        time_ms: i64,
        downloaded: bool,
    ) -> Result<Placed, SimError> {
        let (stem, ext) = edge::file_name(index);
        let base = format!("{stem}.{ext}");
        let count = self.file_names.entry(base.clone()).or_insert(0);
        let name = if *count == 0 {
            base
        } else {
            format!("{stem}({count}).{ext}")
        };
        *count += 1;
        let rel = format!("nt_data/File/{name}");
        let len = self.rng.gen_range(200..8_000);
        let (md5, size) = if self.enabled {
            let bytes = media::document(&mut self.rng, ext, len);
            let missing = self.rng.gen_bool(self.edge_rate) || !downloaded;
            if !missing {
                self.write(&rel, &bytes, time_ms)?;
            }
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

/// `YYYY-MM` in China time, QQ's media month folders.
pub(super) fn month_folder(time_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(time_ms + 8 * HOUR_MS)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "1970-01".into())
}

pub(super) struct BodyBuilder {
    pub(super) body: Vec<u8>,
    pub(super) element: Vec<u8>,
    pub(super) field: u32,
}

impl BodyBuilder {
    pub(super) fn start(&mut self, rng: &mut SimRng, element_type: u64) {
        self.element.clear();
        pb::uint(
            &mut self.element,
            field::ELEMENT_ID,
            rng.gen_range(7_000_000_000_000_000_000..7_500_000_000_000_000_000),
        );
        pb::uint(&mut self.element, field::ELEMENT_TYPE, element_type);
    }

    pub(super) fn finish(&mut self) {
        pb::bytes(&mut self.body, self.field, &self.element);
    }

    pub(super) fn text(&mut self, rng: &mut SimRng, text: &str) {
        self.start(rng, el::TEXT);
        pb::bytes(&mut self.element, field::TEXT, text.as_bytes());
        self.finish();
    }

    /// Unknown fields of every wire type, which readers must skip.
    fn unknown_fields(&mut self) {
        let e = &mut self.element;
        pb::key(e, 45998, pb::FIXED64);
        e.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        pb::key(e, 45999, pb::START_GROUP);
        pb::uint(e, 1, 42);
        pb::bytes(e, 2, b"nested");
        pb::key(e, 3, pb::START_GROUP);
        pb::key(e, 3, pb::END_GROUP);
        pb::key(e, 45999, pb::END_GROUP);
        pb::key(e, 46000, pb::FIXED32);
        e.extend_from_slice(&7u32.to_le_bytes());
        pb::bytes(e, 46001, b"\xff\xfe\x00binary");
    }
}

pub(super) const FACES: &[(u64, &str)] = &[
    (264, "/捂脸"),
    (14, "/微笑"),
    (178, "/斜眼笑"),
    (76, "/赞"),
    (63, "/玫瑰"),
    (277, "/汪汪"),
    (182, "/笑哭"),
    (201, "/点赞"),
];
pub(super) const RED_PACKET_TITLES: &[&str] =
    &["恭喜发财，大吉大利", "新年快乐", "辛苦了", "拼手气红包", ""];
pub(super) const URLS: &[&str] = &[
    "https://example.com/article/123",
    "https://b23.tv/Ab12Cd",
    "https://mp.weixin.qq.com/s/abc",
];

/// Writes every group's messages; returns (messages written, media files written).
fn write_messages(
    root: &Path,
    world: &mut World,
    opts: &SimOptions,
) -> Result<(usize, usize, usize), SimError> {
    let path = root.join(MSG_DB);
    let mut conn = Connection::open(&path)?;
    conn.execute_batch(&format!(
        r#"PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536;
        {MSG_TABLE_DDL};
        CREATE INDEX group_msg_table_40027_40050 ON group_msg_table ("40027", "40050", "40003");
        CREATE TABLE c2c_msg_table AS SELECT * FROM group_msg_table WHERE 0;
        CREATE TABLE nt_uid_mapping_table ("48901" TEXT PRIMARY KEY, "48902" TEXT, "48912" INTEGER, "1002" INTEGER);"#
    ))?;
    {
        let tx = conn.transaction()?;
        {
            let mut mapping = tx.prepare(
                r#"INSERT INTO nt_uid_mapping_table ("48901", "48902", "48912", "1002") VALUES (?1, '', 0, ?2)"#,
            )?;
            for person in &world.people {
                mapping.execute(params![person.uid, person.uin as i64])?;
            }
        }
        tx.commit()?;
    }

    let mut rng = seeded_rng(opts.seed, STREAM_MESSAGES);
    let mut media_writer = MediaWriter {
        root: root.to_path_buf(),
        enabled: opts.media_files,
        edge_rate: opts.edge_rate,
        rng: seeded_rng(opts.seed, STREAM_MEDIA),
        files: 0,
        file_names: HashMap::new(),
    };
    let spread = TimeSpread::new(opts.now_ms, opts.days, opts.messages);
    let total_weight: u32 = world.groups.iter().map(|g| g.weight).sum();
    // The newest ~2% (at least one) of the messages go only to the write-ahead log.
    let wal_start = if opts.wal && opts.messages > 0 {
        opts.messages - (opts.messages / 50).max(1)
    } else {
        usize::MAX
    };
    let mut builder = BodyBuilder {
        body: Vec::with_capacity(256),
        element: Vec::with_capacity(128),
        field: field::ELEMENT,
    };
    let mut dissolution_pending = world.groups.iter().any(|g| g.dissolved_ms.is_some());
    let mut plan = plan(opts);
    let mut file_index = 0usize;
    let mut written = 0usize;

    let mut insert = conn.prepare(MSG_INSERT)?;
    conn.execute_batch("BEGIN")?;
    for index in 0..opts.messages {
        if index == wal_start {
            conn.execute_batch("COMMIT")?;
            start_wal(&conn)?;
            conn.execute_batch("BEGIN")?;
        }
        let time_ms = spread.time_of(index, &mut rng);
        let time_s = time_ms.div_euclid(1000);
        // The dissolution notice takes the first slot after the dissolution time.
        let dissolve_now =
            dissolution_pending && world.groups[0].dissolved_ms.is_some_and(|d| time_ms >= d);
        let planted = if dissolve_now {
            plan.occupied(time_ms);
            None
        } else {
            plan.next(time_ms)
        };
        if let Some((at_ms, event)) = planted {
            let mut writer = PlantWriter {
                opts,
                world,
                plan: &mut plan,
                rng: &mut rng,
                builder: &mut builder,
                media_writer: &mut media_writer,
                file_index: &mut file_index,
                insert: &mut insert,
            };
            writer.write(event, at_ms, index)?;
            written += 1;
            continue;
        }
        let group_index = if dissolve_now {
            dissolution_pending = false;
            0
        } else {
            pick_group(&world.groups, total_weight, time_ms, &mut rng)
        };
        let group = &world.groups[group_index];
        builder.body.clear();
        builder.field = if rng.gen_bool(0.1) {
            field::ELEMENT_ALT
        } else {
            field::ELEMENT
        };

        // The sender: the account owner, a member (maybe one who left), or a stranger.
        let roll: f64 = rng.gen();
        let (sender_uid, sender_uin, card, nickname, send_type) = if roll < 0.12 {
            let me = &group.members[0];
            let person = &world.people[OWNER];
            (
                person.uid.clone(),
                person.uin,
                me.card.clone(),
                person.nickname.clone(),
                if rng.gen_bool(0.7) { 1 } else { 2 },
            )
        } else if roll < 0.12 + opts.edge_rate * 0.3 {
            let stranger = uid(&mut rng);
            (
                stranger,
                rng.gen_range(10_000..3_000_000_000u64),
                String::new(),
                edge::nickname(&mut rng),
                0,
            )
        } else {
            let m = if group.members.len() > 1 {
                &group.members[rng.gen_range(1..group.members.len())]
            } else {
                &group.members[0]
            };
            let person = &world.people[m.person];
            (
                person.uid.clone(),
                person.uin,
                m.card.clone(),
                person.nickname.clone(),
                0,
            )
        };
        let shown = if card.is_empty() {
            nickname.clone()
        } else {
            card.clone()
        };

        let month = month_folder(time_ms);
        let row = if dissolve_now {
            grey_tip(&mut builder, &mut rng, DISSOLUTION_TEXT, 1)
        } else {
            let kind_roll = rng.gen_range(0..1000);
            let edge_case = rng.gen_bool(opts.edge_rate);
            if edge_case && rng.gen_bool(0.25) {
                // A msgType the spec does not know.
                let text = edge::chat_text(&mut rng, group.kind);
                builder.text(&mut rng, &text);
                Row {
                    msg_type: *[1i64, 12, 17, 99].choose(&mut rng).unwrap_or(&1),
                    sub_type: Some(0),
                }
            } else {
                match kind_roll {
                    0..=549 => {
                        // Text, sometimes with a mention and a face.
                        let mut sub = 1;
                        if rng.gen_bool(0.05) {
                            let target = &group.members[rng.gen_range(0..group.members.len())];
                            let person = &world.people[target.person];
                            let name = if target.card.is_empty() {
                                &person.nickname
                            } else {
                                &target.card
                            };
                            builder.start(&mut rng, el::TEXT);
                            pb::bytes(
                                &mut builder.element,
                                field::TEXT,
                                format!("@{name} ").as_bytes(),
                            );
                            pb::uint(&mut builder.element, field::AT_TYPE, 2);
                            pb::bytes(&mut builder.element, field::AT_UID, person.uid.as_bytes());
                            builder.finish();
                        }
                        let text = if edge_case {
                            let names: Vec<&str> = group
                                .members
                                .iter()
                                .take(8)
                                .map(|m| world.people[m.person].nickname.as_str())
                                .collect();
                            edge::nasty_text(&mut rng, &names)
                        } else if rng.gen_bool(0.03) {
                            edge::text_with_pii(&mut rng)
                        } else {
                            edge::chat_text(&mut rng, group.kind)
                        };
                        builder.start(&mut rng, el::TEXT);
                        pb::bytes(&mut builder.element, field::TEXT, text.as_bytes());
                        if rng.gen_bool(opts.edge_rate) {
                            builder.unknown_fields();
                        }
                        builder.finish();
                        if rng.gen_bool(0.1) {
                            sub |= 16;
                            let (index, face) = FACES[rng.gen_range(0..FACES.len())];
                            builder.start(&mut rng, el::FACE);
                            pb::uint(&mut builder.element, field::FACE_INDEX, index);
                            pb::bytes(&mut builder.element, field::FACE_TEXT, face.as_bytes());
                            builder.finish();
                        }
                        Row {
                            msg_type: 2,
                            sub_type: Some(sub),
                        }
                    }
                    550..=679 => {
                        // Picture, sometimes with a caption.
                        let placed = media_writer.place(MediaType::Picture, &month, time_ms, 0)?;
                        let mut sub = 2;
                        if rng.gen_bool(0.1) {
                            builder.text(&mut rng, "看这个");
                            sub |= 1;
                        }
                        builder.start(&mut rng, el::PICTURE);
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
                        Row {
                            msg_type: 2,
                            sub_type: Some(sub),
                        }
                    }
                    680..=699 => {
                        let url = URLS[rng.gen_range(0..URLS.len())];
                        builder.text(&mut rng, url);
                        Row {
                            msg_type: 2,
                            sub_type: Some(129),
                        }
                    }
                    700..=729 => {
                        file_index += 1;
                        let placed = media_writer.place_file(file_index, time_ms, true)?;
                        builder.start(&mut rng, el::FILE);
                        media_fields(&mut builder.element, &placed);
                        builder.finish();
                        Row {
                            msg_type: 3,
                            sub_type: Some(0),
                        }
                    }
                    730..=759 => {
                        let target = &world.people
                            [group.members[rng.gen_range(0..group.members.len())].person];
                        match rng.gen_range(0..3) {
                            0 => grey_tip(
                                &mut builder,
                                &mut rng,
                                &format!("\"{shown}\"撤回了一条消息"),
                                4,
                            ),
                            1 => grey_tip(
                                &mut builder,
                                &mut rng,
                                &format!("{shown} 戳了戳 {}", target.nickname),
                                12,
                            ),
                            _ => grey_tip(
                                &mut builder,
                                &mut rng,
                                &format!("\"{shown}\"邀请\"{}\"加入了群聊", target.nickname),
                                1,
                            ),
                        }
                    }
                    760..=809 => {
                        let seconds = rng.gen_range(1..60);
                        let placed =
                            media_writer.place(MediaType::Voice, &month, time_ms, seconds)?;
                        builder.start(&mut rng, el::VOICE);
                        media_fields(&mut builder.element, &placed);
                        pb::uint(
                            &mut builder.element,
                            field::VOICE_SECONDS,
                            u64::from(seconds),
                        );
                        builder.finish();
                        Row {
                            msg_type: 6,
                            sub_type: Some(0),
                        }
                    }
                    810..=839 => {
                        let seconds = rng.gen_range(1..300);
                        let placed =
                            media_writer.place(MediaType::Video, &month, time_ms, seconds)?;
                        builder.start(&mut rng, el::VIDEO);
                        media_fields(&mut builder.element, &placed);
                        pb::uint(
                            &mut builder.element,
                            field::VIDEO_SECONDS,
                            u64::from(seconds),
                        );
                        builder.finish();
                        Row {
                            msg_type: 7,
                            sub_type: Some(0),
                        }
                    }
                    840..=849 => {
                        builder.start(&mut rng, el::MULTI_FORWARD);
                        pb::bytes(
                            &mut builder.element,
                            field::FORWARD_XML,
                            "<msg brief=\"[聊天记录]\"><title>群聊的聊天记录</title></msg>"
                                .as_bytes(),
                        );
                        builder.finish();
                        Row {
                            msg_type: 8,
                            sub_type: Some(0),
                        }
                    }
                    850..=899 => {
                        builder.start(&mut rng, el::REPLY);
                        pb::uint(
                            &mut builder.element,
                            field::REPLY_SEQ,
                            rng.gen_range(1..group.next_seq.max(2)) as u64,
                        );
                        pb::bytes(
                            &mut builder.element,
                            field::REPLY_UID,
                            sender_uid.as_bytes(),
                        );
                        builder.finish();
                        let text = edge::chat_text(&mut rng, group.kind);
                        builder.text(&mut rng, &text);
                        Row {
                            msg_type: 9,
                            sub_type: Some(33),
                        }
                    }
                    900..=929 => {
                        builder.start(&mut rng, el::RED_PACKET);
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
                        Row {
                            msg_type: 10,
                            sub_type: Some(0),
                        }
                    }
                    _ => {
                        builder.start(&mut rng, el::ARK);
                        pb::bytes(
                            &mut builder.element,
                            field::ARK_JSON,
                            r#"{"app":"com.tencent.structmsg","prompt":"[分享]"}"#.as_bytes(),
                        );
                        builder.finish();
                        Row {
                            msg_type: 11,
                            sub_type: Some(0),
                        }
                    }
                }
            }
        };
        let is_system = row.msg_type == 5;
        let malformed = !dissolve_now && rng.gen_bool(opts.edge_rate * 0.3);
        let body: Option<Vec<u8>> = if malformed {
            corrupt(&builder.body, &mut rng)
        } else {
            Some(builder.body.clone())
        };
        // Edge cases: NULLs in non-key columns.
        let null_card = rng.gen_bool(opts.edge_rate * 0.2);
        let null_seq = rng.gen_bool(opts.edge_rate * 0.1);
        let group = &mut world.groups[group_index];
        let seq = group.next_seq;
        group.next_seq += 1;
        let msg_id =
            ((time_s as u64) << 32) | u64::from((index as u32).wrapping_mul(2_654_435_761));
        let day_start = (time_s + 8 * 3600).div_euclid(86_400) * 86_400 - 8 * 3600;
        let (uid_col, uin_col, card_col, nick_col, send_col) = if is_system {
            (String::new(), 0, Some(String::new()), String::new(), 0)
        } else {
            (
                sender_uid,
                sender_uin as i64,
                if null_card { None } else { Some(card) },
                nickname,
                send_type,
            )
        };
        insert.execute(params![
            msg_id as i64,
            rng.gen::<u32>(),
            if null_seq { None } else { Some(seq) },
            row.msg_type,
            row.sub_type,
            send_col,
            uid_col,
            group.number.to_string(),
            group.number as i64,
            uin_col,
            time_s,
            day_start,
            card_col,
            nick_col,
            body,
        ])?;
        written += 1;
    }
    let mut hard_rows = 0;
    if opts.edge_rate > 0.0 && opts.messages > 0 {
        hard_rows = plant_hard_rows(
            opts,
            world,
            &mut rng,
            &mut builder,
            &mut media_writer,
            &mut insert,
        )?;
        written += hard_rows;
    }
    conn.execute_batch("COMMIT")?;
    drop(insert);
    if wal_start < opts.messages {
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        drop(conn);
        match std::fs::metadata(&wal) {
            Ok(meta) if meta.len() > 32 => {}
            _ => {
                return Err(SimError::WalFormat {
                    path: wal,
                    reason: "SQLite checkpointed the log on close; no rows were left in it".into(),
                })
            }
        }
    }
    Ok((written, media_writer.files, hard_rows))
}

/// A planted row (`simulate::plant`).
enum Planted {
    Notice(usize),
    RedPacket {
        group: usize,
        parts: u64,
        claims: usize,
    },
    /// A grey tip `<claimer>领取了<sender>的红包`.
    Claim {
        group: usize,
        text: String,
    },
    UndownloadedFile(usize),
}

/// The planted rows: group 1 is `simulate::plant`'s group A, group 2 its group B (group 0,
/// dissolved, is T).
fn plan(opts: &SimOptions) -> Schedule<Planted> {
    if !plant::plants(opts) {
        return Schedule::empty();
    }
    let (now, at) = (opts.now_ms, plant::dissolve_at(opts.now_ms));
    Schedule::new(vec![
        (
            plant::start_ms(opts) + plant::UNDOWNLOADED_AFTER_START_MS,
            Planted::UndownloadedFile(1),
        ),
        (at - plant::EARLY_NOTICE_MS, Planted::Notice(1)),
        (at - plant::LATE_NOTICE_MS, Planted::Notice(2)),
        (
            now - plant::CLAIMED_AGO_MS,
            Planted::RedPacket {
                group: 2,
                parts: plant::CLAIMED_PARTS,
                claims: plant::CLAIMED_PARTS as usize,
            },
        ),
        (
            now - plant::UNCLAIMED_AGO_MS,
            Planted::RedPacket {
                group: 1,
                parts: plant::UNCLAIMED_PARTS,
                claims: plant::UNCLAIMED_CLAIMS,
            },
        ),
    ])
}

/// A member's name in messages: the group card, else the nickname.
fn shown_name<'a>(world: &'a World, member: &'a SimMember) -> &'a str {
    if member.card.is_empty() {
        &world.people[member.person].nickname
    } else {
        &member.card
    }
}

/// Writes planted rows into the message table.
struct PlantWriter<'a, 'b> {
    opts: &'a SimOptions,
    world: &'a mut World,
    plan: &'a mut Schedule<Planted>,
    rng: &'a mut SimRng,
    builder: &'a mut BodyBuilder,
    media_writer: &'a mut MediaWriter,
    file_index: &'a mut usize,
    insert: &'a mut rusqlite::Statement<'b>,
}

impl PlantWriter<'_, '_> {
    /// Positions of current members other than the account holder whose shown name a
    /// claim tip can carry.
    fn claimable_members(&self, group: usize) -> Vec<usize> {
        let g = &self.world.groups[group];
        (1..g.members.len())
            .filter(|&p| {
                let m = &g.members[p];
                !m.left && m.person != OWNER && plant::claimable(shown_name(self.world, m))
            })
            .collect()
    }

    fn write(&mut self, event: Planted, at_ms: i64, index: usize) -> Result<(), SimError> {
        self.builder.body.clear();
        self.builder.field = field::ELEMENT;
        let (group, sender, row) = match event {
            Planted::Notice(group) => {
                let text = plant::other_notice(self.opts.seed, self.opts.now_ms);
                self.builder.text(self.rng, &text);
                (
                    group,
                    Some(0),
                    Row {
                        msg_type: 2,
                        sub_type: Some(1),
                    },
                )
            }
            Planted::RedPacket {
                group,
                parts,
                claims,
            } => {
                let candidates = self.claimable_members(group);
                // With no one else to send it, the account holder sends it, unclaimed.
                let (sender, claimers) = match candidates.split_first() {
                    Some((&sender, claimers)) => (sender, claimers),
                    None => (0, &[][..]),
                };
                let g = &self.world.groups[group];
                let sender_name = shown_name(self.world, &g.members[sender]).to_string();
                for &claimer in claimers.iter().take(claims) {
                    let text = format!(
                        "{}领取了{sender_name}的红包",
                        shown_name(self.world, &g.members[claimer])
                    );
                    self.plan.follow(Planted::Claim { group, text });
                }
                self.builder.start(self.rng, el::RED_PACKET);
                let element = &mut self.builder.element;
                pb::uint(
                    element,
                    field::RED_PACKET_AMOUNT,
                    100 * parts + self.rng.gen_range(0..100),
                );
                pb::bytes(
                    element,
                    field::RED_PACKET_TITLE,
                    "恭喜发财，大吉大利".as_bytes(),
                );
                pb::uint(element, field::RED_PACKET_PARTS, parts);
                self.builder.finish();
                (
                    group,
                    Some(sender),
                    Row {
                        msg_type: 10,
                        sub_type: Some(0),
                    },
                )
            }
            Planted::Claim { group, text } => {
                let row = grey_tip(self.builder, self.rng, &text, 1);
                (group, None, row)
            }
            Planted::UndownloadedFile(group) => {
                *self.file_index += 1;
                let placed = self
                    .media_writer
                    .place_file(*self.file_index, at_ms, false)?;
                self.builder.start(self.rng, el::FILE);
                media_fields(&mut self.builder.element, &placed);
                self.builder.finish();
                let sender = self.claimable_members(group).first().copied();
                (
                    group,
                    sender.or(Some(0)),
                    Row {
                        msg_type: 3,
                        sub_type: Some(0),
                    },
                )
            }
        };
        let time_s = at_ms.div_euclid(1000);
        let group = &mut self.world.groups[group];
        let seq = group.next_seq;
        group.next_seq += 1;
        let (uid, uin, card, nick, send_type) = match sender {
            Some(position) => {
                let m = &group.members[position];
                let person = &self.world.people[m.person];
                let send_type = if m.person == OWNER { 1 } else { 0 };
                (
                    person.uid.clone(),
                    person.uin as i64,
                    m.card.clone(),
                    person.nickname.clone(),
                    send_type,
                )
            }
            None => (String::new(), 0, String::new(), String::new(), 0),
        };
        let msg_id =
            ((time_s as u64) << 32) | u64::from((index as u32).wrapping_mul(2_654_435_761));
        let day_start = (time_s + 8 * 3600).div_euclid(86_400) * 86_400 - 8 * 3600;
        self.insert.execute(params![
            msg_id as i64,
            self.rng.gen::<u32>(),
            seq,
            row.msg_type,
            row.sub_type,
            send_type,
            uid,
            group.number.to_string(),
            group.number as i64,
            uin,
            time_s,
            day_start,
            card,
            nick,
            self.builder.body.clone(),
        ])?;
        Ok(())
    }
}

/// A `40050` planted as text that is no number.
pub const BAD_TIME_TEXT: &str = "昨天";

/// Rows written last, in the first group not dissolved, so that earlier rows stay as they
/// were: grey tips with a NULL and an empty body, a time of `i64::MAX` seconds and one of
/// [`BAD_TIME_TEXT`], and (when the group has a member whose card differs from their
/// nickname) a claim naming both and a file titled `<nickname>的简历.pdf`. Returns the
/// number of rows.
fn plant_hard_rows(
    opts: &SimOptions,
    world: &mut World,
    rng: &mut SimRng,
    builder: &mut BodyBuilder,
    media_writer: &mut MediaWriter,
    insert: &mut rusqlite::Statement,
) -> Result<usize, SimError> {
    let Some(g) = world.groups.iter().position(|g| g.dissolved_ms.is_none()) else {
        return Ok(0);
    };
    let number = world.groups[g].number;
    let base_s = opts.now_ms.div_euclid(1000) - 600;
    let mut planted = 0usize;
    let mut row = |world: &mut World,
                   k: i64,
                   msg_type: i64,
                   sender: Option<usize>,
                   time: rusqlite::types::Value,
                   body: Option<Vec<u8>>|
     -> Result<(), SimError> {
        let group = &mut world.groups[g];
        let seq = group.next_seq;
        group.next_seq += 1;
        let (uid, uin, nick) = match sender {
            Some(p) => {
                let person = &world.people[p];
                (
                    person.uid.clone(),
                    person.uin as i64,
                    person.nickname.clone(),
                )
            }
            None => (String::new(), 0, String::new()),
        };
        let msg_id = ((base_s as u64) << 32) | (0xFFFF_0000 + k as u64);
        insert.execute(params![
            msg_id as i64,
            k,
            seq,
            msg_type,
            0,
            0,
            uid,
            number.to_string(),
            number as i64,
            uin,
            time,
            base_s,
            "",
            nick,
            body,
        ])?;
        planted += 1;
        Ok(())
    };
    use rusqlite::types::Value;
    row(world, 0, 5, None, Value::Integer(base_s), None)?;
    row(
        world,
        1,
        5,
        None,
        Value::Integer(base_s + 1),
        Some(Vec::new()),
    )?;
    let named = world.groups[g]
        .members
        .iter()
        .skip(1)
        .find(|m| {
            let nick = &world.people[m.person].nickname;
            !m.card.is_empty() && !nick.is_empty() && m.card != *nick && !m.left
        })
        .map(|m| (m.person, m.card.clone()));
    if let Some((person, card)) = named {
        let nick = world.people[person].nickname.clone();
        builder.body.clear();
        let tip = grey_tip(builder, rng, &format!("{card}领取了{nick}的红包"), 1);
        row(
            world,
            2,
            tip.msg_type,
            None,
            Value::Integer(base_s + 2),
            Some(builder.body.clone()),
        )?;
        let name = format!("{nick}的简历.pdf");
        let rel = format!("nt_data/File/{name}");
        let bytes = media::document(&mut seeded_rng(opts.seed, STREAM_MEDIA + 7), "pdf", 640);
        if opts.media_files {
            media_writer.write(&rel, &bytes, (base_s + 3) * 1000)?;
        }
        let placed = Placed {
            device_path: Some(format!("{DEVICE_PREFIX}{rel}")),
            md5: md5_hex(&bytes),
            size: bytes.len() as u64,
            name,
        };
        builder.body.clear();
        builder.start(rng, el::FILE);
        media_fields(&mut builder.element, &placed);
        builder.finish();
        row(
            world,
            3,
            3,
            Some(person),
            Value::Integer(base_s + 3),
            Some(builder.body.clone()),
        )?;
    }
    builder.body.clear();
    builder.text(rng, "来自很远的未来");
    let owner = Some(OWNER);
    row(
        world,
        4,
        2,
        owner,
        Value::Integer(i64::MAX),
        Some(builder.body.clone()),
    )?;
    row(
        world,
        5,
        2,
        owner,
        Value::Text(BAD_TIME_TEXT.into()),
        Some(builder.body.clone()),
    )?;
    Ok(planted)
}

/// Switches to WAL mode with checkpoints off, so the rows written next stay only in the log.
fn start_wal(conn: &Connection) -> Result<(), SimError> {
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SimError::WalFormat {
            path: PathBuf::from(MSG_DB),
            reason: format!("SQLite refused WAL mode (journal mode is {mode})"),
        });
    }
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(())
}

fn pick_group(groups: &[SimGroup], total_weight: u32, time_ms: i64, rng: &mut SimRng) -> usize {
    loop {
        let mut target = rng.gen_range(0..total_weight.max(1));
        let mut chosen = 0;
        for (index, group) in groups.iter().enumerate() {
            if target < group.weight {
                chosen = index;
                break;
            }
            target -= group.weight;
        }
        // A dissolved group gets no more messages; with one group it keeps none.
        let dissolved = groups[chosen].dissolved_ms.is_some_and(|d| time_ms >= d);
        if !dissolved || groups.len() == 1 {
            return chosen;
        }
    }
}

pub(super) fn grey_tip(
    builder: &mut BodyBuilder,
    rng: &mut SimRng,
    text: &str,
    sub_type: i64,
) -> Row {
    builder.start(rng, el::GREY_TIP);
    pb::bytes(&mut builder.element, field::TEXT, text.as_bytes());
    builder.finish();
    Row {
        msg_type: 5,
        sub_type: Some(sub_type),
    }
}

pub(super) fn media_fields(element: &mut Vec<u8>, placed: &Placed) {
    pb::bytes(element, field::FILE_NAME, placed.name.as_bytes());
    if let Some(path) = &placed.device_path {
        pb::bytes(element, field::FILE_PATH, path.as_bytes());
    }
    pb::uint(element, field::FILE_SIZE, placed.size);
    pb::bytes(element, field::MD5, placed.md5.as_bytes());
}

/// A body no protobuf reader can accept (or none at all).
fn corrupt(body: &[u8], rng: &mut SimRng) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match rng.gen_range(0..6) {
        0 if body.len() > 1 => {
            // Cut short: the last element's declared length overruns.
            out.extend_from_slice(&body[..body.len() - 1]);
        }
        1 => {
            pb::key(&mut out, field::ELEMENT, pb::LEN);
            pb::varint(&mut out, 0xFFFF_FFFF);
            out.extend_from_slice(b"short");
        }
        2 => {
            // Wire type 7 does not exist.
            out.push(0x0F);
            out.extend_from_slice(body);
        }
        3 => {
            // Nested groups far beyond any sane depth.
            for _ in 0..200 {
                pb::key(&mut out, 1, pb::START_GROUP);
            }
        }
        4 => {
            // Printable, but not protobuf ('<' is an end-group tag with no group).
            out.extend_from_slice("<msg>不是protobuf的消息</msg>".as_bytes());
        }
        _ => return None,
    }
    Some(out)
}

/// Orphans (no row references them), odd names, avatars and the recycle bin.
fn write_extra_files(root: &Path, opts: &SimOptions, world: &World) -> Result<usize, SimError> {
    let mut rng = seeded_rng(opts.seed, STREAM_FILES);
    let mut count = 0;
    let month = month_folder(opts.now_ms - 3 * DAY_MS);
    for index in 0..3 {
        let bytes = media::jpeg(&mut rng, 1_000 + index * 100);
        let md5 = md5_hex(&bytes);
        write_file_at(
            &root.join(format!("nt_data/Pic/{month}/Ori/{md5}.jpg")),
            &bytes,
            opts.now_ms - (index as i64 + 1) * DAY_MS,
        )?;
        count += 1;
    }
    write_file_at(
        &root.join("nt_data/File/空文件.txt"),
        &[],
        opts.now_ms - DAY_MS,
    )?;
    count += 1;
    // A file name that is not UTF-8 (GBK bytes of 报价单).
    crate::simulate::write_gbk_named_document(
        &root.join("nt_data/File"),
        &mut rng,
        500,
        opts.now_ms - 2 * DAY_MS,
    )?;
    count += 1;
    for (index, group) in world.groups.iter().enumerate().take(20) {
        let png = media::png(16, 16, [index as u8 * 40, 120, 200]);
        write_file_at(
            &root.join(format!("nt_data/avatar/group/{}.png", group.number)),
            &png,
            opts.now_ms - 10 * DAY_MS,
        )?;
        count += 1;
    }
    // The recycle bin: deletions from 0 to 60 days ago (retention keeps them 30 days).
    let recycled: [(&str, i64); 8] = [
        ("RecycleBin/Pic/recent.jpg", 1),
        ("RecycleBin/Pic/week_old.jpg", 7),
        ("RecycleBin/File/报价单.xlsx", 20),
        ("RecycleBin/Video/clip.mp4", 29),
        ("RecycleBin/Pic/month_old.jpg", 31),
        ("RecycleBin/File/合同 final v2.docx", 45),
        ("RecycleBin/Ptt/voice.amr", 60),
        ("RecycleBin/nt_data/Pic/2024-01/Thumb/old_0.jpg", 200),
    ];
    for (rel, days_ago) in recycled {
        let ext = rel.rsplit('.').next().unwrap_or("bin");
        let bytes = match ext {
            "amr" => media::amr(&mut rng, 2_000),
            other => media::document(&mut rng, other, 700),
        };
        let mtime = opts.now_ms - days_ago * DAY_MS - rng.gen_range(0..HOUR_MS);
        write_file_at(&root.join(rel), &bytes, mtime)?;
        count += 1;
    }
    Ok(count)
}

pub fn simulate_qq(opts: &SimOptions) -> Result<SimReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    prepare_output_dir(&opts.out)?;
    let root = opts.out.clone();
    let nt_db = root.join("nt_db");
    std::fs::create_dir_all(&nt_db).map_err(io_error(&nt_db))?;
    let mut rng = seeded_rng(opts.seed, STREAM_WORLD);
    let mut world = build_world(opts, &mut rng);
    write_group_info(&root, &world, opts)?;
    let (messages, mut files, hard_rows) = write_messages(&root, &mut world, opts)?;
    if opts.media_files {
        files += write_extra_files(&root, opts, &world)?;
    }
    let mut distinct: HashSet<usize> = HashSet::new();
    for group in &world.groups {
        distinct.extend(group.members.iter().map(|m| m.person));
    }
    Ok(SimReport {
        root,
        platform: "qq",
        groups: world.groups.len(),
        private_chats: 0,
        members: distinct.len(),
        messages,
        hard_rows,
        media_files: files,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::qq;
    use crate::records::{CacheClass, Direction, Kind, MediaKind, MediaLocation};
    use crate::source::Source;

    #[test]
    fn encoder_writes_standard_varints() {
        let mut out = Vec::new();
        pb::varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        out.clear();
        pb::bytes(&mut out, 40800, b"x");
        assert_eq!(out, [0x82, 0xF6, 0x13, 1, b'x']);
    }

    fn options(dir: &Path, name: &str) -> SimOptions {
        let mut opts = SimOptions::new(dir.join(name));
        opts.groups = 4;
        opts.members = 12;
        opts.messages = 4000;
        opts.edge_rate = 0.1;
        opts.seed = 11;
        opts.now_ms = 1_749_715_200_000;
        opts
    }

    fn all_messages(source: &dyn Source) -> Vec<crate::records::Message> {
        let mut out = Vec::new();
        for group in source.groups().unwrap() {
            for message in source.messages(&group.id).unwrap() {
                out.push(message.unwrap());
            }
        }
        out
    }

    #[test]
    fn the_importer_reads_back_everything_the_simulator_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), "qq");
        let report = simulate_qq(&opts).unwrap();
        assert!(qq::probe(&report.root).unwrap());
        let source = qq::open(&report.root).unwrap();
        let groups = source.groups().unwrap();
        assert_eq!(groups.len(), opts.groups);
        assert!(groups.windows(2).all(|w| w[0].id < w[1].id));
        assert!(groups
            .iter()
            .all(|g| g.is_group && g.id.parse::<u64>().is_ok()));
        assert!(
            groups.iter().any(|g| g.name.is_empty()),
            "a group without detail row"
        );
        assert!(source.owner_id().is_some_and(|o| o.starts_with("u_")));

        let conn = Connection::open(report.root.join(MSG_DB)).unwrap();
        let mut total = 0;
        let mut kinds: HashMap<&'static str, usize> = HashMap::new();
        let mut field_48000 = 0;
        let mut warned = 0;
        let mut media_paths = 0;
        for group in &groups {
            let want: i64 = conn
                .query_row(
                    r#"SELECT count(*) FROM group_msg_table WHERE "40027" = ?1"#,
                    [group.id.parse::<i64>().unwrap()],
                    |r| r.get(0),
                )
                .unwrap();
            let messages: Vec<_> = source
                .messages(&group.id)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(messages.len() as i64, want, "group {}", group.id);
            // Rows with no time stay where SQLite orders them; the rest are in time order.
            let times: Vec<i64> = messages.iter().filter_map(|m| m.time_ms).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]));
            for m in &messages {
                total += 1;
                *kinds.entry(m.kind.as_str()).or_default() += 1;
                assert_eq!(m.time_ms.map_or(0, |t| t % 1000), 0);
                assert_eq!(
                    m.direction == Direction::System,
                    m.sender_id.is_none(),
                    "{m:?}"
                );
                // A warned row is malformed (kind other) or has no time to show.
                if m.warning.is_some() {
                    warned += 1;
                    assert!(m.kind == Kind::Other || m.time_ms.is_none(), "{m:?}");
                }
                for media in &m.media {
                    if let MediaLocation::Path(p) = &media.location {
                        media_paths += 1;
                        assert!(p.starts_with("nt_data/") || p.starts_with('/'), "{p}");
                        if media.kind == MediaKind::ImageThumb {
                            assert!(p.contains("/Thumb/"));
                        }
                    }
                }
            }
            let body_alt: i64 = conn
                .query_row(
                    r#"SELECT count(*) FROM group_msg_table WHERE "40027" = ?1 AND hex(substr("40800", 1, 3)) = '82B817'"#,
                    [group.id.parse::<i64>().unwrap()],
                    |r| r.get(0),
                )
                .unwrap();
            field_48000 += body_alt;
        }
        assert_eq!(total, report.messages);
        assert!(field_48000 > 0, "no bodies use field 48000");
        assert!(warned > 0, "no malformed rows");
        assert!(media_paths > 0);
        for kind in [
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
        ] {
            assert!(kinds.contains_key(kind), "no {kind}: {kinds:?}");
        }
        let all = all_messages(source.as_ref());
        assert!(all.iter().any(|m| m.announces_dissolution()));

        // Members: group_member3 rows, QQ numbers as aliases, one owner.
        for group in &groups {
            let members = source.members(&group.id).unwrap();
            assert_eq!(members.len(), opts.members, "members of {}", group.id);
            assert!(members
                .iter()
                .all(|m| m.alias.as_deref().is_some_and(|a| a.parse::<u64>().is_ok())));
            if !group.name.is_empty() {
                assert_eq!(
                    members
                        .iter()
                        .filter(|m| m.role == crate::records::Role::Owner)
                        .count(),
                    1
                );
            }
        }

        // The cache layout classifies.
        let mut recycled = 0;
        for entry in walkdir::WalkDir::new(&report.root) {
            let entry = entry.unwrap();
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&report.root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let class = source.platform().cache_class(&rel);
            if rel.starts_with("RecycleBin/") {
                recycled += 1;
                assert_eq!(class, CacheClass::RecycleBin, "{rel}");
            } else if rel.contains("/Thumb/") {
                assert_eq!(class, CacheClass::Media(MediaKind::ImageThumb), "{rel}");
            } else if rel.starts_with("nt_db/") {
                assert_eq!(class, CacheClass::Database, "{rel}");
            }
        }
        assert!(recycled >= 5);
        // Recycle-bin files span the 30-day retention boundary.
        let ages: Vec<i64> = std::fs::read_dir(report.root.join("RecycleBin/Pic"))
            .unwrap()
            .map(|e| {
                let modified = e.unwrap().metadata().unwrap().modified().unwrap();
                let ms = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                (opts.now_ms - ms) / DAY_MS
            })
            .collect();
        assert!(
            ages.iter().any(|d| *d < 30) && ages.iter().any(|d| *d >= 30),
            "{ages:?}"
        );
        assert_eq!(source.source_files().len(), 2);
    }

    #[test]
    fn same_options_same_bytes_and_no_files_without_media() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = options(dir.path(), "a");
        a.media_files = false;
        let mut b = a.clone();
        b.out = dir.path().join("b");
        simulate_qq(&a).unwrap();
        simulate_qq(&b).unwrap();
        for db in [MSG_DB, INFO_DB] {
            assert_eq!(
                std::fs::read(a.out.join(db)).unwrap(),
                std::fs::read(b.out.join(db)).unwrap(),
                "{db} differs"
            );
        }
        assert!(!a.out.join("nt_data").exists());
        let again = simulate_qq(&a);
        assert!(matches!(again, Err(SimError::OutputNotEmpty(_))));
    }

    #[test]
    fn a_wal_holds_the_newest_rows_and_the_importer_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), "wal");
        opts.wal = true;
        opts.media_files = false;
        let report = simulate_qq(&opts).unwrap();
        let wal = report.root.join("nt_db/nt_msg.db-wal");
        assert!(wal.exists());
        let source = qq::open(&report.root).unwrap();
        assert_eq!(all_messages(source.as_ref()).len(), report.messages);
        assert!(source
            .source_files()
            .iter()
            .any(|f| f.rel_path.ends_with("-wal")));
        // Without the log, the newest rows are gone: they really live only there.
        let copy = dir.path().join("nolog");
        std::fs::create_dir_all(copy.join("nt_db")).unwrap();
        std::fs::copy(report.root.join(MSG_DB), copy.join(MSG_DB)).unwrap();
        let without = qq::open(&copy).unwrap();
        let n = all_messages(without.as_ref()).len();
        assert!(n < report.messages && n > 0, "{n}");
    }

    #[test]
    fn no_messages_and_one_group_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), "empty");
        opts.messages = 0;
        opts.wal = true;
        let report = simulate_qq(&opts).unwrap();
        assert_eq!(report.messages, 0);
        let source = qq::open(&report.root).unwrap();
        assert_eq!(source.groups().unwrap().len(), opts.groups);
        let mut opts = options(dir.path(), "one");
        opts.groups = 1;
        opts.members = 2;
        opts.messages = 50;
        let report = simulate_qq(&opts).unwrap();
        let source = qq::open(&report.root).unwrap();
        assert_eq!(report.messages, 50 + report.hard_rows);
        assert_eq!(all_messages(source.as_ref()).len(), report.messages);
    }

    /// `cargo test --release -- --ignored --nocapture million`: timings for the brief.
    #[test]
    #[ignore]
    fn million_messages_simulate_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), "big");
        opts.groups = 5;
        opts.members = 30;
        opts.messages = 1_000_000;
        opts.edge_rate = 0.05;
        opts.media_files = false;
        let started = Instant::now();
        let report = simulate_qq(&opts).unwrap();
        eprintln!(
            "simulate: {} messages in {:?}",
            report.messages,
            started.elapsed()
        );
        let started = Instant::now();
        let source = qq::open(&report.root).unwrap();
        let mut n = 0usize;
        let mut bytes = 0usize;
        for group in source.groups().unwrap() {
            for m in source.messages(&group.id).unwrap() {
                let m = m.unwrap();
                bytes += m.text.len();
                n += 1;
            }
        }
        let elapsed = started.elapsed();
        eprintln!(
            "read: {n} messages ({bytes} text bytes) in {elapsed:?} = {:.0} msg/s",
            n as f64 / elapsed.as_secs_f64()
        );
        assert_eq!(n, report.messages);
    }
}
