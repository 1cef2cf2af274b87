//! `bagit.txt`, the bag declaration (RFC 8493 §2.1.1): exactly two lines,
//! `BagIt-Version: M.N` then `Tag-File-Character-Encoding: ENCODING`, in UTF-8 without a
//! byte order mark. Parsed strictly (every fault is reported), but whatever can be read
//! is kept so that the rest of the bag can still be checked.

use super::encoding::TagEncoding;

/// A BagIt version, `M.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const V1_0: Version = Version { major: 1, minor: 0 };

    /// The versions whose rules chatvault knows: 0.93 to 0.97 and 1.0 (RFC 8493).
    pub fn is_known(self) -> bool {
        matches!((self.major, self.minor), (0, 93..=97) | (1, 0))
    }

    /// 0.93 to 0.95 called bag-info.txt `package-info.txt`.
    pub fn info_file(self) -> &'static str {
        if self
            < (Version {
                major: 0,
                minor: 96,
            })
        {
            "package-info.txt"
        } else {
            "bag-info.txt"
        }
    }

    fn parse(text: &str) -> Option<Version> {
        let (major, minor) = text.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Version {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What `bagit.txt` says, and everything wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declaration {
    /// The version, when it is `M.N` (known or not).
    pub version: Option<Version>,
    /// The encoding label as written.
    pub encoding_label: Option<String>,
    pub encoding: Option<TagEncoding>,
    /// Each way the file breaks RFC 8493 §2.1.1, said so that a person can fix it.
    pub faults: Vec<String>,
}

const VERSION_LABEL: &str = "BagIt-Version";
const ENCODING_LABEL: &str = "Tag-File-Character-Encoding";

/// Parses `bagit.txt`'s bytes.
pub fn parse_declaration(bytes: &[u8]) -> Declaration {
    let mut declaration = Declaration::default();
    let mut body = bytes;
    if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        declaration
            .faults
            .push("bagit.txt begins with a byte order mark (BOM), which it must not".into());
        body = rest;
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(_) => {
            declaration
                .faults
                .push("bagit.txt is not UTF-8 (it must be, whatever the tag files use)".into());
            return declaration;
        }
    };
    let lines = split_lines(text);
    let mut version_line = false;
    if lines.len() != 2 {
        declaration.faults.push(format!(
            "bagit.txt has {} line(s); it must have exactly two (BagIt-Version, then Tag-File-Character-Encoding)",
            lines.len()
        ));
    }
    for (index, line) in lines.iter().enumerate() {
        let Some((label, value)) = field(line) else {
            declaration.faults.push(format!(
                "bagit.txt line {}: {line:?} is not \"Label: value\"",
                index + 1
            ));
            continue;
        };
        let expected = [VERSION_LABEL, ENCODING_LABEL].get(index).copied();
        let known = if label.trim().eq_ignore_ascii_case(VERSION_LABEL) {
            Some(VERSION_LABEL)
        } else if label.trim().eq_ignore_ascii_case(ENCODING_LABEL) {
            Some(ENCODING_LABEL)
        } else {
            None
        };
        match (known, expected) {
            (None, _) => {
                declaration.faults.push(format!(
                    "bagit.txt line {}: unknown label {label:?}",
                    index + 1
                ));
                continue;
            }
            (Some(known), Some(expected)) if known != expected => {
                declaration.faults.push(format!(
                    "bagit.txt line {}: {known} is out of order ({expected} comes first)",
                    index + 1
                ));
            }
            _ => {}
        }
        if label != label.trim() || !single_space_before(value) || value.trim() != &value[1..] {
            declaration.faults.push(format!(
                "bagit.txt line {}: {line:?} has stray whitespace (it must be \"{}: value\")",
                index + 1,
                known.unwrap_or_default()
            ));
        }
        let value = value.trim();
        if known == Some(VERSION_LABEL) {
            version_line = true;
            if declaration.version.is_some() {
                declaration
                    .faults
                    .push("bagit.txt gives BagIt-Version twice".into());
                continue;
            }
            match Version::parse(value) {
                Some(version) => {
                    if !version.is_known() {
                        declaration.faults.push(format!(
                            "BagIt-Version {version} is not a BagIt version (0.93 to 0.97, or 1.0)"
                        ));
                    }
                    declaration.version = Some(version);
                }
                None => declaration.faults.push(format!(
                    "BagIt-Version {value:?} is not M.N (for example 1.0)"
                )),
            }
        } else {
            if declaration.encoding_label.is_some() {
                declaration
                    .faults
                    .push("bagit.txt gives Tag-File-Character-Encoding twice".into());
                continue;
            }
            declaration.encoding = TagEncoding::from_label(value);
            if declaration.encoding.is_none() {
                declaration.faults.push(format!(
                    "Tag-File-Character-Encoding {value:?} is not one chatvault reads (UTF-8, ISO-8859-1, UTF-16)"
                ));
            }
            declaration.encoding_label = Some(value.to_string());
        }
    }
    if !version_line {
        declaration
            .faults
            .push("bagit.txt has no BagIt-Version line".into());
    }
    if declaration.encoding_label.is_none() {
        declaration
            .faults
            .push("bagit.txt has no Tag-File-Character-Encoding line".into());
    }
    declaration
}

/// The lines of `text`, split at LF, CR or CRLF; a last line without an ending counts,
/// an ending at the very end does not open another line.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(at) => {
                lines.push(&rest[..at]);
                let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[at + skip..];
            }
            None => {
                lines.push(rest);
                break;
            }
        }
    }
    lines
}

/// "Label: value" → (label, ": value" without the colon); `None` without a colon.
fn field(line: &str) -> Option<(&str, &str)> {
    line.split_once(':')
}

fn single_space_before(value: &str) -> bool {
    value.starts_with([' ', '\t']) && !value[1..].starts_with([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_declarations() {
        for text in [
            "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "BagIt-version: 1.0\rTag-File-Character-Encoding: ISO-8859-1\r",
        ] {
            let d = parse_declaration(text.as_bytes());
            assert!(d.faults.is_empty(), "{text:?}: {:?}", d.faults);
            assert!(d.version.is_some() && d.encoding.is_some());
        }
    }

    #[test]
    fn every_fault_is_named() {
        for (text, fault) in [
            (
                "\u{feff}BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
                "byte order mark",
            ),
            (
                "BagIt-Version : 1.0\nTag-File-Character-Encoding : UTF-8\n",
                "stray whitespace",
            ),
            (
                "BagIt-Version: 1.0 \nTag-File-Character-Encoding: UTF-8\n",
                "stray whitespace",
            ),
            (
                "BagIt-Version:  1.0\nTag-File-Character-Encoding: UTF-8\n",
                "stray whitespace",
            ),
            (
                "BagIt-Version: .97\nTag-File-Character-Encoding: UTF-8\n",
                "not M.N",
            ),
            (
                "BagIt-Version: 2.0\nTag-File-Character-Encoding: UTF-8\n",
                "not a BagIt version",
            ),
            ("BagIt-Version: 0.97\n", "no Tag-File-Character-Encoding"),
            (
                "Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n",
                "out of order",
            ),
            (
                "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n\n",
                "exactly two",
            ),
            (
                "BagIt-Version: 1.0\nTag-File-Character-Encoding: KOI8-R\n",
                "not one chatvault reads",
            ),
            ("", "no BagIt-Version"),
        ] {
            let d = parse_declaration(text.as_bytes());
            assert!(
                d.faults.iter().any(|f| f.contains(fault)),
                "{text:?}: {:?}",
                d.faults
            );
        }
        assert!(!parse_declaration(b"\xff\xfe").faults.is_empty());
    }
}
