//! Every platform end to end, one suite: simulated sources with edge cases, exported by the
//! binary and checked against each platform's ground truth (read straight from the source by
//! the rules of sources.md), bundles validated by independent tools, anonymized exports
//! searched for leaks, retention plans applied; bad inputs refused clearly.
//!
//! - `suite.rs`: each check, written once, run on every platform below;
//! - `truth/<platform>.rs`: the platform's ground-truth reader, what its simulated sources
//!   contain, and its bad inputs, as data;
//! - `specific/<platform>.rs`: what only that platform has.
//!
//! Adding a platform: its `truth/<platform>.rs`, and one line here.

#[path = "../common/mod.rs"]
mod common;
mod increment;
mod specific;
mod suite;
mod truth;

pub const PLATFORMS: &[&truth::Source] = &[
    &truth::wechat::SOURCE,
    &truth::qq::SOURCE,
    &truth::wecom::SOURCE,
    &truth::dingtalk::SOURCE,
];
