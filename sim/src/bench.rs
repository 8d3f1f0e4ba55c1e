//! The bare madsim baseline for `ksim bench`.
//!
//! [`baseline_pingpong`] measures what plain madsim TCP costs per message on this machine, in
//! the same process as our own runs, so `ksim bench` can report our overhead against it.
//! Wall-clock reads (`std::time::Instant`) happen only outside `block_on`, where madsim does not
//! intercept the clock; this code is outside the simulation's determinism on purpose.

use madsim::net::{TcpListener, TcpStream};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Result of one baseline run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineResult {
    /// Frames carried, each counted one way (a round trip is two messages).
    pub messages: u64,
    /// Simulated time the ping-pong took, in milliseconds.
    pub simulated_ms: f64,
    /// Wall time of the whole simulation (runtime build, node setup, ping-pong), in microseconds.
    pub wall_us: u64,
    /// `wall_us / messages`.
    pub wall_us_per_message: f64,
    /// CPU time of the simulation's thread, in microseconds.
    pub cpu_us: u64,
    /// `cpu_us / messages`.
    pub cpu_us_per_message: f64,
    /// Simulated time per wall time (how much faster than real time).
    pub simulated_per_wall_ratio: f64,
}

const PORT: u16 = 9000;
const PAYLOAD: usize = 64;

async fn write_frame(s: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    s.write_all(&(payload.len() as u32).to_be_bytes()).await?;
    s.write_all(payload).await?;
    s.flush().await // madsim sends bytes only on flush
}

async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    buf.resize(u32::from_be_bytes(len) as usize, 0);
    s.read_exact(buf).await?;
    Ok(())
}

