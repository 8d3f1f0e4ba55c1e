//! Section 2 of `report.md`, *what was tested*: the scenario's description, the cluster,
//! every Kafka setting the user wrote beside Kafka's default, the topics with their replica
//! assignment, the clients and the faults; and [`Safety`], the settings that decide whether
//! acknowledged data can be lost, which the lessons (section 6) choose their advice from.

use super::*;

// ---------------------------------------------------------------------------------------------
// 2. What was tested
// ---------------------------------------------------------------------------------------------

/// The settings that decide whether acknowledged data can be lost, as the run used them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Safety {
    pub(super) producers: Vec<ProducerSafety>,
    pub(super) topics: Vec<TopicSafety>,
    pub(super) truncation: TruncationMode,
    /// `sim.controller.epoch-fencing`.
    pub(super) controller_epoch_fencing: bool,
    pub(super) flush_interval_messages: u64,
    pub(super) power_faults: bool,
    pub(super) spare_last_replica: bool,
    /// Consumers whose `value.deserializer` cannot read what a producer of a topic they read
    /// wrote with its `value.serializer`.
    pub(super) serde_mismatches: Vec<SerdeMismatch>,
    /// `sim.group.offset-commit-fencing` (true unless the scenario turns it off).
    pub(super) offset_commit_fencing: bool,
    /// The subscribe-mode consumer entries that commit before processing (at-most-once):
    /// `consumer-0..consumer-2 (group orders)`.
    pub(super) commit_before_processing: Vec<String>,
    /// `transaction.version` (2; 1 before KIP-890 part 2).
    pub(super) transaction_version: i16,
    /// `sim.txn.producer-fencing` (true unless the scenario turns it off).
    pub(super) txn_producer_fencing: bool,
    /// `sim.fetch.delayed-isolation` (true unless the scenario brings KAFKA-5355 back).
    pub(super) fetch_delayed_isolation: bool,
}

