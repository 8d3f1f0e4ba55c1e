//! Section 6 of `report.md`, *which setting would have prevented it*: the standard lesson for
//! each failed check (KAFKA-SEMANTICS.md, "Historical failures"), chosen from the settings the
//! scenario actually used, or a plain statement that the settings were safe and the failure is
//! a bug.

use super::*;

// ---------------------------------------------------------------------------------------------
// 6. Which setting would have prevented it
// ---------------------------------------------------------------------------------------------

/// A failed check and the first paragraph of its lesson.
pub(super) type CheckIntro = (String, String);

pub(super) fn write_prevention(out: &mut String, run: &RunResult, safety: &Safety) {
    if run.checks.violations.is_empty() {
        return;
    }
    out.push_str("## Which setting would have prevented it\n\n");
    match run.scenario.expect {
        Expect::Violation => out.push_str(
            "This scenario is built to show a known failure; here is what prevents it in \
             production.\n\n",
        ),
        Expect::Ok => out.push_str(
            "This scenario expects every check to pass, so this failure is a finding: either a \
             setting below was unsafe (and the scenario's expectation is wrong), or the \
             settings were safe and this is a bug.\n\n",
        ),
    }
    // Checks whose advice is the same are told together: (checks with their intros, advice).
    let mut groups: Vec<(Vec<CheckIntro>, Vec<String>)> = Vec::new();
    let mut seen = BTreeSet::new();
    for v in &run.checks.violations {
        if !seen.insert(v.check.clone()) {
            continue;
        }
        let topics: BTreeSet<String> = focus_points(v)
            .into_iter()
            .map(|f| f.tp.topic.to_string())
            .collect();
        let lesson = checker_named(&v.check).map_or(Lesson::UNRECORDED, |c| c.lesson());
        let mut paragraphs = lessons(&lesson, safety, &topics);
        debug_assert!(!paragraphs.is_empty());
        let intro = paragraphs.remove(0);
        // Records a lagging consumer had not read yet are not lost: durability advice does
        // not apply to them (a consumer that cannot deserialize keeps its own advice).
        let unreadable = safety
            .serde_mismatches
            .iter()
            .any(|m| topics.is_empty() || topics.contains(&m.topic));
        match lag_lesson(v) {
            Some(LagLesson::Replace(lag)) if !unreadable => paragraphs = lag,
            Some(LagLesson::Preface(p)) if !unreadable => paragraphs.insert(0, p),
            _ => {}
        }
        match groups.iter_mut().find(|(_, advice)| *advice == paragraphs) {
            Some((checks, _)) => checks.push((v.check.clone(), intro)),
            None => groups.push((vec![(v.check.clone(), intro)], paragraphs)),
        }
    }
    for (checks, advice) in &groups {
        let names: Vec<String> = checks.iter().map(|(c, _)| format!("`{c}`")).collect();
        let _ = writeln!(out, "### {}\n", names.join(", "));
        if checks.len() == 1 {
            let _ = writeln!(out, "{}\n", checks[0].1);
        } else {
            for (c, intro) in checks {
                let _ = writeln!(out, "- `{c}`: {intro}");
            }
            out.push('\n');
        }
        for p in advice {
            let _ = writeln!(out, "{p}\n");
        }
    }
}

