//! `nt_db/group_info.db`: `group_detail_info_ver1` (groups) and `group_member3` (members).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::message::group_id_of;
use super::INFO_DB;
use crate::records::{Member, Role, Warning};
use crate::source::sqlite::{map_sqlite_error, Database};
use crate::source::SourceError;

pub const DETAIL_TABLE: &str = "group_detail_info_ver1";
pub const MEMBER_TABLE: &str = "group_member3";

/// One row of `group_detail_info_ver1`.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    pub name: String,
    pub owner_uid: Option<String>,
    pub created_s: Option<i64>,
    pub member_count: Option<u64>,
}

/// What `group_info.db` holds, loaded once: bounded by groups and members, not messages.
#[derive(Debug, Default)]
pub struct GroupInfo {
    pub details: BTreeMap<String, Detail>,
    /// Groups that have member rows (a group may lack its detail row).
    pub member_groups: BTreeSet<String>,
    /// uid → nickname, for senders who are not (or no longer) in a member list.
    pub nicknames: HashMap<String, String>,
    /// uid → QQ number and every name (nicknames, group cards of every group), for
    /// anonymization: bounded by members.
    pub names: BTreeMap<String, (Option<String>, BTreeSet<String>)>,
    /// Columns of `group_member3`, or `None` when the table is absent.
    pub member_columns: Option<Vec<String>>,
}

use crate::source::sqlite::{lenient_int as int, lenient_text_lossy as text};

/// `"col"` when the table has it, else `NULL`.
fn column_or_null(columns: &[String], name: &str) -> String {
    if columns.iter().any(|c| c == name) {
        format!("\"{name}\"")
    } else {
        "NULL".into()
    }
}

