//! Real Kafka settings whose feature the testbed does not implement yet: parsed like any
//! other key, refused unless left at Kafka's default.

use super::*;

/// A real Kafka setting whose feature the testbed does not implement yet.
///
/// The key parses (its type and range are checked like any other), but any value outside
/// `allowed` (Kafka's default, or values that mean the same as the default) is refused with
/// `not supported yet: KEY = VALUE (reason)`. Implementing a feature = deleting its row from
/// [`NOT_SUPPORTED_YET`] and reading the key in `from_properties`.
#[derive(Debug, Clone, Copy)]
pub struct NotSupportedYet {
    pub kind: ConfigKind,
    pub key: &'static str,
    /// Values accepted because they mean "feature off" (canonical form: `true`/`false`,
    /// decimal numbers, strings as written, lists joined by `,`). Empty: any value is refused.
    pub allowed: &'static [&'static str],
    /// The row applies only when this other key is set too (e.g. `enable.auto.commit` only
    /// matters with a `group.id`).
    pub only_with: Option<&'static str>,
    /// What is missing, for the error message.
    pub reason: &'static str,
}

// Unused while every parsed key is implemented (transactions landed last); kept for the next
// key whose feature comes later.
#[allow(dead_code)]
pub(super) const fn nsy(
    kind: ConfigKind,
    key: &'static str,
    allowed: &'static [&'static str],
    reason: &'static str,
) -> NotSupportedYet {
    NotSupportedYet {
        kind,
        key,
        allowed,
        only_with: None,
        reason,
    }
}

/// Every Kafka setting that parses but whose feature is not implemented yet: the one list to
/// shrink as features land.
pub const NOT_SUPPORTED_YET: &[NotSupportedYet] = &[
    // Broker.
    // Topic.
    // Producer.
    // Consumer.
];
