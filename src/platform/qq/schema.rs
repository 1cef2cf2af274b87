//! The QQ NT message body's numbers (sources.md §2), shared by the reader (`body.rs`), the
//! simulator and the tests, so that no copy of them can drift.

/// Protobuf field numbers of the message body and its elements.
pub mod field {
    /// The repeated element field, and the number some QQ versions use instead.
    pub const ELEMENT: u32 = 40800;
    pub const ELEMENT_ALT: u32 = 48000;
    pub const ELEMENT_ID: u32 = 45001;
    pub const ELEMENT_TYPE: u32 = 45002;
    pub const TEXT: u32 = 45101;
    pub const AT_TYPE: u32 = 45102;
    pub const AT_UID: u32 = 45103;
    pub const FILE_NAME: u32 = 45402;
    pub const FILE_PATH: u32 = 45403;
    pub const FILE_SIZE: u32 = 45405;
    pub const MD5: u32 = 45406;
    pub const VIDEO_SECONDS: u32 = 45410;
    pub const PIC_WIDTH: u32 = 45411;
    pub const PIC_HEIGHT: u32 = 45412;
    pub const VOICE_SECONDS: u32 = 45906;
    pub const REPLY_SEQ: u32 = 47402;
    pub const REPLY_UID: u32 = 47403;
    pub const FACE_INDEX: u32 = 47601;
    pub const FACE_TEXT: u32 = 47602;
    pub const ARK_JSON: u32 = 47901;
    pub const RED_PACKET_AMOUNT: u32 = 48412;
    pub const RED_PACKET_TITLE: u32 = 48443;
    /// Into how many parts a red packet is split (varint; may be absent).
    pub const RED_PACKET_PARTS: u32 = 48444;
    pub const FORWARD_XML: u32 = 48602;
}

/// Element types (field `45002`).
pub mod element_type {
    pub const TEXT: u64 = 1;
    pub const PICTURE: u64 = 2;
    pub const FILE: u64 = 3;
    pub const VOICE: u64 = 4;
    pub const VIDEO: u64 = 5;
    pub const FACE: u64 = 6;
    /// A reply: what it quotes is not exported.
    pub const REPLY: u64 = 7;
    pub const GREY_TIP: u64 = 8;
    pub const RED_PACKET: u64 = 9;
    /// Types the spec does not list (ark cards, forwards): the reader skips them.
    pub const ARK: u64 = 10;
    pub const MULTI_FORWARD: u64 = 16;
}
