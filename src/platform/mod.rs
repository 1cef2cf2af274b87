//! Platforms: everything chatvault knows about one chat app lives in `platform/<name>/` —
//! its name, detection, reader, cache layout, retention facts (rule rows with their
//! citations) and simulator, with schema constants shared between reader and simulator.
//!
//! [`Platform`] is the only door to a platform, and [`BUILT_IN`] the only list of them:
//! adding a platform is adding its directory and one line there. Code outside a
//! platform's directory never matches on a platform's name.

pub mod dingtalk;
pub mod qq;
pub mod wechat;
pub mod wecom;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::RwLock;

use crate::records::CacheClass;
use crate::retention::policy::PlatformRetention;
use crate::simulate::{MoreOptions, MoreReport, SimError, SimOptions, SimReport};
use crate::source::{Source, SourceError};

/// One chat app chatvault reads.
pub trait Platform: Send + Sync + 'static {
    /// The name used on the command line and recorded in bundles and plans (`wechat`).
    fn name(&self) -> &'static str;
    /// Other names the command line accepts for it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// What an account directory of this platform holds, for "not recognized" messages.
    fn expected_layout(&self) -> &'static str;
    /// `Ok(true)` when `root` holds this platform's data; `Err` when it clearly tries to but
    /// is broken (e.g. `EnMicroMsg.db` that is not SQLite).
    fn probe(&self, root: &Path) -> Result<bool, SourceError>;
    /// Opens an account directory for reading; reading never changes it.
    fn open(&self, root: &Path) -> Result<Box<dyn Source>, SourceError>;
    /// What a file under an account root is (`rel_path` relative to it, `/`-separated), by
    /// the platform's cache layout alone. Both the plan and `clean`'s guard use it, so what
    /// the plan calls a cache file is what `clean` agrees to touch.
    fn cache_class(&self, rel_path: &str) -> CacheClass;
    /// The platform's retention facts, as data the generic policy engine reads.
    fn retention(&self) -> &'static PlatformRetention;
    /// Writes a simulated account directory (test data that breaks naive importers).
    fn simulate(&self, opts: &SimOptions) -> Result<SimReport, SimError>;
    /// Continues an account directory its simulator wrote: more traffic, joins, recalls,
    /// deletions and new groups ([`MoreOptions`]).
    fn simulate_more(&self, opts: &MoreOptions) -> Result<MoreReport, SimError> {
        Err(cannot_continue(self.name(), opts))
    }
}

/// Continues a source a simulator wrote ([`Platform::simulate_more`]).
pub type SimulateMore = fn(&MoreOptions) -> Result<MoreReport, SimError>;

/// A platform as plain data: what [`Platform`] asks, as names and functions. The built-in
/// platforms are descriptors; a platform from outside may be one too, or implement
/// [`Platform`] itself.
#[derive(Debug)]
pub struct Descriptor {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub expected_layout: &'static str,
    pub probe: fn(&Path) -> Result<bool, SourceError>,
    pub open: fn(&Path) -> Result<Box<dyn Source>, SourceError>,
    pub cache_class: fn(&str) -> CacheClass,
    pub retention: &'static PlatformRetention,
    pub simulate: fn(&SimOptions) -> Result<SimReport, SimError>,
    /// `None`: the simulator cannot continue a source it wrote.
    pub simulate_more: Option<SimulateMore>,
}

impl Platform for Descriptor {
    fn name(&self) -> &'static str {
        self.name
    }
    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }
    fn expected_layout(&self) -> &'static str {
        self.expected_layout
    }
    fn probe(&self, root: &Path) -> Result<bool, SourceError> {
        (self.probe)(root)
    }
    fn open(&self, root: &Path) -> Result<Box<dyn Source>, SourceError> {
        (self.open)(root)
    }
    fn cache_class(&self, rel_path: &str) -> CacheClass {
        (self.cache_class)(rel_path)
    }
    fn retention(&self) -> &'static PlatformRetention {
        self.retention
    }
    fn simulate(&self, opts: &SimOptions) -> Result<SimReport, SimError> {
        (self.simulate)(opts)
    }
    fn simulate_more(&self, opts: &MoreOptions) -> Result<MoreReport, SimError> {
        match self.simulate_more {
            Some(more) => more(opts),
            None => Err(cannot_continue(self.name, opts)),
        }
    }
}

fn cannot_continue(platform: &str, opts: &MoreOptions) -> SimError {
    SimError::CannotContinue {
        root: opts.root.clone(),
        reason: format!("the {platform} simulator cannot continue a source"),
    }
}

/// How code outside the platform directories holds a platform.
pub type PlatformRef = &'static dyn Platform;

/// The built-in platforms, one line each.
pub static BUILT_IN: &[PlatformRef] =
    &[&wechat::WECHAT, &qq::QQ, &wecom::WECOM, &dingtalk::DINGTALK];

