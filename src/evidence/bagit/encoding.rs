//! Tag files are read in the encoding `bagit.txt` declares (RFC 8493 §2.1.1, §2.2.4):
//! every supported encoding is turned into UTF-8 while it streams, so the line and field
//! parsers only ever see UTF-8, and a large manifest is never held whole.

use std::io::{self, BufRead, Read};

/// A `Tag-File-Character-Encoding` chatvault can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagEncoding {
    /// UTF-8, and US-ASCII, its subset.
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
    /// UTF-16 with a byte order mark (big-endian without one, as RFC 2781 says).
    Utf16,
    Utf16Le,
    Utf16Be,
}

impl TagEncoding {
    /// The encoding an IANA charset name (or a common alias) stands for.
    pub fn from_label(label: &str) -> Option<TagEncoding> {
        let folded: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match folded.as_str() {
            "utf8" | "usascii" | "ascii" => Some(TagEncoding::Utf8),
            "iso88591" | "latin1" | "l1" | "isoir100" | "cp819" | "ibm819" => {
                Some(TagEncoding::Latin1)
            }
            "utf16" => Some(TagEncoding::Utf16),
            "utf16le" => Some(TagEncoding::Utf16Le),
            "utf16be" => Some(TagEncoding::Utf16Be),
            _ => None,
        }
    }
}

/// A reader that yields the UTF-8 form of a tag file. A leading byte order mark is
/// consumed; [`Utf8Reader::had_utf8_bom`] says whether a UTF-8 file began with one
/// (which RFC 8493 forbids).
pub struct Utf8Reader<R> {
    inner: R,
    encoding: TagEncoding,
    started: bool,
    big_endian: bool,
    utf8_bom: bool,
    /// A byte of a UTF-16 code unit whose other byte has not been read yet.
    odd: Option<u8>,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
    raw: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl<R: Read> Utf8Reader<R> {
    pub fn new(inner: R, encoding: TagEncoding) -> Utf8Reader<R> {
        Utf8Reader {
            inner,
            encoding,
            started: false,
            big_endian: encoding != TagEncoding::Utf16Le,
            utf8_bom: false,
            odd: None,
            high: None,
            raw: vec![0; 64 * 1024],
            out: Vec::new(),
            pos: 0,
        }
    }

    pub fn had_utf8_bom(&self) -> bool {
        self.utf8_bom
    }

    /// Reads and converts the next chunk into `out`; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.pos = 0;
        loop {
            let n = match self.inner.read(&mut self.raw) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                if self.odd.is_some() {
                    return Err(bad("UTF-16 text with an odd number of bytes"));
                }
                if self.high.is_some() {
                    return Err(bad("UTF-16 text ends inside a surrogate pair"));
                }
                return Ok(false);
            }
            let mut start = 0;
            if !self.started {
                // The first chunk of a file is at least its first bytes; a BOM split
                // across reads would need a reader returning 1-2 bytes, which files and
                // zip entries do not.
                self.started = true;
                let head = &self.raw[..n];
                match self.encoding {
                    TagEncoding::Utf8 => {
                        if head.starts_with(b"\xEF\xBB\xBF") {
                            self.utf8_bom = true;
                            start = 3;
                        }
                    }
                    TagEncoding::Latin1 => {}
                    TagEncoding::Utf16 | TagEncoding::Utf16Le | TagEncoding::Utf16Be => {
                        if head.starts_with(b"\xFE\xFF") {
                            self.big_endian = true;
                            start = 2;
                        } else if head.starts_with(b"\xFF\xFE") {
                            self.big_endian = false;
                            start = 2;
                        }
                    }
                }
            }
            let raw = std::mem::take(&mut self.raw);
            let result = self.convert(&raw[start..n]);
            self.raw = raw;
            result?;
            if !self.out.is_empty() {
                return Ok(true);
            }
        }
    }

    fn convert(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self.encoding {
            TagEncoding::Utf8 => self.out.extend_from_slice(chunk),
            TagEncoding::Latin1 => {
                for &b in chunk {
                    let mut utf8 = [0u8; 2];
                    self.out
                        .extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes());
                }
            }
            TagEncoding::Utf16 | TagEncoding::Utf16Le | TagEncoding::Utf16Be => {
                let mut bytes = chunk.iter().copied();
                loop {
                    let (a, b) = match self.odd.take() {
                        Some(a) => match bytes.next() {
                            Some(b) => (a, b),
                            None => {
                                self.odd = Some(a);
                                break;
                            }
                        },
                        None => match (bytes.next(), bytes.next()) {
                            (Some(a), Some(b)) => (a, b),
                            (Some(a), None) => {
                                self.odd = Some(a);
                                break;
                            }
                            _ => break,
                        },
                    };
                    let unit = if self.big_endian {
                        u16::from_be_bytes([a, b])
                    } else {
                        u16::from_le_bytes([a, b])
                    };
                    self.push_unit(unit)?;
                }
            }
        }
        Ok(())
    }

    fn push_unit(&mut self, unit: u16) -> io::Result<()> {
        let pair;
        let units: &[u16] = match self.high.take() {
            Some(high) => {
                pair = [high, unit];
                &pair
            }
            None if (0xD800..0xDC00).contains(&unit) => {
                self.high = Some(unit);
                return Ok(());
            }
            None => std::slice::from_ref(&unit),
        };
        for decoded in char::decode_utf16(units.iter().copied()) {
            let c = decoded.map_err(|_| bad("UTF-16 text with an unpaired surrogate"))?;
            let mut utf8 = [0u8; 4];
            self.out
                .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf8Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Utf8Reader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.out.len() && !self.refill()? {
            return Ok(&[]);
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.out.len());
    }
}

