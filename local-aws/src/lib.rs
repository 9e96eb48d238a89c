//! Local AWS for tests and the local stack: moto server and the Lambda
//! Runtime Interface Emulator, with the tools they need provisioned under
//! `target/tools/` (pinned, once, offline afterwards).
//!
//! ```no_run
//! use local_aws::{MotoServer, Rie};
//! # fn main() -> local_aws::Result<()> {
//! let moto = MotoServer::start()?; // killed on drop
//! let mut env = moto.client_env(); // AWS_ENDPOINT_URL, credentials, region
//! env.push(("FACE_BUCKET".into(), "faces".into()));
//! let rie = Rie::start("target/lambda/recognize/bootstrap".as_ref(), &env)?;
//! let invocation = rie.invoke(&serde_json::json!({"collection": "c", "image": "..."}))?;
//! match invocation.result {
//!     Ok(response) => println!("{response} in {:?}", invocation.wall_time),
//!     Err(function_error) => println!("{}: {}", function_error.error_type, function_error.error_message),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every call blocks (plain threads and `ureq`); from async code that is fine
//! for tests, or wrap it in `tokio::task::spawn_blocking`.

use std::path::{Path, PathBuf};

mod error;
mod moto;
mod process;
mod rie;
pub mod tools;

pub use error::{Error, Result};
pub use moto::{DEFAULT_REGION, MotoServer};
pub use process::{log_tail, stop_servers_on_signal, terminate_all};
pub use rie::{FunctionError, Invocation, Rie, RieOptions};
pub use tools::Tools;

/// The workspace root, from where this crate lives.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
