//! `chatvault check` and `announce find` on what every simulator plants (young red packets,
//! claimed and not; a transferred ownership; groups of 39, 40 and 41 members;
//! announcements 25 h and 23 h before the planned dissolution, word for word on one platform
//! and one character off on another; group files never downloaded): each rule's status and
//! evidence against the ground truth, read from the simulated files by this test's own SQL
//! and JSON, with the time boundaries to the second.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use regex::Regex;
use serde_json::Value;

const SECOND_MS: i64 = 1000;
const HOUR_MS: i64 = 3600 * SECOND_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const PLATFORMS: [&str; 4] = ["wechat", "qq", "wecom", "dingtalk"];
/// DingTalk takes the account holder's uid from the directory name `<uid>_v2`.
const DINGTALK_HOLDER: &str = "1001";

// ------------------------------------------------------------------ ground truth

/// A red packet as its message says.
#[derive(Debug, Clone)]
struct Packet {
    parts: Option<u64>,
    /// The id WeChat claims name it by.
    pay_id: Option<String>,
}

/// A message as this test reads it.
#[derive(Debug, Clone)]
struct Msg {
    id: String,
    time_ms: i64,
    /// A system row (no sender).
    system: bool,
    sender: Option<String>,
    text: String,
    packet: Option<Packet>,
    /// A WeChat claim's `paymsgid`.
    claim_of: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Member {
    /// Names a `<claimer>领取了<sender>的红包` tip may use.
    names: Vec<String>,
    left: bool,
}

#[derive(Debug, Default)]
struct GroupTruth {
    owner: Option<String>,
    /// The owner and admins.
    leaders: BTreeSet<String>,
    members: BTreeMap<String, Member>,
    /// In the order the source sorts them: time, then the source's own order.
    messages: Vec<Msg>,
    /// Group files whose local file is not there.
    missing_files: BTreeSet<String>,
}

#[derive(Debug)]
struct Truth {
    platform: &'static str,
    root: PathBuf,
    holder: Option<String>,
    groups: BTreeMap<String, GroupTruth>,
}

impl Truth {
    fn read(platform: &'static str, root: &Path) -> Truth {
        let (holder, groups) = match platform {
            "wechat" => wechat_truth(root),
            "qq" => qq_truth(root),
            "wecom" => wecom_truth(root),
            "dingtalk" => dingtalk_truth(root),
            other => panic!("no truth for {other}"),
        };
        Truth {
            platform,
            root: root.to_path_buf(),
            holder,
            groups,
        }
    }

    fn group(&self, id: &str) -> &GroupTruth {
        self.groups
            .get(id)
            .unwrap_or_else(|| panic!("{}: no group {id}", self.platform))
    }

    /// Whether the source records claims (WeCom's archive does not).
    fn claims_recorded(&self) -> bool {
        self.platform != "wecom"
    }
}

/// `rel` under `root` when it is a path inside it (no `..`, not absolute).
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = rel.trim_start_matches("./");
    (!rel.is_empty() && !rel.starts_with('/') && !rel.split('/').any(|c| c == ".."))
        .then(|| root.join(rel))
}

fn absent(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err()
}