/// Platforms added at run time by a program that embeds chatvault (see [`register`]).
static REGISTERED: RwLock<Vec<PlatformRef>> = RwLock::new(Vec::new());

/// Adds a platform defined outside this crate; it is then detected, opened, listed in the
/// policy and accepted on the command line like a built-in one. Registering a name twice
/// replaces nothing: the first one stays.
pub fn register(platform: PlatformRef) {
    let same = |p: &PlatformRef| p.name().eq_ignore_ascii_case(platform.name());
    if BUILT_IN.iter().any(same) {
        return;
    }
    // Checked and added under one lock, so two threads cannot both add a name.
    if let Ok(mut registered) = REGISTERED.write() {
        if !registered.iter().any(same) {
            registered.push(platform);
        }
    }
}

/// Every platform, built-in first, in registry order.
pub fn all() -> Vec<PlatformRef> {
    let mut platforms = BUILT_IN.to_vec();
    if let Ok(registered) = REGISTERED.read() {
        platforms.extend(registered.iter().copied());
    }
    platforms
}

/// The platform called `name` (or one of its aliases), ignoring ASCII case.
pub fn by_name(name: &str) -> Option<PlatformRef> {
    all().into_iter().find(|p| {
        p.name().eq_ignore_ascii_case(name)
            || p.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Every platform's name, for usage messages (`wechat, qq, …`).
pub fn names() -> String {
    all()
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A platform name given on the command line that no platform answers to.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown platform `{given}`: use one of {known}")]
pub struct UnknownPlatform {
    pub given: String,
    pub known: String,
}

/// [`by_name`], as a `clap` value parser: an unknown name is a usage error, never a guess.
pub fn parse_name(name: &str) -> Result<PlatformRef, UnknownPlatform> {
    by_name(name).ok_or_else(|| UnknownPlatform {
        given: name.to_string(),
        known: names(),
    })
}

/// The clap value parser for a platform argument: `--help` lists every registered
/// platform, and an unknown name is a usage error naming them, never a guess.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlatformParser;

impl clap::builder::TypedValueParser for PlatformParser {
    type Value = PlatformRef;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<PlatformRef, clap::Error> {
        let name = value.to_string_lossy();
        parse_name(&name).map_err(|e| {
            let mut error = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
            if let Some(arg) = arg {
                error.insert(
                    clap::error::ContextKind::InvalidArg,
                    clap::error::ContextValue::String(arg.to_string()),
                );
            }
            error.insert(
                clap::error::ContextKind::InvalidValue,
                clap::error::ContextValue::String(e.given),
            );
            error.insert(
                clap::error::ContextKind::ValidValue,
                clap::error::ContextValue::Strings(
                    all().iter().map(|p| p.name().to_string()).collect(),
                ),
            );
            error
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(all().into_iter().map(|p| {
            clap::builder::PossibleValue::new(p.name()).aliases(p.aliases().iter().copied())
        })))
    }
}

impl PartialEq for dyn Platform {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for dyn Platform {}

impl Hash for dyn Platform {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl fmt::Debug for dyn Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for dyn Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_in_any_case() {
        let platforms = all();
        for (i, p) in platforms.iter().enumerate() {
            assert_eq!(by_name(p.name()), Some(*p));
            assert_eq!(by_name(&p.name().to_ascii_uppercase()), Some(*p));
            for alias in p.aliases() {
                assert_eq!(by_name(alias), Some(*p), "{alias}");
            }
            for q in &platforms[i + 1..] {
                assert_ne!(p.name(), q.name());
            }
        }
        let error = parse_name("telegram").unwrap_err();
        assert!(error.to_string().contains("telegram"), "{error}");
        assert!(error.to_string().contains(BUILT_IN[0].name()), "{error}");
    }

    /// The guard and the plan see one layout; each built-in platform's simulated source
    /// classifies its databases as databases and has files in the cache categories.
    #[test]
    fn simulated_sources_follow_their_layout() {
        for platform in BUILT_IN {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("123456_v2");
            let mut opts = SimOptions::new(root.clone());
            opts.groups = 2;
            opts.messages = 300;
            opts.seed = 3;
            platform.simulate(&opts).unwrap();
            let source = platform.open(&root).unwrap();
            assert_eq!(source.platform(), *platform);
            for file in source.source_files() {
                assert_eq!(
                    platform.cache_class(&file.rel_path),
                    CacheClass::Database,
                    "{platform}: {}",
                    file.rel_path
                );
            }
            let mut cached = 0;
            for entry in walkdir::WalkDir::new(&root) {
                let entry = entry.unwrap();
                let rel = entry.path().strip_prefix(&root).unwrap().to_string_lossy();
                if entry.file_type().is_file()
                    && matches!(
                        platform.cache_class(&rel),
                        CacheClass::Media(_) | CacheClass::Avatar | CacheClass::RecycleBin
                    )
                {
                    cached += 1;
                }
            }
            assert!(cached > 10, "{platform}: {cached} cache files");
        }
    }
}
