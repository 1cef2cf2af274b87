//! WeCom's retention facts: its rows of the rule table of `spec/retention.md` (the first
//! number is the row's place there) and which of them date cached files.

use crate::retention::policy::{rule, Clock as C, FileClock, PlatformRetention, RuleKind as K};
use crate::retention::Period;

pub static RETENTION: PlatformRetention = PlatformRetention {
    rules: RULES,
    // The restore window, then the enterprise audit archive (a legal hold).
    file_clocks: &[
        FileClock {
            rule: "wecom.recoverable",
            only: None,
        },
        FileClock {
            rule: "hold.wecom.audit",
            only: None,
        },
    ],
    recycle_bin_rule: None,
};

#[rustfmt::skip]
const RULES: &[crate::retention::policy::RuleSpec] = &[
    rule(6, "wecom.recoverable", K::Platform, "wecom", "a dissolved enterprise group can be restored", "WeCom restore window", Some(Period::days(7)), "", C::Dissolution, "000 §一", "企业微信群 … 7天内可恢复"),
    rule(7, "wecom.dissolved_record", K::Platform, "wecom", "record of dissolved groups in the admin console", "WeCom dissolved-group record", Some(Period::days(365)), "", C::Dissolution, "000 §五", "后台可查看已解散群组记录(保留365天)"),
    rule(17, "hold.wecom.audit", K::Hold, "wecom", "wecom groups: chat archived to the enterprise audit system", "WeCom audit archive", Some(Period::days(365)), "", C::Dissolution, "001 §四", "聊天记录自动归档至企业审计系统"),
    rule(32, "archive.speed", K::Procedure, "wecom", "wecom archiving takes about 2 minutes per 100-member group", "archive speed", None, "about 2 minutes per 100 members", C::None, "000", "平均每个100人群的存档耗时约2分钟"),
];
