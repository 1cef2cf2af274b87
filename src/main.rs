//! The `chatvault` command: parses arguments, calls the library, maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use chatvault::cleanup::{self, PlanOptions};
use chatvault::export::{self, ExportOptions};
use chatvault::retention::{self, CleanOptions, Plan, Policy, RetentionError};
use chatvault::sink::csv::CsvStyle;
use chatvault::{anonymize, demo, evidence, inspect, simulate, source, timefmt};

// Readers allocate messages on one thread and the writer frees them on another; glibc's
// allocator serializes that on an arena lock, mimalloc's thread-local heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, documented in README.md.
mod code {
    pub const INTERNAL: u8 = 1;
    pub const NOT_FOUND: u8 = 3;
    pub const UNRECOGNIZED: u8 = 4;
    pub const DAMAGED: u8 = 5;
    pub const SOURCE_BUSY: u8 = 6;
    pub const OUTPUT: u8 = 7;
    pub const TAMPERED: u8 = 8;
    pub const NOT_A_BUNDLE: u8 = 9;
    pub const PLAN_REFUSED: u8 = 10;
    pub const CLEAN_SKIPPED: u8 = 11;
    pub const LOCKED: u8 = 12;
}

#[derive(Parser)]
#[command(
    name = "chatvault",
    version,
    about = "Export, seal, anonymize and clean up group-chat histories before a group is dissolved",
    after_help = "Start with:  chatvault demo\nExit codes:  see README.md (0 ok, 2 usage, 3-9 distinct failures)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a small WeChat account, export it, and show what to try next.
    #[command(after_help = "Example:\n  chatvault demo --out /tmp/chatvault-demo")]
    Demo {
        /// Where to put the simulated account and its export (a new directory).
        #[arg(long, default_value = "chatvault-demo")]
        out: PathBuf,
    },
    /// Write a simulated account directory (test data that breaks naive importers).
    #[command(
        after_help = "Example:\n  chatvault simulate wechat --out /tmp/wx --groups 5 --messages 100000 --seed 7"
    )]
    Simulate(SimulateArgs),
    /// List a source's groups: members, messages, dates, media, dissolved or active.
    #[command(
        after_help = "Example:\n  chatvault inspect /tmp/wx\n  chatvault inspect /tmp/wx --json"
    )]
    Inspect {
        /// The account directory.
        source: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also list one-to-one chats.
        #[arg(long)]
        include_private: bool,
    },
    /// Export groups to CSV and media, sealed as a BagIt evidence bundle.
    #[command(
        after_help = "Examples:\n  chatvault export /tmp/wx --out /tmp/bundle\n  chatvault export /tmp/wx --out /tmp/bundle --group 123@chatroom --since 2025-06-01 --zip"
    )]
    Export(ExportArgs),
    /// Check a bundle (directory or zip): structure, every hash, missing and extra files.
    #[command(
        after_help = "Examples:\n  chatvault verify /tmp/bundle\n  chatvault verify /tmp/bundle.zip --source /tmp/wx --json"
    )]
    Verify {
        /// The bundle directory or zip.
        bundle: PathBuf,
        /// Also check that the source files still hash as recorded in evidence.json.
        #[arg(long)]
        source: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// SHA-256 of files and directory trees, in sha256sum format.
    #[command(
        after_help = "Examples:\n  chatvault hash screenshots/ call.m4a > evidence.sha256\n  chatvault hash --check evidence.sha256"
    )]
    Hash {
        /// Files or directories to hash.
        paths: Vec<PathBuf>,
        /// Check the hashes listed in a sha256sum file instead.
        #[arg(long, value_name = "FILE", conflicts_with = "paths")]
        check: Option<PathBuf>,
    },
    /// Create a pseudonym key: 32 random bytes, mode 0600; refuses to overwrite.
    #[command(after_help = "Example:\n  chatvault keygen ~/.chatvault/case-001.key")]
    Keygen {
        /// Where to write the key.
        keyfile: PathBuf,
    },
    /// Print members' pseudonyms, to answer \"which rows are mine?\" without a stored mapping.
    #[command(
        after_help = "Example:\n  chatvault pseudonym --key-file case.key --platform wechat wxid_abc123 wxid_def456"
    )]
    Pseudonym {
        #[arg(long, value_name = "KEYFILE")]
        key_file: PathBuf,
        #[arg(long, value_parser = ["wechat", "qq", "wecom", "dingtalk"])]
        platform: String,
        /// Member ids as the platform stores them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Show the retention policy: every rule with its period, clock and seed citation.
    #[command(
        after_help = "Examples:\n  chatvault policy\n  chatvault policy --json\n  chatvault policy --dump > my-policy.toml   # edit, then: chatvault plan … --policy my-policy.toml"
    )]
    Policy {
        #[arg(long)]
        json: bool,
        /// Print the policy as TOML, a starting point for --policy files.
        #[arg(long, conflicts_with = "json")]
        dump: bool,
        /// Layer this TOML policy over the built-in one.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Decide, per cached file, what may be deleted and when; writes PLAN.json, PLAN.csv, PLAN.json.sha256.
    #[command(
        after_help = "Example:\n  chatvault plan /tmp/wx --out /tmp/plan.json --dissolved-at 123@chatroom=2025-06-01T00:00:00Z --group-type 123@chatroom=education --hash"
    )]
    Plan(PlanArgs),
    /// Carry out a plan: a dry run unless --apply; every action re-checked and journaled.
    #[command(
        after_help = "Examples:\n  chatvault clean /tmp/plan.json                       # dry run\n  chatvault clean /tmp/plan.json --apply --quarantine /tmp/q\n  chatvault clean /tmp/plan.json --apply --yes --root /tmp/wx   # scripts: no confirmation, the root given"
    )]
    Clean {
        /// The plan (PLAN.json, with its PLAN.json.sha256 beside it).
        plan: PathBuf,
        /// Act; without it nothing is touched.
        #[arg(long)]
        apply: bool,
        /// Move files under DIR (mirroring their paths) instead of deleting them.
        #[arg(long, value_name = "DIR")]
        quarantine: Option<PathBuf>,
        /// The journal (JSON lines); default PLAN.json.journal.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
        /// Do not ask for the group names before acting (then --root is required).
        #[arg(long)]
        yes: bool,
        /// The directory you mean to clean; the plan's root must be this very directory.
        /// Required with --apply --yes: a plan is a request, not an authority.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Move quarantined files back, as recorded in a clean journal.
    #[command(after_help = "Example:\n  chatvault undo /tmp/plan.json.journal")]
    Undo {
        /// The journal written by `chatvault clean --apply --quarantine`.
        journal: PathBuf,
    },
}

