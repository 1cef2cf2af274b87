//! Finding members' ids, aliases, display names and group nicknames in text.
//!
//! All names of all members go into one Aho-Corasick automaton (leftmost
//! longest), so a message is scanned once however many members there are, and
//! `张三丰` wins over `张三`. A name too short to be safe in running text (one
//! character, or two ASCII characters) is only a pattern in its `@name`
//! form, which keeps a nickname like `好` from eating ordinary words without a
//! second scan.

use std::collections::BTreeMap;

use aho_corasick::automaton::Automaton;
use aho_corasick::{dfa, nfa, BuildError, Input, MatchError, MatchKind};
use unicode_normalization::UnicodeNormalization;

/// Pattern sets whose DFA would take up to this many bytes get one (fastest
/// scan); bigger ones a contiguous NFA, whose memory grows with the patterns
/// rather than with patterns × byte classes. A thousand CJK names made a DFA of
/// about 50 MB, most of the export's memory.
const DFA_MAX_BYTES: usize = 8 << 20;

/// What a DFA of `patterns` would take, from above: a row of one 4-byte state id
/// per byte class for each state, at most one state per pattern byte (plus the
/// start states), and one byte class per distinct byte plus one for the rest;
/// plus what does not grow with the patterns.
fn dfa_bytes_estimate<'p>(patterns: impl Iterator<Item = &'p str>) -> usize {
    let mut seen = [false; 256];
    let mut pattern_bytes = 0usize;
    for pattern in patterns {
        pattern_bytes += pattern.len();
        for &b in pattern.as_bytes() {
            seen[usize::from(b)] = true;
        }
    }
    let classes = seen.iter().filter(|&&s| s).count() + 1;
    (pattern_bytes + 2)
        .saturating_mul(classes)
        .saturating_mul(4)
        .saturating_add(DFA_FIXED_BYTES)
}

/// A DFA's size beyond its transition table (byte classes, match lists), from above.
const DFA_FIXED_BYTES: usize = 16 << 10;

/// What a pattern stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    /// Index of the member (see [`build`]).
    member: usize,
    /// The pattern is `@` + name; the `@` is kept in the text.
    mention: bool,
}

/// One occurrence of a name, in byte offsets of the searched text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameMatch {
    /// Start of the match, including a leading `@`.
    pub mention_start: usize,
    /// Start of the name itself: what is replaced.
    pub start: usize,
    pub end: usize,
    /// Index of the member (see [`build`]).
    pub member: usize,
}

/// The automaton, held as a concrete type: searching through `AhoCorasick`
/// goes through a trait object, one virtual call per byte.
#[derive(Debug, Clone)]
enum Engine {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

/// A compiled set of name patterns.
#[derive(Debug, Clone)]
pub struct NameMatcher {
    engine: Engine,
    targets: Vec<Target>,
    filter: Option<PairFilter>,
}

/// A Bloom filter of the first two characters of every pattern (every
/// pattern has at least two: short names only occur as `@` + name).
///
/// A text with no adjacent pair in the filter cannot contain a name, and most
/// messages have none: checking pairs in an 8 KiB table that stays in the L1
/// cache is several times cheaper than walking a DFA that for a few hundred
/// CJK names is megabytes large and misses the cache on almost every byte.
#[derive(Debug, Clone)]
struct PairFilter {
    bits: Box<[u64]>,
}

impl PairFilter {
    const BITS_LOG2: u32 = 16;
    /// Above this share of set bits the filter rejects too little to pay off.
    const MAX_FILL_PERCENT: usize = 12;

    fn hashes(first: char, second: char) -> [usize; 2] {
        let mixed = u32::from(first).wrapping_mul(0x9E37_79B1)
            ^ u32::from(second).wrapping_mul(0x85EB_CA77);
        let shift = 32 - PairFilter::BITS_LOG2;
        [
            (mixed >> shift) as usize,
            (mixed.wrapping_mul(0xC2B2_AE35) >> shift) as usize,
        ]
    }

    /// `None` if the patterns would fill the filter too much to be useful.
    fn new<'p>(patterns: impl Iterator<Item = &'p str>) -> Option<PairFilter> {
        let mut bits = vec![0u64; 1 << (PairFilter::BITS_LOG2 - 6)].into_boxed_slice();
        for pattern in patterns {
            let mut chars = pattern.chars();
            // A pattern of one character would escape the filter: no filter then.
            let (Some(first), Some(second)) = (chars.next(), chars.next()) else {
                return None;
            };
            for hash in PairFilter::hashes(first, second) {
                bits[hash >> 6] |= 1 << (hash & 63);
            }
        }
        let set: usize = bits.iter().map(|word| word.count_ones() as usize).sum();
        (set * 100 <= (bits.len() * 64) * PairFilter::MAX_FILL_PERCENT)
            .then_some(PairFilter { bits })
    }

