//! The private message store: every archive message, sorted on disk by (conversation, time,
//! source order), built and read in bounded memory.
//!
//! Messages arrive in source order. Each is encoded into a chunk; a full chunk is sorted and
//! appended to one temporary file as a *run*, remembering the byte range of each conversation
//! in it. A conversation is streamed by merging its ranges of every run.
//!
//! Duplicates are found from a second set of sorted runs, of (msgid hash, source order,
//! position) keys, merged in one pass. Among records of one msgid the first in source order
//! is kept; each later one is marked dropped in place (one byte of its record), so streaming
//! skips it. Equal hashes are compared by their msgids before anything is dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::message::{kind_code, media_kind_code};
use super::record::{Conversation, Entry};
use crate::source::SourceError;

/// Encoded messages kept in memory before a chunk is sorted and written as a run.
/// How a record with no time (`Entry::time_ms` is `None`) stores it: before every
/// representable instant, so such records sort first, as SQLite sorts NULL times.
pub const NO_TIME: i64 = i64::MIN;
const CHUNK_BYTES: usize = 16 << 20;
/// Duplicate-search keys kept in memory before they are sorted and written as a run (6 MB).
const KEY_CHUNK: usize = 1 << 18;
/// Read buffers of one conversation stream, shared among the runs it merges.
const STREAM_BUFFERS: usize = 4 << 20;

/// A record: `u32` length of the rest, then this header, then the strings, each a `u32`
/// length and UTF-8 bytes: msgid, text, raw type, and those the flags say are present
/// (sender, media path, media name, warning).
const HEADER: usize = 32;
const DROPPED_AT: usize = 0;
const FLAGS_AT: usize = 1;
const KIND_AT: usize = 2;
const MEDIA_KIND_AT: usize = 3;
const CONV_AT: usize = 4;
const TIME_AT: usize = 8;
const SEQ_AT: usize = 16;
const MEDIA_SIZE_AT: usize = 24;

const HAS_SENDER: u8 = 1;
const HAS_MEDIA: u8 = 2;
const HAS_MEDIA_NAME: u8 = 4;
const HAS_MEDIA_SIZE: u8 = 8;
const HAS_WARNING: u8 = 16;

/// One stored message, borrowed from a read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub conv: u32,
    pub time_ms: i64,
    pub seq: u64,
    pub dropped: bool,
    pub kind: u8,
    /// The media kind's code, meaningful when `media_path` is present.
    pub media_kind: u8,
    pub media_size: Option<u64>,
    pub msgid: &'a str,
    pub sender: Option<&'a str>,
    pub text: &'a str,
    pub raw_type: &'a str,
    pub media_path: Option<&'a str>,
    pub media_name: Option<&'a str>,
    pub warning: Option<&'a str>,
}

/// Appends `entry` as one record (length included) to `out`. Its conversation number is
/// left 0, for [`Builder::push_encoded`] to fill in.
pub fn encode(entry: &Entry, seq: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0; 4 + HEADER]);
    let media = entry.media.as_ref();
    let mut flags = 0;
    let put = |out: &mut Vec<u8>, text: &str| -> Result<(), String> {
        let len = u32::try_from(text.len())
            .map_err(|_| format!("message {}: a field over 4 GB", entry.message_id))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        Ok(())
    };
    put(out, &entry.message_id)?;
    put(out, &entry.text)?;
    put(out, &entry.raw_type)?;
    if let Some(sender) = &entry.sender_id {
        flags |= HAS_SENDER;
        put(out, sender)?;
    }
    if let Some(media) = media {
        flags |= HAS_MEDIA;
        put(out, &media.path)?;
        if let Some(name) = &media.original_name {
            flags |= HAS_MEDIA_NAME;
            put(out, name)?;
        }
        if media.declared_size.is_some() {
            flags |= HAS_MEDIA_SIZE;
        }
    }
    if let Some(warning) = &entry.warning {
        flags |= HAS_WARNING;
        put(out, warning)?;
    }
    let len = u32::try_from(out.len() - start - 4)
        .map_err(|_| format!("message {}: over 4 GB", entry.message_id))?;
    let header = &mut out[start..start + 4 + HEADER];
    header[..4].copy_from_slice(&len.to_le_bytes());
    let header = &mut header[4..];
    header[FLAGS_AT] = flags;
    header[KIND_AT] = kind_code(entry.kind) as u8;
    header[MEDIA_KIND_AT] = media.map_or(0, |m| media_kind_code(m.kind) as u8);
    header[TIME_AT..TIME_AT + 8].copy_from_slice(&entry.time_ms.unwrap_or(NO_TIME).to_le_bytes());
    header[SEQ_AT..SEQ_AT + 8].copy_from_slice(&seq.to_le_bytes());
    let size = media.and_then(|m| m.declared_size).unwrap_or(0);
    header[MEDIA_SIZE_AT..MEDIA_SIZE_AT + 8].copy_from_slice(&size.to_le_bytes());
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The (time, seq) a record body (after its length) sorts by; `None` if it is too short.
fn order_of(body: &[u8]) -> Option<(i64, u64)> {
    (body.len() >= HEADER).then(|| (u64_at(body, TIME_AT) as i64, u64_at(body, SEQ_AT)))
}

