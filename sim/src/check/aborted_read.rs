//! `aborted-read` (Jepsen's G1a): a read_committed reader read a value an aborted transaction
//! wrote.
//!
//! **Rule.** A record returned to a read_committed reader (an `ok` poll of a consumer with
//! `isolation.level = read_committed`, or a `poll` micro-operation of a processor's
//! transaction) whose value was written by a transaction that
//! * completed `fail` (aborted: by the application, or by an error before any commit was
//!   sent; the history contract says none of its writes may become visible), or
//! * was ended in that partition by an ABORT marker: the producer's first transaction marker
//!   written in the partition above the record's offset is an ABORT.
//!
//! **Source.** KIP-98 ("Exactly Once Delivery and Transactional Messaging"): a read_committed
//! consumer "will only return messages from transactions which were committed"; the broker
//! returns the aborted transactions of a fetch (`.txnindex`), and the consumer drops their
//! batches (CompletedFetch.java, `abortedProducerIds`, GROUPS-AND-TRANSACTIONS.md B1). Jepsen's
//! Kafka checker calls a `fail`ed write that gets polled `:G1a` (aborted read, Adya's G1a);
//! Jepsen found it in Redpanda 21.10.1 and, through KAFKA-17754 (a delayed COMMIT marker
//! committing the next transaction), in Kafka (B4.3).
//!
//! **What is allowed.** read_uncommitted consumers (Kafka's default) are exempt: they read up
//! to the high watermark, aborted records included, by design (a note counts their reads). A
//! record whose transaction's outcome is unknown (`info`) and that no ABORT marker ended is not
//! judged here; a record read before any marker ended its transaction is
//! `read-committed-isolation`'s business.

use super::lesson::{Lesson, Prevention};
use super::txn::{
    self, aborted_writer, count_aborted_reads, markers, read_committed_reads, reads_by_isolation,
    txns, writers,
};
use super::{violation, CheckInput, Checker, Violation};
use serde_json::json;

/// See the module documentation.
pub struct AbortedRead;

impl Checker for AbortedRead {
    fn name(&self) -> &'static str {
        "aborted-read"
    }

    fn statement(&self) -> &'static str {
        "no read_committed reader reads a value written by an aborted transaction"
    }

    fn lesson(&self) -> Lesson {
        Lesson {
            intro: "A consumer that reads with `isolation.level = read_committed` returned a \
                    record of an aborted transaction (Jepsen's G1a, aborted read). \
                    read_uncommitted consumers (the default) read aborted records by design and \
                    are not judged; read_committed ones must never see them.",
            prevention: Prevention::ReadCommitted,
        }
    }

    fn skip_reason(&self, input: &CheckInput) -> Option<String> {
        txn::without_txns(input, "no record belongs to an aborted transaction").or_else(|| {
            txn::without_read_committed(input, "no read can be judged against an abort").map(
                |reason| match uncommitted_aborted(input) {
                    (_, 0) => reason,
                    (_, aborted) => format!(
                        "{reason}; the read_uncommitted consumers read {aborted} record{} {}",
                        if aborted == 1 { "" } else { "s" },
                        aborted_by_design()
                    ),
                },
            )
        })
    }

    fn notes(&self, input: &CheckInput) -> Vec<String> {
        let (exempt, aborted) = uncommitted_aborted(input);
        if exempt == 0 {
            return Vec::new();
        }
        let mut note = format!(
            "{exempt} record{} read by read_uncommitted consumers {} not judged: \
             `isolation.level = read_uncommitted` (Kafka's default) reads aborted records by design",
            if exempt == 1 { "" } else { "s" },
            if exempt == 1 { "was" } else { "were" }
        );
        if aborted > 0 {
            note = format!(
                "{note}; {aborted} of them {} {}",
                if aborted == 1 { "was" } else { "were" },
                aborted_by_design()
            );
        }
        vec![note]
    }

    fn check(&self, input: &CheckInput) -> Vec<Violation> {
        let txns = txns(input.history);
        let writers = writers(&txns);
        let markers = markers(input.events);
        let (reads, _) = read_committed_reads(input);
        let mut anomalies = Vec::new();
        for read in reads {
            let Some((i, abort_marker)) = aborted_writer(&txns, &writers, &markers, &read) else {
                continue;
            };
            let t = &txns[i];
            let why = match abort_marker {
                Some(m) => format!(
                    "an ABORT marker ended it in {} at offset {} ({} at t={} ms)",
                    read.tp, m.offset, m.record.node, m.record.time_ms
                ),
                None => "the transaction failed (aborted)".to_string(),
            };
            let sentence = format!(
                "{} (read_committed), written by {}: {why}",
                read.describe(),
                t.describe()
            );
            let data = json!({
                "read": read.to_json(),
                "writer": t.to_json(),
                "abort_marker": abort_marker.map(|m| json!({
                    "offset": m.offset.0, "node": m.record.node.to_string(),
                    "time_ms": m.record.time_ms,
                })),
            });
            anomalies.push((sentence, data));
        }
        violation(self.name(), None, anomalies, serde_json::Map::new())
    }
}