async fn echo_server(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        madsim::task::spawn(async move {
            let mut buf = Vec::new();
            while read_frame(&mut s, &mut buf).await.is_ok() {
                if write_frame(&mut s, &buf).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(_) => madsim::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

/// Client on node 3: `messages` one-way frames, ping-ponged alternately with nodes 1 and 2.
/// Returns (messages carried, simulated ms of the ping-pong, excluding connection setup).
async fn client(messages: u64, servers: [SocketAddr; 2]) -> (u64, f64) {
    let mut streams = [connect(servers[0]).await, connect(servers[1]).await];
    let start = madsim::time::Instant::now();
    let payload: Vec<u8> = (0..PAYLOAD as u8).collect();
    let mut buf = Vec::with_capacity(PAYLOAD);
    let mut carried = 0;
    let mut i = 0;
    while carried + 2 <= messages {
        let s = &mut streams[i % 2];
        write_frame(s, &payload).await.expect("ping");
        read_frame(s, &mut buf).await.expect("pong");
        assert_eq!(buf, payload);
        carried += 2;
        i += 1;
    }
    if carried < messages {
        // An odd count: one last frame one way (its echo is not awaited).
        write_frame(&mut streams[i % 2], &payload)
            .await
            .expect("ping");
        carried += 1;
    }
    (carried, start.elapsed().as_secs_f64() * 1000.0)
}

/// Bare madsim TCP ping-pong between 3 nodes (10.0.0.1-3): nodes 1 and 2 echo length-prefixed
/// frames, node 3 sends `messages` frames (~64 bytes) alternately to them over two persistent
/// streams. Runs on a fresh OS thread with its own runtime.
pub fn baseline_pingpong(seed: u64, messages: u64) -> BaselineResult {
    std::thread::Builder::new()
        .name(format!("ksim-bench-{seed}"))
        .spawn(move || {
            let wall = std::time::Instant::now();
            let cpu = thread_cpu_us();
            let rt =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
            let servers = [SocketAddr::new(ip(1), PORT), SocketAddr::new(ip(2), PORT)];
            for (n, addr) in [(1u8, servers[0]), (2, servers[1])] {
                let node = rt.create_node().name(format!("echo-{n}")).ip(ip(n)).build();
                node.spawn(echo_server(addr));
            }
            let client_node = rt.create_node().name("client").ip(ip(3)).build();
            let (carried, simulated_ms) = rt.block_on(async move {
                client_node
                    .spawn(client(messages, servers))
                    .await
                    .expect("client task")
            });
            drop(rt);
            let wall_us = (wall.elapsed().as_micros() as u64).max(1);
            let cpu_us = thread_cpu_us().saturating_sub(cpu).max(1);
            BaselineResult {
                messages: carried,
                simulated_ms,
                wall_us,
                wall_us_per_message: wall_us as f64 / carried.max(1) as f64,
                cpu_us,
                cpu_us_per_message: cpu_us as f64 / carried.max(1) as f64,
                simulated_per_wall_ratio: simulated_ms * 1000.0 / wall_us as f64,
            }
        })
        .expect("spawn bench thread")
        .join()
        .expect("bench thread panicked")
}

/// One configuration of the producer-heavy bench ([`producer_heavy`]), measured over repeated
/// runs of the same seed (the same simulated work each time; only the timing varies).
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerBenchResult {
    /// `linger.ms` of the producer.
    pub linger_ms: u64,
    /// `batch.size` in bytes.
    pub batch_size: u32,
    /// Records the producer offered (`invoke`s).
    pub records: u64,
    /// Records acknowledged with an offset (`ok`).
    pub acked: u64,
    /// Record batches the leaders appended for the producer (`produce-appended` events): the
    /// batching the producer achieved is `records / batches`.
    pub batches: u64,
    /// Messages between all nodes (produce, replication fetches, consumer fetches, ...).
    pub messages: u64,
    pub simulated_ms: u64,
    /// Median wall time of the simulation alone (checkers excluded), in milliseconds.
    pub wall_ms: u64,
    /// Median CPU time of the simulation's thread, in microseconds.
    pub cpu_us: u64,
    /// How many runs the medians are taken over.
    pub repeat: u32,
    /// Whether the run met its expectation (`ok`: nothing lost, duplicated or reordered).
    pub ok: bool,
}

impl ProducerBenchResult {
    /// Records offered per wall second.
    pub fn records_per_wall_s(&self) -> f64 {
        self.records as f64 * 1000.0 / self.wall_ms.max(1) as f64
    }
    /// Wall microseconds per record offered.
    pub fn wall_us_per_record(&self) -> f64 {
        self.wall_ms as f64 * 1000.0 / self.records.max(1) as f64
    }
    /// CPU microseconds per record offered.
    pub fn cpu_us_per_record(&self) -> f64 {
        self.cpu_us as f64 / self.records.max(1) as f64
    }
    /// Records per appended batch.
    pub fn records_per_batch(&self) -> f64 {
        self.records as f64 / self.batches.max(1) as f64
    }
}

/// The producer-heavy bench scenario: 3 brokers, one topic of 6 partitions replicated 3 times,
/// one producer offering `rate_per_sec` records per simulated second with 16 keys,
/// `acks=all`, idempotence, `compression.type=compression`, the given `linger.ms` and
/// `batch.size`, and one consumer reading everything; no faults.
pub fn producer_heavy_scenario(
    linger_ms: u64,
    batch_size: u32,
    compression: &str,
    rate_per_sec: u32,
    duration_ms: u64,
) -> crate::scenario::Scenario {
    let text = format!(
        r#"[scenario]
name = "bench-producer-heavy"
title = "Producer-heavy bench"
description = "One producer at {rate_per_sec} records per simulated second through batching and compression."
references = ["KIP-480", "KIP-110"]
duration_ms = {duration_ms}
heal_ms = 2000
seeds = [1]
expect = "ok"

[cluster]
brokers = 3

[[topics]]
name = "events"
partitions = 6
replication_factor = 3

[[producers]]
topic = "events"
rate_per_sec = {rate_per_sec}
keys = 16
config = {{ acks = "all", "enable.idempotence" = true, "linger.ms" = {linger_ms}, "batch.size" = {batch_size}, "compression.type" = "{compression}" }}

[[consumers]]
topics = ["events"]
config = {{ "auto.offset.reset" = "earliest", "enable.auto.commit" = false }}
"#
    );
    crate::scenario::parse(&text, "bench-producer-heavy.toml").expect("the bench scenario parses")
}

/// One row of `ksim bench`'s scale table: the default scenario with one value changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRow {
    /// What changed, for the table (`partitions = 300`).
    pub label: String,
    /// Partitions of the scenario's topic.
    pub partitions: u32,
    /// Brokers in the cluster.
    pub brokers: u32,
    /// Records per simulated second offered by each producer.
    pub rate_per_sec: u64,
    /// Simulated time of the run (including the heal and drain phases), in ms.
    pub simulated_ms: u64,
    /// Records the producers offered.
    pub records: u64,
    /// Network messages carried.
    pub messages: u64,
    /// CPU time of the simulation alone, in µs (the thread's, see [`thread_cpu_us`]).
    pub sim_cpu_us: u64,
    /// CPU time of the checks and of writing the outputs (report.md, the JSONL files), in µs.
    pub check_cpu_us: u64,
    /// Whether the run met its expectation.
    pub expected: bool,
}

impl ScaleRow {
    /// CPU seconds of simulation per simulated second.
    pub fn cpu_s_per_simulated_s(&self) -> f64 {
        self.sim_cpu_us as f64 / 1000.0 / self.simulated_ms.max(1) as f64
    }
    /// Simulated seconds per CPU second of simulation (x real time on one core).
    pub fn times_real_time(&self) -> f64 {
        1.0 / self.cpu_s_per_simulated_s().max(1e-12)
    }
    /// Simulation CPU µs per record offered.
    pub fn sim_us_per_record(&self) -> f64 {
        self.sim_cpu_us as f64 / self.records.max(1) as f64
    }
    /// Checks and outputs CPU µs per record offered.
    pub fn check_us_per_record(&self) -> f64 {
        self.check_cpu_us as f64 / self.records.max(1) as f64
    }
}

/// The rows of the scale table, each the default scenario (`base`, as TOML text) with one value
/// changed: partitions 3, 30, 300, 3000; brokers 3, 9, 27; records per second per producer
/// 100, 1000, 10 000. Each runs `duration_ms` of workload and faults, then `duration_ms / 2` of
/// heal (the default's proportions), with seed 1. Scripted faults (`[[faults.schedule]]`) move
/// with the duration: each `at_ms` is scaled by `duration_ms / base duration_ms`. Each
/// consumer's `max.poll.records` is raised to a tenth of the records offered per second (twice
/// what its 50 ms poll loop needs; at least Kafka's 500), so that the rate rows meet the
/// default's expectation instead of ending with the consumer behind.
///
/// # Errors
/// When `base` is not a scenario with one topic, a `[cluster] brokers` and producers with
/// `rate_per_sec` (the default scenario is).
pub fn scale_scenarios(
    base: &str,
    duration_ms: u64,
) -> Result<Vec<(String, crate::scenario::Scenario)>, String> {
    let base: toml::Table = base.parse().map_err(|e| format!("default scenario: {e}"))?;
    let variant = |name: &str, partitions: u32, brokers: u32, rate: u64| {
        let mut t = base.clone();
        let set = |t: &mut toml::Table, path: &[&str], v: toml::Value| -> Option<()> {
            let (last, parents) = path.split_last()?;
            let mut cur = t;
            for key in parents {
                cur = match cur.get_mut(*key)? {
                    toml::Value::Table(inner) => inner,
                    toml::Value::Array(items) => items.first_mut()?.as_table_mut()?,
                    _ => return None,
                };
            }
            cur.insert(last.to_string(), v);
            Some(())
        };
        let missing = || format!("default scenario: cannot set the {name} row's values");
        // Scripted faults keep their place in the fault phase: `at_ms` scales with the
        // duration (the default's crash at 14 s of 40 s runs at 35 % of every row's phase).
        let base_ms = t
            .get("scenario")
            .and_then(|s| s.get("duration_ms"))
            .and_then(|d| d.as_integer())
            .filter(|d| *d > 0)
            .ok_or_else(missing)? as u64;
        if let Some(schedule) = t
            .get_mut("faults")
            .and_then(|f| f.get_mut("schedule"))
            .and_then(|s| s.as_array_mut())
        {
            for step in schedule.iter_mut().filter_map(|s| s.as_table_mut()) {
                if let Some(at) = step.get("at_ms").and_then(|a| a.as_integer()) {
                    let scaled = (at.max(0) as u64).saturating_mul(duration_ms) / base_ms;
                    step.insert("at_ms".into(), (scaled as i64).into());
                }
            }
        }
        set(
            &mut t,
            &["scenario", "name"],
            toml::Value::String(format!("bench-{name}")),
        )
        .ok_or_else(missing)?;
        set(
            &mut t,
            &["scenario", "duration_ms"],
            (duration_ms as i64).into(),
        )
        .ok_or_else(missing)?;
        set(
            &mut t,
            &["scenario", "heal_ms"],
            ((duration_ms / 2) as i64).into(),
        )
        .ok_or_else(missing)?;
        set(&mut t, &["cluster", "brokers"], (brokers as i64).into()).ok_or_else(missing)?;
        set(
            &mut t,
            &["topics", "partitions"],
            (partitions as i64).into(),
        )
        .ok_or_else(missing)?;
        let mut offered = 0u64;
        for p in t
            .get_mut("producers")
            .and_then(|p| p.as_array_mut())
            .ok_or_else(missing)?
        {
            let p = p.as_table_mut().ok_or_else(missing)?;
            let count = p.get("count").and_then(|c| c.as_integer()).unwrap_or(1);
            offered += rate * count.max(0) as u64;
            p.insert("rate_per_sec".into(), (rate as i64).into());
        }
        // The consumer must keep up, or the row measures lag rather than a run that meets the
        // default's expectation: its poll loop returns `max.poll.records` per 50 ms of
        // processing (the scenario loader warns when that falls short), so each row gives it
        // twice the offered rate, never less than Kafka's default of 500.
        let poll_records = (offered / 10).max(500) as i64;
        if let Some(consumers) = t.get_mut("consumers").and_then(|c| c.as_array_mut()) {
            for c in consumers.iter_mut().filter_map(|c| c.as_table_mut()) {
                let config = c
                    .entry("config")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let Some(config) = config.as_table_mut() {
                    config.insert("max.poll.records".into(), poll_records.into());
                }
            }
        }
        let text = toml::to_string(&t).map_err(|e| e.to_string())?;
        let file = format!("bench-{name}.toml");
        crate::scenario::parse(&text, &file)
            .map(|sc| (name.to_string(), sc))
            .map_err(|e| format!("{file}: {e}"))
    };
    let mut rows = Vec::new();
    for p in [3, 30, 300, 3000] {
        rows.push(variant(&format!("partitions-{p}"), p, 3, 100)?);
    }
    for b in [9, 27] {
        rows.push(variant(&format!("brokers-{b}"), 3, b, 100)?);
    }
    for r in [1000, 10_000] {
        rows.push(variant(&format!("rate-{r}"), 3, 3, r)?);
    }
    Ok(rows)
}

/// Runs one scale-table scenario with seed 1: the simulation (timed on its own thread's CPU
/// clock), then the checks and the outputs written to a temporary directory (removed after),
/// timed on this thread's.
pub fn scale_row(label: &str, scenario: &crate::scenario::Scenario) -> ScaleRow {
    let before = thread_cpu_us();
    let r = crate::run::run(scenario, 1);
    let dir = std::env::temp_dir().join(format!(
        "ksim-bench-{}-{}",
        std::process::id(),
        scenario.name
    ));
    let _ = r.write_outputs(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let total = thread_cpu_us().saturating_sub(before);
    ScaleRow {
        label: label.to_string(),
        partitions: scenario
            .topics
            .iter()
            .map(|t| t.partitions.max(0) as u32)
            .sum(),
        brokers: scenario.cluster.brokers.max(0) as u32,
        rate_per_sec: scenario
            .producers
            .first()
            .map_or(0, |p| p.rate_per_sec as u64),
        simulated_ms: r.output.simulated_ms,
        records: r.stats().records_sent,
        messages: r.output.messages,
        sim_cpu_us: r.output.cpu_us,
        // The simulation runs on a thread of its own (`r.output.cpu_us` is that thread's);
        // this thread did the checks and wrote the outputs.
        check_cpu_us: total,
        expected: r.expected,
    }
}

/// The median of `values` (the lower middle one for an even count); 0 when empty.
pub fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// Runs [`producer_heavy_scenario`] `repeat` times (seed 1: the same simulated run each time)
/// and reports the median wall and CPU times. The simulation alone is timed: checkers run once,
/// for the verdict.
pub fn producer_heavy(
    linger_ms: u64,
    batch_size: u32,
    compression: &str,
    rate_per_sec: u32,
    duration_ms: u64,
    repeat: u32,
) -> ProducerBenchResult {
    use ksim_model::event::{Event, OpType, OpValue};
    let scenario = producer_heavy_scenario(
        linger_ms,
        batch_size,
        compression,
        rate_per_sec,
        duration_ms,
    );
    let repeat = repeat.max(1);
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 1..repeat {
        let out = crate::world::simulate(&scenario, 1);
        walls.push(out.wall_ms);
        cpus.push(out.cpu_us);
    }
    let r = crate::run::run(&scenario, 1);
    walls.push(r.output.wall_ms);
    cpus.push(r.output.cpu_us);
    let sends = r
        .output
        .history
        .iter()
        .filter(|h| matches!(h.op.value, OpValue::Send { .. }));
    let (mut records, mut acked) = (0, 0);
    for h in sends {
        match h.op.op_type {
            OpType::Invoke => records += 1,
            OpType::Ok => acked += 1,
            _ => {}
        }
    }
    let batches = r
        .output
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::ProduceAppended { .. }))
        .count() as u64;
    ProducerBenchResult {
        linger_ms,
        batch_size,
        records,
        acked,
        batches,
        messages: r.output.messages,
        simulated_ms: r.output.simulated_ms,
        wall_ms: median(walls),
        cpu_us: median(cpus),
        repeat,
        ok: r.expected,
    }
}

/// The consumer-group case of `ksim bench` ([`group_case`]): its cost per network message
/// next to bare madsim's.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBenchResult {
    /// Seeds run (1..=seeds, one after another).
    pub seeds: u64,
    /// Network messages carried, over all seeds.
    pub messages: u64,
    /// Simulated time, over all seeds, in ms.
    pub simulated_ms: u64,
    /// Wall time of the simulations alone (checkers excluded), in ms.
    pub wall_ms: u64,
    /// CPU time of the simulations' threads, in µs.
    pub cpu_us: u64,
    /// Rebalances completed (`group-assignment-completed` events), over all seeds.
    pub rebalances: u64,
    /// Records the members processed (`ok` `process` operations' records), over all seeds.
    pub processed: u64,
    /// Seeds whose run did not meet the scenario's expectation (`ok`).
    pub unexpected: u64,
}

impl GroupBenchResult {
    /// Wall µs per network message.
    pub fn wall_us_per_message(&self) -> f64 {
        self.wall_ms as f64 * 1000.0 / self.messages.max(1) as f64
    }
    /// CPU µs per network message.
    pub fn cpu_us_per_message(&self) -> f64 {
        self.cpu_us as f64 / self.messages.max(1) as f64
    }
    /// Simulated seconds per CPU second.
    pub fn simulated_per_cpu_s(&self) -> f64 {
        self.simulated_ms as f64 * 1000.0 / self.cpu_us.max(1) as f64
    }
}

/// The consumer-group bench scenario: 3 brokers, `events` with 6 partitions replicated 3
/// times, one idempotent `acks=all` producer at 200 records per simulated second, and group
/// `bench` of 3 members with `cooperative-sticky` (KIP-429), `commitSync()` after processing
/// each poll (1 to 5 ms of processing); random broker faults (kill, restart, partition) plus a
/// scripted kill of `client:consumer-1` at 40 % of `duration_ms` and its restart at 60 %, so
/// the group rebalances twice more (the member's session expires, then it rejoins). Random
/// client faults (`client-kill`, `client-pause`, `client-leave`) are not used yet.
pub fn group_case_scenario(duration_ms: u64) -> crate::scenario::Scenario {
    let kill_ms = duration_ms * 2 / 5;
    let restart_ms = duration_ms * 3 / 5;
    let text = format!(
        r#"[scenario]
name = "bench-consumer-group"
title = "Consumer-group bench"
description = "Three cooperative-sticky members through broker faults and a member crash."
references = ["KIP-429"]
duration_ms = {duration_ms}
heal_ms = 15000
seeds = [1]
expect = "ok"

[cluster]
brokers = 3

[cluster.broker_config]
"min.insync.replicas" = 2
"group.initial.rebalance.delay.ms" = 1000

[[topics]]
name = "events"
partitions = 6
replication_factor = 3

[[producers]]
topic = "events"
rate_per_sec = 200
keys = 12
config = {{ acks = "all", "enable.idempotence" = true }}

[[consumers]]
group = "bench"
members = 3
topics = ["events"]
processing_ms = [1, 5]
commit = "sync"
config = {{ "partition.assignment.strategy" = "cooperative-sticky", "enable.auto.commit" = false, "auto.offset.reset" = "earliest", "session.timeout.ms" = 6000, "heartbeat.interval.ms" = 1000 }}

[faults]
kinds = ["kill", "restart", "partition"]
interval_ms = [2000, 6000]
duration_ms = [500, 3000]

[[faults.schedule]]
at_ms = {kill_ms}
kill = "client:consumer-1"

[[faults.schedule]]
at_ms = {restart_ms}
restart = "client:consumer-1"
"#
    );
    crate::scenario::parse(&text, "bench-consumer-group.toml")
        .expect("the group bench scenario parses")
}

/// Runs [`group_case_scenario`] for seeds `1..=seeds`, one after another, as `ksim bench`
/// runs the default scenario: the simulation timed on its own thread, the checks run for the
/// verdict only.
pub fn group_case(seeds: u64, duration_ms: u64) -> GroupBenchResult {
    use ksim_model::event::{Event, OpType, OpValue};
    let scenario = group_case_scenario(duration_ms);
    let mut r = GroupBenchResult {
        seeds,
        messages: 0,
        simulated_ms: 0,
        wall_ms: 0,
        cpu_us: 0,
        rebalances: 0,
        processed: 0,
        unexpected: 0,
    };
    for seed in 1..=seeds {
        let run = crate::run::run(&scenario, seed);
        r.messages += run.output.messages;
        r.simulated_ms += run.output.simulated_ms;
        r.wall_ms += run.output.wall_ms;
        r.cpu_us += run.output.cpu_us;
        r.unexpected += u64::from(!run.expected);
        r.rebalances += run
            .output
            .events
            .iter()
            .filter(|e| matches!(e.event, Event::GroupAssignmentCompleted { .. }))
            .count() as u64;
        r.processed += run
            .output
            .history
            .iter()
            .filter(|h| h.op.op_type == OpType::Ok)
            .map(|h| match &h.op.value {
                OpValue::Process { records, .. } => records.len() as u64,
                _ => 0,
            })
            .sum::<u64>();
    }
    r
}

/// `ksim bench`'s group-case table: the group case's figures beside bare madsim's `base`, in
/// the main table's layout, and the per-message cost ratio.
pub fn group_case_table(r: &GroupBenchResult, base: &BaselineResult) -> String {
    let rows: [(&str, String, String); 6] = [
        (
            "simulated s per CPU s",
            format!("{:.1}", r.simulated_per_cpu_s()),
            format!(
                "{:.1}",
                base.simulated_ms * 1000.0 / base.cpu_us.max(1) as f64
            ),
        ),
        (
            "wall µs per network message",
            format!("{:.2}", r.wall_us_per_message()),
            format!("{:.2}", base.wall_us_per_message),
        ),
        (
            "CPU µs per network message",
            format!("{:.2}", r.cpu_us_per_message()),
            format!("{:.2}", base.cpu_us_per_message),
        ),
        (
            "network messages",
            r.messages.to_string(),
            base.messages.to_string(),
        ),
        ("rebalances", r.rebalances.to_string(), "-".into()),
        ("records processed", r.processed.to_string(), "-".into()),
    ];
    let mut out = format!(
        "\nconsumer group: 3 members, cooperative-sticky, commitSync after processing, broker \
         faults and a scripted member kill and restart, seeds 1..={}\n",
        r.seeds
    );
    out.push_str(&format!(
        "{:<30}{:>16}{:>16}\n",
        "", "ksim group", "bare madsim"
    ));
    for (name, ours, bare) in rows {
        out.push_str(&format!("{name:<30}{ours:>16}{bare:>16}\n"));
    }
    out.push_str(&format!(
        "per-message cost: {:.1}x bare madsim in wall time, {:.1}x in CPU time\n",
        r.wall_us_per_message() / base.wall_us_per_message.max(1e-9),
        r.cpu_us_per_message() / base.cpu_us_per_message.max(1e-9)
    ));
    if r.unexpected > 0 {
        out.push_str(&format!(
            "note: {} of {} group seeds were not as the scenario expects (ok)\n",
            r.unexpected, r.seeds
        ));
    }
    out
}

/// The transactional case of `ksim bench` ([`txn_case`]): one workload run twice, with
/// idempotent producers and with transactional ones, so the per-record cost of transactions
/// (AddPartitionsToTxn, EndTxn, the markers, read_committed's LSO) is measured against the
/// idempotent producer at the same rate, and per network message against bare madsim.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnBenchResult {
    /// Seeds run per mode (1..=seeds, one after another).
    pub seeds: u64,
    /// `[idempotent, transactional]` figures, summed over the seeds.
    pub modes: [TxnModeFigures; 2],
}