/// A consumer that reads a topic whose producer serializes values in another format.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SerdeMismatch {
    pub(super) consumers: String,
    pub(super) producers: String,
    pub(super) topic: String,
    pub(super) serializer: SerdeClass,
    pub(super) deserializer: SerdeClass,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProducerSafety {
    /// `producer-0` or `producer-0..producer-2`.
    pub(super) clients: String,
    pub(super) topic: String,
    pub(super) acks: Acks,
    pub(super) enable_idempotence: bool,
    pub(super) retries: i32,
    pub(super) max_in_flight: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct TopicSafety {
    pub(super) name: String,
    pub(super) replication_factor: i32,
    pub(super) min_insync_replicas: i32,
    pub(super) unclean_leader_election_enable: bool,
}

impl Safety {
    pub(super) fn of(sc: &Scenario) -> Safety {
        let broker = &sc.cluster.broker_config;
        let mut first = 0u32;
        let producers = sc
            .producers
            .iter()
            .flat_map(|p| {
                let clients = client_range("producer", first, p.count);
                first += p.count;
                // One row per topic written (a `topics` entry writes several).
                p.topics
                    .iter()
                    .map(|topic| ProducerSafety {
                        clients: clients.clone(),
                        topic: topic.clone(),
                        acks: p.config.acks,
                        enable_idempotence: p.config.enable_idempotence,
                        retries: p.config.retries,
                        max_in_flight: p.config.max_in_flight_requests_per_connection,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let topics = sc
            .topics
            .iter()
            .map(|t| TopicSafety {
                name: t.name.clone(),
                replication_factor: t.replication_factor,
                min_insync_replicas: t
                    .config
                    .min_insync_replicas
                    .unwrap_or(broker.min_insync_replicas),
                unclean_leader_election_enable: t
                    .config
                    .unclean_leader_election_enable
                    .unwrap_or(broker.unclean_leader_election_enable),
            })
            .collect();
        let mut serde_mismatches = Vec::new();
        let mut first_consumer = 0u32;
        for c in &sc.consumers {
            let consumers = client_range("consumer", first_consumer, c.members);
            first_consumer += c.members;
            let mut first_producer = 0u32;
            for p in &sc.producers {
                let producers = client_range("producer", first_producer, p.count);
                first_producer += p.count;
                for topic in &p.topics {
                    if c.topics.contains(topic)
                        && c.config.value_deserializer != p.config.value_serializer
                    {
                        serde_mismatches.push(SerdeMismatch {
                            consumers: consumers.clone(),
                            producers: producers.clone(),
                            topic: topic.clone(),
                            serializer: p.config.value_serializer,
                            deserializer: c.config.value_deserializer,
                        });
                    }
                }
            }
        }
        let mut commit_before_processing = Vec::new();
        let mut first_consumer = 0u32;
        for c in &sc.consumers {
            let clients = client_range("consumer", first_consumer, c.members);
            first_consumer += c.members;
            if let Some(group) = &c.group {
                if c.commit == ksim_model::consumer::CommitMode::BeforeProcessing {
                    commit_before_processing.push(format!("{clients} (group {group})"));
                }
            }
        }
        let offset_commit_fencing = !matches!(
            sc.cluster
                .broker_properties
                .get("sim.group.offset-commit-fencing"),
            Some(PropValue::Bool(false))
        );
        let power = |k: &str| matches!(k, "power-fail" | "disk-loss");
        let power_faults = sc.faults.kinds.iter().any(|k| power(k.name()))
            || sc.faults.schedule.iter().any(|f| power(f.action.key()));
        Safety {
            producers,
            topics,
            truncation: broker.replication_truncation,
            controller_epoch_fencing: broker.controller_epoch_fencing,
            flush_interval_messages: broker.log_flush_interval_messages,
            power_faults,
            spare_last_replica: sc.faults.spare_last_replica,
            serde_mismatches,
            offset_commit_fencing,
            commit_before_processing,
            transaction_version: broker.transaction_version,
            txn_producer_fencing: broker.txn_producer_fencing,
            fetch_delayed_isolation: broker.fetch_delayed_isolation,
        }
    }
}

pub(super) fn client_range(kind: &str, first: u32, count: u32) -> String {
    match count {
        0 => format!("no {kind}"),
        1 => format!("{kind}-{first}"),
        2 => format!("{kind}-{first} and {kind}-{}", first + 1),
        n => format!("{kind}-{first}..{kind}-{}", first + n - 1),
    }
}

/// `acks` as written in a properties file.
pub fn acks_name(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

/// Kafka's default for the settings a scenario commonly writes (KAFKA-SEMANTICS.md,
/// "Configuration the testbed honours"); `None` when this table does not know it.
pub(super) fn kafka_default(key: &str) -> Option<&'static str> {
    Some(match key {
        // Broker and topic.
        "num.partitions" => "1",
        "default.replication.factor" => "1",
        "min.insync.replicas" => "1",
        "unclean.leader.election.enable" => "false",
        "replica.lag.time.max.ms" => "30000",
        "replica.fetch.wait.max.ms" => "500",
        "replica.fetch.max.bytes" => "1048576",
        "replica.fetch.backoff.ms" => "1000",
        "replica.fetch.min.bytes" => "1",
        "replica.fetch.response.max.bytes" => "10485760",
        "log.segment.bytes" | "segment.bytes" => "1073741824",
        "log.index.interval.bytes" => "4096",
        "log.flush.interval.messages" | "flush.messages" => "9223372036854775807 (never forced)",
        "log.flush.interval.ms" | "flush.ms" => "none (never forced)",
        "auto.create.topics.enable" => "true",
        "zookeeper.session.timeout.ms" => "18000",
        "sim.replication.truncation" => "fenced (testbed setting)",
        "offsets.topic.num.partitions" => "50",
        "offsets.topic.replication.factor" => "3",
        "group.initial.rebalance.delay.ms" => "3000",
        "sim.group.offset-commit-fencing" => "true (testbed setting)",
        "transaction.state.log.num.partitions" => "50",
        "transaction.state.log.replication.factor" => "3",
        "transaction.state.log.min.isr" => "2",
        "transaction.max.timeout.ms" => "900000",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms" => "10000",
        "transaction.partition.verification.enable" => "true",
        "transaction.version" => "2",
        "sim.txn.producer-fencing" => "true (testbed setting)",
        "sim.fetch.delayed-isolation" => "true (testbed setting)",
        // Producer.
        "acks" => "all",
        "retries" => "2147483647",
        "enable.idempotence" => "true",
        "max.in.flight.requests.per.connection" => "5",
        "batch.size" => "16384",
        "linger.ms" => "5",
        "buffer.memory" => "33554432",
        "compression.type" => "none",
        "request.timeout.ms" => "30000",
        "delivery.timeout.ms" => "120000",
        "retry.backoff.ms" => "100",
        "partitioner.ignore.keys" => "false",
        "transactional.id" => "none",
        "transaction.timeout.ms" => "60000",
        // Consumer.
        "enable.auto.commit" => "true",
        "auto.commit.interval.ms" => "5000",
        "auto.offset.reset" => "latest",
        "isolation.level" => "read_uncommitted",
        "fetch.min.bytes" => "1",
        "fetch.max.wait.ms" => "500",
        "max.poll.records" => "500",
        "session.timeout.ms" => "45000",
        "heartbeat.interval.ms" => "3000",
        "max.poll.interval.ms" => "300000",
        _ => return None,
    })
}

/// `` `acks=1`, `enable.idempotence=false` `` (keys sorted), or `Kafka's defaults`.
pub(super) fn props_inline(props: &Properties) -> String {
    if props.is_empty() {
        return "Kafka's defaults".to_string();
    }
    props
        .iter()
        .map(|(k, v)| format!("`{k}={}`", prop_value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn prop_value(v: &PropValue) -> String {
    v.to_string()
}

pub(super) fn write_what_was_tested(out: &mut String, run: &RunResult, safety: &Safety) {
    let sc = &run.scenario;
    out.push_str("## What was tested\n\n");
    let description = sc.description.trim();
    if description.is_empty() {
        out.push_str("(The scenario has no description.)\n\n");
    } else {
        let _ = writeln!(out, "{description}\n");
    }
    if !sc.references.is_empty() {
        let _ = writeln!(out, "References: {}.\n", sc.references.join("; "));
    }
    let _ = writeln!(
        out,
        "The workload and fault phase lasts {} ms of simulated time; then every fault is healed, \
         every stopped broker restarted, and the clients get {} ms (the heal phase) plus a final \
         drain to finish and read everything.\n",
        sc.duration_ms, sc.heal_ms
    );

    // Cluster.
    out.push_str("### Cluster\n\n");
    let controller = match sc.cluster.controller {
        crate::scenario::ControllerMode::Zk => {
            "a ZooKeeper-style coordination node (`zk`) and a controller elected among the brokers"
        }
        crate::scenario::ControllerMode::Kraft => "KRaft",
    };
    let _ = writeln!(
        out,
        "{} broker{} ({}), {controller}.\n",
        sc.cluster.brokers,
        if sc.cluster.brokers == 1 { "" } else { "s" },
        client_range("broker", 0, sc.cluster.brokers.max(0) as u32)
    );
    if sc.cluster.broker_properties.is_empty() {
        out.push_str("Broker configuration: Kafka's defaults (nothing set in the scenario).\n\n");
    } else {
        out.push_str(
            "Broker configuration set in the scenario (everything else is Kafka's default):\n\n",
        );
        out.push_str("| setting | value | Kafka's default |\n|---|---|---|\n");
        for (k, v) in &sc.cluster.broker_properties {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} |",
                cell(k),
                cell(&prop_value(v)),
                cell(kafka_default(k).unwrap_or("—"))
            );
        }
        out.push('\n');
    }

    // Topics.
    out.push_str("### Topics\n\n");
    for t in &sc.topics {
        let ts = safety.topics.iter().find(|s| s.name == t.name);
        let _ = write!(
            out,
            "Topic `{}`: {} partition{}, replication factor {}",
            t.name,
            t.partitions,
            if t.partitions == 1 { "" } else { "s" },
            t.replication_factor
        );
        if let Some(ts) = ts {
            let _ = write!(
                out,
                "; in effect `min.insync.replicas={}`, `unclean.leader.election.enable={}`",
                ts.min_insync_replicas, ts.unclean_leader_election_enable
            );
        }
        if !t.properties.is_empty() {
            let _ = write!(out, "; topic overrides {}", props_inline(&t.properties));
        }
        let how = if t.replica_assignment.is_some() {
            "as written in the scenario"
        } else {
            "drawn from the seed with Kafka's rack-unaware algorithm"
        };
        let _ = writeln!(
            out,
            ". Replica assignment ({how}; the first replica is the preferred leader):\n"
        );
        out.push_str("| partition | replicas |\n|---|---|\n");
        for (tp, replicas) in run
            .output
            .assignment
            .iter()
            .filter(|(tp, _)| tp.topic == t.name)
        {
            let _ = writeln!(out, "| {tp} | {} |", broker_list(replicas));
        }
        out.push('\n');
    }

    // Clients.
    out.push_str("### Clients\n\n");
    let mut first = 0u32;
    for p in &sc.producers {
        let clients = client_range("producer", first, p.count);
        first += p.count;
        let keys = if p.keys == 0 {
            "null keys (sticky partitioner)".to_string()
        } else {
            format!("{} distinct keys", p.keys)
        };
        let _ = writeln!(
            out,
            "- {clients}: produce{} to `{}` at {} records/s{}, {keys}; config as written: {}. \
             In effect: `acks={}`, `enable.idempotence={}`, `retries={}`, \
             `max.in.flight.requests.per.connection={}`.",
            if p.count == 1 { "s" } else { "" },
            p.topics.join("`, `"),
            p.rate_per_sec,
            if p.count == 1 { "" } else { " each" },
            props_inline(&p.properties),
            acks_name(p.config.acks),
            p.config.enable_idempotence,
            p.config.retries,
            p.config.max_in_flight_requests_per_connection
        );
    }
    let mut first = 0u32;
    for c in &sc.consumers {
        let clients = client_range("consumer", first, c.members);
        first += c.members;
        let one = c.members == 1;
        let mode = match &c.group {
            Some(g) => format!("subscribe{} in group `{g}` to", if one { "s" } else { "" }),
            None if one => "assigns itself every partition of".to_string(),
            None => "each assign themselves every partition of".to_string(),
        };
        let topics: Vec<String> = c.topics.iter().map(|t| format!("`{t}`")).collect();
        let _ = writeln!(
            out,
            "- {clients}: {mode} {}; config as written: {}.",
            topics.join(", "),
            props_inline(&c.properties)
        );
    }
    if sc.producers.is_empty() && sc.consumers.is_empty() {
        out.push_str("- none\n");
    }
    out.push('\n');

    // Faults.
    out.push_str("### Faults\n\n");
    let f = &sc.faults;
    if f.kinds.is_empty() {
        out.push_str("The random nemesis is off.");
    } else {
        let kinds: Vec<String> = f.kinds.iter().map(|k| format!("`{}`", k.name())).collect();
        let lasting = f
            .kinds
            .iter()
            .any(|k| matches!(k.name(), "partition" | "pause" | "isolate" | "clog"));
        let _ = write!(
            out,
            "The random nemesis injects {} every {}–{} ms{}{}.",
            kinds.join(", "),
            f.interval_ms[0],
            f.interval_ms[1],
            if lasting {
                format!(
                    " (a partition, pause, isolation or clog lasts {}–{} ms)",
                    f.duration_ms[0], f.duration_ms[1]
                )
            } else {
                String::new()
            },
            if f.swarm {
                "; swarm testing is on: the weight of each kind is drawn from the seed, so \
                 seeds differ in which faults dominate"
            } else {
                ""
            }
        );
    }
    if !f.spare_last_replica {
        out.push_str(
            " `spare_last_replica = false`: faults may destroy the last in-sync copy of a \
             partition, beyond what Kafka promises to survive.",
        );
    }
    out.push('\n');
    if !f.schedule.is_empty() {
        out.push_str("\nScripted faults:\n\n| at (ms) | action |\n|---|---|\n");
        for s in &f.schedule {
            let _ = writeln!(out, "| {} | {} |", s.at_ms, cell(&scheduled(s)));
        }
    }
    let _ = writeln!(
        out,
        "\n{} fault action{} took place in this run (see the timeline).\n",
        run.output.faults.len(),
        if run.output.faults.len() == 1 {
            ""
        } else {
            "s"
        }
    );
}

pub(super) fn scheduled(s: &ScheduledFault) -> String {
    let a = &s.action;
    let what = match a {
        FaultAction::Kill(x)
        | FaultAction::PowerFail(x)
        | FaultAction::Restart(x)
        | FaultAction::DiskLoss(x)
        | FaultAction::Shutdown(x)
        | FaultAction::Pause(x)
        | FaultAction::Resume(x)
        | FaultAction::Isolate(x)
        | FaultAction::Close(x)
        | FaultAction::ClientKill(x)
        | FaultAction::ClientPause(x)
        | FaultAction::ClientLeave(x) => format!("`{x}`"),
        FaultAction::Replace {
            client,
            replacement,
        } => format!("`{client}` by `{replacement}`"),
        FaultAction::Partition(groups) => groups
            .iter()
            .map(|g| {
                let names: Vec<String> = g.iter().map(|s| s.to_string()).collect();
                format!("{{{}}}", names.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" / "),
        FaultAction::Clog { from, to } => format!("`{from}` → `{to}`"),
        FaultAction::Heal => String::new(),
        FaultAction::DiskFault { node, kind } => format!("`{node}` ({kind:?})"),
        FaultAction::CreatePartitions { topic, count } => {
            format!("`{topic}` to {count} partitions")
        }
        FaultAction::DeleteTopic(topic) => format!("`{topic}`"),
    };
    format!("{} {what}", a.key()).trim_end().to_string()
}
