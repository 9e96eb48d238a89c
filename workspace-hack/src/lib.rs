//! Nothing to use: this crate exists for the features its manifest turns on
//! (see its Cargo.toml).
