//! Simulated WeChat for Android account directory (`EnMicroMsg.db` plus media
//! cache), laid out as sources.md §1 describes and seeded with edge cases.
//!
//! What a test can rely on (with `edge_rate > 0` and a few hundred messages):
//! - senders never in any member table have wxids starting with [`GHOST_PREFIX`];
//!   senders who left (in `rcontact`, in no `chatroom.memberlist`) start with [`LEFT_PREFIX`];
//! - with 3 or more groups the last group (`groups - 1`) is dissolved: its last
//!   message is the system row [`DISSOLUTION_TEXT`];
//! - group 0's `displayname` has more `、`-separated entries than `memberlist`;
//! - at least one red packet (436207665) sent < 24 h before `now_ms` has fewer
//!   claims than its `totalnum` (in group 0: the planted one below, or without plants, one
//!   of 3 or more parts claimed once, in the first slot 12 h or less before `now_ms`);
//! - with 4 or more groups, what `simulate::plant` describes, group 0 being its group A
//!   (owned by the account holder: the announcement [`plant::notice`] word for word 25 h
//!   before [`plant::dissolve_at`]; a red packet of 5 parts sent 6 h before `now_ms` and
//!   claimed once; a file message whose `appattach.fileFullPath` names a `Download/` file
//!   that is not there, status 101), group 1
//!   its group B (`roomowner` changed to the account holder: the same announcement 23 h
//!   before, a red packet of 3 parts sent 9 h before `now_ms` and claimed 3 times) and group 2
//!   its group T (owned by another member, as every group but 0 and 1 is);
//! - with `members` 40 and 3 or more groups, groups 0, 1, 2 have 39, 40, 41 members;
//! - `appattach.fileFullPath` values escaping the root: [`OUTSIDE_PATHS`];
//! - one full image in `image2/` is a symbolic link to [`SYMLINK_TARGET`];
//! - `Download/` holds an orphan whose name is not UTF-8 (GBK bytes);
//! - written last, in group 0: empty system rows (NULL and `''` content), `createTime`s
//!   of `i64::MAX`, `i64::MIN` and REAL 1e300, and (when group 0 has a member with a
//!   remark and a different nickname) a mention of all their names and a document titled
//!   `<nickname>的简历.pdf`.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::time::Instant;

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use rusqlite::{params, Connection};

use crate::simulate::edge::{self, GroupKind};
use crate::simulate::plant::{self, Schedule};
use crate::simulate::{
    io_error, md5_hex, media, prepare_output_dir, random_digits, random_hex, seeded_rng,
    write_file_at, SimError, SimOptions, SimReport, SimRng, TimeSpread, DAY_MS, HOUR_MS, SECOND_MS,
};

/// The database file inside the account directory.
pub const DB_FILE: &str = "EnMicroMsg.db";
/// Device prefix of `appattach.fileFullPath` (resolve by the part after `MicroMsg/`).
pub const DEVICE_ROOT: &str = "/storage/emulated/0/Android/data/com.tencent.mm/MicroMsg/";
/// Older WeChat versions stored downloads here.
const LEGACY_DEVICE_ROOT: &str = "/storage/emulated/0/tencent/MicroMsg/";
/// Senders that appear in no member table and no `rcontact` row.
pub const GHOST_PREFIX: &str = "wxid_ghost";
/// Former members: in `rcontact`, in no group's `memberlist`.
pub const LEFT_PREFIX: &str = "wxid_left";
/// The system message that ends the dissolved group.
pub const DISSOLUTION_TEXT: &str = "群主已解散该群";
/// Where the planted symbolic link in `image2/` points.
pub const SYMLINK_TARGET: &str = "/etc/hostname";
/// `appattach.fileFullPath` values that point outside the account directory.
pub const OUTSIDE_PATHS: [&str; 3] = [
    "/storage/emulated/0/Android/data/com.tencent.mm/MicroMsg/Download/../../../../../../../../etc/passwd",
    "/etc/passwd",
    "../../etc/passwd",
];
/// Type codes the spec does not list; importers keep them as kind `other`.
pub const UNKNOWN_TYPES: [i64; 6] = [99999, 1_048_625, 10002, 50, 37, 268_445_456];

pub use super::schema::msg_type::{
    APP as TYPE_APP, CARD as TYPE_CARD, EMOJI as TYPE_EMOJI, FILE as TYPE_FILE,
    IMAGE as TYPE_IMAGE, LOCATION as TYPE_LOCATION, PAT as TYPE_PAT, QUOTE as TYPE_QUOTE,
    RED_PACKET as TYPE_RED_PACKET, SYSTEM as TYPE_SYSTEM, TEXT as TYPE_TEXT,
    TRANSFER as TYPE_TRANSFER, VIDEO as TYPE_VIDEO, VOICE as TYPE_VOICE,
};

/// Share of the newest group messages left only in the WAL.
const WAL_SHARE: f64 = 0.02;
/// Share of plain texts that carry planted personal data.
const PII_SHARE: f64 = 0.02;
/// Share of group messages the account owner sends.
const OWNER_SHARE: f64 = 0.12;
/// Messages remembered per group for quotes.
const RECENT_PER_GROUP: usize = 8;
/// Private (one-to-one) chats written besides the groups.
const PRIVATE_CHATS: usize = 3;
/// Random stream for per-message media bytes (offset by the message id).
const MEDIA_STREAM: u64 = 1 << 40;

const SCHEMA: &str = "
CREATE TABLE message ( msgId INTEGER PRIMARY KEY , msgSvrId INTEGER , type INT, status INT, isSend INT, isShowTimer INTEGER, createTime INTEGER, talker TEXT, content TEXT default '' , imgPath TEXT, reserved TEXT, lvbuffer BLOB, transContent TEXT, transBrandWording TEXT, talkerId INTEGER, bizClientMsgId TEXT default '' , bizChatId INTEGER default '-1' , bizChatUserId TEXT default '' , msgSeq INTEGER, flag INT, solitaireFoldInfo BLOB, historyId TEXT);
CREATE TABLE rcontact ( username TEXT default '' PRIMARY KEY , alias TEXT default '' , conRemark TEXT default '' , domainList TEXT default '' , nickname TEXT default '' , pyInitial TEXT default '' , quanPin TEXT default '' , showHead INTEGER default '0' , type INTEGER default '0' , weiboFlag INTEGER default '0' , weiboNickname TEXT default '' , conRemarkPYFull TEXT default '' , conRemarkPYShort TEXT default '' , lvbuff BLOB , verifyFlag INTEGER default '0' , encryptUsername TEXT default '' , chatroomFlag INTEGER , deleteFlag INTEGER default '0' , contactLabelIds TEXT default '' , descWordingId TEXT default '' , openImAppid TEXT , sourceExtInfo TEXT , ticket TEXT default '' , usernameFlag LONG default '0' );
CREATE TABLE chatroom ( chatroomname TEXT default '' PRIMARY KEY , addtime INTEGER , memberlist TEXT , displayname TEXT , chatroomnick TEXT , roomflag INTEGER , roomowner TEXT , roomdata BLOB , isShowname INTEGER , selfDisplayName TEXT , style INTEGER , chatroomdataflag INTEGER , modifytime LONG , chatroomnotice TEXT , chatroomVersion INTEGER , chatroomnoticeEditor TEXT , chatroomnoticePublishTime LONG , chatroomLocalVersion LONG , chatroomStatus INTEGER , memberCount INTEGER , chatroomfamilystatusmodifytime LONG , associateOpenIMRoomName TEXT );
CREATE TABLE userinfo ( id INTEGER PRIMARY KEY, type INT, value TEXT );
CREATE TABLE ImgInfo2 ( id INTEGER PRIMARY KEY, msgSvrId LONG, offset INT, totalLen INT, bigImgPath TEXT, thumbImgPath TEXT, createtime INT, msglocalid INT, status INT, nettimes INT, reserved1 INT, reserved2 INT, reserved3 TEXT, reserved4 TEXT, hashdthumb INT, iscomplete INT, origImgMD5 TEXT, compressType INT, midImgPath TEXT, forwardType INT, hevcPath TEXT, sendImgType INT );
CREATE TABLE voiceinfo ( FileName TEXT PRIMARY KEY, User TEXT, MsgId INT, NetOffset INT, FileNowSize INT, TotalLen INT, Status INT, CreateTime INT, LastModifyTime INT, ClientId TEXT, VoiceLength INT, MsgLocalId INT, Human TEXT, reserved1 INT, reserved2 TEXT, MsgSource TEXT, MsgFlag INT, MsgSeq INT, MasterBufId INT, checksum INT );
CREATE TABLE videoinfo2 ( filename TEXT PRIMARY KEY, clientid TEXT, msgsvrid INT, netoffset INT, filenowsize INT, totallen INT, thumbnetoffset INT, thumblen INT, status INT, createtime INT, lastmodifytime INT, downloadtime INT, videolength INT, msglocalid INT, nettimes INT, cameratype INT, user TEXT, human TEXT, reserved1 INT, reserved2 INT, reserved3 TEXT, reserved4 TEXT, videofuncflag INT, masssendid LONG, masssendlist TEXT, videomd5 TEXT, streamvideo BLOB, statextstr TEXT, downloadscene INT, mmsightextinfo BLOB, preloadsize INT, videoformat INT, forward_msg_local_id INT, msg_uuid TEXT );
CREATE TABLE appattach ( appId TEXT, sdkVer LONG, mediaSvrId TEXT, mediaId TEXT, clientAppDataId TEXT, type LONG, totalLen LONG, offset LONG, status LONG, isUpload INTEGER, createTime LONG, lastModifyTime LONG, fileFullPath TEXT, msgInfoId LONG, netTimes LONG, isUseCdn INTEGER, signature TEXT, fakeAeskey TEXT, fakeSignature TEXT );
CREATE TABLE rconversation ( msgCount INTEGER default '0' , username TEXT default '' PRIMARY KEY , unReadCount INTEGER default '0' , chatmode INTEGER default '0' , status INTEGER default '0' , isSend INTEGER default '0' , conversationTime LONG default '0' , content TEXT default '' , msgType TEXT default '' , customNotify TEXT default '' , showTips INTEGER default '0' , flag LONG default '0' , digest TEXT default '' , digestUser TEXT default '' , hasTrunc INTEGER default '0' , parentRef TEXT , attrflag INTEGER default '0' , editingMsg TEXT default '' , atCount INTEGER default '0' , sightTime LONG default '0' , unReadMuteCount INTEGER default '0' , lastSeq LONG , UnDeliverCount INTEGER , UnReadInvite INTEGER , firstUnDeliverSeq LONG , editingQuoteMsgId LONG default '0' , hasTodo INTEGER default '0' , hbMarkRed INTEGER default '0' , remitMarkRed INTEGER default '0' , hasSpecialFollow INTEGER default '0' );
CREATE TABLE img_flag ( username VARCHAR(40) PRIMARY KEY , imgflag int , lastupdatetime int , reserved1 text , reserved2 text , reserved3 int , reserved4 int );
CREATE TABLE fmessage_conversation ( talker TEXT default '0' PRIMARY KEY , encryptTalker TEXT default '' , displayName TEXT default '' , state INTEGER default '0' , lastModifiedTime LONG default '0' , isNew INTEGER default '0' , addScene INTEGER default '0' , fmsgSysRowId LONG default '0' , fmsgIsSend INTEGER default '0' , fmsgType INTEGER default '0' , fmsgContent TEXT default '' , recvFmsgType INTEGER default '0' , contentFromUsername TEXT default '' , contentNickname TEXT default '' , contentPhoneNumMD5 TEXT default '' , contentFullPhoneNumMD5 TEXT default '' , contentVerifyContent TEXT default '' );
CREATE TABLE BizInfo ( username TEXT PRIMARY KEY , appId TEXT , brandList TEXT default '' , brandListVersion TEXT , brandListContent TEXT , brandFlag INTEGER , extInfo TEXT , brandInfo TEXT , brandIconURL TEXT , updateTime LONG , hadAlert INTEGER , acceptType INTEGER default '0' , type INTEGER default '0' , status INTEGER default '0' , enterpriseFather TEXT , kfWorkerId TEXT , specialType INTEGER , attrSyncVersion TEXT , incrementUpdateTime LONG , bitFlag INTEGER default '0' );
";

const INDEXES: &str = "
CREATE INDEX messageSvrIdIndex ON message ( msgSvrId );
CREATE INDEX messageSendCreateTimeIndex ON message ( status,isSend,createTime );
CREATE INDEX messageCreateTimeIndex ON message ( createTime );
CREATE INDEX messageCreateTaklerTimeIndex ON message ( talker,createTime );
CREATE INDEX messageCreateTaklerTypeTimeIndex ON message ( talker,type,createTime );
CREATE INDEX serverImgInfoIndex ON ImgInfo2 ( msgSvrId );
CREATE INDEX msgInfoIdIndex ON appattach ( msgInfoId );
CREATE INDEX voiceinfoMsgIdIndex ON voiceinfo ( MsgId );
CREATE INDEX videoinfo2MsgLocalIdIndex ON videoinfo2 ( msglocalid );
";

const INSERT_MESSAGE: &str = "INSERT INTO message (msgId, msgSvrId, type, status, isSend, isShowTimer, createTime, talker, content, imgPath, reserved, lvbuffer, transContent, transBrandWording, talkerId, bizClientMsgId, bizChatId, bizChatUserId, msgSeq, flag, solitaireFoldInfo, historyId) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, NULL, NULL, ?12, '', -1, '', ?13, ?14, NULL, NULL)";

