//! The `chatvault` command line: one file per command, each with its clap arguments and
//! a `run`. The binary only sets up the allocator and calls [`main`]; a program (or a test)
//! can run any command in-process with [`run_args`].

pub mod announce;
pub mod approve;
pub mod check;
pub mod clean;
pub mod demo;
pub mod export;
pub mod hash;
pub mod inspect;
pub mod keygen;
pub mod plan;
pub mod policy;
pub mod pseudonym;
pub mod simulate;
pub mod undo;
pub mod verify;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::exit;

#[derive(Parser)]
#[command(
    name = "chatvault",
    version,
    about = "Export, seal, anonymize and clean up group-chat histories before a group is dissolved",
    after_help = "Start with:  chatvault demo\nExit codes:  see README.md (0 ok, 2 usage, 3-15 distinct failures)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Simulate a small WeChat account, export it, and show what to try next.
    #[command(after_help = demo::EXAMPLES)]
    Demo(demo::Args),
    /// Write a simulated account directory (test data that breaks naive importers).
    #[command(after_help = simulate::EXAMPLES)]
    Simulate(simulate::Args),
    /// List a source's groups: members, messages, dates, media, dissolved or active.
    #[command(after_help = inspect::EXAMPLES)]
    Inspect(inspect::Args),
    /// Is a group ready to be dissolved? Red packets, owner, notice, files, holds, export.
    #[command(after_help = check::EXAMPLES)]
    Check(check::Args),
    /// Draft a dissolution announcement, hash it, and find its copies on every platform.
    #[command(after_help = announce::EXAMPLES)]
    Announce(announce::Args),
    /// Export groups to CSV and media, sealed as a BagIt evidence bundle.
    #[command(after_help = export::EXAMPLES)]
    Export(export::Args),
    /// Check a bundle (directory or zip): structure, every hash, missing and extra files.
    #[command(after_help = verify::EXAMPLES)]
    Verify(verify::Args),
    /// SHA-256 of files and directory trees, in sha256sum format.
    #[command(after_help = hash::EXAMPLES)]
    Hash(hash::Args),
    /// Create a pseudonym key (32 random bytes, mode 0600), or with --sign a signing key pair; refuses to overwrite.
    #[command(after_help = keygen::EXAMPLES)]
    Keygen(keygen::Args),
    /// Print members' pseudonyms, to answer "which rows are mine?" without a stored mapping.
    #[command(after_help = pseudonym::EXAMPLES)]
    Pseudonym(pseudonym::Args),
    /// Show the retention policy: every rule with its period, clock and seed citation.
    #[command(after_help = policy::EXAMPLES)]
    Policy(policy::Args),
    /// Decide, per cached file, what may be deleted and when; writes PLAN.json, PLAN.csv, PLAN.json.sha256.
    #[command(after_help = plan::EXAMPLES)]
    Plan(plan::Args),
    /// Sign a plan's SHA-256 with your key: one approval of a two-person review.
    #[command(after_help = approve::EXAMPLES)]
    Approve(approve::Args),
    /// Carry out a plan: a dry run unless --apply; every action re-checked and journaled.
    #[command(after_help = clean::EXAMPLES)]
    Clean(clean::Args),
    /// Move quarantined files back, as recorded in a clean journal.
    #[command(after_help = undo::EXAMPLES)]
    Undo(undo::Args),
}

/// Why a command failed; each domain's error keeps its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Evidence(#[from] crate::evidence::EvidenceError),
    #[error(transparent)]
    Retention(#[from] crate::retention::RetentionError),
    #[error(transparent)]
    Plan(#[from] crate::cleanup::PlanError),
    #[error(transparent)]
    Approval(#[from] crate::retention::ApprovalError),
    #[error(transparent)]
    Anonymize(#[from] crate::anonymize::AnonError),
    #[error(transparent)]
    Time(#[from] crate::timefmt::TimeError),
    #[error(transparent)]
    Lock(#[from] crate::lockfile::LockError),
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    #[error(transparent)]
    Simulate(#[from] crate::simulate::SimError),
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    /// A file named on the command line cannot be read.
    #[error("{0}")]
    NotFound(String),
    /// The command line asks for something the arguments alone could not rule out.
    #[error("{0}")]
    Usage(String),
    /// Confirmation typed at the terminal did not match: nothing was touched.
    #[error("{0}")]
    NotConfirmed(String),
    #[error("cannot read from or write to the terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// The exit code ([`crate::exit`]), from the domain error that caused it.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Source(e) => e.exit_code(),
            CliError::Export(e) => e.exit_code(),
            CliError::Evidence(e) => e.exit_code(),
            CliError::Retention(e) => e.exit_code(),
            CliError::Plan(e) => e.exit_code(),
            CliError::Approval(e) => e.exit_code(),
            CliError::Anonymize(e) => e.exit_code(),
            CliError::Time(e) => e.exit_code(),
            CliError::Lock(e) => e.exit_code(),
            CliError::Demo(e) => e.exit_code(),
            CliError::Simulate(e) => e.exit_code(),
            CliError::Check(e) => e.exit_code(),
            CliError::Chain(e) => e.exit_code(),
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Usage(_) => exit::USAGE,
            CliError::NotConfirmed(_) | CliError::Terminal(_) | CliError::Json(_) => exit::INTERNAL,
        }
    }
}

/// Runs a parsed command; `Ok` carries the exit code of a command that ran to its end
/// (e.g. [`exit::TAMPERED`] for a verify that found a mismatch).
pub fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(args),
        Command::Announce(args) => announce::run(args),
        Command::Export(args) => export::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Hash(args) => hash::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Pseudonym(args) => pseudonym::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Approve(args) => approve::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Undo(args) => undo::run(args),
    }
}

/// Parses `args` (the first is the program name) and runs the command, printing errors as
/// the binary does; returns the exit code.
pub fn run_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = error.print();
            return if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("chatvault: {}", error_chain(&error));
            error.exit_code()
        }
    }
}

/// The command-line entry point: [`run_args`] over the process's arguments.
pub fn main() -> u8 {
    run_args(std::env::args_os())
}

/// An error and its causes, `: `-separated, each said once (a wrapper that repeats its
/// source's text is not repeated).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let said = next.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = next.source();
    }
    text
}

/// The policy of `--policy FILE` layered over the built-in one, or the built-in one.
fn load_policy(
    path: Option<&std::path::Path>,
) -> Result<crate::retention::Policy, crate::retention::RetentionError> {
    match path {
        Some(p) => crate::retention::Policy::from_toml_file(p),
        None => Ok(crate::retention::Policy::builtin()),
    }
}
