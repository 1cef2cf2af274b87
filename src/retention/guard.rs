//! The invariants no plan can bend. A plan is a request: anyone can edit `PLAN.json` and
//! recompute its sidecar, so `clean` re-decides every `delete` entry against these, and
//! `plan` applies the same ones so that a plan it writes never asks for what `clean` refuses.
//!
//! Never deleted, whatever a plan says:
//! - a path that is absolute, holds `..` or `.`, or is empty;
//! - a database or its `-wal` / `-shm` / `-journal` (by the platform's layout, by name, and
//!   at clean time by content: SQLite and WAL headers);
//! - a file outside the cache categories (the platform's media, avatar and recycle-bin
//!   areas, by its layout in `spec/sources.md`).

use crate::platform::PlatformRef;
use crate::records::{CacheClass, MediaKind};

use super::decide::Category;
use super::handles::relative_components;

/// Why `rel` (relative to a `platform` root) may never be deleted, or `None`.
pub fn never_delete(platform: PlatformRef, rel: &str) -> Option<String> {
    if let Err(why) = relative_components(rel) {
        return Some(format!("{why}: never outside the root"));
    }
    let name = rel.rsplit('/').next().unwrap_or_default();
    if is_database_name(name) {
        return Some("a database or its journal (by name): never deleted".to_string());
    }
    match platform.cache_class(rel) {
        CacheClass::Database => {
            Some("a database the plan reads, or its journal: never deleted".to_string())
        }
        CacheClass::Other => Some(format!(
            "outside the cache categories of a {platform} root: never deleted"
        )),
        CacheClass::Media(_) | CacheClass::Avatar | CacheClass::RecycleBin => None,
    }
}

/// `*.db`, `*.sqlite`, `*.db-wal`, `*-shm`, `*-journal` and the like, in any case.
pub fn is_database_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        ".db", ".sqlite", ".sqlite3", ".db3", "-wal", "-shm", "-journal",
    ]
    .iter()
    .any(|suffix| lower.ends_with(suffix))
        || lower.contains(".db-")
        || lower.contains(".sqlite-")
}

/// The category a cached file of `platform` has by its path, `None` outside the caches.
pub fn cache_category(platform: PlatformRef, rel: &str) -> Option<Category> {
    match platform.cache_class(rel) {
        CacheClass::Media(kind) => Some(match kind {
            MediaKind::Image => Category::Image,
            MediaKind::ImageThumb => Category::ImageThumb,
            MediaKind::Voice => Category::Voice,
            MediaKind::Video => Category::Video,
            MediaKind::VideoThumb => Category::VideoThumb,
            MediaKind::File => Category::File,
            MediaKind::Emoji => Category::Emoji,
        }),
        CacheClass::Avatar => Some(Category::Avatar),
        CacheClass::RecycleBin => Some(Category::RecycleBin),
        CacheClass::Database | CacheClass::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{dingtalk, qq, wechat, wecom};

    #[test]
    fn databases_escapes_and_other_files_are_never_deleted() {
        let w: PlatformRef = &wechat::WECHAT;
        for rel in [
            "EnMicroMsg.db",
            "EnMicroMsg.db-wal",
            "EnMicroMsg.db-shm",
            "image2/ab/x.db",
            "image2/ab/cache.sqlite-journal",
            "../outside.jpg",
            "/etc/passwd",
            "image2/../EnMicroMsg.db",
            "./image2/a.jpg",
            "",
            "notes.txt",
            "unknown/a.jpg",
        ] {
            assert!(never_delete(w, rel).is_some(), "{rel}");
        }
        for rel in ["image2/ab/a.jpg", "Download/报价单.xlsx", "avatar/x.png"] {
            assert_eq!(never_delete(w, rel), None, "{rel}");
        }
        assert!(never_delete(&qq::QQ, "nt_db/nt_msg.db-wal").is_some());
        assert!(never_delete(&dingtalk::DINGTALK, "DBFiles/dingtalk.db-wal").is_some());
        assert!(never_delete(&wecom::WECOM, "archive/a.jsonl").is_some());
        assert_eq!(never_delete(&wecom::WECOM, "media/a.jpg"), None);
    }
}
