//! `face-contracts`: the names and shapes that more than one part of the
//! system relies on, defined once. The stack (`face-stacks`) writes them
//! into the template, the functions (`face-service` and the binaries) read
//! them at run time, the coordinator, `facectl` and `xtask` reach the
//! deployed resources through them.
//!
//! - [`Architecture`]: Lambda's instruction sets, by Lambda's names.
//! - [`env`]: every `FACE_*` environment variable, and what a function
//!   assumes when one is unset.
//! - [`layout`]: the data bucket's key layout (prefixes and key builders).
//! - [`tables`]: the DynamoDB tables' key attributes.
//! - [`metrics`]: the functions' CloudWatch namespace, dimension and
//!   metric names.
//! - [`api`]: the HTTPS API's stage and key header.
//! - [`messages`]: the scan queue's messages and the results topic's
//!   subject.
//! - [`schema`]: how the committed JSON Schemas (`schemas/`) are rendered.
//!
//! Pure data: serde, no I/O, no `face-core`. A value here changes a
//! deployed contract: the stack snapshots (`stacks/tests/snapshots`) and
//! the committed schemas show it.

pub mod api;
mod architecture;
pub mod env;
pub mod layout;
pub mod messages;
pub mod metrics;
pub mod schema;
pub mod tables;

pub use architecture::Architecture;
