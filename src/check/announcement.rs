//! A dissolution announcement as people compare it: the SHA-256 of its text in Unicode
//! NFC, line endings unified to `\n`, surrounding whitespace trimmed (sources.md, "Red
//! packets, ownership and announcements on every platform").

use std::path::{Path, PathBuf};

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::records::Direction;
use crate::source::{self, SourceError};

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

/// A copy this close to the announcement (the share of characters in its common start and
/// end) is a changed copy rather than another message.
const CHANGED_AT_LEAST: f64 = 0.6;

/// How a message's text differs from the announcement's: the common start and end kept
/// short, the differing middle shown as `[-old-]{+new+}`.
pub fn difference(announcement: &str, copy: &str) -> (f64, String) {
    let (a, b): (Vec<char>, Vec<char>) = (
        normalized(announcement).chars().collect(),
        normalized(copy).chars().collect(),
    );
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let longest = a.len().max(b.len()).max(1);
    let similarity = (prefix + suffix) as f64 / longest as f64;
    let context = |chars: &[char], from_end: bool| -> String {
        let n = chars.len().min(12);
        let part: String = if from_end {
            chars[chars.len() - n..].iter().collect()
        } else {
            chars[..n].iter().collect()
        };
        part.replace('\n', "⏎")
    };
    let shown = format!(
        "{}{}[-{}-]{{+{}+}}{}{}",
        if prefix > 12 { "…" } else { "" },
        context(&a[..prefix], true),
        a[prefix..a.len() - suffix]
            .iter()
            .collect::<String>()
            .replace('\n', "⏎"),
        b[prefix..b.len() - suffix]
            .iter()
            .collect::<String>()
            .replace('\n', "⏎"),
        context(&a[a.len() - suffix..], false),
        if suffix > 12 { "…" } else { "" },
    );
    (similarity, shown)
}

/// One message carrying the announcement, or a changed copy of it.
#[derive(Debug, Clone, Serialize)]
pub struct Copy {
    pub message_id: String,
    pub time_utc: String,
    pub sender_id: String,
    /// `[-old-]{+new+}`, for a changed copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<String>,
}

/// What one group of one source holds of the announcement.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCopies {
    pub source: PathBuf,
    pub platform: String,
    pub group_id: String,
    pub group_name: String,
    /// `identical`, `changed` or `none`.
    pub verdict: &'static str,
    pub identical: Vec<Copy>,
    pub changed: Vec<Copy>,
}

/// Searches every group chat of each source for the announcement: copies with the same
/// hash, changed copies (most of the text in common), or none.
pub fn find(sources: &[&Path], announcement: &str) -> Result<Vec<GroupCopies>, SourceError> {
    let wanted = hash(announcement);
    let mut found = Vec::new();
    for root in sources {
        let source = source::open(root)?;
        let groups: Vec<_> = source
            .groups()?
            .into_iter()
            .filter(|g| g.is_group)
            .collect();
        let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        source.prepare_messages(&ids);
        for group in groups {
            let (mut identical, mut changed) = (Vec::new(), Vec::new());
            for message in source.messages(&group.id)? {
                let message = message?;
                if message.direction == Direction::System || message.text.is_empty() {
                    continue;
                }
                let copy = |difference| Copy {
                    message_id: message.message_id.clone(),
                    time_utc: message
                        .time_ms
                        .map(crate::timefmt::utc_millis)
                        .unwrap_or_default(),
                    sender_id: message.sender_id.clone().unwrap_or_default(),
                    difference,
                };
                if hash(&message.text) == wanted {
                    identical.push(copy(None));
                    continue;
                }
                let (similarity, shown) = difference(announcement, &message.text);
                if similarity >= CHANGED_AT_LEAST {
                    changed.push(copy(Some(shown)));
                }
            }
            let verdict = if !identical.is_empty() {
                "identical"
            } else if !changed.is_empty() {
                "changed"
            } else {
                "none"
            };
            found.push(GroupCopies {
                source: root.to_path_buf(),
                platform: source.platform().to_string(),
                group_id: group.id,
                group_name: group.name,
                verdict,
                identical,
                changed,
            });
        }
    }
    Ok(found)
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
        let (similarity, shown) = difference("本群将于6月1日解散", "本群将于6月2日解散");
        assert!(similarity > 0.8, "{similarity}");
        assert_eq!(shown, "本群将于6月[-1-]{+2+}日解散");
        assert!(difference("本群将于6月1日解散", "吃饭了吗").0 < CHANGED_AT_LEAST);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
