//! Records that grow with the size of the input, kept on disk so that memory does not.
//!
//! - [`SpillLog`]: records read back in the order they were written.
//! - [`SortedRuns`]: records read back sorted by their bytes (an external merge sort:
//!   sorted runs of a bounded size, merged with one small buffer per run).
//!
//! Records are opaque bytes, length-prefixed on disk. Callers encode them so that byte
//! order is the order they want (a path, a `\0`, then the rest sorts by path, since no
//! path holds a `\0`). The files are anonymous (`O_TMPFILE` where available): nothing is
//! left behind, even by a killed process. They live beside the output, not in the
//! temporary directory, which is often a RAM-backed tmpfs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bytes of records a [`SortedRuns`] holds in memory before it writes a sorted run.
pub const RUN_BYTES: usize = 4 << 20;

/// Read buffer per run while merging, and per log reader.
const READ_BUFFER: usize = 64 << 10;

fn run_bytes() -> usize {
    static RUN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| {
        std::env::var("CHATVAULT_SPILL_RUN_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(RUN_BYTES)
    })
}

fn anonymous_file(dir: &Path) -> io::Result<File> {
    tempfile::tempfile_in(dir)
}

fn write_record(out: &mut impl Write, record: &[u8]) -> io::Result<()> {
    let len = u32::try_from(record.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a record of 4 GiB or more"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(record)
}

/// A position in a file of length-prefixed records, read with positional reads up to `end`
/// (so that several cursors can share one file).
struct RecordCursor {
    /// Offset of the first byte not yet in `buf`.
    next_read: u64,
    end: u64,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    at: usize,
}

impl RecordCursor {
    fn new(start: u64, end: u64) -> RecordCursor {
        RecordCursor {
            next_read: start,
            end,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// Makes at least `want` unread bytes available, unless the range ends first.
    fn fill(&mut self, file: &File, want: usize) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        if self.buf.len() - self.at >= want {
            return Ok(true);
        }
        self.buf.drain(..self.at);
        self.at = 0;
        while self.buf.len() < want && self.next_read < self.end {
            let room = want.max(READ_BUFFER) - self.buf.len();
            let left = usize::try_from(self.end - self.next_read).unwrap_or(usize::MAX);
            let old = self.buf.len();
            self.buf.resize(old + room.min(left), 0);
            let n = file.read_at(&mut self.buf[old..], self.next_read)?;
            self.buf.truncate(old + n);
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.next_read += n as u64;
        }
        Ok(self.buf.len() - self.at >= want)
    }

    fn next_record(&mut self, file: &File) -> io::Result<Option<Vec<u8>>> {
        if !self.fill(file, 4)? {
            if self.buf.len() > self.at {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            // Done: free the buffer.
            self.buf = Vec::new();
            self.at = 0;
            return Ok(None);
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&self.buf[self.at..self.at + 4]);
        let len = u32::from_le_bytes(len) as usize;
        if !self.fill(file, 4 + len)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let record = self.buf[self.at + 4..self.at + 4 + len].to_vec();
        self.at += 4 + len;
        Ok(Some(record))
    }
}

/// Records kept in the order they were pushed, read back as often as needed.
pub struct SpillLog {
    dir: PathBuf,
    out: Option<BufWriter<File>>,
    records: u64,
}

impl SpillLog {
    /// A log whose file (created on the first push) lives in `dir`.
    pub fn new(dir: &Path) -> SpillLog {
        SpillLog {
            dir: dir.to_path_buf(),
            out: None,
            records: 0,
        }
    }

    pub fn push(&mut self, record: &[u8]) -> io::Result<()> {
        if self.out.is_none() {
            self.out = Some(BufWriter::with_capacity(
                READ_BUFFER,
                anonymous_file(&self.dir)?,
            ));
        }
        if let Some(out) = self.out.as_mut() {
            write_record(out, record)?;
        }
        self.records += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Every record so far, in the order pushed. Pushing again afterwards is fine.
    pub fn iter(&mut self) -> io::Result<impl Iterator<Item = io::Result<Vec<u8>>> + '_> {
        let mut reader = match self.out.as_mut() {
            Some(out) => {
                out.flush()?;
                let file = out.get_ref();
                let end = file.metadata()?.len();
                Some((file, RecordCursor::new(0, end)))
            }
            None => None,
        };
        Ok(std::iter::from_fn(move || {
            let (file, cursor) = reader.as_mut()?;
            cursor.next_record(file).transpose()
        }))
    }
}

impl SpillLog {
    /// The log once nothing more will be pushed: read back through a shared reference.
    pub fn seal(mut self) -> io::Result<SealedLog> {
        let file = match self.out.take() {
            Some(out) => Some(out.into_inner().map_err(|e| e.into_error())?),
            None => None,
        };
        let end = match &file {
            Some(file) => file.metadata()?.len(),
            None => 0,
        };
        Ok(SealedLog {
            file,
            end,
            records: self.records,
        })
    }
}

/// A [`SpillLog`] that is complete.
pub struct SealedLog {
    file: Option<File>,
    end: u64,
    records: u64,
}

impl SealedLog {
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Every record, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<Vec<u8>>> + '_ {
        let mut cursor = RecordCursor::new(0, self.end);
        std::iter::from_fn(move || cursor.next_record(self.file.as_ref()?).transpose())
    }
}

/// Records sorted by their bytes. A caller that wants the first of several records with
/// one key puts a sequence number after the key.
pub struct SortedRuns {
    dir: PathBuf,
    budget: usize,
    /// Records not yet in a run, one after another, and where each starts and ends.
    arena: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// The file of written runs and each run's byte range in it.
    file: Option<File>,
    runs: Vec<(u64, u64)>,
    records: u64,
}

impl SortedRuns {
    /// Runs of about [`RUN_BYTES`], written to a file in `dir` once there is more than one.
    /// `CHATVAULT_SPILL_RUN_BYTES` sets a smaller size, for tests that drive every
    /// merge with small inputs (the output must not change).
    pub fn new(dir: &Path) -> SortedRuns {
        SortedRuns::with_budget(dir, run_bytes())
    }

    /// With runs of about `budget` bytes (tests use tiny ones to exercise the merge).
    pub fn with_budget(dir: &Path, budget: usize) -> SortedRuns {
        SortedRuns {
            dir: dir.to_path_buf(),
            budget: budget.max(1),
            arena: Vec::new(),
            spans: Vec::new(),
            file: None,
            runs: Vec::new(),
            records: 0,
        }
    }

    pub fn push(&mut self, record: &[u8]) -> io::Result<()> {
        if u32::try_from(record.len()).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a record of 4 GiB or more",
            ));
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(record);
        self.spans.push((start, self.arena.len()));
        self.records += 1;
        // Each record costs its bytes plus its span.
        if self.arena.len() + self.spans.len() * 16 >= self.budget {
            self.write_run()?;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn sort_spans(&mut self) {
        let arena = &self.arena;
        // Equal records are the same bytes, so the sort need not be stable.
        self.spans
            .sort_unstable_by(|a, b| arena[a.0..a.1].cmp(&arena[b.0..b.1]));
    }

    fn write_run(&mut self) -> io::Result<()> {
        if self.spans.is_empty() {
            return Ok(());
        }
        self.sort_spans();
        if self.file.is_none() {
            self.file = Some(anonymous_file(&self.dir)?);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let start = self.runs.last().map_or(0, |r| r.1);
        let mut out = BufWriter::with_capacity(READ_BUFFER, &*file);
        for &(a, b) in &self.spans {
            write_record(&mut out, &self.arena[a..b])?;
        }
        out.flush()?;
        drop(out);
        let end = file.metadata()?.len();
        self.runs.push((start, end));
        self.arena.clear();
        self.spans.clear();
        // Give back what one large batch grew to.
        self.arena.shrink_to(self.budget);
        self.spans.shrink_to(self.budget / 64);
        Ok(())
    }

    /// Every record pushed, sorted. All in memory when they fit in one run.
    pub fn into_sorted(mut self) -> io::Result<Sorted> {
        if self.runs.is_empty() {
            self.sort_spans();
            let SortedRuns { arena, spans, .. } = self;
            return Ok(Sorted {
                inner: SortedInner::Memory {
                    arena,
                    spans: spans.into_iter(),
                },
            });
        }
        self.write_run()?;
        let Some(file) = self.file.take() else {
            return Err(io::ErrorKind::NotFound.into());
        };
        Ok(Sorted {
            inner: SortedInner::Merge(Merge::new(file, &self.runs)?),
        })
    }
}

/// The records of a [`SortedRuns`] in order.
pub struct Sorted {
    inner: SortedInner,
}

enum SortedInner {
    Memory {
        arena: Vec<u8>,
        spans: std::vec::IntoIter<(usize, usize)>,
    },
    Merge(Merge),
}

impl Iterator for Sorted {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            SortedInner::Memory { arena, spans } => {
                let (a, b) = spans.next()?;
                Some(Ok(arena[a..b].to_vec()))
            }
            SortedInner::Merge(merge) => merge.next_record().transpose(),
        }
    }
}

/// A k-way merge of sorted runs: the heap holds each run's next record.
struct Merge {
    file: File,
    cursors: Vec<RecordCursor>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
}

impl Merge {
    fn new(file: File, runs: &[(u64, u64)]) -> io::Result<Merge> {
        let mut cursors: Vec<RecordCursor> = runs
            .iter()
            .map(|&(start, end)| RecordCursor::new(start, end))
            .collect();
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (run, cursor) in cursors.iter_mut().enumerate() {
            if let Some(record) = cursor.next_record(&file)? {
                heap.push(Reverse((record, run)));
            }
        }
        Ok(Merge {
            file,
            cursors,
            heap,
        })
    }

    fn next_record(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(Reverse((record, run))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(next) = self.cursors[run].next_record(&self.file)? {
            self.heap.push(Reverse((next, run)));
        }
        Ok(Some(record))
    }
}

/// Builds a record: an optional sort key, then fields read back with [`Fields`].
#[derive(Default)]
pub struct RecordBuf {
    bytes: Vec<u8>,
}

impl RecordBuf {
    /// A record sorted by `key` (which must not hold a `\0`), then by what follows.
    pub fn keyed(key: &str) -> RecordBuf {
        let mut bytes = Vec::with_capacity(key.len() + 64);
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(0);
        RecordBuf { bytes }
    }

    /// A record with no key (for a [`SpillLog`]).
    pub fn new() -> RecordBuf {
        RecordBuf::default()
    }

    /// Big-endian, so that a u64 right after the key sorts numerically.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.u64(value.len() as u64);
        self.bytes.extend_from_slice(value);
        self
    }

    pub fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads back the fields of a record built with [`RecordBuf`], in the same order.
pub struct Fields<'a> {
    rest: &'a [u8],
}

fn corrupt() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "a spilled record is cut short")
}