fn int(value: rusqlite::types::ValueRef) -> Option<i64> {
    match value {
        rusqlite::types::ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

fn string(value: rusqlite::types::ValueRef) -> Option<String> {
    match value {
        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
            Some(String::from_utf8_lossy(t).into_owned())
        }
        rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn wechat_truth(root: &Path) -> (Option<String>, BTreeMap<String, GroupTruth>) {
    let (_dir, conn) = ground_truth_db(root, "EnMicroMsg.db");
    let holder: String = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    let mut groups: BTreeMap<String, GroupTruth> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT chatroomname, memberlist, roomowner FROM chatroom")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let id: String = row.get(0).unwrap();
        let list: String = row.get::<_, Option<String>>(1).unwrap().unwrap_or_default();
        let owner: Option<String> = row.get(2).unwrap();
        let group = groups.entry(id).or_default();
        for member in list.split(';').filter(|m| !m.is_empty()) {
            group.members.insert(member.to_string(), Member::default());
        }
        group.leaders.extend(owner.clone());
        group.owner = owner;
    }
    drop(rows);
    let paymsgid = Regex::new(r"<paymsgid>\s*(?:<!\[CDATA\[)?\s*([^<\]\s]+)").unwrap();
    let totalnum = Regex::new(r"<totalnum>\s*([0-9]+)\s*</totalnum>").unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT msgId, msgSvrId, createTime, talker, type, isSend, content FROM message \
             WHERE talker LIKE '%@chatroom' ORDER BY createTime, msgId",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut local_ids: BTreeMap<i64, (String, String)> = BTreeMap::new();
    while let Some(row) = rows.next().unwrap() {
        let local: i64 = row.get(0).unwrap();
        let id = match int(row.get_ref(1).unwrap()) {
            Some(svr) if svr != 0 => svr.to_string(),
            _ => local.to_string(),
        };
        let talker: String = row.get(3).unwrap();
        local_ids.insert(local, (talker.clone(), id.clone()));
        let Some(time_ms) = int(row.get_ref(2).unwrap()) else {
            continue;
        };
        let msg_type = int(row.get_ref(4).unwrap()).unwrap_or(-1);
        let sent = int(row.get_ref(5).unwrap()) == Some(1);
        let content = string(row.get_ref(6).unwrap()).unwrap_or_default();
        let (sender, payload) = if msg_type == 10000 {
            (None, content.clone())
        } else if sent {
            (Some(holder.clone()), content.clone())
        } else {
            match content.split_once(':') {
                Some((wxid, rest)) => (
                    Some(wxid.to_string()),
                    rest.split_once('\n').map_or(rest, |(_, p)| p).to_string(),
                ),
                None => (None, content.clone()),
            }
        };
        let is_packet =
            msg_type == 436_207_665 || (msg_type == 49 && payload.contains("<type>2001</type>"));
        let packet = (is_packet && payload.contains("<wcpayinfo>")).then(|| Packet {
            parts: totalnum
                .captures(&payload)
                .and_then(|c| c[1].parse().ok())
                .filter(|&n| n > 0),
            pay_id: paymsgid.captures(&payload).map(|c| c[1].to_string()),
        });
        let claim_of = (msg_type == 10000 && payload.contains("type=\"paymsg\""))
            .then(|| paymsgid.captures(&payload).map(|c| c[1].to_string()))
            .flatten();
        let text = if msg_type == 1 {
            payload
        } else {
            String::new()
        };
        if let Some(group) = groups.get_mut(&talker) {
            group.messages.push(Msg {
                id,
                time_ms,
                system: msg_type == 10000,
                sender,
                text,
                packet,
                claim_of,
            });
        }
    }
    drop(rows);
    // Group files: `appattach` rows whose device path, after `MicroMsg/`, names no file here.
    let mut stmt = conn
        .prepare("SELECT msgInfoId, fileFullPath FROM appattach WHERE type = 6")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let local: i64 = row.get(0).unwrap();
        let path: String = row.get::<_, Option<String>>(1).unwrap().unwrap_or_default();
        let Some((_, rel)) = path.split_once("MicroMsg/") else {
            continue;
        };
        if let (Some(file), Some((talker, id))) = (inside(root, rel), local_ids.get(&local)) {
            if absent(&file) {
                if let Some(group) = groups.get_mut(talker) {
                    group.missing_files.insert(id.clone());
                }
            }
        }
    }
    (Some(holder), groups)
}

/// A protobuf field's value, of the wire types QQ's bodies use for what matters here.
#[derive(Clone, Copy)]
enum Pb<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Pb<'a> {
    fn varint(self) -> Option<u64> {
        match self {
            Pb::Varint(v) => Some(v),
            Pb::Bytes(_) => None,
        }
    }

    fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Pb::Bytes(b) => Some(b),
            Pb::Varint(_) => None,
        }
    }
}

/// The top-level fields of a protobuf message, groups and fixed-size values skipped;
/// `None` if malformed.
fn protobuf(bytes: &[u8]) -> Option<Vec<(u64, Pb<'_>)>> {
    fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut fields = Vec::new();
    let mut at = 0;
    let mut depth = 0usize;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(bytes, &mut at)?;
                if depth == 0 {
                    fields.push((number, Pb::Varint(v)));
                }
            }
            1 => at += 8,
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                let end = at.checked_add(len)?;
                let value = bytes.get(at..end)?;
                if depth == 0 {
                    fields.push((number, Pb::Bytes(value)));
                }
                at = end;
            }
            3 => depth += 1,
            4 => depth = depth.checked_sub(1)?,
            5 => at += 4,
            _ => return None,
        }
    }
    (at == bytes.len() && depth == 0).then_some(fields)
}

/// One QQ message body element's fields that matter here.
#[derive(Default)]
struct QqElement {
    element_type: Option<u64>,
    text: Option<String>,
    face: Option<String>,
    path: Option<String>,
    parts: Option<u64>,
}

