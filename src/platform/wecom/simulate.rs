//! Simulated WeCom session archive (会话内容存档), decrypted (`spec/sources.md` §3):
//! `archive/*.jsonl` (lines of several files, shuffled, with duplicates, `switch` records,
//! recalls, every message type and malformed lines), `groups/<roomid>.json`, `users.json`
//! (internal and external users) and `media/<md5sum>.<ext>`.
//!
//! Lines are written as they are generated, each to a randomly chosen archive file through
//! a small shuffling buffer, so memory stays flat for any number of messages.
//!
//! With 4 or more groups, what `simulate::plant` describes, where the archive can say it:
//! room 0 is its group A (the announcement [`plant::other_notice`] from the room's
//! `creator`, who is the owner, 25 h before [`plant::dissolve_at`]; a `redpacket` with
//! `totalcnt` 5 sent 6 h before `now` by another member; early on a `file` whose `md5sum`
//! names no file under `media/`), room 1 its group B (the same announcement 23 h before; a
//! `redpacket` with `totalcnt` 3 sent 9 h before `now`). The archive records no claims and
//! no account holder, so there is neither a fully claimed red packet nor a transferred
//! ownership to plant. With `members` 40 and 3 or more groups, rooms 0, 1, 2 have 39, 40,
//! 41 members (and every room keeps its `groups/` file).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::simulate::edge::{self, GroupKind};
use crate::simulate::plant::{self, Schedule};
use crate::simulate::{
    io_error, md5_hex, media, prepare_output_dir, random_digits, random_hex, seeded_rng,
    write_file_at, SimError, SimOptions, SimReport, SimRng, TimeSpread, DAY_MS, SECOND_MS,
};

/// Lines buffered per archive file and shuffled before they are written.
const SHUFFLE_WINDOW: usize = 64;
/// Recently written lines that a duplicate may repeat.
const DUPLICATE_RING: usize = 16;

pub(super) const PINYIN: &[&str] = &[
    "zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "lin", "he", "gao", "luo", "wei", "fang", "jing", "ming", "hua", "jun",
    "yan", "tao", "ping", "xin", "yu", "hao",
];

/// Message types WeCom has that the spec does not describe: exported as kind `other`.
pub(super) const UNKNOWN_TYPES: &[&str] = &[
    "meeting_voice_call",
    "chatrecord",
    "todo",
    "vote",
    "markdown",
    "calendar",
    "docmsg",
    "sphfeed",
];

#[derive(Debug, Clone)]
struct User {
    id: String,
    name: String,
    external: bool,
    /// Written to `users.json` (otherwise the sender has no known name).
    listed: bool,
}

struct Room {
    id: String,
    kind: GroupKind,
    /// Indices into the user list; the first is the creator.
    members: Vec<usize>,
    /// Someone who sends messages but is in no member list (left, or never listed).
    stranger: Option<usize>,
    /// The last message id, for recalls.
    last_msgid: Option<String>,
}

/// One-time edge cases come first (so small simulations have each), then at the edge rate.
struct Edges {
    rate: f64,
    rng: SimRng,
    done: HashSet<&'static str>,
}

impl Edges {
    fn hit(&mut self, name: &'static str, weight: f64) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        if self.done.insert(name) {
            return true;
        }
        self.rng.gen_bool((self.rate * weight).clamp(0.0, 1.0))
    }
}

/// The archive files, each behind a shuffling buffer.
struct Archive {
    files: Vec<(PathBuf, BufWriter<File>)>,
    buffers: Vec<Vec<Vec<u8>>>,
    recent: Vec<Vec<u8>>,
    rng: SimRng,
}

