//! The processor's own rules: the input positions a poll commits, the output values of each
//! mode, and which half a response belongs to.

use super::*;
use crate::config::{ConsumerConfig, ProducerConfig};
use crate::producer::ProducerWorkload;

fn record(p: i32, offset: i64, value: u64) -> PolledRecord {
    PolledRecord {
        tp: TopicPartition::new("in", p),
        offset: Offset(offset),
        value,
    }
}

fn processor(exactly_once: bool, incarnation: u64) -> ProcessorClient {
    let consumer = ConsumerClient::new(2, ConsumerConfig::default(), vec!["in".into()], vec![]);
    let workload = ProducerWorkload {
        topics: vec!["out".into()],
        rate_per_sec: 0,
        keys: 0,
        stop_at_ms: u64::MAX,
        send_style: Default::default(),
    };
    let producer = ProducerClient::new(2, ProducerConfig::default(), workload, vec![]);
    ProcessorClient::new(2, incarnation, consumer, producer, exactly_once)
}

#[test]
fn a_poll_commits_the_position_after_its_last_record_per_partition() {
    let records = [
        record(1, 7, 10),
        record(0, 3, 11),
        record(1, 8, 12),
        record(0, 4, 13),
    ];
    let offsets = input_offsets(&records);
    assert_eq!(
        offsets
            .iter()
            .map(|o| (o.tp.partition, o.offset.0))
            .collect::<Vec<_>>(),
        vec![(0, 5), (1, 9)]
    );
}

#[test]
fn outputs_are_unique_per_send_with_transactions_and_derived_from_the_input_without() {
    let mut eos = processor(true, 1);
    let a = eos.output_value(5);
    let b = eos.output_value(5);
    assert_ne!(a, b, "an input processed twice writes two distinct values");
    assert_eq!(a >> 63, 1);
    assert_eq!((a >> 48) & 0x7fff, 3, "processor 2 is tagged 3");
    assert_eq!((a >> 40) & 0xff, 1, "incarnation 1");
    // A restarted processor never repeats a value.
    let mut restarted = processor(true, 2);
    assert_ne!(restarted.output_value(5), a);
    let mut alo = processor(false, 0);
    let input = (1 << 32) | 17;
    assert_eq!(alo.output_value(input), (1 << 62) | input);
    assert_eq!(
        alo.output_value(input),
        alo.output_value(input),
        "same input, same output"
    );
}

#[test]
fn responses_go_to_the_half_whose_correlation_id_they_carry() {
    for incarnation in [0, 1, 5] {
        let consumer_corr = CorrelationId((incarnation << 32) + 3);
        let producer_corr = CorrelationId(((incarnation | PRODUCER_CORR_BIT) << 32) + 3);
        assert!(!ProcessorClient::is_producers(consumer_corr));
        assert!(ProcessorClient::is_producers(producer_corr));
    }
}

#[test]
fn a_transaction_spanning_polls_lists_each_poll_before_the_sends_it_fed() {
    let send = |value: u64| TxnMop::Send {
        tp: TopicPartition::new("out", 0),
        key: None,
        value,
        offset: None,
    };
    // Three polls: the first fed two sends, the second one, the third one.
    let polls = vec![
        (0, vec![record(0, 0, 10), record(0, 1, 11)]),
        (2, vec![record(0, 2, 12)]),
        (3, vec![record(0, 3, 13)]),
    ];
    let mut mops = vec![send(1), send(2), send(3), send(4)];
    insert_polls(&mut mops, &polls);
    let shape: Vec<String> = mops
        .iter()
        .map(|m| match m {
            TxnMop::Send { value, .. } => format!("send {value}"),
            TxnMop::Poll { records } => format!("poll {}", records.len()),
        })
        .collect();
    assert_eq!(
        shape,
        ["poll 2", "send 1", "send 2", "poll 1", "send 3", "poll 1", "send 4"]
    );
}

#[test]
fn a_rebalance_between_two_polls_is_another_member() {
    let meta = |generation_id: i32, member_id: &str| {
        Some(ConsumerGroupMetadata {
            group_id: "g".into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
        })
    };
    assert!(same_member(&meta(3, "m-1"), &meta(3, "m-1")));
    assert!(!same_member(&meta(3, "m-1"), &meta(4, "m-1")));
    assert!(!same_member(&meta(3, "m-1"), &meta(3, "m-2")));
    assert!(!same_member(&meta(3, "m-1"), &None));
}
