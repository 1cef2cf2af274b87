//! Hashing while copying: every payload byte is SHA-256'd in the same pass that
//! writes it, so no payload file is ever read back to be hashed.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::digest::hex;

/// Buffer size for streaming copies and file hashing: large enough that SHA-NI,
/// not syscalls, sets the pace.
pub const IO_BUFFER: usize = 1 << 20;

/// A `Write` wrapper that SHA-256s and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the lowercase hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        // Hash only what the inner writer accepted, so a short write stays consistent.
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

thread_local! {
    /// Spare buffers of this thread: a stack, so that work stolen by the thread while it
    /// waits inside a buffer's user (rayon) gets a buffer of its own, reused too.
    static BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Opens `path` for reading only if it is a regular file. Opened non-blocking and
/// checked on the open handle, so a FIFO, a device such as `/dev/zero` or a socket
/// named in a list is refused at once instead of hanging or reading forever.
pub fn open_regular(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or socket is never read)",
        ));
    }
    Ok(file)
}

/// Runs `f` with one of this thread's reusable `IO_BUFFER`-sized buffers (rayon workers
/// hash many files; allocating 1 MiB per file would cost more than small files).
pub fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    let mut buf = BUFFERS
        .with(|cell| cell.borrow_mut().pop())
        .unwrap_or_else(|| vec![0; IO_BUFFER]);
    let result = f(&mut buf);
    BUFFERS.with(|cell| {
        let mut spare = cell.borrow_mut();
        // A few are kept: as many as were in use at once on this thread, up to 4.
        if spare.len() < 4 {
            spare.push(buf);
        }
    });
    result
}

/// Which side of a copy failed, so the caller can name the right file.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `src` into `dst`, hashing the bytes on the way; returns (sha256 hex, size).
/// `buf` is the copy buffer; its first `already_read` bytes were read from `src`
/// before the call (to peek at the size) and are written first.
pub fn copy_hashing(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    buf: &mut [u8],
    already_read: usize,
) -> Result<(String, u64), CopyError> {
    let mut hasher = Sha256::new();
    let pending = &buf[..already_read.min(buf.len())];
    let mut total = pending.len() as u64;
    hasher.update(pending);
    dst.write_all(pending).map_err(CopyError::Write)?;
    loop {
        let n = match src.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// Hashes a whole reader; `progress` gets the byte count of each chunk.
pub fn hash_reader(
    src: &mut dyn Read,
    buf: &mut [u8],
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> io::Result<(String, u64)> {
    hash_to_end(src, buf, progress, None)
}

/// Hashes a regular file whose size was just taken from the open file. A read that comes
/// back short with exactly that many bytes in is the end of the file, so the read that
/// would return 0 is left out: for a cache of small files, one read in three. A file that
/// has grown since is read to its end.
pub fn hash_sized_file(src: &mut dyn Read, buf: &mut [u8], size: u64) -> io::Result<(String, u64)> {
    hash_to_end(src, buf, None, Some(size))
}

fn hash_to_end(
    src: &mut dyn Read,
    buf: &mut [u8],
    progress: Option<&(dyn Fn(u64) + Sync)>,
    known_size: Option<u64>,
) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match src.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        if let Some(report) = progress {
            report(n as u64);
        }
        if n < buf.len() && Some(total) == known_size {
            break;
        }
    }
    Ok((hex(&hasher.finalize()), total))
}

/// Reads until `buf` is full or the source ends; returns how much was read.
pub fn read_up_to(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_sized_hash_is_the_hash_of_the_whole_file_whatever_the_size_says() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let whole = sha256_hex(&data);
        let mut buf = vec![0u8; 4096];
        // Right, too small (the file grew), too large (it shrank), and at a buffer's end.
        for size in [5000, 10, 9000, 4096] {
            let (digest, total) = hash_sized_file(&mut &data[..], &mut buf, size).unwrap();
            assert_eq!((digest.as_str(), total), (whole.as_str(), 5000), "{size}");
        }
        let exact = &data[..4096];
        let (digest, total) = hash_sized_file(&mut &exact[..], &mut buf, 4096).unwrap();
        assert_eq!((digest, total), (sha256_hex(exact), 4096));
    }

    #[test]
    fn hashing_writer_matches_known_digest() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        let (inner, digest, bytes) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(digest, ABC);
        assert_eq!(bytes, 3);
        assert_eq!(sha256_hex(b"abc"), ABC);
    }

    #[test]
    fn copy_hashing_includes_pending_bytes() {
        let mut out = Vec::new();
        let mut buf = *b"a_";
        let (digest, size) = copy_hashing(&mut &b"bc"[..], &mut out, &mut buf, 1).unwrap();
        assert_eq!((digest.as_str(), size), (ABC, 3));
        assert_eq!(out, b"abc");
    }
}
