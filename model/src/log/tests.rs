use super::*;
use crate::disk::{Disk, MemDisk};

fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

/// A producer batch with `n` records whose values are `"{tag}-{i}"`.
fn batch(tag: &str, n: usize) -> Vec<u8> {
    let records = (0..n)
        .map(|i| (None, Some(format!("{tag}-{i}").into_bytes())))
        .collect();
    RecordBatch::new(records, 1_000).encode()
}

fn bl(log: &PartitionLog) -> Vec<LogBatch> {
    log.batches().cloned().collect()
}

fn apply(disk: &mut MemDisk, ops: &mut Vec<DiskOp>) {
    for op in ops.drain(..) {
        disk.apply(&op).unwrap();
    }
}

fn values(log: &PartitionLog) -> Vec<(i64, String)> {
    log.records()
        .into_iter()
        .map(|(o, v, _)| (o.0, String::from_utf8(v.unwrap()).unwrap()))
        .collect()
}

/// Three batches at epoch 0: offsets 0..=1, 2..=4, 5..=5.
fn three_batches(disk: &mut MemDisk) -> PartitionLog {
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
    assert_eq!(
        log.append_as_leader(&batch("a", 2), LeaderEpoch(0), &mut ops)
            .unwrap(),
        (Offset(0), Offset(1))
    );
    assert_eq!(
        log.append_as_leader(&batch("b", 3), LeaderEpoch(0), &mut ops)
            .unwrap(),
        (Offset(2), Offset(4))
    );
    assert_eq!(
        log.append_as_leader(&batch("c", 1), LeaderEpoch(0), &mut ops)
            .unwrap(),
        (Offset(5), Offset(5))
    );
    apply(disk, &mut ops);
    log
}

