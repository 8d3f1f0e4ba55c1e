//! Event sentences: one event of the event log told in one plain sentence, with Kafka's nouns,
//! shared by the story (section 3) and the timeline (section 4) of `report.md`.

use super::*;

// ---------------------------------------------------------------------------------------------
// Event sentences
// ---------------------------------------------------------------------------------------------

/// `[broker-1, broker-2]`.
pub(super) fn broker_list(brokers: &[BrokerId]) -> String {
    let names: Vec<String> = brokers.iter().map(|b| format!("broker-{b}")).collect();
    format!("[{}]", names.join(", "))
}

pub(super) fn truncation_reason(reason: &str) -> String {
    match reason {
        "diverging-epoch" => {
            "diverging epoch: its log had records the new leader's log does not have at those offsets"
                .to_string()
        }
        "high-watermark" => {
            "to its high watermark on becoming follower, the pre-KIP-101 rule".to_string()
        }
        "offset-out-of-range" => {
            "offset out of range: its log end was past the leader's".to_string()
        }
        "recovery" => "log recovery found a torn or corrupt tail".to_string(),
        other => format!("reason `{other}`"),
    }
}

/// `killed broker-2 (random)` and the like.
pub(super) fn describe_fault_event(e: &Event) -> String {
    let Event::Fault {
        action,
        nodes,
        source,
    } = e
    else {
        return describe_event(e);
    };
    let source = match source.as_str() {
        "random" => "random fault",
        "schedule" => "scripted fault",
        "heal-phase" => "heal phase",
        other => other,
    };
    let list = nodes.join(", ");
    let (what, detail) = match action.as_str() {
        "kill" if nodes.is_empty() => {
            ("tried to kill a node that was already down".to_string(), "")
        }
        "kill" => (
            format!("killed {list}"),
            "process crash: its disk and page cache survive; ",
        ),
        "restart" if nodes.is_empty() => {
            ("tried to restart a node that was running".to_string(), "")
        }
        "restart" => (format!("restarted {list}"), "it recovers from its disk; "),
        "partition" => {
            let groups: Vec<String> = nodes
                .iter()
                .map(|g| format!("{{{}}}", g.replace(',', ", ")))
                .collect();
            // Only the links between the named groups are cut (world.rs clogs each pair both
            // ways). A partition naming a client cuts that client's links to the other groups
            // only: it keeps every other link, which the report must not call isolation.
            let names_client = nodes.iter().flat_map(|g| g.split(',')).any(|n| {
                let n = n.trim();
                n.starts_with("consumer-")
                    || n.starts_with("producer-")
                    || n.starts_with("processor-")
            });
            if names_client {
                let what = if groups.len() == 2 {
                    format!("cut the links between {} and {}", groups[0], groups[1])
                } else {
                    format!("cut the links between the groups {}", groups.join(" / "))
                };
                (
                    what,
                    "both ways, and only those: every node keeps its links to nodes outside \
                     the other groups; ",
                )
            } else {
                (
                    format!("partitioned the network into {}", groups.join(" / ")),
                    "each group can only talk inside itself; ",
                )
            }
        }
        "heal" => ("healed every network partition".to_string(), ""),
        "power-fail" => (
            format!("cut the power of {list}"),
            "writes not yet fsynced are lost; ",
        ),
        "disk-loss" => (format!("destroyed the disk of {list}"), ""),
        "shutdown" => (format!("shut down {list} cleanly"), ""),
        "pause" => (format!("paused {list}"), ""),
        "resume" => (format!("resumed {list}"), ""),
        "isolate" => (format!("isolated {list} from every other node"), ""),
        "clog" => (format!("clogged the link {}", nodes.join(" → ")), ""),
        other => (format!("{other} {list}"), ""),
    };
    format!("{what} ({detail}{source})")
}

