//! AlterPartition from the leader: one copy in flight, resent to a new controller, after a
//! broken connection, and kept in the maximal ISR until answered.

use super::*;

/// The AlterPartition requests among `out`'s effects: (destination, correlation id, ISR
/// asked for).
fn alter_partitions_sent(
    out: &Effects<BrokerTimer>,
) -> Vec<(NodeId, CorrelationId, Vec<BrokerId>)> {
    out.list
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                msg: Message::AlterPartition { corr, new_isr, .. },
            } => Some((*to, *corr, new_isr.clone())),
            _ => None,
        })
        .collect()
}

/// A leader of `t-0` (ISR [0], replicas [0, 1]) with controller broker-2, after broker-1's
/// fetch at its log end made it ask the controller to add broker-1: the broker and what
/// that fetch returned.
fn leader_asking_controller_2_to_add_broker_1() -> (Broker, Effects<BrokerTimer>) {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    b.controller_id = Some(BrokerId(2));
    let mut out = Effects::new();
    b.checked_message(
        Instant(2),
        NodeId::Broker(BrokerId(1)),
        follower_fetch(0),
        &mut out,
    );
    (b, out)
}

/// Regression (`correlated-power-loss-fsync` seed 10829): a pending AlterPartition goes to
/// a newly discovered controller at once, as Kafka's `BrokerToControllerChannelManager`
/// sends its queued request to the controller it has just learnt of, instead of waiting
/// for the request timeout; a retry armed by the earlier send is then stale.
#[test]
fn a_pending_isr_change_goes_to_a_new_controller_at_once() {
    let (mut b, out) = leader_asking_controller_2_to_add_broker_1();
    let asked = |out: &Effects<BrokerTimer>| {
        alter_partitions_sent(out)
            .into_iter()
            .map(|(to, corr, _)| (to, corr))
            .collect::<Vec<_>>()
    };
    let first = asked(&out);
    assert_eq!(first.len(), 1, "{:?}", out.list);
    assert_eq!(first[0].0, NodeId::Broker(BrokerId(2)));
    // Broker 2 died; broker 1 is the new controller and says so.
    let mut out = Effects::new();
    b.checked_message(
        Instant(100),
        NodeId::Broker(BrokerId(1)),
        Message::UpdateMetadata {
            controller: BrokerId(1),
            controller_epoch: ControllerEpoch(2),
            live_brokers: vec![BrokerId(0), BrokerId(1)],
            partitions: vec![],
            deleted_partitions: vec![],
            full: true,
        },
        &mut out,
    );
    let second = asked(&out);
    assert_eq!(second.len(), 1, "{:?}", out.list);
    assert_eq!(
        second[0].0,
        NodeId::Broker(BrokerId(1)),
        "the request, to the new controller"
    );
    assert_ne!(second[0].1, first[0].1, "a copy of its own");
    // The retry the first send armed is stale; the one the resend armed is not.
    let generation = b.partitions[&tp()].generation;
    let retry = |send| BrokerTimer::AlterPartitionRetry {
        tp: tp(),
        generation,
        send,
    };
    let mut out = Effects::new();
    b.checked_timeout(Instant(30_002), retry(1), &mut out);
    assert!(asked(&out).is_empty(), "{:?}", out.list);
    let mut out = Effects::new();
    b.checked_timeout(Instant(30_100), retry(2), &mut out);
    let third = asked(&out);
    assert_eq!(third.len(), 1, "{:?}", out.list);
    assert_eq!(third[0].0, NodeId::Broker(BrokerId(1)));
}

