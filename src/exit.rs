//! Exit codes of the `chatvault` command, one per failure class (README.md, "Exit codes").
//! Each library error type says which class it is in with its `exit_code()`.

/// Success.
pub const OK: u8 = 0;
/// A bug or an unexpected failure.
pub const INTERNAL: u8 = 1;
/// The command line asks for something impossible (also clap's own usage errors).
pub const USAGE: u8 = 2;
/// The source, a group or a file named does not exist.
pub const NOT_FOUND: u8 = 3;
/// The directory holds no chat data chatvault recognizes.
pub const UNRECOGNIZED: u8 = 4;
/// The source is damaged: not SQLite, truncated, a table missing.
pub const DAMAGED: u8 = 5;
/// The source is in use or changed while it was read: close the chat app.
pub const SOURCE_BUSY: u8 = 6;
/// The output cannot be written (exists, overlaps the source, disk full, …).
pub const OUTPUT: u8 = 7;
/// A hash does not match: the bundle or a file was changed.
pub const TAMPERED: u8 = 8;
/// The input is not an evidence bundle at all.
pub const NOT_A_BUNDLE: u8 = 9;
/// A plan was refused: its checksum, root or platform does not hold.
pub const PLAN_REFUSED: u8 = 10;
/// `clean` or `undo` skipped files that changed since the plan.
pub const CLEAN_SKIPPED: u8 = 11;
/// Another chatvault run holds the lock on the same target.
pub const LOCKED: u8 = 12;
/// The input is a bag, but not a well-formed one: bagit.txt, a manifest, bag-info.txt or
/// fetch.txt breaks the BagIt format (RFC 8493), though no checksum was found wrong.
pub const INVALID_BAG: u8 = 13;
/// `check`: something blocks the dissolution (an unclaimed red packet, no bundle, …).
pub const BLOCKED: u8 = 14;
/// `clean --apply` refused for want of approvals: fewer distinct trusted keys signed this
/// very plan than required, or a signature file is malformed or does not verify.
pub const APPROVAL_REFUSED: u8 = 15;
