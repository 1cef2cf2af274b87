//! Zip output of a bag: one top-level directory NAME/, UTF-8 names, fixed entry
//! times and permissions, so `--fixed-time` gives a byte-identical zip.
//!
//! Entry order: NAME/bagit.txt (written at create), already-compressed media in the
//! order they were copied (stored, streamed straight into the zip), then every file
//! to deflate sorted by path, then the other tag files.
//!
//! Files to deflate (CSV, uncompressed media) are written to a staging directory
//! first, hashed on the way, and queued in a [`SortedRuns`] (on disk, so the queue
//! does not grow memory); at finish they are deflated in batches in parallel (rayon)
//! into raw deflate streams and appended in path order. The zip itself is written by
//! [`ZipStream`], which keeps nothing per entry in memory either.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Timelike, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use rayon::prelude::*;

use super::bag::{BAGIT_DECLARATION, BAGIT_TXT};
use super::tee::{self, CopyError, IO_BUFFER};
use super::zipwrite::{DosTime, Method, ZipStream, U32_LIMIT};
use super::{io_err, EvidenceError};
use crate::spill::SortedRuns;

/// Deflate level for text entries. Measured on a 280 MB CSV bag with stored media
/// (miniz_oxide backend, 2 cores): level 1 builds the zip ~2x faster than level 3 and
/// 2–2.8x faster than `zip -r -n .jpg`, for ~3 % more bytes in total than `zip -r`.
pub(crate) const DEFLATE_LEVEL: u32 = 1;

/// Stored entries from this size on get zip64 fields (so that a size hint a little
/// short of the truth still fits).
const ZIP64_FROM: u64 = 0xFFF0_0000;

/// A file waiting to be deflated.
struct Staged {
    rel: String,
    bytes: StagedBytes,
    size: u64,
}

/// Where a file waiting to be deflated is.
enum StagedBytes {
    /// A file of its own in the staging directory (the CSV files).
    File(PathBuf),
    /// A range of the spool, where small media files are appended one after another:
    /// one file instead of one per medium, whose creation dominated media-heavy zips.
    Spooled { offset: u64 },
}

impl Staged {
    /// As a record of a [`SortedRuns`]: `rel`, `\0` (no payload path holds one, so
    /// records sort by path), the size, then the spool offset or the staged path.
    fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut record = Vec::with_capacity(self.rel.len() + 64);
        record.extend_from_slice(self.rel.as_bytes());
        record.push(0);
        record.extend_from_slice(&self.size.to_le_bytes());
        match &self.bytes {
            StagedBytes::Spooled { offset } => {
                record.push(0);
                record.extend_from_slice(&offset.to_le_bytes());
            }
            StagedBytes::File(path) => {
                record.push(1);
                record.extend_from_slice(path.as_os_str().as_bytes());
            }
        }
        record
    }

    fn decode(record: &[u8]) -> std::io::Result<Staged> {
        use std::os::unix::ffi::OsStrExt;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "a bad staging record");
        let nul = record.iter().position(|&b| b == 0).ok_or_else(bad)?;
        let rel = std::str::from_utf8(&record[..nul]).map_err(|_| bad())?;
        let rest = &record[nul + 1..];
        let (size, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
        let (kind, rest) = rest.split_first().ok_or_else(bad)?;
        let bytes = match kind {
            0 => {
                let offset = rest.first_chunk::<8>().ok_or_else(bad)?;
                StagedBytes::Spooled {
                    offset: u64::from_le_bytes(*offset),
                }
            }
            1 => StagedBytes::File(PathBuf::from(std::ffi::OsStr::from_bytes(rest))),
            _ => return Err(bad()),
        };
        Ok(Staged {
            rel: rel.to_string(),
            bytes,
            size: u64::from_le_bytes(*size),
        })
    }
}

/// Files to deflate are processed in batches of about this many bytes (and at most
/// [`DEFLATE_BATCH_FILES`] files): the batch is deflated on both cores, then appended
/// in path order.
const DEFLATE_BATCH_BYTES: u64 = 8 << 20;
const DEFLATE_BATCH_FILES: usize = 1024;