/// Reads a record body (after its length).
fn decode(body: &[u8]) -> Result<Record<'_>, String> {
    if body.len() < HEADER {
        return Err("a record shorter than its header".into());
    }
    let flags = body[FLAGS_AT];
    let mut at = HEADER;
    let mut next = || -> Result<&str, String> {
        let len = body
            .get(at..at + 4)
            .map(|b| u32_at(b, 0) as usize)
            .ok_or("a record cut short")?;
        let bytes = body.get(at + 4..at + 4 + len).ok_or("a record cut short")?;
        at += 4 + len;
        std::str::from_utf8(bytes).map_err(|_| "a record that is not UTF-8".to_string())
    };
    let msgid = next()?;
    let text = next()?;
    let raw_type = next()?;
    let mut optional = |flag: u8| -> Result<Option<&str>, String> {
        if flags & flag != 0 {
            next().map(Some)
        } else {
            Ok(None)
        }
    };
    let sender = optional(HAS_SENDER)?;
    let media_path = optional(HAS_MEDIA)?;
    let media_name = optional(HAS_MEDIA_NAME)?;
    let warning = optional(HAS_WARNING)?;
    Ok(Record {
        conv: u32_at(body, CONV_AT),
        time_ms: u64_at(body, TIME_AT) as i64,
        seq: u64_at(body, SEQ_AT),
        dropped: body[DROPPED_AT] != 0,
        kind: body[KIND_AT],
        media_kind: body[MEDIA_KIND_AT],
        media_size: (flags & HAS_MEDIA_SIZE != 0).then(|| u64_at(body, MEDIA_SIZE_AT)),
        msgid,
        sender,
        text,
        raw_type,
        media_path,
        media_name,
        warning,
    })
}

/// A 64-bit hash of a msgid: duplicates are looked for among equal hashes, which sort much
/// faster than the ids themselves.
pub fn id_hash(msgid: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    msgid.hash(&mut hasher);
    let hash = hasher.finish();
    // Unit tests collide on purpose, so that telling equal hashes apart is exercised.
    if cfg!(test) {
        hash & 3
    } else {
        hash
    }
}

/// Where one message's record is, for the duplicate search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    id_hash: u64,
    seq: u64,
    pos: u64,
}

const KEY_BYTES: usize = 24;

impl Key {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.id_hash.to_le_bytes())?;
        out.write_all(&self.seq.to_le_bytes())?;
        out.write_all(&self.pos.to_le_bytes())
    }

    fn read(bytes: &[u8]) -> Key {
        Key {
            id_hash: u64_at(bytes, 0),
            seq: u64_at(bytes, 8),
            pos: u64_at(bytes, 16),
        }
    }
}

/// A message of the chunk being filled, and what it sorts by.
struct Pending {
    conv: u32,
    time_ms: i64,
    seq: u64,
    id_hash: u64,
    bytes: Range<usize>,
}

/// A conversation the messages name, and how many of its messages are kept.
#[derive(Debug, Clone)]
pub struct StoredConversation {
    pub conversation: Conversation,
    pub messages: u64,
}

/// The byte ranges of one run, per conversation (ascending).
struct Run {
    ranges: Vec<(u32, Range<u64>)>,
}

impl Run {
    fn range(&self, conv: u32) -> Option<Range<u64>> {
        let i = self.ranges.binary_search_by_key(&conv, |(c, _)| *c).ok()?;
        Some(self.ranges[i].1.clone())
    }
}

/// A later message with an earlier one's msgid but other content: worth a warning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Repeat {
    pub seq: u64,
    pub msgid: String,
}

/// The repeats to warn about: the first `cap` in source order, and how many more.
#[derive(Debug, Default)]
pub struct Repeats {
    pub listed: Vec<Repeat>,
    pub more: u64,
}

