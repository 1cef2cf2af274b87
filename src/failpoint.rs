//! Named crash points for the crash tests. Compiled in only with the `failpoints`
//! feature; without it [`hit`] is an empty inline function.
//!
//! With `CHATVAULT_FAILPOINT=NAME` (or `NAME@N`, the N-th time it is reached) the process
//! aborts at that point, as a power cut or `kill -9` would stop it: no destructors, no
//! cleanup. With `CHATVAULT_FAILPOINT_TRACE=FILE` every point reached is appended to FILE
//! (once per name), so a test can list the points of a run and then crash at each.

/// True when `CHATVAULT_FAILPOINT_FLAGS` (a comma list) names `flag`, in builds with the
/// `failpoints` feature: lets a test take a path this machine would not take by itself
/// (say, a filesystem that cannot swap two names). Always false otherwise.
#[inline(always)]
pub fn flag(flag: &str) -> bool {
    #[cfg(feature = "failpoints")]
    return std::env::var("CHATVAULT_FAILPOINT_FLAGS")
        .is_ok_and(|flags| flags.split(',').any(|f| f == flag));
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = flag;
        false
    }
}

/// Marks a step where a crash must leave the invariants intact.
#[inline(always)]
pub fn hit(name: &'static str) {
    #[cfg(feature = "failpoints")]
    imp::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    struct Config {
        target: Option<(String, u64)>,
        trace: Option<std::path::PathBuf>,
    }

    fn config() -> &'static Config {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| Config {
            target: std::env::var("CHATVAULT_FAILPOINT").ok().map(|spec| {
                match spec.rsplit_once('@').map(|(n, k)| (n, k.parse::<u64>())) {
                    Some((name, Ok(nth))) => (name.to_string(), nth.max(1)),
                    _ => (spec, 1),
                }
            }),
            trace: std::env::var_os("CHATVAULT_FAILPOINT_TRACE").map(Into::into),
        })
    }

    pub fn hit(name: &'static str) {
        static SEEN: OnceLock<Mutex<HashMap<&'static str, u64>>> = OnceLock::new();
        let config = config();
        if config.target.is_none() && config.trace.is_none() {
            return;
        }
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let count = seen.entry(name).or_insert(0);
        *count += 1;
        let count = *count;
        if let (Some(path), 1) = (&config.trace, count) {
            // One write of the whole line, under the lock: points reached on two threads
            // at once (the plan's JSON and CSV are written in parallel) must not interleave
            // into a mangled name that a later run can never hit.
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = file.write_all(format!("{name}\n").as_bytes());
            }
        }
        drop(seen);
        if let Some((target, nth)) = &config.target {
            if target == name && *nth == count {
                std::process::abort();
            }
        }
    }
}
