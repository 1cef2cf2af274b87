//! Sinks: what an export writes into the bundle's `data/`. The pipeline (`export`) reads
//! the source once, filters and anonymizes, copies media ([`media::MediaCopier`]), and
//! hands every conversation's members and every message, with what became of its media,
//! to each enabled [`Sink`] as typed rows. A new output format is a new file implementing
//! [`Sink`]; the bundle writer underneath hashes whatever the sinks write.

pub mod csv;
pub mod media;

use crate::evidence::BagWriter;
use crate::export::ExportError;
use crate::records::{Direction, Kind, MediaKind};

/// One output format.
pub trait Sink {
    /// A conversation starts: its members (in `members.csv` order), before its messages.
    fn members(&mut self, bag: &mut BagWriter, members: &[MemberRow]) -> Result<(), ExportError>;
    /// One message that passed the filters, with the outcome of each of its media files.
    fn message(
        &mut self,
        bag: &mut BagWriter,
        message: &MessageRow,
        media: &[MediaRow],
    ) -> Result<(), ExportError>;
    /// Every exported conversation with its figures, once all messages are written.
    fn groups(&mut self, bag: &mut BagWriter, groups: &[GroupRow]) -> Result<(), ExportError>;
    /// Closes the sink's files in the bag; returns the rows written per file, for
    /// evidence.json's `counts`.
    fn finish(
        self: Box<Self>,
        bag: &mut BagWriter,
    ) -> Result<Vec<(&'static str, u64)>, ExportError>;
}

/// A member of one conversation, as the outputs show it (pseudonymized when anonymizing).
#[derive(Debug, Clone)]
pub struct MemberRow<'a> {
    pub platform: &'a str,
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub display_name: &'a str,
    pub group_nickname: &'a str,
    pub role: &'a str,
    /// RFC 3339 UTC, or empty.
    pub joined_at_utc: &'a str,
    pub left: bool,
}

/// One message as the outputs show it.
#[derive(Debug, Clone)]
pub struct MessageRow<'a> {
    pub platform: &'a str,
    pub group_id: &'a str,
    pub group_name: &'a str,
    pub message_id: &'a str,
    /// Milliseconds since the epoch, when the source gives a writable time.
    pub time_ms: Option<i64>,
    pub time_utc: &'a str,
    pub time_local: &'a str,
    pub sender_id: &'a str,
    pub sender_name: &'a str,
    pub direction: Direction,
    pub kind: Kind,
    pub text: &'a str,
    /// The first media file copied (`data/media/…`), or empty.
    pub media_path: &'a str,
    pub media_sha256: &'a str,
    pub raw_type: &'a str,
}

/// What became of one media file a message references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatus {
    Copied,
    Missing,
    NotDownloaded,
    OutsideRoot,
    Excluded,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::Copied => "copied",
            MediaStatus::Missing => "missing",
            MediaStatus::NotDownloaded => "not_downloaded",
            MediaStatus::OutsideRoot => "outside_root",
            MediaStatus::Excluded => "excluded",
        }
    }
}

/// One media file of a message, as the outputs show it.
#[derive(Debug, Clone)]
pub struct MediaRow {
    pub kind: MediaKind,
    /// The path in the source (anonymized: the copied file's hash, or empty).
    pub source_path: String,
    /// `data/media/…` when copied, else empty.
    pub bundle_path: String,
    pub size: Option<u64>,
    pub sha256: String,
    pub status: MediaStatus,
}

/// A conversation with its figures, as the outputs show it.
#[derive(Debug, Clone)]
pub struct GroupRow<'a> {
    pub platform: &'a str,
    pub group_id: &'a str,
    pub group_name: &'a str,
    pub owner_id: &'a str,
    pub member_count: u64,
    pub message_count: u64,
    pub first_message_utc: String,
    pub last_message_utc: String,
}