/// How much the builder keeps in memory before writing a run.
#[derive(Debug, Clone, Copy)]
struct Limits {
    chunk_bytes: usize,
    key_chunk: usize,
}

const LIMITS: Limits = Limits {
    chunk_bytes: CHUNK_BYTES,
    key_chunk: KEY_CHUNK,
};

/// Fills the store, one message at a time, in source order.
pub struct Builder {
    limits: Limits,
    dir: tempfile::TempDir,
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    chunk: Vec<u8>,
    pending: Vec<Pending>,
    runs: Vec<Run>,
    keys: KeyRuns,
    conversation_ids: HashMap<String, u32>,
    conversations: Vec<StoredConversation>,
}

impl Builder {
    pub fn new() -> Result<Builder, SourceError> {
        Builder::with_limits(LIMITS)
    }

    fn with_limits(limits: Limits) -> Result<Builder, SourceError> {
        let dir = tempfile::Builder::new()
            .prefix("chatvault-wecom-")
            .tempdir()
            .map_err(|e| SourceError::io(Path::new("temporary directory"), e))?;
        let path = dir.path().join("messages.runs");
        let file = File::create(&path).map_err(|e| store_error(&path, e))?;
        let keys = KeyRuns::new(dir.path().join("msgids.runs"), limits.key_chunk);
        Ok(Builder {
            limits,
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            dir,
            written: 0,
            chunk: Vec::with_capacity(limits.chunk_bytes.min(CHUNK_BYTES) + (64 << 10)),
            pending: Vec::new(),
            runs: Vec::new(),
            keys,
            conversation_ids: HashMap::new(),
            conversations: Vec::new(),
        })
    }

    /// Numbers a conversation (the same id, the same number), for [`push_encoded`].
    pub fn add_conversation(&mut self, conversation: Conversation) -> Result<u32, SourceError> {
        if let Some(&number) = self.conversation_ids.get(conversation.id()) {
            return Ok(number);
        }
        let number = u32::try_from(self.conversations.len())
            .map_err(|_| self.damaged("more than 4 billion conversations".to_string()))?;
        self.conversation_ids
            .insert(conversation.id().to_string(), number);
        self.conversations.push(StoredConversation {
            conversation,
            messages: 0,
        });
        Ok(number)
    }

    /// Adds a record made by [`encode`], in conversation `conversation`.
    pub fn push_encoded(
        &mut self,
        record: &[u8],
        conversation: u32,
        seq: u64,
        time_ms: i64,
        id_hash: u64,
    ) -> Result<(), SourceError> {
        let stored = self
            .conversations
            .get_mut(conversation as usize)
            .ok_or_else(|| SourceError::Corrupt {
                path: self.path.clone(),
                detail: format!("conversation number {conversation} was never added"),
            })?;
        stored.messages += 1;
        let start = self.chunk.len();
        self.chunk.extend_from_slice(record);
        let at = start + 4 + CONV_AT;
        if let Some(field) = self.chunk.get_mut(at..at + 4) {
            field.copy_from_slice(&conversation.to_le_bytes());
        }
        self.pending.push(Pending {
            conv: conversation,
            time_ms,
            seq,
            id_hash,
            bytes: start..self.chunk.len(),
        });
        if self.chunk.len() >= self.limits.chunk_bytes {
            self.write_run()?;
        }
        Ok(())
    }

    #[cfg(test)]
    fn push(&mut self, seq: u64, entry: &Entry) -> Result<(), SourceError> {
        let conversation = self.add_conversation(entry.conversation.clone())?;
        let mut record = Vec::new();
        encode(entry, seq, &mut record).map_err(|e| self.damaged(e))?;
        self.push_encoded(
            &record,
            conversation,
            seq,
            entry.time_ms.unwrap_or(NO_TIME),
            id_hash(&entry.message_id),
        )
    }