impl Archive {
    fn create(dir: &Path, count: usize, rng: SimRng) -> Result<Archive, SimError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut files = Vec::with_capacity(count);
        for index in 0..count {
            let path = dir.join(format!("chatdata_{:03}.jsonl", index + 1));
            let file = File::create(&path).map_err(io_error(&path))?;
            files.push((path, BufWriter::with_capacity(1 << 16, file)));
        }
        Ok(Archive {
            buffers: vec![Vec::with_capacity(SHUFFLE_WINDOW); count],
            files,
            recent: Vec::with_capacity(DUPLICATE_RING),
            rng,
        })
    }

    /// Queues a line for a random file; `repeatable` lines may later be duplicated.
    fn push(&mut self, line: Vec<u8>, repeatable: bool) -> Result<(), SimError> {
        if repeatable {
            if self.recent.len() < DUPLICATE_RING {
                self.recent.push(line.clone());
            } else {
                let slot = self.rng.gen_range(0..DUPLICATE_RING);
                self.recent[slot] = line.clone();
            }
        }
        let index = self.rng.gen_range(0..self.files.len());
        self.buffers[index].push(line);
        if self.buffers[index].len() >= SHUFFLE_WINDOW {
            self.flush(index)?;
        }
        Ok(())
    }

    /// Writes one recent line again; `false` when there is none yet.
    fn duplicate(&mut self) -> Result<bool, SimError> {
        let Some(line) = self.recent.choose(&mut self.rng).cloned() else {
            return Ok(false);
        };
        self.push(line, false)?;
        Ok(true)
    }

    fn flush(&mut self, index: usize) -> Result<(), SimError> {
        let mut lines = std::mem::take(&mut self.buffers[index]);
        lines.shuffle(&mut self.rng);
        let (path, writer) = &mut self.files[index];
        for line in &lines {
            writer.write_all(line).map_err(io_error(path))?;
            writer.write_all(b"\n").map_err(io_error(path))?;
        }
        lines.clear();
        self.buffers[index] = lines;
        Ok(())
    }

    /// Flushes everything; `tail` is appended to the last file without a line end.
    fn finish(mut self, tail: Option<&[u8]>) -> Result<(), SimError> {
        for index in 0..self.files.len() {
            self.flush(index)?;
        }
        if let (Some(tail), Some((path, writer))) = (tail, self.files.last_mut()) {
            writer.write_all(tail).map_err(io_error(path))?;
        }
        for (path, mut writer) in self.files {
            writer.flush().map_err(io_error(&path))?;
        }
        Ok(())
    }
}

/// Appends `text` as a JSON string.
pub(super) fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object written field by field.
pub(super) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(super) fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_json_str(self.out, key);
        self.out.push(':');
        self.out
    }

    pub(super) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        push_json_str(self.key(key), value);
        self
    }

    pub(super) fn num(&mut self, key: &str, value: i64) -> &mut Self {
        let out = self.key(key);
        out.push_str(&value.to_string());
        self
    }

    /// A value already written as JSON.
    pub(super) fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    pub(super) fn end(&mut self) {
        self.out.push('}');
    }
}

pub(super) fn random_alnum(rng: &mut SimRng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

pub(super) fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn new_user(rng: &mut SimRng, edges: &mut Edges, index: usize, external: bool) -> User {
    let id = if external {
        format!("wm{}", random_alnum(rng, 30))
    } else {
        let first = PINYIN[rng.gen_range(0..PINYIN.len())];
        let second = PINYIN[rng.gen_range(0..PINYIN.len())];
        format!("{}{}{index}", capitalized(first), capitalized(second))
    };
    let name = if edges.hit("nasty user name", 1.0) {
        edge::nasty_name(rng)
    } else if external {
        edge::nickname(rng)
    } else {
        edge::person_name(rng)
    };
    User {
        id,
        name,
        external,
        listed: !edges.hit("user not in users.json", 0.3),
    }
}

/// What a message line is, before serialization.
pub(super) struct Line<'a> {
    pub(super) msgid: Option<&'a str>,
    pub(super) action: &'a str,
    pub(super) from: Option<&'a str>,
    pub(super) tolist: &'a [&'a str],
    pub(super) roomid: &'a str,
    pub(super) msgtime: i64,
    /// Write `msgtime` as a string (a wrong type the importer must survive).
    pub(super) msgtime_as_string: bool,
    pub(super) msgtype: &'a str,
    /// The payload object, already JSON.
    pub(super) payload: &'a str,
}

pub(super) fn serialize(line: &Line, out: &mut String) {
    out.clear();
    let mut obj = Obj::new(out);
    if let Some(msgid) = line.msgid {
        obj.str("msgid", msgid);
    }
    obj.str("action", line.action);
    if let Some(from) = line.from {
        obj.str("from", from);
    }
    {
        let list = obj.key("tolist");
        list.push('[');
        for (i, to) in line.tolist.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            push_json_str(list, to);
        }
        list.push(']');
    }
    obj.str("roomid", line.roomid);
    if line.msgtime_as_string {
        obj.str("msgtime", &line.msgtime.to_string());
    } else {
        obj.num("msgtime", line.msgtime);
    }
    obj.str("msgtype", line.msgtype);
    obj.raw(line.msgtype, line.payload);
    obj.end();
}

/// Media bytes of a message, written under `media/` (or not, for the edge cases).
struct MediaWriter<'a> {
    dir: PathBuf,
    enabled: bool,
    rng: SimRng,
    written: usize,
    created: HashSet<String>,
    opts: &'a SimOptions,
}