/// A file up to this size is deflated in memory; larger ones go through a file.
const IN_MEMORY_UP_TO: u64 = 4 << 20;

/// The raw deflate stream of a file, with what its zip entry records.
struct Deflated {
    data: DeflatedBytes,
    crc: u32,
    size: u64,
    compressed: u64,
}

enum DeflatedBytes {
    Memory(Vec<u8>),
    /// An anonymous file in the staging directory, at its start.
    File(File),
}

pub(crate) struct ZipTarget {
    /// NAME.zip.partial
    path: PathBuf,
    /// Where the spool, the sort runs, the central directory and large deflated files
    /// wait (anonymous files, except the spool).
    staging: PathBuf,
    /// "NAME/"
    prefix: String,
    /// Dropping it writes nothing more: a zip that is given up is removed anyway.
    writer: ZipStream,
    staged: SortedRuns,
    /// The spool of small files to deflate, and its length.
    spool: Option<(File, u64)>,
    /// Stored entries from this size on get zip64 fields ([`ZIP64_FROM`]; lower in tests).
    zip64_from: u64,
}

impl ZipTarget {
    pub(crate) fn create(
        path: PathBuf,
        staging: PathBuf,
        name: &str,
        time: DateTime<Utc>,
    ) -> Result<Self, EvidenceError> {
        // Readable too: the finished zip is hashed through the same handle.
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let mut target = ZipTarget {
            writer: ZipStream::new(file, &staging, dos_time(time)),
            prefix: format!("{name}/"),
            staged: SortedRuns::new(&staging),
            path,
            staging,
            spool: None,
            zip64_from: ZIP64_FROM,
        };
        let bagit = BAGIT_DECLARATION.as_bytes();
        let deflated = deflate(&mut &bagit[..], bagit.len() as u64, &target.staging)
            .map_err(io_err("deflate", Path::new(BAGIT_TXT)))?;
        target.add_deflated(BAGIT_TXT, deflated)?;
        Ok(target)
    }

    /// Streams an already-compressed file into the zip as a stored entry, hashing it
    /// in the same pass. `size_hint` (if known) avoids zip64 fields on small files.
    pub(crate) fn add_stored(
        &mut self,
        rel: &str,
        src: &mut dyn Read,
        size_hint: Option<u64>,
        buf: &mut [u8],
    ) -> Result<(String, u64), EvidenceError> {
        let peeked =
            tee::read_up_to(src, buf).map_err(io_err("read the source of", Path::new(rel)))?;
        // Without a hint, a source that fills the buffer may be of any size.
        let large = match size_hint {
            Some(size) => size >= self.zip64_from,
            None => peeked == buf.len(),
        };
        let name = format!("{}{rel}", self.prefix);
        let path = &self.path;
        let mut entry = self
            .writer
            .start_stored(&name, large)
            .map_err(io_err("write", path))?;
        let hashed = tee::copy_hashing(src, &mut entry, buf, peeked).map_err(|e| match e {
            CopyError::Read(e) => io_err("read the source of", Path::new(rel))(e),
            CopyError::Write(e) => io_err("write", path)(e),
        })?;
        entry.finish().map_err(io_err("write", path))?;
        Ok(hashed)
    }

    /// Queues a staged file (already hashed) to be deflated at finish.
    pub(crate) fn stage(
        &mut self,
        rel: String,
        path: PathBuf,
        size: u64,
    ) -> Result<(), EvidenceError> {
        let staged = Staged {
            rel,
            bytes: StagedBytes::File(path),
            size,
        };
        self.staged
            .push(&staged.encode())
            .map_err(io_err("write", &self.staging))
    }

