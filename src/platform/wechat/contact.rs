//! `rcontact` (names), `chatroom` (members) and `userinfo` (the account owner).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;

use super::{NameMap, DATABASE};
use crate::records::{Group, Member, Role, Warning};
use crate::source::sqlite::map_sqlite_error;
use crate::source::SourceError;

#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub alias: Option<String>,
    pub remark: String,
    pub nickname: String,
}

impl Contact {
    /// The names not shown: `nickname` behind a remark.
    pub fn other_names(&self) -> Vec<String> {
        if self.remark.is_empty() || self.nickname.is_empty() {
            Vec::new()
        } else {
            vec![self.nickname.clone()]
        }
    }

    /// `conRemark` if non-empty, else `nickname`.
    pub fn display_name(&self) -> &str {
        if self.remark.is_empty() {
            &self.nickname
        } else {
            &self.remark
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Room {
    pub member_ids: Vec<String>,
    pub group_nicknames: Option<Vec<String>>,
    /// `displayname` entries that could not be matched to members.
    pub unmatched_nicknames: Vec<String>,
    pub owner: Option<String>,
}

pub struct Contacts {
    pub names: NameMap,
    pub rooms: HashMap<String, Room>,
}

use crate::source::sqlite::lenient_text_lossy as text;

pub fn owner(
    conn: &Connection,
    has_userinfo: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Option<String>, SourceError> {
    if !has_userinfo {
        return Ok(None);
    }
    let owner = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| {
            Ok(text(r.get_ref(0)?))
        })
        .ok()
        .flatten()
        .filter(|s| !s.is_empty());
    if owner.is_none() {
        warnings.push(Warning {
            location: format!("{DATABASE} userinfo"),
            message: "no owner wxid (id 2): sent messages have no sender id".into(),
        });
    }
    Ok(owner)
}

impl Contacts {
    pub fn load(
        conn: &Connection,
        has_chatroom: bool,
        warnings: &mut Vec<Warning>,
    ) -> Result<Contacts, SourceError> {
        let path = Path::new(DATABASE);
        let mut names = NameMap::new();
        let mut stmt = conn
            .prepare("SELECT username, alias, conRemark, nickname FROM rcontact")
            .map_err(|e| map_sqlite_error(path, e))?;
        let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(path, e))?;
        while let Some(row) = rows.next().map_err(|e| map_sqlite_error(path, e))? {
            let Some(username) = row.get_ref(0).ok().and_then(text) else {
                continue;
            };
            let get = |i| row.get_ref(i).ok().and_then(text);
            names.insert(
                username,
                Contact {
                    alias: get(1).filter(|s| !s.is_empty()),
                    remark: get(2).unwrap_or_default(),
                    nickname: get(3).unwrap_or_default(),
                },
            );
        }
        let mut rooms = HashMap::new();
        if has_chatroom {
            let mut stmt = conn
                .prepare("SELECT chatroomname, memberlist, displayname, roomowner FROM chatroom")
                .map_err(|e| map_sqlite_error(path, e))?;
            let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(path, e))?;
            while let Some(row) = rows.next().map_err(|e| map_sqlite_error(path, e))? {
                let get = |i| row.get_ref(i).ok().and_then(text);
                let Some(id) = get(0) else { continue };
                let member_ids: Vec<String> = get(1)
                    .unwrap_or_default()
                    .split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let nicknames: Option<Vec<String>> = get(2).map(|d| {
                    if d.is_empty() {
                        Vec::new()
                    } else {
                        d.split('、').map(str::to_string).collect()
                    }
                });
                // A nickname containing `、` shifts every later entry: trust none of them.
                let mut unmatched_nicknames = Vec::new();
                let group_nicknames = match nicknames {
                    Some(n) if n.len() == member_ids.len() => Some(n),
                    Some(n) if !n.is_empty() => {
                        warnings.push(Warning {
                            location: format!("{DATABASE} chatroom {id}"),
                            message: format!(
                                "displayname has {} entries for {} members (a nickname contains `、`?): group nicknames ignored",
                                n.len(),
                                member_ids.len()
                            ),
                        });
                        // Both the pieces and the joined runs may be someone's name.
                        unmatched_nicknames = n.iter().filter(|s| !s.is_empty()).cloned().collect();
                        if let Some(raw) = get(2) {
                            unmatched_nicknames.push(raw);
                        }
                        None
                    }
                    _ => None,
                };
                rooms.insert(
                    id,
                    Room {
                        member_ids,
                        group_nicknames,
                        unmatched_nicknames,
                        owner: get(3).filter(|s| !s.is_empty()),
                    },
                );
            }
        }
        Ok(Contacts { names, rooms })
    }

    pub fn group(&self, id: &str, account_owner: Option<&str>) -> Group {
        let is_group = id.ends_with("@chatroom");
        let room = self.rooms.get(id);
        let name = self
            .names
            .get(id)
            .map(|c| c.display_name().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_default();
        Group {
            id: id.to_string(),
            name,
            owner_id: if is_group {
                room.and_then(|r| r.owner.clone())
            } else {
                account_owner.map(str::to_string)
            },
            declared_member_count: room.map(|r| r.member_ids.len() as u64),
            created_ms: None,
            is_group,
        }
    }

    pub fn members(&self, group_id: &str, _warnings: &mut Vec<Warning>) -> Vec<Member> {
        let Some(room) = self.rooms.get(group_id) else {
            return Vec::new();
        };
        room.member_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let contact = self.names.get(id);
                Member {
                    member_id: id.clone(),
                    alias: contact.and_then(|c| c.alias.clone()),
                    display_name: contact
                        .map(|c| c.display_name().to_string())
                        .unwrap_or_default(),
                    group_nickname: room
                        .group_nicknames
                        .as_ref()
                        .and_then(|n| n.get(i).cloned())
                        .unwrap_or_default(),
                    other_names: contact.map(Contact::other_names).unwrap_or_default(),
                    role: if room.owner.as_deref() == Some(id.as_str()) {
                        Role::Owner
                    } else {
                        Role::Member
                    },
                    joined_ms: None,
                    left: false,
                }
            })
            .collect()
    }

    /// Every person in `rcontact` (not the group rows), as members of no particular group.
    pub fn people(&self) -> Vec<Member> {
        let mut people: Vec<Member> = self
            .names
            .iter()
            .filter(|(id, _)| !id.ends_with("@chatroom"))
            .map(|(id, contact)| Member {
                member_id: id.clone(),
                alias: contact.alias.clone(),
                display_name: contact.display_name().to_string(),
                group_nickname: String::new(),
                other_names: contact.other_names(),
                role: Role::Member,
                joined_ms: None,
                left: false,
            })
            .collect();
        people.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        people
    }

    pub fn unattributed_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rooms
            .values()
            .flat_map(|r| r.unmatched_nicknames.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The display name of someone who may not be in any member list.
    pub fn display_name(&self, id: &str) -> Option<&str> {
        self.names
            .get(id)
            .map(Contact::display_name)
            .filter(|n| !n.is_empty())
    }
}
