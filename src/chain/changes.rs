//! `data/changes.csv` of an increment: messages at or before the predecessor's high-water
//! mark that differ now (deleted from the device, recalled or edited, a media file that
//! appeared or vanished, a message that turned up behind the mark). They are not
//! re-exported, only listed with the hashes of the old and new values.
//!
//! The predecessor's `messages.csv` is streamed beside the source, conversation by
//! conversation and time by time (both are in time order); only the messages of one
//! time are held, plus those without a time.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use crate::digest::sha256_hex;

/// The columns of changes.csv.
pub const HEADER: [&str; 6] = [
    "group_id",
    "message_id",
    "change",
    "field",
    "old_sha256",
    "new_sha256",
];

/// A message as a bundle holds it, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub group_id: String,
    pub message_id: String,
    pub time_utc: String,
    pub kind: String,
    pub text: String,
    /// The copied file's SHA-256 (held rows; empty when none was copied).
    pub media_sha256: String,
    /// The source's media file now, when there is one to compare (new side only).
    pub media_now: Option<std::path::PathBuf>,
}

/// One line of changes.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub group_id: String,
    pub message_id: String,
    /// `deleted`, `changed`, `added_behind_mark`.
    pub change: &'static str,
    /// `text`, `kind`, `media`, or empty for a whole message.
    pub field: &'static str,
    pub old_sha256: String,
    pub new_sha256: String,
}

fn hash_of(held: &Held) -> String {
    sha256_hex(
        format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            held.time_utc, held.kind, held.text, held.message_id
        )
        .as_bytes(),
    )
}

fn compare(old: &Held, new: &Held, compare_media: bool, out: &mut Vec<Change>) {
    let fields: [(&'static str, &str, &str); 2] = [
        ("kind", &old.kind, &new.kind),
        ("text", &old.text, &new.text),
    ];
    // Media: whether a file is there, as it was (its content is not read again: a file
    // present both times is not compared).
    if compare_media && old.media_sha256.is_empty() != new.media_now.is_none() {
        let now = new
            .media_now
            .as_deref()
            .and_then(|p| crate::digest::sha256_file(p).ok())
            .map(|(h, _)| h)
            .unwrap_or_default();
        out.push(Change {
            group_id: new.group_id.clone(),
            message_id: new.message_id.clone(),
            change: "changed",
            field: "media",
            old_sha256: old.media_sha256.clone(),
            new_sha256: now,
        });
    }
    for (field, a, b) in fields {
        if a != b {
            out.push(Change {
                group_id: new.group_id.clone(),
                message_id: new.message_id.clone(),
                change: "changed",
                field,
                old_sha256: sha256_hex(a.as_bytes()),
                new_sha256: sha256_hex(b.as_bytes()),
            });
        }
    }
}

fn deleted(old: &Held) -> Change {
    Change {
        group_id: old.group_id.clone(),
        message_id: old.message_id.clone(),
        change: "deleted",
        field: "",
        old_sha256: hash_of(old),
        new_sha256: String::new(),
    }
}

fn added(new: &Held) -> Change {
    Change {
        group_id: new.group_id.clone(),
        message_id: new.message_id.clone(),
        change: "added_behind_mark",
        field: "",
        old_sha256: String::new(),
        new_sha256: hash_of(new),
    }
}

/// The messages.csv of every bundle in the predecessor's chain, read row by row as one:
/// conversation by conversation (each file lists them in id order), each conversation's
/// rows link by link, oldest first, which is time order, since each link starts beyond the
/// marks of the one before.
pub struct HeldRows {
    links: Vec<HeldLink>,
}

impl HeldRows {
    /// Opens the bundles `(path, csv guard)`, oldest first.
    pub fn open_chain(bundles: &[(std::path::PathBuf, bool)]) -> Result<HeldRows, String> {
        let links = bundles
            .iter()
            .map(|(path, guarded)| HeldLink::open(path, *guarded))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HeldRows { links })
    }

    /// The link whose next row comes first: the lowest conversation id, the oldest link.
    fn first_link(&mut self) -> Result<Option<usize>, String> {
        let mut best: Option<(usize, String)> = None;
        for (index, link) in self.links.iter_mut().enumerate() {
            if let Some(row) = link.peek()? {
                if best.as_ref().is_none_or(|(_, group)| row.group_id < *group) {
                    best = Some((index, row.group_id.clone()));
                }
            }
        }
        Ok(best.map(|(index, _)| index))
    }

    fn peek(&mut self) -> Result<Option<&Held>, String> {
        match self.first_link()? {
            Some(index) => self.links[index].peek(),
            None => Ok(None),
        }
    }

    fn next_row(&mut self) -> Result<Option<Held>, String> {
        match self.first_link()? {
            Some(index) => self.links[index].next_row(),
            None => Ok(None),
        }
    }
}

