//! DingTalk PC: `DBFiles/dingtalk.db` (decrypted, WAL mode) and its media caches.
//! Layout: `../shared/spec/sources.md` §4.

pub(crate) mod content;
mod conversation;
mod message;
mod more;
pub mod schema;
mod shards;
mod value;

pub mod retention;
pub mod simulate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::platform::{Descriptor, PlatformRef};
use crate::records::{CacheClass, Group, MediaKind, Member, Warning};
use crate::source::sqlite::{self, Database};
use crate::source::stream::{self, MessageStream};
use crate::source::{Source, SourceError, SourceFile};

use conversation::{
    has_column, Conversations, MemberQuery, Profiles, CONVERSATION_TABLE, PROFILE_TABLE,
};
use message::ImageJoin;
use shards::Shards;

/// DingTalk PC, as the registry knows it.
pub static DINGTALK: Descriptor = Descriptor {
    name: "dingtalk",
    aliases: &[],
    expected_layout: "DingTalk DBFiles/dingtalk.db (tables tbmsg_000…)",
    probe,
    open,
    cache_class,
    retention: &retention::RETENTION,
    simulate: simulate::simulate_dingtalk,
    simulate_more: Some(more::simulate_more_dingtalk),
};

/// The database, relative to the account directory.
pub const DATABASE: &str = "DBFiles/dingtalk.db";
const IMAGE_TABLE: &str = "im_image_info";

/// A directory is DingTalk's when it holds `DBFiles/dingtalk.db`; that file must then be
/// SQLite, or detection fails with the reason. Its tables are checked when it is opened, so
/// a database without them fails with the missing table's name.
pub fn probe(root: &Path) -> Result<bool, SourceError> {
    let path = root.join(DATABASE);
    if !path.is_file() {
        return Ok(false);
    }
    if !sqlite::is_sqlite(&path)? {
        return Err(SourceError::NotSqlite { path });
    }
    Ok(true)
}

pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(DingtalkSource::open(root)?))
}

/// The account owner's uid from the directory name `<uid>_v2` (or `_v3`).
pub fn owner_from_root(root: &Path) -> Option<String> {
    let name = match root.file_name() {
        Some(name) => name.to_os_string(),
        // `.` or `..`: the real directory's name.
        None => root.canonicalize().ok()?.file_name()?.to_os_string(),
    };
    let name = name.to_str()?;
    let uid = name
        .strip_suffix("_v2")
        .or_else(|| name.strip_suffix("_v3"))?;
    (!uid.is_empty() && !uid.contains(char::is_whitespace)).then(|| uid.to_string())
}

pub struct DingtalkSource {
    root: PathBuf,
    db: Arc<Database>,
    owner: Option<String>,
    conversations: Conversations,
    profiles: Profiles,
    members: Option<MemberQuery>,
    shards: Shards,
    images: Option<ImageJoin>,
    warnings: Mutex<Vec<Warning>>,
}

impl DingtalkSource {
    pub fn open(root: &Path) -> Result<DingtalkSource, SourceError> {
        let path = root.join(DATABASE);
        let db = Database::open(&path)?;
        let conn = db.connect()?;
        let tables = Database::tables(&conn, &path)?;
        let has = |name: &str| tables.iter().any(|t| t == name);
        if !has(CONVERSATION_TABLE) {
            return Err(SourceError::MissingTable {
                platform: &DINGTALK,
                detail: format!("no table `{CONVERSATION_TABLE}` in {DATABASE}"),
            });
        }
        let mut warnings: Vec<Warning> = db.wal_warning(root).into_iter().collect();
        let conversations = Conversations::load(&conn, &path, &mut warnings)?;
        let profiles = if has(PROFILE_TABLE) {
            Profiles::load(&conn, &path)?
        } else {
            warnings.push(Warning {
                location: DATABASE.into(),
                message: format!("no table `{PROFILE_TABLE}`: senders are named by their uid"),
            });
            Profiles::default()
        };
        let members = MemberQuery::new(&conn, &path, &tables, &mut warnings)?;
        let images = image_join(&conn, &path, has(IMAGE_TABLE), &mut warnings)?;
        let shards = Shards::survey(&conn, &path, &tables, &mut warnings)?;
        let owner = owner_from_root(root);
        if owner.is_none() {
            warnings.push(Warning {
                location: root.display().to_string(),
                message: "the directory name is not `<uid>_v2`: the account owner is unknown, every message counts as received".into(),
            });
        }
        Ok(DingtalkSource {
            root: root.to_path_buf(),
            db: Arc::new(db),
            owner,
            conversations,
            profiles,
            members,
            shards,
            images,
            warnings: Mutex::new(warnings),
        })
    }
}

