//! WeChat's message type codes (sources.md §1), shared by the reader, the simulator and the
//! tests, so that no copy of them can drift.

/// `message.type`.
pub mod msg_type {
    pub const TEXT: i64 = 1;
    pub const IMAGE: i64 = 3;
    pub const VOICE: i64 = 34;
    pub const CARD: i64 = 42;
    pub const VIDEO: i64 = 43;
    pub const EMOJI: i64 = 47;
    pub const LOCATION: i64 = 48;
    /// The app-message family; codes above 65535 whose low 16 bits are 49 belong to it.
    pub const APP: i64 = 49;
    pub const SYSTEM: i64 = 10000;
    pub const RED_PACKET: i64 = 436_207_665;
    pub const TRANSFER: i64 = 419_430_449;
    pub const QUOTE: i64 = 822_083_633;
    pub const FILE: i64 = 1_090_519_089;
    /// "Pat" (拍一拍): an app-message family code.
    pub const PAT: i64 = 922_746_929;
}

/// `<appmsg><type>` of an app message; the high type codes stand for one of these.
pub mod app_type {
    pub const LINK: i64 = 5;
    pub const FILE: i64 = 6;
    pub const QUOTE: i64 = 57;
    pub const TRANSFER: i64 = 2000;
    pub const RED_PACKET: i64 = 2001;
}
