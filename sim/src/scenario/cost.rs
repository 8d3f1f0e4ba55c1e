//! What a scenario costs to simulate, judged before the run: the one input no run could
//! finish is refused ([`RATE_PER_SEC_MAX`]), and a scenario whose size makes a run hopelessly
//! slow, or whose consumers cannot keep up with its producers, gets warnings
//! ([`Scenario::warnings`]) that name the cost driver with its numbers.
//!
//! # Where the figures come from
//! Measured on the project's machine (2 shared cores, release build) with `ksim run` of
//! `scenarios/default.toml` on seed 1 (50 s simulated, 9 faults), changed in one key at a time:
//!
//! | variant | records offered | wall | peak memory |
//! |---|---|---|---|
//! | as shipped (`rate_per_sec = 100`) | 8 951 | 2.3 s | 52 MB |
//! | `rate_per_sec = 1000` | 89 514 | 13.4 s | 327 MB |
//! | `rate_per_sec = 10000` | 895 140 | 58 s to 123 s | 3.0 GB |
//! | `rate_per_sec = 1000`, `members = 4` | 89 517 | 16.9 s | 314 MB |
//! | `rate_per_sec = 10`, `partitions = 3` | 894 | 0.2 s | 14 MB |
//! | `rate_per_sec = 10`, `partitions = 100` | 888 | 0.9 s | 19 MB |
//! | `rate_per_sec = 10`, `partitions = 300` | 871 | 2.5 s | 31 MB |
//! | `rate_per_sec = 10`, `partitions = 1000` | - | 31 s | 91 MB |
//! | `rate_per_sec = 10`, `partitions = 3000` | - | 86 s | 105 MB |
//! | `partitions` 1000 / 3000 / 10000, `duration_ms = heal_ms = 5000` (2 faults) | - | 2.7 / 3.7 / 9.9 s | 38 / 81 / 111 MB |
//! | `rate_per_sec = 1e12` | - | over 120 s, 7.8 GB and growing | - |
//!
//! The machine is shared, so the same run varies (the `rate_per_sec = 10000` run took 58 s on
//! a quiet hour and 123 s on a busy one), and the partition figures are after the broker's
//! per-handler work stopped growing with the cluster. Read every estimate as good to a factor
//! of three or four.
//!
//! So the two drivers are the **records offered** (each is a `send` with its acknowledgement
//! in the history, a log entry on every replica and a `poll` entry: about
//! [`WALL_US_PER_RECORD`] of wall time and [`MEMORY_BYTES_PER_RECORD`] of memory), and the
//! **partition replicas** times simulated time (replica fetches and metadata: about
//! [`WALL_US_PER_REPLICA_SIM_S`] per replica and simulated second), made dearer by faults (each
//! kill or partition moves leaders and ISRs of every partition it touches): [`Cost`] multiplies
//! the replicas' cost by `1 + faults / FAULTS_PER_DOUBLING`, with the faults expected from the
//! nemesis (`duration_ms` over the mean of `interval_ms`) and the schedule. Against the
//! measurements above that overestimates by up to 3.2 times and underestimates by up to 1.3.
//! Brokers alone (30 brokers, 3 partitions: 0.5 s), consumers (each further one adds about a
//! tenth) and a long quiet run (600 s simulated at 1 record/s: 2.1 s) are cheap.

use super::*;

/// The most records one producer client may offer per simulated second (`rate_per_sec`).
///
/// A single Kafka producer does not offer more: Kafka's own benchmark ("Benchmarking Apache
/// Kafka: 2 Million Writes Per Second (On Three Cheap Machines)", 2014) measured one producer
/// thread of 100-byte records, without replication, at 821 557 records per second. Above this
/// the workload's 1 ms ticks would each call `send` over a thousand times, and a run would
/// never finish: `rate_per_sec = 1e12` used 7.8 GB and 120 s of wall time without getting
/// through the run. To offer more records, raise `count`.
pub const RATE_PER_SEC_MAX: f64 = 1_000_000.0;

