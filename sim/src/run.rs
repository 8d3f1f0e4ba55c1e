//! One scenario run end to end: simulate, check, judge against the scenario's expectation,
//! and write the outputs SCENARIOS.md promises (`summary.json`, `history.jsonl`,
//! `events.jsonl`, `report.md`).

use crate::check::{run_all, CheckInput, CheckReport, Violation};
use crate::history::{write_history_jsonl, write_jsonl};
use crate::scenario::{Expect, Scenario};
use crate::world::{simulate, RunOutput};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// The verdict of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No check failed.
    Ok,
    /// At least one check failed.
    Violation,
}

/// A run together with its checks.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub scenario: Scenario,
    pub output: RunOutput,
    pub checks: CheckReport,
    pub outcome: Outcome,
    /// Whether the run is what the scenario expects: `ok` with no violation, or `violation`
    /// with at least one of `expect_violations` among the failed checks; and in both cases
    /// every item of the scenario's `reach` reached (`missed` empty).
    pub expected: bool,
    /// How many times the run reached each event kind, probe and `fault:ACTION` it reached at
    /// all (see [`crate::reach`]).
    pub reached: std::collections::BTreeMap<String, u64>,
    /// The items of the scenario's `reach` this run never reached, in the scenario's order.
    pub missed: Vec<String>,
    /// SHA-256 of `history.jsonl`, hex.
    pub history_hash: String,
}

/// Run statistics for `summary.json` (`wall_ms` is the only wall-clock field).
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub simulated_ms: u64,
    pub wall_ms: u64,
    pub messages: u64,
    pub records_sent: u64,
    pub records_acked: u64,
    pub records_failed: u64,
    pub records_indeterminate: u64,
    pub records_polled: u64,
    pub faults: u64,
    /// Records acknowledged per simulated second of the whole run (workload, faults and heal
    /// phase), to one decimal: the throughput the cluster gave the producers.
    pub acked_per_sim_s: f64,
    /// Median and 99th percentile of the time from `send` to its acknowledgement, in simulated
    /// milliseconds, over acknowledged records (0 when none was acknowledged).
    pub ack_latency_ms_p50: u64,
    pub ack_latency_ms_p99: u64,
    /// Log fsyncs the brokers' disks carried out: flushes (`log.flush.interval.messages`,
    /// `log.flush.interval.ms`), segment rolls and recovery repairs. (Checkpoint files are
    /// written atomically and neither counted nor charged.)
    pub fsyncs: u64,
    /// Simulated time spent waiting for those fsyncs, in milliseconds: each costs the
    /// simulated disk's `sync_latency_us` (2 ms), during which the broker does nothing else.
    pub fsync_ms: u64,
    /// Produce requests a leader refused with NOT_ENOUGH_REPLICAS because its ISR was
    /// smaller than `min.insync.replicas` (the producer retries them; left out when zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub produce_refused_not_enough_replicas: u64,
    /// Log segments rolled, deleted by retention and rewritten by the cleaner, over all
    /// replicas (left out of `summary.json` when zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub segments_rolled: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub segments_deleted: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub segments_cleaned: u64,
    /// Acknowledged records below a log start offset retention set (checkers excuse them).
    #[serde(skip_serializing_if = "is_zero")]
    pub records_deleted_by_retention: u64,
    /// Acknowledged records the cleaner removed (superseded by a later record with the same
    /// key; checkers excuse them).
    #[serde(skip_serializing_if = "is_zero")]
    pub records_removed_by_compaction: u64,
}

/// The `p`th percentile (nearest rank) of sorted values; 0 for none.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The contents of `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub outcome: Outcome,
    pub expected: bool,
    pub expect: Expect,
    pub violations: Vec<Violation>,
    pub checks_run: Vec<String>,
    /// Checks that did not apply to this run, each with the reason.
    pub checks_skipped: Vec<crate::check::SkippedCheck>,
    /// What the checks deliberately left unjudged, and why.
    pub check_notes: Vec<crate::check::CheckNote>,
    /// The scenario's `reach` items this run never reached (a non-empty list makes the run
    /// unexpected even with no violation).
    pub missed: Vec<String>,
    /// How many times the run reached each event kind, probe and `fault:ACTION`.
    pub reached: std::collections::BTreeMap<String, u64>,
    pub history_hash: String,
    pub stats: Stats,
    /// The consumers that ended the run behind: per consumer, records behind per partition
    /// (high watermark minus position) and the most records it read in one simulated second
    /// (see [`crate::check::lag`]). Left out of `summary.json` when no consumer ended behind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumer_lag: Vec<crate::check::lag::ConsumerLag>,
    pub faults: Vec<crate::nemesis::FaultRecord>,
    /// The command that replays this run.
    pub replay: String,
}