/// Writes a simulated WeChat account directory at `opts.out`.
pub fn simulate_wechat(opts: &SimOptions) -> Result<SimReport, SimError> {
    let started = Instant::now();
    opts.validate()?;
    prepare_output_dir(&opts.out)?;
    let db_path = opts.out.join(DB_FILE);
    let conn = Connection::open(&db_path)?;
    // Fixed page size and no journal: reproducible bytes and a fast bulk load.
    conn.execute_batch(
        "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; \
         PRAGMA cache_size=-65536;",
    )?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch("BEGIN")?;

    let mut sim = Simulation::new(opts, conn)?;
    sim.write_contacts()?;
    sim.write_private_chats()?;
    sim.write_group_messages()?;
    sim.write_conversations()?;
    let hard_rows = sim.plant_hard_rows()?;
    sim.conn.execute_batch("COMMIT")?;
    if !sim.indexes_created {
        sim.conn.execute_batch(INDEXES)?;
    }
    let in_wal = sim.in_wal;
    let distinct_members = sim.distinct_members();
    let Simulation {
        conn,
        media_written,
        private_chats,
        group_messages,
        ..
    } = sim;
    let mut media_files = media_written;
    conn.close().map_err(|(_, err)| SimError::Sqlite(err))?;
    if in_wal {
        let wal_path = opts.out.join(format!("{DB_FILE}-wal"));
        crate::simulate::fix_wal_salts(
            &wal_path,
            opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5A17_5A17_5A17_5A17,
        )?;
        // The shared-memory index caches the old salts; SQLite rebuilds it from the WAL.
        let shm_path = opts.out.join(format!("{DB_FILE}-shm"));
        if shm_path.exists() {
            fs::remove_file(&shm_path).map_err(io_error(&shm_path))?;
        }
    }
    if opts.media_files {
        media_files += write_orphans(opts)?;
    }
    Ok(SimReport {
        root: opts.out.clone(),
        platform: "wechat",
        groups: opts.groups,
        private_chats,
        members: distinct_members,
        messages: group_messages,
        hard_rows,
        media_files,
        elapsed: started.elapsed(),
    })
}

/// A row of `rcontact` for a person.
struct Contact {
    username: String,
    alias: Option<String>,
    remark: Option<String>,
    nickname: Option<String>,
    contact_type: i64,
}

impl Contact {
    /// `conRemark` if non-empty, else `nickname`, else the wxid.
    fn display_name(&self) -> &str {
        match (&self.remark, &self.nickname) {
            (Some(remark), _) if !remark.is_empty() => remark,
            (_, Some(nickname)) if !nickname.is_empty() => nickname,
            _ => &self.username,
        }
    }
}

struct Group {
    id: String,
    name: String,
    kind: GroupKind,
    /// Contact indexes; position 0 is the account owner.
    members: Vec<usize>,
    /// Group nickname per member position; empty = none.
    nicknames: Vec<String>,
    room_owner: usize,
    /// Who talks how much, over member positions (the owner has weight 0).
    senders: WeightedIndex<u32>,
    recent: VecDeque<Recent>,
    talker_id: i64,
}

/// A message a later quote may refer to.
struct Recent {
    svr_id: i64,
    sender: String,
    name: String,
    msg_type: i64,
    payload: String,
    create_time: i64,
}

/// Per-talker running state (for `isShowTimer`, `msgSeq`, `rconversation`).
#[derive(Default)]
struct ChatState {
    last_time: i64,
    seq: i64,
    count: i64,
    last_type: i64,
    last_is_send: i64,
    last_content: String,
}

#[derive(Clone)]
enum Sender {
    Owner,
    /// Contact index and member position (None: not in the member list).
    Member(usize, Option<usize>),
    /// A wxid in no table at all.
    Stranger(String),
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Image,
    Voice,
    Video,
    Emoji,
    Location,
    Link,
    File,
    FileApp49,
    Quote,
    QuoteApp49,
    Transfer,
    TransferApp49,
    RedPacket,
    RedPacketApp49,
    /// A red packet sent recently that not everyone claimed.
    UnclaimedRedPacket,
    /// Planted: a recent red packet, claimed partly or fully.
    PlantedRedPacket(Claimed),
    /// Planted: the dissolution announcement, by the account holder.
    Notice,
    /// Planted: a group file never downloaded.
    UndownloadedFile,
    Card,
    Pat,
    Join,
    Recall,
    SystemTemplate,
    Unknown,
    Malformed,
    /// An `appattach` path escaping the root, variant index into [`OUTSIDE_PATHS`].
    OutsideFile(usize),
    /// An image whose full-size file is a symbolic link outside the root.
    SymlinkImage,
}

impl Kind {
    fn is_system(self) -> bool {
        matches!(self, Kind::Join | Kind::Recall | Kind::SystemTemplate)
    }
}

/// Everyday message mix (weights per thousand).
const NORMAL_KINDS: [(Kind, u32); 19] = [
    (Kind::Text, 585),
    (Kind::Image, 110),
    (Kind::Voice, 60),
    (Kind::Video, 20),
    (Kind::Emoji, 60),
    (Kind::Location, 8),
    (Kind::Link, 30),
    (Kind::File, 12),
    (Kind::FileApp49, 8),
    (Kind::Quote, 28),
    (Kind::QuoteApp49, 10),
    (Kind::Transfer, 8),
    (Kind::TransferApp49, 2),
    (Kind::RedPacket, 17),
    (Kind::RedPacketApp49, 3),
    (Kind::Card, 4),
    (Kind::Pat, 5),
    (Kind::Join, 15),
    (Kind::Recall, 15),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edge {
    None,
    NastyText,
    Ghost,
    LeftMember,
    UnknownType,
    Malformed,
    NullContent,
    NullColumns,
    OutOfOrder,
    DuplicateTime,
    MissingFile,
    EmptyFile,
    /// `<wxid>:` without the newline before the payload.
    BrokenPrefix,
}

const EDGES: [(Edge, u32); 12] = [
    (Edge::NastyText, 30),
    (Edge::Ghost, 8),
    (Edge::LeftMember, 6),
    (Edge::UnknownType, 8),
    (Edge::Malformed, 10),
    (Edge::NullContent, 5),
    (Edge::NullColumns, 8),
    (Edge::OutOfOrder, 8),
    (Edge::DuplicateTime, 6),
    (Edge::MissingFile, 5),
    (Edge::EmptyFile, 4),
    (Edge::BrokenPrefix, 2),
];

/// Message content as built, before the sender prefix and edge mutations.
struct Payload {
    msg_type: i64,
    body: Option<String>,
    img_path: Option<String>,
    /// `<atuserlist>` of mentions.
    at_users: Option<String>,
    /// System-like rows that never carry a sender prefix.
    unprefixed: bool,
}

impl Payload {
    fn new(msg_type: i64, body: String) -> Self {
        Payload {
            msg_type,
            body: Some(body),
            img_path: None,
            at_users: None,
            unprefixed: false,
        }
    }

    fn system(body: String) -> Self {
        Payload {
            unprefixed: true,
            ..Payload::new(TYPE_SYSTEM, body)
        }
    }
}

/// Where and when a message is being written.
struct Context {
    talker: String,
    group: Option<usize>,
    time: i64,
    msg_id: i64,
    svr_id: i64,
    sender_wxid: String,
    sender_name: String,
    edge: Edge,
}

/// How a red packet is claimed when that is not drawn at random.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claimed {
    /// At least 3 parts and one claim: the unclaimed packet of a simulation without plants.
    Once,
    /// [`plant::UNCLAIMED_PARTS`] parts, [`plant::UNCLAIMED_CLAIMS`] claims.
    Partly,
    /// [`plant::CLAIMED_PARTS`] parts, every one claimed.
    Fully,
}

/// A planted row (`simulate::plant`) and its group.
#[derive(Clone, Copy, Debug)]
enum Planted {
    Notice(usize),
    RedPacket(usize, Claimed),
    UndownloadedFile(usize),
}

/// A row scheduled for a later slot (red-packet claims).
struct Claim {
    group: usize,
    paymsgid: String,
    claimer: String,
}

struct Simulation<'a> {
    opts: &'a SimOptions,
    conn: Connection,
    rng: SimRng,
    contacts: Vec<Contact>,
    /// Contact indexes of former members.
    left_members: Vec<usize>,
    groups: Vec<Group>,
    chats: BTreeMap<String, ChatState>,
    pending: VecDeque<Claim>,
    next_msg_id: i64,
    svr_counter: u64,
    img_info_id: i64,
    file_name_uses: Vec<u32>,
    last_time: i64,
    media_written: usize,
    private_chats: usize,
    group_messages: usize,
    in_wal: bool,
    indexes_created: bool,
    dissolved_group: Option<usize>,
    /// The planted announcement's text.
    notice: String,
    kind_picker: WeightedIndex<u32>,
    edge_picker: WeightedIndex<u32>,
}

impl<'a> Simulation<'a> {
    fn new(opts: &'a SimOptions, conn: Connection) -> Result<Self, SimError> {
        let weights_error = |err| SimError::InvalidOption(format!("message mix weights: {err}"));
        let kind_picker =
            WeightedIndex::new(NORMAL_KINDS.iter().map(|(_, w)| *w)).map_err(weights_error)?;
        let edge_picker =
            WeightedIndex::new(EDGES.iter().map(|(_, w)| *w)).map_err(weights_error)?;
        Ok(Simulation {
            opts,
            conn,
            rng: seeded_rng(opts.seed, 0),
            contacts: Vec::new(),
            left_members: Vec::new(),
            groups: Vec::new(),
            chats: BTreeMap::new(),
            pending: VecDeque::new(),
            next_msg_id: 0,
            svr_counter: 0,
            img_info_id: 0,
            file_name_uses: vec![0; edge::FILE_NAME_COUNT],
            last_time: opts.now_ms - i64::from(opts.days) * DAY_MS,
            media_written: 0,
            private_chats: 0,
            group_messages: 0,
            in_wal: false,
            indexes_created: false,
            dissolved_group: None,
            notice: plant::notice(opts.seed, opts.now_ms),
            kind_picker,
            edge_picker,
        })
    }

    /// Distinct wxids over all member lists (the owner included).
    fn distinct_members(&self) -> usize {
        let members: std::collections::BTreeSet<usize> = self
            .groups
            .iter()
            .flat_map(|g| g.members.iter().copied())
            .collect();
        members.len()
    }

    fn edges_on(&self) -> bool {
        self.opts.edge_rate > 0.0
    }

    fn owner(&self) -> &Contact {
        &self.contacts[0]
    }

    // ----------------------------------------------------------------- contacts

    fn new_wxid(&mut self, index: usize) -> String {
        if self.rng.gen_bool(0.7) {
            let mut id = String::from("wxid_");
            for _ in 0..14 {
                let digit = self.rng.gen_range(0..36u32);
                id.push(char::from_digit(digit, 36).unwrap_or('0'));
            }
            id
        } else {
            let stem = ["zhang", "li", "wang", "chen", "liu", "lin", "xiao"]
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("user");
            format!("{stem}_{index}{}", self.rng.gen_range(10..99))
        }
    }

    fn new_person(&mut self, index: usize) -> Contact {
        let username = self.new_wxid(index);
        let mut nickname = Some(edge::nickname(&mut self.rng));
        let mut remark = if self.rng.gen_bool(0.25) {
            let name = edge::person_name(&mut self.rng);
            let role = ["", "(房东)", "-同事", "老师", "-快递", "表哥"]
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("");
            Some(format!("{name}{role}"))
        } else {
            Some(String::new())
        };
        let mut alias = if self.rng.gen_bool(0.3) {
            Some(format!("wx_{}", random_digits(&mut self.rng, 8)))
        } else {
            Some(String::new())
        };
        if self.rng.gen_bool(self.opts.edge_rate) {
            match self.rng.gen_range(0..4) {
                0 => nickname = Some(edge::nasty_name(&mut self.rng)),
                1 => remark = Some(edge::nasty_name(&mut self.rng)),
                2 => {
                    nickname = None;
                    alias = None;
                }
                _ => remark = None,
            }
        }
        let contact_type = if self.rng.gen_bool(0.6) { 3 } else { 4 };
        Contact {
            username,
            alias,
            remark,
            nickname,
            contact_type,
        }
    }

    fn write_contacts(&mut self) -> Result<(), SimError> {
        let opts = self.opts;
        let owner_wxid = format!("wxid_{}", random_hex(&mut self.rng, 14));
        self.contacts.push(Contact {
            username: owner_wxid,
            alias: Some("chen_xm88".into()),
            remark: Some(String::new()),
            nickname: Some("陈晓明".into()),
            contact_type: 3,
        });
        let pool = (opts.members * opts.groups * 3 / 4)
            .max(opts.members + 4)
            .min(50_000);
        for index in 1..=pool {
            let person = self.new_person(index);
            self.contacts.push(person);
        }
        if self.edges_on() {
            // Guaranteed nasty names: a one-character name, a formula, a duplicate.
            self.contacts[1].nickname = Some("好".into());
            self.contacts[2].remark = Some("=1+2".into());
            let duplicate = self.contacts[3].nickname.clone();
            self.contacts[4].nickname = duplicate;
        }
        for index in 0..3 {
            let username = format!("{LEFT_PREFIX}{index}_{}", random_hex(&mut self.rng, 6));
            let nickname = Some(edge::nickname(&mut self.rng));
            self.left_members.push(self.contacts.len());
            self.contacts.push(Contact {
                username,
                alias: Some(String::new()),
                remark: Some(String::new()),
                nickname,
                contact_type: 4,
            });
        }
        self.build_groups(pool)?;
        self.insert_contacts()?;
        self.insert_userinfo()?;
        self.write_avatars()
    }

