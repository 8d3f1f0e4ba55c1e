//! Part of section 3 of `report.md`, *the verdict*: **consumer lag at the end of the run**,
//! shown only when a consumer ended behind. For each such consumer, how many records it was
//! behind per partition (the high watermark minus its position, Kafka's `records-lag`; see
//! [`crate::check::lag`]) and how fast it read against how fast the producers wrote, so that a
//! reader of an `unseen` failure sees at once whether the records were lost or merely not read
//! yet.

use super::*;
use crate::check::lag::ConsumerLag;

/// Writes the lag paragraph and table; nothing when no consumer ended behind.
/// `lags` is what [`RunResult::consumer_lag`] returns.
pub(super) fn write_lag(out: &mut String, lags: &[ConsumerLag], stats: &crate::run::Stats) {
    let lags: Vec<&ConsumerLag> = lags.iter().filter(|l| l.is_behind()).collect();
    if lags.is_empty() {
        return;
    }
    out.push_str("### Consumer lag at the end of the run\n\n");
    let acked_per_sim_s = stats.acked_per_sim_s;
    for l in &lags {
        let _ = write!(
            out,
            "`{}` ended **{} record{} behind** the high watermark. Records below a high \
             watermark are committed and still in the log: these were not lost, the consumer \
             had not read them yet. It read at most {} records in one simulated second",
            l.consumer,
            l.records_behind,
            if l.records_behind == 1 { "" } else { "s" },
            l.max_read_per_sim_s,
        );
        if let Some(capacity) = l.read_capacity_per_sim_s {
            let max_poll_records = capacity * ksim_model::consumer::POLL_INTERVAL_MS / 1000;
            let _ = write!(
                out,
                "; its poll loop returns at most {capacity} (`max.poll.records` = \
                 {max_poll_records} per poll, one poll per {} ms of processing)",
                ksim_model::consumer::POLL_INTERVAL_MS,
            );
        }
        if at_limit(l.max_read_per_sim_s, l.read_capacity_per_sim_s) {
            let _ = write!(
                out,
                ". It read at its limit: it was slower than the producers, whose records were \
                 acknowledged at {acked_per_sim_s:.1} per simulated second over the run"
            );
        }
        out.push_str(".\n\n");
    }
    out.push_str(
        "| consumer | partition | position | high watermark | records behind |\n\
         |---|---|---|---|---|\n",
    );
    for l in &lags {
        for p in l.partitions.iter().filter(|p| p.records_behind > 0) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                l.consumer, p.tp, p.position, p.high_watermark, p.records_behind
            );
        }
    }
    out.push('\n');
    if lags
        .iter()
        .any(|l| at_limit(l.max_read_per_sim_s, l.read_capacity_per_sim_s))
    {
        out.push_str(
            "What would have let it keep up: a larger `max.poll.records`, or fewer records \
             offered (`rate_per_sec`, `count`). A longer `heal_ms` does not help: the producers \
             offer records through the heal phase, and only the final drain is left to catch \
             up.\n\n",
        );
    }
}

/// Whether a consumer read at its poll loop's limit in some simulated second: at least 90% of
/// `capacity` (the rest is seconds split by a poll that straddles them).
fn at_limit(max_read_per_sim_s: u64, capacity: Option<u64>) -> bool {
    capacity.is_some_and(|c| c > 0 && max_read_per_sim_s * 10 >= c * 9)
}

/// What the lag changes in the lesson of a failed check.
pub(super) enum LagLesson {
    /// Every unread record is still in the log: this replaces the durability advice.
    Replace(Vec<String>),
    /// Some are: this paragraph goes before the durability advice, which is about the rest.
    Preface(String),
}

/// The lesson of an `unseen` failure with records still in the log above a lagging
/// consumer's position (`details.not_yet_read`, out of `details.count`): not loss, so no
/// durability setting applies to them. `None` for any other violation.
pub(super) fn lag_lesson(v: &Violation) -> Option<LagLesson> {
    if v.check != "unseen" {
        return None;
    }
    let not_yet_read = v.details.get("not_yet_read").and_then(Value::as_u64)?;
    let count = v.details.get("count").and_then(Value::as_u64)?;
    if not_yet_read == 0 {
        return None;
    }
    if not_yet_read < count {
        return Some(LagLesson::Preface(format!(
            "Of these {count} records, {not_yet_read} are still in the log above where a \
             consumer ended (see \"Consumer lag at the end of the run\"): they were not lost, \
             only not read yet. The other {} are what the advice below is about.",
            count - not_yet_read
        )));
    }
    let slow = v
        .details
        .get("lag")
        .and_then(Value::as_array)
        .is_some_and(|lags| {
            lags.iter().any(|l| {
                let read = l.get("max_read_per_sim_s").and_then(Value::as_u64);
                let capacity = l.get("read_capacity_per_sim_s").and_then(Value::as_u64);
                read.is_some_and(|r| at_limit(r, capacity))
            })
        });
    let mut paragraphs = vec![
        "Here nothing was lost: every unread record is still in the log, above where a \
         consumer ended the run (see \"Consumer lag at the end of the run\"), so no durability \
         setting applies."
            .to_string(),
    ];
    if slow {
        paragraphs.push(
            "The consumer read at its limit and was slower than the producers. What would have \
             prevented it: let it keep up, with a larger `max.poll.records` or fewer records \
             offered (`rate_per_sec`, `count`)."
                .to_string(),
        );
    } else {
        paragraphs.push(
            "The consumer did not read at its limit, so something stopped it: see its \
             `consumer-error` events in the timeline."
                .to_string(),
        );
    }
    Some(LagLesson::Replace(paragraphs))
}
