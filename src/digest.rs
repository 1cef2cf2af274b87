//! One home for digests: lowercase hex, and SHA-256 of bytes, readers and files. Every
//! read loop goes through [`crate::evidence::tee`]'s, so interrupted reads, buffer reuse
//! and progress are handled in one place.

use std::io::{self, Read};
use std::path::Path;

use data_encoding::HEXLOWER;
use sha2::{Digest, Sha256};

use crate::evidence::tee;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// SHA-256 (lowercase hex) and length of everything `reader` yields.
pub fn sha256_reader(reader: &mut dyn Read) -> io::Result<(String, u64)> {
    tee::with_buffer(|buf| tee::hash_reader(reader, buf, None))
}

/// SHA-256 (lowercase hex) and length of the file at `path`.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    sha256_reader(&mut file)
}

/// A reader that keeps the first bytes it passes on (a file's magic number, read in the
/// same pass as its hash).
pub struct HeadOf<R, const N: usize> {
    inner: R,
    head: [u8; N],
    seen: usize,
}

impl<R: Read, const N: usize> HeadOf<R, N> {
    pub fn new(inner: R) -> Self {
        HeadOf {
            inner,
            head: [0; N],
            seen: 0,
        }
    }

    /// The first `N` bytes read (zeros past the end of a shorter stream).
    pub fn head(&self) -> [u8; N] {
        self.head
    }
}

impl<R: Read, const N: usize> Read for HeadOf<R, N> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.seen < N {
            let take = (N - self.seen).min(n);
            self.head[self.seen..self.seen + take].copy_from_slice(&buf[..take]);
            self.seen += take;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_vectors() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_hex(b""), empty);
        assert_eq!(
            sha256_reader(&mut &b""[..]).unwrap(),
            (empty.to_string(), 0)
        );
        let mut reader = HeadOf::<_, 4>::new(&b"SQLite format 3"[..]);
        let (digest, len) = sha256_reader(&mut reader).unwrap();
        assert_eq!(digest, sha256_hex(b"SQLite format 3"));
        assert_eq!(len, 15);
        assert_eq!(&reader.head(), b"SQLi");
    }
}
