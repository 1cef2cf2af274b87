//! `simulate wecom --continue`: more of an archive the WeCom simulator wrote
//! ([`MoreOptions`]). What the source holds is learned from the source itself, read line by
//! line with the importer's own interpretation (`record`), so that "newest" is the newest
//! time an export can place: the hard rows' `msgtime` of `i64::MAX` or of a word are
//! untimed and do not count.
//!
//! What a continuation writes, and what a test can rely on:
//! - One new archive file, `archive/chatdata_<N>.jsonl`, N one more than the largest number
//!   in use. Its name sorts after every existing file, so at an equal time a new line comes
//!   after the old ones in source order, and an export places it after them. It holds
//!   well-formed `send` records only (no malformed or repeated lines), the `recall` records
//!   asked for, and a few `switch` records, in time order.
//! - `messages` group messages from the newest message time on, over `days` days, in the
//!   existing rooms and the new ones. The first room in the exporter's order (smallest
//!   roomid) that has a timed message gets its first new message at exactly that room's
//!   newest time; every other new line is at or after the source's newest time. The mix of
//!   kinds is the simulator's, without its `revoke` records: the only recall records are the
//!   `recalls` asked for. Media files are written as the simulator writes them (none with
//!   `media_files` off, and none of its edge cases).
//! - `joins` members appended to each existing `groups/<roomid>.json`, with a `jointime` in
//!   the new period; some of them send. A room without a groups file has no member list to
//!   join. WeCom archives have no system messages, so a join writes no line.
//! - New groups: a `groups/<roomid>.json` each (creator, name, members), and a share of the
//!   messages, at least one each when there are enough messages.
//! - New users are appended to `users.json`; existing entries stay byte for byte, so no old
//!   message's sender name changes.
//! - A recall is a new `action: "recall"` record by the original sender naming the message in
//!   `revoke.pre_msgid` (the archive keeps the recalled message unchanged); it counts among
//!   the new group messages.
//! - A deletion removes the message's line from its archive file, which is rewritten
//!   otherwise byte for byte (a cut last line included).
//! - Recalls and deletions pick timed, well-formed messages whose msgid appears once, that
//!   are not recall records, red packets, announcements or hard rows, and that no earlier
//!   recall names. A deleted line also has no msgid-less line after it in its file: such a
//!   line is known by its `file:line`, which the deletion would shift.
//! - Both pick from the 24 hours before the newest message time: WeCom lets a sender recall
//!   a message for 24 hours (the recall record falls in that window too), and a deletion
//!   there is one the latest increment holds, which is all an export `--after` it compares
//!   with. Deletions fall back on older messages when too few recent ones qualify.
//! - Ids stay unique: message indices continue after the largest in use, user indices too,
//!   random parts are checked against those in use.
//!
//! Anything that is not this simulator's layout (no `users.json` or `groups/`, unreadable
//! directory files, an encrypted archive), or a request it cannot honour (more recalls and
//! deletions than messages that qualify, no newest time), is refused with
//! [`SimError::CannotContinue`] before anything is written.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::Value;

use super::archive::{self, regular_files, WarningLog};
use super::record::{self, Conversation, Entry, Outcome};
use super::simulate::{capitalized, random_alnum, serialize, Line, Obj, PINYIN, UNKNOWN_TYPES};
use super::{ARCHIVE_DIR, GROUPS_DIR, MEDIA_DIR, USERS_FILE};
use crate::records::{representable_ms, Kind};
use crate::simulate::edge::{self, GroupKind};
use crate::simulate::{
    io_error, md5_hex, media, random_digits, random_hex, seeded_rng, write_file_at, MoreOptions,
    MoreReport, SimError, SimRng, TimeSpread, DAY_MS, SECOND_MS,
};

/// The archive files' names: `chatdata_<number>.jsonl`.
const FILE_PREFIX: &str = "chatdata_";
/// How long after sending WeCom lets a message be recalled.
const RECENT_MS: i64 = DAY_MS;
/// Words by which `check` finds an announcement: such messages are left alone.
const ANNOUNCEMENT_WORDS: [&str; 3] = ["解散", "停用", "dissolve"];

fn cannot(root: &Path, reason: impl Into<String>) -> SimError {
    SimError::CannotContinue {
        root: root.to_path_buf(),
        reason: reason.into(),
    }
}

/// A message a continuation may recall or delete.
#[derive(Debug, Clone)]
struct Target {
    /// Index into [`Known::archive`].
    file: usize,
    /// 0-based line index in that file.
    line: usize,
    msgid: String,
    room: String,
    sender: String,
    time_ms: i64,
    /// No msgid-less line follows it in its file.
    deletable: bool,
}

/// A room as the source knows it.
#[derive(Debug, Default)]
struct KnownRoom {
    /// `groups/<roomid>.json` and its content, when the room has one.
    file: Option<(PathBuf, Value)>,
    /// From the groups file, in its order.
    members: Vec<String>,
    /// Who sent its messages, for a room without a member list.
    senders: BTreeSet<String>,
    newest_ms: Option<i64>,
}

/// What a continuation learns from the source.
#[derive(Debug, Default)]
struct Known {
    /// `archive/*.jsonl`, in name order: (name, path).
    archive: Vec<(String, PathBuf)>,
    /// By roomid, in the exporter's order.
    rooms: BTreeMap<String, KnownRoom>,
    /// `users.json` as it is.
    users: Vec<Value>,
    /// Every user id in use (directory, member lists, senders).
    user_ids: HashSet<String>,
    /// Ids of external users (`users.json` kind, or the `wm` prefix).
    external: HashSet<String>,
    /// Every msgid in use, `switch` records included.
    msgids: HashSet<String>,
    /// Msgids that appear on more than one line.
    repeated: HashSet<String>,
    /// Messages some recall record names.
    recalled: HashSet<String>,
    newest_ms: Option<i64>,
    next_message_index: u64,
    next_user_index: u64,
    targets: Vec<Target>,
}

