//! `chatvault export`: groups to CSV and media, sealed as a BagIt evidence bundle.

use std::path::PathBuf;

use super::CliError;
use crate::export::{self, ExportOptions};
use crate::sink::csv::CsvStyle;
use crate::sink::Format;
use crate::{anonymize, timefmt};

pub const EXAMPLES: &str = "Examples:\n  chatvault export /tmp/wx --out /tmp/bundle\n  chatvault export /tmp/wx --out /tmp/bundle --group 123@chatroom --since 2025-06-01 --zip\n  chatvault export /tmp/wx --out /tmp/bundle --format csv,jsonl,html --case-id 2026-0042\n  chatvault export /tmp/wx --out /tmp/bundle2 --after /tmp/bundle     # only what is new, chained";

#[derive(clap::Args)]
pub struct Args {
    /// The account directory.
    source: PathBuf,
    /// The bundle to create (a directory; with --zip, NAME.zip).
    #[arg(long)]
    out: PathBuf,
    /// Export only this group (repeatable).
    #[arg(long = "group", value_name = "ID")]
    groups: Vec<String>,
    /// Only messages at or after this time.
    #[arg(long)]
    since: Option<String>,
    /// Only messages at or before this time.
    #[arg(long)]
    until: Option<String>,
    /// Offset for the time_local column.
    #[arg(long, default_value = "+08:00", allow_hyphen_values = true)]
    tz: String,
    /// UTF-8 without the byte-order mark.
    #[arg(long)]
    no_bom: bool,
    /// Output formats, a comma list of csv, jsonl, txt, html (each a file set in the bundle's data/; html is the transcript and the report, data/html/index.html).
    #[arg(long, value_name = "LIST", default_value = "csv,html", value_parser = Format::parse_list)]
    format: ::std::vec::Vec<Format>,
    /// Turn off the formula-injection guard.
    #[arg(long)]
    csv_raw: bool,
    /// Do not copy media (media.csv still lists them as `excluded`).
    #[arg(long)]
    no_media: bool,
    /// Also export one-to-one chats.
    #[arg(long)]
    include_private: bool,
    /// Write NAME.zip instead of a directory.
    #[arg(long)]
    zip: bool,
    /// Replace an existing bundle (only once the new one is complete).
    #[arg(long)]
    force: bool,
    /// Use this time everywhere a time is recorded, for a byte-identical bundle.
    #[arg(long, value_name = "T")]
    fixed_time: Option<String>,
    /// Replace members by keyed pseudonyms and PII by typed tokens; media left out.
    #[arg(long, requires = "key_file")]
    anonymize: bool,
    /// The pseudonym key (32 bytes; created with mode 0600 if absent). Only its fingerprint is recorded.
    #[arg(long, value_name = "KEYFILE")]
    key_file: Option<PathBuf>,
    /// With --anonymize: copy media too, under message-id names.
    #[arg(long, requires = "anonymize")]
    with_media: bool,
    /// The case this export is evidence in (recorded in evidence.json, bag-info.txt and the report).
    #[arg(long, value_name = "ID")]
    case_id: Option<String>,
    /// Who made the export (recorded like --case-id).
    #[arg(long, value_name = "NAME")]
    examiner: Option<String>,
    /// A `chatvault check --json` of this source: copied to data/check.json, shown in the report.
    #[arg(long, value_name = "FILE")]
    checklist: Option<PathBuf>,
    /// Export only what is new since this bundle (it must verify), chained to it by its bag digest.
    #[arg(long, value_name = "BUNDLE")]
    after: Option<PathBuf>,
    /// With --after: do not compare the messages behind the predecessor's marks
    /// (no data/changes.csv; reads only what is new).
    #[arg(long, requires = "after")]
    no_changes: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let mut opts = ExportOptions::new(args.source, args.out);
    opts.groups = args.groups;
    if let Some(previous) = &args.after {
        let previous = crate::chain::open_predecessor(previous)?;
        // The predecessor's selection, unless one is given.
        let theirs = &previous.filters;
        if opts.groups.is_empty() && theirs["media"].is_boolean() {
            opts.groups = theirs["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect();
        }
        if theirs["include_private"] == true && !args.include_private {
            eprintln!("note: one-to-one chats included, as in {}", previous.name);
        }
        if theirs["media"] != !args.no_media {
            eprintln!(
                "note: media are {} this time, unlike {}",
                if args.no_media { "left out" } else { "copied" },
                previous.name
            );
        }
        opts.include_private = args.include_private || theirs["include_private"] == true;
        opts.after = Some(previous);
        opts.changes = !args.no_changes;
    }
    opts.since = args.since.as_deref().map(timefmt::parse_time).transpose()?;
    opts.until = args.until.as_deref().map(timefmt::parse_time).transpose()?;
    opts.tz = timefmt::parse_offset(&args.tz)?;
    opts.csv = CsvStyle {
        bom: !args.no_bom,
        guard: !args.csv_raw,
    };
    let html = args.format.contains(&Format::Html);
    opts.formats = args.format;
    for (flag, value) in [("--case-id", &args.case_id), ("--examiner", &args.examiner)] {
        if value
            .as_deref()
            .is_some_and(|v| v.trim().is_empty() || v.chars().any(char::is_control))
        {
            return Err(CliError::Usage(format!(
                "{flag} must be one line of text, not empty"
            )));
        }
    }
    if let Some(path) = &args.checklist {
        let text = std::fs::read(path).map_err(|e| {
            CliError::NotFound(format!("cannot read the checklist {}: {e}", path.display()))
        })?;
        opts.checklist = Some(serde_json::from_slice(&text).map_err(|e| {
            CliError::Usage(format!(
                "{} is not the output of `chatvault check --json`: {e}",
                path.display()
            ))
        })?);
    }
    opts.case_id = args.case_id;
    opts.examiner = args.examiner;
    opts.media = !args.no_media;
    opts.include_private = opts.include_private || args.include_private;
    opts.zip = args.zip;
    opts.force = args.force;
    opts.fixed_time = args
        .fixed_time
        .as_deref()
        .map(timefmt::parse_time)
        .transpose()?;
    let mut path_values = vec![
        opts.source.to_string_lossy().into_owned(),
        opts.out.to_string_lossy().into_owned(),
    ];
    path_values.extend(
        args.key_file
            .iter()
            .chain(&args.checklist)
            .chain(&args.after)
            .map(|k| k.to_string_lossy().into_owned()),
    );
    opts.command_line = export::recorded_command_line(
        std::env::args_os().map(|a| a.to_string_lossy().into_owned()),
        &path_values,
        args.anonymize,
    );
    opts.progress = true;
    if args.anonymize {
        let Some(key_file) = &args.key_file else {
            return Err(CliError::Usage("--anonymize needs --key-file".into()));
        };
        opts.anonymize = Some(export::AnonymizeOptions {
            key: anonymize::Key::load_or_create(key_file)?,
            with_media: args.with_media,
        });
    }
    let summary = export::export(&opts)?;
    print_summary(&summary);
    if html {
        let index = crate::sink::html::report::INDEX;
        match summary.bundle.zip_sha256 {
            Some(_) => println!("report and transcript: data/{index} in the zip"),
            None => println!(
                "report and transcript: {}",
                summary.bundle.path.join("data").join(index).display()
            ),
        }
    }
    Ok(crate::exit::OK)
}

fn print_summary(s: &export::ExportSummary) {
    let m = &s.media;
    println!(
        "exported {} group(s) from {}: {} messages, {} members",
        s.groups, s.platform, s.messages, s.members
    );
    println!(
        "media: {} copied ({} bytes), {} missing, {} not downloaded, {} outside the source root (refused), {} excluded",
        m.copied, m.copied_bytes, m.missing, m.not_downloaded, m.outside_root, m.excluded
    );
    if s.warnings > 0 {
        println!(
            "warnings: {} (all listed in evidence.json); first:",
            s.warnings
        );
        for w in &s.first_warnings {
            println!("  {w}");
        }
    }
    println!(
        "elapsed {:.2}s, {:.0} messages/s",
        s.elapsed.as_secs_f64(),
        s.messages_per_second()
    );
    if let Some(n) = s.changes {
        println!("changes behind the previous bundle's marks: {n} (data/changes.csv)");
    }
    println!("bundle: {}", s.bundle.path.display());
    println!(
        "bag digest (sha256 of tagmanifest-sha256.txt): {}",
        s.bundle.bag_digest
    );
    if let Some(zip) = &s.bundle.zip_sha256 {
        println!("zip sha256: {zip}");
    }
    println!("sidecar: {}", s.bundle.sidecar.display());
}
