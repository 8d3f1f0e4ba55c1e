//! Typed configuration with Kafka's own names and defaults.
//!
//! Scenario files write configuration as Kafka properties (`"min.insync.replicas" = 2`,
//! `acks = "all"`). [`Properties`] holds them as written; each `*Config::from_properties`
//! checks every key against the table of known keys, parses values the way Kafka's
//! `ConfigDef` does (a string or the natural type), applies Kafka's defaults and cross-field
//! rules, and returns a [`ConfigError`] naming the key for anything else.
//!
//! Defaults are those of Apache Kafka 3.x (`KafkaConfig`, `ProducerConfig`, `ConsumerConfig`).
//!
//! # Where each part lives
//! * `mod.rs`: [`Properties`] as written and [`ConfigError`];
//! * [`broker`]: [`BrokerConfig`] (`KafkaConfig`, with ksim's `sim.*` keys);
//! * [`topic`]: [`TopicConfig`] (`LogConfig`'s topic overrides);
//! * [`producer`]: [`ProducerConfig`] (`ProducerConfig`);
//! * [`consumer`]: [`ConsumerConfig`] (`ConsumerConfig`);
//! * [`client_classes`]: the serializer, deserializer and interceptor classes ksim provides;
//! * [`config_def`]: the key tables' machinery and the value parsing (`ConfigDef`);
//! * [`not_supported`]: the Kafka settings whose feature is not implemented yet.
//!
//! Each family's file holds its struct, its defaults and its table of keys.

pub mod broker;
pub mod client_classes;
pub mod config_def;
pub mod consumer;
pub mod not_supported;
pub mod producer;
#[cfg(test)]
mod tests;
pub mod topic;

pub use broker::{BrokerCompression, BrokerConfig, TruncationMode};
pub use client_classes::{InterceptorClass, SerdeClass};
pub use config_def::{closest_match, known_keys, parse_ms, ConfigKind};
pub use consumer::{AutoOffsetReset, ConsumerConfig};
pub use not_supported::{NotSupportedYet, NOT_SUPPORTED_YET};
pub use producer::ProducerConfig;
pub use topic::TopicConfig;

use broker::*;
use client_classes::*;
use config_def::*;
use consumer::*;
use producer::*;
use topic::*;

use crate::log::{CleanupPolicy, LogConfig};
use crate::protocol::{Acks, IsolationLevel};
use crate::record::Compression;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A property value as the user wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PropValue>),
}

impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropValue::Bool(b) => write!(f, "{b}"),
            PropValue::Int(i) => write!(f, "{i}"),
            PropValue::Float(x) => write!(f, "{x}"),
            PropValue::Str(s) => write!(f, "{s}"),
            PropValue::List(l) => {
                let parts: Vec<String> = l.iter().map(|v| v.to_string()).collect();
                write!(f, "{}", parts.join(","))
            }
        }
    }
}

/// Properties in the order the user wrote them does not matter; keys are sorted.
pub type Properties = BTreeMap<String, PropValue>;

/// A configuration error, worded like Kafka's `ConfigException` where Kafka has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending key (`acks`, `min.insync.replicas`, ...).
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}
