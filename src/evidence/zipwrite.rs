//! A zip writer whose memory does not grow with the number of entries: each entry's
//! central-directory record is appended to an anonymous spill file as soon as the
//! entry is complete, and copied after the last entry.
//!
//! The records are laid out as the zip crate (2.6.1) lays them out for the options
//! chatvault uses, so that bundles stay byte-identical to the ones it wrote: Unix
//! "made by" system, version needed 10 (stored), 20 (deflated or a directory) or 45
//! (zip64 fields), the UTF-8 flag only on non-ASCII names, no data descriptors (a
//! streamed entry's local header is patched once its CRC and sizes are known), a
//! zip64 extra field (sizes when `large`, then the header offset from 4 GiB on) in
//! both the local header and the central record, and zip64 end records from 65,536
//! entries or 4 GiB of offsets on. No comments.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::spill::SpillLog;

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const END_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_END_SIGNATURE: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_EXTRA_TAG: u16 = 0x0001;

/// The largest value of a classic 32-bit size or offset field; it also means "see the
/// zip64 field", so a value from here on needs zip64.
pub(crate) const U32_LIMIT: u64 = u32::MAX as u64;
/// Entry counts from here on need the zip64 end records.
const ENTRIES_LIMIT: u64 = u16::MAX as u64;

/// Fixed part of a local header, before the name.
const LOCAL_HEADER_LEN: u64 = 30;
/// Offset of the CRC in a local header (CRC, compressed size, size follow).
const LOCAL_CRC_AT: u64 = 14;

/// Unix mode of files and of directories, as the zip crate records 0644.
const FILE_MODE: u32 = 0o100_644;
const DIR_MODE: u32 = 0o040_644;
/// "Made by" system: Unix.
const SYSTEM_UNIX: u16 = 3;

/// Output buffer: entry headers are small, and one write per header would cost a
/// system call each.
const WRITE_BUFFER: usize = 256 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Stored,
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// An MS-DOS time and date, as stored in zip headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DosTime {
    pub time: u16,
    pub date: u16,
}

/// What the headers of one entry say.
struct Entry<'a> {
    name: &'a str,
    method: Method,
    /// Whether the entry carries zip64 size fields.
    large: bool,
    directory: bool,
    crc: u32,
    compressed: u64,
    size: u64,
    header_start: u64,
}

impl Entry<'_> {
    fn version_needed(&self) -> u16 {
        let method = match self.method {
            Method::Stored => 10,
            Method::Deflated => 20,
        };
        let feature = if self.large {
            45
        } else if self.directory {
            20
        } else {
            10
        };
        method.max(feature)
    }

    fn flags(&self) -> u16 {
        // Bit 11: the name is UTF-8 (only said of names that are not plain ASCII).
        if self.name.is_ascii() {
            0
        } else {
            1 << 11
        }
    }

    /// A 32-bit size field: 0xFFFFFFFF when the zip64 field holds the size.
    fn size32(&self, value: u64) -> u32 {
        if self.large {
            u32::MAX
        } else {
            u32::try_from(value).unwrap_or(u32::MAX)
        }
    }

    /// The zip64 extra field, or nothing when no value needs it.
    fn extra(&self) -> Vec<u8> {
        let offset64 = self.header_start >= U32_LIMIT;
        let len = if self.large { 16 } else { 0 } + if offset64 { 8 } else { 0 };
        if len == 0 {
            return Vec::new();
        }
        let mut extra = Vec::with_capacity(4 + len);
        extra.extend_from_slice(&ZIP64_EXTRA_TAG.to_le_bytes());
        extra.extend_from_slice(&(len as u16).to_le_bytes());
        if self.large {
            extra.extend_from_slice(&self.size.to_le_bytes());
            extra.extend_from_slice(&self.compressed.to_le_bytes());
        }
        if offset64 {
            extra.extend_from_slice(&self.header_start.to_le_bytes());
        }
        extra
    }

    fn name_len(&self) -> io::Result<u16> {
        u16::try_from(self.name.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zip entry name of 64 KiB or more",
            )
        })
    }

    /// The fields a local header and a central record have in common, in the same order:
    /// flags, method, time, date, CRC, both sizes, name and extra-field lengths.
    fn shared_fields(&self, time: DosTime, extra_len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        out.extend_from_slice(&self.flags().to_le_bytes());
        out.extend_from_slice(&self.method.code().to_le_bytes());
        out.extend_from_slice(&time.time.to_le_bytes());
        out.extend_from_slice(&time.date.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&self.size32(self.compressed).to_le_bytes());
        out.extend_from_slice(&self.size32(self.size).to_le_bytes());
        out.extend_from_slice(&self.name_len()?.to_le_bytes());
        out.extend_from_slice(&(extra_len as u16).to_le_bytes());
        Ok(())
    }

    fn local_header(&self, time: DosTime) -> io::Result<Vec<u8>> {
        let extra = self.extra();
        let mut out = Vec::with_capacity(LOCAL_HEADER_LEN as usize + self.name.len() + extra.len());
        out.extend_from_slice(&LOCAL_HEADER_SIGNATURE.to_le_bytes());
        out.extend_from_slice(&self.version_needed().to_le_bytes());
        self.shared_fields(time, extra.len(), &mut out)?;
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&extra);
        Ok(out)
    }

    fn central_record(&self, time: DosTime) -> io::Result<Vec<u8>> {
        let extra = self.extra();
        let version = self.version_needed();
        let mode = if self.directory { DIR_MODE } else { FILE_MODE };
        let mut out = Vec::with_capacity(46 + self.name.len() + extra.len());
        out.extend_from_slice(&CENTRAL_HEADER_SIGNATURE.to_le_bytes());
        out.extend_from_slice(&((SYSTEM_UNIX << 8) | version).to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        self.shared_fields(time, extra.len(), &mut out)?;
        // Comment length, disk number, internal attributes.
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&(mode << 16).to_le_bytes());
        let offset = u32::try_from(self.header_start).unwrap_or(u32::MAX);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&extra);
        Ok(out)
    }
}

