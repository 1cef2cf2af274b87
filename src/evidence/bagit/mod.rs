//! A validator for any BagIt bag (RFC 8493, and the earlier versions 0.93 to 0.97),
//! whoever made it: bagit-python, bagit-java, Archivematica, DART, exactly, or chatvault.
//!
//! - [`declaration`]: `bagit.txt`, strictly.
//! - [`encoding`]: tag files decoded (UTF-8, ISO-8859-1, UTF-16) while they stream.
//! - [`manifest`], [`path`]: manifest lines, percent-decoding, path safety.
//! - [`baginfo`], [`fetch`]: `bag-info.txt` and `fetch.txt`.
//! - [`algorithm`]: md5 to sha512, several of them in one read of a file.
//! - [`source`]: a bag as a directory or a zip, never extracted.
//! - [`check`]: the rules, applied; findings go to a
//!   [`VerifyReport`](crate::evidence::VerifyReport).

pub mod algorithm;
pub mod baginfo;
pub mod check;
pub mod declaration;
pub mod encoding;
pub mod fetch;
pub mod manifest;
pub mod path;
pub mod source;

pub use algorithm::Algorithm;
pub use check::{check_bag, BagFacts, Mode};