    fn build_groups(&mut self, pool: usize) -> Result<(), SimError> {
        let opts = self.opts;
        for index in 0..opts.groups {
            let kind = GroupKind::ALL[index % GroupKind::ALL.len()];
            let mut name = edge::group_name(&mut self.rng, kind);
            if self.edges_on() && index == 3 {
                name = "=相亲相爱\"一家人\",老家".into();
            }
            if self.edges_on() && index == 5 {
                name = String::new(); // an unnamed group
            }
            let id = format!("{}@chatroom", random_digits(&mut self.rng, 11));
            let low = (opts.members * 4 / 5).max(2);
            let high = (opts.members * 6 / 5).max(low);
            let drawn = self.rng.gen_range(low..=high);
            let size = plant::sized_members(opts, index)
                .unwrap_or(drawn)
                .min(pool + 1);
            let mut members = vec![0usize];
            let picked = rand::seq::index::sample(&mut self.rng, pool, size - 1);
            members.extend(picked.into_iter().map(|p| p + 1));
            let mut nicknames = Vec::with_capacity(members.len());
            for &contact in &members {
                let nick = if self.rng.gen_bool(0.4) {
                    let real = self.contacts[contact].nickname.clone().unwrap_or_default();
                    if self.rng.gen_bool(opts.edge_rate) {
                        edge::nasty_name(&mut self.rng)
                    } else {
                        edge::group_nickname(&mut self.rng, kind, &real)
                    }
                } else {
                    String::new()
                };
                nicknames.push(nick);
            }
            if self.edges_on() && index == 0 && nicknames.len() > 1 {
                // Splitting displayname on 、 now yields more entries than memberlist.
                nicknames[1] = "赵、钱、孙".into();
            }
            let weights: Vec<u32> = (0..members.len())
                .map(|position| {
                    if position == 0 {
                        0
                    } else {
                        // A few members talk a lot, most rarely.
                        let roll: u32 = self.rng.gen_range(1..=100);
                        if roll > 90 {
                            40
                        } else {
                            1 + roll / 15
                        }
                    }
                })
                .collect();
            let senders = if members.len() > 1 {
                WeightedIndex::new(weights)
            } else {
                WeightedIndex::new([1u32])
            }
            .map_err(|err| SimError::InvalidOption(format!("member weights: {err}")))?;
            let drawn_owner = if index == 0 || members.len() < 2 {
                0
            } else {
                members[self.rng.gen_range(1..members.len())]
            };
            // Planted: group 1 (B) is the account holder's too; group 2 (T) stays another's.
            let room_owner = if index == 1 && plant::plants(opts) {
                0
            } else {
                drawn_owner
            };
            self.groups.push(Group {
                id,
                name,
                kind,
                members,
                nicknames,
                room_owner,
                senders,
                recent: VecDeque::new(),
                talker_id: 1000 + index as i64,
            });
        }
        if opts.groups >= 3 && opts.messages > 0 {
            self.dissolved_group = Some(opts.groups - 1);
        }
        Ok(())
    }

