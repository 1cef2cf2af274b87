//! The retention policy as data: every rule of `spec/retention.md` with its
//! period, clock and seed citation, plus the group-type keywords. A TOML file
//! of the same shape (see [`Policy::to_toml`]) overrides periods and keyword
//! lists on top of the built-in policy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::decide::GroupType;
use super::{add_months, sha256_hex, RetentionError};

/// Version of the policy file shape.
pub const POLICY_FORMAT_VERSION: u32 = 1;

/// What a rule is about; only some kinds can move a file's deletable date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// What a platform keeps, and for how long.
    Platform,
    /// A minimum keep period that overrides cleanup.
    Hold,
    /// A dissolution procedure rule (readiness check); never decides a file.
    Procedure,
    /// An outcome of the cleanup decision that is not a period (orphan, active group, …).
    Decision,
}

/// What a rule's period is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    MessageTime,
    Dissolution,
    BeforeDissolution,
    Deletion,
    Mtime,
    LastMessage,
    LiveEnd,
    None,
}

impl Clock {
    fn phrase(self) -> &'static str {
        match self {
            Clock::MessageTime => "the message",
            Clock::Dissolution => "dissolution",
            Clock::BeforeDissolution => "before dissolution",
            Clock::Deletion => "deletion",
            Clock::Mtime => "the file's mtime",
            Clock::LastMessage => "the last message",
            Clock::LiveEnd => "the end of the live stream",
            Clock::None => "-",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeriodUnit {
    Hours,
    Days,
    Months,
    Years,
}

/// A duration in the policy: hours and days are exact, months and years are
/// calendar units with the day clamped (see [`add_months`]). Written as text
/// such as `"72 hours"`, `"7 days"`, `"6 months"`, `"3 years"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub amount: u32,
    pub unit: PeriodUnit,
}

impl Period {
    pub const fn hours(amount: u32) -> Self {
        Period {
            amount,
            unit: PeriodUnit::Hours,
        }
    }
    pub const fn days(amount: u32) -> Self {
        Period {
            amount,
            unit: PeriodUnit::Days,
        }
    }
    pub const fn months(amount: u32) -> Self {
        Period {
            amount,
            unit: PeriodUnit::Months,
        }
    }
    pub const fn years(amount: u32) -> Self {
        Period {
            amount,
            unit: PeriodUnit::Years,
        }
    }

    /// `start` plus this period; saturates at the largest representable time.
    pub fn after(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let amount = i64::from(self.amount);
        let exact = |d: Option<Duration>| {
            d.and_then(|d| start.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        match self.unit {
            PeriodUnit::Hours => exact(Duration::try_hours(amount)),
            PeriodUnit::Days => exact(Duration::try_days(amount)),
            PeriodUnit::Months => add_months(start, self.amount),
            PeriodUnit::Years => add_months(start, self.amount.saturating_mul(12)),
        }
    }

    /// Parses `"72 hours"`, `"72h"`, `"7 days"`, `"7d"`, `"6 months"`, `"6mo"`, `"3 years"`, `"3y"`, `"0"`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits_end);
        if number.is_empty() {
            return Err("it does not start with a number".to_string());
        }
        let amount: u32 = number
            .parse()
            .map_err(|_| format!("{number} is too large"))?;
        let unit = match unit.trim().to_ascii_lowercase().as_str() {
            "h" | "hour" | "hours" => PeriodUnit::Hours,
            "d" | "day" | "days" => PeriodUnit::Days,
            "mo" | "month" | "months" => PeriodUnit::Months,
            "y" | "year" | "years" => PeriodUnit::Years,
            "" if amount == 0 => PeriodUnit::Hours,
            other => return Err(format!("unknown unit {other:?}")),
        };
        Ok(Period { amount, unit })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = match self.unit {
            PeriodUnit::Hours => ("hour", "hours"),
            PeriodUnit::Days => ("day", "days"),
            PeriodUnit::Months => ("month", "months"),
            PeriodUnit::Years => ("year", "years"),
        };
        let unit = if self.amount == 1 { one } else { many };
        write!(f, "{} {}", self.amount, unit)
    }
}

// Periods are text in TOML and JSON so a person can read and edit them.
impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An optional period as text, `"none"` when there is none (as policy files write it).
mod period_or_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Period;

