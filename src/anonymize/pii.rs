//! Detectors for personal data in chat text, each mapped to a typed token.
//!
//! They work on normalized text (full-width digits and `＠` already folded to
//! ASCII, see the parent module) and are hand-written scanners rather than
//! regexes: most messages have fewer than five digits, no `@` and no context
//! word, and a single byte pass proves that before any detector runs.
//!
//! Numbers that merely look like PII stay: a digit run counts only as a whole
//! (a phone number inside a longer run of digits is not one), an 18-digit run
//! needs a valid GB 11643 check digit, a card number a valid Luhn sum.

/// The kind of a detected value, and its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    /// Mainland mobile number, with or without `+86`/`0086`/`86`.
    Phone,
    /// Resident identity card number (18 digits with check digit, or 15 legacy).
    Id,
    /// Luhn-valid card number of 16–19 digits.
    BankCard,
    Email,
    /// QQ number after a context word.
    Qq,
    /// WeChat id: `wxid_…`, or an id after a context word.
    Wxid,
}

impl PiiKind {
    pub const fn token(self) -> &'static str {
        match self {
            PiiKind::Phone => "[PHONE]",
            PiiKind::Id => "[ID]",
            PiiKind::BankCard => "[BANKCARD]",
            PiiKind::Email => "[EMAIL]",
            PiiKind::Qq => "[QQ]",
            PiiKind::Wxid => "[WXID]",
        }
    }
}

/// A detected value: byte range in the searched text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiSpan {
    pub start: usize,
    pub end: usize,
    pub kind: PiiKind,
}

/// Fewest digits any numeric detector needs (a QQ number).
const MIN_DIGITS: usize = 5;

/// Finds PII in normalized `text`. `spans` is cleared and filled with sorted,
/// non-overlapping spans; overlapping finds are merged into one span that keeps
/// the kind of the earliest (then longest), so `13812345678@163.com` is one
/// `[EMAIL]`.
pub fn find(text: &str, spans: &mut Vec<PiiSpan>) {
    spans.clear();
    let bytes = text.as_bytes();
    // One table-driven pass decides which detectors can possibly match; most
    // messages need none.
    let mut seen = 0u8;
    let mut digits = 0usize;
    for &byte in bytes {
        let class = BYTE_CLASS[usize::from(byte)];
        seen |= class;
        digits += usize::from(class & DIGIT);
    }
    let has_at = seen & AT != 0;
    let has_x = seen & LETTER_X != 0;
    // 微 (E5 BE AE) and 加 (E5 8A A0) share their lead byte.
    let has_cjk_context =
        seen & LEAD_E5 != 0 && CJK_CONTEXTS.iter().any(|context| text.contains(context));
    if has_at {
        find_emails(bytes, spans);
    }
    if has_x || has_cjk_context {
        find_wechat_ids(text, spans, has_cjk_context);
    }
    if digits >= MIN_DIGITS {
        find_numbers(text, spans);
    }
    merge(spans);
}

const DIGIT: u8 = 1;
const AT: u8 = 2;
const LETTER_X: u8 = 4;
const LEAD_E5: u8 = 8;

/// What each byte tells the prefilter in [`find`].
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut digit = b'0';
    while digit <= b'9' {
        table[digit as usize] = DIGIT;
        digit += 1;
    }
    table[b'@' as usize] = AT;
    table[b'x' as usize] = LETTER_X;
    table[b'X' as usize] = LETTER_X;
    table[0xE5] = LEAD_E5;
    table
};

/// The context words that can introduce a WeChat id without an `x` in them.
const CJK_CONTEXTS: [&str; 2] = ["微信", "加我"];

/// Replaces the PII in normalized `text` with tokens.
pub fn redact(text: &str) -> String {
    let mut spans = Vec::new();
    find(text, &mut spans);
    let mut output = String::with_capacity(text.len());
    let mut copied_to = 0;
    for span in &spans {
        output.push_str(text.get(copied_to..span.start).unwrap_or_default());
        output.push_str(span.kind.token());
        copied_to = span.end;
    }
    output.push_str(text.get(copied_to..).unwrap_or_default());
    output
}

