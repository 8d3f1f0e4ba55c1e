//! The transactional producer against a scripted broker-0 that is both the transaction
//! coordinator and the leader of every partition.

use super::*;
use crate::effects::Effect;
use crate::event::{ClientOp, OpType, OpValue, TxnMop};
use crate::record::RecordBatch;

const B0: NodeId = NodeId::Broker(BrokerId(0));

/// What the scripted broker answers; `None` leaves a request unanswered.
struct Script {
    end_txn_error: ErrorCode,
    /// The epoch EndTxn returns (KIP-890 part 2 bumps it).
    bump_on_end: bool,
    epoch: i16,
    next_offset: i64,
    /// Every produced batch, decoded.
    produced: Vec<RecordBatch>,
    end_txns: Vec<bool>,
    added: Vec<TopicPartition>,
    inits: u32,
    /// TxnOffsetCommit's answer.
    txn_offset_commit_error: ErrorCode,
    /// The coordinator requests in arrival order, by name.
    log: Vec<&'static str>,
    /// How many AddPartitionsToTxn after each EndTxn are answered CONCURRENT_TRANSACTIONS (the
    /// previous transaction's markers are still being written), and how many are left now.
    concurrent_adds: u32,
    concurrent_left: u32,
    /// The simulated time of the request being answered, in ms (set by `run`).
    now: u64,
    /// (time, error) of every AddPartitionsToTxn answered.
    add_answers: Vec<(u64, ErrorCode)>,
    /// Leave every Produce unanswered (a partition leader cut off from the producer).
    drop_produce: bool,
}

impl Script {
    fn new() -> Self {
        Script {
            end_txn_error: ErrorCode::None,
            bump_on_end: false,
            epoch: 0,
            next_offset: 0,
            produced: Vec::new(),
            end_txns: Vec::new(),
            added: Vec::new(),
            inits: 0,
            txn_offset_commit_error: ErrorCode::None,
            log: Vec::new(),
            concurrent_adds: 0,
            concurrent_left: 0,
            now: 0,
            add_answers: Vec::new(),
            drop_produce: false,
        }
    }

