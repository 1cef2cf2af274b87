//! One pass over `message` for many conversations at once.
//!
//! WeChat appends every conversation's rows to one table, so a conversation read through
//! the `(talker, createTime)` index costs a B-tree descent and a page read per message, and
//! each table page is read again for every conversation with a row on it. When most of the
//! table is wanted, one sequential scan is about three times cheaper: it copies each wanted
//! row to a temporary file (a spool) of its conversation, and the conversation is later
//! streamed from there in the order the index query would return: (`createTime`, `msgId`).
//!
//! Rows are mostly in that order already, but not always (a phone's clock was wrong, a
//! message arrived late, the table was rebuilt). So each conversation keeps a few *runs*,
//! files whose rows are in order, and a row goes to the run it extends most closely; a row
//! no run can take is a *straggler*, kept in a file of its own and sorted in memory when
//! the conversation is read (their number is capped). Reading merges the runs and the
//! sorted stragglers. A conversation with too many stragglers, or with keys that are not
//! plain integers, gets no spool and is read through the index as before. The spools are a
//! private optimization: if writing them fails for any reason, every conversation is read
//! through the index.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::message::{self, RawRow};
use super::DATABASE;
use crate::source::sqlite::map_sqlite_error;
use crate::source::stream::Emitter;
use crate::source::SourceError;

/// Below this share of the table, per-conversation index reads are cheaper than a scan.
const MIN_SHARE: f64 = 0.25;
/// Conversations spooled by one scan; each may hold `MAX_RUNS + 1` files open per share,
/// so that at most 480 files are open, well under the usual limit of 1024.
const MAX_CONVERSATIONS: usize = 48;
const MAX_RUNS: usize = 4;
/// Stragglers of one conversation, all sorted in memory when it is read: at most this
/// many rows, and this many bytes of them.
const MAX_STRAGGLERS: u64 = 20_000;
const MAX_STRAGGLER_BYTES: u64 = 16 << 20;
/// Write buffers of all files together.
const BUFFER_BUDGET: usize = 4 << 20;

/// The order of the index query, `ORDER BY createTime, msgId` (NULL first).
type Key = (Option<i64>, i64);

fn key(row: &RawRow) -> Key {
    (row.create_time, row.local_id)
}

/// Conversations spooled by one scan, each taken (and its files deleted) once read.
pub struct Spools {
    _dir: tempfile::TempDir,
    ready: Mutex<HashMap<String, Spooled>>,
    /// Every conversation asked for was spooled: none will be read from the database.
    pub complete: bool,
}

/// One conversation's files.
pub struct Spooled {
    runs: Vec<PathBuf>,
    stragglers: Vec<PathBuf>,
}

impl Spools {
    /// The spool of `talker`, if it has one; a second call for the same talker gets `None`
    /// (its stream deletes the files as it ends).
    pub fn take(&self, talker: &str) -> Option<Spooled> {
        self.ready.lock().ok()?.remove(talker)
    }
}

