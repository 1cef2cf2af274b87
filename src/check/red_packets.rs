//! Red packets that would block a dissolution: sent less than 24 hours before the reference
//! time, with fewer claims than parts (sources.md, "Red packets, ownership and
//! announcements on every platform"). Only such young packets are kept while a
//! conversation streams by; older ones have been refunded and cannot block.

use std::collections::HashMap;

use crate::records::{Direction, Kind, Message};

/// Unclaimed parts are refunded this long after sending.
pub const REFUND_AFTER_MS: i64 = 24 * 3600 * 1000;

/// A red packet sent within the refund window.
#[derive(Debug, Clone)]
pub struct YoungPacket {
    pub message_id: String,
    pub sender_id: String,
    /// The sender's names a text claim may use (display name, group nickname).
    pub sender_names: Vec<String>,
    pub time_ms: i64,
    pub id: Option<String>,
    pub parts: Option<u64>,
    pub amount_fen: Option<u64>,
    pub claims: u64,
}

impl YoungPacket {
    /// Known to have unclaimed parts.
    pub fn unclaimed(&self) -> bool {
        self.parts.is_some_and(|parts| self.claims < parts)
    }

    /// Whether it may have unclaimed parts (parts unknown count as possibly unclaimed).
    fn may_be_unclaimed(&self) -> bool {
        self.parts.is_none_or(|parts| self.claims < parts)
    }
}

/// `张三领取了李四的红包`: (claimer, sender).
pub fn text_claim(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    let (claimer, rest) = text.split_once("领取了")?;
    let sender = rest.strip_suffix("的红包")?;
    (!claimer.is_empty() && !sender.is_empty()).then_some((claimer, sender))
}

/// The young red packets of one conversation and their claims, fed message by message in
/// time order.
pub struct Tracker {
    /// The refund window: packets sent in `(now - 24 h, now]`.
    window: (i64, i64),
    pub packets: Vec<YoungPacket>,
    by_id: HashMap<String, usize>,
}

impl Tracker {
    pub fn new(now_ms: i64) -> Tracker {
        Tracker {
            window: (now_ms - REFUND_AFTER_MS, now_ms),
            packets: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// One message; `names_of` gives a sender id's names as members know them.
    pub fn message(&mut self, message: &Message, names_of: impl Fn(&str) -> Vec<String>) {
        if message.kind == Kind::RedPacket && message.direction != Direction::System {
            let Some(t) = message.time_ms else {
                return;
            };
            // "Less than 24 hours before" the reference time, and not after it.
            if t <= self.window.0 || t > self.window.1 {
                return;
            }
            let sender_id = message.sender_id.clone().unwrap_or_default();
            let terms = message.red_packet.as_deref();
            let packet = YoungPacket {
                message_id: message.message_id.clone(),
                sender_names: names_of(&sender_id),
                sender_id,
                time_ms: t,
                id: terms.and_then(|r| r.id.clone()),
                parts: terms.and_then(|r| r.parts),
                amount_fen: terms.and_then(|r| r.amount_fen),
                claims: 0,
            };
            if let Some(id) = &packet.id {
                self.by_id.insert(id.clone(), self.packets.len());
            }
            self.packets.push(packet);
            return;
        }
        // A claim after the reference time had not happened yet.
        if message.direction != Direction::System
            || message.time_ms.is_some_and(|t| t > self.window.1)
        {
            return;
        }
        if let Some(claim) = &message.claim {
            if let Some(&i) = self.by_id.get(&claim.packet_id) {
                self.packets[i].claims += 1;
            }
            return;
        }
        // A text claim belongs to the most recent earlier packet from a member of that
        // name that may still have unclaimed parts.
        let Some((_, sender)) = text_claim(&message.text) else {
            return;
        };
        let at = message.time_ms.unwrap_or(i64::MAX);
        if let Some(packet) = self.packets.iter_mut().rev().find(|p| {
            p.time_ms <= at && p.may_be_unclaimed() && p.sender_names.iter().any(|n| n == sender)
        }) {
            packet.claims += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RedPacket;

    fn message(
        kind: Kind,
        direction: Direction,
        sender: Option<&str>,
        t: i64,
        text: &str,
    ) -> Message {
        Message {
            group_id: "g".into(),
            message_id: format!("m{t}"),
            time_ms: Some(t),
            sender_id: sender.map(str::to_string),
            sender_name: None,
            direction,
            kind,
            text: text.into(),
            raw_type: String::new(),
            media: Vec::new(),
            quote: None,
            red_packet: (kind == Kind::RedPacket).then(|| {
                Box::new(RedPacket {
                    id: None,
                    parts: Some(2),
                    amount_fen: None,
                })
            }),
            claim: None,
            warning: None,
        }
    }

    #[test]
    fn text_claims_count_for_the_latest_packet_of_the_sender_they_name() {
        let now = 10 * REFUND_AFTER_MS;
        let mut tracker = Tracker::new(now);
        let names = |id: &str| match id {
            "u1" => vec!["李四".to_string()],
            _ => vec!["王五".to_string()],
        };
        let sent = now - 3_600_000;
        tracker.message(
            &message(Kind::RedPacket, Direction::Received, Some("u1"), sent, ""),
            names,
        );
        tracker.message(
            &message(
                Kind::RedPacket,
                Direction::Received,
                Some("u2"),
                sent + 1,
                "",
            ),
            names,
        );
        let claim = |t, text| message(Kind::System, Direction::System, None, t, text);
        tracker.message(&claim(sent + 2, "张三领取了李四的红包"), names);
        tracker.message(&claim(sent + 3, "赵六领取了王五的红包"), names);
        tracker.message(&claim(sent + 4, "赵六领取了李四的红包"), names);
        tracker.message(&claim(sent + 5, "赵六领取了无名的红包"), names);
        // After the reference time: not yet made.
        tracker.message(&claim(now + 1, "钱七领取了王五的红包"), names);
        let claims: Vec<u64> = tracker.packets.iter().map(|p| p.claims).collect();
        assert_eq!(claims, vec![2, 1]);
        assert!(!tracker.packets[0].unclaimed() && tracker.packets[1].unclaimed());
        // Older than 24 hours: refunded, not tracked.
        let mut tracker = Tracker::new(now);
        tracker.message(
            &message(
                Kind::RedPacket,
                Direction::Received,
                Some("u1"),
                now - REFUND_AFTER_MS,
                "",
            ),
            names,
        );
        assert!(tracker.packets.is_empty());
    }

    #[test]
    fn text_claims_name_claimer_and_sender() {
        assert_eq!(text_claim("张三领取了李四的红包"), Some(("张三", "李四")));
        assert_eq!(
            text_claim(" 张三领取了李四的红包\n"),
            Some(("张三", "李四"))
        );
        assert_eq!(text_claim("领取了李四的红包"), None);
        assert_eq!(text_claim("张三领取了红包"), None);
    }
}
