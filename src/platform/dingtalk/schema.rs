//! DingTalk's content types (`tbmsg_*.contentType`, sources.md §4), shared by the reader,
//! the simulator and the tests, so that no copy of them can drift.

pub const TEXT: i64 = 1;
pub const IMAGE: i64 = 2;
pub const SYSTEM: i64 = 102;
pub const VOICE: i64 = 300;
pub const VIDEO: i64 = 400;
pub const FILE: i64 = 501;
pub const RED_PACKET: i64 = 902;
