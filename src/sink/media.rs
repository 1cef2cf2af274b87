//! Naming media inside the bundle: readable, collision-free, never needing escapes.

use sha2::{Digest, Sha256};

use crate::pathsafe::sanitize_component;
use crate::records::{MediaLocation, MediaRef};

/// Extensions whose content is already compressed: stored, not deflated, in a zip.
const COMPRESSED: [&str; 22] = [
    "jpg", "jpeg", "png", "gif", "webp", "heic", "mp4", "mov", "m4a", "mp3", "amr", "silk", "aac",
    "zip", "7z", "rar", "gz", "docx", "xlsx", "pptx", "pdf", "apk",
];

pub fn is_compressed(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((_, ext)) => COMPRESSED.iter().any(|c| ext.eq_ignore_ascii_case(c)),
        None => false,
    }
}

/// The directory of a group's media: the sanitized id, plus a short hash of the id when
/// sanitizing changed it (so `a/b` and `a_b` never share a directory).
pub fn group_dir(group_id: &str) -> String {
    let clean = sanitize_component(group_id, 80);
    if clean == group_id {
        clean
    } else {
        let digest = Sha256::digest(group_id.as_bytes());
        let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("{clean}-{short}")
    }
}

/// The file's own name as the source gives it (last path component).
pub fn source_file_name(media: &MediaRef) -> &str {
    if let Some(name) = media.original_name.as_deref().filter(|n| !n.is_empty()) {
        return name;
    }
    match &media.location {
        MediaLocation::Path(p) | MediaLocation::NotDownloaded(p) => {
            p.rsplit('/').next().unwrap_or_default()
        }
    }
}

/// `media/<group>/<message id>_<name>`, or with `names_allowed == false` (anonymized
/// exports) `media/<group>/<message id>_<n>.<ext>` so no original name survives.
pub fn bundle_path(
    group_dir: &str,
    message_id: &str,
    index: usize,
    media: &MediaRef,
    names_allowed: bool,
) -> String {
    let id = sanitize_component(message_id, 40);
    let name = source_file_name(media);
    let file = if names_allowed {
        sanitize_component(&format!("{id}_{name}"), 120)
    } else {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|e| format!(".{}", e.to_ascii_lowercase()))
            .unwrap_or_default();
        format!("{id}_{index}{ext}")
    };
    format!("media/{group_dir}/{file}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MediaKind;

    #[test]
    fn group_dirs_do_not_collide() {
        assert_eq!(group_dir("123@chatroom"), "123@chatroom");
        assert_ne!(group_dir("cid7Jx2/Qm0e9A=="), group_dir("cid7Jx2_Qm0e9A=="));
        assert!(!group_dir("a/b%c").contains(['/', '%']));
    }

    #[test]
    fn anonymized_names_keep_only_the_extension() {
        let media = MediaRef {
            kind: MediaKind::File,
            location: MediaLocation::Path("Download/张伟的简历.pdf".into()),
            original_name: Some("张伟的简历.pdf".into()),
            declared_size: None,
        };
        assert_eq!(
            bundle_path("g", "42", 0, &media, true),
            "media/g/42_张伟的简历.pdf"
        );
        assert_eq!(bundle_path("g", "42", 0, &media, false), "media/g/42_0.pdf");
        assert!(is_compressed("a.PDF"));
        assert!(!is_compressed("th_abc"));
    }
}
