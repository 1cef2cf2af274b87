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

use crate::records::{CacheClass, MediaKind, Platform};
use crate::source::qq;

use super::decide::Category;
use super::handles::relative_components;

/// Why `rel` (relative to a `platform` root) may never be deleted, or `None`.
pub fn never_delete(platform: Platform, rel: &str) -> Option<String> {
    if let Err(why) = relative_components(rel) {
        return Some(format!("{why}: never outside the root"));
    }
    let name = rel.rsplit('/').next().unwrap_or_default();
    if is_database_name(name) {
        return Some("a database or its journal (by name): never deleted".to_string());
    }
    match cache_class(platform, rel) {
        CacheClass::Database => {
            Some("a database the plan reads, or its journal: never deleted".to_string())
        }
        CacheClass::Other => Some(format!(
            "outside the cache categories of a {} root: never deleted",
            platform.as_str()
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
pub fn cache_category(platform: Platform, rel: &str) -> Option<Category> {
    match cache_class(platform, rel) {
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

/// The platforms' layouts (`spec/sources.md`), as their readers classify files; a test
/// checks this against each reader's own `classify` on simulated sources.
pub(crate) fn cache_class(platform: Platform, rel: &str) -> CacheClass {
    let file_name = rel.rsplit('/').next().unwrap_or_default();
    let mut parts = rel.split('/');
    let top = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    match platform {
        Platform::Wechat => {
            if rel == "EnMicroMsg.db" || rel.starts_with("EnMicroMsg.db-") {
                return CacheClass::Database;
            }
            match top {
                _ if rest.is_empty() => CacheClass::Other,
                "image2" if file_name.starts_with("th_") => {
                    CacheClass::Media(MediaKind::ImageThumb)
                }
                "image2" => CacheClass::Media(MediaKind::Image),
                "voice2" => CacheClass::Media(MediaKind::Voice),
                "video" if file_name.ends_with(".jpg") => CacheClass::Media(MediaKind::VideoThumb),
                "video" => CacheClass::Media(MediaKind::Video),
                "Download" => CacheClass::Media(MediaKind::File),
                "emoji" => CacheClass::Media(MediaKind::Emoji),
                "avatar" => CacheClass::Avatar,
                _ => CacheClass::Other,
            }
        }
        Platform::Qq => qq::classify(rel),
        Platform::Wecom => {
            let extension = file_name
                .rsplit_once('.')
                .map(|(_, ext)| ext.to_ascii_lowercase())
                .unwrap_or_default();
            match top {
                "users.json" if rest.is_empty() => CacheClass::Database,
                "archive" | "groups" => CacheClass::Database,
                "media" if !rest.is_empty() => match extension.as_str() {
                    "jpg" => CacheClass::Media(MediaKind::Image),
                    "amr" => CacheClass::Media(MediaKind::Voice),
                    "mp4" => CacheClass::Media(MediaKind::Video),
                    _ => CacheClass::Media(MediaKind::File),
                },
                _ => CacheClass::Other,
            }
        }
        Platform::Dingtalk => {
            let lower = file_name.to_ascii_lowercase();
            let is_thumb = lower.contains("thumb");
            match top {
                _ if rest.is_empty() => CacheClass::Other,
                "DBFiles" => CacheClass::Database,
                "ImageFiles" if is_thumb => CacheClass::Media(MediaKind::ImageThumb),
                "ImageFiles" => CacheClass::Media(MediaKind::Image),
                "AudioFiles" => CacheClass::Media(MediaKind::Voice),
                "VideoFiles" if is_thumb || lower.ends_with(".jpg") => {
                    CacheClass::Media(MediaKind::VideoThumb)
                }
                "VideoFiles" => CacheClass::Media(MediaKind::Video),
                "resource_cache" => CacheClass::Media(MediaKind::File),
                "AvatarFiles" | "avatar" | "Avatar" => CacheClass::Avatar,
                _ => CacheClass::Other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_escapes_and_other_files_are_never_deleted() {
        let w = Platform::Wechat;
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
        assert!(never_delete(Platform::Qq, "nt_db/nt_msg.db-wal").is_some());
        assert!(never_delete(Platform::Dingtalk, "DBFiles/dingtalk.db-wal").is_some());
        assert!(never_delete(Platform::Wecom, "archive/a.jsonl").is_some());
        assert_eq!(never_delete(Platform::Wecom, "media/a.jpg"), None);
    }

    /// The layouts here are those the readers use: every file of a simulated source of
    /// each platform gets the same class from both.
    #[test]
    fn layouts_match_the_readers_classify() {
        for platform in Platform::ALL {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join(format!("{}_v2", 123456));
            let mut opts = crate::simulate::SimOptions::new(root.clone());
            opts.groups = 2;
            opts.messages = 300;
            opts.seed = 3;
            match platform {
                Platform::Wechat => crate::simulate::wechat::simulate_wechat(&opts).map(|_| ()),
                Platform::Qq => crate::simulate::qq::simulate_qq(&opts).map(|_| ()),
                Platform::Wecom => crate::simulate::wecom::simulate_wecom(&opts).map(|_| ()),
                Platform::Dingtalk => {
                    crate::simulate::dingtalk::simulate_dingtalk(&opts).map(|_| ())
                }
            }
            .unwrap();
            let source = crate::source::open(&root).unwrap();
            assert_eq!(source.platform(), platform);
            let mut checked = 0;
            for entry in walkdir::WalkDir::new(&root) {
                let entry = entry.unwrap();
                if entry.file_type().is_dir() {
                    continue;
                }
                let Some(rel) = entry
                    .path()
                    .strip_prefix(&root)
                    .ok()
                    .and_then(|p| p.to_str())
                else {
                    continue;
                };
                let ours = cache_class(platform, rel);
                let theirs = source.classify(rel);
                // Top-level files are "other" for the guard even where a reader might
                // call them media; the guard may be stricter, never looser.
                if ours != theirs {
                    assert!(
                        matches!(ours, CacheClass::Other | CacheClass::Database),
                        "{platform:?} {rel}: ours {ours:?}, the reader's {theirs:?}"
                    );
                }
                checked += 1;
            }
            assert!(checked > 10, "{platform:?}: {checked} files");
        }
    }
}
