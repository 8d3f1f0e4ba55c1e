//! Kafka's record batch, format v2 ("magic 2"), as laid out by Kafka's `DefaultRecordBatch`
//! (introduced with KIP-98, exactly-once delivery, in Kafka 0.11).
//!
//! A batch is the unit a producer sends, a leader appends, a follower copies and a consumer
//! fetches. Every field is big-endian:
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            int64   first offset of the batch (the leader assigns it)
//!      8     4  batchLength           int32   bytes after this field (total size - 12)
//!     12     4  partitionLeaderEpoch  int32   epoch of the leader that appended it (-1 from producers)
//!     16     1  magic                 int8    = 2
//!     17     4  crc                   uint32  CRC-32C of bytes 21 .. end
//!     21     2  attributes            int16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//!     23     4  lastOffsetDelta       int32   last offset - base offset
//!     27     8  baseTimestamp         int64   ms
//!     35     8  maxTimestamp          int64   ms
//!     43     8  producerId            int64   -1 without idempotence
//!     51     2  producerEpoch         int16   -1 without idempotence
//!     53     4  baseSequence          int32   -1 without idempotence
//!     57     4  recordsCount          int32
//!     61     .  records
//! ```
//!
//! Each record is `length varint` followed by `attributes int8`, `timestampDelta varlong`,
//! `offsetDelta varint`, `keyLength varint` + key (`-1` = null), `valueLength varint` + value
//! (`-1` = null), `headersCount varint` and per header `keyLength varint` + UTF-8 key,
//! `valueLength varint` + value (`-1` = null). Varints are zigzag-encoded base-128 (as
//! protobuf's `sint32`/`sint64`, Kafka's `ByteUtils.writeVarint`).
//!
//! The CRC deliberately does **not** cover `baseOffset`, `batchLength`, `partitionLeaderEpoch`
//! and `magic`: the leader rewrites the first and third in place when it appends a producer's
//! batch ([`set_base_offset`], [`set_partition_leader_epoch`]) without recomputing the CRC.
//!
//! ## Compression
//!
//! With a codec in attribute bits 0-2 the whole records section (everything after the 61-byte
//! header) is one compressed stream; the header, including `recordsCount`, stays plain, and
//! the CRC covers the compressed bytes. The streams are those Kafka's `CompressionType` writes:
//! gzip (RFC 1952, level 6), snappy in xerial's `SnappyOutputStream` framing (magic
//! `\x82SNAPPY\0`, two int32 versions, then int32-length-prefixed raw snappy blocks of up to
//! 32 KiB input), lz4 in the LZ4 frame format with independent 64 KiB blocks (Kafka's
//! `KafkaLZ4BlockOutputStream`), zstd frames (level 3). See [`Compression`].

use crate::protocol::TransactionResult;
use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{Read, Write};

/// Kafka's `CompressionType`: the codec of a batch's records section (attribute bits 0-2) and
/// the value of the `compression.type` setting.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum Compression {
    /// Codec 0.
    #[default]
    None,
    /// Codec 1: gzip (RFC 1952), deflate level 6 as Java's `GZIPOutputStream`.
    Gzip,
    /// Codec 2: snappy in xerial's stream framing (what Kafka's Java client writes).
    Snappy,
    /// Codec 3: LZ4 frame format, independent 64 KiB blocks, no content checksum.
    Lz4,
    /// Codec 4: zstd frame (KIP-110), level 3 (Kafka's default).
    Zstd,
}

/// Largest records section a compressed batch may expand to (a guard against decompression
/// bombs in a corrupted or hostile batch): 64 MiB, beyond any `max.message.bytes` used here.
pub const MAX_DECOMPRESSED_BYTES: u64 = 64 << 20;

/// xerial snappy-java stream header (`SnappyCodec.MAGIC_HEADER` + version 1 + compatible 1).
const XERIAL_SNAPPY_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
/// Input bytes per snappy block in xerial's stream (its default block size).
const XERIAL_SNAPPY_BLOCK: usize = 32 * 1024;

