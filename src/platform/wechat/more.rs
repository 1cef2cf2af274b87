//! Continues a simulated WeChat account (`simulate wechat --continue`), as the app would
//! have written it over the following days: new rows in `message` after the newest one,
//! members joining (`chatroom.memberlist`, `rcontact`, a "joined" system row), new groups,
//! recalls made in place (the row becomes `type = 10000` `"<name>"撤回了一条消息`, as WeChat
//! does) and rows deleted from the device.
//!
//! What a test can rely on:
//! - every new message is later than the newest placeable `createTime` of the source (the
//!   hard rows' impossible times are not placeable), except the first new message of the
//!   first group in id order, which is at exactly that group's newest time;
//! - new `msgId`s and `msgSvrId`s continue after the largest in use, so ids stay unique;
//! - recalls and deletions touch only group rows that a reader can place in time, that are
//!   not system rows and not in a dissolved group; no row is both recalled and deleted;
//! - a dissolved group (its newest row is [`DISSOLUTION_TEXT`]) gets no joins and no messages.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};

use super::simulate::{
    DB_FILE, DEVICE_ROOT, DISSOLUTION_TEXT, TYPE_APP, TYPE_IMAGE, TYPE_SYSTEM, TYPE_TEXT,
    TYPE_VOICE,
};
use crate::simulate::edge::{self, GroupKind};
use crate::simulate::{
    md5_hex, media, random_digits, random_hex, seeded_rng, write_file_at, MoreOptions, MoreReport,
    SimError, SimRng, DAY_MS,
};

/// The instants an export can write (years 0000-9999), in ms.
const PLACEABLE_MS: (i64, i64) = (-62_167_219_200_000, 253_402_300_799_999);

/// A group as the continuation found or made it.
struct Room {
    id: String,
    /// Member wxids, the account owner first where the simulator put them so.
    members: Vec<String>,
    /// The newest placeable message time, if the group has messages.
    newest_ms: Option<i64>,
    dissolved: bool,
    kind: GroupKind,
}

struct Continuation<'a> {
    opts: &'a MoreOptions,
    conn: Connection,
    rng: SimRng,
    owner: String,
    next_msg_id: i64,
    next_svr_id: i64,
    next_img_id: i64,
    report: MoreReport,
}

pub fn simulate_more_wechat(opts: &MoreOptions) -> Result<MoreReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    let db_path = opts.root.join(DB_FILE);
    let cannot = |reason: String| SimError::CannotContinue {
        root: opts.root.clone(),
        reason,
    };
    if !db_path.is_file() {
        return Err(cannot(format!(
            "it has no {DB_FILE}: not a simulated WeChat account"
        )));
    }
    let conn = Connection::open(&db_path)?;
    for table in ["message", "chatroom", "rcontact", "userinfo", "ImgInfo2"] {
        let found: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_none() {
            return Err(cannot(format!(
                "{DB_FILE} has no table `{table}`: not a simulated WeChat account"
            )));
        }
    }
    let owner: Option<String> = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
        .optional()?;
    let Some(owner) = owner.filter(|o| !o.is_empty()) else {
        return Err(cannot(format!(
            "{DB_FILE} names no account owner (userinfo id 2)"
        )));
    };
    let max = |sql: &str| -> Result<i64, SimError> {
        Ok(conn
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0))
    };
    let next_msg_id = max("SELECT MAX(msgId) FROM message")?.saturating_add(1);
    let next_svr_id = max("SELECT MAX(msgSvrId) FROM message WHERE typeof(msgSvrId) = 'integer'")?
        .max(1_000_000)
        .saturating_add(1);
    let next_img_id = max("SELECT MAX(id) FROM ImgInfo2")?.saturating_add(1);
    if next_svr_id > i64::MAX - 10_000_000 || next_msg_id > i64::MAX - 10_000_000 {
        return Err(cannot(
            "its message ids are too close to the largest integer".into(),
        ));
    }
    let mut more = Continuation {
        opts,
        conn,
        rng: seeded_rng(opts.seed, 0x3e3e),
        owner,
        next_msg_id,
        next_svr_id,
        next_img_id,
        report: MoreReport {
            root: opts.root.clone(),
            platform: "wechat",
            ..MoreReport::default()
        },
    };
    let mut rooms = more.rooms()?;
    let newest = rooms.iter().filter_map(|r| r.newest_ms).max();
    let Some(newest) = newest else {
        return Err(cannot("it has no group message to continue after".into()));
    };
    more.conn.execute_batch("BEGIN")?;
    // Recalls and deletions first: they pick among the rows that were there before.
    more.recall_and_delete()?;
    more.join(&mut rooms, newest)?;
    for _ in 0..opts.new_groups {
        let room = more.new_group(&rooms, newest)?;
        rooms.push(room);
    }
    more.write_messages(&rooms, newest)?;
    more.conn.execute_batch("COMMIT")?;
    more.conn
        .close()
        .map_err(|(_, err)| SimError::Sqlite(err))?;
    let mut report = more.report;
    report.elapsed = started.elapsed();
    Ok(report)
}

