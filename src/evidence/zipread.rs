//! Reading a zip without holding it: the central directory is streamed record by
//! record (never loaded whole), and an entry is read from its local header with the
//! sizes and CRC the central directory gives, inflated with a hard cap.
//!
//! The zip crate's `ZipArchive` keeps every entry's metadata and name in memory
//! (about 200 MB for 200,000 entries once indexed); verify keeps only what it needs,
//! packed, keyed by a digest of the name.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// One central directory record, borrowed from the streaming reader.
pub(crate) struct Record<'a> {
    pub name: &'a [u8],
    pub entry: Entry,
    pub is_dir: bool,
    pub is_symlink: bool,
}

/// What reading one entry needs, packed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub local_offset: u64,
    pub compressed: u64,
    pub size: u64,
    pub crc32: u32,
    pub method: u16,
    pub flags: u16,
}

/// Deflate cannot expand data more than about 1032:1; an entry that claims more is a
/// bomb and is not inflated.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An open zip: its file and where its central directory lies.
pub(crate) struct ZipReader {
    file: Arc<File>,
    len: u64,
    cd_offset: u64,
    cd_size: u64,
    entries: u64,
}

/// A positioned reader over a shared file (pread), so that entries can be read on
/// several threads at once.
struct At {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

impl ZipReader {
    /// Finds the end of central directory record (and its zip64 form).
    pub fn open(file: File) -> io::Result<ZipReader> {
        let len = file.metadata()?.len();
        // The EOCD is 22 bytes plus a comment of up to 65,535 bytes, at the very end.
        let tail_len = len.min(22 + 65_535);
        let mut tail = vec![0u8; usize::try_from(tail_len).unwrap_or(0)];
        file.read_exact_at(&mut tail, len - tail_len)?;
        let at = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
            .ok_or_else(|| bad("no end of central directory record"))?;
        let eocd = &tail[at..];
        let mut entries = u64::from(le16(eocd, 10));
        let mut cd_size = u64::from(le32(eocd, 12));
        let mut cd_offset = u64::from(le32(eocd, 16));
        let eocd_pos = len - tail_len + at as u64;
        if (entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF)
            && eocd_pos >= 20
        {
            let mut locator = [0u8; 20];
            file.read_exact_at(&mut locator, eocd_pos - 20)?;
            if locator[..4] == [0x50, 0x4b, 0x06, 0x07] {
                let zip64_pos = le64(&locator, 8);
                let mut record = [0u8; 56];
                file.read_exact_at(&mut record, zip64_pos)?;
                if record[..4] != [0x50, 0x4b, 0x06, 0x06] {
                    return Err(bad("zip64 end of central directory record not found"));
                }
                entries = le64(&record, 32);
                cd_size = le64(&record, 40);
                cd_offset = le64(&record, 48);
            }
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) {
            return Err(bad("the central directory lies outside the file"));
        }
        Ok(ZipReader {
            file: Arc::new(file),
            len,
            cd_offset,
            cd_size,
            entries,
        })
    }

