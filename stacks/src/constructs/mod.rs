//! CDK-style constructs: each owns a few CloudFormation resources, names
//! them, tags them, and offers typed references (ARNs, names, grants) to
//! the constructs that use it. A stack is assembled in [`crate::app`].

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cfn::{self, Template};

pub mod alarms;
pub mod api;
pub mod bucket;
pub mod dashboard;
pub mod event_source;
pub mod function;
pub mod queue;
pub mod table;

pub use alarms::Alarms;
pub use api::RestApi;
pub use bucket::{DataBucket, QueueNotification};
pub use dashboard::Dashboard;
pub use event_source::QueueEventSource;
pub use function::{Function, FunctionProps};
pub use queue::{FifoQueue, Topic, WorkQueue};
pub use table::Table;

/// What every construct of one stack shares: the name prefix and tags.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The stack name, prefix of every physical name.
    pub stack_name: String,
    /// Applied to every taggable resource.
    pub tags: BTreeMap<String, String>,
}

impl Scope {
    /// `<stack>-<suffix>`, a physical name unique within account+region.
    pub fn physical_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.stack_name)
    }

    pub fn tags(&self) -> Value {
        cfn::tag_list(&self.tags)
    }
}

/// `DeletionPolicy`/`UpdateReplacePolicy` of a resource holding data:
/// `Retain` in production (the data outlives the stack and any
/// replacement), else `Delete`.
pub fn data_policy(retain: bool) -> &'static str {
    if retain { "Retain" } else { "Delete" }
}

/// Something that adds resources (and outputs) to a template.
pub trait Construct {
    fn synth(&self, scope: &Scope, template: &mut Template);
}