impl MediaWriter<'_> {
    /// Returns the md5sum the message names and the file size.
    fn write(
        &mut self,
        edges: &mut Edges,
        extension: &str,
        bytes: impl FnOnce(&mut SimRng) -> Vec<u8>,
        time_ms: i64,
    ) -> Result<(String, u64), SimError> {
        if !self.enabled {
            let size = self.rng.gen_range(1_000..200_000u64);
            return Ok((random_hex(&mut self.rng, 32), size));
        }
        if edges.hit("media md5sum escaping the root", 0.05) {
            return Ok(("../../../../etc/passwd".into(), 1234));
        }
        if edges.hit("media link out of the root", 0.02) {
            let md5 = random_hex(&mut self.rng, 32);
            let link = self.dir.join(format!("{md5}.{extension}"));
            fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
            std::os::unix::fs::symlink("/etc/hostname", &link).map_err(io_error(&link))?;
            self.written += 1;
            return Ok((md5, 0));
        }
        let data = if edges.hit("zero-byte media file", 0.02) {
            Vec::new()
        } else {
            bytes(&mut self.rng)
        };
        let md5 = md5_hex(&data);
        let size = data.len() as u64;
        if edges.hit("media file missing", 1.0) {
            return Ok((md5, size));
        }
        let name = format!("{md5}.{extension}");
        if self.created.insert(name.clone()) {
            write_file_at(&self.dir.join(&name), &data, time_ms)?;
            self.written += 1;
        }
        Ok((md5, size))
    }

    /// Files no message references: orphans, a zero-byte one, a non-UTF-8 name.
    fn orphans(&mut self, edges: &mut Edges) -> Result<(), SimError> {
        if !self.enabled || edges.rate <= 0.0 {
            return Ok(());
        }
        let count = 1 + (self.opts.messages as f64 * edges.rate * 0.01) as usize;
        let time = self.opts.now_ms - DAY_MS;
        for _ in 0..count {
            let data = media::jpeg(&mut self.rng, 800);
            write_file_at(
                &self.dir.join(format!("{}.jpg", md5_hex(&data))),
                &data,
                time,
            )?;
            self.written += 1;
        }
        write_file_at(
            &self.dir.join("d41d8cd98f00b204e9800998ecf8427e.txt"),
            &[],
            time,
        )?;
        self.written += 1;
        {
            use std::os::unix::ffi::OsStrExt;
            let name = std::ffi::OsStr::from_bytes(b"orphan-\xff\xfe.bin");
            write_file_at(&self.dir.join(name), b"not utf-8 name", time)?;
            self.written += 1;
        }
        Ok(())
    }
}