/// Regression (`controller-split-brain-fenced` seed 10911): only the latest copy of a
/// pending AlterPartition is answered. The leader used to resend the request under the
/// same correlation id every 5 s; the controller refused the first copy (INVALID_REQUEST:
/// the new member's registration was not loaded yet) and carried out the second, and the
/// leader, reading the refusal as the answer, let its HW pass the member being added.
#[test]
fn an_answer_to_an_earlier_copy_of_an_alter_partition_is_ignored() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let client = NodeId::Producer(0);
    let batch = || RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
    b.controller_id = Some(BrokerId(2));
    let mut out = Effects::new();
    b.checked_message(Instant(1), client, produce(1, batch()), &mut out);
    let mut out = Effects::new();
    b.checked_message(
        Instant(2),
        NodeId::Broker(BrokerId(1)),
        follower_fetch(1),
        &mut out,
    );
    let sent = alter_partitions_sent(&out);
    assert_eq!(sent.len(), 1, "{:?}", out.list);
    let first = sent[0].1;
    // One copy in flight: the retry is armed for the request timeout, not sooner.
    let timeout = b.config.controller_socket_timeout_ms;
    assert!(
        out.list.iter().any(|e| matches!(
            e,
            Effect::SetTimer { after_ms, timer: BrokerTimer::AlterPartitionRetry { .. } }
                if *after_ms == timeout
        )),
        "{:?}",
        out.list
    );
    // No answer in the request timeout: a second copy, with a correlation id of its own.
    let generation = b.partitions[&tp()].generation;
    let mut out = Effects::new();
    b.checked_timeout(
        Instant(2 + timeout),
        BrokerTimer::AlterPartitionRetry {
            tp: tp(),
            generation,
            send: 1,
        },
        &mut out,
    );
    let sent = alter_partitions_sent(&out);
    assert_eq!(sent.len(), 1, "{:?}", out.list);
    let second = sent[0].1;
    assert_ne!(second, first);
    // The refusal of the first copy arrives: it says nothing about the second.
    let mut out = Effects::new();
    b.checked_message(
        Instant(3 + timeout),
        NodeId::Broker(BrokerId(2)),
        Message::AlterPartitionResponse {
            corr: first,
            tp: tp(),
            error: ErrorCode::InvalidRequest,
            state: None,
        },
        &mut out,
    );
    match &b.partitions[&tp()].role {
        Role::Leader(l) => assert_eq!(
            l.pending_isr.as_ref().map(|(c, _)| *c),
            Some(second),
            "still pending"
        ),
        _ => panic!("still leader"),
    }
    // Records arrive; the member being added has not fetched them: the HW waits for it.
    let mut out = Effects::new();
    b.checked_message(Instant(4 + timeout), client, produce(2, batch()), &mut out);
    assert_eq!(b.partitions[&tp()].high_watermark, Offset(1));
}

/// A copy of a pending AlterPartition whose connection to the controller broke is sent
/// again after `retry.backoff.max.ms`, not only after the request timeout.
#[test]
fn an_alter_partition_whose_connection_broke_is_sent_again_after_the_backoff() {
    let (mut b, out) = leader_asking_controller_2_to_add_broker_1();
    assert_eq!(alter_partitions_sent(&out).len(), 1);
    // A connection to another broker breaks: nothing to resend.
    let mut out = Effects::new();
    b.on_disconnect(Instant(10), NodeId::Broker(BrokerId(1)), &mut out);
    assert!(!out.list.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: BrokerTimer::AlterPartitionRetry { .. },
            ..
        }
    )));
    // The controller's connection breaks: a retry after the backoff.
    let mut out = Effects::new();
    b.on_disconnect(Instant(10), NodeId::Broker(BrokerId(2)), &mut out);
    let generation = b.partitions[&tp()].generation;
    let retry = BrokerTimer::AlterPartitionRetry {
        tp: tp(),
        generation,
        send: 1,
    };
    assert!(
        out.list.iter().any(|e| matches!(
            e,
            Effect::SetTimer { after_ms, timer } if *after_ms == ALTER_PARTITION_RETRY_BACKOFF_MS
                && *timer == retry
        )),
        "{:?}",
        out.list
    );
    let mut out = Effects::new();
    b.checked_timeout(Instant(1_010), retry, &mut out);
    assert_eq!(alter_partitions_sent(&out).len(), 1, "{:?}", out.list);
}