/// One mode's figures in [`TxnBenchResult`], summed over its seeds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TxnModeFigures {
    /// Network messages carried.
    pub messages: u64,
    /// Simulated time, in ms.
    pub simulated_ms: u64,
    /// CPU time of the simulations' threads (checks excluded), in µs.
    pub cpu_us: u64,
    /// Records acknowledged to the producers (for transactions: sends of committed
    /// transactions, as the run's statistics count them).
    pub records_acked: u64,
    /// Transactions committed (`ok` `txn` operations); 0 for the idempotent mode.
    pub transactions: u64,
    /// Seeds whose run did not meet the scenario's expectation (`ok`).
    pub unexpected: u64,
}

impl TxnModeFigures {
    /// CPU µs per network message.
    pub fn cpu_us_per_message(&self) -> f64 {
        self.cpu_us as f64 / self.messages.max(1) as f64
    }
    /// CPU µs per acknowledged record.
    pub fn cpu_us_per_record(&self) -> f64 {
        self.cpu_us as f64 / self.records_acked.max(1) as f64
    }
}

/// The transactional bench scenario: 3 brokers (`min.insync.replicas` 2), `events` with 3
/// partitions replicated 3 times, two `acks=all` idempotent producers at 200 records per
/// simulated second each, one read_committed consumer, random broker faults (kill, restart,
/// partition). With `transactional`, the producers get `transactional.id` `bench-tx-<i>` and
/// write transactions of 5 to 20 records, 10 % of them aborted by the application; nothing
/// else differs.
pub fn txn_case_scenario(duration_ms: u64, transactional: bool) -> crate::scenario::Scenario {
    let (name, producer_extra) = if transactional {
        (
            "bench-transactional",
            "config = { acks = \"all\", \"enable.idempotence\" = true, \"transactional.id\" = \"bench-tx\" }\n\
             transaction = { records = [5, 20], abort_percent = 10 }\n",
        )
    } else {
        (
            "bench-idempotent",
            "config = { acks = \"all\", \"enable.idempotence\" = true }\n",
        )
    };
    let text = format!(
        r#"[scenario]
name = "{name}"
title = "Transactional bench ({name})"
description = "Two producers at 200 records/s through broker faults, read by a read_committed consumer."
references = ["KIP-98"]
duration_ms = {duration_ms}
heal_ms = 15000
seeds = [1]
expect = "ok"

[cluster]
brokers = 3

[cluster.broker_config]
"min.insync.replicas" = 2

[[topics]]
name = "events"
partitions = 3
replication_factor = 3

[[producers]]
topic = "events"
count = 2
rate_per_sec = 200
keys = 12
{producer_extra}
[[consumers]]
members = 1
topics = ["events"]
config = {{ "auto.offset.reset" = "earliest", "enable.auto.commit" = false, "isolation.level" = "read_committed" }}

[faults]
kinds = ["kill", "restart", "partition"]
interval_ms = [2000, 6000]
duration_ms = [500, 3000]
"#
    );
    crate::scenario::parse(&text, &format!("{name}.toml"))
        .expect("the transactional bench scenario parses")
}