#[derive(Args)]
struct PlanArgs {
    /// The account directory.
    source: PathBuf,
    /// Where to write the plan (PLAN.json; PLAN.csv and PLAN.json.sha256 beside it).
    #[arg(long)]
    out: PathBuf,
    /// Reference time; default now.
    #[arg(long, value_name = "T")]
    now: Option<String>,
    /// A group's dissolution time, GROUP=TIME (repeatable; split at the last `=`).
    #[arg(long = "dissolved-at", value_name = "GROUP=T", value_parser = cleanup::parse_dissolved_at)]
    dissolved_at: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    /// A group's type, GROUP=education|ecommerce|commercial|family|work|other (repeatable).
    #[arg(long = "group-type", value_name = "GROUP=TYPE", value_parser = cleanup::parse_group_type)]
    group_types: Vec<(String, retention::GroupType)>,
    /// Keep every file whose SHA-256 is not in this (verified) evidence bundle.
    #[arg(long, value_name = "BUNDLE")]
    require_bundle: Option<PathBuf>,
    /// Record each file's SHA-256 (clean then re-checks content, not only metadata).
    #[arg(long)]
    hash: bool,
    /// Layer this TOML policy over the built-in one.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Args)]
struct SimulateArgs {
    /// Platform to simulate.
    #[arg(value_parser = ["wechat", "qq", "wecom", "dingtalk"])]
    platform: String,
    /// The account directory to create.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 5)]
    groups: usize,
    /// Members per group.
    #[arg(long, default_value_t = 30)]
    members: usize,
    /// Group messages in all.
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    /// Spread messages over this many days before --now.
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Reference time (RFC 3339, date or Unix seconds); default now.
    #[arg(long)]
    now: Option<String>,
    /// Fraction of rows and files that get an edge case.
    #[arg(long, default_value_t = 0.05)]
    edge_rate: f64,
    /// Reference media in rows but write no media files.
    #[arg(long)]
    no_media_files: bool,
    /// Leave the newest messages only in the database's -wal file.
    #[arg(long)]
    wal: bool,
}

#[derive(Args)]
struct ExportArgs {
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
}

/// mimalloc's `mi_option_e` values (mimalloc.h v3, pinned with the crate in Cargo.toml).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Return freed memory to the system at once and commit arena memory only as it is used.
    // With this (and without transparent huge pages, see Cargo.toml) peak RSS of a WeChat
    // export is 20 MB at 1M, 21 MB at 4M and 22 MB at 8M messages; with mimalloc's
    // defaults it crept from 35 MB to 43 MB.
    // SAFETY: plain integer options, set before any thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("chatvault: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo { out } => {
            let report = demo::run(&out)?;
            print!("{}", report.render());
            Ok(0)
        }
        Command::Simulate(args) => {
            let mut opts = simulate::SimOptions::new(args.out);
            opts.groups = args.groups;
            opts.members = args.members;
            opts.messages = args.messages;
            opts.days = args.days;
            opts.seed = args.seed;
            if let Some(now) = args.now {
                opts.now_ms = timefmt::parse_time(&now)?.timestamp_millis();
            }
            opts.edge_rate = args.edge_rate;
            opts.media_files = !args.no_media_files;
            opts.wal = args.wal;
            let report = match args.platform.as_str() {
                "qq" => simulate::qq::simulate_qq(&opts)?,
                "wecom" => simulate::wecom::simulate_wecom(&opts)?,
                "dingtalk" => simulate::dingtalk::simulate_dingtalk(&opts)?,
                _ => simulate::wechat::simulate_wechat(&opts)?,
            };
            println!(
                "simulated {} account at {}: {} groups, {} members, {} group messages, {} private chats, {} media files in {:.1}s",
                report.platform,
                report.root.display(),
                report.groups,
                report.members,
                report.messages,
                report.private_chats,
                report.media_files,
                report.elapsed.as_secs_f64()
            );
            Ok(0)
        }
        Command::Inspect {
            source,
            json,
            include_private,
        } => {
            let report = inspect::inspect(&source, include_private)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(0)
        }
        Command::Export(args) => {
            let mut opts = ExportOptions::new(args.source, args.out);
            opts.groups = args.groups;
            opts.since = args.since.as_deref().map(timefmt::parse_time).transpose()?;
            opts.until = args.until.as_deref().map(timefmt::parse_time).transpose()?;
            opts.tz = timefmt::parse_offset(&args.tz)?;
            opts.csv = CsvStyle {
                bom: !args.no_bom,
                guard: !args.csv_raw,
            };
            opts.media = !args.no_media;
            opts.include_private = args.include_private;
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
                    anyhow::bail!("--anonymize needs --key-file");
                };
                opts.anonymize = Some(export::AnonymizeOptions {
                    key: anonymize::Key::load_or_create(key_file)?,
                    with_media: args.with_media,
                });
            }
            let summary = export::export(&opts)?;
            print_export_summary(&summary);
            Ok(0)
        }
        Command::Verify {
            bundle,
            source,
            json,
        } => {
            let report = evidence::verify(
                &bundle,
                &evidence::VerifyOptions {
                    source_root: source,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.render());
            }
            Ok(if report.ok() { 0 } else { code::TAMPERED })
        }
        Command::Keygen { keyfile } => {
            let key = anonymize::Key::generate(&keyfile)?;
            println!(
                "wrote {} (fingerprint {}); keep it safe: the same key gives the same pseudonyms",
                keyfile.display(),
                key.fingerprint()
            );
            Ok(0)
        }
        Command::Pseudonym {
            key_file,
            platform,
            ids,
        } => {
            let key = anonymize::Key::load_or_create(&key_file)?;
            for id in ids {
                println!("{}\t{id}", anonymize::pseudonym(&key, &platform, &id));
            }
            Ok(0)
        }
        Command::Policy { json, dump, policy } => {
            let policy = load_policy(policy.as_ref())?;
            if dump {
                print!("{}", policy.to_toml()?);
            } else if json {
                println!("{}", policy.to_json()?);
            } else {
                print!("{}", policy.to_table());
            }
            Ok(0)
        }
        Command::Plan(args) => {
            let now = match &args.now {
                Some(t) => timefmt::parse_time(t)?,
                None => chrono::Utc::now(),
            };
            let opts = PlanOptions {
                source: args.source,
                now,
                dissolved_at: args.dissolved_at,
                group_types: args.group_types,
                require_bundle: args.require_bundle,
                hash: args.hash,
                policy: load_policy(args.policy.as_ref())?,
                progress: true,
            };
            let plan = cleanup::make_plan(&opts, &args.out)?;
            print!("{}", plan.summary());
            let files = plan.files;
            println!("plan: {} (sha256 {})", files.json.display(), files.sha256);
            println!("for people: {}", files.csv.display());
            println!("next: chatvault clean {}   # dry run", files.json.display());
            Ok(0)
        }
        Command::Clean {
            plan,
            apply,
            quarantine,
            journal,
            yes,
            root,
        } => run_clean(plan, apply, quarantine, journal, yes, root),
        Command::Undo { journal } => {
            let report = retention::undo(&journal)?;
            for path in &report.restored {
                println!("restored  {path}");
            }
            for (path, why) in &report.skipped {
                println!("SKIPPED   {path}: {why}");
            }
            println!(
                "restored {} file(s), {} skipped, {} restored earlier, {} never moved by an interrupted clean",
                report.restored.len(),
                report.skipped.len(),
                report.already_restored,
                report.never_moved
            );
            Ok(if report.skipped.is_empty() {
                0
            } else {
                code::CLEAN_SKIPPED
            })
        }
        Command::Hash { paths, check } => {
            if let Some(list) = check {
                let report = evidence::check_sha256sum(&list)?;
                print!("{}", report.render());
                return Ok(if report.all_ok() { 0 } else { code::TAMPERED });
            }
            if paths.is_empty() {
                anyhow::bail!("give files or directories to hash, or --check FILE");
            }
            let entries = evidence::hash_paths(&paths, None).context("hashing")?;
            print!("{}", evidence::format_sha256sum(&entries));
            Ok(0)
        }
    }
}