fn qq_elements(body: &[u8]) -> Option<Vec<QqElement>> {
    let mut elements = Vec::new();
    for (number, value) in protobuf(body)? {
        if number != 40800 && number != 48000 {
            continue;
        }
        let mut element = QqElement::default();
        for (field, value) in protobuf(value.bytes()?)? {
            let text = || {
                value
                    .bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            match field {
                45002 => element.element_type = value.varint(),
                45101 => element.text = text(),
                47602 => element.face = text(),
                45403 => element.path = text(),
                48444 => element.parts = value.varint(),
                _ => {}
            }
        }
        elements.push(element);
    }
    Some(elements)
}

fn qq_truth(root: &Path) -> (Option<String>, BTreeMap<String, GroupTruth>) {
    let (_info_dir, info) = ground_truth_db(root, "nt_db/group_info.db");
    let mut groups: BTreeMap<String, GroupTruth> = BTreeMap::new();
    let mut stmt = info
        .prepare(r#"SELECT "60001", "1000", "64003", "20002", "64010", "64016" FROM group_member3"#)
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let group = string(row.get_ref(0).unwrap()).unwrap();
        let uid = string(row.get_ref(1).unwrap()).unwrap();
        let names: Vec<String> = [2, 3]
            .into_iter()
            .filter_map(|i| string(row.get_ref(i).unwrap()))
            .filter(|n| !n.is_empty())
            .collect();
        let group = groups.entry(group).or_default();
        if int(row.get_ref(4).unwrap()).is_some_and(|a| a != 0) {
            group.leaders.insert(uid.clone());
        }
        let left = int(row.get_ref(5).unwrap()).is_some_and(|l| l != 0);
        group.members.insert(uid, Member { names, left });
    }
    drop(rows);
    let mut stmt = info
        .prepare(r#"SELECT "60001", "60002" FROM group_detail_info_ver1"#)
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let group = groups
            .entry(string(row.get_ref(0).unwrap()).unwrap())
            .or_default();
        group.owner = string(row.get_ref(1).unwrap()).filter(|o| !o.is_empty());
        group.leaders.extend(group.owner.clone());
    }
    drop(rows);

    let (_msg_dir, conn) = ground_truth_db(root, "nt_db/nt_msg.db");
    let holder: Option<String> = conn
        .query_row(
            r#"SELECT "40020" FROM group_msg_table WHERE "40013" IN (1, 2) AND "40020" != '' LIMIT 1"#,
            [],
            |r| r.get(0),
        )
        .ok();
    let mut stmt = conn
        .prepare(
            r#"SELECT "40001", "40050", "40011", "40020", "40027", "40800" FROM group_msg_table
               ORDER BY "40050", "40003", "40001""#,
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let id = string(row.get_ref(0).unwrap()).unwrap();
        let Some(seconds) = int(row.get_ref(1).unwrap()) else {
            continue;
        };
        let Some(time_ms) = seconds.checked_mul(1000) else {
            continue;
        };
        let msg_type = int(row.get_ref(2).unwrap());
        let Some(group) = string(row.get_ref(4).unwrap()).and_then(|g| groups.get_mut(&g)) else {
            continue;
        };
        let body = match row.get_ref(5).unwrap() {
            rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
            _ => Vec::new(),
        };
        let elements = qq_elements(&body).unwrap_or_default();
        let system = msg_type == Some(5);
        let text: String = if system {
            elements
                .iter()
                .filter(|e| e.element_type == Some(8))
                .filter_map(|e| e.text.clone())
                .collect()
        } else {
            elements
                .iter()
                .filter_map(|e| match e.element_type {
                    Some(1) => e.text.clone(),
                    Some(6) => e.face.clone().or(e.text.clone()),
                    _ => None,
                })
                .collect()
        };
        let packet = (msg_type == Some(10))
            .then(|| elements.iter().find(|e| e.element_type == Some(9)))
            .flatten()
            .map(|e| Packet {
                parts: e.parts.filter(|&n| n > 0),
                pay_id: None,
            });
        if msg_type == Some(3) {
            let path = elements
                .iter()
                .find(|e| e.element_type == Some(3))
                .and_then(|e| e.path.clone())
                .unwrap_or_default();
            if let Some(file) = path
                .find("nt_data/")
                .and_then(|at| inside(root, &path[at..]))
            {
                if absent(&file) {
                    group.missing_files.insert(id.clone());
                }
            }
        }
        group.messages.push(Msg {
            id,
            time_ms,
            system,
            sender: if system {
                None
            } else {
                string(row.get_ref(3).unwrap())
            },
            text,
            packet,
            claim_of: None,
        });
    }
    (holder, groups)
}

fn dingtalk_truth(root: &Path) -> (Option<String>, BTreeMap<String, GroupTruth>) {
    let (_dir, conn) = ground_truth_db(root, "DBFiles/dingtalk.db");
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT uid, nick, realName FROM tbuser_profile_v2")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let uid = string(row.get_ref(0).unwrap()).unwrap();
        let nick = string(row.get_ref(1).unwrap()).filter(|n| !n.is_empty());
        let real = string(row.get_ref(2).unwrap()).filter(|n| !n.is_empty());
        names
            .entry(uid)
            .or_insert_with(|| nick.or(real).unwrap_or_default());
    }
    drop(rows);
    let mut groups: BTreeMap<String, GroupTruth> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT cid, ownerId FROM tbconversation WHERE type = 2")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let group = groups
            .entry(string(row.get_ref(0).unwrap()).unwrap())
            .or_default();
        group.owner = string(row.get_ref(1).unwrap());
        group.leaders.extend(group.owner.clone());
    }
    drop(rows);
    let mut stmt = conn
        .prepare("SELECT cid, uid, role FROM tbconversation_member")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let cid = string(row.get_ref(0).unwrap()).unwrap();
        let uid = string(row.get_ref(1).unwrap()).unwrap();
        let Some(group) = groups.get_mut(&cid) else {
            continue;
        };
        if matches!(int(row.get_ref(2).unwrap()), Some(1 | 2)) {
            group.leaders.insert(uid.clone());
        }
        let shown = names.get(&uid).cloned().unwrap_or_default();
        group.members.insert(
            uid,
            Member {
                names: vec![shown].into_iter().filter(|n| !n.is_empty()).collect(),
                left: false,
            },
        );
    }
    drop(rows);
    let mut all: Vec<(String, i64, i64, Msg)> = Vec::new();
    for shard in 0..128 {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT cid, mid, senderId, createdAt, contentType, content, attachments \
                 FROM tbmsg_{shard:03}"
            ))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cid = string(row.get_ref(0).unwrap()).unwrap_or_default();
            let mid: i64 = row.get(1).unwrap();
            let Some(time_ms) = int(row.get_ref(3).unwrap()) else {
                continue;
            };
            let content_type = int(row.get_ref(4).unwrap());
            let content: Value = string(row.get_ref(5).unwrap())
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or(Value::Null);
            let text = content["text"].as_str().unwrap_or_default().to_string();
            let packet = (content_type == Some(902)).then(|| Packet {
                parts: content["count"].as_u64().filter(|&n| n > 0),
                pay_id: None,
            });
            if content_type == Some(501) {
                let attachments: Value = string(row.get_ref(6).unwrap())
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or(Value::Null);
                let extension = &attachments[0]["extension"];
                let extension: Value = match extension.as_str() {
                    Some(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                    None => extension.clone(),
                };
                if let Some(file) = extension["path"].as_str().and_then(|p| inside(root, p)) {
                    if absent(&file) {
                        if let Some(group) = groups.get_mut(&cid) {
                            group.missing_files.insert(mid.to_string());
                        }
                    }
                }
            }
            let msg = Msg {
                id: mid.to_string(),
                time_ms,
                system: content_type == Some(102),
                sender: if content_type == Some(102) {
                    None
                } else {
                    string(row.get_ref(2).unwrap())
                },
                text,
                packet,
                claim_of: None,
            };
            all.push((cid, time_ms, mid, msg));
        }
    }
    all.sort_by_key(|(_, t, mid, _)| (*t, *mid));
    for (cid, _, _, msg) in all {
        if let Some(group) = groups.get_mut(&cid) {
            group.messages.push(msg);
        }
    }
    (Some(DINGTALK_HOLDER.to_string()), groups)
}

