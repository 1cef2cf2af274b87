//! csvchat: a minimal chat format, to show what a platform is in chatvault. An account
//! directory holds
//!
//! - `messages.csv`: `group_id,message_id,time_ms,sender_id,kind,text,media` (one row per
//!   message, in time order; `sender_id` empty for system messages; `media` a path under
//!   the root or empty);
//! - `members.json`: `{"owner": ID, "groups": [{"id", "name", "members": [{"id", "name"}]}]}`;
//! - `media/`: the files messages name.
//!
//! Everything chatvault needs from a platform is here: the [`Platform`] descriptor (name,
//! detection, opening, cache layout, retention facts, simulator) and the [`Source`] reader.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chatvault::platform::Platform;
use chatvault::records::{
    CacheClass, Direction, Group, Kind, MediaKind, MediaLocation, MediaRef, Member, Message, Role,
    Warning,
};
use chatvault::retention::policy::{rule, Clock, FileClock, PlatformRetention, RuleKind, RuleSpec};
use chatvault::retention::Period;
use chatvault::simulate::{SimError, SimOptions, SimReport};
use chatvault::source::{MessageStream, Source, SourceError, SourceFile};

pub const MESSAGES: &str = "messages.csv";
pub const MEMBERS: &str = "members.json";
pub const MEDIA_DIR: &str = "media";

pub struct Csvchat;

pub static CSVCHAT: Csvchat = Csvchat;

/// csvchat's own retention row: cached media go three days after dissolution. Its place
/// (1000) puts it after the rows of `spec/retention.md`.
static RULES: &[RuleSpec] = &[rule(
    1000,
    "csvchat.media",
    RuleKind::Platform,
    "csvchat",
    "csvchat's media cache is cleared 3 days after a group is dissolved",
    "csvchat media",
    Some(Period::days(3)),
    "",
    Clock::Dissolution,
    "csvchat format notes",
    "media/ is a cache",
)];

static RETENTION: PlatformRetention = PlatformRetention {
    rules: RULES,
    file_clocks: &[FileClock {
        rule: "csvchat.media",
        only: None,
    }],
    recycle_bin_rule: None,
};

impl Platform for Csvchat {
    fn name(&self) -> &'static str {
        "csvchat"
    }

    fn expected_layout(&self) -> &'static str {
        "csvchat messages.csv beside members.json"
    }

    fn probe(&self, root: &Path) -> Result<bool, SourceError> {
        Ok(root.join(MESSAGES).is_file() && root.join(MEMBERS).is_file())
    }

    fn open(&self, root: &Path) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(CsvchatSource::open(root)?))
    }

    fn cache_class(&self, rel_path: &str) -> CacheClass {
        match rel_path.split_once('/') {
            None if rel_path == MESSAGES || rel_path == MEMBERS => CacheClass::Database,
            Some((MEDIA_DIR, name)) if name.ends_with(".jpg") => {
                CacheClass::Media(MediaKind::Image)
            }
            Some((MEDIA_DIR, _)) => CacheClass::Media(MediaKind::File),
            _ => CacheClass::Other,
        }
    }

    fn retention(&self) -> &'static PlatformRetention {
        &RETENTION
    }

    fn simulate(&self, opts: &SimOptions) -> Result<SimReport, SimError> {
        simulate(opts)
    }
}

#[derive(serde::Deserialize)]
struct Directory {
    owner: Option<String>,
    groups: Vec<DirectoryGroup>,
}

#[derive(serde::Deserialize)]
struct DirectoryGroup {
    id: String,
    name: String,
    members: Vec<DirectoryMember>,
}

#[derive(serde::Deserialize)]
struct DirectoryMember {
    id: String,
    name: String,
}

pub struct CsvchatSource {
    root: PathBuf,
    directory: Directory,
}

impl CsvchatSource {
    fn open(root: &Path) -> Result<CsvchatSource, SourceError> {
        let path = root.join(MEMBERS);
        let text = fs::read_to_string(&path).map_err(|e| SourceError::io(&path, e))?;
        let directory = serde_json::from_str(&text).map_err(|e| SourceError::Corrupt {
            path: path.clone(),
            detail: format!("not a csvchat member list: {e}"),
        })?;
        Ok(CsvchatSource {
            root: root.to_path_buf(),
            directory,
        })
    }
}

fn kind_of(text: &str) -> Kind {
    match text {
        "text" => Kind::Text,
        "image" => Kind::Image,
        "file" => Kind::File,
        "system" => Kind::System,
        _ => Kind::Other,
    }
}

impl Source for CsvchatSource {
    fn platform(&self) -> chatvault::platform::PlatformRef {
        &CSVCHAT
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn owner_id(&self) -> Option<&str> {
        self.directory.owner.as_deref()
    }

    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        let mut groups: Vec<Group> = self
            .directory
            .groups
            .iter()
            .map(|g| Group {
                id: g.id.clone(),
                name: g.name.clone(),
                owner_id: self.directory.owner.clone(),
                declared_member_count: Some(g.members.len() as u64),
                created_ms: None,
                is_group: true,
            })
            .collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(groups)
    }

    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError> {
        let group = self
            .directory
            .groups
            .iter()
            .find(|g| g.id == group_id)
            .ok_or_else(|| SourceError::NoSuchGroup(group_id.to_string()))?;
        Ok(group
            .members
            .iter()
            .map(|m| Member {
                member_id: m.id.clone(),
                alias: None,
                display_name: m.name.clone(),
                group_nickname: String::new(),
                other_names: Vec::new(),
                role: if self.directory.owner.as_deref() == Some(m.id.as_str()) {
                    Role::Owner
                } else {
                    Role::Member
                },
                joined_ms: None,
                left: false,
            })
            .collect())
    }