impl GroupInfo {
    pub fn load(conn: &Connection, warnings: &mut Vec<Warning>) -> Result<GroupInfo, SourceError> {
        let path = Path::new(INFO_DB);
        let tables = Database::tables(conn, path)?;
        let mut info = GroupInfo::default();
        if tables.iter().any(|t| t == DETAIL_TABLE) {
            let columns = Database::columns(conn, path, DETAIL_TABLE)?;
            if columns.iter().any(|c| c == "60001") {
                let sql = format!(
                    "SELECT \"60001\", {}, {}, {}, {} FROM {DETAIL_TABLE}",
                    column_or_null(&columns, "60007"),
                    column_or_null(&columns, "60002"),
                    column_or_null(&columns, "60004"),
                    column_or_null(&columns, "60006"),
                );
                let mut stmt = conn.prepare(&sql).map_err(|e| map_sqlite_error(path, e))?;
                let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(path, e))?;
                while let Some(row) = rows.next().map_err(|e| map_sqlite_error(path, e))? {
                    let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
                    let Some(id) = group_id_of(get(0)) else {
                        continue;
                    };
                    info.details.insert(
                        id,
                        Detail {
                            name: text(get(1)).unwrap_or_default(),
                            owner_uid: text(get(2)).filter(|s| !s.is_empty()),
                            created_s: int(get(3)),
                            member_count: int(get(4)).and_then(|n| u64::try_from(n).ok()),
                        },
                    );
                }
            } else {
                warnings.push(Warning {
                    location: format!("{INFO_DB} {DETAIL_TABLE}"),
                    message: "no group number column `60001`: group names are left out".into(),
                });
            }
        } else {
            warnings.push(Warning {
                location: INFO_DB.into(),
                message: format!("no table `{DETAIL_TABLE}`: group names are left out"),
            });
        }
        if tables.iter().any(|t| t == MEMBER_TABLE) {
            let columns = Database::columns(conn, path, MEMBER_TABLE)?;
            if columns.iter().any(|c| c == "1000") {
                let sql = format!(
                    "SELECT \"1000\", {}, {}, {}, {} FROM {MEMBER_TABLE}",
                    column_or_null(&columns, "20002"),
                    column_or_null(&columns, "60001"),
                    column_or_null(&columns, "1002"),
                    column_or_null(&columns, "64003")
                );
                let mut stmt = conn.prepare(&sql).map_err(|e| map_sqlite_error(path, e))?;
                let mut rows = stmt.query([]).map_err(|e| map_sqlite_error(path, e))?;
                while let Some(row) = rows.next().map_err(|e| map_sqlite_error(path, e))? {
                    let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
                    if let Some(group) = group_id_of(get(2)) {
                        info.member_groups.insert(group);
                    }
                    let uin = text(get(3)).filter(|s| !s.is_empty() && s != "0");
                    let Some(uid) = text(get(0)).filter(|s| !s.is_empty()).or(uin.clone()) else {
                        continue;
                    };
                    let nick = text(get(1)).filter(|s| !s.is_empty());
                    let person = info.names.entry(uid.clone()).or_default();
                    if person.0.is_none() {
                        person.0 = uin;
                    }
                    person.1.extend(nick.iter().cloned());
                    person.1.extend(text(get(4)).filter(|s| !s.is_empty()));
                    if let Some(nick) = nick {
                        info.nicknames.entry(uid).or_insert(nick);
                    }
                }
                info.member_columns = Some(columns);
            } else {
                warnings.push(Warning {
                    location: format!("{INFO_DB} {MEMBER_TABLE}"),
                    message: "no uid column `1000`: member lists are left out".into(),
                });
            }
        } else {
            warnings.push(Warning {
                location: INFO_DB.into(),
                message: format!("no table `{MEMBER_TABLE}`: member lists are left out"),
            });
        }
        Ok(info)
    }

    /// The members of one group, in table order; a uid listed twice is kept once.
    pub fn members(
        &self,
        conn: &Connection,
        group_id: &str,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<Member>, SourceError> {
        let Some(columns) = &self.member_columns else {
            return Ok(Vec::new());
        };
        let path = Path::new(INFO_DB);
        let sql = format!(
            "SELECT \"1000\", {}, {}, {}, {}, {}, {} FROM {MEMBER_TABLE} WHERE {} = ?1",
            column_or_null(columns, "1002"),
            column_or_null(columns, "64003"),
            column_or_null(columns, "20002"),
            column_or_null(columns, "64007"),
            column_or_null(columns, "64010"),
            column_or_null(columns, "64016"),
            column_or_null(columns, "60001"),
        );
        let mut stmt = conn.prepare(&sql).map_err(|e| map_sqlite_error(path, e))?;
        let bound = match group_id.parse::<i64>() {
            Ok(n) => rusqlite::types::Value::Integer(n),
            Err(_) => rusqlite::types::Value::Text(group_id.to_string()),
        };
        let mut rows = stmt.query([bound]).map_err(|e| map_sqlite_error(path, e))?;
        let owner = self
            .details
            .get(group_id)
            .and_then(|d| d.owner_uid.as_deref());
        let mut members: Vec<Member> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut without_uid = 0usize;
        while let Some(row) = rows.next().map_err(|e| map_sqlite_error(path, e))? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let uin = text(get(1)).filter(|s| !s.is_empty() && s != "0");
            // A row without a uid can still be named by its QQ number.
            let Some(member_id) = text(get(0)).filter(|s| !s.is_empty()).or(uin.clone()) else {
                without_uid += 1;
                continue;
            };
            if !seen.insert(member_id.clone()) {
                continue;
            }
            let role = if owner == Some(member_id.as_str()) {
                Role::Owner
            } else if int(get(5)).is_some_and(|flag| flag != 0) {
                Role::Admin
            } else {
                Role::Member
            };
            members.push(Member {
                member_id,
                alias: uin,
                display_name: text(get(3)).unwrap_or_default(),
                group_nickname: text(get(2)).unwrap_or_default(),
                other_names: Vec::new(),
                role,
                joined_ms: int(get(4))
                    .filter(|s| *s > 0)
                    .and_then(|s| s.checked_mul(1000)),
                left: int(get(6)).is_some_and(|flag| flag != 0),
            });
        }
        if without_uid > 0 {
            warnings.push(Warning {
                location: format!("{INFO_DB} {MEMBER_TABLE} group {group_id}"),
                message: format!("{without_uid} member rows have neither uid nor QQ number"),
            });
        }
        Ok(members)
    }
}