    /// Calls `visit` for every central directory record, in order, streaming.
    pub fn for_each(&self, mut visit: impl FnMut(&Record) -> io::Result<()>) -> io::Result<()> {
        let mut reader = BufReader::with_capacity(
            256 * 1024,
            At {
                file: self.file.clone(),
                pos: self.cd_offset,
                end: self.cd_offset + self.cd_size,
            },
        );
        let mut fixed = [0u8; 46];
        let mut variable = Vec::new();
        let mut seen = 0u64;
        loop {
            match reader.read_exact(&mut fixed[..4]) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            if fixed[..4] != [0x50, 0x4b, 0x01, 0x02] {
                break;
            }
            reader.read_exact(&mut fixed[4..])?;
            let (name_len, extra_len, comment_len) = (
                usize::from(le16(&fixed, 28)),
                usize::from(le16(&fixed, 30)),
                usize::from(le16(&fixed, 32)),
            );
            variable.resize(name_len + extra_len + comment_len, 0);
            reader.read_exact(&mut variable)?;
            let mut entry = Entry {
                local_offset: u64::from(le32(&fixed, 42)),
                compressed: u64::from(le32(&fixed, 20)),
                size: u64::from(le32(&fixed, 24)),
                crc32: le32(&fixed, 16),
                method: le16(&fixed, 10),
                flags: le16(&fixed, 8),
            };
            apply_zip64(&mut entry, &variable[name_len..name_len + extra_len]);
            let made_on_unix = fixed[5] == 3;
            let mode = le32(&fixed, 38) >> 16;
            let name = &variable[..name_len];
            visit(&Record {
                name,
                entry,
                is_dir: name.ends_with(b"/"),
                is_symlink: made_on_unix && mode & 0o170000 == 0o120000,
            })?;
            seen += 1;
        }
        if seen != self.entries {
            return Err(bad(format!(
                "the central directory holds {seen} records, but its end record says {}",
                self.entries
            )));
        }
        Ok(())
    }

    /// A reader of the entry's uncompressed bytes that fails on a CRC mismatch, on more
    /// or fewer bytes than declared, and on claims no deflate stream can make.
    pub fn open_entry(&self, entry: &Entry) -> io::Result<Box<dyn Read + Send>> {
        if entry.flags & 1 != 0 {
            return Err(bad("the entry is encrypted"));
        }
        let mut local = [0u8; 30];
        self.file.read_exact_at(&mut local, entry.local_offset)?;
        if local[..4] != [0x50, 0x4b, 0x03, 0x04] {
            return Err(bad("no local header where the central directory points"));
        }
        let data_start =
            entry.local_offset + 30 + u64::from(le16(&local, 26)) + u64::from(le16(&local, 28));
        let data_end = data_start
            .checked_add(entry.compressed)
            .filter(|&end| end <= self.len)
            .ok_or_else(|| bad("the entry's data runs past the end of the zip"))?;
        let raw = At {
            file: self.file.clone(),
            pos: data_start,
            end: data_end,
        };
        let inner: Box<dyn Read + Send> = match entry.method {
            0 => {
                if entry.compressed != entry.size {
                    return Err(bad("a stored entry whose sizes differ"));
                }
                Box::new(raw)
            }
            8 => {
                if entry.size > entry.compressed.saturating_mul(MAX_DEFLATE_RATIO) + 1024 {
                    return Err(bad(format!(
                        "claims to inflate {} bytes to {} (a zip bomb?): not inflated",
                        entry.compressed, entry.size
                    )));
                }
                Box::new(flate2::read::DeflateDecoder::new(raw))
            }
            other => return Err(bad(format!("compression method {other} is not supported"))),
        };
        Ok(Box::new(Checked {
            inner,
            left: entry.size,
            crc: crc32fast::Hasher::new(),
            expected_crc: entry.crc32,
            done: false,
        }))
    }
}

/// Caps an entry at its declared size and checks its CRC at the end.
struct Checked {
    inner: Box<dyn Read + Send>,
    left: u64,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    done: bool,
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One byte more than declared means the entry lies about its size.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(bad("the entry holds more bytes than declared"));
            }
            self.done = true;
            if self.crc.clone().finalize() != self.expected_crc {
                return Err(bad("CRC-32 mismatch"));
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(bad("the entry holds fewer bytes than declared"));
        }
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads the zip64 extended information field (id 1): the 64-bit sizes and offset
/// that replace the classic fields set to 0xFFFFFFFF, in that order.
fn apply_zip64(entry: &mut Entry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let id = le16(extra, 0);
        let len = usize::from(le16(extra, 2));
        let Some(body) = extra.get(4..4 + len) else {
            return;
        };
        if id == 1 {
            let mut at = 0;
            let mut next = |field: &mut u64| {
                if *field == 0xFFFF_FFFF && at + 8 <= body.len() {
                    *field = le64(body, at);
                    at += 8;
                }
            };
            next(&mut entry.size);
            next(&mut entry.compressed);
            next(&mut entry.local_offset);
            return;
        }
        extra = &extra[4 + len..];
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut writer = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, bytes, method) in entries {
            let options = zip::write::SimpleFileOptions::default().compression_method(*method);
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
        file
    }