fn wecom_truth(root: &Path) -> (Option<String>, BTreeMap<String, GroupTruth>) {
    let mut groups: BTreeMap<String, GroupTruth> = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("groups")).unwrap() {
        let room: Value = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap())
            .unwrap_or(Value::Null);
        let Some(id) = room["roomid"].as_str() else {
            continue;
        };
        let group = groups.entry(id.to_string()).or_default();
        group.owner = room["creator"].as_str().map(str::to_string);
        group.leaders.extend(group.owner.clone());
        for member in room["members"].as_array().into_iter().flatten() {
            if let Some(m) = member["memberid"].as_str() {
                group.members.insert(m.to_string(), Member::default());
            }
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut seen = BTreeSet::new();
    let mut all: Vec<(i64, usize, String, Msg)> = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(record) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let (Some(id), Some(room)) = (record["msgid"].as_str(), record["roomid"].as_str())
            else {
                continue;
            };
            if room.is_empty() || !seen.insert(id.to_string()) {
                continue;
            }
            let time_ms = match &record["msgtime"] {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            let Some(time_ms) = time_ms else {
                continue;
            };
            let msgtype = record["msgtype"].as_str().unwrap_or_default();
            let payload = &record[msgtype];
            if msgtype == "file" {
                let name = format!(
                    "{}.{}",
                    payload["md5sum"].as_str().unwrap_or_default(),
                    payload["fileext"].as_str().unwrap_or_default()
                );
                if let Some(group) = groups.get_mut(room) {
                    if inside(root, &format!("media/{name}")).is_some_and(|f| absent(&f)) {
                        group.missing_files.insert(id.to_string());
                    }
                }
            }
            let msg = Msg {
                id: id.to_string(),
                time_ms,
                system: false,
                sender: record["from"].as_str().map(str::to_string),
                text: if msgtype == "text" {
                    payload["content"].as_str().unwrap_or_default().to_string()
                } else {
                    String::new()
                },
                packet: (msgtype == "redpacket").then_some(Packet {
                    parts: payload["totalcnt"].as_u64(),
                    pay_id: None,
                }),
                claim_of: None,
            };
            let order = all.len();
            all.push((time_ms, order, room.to_string(), msg));
        }
    }
    all.sort_by_key(|(t, order, _, _)| (*t, *order));
    for (_, _, room, msg) in all {
        groups.entry(room).or_default().messages.push(msg);
    }
    (None, groups)
}

// ------------------------------------------------------------------ the rules, from the truth

/// `张三领取了李四的红包`: the sender's name.
fn claimed_from(text: &str) -> Option<&str> {
    let (claimer, rest) = text.trim().split_once("领取了")?;
    let sender = rest.strip_suffix("的红包")?;
    (!claimer.is_empty() && !sender.is_empty()).then_some(sender)
}

/// A young red packet and its claims.
#[derive(Debug)]
struct Young<'a> {
    msg: &'a Msg,
    claims: u64,
}

impl Young<'_> {
    fn parts(&self) -> Option<u64> {
        self.msg.packet.as_ref()?.parts
    }

    fn unclaimed(&self) -> bool {
        self.parts().is_some_and(|p| self.claims < p)
    }
}