/// The message index a simulated msgid carries: `<11 digits><index>_<seconds>…`.
fn message_index(msgid: &str) -> Option<u64> {
    let (head, _) = msgid.split_once('_')?;
    if head.len() < 19 || !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    head.get(11..)?.parse().ok()
}

/// The index an internal user id ends with (`ZhangWang12`).
fn user_index(id: &str) -> Option<u64> {
    if id.starts_with("wm") {
        return None;
    }
    let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    id.get(id.len() - digits..)?.parse().ok()
}

fn max_time(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl Known {
    fn read(root: &Path) -> Result<Known, SimError> {
        let not_ours = |what: &str| {
            cannot(
                root,
                format!(
                    "{what}: continue only an account directory `chatvault simulate wecom` wrote"
                ),
            )
        };
        if !root.join(ARCHIVE_DIR).is_dir() {
            return Err(not_ours(
                "no archive/ directory, so not a WeCom session archive",
            ));
        }
        match super::probe(root) {
            Ok(true) => {}
            Ok(false) => return Err(not_ours("no archive/*.jsonl file")),
            Err(e) => return Err(not_ours(&e.to_string())),
        }
        let mut known = Known::default();
        known.read_users(root)?;
        known.read_groups(root)?;
        let files = regular_files(root, ARCHIVE_DIR, "jsonl", &mut WarningLog::default())
            .map_err(|e| not_ours(&e.to_string()))?;
        known.archive = files
            .into_iter()
            .map(|f| {
                let name = f
                    .rel_path
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                (name, f.path)
            })
            .collect();
        for file in 0..known.archive.len() {
            known.read_archive_file(file)?;
        }
        known.targets.retain(|t| !known.repeated.contains(&t.msgid));
        for room in known.rooms.values() {
            known.user_ids.extend(room.members.iter().cloned());
            known.user_ids.extend(room.senders.iter().cloned());
        }
        known.next_user_index = known
            .user_ids
            .iter()
            .filter_map(|id| user_index(id))
            .max()
            .map_or(0, |i| i.saturating_add(1));
        known.external.extend(
            known
                .user_ids
                .iter()
                .filter(|id| id.starts_with("wm"))
                .cloned(),
        );
        Ok(known)
    }

    fn read_users(&mut self, root: &Path) -> Result<(), SimError> {
        let path = root.join(USERS_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(cannot(
                    root,
                    format!("{USERS_FILE} is missing: new members would have no names (the simulator always writes it)"),
                ))
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        let Ok(Value::Array(users)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(cannot(
                root,
                format!("{USERS_FILE} is not a JSON array of users: fix or restore it first"),
            ));
        };
        for user in &users {
            let Some(id) = user.get("userid").and_then(Value::as_str) else {
                return Err(cannot(
                    root,
                    format!("{USERS_FILE} has an entry without a `userid` string"),
                ));
            };
            self.user_ids.insert(id.to_string());
            if user.get("kind").and_then(Value::as_str) == Some("external") {
                self.external.insert(id.to_string());
            }
        }
        self.users = users;
        Ok(())
    }

    fn read_groups(&mut self, root: &Path) -> Result<(), SimError> {
        if !root.join(GROUPS_DIR).is_dir() {
            return Err(cannot(
                root,
                format!("no {GROUPS_DIR}/ directory: joins have no member list to go to (the simulator always writes it)"),
            ));
        }
        let files = regular_files(root, GROUPS_DIR, "json", &mut WarningLog::default())
            .map_err(|e| cannot(root, e.to_string()))?;
        for file in files {
            let bad = |why: &str| {
                cannot(
                    root,
                    format!("{}: {why}; fix or restore it first", file.rel_path),
                )
            };
            let bytes = fs::read(&file.path).map_err(io_error(&file.path))?;
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(&format!("not JSON ({e})")))?;
            let Some(object) = value.as_object() else {
                return Err(bad("not a JSON object"));
            };
            let stem = file
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let id = object
                .get("roomid")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .map_or(stem, str::to_string);
            let mut members = Vec::new();
            match object.get("members") {
                Some(Value::Array(list)) => {
                    for member in list {
                        let Some(member_id) = member.get("memberid").and_then(Value::as_str) else {
                            return Err(bad("a member without a `memberid` string"));
                        };
                        if !members.iter().any(|m| m == member_id) {
                            members.push(member_id.to_string());
                        }
                    }
                }
                _ => return Err(bad("no `members` array")),
            }
            if self.rooms.contains_key(&id) {
                return Err(bad(&format!("a second file for group `{id}`")));
            }
            self.rooms.insert(
                id,
                KnownRoom {
                    file: Some((file.path, value)),
                    members,
                    ..KnownRoom::default()
                },
            );
        }
        Ok(())
    }

    /// Reads one archive file's lines as the importer does (same numbering, same rules).
    fn read_archive_file(&mut self, file: usize) -> Result<(), SimError> {
        let (name, path) = &self.archive[file];
        let rel_path = format!("{ARCHIVE_DIR}/{name}");
        let bytes = fs::read(path).map_err(io_error(path))?;
        let first_target = self.targets.len();
        let mut last_unstable: Option<usize> = None;
        for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let raw = if index == 0 {
                raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
            } else {
                raw
            };
            let line = raw.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let location = format!("{rel_path}:{}", index + 1);
            let outcome = match record::interpret_fast(line) {
                Some(outcome) => outcome,
                None => match archive::parse(line) {
                    Ok((value, _)) => record::interpret(&value, &location),
                    // Not JSON: never exported, and known by no id.
                    Err(_) => continue,
                },
            };
            match outcome {
                Outcome::Switch => {
                    if let Ok(value) = serde_json::from_slice::<Value>(line) {
                        if let Some(id) = value.get("msgid").and_then(Value::as_str) {
                            self.msgids.insert(id.to_string());
                        }
                    }
                }
                // Some reader may still know it by its place.
                Outcome::Unusable(_) => last_unstable = Some(index),
                Outcome::Message(entry) => {
                    let by_place = entry.message_id == location
                        || entry
                            .warning
                            .as_deref()
                            .is_some_and(|w| w.contains("msgid"));
                    if by_place {
                        last_unstable = Some(index);
                    }
                    self.message(&entry, file, index, by_place);
                }
            }
        }
        for target in &mut self.targets[first_target..] {
            target.deletable = last_unstable.is_none_or(|u| target.line > u);
        }
        Ok(())
    }

    fn message(&mut self, entry: &Entry, file: usize, line: usize, by_place: bool) {
        let id = &entry.message_id;
        if !self.msgids.insert(id.clone()) {
            self.repeated.insert(id.clone());
        }
        if let Some(index) = message_index(id) {
            self.next_message_index = self.next_message_index.max(index.saturating_add(1));
        }
        if let Some(time) = entry.time_ms {
            self.newest_ms = max_time(self.newest_ms, time);
        }
        if entry.kind == Kind::Recall {
            if let Some(pre) = entry.text.strip_prefix("[recall] ") {
                self.recalled.insert(pre.to_string());
            }
        }
        let Conversation::Room(room_id) = &entry.conversation else {
            if let Some(sender) = &entry.sender_id {
                self.user_ids.insert(sender.clone());
            }
            return;
        };
        let room = self.rooms.entry(room_id.clone()).or_default();
        if let Some(time) = entry.time_ms {
            room.newest_ms = max_time(room.newest_ms, time);
        }
        let Some(sender) = &entry.sender_id else {
            return;
        };
        room.senders.insert(sender.clone());
        let Some(time_ms) = entry.time_ms else {
            return;
        };
        let plain = entry.warning.is_none()
            && !by_place
            && !matches!(entry.kind, Kind::Recall | Kind::System | Kind::RedPacket)
            && !id.starts_with("hard_")
            && !ANNOUNCEMENT_WORDS.iter().any(|w| entry.text.contains(w));
        if plain {
            self.targets.push(Target {
                file,
                line,
                msgid: id.clone(),
                room: room_id.clone(),
                sender: sender.clone(),
                time_ms,
                deletable: false,
            });
        }
    }

    /// The name of the archive file a continuation writes: it must sort after every other.
    fn next_archive_name(&self, root: &Path) -> Result<String, SimError> {
        let largest = self
            .archive
            .iter()
            .filter_map(|(name, _)| {
                name.strip_prefix(FILE_PREFIX)?
                    .strip_suffix(".jsonl")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        let name = format!("{FILE_PREFIX}{:03}.jsonl", largest.saturating_add(1));
        let last = self.archive.iter().map(|(n, _)| n.as_str()).max();
        if last.is_some_and(|last| last >= name.as_str())
            || root.join(ARCHIVE_DIR).join(&name).exists()
        {
            return Err(cannot(
                root,
                format!(
                    "a new archive file would not sort after {}: new lines would be read before old ones",
                    last.unwrap_or_default()
                ),
            ));
        }
        Ok(name)
    }

    /// Picks the messages to recall and those to delete (never the same one), from the
    /// last [`RECENT_MS`] before `newest_ms`: WeCom lets a sender recall only that long, and a
    /// deletion there is one the latest export holds (an increment compares with its
    /// predecessor's rows only). Deletions fall back on older messages when too few are recent.
    fn pick_targets(
        &self,
        root: &Path,
        newest_ms: i64,
        recalls: usize,
        deletions: usize,
        rng: &mut SimRng,
    ) -> Result<(Vec<Target>, Vec<Target>), SimError> {
        let recent = |t: &&Target| t.time_ms > newest_ms - RECENT_MS;
        let mut order: Vec<&Target> = self.targets.iter().filter(recent).collect();
        order.shuffle(rng);
        let mut older: Vec<&Target> = self.targets.iter().filter(|t| !recent(t)).collect();
        older.shuffle(rng);
        let mut recalled = Vec::with_capacity(recalls);
        let mut deleted = Vec::with_capacity(deletions);
        for target in &order {
            if recalled.len() < recalls && !self.recalled.contains(&target.msgid) {
                recalled.push((*target).clone());
            } else if deleted.len() < deletions && target.deletable {
                deleted.push((*target).clone());
            }
        }
        for target in older {
            if deleted.len() < deletions && target.deletable {
                deleted.push(target.clone());
            }
        }
        if recalled.len() < recalls || deleted.len() < deletions {
            return Err(cannot(
                root,
                format!(
                    "asked for {recalls} recalls and {deletions} deletions, but only {} and {} messages qualify \
                     (timed, well-formed, a msgid of their own, not a recall, red packet, announcement or hard row; \
                     a recall within 24 hours of the newest message); ask for fewer",
                    recalled.len(),
                    deleted.len()
                ),
            ));
        }
        Ok((recalled, deleted))
    }
}

/// Someone who may send in a room from a time on.
#[derive(Debug, Clone)]
struct Sender {
    id: String,
    from_ms: i64,
    joined_now: bool,
}

/// A room new traffic goes to.
#[derive(Debug)]
struct TrafficRoom {
    id: String,
    kind: GroupKind,
    senders: Vec<Sender>,
}

impl TrafficRoom {
    /// Someone who may send at `time_ms`; a member who joined now with some chance.
    fn sender(&self, rng: &mut SimRng, time_ms: i64) -> Option<&Sender> {
        let eligible: Vec<&Sender> = self
            .senders
            .iter()
            .filter(|s| s.from_ms <= time_ms)
            .collect();
        let joiners: Vec<&Sender> = eligible.iter().copied().filter(|s| s.joined_now).collect();
        if !joiners.is_empty() && rng.gen_bool(0.25) {
            return joiners.choose(rng).copied();
        }
        eligible.choose(rng).copied()
    }

    fn tolist(&self, sender: &str) -> Vec<&str> {
        self.senders
            .iter()
            .map(|s| s.id.as_str())
            .filter(|&id| id != sender)
            .take(8)
            .collect()
    }
}

/// New users, with ids unique among those in use.
struct NewUsers<'a> {
    known: &'a mut Known,
    entries: Vec<Value>,
}

impl NewUsers<'_> {
    fn add(&mut self, rng: &mut SimRng, external: bool) -> String {
        let id = loop {
            let id = if external {
                format!("wm{}", random_alnum(rng, 30))
            } else {
                let first = PINYIN[rng.gen_range(0..PINYIN.len())];
                let second = PINYIN[rng.gen_range(0..PINYIN.len())];
                let index = self.known.next_user_index;
                self.known.next_user_index = index.saturating_add(1);
                format!("{}{}{index}", capitalized(first), capitalized(second))
            };
            if self.known.user_ids.insert(id.clone()) {
                break id;
            }
        };
        let name = if external {
            edge::nickname(rng)
        } else {
            edge::person_name(rng)
        };
        if external {
            self.known.external.insert(id.clone());
        }
        self.entries.push(serde_json::json!({
            "userid": id,
            "name": name,
            "kind": if external { "external" } else { "internal" },
        }));
        id
    }
}

