//! QQ's retention facts: its rows of the rule table of `spec/retention.md` (the first
//! number is the row's place there) and which of them date cached files.

use crate::retention::policy::{rule, Clock as C, FileClock, PlatformRetention, RuleKind as K};
use crate::retention::Period;

pub static RETENTION: PlatformRetention = PlatformRetention {
    rules: RULES,
    // A dissolved group can be restored for `qq.recovery`; the recycle bin keeps files for
    // `qq.recycle_bin` after they were put there, whatever else applies.
    file_clocks: &[FileClock {
        rule: "qq.recovery",
        only: None,
    }],
    recycle_bin_rule: Some("qq.recycle_bin"),
};

#[rustfmt::skip]
const RULES: &[crate::retention::policy::RuleSpec] = &[
    rule(8, "qq.roaming", K::Platform, "qq", "chat roaming for members (会员)", "QQ roaming", Some(Period::days(90)), "", C::MessageTime, "001 §三", "会员90天漫游"),
    rule(9, "qq.recycle_bin", K::Platform, "qq", "recycle bin (files under RecycleBin/)", "recycle bin", Some(Period::days(30)), "", C::Mtime, "001 §三", "回收站保留30天"),
    rule(10, "qq.recovery", K::Platform, "qq", "restoring a deleted group on request", "QQ recovery window", Some(Period::days(7)), "", C::Dissolution, "001 §三", "7天内可申请恢复"),
    rule(11, "qq.undo_dissolve", K::Platform, "qq", "undoing a dissolution", "QQ undo dissolution", Some(Period::hours(24)), "", C::Dissolution, "001 §二", "24小时内可恢复"),
];