pub fn simulate_wecom(opts: &SimOptions) -> Result<SimReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    prepare_output_dir(&opts.out)?;
    let mut rng = seeded_rng(opts.seed, 0);
    let mut edges = Edges {
        rate: opts.edge_rate,
        rng: seeded_rng(opts.seed, 3),
        done: HashSet::new(),
    };

    // People and groups.
    let mut users: Vec<User> = Vec::new();
    let mut rooms: Vec<Room> = Vec::with_capacity(opts.groups);
    for group_index in 0..opts.groups {
        let kind = GroupKind::ALL[group_index % GroupKind::ALL.len()];
        let size = plant::sized_members(opts, group_index).unwrap_or(opts.members);
        let mut members: Vec<usize> = Vec::with_capacity(size);
        while members.len() < size {
            let reuse = !users.is_empty() && rng.gen_bool(0.3);
            let index = if reuse {
                rng.gen_range(0..users.len())
            } else {
                // The creator is an employee; customers join as external contacts.
                let external = !members.is_empty() && edges.hit("external user", 1.0);
                users.push(new_user(&mut rng, &mut edges, users.len(), external));
                users.len() - 1
            };
            if !members.contains(&index) {
                members.push(index);
            }
        }
        let stranger = if edges.hit("sender in no member list", 1.0) {
            let external = rng.gen_bool(0.5);
            users.push(new_user(&mut rng, &mut edges, users.len(), external));
            Some(users.len() - 1)
        } else {
            None
        };
        rooms.push(Room {
            id: format!("wr{}", random_alnum(&mut rng, 30)),
            kind,
            members,
            stranger,
            last_msgid: None,
        });
    }
    let total_members = {
        let mut seen: HashSet<usize> = HashSet::new();
        for room in &rooms {
            seen.extend(room.members.iter().copied());
        }
        seen.len()
    };

    write_users(opts, &users)?;
    let span_start = opts.now_ms - i64::from(opts.days) * DAY_MS;
    write_groups(opts, &rooms, &users, &mut rng, &mut edges, span_start)?;

    // Messages.
    let privates = if users.len() >= 2 {
        (opts.messages / 50).max(1)
    } else {
        0
    };
    let switches = if users.is_empty() {
        0
    } else {
        opts.messages / 500 + 1
    };
    let file_count = ((opts.messages + privates) / 100_000 + 3).min(32);
    let mut archive = Archive::create(
        &opts.out.join(super::ARCHIVE_DIR),
        file_count,
        seeded_rng(opts.seed, 4),
    )?;
    let mut media_writer = MediaWriter {
        dir: opts.out.join(super::MEDIA_DIR),
        enabled: opts.media_files,
        rng: seeded_rng(opts.seed, 1),
        written: 0,
        created: HashSet::new(),
        opts,
    };
    let mut msg_rng = seeded_rng(opts.seed, 2);
    let spread = TimeSpread::new(opts.now_ms, opts.days, opts.messages);
    let mut generator = Generator {
        text: String::with_capacity(512),
        payload: String::with_capacity(512),
        malformed_seen: 0,
    };
    let mut group_messages = 0usize;
    let mut private_pairs: HashSet<(usize, usize)> = HashSet::new();
    let mut truncated_tail: Option<Vec<u8>> = None;
    let switch_every = opts
        .messages
        .max(1)
        .checked_div(switches)
        .map_or(usize::MAX, |n| n.max(1));
    let private_every = opts
        .messages
        .max(1)
        .checked_div(privates)
        .map_or(usize::MAX, |n| n.max(1));

    let mut plan = plan(opts);
    for index in 0..opts.messages {
        let time_ms = spread.time_of(index, &mut msg_rng);
        let room_index = msg_rng.gen_range(0..rooms.len());
        let outcome = match plan.next(time_ms) {
            Some((at, event)) => planted_line(opts, &mut msg_rng, &users, &rooms, event, index, at),
            None => generator.group_message(
                &mut msg_rng,
                &mut edges,
                &mut media_writer,
                &users,
                &mut rooms[room_index],
                index,
                time_ms,
            )?,
        };
        match outcome {
            Generated::Counted(line) => {
                group_messages += 1;
                archive.push(line, true)?;
            }
            Generated::CountedOnce(line) => {
                group_messages += 1;
                archive.push(line, false)?;
            }
            Generated::Lost(line) => archive.push(line, false)?,
        }
        if edges.hit("duplicate line", 0.5) {
            archive.duplicate()?;
        }
        if index % switch_every == 0 && !users.is_empty() {
            let user = &users[msg_rng.gen_range(0..users.len())];
            let mut line = String::new();
            Obj::new(&mut line)
                .str(
                    "msgid",
                    &format!(
                        "{}_{}_switch",
                        random_digits(&mut msg_rng, 19),
                        time_ms / SECOND_MS
                    ),
                )
                .str("action", "switch")
                .num("time", time_ms)
                .str("user", &user.id)
                .end();
            archive.push(line.into_bytes(), false)?;
        }
        if index % private_every == 0 && users.len() >= 2 {
            let a = msg_rng.gen_range(0..users.len());
            let mut b = msg_rng.gen_range(0..users.len() - 1);
            if b >= a {
                b += 1;
            }
            private_pairs.insert((a.min(b), a.max(b)));
            let line =
                generator.private_message(&mut msg_rng, &users[a], &users[b], index, time_ms);
            archive.push(line, true)?;
        }
        if truncated_tail.is_none() && edges.hit("file ends mid-line", 0.0) {
            let mut cut = String::new();
            let payload = "{\"content\":\"这一行在写入时被截断\"}";
            serialize(
                &Line {
                    msgid: Some("truncated_tail_msgid"),
                    action: "send",
                    from: Some("nobody"),
                    tolist: &[],
                    roomid: &rooms[room_index].id,
                    msgtime: time_ms,
                    msgtime_as_string: false,
                    msgtype: "text",
                    payload,
                },
                &mut cut,
            );
            let keep = cut.len() * 2 / 3;
            truncated_tail = Some(cut.as_bytes()[..keep].to_vec());
        }
    }
    let hard_rows = if edges.rate > 0.0 && opts.messages > 0 {
        plant_hard_rows(opts, &rooms, &users, &mut archive)?
    } else {
        0
    };
    group_messages += hard_rows;
    archive.finish(truncated_tail.as_deref())?;
    media_writer.orphans(&mut edges)?;

    Ok(SimReport {
        root: opts.out.clone(),
        platform: "wecom",
        groups: rooms.len(),
        private_chats: private_pairs.len(),
        members: total_members,
        messages: group_messages,
        hard_rows,
        media_files: media_writer.written,
        elapsed: started.elapsed(),
    })
}