    /// Appends a file to deflate at finish to the spool, hashing it on the way.
    pub(crate) fn spool(
        &mut self,
        rel: String,
        src: &mut dyn Read,
        buf: &mut [u8],
    ) -> Result<(String, u64), EvidenceError> {
        if self.spool.is_none() {
            let path = self.staging.join("spool");
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err("create", &path))?;
            self.spool = Some((file, 0));
        }
        let spool_path = self.staging.join("spool");
        let Some((file, length)) = self.spool.as_mut() else {
            return Err(io_err("create", &spool_path)(
                std::io::ErrorKind::Other.into(),
            ));
        };
        let offset = *length;
        let (sha256, size) = tee::copy_hashing(src, file, buf, 0).map_err(|e| match e {
            CopyError::Read(e) => io_err("read the source of", Path::new(&rel))(e),
            CopyError::Write(e) => io_err("write", &spool_path)(e),
        })?;
        *length += size;
        let staged = Staged {
            rel,
            bytes: StagedBytes::Spooled { offset },
            size,
        };
        self.staged
            .push(&staged.encode())
            .map_err(io_err("write", &self.staging))?;
        Ok((sha256, size))
    }

    /// Appends a deflated file as entry NAME/`name_in_bag`.
    fn add_deflated(&mut self, name_in_bag: &str, deflated: Deflated) -> Result<(), EvidenceError> {
        let Deflated {
            data,
            crc,
            size,
            compressed,
        } = deflated;
        // zip64 fields only where a 32-bit field cannot hold the value (as the zip
        // crate's raw copies of deflated entries had them).
        let large = size.max(compressed) >= U32_LIMIT;
        let name = format!("{}{name_in_bag}", self.prefix);
        let mut data: Box<dyn Read + '_> = match &data {
            DeflatedBytes::Memory(bytes) => Box::new(&bytes[..]),
            DeflatedBytes::File(file) => {
                Box::new(std::io::BufReader::with_capacity(IO_BUFFER, file))
            }
        };
        self.writer
            .add_known(
                &name,
                Method::Deflated,
                large,
                crc,
                size,
                compressed,
                &mut data,
            )
            .map_err(io_err("write", &self.path))
    }

    /// Deflates the staged files, appends them and the tag files (name in the bag,
    /// file holding its bytes), writes the central directory and syncs. Returns the
    /// SHA-256 of the finished NAME.zip.partial.
    pub(crate) fn finish(
        mut self,
        tag_files: &[(&str, &Path)],
        empty_payload: bool,
    ) -> Result<String, EvidenceError> {
        let staged = std::mem::replace(&mut self.staged, SortedRuns::new(&self.staging));
        let mut sorted = staged
            .into_sorted()
            .map_err(io_err("read", &self.staging))?;
        let spool = self.spool.take().map(|(file, _)| file);
        let mut next: Option<Staged> = None;
        loop {
            // A batch: at least one file, up to DEFLATE_BATCH_BYTES.
            let mut batch = Vec::new();
            let mut bytes = 0;
            while batch.len() < DEFLATE_BATCH_FILES {
                let item = match next.take() {
                    Some(item) => item,
                    None => match sorted.next() {
                        Some(record) => record
                            .and_then(|record| Staged::decode(&record))
                            .map_err(io_err("read", &self.staging))?,
                        None => break,
                    },
                };
                if !batch.is_empty() && bytes + item.size > DEFLATE_BATCH_BYTES {
                    next = Some(item);
                    break;
                }
                bytes += item.size;
                batch.push(item);
            }
            if batch.is_empty() {
                break;
            }
            let parts: Vec<Deflated> = batch
                .par_iter()
                .map(|item| self.deflate_staged(item, spool.as_ref()))
                .collect::<Result<_, _>>()?;
            for (item, part) in batch.into_iter().zip(parts) {
                self.add_deflated(&item.rel, part)?;
                // Free the space as we go: staging roughly doubles the text's footprint.
                if let StagedBytes::File(path) = &item.bytes {
                    fs::remove_file(path).map_err(io_err("remove", path))?;
                }
            }
        }
        if spool.is_some() {
            let path = self.staging.join("spool");
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
        if empty_payload {
            // BagIt requires data/ even when it is empty.
            let name = format!("{}data/", self.prefix);
            self.writer
                .add_directory(&name)
                .map_err(io_err("write", &self.path))?;
        }
        for (name, path) in tag_files {
            let file = File::open(path).map_err(io_err("open", path))?;
            let size = file.metadata().map_err(io_err("read", path))?.len();
            let deflated = deflate(
                &mut std::io::BufReader::with_capacity(IO_BUFFER, file),
                size,
                &self.staging,
            )
            .map_err(io_err("read", path))?;
            self.add_deflated(name, deflated)?;
        }
        let mut file = self.writer.finish().map_err(io_err("write", &self.path))?;
        file.sync_all().map_err(io_err("sync", &self.path))?;
        crate::failpoint::hit("export.zip.finished");
        // A streamed entry's local header is patched once its CRC and size are known,
        // so a hashing tee on the output would see stale header bytes. Hash the
        // finished zip once instead: it was just written, so this mostly reads the
        // page cache at SHA-NI speed.
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("read", &self.path))?;
        let mut buf = vec![0; IO_BUFFER];
        let (zip_sha256, _) =
            tee::hash_reader(&mut file, &mut buf, None).map_err(io_err("read", &self.path))?;
        Ok(zip_sha256)
    }

    /// Deflates one staged file.
    fn deflate_staged(
        &self,
        item: &Staged,
        spool: Option<&File>,
    ) -> Result<Deflated, EvidenceError> {
        match &item.bytes {
            StagedBytes::File(path) => {
                let mut file = File::open(path).map_err(io_err("open", path))?;
                deflate(&mut file, item.size, &self.staging).map_err(io_err("read", path))
            }
            StagedBytes::Spooled { offset } => {
                let spool_path = self.staging.join("spool");
                let file = spool.ok_or_else(|| {
                    io_err("open", &spool_path)(std::io::ErrorKind::NotFound.into())
                })?;
                let mut range = SpoolRange {
                    file,
                    offset: *offset,
                    left: item.size,
                };
                deflate(&mut range, item.size, &self.staging).map_err(io_err("read", &spool_path))
            }
        }
    }

    /// Gives stored entries zip64 fields from `size` on (tests, to avoid 4 GiB files).
    #[cfg(test)]
    fn set_zip64_from(&mut self, size: u64) {
        self.zip64_from = size;
    }
}

