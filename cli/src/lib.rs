//! `facectl`: the local, embedded default of the face system. Reads image
//! files and model files, keeps collections in a local directory, and
//! drives `face-core`. The library half exists so tests and the benchmark
//! harness can call the same code the binary runs.
//!
//! With the `cloud` feature, also what talks to a deployed stack: `remote`
//! (its HTTPS API), `cloud` (a video scan on its functions) and `results`
//! (its results queue).

pub mod annotate;
pub mod bench;
#[cfg(feature = "cloud")]
pub mod cloud;
pub mod eval;
pub mod files;
pub mod models;
pub mod output;
#[cfg(feature = "cloud")]
pub mod remote;
#[cfg(feature = "cloud")]
pub mod results;
pub mod scan;
pub mod store;
pub mod xdg;