    fn read_all(zip: &ZipReader) -> Vec<(String, Result<Vec<u8>, String>)> {
        let mut entries = Vec::new();
        zip.for_each(|r| {
            entries.push((String::from_utf8_lossy(r.name).into_owned(), r.entry));
            Ok(())
        })
        .unwrap();
        entries
            .into_iter()
            .map(|(name, entry)| {
                let mut out = Vec::new();
                let read = zip
                    .open_entry(&entry)
                    .and_then(|mut r| r.read_to_end(&mut out))
                    .map(|_| out)
                    .map_err(|e| e.to_string());
                (name, read)
            })
            .collect()
    }

    #[test]
    fn entries_read_back_exactly_stored_and_deflated() {
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let file = zip_of(&[
            ("a/stored.bin", &big, zip::CompressionMethod::Stored),
            (
                "a/deflated.txt",
                b"hello hello hello",
                zip::CompressionMethod::Deflated,
            ),
            ("a/empty", b"", zip::CompressionMethod::Deflated),
        ]);
        let zip = ZipReader::open(file.reopen().unwrap()).unwrap();
        let read = read_all(&zip);
        assert_eq!(read[0], ("a/stored.bin".into(), Ok(big)));
        assert_eq!(read[1].1.as_deref(), Ok(&b"hello hello hello"[..]));
        assert_eq!(read[2].1.as_deref(), Ok(&b""[..]));
    }

    #[test]
    fn a_lying_entry_is_an_error_not_a_flood() {
        let zeros = vec![0u8; 4 << 20];
        let file = zip_of(&[("z", &zeros, zip::CompressionMethod::Deflated)]);
        let zip = ZipReader::open(file.reopen().unwrap()).unwrap();
        let mut record = None;
        zip.for_each(|r| {
            record = Some(r.entry);
            Ok(())
        })
        .unwrap();
        let real = record.unwrap();
        // Declared smaller than it inflates to, declared as a bomb, a wrong CRC,
        // encrypted, an offset past the end.
        for (entry, expected) in [
            (Entry { size: 1000, ..real }, "more bytes than declared"),
            (
                Entry {
                    size: real.compressed * 5000,
                    ..real
                },
                "zip bomb",
            ),
            (
                Entry {
                    crc32: real.crc32 ^ 1,
                    ..real
                },
                "CRC",
            ),
            (Entry { flags: 1, ..real }, "encrypted"),
            (
                Entry {
                    local_offset: 1 << 40,
                    ..real
                },
                "",
            ),
            (Entry { method: 12, ..real }, "method 12"),
        ] {
            let mut sink = Vec::new();
            let error = zip
                .open_entry(&entry)
                .and_then(|mut r| r.read_to_end(&mut sink))
                .expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
            assert!(
                sink.len() <= 1000 || expected == "CRC",
                "{expected}: read {}",
                sink.len()
            );
        }
    }

    #[test]
    fn damaged_central_directories_are_errors() {
        let file = zip_of(&[("a", b"x", zip::CompressionMethod::Stored)]);
        let bytes = std::fs::read(file.path()).unwrap();
        for cut in [0, 10, bytes.len() - 10] {
            let damaged = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(damaged.path(), &bytes[..cut]).unwrap();
            let opened = ZipReader::open(damaged.reopen().unwrap());
            assert!(opened.is_err() || opened.unwrap().for_each(|_| Ok(())).is_err());
        }
    }
}