    /// Streams the rows of one group straight from the CSV file: memory stays flat.
    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError> {
        let path = self.root.join(MESSAGES);
        let reader = csv::Reader::from_path(&path).map_err(|e| SourceError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let wanted = group_id.to_string();
        let owner = self.directory.owner.clone();
        let rows = reader.into_records().filter_map(move |row| {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    return Some(Err(SourceError::Corrupt {
                        path: path.clone(),
                        detail: e.to_string(),
                    }))
                }
            };
            let field = |i: usize| row.get(i).unwrap_or_default().to_string();
            if field(0) != wanted {
                return None;
            }
            let sender = Some(field(3)).filter(|s| !s.is_empty());
            let kind = kind_of(&field(4));
            let direction = match &sender {
                None => Direction::System,
                Some(s) if Some(s) == owner.as_ref() => Direction::Sent,
                Some(_) => Direction::Received,
            };
            let media = Some(field(6))
                .filter(|m| !m.is_empty())
                .map(|m| MediaRef {
                    kind: if kind == Kind::Image {
                        MediaKind::Image
                    } else {
                        MediaKind::File
                    },
                    original_name: None,
                    declared_size: None,
                    location: MediaLocation::Path(m),
                })
                .into_iter()
                .collect();
            Some(Ok(Message {
                group_id: field(0),
                message_id: field(1),
                time_ms: field(2).parse().ok(),
                sender_id: sender,
                sender_name: None,
                direction,
                kind,
                text: field(5),
                raw_type: field(4),
                media,
                quote: None,
                red_packet: None,
                claim: None,
                warning: None,
            }))
        });
        Ok(Box::new(rows))
    }

    fn source_files(&self) -> Vec<SourceFile> {
        [MESSAGES, MEMBERS]
            .iter()
            .map(|name| SourceFile::under(&self.root, &self.root.join(name)))
            .collect()
    }

    fn warnings(&self) -> Vec<Warning> {
        Vec::new()
    }
}

/// Writes a small csvchat account: `opts.groups` groups of three members, `opts.messages`
/// messages among them, every third one an image in `media/`.
fn simulate(opts: &SimOptions) -> Result<SimReport, SimError> {
    let started = Instant::now();
    let root = &opts.out;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SimError::Io { path, source }
    };
    fs::create_dir_all(root.join(MEDIA_DIR)).map_err(io(root))?;
    let names = ["张伟", "李娜", "王芳"];
    let mut groups = Vec::new();
    for g in 0..opts.groups {
        let members: Vec<serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, name)| serde_json::json!({"id": format!("u{i}"), "name": name}))
            .collect();
        groups.push(serde_json::json!({"id": format!("g{g}"), "name": format!("读书会{g}"), "members": members}));
    }
    let directory = serde_json::json!({"owner": "u0", "groups": groups});
    let members_path = root.join(MEMBERS);
    fs::write(&members_path, directory.to_string()).map_err(io(&members_path))?;

    let messages_path = root.join(MESSAGES);
    let mut writer = csv::Writer::from_path(&messages_path)
        .map_err(|e| SimError::InvalidOption(e.to_string()))?;
    let csv_error = |e: csv::Error| SimError::InvalidOption(e.to_string());
    writer
        .write_record([
            "group_id",
            "message_id",
            "time_ms",
            "sender_id",
            "kind",
            "text",
            "media",
        ])
        .map_err(csv_error)?;
    let start_ms = opts.now_ms - i64::from(opts.days) * 86_400_000;
    let mut media_files = 0;
    for n in 0..opts.messages {
        let group = format!("g{}", n % opts.groups.max(1));
        let sender = n % names.len();
        let time = (start_ms + n as i64 * 60_000).to_string();
        let (kind, text, media) = if n % 3 == 2 {
            let rel = format!("{MEDIA_DIR}/{n}.jpg");
            let path = root.join(&rel);
            fs::write(&path, format!("image {n}")).map_err(io(&path))?;
            media_files += 1;
            ("image", String::new(), rel)
        } else {
            let next = names[(sender + 1) % names.len()];
            (
                "text",
                format!("@{next} 第{n}条,{}", names[sender]),
                String::new(),
            )
        };
        writer
            .write_record([
                &group,
                &format!("m{n}"),
                &time,
                &format!("u{sender}"),
                kind,
                &text,
                &media,
            ])
            .map_err(csv_error)?;
    }
    writer.flush().map_err(io(&messages_path))?;
    Ok(SimReport {
        root: root.clone(),
        platform: "csvchat",
        groups: opts.groups,
        private_chats: 0,
        members: names.len(),
        messages: opts.messages,
        hard_rows: 0,
        media_files,
        elapsed: started.elapsed(),
    })
}