/// How to find an image's file, or `None` (with a warning) without a usable `im_image_info`.
fn image_join(
    conn: &rusqlite::Connection,
    path: &Path,
    present: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Option<ImageJoin>, SourceError> {
    if !present {
        warnings.push(Warning {
            location: DATABASE.into(),
            message: format!("no table `{IMAGE_TABLE}`: image files are not referenced"),
        });
        return Ok(None);
    }
    let columns = Database::columns(conn, path, IMAGE_TABLE)?;
    if !has_column(&columns, "mid") || !has_column(&columns, "local_path") {
        warnings.push(Warning {
            location: format!("{DATABASE} {IMAGE_TABLE}"),
            message: "no `mid` or `local_path` column: image files are not referenced".into(),
        });
        return Ok(None);
    }
    let on_cid = if has_column(&columns, "cid") {
        " AND i.cid = m.cid"
    } else {
        ""
    };
    Ok(Some(ImageJoin {
        join: format!("LEFT JOIN {IMAGE_TABLE} i ON m.contentType = 2 AND i.mid = m.mid{on_cid}"),
        path: "i.local_path".into(),
        size: if has_column(&columns, "size") {
            "i.size".into()
        } else {
            "NULL".into()
        },
    }))
}

impl Source for DingtalkSource {
    fn platform(&self) -> PlatformRef {
        &DINGTALK
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn owner_id(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        // Conversations with messages but no conversation row are exported too.
        let mut ids: Vec<&String> = self
            .conversations
            .ids()
            .chain(self.shards.by_cid.keys())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids
            .into_iter()
            .map(|cid| self.conversations.group(cid))
            .collect())
    }

    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError> {
        let Some(query) = &self.members else {
            return Ok(Vec::new());
        };
        let conn = self.db.connect()?;
        query.members(
            &conn,
            Path::new(DATABASE),
            group_id,
            self.conversations.owner(group_id),
            &self.profiles,
        )
    }

    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError> {
        let db = Arc::clone(&self.db);
        let query = message::Query {
            cid: group_id.to_string(),
            owner: self.owner.clone(),
            shards: self.shards.of(group_id),
            images: self.images.clone(),
        };
        Ok(stream::spawn("dingtalk-messages", move |emit| {
            if query.shards.is_empty() {
                return Ok(());
            }
            let conn = db.connect()?;
            message::read(&conn, &query, emit)
        }))
    }

    fn source_files(&self) -> Vec<SourceFile> {
        self.db
            .files
            .iter()
            .map(|path| SourceFile::under(&self.root, path))
            .collect()
    }

    fn display_name(&self, member_id: &str) -> Option<String> {
        self.profiles.display_name(member_id).map(str::to_string)
    }

    /// Everyone in `tbuser_profile_v2`: senders who left and one-to-one partners included.
    fn people(&self) -> Vec<Member> {
        self.profiles.people()
    }

    fn warnings(&self) -> Vec<Warning> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// The DingTalk PC cache layout of sources.md §4. Top-level files are outside the cache
/// categories.
pub fn cache_class(rel_path: &str) -> CacheClass {
    let Some((top, _)) = rel_path.split_once('/') else {
        return CacheClass::Other;
    };
    let file_name = rel_path.rsplit('/').next().unwrap_or_default();
    let lower = file_name.to_ascii_lowercase();
    let is_thumb = lower.contains("thumb");
    match top {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_comes_from_the_directory_name() {
        assert_eq!(
            owner_from_root(Path::new("/tmp/x/123456_v2")).as_deref(),
            Some("123456")
        );
        assert_eq!(
            owner_from_root(Path::new("/tmp/x/987_v3/")).as_deref(),
            Some("987")
        );
        assert_eq!(owner_from_root(Path::new("/tmp/x/dingtalk")), None);
        assert_eq!(owner_from_root(Path::new("/tmp/x/_v2")), None);
    }

    #[test]
    fn cache_layout() {
        assert_eq!(cache_class("DBFiles/dingtalk.db-wal"), CacheClass::Database);
        assert_eq!(
            cache_class("ImageFiles/ab/cd.jpg"),
            CacheClass::Media(MediaKind::Image)
        );
        assert_eq!(
            cache_class("ImageFiles/ab/cd_thumb.jpg"),
            CacheClass::Media(MediaKind::ImageThumb)
        );
        assert_eq!(
            cache_class("AudioFiles/x.amr"),
            CacheClass::Media(MediaKind::Voice)
        );
        assert_eq!(
            cache_class("VideoFiles/x.mp4"),
            CacheClass::Media(MediaKind::Video)
        );
        assert_eq!(
            cache_class("resource_cache/ab/报价单.xlsx"),
            CacheClass::Media(MediaKind::File)
        );
        assert_eq!(cache_class("AvatarFiles/1.png"), CacheClass::Avatar);
        assert_eq!(cache_class("logs/a.txt"), CacheClass::Other);
    }
}
