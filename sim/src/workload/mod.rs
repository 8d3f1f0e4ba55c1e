//! Workloads: the clients that drive the cluster during a run, as Jepsen's and FoundationDB's
//! workloads do. [`producer`] offers records, [`consumer`] reads them back; what each client
//! does is the model's (`ksim_model::producer`, `ksim_model::consumer`), how many run and with
//! which settings is the scenario's, and this module turns the one into the other.

pub mod consumer;
pub mod processor;
pub mod producer;