/// A planted line (`simulate::plant`), by room.
enum Planted {
    Notice(usize),
    RedPacket(usize, u64),
    UndownloadedFile(usize),
}

/// The planted lines: room 0 is `simulate::plant`'s group A, room 1 its group B. The
/// archive records no claims, so neither red packet is known to be claimed.
fn plan(opts: &SimOptions) -> Schedule<Planted> {
    if !plant::plants(opts) {
        return Schedule::empty();
    }
    let (now, at) = (opts.now_ms, plant::dissolve_at(opts.now_ms));
    Schedule::new(vec![
        (
            plant::start_ms(opts) + plant::UNDOWNLOADED_AFTER_START_MS,
            Planted::UndownloadedFile(0),
        ),
        (at - plant::EARLY_NOTICE_MS, Planted::Notice(0)),
        (at - plant::LATE_NOTICE_MS, Planted::Notice(1)),
        (
            now - plant::CLAIMED_AGO_MS,
            Planted::RedPacket(1, plant::CLAIMED_PARTS),
        ),
        (
            now - plant::UNCLAIMED_AGO_MS,
            Planted::RedPacket(0, plant::UNCLAIMED_PARTS),
        ),
    ])
}

/// One planted message line: the announcement by the room's creator, or a red packet or a
/// never-downloaded file (no file under `media/`) by another member.
fn planted_line(
    opts: &SimOptions,
    rng: &mut SimRng,
    users: &[User],
    rooms: &[Room],
    event: Planted,
    index: usize,
    time_ms: i64,
) -> Generated {
    let room_index = match event {
        Planted::Notice(r) | Planted::RedPacket(r, _) | Planted::UndownloadedFile(r) => r,
    };
    let room = &rooms[room_index];
    let sender_index = match event {
        Planted::Notice(_) => room.members[0],
        _ => room.members[1.min(room.members.len() - 1)],
    };
    let mut payload = String::new();
    let msgtype = match event {
        Planted::Notice(_) => {
            let text = plant::other_notice(opts.seed, opts.now_ms);
            Obj::new(&mut payload).str("content", &text).end();
            "text"
        }
        Planted::RedPacket(_, count) => {
            let count = count as i64;
            Obj::new(&mut payload)
                .num("type", 1)
                .str("wish", "恭喜发财，大吉大利")
                .num("totalcnt", count)
                .num("totalamount", count * 888)
                .end();
            "redpacket"
        }
        Planted::UndownloadedFile(_) => {
            let bytes = media::document(rng, "pdf", 2_000);
            Obj::new(&mut payload)
                .str("filename", "群文件-会议纪要.pdf")
                .str("fileext", "pdf")
                .str("md5sum", &md5_hex(&bytes))
                .num("filesize", bytes.len() as i64)
                .str("sdkfileid", &random_alnum(rng, 24))
                .end();
            "file"
        }
    };
    let msgid = format!(
        "{}{index:08}_{}",
        random_digits(rng, 11),
        time_ms / SECOND_MS
    );
    let tolist: Vec<&str> = room
        .members
        .iter()
        .filter(|&&m| m != sender_index)
        .take(8)
        .map(|&m| users[m].id.as_str())
        .collect();
    let mut text = String::new();
    serialize(
        &Line {
            msgid: Some(&msgid),
            action: "send",
            from: Some(&users[sender_index].id),
            tolist: &tolist,
            roomid: &room.id,
            msgtime: time_ms,
            msgtime_as_string: false,
            msgtype,
            payload: &payload,
        },
        &mut text,
    );
    Generated::Counted(text.into_bytes())
}

/// A `msgtime` planted as a string that is no number.
pub const BAD_TIME_TEXT: &str = "昨天";

