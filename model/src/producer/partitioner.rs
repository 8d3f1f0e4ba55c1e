//! Which partition a producer sends a record to, as Kafka's Java producer decides it.
//!
//! 1. An explicit partition in the record wins (the caller handles that).
//! 2. A record with a key goes to `toPositive(murmur2(key)) % numPartitions`
//!    ([`partition_for_key`]). The hash is bit-identical to Kafka's
//!    `org.apache.kafka.common.utils.Utils.murmur2`, so the same key lands on the same
//!    partition as with a real Kafka client (unless `partitioner.ignore.keys=true`).
//! 3. A record without a key goes to the *sticky* partition (KIP-480,
//!    [`StickyPartitioner`]): the producer stays on one partition until the batch it is filling
//!    for that partition is completed (full, or `linger.ms` expired and sent), then switches to
//!    another partition chosen at random. Sticking fills batches faster than round-robin and so
//!    lowers latency at low throughput.
//!
//! Nothing here draws randomness: the random word comes in as an argument.

/// Murmur2, 32-bit, exactly as Kafka's `Utils.murmur2`: seed `0x9747b28c`, multiplier
/// `m = 0x5bd1e995`, shift `r = 24`, the input read as little-endian 4-byte words, the 1-3
/// trailing bytes folded in with fall-through (byte 2 << 16, byte 1 << 8, byte 0, then `* m`),
/// and the final avalanche `h ^= h >>> 13; h *= m; h ^= h >>> 15`. All arithmetic wraps at 32
/// bits and the result is reinterpreted as a signed `int`, as in Java.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java's `length` is an int; keys longer than 2^31 bytes cannot exist there.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for word in &mut chunks {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Clears the sign bit, as Kafka's `Utils.toPositive` (`n & 0x7fffffff`); unlike `abs` it
/// maps `i32::MIN` to 0 rather than overflowing.
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for a non-null key:
/// `toPositive(murmur2(key)) % num_partitions`, in `0..num_partitions`.
/// Panics if `num_partitions <= 0` (a topic always has at least one partition).
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    assert!(
        num_partitions > 0,
        "a topic has at least one partition, got {num_partitions}"
    );
    to_positive(murmur2(key)) % num_partitions
}

/// The sticky partition of one topic for records without a key (KIP-480, Kafka's
/// `StickyPartitionCache`). A producer keeps one per topic.
///
/// Use: call [`StickyPartitioner::next_partition`] for every null-key record; it returns the
/// current sticky partition (choosing one the first time). When the batch being filled for
/// that partition is completed (full, or `linger.ms` expired and it was sent), call
/// [`StickyPartitioner::on_new_batch`] with that partition: the partitioner moves to a
/// different partition chosen uniformly at random from the others (Kafka redraws until the
/// choice differs; taking `random % (n - 1)` over the others gives the same distribution
/// without a loop). A completion for a partition that is no longer the sticky one is ignored,
/// as in Kafka, so a late completion cannot cause a second switch.
///
/// Kafka prefers partitions that currently have a leader; pass them to
/// [`StickyPartitioner::on_new_batch_among`]. With one partition it never moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StickyPartitioner {
    current: Option<i32>,
}

impl StickyPartitioner {
    /// No partition chosen yet.
    pub fn new() -> Self {
        StickyPartitioner { current: None }
    }

    /// The current sticky partition, if one has been chosen.
    pub fn current(&self) -> Option<i32> {
        self.current
    }

    /// The partition for the next null-key record: the sticky one, or (first use, or the
    /// partition count shrank below it) `random % num_partitions`. Panics if
    /// `num_partitions <= 0`.
    pub fn next_partition(&mut self, num_partitions: i32, random: u64) -> i32 {
        assert!(
            num_partitions > 0,
            "a topic has at least one partition, got {num_partitions}"
        );
        match self.current {
            Some(p) if p < num_partitions => p,
            _ => {
                let p = (random % num_partitions as u64) as i32;
                self.current = Some(p);
                p
            }
        }
    }

    /// A batch for `completed_partition` was completed: if it is the sticky partition, switch
    /// to another of `0..num_partitions` chosen with `random`. Returns the sticky partition
    /// after the call. Panics if `num_partitions <= 0`.
    pub fn on_new_batch(
        &mut self,
        completed_partition: i32,
        num_partitions: i32,
        random: u64,
    ) -> i32 {
        self.on_new_batch_among(completed_partition, num_partitions, &[], random)
    }

    /// As [`StickyPartitioner::on_new_batch`], but choosing among `available` (partitions
    /// with a live leader) when it holds any partition other than the completed one, as
    /// Kafka's `StickyPartitionCache.nextPartition` does; otherwise among all partitions.
    pub fn on_new_batch_among(
        &mut self,
        completed_partition: i32,
        num_partitions: i32,
        available: &[i32],
        random: u64,
    ) -> i32 {
        assert!(
            num_partitions > 0,
            "a topic has at least one partition, got {num_partitions}"
        );
        if let Some(p) = self.current {
            if p != completed_partition && p < num_partitions {
                return p; // a late completion for a partition we already left
            }
        }
        let old = self.current;
        let mut candidates: Vec<i32> = available
            .iter()
            .copied()
            .filter(|&p| (0..num_partitions).contains(&p) && Some(p) != old)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        if candidates.is_empty() {
            candidates = (0..num_partitions).filter(|&p| Some(p) != old).collect();
        }
        let p = if candidates.is_empty() {
            old.unwrap_or(0) // one partition: nowhere else to go
        } else {
            candidates[(random % candidates.len() as u64) as usize]
        };
        self.current = Some(p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` vectors (apache/kafka,
    /// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
    #[test]
    fn murmur2_matches_kafka_utils_test() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key),
                want,
                "murmur2({})",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn key_partitioning() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(
            partition_for_key(b"foobar", 10),
            (-790_332_482i32 & 0x7fff_ffff) % 10
        );
        for n in 1..20 {
            let p = partition_for_key(b"some-key", n);
            assert!((0..n).contains(&p));
        }
    }

    #[test]
    fn sticky_stays_until_a_batch_completes() {
        let mut s = StickyPartitioner::new();
        let p = s.next_partition(4, 6);
        assert_eq!(p, 2);
        assert_eq!(
            s.next_partition(4, 99),
            2,
            "sticks regardless of the random word"
        );
        let q = s.on_new_batch(2, 4, 0);
        assert_ne!(q, 2);
        assert_eq!(s.next_partition(4, 1), q);
        // A late completion for the old partition does not move it again.
        assert_eq!(s.on_new_batch(2, 4, 1), q);
        // Every choice differs from the completed partition.
        for r in 0..16 {
            let mut s = s.clone();
            assert_ne!(s.on_new_batch(q, 4, r), q);
        }
    }

    #[test]
    fn sticky_prefers_available_and_handles_one_partition() {
        let mut s = StickyPartitioner::new();
        assert_eq!(s.next_partition(1, 12345), 0);
        assert_eq!(s.on_new_batch(0, 1, 7), 0);
        let mut s = StickyPartitioner::new();
        let p = s.next_partition(5, 0);
        assert_eq!(p, 0);
        for r in 0..10 {
            let mut t = s.clone();
            assert_eq!(t.on_new_batch_among(0, 5, &[0, 3], r), 3);
        }
        // Partition count shrank below the sticky one: choose again.
        let mut s = StickyPartitioner::new();
        s.next_partition(8, 7);
        assert_eq!(s.next_partition(4, 5), 1);
    }
}