    fn answer(&mut self, m: &Message) -> Option<Message> {
        if !matches!(m, Message::Metadata { .. }) {
            self.log.push(m.api_name());
        }
        Some(match m {
            Message::Metadata { corr, .. } => Message::MetadataResponse {
                corr: *corr,
                brokers: vec![BrokerId(0)],
                controller: Some(BrokerId(0)),
                partitions: (0..2)
                    .map(|p| PartitionMetadata {
                        tp: TopicPartition::new("t", p),
                        error: ErrorCode::None,
                        leader: Some(BrokerId(0)),
                        leader_epoch: LeaderEpoch(0),
                        replicas: vec![BrokerId(0)],
                        isr: vec![BrokerId(0)],
                    })
                    .collect(),
            },
            Message::FindCoordinator { corr, .. } => Message::FindCoordinatorResponse {
                corr: *corr,
                error: ErrorCode::None,
                coordinator: Some(BrokerId(0)),
            },
            Message::InitProducerId {
                corr,
                transactional_id,
                ..
            } => {
                assert_eq!(transactional_id.as_deref(), Some("tx-0"));
                self.inits += 1;
                Message::InitProducerIdResponse {
                    corr: *corr,
                    error: ErrorCode::None,
                    producer_id: ProducerId(7),
                    producer_epoch: ProducerEpoch(self.epoch),
                }
            }
            Message::AddPartitionsToTxn {
                corr, partitions, ..
            } => {
                if self.concurrent_left > 0 {
                    self.concurrent_left -= 1;
                    self.add_answers
                        .push((self.now, ErrorCode::ConcurrentTransactions));
                    return Some(Message::AddPartitionsToTxnResponse {
                        corr: *corr,
                        results: partitions
                            .iter()
                            .map(|tp| (tp.clone(), ErrorCode::ConcurrentTransactions))
                            .collect(),
                    });
                }
                self.add_answers.push((self.now, ErrorCode::None));
                self.added.extend(partitions.iter().cloned());
                Message::AddPartitionsToTxnResponse {
                    corr: *corr,
                    results: partitions
                        .iter()
                        .map(|tp| (tp.clone(), ErrorCode::None))
                        .collect(),
                }
            }
            Message::Produce { .. } if self.drop_produce => return None,
            Message::Produce {
                corr, partitions, ..
            } => {
                let mut responses = Vec::new();
                for (tp, bytes) in partitions {
                    assert!(self.added.contains(tp), "{tp} produced before it was added");
                    let (batch, _) = RecordBatch::decode(bytes).expect("batch");
                    let base = self.next_offset;
                    self.next_offset += batch.records.len() as i64;
                    self.produced.push(batch);
                    responses.push(PartitionProduceResponse {
                        tp: tp.clone(),
                        error: ErrorCode::None,
                        base_offset: Offset(base),
                        log_start_offset: Offset(0),
                    });
                }
                Message::ProduceResponse {
                    corr: *corr,
                    partitions: responses,
                }
            }
            Message::EndTxn {
                corr, committed, ..
            } => {
                self.end_txns.push(*committed);
                self.added.clear();
                self.concurrent_left = self.concurrent_adds;
                if self.end_txn_error == ErrorCode::None && self.bump_on_end {
                    self.epoch += 1;
                }
                Message::EndTxnResponse {
                    corr: *corr,
                    error: self.end_txn_error,
                    producer_id: ProducerId(7),
                    producer_epoch: ProducerEpoch(self.epoch),
                }
            }
            Message::AddOffsetsToTxn { corr, group_id, .. } => {
                assert_eq!(group_id, "etl");
                Message::AddOffsetsToTxnResponse {
                    corr: *corr,
                    error: ErrorCode::None,
                }
            }
            Message::TxnOffsetCommit {
                corr,
                offsets,
                generation_id,
                member_id,
                ..
            } => {
                assert_eq!((*generation_id, member_id.as_str()), (3, "m-1"));
                Message::TxnOffsetCommitResponse {
                    corr: *corr,
                    partitions: offsets
                        .iter()
                        .map(|o| OffsetCommitPartitionResponse {
                            tp: o.tp.clone(),
                            error: self.txn_offset_commit_error,
                        })
                        .collect(),
                }
            }
            _ => return None,
        })
    }
}

fn producer(spec: TransactionSpec) -> ProducerClient {
    let workload = ProducerWorkload {
        topics: vec!["t".into()],
        rate_per_sec: 1000,
        keys: 2,
        stop_at_ms: 200,
        send_style: SendStyle::Async,
    };
    let config = ProducerConfig {
        transactional_id: Some("tx-0".into()),
        ..ProducerConfig::default()
    };
    ProducerClient::new(0, config, workload, vec![BrokerId(0)]).with_transactions(spec)
}

/// Runs the producer against the script until `until_ms`, delivering every answer 1 ms
/// after its request and firing timers in time order; returns the history ops.
fn run(p: &mut ProducerClient, script: &mut Script, until_ms: u64) -> Vec<ClientOp> {
    let mut ops = Vec::new();
    // (time, sequence, what): a message to deliver or a timer to fire.
    enum Due {
        Msg(Message),
        Timer(ProducerTimer),
    }
    let mut queue: std::collections::BTreeMap<(u64, u64), Due> = Default::default();
    let mut seq = 0u64;
    let mut absorb = |out: Effects<ProducerTimer>,
                      now: u64,
                      queue: &mut std::collections::BTreeMap<(u64, u64), Due>,
                      script: &mut Script,
                      ops: &mut Vec<ClientOp>| {
        for e in out.list {
            seq += 1;
            match e {
                Effect::Send { msg, .. } => {
                    script.now = now;
                    if let Some(reply) = script.answer(&msg) {
                        queue.insert((now + 1, seq), Due::Msg(reply));
                    }
                }
                Effect::SetTimer { after_ms, timer } => {
                    queue.insert((now + after_ms, seq), Due::Timer(timer));
                }
                Effect::Op(op) => ops.push(op),
                _ => {}
            }
        }
    };
    let mut out = Effects::new();
    p.on_start(Instant(0), &mut out);
    absorb(out, 0, &mut queue, script, &mut ops);
    while let Some((&(t, s), _)) = queue.iter().next() {
        if t > until_ms {
            break;
        }
        let due = queue.remove(&(t, s)).expect("present");
        let mut out = Effects::new();
        match due {
            Due::Msg(m) => p.on_message(Instant(t), B0, m, &mut out),
            Due::Timer(timer) => p.on_timeout(Instant(t), timer, &mut out),
        }
        p.invariants();
        absorb(out, t, &mut queue, script, &mut ops);
    }
    ops
}

