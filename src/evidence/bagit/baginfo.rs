//! `bag-info.txt` (`package-info.txt` before 0.96): metadata elements, `Label: value`,
//! long values continued on indented lines, labels repeated at will (RFC 8493 §2.2.2).

use super::declaration::Version;

/// The parsed elements, in file order, and what is wrong with the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BagInfo {
    pub fields: Vec<(String, String)>,
    /// Breaks of the format (the bag is invalid).
    pub faults: Vec<String>,
    /// Oddities that leave it valid.
    pub warnings: Vec<String>,
}

/// `Payload-Oxum: OctetCount.StreamCount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oxum {
    pub bytes: u64,
    pub files: u64,
}

impl std::fmt::Display for Oxum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.bytes, self.files)
    }
}

pub const PAYLOAD_OXUM: &str = "Payload-Oxum";

impl BagInfo {
    /// Every value of `label` (labels compare case-insensitively, §2.2.2).
    pub fn values<'a>(&'a self, label: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(l, _)| l.eq_ignore_ascii_case(label))
            .map(|(_, v)| v.as_str())
    }

    /// The Payload-Oxum, if there is exactly one well-formed one; a malformed or repeated
    /// one is an error naming the fault.
    pub fn oxum(&self) -> Result<Option<Oxum>, String> {
        let values: Vec<&str> = self.values(PAYLOAD_OXUM).collect();
        match values.as_slice() {
            [] => Ok(None),
            [value] => parse_oxum(value.trim())
                .map(Some)
                .ok_or_else(|| format!("Payload-Oxum {value:?} is not OctetCount.StreamCount")),
            _ => Err(format!(
                "Payload-Oxum is given {} times; it must not be repeated",
                values.len()
            )),
        }
    }
}

fn parse_oxum(value: &str) -> Option<Oxum> {
    let (bytes, files) = value.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(bytes) || !digits(files) {
        return None;
    }
    Some(Oxum {
        bytes: bytes.parse().ok()?,
        files: files.parse().ok()?,
    })
}

/// Parses the decoded text of the metadata file `name` under the rules of `version`:
/// from 1.0 a label has no surrounding whitespace and one space or tab follows the
/// colon; earlier versions allow whitespace around the colon (§2.2.2).
pub fn parse_bag_info(text: &str, version: Version, name: &str) -> BagInfo {
    let mut info = BagInfo::default();
    let strict = version >= Version::V1_0;
    let mut number = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match rest.find(['\n', '\r']) {
            Some(at) => {
                let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..at], &rest[at + skip..])
            }
            None => (rest, ""),
        };
        rest = next;
        number += 1;
        if line.trim().is_empty() {
            info.warnings
                .push(format!("{name} line {number} is blank (ignored)"));
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match info.fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim_matches([' ', '\t']));
                }
                None => info.faults.push(format!(
                    "{name} line {number} is indented (a continuation) but continues nothing"
                )),
            }
            continue;
        }
        let Some((label, value)) = line.split_once(':') else {
            info.faults.push(format!(
                "{name} line {number}: {:?} is not \"Label: value\"",
                shorten(line)
            ));
            continue;
        };
        let trimmed = label.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            info.faults
                .push(format!("{name} line {number} has an empty label"));
            continue;
        }
        if strict && trimmed != label {
            info.faults.push(format!(
                "{name} line {number}: the label {label:?} has whitespace around it (BagIt 1.0 allows none)"
            ));
        }
        if strict && !value.is_empty() && !value.starts_with([' ', '\t']) {
            info.faults.push(format!(
                "{name} line {number}: no space after the colon of {trimmed:?}"
            ));
        }
        let value = if strict {
            value.strip_prefix([' ', '\t']).unwrap_or(value)
        } else {
            value.trim_matches([' ', '\t'])
        };
        info.fields.push((trimmed.to_string(), value.to_string()));
    }
    info
}

fn shorten(line: &str) -> String {
    line.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V097: Version = Version {
        major: 0,
        minor: 97,
    };

    #[test]
    fn labels_values_and_continuations() {
        let text = "Source-Organization: FOO\r\nExternal-Description: Uncompressed\n  greyscale TIFF\nContact-Name: A\ncontact-name: B\rPayload-Oxum: 279164409832.1198\n";
        let info = parse_bag_info(text, Version::V1_0, "bag-info.txt");
        assert!(info.faults.is_empty(), "{:?}", info.faults);
        assert_eq!(info.values("Contact-Name").collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(
            info.values("External-Description").next(),
            Some("Uncompressed greyscale TIFF")
        );
        assert_eq!(
            info.oxum(),
            Ok(Some(Oxum {
                bytes: 279_164_409_832,
                files: 1198
            }))
        );
    }

    #[test]
    fn whitespace_around_the_colon_by_version() {
        let text = "Test-Tag : 3\nTest-Tag    :   5\n";
        let old = parse_bag_info(text, V097, "bag-info.txt");
        assert!(old.faults.is_empty());
        assert_eq!(old.values("test-tag").collect::<Vec<_>>(), ["3", "5"]);
        let new = parse_bag_info(text, Version::V1_0, "bag-info.txt");
        assert_eq!(new.faults.len(), 2, "{:?}", new.faults);
    }

    #[test]
    fn faults() {
        for (text, fault) in [
            ("  indented first\n", "continues nothing"),
            ("no colon here\n", "not \"Label: value\""),
            (": value\n", "empty label"),
            ("Label:value\n", "no space after the colon"),
        ] {
            let info = parse_bag_info(text, Version::V1_0, "bag-info.txt");
            assert!(
                info.faults.iter().any(|f| f.contains(fault)),
                "{text:?}: {:?}",
                info.faults
            );
        }
        let twice = parse_bag_info("Payload-Oxum: 1.1\nPayload-Oxum: 1.1\n", V097, "x");
        assert!(twice.oxum().unwrap_err().contains("repeated"));
        let bad = parse_bag_info("Payload-Oxum: 12\n", V097, "x");
        assert!(bad.oxum().unwrap_err().contains("OctetCount"));
        assert!(parse_bag_info("A: 1\n\n", V097, "x").warnings[0].contains("blank"));
    }
}