impl Compression {
    /// Every codec, in codec-id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id stored in attribute bits 0-2 (0 none .. 4 zstd).
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with this id, `None` for ids 5-7 (unknown to Kafka).
    pub fn from_id(id: i16) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.id() == id)
    }

    /// Kafka's name (`none`, `gzip`, `snappy`, `lz4`, `zstd`), as `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec named by a `compression.type` value (`uncompressed`, the broker's word, is
    /// `none`); `None` for `producer` or anything else.
    pub fn from_name(name: &str) -> Option<Compression> {
        if name == "uncompressed" {
            return Some(Compression::None);
        }
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Compresses a records section into this codec's stream (the identity for `None`).
    pub fn compress(self, plain: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => plain.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::GzBuilder::new().write(
                    Vec::with_capacity(plain.len() / 2 + 32),
                    flate2::Compression::new(6),
                );
                e.write_all(plain).expect("writing to a Vec");
                e.finish().expect("writing to a Vec")
            }
            Compression::Snappy => {
                let mut out = Vec::with_capacity(plain.len() / 2 + 32);
                out.extend_from_slice(&XERIAL_SNAPPY_HEADER);
                let mut enc = snap::raw::Encoder::new();
                for chunk in plain.chunks(XERIAL_SNAPPY_BLOCK) {
                    let block = enc.compress_vec(chunk).expect("snappy block within limits");
                    out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
                out
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(
                    info,
                    Vec::with_capacity(plain.len() / 2 + 32),
                );
                e.write_all(plain).expect("writing to a Vec");
                e.finish().expect("writing to a Vec")
            }
            Compression::Zstd => zstd::bulk::compress(plain, 3).expect("zstd level 3"),
        }
    }

    /// Expands this codec's stream back into the records section. Errors (with the codec's
    /// words) on a malformed stream or one expanding beyond [`MAX_DECOMPRESSED_BYTES`].
    pub fn decompress(self, compressed: &[u8]) -> Result<Vec<u8>, String> {
        fn read_all(r: impl Read) -> Result<Vec<u8>, String> {
            let mut out = Vec::new();
            r.take(MAX_DECOMPRESSED_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
            if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
                return Err(format!("expands beyond {MAX_DECOMPRESSED_BYTES} bytes"));
            }
            Ok(out)
        }
        match self {
            Compression::None => Ok(compressed.to_vec()),
            Compression::Gzip => read_all(flate2::read::GzDecoder::new(compressed)),
            Compression::Snappy => {
                let Some(mut rest) = compressed.strip_prefix(&XERIAL_SNAPPY_HEADER[..8]) else {
                    return Err("missing the xerial snappy stream header".into());
                };
                if rest.len() < 8 {
                    return Err("truncated xerial snappy header".into());
                }
                rest = &rest[8..];
                let mut out = Vec::new();
                let mut dec = snap::raw::Decoder::new();
                while !rest.is_empty() {
                    if rest.len() < 4 {
                        return Err("truncated snappy block length".into());
                    }
                    let len = i32::from_be_bytes(rest[..4].try_into().unwrap());
                    rest = &rest[4..];
                    if len < 0 || len as usize > rest.len() {
                        return Err(format!("snappy block of {len} bytes overruns the stream"));
                    }
                    let block = &rest[..len as usize];
                    rest = &rest[len as usize..];
                    let n = snap::raw::decompress_len(block).map_err(|e| e.to_string())?;
                    if (out.len() + n) as u64 > MAX_DECOMPRESSED_BYTES {
                        return Err(format!("expands beyond {MAX_DECOMPRESSED_BYTES} bytes"));
                    }
                    let start = out.len();
                    out.resize(start + n, 0);
                    dec.decompress(block, &mut out[start..])
                        .map_err(|e| e.to_string())?;
                }
                Ok(out)
            }
            Compression::Lz4 => read_all(lz4_flex::frame::FrameDecoder::new(compressed)),
            Compression::Zstd => {
                read_all(zstd::stream::read::Decoder::new(compressed).map_err(|e| e.to_string())?)
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size in bytes of the fixed batch header (everything before the first record).
pub const HEADER_SIZE: usize = 61;
/// Bytes before `partitionLeaderEpoch` that `batchLength` does not count (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// The only record-batch format this module speaks.
pub const MAGIC: i8 = 2;
/// Smallest legal `batchLength`: a header with no records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;

/// Attribute bits 0-2: the compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: the timestamp type (0 CreateTime, 1 LogAppendTime).
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
/// Attribute bit 4: the batch belongs to a transaction (KIP-98).
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Version of a control record's key and value (Kafka's `ControlRecordType` and
/// `EndTransactionMarker` both write version 0).
pub const CONTROL_RECORD_VERSION: i16 = 0;
/// Attribute bit 5: the batch holds a control record (a transaction marker, KIP-98).
pub const ATTR_CONTROL: i16 = 0x20;

/// `partitionLeaderEpoch` of a batch that no leader has stamped yet (what producers send).
pub const NO_PARTITION_LEADER_EPOCH: LeaderEpoch = LeaderEpoch(-1);
/// `producerEpoch` without idempotence.
pub const NO_PRODUCER_EPOCH: ProducerEpoch = ProducerEpoch(-1);
/// `baseSequence` without idempotence.
pub const NO_SEQUENCE: Sequence = Sequence(-1);

// Byte positions of the header fields.
const POS_BASE_OFFSET: usize = 0;
const POS_BATCH_LENGTH: usize = 8;
const POS_LEADER_EPOCH: usize = 12;
const POS_MAGIC: usize = 16;
const POS_CRC: usize = 17;
const POS_ATTRIBUTES: usize = 21;
const POS_LAST_OFFSET_DELTA: usize = 23;
const POS_BASE_TIMESTAMP: usize = 27;
const POS_MAX_TIMESTAMP: usize = 35;
const POS_PRODUCER_ID: usize = 43;
const POS_PRODUCER_EPOCH: usize = 51;
const POS_BASE_SEQUENCE: usize = 53;
const POS_RECORDS_COUNT: usize = 57;

/// Why a byte buffer is not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The buffer ends before the batch does: `needed` bytes are required, `available` exist.
    /// A torn write at the end of a segment looks like this.
    Truncated { needed: usize, available: usize },
    /// The `magic` byte is not 2.
    BadMagic(i8),
    /// The stored CRC (`expected`) does not match the CRC-32C computed over the bytes (`actual`).
    BadCrc { expected: u32, actual: u32 },
    /// `batchLength` is smaller than a bare header (49) or otherwise impossible.
    BadLength(i32),
    /// The attributes name a compression codec Kafka does not know (5-7); the value is the codec.
    UnsupportedCompression(i16),
    /// The records section does not decompress with the batch's codec.
    Decompression { codec: Compression, why: String },
    /// The bytes pass the CRC but do not parse (bad varint, record overruns, ...).
    Malformed(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated record batch: need {needed} bytes, have {available}"
                )
            }
            BatchError::BadMagic(m) => {
                write!(f, "unsupported record batch magic {m} (expected {MAGIC})")
            }
            BatchError::BadCrc { expected, actual } => {
                write!(
                    f,
                    "record batch CRC mismatch: stored {expected:#010x}, computed {actual:#010x}"
                )
            }
            BatchError::BadLength(l) => write!(
                f,
                "invalid record batch length {l} (minimum {MIN_BATCH_LENGTH})"
            ),
            BatchError::UnsupportedCompression(c) => {
                write!(
                    f,
                    "unknown compression codec {c} (known: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)"
                )
            }
            BatchError::Decompression { codec, why } => {
                write!(f, "record batch does not decompress with {codec}: {why}")
            }
            BatchError::Malformed(why) => write!(f, "malformed record batch: {why}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// A record's `(key, value)`, either possibly null, as [`RecordBatch::new`] takes them.
pub type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// One record inside a batch, borrowed from the batch's bytes (see [`RecordBatch::visit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Offset of this record minus the batch's `base_offset`.
    pub offset_delta: i32,
    /// Timestamp (ms) minus the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// `None` is a null value (a tombstone under compaction).
    pub value: Option<&'a [u8]>,
    /// Record headers in order (empty, without allocating, when there are none).
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// One record inside a batch (Kafka's `DefaultRecord`). Offsets and timestamps are deltas from
/// the batch's base offset and base timestamp (ms). [`RecordView`] is the borrowed form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Offset of this record minus the batch's `base_offset`.
    pub offset_delta: i32,
    /// Timestamp (ms) minus the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// `None` is a null key (the producer then uses the sticky partitioner).
    pub key: Option<Vec<u8>>,
    /// `None` is a null value (a tombstone under compaction).
    pub value: Option<Vec<u8>>,
    /// Record headers in order; a header key is UTF-8 and never null, its value may be.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A decoded v2 record batch (Kafka's `DefaultRecordBatch`, KIP-98). See the module docs for
/// the byte layout; [`RecordBatch::encode`] and [`RecordBatch::decode`] convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record; producers send 0, the leader assigns the real value.
    pub base_offset: Offset,
    /// Epoch of the leader that appended the batch ([`NO_PARTITION_LEADER_EPOCH`] from producers).
    pub partition_leader_epoch: LeaderEpoch,
    /// Attribute bits (see the `ATTR_*` constants).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp (ms) of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (ms) in the batch.
    pub max_timestamp: i64,
    /// Producer id (KIP-98), [`ProducerId::NONE`] without idempotence.
    pub producer_id: ProducerId,
    /// Producer epoch, -1 without idempotence.
    pub producer_epoch: ProducerEpoch,
    /// Sequence of the first record, -1 without idempotence.
    pub base_sequence: Sequence,
    /// The records, in offset order.
    pub records: Vec<Record>,
}

impl RecordBatch {
    /// A non-idempotent, non-transactional, uncompressed batch as a plain producer would build
    /// it: records get offset deltas `0..n` and timestamp delta 0, `base_offset` is 0, the
    /// leader epoch and producer fields are -1, both timestamps are `timestamp_ms`.
    ///
    /// Each element is `(key, value)`. Panics if `records` is empty: Kafka never sends an
    /// empty batch and a leader rejects one.
    pub fn new(records: Vec<KeyValue>, timestamp_ms: i64) -> RecordBatch {
        assert!(
            !records.is_empty(),
            "a record batch needs at least one record"
        );
        let n = records.len();
        RecordBatch {
            base_offset: Offset(0),
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            attributes: 0,
            last_offset_delta: i32::try_from(n - 1).expect("too many records for one batch"),
            base_timestamp: timestamp_ms,
            max_timestamp: timestamp_ms,
            producer_id: ProducerId::NONE,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            records: records
                .into_iter()
                .enumerate()
                .map(|(i, (key, value))| Record {
                    offset_delta: i as i32,
                    timestamp_delta: 0,
                    key,
                    value,
                    headers: Vec::new(),
                })
                .collect(),
        }
    }

    /// Sets the idempotent-producer fields (KIP-98): producer id, epoch and base sequence.
    pub fn with_producer(
        mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        base_sequence: Sequence,
    ) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// A transaction marker (KIP-98): a transactional control batch of one control record
    /// written by the transaction coordinator's WriteTxnMarkers to every partition of a
    /// transaction. The record's key is `version int16 = 0, type int16` (Kafka's
    /// `ControlRecordType`: 0 ABORT, 1 COMMIT) and its value `version int16 = 0,
    /// coordinatorEpoch int32` (Kafka's `EndTransactionMarker`). The base sequence is -1: a
    /// marker does not advance the producer's sequence numbers.
    pub fn end_txn_marker(
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        result: TransactionResult,
        coordinator_epoch: i32,
        timestamp_ms: i64,
    ) -> RecordBatch {
        let kind: i16 = match result {
            TransactionResult::Abort => 0,
            TransactionResult::Commit => 1,
        };
        let mut key = CONTROL_RECORD_VERSION.to_be_bytes().to_vec();
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = CONTROL_RECORD_VERSION.to_be_bytes().to_vec();
        value.extend_from_slice(&coordinator_epoch.to_be_bytes());
        let mut b = RecordBatch::new(vec![(Some(key), Some(value))], timestamp_ms)
            .with_producer(producer_id, producer_epoch, NO_SEQUENCE)
            .with_transactional(true);
        b.attributes |= ATTR_CONTROL;
        b
    }

    /// The marker a control batch carries: `(result, coordinator epoch)` read from its first
    /// record (see [`RecordBatch::end_txn_marker`]); `None` if this is not a control batch or
    /// its record is not a well-formed ABORT or COMMIT marker (Kafka ignores other control
    /// record types).
    pub fn txn_marker(&self) -> Option<(TransactionResult, i32)> {
        if !self.is_control() {
            return None;
        }
        let r = self.records.first()?;
        let key = r.key.as_deref()?;
        let value = r.value.as_deref()?;
        if key.len() < 4 || value.len() < 6 {
            return None;
        }
        let result = match i16::from_be_bytes([key[2], key[3]]) {
            0 => TransactionResult::Abort,
            1 => TransactionResult::Commit,
            _ => return None,
        };
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Some((result, coordinator_epoch))
    }

    /// Sets or clears the transactional attribute bit (KIP-98).
    pub fn with_transactional(mut self, transactional: bool) -> Self {
        if transactional {
            self.attributes |= ATTR_TRANSACTIONAL;
        } else {
            self.attributes &= !ATTR_TRANSACTIONAL;
        }
        self
    }

    /// Whether attribute bit 4 (part of a transaction) is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether attribute bit 5 (control batch: a transaction marker) is set.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The compression codec (attribute bits 0-2).
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    /// Sets the compression codec (attribute bits 0-2); [`RecordBatch::encode`] compresses the
    /// records section with it.
    pub fn with_compression(mut self, codec: Compression) -> Self {
        self.attributes = (self.attributes & !ATTR_COMPRESSION_MASK) | codec.id();
        self
    }

    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> Offset {
        Offset(self.base_offset.0 + self.last_offset_delta as i64)
    }

    /// The batch's bytes in the v2 layout, with `batchLength` and the CRC-32C computed, the
    /// records section compressed with the codec of the attributes (see the module docs).
    /// Panics if the attributes name an unknown codec (5-7).
    pub fn encode(&self) -> Vec<u8> {
        let codec = Compression::from_id(self.compression())
            .unwrap_or_else(|| panic!("unknown compression codec {}", self.compression()));
        let mut buf = Vec::with_capacity(HEADER_SIZE + 16 * self.records.len());
        buf.extend_from_slice(&self.base_offset.0.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes()); // batchLength, filled in below
        buf.extend_from_slice(&self.partition_leader_epoch.0.to_be_bytes());
        buf.push(MAGIC as u8);
        buf.extend_from_slice(&0u32.to_be_bytes()); // crc, filled in below
        buf.extend_from_slice(&self.attributes.to_be_bytes());
        buf.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        buf.extend_from_slice(&self.base_timestamp.to_be_bytes());
        buf.extend_from_slice(&self.max_timestamp.to_be_bytes());
        buf.extend_from_slice(&self.producer_id.0.to_be_bytes());
        buf.extend_from_slice(&self.producer_epoch.0.to_be_bytes());
        buf.extend_from_slice(&self.base_sequence.0.to_be_bytes());
        let count = i32::try_from(self.records.len()).expect("too many records for one batch");
        buf.extend_from_slice(&count.to_be_bytes());
        debug_assert_eq!(buf.len(), HEADER_SIZE);

        let mut plain = Vec::new();
        let records_buf = if codec == Compression::None {
            &mut buf
        } else {
            &mut plain
        };
        let mut body = Vec::new();
        for r in &self.records {
            body.clear();
            body.push(0u8); // record attributes: unused
            put_varlong(&mut body, r.timestamp_delta);
            put_varint(&mut body, r.offset_delta);
            put_nullable_bytes(&mut body, r.key.as_deref());
            put_nullable_bytes(&mut body, r.value.as_deref());
            put_varint(
                &mut body,
                i32::try_from(r.headers.len()).expect("too many headers"),
            );
            for (k, v) in &r.headers {
                put_nullable_bytes(&mut body, Some(k.as_bytes()));
                put_nullable_bytes(&mut body, v.as_deref());
            }
            put_varint(
                records_buf,
                i32::try_from(body.len()).expect("record too large"),
            );
            records_buf.extend_from_slice(&body);
        }
        if codec != Compression::None {
            buf.extend_from_slice(&codec.compress(&plain));
        }

        let batch_length = i32::try_from(buf.len() - LOG_OVERHEAD).expect("record batch too large");
        buf[POS_BATCH_LENGTH..POS_BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&buf[POS_ATTRIBUTES..]);
        buf[POS_CRC..POS_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    /// Parses one batch from the start of `buf` (which may hold more bytes after it) and
    /// returns it with the number of bytes it occupies (`12 + batchLength`).
    ///
    /// Checks, in order: enough bytes for the header ([`BatchError::Truncated`]), magic
    /// ([`BatchError::BadMagic`]), `batchLength` ([`BatchError::BadLength`]), enough bytes for the
    /// whole batch (`Truncated`), the CRC ([`BatchError::BadCrc`]), the codec
    /// ([`BatchError::UnsupportedCompression`]), then the records ([`BatchError::Malformed`]).
    pub fn decode(buf: &[u8]) -> Result<(RecordBatch, usize), BatchError> {
        let mut records = Vec::new();
        let (h, size) = RecordBatch::visit(buf, |r| {
            records.push(Record {
                offset_delta: r.offset_delta,
                timestamp_delta: r.timestamp_delta,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
                    .collect(),
            })
        })?;
        let batch = RecordBatch {
            base_offset: h.base_offset,
            partition_leader_epoch: h.partition_leader_epoch,
            attributes: h.attributes,
            last_offset_delta: h.last_offset_delta,
            base_timestamp: h.base_timestamp,
            max_timestamp: h.max_timestamp,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            records,
        };
        Ok((batch, size))
    }

    /// Checks the batch at the start of `buf` exactly as [`RecordBatch::decode`] does (header,
    /// CRC, codec, every record's structure; the same errors) and hands each record to `f`
    /// borrowed from the batch's bytes (or from its decompressed records), in order, without
    /// copying it. Returns the batch's header and its size in bytes. Readers that need only
    /// some fields (recovery's validation, the checks' snapshots) use this: decoding owned
    /// records costs two allocations per record.
    pub fn visit(
        buf: &[u8],
        mut f: impl FnMut(RecordView<'_>),
    ) -> Result<(BatchHeader, usize), BatchError> {
        let h = read_header(buf)?;
        let size = h.size_bytes();
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        verify_crc(&buf[..size])?;
        let Some(codec) = Compression::from_id(h.compression()) else {
            return Err(BatchError::UnsupportedCompression(h.compression()));
        };
        if h.records_count < 0 {
            return Err(BatchError::Malformed(format!(
                "negative records count {}",
                h.records_count
            )));
        }
        let expanded;
        let section = if codec == Compression::None {
            &buf[HEADER_SIZE..size]
        } else {
            expanded = codec
                .decompress(&buf[HEADER_SIZE..size])
                .map_err(|why| BatchError::Decompression { codec, why })?;
            &expanded[..]
        };
        let mut r = Reader {
            buf: section,
            pos: 0,
        };
        for i in 0..h.records_count {
            let len = r.varint()?;
            if len < 0 || len as usize > r.remaining() {
                return Err(BatchError::Malformed(format!(
                    "record {i} has length {len}, {} bytes left",
                    r.remaining()
                )));
            }
            let end = r.pos + len as usize;
            let mut rr = Reader {
                buf: &r.buf[..end],
                pos: r.pos,
            };
            let _attributes = rr.bytes(1)?;
            let timestamp_delta = rr.varlong()?;
            let offset_delta = rr.varint()?;
            let key = rr.nullable_bytes()?;
            let value = rr.nullable_bytes()?;
            let header_count = rr.varint()?;
            if header_count < 0 {
                return Err(BatchError::Malformed(format!(
                    "record {i} has {header_count} headers"
                )));
            }
            let mut headers = Vec::new();
            for _ in 0..header_count {
                let k = rr.nullable_bytes()?.ok_or_else(|| {
                    BatchError::Malformed(format!("record {i} has a null header key"))
                })?;
                let k = std::str::from_utf8(k).map_err(|_| {
                    BatchError::Malformed(format!("record {i} has a header key that is not UTF-8"))
                })?;
                headers.push((k, rr.nullable_bytes()?));
            }
            if rr.pos != end {
                return Err(BatchError::Malformed(format!(
                    "record {i} has {} unread bytes",
                    end - rr.pos
                )));
            }
            r.pos = end;
            f(RecordView {
                offset_delta,
                timestamp_delta,
                key,
                value,
                headers,
            });
        }
        if r.remaining() != 0 {
            return Err(BatchError::Malformed(format!(
                "{} bytes after the last record",
                r.remaining()
            )));
        }
        Ok((h, size))
    }
}

/// The fixed 61-byte header of a v2 batch, as [`read_header`] parses it without touching the
/// records or checking the CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: Offset,
    /// Bytes after the `batchLength` field; the whole batch is `12 + batch_length` bytes.
    pub batch_length: i32,
    pub partition_leader_epoch: LeaderEpoch,
    pub magic: i8,
    /// The CRC-32C stored in the batch (not verified by [`read_header`]).
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub base_sequence: Sequence,
    pub records_count: i32,
}

impl BatchHeader {
    /// Total size of the batch in bytes: `12 + batch_length`.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }
    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> Offset {
        Offset(self.base_offset.0 + self.last_offset_delta as i64)
    }
    /// Whether attribute bit 4 (transactional) is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    /// Whether attribute bit 5 (control batch) is set.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    /// The compression codec (attribute bits 0-2).
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
}

/// Parses only the 61-byte header at the start of `buf`: cheap, no CRC check, no records.
///
/// Errors: fewer than 61 bytes -> [`BatchError::Truncated`]; magic other than 2 ->
/// [`BatchError::BadMagic`]; `batchLength` below 49 -> [`BatchError::BadLength`]. It does not
/// check that the whole batch is present (compare [`BatchHeader::size_bytes`] with the buffer).
pub fn read_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < HEADER_SIZE {
        return Err(BatchError::Truncated {
            needed: HEADER_SIZE,
            available: buf.len(),
        });
    }
    let magic = buf[POS_MAGIC] as i8;
    if magic != MAGIC {
        return Err(BatchError::BadMagic(magic));
    }
    let batch_length = be_i32(buf, POS_BATCH_LENGTH);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(BatchError::BadLength(batch_length));
    }
    Ok(BatchHeader {
        base_offset: Offset(be_i64(buf, POS_BASE_OFFSET)),
        batch_length,
        partition_leader_epoch: LeaderEpoch(be_i32(buf, POS_LEADER_EPOCH)),
        magic,
        crc: be_i32(buf, POS_CRC) as u32,
        attributes: be_i16(buf, POS_ATTRIBUTES),
        last_offset_delta: be_i32(buf, POS_LAST_OFFSET_DELTA),
        base_timestamp: be_i64(buf, POS_BASE_TIMESTAMP),
        max_timestamp: be_i64(buf, POS_MAX_TIMESTAMP),
        producer_id: ProducerId(be_i64(buf, POS_PRODUCER_ID)),
        producer_epoch: ProducerEpoch(be_i16(buf, POS_PRODUCER_EPOCH)),
        base_sequence: Sequence(be_i32(buf, POS_BASE_SEQUENCE)),
        records_count: be_i32(buf, POS_RECORDS_COUNT),
    })
}

/// Checks the CRC-32C of the batch at the start of `buf` (bytes 21 .. `12 + batchLength`).
/// Errors as [`read_header`], plus [`BatchError::Truncated`] if the batch is incomplete and
/// [`BatchError::BadCrc`] on a mismatch.
pub fn verify_crc(buf: &[u8]) -> Result<(), BatchError> {
    let h = read_header(buf)?;
    let size = h.size_bytes();
    if buf.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            available: buf.len(),
        });
    }
    let actual = crc32c::crc32c(&buf[POS_ATTRIBUTES..size]);
    if actual != h.crc {
        return Err(BatchError::BadCrc {
            expected: h.crc,
            actual,
        });
    }
    Ok(())
}