fn completions(ops: &[ClientOp]) -> Vec<&ClientOp> {
    ops.iter().filter(|o| o.op_type != OpType::Invoke).collect()
}

fn sends(op: &ClientOp) -> Vec<(TopicPartition, Option<Offset>)> {
    let OpValue::Txn { mops, .. } = &op.value else {
        panic!("not a txn op: {op:?}")
    };
    mops.iter()
        .map(|m| match m {
            TxnMop::Send { tp, offset, .. } => (tp.clone(), *offset),
            TxnMop::Poll { .. } => panic!("a producer polls nothing"),
        })
        .collect()
}

#[test]
fn committed_transactions_are_one_ok_txn_op_each_with_their_offsets() {
    let spec = TransactionSpec {
        records_min: 3,
        records_max: 3,
        abort_percent: 0,
    };
    let mut p = producer(spec);
    let mut script = Script::new();
    let ops = run(&mut p, &mut script, 400);
    assert!(
        ops.iter().all(|o| matches!(o.value, OpValue::Txn { .. })),
        "a transactional producer records only txn ops: {ops:?}"
    );
    let done = completions(&ops);
    assert!(done.len() >= 5, "{} transactions", done.len());
    for (i, op) in done.iter().enumerate() {
        assert_eq!(op.op_type, OpType::Ok, "{op:?}");
        let s = sends(op);
        // The transaction open when the workload stops ends early.
        if i + 1 < done.len() {
            assert_eq!(s.len(), 3);
        }
        assert!(!s.is_empty() && s.iter().all(|(_, o)| o.is_some()), "{s:?}");
    }
    assert!(script.end_txns.iter().all(|c| *c));
    assert!(script.produced.iter().all(|b| b.is_transactional()));
    // The open transaction at the stop is ended too: every invoke is completed.
    let invokes = ops.iter().filter(|o| o.op_type == OpType::Invoke).count();
    assert_eq!(invokes, done.len());
}

/// Kafka's `AddPartitionsToTxnHandler`: the first AddPartitionsToTxn of a transaction answered
/// CONCURRENT_TRANSACTIONS is retried after `ADD_PARTITIONS_RETRY_BACKOFF_MS` (20 ms), not
/// `retry.backoff.ms` (100 ms by default).
#[test]
fn a_first_add_partitions_answered_concurrent_transactions_is_retried_after_20_ms() {
    let spec = TransactionSpec {
        records_min: 3,
        records_max: 3,
        abort_percent: 0,
    };
    let mut p = producer(spec);
    let mut script = Script::new();
    script.concurrent_adds = 2;
    let ops = run(&mut p, &mut script, 400);
    assert!(completions(&ops).len() >= 2, "{ops:?}");
    let retries: Vec<u64> = script
        .add_answers
        .windows(2)
        .filter(|w| w[0].1 == ErrorCode::ConcurrentTransactions)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    assert!(retries.len() >= 2, "{:?}", script.add_answers);
    // Answered 1 ms after the request; the retry 20 ms after the answer.
    assert!(
        retries
            .iter()
            .all(|gap| *gap == 1 + ADD_PARTITIONS_RETRY_BACKOFF_MS),
        "{retries:?} {:?}",
        script.add_answers
    );
    assert!(ProducerConfig::default().retry_backoff_ms > ADD_PARTITIONS_RETRY_BACKOFF_MS);
}

#[test]
fn aborted_transactions_fail_and_send_end_txn_abort() {
    let spec = TransactionSpec {
        records_min: 2,
        records_max: 2,
        abort_percent: 100,
    };
    let mut p = producer(spec);
    let mut script = Script::new();
    let ops = run(&mut p, &mut script, 400);
    let done = completions(&ops);
    assert!(!done.is_empty());
    assert!(done.iter().all(|o| o.op_type == OpType::Fail), "{done:?}");
    assert!(script.end_txns.iter().all(|c| !*c), "{:?}", script.end_txns);
}