/// The red packets sent in `(now - 24 h, now]`, with their claims: by id (WeChat), or a
/// text claim for the latest such packet of a member of that name that may have parts left.
fn young_packets(group: &GroupTruth, now_ms: i64) -> Vec<Young<'_>> {
    let mut young: Vec<Young> = Vec::new();
    for msg in &group.messages {
        if !msg.system {
            if msg.packet.is_some() && msg.time_ms > now_ms - DAY_MS && msg.time_ms <= now_ms {
                young.push(Young { msg, claims: 0 });
            }
            continue;
        }
        if let Some(id) = &msg.claim_of {
            if let Some(p) = young
                .iter_mut()
                .find(|p| p.msg.packet.as_ref().and_then(|k| k.pay_id.as_ref()) == Some(id))
            {
                p.claims += 1;
            }
            continue;
        }
        let Some(name) = claimed_from(&msg.text) else {
            continue;
        };
        if let Some(p) = young.iter_mut().rev().find(|p| {
            p.msg.time_ms <= msg.time_ms
                && p.parts().is_none_or(|parts| p.claims < parts)
                && p.msg
                    .sender
                    .as_ref()
                    .and_then(|s| group.members.get(s))
                    .is_some_and(|m| m.names.iter().any(|n| n == name))
        }) {
            p.claims += 1;
        }
    }
    young
}

/// `block.red_packet`'s status and the packets it lists, by the rule.
fn expected_red_packets(truth: &Truth, group: &GroupTruth, now_ms: i64) -> (&'static str, Ids) {
    let young = young_packets(group, now_ms);
    let listed: Vec<&Young> = young
        .iter()
        .filter(|p| !truth.claims_recorded() || p.unclaimed() || p.parts().is_none())
        .collect();
    let status = if truth.claims_recorded() && young.iter().any(Young::unclaimed) {
        "block"
    } else if !listed.is_empty() {
        "warn"
    } else {
        "ok"
    };
    (status, listed.iter().map(|p| p.msg.id.clone()).collect())
}

/// Announcements by the owner or an admin (by their words), posted at or before `at_ms`.
fn announcements(group: &GroupTruth, at_ms: i64) -> Vec<&Msg> {
    group
        .messages
        .iter()
        .filter(|m| {
            m.time_ms <= at_ms
                && !m.system
                && m.sender.as_ref().is_some_and(|s| group.leaders.contains(s))
                && (m.text.contains("解散")
                    || m.text.contains("停用")
                    || m.text.to_lowercase().contains("dissolv"))
        })
        .collect()
}

/// `notice.default`'s status and the messages it lists, for a dissolution at `at_ms`.
fn expected_notice(group: &GroupTruth, at_ms: i64) -> (&'static str, Ids) {
    let found = announcements(group, at_ms);
    let status = match found.iter().map(|m| m.time_ms).min() {
        Some(first) if at_ms - first >= DAY_MS => "ok",
        _ => "warn",
    };
    (status, found.iter().map(|m| m.id.clone()).collect())
}

/// The planted announcements: the holder's (or, on WeCom, the creator's) messages naming the
/// planned dissolution as `…Z`, with that time.
fn planted_notices(truth: &Truth) -> Vec<(String, &Msg, i64)> {
    let utc = Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").unwrap();
    let mut found = Vec::new();
    for (id, group) in &truth.groups {
        for m in announcements(group, i64::MAX) {
            if let Some(at) = utc.find(&m.text) {
                let at = chrono::DateTime::parse_from_rfc3339(at.as_str())
                    .unwrap()
                    .timestamp_millis();
                found.push((id.clone(), m, at));
            }
        }
    }
    found
}

// ------------------------------------------------------------------ running check

type Ids = BTreeSet<String>;

struct Fixture {
    _dir: tempfile::TempDir,
    truths: Vec<Truth>,
}

/// Every platform simulated once (3 or more groups, `--members 40`), and its truth.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "--groups",
            "4",
            "--members",
            "40",
            "--messages",
            "3000",
            "--seed",
            "21",
        ];
        let truths = PLATFORMS
            .iter()
            .map(|&platform| {
                let root = match platform {
                    "dingtalk" => {
                        let parent = dir.path().join("dingtalk");
                        std::fs::create_dir(&parent).unwrap();
                        simulate(platform, &parent, &format!("{DINGTALK_HOLDER}_v2"), &args)
                    }
                    _ => simulate(platform, dir.path(), platform, &args),
                };
                Truth::read(platform, &root)
            })
            .collect();
        Fixture { _dir: dir, truths }
    })
}

fn truth(platform: &str) -> &'static Truth {
    fixture()
        .truths
        .iter()
        .find(|t| t.platform == platform)
        .unwrap()
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn now_ms() -> i64 {
    chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis()
}

/// `check --json` with `args`: the report.
fn check(root: &Path, args: &[&str]) -> Value {
    let mut all = vec!["check", root.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        matches!(exit_code(&out), 0 | 14),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn groups(report: &Value) -> &Vec<Value> {
    report["groups"].as_array().unwrap()
}

fn finding<'a>(report: &'a Value, group: &str, rule: &str) -> &'a Value {
    groups(report)
        .iter()
        .find(|g| g["group_id"] == group)
        .unwrap_or_else(|| panic!("no group {group}"))["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} for {group}"))
}