/// Wall time per record offered, in microseconds: between the 65 us and 137 us measured on a
/// quiet and a busy hour (see the module documentation).
pub const WALL_US_PER_RECORD: u64 = 100;

/// Memory per record offered, in bytes: the history, the event log and the brokers' logs keep
/// every record until the checks have run (see the module documentation).
pub const MEMORY_BYTES_PER_RECORD: u64 = 3_400;

/// Wall time per partition replica and simulated second without faults, in microseconds (the
/// runs with 2 faults measured 22 us to 60 us; see the module documentation).
pub const WALL_US_PER_REPLICA_SIM_S: u64 = 60;

/// Expected faults that double the partition replicas' cost: it is multiplied by
/// `1 + faults / FAULTS_PER_DOUBLING` (fitted to the measurements in the module documentation:
/// 9 faults made 1000 and 3000 partitions cost about 200 us per replica and simulated second,
/// against 60 us and 27 us with 2 faults).
pub const FAULTS_PER_DOUBLING: u64 = 6;

/// A run estimated to take longer than this (wall milliseconds per seed) gets a warning.
pub const WARN_WALL_MS: u64 = 60_000;

/// A run estimated to need more memory than this (bytes) gets a warning.
pub const WARN_MEMORY_BYTES: u64 = 2_000_000_000;

/// What one run of a scenario is estimated to cost (per seed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Simulated time of a run that needs no recovery wait: `duration_ms + heal_ms` plus the
    /// final drain ([`crate::world::DRAIN_MS`]), in milliseconds.
    pub simulated_ms: u64,
    /// Records the producers offer: `count x rate_per_sec` over `duration_ms + heal_ms` (they
    /// stop for the final drain), summed over `[[producers]]`.
    pub records_offered: u64,
    /// Partition replicas: `partitions x replication_factor`, summed over `[[topics]]`.
    pub partition_replicas: u64,
    /// Faults expected: `duration_ms` over the mean of `[faults] interval_ms` when the nemesis
    /// has kinds, plus the `[[faults.schedule]]` entries.
    pub faults_expected: u64,
    /// Estimated wall time the records cost, in milliseconds.
    pub records_wall_ms: u64,
    /// Estimated wall time the partition replicas cost over `simulated_ms`, in milliseconds.
    pub replicas_wall_ms: u64,
    /// Estimated peak memory, in bytes (records only: replicas without records are small).
    pub memory_bytes: u64,
}

impl Cost {
    /// The estimated wall time of one run, in milliseconds.
    pub fn wall_ms(&self) -> u64 {
        self.records_wall_ms.saturating_add(self.replicas_wall_ms)
    }
}

impl Scenario {
    /// The estimated cost of one run of this scenario (see [`Cost`] and the module
    /// documentation of `scenario::cost` for the measurements behind it).
    pub fn cost(&self) -> Cost {
        let offering_ms = self.duration_ms.saturating_add(self.heal_ms);
        let simulated_ms = offering_ms.saturating_add(crate::world::DRAIN_MS);
        let offered_per_s: f64 = self
            .producers
            .iter()
            .map(|p| p.count as f64 * p.rate_per_sec)
            .sum();
        let records_offered = (offered_per_s * offering_ms as f64 / 1000.0) as u64;
        let partition_replicas: u64 = self
            .topics
            .iter()
            .map(|t| t.partitions.max(0) as u64 * t.replication_factor.max(0) as u64)
            .sum();
        let records_wall_ms = records_offered.saturating_mul(WALL_US_PER_RECORD) / 1000;
        let mean_interval_ms = (self.faults.interval_ms[0] + self.faults.interval_ms[1]) / 2;
        let random_faults = if self.faults.kinds.is_empty() {
            0
        } else {
            self.duration_ms / mean_interval_ms.max(1)
        };
        let faults_expected = random_faults + self.faults.schedule.len() as u64;
        let replica_s = partition_replicas as f64 * simulated_ms as f64 / 1000.0;
        let faults_factor = 1.0 + faults_expected as f64 / FAULTS_PER_DOUBLING as f64;
        let replicas_wall_ms =
            (replica_s * WALL_US_PER_REPLICA_SIM_S as f64 * faults_factor / 1000.0) as u64;
        Cost {
            simulated_ms,
            records_offered,
            partition_replicas,
            faults_expected,
            records_wall_ms,
            replicas_wall_ms,
            memory_bytes: records_offered.saturating_mul(MEMORY_BYTES_PER_RECORD),
        }
    }

