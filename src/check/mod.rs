//! `chatvault check`: is a group ready to be dissolved? Every procedure and hold rule of
//! retention.md ("Dissolution procedure rules", "Legal holds") that the source data can
//! answer, evaluated per group from one pass over its messages, with the evidence (message
//! ids, times, members, files), what to do, and the seed citation.
//!
//! Statuses: `ok`, `warn` (look at it), `block` (do not dissolve yet), `n/a` (the rule
//! needs something not given, e.g. `--dissolve-at`). Anything that blocks makes the
//! command exit with [`crate::exit::BLOCKED`].

pub mod announcement;
pub mod bundles;
pub mod red_packets;

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pathsafe::{self, Resolved};
use crate::records::{Direction, Group, Kind, MediaLocation, Member, Role};
use crate::retention::policy::Policy;
use crate::source::{self, Source, SourceError};
use crate::timefmt;

/// What a group is, for the rules that depend on it (`--group-type ID=TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupType {
    Ordinary,
    /// A business group: 30 days' notice, debts settled.
    Commercial,
    /// Teaching records kept 6 months.
    Education,
    /// A trading group: vouchers kept 3 years; also commercial.
    Ecommerce,
    /// Intellectual-property content: notarize before dissolving.
    IpContent,
}

impl GroupType {
    pub const ALL: [GroupType; 5] = [
        GroupType::Ordinary,
        GroupType::Commercial,
        GroupType::Education,
        GroupType::Ecommerce,
        GroupType::IpContent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GroupType::Ordinary => "ordinary",
            GroupType::Commercial => "commercial",
            GroupType::Education => "education",
            GroupType::Ecommerce => "ecommerce",
            GroupType::IpContent => "ip_content",
        }
    }

    pub fn parse(text: &str) -> Option<GroupType> {
        GroupType::ALL.into_iter().find(|t| t.name() == text)
    }

    fn commercial(self) -> bool {
        matches!(self, GroupType::Commercial | GroupType::Ecommerce)
    }
}

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub source: PathBuf,
    /// Only these groups (every group chat when empty).
    pub groups: Vec<String>,
    pub dissolve_at: Option<DateTime<Utc>>,
    pub group_types: Vec<(String, GroupType)>,
    pub bundles: Vec<PathBuf>,
    /// The announcement's text, as given by `--announcement FILE`.
    pub announcement: Option<String>,
    /// The reference time (red packets' refund window).
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "n/a")]
    NotApplicable,
    #[serde(rename = "warn")]
    Warn,
    #[serde(rename = "block")]
    Block,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotApplicable => "n/a",
            Status::Warn => "warn",
            Status::Block => "block",
        }
    }
}

/// One rule's outcome for one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub status: Status,
    /// One line.
    pub summary: String,
    /// The messages, members or files it rests on, one per line.
    pub evidence: Vec<String>,
    /// What to do (empty when nothing).
    pub todo: String,
    /// The seed document and its words.
    pub citation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupCheck {
    pub group_id: String,
    pub group_name: String,
    pub group_type: Option<GroupType>,
    pub members: u64,
    pub messages: u64,
    pub last_message_utc: Option<String>,
    pub findings: Vec<Finding>,
}

impl GroupCheck {
    pub fn status(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub platform: String,
    pub owner_id: Option<String>,
    pub now_utc: String,
    pub dissolve_at_utc: Option<String>,
    pub groups: Vec<GroupCheck>,
}

impl CheckReport {
    pub fn blocked(&self) -> bool {
        self.groups.iter().any(|g| g.status() == Status::Block)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("no group {0} in this source: `chatvault inspect SOURCE` lists them")]
    UnknownGroup(String),
    #[error("--group-type names group {0}, which is not among the groups checked")]
    TypeForUnknownGroup(String),
    #[error(transparent)]
    Bundle(#[from] bundles::BundleError),
}

impl CheckError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CheckError::Source(e) => e.exit_code(),
            CheckError::UnknownGroup(_) | CheckError::TypeForUnknownGroup(_) => {
                crate::exit::NOT_FOUND
            }
            CheckError::Bundle(_) => crate::exit::NOT_A_BUNDLE,
        }
    }
}

/// Evidence lines listed per finding; the rest are counted.
const LISTED: usize = 20;

const HOUR_MS: i64 = 3600 * 1000;

/// `000 §二 "发送解散公告(建议提前24小时)"`: the seed, its section and its words.
fn citation(policy: &Policy, id: &str) -> String {
    policy
        .rule(id)
        .filter(|r| !r.seed.is_empty())
        .map(|r| format!("{} \"{}\"", r.seed, r.seed_text))
        .unwrap_or_default()
}