    /// Sorts the chunk and appends it to the file as one run.
    fn write_run(&mut self) -> Result<(), SourceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending
            .sort_unstable_by_key(|p| (p.conv, p.time_ms, p.seq));
        let mut ranges: Vec<(u32, Range<u64>)> = Vec::new();
        for pending in &self.pending {
            let bytes = &self.chunk[pending.bytes.clone()];
            let pos = self.written;
            self.out
                .write_all(bytes)
                .map_err(|e| store_error(&self.path, e))?;
            self.written += bytes.len() as u64;
            match ranges.last_mut() {
                Some((conv, range)) if *conv == pending.conv => range.end = self.written,
                _ => ranges.push((pending.conv, pos..self.written)),
            }
            self.keys.push(Key {
                id_hash: pending.id_hash,
                seq: pending.seq,
                pos,
            })?;
        }
        self.runs.push(Run { ranges });
        self.pending.clear();
        self.chunk.clear();
        Ok(())
    }

    /// Writes the last run, drops repeated msgids, and opens the store for reading.
    /// `cap` bounds how many repeats with other content are listed.
    pub fn finish(mut self, cap: usize) -> Result<(Store, Repeats), SourceError> {
        self.write_run()?;
        self.out.flush().map_err(|e| store_error(&self.path, e))?;
        drop(self.out);
        let file = File::options()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| store_error(&self.path, e))?;
        let mut store = Store {
            _dir: self.dir,
            path: self.path,
            file,
            runs: self.runs,
            conversation_ids: self.conversation_ids,
            conversations: self.conversations,
        };
        let repeats = store.drop_repeats(self.keys, cap)?;
        Ok((store, repeats))
    }

    fn damaged(&self, detail: String) -> SourceError {
        SourceError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

fn store_error(path: &Path, error: io::Error) -> SourceError {
    SourceError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("the temporary message store failed (is the disk full?): {error}"),
    }
}

/// Sorted runs of duplicate-search keys: in memory while few, in a file beyond.
struct KeyRuns {
    path: PathBuf,
    chunk: usize,
    buffer: Vec<Key>,
    out: Option<BufWriter<File>>,
    written: u64,
    runs: Vec<Range<u64>>,
}

impl KeyRuns {
    fn new(path: PathBuf, chunk: usize) -> KeyRuns {
        KeyRuns {
            path,
            chunk,
            buffer: Vec::new(),
            out: None,
            written: 0,
            runs: Vec::new(),
        }
    }

    fn push(&mut self, key: Key) -> Result<(), SourceError> {
        self.buffer.push(key);
        if self.buffer.len() >= self.chunk {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), SourceError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let file = File::create(&self.path).map_err(|e| store_error(&self.path, e))?;
                self.out.insert(BufWriter::with_capacity(1 << 20, file))
            }
        };
        self.buffer.sort_unstable();
        let start = self.written;
        for key in &self.buffer {
            key.write(out).map_err(|e| store_error(&self.path, e))?;
        }
        self.written += (self.buffer.len() * KEY_BYTES) as u64;
        self.runs.push(start..self.written);
        self.buffer.clear();
        Ok(())
    }

    /// Calls `each` on every key in (hash, seq) order.
    fn merge(
        mut self,
        mut each: impl FnMut(Key) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        if self.out.is_none() {
            self.buffer.sort_unstable();
            return self.buffer.into_iter().try_for_each(each);
        }
        self.spill()?;
        if let Some(mut out) = self.out.take() {
            out.flush().map_err(|e| store_error(&self.path, e))?;
        }
        let file = File::open(&self.path).map_err(|e| store_error(&self.path, e))?;
        let capacity = (STREAM_BUFFERS / self.runs.len().max(1)).clamp(16 << 10, 1 << 20);
        let mut readers: Vec<RangeReader> = self
            .runs
            .iter()
            .map(|run| RangeReader::new(&file, run.clone(), capacity))
            .collect();
        let mut heads: BinaryHeap<Reverse<(Key, usize)>> = BinaryHeap::new();
        let error = |e| store_error(&self.path, e);
        for (i, reader) in readers.iter_mut().enumerate() {
            if let Some(bytes) = reader.take(KEY_BYTES).map_err(error)? {
                heads.push(Reverse((Key::read(reader.slice(bytes)), i)));
            }
        }
        while let Some(Reverse((key, i))) = heads.pop() {
            each(key)?;
            let reader = &mut readers[i];
            if let Some(bytes) = reader.take(KEY_BYTES).map_err(error)? {
                heads.push(Reverse((Key::read(reader.slice(bytes)), i)));
            }
        }
        Ok(())
    }
}

/// Reads a byte range of a file through a buffer, by position (several readers share it).
struct RangeReader<'f> {
    file: &'f File,
    next: u64,
    end: u64,
    buffer: Vec<u8>,
    at: usize,
    filled: usize,
}

