//! `tbconversation` (conversations), `tbuser_profile_v2` (names) and
//! `tbconversation_member` (group members).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::Connection;

use super::value::{int, quote, text_lossy};
use super::DATABASE;
use crate::records::{Group, Member, Role, Warning};
use crate::source::sqlite::{map_sqlite_error, Database};
use crate::source::SourceError;

pub const CONVERSATION_TABLE: &str = "tbconversation";
pub const PROFILE_TABLE: &str = "tbuser_profile_v2";
pub const MEMBER_TABLE: &str = "tbconversation_member";

const GROUP_TYPE: i64 = 2;

/// `SELECT` expressions for `wanted` columns: the column when the table has it, else NULL,
/// so optional columns may be absent.
pub fn select_list(columns: &[String], wanted: &[&str]) -> String {
    wanted
        .iter()
        .map(
            |w| match columns.iter().find(|c| c.eq_ignore_ascii_case(w)) {
                Some(c) => quote(c),
                None => "NULL".to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a table has a column (SQLite names are case-insensitive).
pub fn has_column(columns: &[String], name: &str) -> bool {
    columns.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// A conversation's own row.
#[derive(Debug, Clone, Default)]
struct Conversation {
    conversation_type: Option<i64>,
    title: String,
    member_count: Option<i64>,
    created_ms: Option<i64>,
    owner: Option<String>,
}

pub struct Conversations {
    by_cid: HashMap<String, Conversation>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl Conversations {
    pub fn load(
        conn: &Connection,
        db_path: &Path,
        warnings: &mut Vec<Warning>,
    ) -> Result<Conversations, SourceError> {
        let columns = Database::columns(conn, db_path, CONVERSATION_TABLE)?;
        if !has_column(&columns, "cid") {
            return Err(SourceError::MissingTable {
                platform: &super::DINGTALK,
                detail: format!("table `{CONVERSATION_TABLE}` in {DATABASE} has no column `cid`"),
            });
        }
        let sql = format!(
            "SELECT {} FROM {CONVERSATION_TABLE}",
            select_list(
                &columns,
                &["cid", "type", "title", "memberCount", "createAt", "ownerId"]
            )
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| map_sqlite_error(db_path, e))?;
        let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(db_path, e))?;
        let mut by_cid = HashMap::new();
        let mut duplicates = 0usize;
        while let Some(row) = rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
            let Some(cid) = text_lossy(row, 0) else {
                continue;
            };
            if by_cid.contains_key(&cid) {
                duplicates += 1;
                continue;
            }
            by_cid.insert(
                cid,
                Conversation {
                    conversation_type: int(row, 1),
                    title: text_lossy(row, 2).unwrap_or_default(),
                    member_count: int(row, 3),
                    created_ms: int(row, 4),
                    owner: non_empty(text_lossy(row, 5)),
                },
            );
        }
        if duplicates > 0 {
            warnings.push(Warning {
                location: format!("{DATABASE} {CONVERSATION_TABLE}"),
                message: format!(
                    "{duplicates} duplicate conversation rows: the first of each is used"
                ),
            });
        }
        Ok(Conversations { by_cid })
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.by_cid.keys()
    }

    pub fn owner(&self, cid: &str) -> Option<&str> {
        self.by_cid.get(cid).and_then(|c| c.owner.as_deref())
    }

    /// The group record; a cid with messages but no conversation row is a group unless it
    /// has the single-chat shape `uid1:uid2`.
    pub fn group(&self, cid: &str) -> Group {
        let conversation = self.by_cid.get(cid);
        let is_group = match conversation.and_then(|c| c.conversation_type) {
            Some(t) => t == GROUP_TYPE,
            None => !cid.contains(':'),
        };
        Group {
            id: cid.to_string(),
            name: conversation.map(|c| c.title.clone()).unwrap_or_default(),
            owner_id: conversation.and_then(|c| c.owner.clone()),
            declared_member_count: conversation
                .and_then(|c| c.member_count)
                .and_then(|n| u64::try_from(n).ok()),
            created_ms: conversation.and_then(|c| c.created_ms),
            is_group,
        }
    }
}

/// Display names from `tbuser_profile_v2`: `nick`, else `realName`.
#[derive(Default)]
pub struct Profiles {
    names: HashMap<String, String>,
    /// `realName` where `nick` is shown instead: a name all the same.
    hidden: HashMap<String, String>,
}

impl Profiles {
    pub fn load(conn: &Connection, db_path: &Path) -> Result<Profiles, SourceError> {
        let columns = Database::columns(conn, db_path, PROFILE_TABLE)?;
        if !has_column(&columns, "uid") {
            return Ok(Profiles::default());
        }
        let sql = format!(
            "SELECT {} FROM {PROFILE_TABLE}",
            select_list(&columns, &["uid", "nick", "realName"])
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| map_sqlite_error(db_path, e))?;
        let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(db_path, e))?;
        let mut names = HashMap::new();
        let mut hidden = HashMap::new();
        while let Some(row) = rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
            let Some(uid) = text_lossy(row, 0) else {
                continue;
            };
            let nick = non_empty(text_lossy(row, 1));
            let real_name = non_empty(text_lossy(row, 2));
            if names.contains_key(&uid) {
                continue;
            }
            match (nick, real_name) {
                (Some(nick), Some(real_name)) => {
                    if real_name != nick {
                        hidden.insert(uid.clone(), real_name);
                    }
                    names.insert(uid, nick);
                }
                (nick, real_name) => {
                    names.insert(uid, nick.or(real_name).unwrap_or_default());
                }
            }
        }
        Ok(Profiles { names, hidden })
    }

    /// The names not shown for `uid` (its `realName` behind a `nick`).
    pub fn other_names(&self, uid: &str) -> Vec<String> {
        self.hidden.get(uid).cloned().into_iter().collect()
    }

    /// Everyone with a profile, sorted by uid, as members of no particular group.
    pub fn people(&self) -> Vec<Member> {
        let mut people: Vec<Member> = self
            .names
            .iter()
            .map(|(uid, name)| Member {
                member_id: uid.clone(),
                alias: None,
                display_name: name.clone(),
                group_nickname: String::new(),
                other_names: self.other_names(uid),
                role: Role::Member,
                joined_ms: None,
                left: false,
            })
            .collect();
        people.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        people
    }

    pub fn display_name(&self, uid: &str) -> Option<&str> {
        self.names
            .get(uid)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }
}

/// How to read `tbconversation_member`, decided at open.
#[derive(Debug, Clone)]
pub struct MemberQuery {
    sql: String,
}

impl MemberQuery {
    /// `None` (with a warning) when the table is absent or unusable.
    pub fn new(
        conn: &Connection,
        db_path: &Path,
        tables: &[String],
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<MemberQuery>, SourceError> {
        if !tables.iter().any(|t| t == MEMBER_TABLE) {
            warnings.push(Warning {
                location: DATABASE.into(),
                message: format!("no table `{MEMBER_TABLE}`: member lists are empty"),
            });
            return Ok(None);
        }
        let columns = Database::columns(conn, db_path, MEMBER_TABLE)?;
        if !has_column(&columns, "cid") || !has_column(&columns, "uid") {
            warnings.push(Warning {
                location: format!("{DATABASE} {MEMBER_TABLE}"),
                message: "no `cid` or `uid` column: member lists are empty".into(),
            });
            return Ok(None);
        }
        Ok(Some(MemberQuery {
            sql: format!(
                "SELECT {} FROM {MEMBER_TABLE} WHERE cid = ?1",
                select_list(&columns, &["uid", "role", "joinAt"])
            ),
        }))
    }

    pub fn members(
        &self,
        conn: &Connection,
        db_path: &Path,
        cid: &str,
        group_owner: Option<&str>,
        profiles: &Profiles,
    ) -> Result<Vec<Member>, SourceError> {
        let mut stmt = conn
            .prepare(&self.sql)
            .map_err(|e| map_sqlite_error(db_path, e))?;
        let mut rows = stmt
            .query([cid])
            .map_err(|e| map_sqlite_error(db_path, e))?;
        let mut seen = HashSet::new();
        let mut members = Vec::new();
        while let Some(row) = rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
            let Some(uid) = non_empty(text_lossy(row, 0)) else {
                continue;
            };
            if !seen.insert(uid.clone()) {
                continue;
            }
            let role = match int(row, 1) {
                Some(1) => Role::Owner,
                Some(2) => Role::Admin,
                _ if group_owner == Some(uid.as_str()) => Role::Owner,
                _ => Role::Member,
            };
            members.push(Member {
                display_name: profiles.display_name(&uid).unwrap_or_default().to_string(),
                other_names: profiles.other_names(&uid),
                member_id: uid,
                alias: None,
                group_nickname: String::new(),
                role,
                joined_ms: int(row, 2),
                left: false,
            });
        }
        Ok(members)
    }
}