fn utc(ms: i64) -> String {
    timefmt::utc_millis(ms)
}

/// `lines`, at most [`LISTED`] of them, then how many more.
fn listed(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > LISTED {
        let more = lines.len() - LISTED;
        lines.truncate(LISTED);
        lines.push(format!("… and {more} more"));
    }
    lines
}

pub fn check(opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let source = source::open(&opts.source)?;
    check_source(source.as_ref(), opts)
}

/// What one pass over a group's messages collects.
struct Pass {
    messages: u64,
    last_ms: Option<i64>,
    red: red_packets::Tracker,
    /// (message id, time, sender id, matched by hash) of dissolution announcements by the
    /// owner or an admin.
    announcements: Vec<(String, i64, String, bool)>,
    unfetched: Vec<String>,
    /// Time of the last payment (red packet, transfer): the e-commerce vouchers' clock.
    last_voucher_ms: Option<i64>,
}

pub fn check_source(source: &dyn Source, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let policy = Policy::builtin();
    let all = source.groups()?;
    for id in &opts.groups {
        if !all.iter().any(|g| &g.id == id) {
            return Err(CheckError::UnknownGroup(id.clone()));
        }
    }
    let groups: Vec<Group> = all
        .into_iter()
        .filter(|g| {
            if opts.groups.is_empty() {
                g.is_group
            } else {
                opts.groups.contains(&g.id)
            }
        })
        .collect();
    for (id, _) in &opts.group_types {
        if !groups.iter().any(|g| &g.id == id) {
            return Err(CheckError::TypeForUnknownGroup(id.clone()));
        }
    }
    let bundles: Vec<bundles::BundleFacts> = opts
        .bundles
        .iter()
        .map(|b| bundles::read(b))
        .collect::<Result<_, _>>()?;
    // The databases as they are now, to tell a bundle of this source from another's.
    let current: HashMap<String, String> = if bundles.is_empty() {
        HashMap::new()
    } else {
        source
            .source_files()
            .iter()
            .filter_map(|f| {
                Some((
                    f.rel_path.clone(),
                    crate::digest::sha256_file(&f.path).ok()?.0,
                ))
            })
            .collect()
    };
    let wanted_hash = opts.announcement.as_deref().map(announcement::hash);
    let now_ms = opts.now.timestamp_millis();
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    source.prepare_messages(&ids);

    let mut checked = Vec::with_capacity(groups.len());
    for group in &groups {
        let members = source.members(&group.id)?;
        let by_id: HashMap<&str, &Member> =
            members.iter().map(|m| (m.member_id.as_str(), m)).collect();
        let is_leader = |id: &str| {
            group.owner_id.as_deref() == Some(id)
                || by_id
                    .get(id)
                    .is_some_and(|m| matches!(m.role, Role::Owner | Role::Admin))
        };
        let mut pass = Pass {
            messages: 0,
            last_ms: None,
            red: red_packets::Tracker::new(now_ms),
            announcements: Vec::new(),
            unfetched: Vec::new(),
            last_voucher_ms: None,
        };
        for message in source.messages(&group.id)? {
            let message = message?;
            pass.messages += 1;
            if let Some(t) = message.time_ms {
                pass.last_ms = Some(pass.last_ms.map_or(t, |l| l.max(t)));
                if matches!(message.kind, Kind::RedPacket | Kind::Transfer) {
                    pass.last_voucher_ms = Some(pass.last_voucher_ms.map_or(t, |l| l.max(t)));
                }
            }
            pass.red.message(&message, |id| {
                by_id.get(id).map_or_else(Vec::new, |m| {
                    [&m.display_name, &m.group_nickname]
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .cloned()
                        .collect()
                })
            });
            if let (Some(sender), Some(t)) = (message.sender_id.as_deref(), message.time_ms) {
                if message.direction != Direction::System && is_leader(sender) {
                    let by_hash = wanted_hash
                        .as_deref()
                        .is_some_and(|h| announcement::hash(&message.text) == h);
                    if by_hash || announcement::mentions_dissolution(&message.text) {
                        pass.announcements.push((
                            message.message_id.clone(),
                            t,
                            sender.to_string(),
                            by_hash,
                        ));
                    }
                }
            }
            for media in &message.media {
                if media.kind.is_thumbnail() {
                    continue;
                }
                let missing = match &media.location {
                    MediaLocation::NotDownloaded(_) => Some("never downloaded"),
                    MediaLocation::Path(p) => match pathsafe::resolve(source.root(), p) {
                        Resolved::Missing { .. } => Some("missing locally"),
                        _ => None,
                    },
                };
                if let Some(why) = missing {
                    pass.unfetched.push(format!(
                        "message {} ({}): {} {why}",
                        message.message_id,
                        message.time_ms.map(utc).unwrap_or_default(),
                        media.kind.as_str()
                    ));
                }
            }
        }

        let group_type = opts
            .group_types
            .iter()
            .rev()
            .find(|(id, _)| id == &group.id)
            .map(|(_, t)| *t);
        let mut findings = Vec::new();
        findings.push(red_packet_rule(&policy, source, &pass, &by_id));
        findings.push(owner_rule(&policy, source, group));
        findings.extend(size_rules(&policy, source, &members));
        findings.extend(notice_rules(&policy, opts, group_type, &pass));
        findings.push(files_rule(&policy, &pass));
        findings.extend(hold_rules(&policy, source, opts, group_type, &pass));
        findings.push(export_rule(source, opts, group, &pass, &bundles, &current));
        checked.push(GroupCheck {
            group_id: group.id.clone(),
            group_name: group.name.clone(),
            group_type,
            members: members.iter().filter(|m| !m.left).count() as u64,
            messages: pass.messages,
            last_message_utc: pass.last_ms.map(utc),
            findings,
        });
    }
    Ok(CheckReport {
        platform: source.platform().to_string(),
        owner_id: source.owner_id().map(str::to_string),
        now_utc: timefmt::utc_seconds(opts.now),
        dissolve_at_utc: opts.dissolve_at.map(timefmt::utc_seconds),
        groups: checked,
    })
}