impl<'f> RangeReader<'f> {
    fn new(file: &'f File, range: Range<u64>, capacity: usize) -> RangeReader<'f> {
        let capacity = capacity.min(usize::try_from(range.end - range.start).unwrap_or(capacity));
        RangeReader {
            file,
            next: range.start,
            end: range.end,
            buffer: vec![0; capacity],
            at: 0,
            filled: 0,
        }
    }

    /// The next `n` bytes (a range of [`slice`](Self::slice)), or `None` at the end of the
    /// range; an error if the range ends within them.
    fn take(&mut self, n: usize) -> io::Result<Option<Range<usize>>> {
        if self.filled - self.at < n {
            if self.filled == self.at && self.next >= self.end {
                return Ok(None);
            }
            self.refill(n)?;
        }
        let taken = self.at..self.at + n;
        self.at += n;
        Ok(Some(taken))
    }

    fn slice(&self, range: Range<usize>) -> &[u8] {
        &self.buffer[range]
    }

    fn refill(&mut self, n: usize) -> io::Result<()> {
        self.buffer.copy_within(self.at..self.filled, 0);
        self.filled -= self.at;
        self.at = 0;
        if self.buffer.len() < n {
            self.buffer.resize(n, 0);
        }
        while self.filled < n {
            let left = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
            let want = (self.buffer.len() - self.filled).min(left);
            if want == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a record runs past the end of its run",
                ));
            }
            let read = read_at(
                self.file,
                &mut self.buffer[self.filled..self.filled + want],
                self.next,
            )?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the store file is shorter than written",
                ));
            }
            self.filled += read;
            self.next += read as u64;
        }
        Ok(())
    }

    /// The body of the next record (after its length).
    fn next_record(&mut self) -> io::Result<Option<Range<usize>>> {
        let Some(len) = self.take(4)? else {
            return Ok(None);
        };
        let len = u32_at(self.slice(len), 0) as usize;
        match self.take(len)? {
            Some(body) => Ok(Some(body)),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a record cut short",
            )),
        }
    }
}

fn read_at(file: &File, buffer: &mut [u8], pos: u64) -> io::Result<usize> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_at(file, buffer, pos);
    #[cfg(windows)]
    return std::os::windows::fs::FileExt::seek_read(file, buffer, pos);
}

fn write_at(file: &File, bytes: &[u8], pos: u64) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_all_at(file, bytes, pos);
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < bytes.len() {
            let n =
                std::os::windows::fs::FileExt::seek_write(file, &bytes[done..], pos + done as u64)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// The finished store. Its temporary directory is removed when it is dropped.
pub struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
    file: File,
    runs: Vec<Run>,
    conversation_ids: HashMap<String, u32>,
    conversations: Vec<StoredConversation>,
}

/// The first message seen with one msgid, for comparing later ones.
struct FirstSeen {
    msgid: String,
    conv: u32,
    time_ms: i64,
    text: String,
}

impl Store {
    /// The conversations that still have messages, in no particular order.
    pub fn conversations(&self) -> impl Iterator<Item = &StoredConversation> {
        self.conversations.iter().filter(|c| c.messages > 0)
    }

    /// Calls `each` on the kept messages of `conversation` in (time, source order) until it
    /// returns `false`.
    pub fn read(
        &self,
        conversation: &str,
        mut each: impl FnMut(&Record) -> bool,
    ) -> Result<(), SourceError> {
        let Some(&conv) = self.conversation_ids.get(conversation) else {
            return Ok(());
        };
        let ranges: Vec<Range<u64>> = self.runs.iter().filter_map(|r| r.range(conv)).collect();
        let capacity = (STREAM_BUFFERS / ranges.len().max(1)).clamp(16 << 10, 1 << 20);
        let mut readers: Vec<(RangeReader, Range<usize>)> = Vec::with_capacity(ranges.len());
        let mut heads: BinaryHeap<Reverse<(i64, u64, usize)>> = BinaryHeap::new();
        for range in ranges {
            let mut reader = RangeReader::new(&self.file, range, capacity);
            if let Some(body) = reader.next_record().map_err(|e| self.io_error(e))? {
                let (time, seq) = self.order(reader.slice(body.clone()))?;
                heads.push(Reverse((time, seq, readers.len())));
                readers.push((reader, body));
            }
        }
        while let Some(Reverse((_, _, i))) = heads.pop() {
            let (reader, body) = &mut readers[i];
            let record = decode(reader.slice(body.clone())).map_err(|e| self.damaged(e))?;
            if !record.dropped && !each(&record) {
                return Ok(());
            }
            if let Some(next) = reader.next_record().map_err(|e| self.io_error(e))? {
                let (time, seq) = self.order(reader.slice(next.clone()))?;
                *body = next;
                heads.push(Reverse((time, seq, i)));
            }
        }
        Ok(())
    }