    pub fn serialize<S: Serializer>(period: &Option<Period>, s: S) -> Result<S::Ok, S::Error> {
        match period {
            Some(period) => period.serialize(s),
            None => s.serialize_str("none"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Period>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        Period::parse(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// One documented rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    /// `wechat`, `qq`, `wecom`, `dingtalk` or `any`.
    pub platform: String,
    /// What the rule is about, in a sentence.
    pub what: String,
    /// Short name used in decision reasons ("group file", "education hold").
    pub label: String,
    /// `None` when the rule is not a duration (kept forever, manual review, …).
    // Written as "none" rather than left out: a dump of a policy that turned a built-in
    // period off must load back with it off, not with the built-in period (the round trip
    // the policy_toml fuzz target checks; input in fuzz/regressions/policy_toml/).
    #[serde(default, with = "period_or_none")]
    pub period: Option<Period>,
    /// The period as the seed states it when it is not a plain duration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub clock: Clock,
    /// Seed and section, e.g. `000 §七`.
    pub seed: String,
    /// The seed's own words.
    pub seed_text: String,
    /// Whether the rule can change a cached file's decision.
    pub affects_files: bool,
}

impl Rule {
    /// `(seed 000 §七)`, or an empty string when the rule has no seed.
    pub fn citation(&self) -> String {
        if self.seed.is_empty() {
            String::new()
        } else {
            format!(" (seed {})", self.seed)
        }
    }

    /// The period and clock as words ("7 days after dissolution").
    pub fn period_phrase(&self) -> String {
        match (&self.period, self.clock) {
            (Some(p), Clock::BeforeDissolution) => format!("{p} before dissolution"),
            (Some(p), Clock::None) => p.to_string(),
            (Some(p), clock) => format!("{p} after {}", clock.phrase()),
            (None, _) if !self.note.is_empty() => self.note.clone(),
            (None, _) => "-".to_string(),
        }
    }
}

/// Group-name keywords per group type; checked in the order
/// education, ecommerce, commercial, family, work — the first match wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupKeywords {
    pub education: Vec<String>,
    pub ecommerce: Vec<String>,
    pub commercial: Vec<String>,
    pub family: Vec<String>,
    pub work: Vec<String>,
}

/// How many approvals `clean --apply` needs (rule `review.two_person`): `[approvals]` in a
/// policy file. `require` holds for every plan; `group_types` for a plan that deletes files
/// of a group of that type. The largest number that applies is the one required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    #[serde(default)]
    pub require: u32,
    #[serde(default)]
    pub group_types: BTreeMap<GroupType, u32>,
}

impl ApprovalPolicy {
    /// Nothing required and nothing said; such a section is left out of dumps and plans,
    /// so the built-in policy and the plans made with it are as they were before approvals.
    pub fn is_empty(&self) -> bool {
        self.require == 0 && self.group_types.is_empty()
    }

    /// The approvals required for a plan whose groups with files to delete have these
    /// types, with why (`"every plan"`, `"education group 三年二班"`), largest first.
    pub fn required_for<'a>(
        &self,
        deleting_groups: impl IntoIterator<Item = (GroupType, &'a str)>,
    ) -> (u32, Vec<String>) {
        let mut reasons: Vec<(u32, String)> = Vec::new();
        if self.require > 0 {
            reasons.push((self.require, "every plan ([approvals] require)".to_string()));
        }
        for (group_type, name) in deleting_groups {
            if let Some(&count) = self.group_types.get(&group_type) {
                if count > 0 {
                    reasons.push((count, format!("{group_type} group {name}")));
                }
            }
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(r.0));
        let required = reasons.first().map_or(0, |r| r.0);
        let why = reasons
            .into_iter()
            .map(|(count, why)| format!("{count} for {why}"))
            .collect();
        (required, why)
    }
}

/// The policy in force: rules and keywords, and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub version: u32,
    pub keywords: GroupKeywords,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    /// Left out when empty, so the built-in policy's dump and SHA-256 stay what they were.
    #[serde(default, skip_serializing_if = "ApprovalPolicy::is_empty")]
    pub approvals: ApprovalPolicy,
    /// `builtin`, or the path of the policy file layered on top of it.
    #[serde(skip)]
    pub source: String,
}

/// One row of a rule table (the generic rows here, a platform's rows in its
/// `platform/<name>/retention.rs`), written with [`rule`].
#[derive(Debug)]
pub struct RuleSpec {
    /// The row's position in `spec/retention.md`; the built-in policy lists rules in this
    /// order whichever table they come from, so its dump and hash do not depend on where a
    /// row is written.
    pub order: u16,
    pub id: &'static str,
    pub kind: RuleKind,
    /// `any`, or the name of the platform whose table holds the row.
    pub platform: &'static str,
    pub what: &'static str,
    pub label: &'static str,
    pub period: Option<Period>,
    pub note: &'static str,
    pub clock: Clock,
    pub seed: &'static str,
    pub seed_text: &'static str,
}

/// One row of a rule table; positional so the tables read like the spec's.
#[allow(clippy::too_many_arguments)]
pub const fn rule(
    order: u16,
    id: &'static str,
    kind: RuleKind,
    platform: &'static str,
    what: &'static str,
    label: &'static str,
    period: Option<Period>,
    note: &'static str,
    clock: Clock,
    seed: &'static str,
    seed_text: &'static str,
) -> RuleSpec {
    RuleSpec {
        order,
        id,
        kind,
        platform,
        what,
        label,
        period,
        note,
        clock,
        seed,
        seed_text,
    }
}

/// What one platform contributes to retention: its rows of the rule table and which of
/// them date its cached files. The generic decision ([`super::decide`]) reads only this.
#[derive(Debug)]
pub struct PlatformRetention {
    /// The platform's rows of the rule table, with their citations.
    pub rules: &'static [RuleSpec],
    /// Clocks every cached file of a dissolved group of the platform waits for, beside the
    /// generic ones (observation, legal holds), listed from general to specific: the
    /// latest wins, and on a tie the later one.
    pub file_clocks: &'static [FileClock],
    /// The rule that dates files in the platform's recycle bin, by their mtime; it
    /// overrides every other clock.
    pub recycle_bin_rule: Option<&'static str>,
}

impl PlatformRetention {
    /// A platform without retention facts of its own: only the generic rules apply.
    pub const NONE: PlatformRetention = PlatformRetention {
        rules: &[],
        file_clocks: &[],
        recycle_bin_rule: None,
    };

