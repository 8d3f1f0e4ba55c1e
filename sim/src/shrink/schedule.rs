//! From the faults a run recorded to fault *units*, and from units back to a scripted
//! `[[faults.schedule]]` and a scenario file.
//!
//! # A faithful script
//! The random nemesis draws its whole plan up front ([`crate::nemesis::plan`]): every fault
//! with a concrete broker (`broker-2`), and every end of a fault as an action of its own (the
//! `restart` after a crash, the `resume` after a pause, the `heal` after a partition). Written
//! as `[[faults.schedule]]` entries at the same `at_ms`, in the same order, the actions replay
//! the run exactly, with three exceptions that [`Recorded::from_run`] takes care of:
//! - `random-broker` (scripted) draws from the nemesis stream when it fires; once the random
//!   plan is gone the stream is elsewhere, so it is replaced by the broker the run drew;
//! - a random `power-fail`, `disk-loss` or corrupting `disk-fault` may have been *spared*
//!   (`spare_last_replica`: nothing happened) where a scripted one never is; and any action
//!   that touched nothing (a `kill` of a broker already down, a `heal` with nothing to heal)
//!   changed nothing: such actions are left out;
//! - entries at the same `at_ms` fire in file order, so steps keep the run's order there.
//!
//! Role selectors (`leader:events-0`) written in the source schedule stay as they are: in the
//! replay of the whole schedule they resolve as they did; in a smaller one they name the role.
//!
//! # Units
//! A unit is what delta debugging removes or keeps as a whole: a fault and the action that ends
//! it (a crash and its restart, a pause and its resume, a network fault and the heal after
//! it), or a fault nothing ends (a disk fault, a crash never restarted before the heal phase).
//! Topic administration (`create-partitions`, `delete-topic`) is the workload's, not a fault:
//! it is kept as it is.

use super::Timed;
use crate::nemesis::{FaultRecord, FaultSource, PlannedFault};
use crate::scenario::{DiskFaultKind, FaultAction, ScheduledFault, Selector};
use ksim_model::types::NodeId;

/// One scripted action, with the index of the recorded action it comes from (entries at the
/// same time are written in that order, which is the run's).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at_ms: u64,
    pub action: FaultAction,
    pub origin: usize,
}

/// A fault and, if something ended it before the heal phase, the action that did.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub start: Step,
    pub end: Option<Step>,
}

impl Timed for Unit {
    fn start_ms(&self) -> u64 {
        self.start.at_ms
    }

    fn duration_ms(&self) -> Option<u64> {
        self.end
            .as_ref()
            .map(|e| e.at_ms.saturating_sub(self.start.at_ms))
    }

    fn with_start(&self, start_ms: u64) -> Self {
        let mut u = self.clone();
        if let Some(d) = self.duration_ms() {
            u.end.as_mut().expect("ended").at_ms = start_ms + d;
        }
        u.start.at_ms = start_ms;
        u
    }

    fn with_duration(&self, duration_ms: u64) -> Self {
        let mut u = self.clone();
        if let Some(e) = u.end.as_mut() {
            e.at_ms = self.start.at_ms + duration_ms;
        }
        u
    }
}

/// A run's fault actions as units.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The faults, in the order they started.
    pub units: Vec<Unit>,
    /// Topic administration, kept as it is.
    pub fixed: Vec<Step>,
    /// How many fault actions the run carried out before the heal phase (topic administration
    /// not counted).
    pub actions: usize,
    /// Those that changed nothing, left out (action key and why).
    pub no_effect: Vec<(String, String)>,
}

/// The selector naming exactly `node`.
pub fn node_selector(node: NodeId) -> Selector {
    match node {
        NodeId::Zk => Selector::Zk,
        NodeId::Broker(b) => Selector::Broker(b.0),
        other => Selector::Client(other.to_string()),
    }
}

/// The selector of a node name a fault record holds (`broker-1`), if it names a node.
fn named(name: &str) -> Option<Selector> {
    NodeId::parse(name).map(node_selector)
}