fn load_policy(path: Option<&PathBuf>) -> Result<Policy, RetentionError> {
    match path {
        Some(p) => Policy::from_toml_file(p),
        None => Ok(Policy::builtin()),
    }
}

/// Asks for the names of the groups whose files will go, as WeChat asks before dissolving.
fn confirm_groups(plan: &Plan) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let mut names: Vec<String> = Vec::new();
    for entry in plan
        .entries
        .iter()
        .filter(|e| e.action == retention::Action::Delete)
    {
        let Some(id) = &entry.group_id else { continue };
        let shown = plan
            .header
            .groups
            .iter()
            .find(|g| &g.group_id == id)
            .map(|g| {
                if g.name.is_empty() {
                    g.group_id.clone()
                } else {
                    g.name.clone()
                }
            })
            .unwrap_or_else(|| id.clone());
        if !names.contains(&shown) {
            names.push(shown);
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("--apply deletes files of {} group(s); confirm with --yes --root DIR when not running interactively", names.len());
    }
    let stdin = std::io::stdin();
    for name in &names {
        eprint!("Files of group \"{name}\" will be removed. Type the group name to confirm: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        if line.trim_end_matches(['\r', '\n']) != name {
            anyhow::bail!("confirmation did not match \"{name}\": nothing was touched");
        }
    }
    Ok(())
}

