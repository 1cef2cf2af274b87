//! `archive/*.jsonl`, read once into a private temporary SQLite store.
//!
//! Lines come in any order and the same msgid may appear twice. Sorting a group's messages
//! in memory would grow with the archive, so every line is parsed once, interpreted, and
//! appended to a database in a temporary directory (a reader thread parses while this one
//! inserts). Duplicates are then removed in one pass over an index of msgid hashes (the
//! first occurrence in source order wins), and an index on (conversation, time, source
//! order) serves each conversation in order. Both indexes are built after the inserts, as
//! sorts, which is several times faster than keeping a unique key up to date under random
//! msgids. The source files are only ever read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use rusqlite::{params, Connection, OpenFlags};
use serde_json::Value;

use super::message::{kind_code, media_kind_code};
use super::record::{self, Conversation, Entry, Outcome};
use super::ARCHIVE_DIR;
use crate::records::Warning;
use crate::source::{SourceError, SourceFile};

/// Warnings kept one by one; beyond this, only counted (a broken archive may have millions).
const MAX_KEPT_WARNINGS: usize = 1000;

/// Problems met while reading, each with where (`archive/x.jsonl:12`), bounded in memory.
#[derive(Debug, Default)]
pub struct WarningLog {
    kept: Vec<Warning>,
    more: u64,
}

impl WarningLog {
    pub fn push(&mut self, location: &str, message: String) {
        if self.kept.len() < MAX_KEPT_WARNINGS {
            self.kept.push(Warning {
                location: location.to_string(),
                message,
            });
        } else {
            self.more += 1;
        }
    }

    pub fn finish(mut self) -> Vec<Warning> {
        if self.more > 0 {
            self.kept.push(Warning {
                location: ARCHIVE_DIR.into(),
                message: format!("{} more problems like the above not listed", self.more),
            });
        }
        self.kept
    }
}

/// The regular files `<root>/<dir>/*.<extension>`, sorted by name. Links are not followed
/// (they could lead out of the root) and are reported instead.
pub fn regular_files(
    root: &Path,
    dir: &str,
    extension: &str,
    warnings: &mut WarningLog,
) -> Result<Vec<SourceFile>, SourceError> {
    let path = root.join(dir);
    let entries = std::fs::read_dir(&path).map_err(|e| SourceError::io(&path, e))?;
    let mut files: Vec<(std::ffi::OsString, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::io(&path, e))?;
        let name = entry.file_name();
        let has_extension = Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(extension));
        if !has_extension {
            continue;
        }
        let file_path = entry.path();
        let meta =
            std::fs::symlink_metadata(&file_path).map_err(|e| SourceError::io(&file_path, e))?;
        if meta.is_file() {
            files.push((name, file_path));
        } else {
            warnings.push(
                &format!("{dir}/{}", name.to_string_lossy()),
                "not a regular file (a link or directory): not read".into(),
            );
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|(name, path)| SourceFile {
            rel_path: format!("{dir}/{}", name.to_string_lossy()),
            path,
        })
        .collect())
}

/// The archive files, for detection.
pub fn archive_files(root: &Path) -> Result<Vec<SourceFile>, SourceError> {
    regular_files(root, ARCHIVE_DIR, "jsonl", &mut WarningLog::default())
}

/// The private store: a database in a temporary directory removed when the source is dropped.
pub struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Store {
    /// A read-only connection for one stream.
    pub fn connect(&self) -> Result<Connection, SourceError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.error(e))?;
        Ok(conn)
    }

    fn error(&self, error: rusqlite::Error) -> SourceError {
        store_error(&self.path, error)
    }
}

fn store_error(path: &Path, error: rusqlite::Error) -> SourceError {
    SourceError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("the temporary message store failed (is the disk full?): {error}"),
    }
}

