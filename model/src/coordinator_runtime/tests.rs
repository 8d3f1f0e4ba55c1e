//! Unit tests of the coordinator runtime with a key-value shard: load by replay, writes
//! answered at commit, resignation before the commit, timeouts.

use super::*;

/// A shard that keeps the last value per key, as a compacted internal topic does.
#[derive(Default, Debug)]
struct Kv {
    values: BTreeMap<String, String>,
    replayed: Vec<Offset>,
}

#[derive(Clone, Debug, PartialEq)]
struct Put(String, String);

impl CoordinatorShard for Kv {
    type Record = Put;

    fn encode(r: &Put) -> KeyValue {
        (
            Some(r.0.clone().into_bytes()),
            Some(r.1.clone().into_bytes()),
        )
    }

    fn decode(r: &Record) -> Result<Option<Put>, String> {
        let key = r.key.as_ref().ok_or("no key")?;
        let Some(value) = &r.value else {
            return Ok(None);
        };
        let s = |b: &Vec<u8>| String::from_utf8(b.clone()).map_err(|e| e.to_string());
        Ok(Some(Put(s(key)?, s(value)?)))
    }

    fn replay(&mut self, offset: Offset, r: &Put) {
        self.values.insert(r.0.clone(), r.1.clone());
        self.replayed.push(offset);
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("__consumer_offsets", 7)
}

fn put(k: &str, v: &str) -> Put {
    Put(k.into(), v.into())
}

/// A log batch as the leader stores it: `records` at `base..`.
fn stored(base: i64, records: &[Put]) -> Vec<u8> {
    let kvs = records.iter().map(Kv::encode).collect();
    let mut b = RecordBatch::new(kvs, 0);
    b.base_offset = Offset(base);
    b.encode()
}

#[test]
fn a_new_leader_loads_the_state_by_replaying_the_log_from_its_start() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    assert_eq!(
        rt.latest(&tp()).err(),
        Some(CoordinatorError::NotCoordinator)
    );
    let log = [
        stored(0, &[put("g1", "a"), put("g2", "b")]),
        stored(2, &[put("g1", "c")]),
    ];
    let summary = rt.on_become_leader(tp(), LeaderEpoch(3), &log, Offset(2));
    assert_eq!(summary.records, 3);
    assert_eq!(summary.loaded_to, Offset(3));
    assert!(summary.skipped.is_empty());
    let latest = rt.latest(&tp()).unwrap();
    assert_eq!(latest.values["g1"], "c", "the last record per key wins");
    assert_eq!(latest.replayed, vec![Offset(0), Offset(1), Offset(2)]);
    // Offset 2 is above the HW: not yet committed.
    assert_eq!(rt.committed(&tp()).unwrap().values["g1"], "a");
    assert_eq!(rt.leader_epoch(&tp()), Some(LeaderEpoch(3)));
    assert!(rt.on_high_watermark(&tp(), Offset(3)).is_empty());
    assert_eq!(rt.committed(&tp()).unwrap().values["g1"], "c");
}

#[test]
fn a_write_is_answered_only_once_the_high_watermark_passes_its_last_record() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    rt.on_become_leader(tp(), LeaderEpoch(0), &[], Offset(0));
    let records = vec![put("g", "1"), put("h", "2")];
    let batch = rt.batch_for(&tp(), &records, 5).unwrap();
    assert_eq!(RecordBatch::decode(&batch).unwrap().0.records.len(), 2);
    assert!(rt.appended(&tp(), Offset(0), records, 41, 5_000).is_empty());
    // Applied at once to what later requests see, not to the committed state.
    assert_eq!(rt.latest(&tp()).unwrap().values["h"], "2");
    assert!(rt.committed(&tp()).unwrap().values.is_empty());
    assert_eq!(rt.pending_writes(&tp()), 1);
    // The HW reaching the last record is not enough: it must pass it.
    assert!(rt.on_high_watermark(&tp(), Offset(1)).is_empty());
    assert_eq!(rt.on_high_watermark(&tp(), Offset(2)), vec![41]);
    assert_eq!(rt.committed(&tp()).unwrap().values["h"], "2");
    assert_eq!(rt.pending_writes(&tp()), 0);
    // A later HW report lower than the last one changes nothing.
    assert!(rt.on_high_watermark(&tp(), Offset(1)).is_empty());
}

