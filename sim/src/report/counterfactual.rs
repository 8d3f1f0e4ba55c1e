//! Counterfactual re-runs: when a run violates, run the same scenario and seed again with each
//! setting the report's lessons propose ("Which setting would have prevented it", see
//! [`super::lessons`]), one at a time, and say what each changed.
//!
//! The fault schedule stays the same: the nemesis draws its random faults up front from its
//! own random stream, from `[faults]`, the broker count and the duration only
//! ([`crate::nemesis::plan`]), none of which a proposed setting touches, so both runs plan the
//! same faults at the same times. Each re-run's recorded faults list is compared with the
//! original's (time, action, selector, and the nodes it resolved to) and the comparison is
//! shown beside the outcome: role selectors (`leader:events-0`) resolve when the fault fires,
//! so a setting that changes who leads may send the same planned fault to another node, and
//! the table says so rather than hide it.
//!
//! A setting is changed in the scenario's TOML (`[cluster.broker_config]`, a topic's `config`,
//! a producer entry's `config`) and the text is loaded again by the ordinary loader, so it is
//! validated like a file the user wrote. A proposed setting that does not fix the run is
//! reported as such.

use super::*;
use crate::nemesis::FaultRecord;
use crate::run::run as run_scenario;

/// Where a proposed setting is written in the scenario file.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// `[cluster.broker_config]` key.
    Broker(String, toml::Value),
    /// `config` of the `[[topics]]` entry with that name.
    Topic(String, String, toml::Value),
    /// `config` of the `[[producers]]` entry at that index (file order).
    Producer(usize, String, toml::Value),
}

/// One setting the lessons propose, as the edits that make it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// For people: `min.insync.replicas = 2 on topic events`.
    pub setting: String,
    pub edits: Vec<Edit>,
}

/// The outcome of one counterfactual re-run.
#[derive(Debug, Clone, PartialEq)]
pub struct Counterfactual {
    pub setting: String,
    /// The checks that failed in the re-run, in check order (empty: it passed).
    pub failed: Vec<String>,
    /// The checks that failed in the original run.
    pub failed_before: Vec<String>,
    /// What the setting changed, in words (refusals, elections, truncations, acks).
    pub what_changed: String,
    /// Faults of the original run and of the re-run.
    pub faults: usize,
    /// Whether the planned schedule (time, action, selector, source) is the same.
    pub same_plan: bool,
    /// How many faults resolved to other nodes (or carried another note) than in the original.
    pub resolved_differently: usize,
}

impl Counterfactual {
    /// The re-run passed every check.
    pub fn fixed(&self) -> bool {
        self.failed.is_empty()
    }