    /// The ids of the rules that decide files.
    fn file_rule_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.file_clocks
            .iter()
            .map(|c| c.rule)
            .chain(self.recycle_bin_rule)
    }
}

/// A platform rule that dates cached files, counted from the rule's clock (dissolution or
/// the message).
#[derive(Debug)]
pub struct FileClock {
    pub rule: &'static str,
    /// `None`: every cached file; else only files of this category.
    pub only: Option<super::decide::Category>,
}

/// Generic rules that the cleanup decision reads (a platform's are named by its
/// [`PlatformRetention`]); all others are informational.
const FILE_RULES: &[&str] = &[
    "observe.72h",
    "hold.education",
    "hold.ecommerce",
    "orphan",
    "group.active",
    "evidence.require_bundle",
    "database.never_delete",
];

use Clock as C;
use RuleKind as K;

/// The rows of `spec/retention.md` that hold on every platform; each platform's own rows
/// are in its `platform/<name>/retention.rs`. The first number is the row's place in the
/// spec (rows 0–13 and 17, 20, 21, 26, 32 are platforms').
#[rustfmt::skip]
const GENERIC_RULES: &[RuleSpec] = &[
    // Legal holds.
    rule(14, "hold.education", K::Hold, "any", "education groups (teaching records)", "education hold", Some(Period::months(6)), "", C::MessageTime, "000 §三", "教育类群组应当保存教学记录不少于6个月"),
    rule(15, "hold.ecommerce", K::Hold, "any", "trading / e-commerce groups: transaction vouchers; every media file of the group, as vouchers are not reliably told apart", "e-commerce voucher hold", Some(Period::years(3)), "", C::MessageTime, "001 §八", "电子商务法 交易群需保留3年凭证"),
    rule(16, "hold.ip_content", K::Hold, "any", "groups with intellectual-property content: keep until notarized", "IP content hold", None, "until notarized (manual review)", C::None, "000 §三", "含有知识产权内容的群组建议公证后解散"),
    // Dissolution procedure rules.
    rule(18, "notice.default", K::Procedure, "any", "announce dissolution at least 24 h before", "dissolution notice", Some(Period::hours(24)), "", C::BeforeDissolution, "000 §二", "发送解散公告(建议提前24小时)"),
    rule(19, "notice.commercial", K::Procedure, "any", "commercial groups: announce 30 days before and settle debts", "commercial notice", Some(Period::days(30)), "", C::BeforeDissolution, "000 §三", "商业群组需提前30天公告并完成债务清算"),
    rule(22, "owner.transferred", K::Procedure, "any", "after an ownership transfer the former owner can no longer dissolve", "owner transferred", None, "-", C::None, "000", "群主转让后原群主将失去解散权限"),
    rule(23, "size.limits", K::Procedure, "any", "max members: ordinary 500, wecom 10000, live unlimited", "size limits", None, "500 / 10000 / unlimited members", C::None, "000 §一", "000 §一 table"),
    rule(24, "observe.72h", K::Procedure, "any", "watch for 72 h after dissolution; nothing is deleted before it ends", "observation period", Some(Period::hours(72)), "", C::Dissolution, "001 §七", "设置72小时观察期"),
    rule(25, "crossborder.48h", K::Procedure, "any", "cross-border members: data clearing takes 48 h more; consider GDPR", "cross-border clearing", Some(Period::hours(48)), "", C::Dissolution, "000 §六", "跨境数据清除:需额外48小时同步"),
    rule(27, "announce.hash", K::Procedure, "any", "publish one announcement on every platform, verified by a hash", "announcement hash", None, "-", C::None, "001 §七", "建议使用哈希值校验公告一致性"),
    rule(28, "review.two_person", K::Procedure, "any", "important groups: two-person review", "two-person review", None, "-", C::None, "001 §八", "对重要群组实施双人复核制"),
    rule(29, "anonymize", K::Procedure, "any", "chat records must be anonymized (Data Security Law)", "anonymization", None, "-", C::None, "001 §八", "数据安全法 聊天记录需匿名化处理"),
    rule(30, "inform.pipl", K::Procedure, "any", "members must be told where their data goes (PIPL)", "inform members", None, "-", C::None, "001 §八", "个人信息保护法 需告知成员数据去向"),
    rule(31, "export.csv", K::Procedure, "any", "WeChat's own migration produces .csv; QQ roaming is packed; DingTalk exports contacts", "export formats", None, "-", C::None, "001 §七", "数据导出阶段"),
    // Outcomes of the cleanup decision that are not periods (spec retention.md, "The default cleanup decision").
    rule(33, "orphan", K::Decision, "any", "a file no message row references is reviewed, never deleted by default", "orphan", None, "manual review", C::None, "", ""),
    rule(34, "group.active", K::Decision, "any", "a file of a group that is not dissolved is kept", "group active", None, "kept while the group is active", C::None, "", ""),
    rule(35, "evidence.require_bundle", K::Decision, "any", "with --require-bundle, a file whose SHA-256 is not in the bundle manifest is kept", "not preserved in the evidence bundle", None, "kept until preserved", C::None, "", ""),
    rule(36, "database.never_delete", K::Decision, "any", "databases the plan read are never deleted", "database", None, "never deleted", C::None, "", ""),
];

fn to_strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A policy file: every field optional so a user writes only what changes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: Option<u32>,
    keywords: Option<KeywordsOverride>,
    #[serde(default)]
    rule: Vec<RuleOverride>,
    approvals: Option<ApprovalPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeywordsOverride {
    education: Option<Vec<String>>,
    ecommerce: Option<Vec<String>>,
    commercial: Option<Vec<String>>,
    family: Option<Vec<String>>,
    work: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleOverride {
    id: String,
    // Text rather than Period so "none" can remove a period.
    period: Option<String>,
    what: Option<String>,
    label: Option<String>,
    note: Option<String>,
    seed: Option<String>,
    seed_text: Option<String>,
    // Fixed by the decision procedure; accepted only when unchanged so a
    // dumped policy loads back.
    kind: Option<RuleKind>,
    platform: Option<String>,
    clock: Option<Clock>,
    affects_files: Option<bool>,
}

impl Policy {
    /// The default policy of `spec/retention.md`.
    pub fn builtin() -> Policy {
        let platforms = crate::platform::all();
        let mut specs: Vec<&RuleSpec> = GENERIC_RULES.iter().collect();
        let mut file_rules: BTreeSet<&str> = FILE_RULES.iter().copied().collect();
        for platform in &platforms {
            let retention = platform.retention();
            specs.extend(retention.rules);
            file_rules.extend(retention.file_rule_ids());
        }
        specs.sort_by_key(|spec| spec.order);
        let rules = specs
            .into_iter()
            .map(|spec| Rule {
                id: spec.id.to_string(),
                kind: spec.kind,
                platform: spec.platform.to_string(),
                what: spec.what.to_string(),
                label: spec.label.to_string(),
                period: spec.period,
                note: spec.note.to_string(),
                clock: spec.clock,
                seed: spec.seed.to_string(),
                seed_text: spec.seed_text.to_string(),
                affects_files: file_rules.contains(spec.id),
            })
            .collect();
        Policy {
            version: POLICY_FORMAT_VERSION,
            keywords: GroupKeywords {
                education: to_strings(&["班", "课", "家长", "学", "老师", "培训", "教育"]),
                ecommerce: to_strings(&["团购", "订单", "商城", "代购", "售后", "拼单", "电商"]),
                commercial: to_strings(&["公司", "项目", "合作", "客户", "商务"]),
                family: Vec::new(),
                work: Vec::new(),
            },
            rules,
            approvals: ApprovalPolicy::default(),
            source: "builtin".to_string(),
        }
    }

    /// The built-in policy with the periods, texts and keyword lists of a TOML file applied.
    pub fn from_toml_file(path: &Path) -> Result<Policy, RetentionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RetentionError::io("read policy file", path, e))?;
        let mut policy = Policy::from_toml_str(&text).map_err(|e| match e {
            RetentionError::PolicyFile { message, .. } => RetentionError::PolicyFile {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        policy.source = path.display().to_string();
        Ok(policy)
    }

    /// Same as [`Policy::from_toml_file`] for text already in memory.
    pub fn from_toml_str(text: &str) -> Result<Policy, RetentionError> {
        let file_error = |message: String| RetentionError::PolicyFile {
            path: "<text>".into(),
            message,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| file_error(e.to_string()))?;
        if let Some(version) = file.version {
            if version != POLICY_FORMAT_VERSION {
                return Err(file_error(format!(
                    "version {version} is not supported (this tool reads version {POLICY_FORMAT_VERSION})"
                )));
            }
        }
        let mut policy = Policy::builtin();
        policy.source = "text".to_string();
        if let Some(k) = file.keywords {
            let lists = [
                (k.education, &mut policy.keywords.education),
                (k.ecommerce, &mut policy.keywords.ecommerce),
                (k.commercial, &mut policy.keywords.commercial),
                (k.family, &mut policy.keywords.family),
                (k.work, &mut policy.keywords.work),
            ];
            for (new, target) in lists {
                if let Some(new) = new {
                    if new.iter().any(|w| w.trim().is_empty()) {
                        return Err(file_error(
                            "an empty keyword would match every group name".to_string(),
                        ));
                    }
                    *target = new;
                }
            }
        }
        if let Some(approvals) = file.approvals {
            policy.approvals = approvals;
        }
        let mut seen = BTreeSet::new();
        for over in file.rule {
            if !seen.insert(over.id.clone()) {
                return Err(file_error(format!("rule {} is given twice", over.id)));
            }
            let Some(rule) = policy.rules.iter_mut().find(|r| r.id == over.id) else {
                return Err(file_error(format!(
                    "unknown rule id {:?}; `chatvault policy` lists the ids",
                    over.id
                )));
            };
            let fixed = |field: &str, same: bool| {
                if same {
                    Ok(())
                } else {
                    Err(file_error(format!(
                        "rule {}: {field} is fixed by the decision procedure; only period, keywords and texts can change",
                        over.id
                    )))
                }
            };
            fixed("kind", over.kind.is_none_or(|k| k == rule.kind))?;
            fixed(
                "platform",
                over.platform.as_ref().is_none_or(|p| *p == rule.platform),
            )?;
            fixed("clock", over.clock.is_none_or(|c| c == rule.clock))?;
            fixed(
                "affects_files",
                over.affects_files.is_none_or(|a| a == rule.affects_files),
            )?;
            if let Some(text) = over.period {
                rule.period = if text.trim().eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(
                        Period::parse(&text).map_err(|reason| RetentionError::InvalidPeriod {
                            rule_id: over.id.clone(),
                            value: text.clone(),
                            reason,
                        })?,
                    )
                };
            }
            let texts = [
                (over.what, &mut rule.what),
                (over.label, &mut rule.label),
                (over.note, &mut rule.note),
                (over.seed, &mut rule.seed),
                (over.seed_text, &mut rule.seed_text),
            ];
            for (new, target) in texts {
                if let Some(new) = new {
                    *target = new;
                }
            }
        }
        Ok(policy)
    }

    /// The whole policy as TOML, in the shape [`Policy::from_toml_file`] reads.
    pub fn to_toml(&self) -> Result<String, RetentionError> {
        let body = toml::to_string(self).map_err(|e| RetentionError::Serialize {
            what: "policy as TOML",
            message: e.to_string(),
        })?;
        Ok(format!(
            "# chatvault retention policy (source: {}). Edit periods (\"72 hours\", \"7 days\",\n\
             # \"6 months\", \"3 years\", \"none\") and keyword lists; load with --policy.\n\
             # Approvals that clean --apply needs (rule review.two_person), e.g.:\n\
             #   [approvals]\n\
             #   require = 1                                      # for every plan\n\
             #   group_types = {{ education = 2, ecommerce = 2 }}   # for plans deleting such groups' files\n{body}",
            self.source
        ))
    }

    /// SHA-256 of the policy text in force: the canonical TOML of the rules and
    /// keywords, so two files that amount to the same policy hash the same.
    pub fn sha256(&self) -> Result<String, RetentionError> {
        let body = toml::to_string(self).map_err(|e| RetentionError::Serialize {
            what: "policy as TOML",
            message: e.to_string(),
        })?;
        Ok(sha256_hex(body.as_bytes()))
    }

    /// `none required`, or `1 for every plan; education 2, ecommerce 2`.
    fn approvals_phrase(&self) -> String {
        let per_type: Vec<String> = self
            .approvals
            .group_types
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        match (self.approvals.require, per_type.is_empty()) {
            (0, true) => "none required".to_string(),
            (0, false) => per_type.join(", "),
            (n, true) => format!("{n} for every plan"),
            (n, false) => format!("{n} for every plan; {}", per_type.join(", ")),
        }
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.id.clone()).collect()
    }

    /// JSON for `chatvault policy --json`.
    pub fn to_json(&self) -> Result<String, RetentionError> {
        let value = serde_json::json!({
            "version": self.version,
            "source": self.source,
            "sha256": self.sha256()?,
            "keywords": self.keywords,
            "rules": self.rules,
            "approvals": self.approvals,
        });
        serde_json::to_string_pretty(&value).map_err(|e| RetentionError::Serialize {
            what: "policy as JSON",
            message: e.to_string(),
        })
    }

    /// A human table for `chatvault policy`.
    pub fn to_table(&self) -> String {
        let header = ["id", "kind", "platform", "period", "files", "seed", "what"];
        let rows: Vec<[String; 7]> = self
            .rules
            .iter()
            .map(|r| {
                [
                    r.id.clone(),
                    format!("{:?}", r.kind).to_lowercase(),
                    r.platform.clone(),
                    r.period_phrase(),
                    if r.affects_files { "yes" } else { "no" }.to_string(),
                    r.seed.clone(),
                    r.what.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(display_width);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row.iter()).take(6) {
                *width = (*width).max(display_width(cell));
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    let pad = widths[i].saturating_sub(display_width(cell));
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad + 2));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = String::new();
        out.push_str(&line(&header.map(String::from)));
        out.push('\n');
        for row in &rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out.push_str(&format!(
            "\n\"files\" = whether the rule can change a cached file's cleanup decision.\nGroup-name keywords (first match wins, in this order):\n  education:  {}\n  ecommerce:  {}\n  commercial: {}\n  family:     {}\n  work:       {}\nApprovals for clean --apply (review.two_person): {}\nsource: {}\n",
            self.keywords.education.join(" "),
            self.keywords.ecommerce.join(" "),
            self.keywords.commercial.join(" "),
            self.keywords.family.join(" "),
            self.keywords.work.join(" "),
            self.approvals_phrase(),
            self.source,
        ));
        out
    }
}

/// Terminal columns, counting CJK and other wide characters as two so the table lines up.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_IDS: &[&str] = &[
        "wechat.chat.roaming",
        "wechat.chat.local",
        "wechat.group_file",
        "wechat.qr_code",
        "wechat.temp_group",
        "wechat.file.server",
        "wecom.recoverable",
        "wecom.dissolved_record",
        "qq.roaming",
        "qq.recycle_bin",
        "qq.recovery",
        "qq.undo_dissolve",
        "dingtalk.compliance_archive",
        "live_group",
        "hold.education",
        "hold.ecommerce",
        "hold.ip_content",
        "hold.wecom.audit",
        "notice.default",
        "notice.commercial",
        "block.red_packet",
        "notify.over_40",
        "owner.transferred",
        "size.limits",
        "observe.72h",
        "crossborder.48h",
        "zombie.30d",
        "announce.hash",
        "review.two_person",
        "anonymize",
        "inform.pipl",
        "export.csv",
        "archive.speed",
    ];