#[test]
fn append_and_read() {
    let mut disk = MemDisk::default();
    let log = three_batches(&mut disk);
    assert_eq!(log.dir(), "events-0");
    assert_eq!(log.log_start_offset(), Offset(0));
    assert_eq!(log.log_end_offset(), Offset(6));
    assert_eq!(log.unflushed_messages(), 6);
    let file = &disk.files["events-0/00000000000000000000.log"];
    assert_eq!(file.len() as u64, log.size_bytes());
    let concat: Vec<u8> = bl(&log).iter().flat_map(|b| b.bytes.clone()).collect();
    assert_eq!(&concat, file);
    // Offsets and epoch are stamped into the stored bytes, and the CRC still holds.
    let h = record::read_header(&bl(&log)[1].bytes).unwrap();
    assert_eq!(
        (h.base_offset, h.partition_leader_epoch),
        (Offset(2), LeaderEpoch(0))
    );
    record::verify_crc(&bl(&log)[1].bytes).unwrap();

    let all = log.read(Offset(0), Offset(6), u32::MAX).unwrap();
    assert_eq!(all.len(), 3);
    let from_middle = log.read(Offset(3), Offset(6), u32::MAX).unwrap();
    assert_eq!(
        from_middle.len(),
        2,
        "starts with the batch containing offset 3"
    );
    assert_eq!(from_middle[0], bl(&log)[1].bytes);
    assert!(log.read(Offset(6), Offset(6), u32::MAX).unwrap().is_empty());
    assert_eq!(
        log.read(Offset(7), Offset(7), 100),
        Err(LogError::OffsetOutOfRange {
            offset: Offset(7),
            log_start: Offset(0),
            log_end: Offset(6)
        })
    );
    assert!(matches!(
        log.read(Offset(-1), Offset(6), 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(values(&log)[2], (2, "b-0".to_string()));
    assert_eq!(values(&log).len(), 6);
    assert_eq!(log.epoch_of_last_batch(), LeaderEpoch(0));
}

#[test]
fn read_respects_max_offset_and_max_bytes() {
    let mut disk = MemDisk::default();
    let log = three_batches(&mut disk);
    // max_offset (exclusive): a batch is returned only if it ends below it.
    assert_eq!(log.read(Offset(0), Offset(4), u32::MAX).unwrap().len(), 1);
    assert_eq!(log.read(Offset(0), Offset(5), u32::MAX).unwrap().len(), 2);
    assert!(log.read(Offset(0), Offset(1), u32::MAX).unwrap().is_empty());
    // max_bytes: at least one batch, then only while it fits.
    let sizes: Vec<u32> = bl(&log).iter().map(|b| b.bytes.len() as u32).collect();
    assert_eq!(log.read(Offset(0), Offset(6), 1).unwrap().len(), 1);
    assert_eq!(
        log.read(Offset(0), Offset(6), sizes[0] + sizes[1])
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        log.read(Offset(0), Offset(6), sizes[0] + sizes[1] - 1)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn recover_round_trips_a_clean_log() {
    let mut disk = MemDisk::default();
    let log = three_batches(&mut disk);
    let mut ops = Vec::new();
    let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(
        report,
        RecoveryReport {
            recovered_segments: 1,
            ..RecoveryReport::default()
        }
    );
    assert!(ops.is_empty(), "nothing to repair: {ops:?}");
    assert_eq!(bl(&back), bl(&log));
    assert_eq!(back.epoch_entries(), log.epoch_entries());
    assert_eq!(back.unflushed_messages(), 0);
    // An unrelated partition's files are ignored; a missing log is empty.
    let (other, _) =
        PartitionLog::recover(&TopicPartition::new("events", 1), &disk.files, &mut ops);
    assert_eq!(other.log_end_offset(), Offset(0));
    assert!(ops.is_empty());
}

#[test]
fn recover_discards_a_torn_tail() {
    let mut disk = MemDisk::default();
    let log = three_batches(&mut disk);
    let file = "events-0/00000000000000000000.log".to_string();
    let last_len = bl(&log)[2].bytes.len();
    let full = disk.files[&file].len();
    disk.files.get_mut(&file).unwrap().truncate(full - 5);
    let mut ops = Vec::new();
    let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(
        report,
        RecoveryReport {
            discarded_bytes: (last_len - 5) as u64,
            discarded_batches: 1,
            recovered_segments: 1,
        }
    );
    assert_eq!(back.log_end_offset(), Offset(5));
    assert_eq!(
        ops,
        vec![
            DiskOp::Truncate {
                file: file.clone(),
                len: (full - last_len) as u64
            },
            DiskOp::Sync { file: file.clone() }
        ]
    );
    apply(&mut disk, &mut ops);
    assert_eq!(disk.files[&file].len() as u64, back.size_bytes());
    // A torn header (fewer than 61 bytes) is discarded too.
    let keep = full - last_len + 20;
    let mut files = disk.files.clone();
    files.insert(
        file.clone(),
        [&disk.files[&file][..], &bl(&log)[2].bytes[..20]].concat(),
    );
    let (back2, report2) = PartitionLog::recover(&tp(), &files, &mut ops);
    assert_eq!(
        report2,
        RecoveryReport {
            discarded_bytes: 20,
            discarded_batches: 1,
            recovered_segments: 1,
        }
    );
    assert_eq!(back2.size_bytes() as usize, keep - 20);
}

#[test]
fn recover_stops_at_a_flipped_crc_byte() {
    let mut disk = MemDisk::default();
    let log = three_batches(&mut disk);
    let file = "events-0/00000000000000000000.log".to_string();
    let second = &bl(&log)[1];
    let flip_at = second.position as usize + 40; // inside the CRC-covered header
    disk.files.get_mut(&file).unwrap()[flip_at] ^= 0x01;
    let mut ops = Vec::new();
    let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(back.log_end_offset(), Offset(2));
    assert_eq!(report.discarded_batches, 2);
    assert_eq!(
        report.discarded_bytes,
        (bl(&log)[1].bytes.len() + bl(&log)[2].bytes.len()) as u64
    );
    assert_eq!(
        ops[0],
        DiskOp::Truncate {
            file,
            len: second.position
        }
    );
}

#[test]
fn truncate_to_mid_batch_rounds_down() {
    let mut disk = MemDisk::default();
    let mut log = three_batches(&mut disk);
    let mut ops = Vec::new();
    log.assign_epoch_start(LeaderEpoch(1), Offset(6), &mut ops);
    log.append_as_leader(&batch("d", 2), LeaderEpoch(1), &mut ops)
        .unwrap(); // 6..=7
    apply(&mut disk, &mut ops);
    assert_eq!(
        log.epoch_entries(),
        &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(1), Offset(6))]
    );

    assert_eq!(
        log.truncate_to(Offset(8), &mut ops),
        Offset(8),
        "at the LEO: no-op"
    );
    assert!(ops.is_empty());
    assert_eq!(
        log.truncate_to(Offset(3), &mut ops),
        Offset(2),
        "3 is inside 2..=4"
    );
    assert_eq!(log.log_end_offset(), Offset(2));
    assert_eq!(log.epoch_entries(), &[(LeaderEpoch(0), Offset(0))]);
    let pos = log.size_bytes();
    assert_eq!(
        ops[0],
        DiskOp::Truncate {
            file: log.segment_file(),
            len: pos
        }
    );
    assert!(matches!(&ops[1], DiskOp::WriteAtomic { data, .. } if data == b"0\n1\n0 0\n"));
    apply(&mut disk, &mut ops);
    let (back, report) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(report.discarded_bytes, 0);
    assert_eq!(back, log.clone_without_flush_state());
    // Appending continues at the new LEO.
    assert_eq!(
        log.append_as_leader(&batch("e", 1), LeaderEpoch(2), &mut ops)
            .unwrap(),
        (Offset(2), Offset(2))
    );
    assert_eq!(log.truncate_to(Offset(0), &mut ops), Offset(0));
    assert!(bl(&log).is_empty());
    assert!(log.epoch_entries().is_empty());
}

impl PartitionLog {
    fn clone_without_flush_state(&self) -> PartitionLog {
        PartitionLog {
            unflushed_messages: 0,
            // Recovery knows the epochs the checkpoint holds, not those a truncation
            // removed earlier in this process.
            highest_epoch_seen: self.epochs.iter().map(|&(e, _)| e).max(),
            ..self.clone()
        }
    }
}

/// Cache [(0,0),(2,5)], LEO 9 (KIP-101 / KIP-279 lookups).
#[test]
fn epoch_lookups() {
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(0)),
        EpochEndOffset {
            leader_epoch: LeaderEpoch::UNKNOWN,
            end_offset: UNDEFINED_EPOCH_OFFSET
        }
    );
    assert_eq!(log.epoch_of_last_batch(), LeaderEpoch::UNKNOWN);
    log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
    log.append_as_leader(&batch("a", 5), LeaderEpoch(0), &mut ops)
        .unwrap();
    log.assign_epoch_start(LeaderEpoch(2), Offset(5), &mut ops);
    log.append_as_leader(&batch("b", 2), LeaderEpoch(2), &mut ops)
        .unwrap();
    log.append_as_leader(&batch("c", 2), LeaderEpoch(2), &mut ops)
        .unwrap();
    assert_eq!(log.log_end_offset(), Offset(9));
    assert_eq!(
        log.epoch_entries(),
        &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(2), Offset(5))]
    );
    let eo = |e: i32| {
        let r = log.end_offset_for_epoch(LeaderEpoch(e));
        (r.leader_epoch.0, r.end_offset.0)
    };
    assert_eq!(eo(0), (0, 5));
    assert_eq!(
        eo(1),
        (0, 5),
        "KIP-279: epoch 1 never existed here; answer epoch 0's end"
    );
    assert_eq!(eo(2), (2, 9));
    assert_eq!(eo(3), (2, 9));
    assert_eq!(eo(-1), (-1, -1));
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(2)));
    assert_eq!(log.epoch_of_last_batch(), LeaderEpoch(2));
    assert_eq!(log.last_written_epoch(), Some(LeaderEpoch(2)));
    // Stale or repeated epochs are ignored.
    ops.clear();
    log.assign_epoch_start(LeaderEpoch(1), Offset(9), &mut ops);
    log.assign_epoch_start(LeaderEpoch(2), Offset(9), &mut ops);
    assert!(ops.is_empty());
    // A leader of epoch 4 that has written nothing yet: the cache names epoch 4, the last
    // written record is still of epoch 2.
    log.assign_epoch_start(LeaderEpoch(4), Offset(9), &mut ops);
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(4)));
    assert_eq!(log.last_written_epoch(), Some(LeaderEpoch(2)));
    // A request below the earliest cached epoch has no answer.
    let mut late = PartitionLog::new(&tp());
    late.assign_epoch_start(LeaderEpoch(3), Offset(0), &mut ops);
    assert_eq!(
        late.end_offset_for_epoch(LeaderEpoch(2)).end_offset,
        UNDEFINED_EPOCH_OFFSET
    );
    assert_eq!(
        late.end_offset_for_epoch(LeaderEpoch(3)).end_offset,
        Offset(0)
    );
}