impl<'a> Fields<'a> {
    /// The key and the fields of a keyed record.
    pub fn keyed(record: &'a [u8]) -> io::Result<(&'a str, Fields<'a>)> {
        let end = record.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
        let key = std::str::from_utf8(&record[..end]).map_err(|_| corrupt())?;
        Ok((
            key,
            Fields {
                rest: &record[end + 1..],
            },
        ))
    }

    pub fn new(record: &'a [u8]) -> Fields<'a> {
        Fields { rest: record }
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(corrupt());
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    pub fn u64(&mut self) -> io::Result<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(raw))
    }

    pub fn i64(&mut self) -> io::Result<i64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(raw))
    }

    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = usize::try_from(self.u64()?).map_err(|_| corrupt())?;
        self.take(len)
    }

    pub fn str(&mut self) -> io::Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted(records: &[Vec<u8>], budget: usize) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = SortedRuns::with_budget(dir.path(), budget);
        for r in records {
            runs.push(r).unwrap();
        }
        assert_eq!(runs.len(), records.len() as u64);
        runs.into_sorted().unwrap().map(|r| r.unwrap()).collect()
    }

    proptest! {
        #[test]
        fn sorts_like_sort_in_memory(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..300),
            budget in 1usize..2000,
        ) {
            let mut want = records.clone();
            want.sort();
            prop_assert_eq!(sorted(&records, budget), want);
        }
    }

    #[test]
    fn identical_records_all_come_out() {
        let records = vec![b"same".to_vec(); 100];
        assert_eq!(sorted(&records, 30), records);
    }

    #[test]
    fn the_log_reads_back_in_order_and_can_be_read_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SpillLog::new(dir.path());
        assert_eq!(log.iter().unwrap().count(), 0);
        let records: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| i.to_string().repeat((i % 7) as usize).into_bytes())
            .collect();
        for r in &records[..2500] {
            log.push(r).unwrap();
        }
        let first: Vec<Vec<u8>> = log.iter().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(first, records[..2500]);
        for r in &records[2500..] {
            log.push(r).unwrap();
        }
        let all: Vec<Vec<u8>> = log.iter().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(all, records);
        assert_eq!(log.len(), 5000);
        let mut record = RecordBuf::keyed("data/a");
        record.u64(7).str("x").i64(-3);
        let (key, mut fields) = Fields::keyed(record.as_slice()).unwrap();
        assert_eq!(key, "data/a");
        assert_eq!(fields.u64().unwrap(), 7);
        assert_eq!(fields.str().unwrap(), "x");
        assert_eq!(fields.i64().unwrap(), -3);
        assert!(fields.u64().is_err());
        let sealed = log.seal().unwrap();
        assert_eq!(sealed.iter().count(), 5000);
        assert_eq!(sealed.iter().count(), 5000);
        // Nothing is left in the directory: the file is anonymous.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
