//! File paths as manifests and fetch.txt write them (RFC 8493 §2.1.3, §2.2.3): decoded,
//! normalized, and refused when they could point outside the bag (§6.1).

/// RFC 8493 percent-encodes exactly CR, LF and `%` in file paths; only `%0D`, `%0A` and
/// `%25` (either case) are decoded. Anything else after a `%` is kept as written: older
/// bags hold names such as `data/%7Edir` that mean exactly that.
pub fn percent_decode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).map(str::to_ascii_uppercase);
        match code.as_deref() {
            Some("0D") => out.push('\r'),
            Some("0A") => out.push('\n'),
            Some("25") => out.push('%'),
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

/// How a path was written, beyond what it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathQuirks {
    /// Began with `./` (accepted, but not the RFC's form).
    pub dot_slash: bool,
}

/// Strips leading `./` (the path is relative to the base directory either way).
pub fn strip_dot_slash(path: &str) -> (&str, PathQuirks) {
    let mut quirks = PathQuirks::default();
    let mut path = path;
    while let Some(rest) = path.strip_prefix("./") {
        quirks.dot_slash = true;
        path = rest;
    }
    (path, quirks)
}

/// Why a decoded path from a manifest or fetch.txt is out of scope (could name a file
/// outside the bag on some system, or cannot name a file at all); `None` when it is safe
/// to look up under the bag's base directory.
pub fn out_of_scope(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("an empty path");
    }
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    let bytes = path.as_bytes();
    if path.starts_with("\\\\") || path.starts_with("//") {
        return Some("a UNC or device path (\\\\server\\share, \\\\?\\...)");
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Some("an absolute path");
    }
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Some("starts with a drive letter");
    }
    if path.starts_with('~') {
        return Some("starts with ~ (a home directory)");
    }
    // A backslash is a separator on Windows: "data\..\..\x" escapes there. RFC 8493
    // allows only '/' as a separator, so a backslash never names a portable file.
    let components = path.split(['/', '\\']);
    for component in components.clone() {
        if component == ".." {
            return Some("has a .. component");
        }
    }
    if path.contains('\\') {
        return Some("uses \\ (RFC 8493 paths use / as the only separator)");
    }
    for component in path.split('/') {
        match component {
            "" => return Some("has an empty component (// or a trailing /)"),
            "." => return Some("has a . component"),
            _ => {}
        }
    }
    None
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Files operating systems create on their own (Finder, Explorer, Spotlight): valid
/// payload, but rarely meant to be evidence.
pub fn is_os_special_file(path: &str) -> bool {
    let name = file_name(path);
    matches!(
        name.to_ascii_lowercase().as_str(),
        ".ds_store" | "thumbs.db" | "ehthumbs.db" | "desktop.ini" | ".directory"
    ) || name.starts_with("._")
        || path.split('/').any(|c| {
            matches!(
                c,
                ".Spotlight-V100" | ".Trashes" | ".fseventsd" | "__MACOSX"
            )
        })
}

/// The form two names are compared in for "differ only by case or Unicode
/// normalization": NFC, then lowercased.
pub fn fold(path: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    path.nfc().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cr_lf_and_percent_are_decoded() {
        assert_eq!(percent_decode("data/a%0Ab%0dc%25d"), "data/a\nb\rc%d");
        assert_eq!(percent_decode("data/%7Edir/%test%"), "data/%7Edir/%test%");
        assert_eq!(percent_decode("data/%2525"), "data/%25");
        assert_eq!(percent_decode("data/é%"), "data/é%");
    }

    #[test]
    fn out_of_scope_paths() {
        for ok in [
            "data/a",
            "data/dir1/~test3.txt",
            "data/%7Edir",
            "data/a b",
            "data/a\nb",
        ] {
            assert_eq!(out_of_scope(ok), None, "{ok:?}");
        }
        for bad in [
            "",
            "/tmp/foo",
            "../../../README.md",
            "data/../../x",
            "\\.\\./\\.\\./README.md",
            "~/foo",
            "~root/foo",
            "C:\\Windows\\System32\\setx.exe",
            "c:/x",
            "\\\\?\\UNC\\server\\x",
            "\\\\server\\share",
            "//server/share",
            "%HomeDrive%\\Windows\\x",
            "data\\x",
            "data//x",
            "data/./x",
            "data/",
            "data/a\0b",
        ] {
            assert!(out_of_scope(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn quirks_and_names() {
        assert_eq!(
            strip_dot_slash("././data/x"),
            ("data/x", PathQuirks { dot_slash: true })
        );
        assert_eq!(strip_dot_slash("data/x").1, PathQuirks::default());
        assert!(is_os_special_file("data/sub/.DS_Store"));
        assert!(is_os_special_file("data/Thumbs.db"));
        assert!(!is_os_special_file("data/thumbs.dbx"));
        assert_eq!(
            fold("data/Nu\u{301}n\u{303}ez"),
            fold("data/N\u{fa}\u{f1}ez")
        );
        assert_eq!(fold("data/HELLO.txt"), fold("data/hello.txt"));
    }
}