/// Overwrites `baseOffset` in place (what a leader does when it appends a producer's batch).
/// The field is outside the CRC, so the CRC stays valid. Panics if `buf` is shorter than 8 bytes.
pub fn set_base_offset(buf: &mut [u8], offset: Offset) {
    buf[POS_BASE_OFFSET..POS_BASE_OFFSET + 8].copy_from_slice(&offset.0.to_be_bytes());
}

/// Overwrites `partitionLeaderEpoch` in place (the leader stamps its epoch on append, KIP-101).
/// The field is outside the CRC, so the CRC stays valid. Panics if `buf` is shorter than 16 bytes.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: LeaderEpoch) {
    buf[POS_LEADER_EPOCH..POS_LEADER_EPOCH + 4].copy_from_slice(&epoch.0.to_be_bytes());
}

fn be_i64(buf: &[u8], pos: usize) -> i64 {
    i64::from_be_bytes(buf[pos..pos + 8].try_into().unwrap())
}
fn be_i32(buf: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap())
}
fn be_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes(buf[pos..pos + 2].try_into().unwrap())
}

/// Zigzag varint (Kafka `ByteUtils.writeVarint`).
fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag varlong (Kafka `ByteUtils.writeVarlong`).
fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_nullable_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, i32::try_from(b.len()).expect("field too large"));
            out.extend_from_slice(b);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if self.remaining() < n {
            return Err(BatchError::Malformed(format!(
                "field of {n} bytes overruns its record"
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn unsigned(&mut self, max_bytes: usize) -> Result<u64, BatchError> {
        let mut v = 0u64;
        for i in 0..max_bytes {
            let b = self.bytes(1)?[0];
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BatchError::Malformed(format!(
            "varint longer than {max_bytes} bytes"
        )))
    }
    fn varint(&mut self) -> Result<i32, BatchError> {
        let v = self.unsigned(5)?;
        if v > u32::MAX as u64 {
            return Err(BatchError::Malformed("varint overflows 32 bits".into()));
        }
        let v = v as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let v = self.unsigned(10)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let len = self.varint()?;
        match len {
            -1 => Ok(None),
            l if l < 0 => Err(BatchError::Malformed(format!("negative length {l}"))),
            l => Ok(Some(self.bytes(l as usize)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> RecordBatch {
        let mut b = RecordBatch::new(
            vec![
                (Some(b"k1".to_vec()), Some(b"v1".to_vec())),
                (None, Some(b"v2".to_vec())),
                (None, None),
            ],
            1_000,
        );
        b.records[1].headers.push(("h".into(), Some(b"x".to_vec())));
        b.records[1].headers.push(("n".into(), None));
        b
    }

    #[test]
    fn crc32c_known_answer() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn varints_match_kafka_encoding() {
        let mut out = Vec::new();
        put_varint(&mut out, 0);
        put_varint(&mut out, -1);
        put_varint(&mut out, 1);
        put_varint(&mut out, 64);
        assert_eq!(out, vec![0x00, 0x01, 0x02, 0x80, 0x01]);
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Reader { buf: &b, pos: 0 }.varint().unwrap(), v);
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert_eq!(Reader { buf: &b, pos: 0 }.varlong().unwrap(), v);
        }
    }

    #[test]
    fn header_layout_and_helpers() {
        let b = sample()
            .with_producer(ProducerId(7), ProducerEpoch(1), Sequence(42))
            .with_transactional(true);
        let bytes = b.encode();
        let h = read_header(&bytes).unwrap();
        assert_eq!(h.size_bytes(), bytes.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset(), Offset(2));
        assert_eq!(h.producer_id, ProducerId(7));
        assert_eq!(h.base_sequence, Sequence(42));
        assert!(h.is_transactional() && !h.is_control());
        assert!(b.is_transactional() && !b.is_control());
        assert_eq!(b.last_offset(), Offset(2));
        assert_eq!(bytes[16], 2);
        let (back, used) = RecordBatch::decode(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, b);
    }

    #[test]
    fn flipped_bit_fails_the_crc() {
        let bytes = sample().encode();
        for pos in [21, 30, HEADER_SIZE, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x04;
            assert!(
                matches!(verify_crc(&bad), Err(BatchError::BadCrc { .. })),
                "pos {pos}"
            );
            assert!(
                matches!(RecordBatch::decode(&bad), Err(BatchError::BadCrc { .. })),
                "pos {pos}"
            );
        }
    }

    #[test]
    fn truncated_buffers_are_reported() {
        let bytes = sample().encode();
        for len in [0, 10, HEADER_SIZE - 1, HEADER_SIZE, bytes.len() - 1] {
            match RecordBatch::decode(&bytes[..len]) {
                Err(BatchError::Truncated { needed, available }) => {
                    assert_eq!(available, len);
                    assert!(needed > len);
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_magic_length_and_codec() {
        let bytes = sample().encode();
        let mut m = bytes.clone();
        m[16] = 1;
        assert_eq!(RecordBatch::decode(&m), Err(BatchError::BadMagic(1)));
        let mut l = bytes.clone();
        l[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(RecordBatch::decode(&l), Err(BatchError::BadLength(10)));
        // Codec 6 (unknown) with a CRC that matches, so the codec check is what fails.
        let with_codec = |codec: i16| {
            let mut c = bytes.clone();
            c[21..23].copy_from_slice(&codec.to_be_bytes());
            let crc = crc32c::crc32c(&c[21..]);
            c[17..21].copy_from_slice(&crc.to_be_bytes());
            c
        };
        let err = RecordBatch::decode(&with_codec(6)).unwrap_err();
        assert_eq!(err, BatchError::UnsupportedCompression(6));
        assert!(err.to_string().contains("unknown compression codec 6"));
        // Codec 3 (lz4) over plain records: the section is not an LZ4 frame.
        let err = RecordBatch::decode(&with_codec(3)).unwrap_err();
        assert!(
            matches!(
                &err,
                BatchError::Decompression {
                    codec: Compression::Lz4,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("does not decompress with lz4"));
    }

    #[test]
    fn every_codec_round_trips_and_sets_the_attribute_bits() {
        // Repetitive values, as a producer's batch of similar records: every codec shrinks it.
        let records: Vec<KeyValue> = (0..200u64)
            .map(|i| {
                (
                    Some(format!("k{}", i % 7).into_bytes()),
                    Some(i.to_be_bytes().to_vec()),
                )
            })
            .collect();
        let plain = RecordBatch::new(records, 5).encode();
        for codec in Compression::ALL {
            let b = RecordBatch::new(
                (0..200u64)
                    .map(|i| {
                        (
                            Some(format!("k{}", i % 7).into_bytes()),
                            Some(i.to_be_bytes().to_vec()),
                        )
                    })
                    .collect(),
                5,
            )
            .with_compression(codec);
            let bytes = b.encode();
            let h = read_header(&bytes).unwrap();
            assert_eq!(h.compression(), codec.id());
            assert_eq!(
                h.records_count, 200,
                "recordsCount stays in the plain header"
            );
            verify_crc(&bytes).unwrap();
            let (back, used) = RecordBatch::decode(&bytes).unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(back, b, "{codec}");
            if codec != Compression::None {
                assert!(
                    bytes.len() < plain.len(),
                    "{codec}: {} >= {}",
                    bytes.len(),
                    plain.len()
                );
            }
            assert_eq!(Compression::from_name(codec.name()), Some(codec));
            assert_eq!(Compression::from_id(codec.id()), Some(codec));
            // Same input, same bytes: codecs are deterministic.
            assert_eq!(bytes, b.encode());
        }
    }

    #[test]
    fn codec_streams_have_kafkas_framing() {
        let data = vec![7u8; 100_000];
        let gz = Compression::Gzip.compress(&data);
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "gzip magic + deflate");
        let sn = Compression::Snappy.compress(&data);
        assert_eq!(
            &sn[..16],
            &XERIAL_SNAPPY_HEADER,
            "xerial snappy-java header"
        );
        let lz = Compression::Lz4.compress(&data);
        assert_eq!(&lz[..4], &[0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
        let zs = Compression::Zstd.compress(&data);
        assert_eq!(&zs[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
        for c in Compression::ALL {
            assert_eq!(c.decompress(&c.compress(&data)).unwrap(), data, "{c}");
            assert_eq!(
                c.decompress(&c.compress(&[])).unwrap(),
                Vec::<u8>::new(),
                "{c}"
            );
        }
        // Garbage is an error, never a panic.
        for c in &Compression::ALL[1..] {
            assert!(c.decompress(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err(), "{c}");
        }
        assert_eq!(
            Compression::from_name("uncompressed"),
            Some(Compression::None)
        );
        assert_eq!(Compression::from_name("producer"), None);
    }

    #[test]
    fn in_place_offset_and_epoch_keep_the_crc_valid() {
        let mut bytes = sample().encode();
        set_base_offset(&mut bytes, Offset(1234));
        set_partition_leader_epoch(&mut bytes, LeaderEpoch(9));
        verify_crc(&bytes).unwrap();
        let (b, _) = RecordBatch::decode(&bytes).unwrap();
        assert_eq!(b.base_offset, Offset(1234));
        assert_eq!(b.partition_leader_epoch, LeaderEpoch(9));
        assert_eq!(b.last_offset(), Offset(1236));
    }

    #[test]
    fn decode_reports_consumed_bytes_with_trailing_data() {
        let mut bytes = sample().encode();
        let n = bytes.len();
        bytes.extend_from_slice(&sample().encode());
        let (_, used) = RecordBatch::decode(&bytes).unwrap();
        assert_eq!(used, n);
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<i32>(),
            any::<i64>(),
            arb_bytes(),
            arb_bytes(),
            proptest::collection::vec(("[a-z\u{e9}]{0,8}", arb_bytes()), 0..3),
        )
            .prop_map(
                |(offset_delta, timestamp_delta, key, value, headers)| Record {
                    offset_delta,
                    timestamp_delta,
                    key,
                    value,
                    headers,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(
            records in proptest::collection::vec(arb_record(), 0..8),
            base in any::<i64>(),
            epoch in any::<i32>(),
            attrs in any::<i16>(),
            pid in any::<i64>(),
            pepoch in any::<i16>(),
            seq in any::<i32>(),
            ts in any::<i64>(),
            codec in 0i16..5,
        ) {
            let b = RecordBatch {
                base_offset: Offset(base),
                partition_leader_epoch: LeaderEpoch(epoch),
                attributes: (attrs & !ATTR_COMPRESSION_MASK) | codec,
                last_offset_delta: records.len() as i32 - 1,
                base_timestamp: ts,
                max_timestamp: ts.wrapping_add(5),
                producer_id: ProducerId(pid),
                producer_epoch: ProducerEpoch(pepoch),
                base_sequence: Sequence(seq),
                records,
            };
            let bytes = b.encode();
            verify_crc(&bytes).unwrap();
            let (back, used) = RecordBatch::decode(&bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back, b);
        }
    }
}