/// Media of new messages under `media/`, named by md5sum as the simulator names them.
struct MediaOut {
    dir: PathBuf,
    enabled: bool,
    rng: SimRng,
    written: usize,
}

impl MediaOut {
    /// The md5sum and size a message names.
    fn write(
        &mut self,
        extension: &str,
        bytes: impl FnOnce(&mut SimRng) -> Vec<u8>,
        time_ms: i64,
    ) -> Result<(String, u64), SimError> {
        if !self.enabled {
            let size = self.rng.gen_range(1_000..200_000u64);
            return Ok((random_hex(&mut self.rng, 32), size));
        }
        let data = bytes(&mut self.rng);
        let md5 = md5_hex(&data);
        let path = self.dir.join(format!("{md5}.{extension}"));
        // The same name is the same content: a file already there stays as it is.
        if fs::symlink_metadata(&path).is_err() {
            write_file_at(&path, &data, time_ms)?;
            self.written += 1;
        }
        Ok((md5, data.len() as u64))
    }
}

/// The lines of the new archive file, with their times.
struct NewLines {
    lines: Vec<(i64, Vec<u8>)>,
    group_messages: usize,
}

/// A new msgid, unique among those in use: `<11 digits><index>_<seconds>[_external]`.
fn new_msgid(known: &mut Known, rng: &mut SimRng, time_ms: i64, external: bool) -> String {
    loop {
        let index = known.next_message_index;
        known.next_message_index = index.saturating_add(1);
        let id = format!(
            "{}{index:08}_{}{}",
            random_digits(rng, 11),
            time_ms.div_euclid(SECOND_MS),
            if external { "_external" } else { "" }
        );
        if known.msgids.insert(id.clone()) {
            return id;
        }
    }
}