    /// `ok: fixes it`, or which checks still fail.
    pub fn outcome_words(&self) -> String {
        if self.fixed() {
            return "ok: every check passes".to_string();
        }
        let still: Vec<&String> = self
            .failed
            .iter()
            .filter(|c| self.failed_before.contains(c))
            .collect();
        let new: Vec<&String> = self
            .failed
            .iter()
            .filter(|c| !self.failed_before.contains(c))
            .collect();
        let mut parts = Vec::new();
        if !still.is_empty() {
            parts.push(format!(
                "still fails: {}",
                still
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !new.is_empty() {
            parts.push(format!(
                "newly fails: {}",
                new.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        format!("does not fix it: {}", parts.join("; "))
    }

    /// Whether the fault schedule was kept, in words.
    pub fn schedule_words(&self) -> String {
        match (self.same_plan, self.resolved_differently) {
            (true, 0) => format!("identical ({} faults)", self.faults),
            (true, n) => format!(
                "same plan ({} faults); {n} resolved to other nodes (role selectors)",
                self.faults
            ),
            (false, _) => "DIFFERENT plan (see notes)".to_string(),
        }
    }
}

/// Every counterfactual re-run of a violating run, with notes on what was not re-run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counterfactuals {
    pub runs: Vec<Counterfactual>,
    pub notes: Vec<String>,
}

impl Counterfactuals {
    /// The paragraph above the table.
    pub fn intro(&self) -> String {
        "This run was re-run with the same scenario and seed, changing one setting that \
         \"Which setting would have prevented it\" proposes at a time. The nemesis draws its \
         faults from its own random stream, which no setting touches, so the fault schedule is \
         the same; the last column compares each re-run's faults list with this run's."
            .to_string()
    }

    /// The Markdown section `## Counterfactual re-runs` for `report.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::from("## Counterfactual re-runs\n\n");
        let _ = writeln!(out, "{}\n", self.intro());
        if !self.runs.is_empty() {
            out.push_str(
                "| setting changed | outcome | what changed | fault schedule |\n|---|---|---|---|\n",
            );
            for r in &self.runs {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    cell(&r.setting),
                    cell(&r.outcome_words()),
                    cell(&r.what_changed),
                    cell(&r.schedule_words())
                );
            }
            out.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(out, "{n}\n");
        }
        out
    }
}

/// The settings the lessons of `run`'s failed checks propose, one [`Fix`] each, in the order
/// the report gives them; and notes on proposals that are not re-run.
pub fn proposed_fixes(run: &RunResult) -> (Vec<Fix>, Vec<String>) {
    let s = Safety::of(&run.scenario);
    let mut fixes: Vec<Fix> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let add = |f: Fix, fixes: &mut Vec<Fix>| {
        if !fixes.iter().any(|g| g.setting == f.setting) {
            fixes.push(f);
        }
    };
    let int = |n: i64| toml::Value::Integer(n);
    let mut seen = BTreeSet::new();
    for v in &run.checks.violations {
        if !seen.insert(v.check.clone()) {
            continue;
        }
        let topics: BTreeSet<String> = focus_points(v)
            .into_iter()
            .map(|f| f.tp.topic.to_string())
            .collect();
        let in_scope = |t: &str| topics.is_empty() || topics.contains(t);
        let lesson = checker_named(&v.check).map_or(Lesson::UNRECORDED, |c| c.lesson());
        let mut loss = false;
        match lesson.prevention {
            Prevention::Loss | Prevention::LossOrUnreadable | Prevention::ReadJump => loss = true,
            Prevention::Duplicate => {
                let mut any = false;
                for (j, p) in s.producers.iter().enumerate() {
                    if in_scope(&p.topic) && !p.enable_idempotence && p.retries > 0 {
                        any = true;
                        let mut edits = vec![Edit::Producer(
                            j,
                            "enable.idempotence".into(),
                            toml::Value::Boolean(true),
                        )];
                        let mut setting = format!("enable.idempotence = true on {}", p.clients);
                        if p.acks != Acks::All {
                            edits.push(Edit::Producer(
                                j,
                                "acks".into(),
                                toml::Value::String("all".into()),
                            ));
                            setting =
                                format!("enable.idempotence = true, acks = all on {}", p.clients);
                        }
                        add(Fix { setting, edits }, &mut fixes);
                    }
                }
                loss = !any;
            }
            Prevention::ProtocolInvariant => {
                if !s.controller_epoch_fencing {
                    add(
                        Fix {
                            setting: "sim.controller.epoch-fencing = true".into(),
                            edits: vec![Edit::Broker(
                                "sim.controller.epoch-fencing".into(),
                                toml::Value::Boolean(true),
                            )],
                        },
                        &mut fixes,
                    );
                } else if s.truncation != TruncationMode::Fenced {
                    add(truncation_fix(), &mut fixes);
                }
            }
            Prevention::GroupCommitFencing => {
                if !s.offset_commit_fencing {
                    add(
                        Fix {
                            setting: "sim.group.offset-commit-fencing = true".into(),
                            edits: vec![Edit::Broker(
                                "sim.group.offset-commit-fencing".into(),
                                toml::Value::Boolean(true),
                            )],
                        },
                        &mut fixes,
                    );
                }
            }
            // The commit order is the application's (`commit` of a consumer entry), not a
            // setting; a protocol break has no fixing setting. Neither is re-run.
            Prevention::CommitOrder | Prevention::GroupProtocol => {}
            Prevention::Liveness | Prevention::Unrecorded => {}
            // The brokers' transaction fencing: producer epochs checked, and an epoch bump per
            // transaction (KIP-890 part 2), which fences a late write or marker of a finished
            // transaction. (`isolation.level = read_committed` is already on for the readers
            // these checks judge; processors are not built yet.)
            Prevention::ReadCommitted | Prevention::TxnFencing => {
                // KAFKA-5355 (a delayed fetch read as read_uncommitted) breaks what
                // read_committed readers see, not the fencing of writers.
                if matches!(lesson.prevention, Prevention::ReadCommitted)
                    && !s.fetch_delayed_isolation
                {
                    add(
                        Fix {
                            setting: "sim.fetch.delayed-isolation = true".into(),
                            edits: vec![Edit::Broker(
                                "sim.fetch.delayed-isolation".into(),
                                toml::Value::Boolean(true),
                            )],
                        },
                        &mut fixes,
                    );
                }
                if !s.txn_producer_fencing {
                    add(
                        Fix {
                            setting: "sim.txn.producer-fencing = true".into(),
                            edits: vec![Edit::Broker(
                                "sim.txn.producer-fencing".into(),
                                toml::Value::Boolean(true),
                            )],
                        },
                        &mut fixes,
                    );
                }
                if s.transaction_version < 2 {
                    add(
                        Fix {
                            setting: "transaction.version = 2".into(),
                            edits: vec![Edit::Broker("transaction.version".into(), int(2))],
                        },
                        &mut fixes,
                    );
                }
            }
            Prevention::ExactlyOnce => {}
        }
        if !loss {
            continue;
        }
        for (j, p) in s.producers.iter().enumerate() {
            if !in_scope(&p.topic) || p.acks == Acks::All {
                continue;
            }
            let min_isr = s
                .topics
                .iter()
                .find(|t| t.name == p.topic)
                .map_or(1, |t| t.min_insync_replicas);
            let mut edits = vec![Edit::Producer(
                j,
                "acks".into(),
                toml::Value::String("all".into()),
            )];
            let mut setting = format!("acks = all on {}", p.clients);
            if min_isr < 2 {
                edits.push(Edit::Topic(
                    p.topic.clone(),
                    "min.insync.replicas".into(),
                    int(2),
                ));
                setting = format!(
                    "acks = all on {}, min.insync.replicas = 2 on topic {}",
                    p.clients, p.topic
                );
            }
            add(Fix { setting, edits }, &mut fixes);
        }
        for t in s.topics.iter().filter(|t| in_scope(&t.name)) {
            if t.replication_factor < 2 {
                let note = format!(
                    "Not re-run: replication factor 3 for topic `{}` (a new replica \
                     assignment is drawn from the seed, so the run would not be comparable).",
                    t.name
                );
                if !notes.contains(&note) {
                    notes.push(note);
                }
            } else if t.min_insync_replicas < 2
                && s.producers
                    .iter()
                    .any(|p| p.topic == t.name && p.acks == Acks::All)
            {
                add(
                    Fix {
                        setting: format!("min.insync.replicas = 2 on topic {}", t.name),
                        edits: vec![Edit::Topic(
                            t.name.clone(),
                            "min.insync.replicas".into(),
                            int(2),
                        )],
                    },
                    &mut fixes,
                );
            }
            if t.unclean_leader_election_enable {
                add(
                    Fix {
                        setting: format!(
                            "unclean.leader.election.enable = false on topic {}",
                            t.name
                        ),
                        edits: vec![Edit::Topic(
                            t.name.clone(),
                            "unclean.leader.election.enable".into(),
                            toml::Value::Boolean(false),
                        )],
                    },
                    &mut fixes,
                );
            }
        }
        if s.truncation != TruncationMode::Fenced {
            add(truncation_fix(), &mut fixes);
        }
        if s.power_faults && !s.spare_last_replica && s.flush_interval_messages > 1 {
            add(
                Fix {
                    setting: "log.flush.interval.messages = 1".into(),
                    edits: vec![Edit::Broker("log.flush.interval.messages".into(), int(1))],
                },
                &mut fixes,
            );
        }
    }
    (fixes, notes)
}

fn truncation_fix() -> Fix {
    Fix {
        setting: "sim.replication.truncation = \"fenced\"".into(),
        edits: vec![Edit::Broker(
            "sim.replication.truncation".into(),
            toml::Value::String("fenced".into()),
        )],
    }
}

/// The scenario text `text` with `edits` applied, as TOML.
pub fn apply_edits(text: &str, edits: &[Edit]) -> Result<String, String> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    fn table<'a>(t: &'a mut toml::Table, key: &str) -> Result<&'a mut toml::Table, String> {
        t.entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .ok_or_else(|| format!("`{key}` is not a table"))
    }
    fn entry<'a>(
        doc: &'a mut toml::Table,
        array: &str,
        pick: &dyn Fn(usize, &toml::Table) -> bool,
    ) -> Result<&'a mut toml::Table, String> {
        doc.get_mut(array)
            .and_then(toml::Value::as_array_mut)
            .and_then(|a| {
                a.iter_mut()
                    .enumerate()
                    .filter_map(|(i, v)| v.as_table_mut().map(|t| (i, t)))
                    .find(|(i, t)| pick(*i, t))
                    .map(|(_, t)| t)
            })
            .ok_or_else(|| format!("no such `[[{array}]]` entry"))
    }
    for e in edits {
        match e {
            Edit::Broker(k, v) => {
                table(table(&mut doc, "cluster")?, "broker_config")?.insert(k.clone(), v.clone());
            }
            Edit::Topic(name, k, v) => {
                let t = entry(&mut doc, "topics", &|_, t| {
                    t.get("name").and_then(toml::Value::as_str) == Some(name)
                })?;
                table(t, "config")?.insert(k.clone(), v.clone());
            }
            Edit::Producer(j, k, v) => {
                let p = entry(&mut doc, "producers", &|i, _| i == *j)?;
                table(p, "config")?.insert(k.clone(), v.clone());
            }
        }
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

/// Re-runs `run` once per proposed setting (see the module docs). `None` when the run passed.
pub fn counterfactuals(run: &RunResult) -> Option<Counterfactuals> {
    if run.checks.violations.is_empty() {
        return None;
    }
    let (fixes, mut notes) = proposed_fixes(run);
    let mut out = Counterfactuals::default();
    if fixes.is_empty() {
        notes.insert(
            0,
            "The lessons propose no setting to change for these checks (the settings that \
             matter were the safe ones, or the check has no standard lesson), so nothing was \
             re-run."
                .to_string(),
        );
        out.notes = notes;
        return Some(out);
    }
    let text = match std::fs::read_to_string(&run.scenario.file) {
        Ok(t) => t,
        Err(e) => {
            out.notes.push(format!(
                "Not re-run: cannot read the scenario file `{}` ({}).",
                run.scenario.file,
                crate::cli::io_reason(&e)
            ));
            return Some(out);
        }
    };
    let failed_before = failed_checks(run);
    for fix in fixes {
        let scenario = apply_edits(&text, &fix.edits).and_then(|t| {
            crate::scenario::parse(&t, &run.scenario.file).map_err(|e| e.to_string())
        });
        let scenario = match scenario {
            Ok(s) => s,
            Err(e) => {
                out.notes
                    .push(format!("Not re-run: `{}` does not load: {e}", fix.setting));
                continue;
            }
        };
        let again = run_scenario(&scenario, run.output.seed);
        let (same_plan, resolved_differently) =
            compare_faults(&run.output.faults, &again.output.faults);
        if !same_plan {
            out.notes.push(format!(
                "With `{}` the nemesis planned other faults than in this run ({} against {}): \
                 the comparison is not like for like.",
                fix.setting,
                again.output.faults.len(),
                run.output.faults.len()
            ));
        }
        out.runs.push(Counterfactual {
            setting: fix.setting.clone(),
            failed: failed_checks(&again),
            failed_before: failed_before.clone(),
            what_changed: what_changed(run, &again),
            faults: run.output.faults.len(),
            same_plan,
            resolved_differently,
        });
    }
    out.notes.extend(notes);
    Some(out)
}

fn failed_checks(run: &RunResult) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in &run.checks.violations {
        if !out.contains(&v.check) {
            out.push(v.check.clone());
        }
    }
    out
}

