//! What a failed check teaches: the first paragraph of its lesson in `report.md` ("Which setting
//! would have prevented it", after KAFKA-SEMANTICS.md "Historical failures") and which family of
//! settings prevents it. Each checker names its own [`Lesson`] ([`Checker::lesson`]); the report
//! chooses the advice of its [`Prevention`] from the settings the run actually used.
//!
//! Checks whose failures have the same cause share an opening paragraph, kept here once.

#[cfg(doc)]
use super::Checker;

/// The lesson of one check: its opening paragraph and the settings that prevent its failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lesson {
    /// The first paragraph: what a failure of this check means, in plain words.
    pub intro: &'static str,
    /// Which settings would have prevented it.
    pub prevention: Prevention,
}

/// The families of settings a lesson chooses its advice from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prevention {
    /// Acknowledged records lost or offsets reused: weak acks, `min.insync.replicas=1`,
    /// unclean leader election, a historical truncation protocol, power loss without fsync.
    Loss,
    /// As [`Prevention::Loss`], or a consumer that cannot deserialize what the producer wrote
    /// and so never reads past its first record (`unseen`).
    LossOrUnreadable,
    /// A retried send appended twice or out of order: producers without idempotence (or, with
    /// it, a loss of replicated data).
    Duplicate,
    /// A consumer's reads jumped because the log changed under it: what prevents the loss.
    ReadJump,
    /// The cluster did not come back after the heal: offline partitions by design, or a bug.
    Liveness,
    /// An internal invariant of the replication protocol: controller-epoch fencing, the
    /// truncation protocol, or a bug.
    ProtocolInvariant,
    /// A consumer group's ownership of partitions broke (`exclusive-assignment`,
    /// `revoke-before-reassign`): no setting allows it; a bug of the coordinator, the assignor
    /// or the consumer's rebalance.
    GroupProtocol,
    /// The coordinator accepted a zombie's or a non-owner's commit (`commit-validity`): the
    /// fencing switch `sim.group.offset-commit-fencing`, or a bug.
    GroupCommitFencing,
    /// A group committed past what it processed (`at-least-once`): the application's commit
    /// order (`commit = "before-processing"`), or a bug.
    CommitOrder,
    /// A read_committed reader saw what it must not (`aborted-read`,
    /// `read-committed-isolation`, `G1c`): `isolation.level = read_committed` on every consumer
    /// that must not see aborted or open transactions; with it, a bug.
    ReadCommitted,
    /// A transaction's fencing broke (`zombie-fencing`, `torn-transaction`,
    /// `hanging-transaction`): `transaction.version = 2` (KIP-890 part 2),
    /// `transaction.partition.verification.enable = true` (part 1), producer-epoch fencing on.
    TxnFencing,
    /// A processor's input was processed zero or twice (`exactly-once`): a `transactional.id`
    /// on the processor (KIP-447 offsets in the transaction), `isolation.level =
    /// read_committed`, the generation check on TxnOffsetCommit.
    ExactlyOnce,
    /// No standard lesson is recorded: the intro says so and nothing follows.
    Unrecorded,
}

impl Lesson {
    /// The lesson of a check that records none.
    pub const UNRECORDED: Lesson = Lesson {
        intro: "No standard lesson is recorded for this check yet; see KAFKA-SEMANTICS.md for \
                what it asserts.",
        prevention: Prevention::Unrecorded,
    };
}

/// `lost-write`, `committed-record-lost`.
pub const RECORD_DISAPPEARED: &str = "An acknowledged record disappeared: the replica that led \
     next did not have it, and the replicas that had it truncated it away.";

/// `inconsistent-offsets`, `committed-data-stable`.
pub const OFFSET_REUSED: &str = "One offset held two different records: a replica handed out a \
     record, later truncated it, and the offset was reused for another record.";

/// `strong-isr`, `weak-isr`.
pub const REPLICAS_DISAGREED: &str = "Replicas disagreed about committed records.";

/// `duplicate`, `idempotent-duplicate`, `nonmonotonic-send`.
pub const WRITTEN_TWICE: &str = "A record was written twice (or out of order): a produce whose \
     answer was lost or timed out was retried, and the broker appended the retry as a new record.";

/// `poll-skip`, `nonmonotonic-poll`, `int-poll-skip`, `int-nonmonotonic-poll`.
pub const READS_JUMPED: &str = "A consumer's reads of one partition jumped: the offsets it read \
     did not follow one another. A consumer that reads a log which never changes below what it \
     has read cannot see this; it happens when the records it read are truncated away and their \
     offsets reused by a new leader, so the log changes under the reader.";

/// `leader-in-isr`, `single-leader-per-epoch`, `monotonic-high-watermark`,
/// `controller-epoch-fencing`.
pub const INTERNAL_INVARIANT: &str = "This is an internal invariant of Kafka's replication \
     protocol; no configuration is meant to allow breaking it.";