/// Runs `scenario` with `seed` and checks the result.
pub fn run(scenario: &Scenario, seed: u64) -> RunResult {
    let output = simulate(scenario, seed);
    let checks = run_all(&CheckInput {
        history: &output.history,
        events: &output.events,
        final_logs: &output.final_logs,
        scenario: Some(scenario),
        snapshots: &output.snapshots,
    });
    let outcome = if checks.violations.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Violation
    };
    let expected = match scenario.expect {
        Expect::Ok => outcome == Outcome::Ok,
        Expect::Violation => checks
            .violations
            .iter()
            .any(|v| scenario.expect_violations.contains(&v.check)),
    };
    let reached = crate::reach::reached(&output.events, &output.history);
    let missed = crate::reach::missed(&scenario.reach, &reached);
    let expected = expected && missed.is_empty();
    let history_hash = history_hash(&output.history);
    RunResult {
        scenario: scenario.clone(),
        output,
        checks,
        outcome,
        expected,
        reached,
        missed,
        history_hash,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `history.jsonl`'s text, hex, hashed as it is written (the text is not kept).
fn history_hash(history: &[crate::history::HistoryEntry]) -> String {
    /// Feeds what is written into the hash.
    struct HashWriter(Sha256);
    impl io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = HashWriter(Sha256::new());
    write_history_jsonl(&mut hasher, history).expect("hashing cannot fail");
    hex(&hasher.0.finalize())
}

impl RunResult {
    /// The command that replays this run exactly.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo run --release -- run {} --seed {}",
            self.scenario.file, self.output.seed
        )
    }

    pub fn stats(&self) -> Stats {
        use ksim_model::event::{OpType, OpValue};
        let mut s = Stats {
            simulated_ms: self.output.simulated_ms,
            wall_ms: self.output.wall_ms,
            messages: self.output.messages,
            records_sent: 0,
            records_acked: 0,
            records_failed: 0,
            records_indeterminate: 0,
            records_polled: 0,
            faults: self.output.faults.len() as u64,
            acked_per_sim_s: 0.0,
            ack_latency_ms_p50: 0,
            ack_latency_ms_p99: 0,
            fsyncs: self.output.fsyncs,
            fsync_ms: self.output.fsync_us / 1000,
            produce_refused_not_enough_replicas: 0,
            segments_rolled: 0,
            segments_deleted: 0,
            segments_cleaned: 0,
            records_deleted_by_retention: 0,
            records_removed_by_compaction: 0,
        };
        for r in &self.output.events {
            use ksim_model::event::Event;
            match &r.event {
                Event::LogSegmentRolled { .. } => s.segments_rolled += 1,
                Event::ProduceRejected {
                    error: ksim_model::protocol::ErrorCode::NotEnoughReplicas,
                    ..
                } => s.produce_refused_not_enough_replicas += 1,
                Event::LogSegmentsDeleted { base_offsets, .. } => {
                    s.segments_deleted += base_offsets.len() as u64
                }
                Event::LogCleaned {
                    cleaned_segments, ..
                } => s.segments_cleaned += *cleaned_segments as u64,
                _ => {}
            }
        }
        let removed = crate::check::Removed::from_events(&self.output.events);
        (
            s.records_deleted_by_retention,
            s.records_removed_by_compaction,
        ) = removed.excused_counts(&self.output.history);
        // Invoke time of each send in flight, by (process, op id).
        let mut invoked_ms: crate::history::OpenOps<u64> =
            crate::history::OpenOps::new(self.output.history.len());
        let mut ack_latencies_ms: Vec<u64> = Vec::new();
        for e in &self.output.history {
            match (&e.op.value, e.op.op_type) {
                (OpValue::Send { .. }, OpType::Invoke) => {
                    s.records_sent += 1;
                    invoked_ms.insert(e.process, e.op.op_id, e.time_ms);
                }
                (OpValue::Send { .. }, OpType::Ok) => {
                    s.records_acked += 1;
                    if let Some(t) = invoked_ms.remove(e.process, e.op.op_id) {
                        ack_latencies_ms.push(e.time_ms.saturating_sub(t));
                    }
                }
                (OpValue::Send { .. }, OpType::Fail) => s.records_failed += 1,
                (OpValue::Send { .. }, OpType::Info) => s.records_indeterminate += 1,
                (OpValue::Poll { records }, OpType::Ok) => s.records_polled += records.len() as u64,
                (OpValue::Txn { .. }, OpType::Invoke) => {
                    invoked_ms.insert(e.process, e.op.op_id, e.time_ms);
                }
                // A transaction's sends count when it completes: acknowledged when it
                // committed (its latency is the transaction's, begin to commit), failed when
                // it aborted, indeterminate when its outcome is unknown.
                (OpValue::Txn { mops, .. }, op_type) => {
                    let sends = mops
                        .iter()
                        .filter(|m| matches!(m, ksim_model::event::TxnMop::Send { .. }))
                        .count() as u64;
                    s.records_sent += sends;
                    match op_type {
                        OpType::Ok => {
                            s.records_acked += sends;
                            if let Some(t) = invoked_ms.remove(e.process, e.op.op_id) {
                                ack_latencies_ms.push(e.time_ms.saturating_sub(t));
                            }
                        }
                        OpType::Fail => s.records_failed += sends,
                        _ => s.records_indeterminate += sends,
                    }
                }
                _ => {}
            }
        }
        ack_latencies_ms.sort_unstable();
        s.ack_latency_ms_p50 = percentile(&ack_latencies_ms, 50);
        s.ack_latency_ms_p99 = percentile(&ack_latencies_ms, 99);
        if s.simulated_ms > 0 {
            // Integer arithmetic first, so the value is the same on every machine.
            s.acked_per_sim_s = (s.records_acked * 10_000 / s.simulated_ms) as f64 / 10.0;
        }
        s
    }

    /// Every consumer's lag at the end of the run (see [`crate::check::lag`]), in consumer
    /// order, including those that caught up.
    pub fn consumer_lag(&self) -> Vec<crate::check::lag::ConsumerLag> {
        crate::check::lag::consumer_lag(&CheckInput {
            history: &self.output.history,
            events: &self.output.events,
            final_logs: &self.output.final_logs,
            scenario: Some(&self.scenario),
            snapshots: &self.output.snapshots,
        })
    }

    pub fn summary(&self) -> Summary {
        self.summary_with(self.stats(), self.consumer_lag())
    }

    /// [`RunResult::summary`] with `stats` and `lags`, what [`RunResult::stats`] and
    /// [`RunResult::consumer_lag`] return.
    fn summary_with(&self, stats: Stats, lags: Vec<crate::check::lag::ConsumerLag>) -> Summary {
        Summary {
            scenario: self.scenario.name.clone(),
            seed: self.output.seed,
            outcome: self.outcome,
            expected: self.expected,
            expect: self.scenario.expect,
            violations: self.checks.violations.clone(),
            checks_run: self.checks.checks_run.clone(),
            checks_skipped: self.checks.checks_skipped.clone(),
            check_notes: self.checks.notes.clone(),
            missed: self.missed.clone(),
            reached: self.reached.clone(),
            history_hash: self.history_hash.clone(),
            stats,
            consumer_lag: lags.into_iter().filter(|l| l.is_behind()).collect(),
            faults: self.output.faults.clone(),
            replay: self.replay_command(),
        }
    }

    /// The default output directory: `target/ksim/<scenario>/seed-<n>/`.
    pub fn default_out_dir(&self) -> PathBuf {
        PathBuf::from("target/ksim")
            .join(&self.scenario.name)
            .join(format!("seed-{}", self.output.seed))
    }

    /// Writes `summary.json`, `history.jsonl`, `events.jsonl`, `report.md` and `report.html`
    /// into `dir` (created if needed; these files are replaced).
    pub fn write_outputs(&self, dir: &Path) -> io::Result<()> {
        self.write_outputs_with(dir, None)
    }

    /// As [`RunResult::write_outputs`], with the counterfactual re-runs' table
    /// ([`crate::report::counterfactual`]) in both reports when given.
    pub fn write_outputs_with(
        &self,
        dir: &Path,
        counterfactuals: Option<&crate::report::counterfactual::Counterfactuals>,
    ) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let stats = self.stats();
        let lags = self.consumer_lag();
        let summary = serde_json::to_string_pretty(&self.summary_with(stats.clone(), lags.clone()))
            .expect("summary serializes");
        std::fs::write(dir.join("summary.json"), summary + "\n")?;
        write_history_jsonl(
            io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?),
            &self.output.history,
        )?;
        write_jsonl(
            std::fs::File::create(dir.join("events.jsonl"))?,
            &self.output.events,
        )?;
        // report.html shows report.md (without the counterfactual table, which it shows in
        // its own section): render the Markdown once for both.
        let mut md = crate::report::render_with(self, &stats, &lags);
        let html = crate::report::html::render_with_markdown(self, counterfactuals, &md);
        if let Some(cf) = counterfactuals {
            md.push_str(&cf.markdown());
        }
        std::fs::write(dir.join("report.md"), md)?;
        std::fs::write(dir.join("report.html"), html)?;
        Ok(())
    }
}
