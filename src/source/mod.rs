//! Sources: one module per platform, each implementing [`Source`]. Detection looks at what
//! the files are (table names, file shapes), not only at their names.

pub mod dingtalk;
pub mod qq;
pub mod sqlite;
pub mod stream;
pub mod wal;
pub mod wechat;
pub mod wecom;

use std::path::{Path, PathBuf};

use crate::records::{CacheClass, Group, Member, Platform, Warning};
pub use stream::MessageStream;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    #[error("{0} is not a directory: give the account directory that holds the chat database")]
    NotADirectory(PathBuf),
    #[error("no chat database found in {path}: {detail}")]
    Unrecognized { path: PathBuf, detail: String },
    #[error("{path} holds data of two platforms ({first} and {second}): point chatvault at one account directory")]
    Ambiguous {
        path: PathBuf,
        first: Platform,
        second: Platform,
    },
    #[error("{path} is not an SQLite database (the file starts with other bytes): is it still encrypted?")]
    NotSqlite { path: PathBuf },
    #[error("{path} is truncated: its header promises {expected} bytes but the file has {actual}; copy it again from the device")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("not a {platform} database: {detail}")]
    MissingTable { platform: Platform, detail: String },
    #[error("{path} is locked by another process: close the chat app and try again")]
    Locked { path: PathBuf },
    #[error("{path} is damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no group `{0}` in this source (run `chatvault inspect` to list the groups)")]
    NoSuchGroup(String),
}

impl SourceError {
    pub fn io(path: &Path, source: std::io::Error) -> SourceError {
        SourceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A source file the importer reads, recorded in the evidence with its hashes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative to the source root.
    pub rel_path: String,
    pub path: PathBuf,
}

impl SourceFile {
    /// A file of the source at `root`, named relative to it.
    pub fn under(root: &Path, path: &Path) -> SourceFile {
        SourceFile {
            rel_path: path
                .strip_prefix(root)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned(),
            path: path.to_path_buf(),
        }
    }
}

/// One platform's account directory, opened for reading. Reading never changes the source.
pub trait Source: Send + Sync {
    fn platform(&self) -> Platform;
    /// The account directory.
    fn root(&self) -> &Path;
    /// The account owner's member id, when the source records it.
    fn owner_id(&self) -> Option<&str>;
    /// Every conversation, groups and one-to-one chats, sorted by id.
    fn groups(&self) -> Result<Vec<Group>, SourceError>;
    /// The members of one group (bounded by the group's size, not by its messages).
    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError>;
    /// One conversation's messages in (time, source order), streamed.
    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError>;
    /// A hint: [`Source::messages`] is about to be called for these conversations, in this
    /// order. A source whose conversations share storage may start reading them all in one
    /// pass; errors are left for `messages` to report.
    fn prepare_messages(&self, _group_ids: &[String]) {}
    /// True once every conversation given to [`Source::prepare_messages`] has been read out
    /// of the databases into private storage, so that the databases will not be read again
    /// and their "after" hashes can be taken now rather than at the end. After it has said
    /// so, `messages` serves each of those conversations once and refuses anything else.
    fn databases_read(&self) -> bool {
        false
    }
    /// The databases and journals the importer reads (media are recorded as they are copied).
    fn source_files(&self) -> Vec<SourceFile>;
    /// The display name of someone the source knows, member of the group or not (a sender
    /// who left, a contact); the export names such senders with it.
    fn display_name(&self, _member_id: &str) -> Option<String> {
        None
    }
    /// Everyone the source knows by name beyond the member lists (contacts, senders who
    /// left), so that anonymization can find their names in text. Bounded by people, not
    /// messages.
    fn people(&self) -> Vec<Member> {
        Vec::new()
    }
    /// Names the source holds but cannot tie to a member (WeChat group nicknames whose list
    /// does not line up with the member list); anonymization replaces them all the same.
    fn unattributed_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// What a file under the root is (`rel_path` relative to the root, `/`-separated), by the
    /// platform's layout; the cleanup plan ties referenced files to messages separately.
    fn classify(&self, rel_path: &str) -> CacheClass;
    /// Problems met so far that did not stop reading (e.g. a member list that does not parse).
    fn warnings(&self) -> Vec<Warning>;
}

/// What a platform module offers to detection.
struct PlatformEntry {
    platform: Platform,
    /// `Ok(true)` when the directory holds this platform's data; `Err` when it clearly tries
    /// to but is broken (e.g. `EnMicroMsg.db` that is not SQLite).
    probe: fn(&Path) -> Result<bool, SourceError>,
    open: fn(&Path) -> Result<Box<dyn Source>, SourceError>,
}

/// Adding a platform means adding its module and one line here.
const PLATFORMS: &[PlatformEntry] = &[
    PlatformEntry {
        platform: Platform::Wechat,
        probe: wechat::probe,
        open: wechat::open,
    },
    PlatformEntry {
        platform: Platform::Qq,
        probe: qq::probe,
        open: qq::open,
    },
    PlatformEntry {
        platform: Platform::Wecom,
        probe: wecom::probe,
        open: wecom::open,
    },
    PlatformEntry {
        platform: Platform::Dingtalk,
        probe: dingtalk::probe,
        open: dingtalk::open,
    },
];

/// Finds which platform's data `root` holds.
pub fn detect(root: &Path) -> Result<Platform, SourceError> {
    let meta = std::fs::metadata(root).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SourceError::NotFound(root.to_path_buf())
        } else {
            SourceError::io(root, e)
        }
    })?;
    if !meta.is_dir() {
        return Err(SourceError::NotADirectory(root.to_path_buf()));
    }
    let mut found: Option<Platform> = None;
    for entry in PLATFORMS {
        if (entry.probe)(root)? {
            if let Some(first) = found {
                return Err(SourceError::Ambiguous {
                    path: root.to_path_buf(),
                    first,
                    second: entry.platform,
                });
            }
            found = Some(entry.platform);
        }
    }
    found.ok_or_else(|| SourceError::Unrecognized {
        path: root.to_path_buf(),
        detail: format!(
            "expected one of: {}",
            PLATFORMS
                .iter()
                .map(|p| describe(p.platform))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    })
}

fn describe(platform: Platform) -> &'static str {
    match platform {
        Platform::Wechat => "WeChat EnMicroMsg.db (tables message, rcontact)",
        Platform::Qq => "QQ NT nt_db/nt_msg.db (table group_msg_table)",
        Platform::Wecom => "WeCom archive/*.jsonl",
        Platform::Dingtalk => "DingTalk DBFiles/dingtalk.db (tables tbmsg_000…)",
    }
}

/// Detects the platform and opens the source.
pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    let platform = detect(root)?;
    open_as(root, platform)
}

pub fn open_as(root: &Path, platform: Platform) -> Result<Box<dyn Source>, SourceError> {
    match PLATFORMS.iter().find(|p| p.platform == platform) {
        Some(entry) => (entry.open)(root),
        None => Err(SourceError::Unrecognized {
            path: root.to_path_buf(),
            detail: format!("{platform} sources are not supported yet"),
        }),
    }
}