#[test]
fn checkpoint_format_and_recovery_of_the_epoch_cache() {
    let mut disk = MemDisk::default();
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
    log.append_as_leader(&batch("a", 5), LeaderEpoch(0), &mut ops)
        .unwrap();
    log.assign_epoch_start(LeaderEpoch(2), Offset(5), &mut ops);
    log.append_as_leader(&batch("b", 4), LeaderEpoch(2), &mut ops)
        .unwrap();
    log.assign_epoch_start(LeaderEpoch(3), Offset(9), &mut ops); // leader again, nothing written
    apply(&mut disk, &mut ops);
    assert_eq!(
        disk.files["events-0/leader-epoch-checkpoint"],
        b"0\n3\n0 0\n2 5\n3 9\n".to_vec()
    );
    // On restart the entry at the LEO is dropped (the broker re-assigns when it leads).
    let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(
        back.epoch_entries(),
        &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(2), Offset(5))]
    );
    assert!(matches!(&ops[..], [DiskOp::WriteAtomic { data, .. }] if data == b"0\n2\n0 0\n2 5\n"));
    // A lost or garbled checkpoint is rebuilt from the batches.
    for junk in [None, Some(b"garbage".to_vec())] {
        let mut files = disk.files.clone();
        match junk {
            None => files.remove("events-0/leader-epoch-checkpoint"),
            Some(j) => files.insert("events-0/leader-epoch-checkpoint".into(), j),
        };
        let (back, _) = PartitionLog::recover(&tp(), &files, &mut ops);
        assert_eq!(
            back.epoch_entries(),
            &[(LeaderEpoch(0), Offset(0)), (LeaderEpoch(2), Offset(5))]
        );
    }
}

#[test]
fn follower_append_keeps_offsets_and_replaces_stale_epochs() {
    let mut leader = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    leader
        .append_as_leader(&batch("a", 3), LeaderEpoch(4), &mut ops)
        .unwrap();
    leader
        .append_as_leader(&batch("b", 2), LeaderEpoch(4), &mut ops)
        .unwrap();

    let mut follower = PartitionLog::new(&tp());
    // This replica briefly led epoch 5 with no data; the real history says epoch 4.
    follower.assign_epoch_start(LeaderEpoch(5), Offset(0), &mut ops);
    let fetched = leader.read(Offset(0), Offset(5), u32::MAX).unwrap();
    assert_eq!(
        follower.append_as_follower(&fetched[1], &mut ops),
        Err(LogError::NonContiguous {
            expected: Offset(0),
            got: Offset(3)
        })
    );
    for b in &fetched {
        follower.append_as_follower(b, &mut ops).unwrap();
    }
    assert_eq!(bl(&follower), bl(&leader));
    assert_eq!(follower.epoch_entries(), &[(LeaderEpoch(4), Offset(0))]);
    assert_eq!(follower.records(), leader.records());
}

#[test]
fn corrupt_batches_are_rejected_without_side_effects() {
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    let mut bad = batch("a", 2);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(matches!(
        log.append_as_leader(&bad, LeaderEpoch(0), &mut ops),
        Err(LogError::Corrupt(BatchError::BadCrc { .. }))
    ));
    let two = [batch("a", 1), batch("b", 1)].concat();
    assert!(matches!(
        log.append_as_leader(&two, LeaderEpoch(0), &mut ops),
        Err(LogError::Corrupt(BatchError::Malformed(_)))
    ));
    let mut gap = RecordBatch::new(vec![(None, None), (None, None)], 0);
    gap.records[1].offset_delta = 5;
    gap.last_offset_delta = 5;
    assert!(log
        .append_as_leader(&gap.encode(), LeaderEpoch(0), &mut ops)
        .is_err());
    assert!(log.append_as_follower(&[], &mut ops).is_err());
    assert!(ops.is_empty());
    assert_eq!(log.log_end_offset(), Offset(0));
    let err = LogError::Corrupt(BatchError::BadMagic(1));
    assert!(err.to_string().contains("magic"));
}

