//! ksim: the simulated world around the model: runtime, simulated disk, transport, nemesis,
//! workloads, history, checkers, scenario loader and reports.

pub mod bench;
pub mod check;
pub mod cli;
pub mod disk;
pub mod history;
pub mod nemesis;
pub mod observer;
pub mod reach;
pub mod reach_txn;
pub mod report;
pub mod run;
pub mod runtime;
pub mod scenario;
pub mod shrink;
pub mod snapshot;
pub mod transport;
pub mod workload;
pub mod world;
