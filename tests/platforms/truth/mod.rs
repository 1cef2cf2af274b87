//! Ground truth: what an export of a source must hold, read straight from the source by the
//! rules of sources.md (never through chatvault's readers), in one shape for every platform;
//! and what each platform's simulated sources are known to contain, and its bad inputs, as
//! data for the suite.

pub mod dingtalk;
pub mod qq;
pub mod wechat;
pub mod wecom;

use std::collections::BTreeMap;
use std::path::Path;

/// One row messages.csv must hold. `None` fields are not known from the source alone.
pub struct Message {
    pub message_id: String,
    pub time_utc: String,
    pub direction: &'static str,
    pub sender_id: String,
    pub sender_name: Option<String>,
    pub kind: Option<&'static str>,
    pub raw_type: Option<String>,
    /// The exact text (text messages with well-formed content).
    pub text: Option<String>,
}

/// The member rows of one group.
pub struct Members {
    pub count: usize,
    /// How many have left, when the source says.
    pub left: Option<usize>,
}

pub struct Truth {
    /// Messages per group (or one-to-one chat), in export order.
    pub messages: BTreeMap<String, Vec<Message>>,
    /// Member rows per group, for the groups the member tables name.
    pub members: BTreeMap<String, Members>,
    /// The source files an export reads (relative to the root): evidence.json must record
    /// each, hashed the same before and after.
    pub sources: Vec<String>,
}

impl Truth {
    pub fn total(&self) -> usize {
        self.messages.values().map(Vec::len).sum()
    }
}

/// A condition on one CSV row: (column, test).
#[derive(Clone, Copy, Debug)]
pub enum Cond {
    Eq(&'static str, &'static str),
    Prefix(&'static str, &'static str),
    NotSuffix(&'static str, &'static str),
    Suffix(&'static str, &'static str),
    Contains(&'static str, &'static str),
    In(&'static str, &'static [&'static str]),
    NonEmpty(&'static str),
    /// An unsigned 64-bit number.
    U64(&'static str),
    StartsWithDigit(&'static str),
}

/// Something the export of the suite's simulated source (`--edge-rate 0.1`) must show, on
/// the rows of `data/<file>.csv` (or, for `"sources"`, of evidence.json's sources).
#[derive(Clone, Copy)]
pub enum Fact {
    /// Some row meets every condition.
    Some(&'static str, &'static [Cond]),
    /// Every row meeting the first conditions (and there is at least one) meets the second.
    All(&'static str, &'static [Cond], &'static [Cond]),
    /// At least this many rows meet every condition.
    AtLeast(usize, &'static str, &'static [Cond]),
}

/// The source a bad input starts from.
#[derive(Clone, Copy)]
pub enum Base {
    /// The platform's small simulated source (`Source::small`).
    Small,
    /// An empty account directory.
    Empty,
}

/// What is done to a file. A path ending in `*.<ext>` names every such file of its
/// directory.
#[derive(Clone, Copy)]
pub enum Breakage {
    /// Replaced by this many bytes of noise (what an encrypted database looks like).
    Noise(usize),
    Bytes(&'static [u8]),
    /// Cut to half its length (the file has no `-wal` beside it).
    Truncate,
    /// The last line of the last file cut in the middle.
    CutLastLine,
    Remove,
    RemoveDir,
    /// Created as an SQLite database with these statements.
    Sqlite(&'static [&'static str]),
    /// Held `BEGIN EXCLUSIVE` by another connection during the export.
    Lock,
}

#[derive(Clone, Copy)]
pub enum Outcome {
    /// The export fails with this exit code and message, leaving nothing behind, and
    /// `inspect` fails with the same code.
    Refused { code: i32, message: &'static str },
    /// The export succeeds, every readable row exported, with a warning naming this.
    Exported {
        warning: &'static str,
        /// Without the directory of people, every sender is named by id.
        senders_named_by_id: bool,
    },
}

#[derive(Clone, Copy)]
pub struct BadInput {
    pub what: &'static str,
    pub base: Base,
    pub breaks: &'static [(&'static str, Breakage)],
    pub outcome: Outcome,
}

/// A platform as the suite sees it.
pub struct Source {
    pub platform: &'static str,
    /// The account directory's name (DingTalk takes the owner's uid from `<uid>_v2`).
    pub dir_name: &'static str,
    /// The ground-truth reader: the source at the root, one-to-one chats included or not.
    pub read: fn(&Path, bool) -> Truth,
    /// Whether the reader knows one-to-one chats (else the suite only checks they appear).
    pub reads_private: bool,
    /// How a one-to-one chat's id looks, if the platform has them.
    pub private: Option<Cond>,
    /// The database a `--wal` source keeps a write-ahead log for.
    pub wal_db: Option<&'static str>,
    /// Paths every simulated source has.
    pub layout: &'static [&'static str],
    /// Whether its simulator can continue a source (`simulate --continue`), for the
    /// increment suite.
    pub continues: bool,
    /// Whether simulated sources include a dissolved group `inspect` can tell.
    pub dissolves: bool,
    /// The source has rows the reader itself finds malformed or unknown (kind `other`).
    pub malformed_rows: bool,
    /// The media statuses the suite's source shows, every one of them.
    pub media_statuses: &'static [&'static str],
    /// Roles members.csv may hold.
    pub roles: &'static [&'static str],
    /// Words the evidence's warnings contain.
    pub warnings: &'static [&'static str],
    pub facts: &'static [Fact],
    /// `simulate` arguments for the small source bad inputs start from.
    pub small: &'static [&'static str],
    pub bad_inputs: &'static [BadInput],
}

/// The databases named, each with its `-wal` where one exists.
pub fn with_wal(root: &Path, databases: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for db in databases {
        files.push(db.to_string());
        let wal = format!("{db}-wal");
        if root.join(&wal).exists() {
            files.push(wal);
        }
    }
    files
}
