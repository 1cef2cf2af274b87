//! The report's charts, drawn as inline SVG by chatvault: messages per day and the top
//! senders of a conversation. No script, no library, no link; every label goes through
//! [`super::text`].

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::text;

/// At most this many bars: a conversation of many years is drawn by week or month.
const MAX_BARS: i64 = 120;
const WIDTH: f64 = 720.0;
const PLOT_LEFT: f64 = 44.0;
const PLOT_WIDTH: f64 = 666.0;
const PLOT_TOP: f64 = 10.0;
const PLOT_HEIGHT: f64 = 100.0;

/// Bars of messages per day (`(YYYY-MM-DD, messages)`, in any order; days that are not
/// dates, such as messages without a time, are left out of the chart).
pub fn messages_per_day(days: &[(String, u64)], out: &mut String) {
    let mut dated: Vec<(NaiveDate, u64)> = days
        .iter()
        .filter_map(|(day, n)| Some((NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?, *n)))
        .collect();
    dated.sort();
    let (Some(&(first, _)), Some(&(last, _))) = (dated.first(), dated.last()) else {
        out.push_str("<p>No dated messages.</p>\n");
        return;
    };
    let span = (last - first).num_days() + 1;
    let per_bar = (span + MAX_BARS - 1) / MAX_BARS;
    let bars = (span + per_bar - 1) / per_bar;
    let mut counts = vec![0u64; usize::try_from(bars).unwrap_or(0)];
    for (day, n) in &dated {
        let bar = usize::try_from((*day - first).num_days() / per_bar).unwrap_or(0);
        if let Some(slot) = counts.get_mut(bar) {
            *slot += n;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let unit = match per_bar {
        1 => "day".to_string(),
        7 => "week".to_string(),
        n => format!("{n} days"),
    };
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} 140\" role=\"img\" aria-label=\"messages per {unit}\">"
    );
    let _ = write!(
        out,
        "<line x1=\"{PLOT_LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#888\"/>",
        bottom = PLOT_TOP + PLOT_HEIGHT,
        right = PLOT_LEFT + PLOT_WIDTH
    );
    let bar_width = PLOT_WIDTH / counts.len() as f64;
    for (i, n) in counts.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let height = (PLOT_HEIGHT * *n as f64 / max as f64).max(0.5);
        let from = first + chrono::Days::new(i as u64 * per_bar as u64);
        let _ = write!(
            out,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#37a\"><title>{}: {} messages</title></rect>",
            PLOT_LEFT + bar_width * i as f64,
            PLOT_TOP + PLOT_HEIGHT - height,
            (bar_width - 0.5).max(0.5),
            height,
            from.format("%Y-%m-%d"),
            n
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{top}\" text-anchor=\"end\" font-size=\"10\">{max}</text>\
         <text x=\"{x}\" y=\"{bottom}\" text-anchor=\"end\" font-size=\"10\">0</text>\
         <text x=\"{PLOT_LEFT}\" y=\"128\" font-size=\"10\">{first}</text>\
         <text x=\"{right}\" y=\"128\" text-anchor=\"end\" font-size=\"10\">{last}</text>\
         <text x=\"{middle}\" y=\"128\" text-anchor=\"middle\" font-size=\"10\">messages per {unit}</text></svg>",
        x = PLOT_LEFT - 4.0,
        top = PLOT_TOP + 8.0,
        bottom = PLOT_TOP + PLOT_HEIGHT,
        right = PLOT_LEFT + PLOT_WIDTH,
        middle = PLOT_LEFT + PLOT_WIDTH / 2.0,
    );
}

/// Longest name drawn beside a bar; the roster has the whole name.
const NAME_CHARS: usize = 20;

/// Horizontal bars of the senders with the most messages (`(name, messages)`, most first).
pub fn top_senders(senders: &[(String, u64)], out: &mut String) {
    if senders.is_empty() {
        out.push_str("<p>No messages from members.</p>\n");
        return;
    }
    let max = senders.iter().map(|s| s.1).max().unwrap_or(0).max(1);
    let row = 18.0;
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-label=\"top senders\">",
        row * senders.len() as f64 + 4.0
    );
    for (i, (name, n)) in senders.iter().enumerate() {
        let y = row * i as f64;
        let name = if name.is_empty() {
            "(no sender id)"
        } else {
            name.as_str()
        };
        let mut shown: String = name.chars().take(NAME_CHARS).collect();
        if name.chars().count() > NAME_CHARS {
            shown.push('…');
        }
        let width = 440.0 * *n as f64 / max as f64;
        let _ = write!(out, "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">", y + 13.0);
        text(&shown, out);
        let _ = write!(
            out,
            "</text><rect x=\"200\" y=\"{:.1}\" width=\"{:.2}\" height=\"13\" fill=\"#6a4\"/><text x=\"{:.2}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            y + 3.0,
            width.max(0.5),
            206.0 + width,
            y + 13.0,
            n
        );
    }
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_conversation_is_drawn_in_at_most_max_bars() {
        let days: Vec<(String, u64)> = (0..1000)
            .map(|i| {
                let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(i);
                (day.format("%Y-%m-%d").to_string(), 1 + i % 3)
            })
            .chain(std::iter::once(("(no time)".to_string(), 5)))
            .collect();
        let mut out = String::new();
        messages_per_day(&days, &mut out);
        let bars = out.matches("<rect").count();
        assert!(bars <= MAX_BARS as usize && bars > 100, "{bars}");
        // Every dated message is in a bar: the titles add up.
        let total: u64 = out
            .split("</title>")
            .filter_map(|t| {
                t.rsplit(": ")
                    .next()?
                    .strip_suffix(" messages")?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        assert_eq!(total, (0..1000u64).map(|i| 1 + i % 3).sum::<u64>());
    }

    #[test]
    fn sender_names_are_escaped_and_shortened() {
        let mut out = String::new();
        top_senders(
            &[
                ("<script>alert(1)</script>".to_string(), 9),
                ("张三".repeat(20), 3),
            ],
            &mut out,
        );
        assert!(!out.contains("<script"));
        assert!(out.contains("&lt;script&gt;"));
        assert!(out.contains(&format!("{}…", "张三".repeat(10))));
    }
}