/// How many records read_uncommitted consumers read, and how many of those an aborted
/// transaction wrote (by `aborted-read`'s rule).
fn uncommitted_aborted(input: &CheckInput) -> (usize, usize) {
    let (_, uncommitted) = reads_by_isolation(input);
    let aborted = count_aborted_reads(input.history, input.events, &uncommitted);
    (uncommitted.len(), aborted)
}

/// The end of the sentence that says reads of aborted records by read_uncommitted consumers
/// are configuration.
fn aborted_by_design() -> &'static str {
    "written by aborted transactions: that is configuration, not an anomaly (read_uncommitted \
     reads up to the high watermark, aborted transactions included; \
     `isolation.level = read_committed` would have dropped them, KIP-98)"
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::txn::testkit::{at, marker};
    use super::*;
    use ksim_model::event::OpType;

    #[test]
    fn a_read_of_a_failed_or_abort_marked_transaction_is_an_aborted_read() {
        let mut h = HistoryBuilder::default();
        // Value 1: its transaction failed. Value 2: committed by the client, but an ABORT
        // marker (a stale one, KAFKA-17754) ended it in the partition.
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 2, 2)]);
        h.poll(0, &tp(0), &[(0, 1), (2, 2)]);
        let events = [
            at(5, marker(&tp(0), (7, 0), false, 1)),
            at(25, marker(&tp(0), (7, 0), false, 3)),
        ];
        let v = check_history_events(&AbortedRead, &h.entries, &events);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].details["count"], 2);
        assert_eq!(
            v[0].message,
            "consumer-0 read value 1 at events-0 offset 0 at t=50 ms (read_committed), written \
             by producer-0's transaction 0 (tx-0, producer id 7, epoch 0, t=0..10 ms, aborted): \
             an ABORT marker ended it in events-0 at offset 1 (broker-0 at t=5 ms) \
             (1 more like this in details)"
        );
        assert_eq!(v[0].details["anomalies"][1]["read"]["value"], 2);
    }

    /// `transactions-under-faults` seed 160273: a deposed leader wrote an ABORT marker at
    /// offset 1 that it later truncated; the offset then held a committed transaction's
    /// record, which is no aborted read.
    #[test]
    fn a_marker_its_leader_truncated_away_ends_nothing() {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Ok, (7, 1), vec![tsend(&tp(0), 2, 0)]);
        h.poll(0, &tp(0), &[(0, 2)]);
        let stale = at(5, marker(&tp(0), (7, 0), false, 1));
        let committed = at(30, marker(&tp(0), (7, 1), true, 1));
        let v = check_history_events(
            &AbortedRead,
            &h.entries,
            &[stale.clone(), committed.clone()],
        );
        assert_eq!(
            v.len(),
            1,
            "without the truncation the stale marker counts: {v:?}"
        );
        let truncated = at(
            20,
            ksim_model::event::Event::Truncated {
                tp: tp(0),
                broker: ksim_model::types::BrokerId(0),
                from_offset: ksim_model::types::Offset(2),
                to_offset: ksim_model::types::Offset(0),
                reason: "diverging-epoch".into(),
            },
        );
        let events = [stale, truncated, committed];
        assert!(check_history_events(&AbortedRead, &h.entries, &events).is_empty());
    }

    #[test]
    fn committed_and_unknown_transactions_and_read_uncommitted_readers_pass() {
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Ok, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        h.txn(0, OpType::Info, (7, 0), vec![tsend(&tp(0), 2, 2)]);
        h.send(1, OpType::Ok, &tp(0), 3, 4);
        h.poll(0, &tp(0), &[(0, 1), (2, 2), (4, 3)]);
        let events = [
            at(5, marker(&tp(0), (7, 0), true, 1)),
            at(25, marker(&tp(0), (7, 0), true, 3)),
        ];
        assert!(check_history_events(&AbortedRead, &h.entries, &events).is_empty());
        // A failed transaction read by a read_uncommitted consumer is exempt.
        let scenario = crate::scenario::parse(
            r#"
            [scenario]
            name = "ru"
            duration_ms = 1000
            seeds = [1]
            [cluster]
            brokers = 1
            [[topics]]
            name = "events"
            replication_factor = 1
            [[consumers]]
            topics = ["events"]
            config = { "isolation.level" = "read_uncommitted" }
            "#,
            "ru.toml",
        )
        .expect("valid scenario");
        let mut h = HistoryBuilder::default();
        h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 1, 0)]);
        h.poll(0, &tp(0), &[(0, 1)]);
        let logs = std::collections::BTreeMap::new();
        let input = CheckInput {
            history: &h.entries,
            events: &[],
            final_logs: &logs,
            scenario: Some(&scenario),
            snapshots: &[],
        };
        assert!(AbortedRead.check(&input).is_empty());
        let note = &AbortedRead.notes(&input)[0];
        assert!(
            note.starts_with("1 record read by read_uncommitted"),
            "{note}"
        );
        // The record's transaction failed: the report says reading it is configuration.
        assert!(
            note.ends_with(
                "; 1 of them was written by aborted transactions: that is configuration, not an \
                 anomaly (read_uncommitted reads up to the high watermark, aborted transactions \
                 included; `isolation.level = read_committed` would have dropped them, KIP-98)"
            ),
            "{note}"
        );
        let reason = AbortedRead.skip_reason(&input).expect("skipped");
        assert!(
            reason.contains(
                "; the read_uncommitted consumers read 1 record written by aborted \
                 transactions: that is configuration"
            ),
            "{reason}"
        );
        // Without any transaction the check does not apply.
        let mut h = HistoryBuilder::default();
        h.poll(0, &tp(0), &[(0, 1)]);
        assert!(AbortedRead
            .skip_reason(&CheckInput {
                history: &h.entries,
                ..input
            })
            .is_some_and(|r| r.contains("no transactional producer")));
    }

    /// A processor's reads are judged by its own `isolation.level`: a read_uncommitted
    /// processor that read a record of an aborted transaction is configuration, a
    /// read_committed one that did is an aborted read. (Before the fix every processor counted
    /// as read_committed, and both were reported.)
    #[test]
    fn a_processor_is_judged_by_its_own_isolation_level() {
        use ksim_model::types::NodeId;
        let scenario = crate::scenario::parse(
            r#"
            [scenario]
            name = "pru"
            duration_ms = 1000
            seeds = [1]
            [cluster]
            brokers = 1
            [[topics]]
            name = "events"
            replication_factor = 1
            [[topics]]
            name = "results"
            replication_factor = 1
            [[processors]]
            group = "uncommitted"
            input = "events"
            output = "results"
            config = { "transactional.id" = "ru", "isolation.level" = "read_uncommitted" }
            [[processors]]
            group = "committed"
            input = "events"
            output = "results"
            config = { "transactional.id" = "rc" }
            "#,
            "pru.toml",
        )
        .expect("valid scenario");
        let read_by = |processor: u32| {
            let mut h = HistoryBuilder::default();
            h.txn(0, OpType::Fail, (7, 0), vec![tsend(&tp(0), 1, 0)]);
            let node = NodeId::Processor(processor);
            let tid = format!("p-{processor}");
            let id = h.txn_begin(node, &tid);
            h.txn_end(
                node,
                id,
                OpType::Ok,
                &tid,
                (9, 0),
                vec![tpoll(&tp(0), &[(0, 1)])],
                Some("g"),
                &[(tp(0), 1)],
            );
            h
        };
        let logs = std::collections::BTreeMap::new();
        let input = |h: &HistoryBuilder| -> Vec<Violation> {
            AbortedRead.check(&CheckInput {
                history: &h.entries,
                events: &[],
                final_logs: &logs,
                scenario: Some(&scenario),
                snapshots: &[],
            })
        };
        let h = read_by(0);
        assert!(
            input(&h).is_empty(),
            "processor-0 reads with read_uncommitted: {:?}",
            input(&h)
        );
        let h = read_by(1);
        let v = input(&h);
        assert_eq!(v.len(), 1, "processor-1 reads with read_committed: {v:?}");
        assert!(
            v[0].message.starts_with("processor-1 read value 1"),
            "{}",
            v[0].message
        );
        // With only read_uncommitted readers the check does not apply at all.
        let only_uncommitted = crate::scenario::parse(
            r#"
            [scenario]
            name = "pru"
            duration_ms = 1000
            seeds = [1]
            [cluster]
            brokers = 1
            [[topics]]
            name = "events"
            replication_factor = 1
            [[processors]]
            group = "uncommitted"
            input = "events"
            output = "events"
            config = { "transactional.id" = "ru", "isolation.level" = "read_uncommitted" }
            "#,
            "pru.toml",
        )
        .expect("valid scenario");
        let h = read_by(0);
        let reason = AbortedRead
            .skip_reason(&CheckInput {
                history: &h.entries,
                events: &[],
                final_logs: &logs,
                scenario: Some(&only_uncommitted),
                snapshots: &[],
            })
            .expect("skipped");
        assert!(
            reason.starts_with("no consumer or processor reads with"),
            "{reason}"
        );
    }
}
