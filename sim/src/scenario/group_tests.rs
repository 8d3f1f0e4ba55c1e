//! The loader's bad input for consumer groups (issue 13 item 8), each refused at the
//! `FILE:LINE:COL` of the offending value with Kafka's words where Kafka has them: an unknown
//! assignor, two assignors of one name, `heartbeat.interval.ms` not below
//! `session.timeout.ms`, `processing_ms` reversed, an unknown `commit`, and `seek_to` on a
//! group entry.

use super::*;

/// A valid scenario with one consumer group; its config is a table, one key a line, so that
/// every edit has a line of its own.
const GROUP: &str = r#"[scenario]
name = "group"
duration_ms = 20000
seeds = [1]
expect = "ok"

[cluster]
brokers = 3
controller = "zk"

[[topics]]
name = "events"
partitions = 3
replication_factor = 3

[[producers]]
topic = "events"
rate_per_sec = 10
config = { acks = "all" }

[[consumers]]
group = "orders"
members = 2
topics = ["events"]
processing_ms = [5, 50]
commit = "sync"

[consumers.config]
"partition.assignment.strategy" = "cooperative-sticky"
"enable.auto.commit" = false
"auto.offset.reset" = "earliest"
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 1000
"#;

const FILE: &str = "scenarios/group.toml";

/// 1-based line and column of the last `needle` in `text`.
fn locate(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the edited text"));
    let line = text[..at].matches('\n').count() + 1;
    let col = text[..at].rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

/// Replaces `from` by `to` in [`GROUP`] and returns the load error's text, checking that it
/// starts with `FILE:LINE:COL: ` where `at` (a substring of `to`) starts in the edited text.
fn refused(from: &str, to: &str, at: &str) -> String {
    assert!(GROUP.contains(from), "test edit: {from:?} not in GROUP");
    let text = GROUP.replacen(from, to, 1);
    let e = parse(&text, FILE).expect_err("bad input must be refused");
    assert_eq!(e.kind, ScenarioErrorKind::Invalid, "{e}");
    let edit = GROUP.find(from).expect("checked");
    let within = to.find(at).expect("`at` is part of `to`");
    let (line, col) = locate(&text[..edit + within + at.len()], at);
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{FILE}:{line}:{col}: ")),
        "expected {FILE}:{line}:{col}: ..., got {shown}"
    );
    shown
}

#[test]
fn the_group_scenario_loads() {
    let s = parse(GROUP, FILE).unwrap();
    assert_eq!(s.consumers[0].group.as_deref(), Some("orders"));
    assert_eq!(s.consumers[0].processing_ms, Some((5, 50)));
}

#[test]
fn an_unknown_assignor_has_kafkas_class_not_found_words() {
    let e = refused(
        "\"cooperative-sticky\"",
        "\"com.example.FancyAssignor\"",
        "\"com.example.FancyAssignor\"",
    );
    assert!(
        e.ends_with(
            "consumers[0].config.\"partition.assignment.strategy\": com.example.FancyAssignor \
             ClassNotFoundException exception occurred (ksim has: range, roundrobin, sticky, \
             cooperative-sticky, RangeAssignor, RoundRobinAssignor, StickyAssignor, \
             CooperativeStickyAssignor (optionally prefixed by org.apache.kafka.clients.consumer.))"
        ),
        "{e}"
    );
    // In a list, the unknown entry is named.
    let e = refused(
        "\"cooperative-sticky\"",
        "[\"range\", \"Sticky\"]",
        "[\"range\", \"Sticky\"]",
    );
    assert!(
        e.contains(": Sticky ClassNotFoundException exception occurred (ksim has: "),
        "{e}"
    );
}

#[test]
fn two_assignors_of_one_name_have_kafkas_words() {
    let e = refused(
        "\"cooperative-sticky\"",
        "\"range, org.apache.kafka.clients.consumer.RangeAssignor\"",
        "\"range, org",
    );
    assert!(
        e.ends_with(
            "The assignor name: 'range' is used in more than one assignor: \
             org.apache.kafka.clients.consumer.RangeAssignor, \
             org.apache.kafka.clients.consumer.RangeAssignor"
        ),
        "{e}"
    );
}

#[test]
fn heartbeat_not_below_the_session_timeout_has_kafkas_words() {
    // Kafka's consumer constructor (Heartbeat): "Heartbeat must be set lower than the session
    // timeout". Placed at the heartbeat value when the entry sets it...
    let e = refused(
        "\"heartbeat.interval.ms\" = 1000",
        "\"heartbeat.interval.ms\" = 6000",
        "6000",
    );
    assert!(
        e.contains(
            "consumers[0].config.\"heartbeat.interval.ms\": Heartbeat must be set lower than the \
             session timeout: heartbeat.interval.ms = 6000 is not below session.timeout.ms = 6000"
        ),
        "{e}"
    );
    // ... else at the session timeout, which fell to or below the default heartbeat (3000).
    let text = GROUP.replacen("\"heartbeat.interval.ms\" = 1000\n", "", 1);
    let e = parse(&text.replacen("= 6000", "= 3000", 1), FILE)
        .unwrap_err()
        .to_string();
    let (line, col) = locate(&text, "6000");
    assert!(
        e.starts_with(&format!("{FILE}:{line}:{col}: consumers[0].config.\"session.timeout.ms\": Heartbeat must be set lower than the session timeout: heartbeat.interval.ms = 3000 is not below session.timeout.ms = 3000")),
        "{e}"
    );
}