    fn may_match(&self, haystack: &str) -> bool {
        let mut chars = haystack.chars();
        let Some(mut previous) = chars.next() else {
            return false;
        };
        for current in chars {
            let hit = PairFilter::hashes(previous, current)
                .iter()
                .all(|&hash| self.bits[hash >> 6] & (1 << (hash & 63)) != 0);
            if hit {
                return true;
            }
            previous = current;
        }
        false
    }
}

impl NameMatcher {
    fn new(patterns: BTreeMap<String, Target>) -> Result<Option<NameMatcher>, BuildError> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let dfa_bytes = dfa_bytes_estimate(patterns.keys().map(String::as_str));
        let filter = PairFilter::new(patterns.keys().map(String::as_str));
        let (patterns, targets): (Vec<String>, Vec<Target>) = patterns.into_iter().unzip();
        let engine = if dfa_bytes <= DFA_MAX_BYTES {
            Engine::Dfa(
                dfa::DFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .prefilter(false)
                    .build(&patterns)?,
            )
        } else {
            Engine::Nfa(
                nfa::contiguous::NFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)?,
            )
        };
        Ok(Some(NameMatcher {
            engine,
            targets,
            filter,
        }))
    }

    /// Calls `found` for each non-overlapping occurrence in `haystack`, left
    /// to right. The haystack must be normalized as [`normalize_name`] does.
    pub fn for_each_match(
        &self,
        haystack: &str,
        found: impl FnMut(NameMatch),
    ) -> Result<(), MatchError> {
        if self
            .filter
            .as_ref()
            .is_some_and(|filter| !filter.may_match(haystack))
        {
            return Ok(());
        }
        match &self.engine {
            Engine::Dfa(automaton) => self.search(automaton, haystack, found),
            Engine::Nfa(automaton) => self.search(automaton, haystack, found),
        }
    }

    fn search<A: Automaton>(
        &self,
        automaton: &A,
        haystack: &str,
        mut found: impl FnMut(NameMatch),
    ) -> Result<(), MatchError> {
        for hit in automaton.try_find_iter(Input::new(haystack))? {
            let Some(target) = self.targets.get(hit.pattern().as_usize()) else {
                continue;
            };
            found(NameMatch {
                mention_start: hit.start(),
                start: hit.start() + usize::from(target.mention),
                end: hit.end(),
                member: target.member,
            });
        }
        Ok(())
    }

    /// All occurrences (convenience for tests and callers outside the hot path).
    pub fn find_all(&self, haystack: &str) -> Result<Vec<NameMatch>, MatchError> {
        let mut all = Vec::new();
        self.for_each_match(haystack, |found| all.push(found))?;
        Ok(all)
    }
}

/// The matchers of one anonymizer.
#[derive(Debug, Clone, Default)]
pub struct NameSets {
    /// Every name, and `@` + every name.
    pub matcher: Option<NameMatcher>,
    /// The names that contain an ASCII character (and are not short): only
    /// they can reappear across the edge of an ASCII pseudonym or token.
    pub verifier: Option<NameMatcher>,
}