fn merge(spans: &mut Vec<PiiSpan>) {
    if spans.len() < 2 {
        return;
    }
    spans.sort_unstable_by_key(|span| (span.start, std::cmp::Reverse(span.end)));
    let mut kept = 0;
    for index in 1..spans.len() {
        let span = spans[index];
        if span.start < spans[kept].end {
            spans[kept].end = spans[kept].end.max(span.end);
        } else {
            kept += 1;
            spans[kept] = span;
        }
    }
    spans.truncate(kept + 1);
}

// ---------------------------------------------------------------- numbers

/// Separators allowed between digit groups (`138 1234 5678`, `6222-0212-…`).
fn is_group_separator(byte: u8) -> bool {
    byte == b' ' || byte == b'-'
}

/// End of the digit run starting at `start`.
fn digits_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(bytes.len(), |length| start + length)
}

/// Start of the digit group after the one ending at `end`, if a single
/// separator joins them.
fn next_group(bytes: &[u8], end: usize) -> Option<usize> {
    let separator = *bytes.get(end)?;
    let next = *bytes.get(end + 1)?;
    (is_group_separator(separator) && next.is_ascii_digit()).then_some(end + 1)
}

/// Scans every digit run. A detector may consume several groups of a run
/// (`+86 138 1234 5678`); a group no detector wants is skipped whole, so a
/// value is never taken from the middle of a longer run.
fn find_numbers(text: &str, spans: &mut Vec<PiiSpan>) {
    let bytes = text.as_bytes();
    let mut position = 0;
    while position < bytes.len() {
        if !bytes[position].is_ascii_digit() {
            position += 1;
            continue;
        }
        // `position` starts a digit group: the byte before is not a digit.
        match number_at(text, position) {
            Some(span) => {
                position = span.end;
                spans.push(span);
            }
            None => position = digits_end(bytes, position),
        }
    }
}

/// The PII value starting with the digit group at `start`, if any.
fn number_at(text: &str, start: usize) -> Option<PiiSpan> {
    let bytes = text.as_bytes();
    let end = digits_end(bytes, start);
    let group = &bytes[start..end];
    let span = |span_start, span_end, kind| PiiSpan {
        start: span_start,
        end: span_end,
        kind,
    };

    if let Some(phone_end) = prefixed_mobile_end(bytes, start) {
        let with_plus = if start > 0 && bytes[start - 1] == b'+' {
            start - 1
        } else {
            start
        };
        return Some(span(with_plus, phone_end, PiiKind::Phone));
    }
    if group.len() == 18 && gb11643_valid(group) {
        return Some(span(start, end, PiiKind::Id));
    }
    if group.len() == 17
        && matches!(bytes.get(end), Some(b'X' | b'x'))
        && gb11643_valid(&bytes[start..=end])
    {
        return Some(span(start, end + 1, PiiKind::Id));
    }
    if group.len() == 15 && legacy_id_valid(group) {
        return Some(span(start, end, PiiKind::Id));
    }
    if let Some(phone_end) = mobile_end(bytes, start) {
        return Some(span(start, phone_end, PiiKind::Phone));
    }
    if let Some(card_end) = bank_card_end(bytes, start) {
        return Some(span(start, card_end, PiiKind::BankCard));
    }
    if (5..=11).contains(&group.len()) && has_qq_context(text.get(..start).unwrap_or_default()) {
        return Some(span(start, end, PiiKind::Qq));
    }
    None
}

/// `1[3-9]` + 9 digits, exactly.
fn is_mobile(digits: &[u8]) -> bool {
    digits.len() == 11 && digits[0] == b'1' && (b'3'..=b'9').contains(&digits[1])
}

/// End of a mainland mobile number starting at `start`: 11 digits, or 3-4-4
/// groups joined by single spaces or hyphens.
fn mobile_end(bytes: &[u8], start: usize) -> Option<usize> {
    let end = digits_end(bytes, start);
    if is_mobile(&bytes[start..end]) {
        return Some(end);
    }
    if end - start != 3 || bytes[start] != b'1' || !(b'3'..=b'9').contains(&bytes[start + 1]) {
        return None;
    }
    let second = next_group(bytes, end)?;
    let second_end = digits_end(bytes, second);
    if second_end - second != 4 {
        return None;
    }
    let third = next_group(bytes, second_end)?;
    let third_end = digits_end(bytes, third);
    (third_end - third == 4).then_some(third_end)
}

