//! `fetch.txt` (RFC 8493 §2.2.3): `url length filepath` per line, files a holey bag
//! expects to be fetched before it is complete.

use super::path::{out_of_scope, percent_decode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchEntry {
    pub url: String,
    /// `None` for "-" (unspecified).
    pub length: Option<u64>,
    /// Relative to the base directory, percent-decoded.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not \"<url> <length> <path>\"")]
    Fields,
    #[error("{0:?} is not an absolute URL (scheme:...)")]
    Url(String),
    #[error("the length {0:?} is neither a number nor \"-\"")]
    Length(String),
    #[error("{path:?} is out of scope: {reason}; it was not opened")]
    OutOfScope { path: String, reason: &'static str },
    #[error("{0:?} is not a payload file (fetch.txt lists only files under data/)")]
    NotPayload(String),
}

/// Parses one line (without its ending); `Ok(None)` for a blank line.
pub fn parse_fetch_line(line: &str) -> Result<Option<FetchEntry>, FetchError> {
    if line.trim_matches([' ', '\t']).is_empty() {
        return Ok(None);
    }
    let mut rest = line.trim_start_matches([' ', '\t']);
    let mut field = || -> Option<&str> {
        let end = rest.find([' ', '\t'])?;
        let value = &rest[..end];
        rest = rest[end..].trim_start_matches([' ', '\t']);
        Some(value)
    };
    let (Some(url), Some(length)) = (field(), field()) else {
        return Err(FetchError::Fields);
    };
    let path = rest;
    if path.is_empty() {
        return Err(FetchError::Fields);
    }
    if !is_absolute_uri(url) {
        return Err(FetchError::Url(url.chars().take(200).collect()));
    }
    let length = match length {
        "-" => None,
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Some(
            digits
                .parse()
                .map_err(|_| FetchError::Length(digits.into()))?,
        ),
        other => return Err(FetchError::Length(other.chars().take(40).collect())),
    };
    let path = percent_decode(path);
    if let Some(reason) = out_of_scope(&path) {
        return Err(FetchError::OutOfScope {
            path: path.chars().take(4096).collect(),
            reason,
        });
    }
    if !path.starts_with("data/") {
        return Err(FetchError::NotPayload(path));
    }
    Ok(Some(FetchEntry {
        url: url.to_string(),
        length,
        path,
    }))
}

/// RFC 3986 absolute-URI: a scheme (a letter, then letters, digits, `+`, `-`, `.`), a
/// colon, and something after it.
fn is_absolute_uri(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let e = parse_fetch_line("http://localhost:8989/bags/data/test%201.txt - data/test 1.txt")
            .unwrap()
            .unwrap();
        assert_eq!((e.length, e.path.as_str()), (None, "data/test 1.txt"));
        let e = parse_fetch_line("https://cdn.loc.gov/a.tif\t216951362  data/23364a.tif")
            .unwrap()
            .unwrap();
        assert_eq!(e.length, Some(216_951_362));
        assert_eq!(parse_fetch_line(""), Ok(None));
        for (line, want) in [
            ("http://x - ../../../README.md", "out of scope"),
            ("https://en.wikipedia.org - /tmp/test.txt", "out of scope"),
            ("https://en.wikipedia.org - ~/test.txt", "out of scope"),
            ("https://en.wikipedia.org - ~root/foo", "out of scope"),
            (
                "https://en.wikipedia.org - C:\\Windows\\System32\\setx.exe",
                "out of scope",
            ),
            (
                "https://en.wikipedia.org - %HomeDrive%\\Windows\\setx.exe",
                "out of scope",
            ),
            (
                "https://en.wikipedia.org - \\\\?\\UNC\\server\\setx.exe",
                "out of scope",
            ),
            ("https://x - bag-info.txt", "not a payload file"),
            ("no-scheme - data/x", "absolute URL"),
            ("http://x 12k data/x", "length"),
            ("http://x -", "not \"<url>"),
        ] {
            let err = parse_fetch_line(line).unwrap_err().to_string();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}