/// Deflates `src` (about `size` bytes) into a raw deflate stream at [`DEFLATE_LEVEL`]
/// with flate2's default backend (miniz_oxide, as the zip crate's `deflate` feature
/// selects it, so the bytes are the same); in memory when small, else in an anonymous
/// file in `staging`.
fn deflate(src: &mut dyn Read, size: u64, staging: &Path) -> std::io::Result<Deflated> {
    let buf_len = usize::try_from(size.clamp(1, IO_BUFFER as u64)).unwrap_or(IO_BUFFER);
    let mut buf = vec![0; buf_len];
    let mut crc = crc32fast::Hasher::new();
    let mut total = 0u64;
    let mut pump = |out: &mut dyn Write| -> std::io::Result<()> {
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            crc.update(&buf[..n]);
            total += n as u64;
            out.write_all(&buf[..n])?;
        }
    };
    let level = Compression::new(DEFLATE_LEVEL);
    let data = if size <= IN_MEMORY_UP_TO {
        let capacity = usize::try_from(size).unwrap_or(0) / 2 + 64;
        let mut encoder = DeflateEncoder::new(Vec::with_capacity(capacity), level);
        pump(&mut encoder)?;
        DeflatedBytes::Memory(encoder.finish()?)
    } else {
        let file = tempfile::tempfile_in(staging)?;
        let mut encoder = DeflateEncoder::new(BufWriter::with_capacity(IO_BUFFER, file), level);
        pump(&mut encoder)?;
        let mut file = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        DeflatedBytes::File(file)
    };
    let compressed = match &data {
        DeflatedBytes::Memory(bytes) => bytes.len() as u64,
        DeflatedBytes::File(file) => file.metadata()?.len(),
    };
    Ok(Deflated {
        data,
        crc: crc.finalize(),
        size: total,
        compressed,
    })
}

/// A range of the spool, read with positional reads (the threads share the file).
struct SpoolRange<'a> {
    file: &'a File,
    offset: u64,
    left: u64,
}