/// End of a mobile number with a country prefix starting at `start`:
/// `86`/`0086` glued to it or separated by one space or hyphen.
fn prefixed_mobile_end(bytes: &[u8], start: usize) -> Option<usize> {
    let end = digits_end(bytes, start);
    let group = &bytes[start..end];
    for prefix in [&b"86"[..], b"0086"] {
        if let Some(rest) = group.strip_prefix(prefix) {
            if rest.is_empty() {
                return mobile_end(bytes, next_group(bytes, end)?);
            }
            if is_mobile(rest) {
                return Some(end);
            }
        }
    }
    None
}

/// Weights of the first 17 digits of a GB 11643-1999 id: 2^(17-i) mod 11.
const GB11643_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character of a GB 11643-1999 id for its first 17 digits.
pub fn gb11643_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(GB11643_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    // (12 - sum mod 11) mod 11, with 10 written as X.
    Some(b"10X98765432"[(sum % 11) as usize])
}

/// Whether 18 characters form an id with a valid check character.
pub fn gb11643_valid(id: &[u8]) -> bool {
    id.len() == 18 && gb11643_check_char(&id[..17]) == Some(id[17].to_ascii_uppercase())
}

/// A 15-digit id (before 1999): area, `YYMMDD` of a 19YY birth date, sequence.
fn legacy_id_valid(id: &[u8]) -> bool {
    let number = |range: std::ops::Range<usize>| {
        id[range]
            .iter()
            .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'))
    };
    if id.len() != 15 || !id.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let year = 1900 + number(6..8);
    let month = number(8..10);
    let day = number(10..12);
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// Luhn check over the digits of `text` (separators are skipped).
pub fn luhn_valid(text: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for digit in text.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut value = u32::from(digit - b'0');
        if !count.is_multiple_of(2) {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
        count += 1;
    }
    count > 0 && sum.is_multiple_of(10)
}

/// End of a Luhn-valid card number of 16–19 digits starting at `start`:
/// one run, or groups of four (the last may be shorter) joined by single
/// spaces or hyphens. The longest valid reading wins.
fn bank_card_end(bytes: &[u8], start: usize) -> Option<usize> {
    let end = digits_end(bytes, start);
    let length = end - start;
    if (16..=19).contains(&length) {
        return luhn_valid(&bytes[start..end]).then_some(end);
    }
    if length != 4 {
        return None;
    }
    // Ends of the readings with 16..=19 digits, shortest first.
    let mut candidates = [0usize; 4];
    let mut candidate_count = 0;
    let mut total = 4;
    let mut group_end = end;
    while let Some(group_start) = next_group(bytes, group_end) {
        group_end = digits_end(bytes, group_start);
        let group_length = group_end - group_start;
        total += group_length;
        if total > 19 {
            break;
        }
        if total >= 16 && candidate_count < candidates.len() {
            candidates[candidate_count] = group_end;
            candidate_count += 1;
        }
        if group_length != 4 {
            break;
        }
    }
    candidates[..candidate_count]
        .iter()
        .rev()
        .copied()
        .find(|&candidate_end| luhn_valid(&bytes[start..candidate_end]))
}

/// Characters allowed between a context word and the value (`QQ:123`, `微信号是 abc`).
/// Full-width forms are listed too so that the detectors also work on text
/// that was not normalized.
fn is_context_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | ':' | '=' | '是' | '为' | '#' | '：' | '＝' | '\u{3000}'
    )
}

