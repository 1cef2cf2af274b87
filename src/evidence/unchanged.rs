//! Proof that a source file still holds what was read from it, without reading it again.
//!
//! A file's identity (size, mtime, ctime, device, inode) is taken on the open file just
//! before its first read and again after the last. Every write changes mtime and ctime, and
//! ctime cannot be set back from user space, so an unchanged identity proves unchanged
//! content — unless the file was modified so shortly before the first read that a write
//! during the export could land in the same time-stamp tick (git's "racy" files). Such a
//! file, modified less than [`SETTLED`] before it was read, is hashed again instead, as is
//! any file whose identity changed (a `chmod` changes ctime too; a re-hash then tells).

use std::fs::Metadata;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::retention::FileStamp;

/// Longer than the coarsest time-stamp granularity in use (FAT's 2 s), so that a write after
/// the first read cannot leave a settled file's mtime and ctime as they were.
pub const SETTLED: Duration = Duration::from_secs(3);

/// A file's identity when its first read began.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadStamp {
    stamp: FileStamp,
    /// When the identity was taken: the clock is read first, then the file's metadata.
    taken: DateTime<Utc>,
}

impl ReadStamp {
    /// `metadata` must come from the file about to be read (`File::metadata`), fetched after
    /// `taken` was read from the clock.
    pub fn new(taken: DateTime<Utc>, metadata: &Metadata) -> ReadStamp {
        ReadStamp {
            stamp: FileStamp::from_metadata(metadata),
            taken,
        }
    }

    /// Whether the file had settled when it was read: last modified, and its inode last
    /// changed, at least [`SETTLED`] before.
    pub fn settled(&self) -> bool {
        let limit = self.taken - chrono::Duration::from_std(SETTLED).unwrap_or_default();
        self.stamp.mtime < limit && self.stamp.ctime < limit
    }

    /// Whether `now` (the file's identity after the last read; `None` when it cannot be
    /// read) proves the content unchanged since the first read.
    pub fn proves_unchanged(&self, now: Option<&FileStamp>) -> bool {
        self.settled() && now == Some(&self.stamp)
    }
}

impl ReadStamp {
    /// Appends the stamp to a spilled record (see [`crate::spill`]).
    pub fn encode(&self, record: &mut crate::spill::RecordBuf) {
        let time = |record: &mut crate::spill::RecordBuf, t: &DateTime<Utc>| {
            record
                .i64(t.timestamp())
                .u64(u64::from(t.timestamp_subsec_nanos()));
        };
        record.u64(self.stamp.size);
        time(record, &self.stamp.mtime);
        time(record, &self.stamp.ctime);
        record.u64(self.stamp.dev).u64(self.stamp.ino);
        time(record, &self.taken);
    }

    /// Reads back what [`encode`](Self::encode) wrote.
    pub fn decode(fields: &mut crate::spill::Fields) -> std::io::Result<ReadStamp> {
        let time = |fields: &mut crate::spill::Fields| -> std::io::Result<DateTime<Utc>> {
            let seconds = fields.i64()?;
            let nanos = u32::try_from(fields.u64()?).unwrap_or(u32::MAX);
            DateTime::from_timestamp(seconds, nanos).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a spilled time is out of range",
                )
            })
        };
        let size = fields.u64()?;
        let mtime = time(fields)?;
        let ctime = time(fields)?;
        let dev = fields.u64()?;
        let ino = fields.u64()?;
        let taken = time(fields)?;
        Ok(ReadStamp {
            stamp: FileStamp {
                size,
                mtime,
                ctime,
                dev,
                ino,
            },
            taken,
        })
    }
}

/// Whether the file at `path` has settled now (see [`ReadStamp::settled`]); `false` when
/// it cannot be read.
pub fn settled_now(path: &std::path::Path) -> bool {
    let taken = Utc::now();
    std::fs::metadata(path).is_ok_and(|meta| ReadStamp::new(taken, &meta).settled())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn stamp_of(path: &std::path::Path) -> FileStamp {
        FileStamp::from_metadata(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn only_a_settled_file_with_the_same_identity_is_proven_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"content").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        // Just written: racy, whatever the identity says.
        let fresh = ReadStamp::new(Utc::now(), &meta);
        assert!(!fresh.settled());
        assert!(!fresh.proves_unchanged(Some(&stamp_of(&path))));
        // Read as if 10 s later: settled, and proven while nothing changes.
        let later = ReadStamp::new(Utc::now() + chrono::Duration::seconds(10), &meta);
        assert!(later.settled());
        assert!(later.proves_unchanged(Some(&stamp_of(&path))));
        assert!(!later.proves_unchanged(None));
        // A write of the same size with the old mtime put back still changes ctime.
        let mtime = meta.modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(b"CONTENT").unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        let now = stamp_of(&path);
        assert_eq!(now.size, 7);
        assert_eq!(now.mtime, later.stamp.mtime);
        assert!(!later.proves_unchanged(Some(&now)));

        let mut record = crate::spill::RecordBuf::new();
        later.encode(&mut record);
        let decoded = ReadStamp::decode(&mut crate::spill::Fields::new(record.as_slice())).unwrap();
        assert_eq!(decoded, later);
    }
}
