//! What every simulator plants for `chatvault check` (sources.md, "Red packets, ownership and
//! announcements on every platform"), wherever the app has the concept, at times and in
//! groups a test can find from the data alone.
//!
//! With 4 or more groups and some messages ([`plants`]), each simulator picks three groups
//! (which ones, its module docs say); smaller simulations stay as they were, with no
//! announcement in any group:
//!
//! - **A**, owned by the account holder: an announcement by the owner posted
//!   [`EARLY_NOTICE_MS`] (25 h) before the planned dissolution, a red packet sent
//!   [`UNCLAIMED_AGO_MS`] (6 h) before `now` with [`UNCLAIMED_PARTS`] parts and one claim, and,
//!   [`UNDOWNLOADED_AFTER_START_MS`] after the first day of the timeline begins, a group file
//!   that was never downloaded (its row names a local file that is not there);
//! - **B**, owned by the account holder: an announcement by the owner posted
//!   [`LATE_NOTICE_MS`] (23 h) before the planned dissolution, and a red packet sent
//!   [`CLAIMED_AGO_MS`] (9 h) before `now` with [`CLAIMED_PARTS`] parts, every one claimed in the
//!   slots that follow it;
//! - **T**, owned by another member: the holder's ownership was transferred.
//!
//! The planned dissolution is [`dissolve_at`]: the reference time `now` plus
//! [`DISSOLVE_AFTER_NOW_MS`] (12 h). It is in the data: every planted announcement names it
//! as RFC 3339 UTC (`…dissolved at 2025-06-12T20:00:00Z…`).
//!
//! The announcements' text: [`notice`] (chosen by the seed, naming the dissolution time),
//! posted word for word by the WeChat simulator and with one character changed
//! ([`changed_notice`]: `已导出` becomes `已导入`) by the DingTalk simulator; the QQ and WeCom
//! simulators post [`other_notice`], which resembles neither.
//!
//! With `--members 40` the first three groups get exactly [`SIZED_MEMBERS`] (39, 40, 41)
//! current members, the boundary of `notify.over_40`.
//!
//! Planted rows take ordinary message slots ([`Schedule`]), so a simulation still writes
//! `--messages` rows plus its hard rows.

use std::collections::VecDeque;

use rand::Rng;

use super::{seeded_rng, SimOptions, HOUR_MS};

/// The planned dissolution is this long after the reference time.
pub const DISSOLVE_AFTER_NOW_MS: i64 = 12 * HOUR_MS;
/// Group A's announcement is posted this long before the dissolution.
pub const EARLY_NOTICE_MS: i64 = 25 * HOUR_MS;
/// Group B's announcement is posted this long before the dissolution.
pub const LATE_NOTICE_MS: i64 = 23 * HOUR_MS;
/// Group A's red packet with unclaimed parts is sent this long before `now`.
pub const UNCLAIMED_AGO_MS: i64 = 6 * HOUR_MS;
pub const UNCLAIMED_PARTS: u64 = 5;
/// Claims of group A's unclaimed red packet.
pub const UNCLAIMED_CLAIMS: usize = 1;
/// Group B's fully claimed red packet is sent this long before `now`.
pub const CLAIMED_AGO_MS: i64 = 9 * HOUR_MS;
pub const CLAIMED_PARTS: u64 = 3;
/// Group A's never-downloaded group file, after the start of the timeline.
pub const UNDOWNLOADED_AFTER_START_MS: i64 = HOUR_MS;
/// Current members of the first three groups when `--members` is 40.
pub const SIZED_MEMBERS: [usize; 3] = [39, 40, 41];

/// Random stream of the planted choices (the announcement's wording).
const STREAM: u64 = 0x0050_4C41_4E54;

/// Whether a simulation plants groups A, B and T: with a fourth group, in which nothing is
/// planted.
pub fn plants(opts: &SimOptions) -> bool {
    opts.groups >= 4 && opts.messages > 0
}

/// How many current members group `index` must have, when it is one of the sized groups.
pub fn sized_members(opts: &SimOptions, index: usize) -> Option<usize> {
    (opts.members == 40 && opts.groups >= 3)
        .then(|| SIZED_MEMBERS.get(index).copied())
        .flatten()
}

/// The planned dissolution, UTC milliseconds.
pub fn dissolve_at(now_ms: i64) -> i64 {
    now_ms + DISSOLVE_AFTER_NOW_MS
}

/// Start of the simulated timeline.
pub fn start_ms(opts: &SimOptions) -> i64 {
    opts.now_ms - i64::from(opts.days) * super::DAY_MS
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn beijing(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms + 8 * HOUR_MS)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

const REASONS: [&str; 5] = [
    "项目已经结束",
    "活动已经圆满结束",
    "本学期的课程已经全部结课",
    "这一期团购已经全部发货",
    "大家已经搬到新群",
];

fn reason(seed: u64) -> &'static str {
    REASONS[seeded_rng(seed, STREAM).gen_range(0..REASONS.len())]
}