fn ends_with_ignore_ascii_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Whether `before` (the text before a number) ends with a QQ context word:
/// `QQ`, `扣扣`, `Q号`, `加我`, optionally followed by `号`/`号码` and separators.
fn has_qq_context(before: &str) -> bool {
    let before = before.trim_end_matches(is_context_separator);
    let (before, numbered) = match before
        .strip_suffix("号码")
        .or_else(|| before.strip_suffix('号'))
    {
        Some(rest) => (rest, true),
        None => (before, false),
    };
    // "QQ号" in a message names a QQ number whatever the source platform.
    ends_with_ignore_ascii_case(before, "QQ")
        || before.ends_with("扣扣")
        || before.ends_with("加我")
        || (numbered && ends_with_ignore_ascii_case(before, "q"))
}

// ---------------------------------------------------------------- email

fn is_local_part_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-'
}

/// `local@label.label…tld`, the top-level label starting with a letter.
fn find_emails(bytes: &[u8], spans: &mut Vec<PiiSpan>) {
    for (at, _) in bytes.iter().enumerate().filter(|(_, &b)| b == b'@') {
        let mut start = at;
        while start > 0 && is_local_part_byte(bytes[start - 1]) {
            start -= 1;
        }
        if start == at {
            continue;
        }
        let mut end = None;
        let mut labels = 0;
        let mut position = at + 1;
        loop {
            let label_start = position;
            while position < bytes.len() && is_label_byte(bytes[position]) {
                position += 1;
            }
            if position == label_start {
                break;
            }
            labels += 1;
            let label = &bytes[label_start..position];
            if labels >= 2 && label.len() >= 2 && label[0].is_ascii_alphabetic() {
                end = Some(position);
            }
            if bytes.get(position) == Some(&b'.') {
                position += 1;
            } else {
                break;
            }
        }
        if let Some(end) = end {
            spans.push(PiiSpan {
                start,
                end,
                kind: PiiKind::Email,
            });
        }
    }
}

// ---------------------------------------------------------------- WeChat ids

fn is_wechat_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// `wxid_…` anywhere; `[a-zA-Z][-_a-zA-Z0-9]{5,19}` (as a whole word) after
/// `微信`, `微信号`, `加我`, `vx` or `wx` (any case, not inside a word).
fn find_wechat_ids(text: &str, spans: &mut Vec<PiiSpan>, has_cjk_context: bool) {
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices("wxid_") {
        let id_start = start + "wxid_".len();
        let end = id_start
            + bytes[id_start..]
                .iter()
                .take_while(|&&b| is_wechat_id_byte(b))
                .count();
        if end > id_start {
            spans.push(PiiSpan {
                start,
                end,
                kind: PiiKind::Wxid,
            });
        }
    }
    for position in 0..bytes.len().saturating_sub(1) {
        let context = &bytes[position..position + 2];
        let is_context = (context.eq_ignore_ascii_case(b"vx")
            || context.eq_ignore_ascii_case(b"wx"))
            && (position == 0 || !bytes[position - 1].is_ascii_alphanumeric());
        if is_context && !bytes[position..].starts_with(b"wxid_") {
            push_wechat_id_after(text, position + 2, spans);
        }
    }
    if has_cjk_context {
        for context in CJK_CONTEXTS {
            for (start, _) in text.match_indices(context) {
                let after = &text[start + context.len()..];
                let skip = if context == "微信" && after.starts_with('号') {
                    '号'.len_utf8()
                } else {
                    0
                };
                push_wechat_id_after(text, start + context.len() + skip, spans);
            }
        }
    }
}