/// (the planned schedules are equal, how many faults resolved to other nodes or notes).
pub fn compare_faults(a: &[FaultRecord], b: &[FaultRecord]) -> (bool, usize) {
    let plan = |f: &FaultRecord| (f.at_ms, f.action.clone(), f.selector.clone(), f.source);
    let same = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| plan(x) == plan(y));
    let differ = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.nodes != y.nodes || x.note != y.note)
        .count();
    (same, differ)
}

/// Counts that tell what a setting changed.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    refused_nep: u64,
    unclean: u64,
    truncations: u64,
    acked: u64,
    failed: u64,
}

fn tally(run: &RunResult) -> Tally {
    let stats = run.stats();
    let mut t = Tally {
        refused_nep: stats.produce_refused_not_enough_replicas,
        acked: stats.records_acked,
        failed: stats.records_failed + stats.records_indeterminate,
        ..Default::default()
    };
    for r in &run.output.events {
        match &r.event {
            Event::PartitionStateChanged { reason, .. } if reason == "unclean-election" => {
                t.unclean += 1
            }
            Event::Truncated {
                from_offset,
                to_offset,
                ..
            } if to_offset < from_offset => t.truncations += 1,
            _ => {}
        }
    }
    t
}

fn what_changed(before: &RunResult, after: &RunResult) -> String {
    let (a, b) = (tally(before), tally(after));
    let mut parts = Vec::new();
    if b.refused_nep != a.refused_nep {
        parts.push(format!(
            "{} produce requests refused with NOT_ENOUGH_REPLICAS ({} before)",
            b.refused_nep, a.refused_nep
        ));
    }
    if b.unclean != a.unclean {
        parts.push(format!(
            "{} unclean leader elections ({} before)",
            b.unclean, a.unclean
        ));
    }
    if b.truncations != a.truncations {
        parts.push(format!(
            "{} truncations that removed records ({} before)",
            b.truncations, a.truncations
        ));
    }
    parts.push(format!(
        "{} records acknowledged ({} before), {} failed or indeterminate ({} before)",
        b.acked, a.acked, b.failed, a.failed
    ));
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_land_where_the_loader_reads_them() {
        let text = r#"
[scenario]
name = "x"

[cluster]
brokers = 3

[[topics]]
name = "events"
partitions = 1

[[producers]]
topic = "events"
config = { acks = 1 }
"#;
        let edited = apply_edits(
            text,
            &[
                Edit::Broker("sim.replication.truncation".into(), "fenced".into()),
                Edit::Topic("events".into(), "min.insync.replicas".into(), 2.into()),
                Edit::Producer(0, "acks".into(), "all".into()),
            ],
        )
        .unwrap();
        let doc: toml::Table = toml::from_str(&edited).unwrap();
        assert_eq!(
            doc["cluster"]["broker_config"]["sim.replication.truncation"].as_str(),
            Some("fenced")
        );
        assert_eq!(
            doc["topics"][0]["config"]["min.insync.replicas"].as_integer(),
            Some(2)
        );
        assert_eq!(doc["producers"][0]["config"]["acks"].as_str(), Some("all"));
        assert!(apply_edits(text, &[Edit::Topic("nope".into(), "k".into(), 1.into())]).is_err());
    }
}
