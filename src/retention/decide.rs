//! The per-file cleanup decision of `spec/retention.md`, "The default cleanup decision".

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::policy::{Clock, PlatformRetention, Policy, Rule, RuleKind};
use super::{human_time, serde_opt_time, RetentionError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Delete,
    Keep,
    Review,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Delete, Action::Keep, Action::Review];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Review => "review",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupType {
    Education,
    Ecommerce,
    Commercial,
    Family,
    Work,
    Other,
}

impl GroupType {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Education => "education",
            GroupType::Ecommerce => "ecommerce",
            GroupType::Commercial => "commercial",
            GroupType::Family => "family",
            GroupType::Work => "work",
            GroupType::Other => "other",
        }
    }
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupType {
    type Err = RetentionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "education" => Ok(GroupType::Education),
            "ecommerce" => Ok(GroupType::Ecommerce),
            "commercial" => Ok(GroupType::Commercial),
            "family" => Ok(GroupType::Family),
            "work" => Ok(GroupType::Work),
            "other" => Ok(GroupType::Other),
            _ => Err(RetentionError::InvalidArgument {
                what: "group type",
                value: text.to_string(),
                hint: "use education, ecommerce, commercial, family, work or other".to_string(),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Image,
    ImageThumb,
    Voice,
    Video,
    VideoThumb,
    File,
    Emoji,
    Avatar,
    RecycleBin,
    Other,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Image,
        Category::ImageThumb,
        Category::Voice,
        Category::Video,
        Category::VideoThumb,
        Category::File,
        Category::Emoji,
        Category::Avatar,
        Category::RecycleBin,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Image => "image",
            Category::ImageThumb => "image_thumb",
            Category::Voice => "voice",
            Category::Video => "video",
            Category::VideoThumb => "video_thumb",
            Category::File => "file",
            Category::Emoji => "emoji",
            Category::Avatar => "avatar",
            Category::RecycleBin => "recycle_bin",
            Category::Other => "other",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = RetentionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| RetentionError::InvalidArgument {
                what: "category",
                value: text.to_string(),
                hint: "use image, image_thumb, voice, video, video_thumb, file, emoji, avatar, recycle_bin or other".to_string(),
            })
    }
}

/// What the plan knows about a group, recorded in the plan header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupFacts {
    pub group_id: String,
    pub name: String,
    pub group_type: GroupType,
    /// `--group-type`, `name keyword 班` or `default`.
    pub group_type_source: String,
    #[serde(with = "serde_opt_time")]
    pub dissolved_at: Option<DateTime<Utc>>,
    /// Where the dissolution time came from (`--dissolved-at`, a system message, or `active`).
    pub dissolved_source: String,
}

/// What the scanner knows about one cached file.
#[derive(Debug, Clone)]
pub struct FileFacts<'a> {
    /// The retention facts of the file's platform.
    pub retention: &'a PlatformRetention,
    pub rel_path: &'a str,
    pub category: Category,
    pub under_recycle_bin: bool,
    pub mtime: DateTime<Utc>,
    /// The group of the message that references the file, and that message's time.
    pub reference: Option<(&'a GroupFacts, DateTime<Utc>)>,
    pub is_database: bool,
    /// `None` without `--require-bundle`; else whether the file's SHA-256 is in the bundle.
    pub in_required_bundle: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    /// The id of the policy rule that decided.
    pub rule: String,
    pub deletable_from: Option<DateTime<Utc>>,
    /// A sentence a person can read, with the seed citation.
    pub reason: String,
}

/// The group type from the name's keywords (first match in the order
/// education, ecommerce, commercial, family, work), else `other`.
pub fn infer_group_type(name: &str, policy: &Policy) -> GroupType {
    infer_group_type_with_source(name, policy).0
}