/// One bundle's messages.csv, read row by row.
struct HeldLink {
    reader: csv::Reader<Box<dyn Read>>,
    columns: [usize; 6],
    guarded: bool,
    peeked: Option<Held>,
    /// Keeps a zip's extracted messages.csv until the end.
    _spool: Option<tempfile::NamedTempFile>,
}

impl HeldLink {
    /// Opens `data/messages.csv` of the bundle at `bundle` (a directory, or a zip whose
    /// entry is first copied to a temporary file).
    fn open(bundle: &Path, guarded: bool) -> Result<HeldLink, String> {
        let (file, spool) = if bundle.is_dir() {
            let path = bundle.join("data/messages.csv");
            (
                std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                None,
            )
        } else {
            let mut spool = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
            let archive = std::fs::File::open(bundle).map_err(|e| e.to_string())?;
            let mut archive = zip::ZipArchive::new(archive).map_err(|e| e.to_string())?;
            let name = (0..archive.len())
                .filter_map(|i| archive.name_for_index(i).map(str::to_string))
                .find(|n| n.ends_with("/data/messages.csv") || n == "data/messages.csv")
                .ok_or("no data/messages.csv in the zip")?;
            let mut entry = archive.by_name(&name).map_err(|e| e.to_string())?;
            std::io::copy(&mut entry, spool.as_file_mut()).map_err(|e| e.to_string())?;
            drop(entry);
            let file = spool.reopen().map_err(|e| e.to_string())?;
            (file, Some(spool))
        };
        let mut input: Box<dyn Read> = Box::new(std::io::BufReader::new(file));
        let mut bom = [0u8; 3];
        let n = input.read(&mut bom).map_err(|e| e.to_string())?;
        let start = if bom[..n] == *b"\xEF\xBB\xBF" {
            Vec::new()
        } else {
            bom[..n].to_vec()
        };
        let input: Box<dyn Read> = Box::new(std::io::Cursor::new(start).chain(input));
        let mut reader = csv::ReaderBuilder::new().from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| format!("messages.csv: {e}"))?
            .clone();
        Ok(HeldLink {
            columns: crate::check::bundles::columns(
                "messages.csv",
                &headers,
                [
                    "group_id",
                    "message_id",
                    "time_utc",
                    "kind",
                    "text",
                    "media_sha256",
                ],
            )?,
            reader,
            guarded,
            peeked: None,
            _spool: spool,
        })
    }

    fn next_row(&mut self) -> Result<Option<Held>, String> {
        if let Some(row) = self.peeked.take() {
            return Ok(Some(row));
        }
        let mut record = csv::StringRecord::new();
        if !self
            .reader
            .read_record(&mut record)
            .map_err(|e| format!("messages.csv: {e}"))?
        {
            return Ok(None);
        }
        let cell = |i: usize| {
            let value = record.get(self.columns[i]).unwrap_or_default();
            crate::check::bundles::unguard(value, self.guarded).to_string()
        };
        Ok(Some(Held {
            group_id: cell(0),
            message_id: cell(1),
            time_utc: cell(2),
            kind: cell(3),
            text: cell(4),
            media_sha256: cell(5),
            media_now: None,
        }))
    }

    fn peek(&mut self) -> Result<Option<&Held>, String> {
        if self.peeked.is_none() {
            self.peeked = self.next_row()?;
        }
        Ok(self.peeked.as_ref())
    }
}