fn red_packet_rule(
    policy: &Policy,
    source: &dyn Source,
    pass: &Pass,
    members: &HashMap<&str, &Member>,
) -> Finding {
    let claims_recorded = source.platform().name() != "wecom";
    let mut evidence = Vec::new();
    let (mut unclaimed, mut unknown) = (0, 0);
    for p in &pass.red.packets {
        let who = members
            .get(p.sender_id.as_str())
            .map_or(p.sender_id.clone(), |m| {
                format!("{} ({})", p.sender_id, m.shown_name())
            });
        let parts = match p.parts {
            Some(n) if claims_recorded => format!("{} of {n} parts claimed", p.claims),
            Some(n) => format!("{n} parts; the source records no claims"),
            None => format!("{} claims, parts unknown", p.claims),
        };
        let amount = p
            .amount_fen
            .map(|f| format!(", {}.{:02} yuan", f / 100, f % 100))
            .unwrap_or_default();
        if p.unclaimed() && claims_recorded {
            unclaimed += 1;
        } else if p.parts.is_none() || !claims_recorded {
            unknown += 1;
        } else {
            continue;
        }
        evidence.push(format!(
            "message {} by {who} at {}: {parts}{amount}; unclaimed parts are refunded at {}",
            p.message_id,
            utc(p.time_ms),
            utc(p.time_ms + red_packets::REFUND_AFTER_MS)
        ));
    }
    let refund_at = pass
        .red
        .packets
        .iter()
        .map(|p| p.time_ms + red_packets::REFUND_AFTER_MS)
        .max();
    let (status, summary, todo) = if unclaimed > 0 {
        (
            Status::Block,
            format!("{unclaimed} red packet(s) sent in the last 24 hours with unclaimed parts"),
            format!(
                "ask members to claim them, or wait for the refund (the last at {})",
                refund_at.map(utc).unwrap_or_default()
            ),
        )
    } else if unknown > 0 {
        (
            Status::Warn,
            format!(
                "{unknown} red packet(s) sent in the last 24 hours whose claims cannot be counted"
            ),
            "check in the app that they are fully claimed, or wait for the refund".to_string(),
        )
    } else {
        (
            Status::Ok,
            "no red packet sent in the last 24 hours is unclaimed".to_string(),
            String::new(),
        )
    };
    Finding {
        rule: "block.red_packet".into(),
        status,
        summary,
        evidence: listed(evidence),
        todo,
        citation: citation(policy, "block.red_packet"),
    }
}