pub struct Ingested {
    pub store: Store,
    /// Group ids named by messages.
    pub rooms: BTreeSet<String>,
    /// One-to-one chat id → participants.
    pub private_chats: BTreeMap<String, Vec<String>>,
    /// The archive files read.
    pub files: Vec<SourceFile>,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = OFF;
    PRAGMA synchronous = OFF;
    PRAGMA cache_size = -32768;
    CREATE TABLE message (
        seq INTEGER PRIMARY KEY,
        msgid TEXT NOT NULL,
        idhash INTEGER NOT NULL,
        conv TEXT NOT NULL,
        msgtime INTEGER NOT NULL,
        sender TEXT,
        kind INTEGER NOT NULL,
        text TEXT NOT NULL,
        raw_type TEXT NOT NULL,
        media_kind INTEGER,
        media_path TEXT,
        media_name TEXT,
        media_size INTEGER,
        warning TEXT
    );";

const INSERT: &str = "INSERT INTO message \
    (msgid, conv, msgtime, seq, sender, kind, text, raw_type, media_kind, media_path, media_name, media_size, warning, idhash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Reads every archive line into a new store.
pub fn ingest(root: &Path, warnings: &mut WarningLog) -> Result<Ingested, SourceError> {
    let files = regular_files(root, ARCHIVE_DIR, "jsonl", warnings)?;
    let dir = tempfile::Builder::new()
        .prefix("chatvault-wecom-")
        .tempdir()
        .map_err(|e| SourceError::io(Path::new("temporary directory"), e))?;
    let path = dir.path().join("messages.db");
    let conn = Connection::open(&path).map_err(|e| store_error(&path, e))?;
    conn.execute_batch(SCHEMA)
        .map_err(|e| store_error(&path, e))?;
    let mut state = IngestState {
        rooms: BTreeSet::new(),
        private_chats: BTreeMap::new(),
        seq: 0,
        file_starts: Vec::with_capacity(files.len()),
    };
    conn.execute_batch("BEGIN")
        .map_err(|e| store_error(&path, e))?;
    // Parsing overlaps with inserting: a reader thread parses, this one inserts.
    let (sender, receiver) = sync_channel::<Vec<(i64, Box<Entry>)>>(BATCHES_IN_FLIGHT);
    let (parsed, inserted) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut batcher = Batcher {
                batch: Vec::with_capacity(BATCH),
                sender,
            };
            for file in &files {
                state
                    .file_starts
                    .push((state.seq + 1, file.rel_path.clone()));
                if !read_file(file, &mut batcher, &mut state, warnings)? {
                    break;
                }
            }
            batcher.flush();
            Ok(())
        });
        let inserted = insert_all(&conn, &path, receiver);
        let parsed = reader.join().unwrap_or_else(|_| {
            Err(SourceError::Corrupt {
                path: path.clone(),
                detail: "the archive reader stopped unexpectedly".into(),
            })
        });
        (parsed, inserted)
    });
    parsed?;
    inserted?;
    conn.execute_batch("COMMIT")
        .map_err(|e| store_error(&path, e))?;
    remove_duplicates(&conn, &path, &mut state, warnings)?;
    conn.execute_batch("CREATE INDEX message_order ON message (conv, msgtime, seq);")
        .map_err(|e| store_error(&path, e))?;
    drop(conn);
    Ok(Ingested {
        store: Store { _dir: dir, path },
        rooms: state.rooms,
        private_chats: state.private_chats,
        files,
    })
}

struct IngestState {
    rooms: BTreeSet<String>,
    private_chats: BTreeMap<String, Vec<String>>,
    /// Source order: line number across the files in name order.
    seq: i64,
    /// The first seq of each file, to name where a line was.
    file_starts: Vec<(i64, String)>,
}

impl IngestState {
    /// `archive/x.jsonl:12` for a seq.
    fn location(&self, seq: i64) -> String {
        let index = self.file_starts.partition_point(|(start, _)| *start <= seq);
        match index.checked_sub(1).and_then(|i| self.file_starts.get(i)) {
            Some((start, rel)) => format!("{rel}:{}", seq - start + 1),
            None => format!("{ARCHIVE_DIR} line {seq}"),
        }
    }
}

/// Entries handed from the reader thread to the inserting one, a batch at a time.
const BATCH: usize = 1024;
const BATCHES_IN_FLIGHT: usize = 8;

struct Batcher {
    batch: Vec<(i64, Box<Entry>)>,
    sender: SyncSender<Vec<(i64, Box<Entry>)>>,
}

impl Batcher {
    /// `false` once the inserting side has stopped (it failed): reading can stop too.
    fn push(&mut self, seq: i64, entry: Box<Entry>) -> bool {
        self.batch.push((seq, entry));
        self.batch.len() < BATCH || self.flush()
    }

    fn flush(&mut self) -> bool {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        batch.is_empty() || self.sender.send(batch).is_ok()
    }
}