#[test]
fn flush_policy() {
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    log.flush(&mut ops);
    assert!(ops.is_empty(), "no segment yet, nothing to sync");
    log.append_as_leader(&batch("a", 3), LeaderEpoch(0), &mut ops)
        .unwrap();
    ops.clear();
    assert!(!log.maybe_flush(4, &mut ops));
    assert!(log.maybe_flush(3, &mut ops));
    assert_eq!(
        ops,
        vec![DiskOp::Sync {
            file: log.segment_file()
        }]
    );
    assert_eq!(log.unflushed_messages(), 0);
    assert!(!log.maybe_flush(0, &mut ops), "nothing unflushed");
}

// ---- segments, indexes, recovery point, retention, compaction ----

/// A batch of `n` keyed records `key = keys[i]`, value `"{tag}-{i}"` (`None` for a
/// tombstone when the tag is empty), at timestamp `ts`.
fn keyed_batch(tag: &str, keys: &[&str], ts: i64) -> Vec<u8> {
    let records = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let value = (!tag.is_empty()).then(|| format!("{tag}-{i}").into_bytes());
            (Some(k.as_bytes().to_vec()), value)
        })
        .collect();
    RecordBatch::new(records, ts).encode()
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

/// `n` one-record batches at timestamps 1000, 1010, ...; segments of 300 bytes.
fn many_segments(disk: &mut MemDisk, n: usize, config: LogConfig) -> PartitionLog {
    let mut log = PartitionLog::new(&tp());
    log.set_config(config);
    let mut ops = Vec::new();
    log.assign_epoch_start(LeaderEpoch(0), Offset(0), &mut ops);
    for i in 0..n {
        let b = RecordBatch::new(
            vec![(None, Some(format!("v-{i}").into_bytes()))],
            1_000 + 10 * i as i64,
        )
        .encode();
        log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
    }
    apply(disk, &mut ops);
    log
}

#[test]
fn segments_roll_by_size_and_are_named_by_base_offset() {
    let mut disk = MemDisk::default();
    let log = many_segments(&mut disk, 40, small_config());
    assert!(
        log.segments().len() > 5,
        "{} segments",
        log.segments().len()
    );
    assert_eq!(log.rolled_segments() as usize, log.segments().len() - 1);
    let mut expected_base = Offset(0);
    for seg in log.segments() {
        assert_eq!(seg.base_offset(), expected_base);
        assert!(seg.size_bytes() <= 300);
        let file = seg.log_file("events-0");
        assert_eq!(file, format!("events-0/{:020}.log", seg.base_offset().0));
        let data = &disk.files[&file];
        assert_eq!(data.len() as u64, seg.size_bytes());
        // On-disk indexes equal the in-memory ones.
        let index = disk.files.get(&seg.index_file("events-0")).cloned();
        assert_eq!(
            index.unwrap_or_default(),
            segment::encode_offset_entries(seg.offset_index())
        );
        expected_base = seg.last_offset().unwrap().next();
    }
    assert_eq!(log.log_end_offset(), Offset(40));
    // A roll flushed the old segment and moved the recovery point.
    assert_eq!(
        log.recovery_point(),
        log.segments().last().unwrap().base_offset()
    );
    assert_eq!(log.records().len(), 40);
}

#[test]
fn segments_roll_by_time_and_when_the_index_is_full() {
    let mut disk = MemDisk::default();
    let by_time = many_segments(
        &mut disk,
        10,
        LogConfig {
            segment_ms: 25,
            ..LogConfig::default()
        },
    );
    // Timestamps 1000..1090: a segment holds records within 25 ms of its first one.
    let bases: Vec<i64> = by_time
        .segments()
        .iter()
        .map(|s| s.base_offset().0)
        .collect();
    assert_eq!(bases, vec![0, 3, 6, 9]);
    let mut disk = MemDisk::default();
    let by_index = many_segments(
        &mut disk,
        10,
        LogConfig {
            index_interval_bytes: 0,
            max_index_size_bytes: 16, // two offset entries, one time entry
            ..LogConfig::default()
        },
    );
    for seg in by_index.segments() {
        assert!(seg.offset_index().len() <= 2 && seg.time_index().len() <= 2);
    }
    assert!(by_index.segments().len() >= 4);
}

#[test]
fn offset_lookup_uses_the_floor_segment_and_the_sparse_index() {
    let mut disk = MemDisk::default();
    let log = many_segments(&mut disk, 60, small_config());
    for o in 0..60 {
        let i = log.segment_index_for(Offset(o));
        let seg = &log.segments()[i];
        assert!(seg.base_offset().0 <= o);
        if let Some(next) = log.segments().get(i + 1) {
            assert!(next.base_offset().0 > o);
        }
        // The index gives a position at or before the batch, never after it.
        let pos = seg.lookup(Offset(o));
        let b = &seg.batches()[seg.find_batch(Offset(o)).unwrap()];
        assert!(pos as u64 <= b.position);
        assert!(b.base_offset.0 <= o && o <= b.last_offset.0);
        let read = log.read(Offset(o), Offset(60), 1).unwrap();
        assert_eq!(read[0], b.bytes);
    }
    // With index interval 0 every batch but the first of a segment is indexed.
    let seg = &log.segments()[0];
    assert_eq!(seg.offset_index().len(), seg.batches().len() - 1);
    assert_eq!(
        seg.offset_index()[0].position as u64,
        seg.batches()[1].position
    );
    // Reads cross segment boundaries.
    assert_eq!(log.read(Offset(0), Offset(60), u32::MAX).unwrap().len(), 60);
    let mut disk = MemDisk::default();
    let sparse = many_segments(
        &mut disk,
        30,
        LogConfig {
            index_interval_bytes: 4096,
            ..LogConfig::default()
        },
    );
    assert!(sparse.segments()[0].offset_index().is_empty());
    assert_eq!(sparse.segments()[0].lookup(Offset(29)), 0);
    assert_eq!(sparse.read(Offset(17), Offset(30), 1).unwrap().len(), 1);
}

