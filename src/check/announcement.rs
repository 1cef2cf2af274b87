//! A dissolution announcement as people compare it: the SHA-256 of its text in Unicode
//! NFC, line endings unified to `\n`, surrounding whitespace trimmed (sources.md, "Red
//! packets, ownership and announcements on every platform").

use unicode_normalization::UnicodeNormalization;

/// The text that is hashed.
pub fn normalized(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    unified.trim().nfc().collect()
}

/// SHA-256 (hex) of [`normalized`] text.
pub fn hash(text: &str) -> String {
    crate::digest::sha256_hex(normalized(text).as_bytes())
}

/// Words that make a message by the owner or an admin a dissolution announcement when no
/// announcement text is given (or none matches).
pub fn mentions_dissolution(text: &str) -> bool {
    text.contains("解散") || text.contains("停用") || text.to_lowercase().contains("dissolv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_that_differ_only_in_form_hash_alike() {
        // "é" composed and decomposed, CRLF and LF, surrounding blanks.
        let a = "本群将于6月1日解散\r\nCaf\u{e9}\r\n";
        let b = "  本群将于6月1日解散\nCafe\u{301}";
        assert_eq!(hash(a), hash(b));
        assert_ne!(hash(a), hash("本群将于6月2日解散\nCafé"));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