/// Inserts every batch received; on failure, drops the receiver so the reader stops.
fn insert_all(
    conn: &Connection,
    store_path: &Path,
    receiver: Receiver<Vec<(i64, Box<Entry>)>>,
) -> Result<(), SourceError> {
    let mut statement = conn
        .prepare(INSERT)
        .map_err(|e| store_error(store_path, e))?;
    for batch in receiver {
        for (seq, entry) in batch {
            insert(&mut statement, store_path, &entry, seq)?;
        }
    }
    Ok(())
}

fn insert(
    statement: &mut rusqlite::Statement,
    store_path: &Path,
    entry: &Entry,
    seq: i64,
) -> Result<(), SourceError> {
    let media = entry.media.as_ref();
    statement
        .execute(params![
            entry.message_id,
            entry.conversation.id(),
            entry.time_ms,
            seq,
            entry.sender_id,
            kind_code(entry.kind),
            entry.text,
            entry.raw_type,
            media.map(|m| media_kind_code(m.kind)),
            media.map(|m| m.path.as_str()),
            media.and_then(|m| m.original_name.as_deref()),
            media
                .and_then(|m| m.declared_size)
                .and_then(|s| i64::try_from(s).ok()),
            entry.warning,
            id_hash(&entry.message_id),
        ])
        .map_err(|e| store_error(store_path, e))?;
    Ok(())
}

/// A 64-bit hash of a msgid: duplicates are looked for among equal hashes, which sort
/// much faster than the ids themselves.
fn id_hash(msgid: &str) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    msgid.hash(&mut hasher);
    let hash = hasher.finish() as i64;
    // Unit tests collide on purpose, so that telling equal hashes apart is exercised.
    if cfg!(test) {
        hash & 3
    } else {
        hash
    }
}

/// Deletes every message whose msgid appeared earlier in source order, warning when the
/// two differ (a repeated msgid with other content is worth a look).
fn remove_duplicates(
    conn: &Connection,
    path: &Path,
    state: &mut IngestState,
    warnings: &mut WarningLog,
) -> Result<(), SourceError> {
    let error = |e| store_error(path, e);
    conn.execute_batch(
        "CREATE INDEX message_idhash ON message (idhash, seq);
         CREATE TABLE duplicate (seq INTEGER PRIMARY KEY, first INTEGER NOT NULL);
         BEGIN;",
    )
    .map_err(error)?;
    {
        let mut scan = conn
            .prepare("SELECT idhash, seq FROM message ORDER BY idhash, seq")
            .map_err(error)?;
        let mut msgid = conn
            .prepare("SELECT msgid FROM message WHERE seq = ?1")
            .map_err(error)?;
        let mut record = conn
            .prepare("INSERT INTO duplicate (seq, first) VALUES (?1, ?2)")
            .map_err(error)?;
        // Seqs sharing one hash, in source order: nearly always one, so a few at most.
        let mut run: Vec<i64> = Vec::new();
        let mut run_hash: Option<i64> = None;
        let mut rows = scan.query([]).map_err(error)?;
        loop {
            let row = rows.next().map_err(error)?;
            let next = match row {
                Some(row) => Some((
                    row.get::<_, i64>(0).map_err(error)?,
                    row.get::<_, i64>(1).map_err(error)?,
                )),
                None => None,
            };
            if next.map(|(hash, _)| hash) != run_hash {
                if run.len() > 1 {
                    // Equal hashes are duplicates only when the msgids are equal too.
                    let mut firsts: Vec<(String, i64)> = Vec::new();
                    for &seq in &run {
                        let id: String = msgid.query_row([seq], |r| r.get(0)).map_err(error)?;
                        match firsts.iter().find(|(first_id, _)| *first_id == id) {
                            Some(&(_, first)) => {
                                record.execute([seq, first]).map_err(error)?;
                            }
                            None => firsts.push((id, seq)),
                        }
                    }
                }
                run.clear();
            }
            let Some((hash, seq)) = next else { break };
            run_hash = Some(hash);
            run.push(seq);
        }
    }
    conn.execute_batch("COMMIT").map_err(error)?;
    let mut orphaned: BTreeSet<String> = BTreeSet::new();
    {
        let mut pairs = conn
            .prepare(
                "SELECT d.seq, a.msgid, a.conv, a.msgtime, a.text, b.conv, b.msgtime, b.text \
                 FROM duplicate d JOIN message a ON a.seq = d.first JOIN message b ON b.seq = d.seq \
                 WHERE a.conv <> b.conv OR a.msgtime <> b.msgtime OR a.text <> b.text",
            )
            .map_err(error)?;
        let mut rows = pairs.query([]).map_err(error)?;
        while let Some(row) = rows.next().map_err(error)? {
            let seq: i64 = row.get(0).map_err(error)?;
            let msgid: String = row.get(1).map_err(error)?;
            let first_conv: String = row.get(2).map_err(error)?;
            let conv: String = row.get(5).map_err(error)?;
            warnings.push(
                &state.location(seq),
                format!(
                    "msgid {msgid} appeared before with a different content: the first is kept"
                ),
            );
            if conv != first_conv {
                orphaned.insert(conv);
            }
        }
    }
    conn.execute_batch(
        "DELETE FROM message WHERE seq IN (SELECT seq FROM duplicate);
         DROP TABLE duplicate;
         DROP INDEX message_idhash;",
    )
    .map_err(error)?;
    // A conversation named only by a discarded duplicate has no messages left.
    let mut exists = conn
        .prepare("SELECT 1 FROM message WHERE conv = ?1 LIMIT 1")
        .map_err(error)?;
    for conv in orphaned {
        if !exists.exists([&conv]).map_err(error)? {
            state.rooms.remove(&conv);
            state.private_chats.remove(&conv);
        }
    }
    Ok(())
}