/// `[events-0, events-1]`, or `no partitions`.
fn list_partitions(partitions: &[ksim_model::types::TopicPartition]) -> String {
    if partitions.is_empty() {
        return "no partitions".into();
    }
    let parts: Vec<String> = partitions.iter().map(|tp| tp.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// One sentence for an event, for the timeline and the stories.
pub fn describe_event(e: &Event) -> String {
    match e {
        Event::BrokerStarted { broker } => {
            format!("broker-{broker} started and recovered its logs from disk")
        }
        Event::BrokerRegistered {
            broker,
            broker_epoch,
        } => format!("broker-{broker} registered (broker epoch {broker_epoch})"),
        Event::ControllerElected {
            broker,
            controller_epoch,
        } => format!("broker-{broker} became the active controller (controller epoch {controller_epoch})"),
        Event::ControllerEpochIncremented {
            broker,
            controller_epoch,
        } => format!(
            "the coordination node stored controller epoch {controller_epoch}, written by broker-{broker}'s election"
        ),
        Event::ControllerResigned {
            broker,
            controller_epoch,
            reason,
        } => format!("broker-{broker} resigned as controller (controller epoch {controller_epoch}, {reason})"),
        Event::PartitionsCreated {
            topic,
            from_count,
            to_count,
            controller_epoch,
        } => format!(
            "the controller raised `{topic}` from {from_count} to {to_count} partitions (controller epoch {controller_epoch})"
        ),
        Event::TopicDeleted {
            topic,
            controller_epoch,
        } => format!(
            "the controller deleted topic `{topic}` (controller epoch {controller_epoch}); its replicas delete their logs"
        ),
        Event::ReplicaDeleted { tp, broker } => {
            format!("broker-{broker} deleted its replica of {tp} (StopReplica with delete)")
        }
        Event::CoordinatorLoaded {
            tp,
            broker,
            leader_epoch,
            records,
            loaded_to,
        } => format!(
            "broker-{broker} loaded coordinator partition {tp} in epoch {leader_epoch}: replayed {records} records up to offset {loaded_to}"
        ),
        Event::CoordinatorUnloaded {
            tp,
            broker,
            pending_writes,
        } => format!(
            "broker-{broker} unloaded coordinator partition {tp}; {pending_writes} waiting writes answered NOT_COORDINATOR"
        ),
        Event::CoordinatorUnavailable { broker, reason } => {
            format!("broker-{broker} cannot provide a group coordinator: {reason}")
        }
        Event::ControllerRequestAccepted {
            broker,
            controller,
            controller_epoch,
            api,
        } => format!("broker-{broker} applied {api} from controller broker-{controller} (controller epoch {controller_epoch})"),
        Event::ControllerRequestRejected {
            broker,
            controller,
            controller_epoch,
            api,
            highest_controller_epoch,
        } => format!(
            "broker-{broker} refused {api} from broker-{controller}: STALE_CONTROLLER_EPOCH (controller epoch {controller_epoch} < {highest_controller_epoch})"
        ),
        Event::PartitionStateChanged {
            tp,
            leader,
            leader_epoch,
            isr,
            reason,
            last_known_elr,
            ..
        } => {
            let leader = leader.map_or("no leader".to_string(), |l| format!("broker-{l}"));
            let isr = broker_list(isr);
            // KIP-966's last-known ELR: the replicas outside the ISR a recovery still weighs.
            let elr = if last_known_elr.is_empty() {
                String::new()
            } else {
                format!(
                    "; still recovery candidates outside the ISR (last-known ELR): {}",
                    broker_list(last_known_elr)
                )
            };
            let text = match reason.as_str() {
                "new-partition" | "new-topic" => format!(
                    "controller created {tp}: leader {leader}, epoch {leader_epoch}, ISR {isr}"
                ),
                "leader-election" => format!(
                    "controller elected {leader} leader of {tp} in epoch {leader_epoch} (ISR {isr})"
                ),
                "unclean-election" => format!(
                    "UNCLEAN election: controller made out-of-sync {leader} leader of {tp} in epoch {leader_epoch} (ISR {isr})"
                ),
                "offline" => format!(
                    "{tp} went OFFLINE: no in-sync replica is alive to lead (epoch {leader_epoch}, ISR {isr})"
                ),
                "isr-change" => format!(
                    "controller committed a new ISR for {tp}: {isr} (leader {leader}, epoch {leader_epoch})"
                ),
                "broker-failed" => format!(
                    "controller removed failed brokers from the ISR of {tp}: {isr} (leader {leader}, epoch {leader_epoch})"
                ),
                "last-isr-recovery" => format!(
                    "controller recovered {tp}: every candidate had restarted, and it elected the most complete log, {leader}'s, in epoch {leader_epoch} (ISR {isr}; KIP-966)"
                ),
                other => format!(
                    "controller wrote {tp}: leader {leader}, epoch {leader_epoch}, ISR {isr} ({other})"
                ),
            };
            format!("{text}{elr}")
        }
        Event::BecameLeader {
            tp,
            broker,
            leader_epoch,
            isr,
            log_end_offset,
            high_watermark,
        } => format!(
            "broker-{broker} became leader of {tp} in epoch {leader_epoch} (log end offset {log_end_offset}, HW {high_watermark}, ISR {})",
            broker_list(isr)
        ),
        Event::BecameFollower {
            tp,
            broker,
            leader,
            leader_epoch,
            log_end_offset,
        } => format!(
            "broker-{broker} became follower of {tp} (leader {}, epoch {leader_epoch}, log end offset {log_end_offset})",
            leader.map_or("none".to_string(), |l| format!("broker-{l}"))
        ),
        Event::IsrChanged {
            tp,
            broker,
            leader_epoch,
            isr,
            ..
        } => format!(
            "leader broker-{broker} now uses ISR {} for {tp} (epoch {leader_epoch})",
            broker_list(isr)
        ),
        Event::HighWatermarkChanged {
            tp,
            broker,
            leader_epoch,
            high_watermark,
        } => format!(
            "broker-{broker} (leader, epoch {leader_epoch}) moved the HW of {tp} to {high_watermark}"
        ),
        Event::Truncated {
            tp,
            broker,
            from_offset,
            to_offset,
            reason,
        } => format!(
            "broker-{broker} truncated {tp} from {from_offset} to {to_offset}, removing {} record{} ({})",
            (from_offset.0 - to_offset.0).max(0),
            if from_offset.0 - to_offset.0 == 1 { "" } else { "s" },
            truncation_reason(reason)
        ),
        Event::FollowerAppendFailed {
            tp,
            broker,
            leader,
            log_end_offset,
            error,
        } => format!(
            "broker-{broker} could not append what {} sent for {tp} at its log end offset {log_end_offset} ({error}): the logs diverged, and this replica of {tp} makes no more progress (Kafka's fetcher marks such a partition failed)",
            leader.map_or("the leader".to_string(), |l| format!("leader broker-{l}"))
        ),
        Event::LogRecovered {
            tp,
            broker,
            log_end_offset,
            discarded_bytes,
        } => format!(
            "broker-{broker} recovered {tp}: log end offset {log_end_offset}, discarded {discarded_bytes} bytes of torn or corrupt tail"
        ),
        Event::ProduceAppended {
            tp,
            broker,
            leader_epoch,
            base_offset,
            last_offset,
            isr,
            ..
        } => format!(
            "broker-{broker} (leader, epoch {leader_epoch}, ISR {}) appended {tp} offsets {base_offset}..{last_offset}",
            broker_list(isr)
        ),
        Event::ProduceAcked {
            tp,
            broker,
            leader_epoch,
            base_offset,
            last_offset,
            acks,
            error,
        } => format!(
            "broker-{broker} (epoch {leader_epoch}) answered the produce of {tp} offsets {base_offset}..{last_offset} (acks={acks}, {})",
            error.kafka_name()
        ),
        Event::ZkSessionExpired { owner, .. } => format!(
            "the coordination node expired the session of {owner}: its ephemeral znodes (broker registration, controller) are gone"
        ),
        Event::Halted { reason } => format!("halted itself: {reason}"),
        Event::InterceptorFailed {
            interceptor,
            method,
            error,
            failures,
        } => {
            let nth = match failures {
                1 => "first failure".to_string(),
                n => format!("failure number {n}; ksim records the 1st, 10th, 100th, ..."),
            };
            format!(
                "interceptor {interceptor} failed in {method} ({nth}): {error}. The producer logged it and went on: an interceptor never fails a send (Kafka's ProducerInterceptors)"
            )
        }
        Event::Fault { .. } => format!("nemesis {}", describe_fault_event(e)),
        Event::HealPhaseExtended {
            heal_phase_end_ms,
            recovery_bound_ms,
            bound_from,
        } => format!(
            "the heal phase ended at t={heal_phase_end_ms} ms with a partition that had taken no write since the heal; the run waits for it, up to {recovery_bound_ms} ms after the heal: the longest recovery the configured timeouts explain ({bound_from})"
        ),
        Event::LogSegmentRolled {
            tp,
            broker,
            base_offset,
        } => format!("broker-{broker} rolled a new segment of {tp} at offset {base_offset}"),
        Event::LogSegmentsDeleted {
            tp,
            broker,
            base_offsets,
            deleted_bytes,
            log_start_offset,
            reason,
        } => format!(
            "broker-{broker} deleted {} segment{} of {tp} ({deleted_bytes} bytes, {reason}); log start offset {log_start_offset}",
            base_offsets.len(),
            if base_offsets.len() == 1 { "" } else { "s" }
        ),
        Event::LogStartOffsetAdvanced {
            tp,
            broker,
            log_start_offset,
            reason,
        } => format!(
            "broker-{broker} moved the log start offset of {tp} to {log_start_offset} ({reason})"
        ),
        Event::LogCleaned {
            tp,
            broker,
            cleaned_segments,
            superseded,
            expired_tombstones,
        } => format!(
            "broker-{broker} compacted {cleaned_segments} segment{} of {tp}: {} superseded record{} and {} expired tombstone{} removed",
            if *cleaned_segments == 1 { "" } else { "s" },
            superseded.len(),
            if superseded.len() == 1 { "" } else { "s" },
            expired_tombstones.len(),
            if expired_tombstones.len() == 1 { "" } else { "s" }
        ),
        Event::ProduceRejected {
            tp,
            broker,
            error,
            message,
        } => format!(
            "broker-{broker} rejected a produce to {tp} with {}: {message}",
            error.kafka_name()
        ),
        Event::ConsumerPositionReset {
            tp,
            from_offset,
            to_offset,
            strategy,
            reason,
        } => describe_position_reset(tp, *from_offset, *to_offset, strategy, reason),
        Event::ConsumerLogTruncation {
            tp,
            fetch_offset,
            offset_epoch,
            divergent_offset,
            divergent_epoch,
        } => format!(
            "consumer detected LOG TRUNCATION of {tp} (KIP-320): its position {fetch_offset} (epoch {offset_epoch}) is past the leader's end of that epoch, offset {divergent_offset} (epoch {divergent_epoch}); records it read there are gone from the log"
        ),
        // Kafka's `maybeLeaveGroup` is no exception of poll(): the heartbeat thread (poll
        // timeout) or close() sends LeaveGroup (AbstractCoordinator.HeartbeatThread, KIP-62).
        Event::ConsumerError {
            exception, message, ..
        } if exception == "LeaveGroup" => {
            if message.contains("poll timeout") {
                "the heartbeat thread left the group because poll() was not called within \
                 max.poll.interval.ms (LeaveGroup; a static member sends none): its partitions \
                 are lost at its next poll()"
                    .to_string()
            } else if message.contains("being closed") {
                "consumer left the group as the application closed it (LeaveGroup; a static \
                 member sends none)"
                    .to_string()
            } else {
                format!("consumer left the group: {message}")
            }
        }
        Event::ConsumerError {
            exception, message, ..
        } => format!("consumer poll() threw {exception}: {message}"),
        Event::CoordinatorDiscovered { group, coordinator } => {
            format!("consumer found group `{group}`'s coordinator: broker-{coordinator}")
        }
        Event::CoordinatorMarkedUnknown {
            group,
            coordinator,
            reason,
        } => format!(
            "consumer gave up on broker-{coordinator} as group `{group}`'s coordinator ({reason}); it looks the coordinator up again"
        ),
        Event::GroupStateChanged {
            group,
            broker,
            from,
            to,
            generation,
            reason,
        } => format!(
            "broker-{broker} moved group `{group}` from {from} to {to} (generation {generation}): {reason}"
        ),
        Event::GroupAssignmentCompleted {
            group,
            broker,
            generation,
            protocol,
            leader,
            members,
        } => {
            let shares: Vec<String> = members
                .iter()
                .map(|m| {
                    let parts: Vec<String> = m.partitions.iter().map(|tp| tp.to_string()).collect();
                    format!("{} ({}): [{}]", m.client, m.member_id, parts.join(", "))
                })
                .collect();
            format!(
                "broker-{broker} completed generation {generation} of group `{group}` with the {protocol} assignor chosen by leader {leader}: {}",
                shares.join("; ")
            )
        }
        Event::GroupMemberRemoved {
            group,
            broker,
            member_id,
            reason,
            generation,
        } => format!(
            "broker-{broker} removed member {member_id} from group `{group}` in generation {generation} ({reason})"
        ),
        Event::PartitionsAssigned {
            group,
            member_id,
            generation,
            partitions,
        } => format!(
            "consumer ({member_id}) of group `{group}` took {} in generation {generation}",
            list_partitions(partitions)
        ),
        Event::PartitionsRevoked {
            group,
            member_id,
            generation,
            partitions,
        } => format!(
            "consumer ({member_id}) of group `{group}` revoked {} after generation {generation}",
            list_partitions(partitions)
        ),
        Event::PartitionsLost {
            group,
            member_id,
            generation,
            partitions,
            reason,
        } => format!(
            "consumer ({member_id}) of group `{group}` lost {} of generation {generation} without committing ({reason})",
            list_partitions(partitions)
        ),
        Event::TxnStateChanged {
            transactional_id,
            broker,
            producer_id,
            producer_epoch,
            from,
            to,
            partitions,
            reason,
            client,
            corr,
        } => format!(
            "broker-{broker} moved transactional id `{transactional_id}` (producer id {producer_id}, epoch {producer_epoch}) from {from} to {to} ({reason}{}){}",
            match (client, corr) {
                (Some(c), Some(r)) => format!(", for {c}'s request {}", r.0),
                (Some(c), None) => format!(", for {c}"),
                _ => String::new(),
            },
            if partitions.is_empty() {
                String::new()
            } else {
                format!("; its partitions: {}", list_partitions(partitions))
            }
        ),
        Event::EndTxnAnswered {
            transactional_id,
            broker,
            client,
            corr,
            producer_id,
            producer_epoch,
            result,
            error,
        } => format!(
            "broker-{broker} answered {client}'s EndTxn({result}) request {} for transactional id `{transactional_id}` (producer id {producer_id}, epoch {producer_epoch}) with {error}, changing nothing",
            corr.0
        ),
        Event::RequestTimedOut { broker, api, corr } => format!(
            "{api} request {} to broker-{broker} got no answer within request.timeout.ms: the client closed its connection to broker-{broker} (bytes already sent may still arrive)",
            corr.0
        ),
        Event::TxnMarkerWritten {
            tp,
            broker,
            producer_id,
            producer_epoch,
            result,
            offset,
            coordinator_epoch,
        } => format!(
            "broker-{broker} wrote the {} marker of producer id {producer_id} (epoch {producer_epoch}) at {tp} offset {offset} (coordinator epoch {coordinator_epoch})",
            result.to_uppercase()
        ),
        Event::LastStableOffsetChanged {
            tp,
            broker,
            last_stable_offset,
            first_unstable,
        } => match first_unstable {
            Some((pid, first)) => format!(
                "broker-{broker}: the last stable offset of {tp} is {last_stable_offset}, held by producer id {pid}'s open transaction from offset {first}"
            ),
            None => format!("broker-{broker}: the last stable offset of {tp} is {last_stable_offset}"),
        },
        Event::DelayedFetchIsolationIgnored {
            tp,
            broker,
            fetch_offset,
            end_offset,
            last_stable_offset,
            high_watermark,
        } => format!(
            "broker-{broker} completed a delayed read_committed fetch of {tp} as read_uncommitted (sim.fetch.delayed-isolation = false, KAFKA-5355): offsets {fetch_offset}..{end_offset} returned, the last stable offset being {last_stable_offset} and the high watermark {high_watermark}, with no aborted-transaction list"
        ),
        Event::OffsetCommitFailed {
            group,
            mode,
            error,
            retry,
        } => format!(
            "consumer's offset commit ({mode}) for group `{group}` failed: {error}; {}",
            if *retry {
                "commitSync() retries it"
            } else {
                "not retried"
            }
        ),
    }
}

/// A consumer's position reset, in words: what moved it and which records it skips or reads
/// again because of it.
pub(super) fn describe_position_reset(
    tp: &TopicPartition,
    from: Option<Offset>,
    to: Offset,
    strategy: &str,
    reason: &str,
) -> String {
    if strategy == "committed" {
        return format!(
            "consumer set its position in {tp} to {to}, its group's committed offset (OffsetFetch): it resumes where the group committed"
        );
    }
    let why = match (strategy, reason) {
        ("seek", _) => "the application called seek()".to_string(),
        ("divergent-offset", _) => {
            "log truncation detected (KIP-320): back to the first offset known to diverge"
                .to_string()
        }
        (s, "no-position") => format!("no position yet, auto.offset.reset={s}"),
        (s, "offset-out-of-range") => {
            format!("the fetch position was OFFSET_OUT_OF_RANGE, auto.offset.reset={s}")
        }
        (s, r) => format!("{r}, auto.offset.reset={s}"),
    };
    let start = from.unwrap_or(Offset(0));
    let effect = if to > start {
        let n = to.0 - start.0;
        format!(
            "; it will not read {tp} offsets {start}..{} ({n} record{} skipped by configuration, not lost)",
            to.0 - 1,
            if n == 1 { "" } else { "s" }
        )
    } else if to < start {
        format!("; it reads {tp} from {to} again")
    } else {
        String::new()
    };
    let from = from.map_or("none".to_string(), |o| o.to_string());
    format!("consumer set its position in {tp} from {from} to {to} ({why}){effect}")
}