    fn insert_contacts(&mut self) -> Result<(), SimError> {
        let now = self.opts.now_ms;
        {
            let mut statement = self.conn.prepare_cached(
                "INSERT INTO rcontact (username, alias, conRemark, nickname, pyInitial, quanPin, showHead, type, verifyFlag, chatroomFlag, deleteFlag) VALUES (?1, ?2, ?3, ?4, '', '', 0, ?5, ?6, ?7, 0)",
            )?;
            for contact in &self.contacts {
                statement.execute(params![
                    contact.username,
                    contact.alias,
                    contact.remark,
                    contact.nickname,
                    contact.contact_type,
                    0,
                    0
                ])?;
            }
            for group in &self.groups {
                statement.execute(params![group.id, "", "", group.name, 3, 0, 1])?;
            }
            // Built-in and official accounts every real database has.
            for (username, nickname, verify) in [
                ("filehelper", "文件传输助手", 0),
                ("weixin", "微信团队", 56),
                ("fmessage", "朋友推荐消息", 0),
                ("medianote", "语音记事本", 0),
                ("gh_3dfda90e39d6", "微信支付", 24),
            ] {
                statement.execute(params![username, "", "", nickname, 3, verify, 0])?;
            }
        }
        {
            let mut statement = self.conn.prepare_cached(
                "INSERT INTO img_flag (username, imgflag, lastupdatetime, reserved1, reserved2, reserved3, reserved4) VALUES (?1, 3, ?2, ?3, ?4, 0, 0)",
            )?;
            for contact in &self.contacts {
                let token = md5_hex(contact.username.as_bytes());
                statement.execute(params![
                    contact.username,
                    now / 1000 - 86_400,
                    format!("https://wx.qlogo.cn/mmhead/ver_1/{token}/0"),
                    format!("https://wx.qlogo.cn/mmhead/ver_1/{token}/132"),
                ])?;
            }
        }
        let dissolved = self.dissolved_group;
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO chatroom (chatroomname, addtime, memberlist, displayname, chatroomnick, roomflag, roomowner, roomdata, isShowname, selfDisplayName, style, chatroomdataflag, modifytime, chatroomnotice, chatroomVersion, chatroomnoticeEditor, chatroomnoticePublishTime, chatroomLocalVersion, chatroomStatus, memberCount, chatroomfamilystatusmodifytime, associateOpenIMRoomName) VALUES (?1, ?2, ?3, ?4, NULL, 0, ?5, NULL, 0, ?6, 0, 0, ?7, ?8, 1, ?9, ?10, 1, 0, ?11, 0, NULL)",
        )?;
        let start = now - i64::from(self.opts.days) * DAY_MS;
        for (index, group) in self.groups.iter().enumerate() {
            let memberlist: Vec<&str> = group
                .members
                .iter()
                .map(|&c| self.contacts[c].username.as_str())
                .collect();
            let (notice, editor, published) = if Some(index) == dissolved {
                (
                    Some("本群即将停止使用，请大家及时保存群文件和聊天记录".to_string()),
                    Some(self.contacts[group.room_owner].username.clone()),
                    Some(start + (now - start) * 6 / 10),
                )
            } else {
                (None, None, None)
            };
            statement.execute(params![
                group.id,
                (start - 90 * DAY_MS) / 1000,
                memberlist.join(";"),
                group.nicknames.join("、"),
                self.contacts[group.room_owner].username,
                group.nicknames[0],
                now - DAY_MS,
                notice,
                editor,
                published,
                group.members.len() as i64,
            ])?;
        }
        Ok(())
    }

    fn insert_userinfo(&mut self) -> Result<(), SimError> {
        let owner = self.owner();
        let rows: [(i64, i64, String); 8] = [
            (1, 0, "1234567890".into()),
            (2, 3, owner.username.clone()),
            (4, 3, owner.nickname.clone().unwrap_or_default()),
            (5, 3, "chenxm@example.cn".into()),
            (6, 3, "13800138000".into()),
            (9, 0, "1234567890".into()),
            (42, 3, owner.alias.clone().unwrap_or_default()),
            (12293, 3, "CN_Shanghai".into()),
        ];
        let mut statement = self
            .conn
            .prepare_cached("INSERT INTO userinfo (id, type, value) VALUES (?1, ?2, ?3)")?;
        for (id, value_type, value) in rows {
            statement.execute(params![id, value_type, value])?;
        }
        Ok(())
    }

    fn write_avatars(&mut self) -> Result<(), SimError> {
        if !self.opts.media_files {
            return Ok(());
        }
        let mut usernames: Vec<String> = Vec::new();
        for (index, contact) in self.contacts.iter().enumerate() {
            // Not everyone's avatar was ever cached.
            if index % 10 != 7 {
                usernames.push(contact.username.clone());
            }
        }
        usernames.extend(self.groups.iter().map(|g| g.id.clone()));
        let mtime = self.opts.now_ms - 2 * DAY_MS;
        for username in usernames {
            let m = md5_hex(username.as_bytes());
            let digest = m.as_bytes();
            let bytes = media::png(8, 8, [digest[0], digest[1], digest[2]]);
            let rel = format!("avatar/{}/{}/user_{m}.png", &m[0..2], &m[2..4]);
            self.write_media(&rel, &bytes, mtime, Edge::None)?;
        }
        Ok(())
    }

    // ----------------------------------------------------------------- messages

    fn alloc_msg_id(&mut self) -> i64 {
        self.next_msg_id += 1;
        self.next_msg_id
    }

    /// Unique 63-bit server ids: an odd multiplier is a bijection mod 2^63.
    fn alloc_svr_id(&mut self) -> i64 {
        self.svr_counter += 1;
        let mixed = (self.svr_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) & (u64::MAX >> 1))
            ^ 0x2545_F491_4F6C_DD1D;
        (mixed & (u64::MAX >> 1)) as i64
    }

    fn write_private_chats(&mut self) -> Result<(), SimError> {
        if self.opts.messages == 0 {
            return Ok(());
        }
        let chats = PRIVATE_CHATS.min(self.contacts.len() - 1);
        let per_chat = (self.opts.messages / 100).clamp(3, 200);
        for chat in 0..chats {
            let contact = 1 + chat * 2 % (self.contacts.len() - 1);
            let talker = self.contacts[contact].username.clone();
            let spread = TimeSpread::new(self.opts.now_ms, self.opts.days, per_chat);
            for slot in 0..per_chat {
                let time = spread.time_of(slot, &mut self.rng);
                let kind = match self.rng.gen_range(0..100) {
                    0..=69 => Kind::Text,
                    70..=79 => Kind::Image,
                    80..=89 => Kind::Voice,
                    90..=94 => Kind::Emoji,
                    95..=97 => Kind::Transfer,
                    _ => Kind::Recall,
                };
                let edge = if kind == Kind::Text && self.rng.gen_bool(self.opts.edge_rate) {
                    Edge::NastyText
                } else {
                    Edge::None
                };
                let sender = if kind.is_system() {
                    Sender::System
                } else if self.rng.gen_bool(0.4) {
                    Sender::Owner
                } else {
                    Sender::Member(contact, None)
                };
                self.emit_message(talker.clone(), None, time, kind, edge, sender)?;
            }
            self.private_chats += 1;
        }
        Ok(())
    }

    /// The (kind, edge) pairs every simulation contains at least once.
    fn forced_kinds(&self) -> Vec<(Kind, Edge)> {
        let mut forced: Vec<(Kind, Edge)> = NORMAL_KINDS
            .iter()
            .map(|(kind, _)| (*kind, Edge::None))
            .collect();
        forced.push((Kind::SystemTemplate, Edge::None));
        if self.edges_on() {
            forced.extend([
                (Kind::Unknown, Edge::UnknownType),
                (Kind::Malformed, Edge::Malformed),
                (Kind::OutsideFile(0), Edge::None),
                (Kind::OutsideFile(1), Edge::None),
                (Kind::OutsideFile(2), Edge::None),
                (Kind::SymlinkImage, Edge::None),
                (Kind::Text, Edge::NastyText),
                (Kind::Text, Edge::Ghost),
                (Kind::Text, Edge::LeftMember),
                (Kind::Text, Edge::NullContent),
                (Kind::Text, Edge::NullColumns),
                (Kind::Text, Edge::OutOfOrder),
                (Kind::Text, Edge::DuplicateTime),
                (Kind::Text, Edge::BrokenPrefix),
                (Kind::Image, Edge::MissingFile),
                (Kind::Voice, Edge::EmptyFile),
            ]);
        }
        forced
    }

    fn write_group_messages(&mut self) -> Result<(), SimError> {
        let opts = self.opts;
        let total = opts.messages;
        if total == 0 {
            return Ok(());
        }
        let spread = TimeSpread::new(opts.now_ms, opts.days, total);
        let wal_from = if opts.wal {
            let in_wal = ((total as f64 * WAL_SHARE).ceil() as usize).max(1);
            total - in_wal.min(total)
        } else {
            usize::MAX
        };
        let dissolve_from = self.dissolved_group.map(|_| total * 7 / 10);
        let mut dissolved = false;
        let forced = self.forced_kinds();
        // Spread the forced rows over the first 60% of the timeline.
        let forced_span = (total * 6 / 10).max(1);
        let mut forced: VecDeque<(usize, Kind, Edge)> = forced
            .iter()
            .enumerate()
            .map(|(k, (kind, edge))| (k * forced_span / forced.len(), *kind, *edge))
            .collect();
        let mut group_weights: Vec<u32> = (0..opts.groups)
            .map(|_| self.rng.gen_range(2..10))
            .collect();
        let mut group_picker = WeightedIndex::new(&group_weights)
            .map_err(|err| SimError::InvalidOption(format!("group weights: {err}")))?;
        let recent_cutoff = opts.now_ms - 12 * HOUR_MS;
        // With plants, the planted one is group 0's unclaimed red packet.
        let mut unclaimed_done = plant::plants(opts);
        let mut plan = self.plan();

        for slot in 0..total {
            if slot == wal_from {
                self.switch_to_wal()?;
            }
            let time = spread.time_of(slot, &mut self.rng);
            self.group_messages += 1;
            if let Some((at, planted)) = plan.next(time) {
                let (group, kind) = match planted {
                    Planted::Notice(g) => (g, Kind::Notice),
                    Planted::RedPacket(g, claimed) => (g, Kind::PlantedRedPacket(claimed)),
                    Planted::UndownloadedFile(g) => (g, Kind::UndownloadedFile),
                };
                let sender = match planted {
                    Planted::Notice(_) => Sender::Owner,
                    Planted::RedPacket(..) => self.pick_sender(group, kind, Edge::None),
                    // Someone else's file, which the account holder never opened.
                    Planted::UndownloadedFile(_) if self.groups[group].members.len() > 1 => {
                        let position = self.groups[group].senders.sample(&mut self.rng);
                        Sender::Member(self.groups[group].members[position], Some(position))
                    }
                    Planted::UndownloadedFile(_) => Sender::Owner,
                };
                let talker = self.groups[group].id.clone();
                self.emit_message(talker, Some(group), at, kind, Edge::None, sender)?;
                continue;
            }
            if let Some(claim) = self.pending.pop_front() {
                self.emit_claim(claim, time)?;
                continue;
            }
            if let (Some(from), Some(group), false) =
                (dissolve_from, self.dissolved_group, dissolved)
            {
                if slot >= from {
                    self.emit_dissolution(group, time)?;
                    dissolved = true;
                    group_weights[group] = 0;
                    group_picker = WeightedIndex::new(&group_weights)
                        .map_err(|err| SimError::InvalidOption(format!("group weights: {err}")))?;
                    continue;
                }
            }
            let mut group = group_picker.sample(&mut self.rng);
            let (kind, edge) = if !unclaimed_done && time >= recent_cutoff {
                unclaimed_done = true;
                // Group 0 is never the dissolved one.
                group = 0;
                (Kind::UnclaimedRedPacket, Edge::None)
            } else if forced.front().is_some_and(|(at, _, _)| *at <= slot) {
                let (_, kind, edge) = forced.pop_front().unwrap_or((0, Kind::Text, Edge::None));
                (kind, edge)
            } else {
                self.pick_kind()?
            };
            let sender = self.pick_sender(group, kind, edge);
            let talker = self.groups[group].id.clone();
            self.emit_message(talker, Some(group), time, kind, edge, sender)?;
        }
        Ok(())
    }

    /// The planted rows (`simulate::plant`): group 0 is A, group 1 is B.
    fn plan(&self) -> Schedule<Planted> {
        if !plant::plants(self.opts) {
            return Schedule::empty();
        }
        let (now, at) = (self.opts.now_ms, plant::dissolve_at(self.opts.now_ms));
        Schedule::new(vec![
            (
                plant::start_ms(self.opts) + plant::UNDOWNLOADED_AFTER_START_MS,
                Planted::UndownloadedFile(0),
            ),
            (at - plant::EARLY_NOTICE_MS, Planted::Notice(0)),
            (at - plant::LATE_NOTICE_MS, Planted::Notice(1)),
            (
                now - plant::CLAIMED_AGO_MS,
                Planted::RedPacket(1, Claimed::Fully),
            ),
            (
                now - plant::UNCLAIMED_AGO_MS,
                Planted::RedPacket(0, Claimed::Partly),
            ),
        ])
    }

    fn pick_kind(&mut self) -> Result<(Kind, Edge), SimError> {
        if self.rng.gen_bool(self.opts.edge_rate) {
            let edge = EDGES[self.edge_picker.sample(&mut self.rng)].0;
            let kind = match edge {
                Edge::NastyText | Edge::BrokenPrefix => Kind::Text,
                Edge::UnknownType => Kind::Unknown,
                Edge::Malformed => Kind::Malformed,
                Edge::MissingFile | Edge::EmptyFile => {
                    *[Kind::Image, Kind::Voice, Kind::Video, Kind::File]
                        .choose(&mut self.rng)
                        .unwrap_or(&Kind::Image)
                }
                _ => self.pick_normal_kind()?,
            };
            Ok((kind, edge))
        } else {
            Ok((self.pick_normal_kind()?, Edge::None))
        }
    }

    fn pick_normal_kind(&mut self) -> Result<Kind, SimError> {
        Ok(NORMAL_KINDS[self.kind_picker.sample(&mut self.rng)].0)
    }

    fn pick_sender(&mut self, group: usize, kind: Kind, edge: Edge) -> Sender {
        if kind.is_system() {
            return Sender::System;
        }
        match edge {
            Edge::Ghost => {
                let ghost = self.rng.gen_range(0..4);
                return Sender::Stranger(format!("{GHOST_PREFIX}{ghost}_x9"));
            }
            Edge::LeftMember if !self.left_members.is_empty() => {
                let left = self.left_members[self.rng.gen_range(0..self.left_members.len())];
                return Sender::Member(left, None);
            }
            _ => {}
        }
        if self.rng.gen_bool(OWNER_SHARE) || self.groups[group].members.len() < 2 {
            return Sender::Owner;
        }
        let position = self.groups[group].senders.sample(&mut self.rng);
        if position == 0 {
            Sender::Owner
        } else {
            Sender::Member(self.groups[group].members[position], Some(position))
        }
    }

    /// Name of a member as shown in a group: group nickname, else display name.
    fn name_in_group(&self, group: usize, position: usize) -> String {
        let group = &self.groups[group];
        let nickname = &group.nicknames[position];
        if nickname.is_empty() {
            self.contacts[group.members[position]]
                .display_name()
                .to_string()
        } else {
            nickname.clone()
        }
    }

    fn sender_identity(&self, group: Option<usize>, sender: &Sender) -> (String, String) {
        match sender {
            Sender::Owner => {
                let name = match group {
                    Some(g) => self.name_in_group(g, 0),
                    None => self.owner().display_name().to_string(),
                };
                (self.owner().username.clone(), name)
            }
            Sender::Member(contact, position) => {
                let name = match (group, position) {
                    (Some(g), Some(p)) => self.name_in_group(g, *p),
                    _ => self.contacts[*contact].display_name().to_string(),
                };
                (self.contacts[*contact].username.clone(), name)
            }
            Sender::Stranger(wxid) => (wxid.clone(), wxid.clone()),
            Sender::System => (String::new(), String::new()),
        }
    }

    fn switch_to_wal(&mut self) -> Result<(), SimError> {
        self.conn.execute_batch("COMMIT")?;
        self.conn.execute_batch(INDEXES)?;
        self.indexes_created = true;
        crate::simulate::keep_writes_in_wal(&self.conn)?;
        self.conn.execute_batch("BEGIN")?;
        self.in_wal = true;
        Ok(())
    }

    fn emit_dissolution(&mut self, group: usize, time: i64) -> Result<(), SimError> {
        let talker = self.groups[group].id.clone();
        let last = self.chats.get(&talker).map_or(time, |c| c.last_time);
        let time = time.max(last + SECOND_MS);
        let msg_id = self.alloc_msg_id();
        let svr_id = self.alloc_svr_id();
        self.insert_row(
            &talker,
            Some(group),
            Row::system(msg_id, svr_id, time, DISSOLUTION_TEXT.to_string()),
        )
    }

    fn emit_claim(&mut self, claim: Claim, time: i64) -> Result<(), SimError> {
        let talker = self.groups[claim.group].id.clone();
        let msg_id = self.alloc_msg_id();
        let svr_id = self.alloc_svr_id();
        let content = format!(
            "<sysmsg type=\"paymsg\"><paymsgid>{}</paymsgid><claimer>{}</claimer></sysmsg>",
            claim.paymsgid, claim.claimer
        );
        self.insert_row(
            &talker,
            Some(claim.group),
            Row::system(msg_id, svr_id, time, content),
        )
    }

    fn emit_message(
        &mut self,
        talker: String,
        group: Option<usize>,
        time: i64,
        kind: Kind,
        edge: Edge,
        sender: Sender,
    ) -> Result<(), SimError> {
        let start = self.opts.now_ms - i64::from(self.opts.days) * DAY_MS;
        let time = match edge {
            Edge::OutOfOrder if time > start + 1 => self.rng.gen_range(start..time - 1),
            Edge::DuplicateTime => self
                .chats
                .get(&talker)
                .map_or(self.last_time, |c| c.last_time),
            _ => time,
        };
        let (sender_wxid, sender_name) = self.sender_identity(group, &sender);
        let msg_id = self.alloc_msg_id();
        let svr_id = self.alloc_svr_id();
        let context = Context {
            talker,
            group,
            time,
            msg_id,
            svr_id,
            sender_wxid,
            sender_name,
            edge,
        };
        let payload = self.build_payload(kind, &context)?;
        let is_owner = matches!(sender, Sender::Owner);
        let is_system = matches!(sender, Sender::System) || payload.unprefixed;
        let mut content = match &payload.body {
            Some(body) if group.is_some() && !is_owner && !is_system => {
                let separator = if edge == Edge::BrokenPrefix { "" } else { "\n" };
                Some(format!("{}:{separator}{body}", context.sender_wxid))
            }
            Some(body) => Some(body.clone()),
            None => None,
        };
        if edge == Edge::NullContent {
            content = None;
        }
        let reserved = match (group, is_owner, is_system) {
            (_, _, true) => None,
            (Some(g), false, false) => Some(format!(
                "<msgsource>{}<silence>0</silence><membercount>{}</membercount></msgsource>",
                payload
                    .at_users
                    .as_ref()
                    .map(|users| format!("<atuserlist>{users}</atuserlist>"))
                    .unwrap_or_default(),
                self.groups[g].members.len()
            )),
            _ => Some("<msgsource />".to_string()),
        };
        let mut row = Row {
            msg_id,
            svr_id: Some(svr_id),
            msg_type: payload.msg_type,
            status: Some(if is_owner {
                2
            } else if is_system {
                4
            } else {
                3
            }),
            is_send: Some(i64::from(is_owner)),
            create_time: time,
            content,
            img_path: payload.img_path.clone(),
            reserved,
            talker_id: None,
            msg_seq: None,
            flag: Some(if is_owner { 2 } else { 0 }),
            show_timer: None,
            nulled: false,
        };
        if edge == Edge::NullColumns {
            row.null_some_columns(&mut self.rng, is_owner);
        }
        self.insert_row(&context.talker, group, row)?;
        if let (Some(g), Some(body)) = (group, payload.body) {
            // The announcement is not quoted: only its own message carries its text.
            if !is_system
                && edge != Edge::Malformed
                && edge != Edge::UnknownType
                && kind != Kind::Notice
            {
                let recent = &mut self.groups[g].recent;
                if recent.len() == RECENT_PER_GROUP {
                    recent.pop_front();
                }
                recent.push_back(Recent {
                    svr_id,
                    sender: context.sender_wxid,
                    name: context.sender_name,
                    msg_type: payload.msg_type,
                    payload: body,
                    create_time: time,
                });
            }
        }
        Ok(())
    }

    fn insert_row(
        &mut self,
        talker: &str,
        group: Option<usize>,
        mut row: Row,
    ) -> Result<(), SimError> {
        let chat = self.chats.entry(talker.to_string()).or_default();
        let show_timer =
            i64::from(chat.count == 0 || row.create_time - chat.last_time > 3 * 60 * SECOND_MS);
        chat.seq += 1;
        chat.count += 1;
        chat.last_time = chat.last_time.max(row.create_time);
        chat.last_type = row.msg_type;
        chat.last_is_send = row.is_send.unwrap_or(0);
        chat.last_content = row
            .content
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        if row.show_timer.is_none() && !row.nulled {
            row.show_timer = Some(show_timer);
        }
        if row.msg_seq.is_none() && !row.nulled {
            row.msg_seq = Some(chat.seq);
        }
        if row.talker_id.is_none() && !row.nulled {
            row.talker_id = Some(match group {
                Some(g) => self.groups[g].talker_id,
                None => 10,
            });
        }
        self.last_time = row.create_time;
        let mut statement = self.conn.prepare_cached(INSERT_MESSAGE)?;
        statement.execute(params![
            row.msg_id,
            row.svr_id,
            row.msg_type,
            row.status,
            row.is_send,
            row.show_timer,
            row.create_time,
            talker,
            row.content,
            row.img_path,
            row.reserved,
            row.talker_id,
            row.msg_seq,
            row.flag,
        ])?;
        Ok(())
    }

    // ----------------------------------------------------------------- payloads

    fn media_rng(&self, msg_id: i64, part: u64) -> SimRng {
        seeded_rng(self.opts.seed, MEDIA_STREAM + (msg_id as u64) * 4 + part)
    }

    /// Writes one media file unless media are off or the edge case says it is
    /// missing; an `EmptyFile` edge writes zero bytes instead.
    /// Rows written last, in group 0 and outside `rconversation`'s summary, so that
    /// earlier rows stay as they were: system rows (10000) with NULL and empty content,
    /// `createTime`s of `i64::MAX`, `i64::MIN` and REAL 1e300 (in that msgId order), and
    /// a member known by a remark whose nickname, alias and group nickname appear in a
    /// mention and whose name is a received document's title (`Download/<name>的简历.pdf`).
    fn plant_hard_rows(&mut self) -> Result<usize, SimError> {
        if self.opts.edge_rate <= 0.0 || self.groups.is_empty() || self.opts.messages == 0 {
            return Ok(0);
        }
        let talker = self.groups[0].id.clone();
        let mut time = self
            .chats
            .get(&talker)
            .map_or(self.last_time, |c| c.last_time);
        let insert = "INSERT INTO message (msgId, msgSvrId, type, status, isSend, createTime, talker, content) \
                      VALUES (?1, ?2, ?3, 3, ?4, ?5, ?6, ?7)";
        let mut planted = 0;
        for content in [None, Some(String::new())] {
            let (msg_id, svr_id) = (self.alloc_msg_id(), self.alloc_svr_id());
            time += SECOND_MS;
            self.conn.execute(
                insert,
                params![msg_id, svr_id, TYPE_SYSTEM, 0, time, talker, content],
            )?;
            planted += 1;
        }
        // A member whose every name differs: remark, nickname, group nickname, alias.
        let named = self.groups[0]
            .members
            .iter()
            .enumerate()
            .skip(1)
            .map(|(position, &c)| (position, &self.contacts[c]))
            .find(|(_, c)| {
                c.remark.as_deref().is_some_and(|r| !r.is_empty())
                    && c.nickname.as_deref().is_some_and(|n| !n.is_empty())
                    && c.remark != c.nickname
            })
            .map(|(position, c)| {
                (
                    c.username.clone(),
                    c.remark.clone().unwrap_or_default(),
                    c.nickname.clone().unwrap_or_default(),
                    c.alias.clone().unwrap_or_default(),
                    self.groups[0]
                        .nicknames
                        .get(position)
                        .cloned()
                        .unwrap_or_default(),
                )
            });
        if let Some((wxid, remark, nickname, alias, group_nickname)) = named {
            let (msg_id, svr_id) = (self.alloc_msg_id(), self.alloc_svr_id());
            time += SECOND_MS;
            let text =
                format!("@{nickname} 你的备注是{remark}，群昵称{group_nickname}，微信号{alias}");
            self.conn.execute(
                insert,
                params![msg_id, svr_id, TYPE_TEXT, 1, time, talker, text],
            )?;
            let (msg_id, svr_id) = (self.alloc_msg_id(), self.alloc_svr_id());
            time += SECOND_MS;
            let name = format!("{nickname}的简历.pdf");
            let bytes = media::document(&mut self.media_rng(msg_id, 3), "pdf", 700);
            self.write_media(&format!("Download/{name}"), &bytes, time, Edge::None)?;
            self.conn.execute(
                "INSERT INTO appattach (appId, sdkVer, mediaSvrId, mediaId, clientAppDataId, type, totalLen, offset, status, isUpload, createTime, lastModifyTime, fileFullPath, msgInfoId, netTimes, isUseCdn, signature, fakeAeskey, fakeSignature) VALUES ('', 0, ?1, '', '', 6, ?2, ?2, 199, 0, ?3, ?3, ?4, ?5, 0, 1, '', '', '')",
                params![svr_id.to_string(), bytes.len() as i64, time, format!("{DEVICE_ROOT}Download/{name}"), msg_id],
            )?;
            let body = format!(
                "<msg><appmsg appid=\"\" sdkver=\"0\"><title>{}</title><type>6</type><appattach><totallen>{}</totallen><fileext>pdf</fileext></appattach></appmsg><fromusername>{wxid}</fromusername></msg>",
                edge::xml_escape(&name),
                bytes.len()
            );
            self.conn.execute(
                insert,
                params![
                    msg_id,
                    svr_id,
                    TYPE_FILE,
                    0,
                    time,
                    talker,
                    format!("{wxid}:\n{body}")
                ],
            )?;
            planted += 2;
        }
        // Times no output can write, in msgId order MAX, MIN, 1e300 (so that SQLite's order
        // and the one-scan spool's, which reads 1e300 as i64::MAX, agree).
        let owner_text = |t: &str| t.to_string();
        for (value, text) in [
            (rusqlite::types::Value::Integer(i64::MAX), "来自很远的未来"),
            (rusqlite::types::Value::Integer(i64::MIN), "来自很远的过去"),
            (rusqlite::types::Value::Real(1e300), "时间是一个太大的数"),
        ] {
            let (msg_id, svr_id) = (self.alloc_msg_id(), self.alloc_svr_id());
            self.conn.execute(
                insert,
                params![
                    msg_id,
                    svr_id,
                    TYPE_TEXT,
                    1,
                    value,
                    talker,
                    owner_text(text)
                ],
            )?;
            planted += 1;
        }
        self.group_messages += planted;
        Ok(planted)
    }

    fn write_media(
        &mut self,
        rel: &str,
        bytes: &[u8],
        time: i64,
        edge: Edge,
    ) -> Result<(), SimError> {
        if !self.opts.media_files || edge == Edge::MissingFile {
            return Ok(());
        }
        let path = self.opts.out.join(rel);
        let data: &[u8] = if edge == Edge::EmptyFile { &[] } else { bytes };
        write_file_at(&path, data, time)?;
        self.media_written += 1;
        Ok(())
    }

    fn build_payload(&mut self, kind: Kind, context: &Context) -> Result<Payload, SimError> {
        match kind {
            Kind::Text => Ok(self.text_payload(context)),
            Kind::Image | Kind::SymlinkImage => {
                self.image_payload(context, kind == Kind::SymlinkImage)
            }
            Kind::Voice => self.voice_payload(context),
            Kind::Video => self.video_payload(context),
            Kind::Emoji => Ok(self.emoji_payload(context)),
            Kind::Location => Ok(self.location_payload()),
            Kind::Link => Ok(self.link_payload(context)),
            Kind::File => self.file_payload(context, TYPE_FILE, None),
            Kind::FileApp49 => self.file_payload(context, TYPE_APP, None),
            Kind::OutsideFile(variant) => self.file_payload(context, TYPE_FILE, Some(variant)),
            Kind::Quote => Ok(self.quote_payload(context, TYPE_QUOTE)),
            Kind::QuoteApp49 => Ok(self.quote_payload(context, TYPE_APP)),
            Kind::Transfer => Ok(self.transfer_payload(context, TYPE_TRANSFER)),
            Kind::TransferApp49 => Ok(self.transfer_payload(context, TYPE_APP)),
            Kind::RedPacket => Ok(self.red_packet_payload(context, TYPE_RED_PACKET, None)),
            Kind::RedPacketApp49 => Ok(self.red_packet_payload(context, TYPE_APP, None)),
            Kind::UnclaimedRedPacket => {
                Ok(self.red_packet_payload(context, TYPE_RED_PACKET, Some(Claimed::Once)))
            }
            Kind::PlantedRedPacket(claimed) => {
                Ok(self.red_packet_payload(context, TYPE_RED_PACKET, Some(claimed)))
            }
            Kind::Notice => Ok(Payload::new(TYPE_TEXT, self.notice.clone())),
            Kind::UndownloadedFile => self.file_payload_as(context, TYPE_FILE, None, false),
            Kind::Card => Ok(self.card_payload()),
            Kind::Pat => Ok(self.pat_payload(context)),
            Kind::Join => Ok(self.join_payload(context)),
            Kind::Recall => Ok(self.recall_payload(context)),
            Kind::SystemTemplate => Ok(self.template_payload(context)),
            Kind::Unknown => Ok(self.unknown_payload(context)),
            Kind::Malformed => Ok(self.malformed_payload(context)),
        }
    }

    fn member_names(&self, group: usize, count: usize) -> Vec<String> {
        let members = self.groups[group].members.len();
        (0..count.min(members))
            .map(|k| self.name_in_group(group, (k * 7 + 1) % members))
            .collect()
    }

    fn text_payload(&mut self, context: &Context) -> Payload {
        let kind = context
            .group
            .map_or(GroupKind::Family, |g| self.groups[g].kind);
        if context.edge == Edge::NastyText {
            let names = context
                .group
                .map(|g| self.member_names(g, 3))
                .unwrap_or_default();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            return Payload::new(TYPE_TEXT, edge::nasty_text(&mut self.rng, &names));
        }
        let roll: f64 = self.rng.gen();
        if roll < PII_SHARE {
            return Payload::new(TYPE_TEXT, edge::text_with_pii(&mut self.rng));
        }
        let line = edge::chat_text(&mut self.rng, kind);
        if let Some(g) = context.group {
            let members = self.groups[g].members.len();
            if roll < PII_SHARE + 0.08 && members > 1 {
                let position = self.rng.gen_range(1..members);
                let name = self.name_in_group(g, position);
                let wxid = self.contacts[self.groups[g].members[position]]
                    .username
                    .clone();
                return Payload {
                    at_users: Some(wxid),
                    ..Payload::new(TYPE_TEXT, format!("{}{line}", edge::mention(&name)))
                };
            }
            if roll < PII_SHARE + 0.1 {
                return Payload {
                    at_users: Some("notify@all".into()),
                    ..Payload::new(TYPE_TEXT, format!("{}{line}", edge::mention("所有人")))
                };
            }
        }
        Payload::new(TYPE_TEXT, line)
    }

    fn image_payload(&mut self, context: &Context, symlink: bool) -> Result<Payload, SimError> {
        let mut media_rng = self.media_rng(context.msg_id, 0);
        let thumb_name = random_hex(&mut media_rng, 32);
        let big_name = if media_rng.gen_bool(0.8) {
            thumb_name.clone()
        } else {
            random_hex(&mut media_rng, 32)
        };
        let thumb_len = media_rng.gen_range(300..2500);
        let big_len = if media_rng.gen_bool(0.01) {
            media_rng.gen_range(90_000..110_000)
        } else {
            media_rng.gen_range(600..6000)
        };
        let thumb = media::jpeg(&mut media_rng, thumb_len);
        let big = media::jpeg(&mut media_rng, big_len);
        let md5 = md5_hex(&big);
        let downloaded = symlink || self.rng.gen_bool(0.85);
        let edge = context.edge;
        let thumb_rel = format!(
            "image2/{}/{}/th_{thumb_name}",
            &thumb_name[0..2],
            &thumb_name[2..4]
        );
        self.write_media(&thumb_rel, &thumb, context.time, edge)?;
        let big_path = if downloaded {
            let big_rel = format!(
                "image2/{}/{}/{big_name}.jpg",
                &big_name[0..2],
                &big_name[2..4]
            );
            if symlink {
                self.write_symlink(&big_rel)?;
            } else {
                self.write_media(&big_rel, &big, context.time, edge)?;
            }
            format!("{big_name}.jpg")
        } else {
            format!("SERVERID://{}", context.svr_id)
        };
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO ImgInfo2 (id, msgSvrId, offset, totalLen, bigImgPath, thumbImgPath, createtime, msglocalid, status, nettimes, reserved1, reserved2, reserved3, reserved4, hashdthumb, iscomplete, origImgMD5, compressType, midImgPath, forwardType, hevcPath, sendImgType) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, 0, 0, '', '', 0, ?9, ?10, 0, '', 0, '', 0)",
        )?;
        self.img_info_id += 1;
        statement.execute(params![
            self.img_info_id,
            context.svr_id,
            if downloaded { big.len() as i64 } else { 0 },
            big.len() as i64,
            big_path,
            format!("th_{thumb_name}"),
            context.time / 1000,
            context.msg_id,
            i64::from(downloaded),
            md5,
        ])?;
        let cdn = random_hex(&mut self.rng, 64);
        let aes = random_hex(&mut self.rng, 32);
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg>\n\t<img aeskey=\"{aes}\" encryver=\"1\" cdnthumbaeskey=\"{aes}\" cdnthumburl=\"{cdn}\" cdnthumblength=\"{}\" cdnthumbheight=\"120\" cdnthumbwidth=\"90\" cdnmidheight=\"0\" cdnmidwidth=\"0\" cdnhdheight=\"0\" cdnhdwidth=\"0\" cdnmidimgurl=\"{cdn}\" length=\"{}\" md5=\"{md5}\" />\n</msg>\n",
            thumb.len(),
            big.len()
        );
        Ok(Payload {
            img_path: Some(format!("THUMBNAIL_DIRPATH://th_{thumb_name}")),
            ..Payload::new(TYPE_IMAGE, body)
        })
    }

    fn write_symlink(&mut self, rel: &str) -> Result<(), SimError> {
        if !self.opts.media_files {
            return Ok(());
        }
        let path = self.opts.out.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        std::os::unix::fs::symlink(SYMLINK_TARGET, &path).map_err(io_error(&path))?;
        self.media_written += 1;
        Ok(())
    }

    fn time_key(time: i64, pattern: &str) -> String {
        chrono::DateTime::from_timestamp_millis(time)
            .map(|t| t.format(pattern).to_string())
            .unwrap_or_default()
    }

    fn voice_payload(&mut self, context: &Context) -> Result<Payload, SimError> {
        let mut media_rng = self.media_rng(context.msg_id, 1);
        let duration_ms: u32 = if media_rng.gen_bool(0.8) {
            media_rng.gen_range(1000..10_000)
        } else {
            media_rng.gen_range(10_000..60_000)
        };
        let silk = media_rng.gen_bool(0.7);
        let bytes = if silk {
            media::silk(&mut media_rng, duration_ms)
        } else {
            media::amr(&mut media_rng, duration_ms)
        };
        // Unique by construction: the message id is part of the key.
        let key = format!(
            "{}{:x}{}",
            Self::time_key(context.time, "%y%m%d%H%M%S"),
            context.msg_id,
            random_hex(&mut media_rng, 6)
        );
        let h = md5_hex(key.as_bytes());
        let rel = format!("voice2/{}/{}/msg_{key}.amr", &h[0..2], &h[2..4]);
        self.write_media(&rel, &bytes, context.time, context.edge)?;
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO voiceinfo (FileName, User, MsgId, NetOffset, FileNowSize, TotalLen, Status, CreateTime, LastModifyTime, ClientId, VoiceLength, MsgLocalId, Human, reserved1, reserved2, MsgSource, MsgFlag, MsgSeq, MasterBufId, checksum) VALUES (?1, ?2, ?3, ?4, ?4, ?4, 99, ?5, ?5, '', ?6, ?7, ?8, 0, '', '', 0, 0, 0, 0)",
        )?;
        statement.execute(params![
            key,
            context.talker,
            context.svr_id,
            bytes.len() as i64,
            context.time / 1000,
            i64::from(duration_ms),
            context.msg_id,
            context.sender_wxid,
        ])?;
        let body = format!(
            "<msg><voicemsg endflag=\"1\" cancelflag=\"0\" forwardflag=\"0\" voiceformat=\"{}\" voicelength=\"{duration_ms}\" length=\"{}\" bufid=\"0\" aeskey=\"{}\" voiceid=\"{}\" fromusername=\"{}\" /></msg>",
            if silk { 4 } else { 0 },
            bytes.len(),
            random_hex(&mut self.rng, 32),
            random_hex(&mut self.rng, 24),
            context.sender_wxid
        );
        Ok(Payload {
            img_path: Some(key),
            ..Payload::new(TYPE_VOICE, body)
        })
    }

    fn video_payload(&mut self, context: &Context) -> Result<Payload, SimError> {
        let mut media_rng = self.media_rng(context.msg_id, 2);
        let play_seconds: u32 = media_rng.gen_range(3..60);
        let len = if media_rng.gen_bool(0.02) {
            media_rng.gen_range(90_000..120_000)
        } else {
            media_rng.gen_range(2_000..16_000)
        };
        let video = media::mp4(&mut media_rng, len);
        let thumb_len = media_rng.gen_range(500..3000);
        let thumb = media::jpeg(&mut media_rng, thumb_len);
        let md5 = md5_hex(&video);
        let key = format!(
            "{}{}{:x}",
            Self::time_key(context.time, "%y%m%d%H%M"),
            random_hex(&mut media_rng, 10),
            context.msg_id
        );
        // Some videos were never downloaded: only the thumbnail exists.
        let downloaded = self.rng.gen_bool(0.9);
        if downloaded {
            self.write_media(
                &format!("video/{key}.mp4"),
                &video,
                context.time,
                context.edge,
            )?;
        }
        self.write_media(
            &format!("video/{key}.jpg"),
            &thumb,
            context.time,
            context.edge,
        )?;
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO videoinfo2 (filename, clientid, msgsvrid, netoffset, filenowsize, totallen, thumbnetoffset, thumblen, status, createtime, lastmodifytime, downloadtime, videolength, msglocalid, nettimes, cameratype, user, human, reserved1, reserved2, reserved3, reserved4, videofuncflag, masssendid, masssendlist, videomd5, streamvideo, statextstr, downloadscene, mmsightextinfo, preloadsize, videoformat, forward_msg_local_id, msg_uuid) VALUES (?1, '', ?2, ?3, ?3, ?4, ?5, ?5, ?6, ?7, ?7, ?7, ?8, ?9, 0, 0, ?10, ?11, 0, 0, '', '', 0, 0, '', ?12, NULL, '', 0, NULL, 0, 1, 0, '')",
        )?;
        statement.execute(params![
            key,
            context.svr_id,
            if downloaded { video.len() as i64 } else { 0 },
            video.len() as i64,
            thumb.len() as i64,
            if downloaded { 199 } else { 102 },
            context.time / 1000,
            i64::from(play_seconds),
            context.msg_id,
            context.talker,
            context.sender_wxid,
            md5,
        ])?;
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg>\n\t<videomsg aeskey=\"{}\" cdnthumbaeskey=\"{}\" cdnvideourl=\"{}\" cdnthumburl=\"{}\" length=\"{}\" playlength=\"{play_seconds}\" cdnthumblength=\"{}\" cdnthumbwidth=\"224\" cdnthumbheight=\"398\" fromusername=\"{}\" md5=\"{md5}\" newmd5=\"{}\" isplaceholder=\"0\" rawmd5=\"\" rawlength=\"0\" cdnrawvideourl=\"\" cdnrawvideoaeskey=\"\" overwritenewmsgid=\"0\" originsourcemd5=\"\" isad=\"0\" />\n</msg>\n",
            random_hex(&mut self.rng, 32),
            random_hex(&mut self.rng, 32),
            random_hex(&mut self.rng, 64),
            random_hex(&mut self.rng, 64),
            video.len(),
            thumb.len(),
            context.sender_wxid,
            random_hex(&mut self.rng, 32),
        );
        Ok(Payload {
            img_path: Some(key),
            ..Payload::new(TYPE_VIDEO, body)
        })
    }

    fn emoji_payload(&mut self, context: &Context) -> Payload {
        let md5 = random_hex(&mut self.rng, 32);
        let len = self.rng.gen_range(2_000..400_000);
        let body = format!(
            "<msg><emoji fromusername=\"{}\" tousername=\"{}\" type=\"2\" idbuffer=\"media:0_0\" md5=\"{md5}\" len=\"{len}\" productid=\"\" androidmd5=\"{md5}\" androidlen=\"{len}\" s60v3md5=\"{md5}\" s60v3len=\"{len}\" cdnurl=\"http://wxapp.tc.qq.com/262/20304/stodownload?m={md5}&amp;filekey={md5}&amp;hy=SH&amp;storeid=32303232&amp;bizid=1023\" designerid=\"\" thumburl=\"\" width=\"240\" height=\"240\" ></emoji></msg>",
            context.sender_wxid, context.talker
        );
        Payload::new(TYPE_EMOJI, body)
    }

    fn location_payload(&mut self) -> Payload {
        const PLACES: [(&str, &str, f64, f64); 4] = [
            (
                "上海市黄浦区人民大道200号",
                "人民广场",
                31.230416,
                121.473701,
            ),
            ("北京市东城区东长安街", "天安门广场", 39.903740, 116.397827),
            (
                "广东省深圳市南山区深南大道10000号",
                "腾讯大厦",
                22.540503,
                113.934528,
            ),
            (
                "四川省成都市武侯区\"锦里\"古街",
                "锦里 & 武侯祠",
                30.646100,
                104.047700,
            ),
        ];
        let (label, poi, x, y) = PLACES[self.rng.gen_range(0..PLACES.len())];
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg>\n\t<location x=\"{x:.6}\" y=\"{y:.6}\" scale=\"15\" label=\"{}\" maptype=\"roadmap\" poiname=\"{}\" poiid=\"qqmap_{}\" />\n</msg>\n",
            edge::xml_escape(label),
            edge::xml_escape(poi),
            random_digits(&mut self.rng, 19)
        );
        Payload::new(TYPE_LOCATION, body)
    }

    fn link_payload(&mut self, context: &Context) -> Payload {
        const TITLES: [&str; 5] = [
            "一文读懂《个人信息保护法》",
            "班级通知：下周一期中考试安排",
            "今日特价水果清单 & 配送说明",
            "重磅！微信群聊天记录怎样迁移？",
            "<转发> 这些\"养生\"谣言别再信了",
        ];
        let title = TITLES[self.rng.gen_range(0..TITLES.len())];
        let url = format!(
            "https://mp.weixin.qq.com/s?__biz=MzA{}==&amp;mid={}&amp;idx=1&amp;sn={}&amp;chksm={}#rd",
            random_hex(&mut self.rng, 12),
            random_digits(&mut self.rng, 10),
            random_hex(&mut self.rng, 32),
            random_hex(&mut self.rng, 16)
        );
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg>\n\t<appmsg appid=\"\" sdkver=\"0\">\n\t\t<title>{}</title>\n\t\t<des>点击查看详情</des>\n\t\t<action />\n\t\t<type>5</type>\n\t\t<showtype>0</showtype>\n\t\t<url>{url}</url>\n\t\t<thumburl>https://mmbiz.qpic.cn/mmbiz_jpg/{}/0?wx_fmt=jpeg</thumburl>\n\t\t<sourceusername>gh_{}</sourceusername>\n\t\t<sourcedisplayname>公众号</sourcedisplayname>\n\t</appmsg>\n\t<fromusername>{}</fromusername>\n\t<scene>0</scene>\n\t<appinfo>\n\t\t<version>1</version>\n\t\t<appname></appname>\n\t</appinfo>\n\t<commenturl></commenturl>\n</msg>\n",
            edge::xml_escape(title),
            random_hex(&mut self.rng, 24),
            random_hex(&mut self.rng, 12),
            context.sender_wxid
        );
        Payload::new(TYPE_APP, body)
    }

    fn unique_file_name(&mut self) -> (String, &'static str) {
        let index = self.rng.gen_range(0..edge::FILE_NAME_COUNT);
        let (stem, extension) = edge::file_name(index);
        let uses = self.file_name_uses[index];
        self.file_name_uses[index] += 1;
        // WeChat saves a second file of the same name as `name(1).ext`.
        let name = if uses == 0 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}({uses}).{extension}")
        };
        (name, extension)
    }

    fn file_payload(
        &mut self,
        context: &Context,
        msg_type: i64,
        outside: Option<usize>,
    ) -> Result<Payload, SimError> {
        self.file_payload_as(context, msg_type, outside, true)
    }

    /// A file message; with `may_download` false the file is never downloaded.
    fn file_payload_as(
        &mut self,
        context: &Context,
        msg_type: i64,
        outside: Option<usize>,
        may_download: bool,
    ) -> Result<Payload, SimError> {
        let mut media_rng = self.media_rng(context.msg_id, 3);
        let (name, extension) = match outside {
            Some(_) => ("passwd".to_string(), ""),
            None => self.unique_file_name(),
        };
        let len = if media_rng.gen_bool(0.02) {
            media_rng.gen_range(80_000..120_000)
        } else {
            media_rng.gen_range(200..10_000)
        };
        let bytes = media::document(&mut media_rng, extension, len);
        let md5 = md5_hex(&bytes);
        let (device_path, downloaded) = match outside {
            Some(variant) => (
                OUTSIDE_PATHS[variant % OUTSIDE_PATHS.len()].to_string(),
                false,
            ),
            None => {
                let root = if self.rng.gen_bool(0.15) {
                    LEGACY_DEVICE_ROOT
                } else {
                    DEVICE_ROOT
                };
                let downloaded = self.rng.gen_bool(0.9) && may_download;
                (format!("{root}Download/{name}"), downloaded)
            }
        };
        if downloaded {
            self.write_media(
                &format!("Download/{name}"),
                &bytes,
                context.time,
                context.edge,
            )?;
        }
        let attach_id = format!("@cdn_{}_1", random_hex(&mut self.rng, 40));
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO appattach (appId, sdkVer, mediaSvrId, mediaId, clientAppDataId, type, totalLen, offset, status, isUpload, createTime, lastModifyTime, fileFullPath, msgInfoId, netTimes, isUseCdn, signature, fakeAeskey, fakeSignature) VALUES ('', 0, ?1, ?2, '', 6, ?3, ?4, ?5, 0, ?6, ?6, ?7, ?8, 0, 1, '', '', '')",
        )?;
        statement.execute(params![
            context.svr_id.to_string(),
            attach_id,
            bytes.len() as i64,
            if downloaded { bytes.len() as i64 } else { 0 },
            if downloaded { 199 } else { 101 },
            context.time,
            device_path,
            context.msg_id,
        ])?;
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg>\n\t<appmsg appid=\"\" sdkver=\"0\">\n\t\t<title>{}</title>\n\t\t<des></des>\n\t\t<action></action>\n\t\t<type>6</type>\n\t\t<showtype>0</showtype>\n\t\t<content></content>\n\t\t<url></url>\n\t\t<appattach>\n\t\t\t<totallen>{}</totallen>\n\t\t\t<attachid>{attach_id}</attachid>\n\t\t\t<fileext>{extension}</fileext>\n\t\t\t<aeskey>{}</aeskey>\n\t\t</appattach>\n\t\t<md5>{md5}</md5>\n\t</appmsg>\n\t<fromusername>{}</fromusername>\n\t<scene>0</scene>\n\t<appinfo>\n\t\t<version>1</version>\n\t\t<appname></appname>\n\t</appinfo>\n\t<commenturl></commenturl>\n</msg>\n",
            edge::xml_escape(&name),
            bytes.len(),
            random_hex(&mut self.rng, 32),
            context.sender_wxid
        );
        Ok(Payload::new(msg_type, body))
    }

    fn quote_payload(&mut self, context: &Context, msg_type: i64) -> Payload {
        let kind = context
            .group
            .map_or(GroupKind::Other, |g| self.groups[g].kind);
        let reply = edge::chat_text(&mut self.rng, kind);
        let recent_len = context.group.map_or(0, |g| self.groups[g].recent.len());
        let pick = if recent_len > 0 {
            self.rng.gen_range(0..recent_len)
        } else {
            0
        };
        let quoted = context.group.and_then(|g| self.groups[g].recent.get(pick));
        let Some(quoted) = quoted else {
            return Payload::new(TYPE_TEXT, reply);
        };
        let body = format!(
            "<msg>\n\t<appmsg appid=\"\" sdkver=\"0\">\n\t\t<title>{}</title>\n\t\t<des />\n\t\t<action />\n\t\t<type>57</type>\n\t\t<showtype>0</showtype>\n\t\t<content />\n\t\t<url />\n\t\t<appattach>\n\t\t\t<totallen>0</totallen>\n\t\t\t<attachid />\n\t\t\t<fileext />\n\t\t</appattach>\n\t\t<refermsg>\n\t\t\t<type>{}</type>\n\t\t\t<svrid>{}</svrid>\n\t\t\t<fromusr>{}</fromusr>\n\t\t\t<chatusr>{}</chatusr>\n\t\t\t<displayname>{}</displayname>\n\t\t\t<content>{}</content>\n\t\t\t<createtime>{}</createtime>\n\t\t</refermsg>\n\t</appmsg>\n\t<fromusername>{}</fromusername>\n\t<scene>0</scene>\n\t<appinfo>\n\t\t<version>1</version>\n\t\t<appname />\n\t</appinfo>\n\t<commenturl />\n</msg>\n",
            edge::xml_escape(&reply),
            quoted.msg_type,
            quoted.svr_id,
            context.talker,
            quoted.sender,
            edge::xml_escape(&edge::xml_safe(&quoted.name)),
            edge::xml_escape(&edge::xml_safe(&quoted.payload)),
            quoted.create_time / 1000,
            context.sender_wxid
        );
        Payload::new(msg_type, body)
    }

    fn transfer_payload(&mut self, context: &Context, msg_type: i64) -> Payload {
        let fen: u64 = if self.rng.gen_bool(0.1) {
            self.rng.gen_range(100_000..1_000_000)
        } else {
            self.rng.gen_range(100..50_000)
        };
        let yuan = fen / 100;
        // Amounts of 1000 yuan and more are shown with a thousands separator.
        let amount = if yuan >= 1000 {
            format!("{},{:03}.{:02}", yuan / 1000, yuan % 1000, fen % 100)
        } else {
            format!("{yuan}.{:02}", fen % 100)
        };
        let secs = context.time / 1000;
        let memo = ["", "货款", "团购水果", "班费", "AA饭钱", "报销"][self.rng.gen_range(0..6)];
        let receiver = match context.group {
            Some(g) if self.groups[g].members.len() > 1 => {
                let position = self.rng.gen_range(1..self.groups[g].members.len());
                self.contacts[self.groups[g].members[position]]
                    .username
                    .clone()
            }
            _ => self.owner().username.clone(),
        };
        let body = format!(
            "<msg>\n<appmsg appid=\"\" sdkver=\"\">\n<title><![CDATA[微信转账]]></title>\n<des><![CDATA[收到转账{amount}元。如需收钱，请点此升级至最新版本]]></des>\n<action></action>\n<type>2000</type>\n<content><![CDATA[]]></content>\n<url><![CDATA[https://support.weixin.qq.com/cgi-bin/mmsupport-bin/readtemplate?t=page/common_page__upgrade&text=text001&btn_text=btn_text_0]]></url>\n<wcpayinfo>\n<paysubtype>{}</paysubtype>\n<feedesc><![CDATA[¥{amount}]]></feedesc>\n<transcationid><![CDATA[{}]]></transcationid>\n<transferid><![CDATA[{}]]></transferid>\n<invalidtime><![CDATA[{}]]></invalidtime>\n<begintransfertime><![CDATA[{secs}]]></begintransfertime>\n<effectivedate><![CDATA[1]]></effectivedate>\n<pay_memo><![CDATA[{memo}]]></pay_memo>\n<receiver_username><![CDATA[{receiver}]]></receiver_username>\n</wcpayinfo>\n</appmsg>\n</msg>",
            if self.rng.gen_bool(0.7) { 1 } else { 3 },
            random_hex(&mut self.rng, 28),
            random_digits(&mut self.rng, 28),
            secs + 86_400,
        );
        Payload::new(msg_type, body)
    }

    fn red_packet_payload(
        &mut self,
        context: &Context,
        msg_type: i64,
        forced: Option<Claimed>,
    ) -> Payload {
        let Some(group) = context.group else {
            return Payload::new(TYPE_TEXT, "[红包]".into());
        };
        let members = self.groups[group].members.len();
        let total: usize = self.rng.gen_range(1..=6usize.min(members).max(1));
        let total = match forced {
            Some(Claimed::Once) => total.max(3),
            Some(Claimed::Partly) => plant::UNCLAIMED_PARTS as usize,
            Some(Claimed::Fully) => (plant::CLAIMED_PARTS as usize).min(members),
            None => total,
        };
        let recent = context.time > self.opts.now_ms - DAY_MS;
        let claims = if forced == Some(Claimed::Once) {
            1
        } else if forced == Some(Claimed::Partly) {
            plant::UNCLAIMED_CLAIMS
        } else if forced == Some(Claimed::Fully) || msg_type == TYPE_APP {
            total
        } else {
            // Recent packets are often still open; old ones sometimes expired with money left.
            let open_share = if recent { 0.5 } else { 0.15 };
            if self.rng.gen_bool(open_share) {
                self.rng.gen_range(0..total)
            } else {
                total
            }
        };
        let paymsgid = format!(
            "1000039{}{:012}",
            Self::time_key(context.time, "%Y%m%d"),
            context.msg_id
        );
        let candidates: Vec<usize> = (0..members).collect();
        let claimers: Vec<usize> = candidates
            .choose_multiple(&mut self.rng, claims.min(members))
            .copied()
            .collect();
        for position in claimers {
            let claimer = self.contacts[self.groups[group].members[position]]
                .username
                .clone();
            self.pending.push_back(Claim {
                group,
                paymsgid: paymsgid.clone(),
                claimer,
            });
        }
        let wish = [
            "恭喜发财，大吉大利",
            "辛苦了",
            "新年快乐🧧",
            "拼单返现",
            "班费结余",
        ][self.rng.gen_range(0..5)];
        // Real payloads wrap most values in CDATA; some parsers only expect plain text.
        let paymsgid_xml = if forced.is_none() && self.rng.gen_bool(0.2) {
            format!("<![CDATA[{paymsgid}]]>")
        } else {
            paymsgid.clone()
        };
        let sign = random_hex(&mut self.rng, 32);
        let body = format!(
            "<msg>\n<appmsg appid=\"\" sdkver=\"\">\n<des><![CDATA[我给你发了一个红包，赶紧去拆!]]></des>\n<url><![CDATA[https://wxapp.tenpay.com/mmpayhb/wxhb_personalreceive?showwxpaytitle=1&msgtype=1&channelid=1&sendid={paymsgid}&ver=6&sign={sign}]]></url>\n<lowurl></lowurl>\n<type>2001</type>\n<title><![CDATA[微信红包]]></title>\n<thumburl><![CDATA[https://wx.gtimg.com/hongbao/1800/hb.png]]></thumburl>\n<wcpayinfo>\n<templateid><![CDATA[{}]]></templateid>\n<iconurl><![CDATA[https://wx.gtimg.com/hongbao/1800/hb.png]]></iconurl>\n<receivertitle><![CDATA[{wish}]]></receivertitle>\n<sendertitle><![CDATA[{wish}]]></sendertitle>\n<scenetext><![CDATA[微信红包]]></scenetext>\n<senderdes><![CDATA[查看红包]]></senderdes>\n<receiverdes><![CDATA[领取红包]]></receiverdes>\n<nativeurl><![CDATA[wxpay://c2cbizmessagehandler/hongbao/receivehongbao?msgtype=1&channelid=1&sendid={paymsgid}&sendusername={}&ver=6&sign={sign}]]></nativeurl>\n<sceneid><![CDATA[1002]]></sceneid>\n<innertype><![CDATA[0]]></innertype>\n<paymsgid>{paymsgid_xml}</paymsgid>\n<invalidtime><![CDATA[{}]]></invalidtime>\n<totalnum>{total}</totalnum>\n</wcpayinfo>\n</appmsg>\n<fromusername><![CDATA[{}]]></fromusername>\n</msg>",
            random_hex(&mut self.rng, 32),
            context.sender_wxid,
            context.time / 1000 + 86_400,
            context.sender_wxid,
        );
        Payload::new(msg_type, body)
    }

    fn card_payload(&mut self) -> Payload {
        let contact = self.rng.gen_range(1..self.contacts.len());
        let person = &self.contacts[contact];
        let body = format!(
            "<?xml version=\"1.0\"?>\n<msg bigheadimgurl=\"\" smallheadimgurl=\"\" username=\"{}\" nickname=\"{}\" fullpy=\"\" shortpy=\"\" alias=\"{}\" imagestatus=\"3\" scene=\"17\" province=\"上海\" city=\"中国\" sign=\"\" sex=\"1\" certflag=\"0\" certinfo=\"\" brandIconUrl=\"\" brandHomeUrl=\"\" brandSubscriptConfigUrl=\"\" brandFlags=\"0\" regionCode=\"CN_Shanghai\" />\n",
            person.username,
            edge::xml_escape(&edge::xml_safe(person.nickname.as_deref().unwrap_or(""))),
            edge::xml_escape(person.alias.as_deref().unwrap_or("")),
        );
        Payload::new(TYPE_CARD, body)
    }

    fn pat_payload(&mut self, context: &Context) -> Payload {
        let (patted_wxid, patted_name) = match context.group {
            Some(g) if self.groups[g].members.len() > 1 => {
                let position = self.rng.gen_range(1..self.groups[g].members.len());
                (
                    self.contacts[self.groups[g].members[position]]
                        .username
                        .clone(),
                    self.name_in_group(g, position),
                )
            }
            _ => (self.owner().username.clone(), "我".to_string()),
        };
        let title = edge::xml_safe(&format!(
            "\"{}\" 拍了拍 \"{}\"",
            context.sender_name, patted_name
        ));
        let body = format!(
            "<msg><appmsg appid=\"\" sdkver=\"0\"><title><![CDATA[{}]]></title><des></des><type>62</type><patMsg><chatUser>{}</chatUser><records><record><fromUser>{}</fromUser><pattedUser>{patted_wxid}</pattedUser><templete><![CDATA[\"${{{}}}\" 拍了拍 \"${{{patted_wxid}}}\"]]></templete><createTime>{}</createTime></record></records></patMsg></appmsg></msg>",
            title.replace("]]>", "]] >"),
            context.talker,
            context.sender_wxid,
            context.sender_wxid,
            context.time / 1000
        );
        Payload::new(TYPE_PAT, body)
    }

    fn join_payload(&mut self, context: &Context) -> Payload {
        let Some(g) = context.group else {
            return Payload::system("你已添加了对方，现在可以开始聊天了。".into());
        };
        let members = self.groups[g].members.len();
        if members < 3 {
            return Payload::system("你邀请\"新成员\"加入了群聊".into());
        }
        let inviter = self.rng.gen_range(1..members);
        let invitee = self.rng.gen_range(1..members);
        let inviter_name = self.name_in_group(g, inviter);
        let invitee_name = self.name_in_group(g, invitee);
        let text = match self.rng.gen_range(0..4) {
            0 => format!("你邀请\"{invitee_name}\"加入了群聊"),
            1 => format!("\"{invitee_name}\"通过扫描\"{inviter_name}\"分享的二维码加入群聊"),
            2 => {
                let other = self.name_in_group(g, (invitee + 1) % members);
                format!("\"{inviter_name}\"邀请\"{invitee_name}、{other}\"加入了群聊")
            }
            _ => format!("\"{inviter_name}\"邀请\"{invitee_name}\"加入了群聊"),
        };
        Payload::system(text)
    }

    fn recall_payload(&mut self, context: &Context) -> Payload {
        if self.rng.gen_bool(0.15) {
            return Payload::system("你撤回了一条消息".into());
        }
        let name = match context.group {
            Some(g) if self.groups[g].members.len() > 1 => {
                let position = self.rng.gen_range(1..self.groups[g].members.len());
                self.name_in_group(g, position)
            }
            Some(_) => "群成员".to_string(),
            None => self
                .contacts
                .iter()
                .find(|c| c.username == context.talker)
                .map_or_else(|| context.talker.clone(), |c| c.display_name().to_string()),
        };
        Payload::system(format!("\"{name}\"撤回了一条消息"))
    }

    fn template_payload(&mut self, context: &Context) -> Payload {
        let Some(g) = context.group else {
            return Payload::system("以上是打招呼的内容".into());
        };
        let members = self.groups[g].members.len();
        let inviter = if members > 1 {
            self.rng.gen_range(1..members)
        } else {
            0
        };
        let invitee = if members > 1 {
            self.rng.gen_range(1..members)
        } else {
            0
        };
        let member_xml = |sim: &Self, position: usize| {
            format!(
                "<member><username><![CDATA[{}]]></username><nickname><![CDATA[{}]]></nickname></member>",
                sim.contacts[sim.groups[g].members[position]].username,
                edge::xml_safe(&sim.name_in_group(g, position)).replace("]]>", "]] >")
            )
        };
        let body = format!(
            "<sysmsg type=\"sysmsgtemplate\"><sysmsgtemplate><content_template type=\"tmpl_type_profile\"><plain><![CDATA[]]></plain><template><![CDATA[\"$username$\"邀请\"$names$\"加入了群聊]]></template><link_list><link name=\"username\" type=\"link_profile\"><memberlist>{}</memberlist></link><link name=\"names\" type=\"link_profile\"><memberlist>{}</memberlist><separator><![CDATA[、]]></separator></link></link_list></content_template></sysmsgtemplate></sysmsg>",
            member_xml(self, inviter),
            member_xml(self, invitee)
        );
        Payload::system(body)
    }

    fn unknown_payload(&mut self, context: &Context) -> Payload {
        let code = UNKNOWN_TYPES[self.rng.gen_range(0..UNKNOWN_TYPES.len())];
        let body = match code {
            1_048_625 => format!(
                "<msg><appmsg appid=\"wx{}\" sdkver=\"0\"><title>帮我砍一刀！</title><type>33</type><url>https://mp.weixin.qq.com/mp/waerrpage?appid=wx123&amp;type=upgrade</url><weappinfo><username><![CDATA[gh_{}@app]]></username><pagepath><![CDATA[pages/index.html?a=1&b=2]]></pagepath></weappinfo></appmsg></msg>",
                random_hex(&mut self.rng, 16),
                random_hex(&mut self.rng, 12)
            ),
            10002 => {
                return Payload {
                    unprefixed: true,
                    ..Payload::new(
                        code,
                        format!(
                            "<sysmsg type=\"revokemsg\"><revokemsg><session>{}</session><msgid>{}</msgid><newmsgid>{}</newmsgid><replacemsg><![CDATA[\"{}\" 撤回了一条消息]]></replacemsg></revokemsg></sysmsg>",
                            context.talker,
                            random_digits(&mut self.rng, 10),
                            context.svr_id,
                            edge::xml_safe(&context.sender_name).replace("]]>", "]] >")
                        ),
                    )
                };
            }
            50 => "<voipmsg type=\"VoIPBubbleMsg\"><VoIPBubbleMsg><msg><![CDATA[通话时长 00:12]]></msg><room_type>1</room_type></VoIPBubbleMsg></voipmsg>".to_string(),
            37 => format!(
                "<msg fromusername=\"{}\" encryptusername=\"v1_{}@stranger\" fromnickname=\"{}\" content=\"我是群聊的成员\" />",
                context.sender_wxid,
                random_hex(&mut self.rng, 32),
                edge::xml_escape(&edge::xml_safe(&context.sender_name))
            ),
            268_445_456 => "该类型消息暂不支持，请在手机上查看".to_string(),
            _ => "<msg><unknown version=\"2\">当前版本不支持展示该内容，请升级至最新版本。</unknown></msg>".to_string(),
        };
        Payload::new(code, body)
    }

    fn malformed_payload(&mut self, context: &Context) -> Payload {
        let md5 = random_hex(&mut self.rng, 32);
        match self.rng.gen_range(0..10) {
            0 => Payload {
                img_path: Some(format!("THUMBNAIL_DIRPATH://th_{md5}")),
                ..Payload::new(TYPE_IMAGE, format!("<msg><img md5=\"{md5}\" length=\"12"))
            },
            1 => Payload::new(
                TYPE_IMAGE,
                format!("<msg><img md5=\"{md5}\" length=\"abc\"/></msg>"),
            ),
            2 => Payload {
                img_path: Some(format!("{md5}_nofile")),
                ..Payload::new(
                    TYPE_VOICE,
                    "<msg><voicemsg voicelength=\"-300\" length=\"99999999999999999999999\"/></msg>".into(),
                )
            },
            3 => Payload::new(
                TYPE_VIDEO,
                format!("<msg><videomsg length=\"100\" playlength=\"3\" md5=\"{md5}\"></msg>"),
            ),
            4 => Payload::new(
                TYPE_APP,
                "<msg><appmsg><title>A & B <未闭合></title><type>5</type><url>http://x.invalid/?a=1&b=2</url></appmsg></msg>".into(),
            ),
            5 => Payload::new(
                TYPE_APP,
                "<msg><appmsg><title>拼写错误</titel><type>6</type></appmsg></msg>".into(),
            ),
            6 => Payload::new(TYPE_EMOJI, String::new()),
            7 => Payload::new(TYPE_APP, "<?xml version=\"1.0\"?>".into()),
            8 => {
                // Deep nesting: recursive parsers run out of stack.
                let mut body = String::from("<msg>");
                for _ in 0..2000 {
                    body.push_str("<appmsg>");
                }
                body.push_str("<title>深</title>");
                Payload::new(TYPE_APP, body)
            }
            _ => Payload::new(
                TYPE_APP,
                format!(
                    "<!DOCTYPE msg [<!ENTITY a \"哈哈哈哈哈哈哈哈哈哈\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]><msg><appmsg><title>&d;</title><type>5</type><url>https://example.invalid/</url></appmsg><fromusername>{}</fromusername></msg>",
                    context.sender_wxid
                ),
            ),
        }
    }

    fn write_conversations(&mut self) -> Result<(), SimError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO rconversation (msgCount, username, unReadCount, chatmode, status, isSend, conversationTime, content, msgType, digest, digestUser, attrflag, atCount) VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6, ?7, ?8, '', 0, 0)",
        )?;
        for (talker, chat) in &self.chats {
            statement.execute(params![
                chat.count,
                talker,
                chat.count % 7,
                chat.last_is_send,
                chat.last_time,
                chat.last_content,
                chat.last_type.to_string(),
                chat.last_content,
            ])?;
        }
        Ok(())
    }
}

