//! chatvault: export a group chat's history before the group is dissolved, seal it as
//! evidence, anonymize it where the law asks, and clean local caches on a documented
//! retention schedule.
//!
//! Data flows one way: `source` (one module per platform) → `records` → `export`
//! (filters, anonymization) → `sink` (CSV, media) → `evidence` (bag, hashes, verify).
//! Cleanup: cache scan (`cleanup`) → `retention` policy → plan → clean.

pub mod anonymize;
pub mod cleanup;
pub mod cli;
pub mod demo;
pub mod digest;
pub mod evidence;
pub mod exit;
pub mod export;
pub mod failpoint;
#[doc(hidden)]
pub mod fuzz_api;
pub mod inspect;
pub mod lockfile;
pub mod pathsafe;
pub mod platform;
pub mod progress;
pub mod records;
pub mod retention;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod timefmt;
