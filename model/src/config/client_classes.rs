//! The client classes ksim provides for Kafka's class-valued settings: key and value
//! serializers and deserializers (`org.apache.kafka.common.serialization`) and producer
//! interceptors.

use super::*;

/// One of Kafka's built-in serializer/deserializer pairs
/// (`org.apache.kafka.common.serialization`), as named by `key.serializer`,
/// `value.serializer`, `key.deserializer` and `value.deserializer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SerdeClass {
    /// `StringSerializer` / `StringDeserializer`: UTF-8 text.
    String,
    /// `IntegerSerializer` / `IntegerDeserializer`: 4 bytes, big-endian.
    Integer,
    /// `LongSerializer` / `LongDeserializer`: 8 bytes, big-endian.
    Long,
}

impl SerdeClass {
    const ALL: [SerdeClass; 3] = [SerdeClass::String, SerdeClass::Integer, SerdeClass::Long];

    /// The serializer's class name, e.g. `org.apache.kafka.common.serialization.LongSerializer`.
    pub const fn serializer(self) -> &'static str {
        match self {
            SerdeClass::String => "org.apache.kafka.common.serialization.StringSerializer",
            SerdeClass::Integer => "org.apache.kafka.common.serialization.IntegerSerializer",
            SerdeClass::Long => "org.apache.kafka.common.serialization.LongSerializer",
        }
    }

    /// The deserializer's class name.
    pub const fn deserializer(self) -> &'static str {
        match self {
            SerdeClass::String => "org.apache.kafka.common.serialization.StringDeserializer",
            SerdeClass::Integer => "org.apache.kafka.common.serialization.IntegerDeserializer",
            SerdeClass::Long => "org.apache.kafka.common.serialization.LongDeserializer",
        }
    }

    /// The simple class name of the deserializer (`LongDeserializer`), for reports.
    pub fn deserializer_simple_name(self) -> &'static str {
        self.deserializer().rsplit('.').next().unwrap_or_default()
    }

    /// The pair a serializer or deserializer class name belongs to.
    pub fn from_class_name(name: &str) -> Option<SerdeClass> {
        SerdeClass::ALL
            .into_iter()
            .find(|c| c.serializer() == name || c.deserializer() == name)
    }
}

/// A producer interceptor this simulation provides for `interceptor.classes`. Kafka loads
/// interceptors by class name; a scenario names one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InterceptorClass {
    /// `ksim.interceptors.TracingHeader`: adds a header `ksim-trace` holding the time of the
    /// send (8 bytes, ms, big-endian) to every record, as tracing interceptors do; records grow
    /// by its size.
    TracingHeader,
    /// `ksim.interceptors.FailingOnSend`: `onSend` throws for every record. Kafka's
    /// `ProducerInterceptors` logs the exception and sends the record as the previous
    /// interceptor left it.
    FailingOnSend,
    /// `ksim.interceptors.FailingOnAcknowledgement`: `onAcknowledgement` throws for every
    /// outcome; Kafka logs it and the record's callback still runs.
    FailingOnAcknowledgement,
}

impl InterceptorClass {
    const ALL: [InterceptorClass; 3] = [
        InterceptorClass::TracingHeader,
        InterceptorClass::FailingOnSend,
        InterceptorClass::FailingOnAcknowledgement,
    ];

    /// The class name a scenario writes in `interceptor.classes`.
    pub const fn class_name(self) -> &'static str {
        match self {
            InterceptorClass::TracingHeader => "ksim.interceptors.TracingHeader",
            InterceptorClass::FailingOnSend => "ksim.interceptors.FailingOnSend",
            InterceptorClass::FailingOnAcknowledgement => {
                "ksim.interceptors.FailingOnAcknowledgement"
            }
        }
    }

    /// The interceptor of a class name.
    pub fn from_class_name(name: &str) -> Option<InterceptorClass> {
        InterceptorClass::ALL
            .into_iter()
            .find(|c| c.class_name() == name)
    }
}

/// `key.serializer` classes for the workload's keys (the key number `n` of `keys`): its
/// string `k{n}` (UTF-8), or `n` as a 4- or 8-byte big-endian integer. The serializer decides
/// the bytes that murmur2 hashes, so it decides the partition of a key.
pub(super) const KEY_SERIALIZERS: &[&str] = &[
    SerdeClass::String.serializer(),
    SerdeClass::Integer.serializer(),
    SerdeClass::Long.serializer(),
];

/// `value.serializer` classes for the workload's 64-bit values: 8 bytes big-endian, or the
/// decimal digits (UTF-8). An `IntegerSerializer` could not take them (Kafka's
/// ClassCastException), so ksim does not offer it.
pub(super) const VALUE_SERIALIZERS: &[&str] = &[
    SerdeClass::Long.serializer(),
    SerdeClass::String.serializer(),
];

pub(super) const KEY_DESERIALIZERS: &[&str] = &[
    SerdeClass::String.deserializer(),
    SerdeClass::Integer.deserializer(),
    SerdeClass::Long.deserializer(),
];

pub(super) const VALUE_DESERIALIZERS: &[&str] = &[
    SerdeClass::Long.deserializer(),
    SerdeClass::String.deserializer(),
];

/// `interceptor.classes` this simulation provides (see [`InterceptorClass`]).
pub(super) const INTERCEPTORS: &[&str] = &[
    InterceptorClass::TracingHeader.class_name(),
    InterceptorClass::FailingOnSend.class_name(),
    InterceptorClass::FailingOnAcknowledgement.class_name(),
];
