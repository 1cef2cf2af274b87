//! `users.json` (names) and `groups/<roomid>.json` (group names, creators, members).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::archive::{regular_files, WarningLog};
use super::{GROUPS_DIR, USERS_FILE};
use crate::records::{Group, Member, Role};
use crate::source::{SourceError, SourceFile};

#[derive(Debug, Clone, Default)]
pub struct Room {
    pub name: String,
    pub creator: Option<String>,
    pub created_ms: Option<i64>,
    /// Member id and join time (ms), in file order.
    pub members: Vec<(String, Option<i64>)>,
}

#[derive(Debug, Default)]
pub struct Directory {
    /// User id → name. `kind` (internal/external) is not kept: nothing in the export uses it.
    pub users: HashMap<String, String>,
    pub rooms: BTreeMap<String, Room>,
}

impl Directory {
    /// Reads `users.json` and every `groups/*.json`; a missing or malformed file is a
    /// warning, never fatal (the messages alone still make an export).
    pub fn load(
        root: &Path,
        files: &mut Vec<SourceFile>,
        warnings: &mut WarningLog,
    ) -> Result<Directory, SourceError> {
        let mut directory = Directory::default();
        let users_path = root.join(USERS_FILE);
        match std::fs::symlink_metadata(&users_path) {
            Ok(meta) if meta.is_file() => {
                files.push(SourceFile {
                    rel_path: USERS_FILE.into(),
                    path: users_path.clone(),
                });
                let bytes =
                    std::fs::read(&users_path).map_err(|e| SourceError::io(&users_path, e))?;
                directory.load_users(&bytes, warnings);
            }
            Ok(_) => warnings.push(
                USERS_FILE,
                "not a regular file (a link?): not read; senders are named by id".into(),
            ),
            Err(_) => warnings.push(USERS_FILE, "missing: senders are named by id".into()),
        }
        let groups_dir = root.join(GROUPS_DIR);
        if !groups_dir.is_dir() {
            warnings.push(
                GROUPS_DIR,
                "missing: groups have no names or member lists".into(),
            );
            return Ok(directory);
        }
        for file in regular_files(root, GROUPS_DIR, "json", warnings)? {
            let bytes = std::fs::read(&file.path).map_err(|e| SourceError::io(&file.path, e))?;
            let stem = file
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            directory.load_room(&file.rel_path, &stem, &bytes, warnings);
            files.push(file);
        }
        Ok(directory)
    }

    fn load_users(&mut self, bytes: &[u8], warnings: &mut WarningLog) {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(
                    USERS_FILE,
                    format!("not JSON ({e}): senders are named by id"),
                );
                return;
            }
        };
        let Some(entries) = value.as_array() else {
            warnings.push(USERS_FILE, "not a JSON array of users".into());
            return;
        };
        for (index, entry) in entries.iter().enumerate() {
            let userid = entry.get("userid").and_then(Value::as_str);
            let Some(userid) = userid.filter(|u| !u.is_empty()) else {
                warnings.push(
                    &format!("{USERS_FILE}[{index}]"),
                    "no `userid` string: entry skipped".into(),
                );
                continue;
            };
            let name = match entry.get("name") {
                Some(Value::String(name)) => name.clone(),
                None | Some(Value::Null) => String::new(),
                Some(_) => {
                    warnings.push(
                        &format!("{USERS_FILE}[{index}]"),
                        "`name` is not a string: ignored".into(),
                    );
                    String::new()
                }
            };
            self.users.entry(userid.to_string()).or_insert(name);
        }
    }

    fn load_room(&mut self, rel_path: &str, stem: &str, bytes: &[u8], warnings: &mut WarningLog) {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(
                    rel_path,
                    format!("not JSON ({e}): group `{stem}` has no name or members"),
                );
                self.rooms.entry(stem.to_string()).or_default();
                return;
            }
        };
        let Some(object) = value.as_object() else {
            warnings.push(rel_path, "not a JSON object: ignored".into());
            self.rooms.entry(stem.to_string()).or_default();
            return;
        };
        let string = |key: &str| object.get(key).and_then(Value::as_str);
        let id = match string("roomid").filter(|r| !r.is_empty()) {
            Some(id) => {
                if id != stem {
                    warnings.push(
                        rel_path,
                        format!("roomid `{id}` differs from the file name: the roomid is used"),
                    );
                }
                id.to_string()
            }
            None => stem.to_string(),
        };
        let mut room = Room {
            name: string("roomname").unwrap_or_default().to_string(),
            creator: string("creator")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            created_ms: object
                .get("room_create_time")
                .and_then(Value::as_i64)
                .and_then(|s| s.checked_mul(1000)),
            members: Vec::new(),
        };
        match object.get("members") {
            Some(Value::Array(members)) => {
                for (index, member) in members.iter().enumerate() {
                    let Some(member_id) = member
                        .get("memberid")
                        .and_then(Value::as_str)
                        .filter(|m| !m.is_empty())
                    else {
                        warnings.push(
                            &format!("{rel_path} members[{index}]"),
                            "no `memberid` string: entry skipped".into(),
                        );
                        continue;
                    };
                    let joined_ms = member
                        .get("jointime")
                        .and_then(Value::as_i64)
                        .and_then(|s| s.checked_mul(1000));
                    if room.members.iter().any(|(m, _)| m == member_id) {
                        continue;
                    }
                    room.members.push((member_id.to_string(), joined_ms));
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => warnings.push(rel_path, "`members` is not an array: ignored".into()),
        }
        if self.rooms.contains_key(&id) {
            warnings.push(
                rel_path,
                format!("a second file for group `{id}`: the first one read is kept"),
            );
            return;
        }
        self.rooms.insert(id, room);
    }

    pub fn display_name(&self, user_id: &str) -> Option<&str> {
        self.users
            .get(user_id)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    pub fn group(&self, id: &str) -> Group {
        let room = self.rooms.get(id);
        Group {
            id: id.to_string(),
            name: room.map(|r| r.name.clone()).unwrap_or_default(),
            owner_id: room.and_then(|r| r.creator.clone()),
            declared_member_count: room.map(|r| r.members.len() as u64),
            created_ms: room.and_then(|r| r.created_ms),
            is_group: true,
        }
    }

    /// Every user of `users.json`, sorted by id, as members of no particular group.
    pub fn people(&self) -> Vec<Member> {
        let mut people: Vec<Member> = self
            .users
            .iter()
            .map(|(id, name)| Member {
                member_id: id.clone(),
                alias: None,
                display_name: name.clone(),
                group_nickname: String::new(),
                other_names: Vec::new(),
                role: Role::Member,
                joined_ms: None,
                left: false,
            })
            .collect();
        people.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        people
    }

    pub fn members(&self, group_id: &str) -> Vec<Member> {
        let Some(room) = self.rooms.get(group_id) else {
            return Vec::new();
        };
        room.members
            .iter()
            .map(|(id, joined_ms)| Member {
                member_id: id.clone(),
                alias: None,
                display_name: self.display_name(id).unwrap_or_default().to_string(),
                group_nickname: String::new(),
                other_names: Vec::new(),
                role: if room.creator.as_deref() == Some(id.as_str()) {
                    Role::Owner
                } else {
                    Role::Member
                },
                joined_ms: *joined_ms,
                left: false,
            })
            .collect()
    }
}