/// The announcement WeChat posts word for word and DingTalk with one character changed:
/// the same text for the same seed and reference time.
pub fn notice(seed: u64, now_ms: i64) -> String {
    let at = dissolve_at(now_ms);
    format!(
        "【解散公告】{}，本群将于北京时间 {} 解散（UTC {}）。聊天记录已导出存档，请大家在此之前下载需要的群文件。\nNotice: this group will be dissolved at {}.",
        reason(seed),
        beijing(at),
        utc(at),
        utc(at)
    )
}

/// [`notice`] with one character changed: `已导出` (exported) becomes `已导入`.
pub fn changed_notice(seed: u64, now_ms: i64) -> String {
    notice(seed, now_ms).replacen("已导出", "已导入", 1)
}

/// The announcement QQ and WeCom post: about the same dissolution, in other words.
pub fn other_notice(seed: u64, now_ms: i64) -> String {
    format!(
        "各位群友：感谢一直以来的陪伴！因为{}，本群将于 {} 停用并解散，请及时保存需要的聊天记录和群文件。",
        reason(seed),
        utc(dissolve_at(now_ms))
    )
}

/// A name a `<claimer>领取了<sender>的红包` tip can carry and be read back from.
pub fn claimable(name: &str) -> bool {
    !name.is_empty()
        && name.trim() == name
        && !name.contains("领取了")
        && !name.contains("的红包")
        && !name.chars().any(char::is_control)
}

/// The planted rows of one simulation, handed out slot by slot: a timed row takes the first
/// slot at or after its time and keeps its own time (unless an earlier slot already passed
/// it, then it takes the slot's); follow-ups (claims) take the next free slots.
#[derive(Debug)]
pub struct Schedule<E> {
    timed: VecDeque<(i64, E)>,
    follow_ups: VecDeque<E>,
    last_slot_ms: i64,
}

impl<E> Schedule<E> {
    pub fn new(mut timed: Vec<(i64, E)>) -> Schedule<E> {
        timed.sort_by_key(|(t, _)| *t);
        Schedule {
            timed: timed.into(),
            follow_ups: VecDeque::new(),
            last_slot_ms: i64::MIN,
        }
    }

    pub fn empty() -> Schedule<E> {
        Schedule::new(Vec::new())
    }

    /// Queues `event` for the next free slots.
    pub fn follow(&mut self, event: E) {
        self.follow_ups.push_back(event);
    }

    /// The planted row of the slot at `slot_ms`, and its time. Call it for every slot that
    /// nothing else claimed first.
    pub fn next(&mut self, slot_ms: i64) -> Option<(i64, E)> {
        let previous = std::mem::replace(&mut self.last_slot_ms, slot_ms);
        if self.timed.front().is_some_and(|(t, _)| *t <= slot_ms) {
            let (t, event) = self.timed.pop_front()?;
            return Some((if t > previous { t } else { slot_ms }, event));
        }
        self.follow_ups.pop_front().map(|event| (slot_ms, event))
    }

    /// A slot taken by something else (a dissolution notice).
    pub fn occupied(&mut self, slot_ms: i64) {
        self.last_slot_ms = slot_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notices_name_the_dissolution_and_differ_by_one_character() {
        let now = 1_749_715_200_000; // 2025-06-12T08:00:00Z
        let text = notice(7, now);
        assert!(text.contains("2025-06-12T20:00:00Z"), "{text}");
        assert!(text.contains("北京时间 2025-06-13 04:00"), "{text}");
        assert_eq!(text, notice(7, now));
        let changed = changed_notice(7, now);
        let differing = text
            .chars()
            .zip(changed.chars())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            (differing, text.chars().count()),
            (1, changed.chars().count())
        );
        assert!(other_notice(7, now).contains("2025-06-12T20:00:00Z"));
        assert!(crate::check::announcement::mentions_dissolution(
            &other_notice(7, now)
        ));
    }

    #[test]
    fn timed_rows_keep_their_time_unless_a_slot_passed_it() {
        let mut plan = Schedule::new(vec![(250, 'b'), (100, 'a'), (260, 'c')]);
        assert_eq!(plan.next(90), None);
        assert_eq!(plan.next(120), Some((100, 'a')));
        plan.follow('x');
        assert_eq!(plan.next(200), Some((200, 'x')));
        assert_eq!(plan.next(300), Some((250, 'b')));
        // `c` was due before the previous slot: it takes this slot's time.
        assert_eq!(plan.next(310), Some((310, 'c')));
        plan.occupied(400);
        assert_eq!(plan.next(500), None);
        assert!(claimable("张三") && !claimable(" 张三") && !claimable(""));
        assert!(!claimable("领取了") && !claimable("a\nb"));
    }
}
