//! The producer's configuration (Kafka's `ProducerConfig`): its struct, its defaults, its
//! table of keys and its cross-field rules (idempotence, delivery timeout).

use super::*;

/// Producer configuration (`ProducerConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerConfig {
    /// `acks` ("all").
    pub acks: Acks,
    /// `retries` (2147483647).
    pub retries: i32,
    /// `enable.idempotence` (true; silently false when the user did not set it and set an
    /// incompatible `acks`/`retries`/`max.in.flight`, as Kafka 3.2+ does).
    pub enable_idempotence: bool,
    /// `max.in.flight.requests.per.connection` (5).
    pub max_in_flight_requests_per_connection: u32,
    /// `batch.size` in bytes (16384).
    pub batch_size: u32,
    /// `linger.ms` (5).
    pub linger_ms: u64,
    /// `buffer.memory` in bytes (33554432).
    pub buffer_memory: u64,
    /// `max.block.ms` (60000).
    pub max_block_ms: u64,
    /// `request.timeout.ms` (30000).
    pub request_timeout_ms: u64,
    /// `delivery.timeout.ms` (120000); must be >= `linger.ms + request.timeout.ms`.
    pub delivery_timeout_ms: u64,
    /// `retry.backoff.ms` (100).
    pub retry_backoff_ms: u64,
    /// `metadata.max.age.ms` (300000).
    pub metadata_max_age_ms: u64,
    /// `partitioner.ignore.keys` (false).
    pub partitioner_ignore_keys: bool,
    /// `compression.type` ("none"): the codec of every batch this producer builds.
    pub compression_type: Compression,
    /// `key.serializer` (`StringSerializer` here; Kafka has no default).
    pub key_serializer: SerdeClass,
    /// `value.serializer` (`LongSerializer` here; Kafka has no default).
    pub value_serializer: SerdeClass,
    /// `interceptor.classes` (none), in the order they run.
    pub interceptor_classes: Vec<InterceptorClass>,
    /// `transactional.id` (none): with one the producer is transactional (KIP-98), which
    /// requires idempotence.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (60000): the coordinator aborts a transaction open longer.
    pub transaction_timeout_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            retries: i32::MAX,
            enable_idempotence: true,
            max_in_flight_requests_per_connection: 5,
            batch_size: 16_384,
            linger_ms: 5,
            buffer_memory: 33_554_432,
            max_block_ms: 60_000,
            request_timeout_ms: 30_000,
            delivery_timeout_ms: 120_000,
            retry_backoff_ms: 100,
            metadata_max_age_ms: 300_000,
            partitioner_ignore_keys: false,
            compression_type: Compression::None,
            key_serializer: SerdeClass::String,
            value_serializer: SerdeClass::Long,
            interceptor_classes: Vec::new(),
            transactional_id: None,
            transaction_timeout_ms: 60_000,
        }
    }
}

pub(super) const PRODUCER_KEYS: &[KeyDef] = &[
    k("acks", Ty::OneOf(&["all", "-1", "0", "1"])),
    k("retries", Ty::Int(0, I32)),
    k("enable.idempotence", Ty::Bool),
    k("max.in.flight.requests.per.connection", Ty::Int(1, I32)),
    k("batch.size", Ty::Int(0, I32)),
    k("linger.ms", MS),
    k("buffer.memory", Ty::Long(0, I64)),
    k("max.block.ms", MS),
    k("request.timeout.ms", MS32),
    k("delivery.timeout.ms", MS32),
    k("retry.backoff.ms", MS),
    k("metadata.max.age.ms", MS),
    k("partitioner.ignore.keys", Ty::Bool),
    k(
        "compression.type",
        Ty::OneOf(&["none", "gzip", "snappy", "lz4", "zstd"]),
    ),
    k("transactional.id", Ty::Str),
    k("transaction.timeout.ms", MS32),
    k("key.serializer", Ty::Class(KEY_SERIALIZERS)),
    k("value.serializer", Ty::Class(VALUE_SERIALIZERS)),
    k("interceptor.classes", Ty::ClassList(INTERCEPTORS)),
];

