//! `chatvault verify`: any BagIt bag's structure and every checksum (RFC 8493 and
//! earlier versions); for chatvault's bundles also evidence.json, the sidecar and, with
//! `--source`, the source's files.

use std::path::PathBuf;

use super::CliError;
use crate::evidence;
use crate::evidence::bagit::Mode;

pub const EXAMPLES: &str = "Examples:\n  chatvault verify /tmp/bundle\n  chatvault verify /tmp/bundle.zip --source /tmp/wx --json\n  chatvault verify ~/received/bag-from-archive --fast\n  chatvault verify --chain b1 b2 b3\n\nExit codes: 0 valid (warnings and files still to be fetched are listed), 8 tampered\n(a checksum differs, files missing or added), 13 not a well-formed bag, 9 not a bag at all.";

#[derive(clap::Args)]
pub struct Args {
    /// The bag: a directory, or a zip holding one top-level bag directory.
    #[arg(required_unless_present = "chain")]
    bundle: Option<PathBuf>,
    /// A chain of increments, oldest first: each must verify, name the one before it and
    /// continue from its high-water marks.
    #[arg(long, num_args = 1.., value_name = "BUNDLE", conflicts_with = "bundle")]
    chain: Vec<PathBuf>,
    /// Also check that the source files still hash as recorded in evidence.json.
    #[arg(long)]
    source: Option<PathBuf>,
    /// Every finding as JSON on stdout (path, kind, expected and actual digests).
    #[arg(long)]
    json: bool,
    /// Check only Payload-Oxum and that every listed file is there, and no other:
    /// nothing is hashed (bagit.py's --fast).
    #[arg(long, conflicts_with = "completeness_only")]
    fast: bool,
    /// Check the structure and that every listed file is there, and no other, without
    /// hashing.
    #[arg(long)]
    completeness_only: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    if !args.chain.is_empty() {
        let report = crate::chain::verify_chain(&args.chain);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.render());
        }
        return Ok(if report.ok() {
            crate::exit::OK
        } else {
            crate::exit::TAMPERED
        });
    }
    let Some(bundle) = args.bundle else {
        return Err(CliError::Usage("give a bundle, or --chain B1 B2 …".into()));
    };
    let mode = if args.fast {
        Mode::Fast
    } else if args.completeness_only {
        Mode::CompletenessOnly
    } else {
        Mode::Full
    };
    let report = evidence::verify(
        &bundle,
        &evidence::VerifyOptions {
            source_root: args.source,
            mode,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.render());
    }
    // Warnings also go to stderr, where scripts and conformance harnesses look for them.
    for warning in &report.warnings {
        eprintln!("warning: {}", evidence::verify::shown(warning));
    }
    Ok(report.outcome().exit_code())
}