#[test]
fn a_write_already_below_the_high_watermark_commits_at_once() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    rt.on_become_leader(tp(), LeaderEpoch(0), &[], Offset(0));
    // A single-replica ISR: the leader's HW moved past the append before the runtime heard.
    rt.on_high_watermark(&tp(), Offset(1));
    assert_eq!(
        rt.appended(&tp(), Offset(0), vec![put("g", "1")], 7, 5_000),
        vec![7]
    );
}

#[test]
fn a_leader_that_resigns_before_the_commit_answers_its_waiting_writes_not_coordinator() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    rt.on_become_leader(
        tp(),
        LeaderEpoch(0),
        &[stored(0, &[put("g", "0")])],
        Offset(1),
    );
    rt.appended(&tp(), Offset(1), vec![put("g", "1")], 1, 5_000);
    rt.appended(&tp(), Offset(2), vec![put("g", "2")], 2, 5_000);
    assert_eq!(rt.on_high_watermark(&tp(), Offset(2)), vec![1]);
    // Leadership moves before offset 2 commits: its write is answered NOT_COORDINATOR.
    assert_eq!(rt.on_resign(&tp()), vec![2]);
    assert!(!rt.hosts(&tp()));
    assert_eq!(
        rt.latest(&tp()).err(),
        Some(CoordinatorError::NotCoordinator)
    );
    assert_eq!(
        rt.batch_for(&tp(), &[put("g", "3")], 0).err(),
        Some(CoordinatorError::NotCoordinator)
    );
    // A late HW report for a partition no longer hosted completes nothing.
    assert!(rt.on_high_watermark(&tp(), Offset(3)).is_empty());
    // The new leader kept offsets 0..=1 only (offset 2 was truncated away): its load sees
    // exactly the records that survived.
    let mut next: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    next.on_become_leader(
        tp(),
        LeaderEpoch(1),
        &[stored(0, &[put("g", "0")]), stored(1, &[put("g", "1")])],
        Offset(2),
    );
    assert_eq!(next.committed(&tp()).unwrap().values["g"], "1");
}

#[test]
fn writes_past_their_deadline_time_out_but_their_records_stay_applied() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    rt.on_become_leader(tp(), LeaderEpoch(0), &[], Offset(0));
    rt.appended(&tp(), Offset(0), vec![put("g", "1")], 1, 5_000);
    rt.appended(&tp(), Offset(1), vec![put("g", "2")], 2, 6_000);
    assert!(rt.expire(4_999).is_empty());
    assert_eq!(rt.expire(5_000), vec![1]);
    assert_eq!(rt.latest(&tp()).unwrap().values["g"], "2");
    // The timed-out write's records commit later, but nobody waits for them any more.
    assert_eq!(rt.on_high_watermark(&tp(), Offset(2)), vec![2]);
    assert_eq!(rt.committed(&tp()).unwrap().values["g"], "2");
}

#[test]
fn records_the_shard_cannot_read_are_skipped_and_reported() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    let mut b = RecordBatch::new(
        vec![(None, Some(b"x".to_vec())), (Some(b"k".to_vec()), None)],
        0,
    );
    b.base_offset = Offset(4);
    let summary = rt.on_become_leader(tp(), LeaderEpoch(0), &[b.encode()], Offset(6));
    // The keyless record is unreadable; the tombstone is a kind the shard does not keep.
    assert_eq!(summary.records, 0);
    assert_eq!(summary.skipped, vec![(Offset(4), "no key".to_string())]);
    assert_eq!(summary.loaded_to, Offset(6));
}

#[test]
#[should_panic(expected = "below an applied record")]
fn an_append_below_an_applied_record_is_refused() {
    let mut rt: CoordinatorRuntime<Kv, u32> = CoordinatorRuntime::new();
    rt.on_become_leader(tp(), LeaderEpoch(0), &[], Offset(0));
    rt.appended(&tp(), Offset(3), vec![put("g", "1")], 1, 5_000);
    rt.appended(&tp(), Offset(2), vec![put("g", "2")], 2, 5_000);
}
