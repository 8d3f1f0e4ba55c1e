//! The settings one partition's log follows: `cleanup.policy`, segment rolling, the index
//! interval, retention, flushing.
//!
//! Mirrors Kafka's `LogConfig` (`storage/src/main/java/org/apache/kafka/storage/internals/log/LogConfig.java`).

use super::*;

/// `cleanup.policy`: a list of `delete` and `compact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's default, `delete`.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };

    /// Parses the validated list (`["compact", "delete"]`); an empty list means neither.
    pub fn from_list<S: AsRef<str>>(items: &[S]) -> CleanupPolicy {
        CleanupPolicy {
            delete: items.iter().any(|s| s.as_ref() == "delete"),
            compact: items.iter().any(|s| s.as_ref() == "compact"),
        }
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => write!(f, "compact,delete"),
            (true, false) => write!(f, "compact"),
            (false, true) => write!(f, "delete"),
            (false, false) => write!(f, ""),
        }
    }
}

/// The settings one partition's log follows (Kafka's `LogConfig`: topic overrides on top of
/// the broker's `log.*` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes` (1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms` / `log.roll.ms` (7 days).
    pub segment_ms: i64,
    /// `log.index.interval.bytes` (4096).
    pub index_interval_bytes: u32,
    /// `segment.index.bytes` / `log.index.size.max.bytes` (10 MiB).
    pub max_index_size_bytes: u32,
    /// `retention.ms` / `log.retention.ms` (7 days; negative: unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` / `log.retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy` / `log.cleanup.policy` (`delete`).
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms` / `log.cleaner.delete.retention.ms` (1 day): how long a tombstone
    /// survives after its segment was cleaned.
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            index_interval_bytes: 4_096,
            max_index_size_bytes: 10 * 1024 * 1024,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 86_400_000,
        }
    }
}