/// One `message` row; `nulled` marks rows whose optional columns were
/// deliberately set to NULL (they must stay NULL).
struct Row {
    msg_id: i64,
    svr_id: Option<i64>,
    msg_type: i64,
    status: Option<i64>,
    is_send: Option<i64>,
    show_timer: Option<i64>,
    create_time: i64,
    content: Option<String>,
    img_path: Option<String>,
    reserved: Option<String>,
    talker_id: Option<i64>,
    msg_seq: Option<i64>,
    flag: Option<i64>,
    nulled: bool,
}

impl Row {
    fn system(msg_id: i64, svr_id: i64, create_time: i64, content: String) -> Self {
        Row {
            msg_id,
            svr_id: Some(svr_id),
            msg_type: TYPE_SYSTEM,
            status: Some(4),
            is_send: Some(0),
            show_timer: None,
            create_time,
            content: Some(content),
            img_path: None,
            reserved: None,
            talker_id: None,
            msg_seq: None,
            flag: Some(0),
            nulled: false,
        }
    }

    fn null_some_columns(&mut self, rng: &mut SimRng, is_owner: bool) {
        self.nulled = true;
        self.svr_id = None;
        self.status = None;
        self.reserved = None;
        self.flag = None;
        self.img_path = None;
        if !is_owner && rng.gen_bool(0.5) {
            // Without isSend the row reads as received (it carries a sender prefix).
            self.is_send = None;
        }
    }
}

