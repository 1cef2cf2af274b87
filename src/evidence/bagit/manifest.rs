//! Payload and tag manifests (RFC 8493 §2.1.3, §2.2.1): their file names, and their
//! lines, `checksum<whitespace>filepath`.

use data_encoding::HEXLOWER_PERMISSIVE;

use super::algorithm::Algorithm;
use super::path::{out_of_scope, percent_decode, strip_dot_slash};

/// Which files a manifest lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManifestKind {
    /// `manifest-<alg>.txt`: payload files, under `data/`.
    Payload,
    /// `tagmanifest-<alg>.txt`: tag files, outside `data/`.
    Tag,
}

/// `manifest-<alg>.txt` → (Payload, "<alg>"), `tagmanifest-<alg>.txt` → (Tag, "<alg>").
pub fn manifest_name(file: &str) -> Option<(ManifestKind, &str)> {
    let stem = file.strip_suffix(".txt")?;
    let (kind, alg) = if let Some(alg) = stem.strip_prefix("tagmanifest-") {
        (ManifestKind::Tag, alg)
    } else {
        (ManifestKind::Payload, stem.strip_prefix("manifest-")?)
    };
    (!alg.is_empty() && !alg.contains('/')).then_some((kind, alg))
}

/// The file name of a manifest.
pub fn manifest_file(kind: ManifestKind, algorithm: Algorithm) -> String {
    match kind {
        ManifestKind::Payload => format!("manifest-{}.txt", algorithm.name()),
        ManifestKind::Tag => format!("tagmanifest-{}.txt", algorithm.name()),
    }
}

/// One manifest line, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub digest: Vec<u8>,
    /// Relative to the base directory, percent-decoded, without `./`.
    pub path: String,
    /// The path began with `*` (md5sum's binary-mode marker), which was dropped.
    pub md5sum_star: bool,
    /// The path began with `./`, which was dropped.
    pub dot_slash: bool,
}

/// Why a manifest line is not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not \"<checksum> <path>\" (a checksum, spaces or tabs, then a path)")]
    NoSeparator,
    #[error("{digest:?} is not a {algorithm} checksum ({} hex digits)", 2 * algorithm.digest_len())]
    BadDigest {
        digest: String,
        algorithm: Algorithm,
    },
    #[error("{path:?} is out of scope: {reason}; it was not opened")]
    OutOfScope { path: String, reason: &'static str },
}

/// Parses one line (without its line ending). `Ok(None)` for a blank line.
pub fn parse_line(line: &str, algorithm: Algorithm) -> Result<Option<Entry>, EntryError> {
    if line.trim_matches([' ', '\t']).is_empty() {
        return Ok(None);
    }
    let Some((digest, path)) = line.split_once([' ', '\t']) else {
        return Err(EntryError::NoSeparator);
    };
    let path = path.trim_start_matches([' ', '\t']);
    if digest.is_empty() || path.is_empty() {
        return Err(EntryError::NoSeparator);
    }
    let decoded = match HEXLOWER_PERMISSIVE.decode(digest.as_bytes()) {
        Ok(bytes) if bytes.len() == algorithm.digest_len() => bytes,
        _ => {
            return Err(EntryError::BadDigest {
                digest: digest.chars().take(200).collect(),
                algorithm,
            })
        }
    };
    let (path, md5sum_star) = match path.strip_prefix('*') {
        Some(rest) => (rest, true),
        None => (path, false),
    };
    let decoded_path = percent_decode(path);
    let (relative, quirks) = strip_dot_slash(&decoded_path);
    if let Some(reason) = out_of_scope(relative) {
        return Err(EntryError::OutOfScope {
            path: decoded_path.chars().take(4096).collect(),
            reason,
        });
    }
    Ok(Some(Entry {
        digest: decoded,
        path: relative.to_string(),
        md5sum_star,
        dot_slash: quirks.dot_slash,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "b1946ac92492d2347c6235b4d2611184";

    #[test]
    fn names() {
        assert_eq!(
            manifest_name("manifest-sha512.txt"),
            Some((ManifestKind::Payload, "sha512"))
        );
        assert_eq!(
            manifest_name("tagmanifest-md5.txt"),
            Some((ManifestKind::Tag, "md5"))
        );
        assert_eq!(manifest_name("manifest-.txt"), None);
        assert_eq!(manifest_name("bag-info.txt"), None);
        assert_eq!(
            manifest_file(ManifestKind::Tag, Algorithm::Sha1),
            "tagmanifest-sha1.txt"
        );
    }

    #[test]
    fn lines() {
        let entry = |line: &str| parse_line(line, Algorithm::Md5).unwrap().unwrap();
        let e = entry(&format!("{MD5}  data/hello.txt"));
        assert_eq!(
            (e.path.as_str(), e.md5sum_star, e.dot_slash),
            ("data/hello.txt", false, false)
        );
        assert_eq!(e.digest.len(), 16);
        assert_eq!(
            entry(&format!("{}\t \tdata/a b ", MD5.to_uppercase())).path,
            "data/a b "
        );
        let star = entry(&format!("{MD5} *data/hello.txt"));
        assert!(star.md5sum_star && star.path == "data/hello.txt");
        let dot = entry(&format!("{MD5} ./data/x"));
        assert!(dot.dot_slash && dot.path == "data/x");
        assert_eq!(entry(&format!("{MD5} data/a%0Ab%25")).path, "data/a\nb%");
        assert_eq!(parse_line("   ", Algorithm::Md5), Ok(None));
        assert_eq!(
            parse_line(MD5, Algorithm::Md5),
            Err(EntryError::NoSeparator)
        );
        assert!(matches!(
            parse_line(&format!("{MD5}0 data/x"), Algorithm::Md5),
            Err(EntryError::BadDigest { .. })
        ));
        assert!(matches!(
            parse_line("zz data/x", Algorithm::Md5),
            Err(EntryError::BadDigest { .. })
        ));
        for bad in [
            "../../x",
            "/tmp/foo",
            "~/x",
            "C:\\x",
            "\\\\?\\UNC\\s\\x",
            "data/%2e%2e/x/../../y",
        ] {
            assert!(
                matches!(
                    parse_line(&format!("{MD5}  {bad}"), Algorithm::Md5),
                    Err(EntryError::OutOfScope { .. })
                ),
                "{bad}"
            );
        }
    }
}