fn owner_rule(policy: &Policy, source: &dyn Source, group: &Group) -> Finding {
    let holder = source.owner_id();
    let owner = group.owner_id.as_deref();
    let evidence = vec![format!(
        "account holder {}, group owner {}",
        holder.unwrap_or("(unknown)"),
        owner.unwrap_or("(unknown)")
    )];
    let (status, summary, todo) = match (holder, owner) {
        (Some(h), Some(o)) if h == o => (
            Status::Ok,
            "the account holder owns the group".to_string(),
            String::new(),
        ),
        (Some(_), Some(_)) if source.platform().name() == "wecom" => (
            Status::Warn,
            "the group's creator is someone else; only the admin console can dissolve it"
                .to_string(),
            "dissolve it from the WeCom admin console, or ask its creator".to_string(),
        ),
        (Some(_), Some(o)) => (
            Status::Block,
            "the account holder is not the group's owner (ownership transferred?)".to_string(),
            format!("only the current owner {o} can dissolve it: ask them"),
        ),
        _ => (
            Status::Warn,
            "the source does not say who owns the group or whose account this is".to_string(),
            "check the owner in the app".to_string(),
        ),
    };
    Finding {
        rule: "owner.transferred".into(),
        status,
        summary,
        evidence,
        todo,
        citation: citation(policy, "owner.transferred"),
    }
}

/// More than this many members: removed members receive a system notice.
const NOTIFY_OVER: usize = 40;

fn size_rules(policy: &Policy, source: &dyn Source, members: &[Member]) -> Vec<Finding> {
    let current = members.iter().filter(|m| !m.left).count();
    let notify = if current > NOTIFY_OVER {
        Finding {
            rule: "notify.over_40".into(),
            status: Status::Warn,
            summary: format!("{current} members: each member removed will receive a system notice"),
            evidence: vec![format!(
                "{current} current members (more than {NOTIFY_OVER})"
            )],
            todo: "tell the members before removing anyone".into(),
            citation: citation(policy, "notify.over_40"),
        }
    } else {
        Finding {
            rule: "notify.over_40".into(),
            status: Status::Ok,
            summary: format!("{current} members: no removal notices"),
            evidence: vec![format!("{current} current members (at most {NOTIFY_OVER})")],
            todo: String::new(),
            citation: citation(policy, "notify.over_40"),
        }
    };
    let limit = if source.platform().name() == "wecom" {
        10_000
    } else {
        500
    };
    let size = Finding {
        rule: "size.limits".into(),
        status: if current > limit {
            Status::Warn
        } else {
            Status::Ok
        },
        summary: format!("{current} members, the platform's limit is {limit}"),
        evidence: vec![format!("{current} current members")],
        todo: if current > limit {
            "more members than the platform allows: check the member list".into()
        } else {
            String::new()
        },
        citation: citation(policy, "size.limits"),
    };
    vec![notify, size]
}

fn notice_rules(
    policy: &Policy,
    opts: &CheckOptions,
    group_type: Option<GroupType>,
    pass: &Pass,
) -> Vec<Finding> {
    let commercial = group_type.is_some_and(GroupType::commercial);
    let mut rules = vec![("notice.default", 24 * HOUR_MS, "24 hours", Status::Warn)];
    if commercial {
        rules.push((
            "notice.commercial",
            30 * 24 * HOUR_MS,
            "30 days",
            Status::Block,
        ));
    }
    let Some(dissolve_at) = opts.dissolve_at else {
        return rules
            .into_iter()
            .map(|(rule, _, _, _)| Finding {
                rule: rule.into(),
                status: Status::NotApplicable,
                summary: "no dissolution time given".into(),
                evidence: Vec::new(),
                todo: "give --dissolve-at to check the notice period".into(),
                citation: citation(policy, rule),
            })
            .collect();
    };
    let at = dissolve_at.timestamp_millis();
    // Announcements posted before the dissolution; by hash first, then by words.
    let mut before: Vec<&(String, i64, String, bool)> =
        pass.announcements.iter().filter(|a| a.1 <= at).collect();
    if before.iter().any(|a| a.3) {
        before.retain(|a| a.3);
    }
    let earliest = before.iter().min_by_key(|a| a.1);
    let evidence: Vec<String> = before
        .iter()
        .map(|(id, t, sender, by_hash)| {
            format!(
                "message {id} by {sender} at {}, {} before the dissolution ({})",
                utc(*t),
                lead(at - t),
                if *by_hash {
                    "the announcement's text, same hash"
                } else {
                    "mentions dissolution"
                }
            )
        })
        .collect();
    let mismatch = opts.announcement.is_some() && !before.iter().any(|a| a.3);
    rules
        .into_iter()
        .map(|(rule, needed, needed_text, short)| {
            let (status, summary, todo) = match earliest {
                Some(a) if at - a.1 >= needed && !mismatch => (
                    Status::Ok,
                    format!("announced {} before the dissolution (at least {needed_text})", lead(at - a.1)),
                    String::new(),
                ),
                Some(a) if at - a.1 >= needed => (
                    Status::Warn,
                    format!(
                        "a message about the dissolution was posted {} before, but not the --announcement text",
                        lead(at - a.1)
                    ),
                    "post the announcement itself, or check that its text is the one given".into(),
                ),
                Some(a) => (
                    short,
                    format!("announced only {} before the dissolution (needs {needed_text})", lead(at - a.1)),
                    format!(
                        "dissolve no earlier than {}",
                        utc(a.1 + needed)
                    ),
                ),
                None => (
                    short,
                    "no announcement of the dissolution by the owner or an admin".into(),
                    format!("post one at least {needed_text} before the dissolution"),
                ),
            };
            Finding {
                rule: rule.into(),
                status,
                summary,
                evidence: listed(evidence.clone()),
                todo,
                citation: citation(policy, rule),
            }
        })
        .collect()
}

