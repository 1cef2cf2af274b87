//! chatvault: export a group chat's history before the group is dissolved, seal it as
//! evidence, anonymize it where the law asks, and clean local caches on a documented
//! retention schedule.
//!
//! # Architecture
//!
//! Data flows one way:
//!
//! ```text
//! platform ─▶ records ─▶ pipeline ─▶ sinks ─▶ bundle / evidence
//! cache scan ─▶ policy ─▶ plan ─▶ clean / undo
//! ```
//!
//! - [`platform`]: one directory per chat app (reader, cache layout, retention rows,
//!   simulator) behind the [`platform::Platform`] trait; [`platform::BUILT_IN`] is the only
//!   list of them and [`platform::register`] adds one from outside the crate.
//! - [`records`]: the one normalized model; [`source::Source`] streams it.
//! - [`export`]: the single pass — filters, anonymization ([`anonymize`]), media copying —
//!   that hands typed rows to every [`sink::Sink`] (CSV files today).
//! - [`evidence`]: the BagIt writer underneath the sinks (hashing while writing),
//!   atomic publishing, `verify`, `hash`.
//! - [`cleanup`] scans caches, [`retention`] decides per file by the policy (generic rules
//!   plus each platform's), writes the plan and carries it out with re-checks and a journal.
//! - [`cli`]: one module per command; every error type gives its exit code ([`exit`]).

pub mod anonymize;
pub mod chain;
pub mod check;
pub mod cleanup;
pub mod cli;
pub mod demo;
pub mod digest;
pub mod durable;
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
pub mod spill;
pub mod timefmt;