    /// Warnings about what this scenario will cost or how it will end, one sentence each,
    /// for `ksim` to print before it runs (the scenario is valid; these do not refuse it):
    /// - a run estimated to take over [`WARN_WALL_MS`] or [`WARN_MEMORY_BYTES`], naming the
    ///   cost drivers (records offered, partition replicas) with their numbers;
    /// - a topic no consumer can keep up with: every `[[consumers]]` entry that reads it
    ///   returns at most `max.poll.records` records per poll, one poll per
    ///   [`ksim_model::consumer::POLL_INTERVAL_MS`], fewer per second than the producers offer
    ///   to its topics, so it ends the run behind and `unseen` fails for what it did not read.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.cost_warning());
        out.extend(self.consumer_capacity_warnings());
        out
    }

    fn cost_warning(&self) -> Option<String> {
        let cost = self.cost();
        if cost.wall_ms() <= WARN_WALL_MS && cost.memory_bytes <= WARN_MEMORY_BYTES {
            return None;
        }
        // (wall ms, whether it is the memory driver too, text)
        let mut drivers: Vec<(u64, bool, String)> = Vec::new();
        if cost.records_offered > 0 {
            let per_entry: Vec<String> = self
                .producers
                .iter()
                .enumerate()
                .map(|(i, p)| format!("producers[{i}]: {} x {}/s", p.count, p.rate_per_sec))
                .collect();
            drivers.push((
                cost.records_wall_ms,
                cost.memory_bytes > WARN_MEMORY_BYTES,
                format!(
                    "the records offered, {} ({}) over {} s of workload and heal phase: about \
                     {} of wall time and {} of memory at {WALL_US_PER_RECORD} us and {} KB per \
                     record; lower `rate_per_sec`, `count` or `duration_ms` + `heal_ms`",
                    cost.records_offered,
                    per_entry.join(" + "),
                    (self.duration_ms + self.heal_ms) / 1000,
                    crate::cli::human_duration_ms(cost.records_wall_ms as f64),
                    human_bytes(cost.memory_bytes),
                    MEMORY_BYTES_PER_RECORD as f64 / 1000.0,
                ),
            ));
        }
        if cost.partition_replicas > 0 {
            let per_topic: Vec<String> = self
                .topics
                .iter()
                .map(|t| {
                    format!(
                        "{}: {} partitions x {} replicas",
                        t.name, t.partitions, t.replication_factor
                    )
                })
                .collect();
            drivers.push((
                cost.replicas_wall_ms,
                false,
                format!(
                    "the partition replicas, {} ({}) over {} s simulated with about {} faults: \
                     about {} of wall time at {WALL_US_PER_REPLICA_SIM_S} us per replica and \
                     simulated second, more with every fault; fewer `partitions`, a lower \
                     `replication_factor`, fewer faults or a shorter run",
                    cost.partition_replicas,
                    per_topic.join(", "),
                    cost.simulated_ms / 1000,
                    cost.faults_expected,
                    crate::cli::human_duration_ms(cost.replicas_wall_ms as f64),
                ),
            ));
        }
        // The biggest driver first; one below a fifth of the estimated wall time is not named
        // (unless it is what the memory goes to).
        drivers.sort_by(|a, b| b.0.cmp(&a.0));
        let total = cost.wall_ms().max(1);
        let named: Vec<String> = drivers
            .into_iter()
            .filter(|(ms, memory, _)| ms * 5 >= total || *memory)
            .map(|(_, _, text)| text)
            .collect();
        let memory = if cost.memory_bytes >= 100_000_000 {
            format!(" and {} of memory", human_bytes(cost.memory_bytes))
        } else {
            String::new()
        };
        Some(format!(
            "one run of this scenario is estimated to take {} of wall time{memory} per seed \
             (from measurements on a 2-core machine); the cost {} {}",
            crate::cli::human_duration_ms(cost.wall_ms() as f64),
            if named.len() == 1 {
                "driver is"
            } else {
                "drivers are"
            },
            named.join("; and ")
        ))
    }

    fn consumer_capacity_warnings(&self) -> Vec<String> {
        // Records offered per simulated second to each topic.
        let mut offered: BTreeMap<&str, f64> = BTreeMap::new();
        for p in &self.producers {
            for t in &p.topics {
                *offered.entry(t.as_str()).or_default() += p.count as f64 * p.rate_per_topic();
            }
        }
        // What each entry must read per second (every member reads every partition of its
        // topics: assign mode) against what its poll loop returns.
        let entries: Vec<(f64, u64)> = self
            .consumers
            .iter()
            .map(|c| {
                let demand: f64 = c
                    .topics
                    .iter()
                    .filter_map(|t| offered.get(t.as_str()))
                    .sum();
                (
                    demand,
                    crate::check::lag::read_capacity_per_sim_s(&c.config),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (topic, rate) in &offered {
            let readers: Vec<usize> = (0..self.consumers.len())
                .filter(|&i| self.consumers[i].topics.iter().any(|t| t == topic))
                .collect();
            if readers.is_empty() || readers.iter().any(|&i| entries[i].1 as f64 >= entries[i].0) {
                continue;
            }
            // The fastest reader, and how far behind it ends: producers offer through the heal
            // phase, so only the final drain is left to catch up.
            let &fastest = readers
                .iter()
                .max_by_key(|&&i| entries[i].1)
                .expect("a reader");
            let (demand, capacity) = entries[fastest];
            let offering_s = (self.duration_ms + self.heal_ms) as f64 / 1000.0;
            let drain_s = crate::world::DRAIN_MS as f64 / 1000.0;
            let behind = (demand - capacity as f64) * offering_s - capacity as f64 * drain_s;
            if behind <= 0.0 {
                continue;
            }
            let max_poll_records = self.consumers[fastest].config.max_poll_records;
            out.push(format!(
                "no consumer can keep up with topic `{topic}` ({rate}/s offered to it): \
                 consumers[{fastest}], the fastest reader, must read {demand}/s from its topics \
                 but its poll loop returns at most {capacity}/s (`max.poll.records` = \
                 {max_poll_records} per poll, one poll per {} ms of processing), so it will end \
                 the run about {} records behind and `unseen` will fail for the records it has \
                 not read (not lost: the report shows them as consumer lag); raise \
                 `max.poll.records` or offer fewer records",
                ksim_model::consumer::POLL_INTERVAL_MS,
                behind as u64,
            ));
        }
        out
    }
}

/// Bytes for people: `850 MB`, `3.1 GB` (decimal units).
fn human_bytes(bytes: u64) -> String {
    if bytes < 1_000_000_000 {
        format!("{} MB", bytes / 1_000_000)
    } else {
        format!("{:.1} GB", bytes as f64 / 1e9)
    }
}

/// `rate_per_sec` of a `[[producers]]` entry, refused above [`RATE_PER_SEC_MAX`].
pub(super) fn check_rate(
    ctx: &Ctx<'_>,
    raw: &Spanned<f64>,
    key: String,
) -> Result<f64, ScenarioError> {
    let rate = *raw.get_ref();
    if !(rate.is_finite() && rate > 0.0) {
        return Err(ctx.at(raw, key, "rate_per_sec must be a number above 0"));
    }
    if rate > RATE_PER_SEC_MAX {
        return Err(ctx.at(
            raw,
            key,
            format!(
                "rate_per_sec = {rate} is more than one producer can offer: at most {} records \
                 per simulated second per client (one Kafka producer thread tops out near \
                 820 000 records/s of 100 bytes in Kafka's own benchmark, and a run at a higher \
                 rate would never finish); several clients (`count`) offer more together",
                RATE_PER_SEC_MAX as u64
            ),
        ));
    }
    Ok(rate)
}