/// The output file behind a buffer that is written out only by `flush` or when full:
/// dropping it writes nothing, so a zip that is given up costs no writes and no errors.
struct Output {
    file: File,
    buf: Vec<u8>,
    /// Bytes handed to `file` so far.
    flushed: u64,
}

impl Output {
    fn position(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > WRITE_BUFFER {
            self.flush()?;
        }
        if bytes.len() >= WRITE_BUFFER {
            self.file.write_all(bytes)?;
            self.flushed += bytes.len() as u64;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Overwrites bytes already written at `at`.
    fn patch(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        let end = at + bytes.len() as u64;
        if end > self.position() {
            return Err(io::Error::other("a patch past the end of the zip"));
        }
        if at < self.flushed && end > self.flushed {
            self.flush()?;
        }
        if at >= self.flushed {
            let from = usize::try_from(at - self.flushed)
                .map_err(|_| io::Error::other("a patch past the end of the zip"))?;
            self.buf[from..from + bytes.len()].copy_from_slice(bytes);
            Ok(())
        } else {
            self.file.write_all_at(bytes, at)
        }
    }
}

/// A zip being written, one entry after another.
pub(crate) struct ZipStream {
    out: Output,
    /// One central-directory record per finished entry, in order.
    central: SpillLog,
    entries: u64,
    /// The highest version needed of any entry, for the zip64 end record.
    version_needed: u16,
    time: DosTime,
}

impl ZipStream {
    /// A zip written to `file` from its current start (an empty file); the records of
    /// the central directory wait in an anonymous file in `spill_dir`.
    pub(crate) fn new(file: File, spill_dir: &Path, time: DosTime) -> ZipStream {
        ZipStream {
            out: Output {
                file,
                buf: Vec::with_capacity(WRITE_BUFFER),
                flushed: 0,
            },
            central: SpillLog::new(spill_dir),
            entries: 0,
            version_needed: 10,
            time,
        }
    }

    /// As [`ZipStream::new`], for a file whose zip starts `at` bytes in (tests reach
    /// offsets past 4 GiB with a sparse file this way).
    #[cfg(test)]
    fn starting_at(file: File, spill_dir: &Path, time: DosTime, at: u64) -> ZipStream {
        let mut zip = ZipStream::new(file, spill_dir, time);
        zip.out.flushed = at;
        zip
    }

    fn push_central(&mut self, entry: &Entry) -> io::Result<()> {
        let record = entry.central_record(self.time)?;
        self.central.push(&record)?;
        self.entries += 1;
        self.version_needed = self.version_needed.max(entry.version_needed());
        Ok(())
    }

    /// Adds an entry whose (compressed) bytes, CRC and sizes are known: `data` yields
    /// exactly `compressed` bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_known(
        &mut self,
        name: &str,
        method: Method,
        large: bool,
        crc: u32,
        size: u64,
        compressed: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let entry = Entry {
            name,
            method,
            large,
            directory: false,
            crc,
            compressed,
            size,
            header_start: self.out.position(),
        };
        check_fits(&entry)?;
        self.out.write_all(&entry.local_header(self.time)?)?;
        let copied = io::copy(&mut data.take(compressed), &mut Appender(&mut self.out))?;
        if copied != compressed {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.push_central(&entry)
    }

    /// Adds an empty directory entry; `name` ends with '/'.
    pub(crate) fn add_directory(&mut self, name: &str) -> io::Result<()> {
        let entry = Entry {
            name,
            method: Method::Stored,
            large: false,
            directory: true,
            crc: 0,
            compressed: 0,
            size: 0,
            header_start: self.out.position(),
        };
        self.out.write_all(&entry.local_header(self.time)?)?;
        self.push_central(&entry)
    }

    /// Starts a stored entry whose bytes are written through the returned writer; its
    /// local header is patched with the CRC and size by [`StoredEntry::finish`].
    pub(crate) fn start_stored<'a>(
        &'a mut self,
        name: &'a str,
        large: bool,
    ) -> io::Result<StoredEntry<'a>> {
        let entry = Entry {
            name,
            method: Method::Stored,
            large,
            directory: false,
            crc: 0,
            compressed: 0,
            size: 0,
            header_start: self.out.position(),
        };
        self.out.write_all(&entry.local_header(self.time)?)?;
        Ok(StoredEntry {
            zip: self,
            entry,
            crc: crc32fast::Hasher::new(),
        })
    }