/// Like [`infer_group_type`], also saying why: `name keyword 班` or `default`.
pub fn infer_group_type_with_source(name: &str, policy: &Policy) -> (GroupType, String) {
    let k = &policy.keywords;
    let lists = [
        (GroupType::Education, &k.education),
        (GroupType::Ecommerce, &k.ecommerce),
        (GroupType::Commercial, &k.commercial),
        (GroupType::Family, &k.family),
        (GroupType::Work, &k.work),
    ];
    for (group_type, words) in lists {
        if let Some(word) = words
            .iter()
            .find(|w| !w.is_empty() && name.contains(w.as_str()))
        {
            return (group_type, format!("name keyword {word}"));
        }
    }
    (GroupType::Other, "default".to_string())
}

/// `--group-type` when given, else inferred from the name.
pub fn resolve_group_type(
    given: Option<GroupType>,
    name: &str,
    policy: &Policy,
) -> (GroupType, String) {
    match given {
        Some(group_type) => (group_type, "--group-type".to_string()),
        None => infer_group_type_with_source(name, policy),
    }
}

/// Splits `GROUP=VALUE` at the last `=`, since group ids may contain `=`.
pub fn split_group_assignment(arg: &str) -> Result<(String, String), RetentionError> {
    match arg.rsplit_once('=') {
        Some((group, value)) if !group.is_empty() && !value.is_empty() => {
            Ok((group.to_string(), value.to_string()))
        }
        _ => Err(RetentionError::InvalidArgument {
            what: "GROUP=VALUE argument",
            value: arg.to_string(),
            hint: "write the group id, `=`, then the value (split at the last `=`)".to_string(),
        }),
    }
}

/// A date from which one rule allows deletion.
struct Candidate<'p> {
    at: DateTime<Utc>,
    rule: Option<&'p Rule>,
}

fn fixed(action: Action, rule_id: &str, reason: String) -> Decision {
    Decision {
        action,
        rule: rule_id.to_string(),
        deletable_from: None,
        reason,
    }
}

/// The rule if the policy gives it a period (a policy file can disable one with `"none"`).
fn timed<'p>(policy: &'p Policy, id: &str) -> Option<&'p Rule> {
    policy.rule(id).filter(|r| r.period.is_some())
}

fn candidate<'p>(rule: &'p Rule, start: DateTime<Utc>) -> Option<Candidate<'p>> {
    rule.period.map(|p| Candidate {
        at: p.after(start),
        rule: Some(rule),
    })
}

fn reason_for(rule: &Rule, at: DateTime<Utc>, deletable: bool) -> String {
    let when = human_time(&at);
    if rule.kind == RuleKind::Hold {
        let verb = if deletable { "ended" } else { "until" };
        format!("{} {verb} {when}{}", rule.label, rule.citation())
    } else if deletable {
        format!(
            "{}, {}{}",
            rule.label,
            rule.period_phrase(),
            rule.citation()
        )
    } else {
        format!(
            "{}, {}: keep until {when}{}",
            rule.label,
            rule.period_phrase(),
            rule.citation()
        )
    }
}