    #[test]
    fn builtin_has_every_spec_rule_once() {
        let policy = Policy::builtin();
        for id in SPEC_IDS {
            assert_eq!(
                policy.rules.iter().filter(|r| r.id == *id).count(),
                1,
                "rule {id}"
            );
        }
        for id in FILE_RULES {
            assert!(policy.rule(id).is_some(), "file rule {id} missing");
        }
        // Procedure rules are listed but flagged as not deciding files, except the observation period.
        assert!(!policy.rule("notice.default").unwrap().affects_files);
        assert!(policy.rule("observe.72h").unwrap().affects_files);
        let table = policy.to_table();
        for id in SPEC_IDS {
            assert!(table.contains(id), "table misses {id}");
        }
        let json: serde_json::Value = serde_json::from_str(&policy.to_json().unwrap()).unwrap();
        assert_eq!(json["rules"].as_array().unwrap().len(), policy.rules.len());
    }

    #[test]
    fn dump_loads_back_to_the_same_policy() {
        let policy = Policy::builtin();
        let text = policy.to_toml().unwrap();
        let loaded = Policy::from_toml_str(&text).unwrap();
        assert_eq!(loaded.rules, policy.rules);
        assert_eq!(loaded.keywords, policy.keywords);
        assert_eq!(loaded.sha256().unwrap(), policy.sha256().unwrap());
    }

