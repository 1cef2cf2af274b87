//! Sources: an opened account directory of one platform ([`Source`], implemented in each
//! `platform/<name>/`), and what the readers share (SQLite access, WAL checks, streams).
//! Detection asks every registered platform, which looks at what the files are (table
//! names, file shapes), not only at their names.

pub mod sqlite;
pub mod stream;
pub mod wal;

use std::path::{Path, PathBuf};

use crate::platform::{self, PlatformRef};
use crate::records::{Group, Member, Warning};
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
        first: PlatformRef,
        second: PlatformRef,
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
    MissingTable {
        platform: PlatformRef,
        detail: String,
    },
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
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        use crate::exit;
        match self {
            SourceError::NotFound(_) | SourceError::NoSuchGroup(_) => exit::NOT_FOUND,
            SourceError::NotADirectory(_)
            | SourceError::Unrecognized { .. }
            | SourceError::Ambiguous { .. } => exit::UNRECOGNIZED,
            SourceError::NotSqlite { .. }
            | SourceError::Truncated { .. }
            | SourceError::MissingTable { .. }
            | SourceError::Corrupt { .. }
            | SourceError::Io { .. } => exit::DAMAGED,
            SourceError::Locked { .. } => exit::SOURCE_BUSY,
        }
    }
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
    fn platform(&self) -> PlatformRef;
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
    /// Only messages at or after these times (per conversation id, ms since the epoch) are
    /// wanted, and those without a usable time: a source may skip the rest (an increment
    /// after a bundle). Called before [`Source::prepare_messages`]; the caller still
    /// filters, so a source that ignores it is correct, only slower.
    fn set_message_floors(&self, _floors: &std::collections::HashMap<String, i64>) {}
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
    /// Problems met so far that did not stop reading (e.g. a member list that does not parse).
    fn warnings(&self) -> Vec<Warning>;
}

/// Finds which platform's data `root` holds.
pub fn detect(root: &Path) -> Result<PlatformRef, SourceError> {
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
    let platforms = platform::all();
    let mut found: Option<PlatformRef> = None;
    for candidate in &platforms {
        if candidate.probe(root)? {
            if let Some(first) = found {
                return Err(SourceError::Ambiguous {
                    path: root.to_path_buf(),
                    first,
                    second: *candidate,
                });
            }
            found = Some(*candidate);
        }
    }
    found.ok_or_else(|| SourceError::Unrecognized {
        path: root.to_path_buf(),
        detail: format!(
            "expected one of: {}",
            platforms
                .iter()
                .map(|p| p.expected_layout())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    })
}

/// Detects the platform and opens the source.
pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    detect(root)?.open(root)
}