#[test]
fn processing_ms_reversed() {
    let e = refused("[5, 50]", "[50, 5]", "[50, 5]");
    assert!(
        e.ends_with("consumers[0].processing_ms: processing_ms [50, 5] is reversed: write [min, max] with min <= max"),
        "{e}"
    );
    let e = refused("[5, 50]", "[5]", "[5]");
    assert!(e.contains("processing_ms must be [min, max]"), "{e}");
}

/// `processing_change` (an application that slows down at a given time) loads in time order.
#[test]
fn processing_change_loads_in_time_order() {
    let text = GROUP.replacen(
        "processing_ms = [5, 50]\n",
        "processing_ms = [5, 50]\nprocessing_change = [{ at_ms = 8000, processing_ms = [2500, 3000] }, { at_ms = 15000, processing_ms = [5, 50] }]\n",
        1,
    );
    let s = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.consumers[0].processing_change,
        vec![
            ProcessingChangeSpec {
                at_ms: 8000,
                processing_ms: (2500, 3000)
            },
            ProcessingChangeSpec {
                at_ms: 15000,
                processing_ms: (5, 50)
            },
        ]
    );
    assert!(parse(GROUP, FILE).unwrap().consumers[0]
        .processing_change
        .is_empty());
}

#[test]
fn processing_change_bad_input() {
    let change = |s: &str| format!("processing_ms = [5, 50]\nprocessing_change = [{s}]\n");
    let from = "processing_ms = [5, 50]\n";
    // Reversed range, at the range.
    let e = refused(
        from,
        &change("{ at_ms = 8000, processing_ms = [3000, 2500] }"),
        "[3000, 2500]",
    );
    assert!(
        e.ends_with("consumers[0].processing_change[0].processing_ms: processing_ms [3000, 2500] is reversed: write [min, max] with min <= max"),
        "{e}"
    );
    // Out of time order, at the second at_ms.
    let e = refused(
        from,
        &change(
            "{ at_ms = 8000, processing_ms = [1, 2] }, { at_ms = 7000, processing_ms = [1, 2] }",
        ),
        "7000",
    );
    assert!(
        e.ends_with("consumers[0].processing_change[1].at_ms: at_ms 7000 is not after the previous change's at_ms 8000: list the changes in time order"),
        "{e}"
    );
    // After the end of the run (duration_ms 20000 + the default heal_ms 10000).
    let e = refused(
        from,
        &change("{ at_ms = 30000, processing_ms = [1, 2] }"),
        "30000",
    );
    assert!(
        e.ends_with("consumers[0].processing_change[0].at_ms: at_ms 30000 must be in [start_ms, duration_ms + heal_ms) = [0, 30000)"),
        "{e}"
    );
    // An unknown key inside an entry is refused by name.
    let text = GROUP.replacen(from, &change("{ at_ms = 8000, processing = [1, 2] }"), 1);
    let e = parse(&text, FILE).expect_err("unknown key").to_string();
    assert!(e.contains("processing"), "{e}");
}

#[test]
fn an_unknown_commit_value() {
    let e = refused("\"sync\"", "\"sometimes\"", "\"sometimes\"");
    assert!(
        e.ends_with("consumers[0].commit: unknown commit \"sometimes\": expected one of \"auto\", \"sync\", \"async\", \"before-processing\", \"none\""),
        "{e}"
    );
}

#[test]
fn seek_to_on_a_group_entry_is_not_supported() {
    let e = refused(
        "group = \"orders\"\n",
        "group = \"orders\"\nseek_to = { partition = 0, offset = 0, at_ms = 5000 }\n",
        "\"orders\"",
    );
    assert!(
        e.contains("consumers[0].group: not supported: seek_to on a consumer group entry"),
        "{e}"
    );
}

#[test]
fn enable_auto_commit_true_on_a_group_entry_loads() {
    // The entry's `group` is its group.id while its config is parsed, so Kafka's refusal of
    // `enable.auto.commit = true` without a group id does not apply (issue 13: it used to be
    // refused with "default group id (null)").
    let text = GROUP
        .replacen(
            "\"enable.auto.commit\" = false",
            "\"enable.auto.commit\" = true",
            1,
        )
        .replacen("commit = \"sync\"", "commit = \"auto\"", 1);
    let s = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.consumers[0].config.enable_auto_commit);
    assert_eq!(s.consumers[0].config.group_id.as_deref(), Some("orders"));
    assert_eq!(s.consumers[0].commit, CommitMode::Auto);
    // A group.id written in the table that agrees with `group` is accepted too.
    let text = text.replacen(
        "[consumers.config]\n",
        "[consumers.config]\n\"group.id\" = \"orders\"\n",
        1,
    );
    assert!(parse(&text, FILE).is_ok());
}

#[test]
fn enable_auto_commit_true_without_any_group_is_still_refused() {
    // No `group` and no group.id: Kafka's words, at the value.
    let text = GROUP
        .replacen("group = \"orders\"\n", "", 1)
        .replacen("processing_ms = [5, 50]\n", "", 1)
        .replacen("commit = \"sync\"\n", "", 1)
        .replacen(
            "\"partition.assignment.strategy\" = \"cooperative-sticky\"\n",
            "",
            1,
        )
        .replacen(
            "\"enable.auto.commit\" = false",
            "\"enable.auto.commit\" = true",
            1,
        );
    let e = parse(&text, FILE).expect_err("no group id").to_string();
    let (line, col) = locate(&text, "true");
    assert!(
        e.starts_with(&format!("{FILE}:{line}:{col}: ")),
        "expected {FILE}:{line}:{col}: ..., got {e}"
    );
    assert!(
        e.contains(
            "enable.auto.commit cannot be set to true when default group id (null) is used."
        ),
        "{e}"
    );
}