/// Decides one file. Order: databases, recycle bin (rule 4, overrides 1–3),
/// orphans, active groups, then the latest of the applicable clocks; a file
/// missing from a required evidence bundle is kept (rule 5).
///
/// Ties between clocks go to the more specific rule, in the order
/// observation < restore window < category clock < legal hold, because the
/// specific rule is the more useful explanation.
pub fn decide(facts: &FileFacts, policy: &Policy, now: DateTime<Utc>) -> Decision {
    if facts.is_database {
        return fixed(
            Action::Keep,
            "database.never_delete",
            "database the plan read; databases are never deleted".to_string(),
        );
    }

    let recycle_rule = facts
        .retention
        .recycle_bin_rule
        .and_then(|id| timed(policy, id))
        .filter(|_| facts.under_recycle_bin || facts.category == Category::RecycleBin);
    let chosen = if let Some(rule) = recycle_rule {
        candidate(rule, facts.mtime)
    } else {
        let Some((group, message_time)) = facts.reference else {
            return Decision {
                action: Action::Review,
                rule: "orphan".to_string(),
                deletable_from: None,
                reason: "orphan: no message references this file; review it by hand".to_string(),
            };
        };
        let Some(dissolved_at) = group.dissolved_at else {
            return fixed(Action::Keep, "group.active", "group active".to_string());
        };
        latest_clock(facts, policy, group, dissolved_at, message_time)
    };
    let Some(chosen) = chosen else {
        // Unreachable with a well-formed policy: the candidates above all have periods.
        return fixed(
            Action::Review,
            "orphan",
            "no rule of the policy dates this file; review it by hand".to_string(),
        );
    };

    let deletable = chosen.at <= now;
    let rule_reason = match chosen.rule {
        Some(rule) => reason_for(rule, chosen.at, deletable),
        None => format!(
            "group dissolved {}; every waiting period is disabled by the policy",
            human_time(&chosen.at)
        ),
    };
    let rule_id = chosen
        .rule
        .map_or("observe.72h".to_string(), |r| r.id.clone());

    if facts.in_required_bundle == Some(false) {
        return Decision {
            action: Action::Keep,
            rule: "evidence.require_bundle".to_string(),
            deletable_from: None,
            reason: format!(
                "not preserved in the evidence bundle; otherwise deletable from {} under {rule_id}",
                human_time(&chosen.at)
            ),
        };
    }

    Decision {
        action: if deletable {
            Action::Delete
        } else {
            Action::Keep
        },
        rule: rule_id,
        deletable_from: Some(chosen.at),
        reason: rule_reason,
    }
}

