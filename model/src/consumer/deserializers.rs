//! Kafka's `Deserializer<T>` for the workload's values (`value.deserializer`:
//! `LongDeserializer`, `StringDeserializer`), and what the application meets when one cannot
//! read a record.

use crate::config::SerdeClass;

/// The workload's value from a record's value bytes under `value.deserializer`, or the
/// exception (name, message) the application meets: `LongDeserializer` throws
/// `SerializationException` unless the value is 8 bytes (wrapped by the fetcher into
/// `RecordDeserializationException`); `StringDeserializer` reads any bytes, and the
/// application's `Long.parseLong` throws `NumberFormatException` unless they are decimal
/// digits. `IntegerDeserializer` is refused by the configuration for the 64-bit values.
pub fn deserialize_value(class: SerdeClass, bytes: &[u8]) -> Result<u64, (&'static str, String)> {
    match class {
        SerdeClass::String => {
            let text = String::from_utf8_lossy(bytes);
            text.parse::<u64>().map_err(|_| {
                (
                    "NumberFormatException",
                    format!("For input string: \"{}\"", text.escape_debug()),
                )
            })
        }
        SerdeClass::Integer | SerdeClass::Long => {
            let size = if class == SerdeClass::Long { 8 } else { 4 };
            if bytes.len() != size {
                return Err((
                    "RecordDeserializationException",
                    format!(
                        "org.apache.kafka.common.errors.SerializationException: Size of data \
                         received by {} is not {size}",
                        class.deserializer_simple_name()
                    ),
                ));
            }
            Ok(if size == 8 {
                u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
            } else {
                u32::from_be_bytes(bytes.try_into().expect("4 bytes")) as u64
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `StringDeserializer` reads any bytes; the application's `Long.parseLong` of the
    /// workload's value is what fails on LongSerializer's bytes. Decimal text reads back.
    #[test]
    fn string_deserializer_reads_decimal_values_and_fails_on_long_bytes() {
        assert_eq!(
            deserialize_value(SerdeClass::String, b"4294967304"),
            Ok(4294967304)
        );
        assert_eq!(
            deserialize_value(SerdeClass::Long, &4294967304u64.to_be_bytes()),
            Ok(4294967304)
        );
        let (exception, message) =
            deserialize_value(SerdeClass::String, &7u64.to_be_bytes()).unwrap_err();
        assert_eq!(exception, "NumberFormatException");
        assert!(message.starts_with("For input string: \""), "{message}");
    }
}
