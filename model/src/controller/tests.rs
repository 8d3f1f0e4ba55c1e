use super::*;

fn controller() -> Controller {
    controller_with(BrokerConfig::default())
}

fn controller_with(config: BrokerConfig) -> Controller {
    let topic = NewTopic {
        name: "t".into(),
        assignment: vec![vec![BrokerId(0), BrokerId(1)]],
        config: TopicConfig::default(),
        deletable: false,
    };
    Controller::new(BrokerId(0), config, vec![topic])
}

fn broker_data(epoch: i64) -> Result<ZkReply, ZkError> {
    Ok(ZkReply::Data {
        data: format!("{{\"broker_epoch\":{epoch}}}").into_bytes(),
        version: ZkVersion(0),
    })
}

fn state_writes(reqs: &Reqs) -> Vec<PartitionState> {
    reqs.iter()
        .filter_map(|(_, op)| match op {
            ControllerZkOp::StateWrite { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

/// Regression (found by `default` seed 137): a broker registering while a new controller
/// is still loading supersedes the first scan of `/brokers/ids`; loading must still finish.
#[test]
fn loading_finishes_when_the_first_broker_scan_is_superseded() {
    let mut c = controller();
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_elected(ControllerEpoch(2), ZkVersion(1), &mut reqs, &mut out);
    let now = Instant(0);
    let mut reqs = Vec::new();
    // The first scan lists broker 0 only; then broker 1 registers and the watch fires.
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerIds { scan: 1 },
        Ok(ZkReply::Children {
            children: vec!["0".into()],
        }),
        &mut reqs,
        &mut out,
    );
    c.on_watch("/brokers/ids", WatchKind::NodeChildrenChanged, &mut reqs);
    // The stale scan's data reply is ignored; the topic exists with no partition state yet.
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerData {
            scan: 1,
            id: BrokerId(0),
        },
        broker_data(10),
        &mut reqs,
        &mut out,
    );
    let assignment = br#"{"version":2,"partitions":{"0":[0,1]}}"#.to_vec();
    c.on_zk_reply(
        now,
        ControllerZkOp::TopicData { topic: "t".into() },
        Ok(ZkReply::Data {
            data: assignment,
            version: ZkVersion(0),
        }),
        &mut reqs,
        &mut out,
    );
    c.on_zk_reply(
        now,
        ControllerZkOp::StateRead {
            tp: TopicPartition::new("t", 0),
        },
        Err(ZkError::NoNode),
        &mut reqs,
        &mut out,
    );
    assert!(
        state_writes(&reqs).is_empty(),
        "no decision before the live brokers are known"
    );
    // The second scan completes: loading is done and the partition is created.
    let children = vec!["0".into(), "1".into()];
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerIds { scan: 2 },
        Ok(ZkReply::Children { children }),
        &mut reqs,
        &mut out,
    );
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerData {
            scan: 2,
            id: BrokerId(0),
        },
        broker_data(10),
        &mut reqs,
        &mut out,
    );
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerData {
            scan: 2,
            id: BrokerId(1),
        },
        broker_data(11),
        &mut reqs,
        &mut out,
    );
    let writes = state_writes(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    assert_eq!(writes[0].leader, Some(BrokerId(0)));
    assert_eq!(writes[0].isr, vec![BrokerId(0), BrokerId(1)]);
}