/// Message ids an evidence list names (`message 123 …`), and how many it leaves unlisted.
fn listed(finding: &Value) -> (Ids, usize) {
    let mut ids = Ids::new();
    let mut more = 0;
    for line in finding["evidence"].as_array().unwrap() {
        let line = line.as_str().unwrap();
        if let Some(rest) = line.strip_prefix("message ") {
            ids.insert(rest.split(' ').next().unwrap().to_string());
        } else if let Some(n) = line
            .strip_prefix("… and ")
            .and_then(|r| r.strip_suffix(" more"))
        {
            more = n.parse().unwrap();
        }
    }
    (ids, more)
}

// ------------------------------------------------------------------ the tests

#[test]
fn young_red_packets_block_until_24_hours_after_sending_to_the_second() {
    for platform in PLATFORMS {
        let truth = truth(platform);
        let now = now_ms();
        // What was planted: young packets, unclaimed and (where claims are recorded) fully so.
        let young: Vec<(&String, Young)> = truth
            .groups
            .iter()
            .flat_map(|(id, g)| young_packets(g, now).into_iter().map(move |p| (id, p)))
            .collect();
        let fully_claimed = |p: &Young| !p.unclaimed() && p.parts().is_some();
        if truth.claims_recorded() {
            assert!(
                young.iter().any(|(_, p)| p.unclaimed()),
                "{platform}: no young red packet with unclaimed parts"
            );
            assert!(
                young.iter().any(|(_, p)| fully_claimed(p)),
                "{platform}: no young red packet fully claimed"
            );
        } else {
            assert!(
                young.iter().filter(|(_, p)| p.parts().is_some()).count() >= 2,
                "{platform}: young red packets with totalcnt"
            );
        }
        // The latest young one that blocks (or, without claims, warns).
        let (group, latest) = young
            .iter()
            .filter(|(_, p)| p.unclaimed() || !truth.claims_recorded())
            .max_by_key(|(_, p)| p.msg.time_ms)
            .unwrap();
        let (packet, sent) = (&latest.msg.id, latest.msg.time_ms);
        for reference in [now, sent + DAY_MS - SECOND_MS, sent + DAY_MS] {
            let report = check(&truth.root, &["--now", &utc(reference)]);
            for g in groups(&report) {
                let id = g["group_id"].as_str().unwrap();
                let f = finding(&report, id, "block.red_packet");
                let (status, ids) = expected_red_packets(truth, truth.group(id), reference);
                assert_eq!(
                    f["status"],
                    status,
                    "{platform} {id} at {}: {f}",
                    utc(reference)
                );
                let (shown, more) = listed(f);
                if more == 0 {
                    assert_eq!(shown, ids, "{platform} {id} at {}", utc(reference));
                } else {
                    assert!(shown.is_subset(&ids) && shown.len() + more == ids.len());
                }
            }
            let shown = listed(finding(&report, group, "block.red_packet")).0;
            assert_eq!(
                shown.contains(packet),
                reference < sent + DAY_MS,
                "{platform}: {packet} at {}",
                utc(reference)
            );
        }
        // A fully claimed young packet is never listed.
        if truth.claims_recorded() {
            let report = check(&truth.root, &["--now", NOW]);
            for (group, p) in young.iter().filter(|(_, p)| fully_claimed(p)) {
                let f = finding(&report, group, "block.red_packet");
                assert!(!listed(f).0.contains(&p.msg.id), "{platform}: {f}");
            }
        }
    }
}

#[test]
fn the_owner_and_the_member_counts_are_the_sources() {
    for platform in PLATFORMS {
        let truth = truth(platform);
        let report = check(&truth.root, &["--now", NOW]);
        assert_eq!(report["owner_id"].as_str(), truth.holder.as_deref());
        let mut transferred = 0;
        let mut sizes = BTreeMap::new();
        for g in groups(&report) {
            let id = g["group_id"].as_str().unwrap();
            let group = truth.group(id);
            let f = finding(&report, id, "owner.transferred");
            let want = match (&truth.holder, &group.owner) {
                (Some(h), Some(o)) if h == o => "ok",
                (Some(_), Some(_)) if platform == "wecom" => "warn",
                (Some(_), Some(_)) => {
                    transferred += 1;
                    "block"
                }
                _ => "warn",
            };
            assert_eq!(f["status"], want, "{platform} {id}: {f}");
            assert_eq!(
                f["evidence"][0],
                format!(
                    "account holder {}, group owner {}",
                    truth.holder.as_deref().unwrap_or("(unknown)"),
                    group.owner.as_deref().unwrap_or("(unknown)")
                ),
                "{platform} {id}"
            );

            let current = group.members.values().filter(|m| !m.left).count();
            assert_eq!(g["members"], current as u64, "{platform} {id}");
            let f = finding(&report, id, "notify.over_40");
            assert_eq!(
                f["status"],
                if current > 40 { "warn" } else { "ok" },
                "{platform} {id}"
            );
            assert!(
                f["evidence"][0]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{current} current members")),
                "{f}"
            );
            sizes.insert(current, f["status"].as_str().unwrap().to_string());
        }
        for (size, status) in [(39, "ok"), (40, "ok"), (41, "warn")] {
            assert_eq!(
                sizes.get(&size).map(String::as_str),
                Some(status),
                "{platform}: a group of {size} members: {sizes:?}"
            );
        }
        // Where the source names the holder: a group it owns, and one it no longer does.
        if truth.holder.is_some() {
            assert!(transferred >= 1, "{platform}: no transferred ownership");
            assert!(groups(&report).iter().any(|g| finding(
                &report,
                g["group_id"].as_str().unwrap(),
                "owner.transferred"
            )["status"]
                == "ok"));
        }
        // QQ: the left members are not counted (the sized groups each have one).
        if platform == "qq" {
            assert!(truth
                .groups
                .values()
                .any(|g| g.members.values().any(|m| m.left)));
        }
    }
}