    fn order(&self, body: &[u8]) -> Result<(i64, u64), SourceError> {
        order_of(body).ok_or_else(|| self.damaged("a record shorter than its header".into()))
    }

    /// Marks every message whose msgid appeared earlier in source order as dropped, and
    /// lists those that differ from the first (conversation, time or text).
    fn drop_repeats(&mut self, keys: KeyRuns, cap: usize) -> Result<Repeats, SourceError> {
        let mut repeats = Repeats::default();
        // The first `cap` repeats in source order: a max-heap evicting the latest.
        let mut listed: BinaryHeap<Repeat> = BinaryHeap::new();
        let mut group_hash: Option<u64> = None;
        let mut group_first: Option<Key> = None;
        // The distinct msgids of the group's hash, read once a second key shares it.
        let mut firsts: Vec<FirstSeen> = Vec::new();
        let mut buffer: Vec<u8> = Vec::new();
        keys.merge(|key| {
            if group_hash != Some(key.id_hash) {
                group_hash = Some(key.id_hash);
                group_first = Some(key);
                firsts.clear();
                return Ok(());
            }
            if firsts.is_empty() {
                if let Some(first) = group_first {
                    let record = self.record_at(first.pos, &mut buffer)?;
                    firsts.push(FirstSeen {
                        msgid: record.msgid.to_string(),
                        conv: record.conv,
                        time_ms: record.time_ms,
                        text: record.text.to_string(),
                    });
                }
            }
            let record = self.record_at(key.pos, &mut buffer)?;
            let Some(first) = firsts.iter().find(|f| f.msgid == record.msgid) else {
                let seen = FirstSeen {
                    msgid: record.msgid.to_string(),
                    conv: record.conv,
                    time_ms: record.time_ms,
                    text: record.text.to_string(),
                };
                firsts.push(seen);
                return Ok(());
            };
            let differs = first.conv != record.conv
                || first.time_ms != record.time_ms
                || first.text != record.text;
            let conv = record.conv as usize;
            if differs {
                listed.push(Repeat {
                    seq: record.seq,
                    msgid: record.msgid.to_string(),
                });
                if listed.len() > cap {
                    listed.pop();
                    repeats.more += 1;
                }
            }
            write_at(&self.file, &[1], key.pos + 4 + DROPPED_AT as u64)
                .map_err(|e| self.io_error(e))?;
            if let Some(c) = self.conversations.get_mut(conv) {
                c.messages = c.messages.saturating_sub(1);
            }
            Ok(())
        })?;
        repeats.listed = listed.into_sorted_vec();
        Ok(repeats)
    }

    /// The record at `pos`, read into `buffer`.
    fn record_at<'b>(&self, pos: u64, buffer: &'b mut Vec<u8>) -> Result<Record<'b>, SourceError> {
        let mut len = [0; 4];
        read_exact_at(&self.file, &mut len, pos).map_err(|e| self.io_error(e))?;
        buffer.resize(u32::from_le_bytes(len) as usize, 0);
        read_exact_at(&self.file, buffer, pos + 4).map_err(|e| self.io_error(e))?;
        decode(buffer).map_err(|e| self.damaged(e))
    }

    fn io_error(&self, error: io::Error) -> SourceError {
        store_error(&self.path, error)
    }

    fn damaged(&self, detail: String) -> SourceError {
        SourceError::Corrupt {
            path: self.path.clone(),
            detail: format!("the temporary message store is damaged: {detail}"),
        }
    }
}