impl Read for SpoolRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.offset += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Zip (DOS) time of `time`, in UTC; years outside 1980–2107 fall back to 1980-01-01
/// (the zip crate's conversion, which the bundles have always used).
fn dos_time(time: DateTime<Utc>) -> DosTime {
    let year = u16::try_from(time.year()).unwrap_or(1980);
    // Each component below fits in u8 by construction (month ≤ 12, second ≤ 60).
    let small = |v: u32| u8::try_from(v).unwrap_or(0);
    let dos = zip::DateTime::from_date_and_time(
        year,
        small(time.month()),
        small(time.day()),
        small(time.hour()),
        small(time.minute()),
        small(time.second()),
    )
    .unwrap_or_default();
    DosTime {
        time: dos.timepart(),
        date: dos.datepart(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use chrono::TimeZone;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipArchive, ZipWriter};

    use super::*;

    /// How a test file goes into the bag.
    #[derive(Clone, Copy)]
    enum How {
        /// `add_stored` with this size hint.
        Stored(Option<u64>),
        /// Written to the staging directory, then `stage`.
        Staged,
        Spooled,
    }

    struct Input {
        rel: String,
        bytes: Vec<u8>,
        how: How,
    }

    fn input(rel: &str, bytes: Vec<u8>, how: How) -> Input {
        Input {
            rel: rel.to_string(),
            bytes,
            how,
        }
    }

    fn time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 12, 9, 0, 1).unwrap()
    }

    /// Text that deflates, with some variety so that the streams are not trivial.
    fn text(len: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        while out.len() < len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let line = format!(
                "{},msg {} from member{},\"hello, {}\"\n",
                x >> 40,
                x % 997,
                x % 50,
                x >> 50
            );
            out.extend_from_slice(line.as_bytes());
        }
        out.truncate(len);
        out
    }

    /// Bytes that do not deflate.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// The buffer `add_stored` peeks with: small, so that sources without a size hint
    /// are streamed with zip64 fields once they fill it.
    const PEEK: usize = 4096;

    /// The zip the zip crate's `ZipWriter` writes for these inputs, built as this
    /// module built bundles with it: entries written through it, and each file to
    /// deflate deflated into a one-entry zip whose entry is raw-copied in.
    fn with_zip_crate(
        inputs: &[Input],
        tags: &[(&str, Vec<u8>)],
        empty_payload: bool,
        zip64_from: u64,
    ) -> Vec<u8> {
        let mtime = zip::DateTime::from_date_and_time(2025, 6, 12, 9, 0, 1).unwrap();
        let options = |method: CompressionMethod, large: bool| {
            let options = SimpleFileOptions::default()
                .compression_method(method)
                .last_modified_time(mtime)
                .unix_permissions(0o644)
                .large_file(large);
            if method == CompressionMethod::Deflated {
                options.compression_level(Some(i64::from(DEFLATE_LEVEL)))
            } else {
                options
            }
        };
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file("bag/bagit.txt", options(CompressionMethod::Deflated, false))
            .unwrap();
        writer.write_all(BAGIT_DECLARATION.as_bytes()).unwrap();
        for item in inputs {
            if let How::Stored(hint) = item.how {
                let large = match hint {
                    Some(size) => size >= zip64_from,
                    None => item.bytes.len() >= PEEK,
                };
                writer
                    .start_file(
                        format!("bag/{}", item.rel),
                        options(CompressionMethod::Stored, large),
                    )
                    .unwrap();
                writer.write_all(&item.bytes).unwrap();
            }
        }
        let mut deflated: Vec<&Input> = inputs
            .iter()
            .filter(|item| !matches!(item.how, How::Stored(_)))
            .collect();
        deflated.sort_by(|a, b| a.rel.cmp(&b.rel));
        for item in deflated {
            let mut alone = ZipWriter::new(Cursor::new(Vec::new()));
            let large = item.bytes.len() as u64 >= zip64_from;
            alone
                .start_file(
                    format!("bag/{}", item.rel),
                    options(CompressionMethod::Deflated, large),
                )
                .unwrap();
            alone.write_all(&item.bytes).unwrap();
            let bytes = alone.finish().unwrap().into_inner();
            let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
            writer
                .raw_copy_file(archive.by_index_raw(0).unwrap())
                .unwrap();
        }
        if empty_payload {
            writer
                .add_directory("bag/data/", options(CompressionMethod::Stored, false))
                .unwrap();
        }
        for (name, bytes) in tags {
            writer
                .start_file(
                    format!("bag/{name}"),
                    options(CompressionMethod::Deflated, false),
                )
                .unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// The zip `ZipTarget` writes for these inputs.
    fn with_target(
        dir: &Path,
        inputs: &[Input],
        tags: &[(&str, Vec<u8>)],
        empty_payload: bool,
        zip64_from: u64,
    ) -> (Vec<u8>, String) {
        let path = dir.join("bag.zip.partial");
        let staging = dir.join("bag.zip.partial.d");
        fs::create_dir(&staging).unwrap();
        let mut target = ZipTarget::create(path.clone(), staging.clone(), "bag", time()).unwrap();
        target.set_zip64_from(zip64_from);
        let mut buf = vec![0; PEEK];
        for (i, item) in inputs.iter().enumerate() {
            let (sha256, size) = match item.how {
                How::Stored(hint) => target
                    .add_stored(&item.rel, &mut &item.bytes[..], hint, &mut buf)
                    .unwrap(),
                How::Spooled => target
                    .spool(item.rel.clone(), &mut &item.bytes[..], &mut buf)
                    .unwrap(),
                How::Staged => {
                    let file = staging.join(format!("staged-{i}"));
                    fs::write(&file, &item.bytes).unwrap();
                    target
                        .stage(item.rel.clone(), file, item.bytes.len() as u64)
                        .unwrap();
                    (
                        crate::digest::sha256_hex(&item.bytes),
                        item.bytes.len() as u64,
                    )
                }
            };
            assert_eq!(sha256, crate::digest::sha256_hex(&item.bytes));
            assert_eq!(size, item.bytes.len() as u64);
        }
        let mut tag_paths = Vec::new();
        for (name, bytes) in tags {
            let file = staging.join(name);
            fs::write(&file, bytes).unwrap();
            tag_paths.push((*name, file));
        }
        let tag_refs: Vec<(&str, &Path)> = tag_paths
            .iter()
            .map(|(name, path)| (*name, path.as_path()))
            .collect();
        let sha256 = target.finish(&tag_refs, empty_payload).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(sha256, crate::digest::sha256_hex(&bytes));
        for (_, path) in &tag_paths {
            fs::remove_file(path).unwrap();
        }
        // Nothing is left in the staging directory.
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
        (bytes, sha256)
    }

    /// Our reader reads every entry back as written.
    fn read_back(zip: &[u8], inputs: &[Input], tags: &[(&str, Vec<u8>)]) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(zip).unwrap();
        let reader = super::super::zipread::ZipReader::open(file).unwrap();
        let mut expected: std::collections::HashMap<String, &[u8]> = inputs
            .iter()
            .map(|item| (format!("bag/{}", item.rel), item.bytes.as_slice()))
            .chain(
                tags.iter()
                    .map(|(name, bytes)| (format!("bag/{name}"), bytes.as_slice())),
            )
            .collect();
        expected.insert("bag/bagit.txt".into(), BAGIT_DECLARATION.as_bytes());
        let mut seen = 0;
        reader
            .for_each(|record| {
                if record.is_dir {
                    return Ok(());
                }
                let name = String::from_utf8(record.name.to_vec()).unwrap();
                let mut out = Vec::new();
                reader.open_entry(&record.entry)?.read_to_end(&mut out)?;
                assert_eq!(Some(&out.as_slice()), expected.get(&name), "{name}");
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, expected.len());
    }

    fn tags() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("bag-info.txt", b"Bagging-Date: 2025-06-12\n".to_vec()),
            ("manifest-sha256.txt", text(300_000, 9)),
            ("tagmanifest-sha256.txt", b"".to_vec()),
        ]
    }

    #[test]
    fn the_zip_is_the_one_the_zip_crate_wrote() {
        let inputs = vec![
            input(
                "data/media/g1/a.jpg",
                noise(10_000, 1),
                How::Stored(Some(10_000)),
            ),
            input("data/media/g1/empty.jpg", Vec::new(), How::Stored(Some(0))),
            input("data/media/g1/短.jpg", noise(100, 2), How::Stored(None)),
            // Without a hint and filling the peek buffer: zip64 fields, header patched.
            input(
                "data/media/g2/long.mp4",
                noise(3 * PEEK + 5, 3),
                How::Stored(None),
            ),
            // A hint from the (lowered) zip64 threshold on.
            input(
                "data/media/g2/large.jpg",
                noise(70_000, 4),
                How::Stored(Some(70_000)),
            ),
            // Larger than the output buffer: headers patched in the file, not the buffer.
            input("data/media/g3/a.mp4", noise(600_000, 11), How::Stored(None)),
            input(
                "data/media/g3/b.mp4",
                noise(600_000, 12),
                How::Stored(Some(600_000)),
            ),
            input("data/messages.csv", text(200_000, 5), How::Staged),
            input("data/members.csv", Vec::new(), How::Staged),
            // More than in memory: deflated through a file.
            input(
                "data/big.csv",
                text(IN_MEMORY_UP_TO as usize + 12_345, 6),
                How::Staged,
            ),
            input("data/media/g1/thumb", text(5000, 7), How::Spooled),
            input("data/media/g1/ü/thumb", noise(3000, 8), How::Spooled),
            input("data/media/g1/nothing", Vec::new(), How::Spooled),
            input("data/media/g0/thumb", text(100, 10), How::Spooled),
        ];
        let tags = tags();
        let dir = tempfile::tempdir().unwrap();
        let (ours, _) = with_target(dir.path(), &inputs, &tags, false, 50_000);
        let theirs = with_zip_crate(&inputs, &tags, false, 50_000);
        assert!(ours == theirs, "the zips differ");
        read_back(&ours, &inputs, &tags);
    }

    #[test]
    fn an_empty_payload_has_its_data_directory() {
        let tags = tags();
        let dir = tempfile::tempdir().unwrap();
        let (ours, _) = with_target(dir.path(), &[], &tags, true, ZIP64_FROM);
        let theirs = with_zip_crate(&[], &tags, true, ZIP64_FROM);
        assert!(ours == theirs, "the zips differ");
        read_back(&ours, &[], &tags);
    }

    #[test]
    fn more_than_65535_entries_get_zip64_end_records() {
        let mut inputs = Vec::new();
        for i in 0..40_000u64 {
            inputs.push(input(
                &format!("data/media/s/{i:05}.jpg"),
                noise((i % 7) as usize, i),
                How::Stored(Some(i % 7)),
            ));
        }
        // In reverse path order, so that the sort has work (and more than one run).
        for i in (0..30_000u64).rev() {
            inputs.push(input(
                &format!("data/media/t/{i:05}"),
                text((i % 11) as usize, i),
                How::Spooled,
            ));
        }
        let tags = tags();
        let dir = tempfile::tempdir().unwrap();
        let (ours, _) = with_target(dir.path(), &inputs, &tags, false, ZIP64_FROM);
        let theirs = with_zip_crate(&inputs, &tags, false, ZIP64_FROM);
        assert!(ours == theirs, "the zips differ");
        read_back(&ours, &inputs, &tags);
    }

    #[test]
    fn a_zip_given_up_is_not_written_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bag.zip.partial");
        let staging = dir.path().join("bag.zip.partial.d");
        fs::create_dir(&staging).unwrap();
        let mut target = ZipTarget::create(path.clone(), staging, "bag", time()).unwrap();
        let mut buf = vec![0; PEEK];
        target
            .add_stored("data/a.jpg", &mut &noise(100, 1)[..], Some(100), &mut buf)
            .unwrap();
        let before = fs::metadata(&path).unwrap().len();
        drop(target);
        assert_eq!(fs::metadata(&path).unwrap().len(), before);
    }
}