/// Reads one line into `line`, without its ending (LF, CR or CRLF, RFC 8493 §2.2.4),
/// keeping at most `cap` bytes. `Ok(None)` at the end; `Ok(Some(true))` for a line longer
/// than `cap`, whose rest is skipped without being kept.
pub fn read_line(
    reader: &mut dyn BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, used, ending) = match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(at) => (&buf[..at], at + 1, Some(buf[at])),
            None => (buf, buf.len(), None),
        };
        let room = cap.saturating_sub(line.len());
        if chunk.len() > room {
            too_long = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        match ending {
            None => continue,
            Some(b'\r') => {
                // CRLF is one ending.
                if reader.fill_buf()?.first() == Some(&b'\n') {
                    reader.consume(1);
                }
                return Ok(Some(too_long));
            }
            Some(_) => return Ok(Some(too_long)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8], encoding: TagEncoding) -> io::Result<(Vec<String>, bool)> {
        let mut reader = Utf8Reader::new(bytes, encoding);
        let mut out = Vec::new();
        let mut line = Vec::new();
        while let Some(too_long) = read_line(&mut reader, &mut line, 8)? {
            let mut text = String::from_utf8(line.clone()).unwrap();
            if too_long {
                text.push('…');
            }
            out.push(text);
        }
        Ok((out, reader.had_utf8_bom()))
    }

    #[test]
    fn every_encoding_and_line_ending() {
        let (got, bom) = lines(b"a\nb\r\nc\rd", TagEncoding::Utf8).unwrap();
        assert_eq!(
            (got, bom),
            (vec!["a".into(), "b".into(), "c".into(), "d".into()], false)
        );
        let (got, bom) = lines(b"\xEF\xBB\xBFx\n", TagEncoding::Utf8).unwrap();
        assert_eq!((got, bom), (vec!["x".into()], true));
        let (got, _) = lines(b"N\xfa\xf1ez\n", TagEncoding::Latin1).unwrap();
        assert_eq!(got, ["Núñez"]);
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("é\r\n😀".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(lines(&le, TagEncoding::Utf16).unwrap().0, ["é", "😀"]);
        let be: Vec<u8> = "ab\n".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(lines(&be, TagEncoding::Utf16).unwrap().0, ["ab"]);
        assert_eq!(lines(&be, TagEncoding::Utf16Be).unwrap().0, ["ab"]);
        assert_eq!(
            lines(b"0123456789\nz", TagEncoding::Utf8).unwrap().0,
            ["01234567…", "z"]
        );
        // Odd length and a lone surrogate are errors, not panics.
        assert!(lines(&[0xFF, 0xFE, 0x41], TagEncoding::Utf16).is_err());
        assert!(lines(&[0x00, 0xD8, 0x41, 0x00], TagEncoding::Utf16Le).is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(TagEncoding::from_label("UTF-8"), Some(TagEncoding::Utf8));
        assert_eq!(
            TagEncoding::from_label("iso-8859-1"),
            Some(TagEncoding::Latin1)
        );
        assert_eq!(TagEncoding::from_label("UTF-16"), Some(TagEncoding::Utf16));
        assert_eq!(TagEncoding::from_label("EBCDIC"), None);
    }
}