fn read_exact_at(file: &File, mut buffer: &mut [u8], mut pos: u64) -> io::Result<()> {
    while !buffer.is_empty() {
        match read_at(file, buffer, pos)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buffer = &mut buffer[n..];
                pos += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::wecom::record::MediaEntry;
    use crate::records::{Kind, MediaKind};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeMap, HashSet};

    /// Messages in source order with many equal times, repeated msgids (some with other
    /// content, some in other conversations) and every optional field present or not.
    fn entries(count: usize, seed: u64) -> Vec<(u64, Entry)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut made: Vec<(u64, Entry)> = Vec::new();
        let mut seq = 0;
        for i in 0..count {
            seq += rng.gen_range(1..3);
            if i > 0 && rng.gen_bool(0.15) {
                let (_, earlier) = &made[rng.gen_range(0..made.len())];
                let mut repeat = earlier.clone();
                match rng.gen_range(0..4) {
                    0 => repeat.text.push_str(" (edited)"),
                    1 => repeat.time_ms = repeat.time_ms.map(|t| t + 1),
                    2 => repeat.conversation = Conversation::Room("wr-other".into()),
                    _ => {}
                }
                made.push((seq, repeat));
                continue;
            }
            let conversation = match rng.gen_range(0..4) {
                0 => Conversation::Private {
                    id: "a|b".into(),
                    participants: vec!["a".into(), "b".into()],
                },
                n => Conversation::Room(format!("wr{n}")),
            };
            let media = rng.gen_bool(0.3).then(|| MediaEntry {
                kind: MediaKind::File,
                path: format!("media/{i}.pdf"),
                original_name: rng.gen_bool(0.5).then(|| format!("报告{i}.pdf")),
                declared_size: rng.gen_bool(0.5).then(|| rng.gen::<u64>()),
            });
            made.push((
                seq,
                Entry {
                    message_id: format!("m{i}"),
                    conversation,
                    time_ms: Some(rng.gen_range(-3..20)),
                    sender_id: rng.gen_bool(0.9).then(|| format!("u{}", i % 7)),
                    kind: if media.is_some() {
                        Kind::File
                    } else {
                        Kind::Text
                    },
                    text: "字".repeat(rng.gen_range(0..40)),
                    raw_type: "text".into(),
                    media,
                    warning: rng.gen_bool(0.1).then(|| "odd".to_string()),
                },
            ));
        }
        made
    }

    type Row = (
        String,
        i64,
        u64,
        Option<String>,
        String,
        Option<(String, Option<String>, Option<u64>)>,
        Option<String>,
    );

    fn row(seq: u64, e: &Entry) -> Row {
        (
            e.message_id.clone(),
            e.time_ms.unwrap_or(NO_TIME),
            seq,
            e.sender_id.clone(),
            e.text.clone(),
            e.media
                .as_ref()
                .map(|m| (m.path.clone(), m.original_name.clone(), m.declared_size)),
            e.warning.clone(),
        )
    }

    fn stored_row(r: &Record) -> Row {
        (
            r.msgid.to_string(),
            r.time_ms,
            r.seq,
            r.sender.map(str::to_string),
            r.text.to_string(),
            r.media_path.map(|p| {
                (
                    p.to_string(),
                    r.media_name.map(str::to_string),
                    r.media_size,
                )
            }),
            r.warning.map(str::to_string),
        )
    }

    /// What the store must give: per conversation, the first of each msgid in (time, seq)
    /// order; and the later ones that differ, in source order.
    fn expected(made: &[(u64, Entry)]) -> (BTreeMap<String, Vec<Row>>, Vec<Repeat>) {
        let mut firsts: HashMap<&str, &Entry> = HashMap::new();
        let mut kept: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut repeats = Vec::new();
        for (seq, e) in made {
            match firsts.get(e.message_id.as_str()) {
                Some(first) => {
                    if first.conversation.id() != e.conversation.id()
                        || first.time_ms != e.time_ms
                        || first.text != e.text
                    {
                        repeats.push(Repeat {
                            seq: *seq,
                            msgid: e.message_id.clone(),
                        });
                    }
                }
                None => {
                    firsts.insert(&e.message_id, e);
                    kept.entry(e.conversation.id().to_string())
                        .or_default()
                        .push(row(*seq, e));
                }
            }
        }
        for rows in kept.values_mut() {
            rows.sort_by_key(|r| (r.1, r.2));
        }
        (kept, repeats)
    }

    /// Runs of a few dozen messages, and keys spilled every 64.
    const SMALL_RUNS: Limits = Limits {
        chunk_bytes: 3000,
        key_chunk: 64,
    };

    fn build(made: &[(u64, Entry)], limits: Limits, cap: usize) -> (Store, Repeats) {
        let mut builder = Builder::with_limits(limits).unwrap();
        for (seq, entry) in made {
            builder.push(*seq, entry).unwrap();
        }
        builder.finish(cap).unwrap()
    }

    fn read_all(store: &Store, conversation: &str) -> Vec<Row> {
        let mut rows = Vec::new();
        store
            .read(conversation, |r| {
                rows.push(stored_row(r));
                true
            })
            .unwrap();
        rows
    }

    #[test]
    fn reads_back_sorted_and_once_whatever_the_run_sizes() {
        let made = entries(3000, 7);
        let (kept, repeats) = expected(&made);
        assert!(
            repeats.len() > 100 && kept.len() == 4,
            "{} {}",
            repeats.len(),
            kept.len()
        );
        let all_in_memory = LIMITS;
        let one_record_runs = Limits {
            chunk_bytes: 1,
            key_chunk: 1,
        };
        let small_runs = Limits {
            chunk_bytes: 4000,
            key_chunk: 97,
        };
        for limits in [all_in_memory, one_record_runs, small_runs] {
            let (store, listed) = build(&made, limits, usize::MAX);
            assert_eq!(listed.listed, repeats, "{limits:?}");
            assert_eq!(listed.more, 0);
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for c in store.conversations() {
                counts.insert(c.conversation.id().to_string(), c.messages);
            }
            let expected_counts: BTreeMap<String, u64> = kept
                .iter()
                .map(|(k, v)| (k.clone(), v.len() as u64))
                .collect();
            assert_eq!(counts, expected_counts, "{limits:?}");
            for (conversation, rows) in &kept {
                assert_eq!(
                    &read_all(&store, conversation),
                    rows,
                    "{conversation} {limits:?}"
                );
            }
            assert!(read_all(&store, "nobody").is_empty());
        }
    }

    #[test]
    fn listed_repeats_are_the_first_in_source_order() {
        let made = entries(2000, 3);
        let (_, repeats) = expected(&made);
        let limits = Limits {
            chunk_bytes: 2000,
            key_chunk: 50,
        };
        let (_, listed) = build(&made, limits, 10);
        assert_eq!(listed.listed, repeats[..10]);
        assert_eq!(listed.more, repeats.len() as u64 - 10);
    }

    #[test]
    fn a_conversation_named_only_by_a_repeat_is_gone() {
        let made = entries(2000, 11);
        assert!(made.iter().any(|(_, e)| e.conversation.id() == "wr-other"));
        let (store, _) = build(&made, LIMITS, 5);
        assert!(store
            .conversations()
            .all(|c| c.conversation.id() != "wr-other"));
        assert!(read_all(&store, "wr-other").is_empty());
    }

    #[test]
    fn equal_hashes_with_other_msgids_are_all_kept() {
        // Under test every hash is one of four, so most keys share one with other msgids.
        let made = entries(500, 5);
        let ids: HashSet<&str> = made.iter().map(|(_, e)| e.message_id.as_str()).collect();
        let (store, _) = build(&made, LIMITS, 0);
        let kept: u64 = store.conversations().map(|c| c.messages).sum();
        assert_eq!(kept, ids.len() as u64);
    }

    #[test]
    fn reading_stops_when_asked() {
        let made = entries(1000, 9);
        let (store, _) = build(&made, SMALL_RUNS, 0);
        let mut seen = 0;
        store
            .read("wr1", |_| {
                seen += 1;
                seen < 3
            })
            .unwrap();
        assert_eq!(seen, 3);
    }

    #[test]
    fn a_damaged_store_is_an_error() {
        let made = entries(300, 1);
        let (store, _) = build(&made, SMALL_RUNS, 0);
        let len = store.file.metadata().unwrap().len();
        store.file.set_len(len - 10).unwrap();
        let failed = (1..4)
            .map(|n| store.read(&format!("wr{n}"), |_| true))
            .chain([store.read("a|b", |_| true)])
            .filter(|r| r.is_err())
            .count();
        assert_eq!(failed, 1);
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let _ = order_of(&bytes);
        }

        #[test]
        fn encoding_round_trips(text in ".*", name in proptest::option::of(".*"), size in proptest::option::of(any::<u64>()), time in any::<i64>(), seq in any::<u64>()) {
            let entry = Entry {
                message_id: "m".into(),
                conversation: Conversation::Room("r".into()),
                time_ms: (time != NO_TIME).then_some(time),
                sender_id: None,
                kind: Kind::Video,
                text: text.clone(),
                raw_type: "video".into(),
                media: Some(MediaEntry { kind: MediaKind::Video, path: "media/x.mp4".into(), original_name: name.clone(), declared_size: size }),
                warning: Some(text.clone()),
            };
            let mut bytes = Vec::new();
            encode(&entry, seq, &mut bytes).unwrap();
            bytes[4 + CONV_AT] = 9;
            prop_assert_eq!(u32_at(&bytes, 0) as usize, bytes.len() - 4);
            let record = decode(&bytes[4..]).unwrap();
            prop_assert_eq!(stored_row(&record), row(seq, &entry));
            prop_assert_eq!((record.conv, record.dropped, record.kind), (9, false, kind_code(Kind::Video) as u8));
            prop_assert_eq!(record.media_kind, media_kind_code(MediaKind::Video) as u8);
        }
    }
}