impl ProducerConfig {
    /// Parses producer settings and applies `KafkaProducer`'s post-processing (Kafka 3.2+):
    /// idempotence checks against `acks`, `retries` and `max.in.flight.requests.per.connection`
    /// (an error when `enable.idempotence` was set explicitly, else idempotence is silently
    /// disabled, KAFKA-13598), and `delivery.timeout.ms >= linger.ms + request.timeout.ms`
    /// (an error when set explicitly, else raised to that sum).
    pub fn from_properties(props: &Properties) -> Result<Self, ConfigError> {
        let p = Parsed::new(ConfigKind::Producer, props)?;
        let mut c = ProducerConfig::default();
        if let Some(v) = p.str("acks") {
            c.acks = match v {
                "0" => Acks::None,
                "1" => Acks::Leader,
                _ => Acks::All,
            };
        }
        if let Some(v) = p.num("retries") {
            c.retries = v as i32;
        }
        if let Some(v) = p.bool("enable.idempotence") {
            c.enable_idempotence = v;
        }
        if let Some(v) = p.num("max.in.flight.requests.per.connection") {
            c.max_in_flight_requests_per_connection = v as u32;
        }
        if let Some(v) = p.num("batch.size") {
            c.batch_size = v as u32;
        }
        if let Some(v) = p.num("linger.ms") {
            c.linger_ms = v as u64;
        }
        if let Some(v) = p.num("buffer.memory") {
            c.buffer_memory = v as u64;
        }
        if let Some(v) = p.num("max.block.ms") {
            c.max_block_ms = v as u64;
        }
        if let Some(v) = p.num("request.timeout.ms") {
            c.request_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("delivery.timeout.ms") {
            c.delivery_timeout_ms = v as u64;
        }
        if let Some(v) = p.num("retry.backoff.ms") {
            c.retry_backoff_ms = v as u64;
        }
        if let Some(v) = p.num("metadata.max.age.ms") {
            c.metadata_max_age_ms = v as u64;
        }
        if let Some(v) = p.bool("partitioner.ignore.keys") {
            c.partitioner_ignore_keys = v;
        }
        if let Some(v) = p.str("compression.type") {
            c.compression_type = Compression::from_name(v).expect("validated");
        }
        if let Some(v) = p.str("key.serializer") {
            c.key_serializer = SerdeClass::from_class_name(v).expect("validated");
        }
        if let Some(v) = p.str("value.serializer") {
            c.value_serializer = SerdeClass::from_class_name(v).expect("validated");
        }
        if let Some(v) = p.str("transactional.id") {
            c.transactional_id = Some(v.to_string());
        }
        if let Some(v) = p.num("transaction.timeout.ms") {
            c.transaction_timeout_ms = v as u64;
        }
        if let Some(l) = p.list("interceptor.classes") {
            c.interceptor_classes = l
                .iter()
                .map(|n| InterceptorClass::from_class_name(n.trim()).expect("validated"))
                .collect();
        }

        // ProducerConfig.postProcessAndValidateIdempotenceConfigs.
        if c.enable_idempotence {
            // A `transactional.id` makes the idempotence settings binding too
            // (`userConfiguredTransactions` in Kafka's check).
            let explicit = p.has("enable.idempotence") || c.transactional_id.is_some();
            let mut disable = false;
            if c.retries == 0 {
                if explicit {
                    return Err(ConfigError {
                        key: "retries".into(),
                        message: "Must set retries to non-zero when using the idempotent producer."
                            .into(),
                    });
                }
                disable = true;
            }
            if c.acks != Acks::All {
                if explicit {
                    return Err(ConfigError {
                        key: "acks".into(),
                        message: "Must set acks to all in order to use the idempotent producer. Otherwise we cannot guarantee idempotence.".into(),
                    });
                }
                disable = true;
            }
            if c.max_in_flight_requests_per_connection > 5 {
                if explicit {
                    return Err(ConfigError {
                        key: "max.in.flight.requests.per.connection".into(),
                        message: "Must set max.in.flight.requests.per.connection to at most 5 to use the idempotent producer."
                            .into(),
                    });
                }
                disable = true;
            }
            if disable {
                c.enable_idempotence = false;
            }
        }

        if c.transactional_id.is_some() && !c.enable_idempotence {
            return Err(ConfigError {
                key: "transactional.id".into(),
                message: "Cannot set a transactional.id without also enabling idempotence.".into(),
            });
        }

        // KafkaProducer.configureDeliveryTimeout.
        let floor = (c.linger_ms + c.request_timeout_ms).min(i32::MAX as u64);
        if c.delivery_timeout_ms < floor {
            if p.has("delivery.timeout.ms") {
                return Err(ConfigError {
                    key: "delivery.timeout.ms".into(),
                    message: "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms".into(),
                });
            }
            c.delivery_timeout_ms = floor;
        }
        Ok(c)
    }
}