/// The lesson of one failed check, as paragraphs: its intro, then the advice of its
/// [`Prevention`] chosen from the settings the run used. `topics` are the topics the anomalies
/// are in (empty: all).
pub(super) fn lessons(lesson: &Lesson, s: &Safety, topics: &BTreeSet<String>) -> Vec<String> {
    let in_scope = |t: &str| topics.is_empty() || topics.contains(t);
    let producers: Vec<&ProducerSafety> =
        s.producers.iter().filter(|p| in_scope(&p.topic)).collect();
    let topic_list: Vec<&TopicSafety> = s.topics.iter().filter(|t| in_scope(&t.name)).collect();
    let mut out = Vec::new();
    let bug = |what: &str| {
        format!(
            "The settings that matter here were the safe ones ({what}). Kafka promises this \
             property under them, so **no setting would have prevented it: this is a bug in the \
             system under test (the broker, controller or client model) or in the testbed \
             itself** (the simulator or a checker). Replay it with the command at the top and \
             report it with the scenario and seed."
        )
    };
    out.push(lesson.intro.to_string());
    match lesson.prevention {
        Prevention::Loss | Prevention::LossOrUnreadable => {
            let mismatches: Vec<&SerdeMismatch> = s
                .serde_mismatches
                .iter()
                .filter(|m| in_scope(&m.topic))
                .collect();
            if lesson.prevention == Prevention::LossOrUnreadable && !mismatches.is_empty() {
                out.push(
                    "Here the consumer could not read them: it was configured to deserialize \
                     values in another format than the producer wrote them. Its first record \
                     of each partition was a poison pill: `poll()` threw (see the consumer's \
                     `RecordDeserializationException` or `NumberFormatException` in the \
                     timeline) and its position stayed on that record, so it read nothing \
                     after it. The records are in the log; this is configuration, not loss."
                        .to_string(),
                );
                out.push("What would have prevented it:".to_string());
                out.push(
                    mismatches
                        .iter()
                        .map(|m| {
                            format!(
                                "- {} reads `{}` with `value.deserializer={}`, but {} writes it \
                                 with `value.serializer={}`: set `value.deserializer={}` (the \
                                 serializer's counterpart), or catch the exception and `seek` \
                                 past the record, counting what is skipped.",
                                m.consumers,
                                m.topic,
                                m.deserializer.deserializer(),
                                m.producers,
                                m.serializer.serializer(),
                                m.serializer.deserializer()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                return out;
            }
            let fixes = loss_fixes(s, &producers, &topic_list);
            if fixes.is_empty() {
                let minimum = topic_list
                    .iter()
                    .map(|t| t.min_insync_replicas)
                    .min()
                    .unwrap_or(0);
                out.push(bug(&format!(
                    "`acks=all` on every producer, `min.insync.replicas={minimum}`, unclean \
                     leader election off, fenced truncation"
                )));
            } else {
                out.push("What would have prevented it:".to_string());
                out.push(fixes.join("\n"));
            }
        }
        Prevention::Duplicate => {
            let unsafe_producers: Vec<&&ProducerSafety> = producers
                .iter()
                .filter(|p| !p.enable_idempotence && p.retries > 0)
                .collect();
            let loss = loss_fixes(s, &producers, &topic_list);
            if unsafe_producers.is_empty() && !loss.is_empty() {
                out.push(
                    "Here the producers were idempotent, so this follows from a loss of \
                     replicated data, not from retries: the partition's log was cut back (see \
                     the truncation in the story above) and its offsets were given to new \
                     records, so later sends were acknowledged at offsets below earlier ones, \
                     or a retried batch found no trace of its first copy. What prevents the \
                     loss prevents this:"
                        .to_string(),
                );
                out.push(loss.join("\n"));
            } else if unsafe_producers.is_empty() {
                out.push(bug("`enable.idempotence=true` on every producer"));
            } else {
                let fixes: Vec<String> = unsafe_producers
                    .iter()
                    .map(|p| {
                        let inflight = if p.max_in_flight > 1 {
                            format!(
                                "; with `max.in.flight.requests.per.connection={}` retries can \
                                 also reorder records",
                                p.max_in_flight
                            )
                        } else {
                            String::new()
                        };
                        format!(
                            "- {} ran with `enable.idempotence=false` and `retries={}`{inflight}. \
                             Set `enable.idempotence=true` (the default since Kafka 3.0, which \
                             needs `acks=all`): the broker then recognises a retried batch by \
                             its producer id, epoch and sequence and appends it once.",
                            p.clients, p.retries
                        )
                    })
                    .collect();
                out.push("What would have prevented it:".to_string());
                out.push(fixes.join("\n"));
            }
        }
        Prevention::ReadJump => {
            let loss = loss_fixes(s, &producers, &topic_list);
            if loss.is_empty() {
                out.push(bug(
                    "`acks=all`, `min.insync.replicas` of 2 or more, unclean leader election off, \
                     fenced truncation, assign mode",
                ));
            } else {
                out.push("What would have prevented it (it prevents the truncation):".to_string());
                out.push(loss.join("\n"));
            }
        }
        Prevention::Liveness => {
            let offline_by_config = topic_list
                .iter()
                .any(|t| !t.unclean_leader_election_enable && t.replication_factor >= 2);
            if offline_by_config && !s.spare_last_replica {
                out.push(
                    "With `spare_last_replica = false` the nemesis may wipe or power-fail every \
                     in-sync replica; with unclean leader election off (the safe default), \
                     Kafka then keeps the partition offline rather than lose data, which is \
                     the intended trade. Give the heal phase more time, or accept it."
                        .to_string(),
                );
            } else {
                out.push(bug(
                    "faults healed, every node restarted, and the run waited past the heal \
                     phase as long as the configured timeouts explain: \
                     `zookeeper.session.timeout.ms`, `replica.lag.time.max.ms`, \
                     `request.timeout.ms` (the `liveness` message gives the numbers)",
                ));
            }
        }
        Prevention::ProtocolInvariant => {
            if !s.controller_epoch_fencing {
                out.push(
                    "The run turned controller-epoch fencing off \
                     (`sim.controller.epoch-fencing = false`): brokers obeyed requests from a \
                     deposed controller, and a controller cut off from the coordination node kept \
                     acting. The default refuses them with STALE_CONTROLLER_EPOCH."
                        .to_string(),
                );
            } else if s.truncation != TruncationMode::Fenced {
                out.push(format!(
                    "The run used the historical protocol `sim.replication.truncation = \"{}\"`; \
                     the default, `fenced`, is the one Kafka runs today. If the failure \
                     persists with `fenced`, it is a bug.",
                    s.truncation.name()
                ));
            } else {
                out.push(bug("the default, fenced replication protocol"));
            }
        }
        Prevention::GroupProtocol => {
            out.push(bug(
                "no setting lets a consumer group give one partition to two live members: \
                 eager assignors revoke before rejoining, cooperative ones withhold a moving \
                 partition for a round (KIP-429)",
            ));
        }
        Prevention::GroupCommitFencing => {
            if !s.offset_commit_fencing {
                out.push(
                    "The run turned offset-commit fencing off \
                     (`sim.group.offset-commit-fencing = false`): the group coordinator accepted \
                     commits whatever their generation and member id, so a member that had been \
                     removed (a zombie back from a pause, or cut off from the coordinator) \
                     overwrote the new owner's committed offset. Kafka's coordinator refuses \
                     them with ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID, and the client then \
                     throws CommitFailedException."
                        .to_string(),
                );
            } else {
                out.push(bug(
                    "offset-commit fencing on: the coordinator checks each commit's generation \
                     and member id",
                ));
            }
        }
        Prevention::CommitOrder => {
            if s.commit_before_processing.is_empty() {
                out.push(bug(
                    "every group commits after processing (or with auto-commit, which commits \
                     only what earlier polls returned)",
                ));
            } else {
                out.push("What would have prevented it:".to_string());
                out.push(
                    s.commit_before_processing
                        .iter()
                        .map(|c| {
                            format!(
                                "- {c} ran with `commit = \"before-processing\"` (at-most-once): \
                                 it committed each poll's offsets before processing the records, \
                                 so a crash during processing lost them. Commit after processing \
                                 (`commit = \"sync\"` or `\"async\"`, or auto-commit): a crash \
                                 then means processing some records twice, never losing them."
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
        }
        Prevention::ReadCommitted => {
            out.push(
                "What prevents it: `isolation.level = read_committed` on every consumer that must \
                 not see aborted or still-open transactions (read_uncommitted, the default, reads \
                 up to the high watermark, aborted records included). The anomaly was seen by a \
                 read_committed reader, so the setting was already on: unless the run turned \
                 transaction fencing off (`sim.txn.producer-fencing = false`), brought back \
                 KAFKA-5355 (`sim.fetch.delayed-isolation = false`: a fetch that waited in \
                 purgatory is read as read_uncommitted), or used `transaction.version = 1` where \
                 a delayed marker can end the next transaction (KAFKA-17754; \
                 `transaction.version = 2` fences it), this is a bug in the system under test or \
                 in the testbed."
                    .to_string(),
            );
        }
        Prevention::TxnFencing => {
            out.push(
                "What prevents it: `transaction.version = 2` (KIP-890 part 2: every transaction \
                 bumps the producer epoch, so a delayed produce, EndTxn or marker of an older \
                 transaction is fenced with PRODUCER_FENCED), \
                 `transaction.partition.verification.enable = true` (KIP-890 part 1: a partition \
                 leader verifies with the coordinator that the transaction is ongoing before the \
                 first transactional write, so a late produce cannot open a transaction the \
                 coordinator does not know), and producer-epoch fencing on (the default; \
                 `sim.txn.producer-fencing = false` turns it off). With all three, this is a bug."
                    .to_string(),
            );
        }
        Prevention::ExactlyOnce => {
            out.push(
                "What prevents it: a `transactional.id` on the processor, so that its output and \
                 its input offsets commit in one transaction (`sendOffsetsToTransaction` with the \
                 group metadata, KIP-447), `isolation.level = read_committed` on its consumer, \
                 the generation check on TxnOffsetCommit (the default; \
                 `sim.txn.offset-commit-fencing = false` turns it off, so a zombie commits \
                 output for inputs the new owner also processes), and a rewind of the consumer \
                 to the committed offsets after an abort (KAFKA-17582). With all of them, this \
                 is a bug."
                    .to_string(),
            );
        }
        Prevention::Unrecorded => {}
    }
    out
}

/// The settings of this run that let acknowledged records be lost or offsets be reused (weak
/// acks, `min.insync.replicas=1`, unclean election, a historical truncation protocol,
/// correlated power loss without fsync), one Markdown bullet each; empty when the run used the
/// safe settings.
pub(super) fn loss_fixes(
    s: &Safety,
    producers: &[&ProducerSafety],
    topic_list: &[&TopicSafety],
) -> Vec<String> {
    let mut fixes = Vec::new();
    for p in producers {
        if p.acks != Acks::All {
            let min_isr = s
                .topics
                .iter()
                .find(|t| t.name == p.topic)
                .map_or(1, |t| t.min_insync_replicas);
            let with = if min_isr >= 2 {
                format!(
                    "; the topic already has `min.insync.replicas={min_isr}`, which then \
                     guarantees that {min_isr} replicas hold every acknowledged record"
                )
            } else {
                " together with `min.insync.replicas=2` on a topic with replication \
                 factor 3, so that every acknowledged record is on at least two replicas"
                    .to_string()
            };
            fixes.push(format!(
                "- {} produced to `{}` with `acks={}`: the leader acknowledges as soon as \
                 the record is in its own log, so if it fails before a follower copies \
                 the record, the next leader never had it. Use `acks=all` (Kafka's \
                 default since 3.0){with}.",
                p.clients,
                p.topic,
                acks_name(p.acks)
            ));
        }
    }
    for t in topic_list {
        if t.replication_factor < 2 {
            fixes.push(format!(
                "- Topic `{}` has replication factor {}: one broker holds the only copy. \
                 Use replication factor 3.",
                t.name, t.replication_factor
            ));
        } else if t.min_insync_replicas < 2
            && producers
                .iter()
                .any(|p| p.topic == t.name && p.acks == Acks::All)
        {
            fixes.push(format!(
                "- Topic `{}` runs with `min.insync.replicas={}`: even with `acks=all` \
                 the ISR may shrink to the leader alone, which then acknowledges alone; \
                 when it fails, another replica leads without the record (Jepsen 2013). \
                 Set \
                 `min.insync.replicas=2`, so that a leader refuses writes it cannot copy \
                 to at least one other replica.",
                t.name, t.min_insync_replicas
            ));
        }
        if t.unclean_leader_election_enable {
            fixes.push(format!(
                "- Topic `{}` allows unclean leader election: when every in-sync \
                 replica is down, an out-of-sync replica becomes leader and the records \
                 it lacks are gone. Set `unclean.leader.election.enable=false` (the \
                 default).",
                t.name
            ));
        }
    }
    if s.truncation != TruncationMode::Fenced {
        let what = match s.truncation {
            TruncationMode::HighWatermark => {
                "truncates followers to their high watermark on restart (fixed by KIP-101)"
            }
            TruncationMode::Kip101 => {
                "uses KIP-101's epoch lookup, which fast leader changes break (fixed by KIP-279)"
            }
            TruncationMode::Kip279 => "does not fence fetches by leader epoch (fixed by KIP-320)",
            TruncationMode::Kip320FirstTry => {
                "uses KIP-320's first attempt, which counts acks from stale-epoch followers"
            }
            TruncationMode::Fenced => "",
        };
        fixes.push(format!(
            "- `sim.replication.truncation = \"{}\"` brings back a historical protocol \
             that {what}. The default, `fenced` (today's Kafka), prevents it.",
            s.truncation.name()
        ));
    }
    if s.power_faults && !s.spare_last_replica && s.flush_interval_messages > 1 {
        fixes.push(
            "- The nemesis may cut the power of every in-sync replica: Kafka relies on \
             replication, not fsync, so unflushed acknowledged records can vanish. \
             `log.flush.interval.messages=1` prevents it, at the cost of an fsync per \
             record."
                .to_string(),
        );
    }
    fixes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson_of(check: &str) -> Lesson {
        checker_named(check).expect("a checker").lesson()
    }

    fn safety(acks: Acks, min_isr: i32, idempotence: bool) -> Safety {
        Safety {
            producers: vec![ProducerSafety {
                clients: "producer-0".into(),
                topic: "events".into(),
                acks,
                enable_idempotence: idempotence,
                retries: i32::MAX,
                max_in_flight: 5,
            }],
            topics: vec![TopicSafety {
                name: "events".into(),
                replication_factor: 3,
                min_insync_replicas: min_isr,
                unclean_leader_election_enable: false,
            }],
            truncation: TruncationMode::Fenced,
            controller_epoch_fencing: true,
            flush_interval_messages: u64::MAX,
            power_faults: false,
            spare_last_replica: true,
            serde_mismatches: Vec::new(),
            offset_commit_fencing: true,
            commit_before_processing: Vec::new(),
            transaction_version: 2,
            txn_producer_fencing: true,
            fetch_delayed_isolation: true,
        }
    }

    /// Each transaction check's lesson names the setting that prevents its failure.
    #[test]
    fn transaction_lessons_name_the_preventing_setting() {
        let none = BTreeSet::new();
        let safe = safety(Acks::All, 2, true);
        for (check, setting) in [
            ("aborted-read", "`isolation.level = read_committed`"),
            (
                "aborted-read",
                "read_uncommitted consumers (the default) read aborted records",
            ),
            (
                "read-committed-isolation",
                "`isolation.level = read_committed`",
            ),
            ("G1c", "`isolation.level = read_committed`"),
            ("torn-transaction", "`transaction.version = 2`"),
            ("zombie-fencing", "`sim.txn.producer-fencing = false`"),
            (
                "hanging-transaction",
                "`transaction.partition.verification.enable = true`",
            ),
            ("exactly-once", "`sim.txn.offset-commit-fencing = false`"),
            ("exactly-once", "KAFKA-17582"),
        ] {
            let text = lessons(&lesson_of(check), &safe, &none).join("\n");
            assert!(text.contains(setting), "{check}: {text}");
        }
    }

    /// The group checks' advice names the setting that let the failure in, or calls it a bug.
    #[test]
    fn group_lessons_name_the_fencing_switch_and_the_commit_order() {
        let none = BTreeSet::new();
        let safe = safety(Acks::All, 2, true);
        let zombie = lessons(&lesson_of("commit-validity"), &safe, &none).join("\n");
        assert!(zombie.contains("this is a bug"), "{zombie}");
        let unfenced = Safety {
            offset_commit_fencing: false,
            ..safe.clone()
        };
        let zombie = lessons(&lesson_of("commit-validity"), &unfenced, &none).join("\n");
        assert!(
            zombie.contains("`sim.group.offset-commit-fencing = false`"),
            "{zombie}"
        );
        let lost = lessons(&lesson_of("at-least-once"), &safe, &none).join("\n");
        assert!(lost.contains("this is a bug"), "{lost}");
        let early = Safety {
            commit_before_processing: vec!["consumer-0..consumer-2 (group orders)".into()],
            ..safe.clone()
        };
        let lost = lessons(&lesson_of("at-least-once"), &early, &none).join("\n");
        assert!(
            lost.contains(
                "- consumer-0..consumer-2 (group orders) ran with `commit = \"before-processing\"`"
            ),
            "{lost}"
        );
        for check in ["exclusive-assignment", "revoke-before-reassign"] {
            assert!(lessons(&lesson_of(check), &safe, &none)
                .join("\n")
                .contains("this is a bug"));
        }
    }

    #[test]
    fn lessons_follow_the_settings_and_call_a_safe_failure_a_bug() {
        let none = BTreeSet::new();
        let acks1 = lessons(
            &lesson_of("lost-write"),
            &safety(Acks::Leader, 1, false),
            &none,
        )
        .join("\n");
        assert!(
            acks1.contains("`acks=1`") && acks1.contains("Use `acks=all`"),
            "{acks1}"
        );
        assert!(acks1.contains("together with `min.insync.replicas=2`"));
        assert!(!acks1.contains("Jepsen 2013"), "{acks1}");
        assert!(!acks1.contains("bug"));

        let isr1 = lessons(&lesson_of("lost-write"), &safety(Acks::All, 1, true), &none).join("\n");
        assert!(!isr1.contains("Use `acks=all`"), "{isr1}");
        assert!(isr1.contains("Jepsen 2013") && isr1.contains("Set `min.insync.replicas=2`"));

        let safe = lessons(&lesson_of("lost-write"), &safety(Acks::All, 2, true), &none).join("\n");
        assert!(
            safe.contains("no setting would have prevented it"),
            "{safe}"
        );
        assert!(safe.contains("bug in the system under test"));

        let dup = lessons(&lesson_of("duplicate"), &safety(Acks::All, 2, false), &none).join("\n");
        assert!(dup.contains("Set `enable.idempotence=true`"), "{dup}");
        let dup_safe =
            lessons(&lesson_of("duplicate"), &safety(Acks::All, 2, true), &none).join("\n");
        assert!(dup_safe.contains("bug"), "{dup_safe}");

        // With idempotent producers, a reordered send that follows from a truncation is blamed
        // on what allowed the truncation, not called a bug.
        let reorder = lessons(
            &lesson_of("nonmonotonic-send"),
            &safety(Acks::All, 1, true),
            &none,
        )
        .join("\n");
        assert!(reorder.contains("follows from a loss"), "{reorder}");
        assert!(reorder.contains("Set `min.insync.replicas=2`"), "{reorder}");
        assert!(!reorder.contains("bug"), "{reorder}");
        let skip = lessons(
            &lesson_of("nonmonotonic-poll"),
            &safety(Acks::All, 2, true),
            &none,
        )
        .join("\n");
        assert!(skip.contains("bug"), "{skip}");

        // Anomalies in another topic do not blame this topic's producer.
        let other: BTreeSet<String> = ["audit".to_string()].into();
        let scoped = lessons(
            &lesson_of("lost-write"),
            &safety(Acks::Leader, 2, true),
            &other,
        )
        .join("\n");
        assert!(!scoped.contains("`acks=1`"), "{scoped}");
    }
}