/// Regression (`controller-split-brain-fenced` seed 72, `clean-leader-election` seed 63):
/// an AlterPartition adding a caught-up follower stays pending until it is answered. The
/// leader used to forget it after 5 s without an answer; the HW then moved past the
/// follower (cut off again meanwhile), and the controller, slowed by a partition from the
/// coordination node, carried out the old request: the ISR then named a member missing
/// records below the HW (strong-isr). Kafka keeps the maximal ISR until the answer.
#[test]
fn unanswered_isr_expansion_stays_in_the_maximal_isr_until_answered() {
    let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
    let client = NodeId::Producer(0);
    let batch = || RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
    let mut out = Effects::new();
    // Broker 0 is also the controller.
    b.controller_id = Some(BrokerId(0));
    let state = |isr: Vec<BrokerId>, partition_epoch: i32| PartitionState {
        tp: tp(),
        leader: Some(BrokerId(0)),
        leader_epoch: LeaderEpoch(0),
        isr,
        replicas: vec![BrokerId(0), BrokerId(1)],
        partition_epoch: ZkVersion(partition_epoch),
        controller_epoch: ControllerEpoch(1),
    };
    b.checked_message(Instant(1), client, produce(1, batch()), &mut out);
    assert_eq!(b.partitions[&tp()].high_watermark, Offset(1));
    // The follower catches up: the leader asks to add it to the ISR.
    let mut out = Effects::new();
    b.checked_message(
        Instant(2),
        NodeId::Broker(BrokerId(1)),
        follower_fetch(1),
        &mut out,
    );
    let asked = |out: &Effects<BrokerTimer>| {
        alter_partitions_sent(out)
            .into_iter()
            .map(|(_, corr, new_isr)| (corr, new_isr))
            .collect::<Vec<_>>()
    };
    let first = asked(&out);
    assert_eq!(first.len(), 1, "{:?}", out.list);
    assert_eq!(first[0].1, vec![BrokerId(0), BrokerId(1)]);
    // No answer within the request timeout: the request goes out again.
    let generation = b.partitions[&tp()].generation;
    let mut out = Effects::new();
    b.checked_timeout(
        Instant(30_002),
        BrokerTimer::AlterPartitionRetry {
            tp: tp(),
            generation,
            send: 1,
        },
        &mut out,
    );
    let second = asked(&out);
    assert_eq!(second.len(), 1, "{:?}", out.list);
    assert_eq!(second[0].1, first[0].1, "the same ISR asked for");
    // Records arrive; the follower has not fetched them: the HW stays at its log end.
    let mut out = Effects::new();
    b.checked_message(Instant(30_003), client, produce(2, batch()), &mut out);
    assert_eq!(
        b.partitions[&tp()].high_watermark,
        Offset(1),
        "the member being added holds the HW back"
    );
    assert!(produce_responses(&out).is_empty());
    // The controller carried the request out: the answer makes the ISR [0, 1].
    let mut out = Effects::new();
    b.checked_message(
        Instant(30_004),
        NodeId::Broker(BrokerId(0)),
        Message::AlterPartitionResponse {
            corr: second[0].0,
            tp: tp(),
            error: ErrorCode::None,
            state: Some(state(vec![BrokerId(0), BrokerId(1)], 1)),
        },
        &mut out,
    );
    assert_eq!(b.partitions[&tp()].high_watermark, Offset(1));
    match &b.partitions[&tp()].role {
        Role::Leader(l) => {
            assert_eq!(l.isr, vec![BrokerId(0), BrokerId(1)]);
            assert!(l.pending_isr.is_none());
        }
        _ => panic!("still leader"),
    }
}

/// Regression (`clean-leader-election` seed 7950015): an ISR expansion whose first copy the
/// controller carried out (its answer lost) and whose retry is then refused with an error that
/// does not say "not carried out" (FENCED_LEADER_EPOCH, STALE_BROKER_EPOCH,
/// UNKNOWN_TOPIC_OR_PARTITION) stays pending: the member being added keeps holding the HW
/// back until a LeaderAndIsr tells the leader what the ISR is, as Kafka's
/// `Partition.handleAlterPartitionError` keeps it. Dropping it let the leader advance the HW
/// over its committed ISR [0] alone and acknowledge records the next leader never had.
/// INELIGIBLE_REPLICA says the request was not carried out: it resets to the committed ISR.
#[test]
fn a_refused_isr_expansion_stays_pending_unless_the_refusal_says_it_was_not_applied() {
    for (error, stays_pending) in [
        (ErrorCode::FencedLeaderEpoch, true),
        (ErrorCode::StaleBrokerEpoch, true),
        (ErrorCode::UnknownTopicOrPartition, true),
        (ErrorCode::IneligibleReplica, false),
    ] {
        let (mut b, _) = leader_of_t0(vec![BrokerId(0)]);
        let client = NodeId::Producer(0);
        let batch = || RecordBatch::new(vec![(None, Some(vec![1]))], 0).encode();
        b.controller_id = Some(BrokerId(0));
        let mut out = Effects::new();
        b.checked_message(Instant(1), client, produce(1, batch()), &mut out);
        // The follower catches up: the leader asks to add it.
        let mut out = Effects::new();
        b.checked_message(
            Instant(2),
            NodeId::Broker(BrokerId(1)),
            follower_fetch(1),
            &mut out,
        );
        let sent = alter_partitions_sent(&out);
        assert_eq!(sent.len(), 1, "{:?}", out.list);
        // The answer is a refusal.
        let mut out = Effects::new();
        b.checked_message(
            Instant(3),
            NodeId::Broker(BrokerId(0)),
            Message::AlterPartitionResponse {
                corr: sent[0].1,
                tp: tp(),
                error,
                state: None,
            },
            &mut out,
        );
        // Records arrive that the follower has not fetched.
        let mut out = Effects::new();
        b.checked_message(Instant(4), client, produce(2, batch()), &mut out);
        let hw = b.partitions[&tp()].high_watermark;
        let pending = match &b.partitions[&tp()].role {
            Role::Leader(l) => l.pending_isr.is_some(),
            _ => panic!("still leader"),
        };
        assert_eq!(pending, stays_pending, "{error:?}");
        if stays_pending {
            assert_eq!(
                hw,
                Offset(1),
                "{error:?}: the member being added holds the HW back"
            );
            assert!(produce_responses(&out).is_empty(), "{error:?}");
        } else {
            assert_eq!(hw, Offset(2), "{error:?}: back to the committed ISR [0]");
        }
    }
}