/// The last unresolved send of a transaction being committed expires (`delivery.timeout.ms`)
/// inside the Sender's drain: the transaction must go on to EndTxn(abort) at once, not wait for
/// an input that never comes (found on hanging-transaction-tv2 seed 7600000, where the producer
/// then stayed silent for the rest of the run). Produce goes unanswered; `request.timeout.ms`
/// (50) fails the attempt and `retry.backoff.ms` (100) keeps the batch in the accumulator past
/// its `delivery.timeout.ms` (120), so the drain after the backoff is what expires it.
#[test]
fn a_send_expiring_during_the_commit_flush_ends_the_transaction_with_an_abort() {
    let spec = TransactionSpec {
        records_min: 1,
        records_max: 1,
        abort_percent: 0,
    };
    let workload = ProducerWorkload {
        topics: vec!["t".into()],
        rate_per_sec: 1000,
        keys: 2,
        stop_at_ms: 20,
        send_style: SendStyle::Async,
    };
    let config = ProducerConfig {
        transactional_id: Some("tx-0".into()),
        request_timeout_ms: 50,
        delivery_timeout_ms: 120,
        retry_backoff_ms: 100,
        ..ProducerConfig::default()
    };
    let mut p = ProducerClient::new(0, config, workload, vec![BrokerId(0)]).with_transactions(spec);
    let mut script = Script::new();
    script.drop_produce = true;
    let ops = run(&mut p, &mut script, 2_000);
    let done = completions(&ops);
    assert!(!done.is_empty(), "no transaction ended: {:?}", script.log);
    assert_eq!(done[0].op_type, OpType::Fail, "{:?}", done[0]);
    assert!(
        script.end_txns.first() == Some(&false),
        "EndTxn(abort) after the expiry: {:?}",
        script.log
    );
}

#[test]
fn a_fenced_commit_is_indeterminate_and_the_next_instance_reinitialises() {
    let spec = TransactionSpec {
        records_min: 1,
        records_max: 1,
        abort_percent: 0,
    };
    let mut p = producer(spec);
    let mut script = Script::new();
    script.end_txn_error = ErrorCode::ProducerFenced;
    // retry.backoff.ms (100) between an instance's end and the next one's init.
    let ops = run(&mut p, &mut script, 300);
    let done = completions(&ops);
    assert!(!done.is_empty());
    let first = done[0];
    assert_eq!(first.op_type, OpType::Info, "{first:?}");
    assert!(first
        .error
        .as_deref()
        .is_some_and(|e| e.contains("PRODUCER_FENCED")));
    // A new instance ran initTransactions() again (and was fenced again by the script).
    assert!(script.inits >= 2, "{} InitProducerId", script.inits);
    assert!(done.iter().all(|o| o.op_type == OpType::Info));
}

#[test]
fn with_an_epoch_bump_per_transaction_sequences_restart_at_zero() {
    let spec = TransactionSpec {
        records_min: 2,
        records_max: 2,
        abort_percent: 0,
    };
    let mut p = producer(spec);
    let mut script = Script::new();
    script.bump_on_end = true;
    let ops = run(&mut p, &mut script, 100);
    assert!(completions(&ops).iter().all(|o| o.op_type == OpType::Ok));
    let epochs: std::collections::BTreeSet<i16> =
        script.produced.iter().map(|b| b.producer_epoch.0).collect();
    assert!(epochs.len() >= 3, "{epochs:?}");
    for b in &script.produced {
        // Each transaction writes its first batch per partition at sequence 0 of its epoch.
        let same_epoch_before = script
            .produced
            .iter()
            .take_while(|x| !std::ptr::eq(*x, b))
            .filter(|x| x.producer_epoch == b.producer_epoch)
            .count();
        if same_epoch_before == 0 {
            assert_eq!(b.base_sequence.0, 0, "{b:?}");
        }
    }
}