/// Compares the messages behind the mark, conversation by conversation, as the export
/// streams them.
pub struct ChangeLog {
    held: HeldRows,
    /// Both exports copy media: whether a file appeared or vanished is compared.
    compare_media: bool,
    group: String,
    /// The source's messages of the time being read.
    bucket_time: String,
    bucket: BTreeMap<String, Held>,
    /// Messages without a time, on both sides, compared at the conversation's end.
    untimed_old: HashMap<String, Held>,
    untimed_new: HashMap<String, Held>,
    pub found: Vec<Change>,
}

impl ChangeLog {
    pub fn new(held: HeldRows, compare_media: bool) -> ChangeLog {
        ChangeLog {
            held,
            compare_media,
            group: String::new(),
            bucket_time: String::new(),
            bucket: BTreeMap::new(),
            untimed_old: HashMap::new(),
            untimed_new: HashMap::new(),
            found: Vec::new(),
        }
    }

    /// A conversation starts; rows of conversations before it (in id order) that the
    /// export no longer has are passed over.
    pub fn begin_group(&mut self, group_id: &str) -> Result<(), String> {
        self.group = group_id.to_string();
        while let Some(row) = self.held.peek()? {
            if row.group_id.as_str() >= group_id {
                break;
            }
            self.held.next_row()?;
        }
        Ok(())
    }

    /// A source message at or before the mark.
    pub fn message(&mut self, new: Held) -> Result<(), String> {
        if new.time_utc.is_empty() {
            self.untimed_new.insert(new.message_id.clone(), new);
            return Ok(());
        }
        if new.time_utc != self.bucket_time {
            self.flush()?;
            self.bucket_time = new.time_utc.clone();
        }
        self.bucket.insert(new.message_id.clone(), new);
        Ok(())
    }

    /// Compares the held rows up to the bucket's time with the bucket.
    fn flush(&mut self) -> Result<(), String> {
        let time = std::mem::take(&mut self.bucket_time);
        let mut bucket = std::mem::take(&mut self.bucket);
        loop {
            let take = match self.held.peek()? {
                Some(row) if row.group_id == self.group => {
                    row.time_utc.is_empty() || (!time.is_empty() && row.time_utc <= time)
                }
                _ => false,
            };
            if !take {
                break;
            }
            let Some(old) = self.held.next_row()? else {
                break;
            };
            if old.time_utc.is_empty() {
                self.untimed_old.insert(old.message_id.clone(), old);
                continue;
            }
            match bucket.remove(&old.message_id) {
                Some(new) if old.time_utc == time => {
                    compare(&old, &new, self.compare_media, &mut self.found)
                }
                Some(new) => {
                    // Held at another time: the source's time of it changed.
                    self.found.push(deleted(&old));
                    self.found.push(added(&new));
                }
                None => self.found.push(deleted(&old)),
            }
        }
        for new in bucket.into_values() {
            self.found.push(added(&new));
        }
        Ok(())
    }

    /// The conversation ends: what is left on either side differs.
    pub fn end_group(&mut self) -> Result<(), String> {
        self.flush()?;
        // Held rows of this conversation not met: deleted since.
        while let Some(row) = self.held.peek()? {
            if row.group_id != self.group {
                break;
            }
            let Some(old) = self.held.next_row()? else {
                break;
            };
            if old.time_utc.is_empty() {
                self.untimed_old.insert(old.message_id.clone(), old);
            } else {
                self.found.push(deleted(&old));
            }
        }
        let mut untimed_new = std::mem::take(&mut self.untimed_new);
        let mut old: Vec<Held> = std::mem::take(&mut self.untimed_old)
            .into_values()
            .collect();
        old.sort_by(|a, b| a.message_id.cmp(&b.message_id));
        for old in old {
            match untimed_new.remove(&old.message_id) {
                Some(new) => compare(&old, &new, self.compare_media, &mut self.found),
                None => self.found.push(deleted(&old)),
            }
        }
        let mut rest: Vec<Held> = untimed_new.into_values().collect();
        rest.sort_by(|a, b| a.message_id.cmp(&b.message_id));
        for new in rest {
            self.found.push(added(&new));
        }
        Ok(())
    }
}