/// Lines pushed last, in the first room, so that earlier lines stay as they were: a
/// `msgtime` of `i64::MAX`, one of [`BAD_TIME_TEXT`], and a file from a member listed in
/// `users.json` titled `<name>的简历.pdf` (the file under `media/`). Returns the number of lines.
fn plant_hard_rows(
    opts: &SimOptions,
    rooms: &[Room],
    users: &[User],
    archive: &mut Archive,
) -> Result<usize, SimError> {
    let Some(room) = rooms.first() else {
        return Ok(0);
    };
    let Some(&member) = room.members.iter().find(|&&m| users[m].listed) else {
        return Ok(0);
    };
    let from = &users[member];
    let time = opts.now_ms - 60 * SECOND_MS;
    let line = |msgid: &str, msgtime: &str, msgtype: &str, payload: &str| {
        let mut out = String::new();
        Obj::new(&mut out)
            .str("msgid", msgid)
            .str("action", "send")
            .str("from", &from.id)
            .raw("tolist", "[]")
            .str("roomid", &room.id)
            .raw("msgtime", msgtime)
            .str("msgtype", msgtype)
            .raw(msgtype, payload)
            .end();
        out.into_bytes()
    };
    let text = |t: &str| {
        let mut payload = String::new();
        Obj::new(&mut payload).str("content", t).end();
        payload
    };
    let name = format!("{}的简历.pdf", from.name);
    let bytes = media::document(&mut seeded_rng(opts.seed, 9), "pdf", 640);
    let md5 = md5_hex(&bytes);
    if opts.media_files {
        write_file_at(
            &opts.out.join(super::MEDIA_DIR).join(format!("{md5}.pdf")),
            &bytes,
            time,
        )?;
    }
    let mut file = String::new();
    Obj::new(&mut file)
        .str("filename", &name)
        .str("fileext", "pdf")
        .str("md5sum", &md5)
        .num("filesize", bytes.len() as i64)
        .end();
    let mut bad_text = String::new();
    push_json_str(&mut bad_text, BAD_TIME_TEXT);
    let lines = [
        line(
            "hard_time_max",
            &i64::MAX.to_string(),
            "text",
            &text("来自很远的未来"),
        ),
        line("hard_time_text", &bad_text, "text", &text("时间是一个词")),
        line("hard_named_file", &time.to_string(), "file", &file),
    ];
    let count = lines.len();
    for l in lines {
        archive.push(l, false)?;
    }
    Ok(count)
}