/// Rule 3: the latest of observation, restore window, category clock and legal holds.
fn latest_clock<'p>(
    facts: &FileFacts,
    policy: &'p Policy,
    group: &GroupFacts,
    dissolved_at: DateTime<Utc>,
    message_time: DateTime<Utc>,
) -> Option<Candidate<'p>> {
    let from_dissolution = |id: &str| timed(policy, id).and_then(|r| candidate(r, dissolved_at));
    let from_message = |id: &str| timed(policy, id).and_then(|r| candidate(r, message_time));

    // Listed from general to specific; see the tie rule on `decide`.
    let mut candidates: Vec<Candidate<'p>> = vec![Candidate {
        at: dissolved_at,
        rule: None,
    }];
    candidates.extend(from_dissolution("observe.72h"));
    for clock in facts.retention.file_clocks {
        if clock
            .only
            .is_some_and(|category| category != facts.category)
        {
            continue;
        }
        let Some(rule) = timed(policy, clock.rule) else {
            continue;
        };
        let start = match rule.clock {
            Clock::MessageTime => message_time,
            _ => dissolved_at,
        };
        candidates.extend(candidate(rule, start));
    }
    match group.group_type {
        GroupType::Education => candidates.extend(from_message("hold.education")),
        GroupType::Ecommerce => candidates.extend(from_message("hold.ecommerce")),
        _ => {}
    }

    let mut latest: Option<Candidate<'p>> = None;
    for c in candidates {
        // `>=`: on a tie the later (more specific) candidate wins.
        if latest.as_ref().is_none_or(|l| c.at >= l.at) {
            latest = Some(c);
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{dingtalk, qq, wechat, wecom};
    use chrono::{Duration, TimeZone};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn group(group_type: GroupType, dissolved_at: Option<DateTime<Utc>>) -> GroupFacts {
        GroupFacts {
            group_id: "g1@chatroom".to_string(),
            name: "test group".to_string(),
            group_type,
            group_type_source: "--group-type".to_string(),
            dissolved_at,
            dissolved_source: "--dissolved-at".to_string(),
        }
    }

    fn facts<'a>(
        retention: &'a PlatformRetention,
        group: Option<&'a GroupFacts>,
        message_time: DateTime<Utc>,
    ) -> FileFacts<'a> {
        FileFacts {
            retention,
            rel_path: "Image/a.jpg",
            category: Category::Image,
            under_recycle_bin: false,
            mtime: message_time,
            reference: group.map(|g| (g, message_time)),
            is_database: false,
            in_required_bundle: None,
        }
    }

    /// Asserts keep one second before `boundary` and delete exactly at it, by `rule`.
    fn assert_boundary(f: &FileFacts, policy: &Policy, boundary: DateTime<Utc>, rule: &str) {
        let before = decide(f, policy, boundary - Duration::seconds(1));
        assert_eq!(before.action, Action::Keep, "{before:?}");
        assert_eq!(before.rule, rule, "{before:?}");
        assert_eq!(before.deletable_from, Some(boundary));
        let exactly = decide(f, policy, boundary);
        assert_eq!(exactly.action, Action::Delete, "{exactly:?}");
        assert_eq!(exactly.rule, rule, "{exactly:?}");
        assert_eq!(exactly.deletable_from, Some(boundary));
    }

    const DIS: (i32, u32, u32) = (2025, 9, 1);

    fn dissolved() -> DateTime<Utc> {
        at(DIS.0, DIS.1, DIS.2, 12, 0, 0)
    }

    #[test]
    fn wechat_media_waits_for_72h_observation() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let f = facts(
            &wechat::retention::RETENTION,
            Some(&g),
            at(2025, 8, 20, 9, 0, 0),
        );
        assert_boundary(
            &f,
            &policy,
            dissolved() + Duration::hours(72),
            "observe.72h",
        );
        let d = decide(&f, &policy, dissolved() + Duration::days(30));
        assert_eq!(
            d.reason,
            "observation period, 72 hours after dissolution (seed 001 §七)"
        );
    }

    #[test]
    fn wechat_received_file_7_days_after_dissolution() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let mut f = facts(
            &wechat::retention::RETENTION,
            Some(&g),
            at(2025, 8, 20, 9, 0, 0),
        );
        f.category = Category::File;
        f.category = Category::File;
        assert_boundary(
            &f,
            &policy,
            dissolved() + Duration::days(7),
            "wechat.group_file",
        );
        let d = decide(&f, &policy, dissolved() + Duration::days(7));
        assert_eq!(
            d.reason,
            "group file, 7 days after dissolution (seed 000 §七)"
        );
        let kept = decide(&f, &policy, dissolved());
        assert!(
            kept.reason.contains("keep until 2025-09-08 12:00:00 UTC"),
            "{}",
            kept.reason
        );
    }

    #[test]
    fn wecom_restore_window_and_audit_year() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let f = facts(
            &wecom::retention::RETENTION,
            Some(&g),
            at(2025, 8, 20, 9, 0, 0),
        );
        // The audit archive (365 days) is the latest clock for any wecom file.
        assert_boundary(
            &f,
            &policy,
            dissolved() + Duration::days(365),
            "hold.wecom.audit",
        );
        // With the audit hold shortened, the 7-day restore window decides.
        let mut short =
            Policy::from_toml_str("[[rule]]\nid = \"hold.wecom.audit\"\nperiod = \"1 day\"\n")
                .unwrap();
        assert_boundary(
            &f,
            &short,
            dissolved() + Duration::days(7),
            "wecom.recoverable",
        );
        short.rules.retain(|r| r.id != "hold.wecom.audit");
        assert_boundary(
            &f,
            &short,
            dissolved() + Duration::days(7),
            "wecom.recoverable",
        );
    }

    #[test]
    fn qq_recovery_7_days() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let f = facts(
            &qq::retention::RETENTION,
            Some(&g),
            at(2025, 8, 20, 9, 0, 0),
        );
        assert_boundary(&f, &policy, dissolved() + Duration::days(7), "qq.recovery");
    }

    #[test]
    fn qq_recycle_bin_30_days_from_mtime_overrides_everything() {
        let policy = Policy::builtin();
        let mtime = at(2025, 3, 3, 8, 30, 15);
        // Referenced by an active group: rule 4 still applies.
        let active = group(GroupType::Education, None);
        let mut f = facts(
            &qq::retention::RETENTION,
            Some(&active),
            at(2025, 1, 1, 0, 0, 0),
        );
        f.under_recycle_bin = true;
        f.category = Category::RecycleBin;
        f.mtime = mtime;
        assert_boundary(&f, &policy, mtime + Duration::days(30), "qq.recycle_bin");
        // Orphan in the recycle bin: not reviewed, dated from mtime.
        f.reference = None;
        assert_boundary(&f, &policy, mtime + Duration::days(30), "qq.recycle_bin");
        let d = decide(&f, &policy, mtime + Duration::days(31));
        assert_eq!(
            d.reason,
            "recycle bin, 30 days after the file's mtime (seed 001 §三)"
        );
    }

    #[test]
    fn dingtalk_180_days_from_message() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let message_time = at(2025, 8, 20, 9, 0, 0);
        let f = facts(&dingtalk::retention::RETENTION, Some(&g), message_time);
        assert_boundary(
            &f,
            &policy,
            message_time + Duration::days(180),
            "dingtalk.compliance_archive",
        );
    }

    #[test]
    fn education_six_calendar_months_clamped() {
        let policy = Policy::builtin();
        let g = group(GroupType::Education, Some(dissolved()));
        let message_time = at(2025, 8, 31, 10, 0, 0);
        let f = facts(&wechat::retention::RETENTION, Some(&g), message_time);
        let boundary = at(2026, 2, 28, 10, 0, 0);
        assert_boundary(&f, &policy, boundary, "hold.education");
        let kept = decide(&f, &policy, boundary - Duration::seconds(1));
        assert_eq!(
            kept.reason,
            "education hold until 2026-02-28 10:00:00 UTC (seed 000 §三)"
        );
        let midnight = facts(
            &wechat::retention::RETENTION,
            Some(&g),
            at(2026, 11, 20, 0, 0, 0),
        );
        let kept = decide(&midnight, &policy, dissolved());
        assert_eq!(
            kept.reason,
            "education hold until 2027-05-20 (seed 000 §三)"
        );
    }

    #[test]
    fn ecommerce_three_years_from_leap_day() {
        let policy = Policy::builtin();
        let dis = at(2024, 3, 1, 0, 0, 0);
        let g = group(GroupType::Ecommerce, Some(dis));
        let message_time = at(2024, 2, 29, 18, 0, 0);
        let f = facts(&qq::retention::RETENTION, Some(&g), message_time);
        assert_boundary(&f, &policy, at(2027, 2, 28, 18, 0, 0), "hold.ecommerce");
    }

    #[test]
    fn tie_goes_to_the_more_specific_rule() {
        // Observation and received-file clock both at T_dis + 72 h.
        let policy =
            Policy::from_toml_str("[[rule]]\nid = \"wechat.group_file\"\nperiod = \"72 hours\"\n")
                .unwrap();
        let g = group(GroupType::Other, Some(dissolved()));
        let mut f = facts(
            &wechat::retention::RETENTION,
            Some(&g),
            at(2025, 8, 20, 9, 0, 0),
        );
        f.category = Category::File;
        assert_boundary(
            &f,
            &policy,
            dissolved() + Duration::hours(72),
            "wechat.group_file",
        );
    }

    #[test]
    fn orphans_are_reviewed_and_active_groups_kept() {
        let policy = Policy::builtin();
        let now = at(2030, 1, 1, 0, 0, 0);
        let orphan = facts(&wechat::retention::RETENTION, None, at(2020, 1, 1, 0, 0, 0));
        let d = decide(&orphan, &policy, now);
        assert_eq!((d.action, d.rule.as_str()), (Action::Review, "orphan"));
        assert_eq!(d.deletable_from, None);

        let active = group(GroupType::Other, None);
        let f = facts(
            &wechat::retention::RETENTION,
            Some(&active),
            at(2020, 1, 1, 0, 0, 0),
        );
        let d = decide(&f, &policy, now);
        assert_eq!((d.action, d.rule.as_str()), (Action::Keep, "group.active"));
        assert_eq!(d.reason, "group active");
    }

    #[test]
    fn require_bundle_keeps_unpreserved_files() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let mut f = facts(
            &wechat::retention::RETENTION,
            Some(&g),
            at(2025, 8, 20, 9, 0, 0),
        );
        let now = dissolved() + Duration::days(100);
        f.in_required_bundle = Some(false);
        let d = decide(&f, &policy, now);
        assert_eq!(
            (d.action, d.rule.as_str()),
            (Action::Keep, "evidence.require_bundle")
        );
        assert!(d.reason.starts_with("not preserved in the evidence bundle"));
        f.in_required_bundle = Some(true);
        assert_eq!(decide(&f, &policy, now).action, Action::Delete);
    }

    #[test]
    fn databases_are_never_deleted() {
        let policy = Policy::builtin();
        let g = group(GroupType::Other, Some(dissolved()));
        let mut f = facts(
            &wechat::retention::RETENTION,
            Some(&g),
            at(2020, 1, 1, 0, 0, 0),
        );
        f.is_database = true;
        f.under_recycle_bin = true;
        let d = decide(&f, &policy, at(2040, 1, 1, 0, 0, 0));
        assert_eq!(
            (d.action, d.rule.as_str()),
            (Action::Keep, "database.never_delete")
        );
    }

    #[test]
    fn group_types_from_names_and_overrides() {
        let policy = Policy::builtin();
        assert_eq!(
            infer_group_type_with_source("三年二班家长群", &policy),
            (GroupType::Education, "name keyword 班".to_string())
        );
        assert_eq!(
            infer_group_type("小区团购群", &policy),
            GroupType::Ecommerce
        );
        assert_eq!(
            infer_group_type("XX公司项目组", &policy),
            GroupType::Commercial
        );
        assert_eq!(
            infer_group_type_with_source("周末钓鱼", &policy),
            (GroupType::Other, "default".to_string())
        );
        assert_eq!(
            resolve_group_type(Some(GroupType::Family), "三年二班", &policy),
            (GroupType::Family, "--group-type".to_string())
        );
        let custom =
            Policy::from_toml_str("[keywords]\nfamily = [\"相亲相爱\"]\neducation = []\n").unwrap();
        assert_eq!(
            infer_group_type("相亲相爱一家人", &custom),
            GroupType::Family
        );
        assert_eq!(infer_group_type("三年二班", &custom), GroupType::Other);
        assert_eq!(
            "Ecommerce".parse::<GroupType>().unwrap(),
            GroupType::Ecommerce
        );
        assert!("shop".parse::<GroupType>().is_err());
    }

    #[test]
    fn overridden_period_moves_the_boundary() {
        let policy =
            Policy::from_toml_str("[[rule]]\nid = \"hold.education\"\nperiod = \"1 year\"\n")
                .unwrap();
        let g = group(GroupType::Education, Some(dissolved()));
        let message_time = at(2025, 8, 31, 10, 0, 0);
        let f = facts(&wechat::retention::RETENTION, Some(&g), message_time);
        assert_boundary(&f, &policy, at(2026, 8, 31, 10, 0, 0), "hold.education");
    }

    #[test]
    fn group_assignment_splits_at_last_equals() {
        assert_eq!(
            split_group_assignment("a=b@chatroom=2025-09-01T00:00:00Z").unwrap(),
            (
                "a=b@chatroom".to_string(),
                "2025-09-01T00:00:00Z".to_string()
            )
        );
        assert!(split_group_assignment("nogroup").is_err());
        assert!(split_group_assignment("g=").is_err());
    }

    #[test]
    fn serialized_names() {
        assert_eq!(
            serde_json::to_string(&Action::Delete).unwrap(),
            "\"delete\""
        );
        assert_eq!(
            serde_json::to_string(&Category::ImageThumb).unwrap(),
            "\"image_thumb\""
        );
        assert_eq!(
            serde_json::to_string(&GroupType::Ecommerce).unwrap(),
            "\"ecommerce\""
        );
    }
}