#[test]
fn timestamp_lookup_finds_the_first_offset_at_or_after() {
    let mut disk = MemDisk::default();
    let log = many_segments(&mut disk, 50, small_config());
    // Record i has timestamp 1000 + 10 i.
    assert_eq!(log.offset_for_timestamp(0), Some((Offset(0), 1000)));
    assert_eq!(log.offset_for_timestamp(1000), Some((Offset(0), 1000)));
    assert_eq!(log.offset_for_timestamp(1001), Some((Offset(1), 1010)));
    assert_eq!(log.offset_for_timestamp(1250), Some((Offset(25), 1250)));
    assert_eq!(log.offset_for_timestamp(1255), Some((Offset(26), 1260)));
    assert_eq!(log.offset_for_timestamp(1490), Some((Offset(49), 1490)));
    assert_eq!(log.offset_for_timestamp(1491), None);
    for t in (990..1500).step_by(7) {
        let expected = (0..50).find(|i| 1000 + 10 * i >= t);
        assert_eq!(
            log.offset_for_timestamp(t).map(|(o, _)| o.0),
            expected,
            "t={t}"
        );
    }
}

#[test]
fn recovery_trusts_flushed_segments_and_rebuilds_the_rest() {
    let mut disk = MemDisk::default();
    let mut log = many_segments(&mut disk, 40, small_config());
    let rp = log.recovery_point();
    let mut m = BTreeMap::new();
    m.insert(tp(), rp);
    disk.files.insert(
        checkpoint::RECOVERY_POINT_CHECKPOINT.into(),
        checkpoint::encode(&m),
    );
    let mut ops = Vec::new();
    let (back, report) =
        PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(report.recovered_segments, 1, "only the active segment");
    assert_eq!(report.discarded_bytes, 0);
    assert!(ops.is_empty(), "{ops:?}");
    assert_eq!(bl(&back), bl(&log));
    assert_eq!(back.recovery_point(), rp);

    // A torn active segment: cut, its index rebuilt; earlier segments untouched.
    let active = log.segments().last().unwrap().clone();
    let file = active.log_file("events-0");
    let len = disk.files[&file].len();
    disk.files.get_mut(&file).unwrap().truncate(len - 3);
    // A garbage index for the active segment is not trusted.
    disk.files
        .insert(active.index_file("events-0"), vec![0xff; 16]);
    let (back, report) =
        PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(report.discarded_batches, 1);
    assert_eq!(back.log_end_offset(), Offset(39));
    assert!(ops
        .iter()
        .any(|op| matches!(op, DiskOp::Truncate { file: f, .. } if *f == file)));
    assert!(ops.iter().any(
        |op| matches!(op, DiskOp::WriteAtomic { file: f, .. } | DiskOp::Truncate { file: f, .. } if *f == active.index_file("events-0"))
    ));
    apply(&mut disk, &mut ops);
    let (again, report) =
        PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(report.discarded_bytes, 0);
    assert!(ops.is_empty(), "repairs are idempotent: {ops:?}");
    assert_eq!(bl(&again), bl(&back));
    // Appends continue, rolling as before.
    for i in 0..10 {
        log = again.clone();
        let b = RecordBatch::new(vec![(None, Some(vec![i]))], 2_000).encode();
        log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
    }
}

#[test]
fn recovery_cuts_at_corruption_and_deletes_later_segments() {
    let mut disk = MemDisk::default();
    let log = many_segments(&mut disk, 40, small_config());
    assert!(log.segments().len() >= 4);
    // No recovery point: every segment is validated. Corrupt the second segment.
    let second = &log.segments()[1];
    let file = second.log_file("events-0");
    let at = second.batches()[1].position as usize + 30;
    disk.files.get_mut(&file).unwrap()[at] ^= 0x40;
    let mut ops = Vec::new();
    let (back, report) =
        PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(back.log_end_offset(), second.batches()[1].base_offset);
    assert_eq!(back.segments().len(), 2);
    let later: u64 = log.segments()[2..].iter().map(|s| s.size_bytes()).sum();
    assert_eq!(
        report.discarded_bytes,
        later + second.size_bytes() - second.batches()[1].position
    );
    for seg in &log.segments()[2..] {
        assert!(ops.contains(&DiskOp::Delete {
            file: seg.log_file("events-0")
        }));
    }
    apply(&mut disk, &mut ops);
    let (again, _) =
        PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(again.log_end_offset(), back.log_end_offset());
    // The same corruption below a recovery point is not served either.
    let mut disk = MemDisk::default();
    let log = many_segments(&mut disk, 40, small_config());
    let mut m = BTreeMap::new();
    m.insert(tp(), log.recovery_point());
    disk.files.insert(
        checkpoint::RECOVERY_POINT_CHECKPOINT.into(),
        checkpoint::encode(&m),
    );
    disk.files.get_mut(&file).unwrap()[at] ^= 0x40;
    let (back, _) = PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(back.log_end_offset(), second.batches()[1].base_offset);
}