/// Runs [`txn_case_scenario`] idempotent then transactional, for seeds `1..=seeds` each, the
/// simulation timed on its own thread as for the default scenario.
pub fn txn_case(seeds: u64, duration_ms: u64) -> TxnBenchResult {
    use ksim_model::event::{OpType, OpValue};
    let mut modes = [TxnModeFigures::default(); 2];
    for (i, transactional) in [false, true].into_iter().enumerate() {
        let scenario = txn_case_scenario(duration_ms, transactional);
        let m = &mut modes[i];
        for seed in 1..=seeds {
            let run = crate::run::run(&scenario, seed);
            m.messages += run.output.messages;
            m.simulated_ms += run.output.simulated_ms;
            m.cpu_us += run.output.cpu_us;
            m.unexpected += u64::from(!run.expected);
            m.records_acked += run.stats().records_acked;
            m.transactions += run
                .output
                .history
                .iter()
                .filter(|h| h.op.op_type == OpType::Ok && matches!(h.op.value, OpValue::Txn { .. }))
                .count() as u64;
        }
    }
    TxnBenchResult { seeds, modes }
}

/// `ksim bench`'s transactional table: both modes and bare madsim's `base`, and the ratios.
pub fn txn_case_table(r: &TxnBenchResult, base: &BaselineResult) -> String {
    let [idem, txn] = &r.modes;
    let rows: [(&str, String, String, String); 6] = [
        (
            "CPU µs per acknowledged record",
            format!("{:.1}", idem.cpu_us_per_record()),
            format!("{:.1}", txn.cpu_us_per_record()),
            "-".into(),
        ),
        (
            "CPU µs per network message",
            format!("{:.2}", idem.cpu_us_per_message()),
            format!("{:.2}", txn.cpu_us_per_message()),
            format!("{:.2}", base.cpu_us_per_message),
        ),
        (
            "network messages",
            idem.messages.to_string(),
            txn.messages.to_string(),
            base.messages.to_string(),
        ),
        (
            "records acknowledged",
            idem.records_acked.to_string(),
            txn.records_acked.to_string(),
            "-".into(),
        ),
        (
            "transactions committed",
            "-".into(),
            txn.transactions.to_string(),
            "-".into(),
        ),
        (
            "messages per record",
            format!(
                "{:.2}",
                idem.messages as f64 / idem.records_acked.max(1) as f64
            ),
            format!(
                "{:.2}",
                txn.messages as f64 / txn.records_acked.max(1) as f64
            ),
            "-".into(),
        ),
    ];
    let mut out = format!(
        "\ntransactions: 2 producers x 200 records/s, transactions of 5-20 records (10 % aborted) \
         against the same producers idempotent only, read_committed consumer, broker faults, \
         seeds 1..={}\n",
        r.seeds
    );
    out.push_str(&format!(
        "{:<32}{:>14}{:>14}{:>14}\n",
        "", "idempotent", "transactional", "bare madsim"
    ));
    for (name, a, b, c) in rows {
        out.push_str(&format!("{name:<32}{a:>14}{b:>14}{c:>14}\n"));
    }
    out.push_str(&format!(
        "per-record cost of transactions: {:.2}x the idempotent producer's; per-message cost: \
         {:.1}x bare madsim in CPU time (idempotent: {:.1}x)\n",
        txn.cpu_us_per_record() / idem.cpu_us_per_record().max(1e-9),
        txn.cpu_us_per_message() / base.cpu_us_per_message.max(1e-9),
        idem.cpu_us_per_message() / base.cpu_us_per_message.max(1e-9),
    ));
    let unexpected = idem.unexpected + txn.unexpected;
    if unexpected > 0 {
        out.push_str(&format!(
            "note: {unexpected} of {} runs were not as the scenario expects (ok)\n",
            2 * r.seeds
        ));
    }
    out
}

