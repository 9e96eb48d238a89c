//! `facectl`: the local, embedded default of the face system. Reads image
//! files and model files, keeps collections in a local directory, and
//! drives `face-core`. The library half exists so tests and the benchmark
//! harness can call the same code the binary runs.

pub mod annotate;
pub mod bench;
pub mod cloud;
pub mod eval;
pub mod models;
pub mod remote;
pub mod results;
pub mod scan;
pub mod store;