/// Decides whether a scan pays off for `talkers` and, if so, spools them. `Ok(None)`: read
/// every conversation through the index. `connect` opens a connection for each of the
/// threads that scan a share of the table.
/// `cancel` stops the scan early (the source was dropped).
pub fn build(
    connect: impl Fn() -> Result<Connection, SourceError> + Sync,
    talkers: &[String],
    has_imginfo: bool,
    has_appattach: bool,
    cancel: &AtomicBool,
) -> Result<Option<Spools>, SourceError> {
    if talkers.len() < 2 || talkers.len() > MAX_CONVERSATIONS {
        return Ok(None);
    }
    let conn = connect()?;
    let db_path = Path::new(DATABASE);
    let sql_error = |e| map_sqlite_error(db_path, e);
    // The scan compares talkers byte for byte; a collation on the table would make SQL's
    // `talker = ?` match differently, so such a table is left to the index.
    if super::message_table_declares_a_collation(&conn).map_err(sql_error)? {
        return Ok(None);
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut total = 0u64;
    {
        let mut stmt = conn
            .prepare("SELECT talker, count(*) FROM message GROUP BY talker")
            .map_err(sql_error)?;
        let mut rows = stmt.query([]).map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let n = u64::try_from(row.get::<_, i64>(1).map_err(sql_error)?).unwrap_or(0);
            total += n;
            if let Ok(talker) = row.get::<_, String>(0) {
                counts.insert(talker, n);
            }
        }
    }
    let wanted: u64 = talkers.iter().filter_map(|t| counts.get(t)).sum();
    if total == 0 || (wanted as f64) < MIN_SHARE * total as f64 {
        return Ok(None);
    }
    // Two shares by rowid, one per core; a table without rowids is scanned whole.
    let bounds: Option<(i64, i64)> = conn
        .query_row("SELECT min(rowid), max(rowid) FROM message", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .ok();
    let shares: Vec<Option<(i64, i64)>> = match bounds {
        Some((low, high)) if high > low => {
            // In i128: the span of two i64 rowids may not fit an i64.
            let middle = ((i128::from(low) + i128::from(high)) / 2) as i64;
            match middle.checked_add(1) {
                Some(next) => vec![Some((low, middle)), Some((next, high))],
                None => vec![None],
            }
        }
        _ => vec![None],
    };
    drop(conn);

    let dir = tempfile::Builder::new()
        .prefix("chatvault-wechat-")
        .tempdir()
        .map_err(|e| SourceError::io(Path::new("temporary directory"), e))?;
    let files = Files {
        dir: dir.path().to_path_buf(),
        capacity: (BUFFER_BUDGET / (talkers.len() * (MAX_RUNS + 1) * shares.len()))
            .clamp(4 << 10, 256 << 10),
        max_stragglers: MAX_STRAGGLERS / shares.len() as u64,
        max_straggler_bytes: MAX_STRAGGLER_BYTES / shares.len() as u64,
    };
    let sql = message::select_sql(has_imginfo, has_appattach);
    let scanned: Vec<Result<Vec<Option<Spooled>>, SourceError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(share, range)| {
                let (connect, files, sql) = (&connect, &files, &sql);
                scope.spawn(move || {
                    let conn = connect()?;
                    scan_share(&conn, sql, *range, share, talkers, files, cancel)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });

    // A conversation is spooled when every share spooled it.
    let mut merged: Vec<Option<Spooled>> = (0..talkers.len())
        .map(|_| {
            Some(Spooled {
                runs: Vec::new(),
                stragglers: Vec::new(),
            })
        })
        .collect();
    for share in scanned {
        for (all, part) in merged.iter_mut().zip(share?) {
            match (all.as_mut(), part) {
                (Some(all), Some(part)) => {
                    all.runs.extend(part.runs);
                    all.stragglers.extend(part.stragglers);
                }
                _ => *all = None,
            }
        }
    }
    let complete = merged.iter().all(Option::is_some);
    let ready = talkers
        .iter()
        .zip(merged)
        .filter_map(|(talker, spooled)| Some((talker.clone(), spooled?)))
        .collect();
    Ok(Some(Spools {
        _dir: dir,
        ready: Mutex::new(ready),
        complete,
    }))
}

/// Scans the rows of one rowid range (or the whole table), spooling each talker's rows;
/// returns each talker's files, in `talkers` order (`None`: not spooled).
fn scan_share(
    conn: &Connection,
    sql: &str,
    range: Option<(i64, i64)>,
    share: usize,
    talkers: &[String],
    files: &Files,
    cancel: &AtomicBool,
) -> Result<Vec<Option<Spooled>>, SourceError> {
    let db_path = Path::new(DATABASE);
    let sql_error = |e| map_sqlite_error(db_path, e);
    let index: HashMap<&[u8], usize> = talkers
        .iter()
        .enumerate()
        .map(|(n, t)| (t.as_bytes(), n))
        .collect();
    let mut spools: Vec<Spool> = (0..talkers.len())
        .map(|n| Spool::new(format!("{share}-{n}")))
        .collect();
    // Rows of other talkers are skipped by SQLite, before their media lookups run; the `+`
    // keeps SQLite from answering the IN through the talker index, which would read the
    // table in talker order, a page per row, instead of once in rowid order.
    let wanted = vec!["?"; talkers.len()].join(", ");
    let mut params: Vec<rusqlite::types::Value> = talkers
        .iter()
        .map(|t| rusqlite::types::Value::Text(t.clone()))
        .collect();
    let query = match range {
        Some((low, high)) => {
            params.push(low.into());
            params.push(high.into());
            let n = talkers.len();
            format!(
                "{sql} WHERE +m.talker IN ({wanted}) AND m.rowid BETWEEN ?{} AND ?{}",
                n + 1,
                n + 2
            )
        }
        None => format!("{sql} WHERE +m.talker IN ({wanted})"),
    };
    let mut stmt = conn.prepare(&query).map_err(sql_error)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(sql_error)?;
    let mut record = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        if cancel.load(Ordering::Relaxed) {
            return Err(SourceError::Corrupt {
                path: db_path.to_path_buf(),
                detail: "the scan was cancelled".into(),
            });
        }
        // A talker stored as a number matches `talker = ?` through the column's affinity,
        // but not a byte comparison: such a table is left to the index.
        let Ok(ValueRef::Text(talker)) = row.get_ref(10) else {
            return Err(SourceError::Corrupt {
                path: db_path.to_path_buf(),
                detail: "a talker that is not text".into(),
            });
        };
        let Some(&n) = index.get(talker) else {
            continue;
        };
        let spool = &mut spools[n];
        if spool.abandoned {
            continue;
        }
        // Only plain integer keys are compared here; anything else is left to SQLite.
        let plain = matches!(row.get_ref(4), Ok(ValueRef::Integer(_) | ValueRef::Null))
            && matches!(row.get_ref(0), Ok(ValueRef::Integer(_)));
        if !plain {
            spool.abandon();
            continue;
        }
        let raw = message::raw_row(row);
        record.clear();
        encode(&raw, &mut record);
        spool.add((raw.create_time, raw.local_id), &record, files)?;
    }
    spools.into_iter().map(Spool::finish).collect()
}

/// Where the scan writes and the limits it keeps to.
struct Files {
    dir: PathBuf,
    capacity: usize,
    /// Per conversation and share.
    max_stragglers: u64,
    max_straggler_bytes: u64,
}

impl Files {
    fn create(&self, name: String) -> Result<(PathBuf, BufWriter<File>), SourceError> {
        let path = self.dir.join(name);
        let file = File::create(&path).map_err(|e| SourceError::io(&path, e))?;
        Ok((path, BufWriter::with_capacity(self.capacity, file)))
    }
}

struct Run {
    path: PathBuf,
    file: BufWriter<File>,
    last: Key,
}

struct Spool {
    /// Names its files.
    name: String,
    runs: Vec<Run>,
    stragglers: Option<(PathBuf, BufWriter<File>)>,
    straggler_count: u64,
    straggler_bytes: u64,
    abandoned: bool,
}

impl Spool {
    fn new(name: String) -> Spool {
        Spool {
            name,
            runs: Vec::new(),
            stragglers: None,
            straggler_count: 0,
            straggler_bytes: 0,
            abandoned: false,
        }
    }

    fn add(&mut self, key: Key, record: &[u8], files: &Files) -> Result<(), SourceError> {
        // The run whose last key is the greatest not above this one keeps runs tight.
        let fitting = self
            .runs
            .iter()
            .enumerate()
            .filter(|(_, run)| run.last <= key)
            .max_by_key(|(_, run)| run.last)
            .map(|(n, _)| n);
        let run = match fitting {
            Some(n) => &mut self.runs[n],
            None if self.runs.len() < MAX_RUNS => {
                let (path, file) = files.create(format!("{}.{}", self.name, self.runs.len()))?;
                self.runs.push(Run {
                    path,
                    file,
                    last: key,
                });
                let n = self.runs.len() - 1;
                &mut self.runs[n]
            }
            None => {
                self.straggler_count += 1;
                self.straggler_bytes += record.len() as u64;
                if self.straggler_count > files.max_stragglers
                    || self.straggler_bytes > files.max_straggler_bytes
                {
                    self.abandon();
                    return Ok(());
                }
                if self.stragglers.is_none() {
                    self.stragglers = Some(files.create(format!("{}.stragglers", self.name))?);
                }
                if let Some((path, file)) = self.stragglers.as_mut() {
                    file.write_all(record)
                        .map_err(|e| SourceError::io(path, e))?;
                }
                return Ok(());
            }
        };
        run.last = key;
        run.file
            .write_all(record)
            .map_err(|e| SourceError::io(&run.path, e))
    }

    fn abandon(&mut self) {
        self.abandoned = true;
        for run in self.runs.drain(..) {
            let _ = std::fs::remove_file(&run.path);
        }
        if let Some((path, _)) = self.stragglers.take() {
            let _ = std::fs::remove_file(path);
        }
    }

    fn finish(self) -> Result<Option<Spooled>, SourceError> {
        if self.abandoned {
            return Ok(None);
        }
        let mut runs = Vec::with_capacity(self.runs.len());
        for run in self.runs {
            run.file
                .into_inner()
                .map_err(|e| SourceError::io(&run.path, e.into_error()))?;
            runs.push(run.path);
        }
        let mut stragglers = Vec::new();
        if let Some((path, file)) = self.stragglers {
            file.into_inner()
                .map_err(|e| SourceError::io(&path, e.into_error()))?;
            stragglers.push(path);
        }
        Ok(Some(Spooled { runs, stragglers }))
    }
}

/// One input of the merge: a run file, or the sorted stragglers.
enum Input {
    Run(PathBuf, BufReader<File>),
    Sorted(std::vec::IntoIter<RawRow<'static>>),
}

impl Input {
    fn next(&mut self) -> Result<Option<RawRow<'static>>, SourceError> {
        match self {
            Input::Run(path, reader) => decode(reader).map_err(|e| SourceError::io(path, e)),
            Input::Sorted(rows) => Ok(rows.next()),
        }
    }
}

/// Streams a conversation's spooled rows in order, then deletes its files.
pub fn read(spooled: &Spooled, emit: &mut Emitter<RawRow<'static>>) -> Result<(), SourceError> {
    let result = merge(spooled, emit);
    for path in spooled.runs.iter().chain(&spooled.stragglers) {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn merge(spooled: &Spooled, emit: &mut Emitter<RawRow<'static>>) -> Result<(), SourceError> {
    let mut inputs = Vec::with_capacity(spooled.runs.len() + 1);
    for path in &spooled.runs {
        let file = File::open(path).map_err(|e| SourceError::io(path, e))?;
        inputs.push(Input::Run(
            path.clone(),
            BufReader::with_capacity(64 << 10, file),
        ));
    }
    if !spooled.stragglers.is_empty() {
        let mut rows = Vec::new();
        for path in &spooled.stragglers {
            let file = File::open(path).map_err(|e| SourceError::io(path, e))?;
            let mut reader = BufReader::new(file);
            while let Some(row) = decode(&mut reader).map_err(|e| SourceError::io(path, e))? {
                rows.push(row);
            }
        }
        rows.sort_by_key(key);
        inputs.push(Input::Sorted(rows.into_iter()));
    }
    let mut heads: Vec<Option<RawRow<'static>>> = Vec::with_capacity(inputs.len());
    for input in &mut inputs {
        heads.push(input.next()?);
    }
    // A handful of inputs: a linear pick of the smallest head beats a heap.
    loop {
        let mut smallest: Option<(usize, Key)> = None;
        for (i, head) in heads.iter().enumerate() {
            if let Some(row) = head {
                let k = key(row);
                if smallest.is_none_or(|(_, s)| k < s) {
                    smallest = Some((i, k));
                }
            }
        }
        let Some((i, _)) = smallest else {
            return Ok(());
        };
        let next = inputs[i].next()?;
        if let Some(row) = std::mem::replace(&mut heads[i], next) {
            if !emit.emit(row) {
                return Ok(());
            }
        }
    }
}

// A record: presence flags, `local_id`, then each present field in declaration order
// (integers as 8 bytes little-endian, byte strings as a 4-byte length and the bytes).
const SERVER_ID: u16 = 1;
const TYPE_CODE: u16 = 1 << 1;
const CREATE_TIME: u16 = 1 << 2;
const CONTENT: u16 = 1 << 3;
const IMG_PATH: u16 = 1 << 4;
const BIG_IMG_PATH: u16 = 1 << 5;
const FILE_FULL_PATH: u16 = 1 << 6;
const FILE_TOTAL_LEN: u16 = 1 << 7;
const IS_SEND: u16 = 1 << 8;

fn encode(row: &RawRow, out: &mut Vec<u8>) {
    let mut flags = 0u16;
    let mut set = |present: bool, flag: u16| {
        if present {
            flags |= flag;
        }
    };
    set(row.server_id.is_some(), SERVER_ID);
    set(row.type_code.is_some(), TYPE_CODE);
    set(row.create_time.is_some(), CREATE_TIME);
    set(row.content.is_some(), CONTENT);
    set(row.img_path.is_some(), IMG_PATH);
    set(row.big_img_path.is_some(), BIG_IMG_PATH);
    set(row.file_full_path.is_some(), FILE_FULL_PATH);
    set(row.file_total_len.is_some(), FILE_TOTAL_LEN);
    set(row.is_send, IS_SEND);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&row.local_id.to_le_bytes());
    for n in [row.server_id, row.type_code, row.create_time]
        .into_iter()
        .flatten()
    {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for bytes in [
        row.content.as_deref(),
        row.img_path.as_deref(),
        row.big_img_path.as_deref(),
        row.file_full_path.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        // SQLite caps a value at 1 GB by default, well within a u32.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes[..len as usize]);
    }
    if let Some(n) = row.file_total_len {
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// The next record, or `None` at a clean end of file.
fn decode(reader: &mut impl Read) -> std::io::Result<Option<RawRow<'static>>> {
    let mut flags = [0u8; 2];
    loop {
        match reader.read(&mut flags[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    reader.read_exact(&mut flags[1..])?;
    let flags = u16::from_le_bytes(flags);
    let int = |reader: &mut dyn Read| -> std::io::Result<i64> {
        let mut buf = [0u8; 8];
        reader.read_exact(&mut buf)?;
        Ok(i64::from_le_bytes(buf))
    };
    let opt_int = |reader: &mut dyn Read, flag: u16| -> std::io::Result<Option<i64>> {
        if flags & flag == 0 {
            return Ok(None);
        }
        int(reader).map(Some)
    };
    let opt_bytes =
        |reader: &mut dyn Read, flag: u16| -> std::io::Result<Option<Cow<'static, [u8]>>> {
            if flags & flag == 0 {
                return Ok(None);
            }
            let mut len = [0u8; 4];
            reader.read_exact(&mut len)?;
            let len = u64::from(u32::from_le_bytes(len));
            // Read what is there rather than trust the length with an allocation.
            let mut bytes = Vec::new();
            reader.take(len).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != len {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            Ok(Some(Cow::Owned(bytes)))
        };
    let local_id = int(reader)?;
    let server_id = opt_int(reader, SERVER_ID)?;
    let type_code = opt_int(reader, TYPE_CODE)?;
    let create_time = opt_int(reader, CREATE_TIME)?;
    let content = opt_bytes(reader, CONTENT)?;
    let img_path = opt_bytes(reader, IMG_PATH)?;
    let big_img_path = opt_bytes(reader, BIG_IMG_PATH)?;
    let file_full_path = opt_bytes(reader, FILE_FULL_PATH)?;
    let file_total_len = opt_int(reader, FILE_TOTAL_LEN)?;
    Ok(Some(RawRow {
        local_id,
        server_id,
        type_code,
        is_send: flags & IS_SEND != 0,
        create_time,
        content,
        img_path,
        big_img_path,
        file_full_path,
        file_total_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_every_field_present_or_absent() {
        let full = RawRow {
            local_id: -7,
            server_id: Some(i64::MAX),
            type_code: Some(49),
            is_send: true,
            create_time: Some(1_700_000_000_123),
            content: Some(Cow::Borrowed(b"wxid_a:\n\xff\x00 text")),
            img_path: Some(Cow::Borrowed(b"")),
            big_img_path: Some(Cow::Borrowed(b"big.jpg")),
            file_full_path: Some(Cow::Borrowed("/sdcard/下载/a.pdf".as_bytes())),
            file_total_len: Some(12),
        };
        let empty = RawRow {
            local_id: 1,
            server_id: None,
            type_code: None,
            is_send: false,
            create_time: None,
            content: None,
            img_path: None,
            big_img_path: None,
            file_full_path: None,
            file_total_len: None,
        };
        let mut bytes = Vec::new();
        encode(&full, &mut bytes);
        encode(&empty, &mut bytes);
        encode(&full, &mut bytes);
        let mut reader = bytes.as_slice();
        assert_eq!(decode(&mut reader).unwrap(), Some(full.clone()));
        assert_eq!(decode(&mut reader).unwrap(), Some(empty));
        assert_eq!(decode(&mut reader).unwrap(), Some(full));
        assert_eq!(decode(&mut reader).unwrap(), None);
    }

    /// Spools of a table whose rows are in order, out of order beyond what the runs take,
    /// and keyed by text: the first two read back in `ORDER BY createTime, msgId` order, the
    /// third is left to the index.
    #[test]
    fn spools_read_back_in_index_order_and_odd_keys_are_left_to_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE message (msgId INTEGER PRIMARY KEY, msgSvrId INTEGER, type INT,
               isSend INT, createTime INTEGER, talker TEXT, content TEXT, imgPath TEXT);",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO message VALUES (?1, NULL, 1, 0, ?2, ?3, ?4, NULL)")
            .unwrap();
        for id in 1..=3000i64 {
            // `ordered`: rising times; `shuffled`: scrambled times (with ties), far more
            // disorder than the runs take, so there are stragglers; NULL times come first.
            let (talker, time): (&str, Option<i64>) = match id % 3 {
                0 => ("ordered", Some(id * 10)),
                1 => ("shuffled", (id % 50 != 1).then_some(id * 7919 % 1499)),
                _ => ("odd", Some(id)),
            };
            insert
                .execute(rusqlite::params![id, time, talker, format!("m{id}")])
                .unwrap();
        }
        conn.execute("UPDATE message SET createTime = 'x' WHERE msgId = 2000", [])
            .unwrap();
        drop(insert);

        let talkers = ["ordered", "shuffled", "odd"].map(String::from).to_vec();
        let spools = build_for(&path, &talkers)
            .unwrap()
            .expect("most of the table is wanted: spooled");
        assert!(!spools.complete, "`odd` has a text key");
        assert!(spools.take("odd").is_none());
        for talker in ["ordered", "shuffled"] {
            let want: Vec<i64> = conn
                .prepare("SELECT msgId FROM message WHERE talker = ?1 ORDER BY createTime, msgId")
                .unwrap()
                .query_map([talker], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(spooled_ids(&spools, talker), want, "{talker}");
            assert!(spools.take(talker).is_none(), "taken once");
        }
    }

    fn build_for(path: &Path, talkers: &[String]) -> Result<Option<Spools>, SourceError> {
        let no = AtomicBool::new(false);
        build(
            || Ok(Connection::open(path).unwrap()),
            talkers,
            false,
            false,
            &no,
        )
    }

    fn table(dir: &Path, talker_type: &str, rows: &[(i64, &str)]) -> PathBuf {
        let path = dir.join(DATABASE);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE message (msgId INTEGER PRIMARY KEY, msgSvrId INTEGER, type INT,
               isSend INT, createTime INTEGER, talker {talker_type}, content TEXT, imgPath TEXT);"
        ))
        .unwrap();
        for (id, talker) in rows {
            conn.execute(
                "INSERT INTO message VALUES (?1, NULL, 1, 0, ?1, ?2, 'x', NULL)",
                rusqlite::params![id, talker],
            )
            .unwrap();
        }
        path
    }

    fn spooled_ids(spools: &Spools, talker: &str) -> Vec<i64> {
        let spooled = spools.take(talker).expect("spooled");
        let (sender, receiver) = std::sync::mpsc::sync_channel(1 << 12);
        let mut emitter = Emitter::new(sender);
        read(&spooled, &mut emitter).unwrap();
        emitter.flush();
        drop(emitter);
        receiver
            .into_iter()
            .flat_map(Result::unwrap)
            .map(|row| row.local_id)
            .collect()
    }

    #[test]
    fn rowids_at_the_ends_of_the_range_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            (i64::MIN, "a"),
            (-5, "b"),
            (0, "a"),
            (7, "b"),
            (i64::MAX - 1, "a"),
        ];
        let path = table(dir.path(), "TEXT", &rows);
        let talkers = ["a", "b"].map(String::from).to_vec();
        let spools = build_for(&path, &talkers).unwrap().unwrap();
        assert_eq!(spooled_ids(&spools, "a"), [i64::MIN, 0, i64::MAX - 1]);
        assert_eq!(spooled_ids(&spools, "b"), [-5, 7]);
    }

    #[test]
    fn numeric_talkers_and_collations_are_left_to_the_index() {
        let talkers = ["12345", "67890"].map(String::from).to_vec();
        for talker_type in ["INTEGER", "TEXT COLLATE NOCASE"] {
            let dir = tempfile::tempdir().unwrap();
            let path = table(dir.path(), talker_type, &[(1, "12345"), (2, "67890")]);
            let spools = build_for(&path, &talkers);
            assert!(
                !matches!(spools, Ok(Some(_))),
                "{talker_type}: spooled by byte comparison"
            );
        }
    }

    #[test]
    fn a_cut_record_is_an_error_not_an_end() {
        let row = RawRow {
            local_id: 1,
            server_id: None,
            type_code: Some(1),
            is_send: false,
            create_time: Some(5),
            content: Some(Cow::Borrowed(b"hello")),
            img_path: None,
            big_img_path: None,
            file_full_path: None,
            file_total_len: None,
        };
        let mut bytes = Vec::new();
        encode(&row, &mut bytes);
        for cut in 1..bytes.len() {
            assert!(decode(&mut &bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
