//! The JSON Schemas committed under `schemas/` at the repository root, for
//! editors (the stack YAML) and for the consumers of the queues and the
//! topic. Each is generated from its Rust type by the crate that owns the
//! type, and a test there fails when the committed file is stale.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

/// A committed schema: its file under `schemas/`, the type it is generated
/// from, and what regenerates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaFile {
    pub file: &'static str,
    pub describes: &'static str,
    /// Run it and commit the file.
    pub regenerate: &'static str,
}

/// Every committed schema.
pub const FILES: [SchemaFile; 3] = [STACK, SCAN_MESSAGE, RESULT_MESSAGE];

/// `stacks/<name>.yaml` (`face_stacks::DeploymentFile`).
pub const STACK: SchemaFile = SchemaFile {
    file: "stack.schema.json",
    describes: "a deployment, stacks/<name>.yaml",
    regenerate: "UPDATE_SCHEMAS=1 cargo test -p face-stacks --test schema",
};

/// The scan queue's bodies ([`crate::messages::ScanMessage`]).
pub const SCAN_MESSAGE: SchemaFile = SchemaFile {
    file: "scan-message.schema.json",
    describes: "a scan queue body: a job's plan request or one chunk",
    regenerate: "UPDATE_SCHEMAS=1 cargo test -p face-contracts",
};

/// The results queue's bodies and the results topic's messages
/// (`face_service::recognize::ResultMessage`).
pub const RESULT_MESSAGE: SchemaFile = SchemaFile {
    file: "result-message.schema.json",
    describes: "a results queue body, and a results topic message (an ended video job)",
    regenerate: "UPDATE_SCHEMAS=1 cargo test -p face-service --lib schema",
};

/// The schema of `T` as committed: JSON Schema 2020-12, pretty-printed,
/// with a final newline.
pub fn render<T: JsonSchema>() -> String {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    // A schema is a JSON object; printing it cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ScanMessage;

    #[test]
    fn committed_scan_message_schema_is_up_to_date() {
        let path = format!(
            "{}/../schemas/{}",
            env!("CARGO_MANIFEST_DIR"),
            SCAN_MESSAGE.file
        );
        let generated = render::<ScanMessage>();
        if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/{} is out of date with the Rust types: run `{}` and commit it",
            SCAN_MESSAGE.file,
            SCAN_MESSAGE.regenerate
        );
    }

    #[test]
    fn the_scan_message_schema_closes_each_variant() {
        let schema: serde_json::Value = serde_json::from_str(&render::<ScanMessage>()).unwrap();
        let variants = schema["oneOf"].as_array().expect("one schema per variant");
        assert_eq!(variants.len(), 2);
        for v in variants {
            assert_eq!(v["additionalProperties"], false, "{v}");
            assert!(v["required"].as_array().unwrap().contains(&"type".into()));
        }
    }
}