/// Reads one archive file into the batcher; `false` when the inserting side has stopped.
fn read_file(
    file: &SourceFile,
    batcher: &mut Batcher,
    state: &mut IngestState,
    warnings: &mut WarningLog,
) -> Result<bool, SourceError> {
    let handle = File::open(&file.path).map_err(|e| SourceError::io(&file.path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, handle);
    let mut line: Vec<u8> = Vec::with_capacity(4096);
    let mut line_no: u64 = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| SourceError::io(&file.path, e))?;
        if read == 0 {
            return Ok(true);
        }
        line_no += 1;
        state.seq += 1;
        let mut bytes = line.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let bytes = bytes.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        let location = || format!("{}:{line_no}", file.rel_path);
        let (outcome, lossy) = match record::interpret_fast(bytes) {
            Some(outcome) => (outcome, false),
            None => match parse(bytes) {
                Ok((value, lossy)) => (record::interpret(&value, &location()), lossy),
                Err(problem) => {
                    let cut = if !line.ends_with(b"\n") {
                        " (the file ends mid-line: truncated?)"
                    } else {
                        ""
                    };
                    warnings.push(&location(), format!("{problem}{cut}: line skipped"));
                    continue;
                }
            },
        };
        let mut entry = match outcome {
            Outcome::Message(entry) => entry,
            Outcome::Switch => continue,
            Outcome::Unusable(why) => {
                warnings.push(&location(), format!("{why}: line skipped"));
                continue;
            }
        };
        if lossy {
            let note = "invalid UTF-8 replaced".to_string();
            entry.warning = Some(match entry.warning.take() {
                Some(w) => format!("{note}; {w}"),
                None => note,
            });
        }
        if let Some(problem) = &entry.warning {
            warnings.push(
                &location(),
                format!("message {}: {problem}", entry.message_id),
            );
        }
        match &entry.conversation {
            Conversation::Room(id) => {
                if !state.rooms.contains(id) {
                    state.rooms.insert(id.clone());
                }
            }
            Conversation::Private { id, participants } => {
                if !state.private_chats.contains_key(id) {
                    state.private_chats.insert(id.clone(), participants.clone());
                }
            }
        }
        if !batcher.push(state.seq, entry) {
            return Ok(false);
        }
    }
}

/// Parses a line; invalid UTF-8 is replaced (and reported) rather than losing the line.
fn parse(bytes: &[u8]) -> Result<(Value, bool), String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => Ok((value, false)),
        Err(error) => {
            if std::str::from_utf8(bytes).is_err() {
                let text = String::from_utf8_lossy(bytes);
                if let Ok(value) = serde_json::from_str::<Value>(&text) {
                    return Ok((value, true));
                }
            }
            Err(format!("not JSON ({error})"))
        }
    }
}