/// The payload of a new message of a random kind: (msgtype, payload JSON).
fn payload(
    rng: &mut SimRng,
    media_out: &mut MediaOut,
    kind: GroupKind,
    time_ms: i64,
) -> Result<(&'static str, String), SimError> {
    let mut payload = String::new();
    let msgtype = match rng.gen_range(0..100) {
        // 95..=97 are the simulator's recalls: a continuation writes only those asked for.
        0..=69 | 95..=97 => {
            let content = edge::chat_text(rng, kind);
            Obj::new(&mut payload).str("content", &content).end();
            "text"
        }
        70..=77 => {
            let len = rng.gen_range(1_000..16_000);
            let (md5, size) = media_out.write("jpg", |r| media::jpeg(r, len), time_ms)?;
            Obj::new(&mut payload)
                .str("md5sum", &md5)
                .num("filesize", size as i64)
                .str("sdkfileid", &random_alnum(rng, 24))
                .end();
            "image"
        }
        78..=81 => {
            let seconds = rng.gen_range(1..60u32);
            let (md5, size) = media_out.write("amr", |r| media::amr(r, seconds * 1000), time_ms)?;
            Obj::new(&mut payload)
                .str("md5sum", &md5)
                .num("voice_size", size as i64)
                .num("play_length", i64::from(seconds))
                .str("sdkfileid", &random_alnum(rng, 24))
                .end();
            "voice"
        }
        82..=83 => {
            let seconds = rng.gen_range(1..120);
            let len = rng.gen_range(4_000..64_000);
            let (md5, size) = media_out.write("mp4", |r| media::mp4(r, len), time_ms)?;
            Obj::new(&mut payload)
                .str("md5sum", &md5)
                .num("filesize", size as i64)
                .num("play_length", seconds)
                .str("sdkfileid", &random_alnum(rng, 24))
                .end();
            "video"
        }
        84..=86 => {
            let (stem, extension) = edge::file_name(rng.gen_range(0..edge::FILE_NAME_COUNT));
            let len = rng.gen_range(500..32_000);
            let (md5, size) =
                media_out.write(extension, |r| media::document(r, extension, len), time_ms)?;
            Obj::new(&mut payload)
                .str("filename", &format!("{stem}.{extension}"))
                .str("fileext", extension)
                .str("md5sum", &md5)
                .num("filesize", size as i64)
                .str("sdkfileid", &random_alnum(rng, 24))
                .end();
            "file"
        }
        87..=88 => {
            let url = format!(
                "https://work.weixin.qq.com/help?id={}",
                rng.gen_range(1..99999)
            );
            Obj::new(&mut payload)
                .str("title", "企业微信使用指南")
                .str("description", "十分钟上手会话存档")
                .str("link_url", &url)
                .str("image_url", "https://example.invalid/cover.png")
                .end();
            "link"
        }
        89 => {
            Obj::new(&mut payload)
                .raw("longitude", &format!("{:.6}", 121.0 + rng.gen::<f64>()))
                .raw("latitude", &format!("{:.6}", 31.0 + rng.gen::<f64>()))
                .str("address", "上海市浦东新区世纪大道100号")
                .str("title", "环球金融中心")
                .num("zoom", 15)
                .end();
            "location"
        }
        90..=93 => {
            Obj::new(&mut payload)
                .num("type", rng.gen_range(1..3))
                .num("width", 240)
                .num("height", 240)
                .num("imagesize", rng.gen_range(2_000..90_000))
                .str("md5sum", &random_hex(rng, 32))
                .end();
            "emotion"
        }
        94 => {
            let count = rng.gen_range(1..20);
            Obj::new(&mut payload)
                .num("type", rng.gen_range(1..4))
                .str("wish", "恭喜发财，大吉大利")
                .num("totalcnt", count)
                .num("totalamount", count * rng.gen_range(1..2000))
                .end();
            "redpacket"
        }
        _ => {
            let unknown = UNKNOWN_TYPES[rng.gen_range(0..UNKNOWN_TYPES.len())];
            Obj::new(&mut payload)
                .str("title", unknown)
                .num("endtime", time_ms.div_euclid(SECOND_MS))
                .end();
            unknown
        }
    };
    Ok((msgtype, payload))
}