/// `action` with every `random-broker` replaced by the node the run drew (from `record`).
fn concrete(action: &FaultAction, record: &FaultRecord) -> FaultAction {
    let first = || record.nodes.first().and_then(|n| named(n));
    let pin = |s: &Selector, drawn: Option<Selector>| match (s, drawn) {
        (Selector::RandomBroker, Some(d)) => d,
        _ => s.clone(),
    };
    match action {
        FaultAction::Kill(s) => FaultAction::Kill(pin(s, first())),
        FaultAction::PowerFail(s) => FaultAction::PowerFail(pin(s, first())),
        FaultAction::Restart(s) => FaultAction::Restart(pin(s, first())),
        FaultAction::DiskLoss(s) => FaultAction::DiskLoss(pin(s, first())),
        FaultAction::Shutdown(s) => FaultAction::Shutdown(pin(s, first())),
        FaultAction::Pause(s) => FaultAction::Pause(pin(s, first())),
        FaultAction::Resume(s) => FaultAction::Resume(pin(s, first())),
        FaultAction::Isolate(s) => FaultAction::Isolate(pin(s, first())),
        FaultAction::Close(s) => FaultAction::Close(s.clone()),
        FaultAction::Replace { .. } => action.clone(),
        // The random client kinds become the schedule's keys they act like: a shrunk
        // scenario is a schedule the loader accepts.
        FaultAction::ClientKill(s) => FaultAction::Kill(s.clone()),
        FaultAction::ClientPause(s) => FaultAction::Pause(s.clone()),
        FaultAction::ClientLeave(s) => FaultAction::Close(s.clone()),
        FaultAction::DiskFault { node, kind } => FaultAction::DiskFault {
            node: pin(node, first()),
            kind: *kind,
        },
        FaultAction::Clog { from, to } => FaultAction::Clog {
            from: pin(from, first()),
            to: pin(to, record.nodes.last().and_then(|n| named(n))),
        },
        FaultAction::Partition(groups)
            if groups
                .iter()
                .flatten()
                .any(|s| *s == Selector::RandomBroker) =>
        {
            // The record holds the groups as resolved: `broker-0,zk` per group.
            let resolved: Vec<Vec<Selector>> = record
                .nodes
                .iter()
                .map(|g| g.split(',').filter_map(named).collect())
                .collect();
            FaultAction::Partition(resolved)
        }
        other => other.clone(),
    }
}

/// The nodes a record touched, sorted: what pairs a crash with its restart.
fn node_key(record: &FaultRecord) -> Vec<String> {
    let mut k = record.nodes.clone();
    k.sort();
    k
}