    /// Writes the central directory and the end records, and returns the file, all
    /// written (not synced).
    pub(crate) fn finish(mut self) -> io::Result<File> {
        let central_start = self.out.position();
        for record in self.central.iter()? {
            self.out.write_all(&record?)?;
        }
        let central_size = self.out.position() - central_start;
        if self.entries > ENTRIES_LIMIT || central_size.max(central_start) > U32_LIMIT {
            let zip64_end_at = self.out.position();
            let mut end64 = Vec::with_capacity(56 + 20);
            end64.extend_from_slice(&ZIP64_END_SIGNATURE.to_le_bytes());
            // Size of the rest of the record.
            end64.extend_from_slice(&44u64.to_le_bytes());
            end64.extend_from_slice(&self.version_needed.to_le_bytes());
            end64.extend_from_slice(&self.version_needed.to_le_bytes());
            // This disk, the disk of the central directory.
            end64.extend_from_slice(&[0; 8]);
            end64.extend_from_slice(&self.entries.to_le_bytes());
            end64.extend_from_slice(&self.entries.to_le_bytes());
            end64.extend_from_slice(&central_size.to_le_bytes());
            end64.extend_from_slice(&central_start.to_le_bytes());
            end64.extend_from_slice(&ZIP64_LOCATOR_SIGNATURE.to_le_bytes());
            end64.extend_from_slice(&0u32.to_le_bytes());
            end64.extend_from_slice(&zip64_end_at.to_le_bytes());
            // Number of disks.
            end64.extend_from_slice(&1u32.to_le_bytes());
            self.out.write_all(&end64)?;
        }
        let entries16 = u16::try_from(self.entries).unwrap_or(u16::MAX);
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&END_SIGNATURE.to_le_bytes());
        end.extend_from_slice(&[0; 4]);
        end.extend_from_slice(&entries16.to_le_bytes());
        end.extend_from_slice(&entries16.to_le_bytes());
        end.extend_from_slice(
            &u32::try_from(central_size)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        end.extend_from_slice(
            &u32::try_from(central_start)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        // Comment length.
        end.extend_from_slice(&[0; 2]);
        self.out.write_all(&end)?;
        self.out.flush()?;
        Ok(self.out.file)
    }
}

/// An entry without zip64 fields cannot hold 4 GiB or more.
fn check_fits(entry: &Entry) -> io::Result<()> {
    if !entry.large && entry.compressed.max(entry.size) >= U32_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "zip entry {} holds 4 GiB or more but has no zip64 fields",
                entry.name
            ),
        ));
    }
    Ok(())
}

/// Appends to the output (for `io::copy`).
struct Appender<'a>(&'a mut Output);

impl Write for Appender<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A stored entry being written.
pub(crate) struct StoredEntry<'a> {
    zip: &'a mut ZipStream,
    entry: Entry<'a>,
    crc: crc32fast::Hasher,
}

