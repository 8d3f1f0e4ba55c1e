//! Kafka's offset-checkpoint files (`OffsetCheckpointFile`): one per log directory, one line per
//! partition, written atomically (temp file, fsync, rename).
//!
//! ```text
//! 0                 <- version
//! 2                 <- number of entries
//! events 0 1042     <- topic partition offset
//! events 1 977
//! ```
//!
//! The broker keeps three: `replication-offset-checkpoint` (high watermarks, in `broker/replica_manager.rs`),
//! [`RECOVERY_POINT_CHECKPOINT`] (every offset below it was flushed, written every
//! `log.flush.offset.checkpoint.interval.ms`) and [`LOG_START_OFFSET_CHECKPOINT`] (written
//! when retention or the leader moves a log start offset, and every
//! `log.flush.start.offset.checkpoint.interval.ms`).

use crate::types::{Offset, TopicPartition};
use std::collections::BTreeMap;

/// Kafka's `recovery-point-offset-checkpoint`.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// Kafka's `log-start-offset-checkpoint`.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";

/// The file's text for `entries` (in `TopicPartition` order).
pub fn encode(entries: &BTreeMap<TopicPartition, Offset>) -> Vec<u8> {
    let mut text = format!("0\n{}\n", entries.len());
    for (tp, offset) in entries {
        text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset.0));
    }
    text.into_bytes()
}

/// Parses the file; `None` if it is malformed (wrong version, count, or a bad line).
pub fn parse(data: &[u8]) -> Option<BTreeMap<TopicPartition, Offset>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = BTreeMap::new();
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let topic = parts.next()?;
        let partition: i32 = parts.next()?.parse().ok()?;
        let offset: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || partition < 0 || offset < 0 {
            return None;
        }
        entries.insert(TopicPartition::new(topic, partition), Offset(offset));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return None;
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("events", 1), Offset(977));
        m.insert(TopicPartition::new("events", 0), Offset(1042));
        let text = encode(&m);
        assert_eq!(text, b"0\n2\nevents 0 1042\nevents 1 977\n".to_vec());
        assert_eq!(parse(&text), Some(m));
        for bad in [
            &b"1\n0\n"[..],
            b"0\n2\nevents 0 1\n",
            b"0\n1\nevents x 1\n",
            b"",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"0\n0\n"), Some(BTreeMap::new()));
    }
}