fn write_users(opts: &SimOptions, users: &[User]) -> Result<(), SimError> {
    let path = opts.out.join(super::USERS_FILE);
    let list: Vec<serde_json::Value> = users
        .iter()
        .filter(|u| u.listed)
        .map(|u| {
            serde_json::json!({
                "userid": u.id,
                "name": u.name,
                "kind": if u.external { "external" } else { "internal" },
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&list).map_err(|e| SimError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    fs::write(&path, text).map_err(io_error(&path))
}

fn write_groups(
    opts: &SimOptions,
    rooms: &[Room],
    users: &[User],
    rng: &mut SimRng,
    edges: &mut Edges,
    span_start: i64,
) -> Result<(), SimError> {
    let dir = opts.out.join(super::GROUPS_DIR);
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    for (index, room) in rooms.iter().enumerate() {
        // One group (not the first, nor a sized one) has messages but no file: no name, no
        // member list.
        if index > 0
            && index == rooms.len() - 1
            && plant::sized_members(opts, index).is_none()
            && edges.hit("group without a file", 0.0)
        {
            continue;
        }
        let created_s = (span_start - rng.gen_range(DAY_MS..100 * DAY_MS)) / SECOND_MS;
        let members: Vec<serde_json::Value> = room
            .members
            .iter()
            .enumerate()
            .map(|(position, &user)| {
                let joined = if position == 0 {
                    created_s
                } else {
                    created_s + rng.gen_range(0..DAY_MS / SECOND_MS)
                };
                serde_json::json!({ "memberid": users[user].id, "jointime": joined })
            })
            .collect();
        let name = edge::group_name(rng, room.kind);
        let value = serde_json::json!({
            "roomid": room.id,
            "roomname": name,
            "creator": users[room.members[0]].id,
            "room_create_time": created_s,
            "notice": "请大家遵守群规，不要发广告",
            "members": members,
        });
        let path = dir.join(format!("{}.json", room.id));
        let text = serde_json::to_string_pretty(&value).map_err(|e| SimError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        fs::write(&path, text).map_err(io_error(&path))?;
    }
    Ok(())
}

enum Generated {
    /// A group message the importer exports, safe to duplicate.
    Counted(Vec<u8>),
    /// A group message the importer exports, but whose id depends on where it lands.
    CountedOnce(Vec<u8>),
    /// A line the importer cannot export.
    Lost(Vec<u8>),
}

struct Generator {
    text: String,
    payload: String,
    malformed_seen: usize,
}

/// The kinds of malformed lines, each produced at least once.
const MALFORMED: usize = 7;

impl Generator {
    #[allow(clippy::too_many_arguments)]
    fn group_message(
        &mut self,
        rng: &mut SimRng,
        edges: &mut Edges,
        media_writer: &mut MediaWriter,
        users: &[User],
        room: &mut Room,
        index: usize,
        time_ms: i64,
    ) -> Result<Generated, SimError> {
        let sender_index = match room.stranger {
            Some(stranger) if rng.gen_bool(0.02) => stranger,
            _ => room.members[rng.gen_range(0..room.members.len())],
        };
        let sender = &users[sender_index];
        let msgid = format!(
            "{}{:08}_{}{}",
            random_digits(rng, 11),
            index,
            time_ms / SECOND_MS,
            if sender.external { "_external" } else { "" }
        );
        let tolist: Vec<&str> = room
            .members
            .iter()
            .filter(|&&m| m != sender_index)
            .take(8)
            .map(|&m| users[m].id.as_str())
            .collect();

        let mut msgtype: &str = match rng.gen_range(0..100) {
            0..=69 => "text",
            70..=77 => "image",
            78..=81 => "voice",
            82..=83 => "video",
            84..=86 => "file",
            87..=88 => "link",
            89 => "location",
            90..=93 => "emotion",
            94 => "redpacket",
            95..=97 => "revoke",
            _ => UNKNOWN_TYPES[rng.gen_range(0..UNKNOWN_TYPES.len())],
        };
        if msgtype == "revoke" && room.last_msgid.is_none() {
            msgtype = "text";
        }
        self.payload.clear();
        let mut action = "send";
        match msgtype {
            "text" => {
                let content = if edges.hit("nasty text", 1.0) {
                    let names: Vec<&str> = room
                        .members
                        .iter()
                        .take(10)
                        .map(|&m| users[m].name.as_str())
                        .collect();
                    edge::nasty_text(rng, &names)
                } else if edges.hit("ten thousand characters", 0.01) {
                    edge::long_text(10_000)
                } else if edges.hit("personal data", 0.5) {
                    edge::text_with_pii(rng)
                } else {
                    edge::chat_text(rng, room.kind)
                };
                Obj::new(&mut self.payload).str("content", &content).end();
            }
            "image" => {
                let len = rng.gen_range(1_000..16_000);
                let (md5, size) =
                    media_writer.write(edges, "jpg", |r| media::jpeg(r, len), time_ms)?;
                Obj::new(&mut self.payload)
                    .str("md5sum", &md5)
                    .num("filesize", size as i64)
                    .str("sdkfileid", &random_alnum(rng, 24))
                    .end();
            }
            "voice" => {
                let seconds = rng.gen_range(1..60u32);
                let (md5, size) =
                    media_writer.write(edges, "amr", |r| media::amr(r, seconds * 1000), time_ms)?;
                Obj::new(&mut self.payload)
                    .str("md5sum", &md5)
                    .num("voice_size", size as i64)
                    .num("play_length", i64::from(seconds))
                    .str("sdkfileid", &random_alnum(rng, 24))
                    .end();
            }
            "video" => {
                let seconds = rng.gen_range(1..120);
                let len = rng.gen_range(4_000..64_000);
                let (md5, size) =
                    media_writer.write(edges, "mp4", |r| media::mp4(r, len), time_ms)?;
                Obj::new(&mut self.payload)
                    .str("md5sum", &md5)
                    .num("filesize", size as i64)
                    .num("play_length", seconds)
                    .str("sdkfileid", &random_alnum(rng, 24))
                    .end();
            }
            "file" => {
                let (stem, extension) = edge::file_name(rng.gen_range(0..edge::FILE_NAME_COUNT));
                let len = rng.gen_range(500..32_000);
                let (md5, size) = media_writer.write(
                    edges,
                    extension,
                    |r| media::document(r, extension, len),
                    time_ms,
                )?;
                Obj::new(&mut self.payload)
                    .str("filename", &format!("{stem}.{extension}"))
                    .str("fileext", extension)
                    .str("md5sum", &md5)
                    .num("filesize", size as i64)
                    .str("sdkfileid", &random_alnum(rng, 24))
                    .end();
            }
            "link" => {
                Obj::new(&mut self.payload)
                    .str("title", "企业微信使用指南")
                    .str("description", "十分钟上手会话存档")
                    .str(
                        "link_url",
                        &format!(
                            "https://work.weixin.qq.com/help?id={}",
                            rng.gen_range(1..99999)
                        ),
                    )
                    .str("image_url", "https://example.invalid/cover.png")
                    .end();
            }
            "location" => {
                Obj::new(&mut self.payload)
                    .raw("longitude", &format!("{:.6}", 121.0 + rng.gen::<f64>()))
                    .raw("latitude", &format!("{:.6}", 31.0 + rng.gen::<f64>()))
                    .str("address", "上海市浦东新区世纪大道100号")
                    .str("title", "环球金融中心")
                    .num("zoom", 15)
                    .end();
            }
            "emotion" => {
                Obj::new(&mut self.payload)
                    .num("type", rng.gen_range(1..3))
                    .num("width", 240)
                    .num("height", 240)
                    .num("imagesize", rng.gen_range(2_000..90_000))
                    .str("md5sum", &random_hex(rng, 32))
                    .end();
            }
            "redpacket" => {
                let count = rng.gen_range(1..20);
                Obj::new(&mut self.payload)
                    .num("type", rng.gen_range(1..4))
                    .str("wish", "恭喜发财，大吉大利")
                    .num("totalcnt", count)
                    .num("totalamount", count * rng.gen_range(1..2000))
                    .end();
            }
            "revoke" => {
                action = "recall";
                let pre = room.last_msgid.clone().unwrap_or_default();
                Obj::new(&mut self.payload).str("pre_msgid", &pre).end();
            }
            unknown => {
                Obj::new(&mut self.payload)
                    .str("title", unknown)
                    .num("endtime", time_ms / SECOND_MS)
                    .end();
            }
        }

        let mut line = Line {
            msgid: Some(&msgid),
            action,
            from: Some(&sender.id),
            tolist: &tolist,
            roomid: &room.id,
            msgtime: time_ms,
            msgtime_as_string: false,
            msgtype,
            payload: &self.payload,
        };
        let malformed = if edges.hit("malformed line", 0.2) {
            let variant = if self.malformed_seen < MALFORMED {
                self.malformed_seen
            } else {
                rng.gen_range(0..MALFORMED)
            };
            self.malformed_seen += 1;
            Some(variant)
        } else {
            None
        };
        let wrong_payload = "{\"content\":12345}";
        let mut invalid_utf8 = false;
        match malformed {
            Some(1) => line.msgtime_as_string = true,
            Some(2) => line.from = None,
            Some(3) => line.msgid = None,
            Some(4) => {
                line.msgtype = "text";
                line.payload = wrong_payload;
            }
            Some(6) => {
                line.msgtype = "text";
                line.payload = "{\"content\":\"坏字节INVALID_UTF8_MARK结束\"}";
                invalid_utf8 = true;
            }
            _ => {}
        }
        serialize(&line, &mut self.text);
        let mut bytes = self.text.as_bytes().to_vec();
        if invalid_utf8 {
            bytes = replace_bytes(&bytes, b"INVALID_UTF8_MARK", b"\xff\xfe");
        }
        let generated = match malformed {
            // Bad JSON: a line cut short. Never exported.
            Some(0) => {
                let keep = bytes.len() / 2;
                bytes.truncate(keep);
                return Ok(Generated::Lost(bytes));
            }
            // Not an object at all.
            Some(5) => return Ok(Generated::Lost(b"[\"not\", \"a\", \"message\"]".to_vec())),
            Some(3) => Generated::CountedOnce(bytes),
            _ => Generated::Counted(bytes),
        };
        if line.msgid.is_some() {
            room.last_msgid = Some(msgid);
        }
        Ok(generated)
    }

    fn private_message(
        &mut self,
        rng: &mut SimRng,
        from: &User,
        to: &User,
        index: usize,
        time_ms: i64,
    ) -> Vec<u8> {
        self.payload.clear();
        Obj::new(&mut self.payload)
            .str("content", &edge::chat_text(rng, GroupKind::Other))
            .end();
        let msgid = format!(
            "{}{:08}_{}_p",
            random_digits(rng, 11),
            index,
            time_ms / SECOND_MS
        );
        let tolist = [to.id.as_str()];
        serialize(
            &Line {
                msgid: Some(&msgid),
                action: "send",
                from: Some(&from.id),
                tolist: &tolist,
                roomid: "",
                msgtime: time_ms,
                msgtime_as_string: false,
                msgtype: "text",
                payload: &self.payload,
            },
            &mut self.text,
        );
        self.text.as_bytes().to_vec()
    }
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    match haystack.windows(needle.len()).position(|w| w == needle) {
        Some(at) => {
            let mut out = haystack[..at].to_vec();
            out.extend_from_slice(with);
            out.extend_from_slice(&haystack[at + needle.len()..]);
            out
        }
        None => haystack.to_vec(),
    }
}