/// A driven producer (a processor's): `beginTransaction`, two sends, then
/// `sendOffsetsToTransaction` and `commitTransaction` at 50 ms; returns the history ops.
fn run_driven(script: &mut Script) -> Vec<ClientOp> {
    let mut p = producer(TransactionSpec::default()).driven();
    let mut ops = run(&mut p, script, 50);
    assert!(
        ops.is_empty(),
        "a driven producer runs no transaction of its own"
    );
    assert!(p.transaction_ready(), "initTransactions() done");
    let mut out = Effects::new();
    p.begin_transaction(&mut out);
    for v in [1, 2] {
        p.send_record(Instant(50), Some("k0".into()), v, &mut out);
    }
    let group = ConsumerGroupMetadata {
        group_id: "etl".into(),
        generation_id: 3,
        member_id: "m-1".into(),
        group_instance_id: None,
    };
    let offsets = vec![OffsetCommitPartition {
        tp: TopicPartition::new("in", 0),
        committed_offset: Offset(9),
    }];
    p.send_offsets_to_transaction(Instant(50), offsets, group, &mut out);
    p.commit_transaction(Instant(50), &mut out);
    ops.extend(out.ops());
    // Continue with the answers to what was sent at 50 ms.
    let mut rest = Vec::new();
    let mut due: Vec<(u64, Message)> = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::Send { msg, .. } => script.answer(msg).map(|r| (51, r)),
            _ => None,
        })
        .collect();
    let mut timers: Vec<(u64, ProducerTimer)> = out
        .list
        .iter()
        .filter_map(|e| match e {
            Effect::SetTimer { after_ms, timer } => Some((50 + after_ms, timer.clone())),
            _ => None,
        })
        .collect();
    let mut now = 50;
    while now < 400 {
        now += 1;
        let mut out = Effects::new();
        for (_, m) in due.extract_if(.., |(t, _)| *t == now) {
            p.on_message(Instant(now), B0, m, &mut out);
        }
        for (_, t) in timers.extract_if(.., |(t, _)| *t == now) {
            p.on_timeout(Instant(now), t, &mut out);
        }
        p.invariants();
        for e in &out.list {
            match e {
                Effect::Send { msg, .. } => {
                    if let Some(r) = script.answer(msg) {
                        due.push((now + 1, r));
                    }
                }
                Effect::SetTimer { after_ms, timer } => {
                    timers.push((now + after_ms, timer.clone()))
                }
                _ => {}
            }
        }
        rest.extend(out.ops());
    }
    ops.extend(rest);
    ops
}

/// KIP-447's order: the outputs' partitions are added (and written), AddOffsetsToTxn,
/// FindCoordinator for the group, TxnOffsetCommit with the group metadata, and only then
/// EndTxn; the transaction is one `ok` txn op.
#[test]
fn send_offsets_to_transaction_commits_the_offsets_before_end_txn() {
    let mut script = Script::new();
    let ops = run_driven(&mut script);
    let after_init: Vec<&str> = script
        .log
        .iter()
        .copied()
        .skip_while(|n| *n != "AddPartitionsToTxn")
        .collect();
    assert_eq!(
        after_init,
        // The produce goes out once its partition is added, while the coordinator requests
        // go on one at a time; EndTxn waits for both.
        vec![
            "AddPartitionsToTxn",
            "AddOffsetsToTxn",
            "Produce",
            "FindCoordinator",
            "TxnOffsetCommit",
            "EndTxn"
        ]
    );
    assert_eq!(script.end_txns, vec![true]);
    let done = completions(&ops);
    assert_eq!(done.len(), 1, "{ops:?}");
    assert_eq!(done[0].op_type, OpType::Ok);
}

/// A fenced generation (ILLEGAL_GENERATION: the member is a zombie) makes the transaction
/// abortable: EndTxn(abort), a `fail` txn op naming Kafka's CommitFailedException.
#[test]
fn a_fenced_txn_offset_commit_aborts_the_transaction() {
    let mut script = Script::new();
    script.txn_offset_commit_error = ErrorCode::IllegalGeneration;
    let ops = run_driven(&mut script);
    assert_eq!(script.end_txns, vec![false]);
    let done = completions(&ops);
    assert_eq!(done.len(), 1, "{ops:?}");
    assert_eq!(done[0].op_type, OpType::Fail);
    let error = done[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("CommitFailedException") && error.contains("ILLEGAL_GENERATION"),
        "{error}"
    );
}
