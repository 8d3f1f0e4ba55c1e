//! ksim: the simulated world around the model: runtime, simulated disk, transport, nemesis,
//! workloads, history, checkers, scenario loader and reports.

pub mod bench;
pub mod check;
pub mod disk;
pub mod history;
pub mod scenario;