/// A WeChat id right after a context word ending at `from`.
fn push_wechat_id_after(text: &str, from: usize, spans: &mut Vec<PiiSpan>) {
    let Some(after) = text.get(from..) else {
        return;
    };
    let start = from + (after.len() - after.trim_start_matches(is_context_separator).len());
    let bytes = text.as_bytes();
    if !bytes.get(start).is_some_and(u8::is_ascii_alphabetic) {
        return;
    }
    let length = bytes[start..]
        .iter()
        .take_while(|&&b| is_wechat_id_byte(b))
        .count();
    if (6..=20).contains(&length) {
        spans.push(PiiSpan {
            start,
            end: start + length,
            kind: PiiKind::Wxid,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an 18-digit id with a valid check character.
    fn valid_id(first17: &str) -> String {
        let check = gb11643_check_char(first17.as_bytes()).unwrap();
        format!("{first17}{}", check as char)
    }

    /// Appends the digit that makes `partial` Luhn-valid.
    fn luhn_complete(partial: &str) -> String {
        (b'0'..=b'9')
            .map(|check| format!("{partial}{}", check as char))
            .find(|candidate| luhn_valid(candidate.as_bytes()))
            .unwrap()
    }

    #[test]
    fn gb11643_check_digits_by_hand() {
        // 11010519491231002X is the standard's own example.
        assert_eq!(gb11643_check_char(b"11010519491231002"), Some(b'X'));
        // Σ a·w for 44030419900101001: 4·7+4·9+0+3·5+0+4·4+1·2+9·1+9·6+0+0+1·9+0+1·5+0+0+1·2 = 176;
        // 176 mod 11 = 0 → check 1.
        assert_eq!(gb11643_check_char(b"44030419900101001"), Some(b'1'));
        assert!(gb11643_valid(b"11010519491231002X"));
        assert!(gb11643_valid(b"11010519491231002x"));
        assert!(gb11643_valid(b"440304199001010011"));
        assert!(!gb11643_valid(b"440304199001010012"));
    }

    #[test]
    fn resident_ids_need_a_valid_check_digit() {
        assert_eq!(redact("身份证 440304199001010011 谢谢"), "身份证 [ID] 谢谢");
        assert_eq!(redact("身份证11010519491231002X。"), "身份证[ID]。");
        assert_eq!(redact("id 11010519491231002x"), "id [ID]");
        let id = valid_id("32010219851103123");
        assert_eq!(redact(&id), "[ID]");
        // An order number that differs in the check digit stays.
        let mut altered = id.into_bytes();
        altered[17] = if altered[17] == b'1' { b'2' } else { b'1' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            redact(&format!("订单号 {altered}")),
            format!("订单号 {altered}")
        );
    }

    #[test]
    fn legacy_ids_need_a_real_date() {
        assert_eq!(redact("老身份证 110105491231002"), "老身份证 [ID]");
        assert_eq!(redact("110105000229002"), "110105000229002"); // 1900 was not a leap year
        assert_eq!(redact("110105960229002"), "[ID]"); // 1996 is a leap year
        assert_eq!(redact("110105971329002"), "110105971329002"); // month 13
        assert_eq!(redact("110105970230002"), "110105970230002"); // 30 February
    }

    #[test]
    fn phones_in_all_formats() {
        for text in [
            "13812345678",
            "+8613812345678",
            "8613812345678",
            "008613812345678",
            "+86 13812345678",
            "+86-138-1234-5678",
            "0086 138 1234 5678",
            "86 138 1234 5678",
            "138 1234 5678",
            "138-1234-5678",
            "138 1234-5678",
            "19912345678",
        ] {
            assert_eq!(redact(&format!("电话{text}。")), "电话[PHONE]。", "{text}");
        }
    }

    #[test]
    fn phone_shapes_inside_longer_digit_runs_stay() {
        for text in [
            "913812345678",
            "138123456789",
            "2138123456789",
            "12812345678", // second digit 2
            "1381234567",  // 10 digits
            "138 1234 56789",
            "138 12345 678",
        ] {
            assert_eq!(redact(text), text, "{text}");
        }
        // Letters are not digits: the number is whole.
        assert_eq!(redact("tel13812345678abc"), "tel[PHONE]abc");
        // A separate group after a year is its own run.
        assert_eq!(redact("2024 13812345678"), "2024 [PHONE]");
    }

    #[test]
    fn bank_cards_need_luhn() {
        let card16 = luhn_complete("622202123456789");
        let card19 = luhn_complete("622848001234567890");
        assert_eq!(redact(&format!("卡号{card16}")), "卡号[BANKCARD]");
        assert_eq!(
            redact(&format!("卡号 {card19} 工行")),
            "卡号 [BANKCARD] 工行"
        );
        let grouped = format!(
            "{} {} {} {}",
            &card16[..4],
            &card16[4..8],
            &card16[8..12],
            &card16[12..]
        );
        assert_eq!(redact(&grouped), "[BANKCARD]");
        let hyphenated = format!(
            "{}-{}-{}-{}-{}",
            &card19[..4],
            &card19[4..8],
            &card19[8..12],
            &card19[12..16],
            &card19[16..]
        );
        assert_eq!(redact(&format!("({hyphenated})")), "([BANKCARD])");
        // Well-known test number, and the same with its last digit changed.
        assert_eq!(redact("4111111111111111"), "[BANKCARD]");
        assert_eq!(redact("4111111111111112"), "4111111111111112");
        assert_eq!(redact("4111 1111 1111 1112"), "4111 1111 1111 1112");
    }

    #[test]
    fn luhn_by_hand() {
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(luhn_valid(b"4111-1111-1111-1111"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn emails_including_normalized_full_width_at() {
        assert_eq!(
            redact("邮箱 zhang.san+work@mail.example.com，谢谢"),
            "邮箱 [EMAIL]，谢谢"
        );
        assert_eq!(redact("13812345678@163.com"), "[EMAIL]");
        assert_eq!(redact("QQ 12345678@qq.com"), "QQ [EMAIL]");
        assert_eq!(redact("a@b.com."), "[EMAIL].");
        assert_eq!(
            redact("@张三 @bob.smith 1@2.3 x@localhost"),
            "@张三 @bob.smith 1@2.3 x@localhost"
        );
    }

    #[test]
    fn qq_numbers_only_with_context() {
        for text in [
            "QQ12345",
            "qq: 123456789",
            "QQ号 12345678",
            "QQ号码是12345678",
            "扣扣：12345678",
            "Q号 87654321",
            "加我 10001234",
        ] {
            let expected = text
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .to_owned()
                + "[QQ]";
            assert_eq!(redact(text), expected, "{text}");
        }
        assert_eq!(redact("房间 12345678"), "房间 12345678");
        assert_eq!(redact("QQ 1234"), "QQ 1234"); // too short
        assert_eq!(redact("QQ 123456789012"), "QQ 123456789012"); // too long
    }

    #[test]
    fn wechat_ids() {
        assert_eq!(redact("wxid_abc123def456 发的"), "[WXID] 发的");
        assert_eq!(
            redact("我的微信号：zhang_san-88，加一下"),
            "我的微信号：[WXID]，加一下"
        );
        assert_eq!(redact("微信 ZhangSan88"), "微信 [WXID]");
        assert_eq!(redact("vx: lisi_2024"), "vx: [WXID]");
        assert_eq!(redact("加我VX lisi2024"), "加我VX [WXID]");
        assert_eq!(redact("WX=wangwu99"), "WX=[WXID]");
        assert_eq!(redact("加我 wangwu99"), "加我 [WXID]");
        // Without context, or too short, or too long, or inside a word: stays.
        for text in [
            "zhang_san-88",
            "微信 abcde",
            "微信 a123456789012345678901",
            "twx abcdefgh",
        ] {
            assert_eq!(redact(text), text, "{text}");
        }
        assert_eq!(redact("微信 13812345678"), "微信 [PHONE]");
    }

    #[test]
    fn overlapping_finds_merge_under_the_first_kind() {
        let mut spans = vec![
            PiiSpan {
                start: 5,
                end: 9,
                kind: PiiKind::Qq,
            },
            PiiSpan {
                start: 0,
                end: 6,
                kind: PiiKind::Email,
            },
            PiiSpan {
                start: 0,
                end: 3,
                kind: PiiKind::Phone,
            },
            PiiSpan {
                start: 10,
                end: 12,
                kind: PiiKind::Id,
            },
        ];
        merge(&mut spans);
        assert_eq!(
            spans,
            [
                PiiSpan {
                    start: 0,
                    end: 9,
                    kind: PiiKind::Email
                },
                PiiSpan {
                    start: 10,
                    end: 12,
                    kind: PiiKind::Id
                },
            ]
        );
    }

    #[test]
    fn plain_text_has_no_spans() {
        let mut spans = Vec::new();
        find("今天下午三点开会，不见不散 ok 2024-06-12", &mut spans);
        assert!(spans.is_empty());
    }
}
