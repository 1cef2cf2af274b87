//! Tests of what only one platform has.

mod dingtalk;
mod qq;
mod wechat;
mod wecom;