/// A duration for people: `25 h 0 min`, `31 days 2 h`.
fn lead(ms: i64) -> String {
    let minutes = ms / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{days} days {hours} h")
    } else {
        format!("{hours} h {mins} min")
    }
}

fn files_rule(policy: &Policy, pass: &Pass) -> Finding {
    let count = pass.unfetched.len();
    Finding {
        rule: "files.fetch".into(),
        status: if count > 0 { Status::Warn } else { Status::Ok },
        summary: if count > 0 {
            format!("{count} media file(s) referenced but not here: group files expire after dissolution")
        } else {
            "every media file referenced is here".into()
        },
        evidence: listed(pass.unfetched.clone()),
        todo: if count > 0 {
            "open them in the app to download them, then export again".into()
        } else {
            String::new()
        },
        citation: citation(policy, "wechat.group_file"),
    }
}

fn hold_rules(
    policy: &Policy,
    source: &dyn Source,
    opts: &CheckOptions,
    group_type: Option<GroupType>,
    pass: &Pass,
) -> Vec<Finding> {
    let mut holds = Vec::new();
    let from_last = |ms: Option<i64>, days: i64| {
        ms.map(|t| utc(t + days * 24 * HOUR_MS))
            .unwrap_or_else(|| "(no dated message)".into())
    };
    match group_type {
        Some(GroupType::Education) => holds.push(Finding {
            rule: "hold.education".into(),
            status: Status::Warn,
            summary: "teaching records must be kept at least 6 months".into(),
            evidence: vec![format!(
                "last message {}",
                pass.last_ms.map(utc).unwrap_or_default()
            )],
            todo: format!(
                "keep the export (and do not clean the cache) until at least {}",
                from_last(pass.last_ms, 183)
            ),
            citation: citation(policy, "hold.education"),
        }),
        Some(GroupType::Ecommerce) => holds.push(Finding {
            rule: "hold.ecommerce".into(),
            status: Status::Warn,
            summary: "transaction vouchers must be kept 3 years".into(),
            evidence: vec![format!(
                "last payment (red packet or transfer) {}",
                pass.last_voucher_ms
                    .map(utc)
                    .unwrap_or_else(|| "(none)".into())
            )],
            todo: format!(
                "keep the export until at least {}",
                from_last(pass.last_voucher_ms.or(pass.last_ms), 3 * 365 + 1)
            ),
            citation: citation(policy, "hold.ecommerce"),
        }),
        Some(GroupType::IpContent) => holds.push(Finding {
            rule: "hold.ip_content".into(),
            status: Status::Warn,
            summary: "intellectual-property content: have it notarized before dissolving".into(),
            evidence: Vec::new(),
            todo: "notarize the export (its bag digest) first".into(),
            citation: citation(policy, "hold.ip_content"),
        }),
        _ => {}
    }
    if source.platform().name() == "wecom" {
        holds.push(Finding {
            rule: "hold.wecom.audit".into(),
            status: Status::Ok,
            summary: "the enterprise audit system keeps the chat 365 days after dissolution".into(),
            evidence: Vec::new(),
            todo: opts
                .dissolve_at
                .map(|d| {
                    format!(
                        "the archive is kept until {}",
                        utc(d.timestamp_millis() + 365 * 24 * HOUR_MS)
                    )
                })
                .unwrap_or_default(),
            citation: citation(policy, "hold.wecom.audit"),
        });
    }
    if holds.is_empty() {
        holds.push(Finding {
            rule: "hold".into(),
            status: Status::NotApplicable,
            summary: "no hold by group type".into(),
            evidence: Vec::new(),
            todo: if group_type.is_none() {
                "give --group-type ID=education|ecommerce|ip_content|commercial where it applies"
                    .into()
            } else {
                String::new()
            },
            citation: String::new(),
        });
    }
    holds
}