impl Write for StoredEntry<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.zip.out.write_all(buf)?;
        self.crc.update(buf);
        self.entry.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StoredEntry<'_> {
    /// Patches the local header with the CRC and size and records the entry.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.entry.compressed = self.entry.size;
        self.entry.crc = self.crc.clone().finalize();
        check_fits(&self.entry)?;
        let header = self.entry.local_header(self.zip.time)?;
        let start = self.entry.header_start;
        // The CRC and both 32-bit sizes, then the zip64 field if any.
        let fields = LOCAL_CRC_AT as usize..LOCAL_CRC_AT as usize + 12;
        self.zip.out.patch(start + LOCAL_CRC_AT, &header[fields])?;
        let extra_at = LOCAL_HEADER_LEN as usize + self.entry.name.len();
        if header.len() > extra_at {
            self.zip
                .out
                .patch(start + extra_at as u64, &header[extra_at..])?;
        }
        self.zip.push_central(&self.entry)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Seek, SeekFrom};

    use flate2::write::DeflateEncoder;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipArchive, ZipWriter};

    use super::*;

    fn mtime() -> zip::DateTime {
        zip::DateTime::from_date_and_time(2025, 6, 12, 9, 0, 0).unwrap()
    }

    fn options(method: CompressionMethod, large: bool) -> SimpleFileOptions {
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(mtime())
            .unix_permissions(0o644)
            .large_file(large);
        if method == CompressionMethod::Deflated {
            options.compression_level(Some(1))
        } else {
            options
        }
    }

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8 / 3).wrapping_mul(seed)).collect()
    }

    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), flate2::Compression::new(1));
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// The bytes from `at` on of a file, after `write` wrote a zip there.
    fn written_at(at: u64, write: impl FnOnce(File) -> File) -> Vec<u8> {
        let mut file = tempfile::tempfile().unwrap();
        file.seek(SeekFrom::Start(at)).unwrap();
        let mut file = write(file);
        file.seek(SeekFrom::Start(at)).unwrap();
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        out
    }

    /// Entries whose headers lie past 4 GiB carry their offset in a zip64 field, and a
    /// central directory past 4 GiB needs the zip64 end records, as the zip crate
    /// writes them (in a sparse file: the zip starts just before or after 4 GiB).
    #[test]
    fn offsets_past_4_gib_are_laid_out_as_the_zip_crate_did() {
        let a = bytes(100, 7);
        let b = bytes(5000, 11);
        let c = bytes(20_000, 13);
        let e = bytes(3000, 17);
        let dir = tempfile::tempdir().unwrap();
        for at in [U32_LIMIT - 150, U32_LIMIT + 10] {
            let theirs = written_at(at, |file| {
                let mut writer = ZipWriter::new(file);
                writer
                    .start_file("a", options(CompressionMethod::Stored, false))
                    .unwrap();
                writer.write_all(&a).unwrap();
                writer
                    .start_file("b/ü", options(CompressionMethod::Stored, true))
                    .unwrap();
                writer.write_all(&b).unwrap();
                let mut alone = ZipWriter::new(Cursor::new(Vec::new()));
                alone
                    .start_file("c", options(CompressionMethod::Deflated, false))
                    .unwrap();
                alone.write_all(&c).unwrap();
                let alone = alone.finish().unwrap().into_inner();
                let mut archive = ZipArchive::new(Cursor::new(alone)).unwrap();
                writer
                    .raw_copy_file(archive.by_index_raw(0).unwrap())
                    .unwrap();
                writer
                    .add_directory("d/", options(CompressionMethod::Stored, false))
                    .unwrap();
                writer
                    .start_file("e", options(CompressionMethod::Deflated, false))
                    .unwrap();
                writer.write_all(&e).unwrap();
                writer.finish().unwrap()
            });
            let ours = written_at(at, |file| {
                let time = DosTime {
                    time: mtime().timepart(),
                    date: mtime().datepart(),
                };
                let mut zip = ZipStream::starting_at(file, dir.path(), time, at);
                let mut entry = zip.start_stored("a", false).unwrap();
                entry.write_all(&a).unwrap();
                entry.finish().unwrap();
                let mut entry = zip.start_stored("b/ü", true).unwrap();
                entry.write_all(&b).unwrap();
                entry.finish().unwrap();
                for (name, data) in [("c", &c), ("d/", &Vec::new()), ("e", &e)] {
                    if name == "d/" {
                        zip.add_directory(name).unwrap();
                        continue;
                    }
                    let packed = deflated(data);
                    let crc = crc32fast::hash(data);
                    let (size, compressed) = (data.len() as u64, packed.len() as u64);
                    zip.add_known(
                        name,
                        Method::Deflated,
                        false,
                        crc,
                        size,
                        compressed,
                        &mut &packed[..],
                    )
                    .unwrap();
                }
                zip.finish().unwrap()
            });
            assert!(ours == theirs, "the zips starting at {at} differ");
        }
    }
}