/// Asks for the root's name, since a plan names the directory it cleans and anyone can edit it.
fn confirm_root(plan: &Plan) -> anyhow::Result<PathBuf> {
    use std::io::{BufRead, IsTerminal, Write};
    let root = PathBuf::from(&plan.header.source_root);
    if !std::io::stdin().is_terminal() {
        return Err(RetentionError::RootNotConfirmed { plan_root: root }.into());
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string());
    eprint!(
        "The plan cleans {}. Type its directory name \"{name}\" to confirm: ",
        root.display()
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim_end_matches(['\r', '\n']) != name {
        anyhow::bail!("confirmation did not match \"{name}\": nothing was touched");
    }
    Ok(root)
}

fn run_clean(
    plan_path: PathBuf,
    apply: bool,
    quarantine: Option<PathBuf>,
    journal: Option<PathBuf>,
    yes: bool,
    root: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let plan = Plan::read_verified(&plan_path)?;
    let mut opts = CleanOptions::for_plan(&plan_path);
    opts.expected_root = root;
    if apply && !yes {
        confirm_groups(&plan)?;
        if opts.expected_root.is_none() {
            opts.expected_root = Some(confirm_root(&plan)?);
        }
    }
    opts.apply = apply;
    opts.quarantine = quarantine;
    if let Some(journal) = journal {
        opts.journal = journal;
    }
    let mut on_event = |event: &retention::CleanEvent| {
        use retention::CleanEvent as E;
        match event {
            E::WouldDelete { path, size } => println!("would delete      {path} ({size} bytes)"),
            E::WouldQuarantine { path, to, .. } => {
                println!("would quarantine  {path} -> {}", to.display())
            }
            E::Deleted { path, .. } => println!("deleted           {path}"),
            E::Quarantined { path, to, .. } => {
                println!("quarantined       {path} -> {}", to.display())
            }
            E::Skipped { path, reason } => println!("SKIPPED           {path}: {reason}"),
            E::AlreadyDone { path } => println!("already done      {path}"),
        }
    };
    let report = retention::clean(&plan, &opts, &mut on_event)?;
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {} file(s), {} bytes; {} skipped because they changed or are gone; {} already done; {} kept, {} for review",
        report.deleted.len() + report.quarantined.len(),
        report.bytes,
        report.skipped_changed.len(),
        report.already_done.len(),
        report.kept,
        report.reviewed
    );
    if report.dry_run {
        println!("dry run: nothing was touched (add --apply to act)");
    } else {
        println!("journal: {}", opts.journal.display());
    }
    Ok(if report.skipped_changed.is_empty() {
        0
    } else {
        code::CLEAN_SKIPPED
    })
}