fn export_rule(
    source: &dyn Source,
    opts: &CheckOptions,
    group: &Group,
    pass: &Pass,
    bundles: &[bundles::BundleFacts],
    current: &HashMap<String, String>,
) -> Finding {
    let command = format!(
        "chatvault export {} --out BUNDLE --group {}",
        opts.source.display(),
        group.id
    );
    let last = pass.last_ms.map(utc);
    let mut evidence = Vec::new();
    let mut covered = false;
    for b in bundles {
        let name = b.path.display();
        let why_not = if let Some(failed) = &b.failed {
            Some(failed.clone())
        } else if b.platform != source.platform().name() {
            Some(format!("it is a {} bundle", b.platform))
        } else if b.owner.is_some() && !b.anonymized && b.owner.as_deref() != source.owner_id() {
            Some(format!(
                "it is of account {}",
                b.owner.as_deref().unwrap_or_default()
            ))
        } else if !b.databases.keys().any(|p| current.contains_key(p)) {
            Some("it names none of this source's databases".to_string())
        } else {
            match (b.last_message.get(&group.id), &last) {
                (None, _) => Some("it does not hold this group".to_string()),
                (Some(_), None) => None,
                (Some(theirs), Some(ours)) if theirs.as_str() >= ours.as_str() => None,
                (Some(theirs), Some(ours)) => Some(format!(
                    "it ends at {theirs}; the group has messages up to {ours}"
                )),
            }
        };
        let same_state = b
            .databases
            .iter()
            .filter(|(p, _)| current.contains_key(*p))
            .all(|(p, h)| current.get(p) == Some(h));
        match why_not {
            None => {
                covered = true;
                evidence.push(format!(
                    "{name}: verifies, holds the group to its last message{}{}",
                    if same_state {
                        ", of the source as it is now"
                    } else {
                        ", of an earlier state of the source"
                    },
                    b.bag_digest
                        .as_deref()
                        .map(|d| format!(" (bag digest {d})"))
                        .unwrap_or_default()
                ));
            }
            Some(reason) => evidence.push(format!("{name}: does not count: {reason}")),
        }
    }
    let (status, summary, todo) = if covered {
        (
            Status::Ok,
            "exported and verified".to_string(),
            String::new(),
        )
    } else if bundles.is_empty() {
        (
            Status::Block,
            "no bundle given (--bundle)".to_string(),
            format!("export first: {command}"),
        )
    } else {
        (
            Status::Block,
            "no bundle given covers this group".to_string(),
            format!("export again: {command}"),
        )
    };
    Finding {
        rule: "export".into(),
        status,
        summary,
        evidence,
        todo,
        citation: "001 §七 数据导出阶段".into(),
    }
}

impl CheckReport {
    /// The checklist for people.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} account (owner {}), checked at {}{}\n",
            self.platform,
            self.owner_id.as_deref().unwrap_or("unknown"),
            self.now_utc,
            self.dissolve_at_utc
                .as_deref()
                .map(|d| format!(", dissolution planned at {d}"))
                .unwrap_or_default()
        );
        for g in &self.groups {
            let name: String = g.group_name.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!(
                "\n{} {} — {}: {} members, {} messages{}\n",
                g.group_id,
                name,
                g.status().as_str().to_uppercase(),
                g.members,
                g.messages,
                g.group_type
                    .map(|t| format!(", type {}", t.name()))
                    .unwrap_or_default()
            ));
            for f in &g.findings {
                out.push_str(&format!(
                    "  {:<5} {:<18} {}\n",
                    f.status.as_str(),
                    f.rule,
                    f.summary
                ));
                for e in &f.evidence {
                    let e: String = e.chars().filter(|c| !c.is_control()).collect();
                    out.push_str(&format!("        - {e}\n"));
                }
                if !f.todo.is_empty() {
                    out.push_str(&format!("        do: {}\n", f.todo));
                }
                if !f.citation.is_empty() && f.status != Status::Ok {
                    out.push_str(&format!("        seed: {}\n", f.citation));
                }
            }
        }
        out
    }
}