#[test]
fn truncation_across_segments() {
    let mut disk = MemDisk::default();
    let mut log = many_segments(&mut disk, 40, small_config());
    let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
    let mut ops = Vec::new();
    let target = Offset(bases[2].0 + 1);
    assert_eq!(log.truncate_to(target, &mut ops), target);
    assert_eq!(log.segments().len(), 3);
    assert!(ops.contains(&DiskOp::Delete {
        file: format!("events-0/{:020}.log", bases[3].0)
    }));
    apply(&mut disk, &mut ops);
    let (back, _) = PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(bl(&back), bl(&log));
    // Truncating to a segment's base deletes that segment; the previous one is active.
    assert_eq!(log.truncate_to(bases[2], &mut ops), bases[2]);
    assert_eq!(log.segments().len(), 2);
    let b = RecordBatch::new(vec![(None, Some(b"x".to_vec()))], 5_000).encode();
    log.append_as_leader(&b, LeaderEpoch(1), &mut ops).unwrap();
    assert_eq!(log.log_end_offset(), bases[2].next());
    apply(&mut disk, &mut ops);
    let (back, _) = PartitionLog::recover_with_config(&tp(), &disk.files, small_config(), &mut ops);
    assert_eq!(back.log_end_offset(), log.log_end_offset());
    // Truncate fully and start over at a later offset.
    log.truncate_fully_and_start_at(Offset(100), &mut ops);
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(100), Offset(100))
    );
    assert!(log.epoch_entries().is_empty());
    log.append_as_leader(&b, LeaderEpoch(2), &mut ops).unwrap();
    apply(&mut disk, &mut ops);
    assert!(disk.files.contains_key("events-0/00000000000000000100.log"));
    let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(back.log_start_offset(), Offset(100));
    assert_eq!(back.records().len(), 1);
}