/// A name as it is matched: NFKD (the form the text is matched in), trimmed.
/// `None` if nothing is left.
pub fn normalize_name(name: &str) -> Option<String> {
    let normalized: String = name.nfkd().collect();
    let trimmed = normalized.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Whether a name is replaced only after `@`: shorter than 2 characters, or
/// shorter than 3 if it is all ASCII.
pub fn is_short_name(name: &str) -> bool {
    let minimum = if name.is_ascii() { 3 } else { 2 };
    name.chars().nth(minimum - 1).is_none()
}

/// Builds the matchers for `members`, where `members[i]` holds every string
/// that names member `i` (id, alias, display name, group nickname; empty ones
/// are ignored). When members share a name, the lowest index wins: callers
/// order members by id so that the lexicographically smallest id is chosen.
pub fn build(members: &[Vec<String>]) -> Result<NameSets, BuildError> {
    let mut patterns: BTreeMap<String, Target> = BTreeMap::new();
    let mut verifier_patterns: BTreeMap<String, Target> = BTreeMap::new();
    for (member, names) in members.iter().enumerate() {
        for name in names.iter().filter_map(|name| normalize_name(name)) {
            let short = is_short_name(&name);
            // `@` + name is a pattern for long names too, so that `@好人`
            // (member B) beats `@好` (member A) at the same `@`.
            patterns.entry(format!("@{name}")).or_insert(Target {
                member,
                mention: true,
            });
            if short {
                continue;
            }
            let target = Target {
                member,
                mention: false,
            };
            if name.bytes().any(|b| b.is_ascii()) {
                verifier_patterns.entry(name.clone()).or_insert(target);
            }
            patterns.entry(name).or_insert(target);
        }
    }
    Ok(NameSets {
        matcher: NameMatcher::new(patterns)?,
        verifier: NameMatcher::new(verifier_patterns)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter()
            .map(|names| names.iter().map(|name| (*name).to_owned()).collect())
            .collect()
    }

    fn matches(sets: &NameSets, text: &str) -> Vec<(String, usize)> {
        let Some(matcher) = sets.matcher.as_ref() else {
            return Vec::new();
        };
        matcher
            .find_all(text)
            .unwrap()
            .into_iter()
            .map(|found| (text[found.start..found.end].to_owned(), found.member))
            .collect()
    }

    #[test]
    fn longest_name_wins() {
        let sets = build(&members(&[&["张三"], &["张三丰"]])).unwrap();
        assert_eq!(
            matches(&sets, "张三丰和张三"),
            [("张三丰".into(), 1), ("张三".into(), 0)]
        );
    }

    #[test]
    fn short_names_only_after_at() {
        let sets = build(&members(&[&["好"], &["ab"], &["abc"]])).unwrap();
        assert_eq!(matches(&sets, "好的好的 ab abc"), [("abc".into(), 2)]);
        assert_eq!(
            matches(&sets, "@好 的@ab,"),
            [("好".into(), 0), ("ab".into(), 1)]
        );
    }

    #[test]
    fn mentions_keep_the_at_sign_outside_the_replacement() {
        let sets = build(&members(&[&["张三"]])).unwrap();
        let matcher = sets.matcher.unwrap();
        let found = matcher.find_all("hi @张三").unwrap();
        assert_eq!(
            found,
            [NameMatch {
                mention_start: 3,
                start: 4,
                end: 10,
                member: 0
            }]
        );
    }

    #[test]
    fn full_mention_beats_short_mention_of_another_member() {
        let sets = build(&members(&[&["好"], &["好人"]])).unwrap();
        assert_eq!(matches(&sets, "@好人 你好"), [("好人".into(), 1)]);
    }

    #[test]
    fn shared_names_go_to_the_lowest_index() {
        let sets = build(&members(&[&["a1", "老王"], &["b2", "老王"]])).unwrap();
        assert_eq!(matches(&sets, "老王"), [("老王".into(), 0)]);
    }

    #[test]
    fn empty_and_blank_names_are_ignored() {
        let sets = build(&members(&[&["", "  ", "\u{3000}"]])).unwrap();
        assert!(sets.matcher.is_none());
        assert!(sets.verifier.is_none());
    }

    #[test]
    fn names_are_normalized_and_trimmed() {
        assert_eq!(
            normalize_name(" Ａｌｉｃｅ\u{3000}").as_deref(),
            Some("Alice")
        );
        let sets = build(&members(&[&["Ａｌｉｃｅ"]])).unwrap();
        assert_eq!(matches(&sets, "Alice"), [("Alice".into(), 0)]);
    }

    #[test]
    fn pair_filter_never_hides_a_name() {
        let names: Vec<Vec<String>> = (0..200)
            .map(|i| vec![format!("名字{i}"), format!("user{i}")])
            .collect();
        let sets = build(&names).unwrap();
        let matcher = sets.matcher.unwrap();
        assert!(matcher.filter.is_some());
        for i in 0..200 {
            for text in [
                format!("你好名字{i}！"),
                format!("hi @user{i}"),
                format!("user{i}"),
            ] {
                assert!(!matcher.find_all(&text).unwrap().is_empty(), "{text}");
            }
        }
        assert!(matcher.find_all("今天开会").unwrap().is_empty());
    }

    #[test]
    fn the_dfa_estimate_is_an_upper_bound() {
        for count in [1, 10, 200, 1000] {
            let names: Vec<String> = (0..count)
                .flat_map(|i| [format!("成员{i}号张伟"), format!("@wxid_{i:08}")])
                .collect();
            let dfa = dfa::DFA::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .prefilter(false)
                .build(&names)
                .unwrap();
            let estimate = dfa_bytes_estimate(names.iter().map(String::as_str));
            assert!(
                dfa.memory_usage() <= estimate,
                "{count}: {} > {estimate}",
                dfa.memory_usage()
            );
        }
    }

    #[test]
    fn large_name_sets_use_the_compact_automaton() {
        let names: Vec<Vec<String>> = (0..3000)
            .map(|i| vec![format!("一个很长很长的群昵称第{i:05}号")])
            .collect();
        let sets = build(&names).unwrap();
        let matcher = sets.matcher.unwrap();
        assert!(matches!(matcher.engine, Engine::Nfa(_)));
        let found = matcher
            .find_all("看 @一个很长很长的群昵称第02999号 和一个很长很长的群昵称第00007号")
            .unwrap();
        let members: Vec<usize> = found.iter().map(|m| m.member).collect();
        assert_eq!(members, [2999, 7]);
    }

    #[test]
    fn short_name_rule_counts_characters() {
        assert!(is_short_name("好"));
        assert!(!is_short_name("张三"));
        assert!(is_short_name("ab"));
        assert!(!is_short_name("abc"));
        assert!(!is_short_name("a好"));
    }

    #[test]
    fn verifier_holds_long_names_with_ascii_only() {
        let sets = build(&members(&[&["张三", "zs", "zsf", "张a"]])).unwrap();
        let verifier = sets.verifier.unwrap();
        let found: Vec<usize> = verifier
            .find_all("张三 zs zsf 张a")
            .unwrap()
            .iter()
            .map(|m| m.start)
            .collect();
        assert_eq!(found, [10, 14]);
    }
}
