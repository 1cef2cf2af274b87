//! WeCom session archive (会话内容存档), decrypted: `archive/*.jsonl`, `groups/<roomid>.json`,
//! `users.json` and `media/<md5sum>.<ext>`. Layout: `../shared/spec/sources.md` §3.
//!
//! JSON lines come in any order, across files, with duplicates. Opening the source streams
//! every line once into a private temporary store sorted on disk (see `archive` and
//! `store`), so each conversation can then be streamed in (time, source order) with memory
//! that does not grow with the number of messages.

pub(crate) mod archive;
mod blocks;
mod directory;
mod message;
mod more;
pub(crate) mod record;
mod store;

pub mod retention;
pub mod simulate;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::platform::{Descriptor, PlatformRef};
use crate::records::{CacheClass, Group, MediaKind, Member, Role, Warning};
use crate::source::stream::{self, MessageStream};
use crate::source::{Source, SourceError, SourceFile};

/// WeCom (企业微信) archive, as the registry knows it.
pub static WECOM: Descriptor = Descriptor {
    name: "wecom",
    aliases: &[],
    expected_layout: "WeCom archive/*.jsonl",
    probe,
    open,
    cache_class,
    retention: &retention::RETENTION,
    simulate: simulate::simulate_wecom,
    simulate_more: Some(more::simulate_more_wecom),
};

pub const ARCHIVE_DIR: &str = "archive";
pub const GROUPS_DIR: &str = "groups";
pub const USERS_FILE: &str = "users.json";
pub const MEDIA_DIR: &str = "media";

/// How much of each archive file `probe` looks at.
const PROBE_BYTES: usize = 64 * 1024;

/// A directory is WeCom's when `archive/` holds `*.jsonl` files whose lines are message
/// objects. Such files that hold something else (still encrypted, binary) fail detection
/// with the reason, as does a directory with `archive/` beside `users.json` or `groups/`
/// but no `*.jsonl`.
pub fn probe(root: &Path) -> Result<bool, SourceError> {
    let archive = root.join(ARCHIVE_DIR);
    if !archive.is_dir() {
        return Ok(false);
    }
    let files = archive::archive_files(root)?;
    if files.is_empty() {
        if root.join(USERS_FILE).is_file() || root.join(GROUPS_DIR).is_dir() {
            return Err(SourceError::MissingTable {
                platform: &WECOM,
                detail: format!(
                    "no {ARCHIVE_DIR}/*.jsonl files beside {USERS_FILE} or {GROUPS_DIR}/"
                ),
            });
        }
        return Ok(false);
    }
    let mut first_unreadable: Option<(PathBuf, &'static str)> = None;
    for file in &files {
        match head_shape(&file.path)? {
            HeadShape::Messages | HeadShape::Empty => return Ok(true),
            HeadShape::Encrypted => {
                first_unreadable.get_or_insert((file.path.clone(), "still encrypted"));
            }
            HeadShape::Other => {
                first_unreadable.get_or_insert((file.path.clone(), "not JSON lines"));
            }
        }
    }
    match first_unreadable {
        Some((path, why)) => Err(SourceError::Corrupt {
            path,
            detail: format!(
                "{why}: expected one decrypted message object per line (\"msgid\", \"msgtype\", …); \
                 decrypt the archive with the enterprise's private key first"
            ),
        }),
        None => Ok(true),
    }
}

enum HeadShape {
    Empty,
    Messages,
    /// `encrypt_random_key` / `encrypt_chat_msg` lines as the archive API returns them.
    Encrypted,
    Other,
}

/// What the first lines of an archive file look like.
fn head_shape(path: &Path) -> Result<HeadShape, SourceError> {
    let file = File::open(path).map_err(|e| SourceError::io(path, e))?;
    let mut head = Vec::with_capacity(4096);
    file.take(PROBE_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| SourceError::io(path, e))?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    if head.iter().all(u8::is_ascii_whitespace) {
        return Ok(HeadShape::Empty);
    }
    let mut encrypted = false;
    for line in head.split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        if !line.starts_with(b"{") {
            continue;
        }
        let has = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
        if has(b"\"msgid\"") && (has(b"\"msgtype\"") || has(b"\"action\"")) {
            return Ok(HeadShape::Messages);
        }
        if has(b"\"encrypt_chat_msg\"") {
            encrypted = true;
        }
    }
    Ok(if encrypted {
        HeadShape::Encrypted
    } else {
        HeadShape::Other
    })
}

pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(WecomSource::open(root)?))
}

pub struct WecomSource {
    root: PathBuf,
    store: Arc<store::Store>,
    directory: directory::Directory,
    /// Group ids that messages name, with or without a `groups/<roomid>.json`.
    rooms_with_messages: Vec<String>,
    /// One-to-one conversations: id → the two participants.
    private_chats: BTreeMap<String, Vec<String>>,
    files: Vec<SourceFile>,
    warnings: Vec<Warning>,
}

impl WecomSource {
    pub fn open(root: &Path) -> Result<WecomSource, SourceError> {
        let mut warnings = archive::WarningLog::default();
        let mut files = Vec::new();
        let directory = directory::Directory::load(root, &mut files, &mut warnings)?;
        let ingested = archive::ingest(root, &mut warnings)?;
        files.extend(ingested.files);
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        Ok(WecomSource {
            root: root.to_path_buf(),
            store: Arc::new(ingested.store),
            directory,
            rooms_with_messages: ingested.rooms.into_iter().collect(),
            private_chats: ingested.private_chats,
            files,
            warnings: warnings.finish(),
        })
    }

    fn private_group(&self, id: &str, participants: &[String]) -> Group {
        let name = participants
            .iter()
            .map(|p| self.directory.display_name(p).unwrap_or(p).to_string())
            .collect::<Vec<_>>()
            .join(" & ");
        Group {
            id: id.to_string(),
            name,
            owner_id: None,
            declared_member_count: None,
            created_ms: None,
            is_group: false,
        }
    }
}

impl Source for WecomSource {
    fn platform(&self) -> PlatformRef {
        &WECOM
    }

    fn root(&self) -> &Path {
        &self.root
    }

    /// The archive belongs to the enterprise, not to one member.
    fn owner_id(&self) -> Option<&str> {
        None
    }

    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
        for id in self
            .directory
            .rooms
            .keys()
            .chain(self.rooms_with_messages.iter())
        {
            groups
                .entry(id.as_str())
                .or_insert_with(|| self.directory.group(id));
        }
        for (id, participants) in &self.private_chats {
            groups
                .entry(id.as_str())
                .or_insert_with(|| self.private_group(id, participants));
        }
        Ok(groups.into_values().collect())
    }

    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError> {
        if self.directory.rooms.contains_key(group_id) {
            return Ok(self.directory.members(group_id));
        }
        let Some(participants) = self.private_chats.get(group_id) else {
            return Ok(Vec::new());
        };
        Ok(participants
            .iter()
            .map(|id| Member {
                member_id: id.clone(),
                alias: None,
                display_name: self
                    .directory
                    .display_name(id)
                    .unwrap_or_default()
                    .to_string(),
                group_nickname: String::new(),
                other_names: Vec::new(),
                role: Role::Member,
                joined_ms: None,
                left: false,
            })
            .collect())
    }

    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError> {
        let store = Arc::clone(&self.store);
        let conversation = group_id.to_string();
        Ok(stream::spawn("wecom-messages", move |emit| {
            message::read(&store, &conversation, emit)
        }))
    }

    fn source_files(&self) -> Vec<SourceFile> {
        self.files.clone()
    }

    fn display_name(&self, member_id: &str) -> Option<String> {
        self.directory.display_name(member_id).map(str::to_string)
    }

    /// Everyone in `users.json`: senders who left and one-to-one partners included.
    fn people(&self) -> Vec<Member> {
        self.directory.people()
    }

    fn warnings(&self) -> Vec<Warning> {
        self.warnings.clone()
    }
}

/// The WeCom layout of sources.md §3. Anything under `archive/` or `groups/` is the
/// source's data, whatever its name.
pub fn cache_class(rel_path: &str) -> CacheClass {
    let (top, rest) = rel_path.split_once('/').unwrap_or((rel_path, ""));
    let extension = rel_path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match top {
        USERS_FILE if rest.is_empty() => CacheClass::Database,
        ARCHIVE_DIR | GROUPS_DIR => CacheClass::Database,
        MEDIA_DIR if !rest.is_empty() => match extension.as_str() {
            "jpg" => CacheClass::Media(MediaKind::Image),
            "amr" => CacheClass::Media(MediaKind::Voice),
            "mp4" => CacheClass::Media(MediaKind::Video),
            _ => CacheClass::Media(MediaKind::File),
        },
        _ => CacheClass::Other,
    }
}

#[cfg(test)]
mod tests;