#[test]
fn retention_deletes_whole_old_segments_below_the_high_watermark() {
    let mut disk = MemDisk::default();
    let config = LogConfig {
        retention_ms: 100,
        ..small_config()
    };
    let mut log = many_segments(&mut disk, 40, config);
    let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
    let mut ops = Vec::new();
    // Nothing is old enough at t=1100 for the first segment (max ts 1000 + ...).
    let first_max = log.segments()[0].max_timestamp();
    assert_eq!(
        log.delete_old_segments(first_max + 100, Offset(40), &mut ops),
        None
    );
    // Old enough, but the HW caps it: only segments ending at or below the HW go.
    let r = log
        .delete_old_segments(10_000, bases[2], &mut ops)
        .expect("deleted");
    assert_eq!(r.deleted_segments, vec![bases[0], bases[1]]);
    assert_eq!(r.reason, "retention-ms");
    assert_eq!(
        (r.old_log_start_offset, r.new_log_start_offset),
        (Offset(0), bases[2])
    );
    assert_eq!(log.log_start_offset(), bases[2]);
    assert_eq!(log.epoch_entries(), &[(LeaderEpoch(0), bases[2])]);
    assert!(matches!(
        log.read(Offset(0), Offset(40), 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.records()[0].0, bases[2]);
    // Never the active segment, even when everything is old and committed.
    log.delete_old_segments(10_000, Offset(40), &mut ops)
        .unwrap();
    assert_eq!(log.segments().len(), 1);
    apply(&mut disk, &mut ops);
    assert!(!disk.files.contains_key("events-0/00000000000000000000.log"));
    let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert_eq!(back.log_start_offset(), log.log_start_offset());
    assert_eq!(back.epoch_entries(), log.epoch_entries());
    // Unlimited retention deletes nothing.
    let mut disk = MemDisk::default();
    let mut log = many_segments(
        &mut disk,
        40,
        LogConfig {
            retention_ms: -1,
            ..small_config()
        },
    );
    assert_eq!(
        log.delete_old_segments(i64::MAX / 2, Offset(40), &mut ops),
        None
    );
}

#[test]
fn retention_by_bytes_and_by_log_start_offset() {
    let mut disk = MemDisk::default();
    let mut log = many_segments(
        &mut disk,
        40,
        LogConfig {
            retention_bytes: 600,
            ..small_config()
        },
    );
    let total = log.size_bytes();
    let mut ops = Vec::new();
    let r = log.delete_old_segments(0, Offset(40), &mut ops).unwrap();
    assert_eq!(r.reason, "retention-bytes");
    assert!(log.size_bytes() >= 600, "{} of {total}", log.size_bytes());
    assert!(log.size_bytes() - log.segments()[0].size_bytes() < 600);
    // A follower learns a log start offset inside a segment: reads below it fail, and the
    // segments wholly below it go at the next pass, whatever the policy.
    let mut disk = MemDisk::default();
    let mut log = many_segments(
        &mut disk,
        40,
        LogConfig {
            retention_ms: -1,
            cleanup_policy: CleanupPolicy {
                delete: false,
                compact: false,
            },
            ..small_config()
        },
    );
    let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
    let lso = bases[1].next();
    assert!(log.maybe_increment_log_start_offset(lso, &mut ops));
    assert!(!log.maybe_increment_log_start_offset(Offset(1), &mut ops));
    assert_eq!(log.log_start_offset(), lso);
    assert!(log.read(bases[1], Offset(40), 100).is_err());
    assert_eq!(log.read(lso, Offset(40), 1).unwrap().len(), 1);
    let r = log.delete_old_segments(0, Offset(40), &mut ops).unwrap();
    assert_eq!(r.deleted_segments, vec![bases[0]]);
    assert_eq!(r.reason, "log-start-offset");
    assert_eq!(
        log.log_start_offset(),
        lso,
        "inside the first remaining segment"
    );
    assert_eq!(log.records()[0].0, lso);
}

#[test]
fn compaction_keeps_the_last_value_per_key_and_preserves_offsets() {
    let config = LogConfig {
        segment_bytes: 250,
        index_interval_bytes: 0,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::new(&tp());
    log.set_config(config);
    let mut ops = Vec::new();
    let keys = ["a", "b", "c"];
    for i in 0..30 {
        let k = keys[i % 3];
        let b = keyed_batch(&format!("v{i}"), &[k], 1_000 + i as i64);
        log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
    }
    // A tombstone for "a", then more records so it leaves the active segment.
    log.append_as_leader(&keyed_batch("", &["a"], 2_000), LeaderEpoch(0), &mut ops)
        .unwrap();
    for i in 0..6 {
        let b = keyed_batch(&format!("w{i}"), &["b"], 2_001 + i);
        log.append_as_leader(&b, LeaderEpoch(0), &mut ops).unwrap();
    }
    let leo = log.log_end_offset();
    let mut disk = MemDisk::default();
    apply(&mut disk, &mut ops);
    // Nothing is cleaned above the HW.
    assert_eq!(log.clean(5_000, Offset(0), &mut ops), None);
    let r = log.clean(5_000, leo, &mut ops).expect("cleaned");
    assert!(!r.cleaned_segments.is_empty());
    let kept = log.keyed_records();
    let cleanable_end = r.cleanable_end;
    // In the cleaned range each key appears once, at its latest offset there.
    let mut seen = BTreeMap::new();
    for (o, k, _, _) in kept.iter().filter(|(o, ..)| *o < cleanable_end) {
        assert!(seen.insert(k.clone(), *o).is_none(), "key twice: {k:?}");
    }
    // Offsets are preserved and increase; the active segment is untouched.
    assert!(kept.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(
        kept.iter().filter(|(o, ..)| *o >= cleanable_end).count() as i64,
        leo.0 - cleanable_end.0
    );
    // The tombstone survives the first pass, and delete.retention.ms after it, goes.
    assert!(kept
        .iter()
        .any(|(_, k, v, _)| k.as_deref() == Some(&b"a"[..]) && v.is_none()));
    assert_eq!(log.clean(5_500, leo, &mut ops), None);
    let r2 = log.clean(7_000, leo, &mut ops).expect("tombstone expired");
    assert_eq!(r2.expired_tombstones.len(), 1);
    assert!(r2.superseded.is_empty());
    apply(&mut disk, &mut ops);
    // Reads skip the gaps; recovery accepts the gapped batches.
    assert!(log.read(Offset(0), leo, u32::MAX).unwrap().len() < 37);
    let (back, report) = PartitionLog::recover_with_config(&tp(), &disk.files, config, &mut ops);
    assert_eq!(report.discarded_bytes, 0);
    assert_eq!(back.keyed_records(), log.keyed_records());
    // A follower copies the compacted batches, gaps and all.
    let mut follower = PartitionLog::new(&tp());
    follower.set_config(config);
    for b in log.read(Offset(0), leo, u32::MAX).unwrap() {
        follower.append_as_follower(&b, &mut ops).unwrap();
    }
    assert_eq!(follower.keyed_records(), log.keyed_records());
    // A delete-only log is never compacted.
    let mut plain = many_segments(&mut MemDisk::default(), 20, small_config());
    assert_eq!(plain.clean(0, Offset(20), &mut ops), None);
}

// ---- transactions (KIP-98) ----

/// A transactional batch of producer `pid` (epoch 0) with `n` records.
fn txn_batch(pid: i64, seq: i32, tag: &str, n: usize) -> Vec<u8> {
    let records = (0..n)
        .map(|i| (None, Some(format!("{tag}-{i}").into_bytes())))
        .collect();
    RecordBatch::new(records, 1_000)
        .with_producer(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
        .with_transactional(true)
        .encode()
}

fn marker(pid: i64, result: TransactionResult, coordinator_epoch: i32) -> Vec<u8> {
    RecordBatch::end_txn_marker(
        ProducerId(pid),
        ProducerEpoch(0),
        result,
        coordinator_epoch,
        1_000,
    )
    .encode()
}

/// Producer 1 writes 0..=1 and 4 then aborts at 5; producer 2 writes 2..=3 and stays open;
/// a plain batch at 6.
fn txn_log(disk: &mut MemDisk) -> PartitionLog {
    let mut log = PartitionLog::new(&tp());
    let mut ops = Vec::new();
    let e = LeaderEpoch(0);
    log.append_as_leader(&txn_batch(1, 0, "p1", 2), e, &mut ops)
        .unwrap();
    assert_eq!(
        log.first_unstable_offset(log.log_end_offset()),
        Some((ProducerId(1), Offset(0)))
    );
    log.append_as_leader(&txn_batch(2, 0, "p2", 2), e, &mut ops)
        .unwrap();
    log.append_as_leader(&txn_batch(1, 2, "p1b", 1), e, &mut ops)
        .unwrap();
    assert_eq!(
        log.append_as_leader(&marker(1, TransactionResult::Abort, 3), e, &mut ops)
            .unwrap(),
        (Offset(5), Offset(5))
    );
    log.append_as_leader(&batch("plain", 1), e, &mut ops)
        .unwrap();
    apply(disk, &mut ops);
    log
}

#[test]
fn an_abort_marker_ends_the_transaction_and_enters_the_txnindex() {
    let mut disk = MemDisk::default();
    let log = txn_log(&mut disk);
    // Producer 2's transaction, opened at 2, now holds the LSO back.
    assert_eq!(
        log.first_unstable_offset(log.log_end_offset()),
        Some((ProducerId(2), Offset(2)))
    );
    let aborted = AbortedTxn {
        producer_id: ProducerId(1),
        first_offset: Offset(0),
        last_offset: Offset(5),
        last_stable_offset: Offset(2),
    };
    assert_eq!(log.aborted_txns(), vec![aborted]);
    assert_eq!(
        disk.files["events-0/00000000000000000000.txnindex"],
        AbortedTxn::encode(&[aborted])
    );
    let e = log.txn_state().producer(ProducerId(1)).unwrap();
    assert_eq!((e.coordinator_epoch, e.current_txn_first_offset), (3, None));
    // Reads overlapping 0..=5 learn of it; a read from 6 does not.
    assert_eq!(
        log.collect_aborted_txns(Offset(4), Offset(6)),
        vec![aborted]
    );
    assert!(log.collect_aborted_txns(Offset(6), Offset(7)).is_empty());
    // The marker is not a data record.
    assert_eq!(log.records().len(), 6);
    // A COMMIT ends producer 2's transaction without an index entry.
    let mut log = log;
    let mut ops = Vec::new();
    log.append_as_leader(
        &marker(2, TransactionResult::Commit, 3),
        LeaderEpoch(0),
        &mut ops,
    )
    .unwrap();
    assert_eq!(log.first_unstable_offset(log.log_end_offset()), None);
    assert_eq!(log.aborted_txns().len(), 1);
}

#[test]
fn recovery_rebuilds_open_transactions_and_the_aborted_index() {
    let mut disk = MemDisk::default();
    let log = txn_log(&mut disk);
    // A clean restart: the same state, nothing to repair.
    let mut ops = Vec::new();
    let (back, _) = PartitionLog::recover(&tp(), &disk.files, &mut ops);
    assert!(ops.is_empty(), "{ops:?}");
    assert_eq!(back.txn_state(), log.txn_state());
    assert_eq!(back.aborted_txns(), log.aborted_txns());
    // A lost `.txnindex` is rewritten from the replay.
    let mut files = disk.files.clone();
    files.remove("events-0/00000000000000000000.txnindex");
    let (back, _) = PartitionLog::recover(&tp(), &files, &mut ops);
    assert_eq!(back.aborted_txns(), log.aborted_txns());
    assert!(matches!(&ops[..], [DiskOp::WriteAtomic { file, .. }] if file.ends_with(".txnindex")));
    ops.clear();
    // A torn tail that loses the ABORT marker (and the plain batch after it): producer 1's
    // transaction is open again and its index entry is gone, on disk too.
    let file = "events-0/00000000000000000000.log".to_string();
    let batches = bl(&log);
    let cut = batches[3].position as usize + 7;
    let mut files = disk.files.clone();
    files.get_mut(&file).unwrap().truncate(cut);
    let (back, report) = PartitionLog::recover(&tp(), &files, &mut ops);
    assert_eq!(report.discarded_batches, 1);
    assert_eq!(back.log_end_offset(), Offset(5));
    assert_eq!(
        back.first_unstable_offset(back.log_end_offset()),
        Some((ProducerId(1), Offset(0)))
    );
    assert!(back.aborted_txns().is_empty());
    assert!(ops.contains(&DiskOp::Delete {
        file: "events-0/00000000000000000000.txnindex".into()
    }));
}

#[test]
fn truncation_below_a_marker_reopens_the_transaction() {
    let mut disk = MemDisk::default();
    let mut log = txn_log(&mut disk);
    let mut ops = Vec::new();
    assert_eq!(log.truncate_to(Offset(5), &mut ops), Offset(5));
    assert!(log.aborted_txns().is_empty());
    assert_eq!(
        log.first_unstable_offset(log.log_end_offset()),
        Some((ProducerId(1), Offset(0)))
    );
    apply(&mut disk, &mut ops);
    assert!(!disk
        .files
        .contains_key("events-0/00000000000000000000.txnindex"));
    // A follower copying the leader's marker rebuilds the same state.
    let leader = txn_log(&mut MemDisk::default());
    let marker_bytes = bl(&leader)[3].bytes.clone();
    log.append_as_follower(&marker_bytes, &mut ops).unwrap();
    assert_eq!(log.aborted_txns(), leader.aborted_txns());
    assert_eq!(
        log.first_unstable_offset(log.log_end_offset()),
        Some((ProducerId(2), Offset(2)))
    );
}

#[test]
fn end_txn_marker_layout() {
    let b = RecordBatch::decode(&marker(7, TransactionResult::Commit, 12))
        .unwrap()
        .0;
    assert!(b.is_control() && b.is_transactional());
    assert_eq!(b.base_sequence, Sequence(-1));
    let r = &b.records[0];
    assert_eq!(r.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    assert_eq!(r.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 12][..]));
    assert_eq!(b.txn_marker(), Some((TransactionResult::Commit, 12)));
    let abort = RecordBatch::decode(&marker(7, TransactionResult::Abort, 0))
        .unwrap()
        .0;
    assert_eq!(abort.txn_marker(), Some((TransactionResult::Abort, 0)));
    assert_eq!(RecordBatch::new(vec![(None, None)], 0).txn_marker(), None);
}
