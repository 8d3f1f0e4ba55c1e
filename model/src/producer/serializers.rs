//! Kafka's `Serializer<T>` (`org.apache.kafka.common.serialization`: `StringSerializer`,
//! `LongSerializer`, `IntegerSerializer`, `ByteArraySerializer`) and the serializers
//! `key.serializer` and `value.serializer` choose for the workload's keys and values (step 2
//! of the pipeline in [`super`]).

use crate::config::SerdeClass;

/// Kafka's `Serializer<T>`: turns a key or value into bytes for `topic`. `Err` is the message
/// of the `SerializationException` it throws; `send` then fails.
pub trait Serializer<T: ?Sized>: Send {
    fn serialize(&self, topic: &str, data: &T) -> Result<Vec<u8>, String>;
}

/// Kafka's `StringSerializer` (UTF-8). For a `u64` value: its decimal digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &str) -> Result<Vec<u8>, String> {
        Ok(data.as_bytes().to_vec())
    }
}

impl Serializer<u64> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &u64) -> Result<Vec<u8>, String> {
        Ok(data.to_string().into_bytes())
    }
}

/// Kafka's `LongSerializer`: 8 bytes, big-endian (a `u64` is written as its `i64` bits).
#[derive(Debug, Clone, Copy, Default)]
pub struct LongSerializer;

impl Serializer<i64> for LongSerializer {
    fn serialize(&self, _topic: &str, data: &i64) -> Result<Vec<u8>, String> {
        Ok(data.to_be_bytes().to_vec())
    }
}

impl Serializer<u64> for LongSerializer {
    fn serialize(&self, _topic: &str, data: &u64) -> Result<Vec<u8>, String> {
        Ok(data.to_be_bytes().to_vec())
    }
}

/// Kafka's `IntegerSerializer`: 4 bytes, big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntegerSerializer;

impl Serializer<i32> for IntegerSerializer {
    fn serialize(&self, _topic: &str, data: &i32) -> Result<Vec<u8>, String> {
        Ok(data.to_be_bytes().to_vec())
    }
}

/// Kafka's `ByteArraySerializer`: the bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteArraySerializer;

impl Serializer<[u8]> for ByteArraySerializer {
    fn serialize(&self, _topic: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        Ok(data.to_vec())
    }
}

/// A numeric key serializer (`IntegerSerializer`, `LongSerializer`) for the workload's keys,
/// which the producer holds as decimal text (`"3"`): parses the text, then serializes the
/// number. Text that is not such a number is what Kafka's `Can't convert key` error reports.
#[derive(Debug, Clone, Copy)]
pub struct NumericKeySerializer(pub SerdeClass);

impl Serializer<str> for NumericKeySerializer {
    fn serialize(&self, topic: &str, data: &str) -> Result<Vec<u8>, String> {
        let cant = || {
            format!(
                "Can't convert key of class java.lang.String to class {} specified in key.serializer",
                self.0.serializer()
            )
        };
        match self.0 {
            SerdeClass::Integer => {
                IntegerSerializer.serialize(topic, &data.parse().map_err(|_| cant())?)
            }
            SerdeClass::Long => {
                LongSerializer.serialize(topic, &data.parse::<i64>().map_err(|_| cant())?)
            }
            SerdeClass::String => StringSerializer.serialize(topic, data),
        }
    }
}

/// The key serializer of `key.serializer`.
pub fn key_serializer(class: SerdeClass) -> Box<dyn Serializer<str>> {
    match class {
        SerdeClass::String => Box::new(StringSerializer),
        numeric => Box::new(NumericKeySerializer(numeric)),
    }
}

/// The value serializer of `value.serializer` (`LongSerializer` or `StringSerializer`; the
/// configuration refuses others for the workload's 64-bit values).
pub fn value_serializer(class: SerdeClass) -> Box<dyn Serializer<u64>> {
    match class {
        SerdeClass::String => Box::new(StringSerializer),
        _ => Box::new(LongSerializer),
    }
}

/// The workload's key number `n` as the producer holds it for `key.serializer`: `k{n}` for
/// `StringSerializer`, the decimal `n` for a numeric serializer.
pub fn workload_key(n: u64, class: SerdeClass) -> String {
    match class {
        SerdeClass::String => format!("k{n}"),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::SendStyle;
    use super::*;

    #[test]
    fn serializers_match_kafka() {
        assert_eq!(
            Serializer::<str>::serialize(&StringSerializer, "t", "k1"),
            Ok(b"k1".to_vec())
        );
        assert_eq!(
            Serializer::<u64>::serialize(&StringSerializer, "t", &258),
            Ok(b"258".to_vec())
        );
        assert_eq!(
            Serializer::<i64>::serialize(&LongSerializer, "t", &-2),
            Ok(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
        );
        assert_eq!(
            Serializer::<u64>::serialize(&LongSerializer, "t", &258),
            Ok(vec![0, 0, 0, 0, 0, 0, 1, 2])
        );
        assert_eq!(IntegerSerializer.serialize("t", &258), Ok(vec![0, 0, 1, 2]));
        assert_eq!(
            ByteArraySerializer.serialize("t", &[1, 2][..]),
            Ok(vec![1, 2])
        );
        assert_eq!(
            NumericKeySerializer(SerdeClass::Integer).serialize("t", "258"),
            Ok(vec![0, 0, 1, 2])
        );
        assert_eq!(SendStyle::parse("sync"), Some(SendStyle::Sync));
        assert_eq!(SendStyle::parse("blocking"), None);
        for n in SendStyle::NAMES {
            assert_eq!(SendStyle::parse(n).unwrap().name(), *n);
        }
    }
}