/// A controller that resigns answers the AlterPartition requests it had queued with
/// NOT_CONTROLLER, so their leaders retry at once instead of after the request timeout.
#[test]
fn a_resigning_controller_answers_queued_alter_partitions_not_controller() {
    let mut c = controller();
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_elected(ControllerEpoch(2), ZkVersion(1), &mut reqs, &mut out);
    // Still loading: the request waits in the queue.
    let tp = TopicPartition::new("t", 0);
    let leader = NodeId::Broker(BrokerId(1));
    let mut out = Effects::new();
    c.on_alter_partition(
        leader,
        CorrelationId(7),
        BrokerId(1),
        BrokerEpoch(11),
        tp.clone(),
        LeaderEpoch(0),
        vec![BrokerId(1), BrokerId(0)],
        vec![BrokerEpoch(11), BrokerEpoch(10)],
        ZkVersion(0),
        &mut reqs,
        &mut out,
    );
    assert!(out.list.is_empty(), "{:?}", out.list);
    let mut out = Effects::new();
    c.resign("session-expired", &mut out);
    let answers: Vec<_> = out
        .list
        .iter()
        .filter_map(|e| match e {
            crate::effects::Effect::Send {
                to,
                msg:
                    Message::AlterPartitionResponse {
                        corr, tp: t, error, ..
                    },
            } => Some((*to, *corr, t.clone(), *error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        vec![(leader, CorrelationId(7), tp, ErrorCode::NotController)]
    );
}

#[test]
fn election_prefers_the_isr_and_goes_offline_rather_than_unclean() {
    let c = controller();
    let alive: BTreeSet<BrokerId> = [BrokerId(1)].into_iter().collect();
    let none = BTreeSet::new();
    let replicas = [BrokerId(0), BrokerId(1)];
    let tp = TopicPartition::new("t", 0);
    // broker 1 is alive and in sync: elected.
    assert_eq!(
        c.elect(&tp, &replicas, &[BrokerId(0), BrokerId(1)], &alive, &alive),
        (Some(BrokerId(1)), vec![BrokerId(1)], false)
    );
    // broker 1 is alive but out of the ISR, or in it from an earlier incarnation (not in
    // sync): with unclean election off, the partition goes offline.
    assert_eq!(
        c.elect(&tp, &replicas, &[BrokerId(0)], &alive, &alive),
        (None, vec![BrokerId(0)], false)
    );
    assert_eq!(
        c.elect(&tp, &replicas, &[BrokerId(0), BrokerId(1)], &none, &alive),
        (None, vec![BrokerId(0), BrokerId(1)], false)
    );
    let config = BrokerConfig {
        unclean_leader_election_enable: true,
        ..BrokerConfig::default()
    };
    let unclean = Controller::new(BrokerId(0), config, vec![]);
    assert_eq!(
        unclean.elect(&tp, &replicas, &[BrokerId(0)], &alive, &alive),
        (Some(BrokerId(1)), vec![BrokerId(1)], true)
    );
}

/// Loads a newly elected controller: `brokers` are the live (id, broker epoch, registration
/// JSON) and `state` the stored state znode of `t-0` (replicas [0, 1]).
fn load(brokers: &[(i32, &str)], state: &str) -> (Controller, Reqs) {
    load_into(controller(), brokers, state)
}

fn load_into(c: Controller, brokers: &[(i32, &str)], state: &str) -> (Controller, Reqs) {
    let assignment = r#"{"version":2,"partitions":{"0":[0,1]}}"#;
    let (c, reqs, _) = load_partitions(c, brokers, assignment, &[state]);
    (c, reqs)
}

/// Loads a newly elected controller of topic `t` with `assignment` (the topic znode's JSON)
/// and `states[p]` the stored state znode of `t-p`: the controller, the requests of the last
/// state read, and everything it sent once loaded.
fn load_partitions(
    mut c: Controller,
    brokers: &[(i32, &str)],
    assignment: &str,
    states: &[&str],
) -> (Controller, Reqs, Effects<BrokerTimer>) {
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_elected(ControllerEpoch(3), ZkVersion(2), &mut reqs, &mut out);
    let now = Instant(0);
    let children = brokers.iter().map(|(b, _)| b.to_string()).collect();
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerIds { scan: 1 },
        Ok(ZkReply::Children { children }),
        &mut reqs,
        &mut out,
    );
    for (b, data) in brokers {
        c.on_zk_reply(
            now,
            ControllerZkOp::BrokerData {
                scan: 1,
                id: BrokerId(*b),
            },
            Ok(ZkReply::Data {
                data: data.as_bytes().to_vec(),
                version: ZkVersion(0),
            }),
            &mut reqs,
            &mut out,
        );
    }
    c.on_zk_reply(
        now,
        ControllerZkOp::TopicData { topic: "t".into() },
        Ok(ZkReply::Data {
            data: assignment.as_bytes().to_vec(),
            version: ZkVersion(0),
        }),
        &mut reqs,
        &mut out,
    );
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    for (p, state) in states.iter().enumerate() {
        reqs.clear();
        c.on_zk_reply(
            now,
            ControllerZkOp::StateRead {
                tp: TopicPartition::new("t", p as i32),
            },
            Ok(ZkReply::Data {
                data: state.as_bytes().to_vec(),
                version: ZkVersion(7),
            }),
            &mut reqs,
            &mut out,
        );
    }
    (c, reqs, out)
}

/// The last-known ELR members of the first partition-state write among `reqs`.
fn first_written_elr(reqs: &Reqs) -> BTreeSet<BrokerId> {
    reqs.iter()
        .find_map(|(_, op)| match op {
            ControllerZkOp::StateWrite { elr, .. } => Some(elr.members.clone()),
            _ => None,
        })
        .expect("a state write")
}

fn state_write_epochs(reqs: &Reqs) -> Vec<(PartitionState, IsrEpochs, String)> {
    reqs.iter()
        .filter_map(|(req, op)| match (req, op) {
            (ZkRequest::Multi { ops }, ControllerZkOp::StateWrite { state, epochs, .. }) => {
                let reason = ops.iter().find_map(|op| match op {
                    ZkOp::Create { path, data, .. } | ZkOp::SetData { path, data, .. } => {
                        match observe_state_write(path, data, ZkVersion(0))? {
                            Event::PartitionStateChanged { reason, .. } => Some(reason),
                            _ => None,
                        }
                    }
                    _ => None,
                })?;
                Some((state.clone(), epochs.clone(), reason))
            }
            _ => None,
        })
        .collect()
}

/// Regression (`kip-101-divergence-fixed` seeds 5032, 5160, 5468): a recovery among the
/// last ISR judges its candidates by their registrations and the logs those reported, and a
/// registration may belong to an incarnation that has died since (its session has not
/// expired yet) and whose report predates the power failure that emptied its log. The
/// recovery may then elect a leader that never leads; it must not discard the replica that
/// still holds the committed records, so that the next recovery elects that one.
#[test]
fn a_recovery_that_elects_a_dead_incarnation_discards_no_candidate() {
    // Broker 0 is the last ISR member; its incarnation 3 died and incarnation 5 registered
    // with 372 records. Broker 1 (in the last-known ELR) is still registered as incarnation
    // 4, which reported 374 records and has since lost power: a stale registration, with a
    // report older than the state of its disk.
    let state = r#"{"controller_epoch":2,"leader":-1,"version":1,"leader_epoch":2,"isr":[0],"isr_broker_epochs":{"0":3},"last_known_elr":[1]}"#;
    let (_, reqs) = load(
        &[
            (0, r#"{"broker_epoch":5,"logs":{"t-0":[0,372]}}"#),
            (1, r#"{"broker_epoch":4,"logs":{"t-0":[0,374]}}"#),
        ],
        state,
    );
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    let (s, _, reason) = &writes[0];
    assert_eq!(reason, "last-isr-recovery");
    assert_eq!(s.leader, Some(BrokerId(1)), "the most complete report wins");
    let elr = first_written_elr(&reqs);
    assert_eq!(
        elr,
        [BrokerId(0)].into_iter().collect(),
        "the candidate the recovery did not elect stays in the last-known ELR"
    );
    // Broker 1 never led: it comes back as incarnation 6 with an empty log. The next
    // controller reads what the recovery wrote and must elect broker 0.
    let elr_json: Vec<i32> = elr.iter().map(|b| b.0).collect();
    let state = format!(
        r#"{{"controller_epoch":3,"leader":1,"version":1,"leader_epoch":3,"isr":[1],"isr_broker_epochs":{{"1":4}},"last_known_elr":{elr_json:?}}}"#
    );
    let (_, reqs) = load(
        &[
            (0, r#"{"broker_epoch":5,"logs":{"t-0":[0,372]}}"#),
            (1, r#"{"broker_epoch":6,"logs":{"t-0":[-1,0]}}"#),
        ],
        &state,
    );
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    let (s, epochs, reason) = &writes[0];
    assert_eq!(reason, "last-isr-recovery");
    assert_eq!(
        s.leader,
        Some(BrokerId(0)),
        "broker 0 holds the committed records"
    );
    assert_eq!(epochs.get(&BrokerId(0)), Some(&BrokerEpoch(5)));
    // And while broker 0 is not registered, the recovery waits for it rather than elect
    // broker 1's empty log: the partition goes offline.
    let (_, reqs) = load(
        &[(1, r#"{"broker_epoch":6,"logs":{"t-0":[-1,0]}}"#)],
        &state,
    );
    let writes = state_write_epochs(&reqs);
    assert!(
        writes.iter().all(|(s, _, _)| s.leader.is_none()),
        "{writes:?}"
    );
}

/// KIP-966's last-known ELR: a recovery among the last ISR keeps the members it did not
/// elect, provisionally: until a leader of the recovery's epoch is known to have led. An
/// unclean election starts afresh; a member leaves when it rejoins the ISR.
#[test]
fn the_last_known_elr_keeps_every_candidate_a_recovery_did_not_elect() {
    let b = |v: &[i32]| v.iter().map(|x| BrokerId(*x)).collect::<Vec<_>>();
    let set = |v: &[i32]| b(v).into_iter().collect::<BTreeSet<_>>();
    let e = LeaderEpoch;
    for min_isr in [1, 3] {
        let mut elr = LastKnownElr::default();
        update_last_known_elr(
            &mut elr,
            "last-isr-recovery",
            &b(&[0, 1]),
            &b(&[2]),
            min_isr,
            e(5),
        );
        assert_eq!(elr.members, set(&[0, 1]), "min.insync.replicas {min_isr}");
        assert_eq!(recovery_candidates(&b(&[2]), &elr.members), b(&[2, 0, 1]));
        // While no log shows epoch 5, both stay candidates; once one does, they go.
        assert_eq!(elr.candidates(Some(e(4))), set(&[0, 1]));
        assert_eq!(elr.candidates(None), set(&[0, 1]));
        assert!(elr.candidates(Some(e(5))).is_empty());
    }
    // With min.insync.replicas = 3 the leader cannot commit without them: a member that
    // rejoins leaves, the other stays.
    let mut elr = LastKnownElr::default();
    update_last_known_elr(
        &mut elr,
        "last-isr-recovery",
        &b(&[0, 1]),
        &b(&[2]),
        3,
        e(5),
    );
    update_last_known_elr(&mut elr, "isr-change", &b(&[2]), &b(&[2, 1]), 3, e(5));
    assert_eq!(elr.members, set(&[0]));
    update_last_known_elr(&mut elr, "unclean-election", &b(&[2, 1]), &b(&[1]), 3, e(6));
    assert!(elr.members.is_empty());
    // With min.insync.replicas = 1 the first ISR change shows the elected leader leads,
    // and its high watermark moves without them: the ELR empties.
    let mut elr = LastKnownElr::default();
    update_last_known_elr(
        &mut elr,
        "last-isr-recovery",
        &b(&[0, 1]),
        &b(&[2]),
        1,
        e(5),
    );
    update_last_known_elr(&mut elr, "isr-change", &b(&[2]), &b(&[2, 1]), 1, e(5));
    assert!(elr.members.is_empty());
}

/// KIP-966's ELR rule with ksim's provisional members (`clean-leader-election` seed
/// 10662): a replica dropped while the ISR left behind is below `min.insync.replicas` is a
/// firm member (the high watermark waits for it); one dropped while the ISR is at
/// `min.insync.replicas` stays only until the new leader is known to have led.
#[test]
fn a_replica_dropped_from_an_isr_at_min_insync_replicas_is_provisional() {
    let b = |v: &[i32]| v.iter().map(|x| BrokerId(*x)).collect::<Vec<_>>();
    let set = |v: &[i32]| b(v).into_iter().collect::<BTreeSet<_>>();
    let e = LeaderEpoch;
    for reason in ["leader-election", "broker-failed", "offline"] {
        let mut elr = LastKnownElr::default();
        update_last_known_elr(&mut elr, reason, &b(&[0, 1]), &b(&[1]), 1, e(2));
        assert_eq!(elr.members, set(&[0]), "{reason}");
        assert_eq!(elr.candidates(Some(e(1))), set(&[0]), "{reason}: never led");
        assert!(
            elr.candidates(Some(e(2))).is_empty(),
            "{reason}: epoch 2 led"
        );
        let mut elr = LastKnownElr::default();
        update_last_known_elr(&mut elr, reason, &b(&[0, 1]), &b(&[1]), 2, e(2));
        assert_eq!(elr.candidates(Some(e(9))), set(&[0]), "{reason}: firm");
    }
    // A firm member turns provisional when an election leaves the ISR large enough.
    let mut elr = LastKnownElr::default();
    update_last_known_elr(
        &mut elr,
        "leader-election",
        &b(&[0, 1, 2]),
        &b(&[2]),
        2,
        e(3),
    );
    assert_eq!(elr.candidates(Some(e(9))), set(&[0, 1]));
    update_last_known_elr(&mut elr, "isr-change", &b(&[2]), &b(&[2, 3]), 2, e(3));
    assert!(
        elr.members.is_empty(),
        "the ISR is back at min.insync.replicas"
    );
    let mut elr = LastKnownElr::default();
    update_last_known_elr(
        &mut elr,
        "leader-election",
        &b(&[0, 1, 2]),
        &b(&[1, 2]),
        2,
        e(3),
    );
    assert_eq!(elr.provisional.get(&BrokerId(0)), Some(&e(3)));
    // The znode round trip keeps both kinds.
    let state = PartitionState {
        tp: TopicPartition {
            topic: "t".into(),
            partition: 0,
        },
        leader: Some(BrokerId(1)),
        leader_epoch: e(3),
        isr: b(&[1, 2]),
        replicas: b(&[0, 1, 2]),
        partition_epoch: ZkVersion(0),
        controller_epoch: ControllerEpoch(1),
    };
    let data = encode_state(&state, &IsrEpochs::new(), &elr, "leader-election");
    assert_eq!(decode_elr(&data), elr);
}

/// Regression (`clean-leader-election` seed 10662): broker 0, dropped from the ISR when
/// broker 1 was elected with `min.insync.replicas = 1`, holds a record of a later epoch
/// (1, never committed) than broker 1's committed tail (epoch 0). When both come back, the
/// recovery elects broker 1, whose checkpoint shows it led epoch 2, the epoch broker 0 was
/// dropped at; had broker 1 never led, broker 0 would still be weighed.
#[test]
fn a_recovery_ignores_a_replica_dropped_by_a_leader_that_then_led() {
    let state = r#"{"controller_epoch":2,"leader":0,"version":1,"leader_epoch":1,"isr":[0,1],"isr_broker_epochs":{"0":10,"1":11}}"#;
    // Broker 0 (the leader of epoch 1) has failed; broker 1 is registered.
    let (_, reqs) = load(&[(1, r#"{"broker_epoch":11,"logs":{}}"#)], state);
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    assert_eq!(writes[0].0.leader, Some(BrokerId(1)));
    assert_eq!(writes[0].0.leader_epoch, LeaderEpoch(2));
    assert_eq!(
        first_written_elr(&reqs),
        [BrokerId(0)].into_iter().collect()
    );
    // Broker 1 crashed and came back (a new incarnation, log end 745, last record of epoch
    // 0); broker 0 is back too, its log as long but ending in epoch 1.
    let state = r#"{"controller_epoch":3,"leader":-1,"version":1,"leader_epoch":3,"isr":[1],"isr_broker_epochs":{"1":11},"last_known_elr":[0],"provisional_elr":{"0":2}}"#;
    let recover = |broker_1_seen: i32| {
        let b1 = format!(r#"{{"broker_epoch":21,"logs":{{"t-0":[0,745,{broker_1_seen}]}}}}"#);
        let (_, reqs) = load(
            &[
                (0, r#"{"broker_epoch":20,"logs":{"t-0":[1,745,1]}}"#),
                (1, &b1),
            ],
            state,
        );
        let writes = state_write_epochs(&reqs);
        assert_eq!(writes.len(), 1, "{reqs:?}");
        assert_eq!(writes[0].2, "last-isr-recovery");
        writes[0].0.leader
    };
    assert_eq!(recover(2), Some(BrokerId(1)), "broker 1 led epoch 2");
    assert_eq!(
        recover(0),
        Some(BrokerId(0)),
        "broker 1 never led: broker 0 still counts"
    );
}

/// Regression (`kip-101-divergence-fixed` seed 6): the leader a recovery among the last ISR
/// (KIP-966) elects joins the ISR in the incarnation registered now. It used to keep the
/// broker epoch it had joined with before it restarted, so it counted as restarted itself:
/// the next controller dropped it from the ISR and elected the other member, whose dead
/// incarnation was still registered, and which came back with an empty log.
#[test]
fn last_isr_recovery_records_the_leaders_current_broker_epoch() {
    let state = r#"{"controller_epoch":2,"leader":-1,"version":1,"leader_epoch":4,"isr":[0,1],"isr_broker_epochs":{"0":10,"1":11}}"#;
    let (_, reqs) = load(
        &[
            (0, r#"{"broker_epoch":20,"logs":{"t-0":[4,260]}}"#),
            (1, r#"{"broker_epoch":21,"logs":{"t-0":[3,90]}}"#),
        ],
        state,
    );
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    let (s, epochs, reason) = &writes[0];
    assert_eq!(reason, "last-isr-recovery");
    assert_eq!(s.leader, Some(BrokerId(0)));
    assert_eq!(s.isr, vec![BrokerId(0)]);
    assert_eq!(
        epochs,
        &[(BrokerId(0), BrokerEpoch(20))]
            .into_iter()
            .collect::<IsrEpochs>(),
        "the recovered leader is in sync in its current incarnation"
    );
}

/// Regression (`kip-101-divergence-fixed` seeds 6, 71): a replica the controller drops
/// from the ISR because it failed joins the last-known ELR (KIP-966), and a recovery among
/// the last ISR weighs its log too. The ISR had been narrowed to broker 1, whose dead
/// incarnation was still registered; broker 1 came back with nothing, while broker 0,
/// which had crashed without losing power, still held every committed record.
#[test]
fn recovery_weighs_the_replicas_dropped_from_the_isr_when_they_failed() {
    // Broker 0 (the leader) is gone; broker 1's registration is still there.
    let state = r#"{"controller_epoch":2,"leader":0,"version":1,"leader_epoch":4,"isr":[0,1],"isr_broker_epochs":{"0":10,"1":11}}"#;
    let (_, reqs) = load(&[(1, r#"{"broker_epoch":11,"logs":{}}"#)], state);
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    assert_eq!(writes[0].0.leader, Some(BrokerId(1)));
    assert_eq!(writes[0].2, "leader-election");
    let elr = first_written_elr(&reqs);
    assert_eq!(elr, [BrokerId(0)].into_iter().collect());
    // Later both are back, each a new incarnation: broker 1 with an empty log, broker 0
    // with its whole log. The recovery elects broker 0.
    let state = r#"{"controller_epoch":3,"leader":-1,"version":1,"leader_epoch":6,"isr":[1],"isr_broker_epochs":{"1":11},"last_known_elr":[0]}"#;
    let (_, reqs) = load(
        &[
            (0, r#"{"broker_epoch":20,"logs":{"t-0":[4,2647]}}"#),
            (1, r#"{"broker_epoch":21,"logs":{"t-0":[-1,0]}}"#),
        ],
        state,
    );
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    let (s, epochs, reason) = &writes[0];
    assert_eq!(reason, "last-isr-recovery");
    assert_eq!(s.leader, Some(BrokerId(0)));
    assert_eq!(s.isr, vec![BrokerId(0)]);
    assert_eq!(epochs.get(&BrokerId(0)), Some(&BrokerEpoch(20)));
    // Without broker 0 registered, the recovery waits for it.
    let (_, reqs) = load(
        &[(1, r#"{"broker_epoch":21,"logs":{"t-0":[-1,0]}}"#)],
        state,
    );
    assert!(state_write_epochs(&reqs).is_empty(), "{reqs:?}");
}

/// Regression (`kip-101-hw-truncation` seed 160): broker 0, the only ISR member and
/// leader, restarted between two reads of `/brokers/ids` (a bounce: same id, new broker
/// epoch). The failure pass takes the partition offline; the startup pass that follows, as
/// Kafka's BrokerChange handler runs onBrokerStartup after onBrokerFailure, elects it again
/// (before KIP-903, ISR membership alone made it electable). It used to wait for the next
/// broker change, which never came.
#[test]
fn a_bounced_broker_is_considered_again_once_the_failure_pass_is_written() {
    let c = controller_with(BrokerConfig {
        replication_truncation: TruncationMode::HighWatermark,
        ..BrokerConfig::default()
    });
    let state = r#"{"controller_epoch":2,"leader":0,"version":1,"leader_epoch":4,"isr":[0],"isr_broker_epochs":{"0":10}}"#;
    let (mut c, reqs) = load_into(c, &[(0, r#"{"broker_epoch":10,"logs":{}}"#)], state);
    assert!(state_write_epochs(&reqs).is_empty(), "{reqs:?}");
    let now = Instant(0);
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_watch("/brokers/ids", WatchKind::NodeChildrenChanged, &mut reqs);
    let scan = match reqs.last() {
        Some((_, ControllerZkOp::BrokerIds { scan })) => *scan,
        other => panic!("a broker scan: {other:?}"),
    };
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerIds { scan },
        Ok(ZkReply::Children {
            children: vec!["0".into()],
        }),
        &mut reqs,
        &mut out,
    );
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerData {
            scan,
            id: BrokerId(0),
        },
        Ok(ZkReply::Data {
            data: br#"{"broker_epoch":20,"logs":{"t-0":[4,100]}}"#.to_vec(),
            version: ZkVersion(0),
        }),
        &mut reqs,
        &mut out,
    );
    let first: Vec<_> = reqs
        .iter()
        .filter(|(_, op)| matches!(op, ControllerZkOp::StateWrite { .. }))
        .cloned()
        .collect();
    assert_eq!(first.len(), 1, "{reqs:?}");
    let (s, _, reason) = &state_write_epochs(&first)[0];
    assert_eq!((s.leader, reason.as_str()), (None, "offline"));
    let mut reqs = Vec::new();
    c.on_zk_reply(
        now,
        first[0].1.clone(),
        Ok(ZkReply::Multi {
            results: vec![
                ZkReply::Stat {
                    version: ZkVersion(2),
                },
                ZkReply::Stat {
                    version: ZkVersion(8),
                },
            ],
        }),
        &mut reqs,
        &mut out,
    );
    let writes = state_write_epochs(&reqs);
    assert_eq!(writes.len(), 1, "{reqs:?}");
    assert_eq!(writes[0].0.leader, Some(BrokerId(0)));
    assert_eq!(writes[0].2, "leader-election");
}

/// A controller of brokers `live` with no topics, loaded.
fn loaded_controller_without_topics(live: &[i32]) -> Controller {
    let mut c = Controller::new(BrokerId(0), BrokerConfig::default(), vec![]);
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_elected(ControllerEpoch(1), ZkVersion(0), &mut reqs, &mut out);
    let now = Instant(0);
    let children = live.iter().map(|b| b.to_string()).collect();
    c.on_zk_reply(
        now,
        ControllerZkOp::BrokerIds { scan: 1 },
        Ok(ZkReply::Children { children }),
        &mut reqs,
        &mut out,
    );
    for b in live {
        c.on_zk_reply(
            now,
            ControllerZkOp::BrokerData {
                scan: 1,
                id: BrokerId(*b),
            },
            broker_data(10 + *b as i64),
            &mut reqs,
            &mut out,
        );
    }
    assert!(c.active.as_ref().unwrap().loaded);
    c
}

fn create_offsets_topic() -> AdminOp {
    AdminOp::CreateTopic {
        name: "__consumer_offsets".into(),
        partitions: 4,
        replication_factor: 3,
    }
}

#[test]
fn an_internal_topic_is_assigned_over_the_registered_brokers_and_created() {
    let mut c = loaded_controller_without_topics(&[0, 1, 2]);
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_admin(create_offsets_topic(), &mut reqs, &mut out);
    let (path, assignment) = reqs
        .iter()
        .find_map(|(req, op)| match (req, op) {
            (
                ZkRequest::Create { path, .. },
                ControllerZkOp::InternalTopicCreate { assignment, .. },
            ) => Some((path.clone(), assignment.clone())),
            _ => None,
        })
        .expect("the assignment znode is created");
    assert_eq!(path, "/brokers/topics/__consumer_offsets");
    assert_eq!(assignment.len(), 4);
    for replicas in &assignment {
        let distinct: BTreeSet<BrokerId> = replicas.iter().copied().collect();
        assert_eq!(distinct.len(), 3, "{assignment:?}");
        assert!(replicas.iter().all(|b| b.0 <= 2));
    }
    let mut reqs = Vec::new();
    c.on_zk_reply(
        Instant(0),
        ControllerZkOp::InternalTopicCreate {
            topic: "__consumer_offsets".into(),
            assignment: assignment.clone(),
        },
        Ok(ZkReply::Created {
            path: "/brokers/topics/__consumer_offsets".into(),
        }),
        &mut reqs,
        &mut out,
    );
    let writes = state_writes(&reqs);
    assert_eq!(writes.len(), 4, "every partition gets its first leader");
    for w in writes {
        assert_eq!(w.leader, Some(assignment[w.tp.partition as usize][0]));
    }
    assert!(out.events().iter().any(|e| matches!(
        e,
        Event::PartitionsCreated { topic, from_count: 0, to_count: 4, .. }
            if topic == "__consumer_offsets"
    )));
    // Asking again once it exists does nothing.
    let mut reqs = Vec::new();
    c.on_admin(create_offsets_topic(), &mut reqs, &mut out);
    assert!(reqs.is_empty(), "{reqs:?}");
}

#[test]
fn an_internal_topic_is_not_created_while_too_few_brokers_are_registered() {
    let mut c = loaded_controller_without_topics(&[0, 1]);
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_admin(create_offsets_topic(), &mut reqs, &mut out);
    assert!(reqs.is_empty(), "{reqs:?}");
    // A controller elected later loads the topic it was asked for, if it exists.
    let mut reqs = Vec::new();
    let mut next = Controller::new(BrokerId(1), BrokerConfig::default(), vec![]);
    next.on_admin(create_offsets_topic(), &mut reqs, &mut out);
    next.on_elected(ControllerEpoch(2), ZkVersion(1), &mut reqs, &mut out);
    assert!(reqs.iter().any(|(_, op)| matches!(
        op,
        ControllerZkOp::InternalTopicData { topic } if topic == "__consumer_offsets"
    )));
}

/// The UpdateMetadata requests among `out`'s effects: (destination, partitions listed, full).
fn update_metadata_sent(out: &Effects<BrokerTimer>) -> Vec<(NodeId, Vec<String>, bool)> {
    out.list
        .iter()
        .filter_map(|e| match e {
            crate::effects::Effect::Send {
                to,
                msg:
                    Message::UpdateMetadata {
                        partitions, full, ..
                    },
            } => Some((
                *to,
                partitions.iter().map(|s| s.tp.to_string()).collect(),
                *full,
            )),
            _ => None,
        })
        .collect()
}

/// After a failover every live broker gets the whole cluster; after an ISR change, only the
/// partition that changed (Kafka's `addUpdateMetadataRequestForBrokers(brokers, partitions)`),
/// so an ISR change costs the same whatever the number of partitions.
#[test]
fn update_metadata_is_full_after_a_failover_and_incremental_after_an_isr_change() {
    let topic = NewTopic {
        name: "t".into(),
        assignment: vec![
            vec![BrokerId(0), BrokerId(1)],
            vec![BrokerId(1), BrokerId(0)],
        ],
        config: TopicConfig::default(),
        deletable: false,
    };
    let c = Controller::new(BrokerId(0), BrokerConfig::default(), vec![topic]);
    let brokers = [(0, r#"{"broker_epoch":10}"#), (1, r#"{"broker_epoch":11}"#)];
    let assignment = r#"{"version":2,"partitions":{"0":[0,1],"1":[1,0]}}"#;
    let states = [
        r#"{"controller_epoch":2,"leader":0,"version":1,"leader_epoch":4,"isr":[0,1],"isr_broker_epochs":{"0":10,"1":11}}"#,
        r#"{"controller_epoch":2,"leader":1,"version":1,"leader_epoch":4,"isr":[1,0],"isr_broker_epochs":{"0":10,"1":11}}"#,
    ];
    let (mut c, _, out) = load_partitions(c, &brokers, assignment, &states);
    let now = Instant(0);
    let both = vec!["t-0".to_string(), "t-1".to_string()];
    assert_eq!(
        update_metadata_sent(&out),
        vec![
            (NodeId::Broker(BrokerId(0)), both.clone(), true),
            (NodeId::Broker(BrokerId(1)), both, true),
        ]
    );
    // The leader of t-1 drops broker 0 from its ISR.
    let mut out = Effects::new();
    let mut reqs = Vec::new();
    c.on_alter_partition(
        NodeId::Broker(BrokerId(1)),
        CorrelationId(5),
        BrokerId(1),
        BrokerEpoch(11),
        TopicPartition::new("t", 1),
        LeaderEpoch(4),
        vec![BrokerId(1)],
        vec![BrokerEpoch(11)],
        ZkVersion(7),
        &mut reqs,
        &mut out,
    );
    let write = reqs
        .iter()
        .find(|(_, op)| matches!(op, ControllerZkOp::StateWrite { .. }))
        .cloned()
        .expect("the ISR change is written");
    c.on_zk_reply(
        now,
        write.1,
        Ok(ZkReply::Multi {
            results: vec![
                ZkReply::Stat {
                    version: ZkVersion(2),
                },
                ZkReply::Stat {
                    version: ZkVersion(8),
                },
            ],
        }),
        &mut reqs,
        &mut out,
    );
    let only = vec!["t-1".to_string()];
    assert_eq!(
        update_metadata_sent(&out),
        vec![
            (NodeId::Broker(BrokerId(0)), only.clone(), false),
            (NodeId::Broker(BrokerId(1)), only, false),
        ]
    );
}
