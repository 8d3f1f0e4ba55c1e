//! Section 5 of `report.md`, *statistics*: messages, fsyncs, operations, elections, simulated
//! and wall-clock time (the one line of the report that is not deterministic, marked as such).

use super::*;

// ---------------------------------------------------------------------------------------------
// 5. Statistics
// ---------------------------------------------------------------------------------------------

pub(super) fn write_statistics(out: &mut String, run: &RunResult, s: &crate::run::Stats) {
    out.push_str("## Statistics\n\n");
    let open = s
        .records_sent
        .saturating_sub(s.records_acked + s.records_failed + s.records_indeterminate);
    out.push_str("| | |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| records offered (send invoked) | {} |",
        s.records_sent
    );
    let _ = writeln!(out, "| acknowledged (`ok`) | {} |", s.records_acked);
    let _ = writeln!(
        out,
        "| failed for certain (`fail`) | {} |",
        s.records_failed
    );
    let _ = writeln!(
        out,
        "| indeterminate (`info`, e.g. timed out) | {} |",
        s.records_indeterminate
    );
    let _ = writeln!(
        out,
        "| still unanswered at the end (treated as indeterminate) | {open} |"
    );
    let _ = writeln!(
        out,
        "| acknowledged per simulated second | {:.1} |",
        s.acked_per_sim_s
    );
    let _ = writeln!(
        out,
        "| time to acknowledgement, median / 99th percentile | {} ms / {} ms |",
        s.ack_latency_ms_p50, s.ack_latency_ms_p99
    );
    // Share of the brokers' simulated time spent waiting for fsyncs (per mille, integer
    // arithmetic so the text is the same on every machine).
    let broker_ms = s.simulated_ms * run.scenario.cluster.brokers.max(1) as u64;
    let fsync_permille = (s.fsync_ms * 1000).checked_div(broker_ms).unwrap_or(0);
    let _ = writeln!(
        out,
        "| log fsyncs, simulated time spent in them | {} / {} ms ({}.{}% of the brokers' time) |",
        s.fsyncs,
        s.fsync_ms,
        fsync_permille / 10,
        fsync_permille % 10
    );
    if s.produce_refused_not_enough_replicas > 0 {
        let _ = writeln!(
            out,
            "| produce requests refused with NOT_ENOUGH_REPLICAS (ISR below `min.insync.replicas`; the producer retries) | {} |",
            s.produce_refused_not_enough_replicas
        );
    }
    let _ = writeln!(out, "| records returned by polls | {} |", s.records_polled);
    let _ = writeln!(out, "| messages between nodes | {} |", s.messages);
    let _ = writeln!(out, "| fault actions | {} |", s.faults);
    let _ = writeln!(
        out,
        "| internal events logged | {} |",
        run.output.events.len()
    );
    let _ = writeln!(out, "| simulated time | {} ms |", s.simulated_ms);
    let _ = writeln!(
        out,
        "| history hash (SHA-256 of `history.jsonl`) | `{}` |",
        run.history_hash
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "Wall-clock time (varies between runs and machines; not part of the deterministic \
         output): {} ms.\n",
        s.wall_ms
    );
}
