//! `ksim-model`: the system under test.
//!
//! A Kafka-style cluster written as deterministic state machines (see `ARCHITECTURE.md`):
//! brokers that lead and follow partitions, a controller elected through a ZooKeeper-style
//! coordination node, and producer and consumer clients. Nothing here performs I/O, reads a
//! clock or draws randomness; the simulator (`sim/`) drives every actor through
//! [`effects::Actor`] and executes the [`effects::Effect`]s it emits.

pub mod broker;
pub mod config;
pub mod consumer;
pub mod controller;
pub mod coordination;
pub mod coordinator_runtime;
pub mod disk;
pub mod effects;
pub mod event;
pub mod group_coordinator;
pub mod log;
pub use producer::partitioner;
pub mod processor;
pub mod producer;
pub mod protocol;
pub mod record;
pub mod touched;
pub mod transaction_coordinator;
pub mod types;
/// The client side of a coordination-node session, kept at its old path.
pub mod zk_client {
    pub use crate::coordination::client::*;
}