fn line_bytes(line: &Line) -> Vec<u8> {
    let mut text = String::new();
    serialize(line, &mut text);
    text.into_bytes()
}

/// Writes `bytes` beside `path` and renames it over `path`, so that a reader never sees a
/// half-written file.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".continuing");
    let temporary = path.with_file_name(name);
    fs::write(&temporary, bytes).map_err(io_error(&temporary))?;
    fs::rename(&temporary, path).map_err(io_error(path))
}

fn pretty(path: &Path, value: &impl serde::Serialize) -> Result<Vec<u8>, SimError> {
    serde_json::to_vec_pretty(value).map_err(|e| SimError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// `bytes` without the lines at `drop` (0-based, `\n`-separated), everything else as it was.
fn without_lines(bytes: &[u8], drop: &BTreeSet<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (index, segment) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        if !drop.contains(&index) {
            out.extend_from_slice(segment);
        }
    }
    out
}

pub fn simulate_more_wecom(opts: &MoreOptions) -> Result<MoreReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    let root = opts.root.as_path();
    let mut known = Known::read(root)?;
    let Some(newest_ms) = known.newest_ms else {
        return Err(cannot(
            root,
            "its archive holds no message with a time an export can place: there is no newest message to continue after",
        ));
    };
    let span_ms = i64::from(opts.days) * DAY_MS;
    let Some(end_ms) = newest_ms.checked_add(span_ms).and_then(representable_ms) else {
        return Err(cannot(
            root,
            format!(
                "{} days after its newest message is past the year 9999",
                opts.days
            ),
        ));
    };
    let archive_name = known.next_archive_name(root)?;
    let (recalled, deleted) = known.pick_targets(
        root,
        newest_ms,
        opts.recalls,
        opts.deletions,
        &mut seeded_rng(opts.seed, 13),
    )?;
    // The first room in the exporter's order with a newest time: its first new message is
    // at exactly that time.
    let first_room = known
        .rooms
        .iter()
        .find(|(_, r)| r.newest_ms.is_some())
        .map(|(id, r)| (id.clone(), r.newest_ms.unwrap_or(newest_ms)));

    let mut people_rng = seeded_rng(opts.seed, 10);
    let first_second = newest_ms.div_euclid(SECOND_MS) + 1;
    let span_s = span_ms / SECOND_MS;
    let room_ids: Vec<String> = known.rooms.keys().cloned().collect();
    let directory: Vec<String> = known
        .users
        .iter()
        .filter_map(|u| u.get("userid").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let mut users = NewUsers {
        known: &mut known,
        entries: Vec::new(),
    };

    // Joins, and the rooms traffic goes to.
    let mut traffic: Vec<TrafficRoom> = Vec::new();
    let mut group_files: Vec<(PathBuf, Value)> = Vec::new();
    let mut joined = 0usize;
    for id in &room_ids {
        let kind = GroupKind::ALL[people_rng.gen_range(0..GroupKind::ALL.len())];
        let Some(room) = users.known.rooms.get(id) else {
            continue;
        };
        let existing: Vec<String> = if room.members.is_empty() {
            room.senders.iter().cloned().collect()
        } else {
            room.members.clone()
        };
        let mut senders: Vec<Sender> = existing
            .iter()
            .map(|id| Sender {
                id: id.clone(),
                from_ms: i64::MIN,
                joined_now: false,
            })
            .collect();
        let file = room.file.clone();
        if let Some((path, mut value)) = file {
            let mut in_room: HashSet<String> = room.members.iter().cloned().collect();
            let mut added = Vec::new();
            for _ in 0..opts.joins {
                let candidates: Vec<&String> =
                    directory.iter().filter(|u| !in_room.contains(*u)).collect();
                let member = match candidates.choose(&mut people_rng) {
                    Some(existing) if people_rng.gen_bool(0.3) => (*existing).clone(),
                    _ => {
                        let external = people_rng.gen_bool(0.3);
                        users.add(&mut people_rng, external)
                    }
                };
                in_room.insert(member.clone());
                let join_s = first_second + people_rng.gen_range(0..(span_s / 10).max(1));
                added.push(serde_json::json!({ "memberid": member, "jointime": join_s }));
                senders.push(Sender {
                    id: member,
                    from_ms: join_s * SECOND_MS,
                    joined_now: true,
                });
            }
            if !added.is_empty() {
                let Some(Value::Array(members)) = value.get_mut("members") else {
                    return Err(cannot(
                        root,
                        format!("{}: no `members` array", path.display()),
                    ));
                };
                joined += added.len();
                members.extend(added);
                group_files.push((path, value));
            }
        }
        if !senders.is_empty() {
            traffic.push(TrafficRoom {
                id: id.clone(),
                kind,
                senders,
            });
        }
    }
    let existing_rooms = traffic.len();

    // New groups, created at the newest message's second.
    let created_s = newest_ms.div_euclid(SECOND_MS);
    for _ in 0..opts.new_groups {
        let id = loop {
            let id = format!("wr{}", random_alnum(&mut people_rng, 30));
            if !users.known.rooms.contains_key(&id) && !traffic.iter().any(|r| r.id == id) {
                break id;
            }
        };
        let kind = GroupKind::ALL[people_rng.gen_range(0..GroupKind::ALL.len())];
        let size = people_rng.gen_range(6..20usize);
        let creator = users.add(&mut people_rng, false);
        let mut senders = vec![Sender {
            id: creator.clone(),
            from_ms: created_s * SECOND_MS,
            joined_now: false,
        }];
        let mut members = vec![serde_json::json!({ "memberid": creator, "jointime": created_s })];
        while senders.len() < size {
            let member = match directory.choose(&mut people_rng) {
                Some(existing) if people_rng.gen_bool(0.4) => existing.clone(),
                _ => {
                    let external = people_rng.gen_bool(0.3);
                    users.add(&mut people_rng, external)
                }
            };
            if senders.iter().any(|s| s.id == member) {
                continue;
            }
            let join_s = created_s + people_rng.gen_range(0..(span_s / 20).max(1));
            members.push(serde_json::json!({ "memberid": member, "jointime": join_s }));
            senders.push(Sender {
                id: member,
                from_ms: join_s * SECOND_MS,
                joined_now: false,
            });
        }
        let value = serde_json::json!({
            "roomid": id,
            "roomname": edge::group_name(&mut people_rng, kind),
            "creator": creator,
            "room_create_time": created_s,
            "notice": "请大家遵守群规，不要发广告",
            "members": members,
        });
        group_files.push((root.join(GROUPS_DIR).join(format!("{id}.json")), value));
        traffic.push(TrafficRoom { id, kind, senders });
    }
    let new_user_entries = std::mem::take(&mut users.entries);
    if opts.messages > 0 && traffic.is_empty() {
        return Err(cannot(
            root,
            "no room has members or senders to send new messages; add --new-groups 1 or more",
        ));
    }

    // Messages.
    let mut media_out = MediaOut {
        dir: root.join(MEDIA_DIR),
        enabled: opts.media_files,
        rng: seeded_rng(opts.seed, 12),
        written: 0,
    };
    let mut rng = seeded_rng(opts.seed, 11);
    let spread = TimeSpread::new(end_ms, opts.days, opts.messages);
    let mut new = NewLines {
        lines: Vec::with_capacity(opts.messages + opts.recalls),
        group_messages: 0,
    };
    for slot in 0..opts.messages {
        let mut time_ms = spread.time_of(slot, &mut rng);
        let room_index = match &first_room {
            Some((first, at)) if slot == 0 => {
                time_ms = *at;
                traffic.iter().position(|r| &r.id == first)
            }
            // Each new group has its share, at least one message.
            _ if slot >= 1 && slot - 1 < traffic.len() - existing_rooms => {
                Some(existing_rooms + slot - 1)
            }
            _ => Some(rng.gen_range(0..traffic.len())),
        };
        let Some(room) = room_index.and_then(|i| traffic.get(i)) else {
            continue;
        };
        let Some(sender) = room.sender(&mut rng, time_ms) else {
            continue;
        };
        let external = users.known.external.contains(&sender.id);
        let msgid = new_msgid(users.known, &mut rng, time_ms, external);
        let (msgtype, payload) = payload(&mut rng, &mut media_out, room.kind, time_ms)?;
        let tolist = room.tolist(&sender.id);
        new.lines.push((
            time_ms,
            line_bytes(&Line {
                msgid: Some(&msgid),
                action: "send",
                from: Some(&sender.id),
                tolist: &tolist,
                roomid: &room.id,
                msgtime: time_ms,
                msgtime_as_string: false,
                msgtype,
                payload: &payload,
            }),
        ));
        new.group_messages += 1;
    }

    // Recalls: a record of its own by the sender, in the new period and within WeCom's
    // recall limit of the recalled message.
    for target in &recalled {
        let last_ms = (target.time_ms + RECENT_MS).min(end_ms - 1);
        let time_ms = newest_ms + 1 + rng.gen_range(0..(last_ms - newest_ms).max(1));
        let external = users.known.external.contains(&target.sender);
        let msgid = new_msgid(users.known, &mut rng, time_ms, external);
        let members: Vec<&str> = traffic
            .iter()
            .find(|r| r.id == target.room)
            .map(|r| r.tolist(&target.sender))
            .unwrap_or_default();
        let mut payload = String::new();
        Obj::new(&mut payload).str("pre_msgid", &target.msgid).end();
        new.lines.push((
            time_ms,
            line_bytes(&Line {
                msgid: Some(&msgid),
                action: "recall",
                from: Some(&target.sender),
                tolist: &members,
                roomid: &target.room,
                msgtime: time_ms,
                msgtime_as_string: false,
                msgtype: "revoke",
                payload: &payload,
            }),
        ));
        new.group_messages += 1;
    }

    // A few `switch` records, as the archive has them.
    let switch_users: Vec<&str> = traffic
        .iter()
        .flat_map(|r| r.senders.iter().map(|s| s.id.as_str()))
        .collect();
    if !switch_users.is_empty() {
        for _ in 0..opts.messages / 500 + 1 {
            let time_ms = newest_ms + 1 + rng.gen_range(0..(span_ms - 1).max(1));
            let user = switch_users[rng.gen_range(0..switch_users.len())];
            let msgid = loop {
                let id = format!(
                    "{}_{}_switch",
                    random_digits(&mut rng, 19),
                    time_ms.div_euclid(SECOND_MS)
                );
                if users.known.msgids.insert(id.clone()) {
                    break id;
                }
            };
            let mut line = String::new();
            Obj::new(&mut line)
                .str("msgid", &msgid)
                .str("action", "switch")
                .num("time", time_ms)
                .str("user", user)
                .end();
            new.lines.push((time_ms, line.into_bytes()));
        }
    }
    new.lines.sort_by_key(|(time, _)| *time);

    // Writes: directory files first, then the new lines, then the deletions.
    if !new_user_entries.is_empty() {
        let path = root.join(USERS_FILE);
        let mut list = users.known.users.clone();
        list.extend(new_user_entries);
        replace_file(&path, &pretty(&path, &list)?)?;
    }
    for (path, value) in &group_files {
        replace_file(path, &pretty(path, value)?)?;
    }
    if !new.lines.is_empty() {
        let mut bytes = Vec::new();
        for (_, line) in &new.lines {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        replace_file(&root.join(ARCHIVE_DIR).join(&archive_name), &bytes)?;
    }
    let mut by_file: BTreeMap<usize, Vec<&Target>> = BTreeMap::new();
    for target in &deleted {
        by_file.entry(target.file).or_default().push(target);
    }
    for (file, targets) in by_file {
        let Some((_, path)) = users.known.archive.get(file) else {
            continue;
        };
        let bytes = fs::read(path).map_err(io_error(path))?;
        let segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        // The file is read a second time: it must still hold each message where it was.
        let still_there = targets.iter().all(|t| {
            let needle = t.msgid.as_bytes();
            segments
                .get(t.line)
                .is_some_and(|line| line.windows(needle.len()).any(|w| w == needle))
        });
        if !still_there {
            return Err(cannot(
                root,
                format!(
                    "{} changed while it was being continued: nothing deleted from it",
                    path.display()
                ),
            ));
        }
        let lines: BTreeSet<usize> = targets.iter().map(|t| t.line).collect();
        replace_file(path, &without_lines(&bytes, &lines))?;
    }

    Ok(MoreReport {
        root: opts.root.clone(),
        platform: "wecom",
        messages: new.group_messages,
        joined,
        recalled: recalled.len(),
        deleted: deleted.len(),
        new_groups: opts.new_groups,
        media_files: media_out.written,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::simulate::testkit::{options, snapshot, test_dir};
    use crate::source::Source;

    /// Group messages as the importer reads them: roomid → (msgid, time).
    fn read_back(root: &Path) -> BTreeMap<String, Vec<(String, Option<i64>)>> {
        let source = super::super::WecomSource::open(root).unwrap();
        let mut rooms = BTreeMap::new();
        for group in source.groups().unwrap().into_iter().filter(|g| g.is_group) {
            let messages = source
                .messages(&group.id)
                .unwrap()
                .map(|m| m.map(|m| (m.message_id, m.time_ms)))
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rooms.insert(group.id, messages);
        }
        rooms
    }

    fn simulated(name: &str, edge_rate: f64) -> PathBuf {
        let root = test_dir("wecom-more", name);
        let mut opts = options(root.clone());
        opts.groups = 4;
        opts.messages = 600;
        opts.edge_rate = edge_rate;
        super::super::simulate::simulate_wecom(&opts).unwrap();
        root
    }

    fn more(root: &Path, seed: u64) -> MoreOptions {
        MoreOptions {
            messages: 200,
            days: 3,
            seed,
            ..MoreOptions::new(root.to_path_buf())
        }
    }

    #[test]
    fn two_continuations_add_unique_ids_after_the_newest_time_and_count_them_true() {
        for (name, rate) in [("rate0", 0.0), ("rate5", 0.05), ("rate10", 0.1)] {
            let root = simulated(name, rate);
            let mut before = read_back(&root);
            for seed in [7, 8] {
                let known = Known::read(&root).unwrap();
                let newest = known.newest_ms.unwrap();
                let first_room = known
                    .rooms
                    .iter()
                    .find(|(_, r)| r.newest_ms.is_some())
                    .map(|(id, r)| (id.clone(), r.newest_ms.unwrap()))
                    .unwrap();
                let report = simulate_more_wecom(&more(&root, seed)).unwrap();
                let after = read_back(&root);

                let old: HashSet<&str> = before
                    .values()
                    .flatten()
                    .map(|(id, _)| id.as_str())
                    .collect();
                let mut added = 0;
                let mut seen = HashSet::new();
                for (room, messages) in &after {
                    for (index, (id, time)) in messages.iter().enumerate() {
                        assert!(seen.insert(id.clone()), "{name}: {id} twice");
                        if old.contains(id.as_str()) {
                            continue;
                        }
                        added += 1;
                        let time = time.expect("new messages have a time");
                        if *room == first_room.0 && time == first_room.1 {
                            continue;
                        }
                        assert!(
                            time > newest || (time == newest && index > 0),
                            "{name}: {id}"
                        );
                    }
                }
                assert!(
                    after[&first_room.0]
                        .iter()
                        .any(|(id, t)| !old.contains(id.as_str()) && *t == Some(first_room.1)),
                    "{name}: a new message at the first room's newest time"
                );
                assert_eq!(added, report.messages, "{name}: messages");
                let now: HashSet<&str> = after
                    .values()
                    .flatten()
                    .map(|(id, _)| id.as_str())
                    .collect();
                assert_eq!(
                    old.iter().filter(|id| !now.contains(*id)).count(),
                    report.deleted,
                    "{name}: deletions"
                );
                assert_eq!(report.recalled, 3);
                assert_eq!(after.len(), before.len() + 1, "{name}: one new group");
                before = after;
            }
            let _ = fs::remove_dir_all(&root);
        }
    }

    #[test]
    fn the_same_source_and_options_give_the_same_bytes() {
        let (a, b) = (simulated("same-a", 0.05), simulated("same-b", 0.05));
        simulate_more_wecom(&more(&a, 9)).unwrap();
        simulate_more_wecom(&more(&b, 9)).unwrap();
        assert_eq!(snapshot(&a), snapshot(&b));
        let _ = (fs::remove_dir_all(&a), fs::remove_dir_all(&b));
    }

    #[test]
    fn joins_go_to_the_groups_files() {
        let root = simulated("joins", 0.05);
        let count = |root: &Path| -> usize {
            fs::read_dir(root.join(GROUPS_DIR))
                .unwrap()
                .map(|e| {
                    let v: Value =
                        serde_json::from_slice(&fs::read(e.unwrap().path()).unwrap()).unwrap();
                    v["members"].as_array().map_or(0, Vec::len)
                })
                .sum()
        };
        let (files, members) = (
            fs::read_dir(root.join(GROUPS_DIR)).unwrap().count(),
            count(&root),
        );
        let opts = MoreOptions {
            new_groups: 0,
            ..more(&root, 5)
        };
        let report = simulate_more_wecom(&opts).unwrap();
        assert_eq!(report.joined, files * opts.joins);
        assert_eq!(count(&root), members + report.joined);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn refuses_what_it_cannot_continue_and_writes_nothing() {
        let empty = test_dir("wecom-more", "not-wecom");
        fs::create_dir_all(&empty).unwrap();
        let refused = |opts: &MoreOptions| {
            matches!(
                simulate_more_wecom(opts),
                Err(SimError::CannotContinue { .. })
            )
        };
        assert!(refused(&more(&empty, 1)));

        let root = simulated("refuse", 0.05);
        let before = snapshot(&root);
        let too_many = MoreOptions {
            recalls: 100_000,
            ..more(&root, 1)
        };
        assert!(refused(&too_many));
        assert_eq!(snapshot(&root), before);

        fs::write(root.join(USERS_FILE), b"{not json").unwrap();
        assert!(refused(&more(&root, 1)));
        fs::remove_file(root.join(USERS_FILE)).unwrap();
        assert!(refused(&more(&root, 1)));
        for entry in fs::read_dir(root.join(ARCHIVE_DIR)).unwrap() {
            fs::write(entry.unwrap().path(), b"\x00\x01 not json lines\n").unwrap();
        }
        assert!(refused(&more(&root, 1)));
        let _ = (fs::remove_dir_all(&root), fs::remove_dir_all(&empty));
    }

    #[test]
    fn a_deleted_line_leaves_the_rest_of_its_file_as_it_was() {
        let bytes = b"a\nb\nc\ncut";
        assert_eq!(without_lines(bytes, &BTreeSet::from([1])), b"a\nc\ncut");
        assert_eq!(without_lines(bytes, &BTreeSet::from([0, 3])), b"b\nc\n");
    }

    #[test]
    fn simulated_ids_give_their_index() {
        assert_eq!(message_index("1218808576400001500_1749712647"), Some(1500));
        assert_eq!(message_index("hard_time_max"), None);
        assert_eq!(user_index("ZhangWang12"), Some(12));
        assert_eq!(user_index("wmAbc12"), None);
    }
}