#[test]
fn the_announcements_25_and_23_hours_before_give_the_notice_period_to_the_second() {
    for platform in PLATFORMS {
        let truth = truth(platform);
        let planted = planted_notices(truth);
        let at = planted
            .first()
            .unwrap_or_else(|| panic!("{platform}: no planted announcement"))
            .2;
        assert!(
            planted.iter().all(|(_, _, t)| *t == at),
            "{platform}: one dissolution time"
        );
        let leads: BTreeSet<i64> = planted.iter().map(|(_, m, _)| at - m.time_ms).collect();
        assert_eq!(
            leads,
            BTreeSet::from([23 * HOUR_MS, 25 * HOUR_MS]),
            "{platform}: the announcements' leads"
        );
        let report = check(&truth.root, &["--now", NOW, "--dissolve-at", &utc(at)]);
        for g in groups(&report) {
            let id = g["group_id"].as_str().unwrap();
            let f = finding(&report, id, "notice.default");
            let (status, ids) = expected_notice(truth.group(id), at);
            assert_eq!(f["status"], status, "{platform} {id}: {f}");
            assert_eq!(listed(f).0, ids, "{platform} {id}");
        }
        for (group, msg, _) in &planted {
            let want = if at - msg.time_ms >= DAY_MS {
                "ok"
            } else {
                "warn"
            };
            assert_eq!(
                finding(&report, group, "notice.default")["status"],
                want,
                "{platform} {group}"
            );
        }
        // Moved so that the 25 h announcement leads by exactly 24 h, then by a second less.
        let (group, early, _) = planted
            .iter()
            .find(|(_, m, _)| at - m.time_ms == 25 * HOUR_MS)
            .unwrap();
        for (dissolve, want) in [
            (early.time_ms + DAY_MS, "ok"),
            (early.time_ms + DAY_MS - SECOND_MS, "warn"),
        ] {
            let report = check(
                &truth.root,
                &[
                    "--now",
                    NOW,
                    "--group",
                    group,
                    "--dissolve-at",
                    &utc(dissolve),
                ],
            );
            let f = finding(&report, group, "notice.default");
            assert_eq!(
                f["status"],
                want,
                "{platform} {group} at {}: {f}",
                utc(dissolve)
            );
            assert_eq!(listed(f).0, expected_notice(truth.group(group), dissolve).1);
            assert_eq!(expected_notice(truth.group(group), dissolve).0, want);
        }
        // And the 23 h one, moved to lead by exactly 24 h.
        let (group, late, _) = planted
            .iter()
            .find(|(_, m, _)| at - m.time_ms == 23 * HOUR_MS)
            .unwrap();
        let report = check(
            &truth.root,
            &[
                "--now",
                NOW,
                "--group",
                group,
                "--dissolve-at",
                &utc(late.time_ms + DAY_MS),
            ],
        );
        assert_eq!(finding(&report, group, "notice.default")["status"], "ok");
    }
}

/// The announcement's text as WeChat posted it.
fn wechat_notice() -> String {
    let planted = planted_notices(truth("wechat"));
    let text = planted[0].1.text.clone();
    assert!(planted.iter().all(|(_, m, _)| m.text == text));
    text
}