fn print_export_summary(s: &export::ExportSummary) {
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

/// Distinct exit codes per failure class (README.md lists them).
fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<source::SourceError>() {
            return source_code(e);
        }
        if let Some(e) = cause.downcast_ref::<export::ExportError>() {
            return match e {
                export::ExportError::Source(s) => source_code(s),
                export::ExportError::SourceChanged { .. } => code::SOURCE_BUSY,
                export::ExportError::Evidence(e) => evidence_code(e),
                export::ExportError::Write { .. } => code::OUTPUT,
                export::ExportError::ReadSource { .. } => code::DAMAGED,
            };
        }
        if let Some(e) = cause.downcast_ref::<evidence::EvidenceError>() {
            return evidence_code(e);
        }
        if cause
            .downcast_ref::<chatvault::lockfile::LockError>()
            .is_some()
        {
            return code::LOCKED;
        }
        if let Some(demo::DemoError::OutputNotEmpty(_)) = cause.downcast_ref::<demo::DemoError>() {
            return code::OUTPUT;
        }
        if let Some(e) = cause.downcast_ref::<RetentionError>() {
            return retention_code(e);
        }
        if let Some(e) = cause.downcast_ref::<cleanup::PlanError>() {
            return match e {
                cleanup::PlanError::Source(s) => source_code(s),
                cleanup::PlanError::Retention(r) => retention_code(r),
                cleanup::PlanError::UnknownGroup(..) => code::NOT_FOUND,
                cleanup::PlanError::Bundle { .. } => code::TAMPERED,
                cleanup::PlanError::Io { .. } => code::DAMAGED,
            };
        }
        if let Some(e) = cause.downcast_ref::<anonymize::AnonError>() {
            return match e {
                anonymize::AnonError::KeyExists { .. } => code::OUTPUT,
                _ => 2,
            };
        }
        if cause.downcast_ref::<timefmt::TimeError>().is_some() {
            return 2;
        }
    }
    code::INTERNAL
}

fn evidence_code(error: &evidence::EvidenceError) -> u8 {
    match error {
        evidence::EvidenceError::Locked(chatvault::lockfile::LockError::Held { .. }) => {
            code::LOCKED
        }
        e if e.is_not_a_bundle() => code::NOT_A_BUNDLE,
        _ => code::OUTPUT,
    }
}

fn retention_code(error: &RetentionError) -> u8 {
    use RetentionError as E;
    match error {
        E::SidecarMissing { .. }
        | E::SidecarMalformed { .. }
        | E::SidecarMismatch { .. }
        | E::RootMissing { .. }
        | E::RootReplaced { .. }
        | E::RootMismatch { .. }
        | E::PlatformMismatch { .. }
        | E::PlanUnsafe { .. }
        | E::PlanParse { .. } => code::PLAN_REFUSED,
        E::QuarantineInsideRoot { .. } | E::RootNotConfirmed { .. } | E::InvalidArgument { .. } => {
            2
        }
        E::Locked(chatvault::lockfile::LockError::Held { .. }) => code::LOCKED,
        _ => code::INTERNAL,
    }
}

fn source_code(error: &source::SourceError) -> u8 {
    use source::SourceError as E;
    match error {
        E::NotFound(_) | E::NoSuchGroup(_) => code::NOT_FOUND,
        E::NotADirectory(_) | E::Unrecognized { .. } | E::Ambiguous { .. } => code::UNRECOGNIZED,
        E::NotSqlite { .. } | E::Truncated { .. } | E::MissingTable { .. } | E::Corrupt { .. } => {
            code::DAMAGED
        }
        E::Locked { .. } => code::SOURCE_BUSY,
        E::Io { .. } => code::DAMAGED,
    }
}