impl Continuation<'_> {
    /// The groups, in id order, with their members and newest placeable time.
    fn rooms(&mut self) -> Result<Vec<Room>, SimError> {
        let mut newest: BTreeMap<String, i64> = BTreeMap::new();
        {
            let mut statement = self.conn.prepare(
                "SELECT talker, MAX(createTime) FROM message WHERE talker LIKE '%@chatroom' \
                 AND typeof(createTime) = 'integer' AND createTime BETWEEN ?1 AND ?2 GROUP BY talker",
            )?;
            let mut rows = statement.query(params![PLACEABLE_MS.0, PLACEABLE_MS.1])?;
            while let Some(row) = rows.next()? {
                newest.insert(row.get(0)?, row.get(1)?);
            }
        }
        let mut rooms = Vec::new();
        let mut statement = self.conn.prepare(
            "SELECT chatroomname, memberlist, \
             (SELECT nickname FROM rcontact WHERE username = chatroomname) \
             FROM chatroom WHERE chatroomname LIKE '%@chatroom' ORDER BY chatroomname",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let list: Option<String> = row.get(1)?;
            let name: Option<String> = row.get(2)?;
            let members = list
                .unwrap_or_default()
                .split(';')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            rooms.push(Room {
                newest_ms: newest.get(&id).copied(),
                dissolved: false,
                kind: kind_of(name.as_deref().unwrap_or_default()),
                id,
                members,
            });
        }
        drop(rows);
        drop(statement);
        for room in &mut rooms {
            let Some(time) = room.newest_ms else { continue };
            let last: Option<String> = self
                .conn
                .query_row(
                    "SELECT content FROM message WHERE talker = ?1 AND createTime = ?2 \
                     ORDER BY msgId DESC LIMIT 1",
                    params![room.id, time],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            room.dissolved = last.as_deref() == Some(DISSOLUTION_TEXT);
        }
        Ok(rooms)
    }

    /// A person's display name as `rcontact` gives it (remark, else nickname, else wxid).
    fn name_of(&self, wxid: &str) -> Result<String, SimError> {
        let found: Option<(Option<String>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT conRemark, nickname FROM rcontact WHERE username = ?1",
                [wxid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match found {
            Some((Some(remark), _)) if !remark.is_empty() => remark,
            Some((_, Some(nickname))) if !nickname.is_empty() => nickname,
            _ => wxid.to_string(),
        })
    }

    fn recall_and_delete(&mut self) -> Result<(), SimError> {
        let wanted = self.opts.recalls + self.opts.deletions;
        if wanted == 0 {
            return Ok(());
        }
        // Placeable group rows that are not system rows, outside dissolved groups; the
        // hard rows (NULL content, impossible times) are not among them.
        let mut candidates: Vec<(i64, Option<i64>, String)> = Vec::new();
        {
            let mut statement = self.conn.prepare(
                "SELECT msgId, isSend, content FROM message m WHERE talker LIKE '%@chatroom' \
                 AND type != ?1 AND content IS NOT NULL AND content != '' \
                 AND typeof(createTime) = 'integer' AND createTime BETWEEN ?2 AND ?3 \
                 AND NOT EXISTS (SELECT 1 FROM message d WHERE d.talker = m.talker AND d.content = ?4) \
                 ORDER BY msgId",
            )?;
            let mut rows = statement.query(params![
                TYPE_SYSTEM,
                PLACEABLE_MS.0,
                PLACEABLE_MS.1,
                DISSOLUTION_TEXT
            ])?;
            while let Some(row) = rows.next()? {
                candidates.push((row.get(0)?, row.get(1)?, row.get(2)?));
            }
        }
        if candidates.len() < wanted {
            return Err(SimError::CannotContinue {
                root: self.opts.root.clone(),
                reason: format!(
                    "{wanted} recalls and deletions asked for, but only {} group messages can be recalled or deleted",
                    candidates.len()
                ),
            });
        }
        let chosen: Vec<(i64, Option<i64>, String)> = candidates
            .choose_multiple(&mut self.rng, wanted)
            .cloned()
            .collect();
        for (index, (msg_id, is_send, content)) in chosen.into_iter().enumerate() {
            if index < self.opts.recalls {
                let text = if is_send == Some(1) {
                    "你撤回了一条消息".to_string()
                } else {
                    let sender = content.split(':').next().unwrap_or_default();
                    format!("\"{}\"撤回了一条消息", self.name_of(sender)?)
                };
                self.conn.execute(
                    "UPDATE message SET type = ?1, content = ?2, imgPath = NULL WHERE msgId = ?3",
                    params![TYPE_SYSTEM, text, msg_id],
                )?;
                self.report.recalled += 1;
            } else {
                self.conn
                    .execute("DELETE FROM message WHERE msgId = ?1", [msg_id])?;
                self.report.deleted += 1;
            }
        }
        Ok(())
    }

    /// A wxid no row uses yet.
    fn new_wxid(&mut self) -> Result<String, SimError> {
        loop {
            let wxid = format!("wxid_{}", random_hex(&mut self.rng, 14));
            let used: Option<i64> = self
                .conn
                .query_row("SELECT 1 FROM rcontact WHERE username = ?1", [&wxid], |r| {
                    r.get(0)
                })
                .optional()?;
            if used.is_none() {
                return Ok(wxid);
            }
        }
    }

    fn new_contact(&mut self) -> Result<String, SimError> {
        let wxid = self.new_wxid()?;
        let nickname = edge::nickname(&mut self.rng);
        self.conn.execute(
            "INSERT INTO rcontact (username, alias, conRemark, nickname, pyInitial, quanPin, showHead, type, verifyFlag, chatroomFlag, deleteFlag) VALUES (?1, '', '', ?2, '', '', 0, 4, 0, 0, 0)",
            params![wxid, nickname],
        )?;
        Ok(wxid)
    }

    /// `joins` new members per group that is not dissolved, each with a system row.
    fn join(&mut self, rooms: &mut [Room], newest: i64) -> Result<(), SimError> {
        let span = i64::from(self.opts.days) * DAY_MS;
        for room in rooms.iter_mut().filter(|r| !r.dissolved) {
            for _ in 0..self.opts.joins {
                let wxid = self.new_contact()?;
                let inviter = room
                    .members
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_else(|| self.owner.clone());
                let (inviter_name, joiner_name) = (self.name_of(&inviter)?, self.name_of(&wxid)?);
                let nickname = if self.rng.gen_bool(0.5) {
                    edge::group_nickname(&mut self.rng, room.kind, &joiner_name)
                } else {
                    String::new()
                };
                self.conn.execute(
                    "UPDATE chatroom SET memberlist = memberlist || ';' || ?1, \
                     displayname = COALESCE(displayname, '') || '、' || ?2, \
                     memberCount = COALESCE(memberCount, 0) + 1, modifytime = ?3 \
                     WHERE chatroomname = ?4",
                    params![wxid, nickname.replace('、', ""), newest + span, room.id],
                )?;
                let time = newest + self.rng.gen_range(1..span.max(2));
                let text = format!("\"{inviter_name}\"邀请\"{joiner_name}\"加入了群聊");
                self.insert(&room.id, time, TYPE_SYSTEM, 0, Some(text), None)?;
                room.members.push(wxid);
                self.report.joined += 1;
            }
        }
        Ok(())
    }

    fn new_group(&mut self, rooms: &[Room], newest: i64) -> Result<Room, SimError> {
        let id = loop {
            let id = format!("{}@chatroom", random_digits(&mut self.rng, 11));
            if !rooms.iter().any(|r| r.id == id) {
                break id;
            }
        };
        let kind = *GroupKind::ALL
            .choose(&mut self.rng)
            .unwrap_or(&GroupKind::Other);
        let name = edge::group_name(&mut self.rng, kind);
        let size = self.rng.gen_range(4..20);
        let mut members = vec![self.owner.clone()];
        for _ in 1..size {
            members.push(self.new_contact()?);
        }
        self.conn.execute(
            "INSERT INTO rcontact (username, alias, conRemark, nickname, pyInitial, quanPin, showHead, type, verifyFlag, chatroomFlag, deleteFlag) VALUES (?1, '', '', ?2, '', '', 0, 3, 0, 1, 0)",
            params![id, name],
        )?;
        let room_owner = members[1].clone();
        self.conn.execute(
            "INSERT INTO chatroom (chatroomname, addtime, memberlist, displayname, roomflag, roomowner, isShowname, style, chatroomdataflag, modifytime, chatroomVersion, chatroomLocalVersion, chatroomStatus, memberCount, chatroomfamilystatusmodifytime) VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, 0, 0, ?6, 1, 1, 0, ?7, 0)",
            params![
                id,
                newest / 1000,
                members.join(";"),
                vec![""; members.len()].join("、"),
                room_owner,
                newest,
                members.len() as i64
            ],
        )?;
        self.report.new_groups += 1;
        Ok(Room {
            id,
            members,
            newest_ms: None,
            dissolved: false,
            kind,
        })
    }

    /// The new messages, in time order, over the groups that are not dissolved.
    fn write_messages(&mut self, rooms: &[Room], newest: i64) -> Result<(), SimError> {
        let open: Vec<&Room> = rooms.iter().filter(|r| !r.dissolved).collect();
        if open.is_empty() || self.opts.messages == 0 {
            return Ok(());
        }
        let span = i64::from(self.opts.days) * DAY_MS;
        let mut times: Vec<i64> = (0..self.opts.messages)
            .map(|_| newest + self.rng.gen_range(1..span.max(2)))
            .collect();
        times.sort_unstable();
        // The first group in id order gets a message at exactly its newest time first.
        let first_at_mark = open
            .iter()
            .position(|r| r.newest_ms.is_some())
            .map(|i| (i, open[i].newest_ms.unwrap_or(newest)));
        for (index, mut time) in times.into_iter().enumerate() {
            let mut room_index = self.rng.gen_range(0..open.len());
            if index == 0 {
                if let Some((at, mark)) = first_at_mark {
                    room_index = at;
                    time = mark;
                }
            }
            self.message(open[room_index], time)?;
        }
        Ok(())
    }

    fn message(&mut self, room: &Room, time: i64) -> Result<(), SimError> {
        let by_owner = room.members.len() < 2 || self.rng.gen_bool(0.1);
        let sender = if by_owner {
            self.owner.clone()
        } else {
            room.members[1..]
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_else(|| self.owner.clone())
        };
        let msg_id = self.next_msg_id;
        let svr_id = self.next_svr_id;
        let roll: u32 = self.rng.gen_range(0..100);
        let (msg_type, payload, img_path) = match roll {
            0..=69 => (TYPE_TEXT, edge::chat_text(&mut self.rng, room.kind), None),
            70..=81 => {
                let (body, path) = self.image(svr_id, msg_id, time)?;
                (TYPE_IMAGE, body, Some(path))
            }
            82..=91 => {
                let (body, key) = self.voice(&room.id, svr_id, msg_id, time, &sender)?;
                (TYPE_VOICE, body, Some(key))
            }
            _ => (TYPE_APP, self.file(msg_id, time)?, None),
        };
        let content = if by_owner {
            payload
        } else {
            format!("{sender}:\n{payload}")
        };
        self.insert(
            &room.id,
            time,
            msg_type,
            i64::from(by_owner),
            Some(content),
            img_path,
        )
    }

    fn insert(
        &mut self,
        talker: &str,
        time: i64,
        msg_type: i64,
        is_send: i64,
        content: Option<String>,
        img_path: Option<String>,
    ) -> Result<(), SimError> {
        self.conn
            .prepare_cached(
                "INSERT INTO message (msgId, msgSvrId, type, status, isSend, isShowTimer, createTime, talker, content, imgPath, talkerId, msgSeq, flag) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, 0, 0, 0)",
            )?
            .execute(params![
                self.next_msg_id,
                self.next_svr_id,
                msg_type,
                if is_send == 1 { 2 } else { 3 },
                is_send,
                time,
                talker,
                content,
                img_path
            ])?;
        self.next_msg_id += 1;
        self.next_svr_id += 1;
        self.report.messages += 1;
        Ok(())
    }

    fn write(&mut self, rel: &str, bytes: &[u8], time: i64) -> Result<(), SimError> {
        if self.opts.media_files {
            write_file_at(&self.opts.root.join(rel), bytes, time)?;
            self.report.media_files += 1;
        }
        Ok(())
    }

    /// An image: thumbnail and full image in `image2/`, its `ImgInfo2` row.
    fn image(&mut self, svr_id: i64, msg_id: i64, time: i64) -> Result<(String, String), SimError> {
        let thumb_name = random_hex(&mut self.rng, 32);
        let big_name = random_hex(&mut self.rng, 32);
        let thumb_len = self.rng.gen_range(600..4000);
        let big_len = self.rng.gen_range(8_000..60_000);
        let thumb = media::jpeg(&mut self.rng, thumb_len);
        let big = media::jpeg(&mut self.rng, big_len);
        let md5 = md5_hex(&big);
        self.write(
            &format!(
                "image2/{}/{}/th_{thumb_name}",
                &thumb_name[0..2],
                &thumb_name[2..4]
            ),
            &thumb,
            time,
        )?;
        self.write(
            &format!(
                "image2/{}/{}/{big_name}.jpg",
                &big_name[0..2],
                &big_name[2..4]
            ),
            &big,
            time,
        )?;
        self.conn
            .prepare_cached(
                "INSERT INTO ImgInfo2 (id, msgSvrId, offset, totalLen, bigImgPath, thumbImgPath, createtime, msglocalid, status, nettimes, iscomplete, origImgMD5) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, 0, 0, 1, ?8)",
            )?
            .execute(params![
                self.next_img_id,
                svr_id,
                big.len() as i64,
                format!("{big_name}.jpg"),
                format!("th_{thumb_name}"),
                time / 1000,
                msg_id,
                md5
            ])?;
        self.next_img_id += 1;
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg>\n\t<img length=\"{}\" md5=\"{md5}\" />\n</msg>\n",
            big.len()
        );
        Ok((body, format!("THUMBNAIL_DIRPATH://th_{thumb_name}")))
    }

    /// A voice note in `voice2/`, its `voiceinfo` row.
    fn voice(
        &mut self,
        talker: &str,
        svr_id: i64,
        msg_id: i64,
        time: i64,
        sender: &str,
    ) -> Result<(String, String), SimError> {
        let duration_ms: u32 = self.rng.gen_range(1000..20_000);
        let bytes = media::amr(&mut self.rng, duration_ms);
        // Unique by construction: the message id is part of the key.
        let key = format!("{msg_id:x}{}", random_hex(&mut self.rng, 12));
        let h = md5_hex(key.as_bytes());
        self.write(
            &format!("voice2/{}/{}/msg_{key}.amr", &h[0..2], &h[2..4]),
            &bytes,
            time,
        )?;
        self.conn
            .prepare_cached(
                "INSERT INTO voiceinfo (FileName, User, MsgId, NetOffset, FileNowSize, TotalLen, Status, CreateTime, LastModifyTime, ClientId, VoiceLength, MsgLocalId, Human) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?4, 99, ?5, ?5, '', ?6, ?7, ?8)",
            )?
            .execute(params![
                key,
                talker,
                svr_id,
                bytes.len() as i64,
                time / 1000,
                i64::from(duration_ms),
                msg_id,
                sender
            ])?;
        let body = format!(
            "<msg><voicemsg voicelength=\"{duration_ms}\" length=\"{}\" /></msg>",
            bytes.len()
        );
        Ok((body, key))
    }

    /// A received file in `Download/`, its `appattach` row; the name carries the message id
    /// so that no earlier download is overwritten.
    fn file(&mut self, msg_id: i64, time: i64) -> Result<String, SimError> {
        let (stem, ext) = edge::file_name(self.rng.gen_range(0..64));
        let name = format!("{stem}_{msg_id}.{ext}");
        let len = self.rng.gen_range(2_000..40_000);
        let bytes = media::document(&mut self.rng, ext, len);
        self.write(&format!("Download/{name}"), &bytes, time)?;
        self.conn
            .prepare_cached(
                "INSERT INTO appattach (appId, sdkVer, mediaSvrId, mediaId, clientAppDataId, type, totalLen, offset, status, isUpload, createTime, lastModifyTime, fileFullPath, msgInfoId, netTimes, isUseCdn) \
                 VALUES ('', 0, '', '', '', 6, ?1, ?1, 199, 0, ?2, ?2, ?3, ?4, 0, 1)",
            )?
            .execute(params![
                bytes.len() as i64,
                time / 1000,
                format!("{DEVICE_ROOT}Download/{name}"),
                msg_id
            ])?;
        Ok(format!(
            "<msg><appmsg appid=\"\" sdkver=\"0\"><title>{}</title><type>6</type><appattach><totallen>{}</totallen><fileext>{ext}</fileext></appattach></appmsg></msg>",
            edge::xml_escape(&name),
            bytes.len()
        ))
    }
}

