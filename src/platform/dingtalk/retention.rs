//! DingTalk's retention facts: its rows of the rule table of `spec/retention.md` (the first
//! number is the row's place there) and which of them date cached files.

use crate::retention::policy::{rule, Clock as C, FileClock, PlatformRetention, RuleKind as K};
use crate::retention::Period;

pub static RETENTION: PlatformRetention = PlatformRetention {
    rules: RULES,
    // The compliance archive keeps every message's files for its period.
    file_clocks: &[FileClock {
        rule: "dingtalk.compliance_archive",
        only: None,
    }],
    recycle_bin_rule: None,
};

#[rustfmt::skip]
const RULES: &[crate::retention::policy::RuleSpec] = &[
    rule(12, "dingtalk.compliance_archive", K::Platform, "dingtalk", "compliance archive", "DingTalk compliance archive", Some(Period::days(180)), "", C::MessageTime, "001 §三", "合规存档180天"),
];