/// Cache files no row references, a zero-byte one, and (with edge cases on)
/// a file whose name is not valid UTF-8. Returns how many were written.
fn write_orphans(opts: &SimOptions) -> Result<usize, SimError> {
    let mut rng = seeded_rng(opts.seed, 2);
    let old = opts.now_ms - i64::from(opts.days) * DAY_MS - 40 * DAY_MS;
    let mut written = 0;
    for index in 0..4 {
        let name = random_hex(&mut rng, 32);
        let dir = format!("image2/{}/{}", &name[0..2], &name[2..4]);
        let thumb = media::jpeg(&mut rng, 400);
        let size = if index == 3 { 0 } else { 400 };
        write_file_at(
            &opts.out.join(format!("{dir}/th_{name}")),
            &thumb[..size],
            old + index * DAY_MS,
        )?;
        write_file_at(
            &opts.out.join(format!("{dir}/{name}.jpg")),
            &media::jpeg(&mut rng, 1500),
            old + index * DAY_MS,
        )?;
        written += 2;
    }
    let key = format!("2001010000{}", random_hex(&mut rng, 12));
    let h = md5_hex(key.as_bytes());
    write_file_at(
        &opts
            .out
            .join(format!("voice2/{}/{}/msg_{key}.amr", &h[0..2], &h[2..4])),
        &media::amr(&mut rng, 2000),
        old,
    )?;
    write_file_at(
        &opts.out.join(format!("video/{key}.mp4")),
        &media::mp4(&mut rng, 3000),
        old,
    )?;
    write_file_at(
        &opts.out.join("Download/已删除聊天里的文件.pdf"),
        &media::document(&mut rng, "pdf", 900),
        old,
    )?;
    let ghost = md5_hex(b"wxid_deleted_friend");
    write_file_at(
        &opts.out.join(format!(
            "avatar/{}/{}/user_{ghost}.png",
            &ghost[0..2],
            &ghost[2..4]
        )),
        &media::png(4, 4, [200, 10, 10]),
        old,
    )?;
    written += 4;
    if opts.edge_rate > 0.0 {
        crate::simulate::write_gbk_named_document(&opts.out.join("Download"), &mut rng, 700, old)?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::testkit::{options, snapshot, test_dir};
    use std::collections::BTreeSet;

    const NOW: i64 = 1_750_000_000_000;

    #[test]
    fn same_options_give_identical_bytes() {
        let first = test_dir("wechat", "det-a");
        let second = test_dir("wechat", "det-b");
        let mut opts = options(first.clone());
        opts.wal = true;
        simulate_wechat(&opts).unwrap();
        opts.out = second.clone();
        simulate_wechat(&opts).unwrap();
        let a = snapshot(&first);
        let b = snapshot(&second);
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (path, bytes) in &a {
            assert!(bytes == &b[path], "{} differs", path.display());
        }
        fs::remove_dir_all(first).unwrap();
        fs::remove_dir_all(second).unwrap();
    }

    #[test]
    fn wal_holds_the_newest_rows_only() {
        let out = test_dir("wechat", "wal");
        let mut opts = options(out.clone());
        opts.wal = true;
        opts.media_files = false;
        let report = simulate_wechat(&opts).unwrap();
        let wal = out.join(format!("{DB_FILE}-wal"));
        assert!(wal.exists());
        // Copy first: opening read-write and closing would checkpoint the WAL.
        let alone = test_dir("wechat", "wal-alone");
        fs::create_dir_all(&alone).unwrap();
        fs::copy(out.join(DB_FILE), alone.join(DB_FILE)).unwrap();
        let with_wal: i64 = Connection::open(out.join(DB_FILE))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM message WHERE talker LIKE '%@chatroom'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(with_wal as usize, report.messages);
        // The database file alone lacks the newest rows.
        let conn = Connection::open(alone.join(DB_FILE)).unwrap();
        let without_wal: i64 = conn
            .query_row(
                "SELECT count(*) FROM message WHERE talker LIKE '%@chatroom'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(without_wal as usize, 3000 - 60);
        drop(conn);
        fs::remove_dir_all(out).unwrap();
        fs::remove_dir_all(alone).unwrap();
    }

    #[test]
    fn contents_follow_the_spec() {
        let out = test_dir("wechat", "spec");
        let opts = options(out.clone());
        let report = simulate_wechat(&opts).unwrap();
        assert_eq!(report.messages - report.hard_rows, 3000);
        assert_eq!(report.groups, 5);
        assert_eq!(report.private_chats, PRIVATE_CHATS);
        let conn = Connection::open(out.join(DB_FILE)).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };

        // Every type code of the spec table is present.
        let types: BTreeSet<i64> = conn
            .prepare("SELECT DISTINCT type FROM message WHERE type IS NOT NULL")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for code in [
            TYPE_TEXT,
            TYPE_IMAGE,
            TYPE_VOICE,
            TYPE_VIDEO,
            TYPE_EMOJI,
            TYPE_LOCATION,
            TYPE_APP,
            TYPE_SYSTEM,
            TYPE_RED_PACKET,
            TYPE_TRANSFER,
            TYPE_QUOTE,
            TYPE_FILE,
        ] {
            assert!(types.contains(&code), "type {code} missing");
        }
        assert!(types.iter().any(|t| UNKNOWN_TYPES.contains(t)));
        for n in [5, 6, 57, 2000, 2001] {
            let sql = format!("SELECT count(*) FROM message WHERE type = 49 AND content LIKE '%<type>{n}</type>%'");
            assert!(count(&sql) > 0, "appmsg type {n} missing");
        }

        // Owner and group membership.
        let owner: String = conn
            .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
            .unwrap();
        let lists: Vec<(String, String, String)> = conn
            .prepare(
                "SELECT chatroomname, memberlist, displayname FROM chatroom ORDER BY chatroomname",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lists.len(), 5);
        let mut mismatched = 0;
        for (_, members, names) in &lists {
            assert!(members.split(';').any(|m| m == owner));
            if members.split(';').count() != names.split('、').count() {
                mismatched += 1;
            }
        }
        assert!(mismatched >= 1);

        // Received group messages carry a sender prefix; sent ones do not.
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM message WHERE isSend = 1 AND content LIKE '{owner}:%'"
            )),
            0
        );
        assert!(
            count(&format!(
                "SELECT count(*) FROM message WHERE content LIKE '{GHOST_PREFIX}%'"
            )) > 0
        );
        assert!(
            count(&format!(
                "SELECT count(*) FROM message WHERE content LIKE '{LEFT_PREFIX}%'"
            )) > 0
        );
        assert!(count("SELECT count(*) FROM message WHERE content IS NULL") > 0);
        assert!(count("SELECT count(*) FROM message WHERE msgSvrId IS NULL") > 0);
        assert!(count("SELECT count(*) FROM (SELECT createTime FROM message GROUP BY talker, createTime HAVING count(*) > 1)") > 0);
        assert!(count("SELECT count(*) FROM message b WHERE EXISTS (SELECT 1 FROM message a WHERE a.talker = b.talker AND a.createTime > b.createTime AND a.msgId < b.msgId)") > 0);
        // Apart from the planted times no output can write.
        let real_times = "FROM message WHERE typeof(createTime) = 'integer' \
                          AND createTime BETWEEN 0 AND 253402300799999";
        let min_time = count(&format!("SELECT min(createTime) {real_times}"));
        assert_eq!(
            count("SELECT count(*) FROM message WHERE createTime IN (9223372036854775807, -9223372036854775808) OR typeof(createTime) = 'real'"),
            3
        );
        assert!(
            min_time >= NOW - 30 * DAY_MS
                && count(&format!("SELECT max(createTime) {real_times}")) < NOW + DAY_MS
        );

        // The dissolved group ends with the dissolution notice.
        let dissolved: String = conn
            .query_row(
                "SELECT talker FROM message WHERE type = 10000 AND content = ?1",
                [DISSOLUTION_TEXT],
                |r| r.get(0),
            )
            .unwrap();
        let last: String = conn
            .query_row("SELECT content FROM message WHERE talker = ?1 ORDER BY createTime DESC, msgId DESC LIMIT 1", [&dissolved], |r| r.get(0))
            .unwrap();
        assert_eq!(last, DISSOLUTION_TEXT);
        assert_eq!(count(&format!("SELECT max(msgId) FROM message WHERE talker = '{dissolved}'")),
            count(&format!("SELECT msgId FROM message WHERE talker = '{dissolved}' AND content = '{DISSOLUTION_TEXT}'")));
        assert_eq!(
            count("SELECT count(*) FROM message WHERE type = 10000 AND content LIKE '%解散%'"),
            1
        );

        // A recent red packet with fewer claims than its totalnum.
        let packets: Vec<(String, i64)> = conn
            .prepare("SELECT content, createTime FROM message WHERE type = 436207665 AND createTime > ?1")
            .unwrap()
            .query_map([NOW - DAY_MS], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let unclaimed = packets.iter().filter(|(content, _)| {
            let id = between(content, "<paymsgid>", "</paymsgid>");
            let total: i64 = between(content, "<totalnum>", "</totalnum>").parse().unwrap();
            let claims = count(&format!("SELECT count(*) FROM message WHERE type = 10000 AND content LIKE '%<paymsgid>{id}</paymsgid>%'"));
            claims < total
        });
        assert!(unclaimed.count() >= 1);

        // Media: image rows, files on the spec paths, planted path problems.
        let (thumb, big): (String, String) = conn
            .query_row("SELECT m.imgPath, i.bigImgPath FROM message m JOIN ImgInfo2 i ON i.msgSvrId = m.msgSvrId WHERE m.type = 3 AND i.bigImgPath NOT LIKE 'SERVERID://%' AND m.content LIKE '%md5=%' LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        let n = thumb.strip_prefix("THUMBNAIL_DIRPATH://th_").unwrap();
        assert!(out
            .join(format!("image2/{}/{}/th_{n}", &n[0..2], &n[2..4]))
            .exists());
        let b = big.strip_suffix(".jpg").unwrap();
        let big_file = out.join(format!("image2/{}/{}/{big}", &b[0..2], &b[2..4]));
        assert!(fs::symlink_metadata(big_file).is_ok());
        assert!(count("SELECT count(*) FROM ImgInfo2 WHERE bigImgPath LIKE 'SERVERID://%'") > 0);
        let key: String = conn.query_row("SELECT imgPath FROM message WHERE type = 34 AND imgPath IN (SELECT FileName FROM voiceinfo) LIMIT 1", [], |r| r.get(0)).unwrap();
        let h = md5_hex(key.as_bytes());
        let voice =
            fs::read(out.join(format!("voice2/{}/{}/msg_{key}.amr", &h[0..2], &h[2..4]))).unwrap();
        assert!(
            voice.starts_with(b"#!AMR\n")
                || voice.starts_with(b"\x02#!SILK_V3")
                || voice.is_empty()
        );
        for path in OUTSIDE_PATHS {
            assert_eq!(
                count(&format!(
                    "SELECT count(*) FROM appattach WHERE fileFullPath = '{path}'"
                )),
                1
            );
        }
        let device: String = conn.query_row("SELECT fileFullPath FROM appattach WHERE fileFullPath LIKE ?1 AND status = 199 LIMIT 1", [format!("{DEVICE_ROOT}Download/%")], |r| r.get(0)).unwrap();
        let rel = device.split_once("MicroMsg/").unwrap().1;
        assert!(out.join(rel).exists());
        let symlinks = snapshot(&out)
            .into_iter()
            .filter(|(_, target)| target == SYMLINK_TARGET.as_bytes())
            .count();
        assert_eq!(symlinks, 1);
        let download_names: Vec<_> = fs::read_dir(out.join("Download"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(download_names.iter().any(|n| n.to_str().is_none()));
        let m = md5_hex(owner.as_bytes());
        assert!(out
            .join(format!("avatar/{}/{}/user_{m}.png", &m[0..2], &m[2..4]))
            .exists());
        drop(conn);
        fs::remove_dir_all(out).unwrap();
    }

    fn between<'t>(text: &'t str, open: &str, close: &str) -> &'t str {
        let start = text.find(open).unwrap() + open.len();
        let end = text[start..].find(close).unwrap() + start;
        &text[start..end]
    }

    #[test]
    fn refuses_a_non_empty_output_directory() {
        let out = test_dir("wechat", "busy");
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("keep.txt"), b"x").unwrap();
        let err = simulate_wechat(&options(out.clone())).unwrap_err();
        assert!(matches!(err, SimError::OutputNotEmpty(_)));
        fs::remove_dir_all(out).unwrap();
    }

    #[test]
    fn extreme_options_do_not_fail() {
        for (name, groups, members, messages, edge_rate, days) in [
            ("all-edges", 7, 3, 400, 1.0, 1),
            ("no-messages", 0, 2, 0, 0.5, 30),
            ("one-group", 1, 2, 50, 0.3, 2),
            ("big-group", 3, 600, 300, 0.05, 400),
        ] {
            let out = test_dir("wechat", name);
            let opts = SimOptions {
                groups,
                members,
                messages,
                edge_rate,
                days,
                wal: true,
                ..options(out.clone())
            };
            let report = simulate_wechat(&opts).unwrap();
            assert_eq!(report.messages - report.hard_rows, messages, "{name}");
            assert_eq!(report.groups, groups, "{name}");
            fs::remove_dir_all(out).unwrap();
        }
        let err = simulate_wechat(&SimOptions {
            edge_rate: 1.5,
            ..options(test_dir("wechat", "bad-rate"))
        })
        .unwrap_err();
        assert!(matches!(err, SimError::InvalidOption(_)));
    }

    #[test]
    fn tiny_and_clean_runs_work() {
        let out = test_dir("wechat", "tiny");
        let mut opts = options(out.clone());
        opts.messages = 7;
        opts.groups = 1;
        opts.members = 2;
        opts.edge_rate = 0.0;
        opts.wal = true;
        let report = simulate_wechat(&opts).unwrap();
        assert_eq!(report.messages, 7);
        fs::remove_dir_all(out).unwrap();
    }
}