#[test]
fn announce_find_tells_the_word_for_word_the_changed_and_the_missing_copies_apart() {
    let text = wechat_notice();
    let dir = tempfile::tempdir().unwrap();
    let notice = dir.path().join("notice.txt");
    std::fs::write(&notice, &text).unwrap();
    let sources: Vec<&Truth> = ["wechat", "dingtalk", "qq"]
        .into_iter()
        .map(truth)
        .collect();
    let mut args = vec!["announce", "find"];
    args.extend(sources.iter().map(|t| t.root.to_str().unwrap()));
    args.extend(["--announcement", notice.to_str().unwrap(), "--json"]);
    let out = run(&args);
    assert_eq!(exit_code(&out), 8, "a changed copy");
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut verdicts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in &sources {
        for (id, group) in &t.groups {
            let row = found
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["platform"] == t.platform && g["group_id"] == id.as_str());
            let Some(row) = row else {
                // A group with no messages is not a conversation of the source.
                assert!(group.messages.is_empty(), "{} {id}", t.platform);
                continue;
            };
            let identical: Ids = group
                .messages
                .iter()
                .filter(|m| m.text.trim() == text.trim())
                .map(|m| m.id.clone())
                .collect();
            // One character off: same length, one position differs.
            let changed: Ids = group
                .messages
                .iter()
                .filter(|m| {
                    m.text.chars().count() == text.chars().count()
                        && m.text
                            .chars()
                            .zip(text.chars())
                            .filter(|(a, b)| a != b)
                            .count()
                            == 1
                })
                .map(|m| m.id.clone())
                .collect();
            let want = if !identical.is_empty() {
                "identical"
            } else if !changed.is_empty() {
                "changed"
            } else {
                "none"
            };
            assert_eq!(row["verdict"], want, "{} {id}: {row}", t.platform);
            let ids = |key: &str| -> Ids {
                row[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["message_id"].as_str().unwrap().to_string())
                    .collect()
            };
            assert_eq!(ids("identical"), identical, "{} {id}", t.platform);
            if want == "changed" {
                assert_eq!(ids("changed"), changed, "{} {id}", t.platform);
                for copy in row["changed"].as_array().unwrap() {
                    assert!(
                        copy["difference"]
                            .as_str()
                            .unwrap()
                            .contains("[-出-]{+入+}"),
                        "{copy}"
                    );
                }
            }
            verdicts.entry(t.platform).or_default().insert(want);
        }
    }
    assert!(verdicts["wechat"].contains("identical"), "{verdicts:?}");
    assert!(verdicts["dingtalk"].contains("changed"), "{verdicts:?}");
    assert!(!verdicts["dingtalk"].contains("identical"), "{verdicts:?}");
    assert_eq!(verdicts["qq"], BTreeSet::from(["none"]), "{verdicts:?}");

    // With the text given, check wants that very text: DingTalk's copy only mentions it.
    for (platform, want) in [("wechat", "ok"), ("dingtalk", "warn")] {
        let t = truth(platform);
        let planted = planted_notices(t);
        let (group, early, at) = planted
            .iter()
            .find(|(_, m, at)| at - m.time_ms == 25 * HOUR_MS)
            .unwrap();
        let report = check(
            &t.root,
            &[
                "--now",
                NOW,
                "--group",
                group,
                "--dissolve-at",
                &utc(*at),
                "--announcement",
                notice.to_str().unwrap(),
            ],
        );
        let f = finding(&report, group, "notice.default");
        assert_eq!(f["status"], want, "{platform}: {f}");
        assert!(listed(f).0.contains(&early.id), "{f}");
    }
}

#[test]
fn files_fetch_lists_the_group_files_never_downloaded() {
    for platform in PLATFORMS {
        let truth = truth(platform);
        let report = check(&truth.root, &["--now", NOW]);
        for g in groups(&report) {
            let id = g["group_id"].as_str().unwrap();
            let missing = &truth.group(id).missing_files;
            let f = finding(&report, id, "files.fetch");
            let (shown, more) = listed(f);
            let lines = f["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l.as_str().unwrap().starts_with("message "))
                .count();
            let count: usize = f["summary"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap_or(0);
            if !missing.is_empty() {
                assert_eq!(f["status"], "warn", "{platform} {id}");
                assert_eq!(count, lines + more, "{platform} {id}: {f}");
            }
            if more == 0 {
                assert!(
                    missing.is_subset(&shown),
                    "{platform} {id}: {missing:?} {f}"
                );
            } else if let Some(first) = truth
                .group(id)
                .messages
                .iter()
                .find(|m| missing.contains(&m.id))
            {
                // Listed in message order: at least the earliest is shown.
                assert!(shown.contains(&first.id), "{platform} {id}: {f}");
            }
            for line in f["evidence"].as_array().unwrap() {
                let line = line.as_str().unwrap();
                if let Some(rest) = line.strip_prefix("message ") {
                    if missing.contains(rest.split(' ').next().unwrap()) {
                        assert!(line.ends_with("file missing locally"), "{line}");
                    }
                }
            }
        }
        // The group with the 25 h announcement (A) has a group file never downloaded.
        let (a, _, _) = planted_notices(truth)
            .into_iter()
            .find(|(_, m, at)| at - m.time_ms == 25 * HOUR_MS)
            .unwrap();
        assert!(
            !truth.group(&a).missing_files.is_empty(),
            "{platform}: no group file left undownloaded in {a}"
        );
    }
}

#[test]
fn the_same_seed_plants_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--groups",
        "4",
        "--members",
        "40",
        "--messages",
        "800",
        "--seed",
        "5",
    ];
    for platform in PLATFORMS {
        let trees: Vec<BTreeMap<PathBuf, (String, u64)>> = ["a", "b"]
            .into_iter()
            .map(|run| {
                let parent = dir.path().join(format!("{platform}-{run}"));
                std::fs::create_dir(&parent).unwrap();
                let root = simulate(platform, &parent, &format!("{DINGTALK_HOLDER}_v2"), &args);
                // Contents only: files the simulators do not date carry the time of writing.
                snapshot(&root)
                    .into_iter()
                    .map(|(path, (sha, len, _))| {
                        (path.strip_prefix(&root).unwrap().to_path_buf(), (sha, len))
                    })
                    .collect()
            })
            .collect();
        assert!(trees[0] == trees[1], "{platform}: two runs differ");
    }
    // The announcement is the same on both platforms that post it, one character apart.
    assert_eq!(
        planted_notices(truth("dingtalk"))[0]
            .1
            .text
            .replacen("已导入", "已导出", 1),
        wechat_notice()
    );
}
