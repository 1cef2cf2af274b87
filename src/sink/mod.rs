//! Sinks: what an export writes into the bundle's `data/`. The pipeline (`export`) reads
//! the source once, filters and anonymizes, copies media ([`media::MediaCopier`]), and
//! hands every conversation's members and every message, with what became of its media,
//! to each enabled [`Sink`] as typed rows. A new output format is a new file implementing
//! [`Sink`]; the bundle writer underneath hashes whatever the sinks write.

pub mod csv;
pub mod html;
pub mod jsonl;
pub mod media;
pub mod txt;

use crate::evidence::BagWriter;
use crate::export::ExportError;
use crate::records::{Direction, Kind, MediaKind};

/// The output formats `export --format` offers, one sink each; this is their only list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// The four CSV files of outputs.md.
    Csv,
    /// `messages.jsonl`.
    Jsonl,
    /// `txt/<group>.txt`.
    Txt,
    /// `html/`: the transcript, paginated, with an index of conversations.
    Html,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Csv, Format::Jsonl, Format::Txt, Format::Html];

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Txt => "txt",
            Format::Html => "html",
        }
    }

    /// A comma list such as `csv,txt`: each format once, in this enum's order.
    pub fn parse_list(text: &str) -> Result<Vec<Format>, String> {
        let mut formats = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let format = Format::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(word))
                .ok_or_else(|| {
                    let known: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                    format!(
                        "unknown format `{word}`: use a comma list of {}",
                        known.join(", ")
                    )
                })?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        if formats.is_empty() {
            return Err("no format given: use e.g. --format csv,txt".to_string());
        }
        formats.sort();
        Ok(formats)
    }

    /// The sink writing this format into `bag`.
    pub fn sink(
        self,
        bag: &mut BagWriter,
        csv: csv::CsvStyle,
    ) -> Result<Box<dyn Sink>, ExportError> {
        Ok(match self {
            Format::Csv => Box::new(csv::CsvFiles::create(bag, csv)?),
            Format::Jsonl => Box::new(jsonl::JsonlFile::create(bag)?),
            Format::Txt => Box::new(txt::TxtFiles::new()),
            Format::Html => Box::new(html::HtmlTranscript::new()),
        })
    }
}

/// One output format.
pub trait Sink {
    /// A conversation starts: its id and name as written, and its members (in
    /// `members.csv` order), before its messages.
    fn begin_group(
        &mut self,
        bag: &mut BagWriter,
        group: &GroupHeader,
        members: &[MemberRow],
    ) -> Result<(), ExportError>;
    /// One message that passed the filters, with the outcome of each of its media files.
    fn message(
        &mut self,
        bag: &mut BagWriter,
        message: &MessageRow,
        media: &[MediaRow],
    ) -> Result<(), ExportError>;
    /// Every exported conversation with its figures, once all messages are written.
    fn groups(&mut self, bag: &mut BagWriter, groups: &[GroupRow]) -> Result<(), ExportError>;
    /// Closes the sink's files in the bag.
    fn finish(self: Box<Self>, bag: &mut BagWriter) -> Result<Finished, ExportError>;
}

/// What a sink leaves once its files are closed.
pub struct Finished {
    /// The rows written per file, for evidence.json's `counts`.
    pub counts: Vec<(String, u64)>,
    /// A report still to write: it needs what is known only at the very end (every other
    /// payload file's hash, the sources' hashes after reading).
    pub report: Option<Box<dyn Report>>,
}

impl Finished {
    pub fn counts(counts: Vec<(String, u64)>) -> Finished {
        Finished {
            counts,
            report: None,
        }
    }
}

/// A page written last, from the export's provenance ([`ReportFacts`]).
pub trait Report {
    /// Writes the report into the bag; returns its files, for evidence.json's `counts`.
    fn write(
        self: Box<Self>,
        bag: &mut BagWriter,
        facts: &ReportFacts,
    ) -> Result<Vec<(String, u64)>, ExportError>;
}

/// Where an export came from and what it found: what a report says beyond the rows.
/// Identities are as the outputs show them (pseudonymized when anonymizing).
pub struct ReportFacts<'a> {
    pub tool_version: &'a str,
    /// As recorded in evidence.json.
    pub command_line: &'a [String],
    pub case_id: Option<&'a str>,
    pub examiner: Option<&'a str>,
    pub started: chrono::DateTime<chrono::Utc>,
    pub finished: chrono::DateTime<chrono::Utc>,
    pub tz: chrono::FixedOffset,
    pub platform: &'a str,
    /// The account whose data this is, when the source says.
    pub owner_id: &'a str,
    pub key_fingerprint: Option<&'a str>,
    /// evidence.json's `filters`.
    pub filters: &'a serde_json::Value,
    /// Every source file read, hashed before and after (evidence.json's `sources`).
    pub sources: &'a crate::export::SourceList,
    pub media: &'a media::MediaCounts,
    pub warnings_total: u64,
    /// The warnings kept word for word.
    pub warnings: &'a [crate::records::Warning],
    /// A readiness check made before the export (`export --checklist`).
    pub checklist: Option<&'a crate::check::CheckReport>,
}

/// The conversation whose messages follow, as the outputs show it.
#[derive(Debug, Clone)]
pub struct GroupHeader<'a> {
    pub platform: &'a str,
    pub group_id: &'a str,
    pub group_name: &'a str,
    /// `false` for a one-to-one chat.
    pub is_group: bool,
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
    /// What a reply quotes, when the source records it.
    pub quote: Option<&'a QuoteRow>,
}

/// The message a reply quotes, as the outputs show it (pseudonymized when anonymizing).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QuoteRow {
    /// The quoted message's `message_id`, or empty when the source does not name it.
    pub message_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub text: String,
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