    #[test]
    fn policy_file_overrides_period_and_changes_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(
            &path,
            "[keywords]\nfamily = [\"家\"]\n\n[[rule]]\nid = \"wechat.group_file\"\nperiod = \"14 days\"\n",
        )
        .unwrap();
        let policy = Policy::from_toml_file(&path).unwrap();
        assert_eq!(
            policy.rule("wechat.group_file").unwrap().period,
            Some(Period::days(14))
        );
        assert_eq!(policy.keywords.family, vec!["家".to_string()]);
        // Lists the file did not name keep their built-in values.
        assert_eq!(
            policy.keywords.education,
            Policy::builtin().keywords.education
        );
        assert_ne!(
            policy.sha256().unwrap(),
            Policy::builtin().sha256().unwrap()
        );
        assert_eq!(policy.source, path.display().to_string());
    }

    #[test]
    fn policy_file_errors_are_actionable() {
        let unknown =
            Policy::from_toml_str("[[rule]]\nid = \"wechat.group_files\"\nperiod = \"1 day\"\n")
                .unwrap_err()
                .to_string();
        assert!(unknown.contains("unknown rule id"), "{unknown}");
        let bad_period =
            Policy::from_toml_str("[[rule]]\nid = \"hold.education\"\nperiod = \"6 fortnights\"\n")
                .unwrap_err()
                .to_string();
        assert!(bad_period.contains("hold.education"), "{bad_period}");
        let clock = Policy::from_toml_str("[[rule]]\nid = \"hold.education\"\nclock = \"mtime\"\n")
            .unwrap_err()
            .to_string();
        assert!(clock.contains("fixed"), "{clock}");
        assert!(
            Policy::from_toml_str("[[rule]]\nid = \"hold.education\"\nperiode = \"1y\"\n").is_err()
        );
    }

    #[test]
    fn approvals_load_dump_back_and_leave_the_builtin_hash_alone() {
        let builtin = Policy::builtin();
        assert!(builtin.approvals.is_empty());
        assert!(!builtin.to_toml().unwrap().contains("\n[approvals]"));
        let policy = Policy::from_toml_str(
            "[approvals]\nrequire = 1\ngroup_types = { education = 2, ecommerce = 3 }\n",
        )
        .unwrap();
        assert_eq!(policy.approvals.require, 1);
        assert_eq!(policy.approvals.group_types[&GroupType::Ecommerce], 3);
        assert_ne!(policy.sha256().unwrap(), builtin.sha256().unwrap());
        let again = Policy::from_toml_str(&policy.to_toml().unwrap()).unwrap();
        assert_eq!(again, policy);
        assert!(policy
            .to_table()
            .contains("1 for every plan; education 2, ecommerce 3"));

        // The largest number that applies, with every reason.
        let (required, why) = policy.approvals.required_for([
            (GroupType::Education, "三年二班"),
            (GroupType::Family, "家"),
        ]);
        assert_eq!(required, 2);
        assert_eq!(
            why,
            [
                "2 for education group 三年二班",
                "1 for every plan ([approvals] require)"
            ]
        );
        assert_eq!(builtin.approvals.required_for([]), (0, Vec::new()));

        for bad in [
            "[approvals]\ngroup_types = { schools = 2 }\n",
            "[approvals]\nrequired = 2\n",
            "[approvals]\nrequire = -1\n",
        ] {
            assert!(Policy::from_toml_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_parse_and_print() {
        assert_eq!(Period::parse("72h").unwrap(), Period::hours(72));
        assert_eq!(Period::parse("7 days").unwrap(), Period::days(7));
        assert_eq!(Period::parse("6mo").unwrap(), Period::months(6));
        assert_eq!(Period::parse("3 Years").unwrap(), Period::years(3));
        assert_eq!(Period::parse("0").unwrap(), Period::hours(0));
        assert!(Period::parse("days").is_err());
        assert!(Period::parse("5 weeks").is_err());
        assert_eq!(Period::days(1).to_string(), "1 day");
        assert_eq!(Period::years(3).to_string(), "3 years");
    }
}