/// CPU time (user + system) the calling thread has used, in microseconds
/// (`getrusage(RUSAGE_THREAD)`; 0 where that is not available). Read outside `block_on` only:
/// it is the harness's measurement, never part of a simulation.
pub fn thread_cpu_us() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage writes one `rusage` into the zeroed struct we own.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } == 0 {
            let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
            return us(usage.ru_utime) + us(usage.ru_stime);
        }
    }
    0
}

/// Peak resident set size of this process in KiB (`VmHWM` in /proc/self/status), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_baseline_pingpong_runs() {
        let r = baseline_pingpong(1, 2000);
        eprintln!("{r:?}");
        assert_eq!(r.messages, 2000);
        assert!(r.simulated_ms > 0.0, "{r:?}");
        assert!(r.wall_us > 0 && r.wall_us_per_message > 0.0 && r.simulated_per_wall_ratio > 0.0);
        let odd = baseline_pingpong(2, 3);
        assert_eq!(odd.messages, 3);
    }

    #[test]
    fn bench_baseline_simulated_time_is_deterministic() {
        let a = baseline_pingpong(7, 200);
        let b = baseline_pingpong(7, 200);
        assert_eq!(a.simulated_ms, b.simulated_ms);
    }

    #[test]
    fn bench_producer_heavy_runs_and_batches() {
        // A short run: 2000 records/s for 1 simulated second, linger 5 ms, zstd.
        let r = producer_heavy(5, 16_384, "zstd", 2000, 1000, 2);
        eprintln!("{r:?}");
        assert!(r.ok, "{r:?}");
        assert!(r.records >= 1800, "{r:?}");
        assert!(r.acked > 0 && r.wall_ms > 0 && r.repeat == 2);
        // Several records per appended batch: the producer batches.
        assert!(r.batches > 0 && r.records_per_batch() > 1.0, "{r:?}");
    }

    /// The workload offers its rate exactly: a producer at 10 000 records per simulated second
    /// offers 10 records in every millisecond from its first send to its last. Regression: an
    /// actor timer that came due while a message was handled fired 1 ms late (madsim never
    /// sleeps less than 1 ms), and the re-armed tick lost a period: at linger.ms=0 about one
    /// millisecond in five offered nothing.
    #[test]
    fn a_busy_producer_ticks_every_millisecond() {
        use ksim_model::event::{OpType, OpValue};
        let scenario = producer_heavy_scenario(0, 16_384, "lz4", 10_000, 1000);
        let r = crate::run::run(&scenario, 1);
        let mut per_ms: std::collections::BTreeMap<u64, u32> = Default::default();
        for h in &r.output.history {
            if h.op.op_type == OpType::Invoke && matches!(h.op.value, OpValue::Send { .. }) {
                *per_ms.entry(h.time_ms).or_default() += 1;
            }
        }
        let (first, last) = (
            *per_ms.keys().next().unwrap(),
            *per_ms.keys().last().unwrap(),
        );
        assert!(last - first > 2000, "{first}..{last}");
        let gaps: Vec<u64> = (first..=last)
            .filter(|t| per_ms.get(t) != Some(&10))
            .collect();
        assert!(gaps.is_empty(), "milliseconds without 10 sends: {gaps:?}");
    }

    #[test]
    fn the_scale_table_changes_one_value_per_row_of_the_default_scenario() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/default.toml"
        ))
        .expect("the default scenario");
        let rows = scale_scenarios(&text, 4000).expect("rows");
        let shape: Vec<(String, i32, i32, f64, u64)> = rows
            .iter()
            .map(|(label, sc)| {
                (
                    label.clone(),
                    sc.topics[0].partitions,
                    sc.cluster.brokers,
                    sc.producers[0].rate_per_sec,
                    sc.duration_ms,
                )
            })
            .collect();
        assert_eq!(shape.len(), 8);
        assert_eq!(shape[0], ("partitions-3".into(), 3, 3, 100.0, 4000));
        assert_eq!(shape[3], ("partitions-3000".into(), 3000, 3, 100.0, 4000));
        assert_eq!(shape[5], ("brokers-27".into(), 3, 27, 100.0, 4000));
        assert_eq!(shape[7], ("rate-10000".into(), 3, 3, 10_000.0, 4000));
        assert!(rows.iter().all(|(_, sc)| sc.heal_ms == 2000));
        // The default's scripted crash at 14 s of 40 s lands at 35 % of the 4 s phase.
        assert!(rows.iter().all(|(_, sc)| sc
            .faults
            .schedule
            .iter()
            .all(|step| step.at_ms < sc.duration_ms)));
        // The consumer keeps up with every row: 2 producers x 10 000/s want 1000 per 50 ms poll.
        let poll: Vec<u32> = rows
            .iter()
            .map(|(_, sc)| sc.consumers[0].config.max_poll_records)
            .collect();
        assert_eq!(poll, [500, 500, 500, 500, 500, 500, 500, 2000]);
        assert!(scale_scenarios("not = [toml", 4000).is_err());
        assert!(scale_scenarios("[scenario]\nname = \"x\"\n", 4000).is_err());
    }

    #[test]
    fn bench_group_case_runs_rebalances_and_prints_its_cost() {
        let r = group_case(1, 30_000);
        eprintln!("{r:?}");
        assert_eq!(r.unexpected, 0, "{r:?}");
        // The first join, the crashed member's removal, its rejoin (two cooperative rounds).
        assert!(r.rebalances >= 3, "{r:?}");
        assert!(r.processed > 0 && r.messages > 0 && r.cpu_us > 0, "{r:?}");
        let base = baseline_pingpong(1, 200);
        let table = group_case_table(&r, &base);
        eprintln!("{table}");
        assert!(table.contains("CPU µs per network message"), "{table}");
        assert!(table.contains("x in CPU time"), "{table}");
    }

    #[test]
    fn bench_txn_case_runs_transactions_and_prints_their_cost() {
        let r = txn_case(1, 10_000);
        eprintln!("{r:?}");
        let [idem, txn] = &r.modes;
        assert_eq!((idem.unexpected, txn.unexpected), (0, 0), "{r:?}");
        assert!(
            idem.records_acked > 1000 && txn.records_acked > 500,
            "{r:?}"
        );
        assert_eq!(idem.transactions, 0);
        assert!(txn.transactions > 20, "{r:?}");
        let base = BaselineResult {
            messages: 100,
            simulated_ms: 1.0,
            wall_us: 100,
            wall_us_per_message: 1.0,
            cpu_us: 100,
            cpu_us_per_message: 1.0,
            simulated_per_wall_ratio: 10.0,
        };
        let table = txn_case_table(&r, &base);
        assert!(table.contains("CPU µs per acknowledged record"), "{table}");
        assert!(
            table.contains("per-record cost of transactions:"),
            "{table}"
        );
    }

    #[test]
    fn bench_median_and_thread_cpu_time() {
        assert_eq!(median(vec![5, 1, 9]), 5);
        assert_eq!(median(vec![4, 2]), 2);
        assert_eq!(median(Vec::new()), 0);
        if cfg!(target_os = "linux") {
            // The kernel accounts thread CPU time in ticks: spin until it moves (bounded).
            let before = thread_cpu_us();
            let wall = std::time::Instant::now();
            let mut x = 0u64;
            while thread_cpu_us() == before && wall.elapsed().as_secs() < 10 {
                for i in 0..100_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(i);
                }
                std::hint::black_box(x);
            }
            assert!(thread_cpu_us() > before);
        }
    }

    #[test]
    fn bench_peak_rss_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