/// A group's kind, guessed from its name, for the texts its members write.
fn kind_of(name: &str) -> GroupKind {
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if has(&["班", "家长", "学"]) {
        GroupKind::Education
    } else if has(&["团购", "优惠", "店"]) {
        GroupKind::Ecommerce
    } else if has(&["家"]) {
        GroupKind::Family
    } else if has(&["项目", "工作", "部"]) {
        GroupKind::Work
    } else {
        GroupKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::testkit::{options, test_dir};

    fn continued(name: &str, edge_rate: f64) -> (std::path::PathBuf, Connection) {
        let root = test_dir("wechat-more", name);
        let mut opts = options(root.clone());
        opts.groups = 4;
        opts.messages = 800;
        opts.edge_rate = edge_rate;
        crate::platform::wechat::simulate::simulate_wechat(&opts).unwrap();
        let conn = Connection::open(root.join(DB_FILE)).unwrap();
        (root, conn)
    }

    fn ids(conn: &Connection) -> (i64, i64, i64) {
        conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT msgId), COUNT(msgSvrId) - COUNT(DISTINCT msgSvrId) FROM message",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    #[test]
    fn two_continuations_keep_ids_unique_and_counts_true() {
        let (root, conn) = continued("twice", 0.1);
        let (before, _, _) = ids(&conn);
        let old_max_svr: i64 = conn
            .query_row("SELECT MAX(msgSvrId) FROM message", [], |r| r.get(0))
            .unwrap();
        let newest: i64 = conn
            .query_row(
                "SELECT MAX(createTime) FROM message WHERE typeof(createTime) = 'integer' \
                 AND createTime < 253402300799999 AND talker LIKE '%@chatroom'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        let mut opts = MoreOptions::new(root.clone());
        opts.messages = 300;
        let first = simulate_more_wechat(&opts).unwrap();
        opts.seed += 1;
        let second = simulate_more_wechat(&opts).unwrap();
        let conn = Connection::open(root.join(DB_FILE)).unwrap();
        let (after, distinct, repeated_svr) = ids(&conn);
        assert_eq!(after, distinct, "msgId unique");
        assert_eq!(repeated_svr, 0, "msgSvrId unique");
        let added = first.messages + second.messages;
        let deleted = first.deleted + second.deleted;
        assert_eq!(after, before + added as i64 - deleted as i64);
        assert_eq!((first.recalled, first.deleted), (3, 2));
        assert!(first.joined > 0 && first.new_groups == 1);
        // Every new row is after the old newest time, but the one at the mark.
        let at_or_before: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM message WHERE msgSvrId > ?1 AND createTime <= ?2",
                params![old_max_svr, newest],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            at_or_before <= 2,
            "{at_or_before} new rows at or before the mark"
        );
        let recalls: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM message WHERE content LIKE '%撤回了一条消息'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(recalls >= 6);
    }

    #[test]
    fn what_is_not_a_simulated_account_is_refused() {
        let root = test_dir("wechat-more", "empty");
        std::fs::create_dir_all(&root).unwrap();
        let err = simulate_more_wechat(&MoreOptions::new(root.clone())).unwrap_err();
        assert!(
            err.to_string().contains("not a simulated WeChat account"),
            "{err}"
        );
        Connection::open(root.join(DB_FILE))
            .unwrap()
            .execute_batch("CREATE TABLE message(x)")
            .unwrap();
        let err = simulate_more_wechat(&MoreOptions::new(root)).unwrap_err();
        assert!(err.to_string().contains("no table `chatroom`"), "{err}");
    }
}