impl Recorded {
    /// The units of a run: `plan` is what the nemesis planned for it (the same
    /// [`crate::nemesis::plan`] the run drew, scripted and random), `records` what
    /// `summary.json`'s `faults` holds (one record per planned action, in order, then the heal
    /// phase's). An error when the two do not line up.
    pub fn from_run(plan: &[PlannedFault], records: &[FaultRecord]) -> Result<Recorded, String> {
        if records.len() < plan.len() {
            return Err(format!(
                "the run recorded {} fault actions but the nemesis planned {}",
                records.len(),
                plan.len()
            ));
        }
        let mut out = Recorded {
            units: Vec::new(),
            fixed: Vec::new(),
            actions: 0,
            no_effect: Vec::new(),
        };
        // Crashes and pauses not ended yet: (nodes, unit index).
        let mut crashed: Vec<(Vec<String>, usize)> = Vec::new();
        let mut paused: Vec<(Vec<String>, usize)> = Vec::new();
        // Network faults not healed yet.
        let mut cut: Vec<usize> = Vec::new();
        for (origin, (planned, record)) in plan.iter().zip(records).enumerate() {
            if record.action != planned.action.key() || record.source == FaultSource::HealPhase {
                return Err(format!(
                    "recorded action {origin} ({} at {} ms) is not the planned {}",
                    record.action,
                    record.at_ms,
                    planned.action.key()
                ));
            }
            let step = Step {
                at_ms: record.at_ms,
                action: concrete(&planned.action, record),
                origin,
            };
            let key = node_key(record);
            match &planned.action {
                FaultAction::CreatePartitions { .. } | FaultAction::DeleteTopic(_) => {
                    out.fixed.push(step);
                    continue;
                }
                _ => out.actions += 1,
            }
            let touched = !record.nodes.is_empty();
            let mut no_effect = |why: String| {
                out.no_effect.push((
                    record.action.clone(),
                    format!("at {} ms: {why}", record.at_ms),
                ))
            };
            match &planned.action {
                FaultAction::Heal => {
                    if cut.is_empty() {
                        no_effect("nothing to heal".into());
                    }
                    for u in cut.drain(..) {
                        out.units[u].end = Some(step.clone());
                    }
                }
                FaultAction::Restart(_) | FaultAction::Resume(_) if touched => {
                    let open = if matches!(planned.action, FaultAction::Restart(_)) {
                        &mut crashed
                    } else {
                        &mut paused
                    };
                    match open.iter().position(|(k, _)| *k == key) {
                        Some(i) => {
                            let (_, u) = open.remove(i);
                            out.units[u].end = Some(step);
                        }
                        None => out.units.push(Unit {
                            start: step,
                            end: None,
                        }),
                    }
                }
                _ if !touched && !matches!(planned.action, FaultAction::Partition(_)) => {
                    no_effect(
                        record
                            .note
                            .clone()
                            .unwrap_or_else(|| "it touched no node".into()),
                    );
                }
                action => {
                    let u = out.units.len();
                    out.units.push(Unit {
                        start: step,
                        end: None,
                    });
                    match action {
                        FaultAction::Kill(_)
                        | FaultAction::Shutdown(_)
                        | FaultAction::PowerFail(_)
                        | FaultAction::DiskLoss(_)
                        | FaultAction::ClientKill(_)
                        | FaultAction::Close(_)
                        | FaultAction::ClientLeave(_) => crashed.push((key, u)),
                        FaultAction::Pause(_) | FaultAction::ClientPause(_) => {
                            paused.push((key, u))
                        }
                        FaultAction::Partition(_)
                        | FaultAction::Isolate(_)
                        | FaultAction::Clog { .. } => cut.push(u),
                        _ => {}
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The `[[faults.schedule]]` of `units` and the `fixed` steps: every step once (a heal that
/// ended several network faults is written once), ordered by time, then by the run's order.
pub fn to_schedule(units: &[Unit], fixed: &[Step]) -> Vec<ScheduledFault> {
    let mut steps: Vec<&Step> = units
        .iter()
        .flat_map(|u| std::iter::once(&u.start).chain(u.end.as_ref()))
        .chain(fixed)
        .collect();
    steps.sort_by_key(|s| (s.at_ms, s.origin));
    steps.dedup_by(|a, b| a.at_ms == b.at_ms && a.origin == b.origin);
    steps
        .into_iter()
        .map(|s| ScheduledFault {
            at_ms: s.at_ms,
            action: s.action.clone(),
        })
        .collect()
}

/// How many entries of a schedule are faults (not topic administration).
pub fn fault_count(schedule: &[ScheduledFault]) -> usize {
    schedule
        .iter()
        .filter(|s| {
            !matches!(
                s.action,
                FaultAction::CreatePartitions { .. } | FaultAction::DeleteTopic(_)
            )
        })
        .count()
}

fn disk_fault_kind(kind: DiskFaultKind) -> &'static str {
    match kind {
        DiskFaultKind::Eio => "eio",
        DiskFaultKind::Full => "full",
        DiskFaultKind::Corrupt => "corrupt",
    }
}

/// An action for people, one line: `kill broker-1`, `partition [broker-0, zk] [broker-1]`.
pub fn describe(action: &FaultAction) -> String {
    let key = action.key();
    match action {
        FaultAction::Kill(s)
        | FaultAction::PowerFail(s)
        | FaultAction::Restart(s)
        | FaultAction::DiskLoss(s)
        | FaultAction::Shutdown(s)
        | FaultAction::Pause(s)
        | FaultAction::Resume(s)
        | FaultAction::Isolate(s)
        | FaultAction::Close(s)
        | FaultAction::ClientKill(s)
        | FaultAction::ClientPause(s)
        | FaultAction::ClientLeave(s) => format!("{key} {s}"),
        FaultAction::Replace {
            client,
            replacement,
        } => format!("{key} {client} by {replacement}"),
        FaultAction::Partition(groups) => {
            let g: Vec<String> = groups
                .iter()
                .map(|g| {
                    let names: Vec<String> = g.iter().map(|s| s.to_string()).collect();
                    format!("[{}]", names.join(", "))
                })
                .collect();
            format!("{key} {}", g.join(" "))
        }
        FaultAction::Clog { from, to } => format!("{key} {from} -> {to}"),
        FaultAction::Heal => key.to_string(),
        FaultAction::DiskFault { node, kind } => {
            format!("{key} {node} ({})", disk_fault_kind(*kind))
        }
        FaultAction::CreatePartitions { topic, count } => format!("{key} {topic} to {count}"),
        FaultAction::DeleteTopic(t) => format!("{key} {t}"),
    }
}

/// One `[[faults.schedule]]` entry as a TOML table: `at_ms` and the action's key.
pub fn entry_table(entry: &ScheduledFault) -> toml_edit::Table {
    use toml_edit::{value, Array, InlineTable, Value};
    let strings = |sels: &[Selector]| -> Value {
        let mut a = Array::new();
        for s in sels {
            a.push(s.to_string());
        }
        Value::Array(a)
    };
    let mut t = toml_edit::Table::new();
    t["at_ms"] = value(entry.at_ms as i64);
    let key = entry.action.key();
    t[key] = match &entry.action {
        FaultAction::Kill(s)
        | FaultAction::PowerFail(s)
        | FaultAction::Restart(s)
        | FaultAction::DiskLoss(s)
        | FaultAction::Shutdown(s)
        | FaultAction::Pause(s)
        | FaultAction::Resume(s)
        | FaultAction::Isolate(s)
        | FaultAction::Close(s)
        | FaultAction::ClientKill(s)
        | FaultAction::ClientPause(s)
        | FaultAction::ClientLeave(s) => value(s.to_string()),
        FaultAction::Replace { client, .. } => value(client.to_string()),
        FaultAction::Partition(groups) => {
            let mut a = Array::new();
            for g in groups {
                a.push(strings(g));
            }
            value(a)
        }
        FaultAction::Clog { from, to } => value(strings(&[from.clone(), to.clone()])),
        FaultAction::Heal => value(true),
        FaultAction::DiskFault { node, kind } => {
            let mut i = InlineTable::new();
            i.insert("node", node.to_string().into());
            i.insert("kind", disk_fault_kind(*kind).into());
            value(i)
        }
        FaultAction::CreatePartitions { topic, count } => {
            let mut i = InlineTable::new();
            i.insert("topic", topic.as_str().into());
            i.insert("count", (*count as i64).into());
            value(i)
        }
        FaultAction::DeleteTopic(t) => value(t.as_str()),
    };
    t
}

/// What the written scenario says about itself, besides its schedule.
#[derive(Debug, Clone)]
pub struct Header {
    /// `scenario.name`: the output file's stem.
    pub name: String,
    pub title: String,
    pub description: String,
    pub seed: u64,
    /// The check the run fails: `expect = "violation"`, `expect_violations = [check]`.
    pub check: String,
    pub reach: Vec<String>,
}

/// A TOML multi-line basic string holding `text`.
fn multi_line(text: &str) -> Result<toml_edit::Value, String> {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"\"\"\n{escaped}\n\"\"\"")
        .parse::<toml_edit::Value>()
        .map_err(|e| format!("cannot write the description: {e}"))
}

/// The source scenario's text with `header` and `schedule` in place of its own: the random
/// nemesis off (`faults.kinds = []`, its other keys removed), the schedule replaced, the rest
/// (cluster, topics, clients, comments) as the source wrote it.
pub fn scenario_text(
    source: &str,
    header: &Header,
    schedule: &[ScheduledFault],
) -> Result<String, String> {
    use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e| format!("cannot parse the source scenario as TOML: {e}"))?;
    let sc = doc
        .get_mut("scenario")
        .and_then(Item::as_table_mut)
        .ok_or("the source scenario has no [scenario] table")?;
    sc["name"] = value(header.name.as_str());
    sc["title"] = value(header.title.as_str());
    sc["description"] = Item::Value(multi_line(&wrap(&header.description, 96))?);
    sc["seeds"] = value(Array::from_iter([header.seed as i64]));
    sc["expect"] = value("violation");
    sc["expect_violations"] = value(Array::from_iter([header.check.as_str()]));
    if header.reach.is_empty() {
        sc.remove("reach");
    } else {
        sc["reach"] = value(Array::from_iter(header.reach.iter().map(String::as_str)));
    }
    if !doc.contains_key("faults") {
        doc["faults"] = Item::Table(Table::new());
    }
    let faults = doc["faults"]
        .as_table_mut()
        .ok_or("the source scenario's `faults` is not a table")?;
    for random_only in ["interval_ms", "duration_ms", "swarm", "spare_last_replica"] {
        faults.remove(random_only);
    }
    faults["kinds"] = value(Array::new());
    faults.remove("schedule");
    if !schedule.is_empty() {
        let mut entries = ArrayOfTables::new();
        for e in schedule {
            entries.push(entry_table(e));
        }
        faults["schedule"] = Item::ArrayOfTables(entries);
    }
    let mut text = doc.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// `text` with every line longer than `width` characters broken at spaces.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut current));
            } else if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push(current);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(at_ms: u64, action: FaultAction) -> PlannedFault {
        PlannedFault {
            at_ms,
            action,
            source: FaultSource::Random,
        }
    }

    fn record(p: &PlannedFault, nodes: &[&str], note: Option<&str>) -> FaultRecord {
        FaultRecord::new(
            p,
            p.at_ms,
            nodes.iter().map(|n| n.to_string()).collect(),
            note.map(str::to_string),
        )
    }

    #[test]
    fn crashes_pauses_and_network_faults_pair_with_what_ends_them() {
        let b = Selector::Broker;
        let plan = vec![
            planned(1_000, FaultAction::Kill(b(1))),
            planned(
                2_000,
                FaultAction::Partition(vec![vec![b(0)], vec![b(2), Selector::Zk]]),
            ),
            planned(2_500, FaultAction::Kill(b(1))),
            planned(3_000, FaultAction::Pause(b(2))),
            planned(4_000, FaultAction::Heal),
            planned(4_500, FaultAction::Heal),
            planned(5_000, FaultAction::Restart(b(1))),
            planned(6_000, FaultAction::PowerFail(b(0))),
            planned(7_000, FaultAction::Resume(b(2))),
        ];
        let records = vec![
            record(&plan[0], &["broker-1"], None),
            record(&plan[1], &["broker-0", "broker-2,zk"], None),
            record(&plan[2], &[], Some("broker-1 already down")),
            record(&plan[3], &["broker-2"], None),
            record(&plan[4], &[], None),
            record(&plan[5], &[], None),
            record(&plan[6], &["broker-1"], None),
            record(&plan[7], &[], Some("broker-0 spared")),
            record(&plan[8], &["broker-2"], None),
        ];
        let r = Recorded::from_run(&plan, &records).unwrap();
        assert_eq!(r.actions, 9);
        assert_eq!(r.no_effect.len(), 3, "{:?}", r.no_effect);
        let spans: Vec<(String, u64, Option<u64>)> = r
            .units
            .iter()
            .map(|u| (describe(&u.start.action), u.start.at_ms, u.duration_ms()))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("kill broker-1".to_string(), 1_000, Some(4_000)),
                (
                    "partition [broker-0] [broker-2, zk]".to_string(),
                    2_000,
                    Some(2_000)
                ),
                ("pause broker-2".to_string(), 3_000, Some(4_000)),
            ]
        );
        // The whole schedule replays the effective actions in the run's order.
        let schedule = to_schedule(&r.units, &r.fixed);
        let keys: Vec<(u64, &str)> = schedule.iter().map(|s| (s.at_ms, s.action.key())).collect();
        assert_eq!(
            keys,
            vec![
                (1_000, "kill"),
                (2_000, "partition"),
                (3_000, "pause"),
                (4_000, "heal"),
                (5_000, "restart"),
                (7_000, "resume")
            ]
        );
        // Dropping the kill drops its restart; shortening the pause moves its resume.
        let shorter = vec![r.units[1].clone(), r.units[2].with_duration(500)];
        let keys: Vec<(u64, &str)> = to_schedule(&shorter, &r.fixed)
            .iter()
            .map(|s| (s.at_ms, s.action.key()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (2_000, "partition"),
                (3_000, "pause"),
                (3_500, "resume"),
                (4_000, "heal")
            ]
        );
    }

    #[test]
    fn random_broker_is_replaced_by_the_broker_the_run_drew() {
        let plan = vec![PlannedFault {
            at_ms: 500,
            action: FaultAction::Kill(Selector::RandomBroker),
            source: FaultSource::Schedule,
        }];
        let records = vec![record(&plan[0], &["broker-2"], None)];
        let r = Recorded::from_run(&plan, &records).unwrap();
        assert_eq!(
            r.units[0].start.action,
            FaultAction::Kill(Selector::Broker(2))
        );
    }

    #[test]
    fn a_record_that_is_not_the_planned_action_is_an_error() {
        let plan = vec![planned(500, FaultAction::Kill(Selector::Broker(0)))];
        let other = planned(500, FaultAction::Pause(Selector::Broker(0)));
        assert!(Recorded::from_run(&plan, &[record(&other, &["broker-0"], None)]).is_err());
        assert!(Recorded::from_run(&plan, &[]).is_err());
    }

    #[test]
    fn the_written_scenario_loads_with_the_schedule_and_header() {
        let source = std::fs::read_to_string("scenarios/acks1-leader-failover.toml").unwrap();
        let schedule = vec![
            ScheduledFault {
                at_ms: 7_300,
                action: FaultAction::Kill(Selector::Broker(1)),
            },
            ScheduledFault {
                at_ms: 9_000,
                action: FaultAction::Partition(vec![
                    vec![Selector::Broker(0), Selector::Zk],
                    vec![Selector::Rest],
                ]),
            },
            ScheduledFault {
                at_ms: 9_500,
                action: FaultAction::DiskFault {
                    node: Selector::Broker(2),
                    kind: DiskFaultKind::Corrupt,
                },
            },
            ScheduledFault {
                at_ms: 12_000,
                action: FaultAction::Clog {
                    from: Selector::Broker(2),
                    to: Selector::Zk,
                },
            },
            ScheduledFault {
                at_ms: 13_000,
                action: FaultAction::Heal,
            },
        ];
        let header = Header {
            name: "shrunk-acks1".into(),
            title: "A \"shrunk\" title".into(),
            description: "Line one with a \\ and \"quotes\".\nLine two.".into(),
            seed: 2,
            check: "lost-write".into(),
            reach: vec!["fault:kill".into()],
        };
        let text = scenario_text(&source, &header, &schedule).unwrap();
        let sc = crate::scenario::parse(&text, "shrunk-acks1.toml").unwrap();
        assert_eq!(sc.name, "shrunk-acks1");
        assert_eq!(sc.title, header.title);
        assert_eq!(sc.description.trim_end(), header.description);
        assert!(text.ends_with("at_ms = 13000\nheal = true\n"), "{text}");
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc");
        assert_eq!(wrap("a\n\nlonglongword b", 4), "a\n\nlonglongword\nb");
        assert_eq!(sc.seeds, vec![2]);
        assert_eq!(sc.expect_violations, vec!["lost-write".to_string()]);
        assert_eq!(sc.reach, vec!["fault:kill".to_string()]);
        assert!(sc.faults.kinds.is_empty());
        assert_eq!(sc.faults.schedule, schedule);
        // The rest of the source stays as written.
        assert!(text.contains("[cluster.broker_config]"));
        assert!(!text.contains("interval_ms"));
    }
}
