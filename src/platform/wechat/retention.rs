//! WeChat's retention facts: its rows of the rule table of `spec/retention.md` (the first
//! number is the row's place there) and which of them date cached files.

use crate::retention::decide::Category;
use crate::retention::policy::{rule, Clock as C, FileClock, PlatformRetention, RuleKind as K};
use crate::retention::Period;

pub static RETENTION: PlatformRetention = PlatformRetention {
    rules: RULES,
    // Received group files wait for `wechat.group_file` after dissolution.
    file_clocks: &[FileClock {
        rule: "wechat.group_file",
        only: Some(Category::File),
    }],
    recycle_bin_rule: None,
};

#[rustfmt::skip]
const RULES: &[crate::retention::policy::RuleSpec] = &[
    rule(0, "wechat.chat.roaming", K::Platform, "wechat", "chat history roaming on the server", "WeChat roaming", Some(Period::hours(72)), "", C::MessageTime, "001 §三; 000 §二", "微信 72小时可漫游; 聊天记录保留期限仅72小时"),
    rule(1, "wechat.chat.local", K::Platform, "wechat", "chat history on members' devices", "local chat history", None, "kept (no expiry)", C::None, "000 §七", "聊天记录:所有成员本地保留"),
    rule(2, "wechat.group_file", K::Platform, "wechat", "group files (received files: Download/, appattach)", "group file", Some(Period::days(7)), "", C::Dissolution, "000 §七", "群文件:7天后清除"),
    rule(3, "wechat.qr_code", K::Platform, "wechat", "group QR code", "group QR code", Some(Period::hours(0)), "invalid at once", C::Dissolution, "000 §七", "群二维码:立即失效"),
    rule(4, "wechat.temp_group", K::Platform, "wechat", "temporary session group expires without interaction", "temporary group", Some(Period::hours(72)), "", C::LastMessage, "000 §一", "临时会话群:72小时无互动自动失效"),
    rule(5, "wechat.file.server", K::Platform, "wechat", "files stored on the server", "server file", None, "kept permanently; unrecoverable once deleted", C::None, "001 §三", "永久保存至服务器 / 删除后无法找回"),
    rule(13, "live_group", K::Platform, "wechat", "live-stream group ends with the live stream; unrecoverable", "live group", None, "ends with the live stream", C::LiveEnd, "000 §一", "直播群 … 结束直播自动解散"),
    rule(20, "block.red_packet", K::Procedure, "wechat", "an unclaimed red packet blocks dissolution", "red packet block", None, "blocks until claimed", C::None, "000", "若群内存在未领取的红包,系统会阻止解散操作"),
    rule(21, "notify.over_40", K::Procedure, "wechat", "with more than 40 members, removed members receive a system notice", "over-40 notice", None, "more than 40 members", C::None, "000", "当群成员超过40人时,被移除成员将收到系统通知"),
    rule(26, "zombie.30d", K::Procedure, "wechat", "30 days without a message: the group can be downgraded", "inactive group", Some(Period::days(30)), "", C::LastMessage, "000 §八", "连续30天不发言自动降级"),
];
