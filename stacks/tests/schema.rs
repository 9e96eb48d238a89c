//! `schemas/stack.schema.json`: the JSON Schema of `stacks/<name>.yaml`
//! that editors validate against (the yaml-language-server comment on each
//! file's first line). Generated from [`DeploymentFile`], committed, and
//! checked here: up to date, closed like the serde types
//! (`deny_unknown_fields`), and satisfied by every shipped deployment.

use face_contracts::schema::{self, STACK};
use face_stacks::DeploymentFile;
use face_stacks::config::EMBEDDED;
use serde_json::Value;

fn committed_path() -> String {
    format!("{}/../schemas/{}", env!("CARGO_MANIFEST_DIR"), STACK.file)
}

fn stack_schema() -> Value {
    serde_json::from_str(&schema::render::<DeploymentFile>()).unwrap()
}

#[test]
fn committed_stack_schema_is_up_to_date() {
    let generated = schema::render::<DeploymentFile>();
    if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(committed_path(), &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/{} is out of date with face_stacks::config: run `{}` and commit it",
        STACK.file,
        STACK.regenerate
    );
}

#[test]
fn every_shipped_stack_names_the_schema_and_satisfies_it() {
    let schema = stack_schema();
    let header = format!("# yaml-language-server: $schema=../schemas/{}", STACK.file);
    for (name, yaml) in EMBEDDED {
        assert_eq!(
            yaml.lines().next(),
            Some(header.as_str()),
            "stacks/{name}.yaml: the first line points editors at the schema"
        );
        DeploymentFile::from_yaml(yaml).unwrap_or_else(|e| panic!("stacks/{name}.yaml: {e}"));
        let value: Value = serde_norway::from_str(yaml).unwrap();
        let errors = validate(&schema, &schema, &value, "");
        assert!(errors.is_empty(), "stacks/{name}.yaml: {errors:#?}");
    }
}

#[test]
fn the_schema_refuses_what_serde_refuses() {
    let schema = stack_schema();
    // Every object of the file is closed, as its serde type is.
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def.get("properties").is_some() {
            assert_eq!(def["additionalProperties"], false, "$defs/{name}");
        }
    }
    assert_eq!(schema["additionalProperties"], false);
    let valid = "name: face-x\nregions:\n  eu-west-1: {}\n";
    let cases = [
        // A misspelled setting, at each level.
        "name: face-x\nregion:\n  eu-west-1: {}\n",
        "name: face-x\nregions:\n  eu-west-1:\n    memory_mb: 1024\n",
        "name: face-x\nregions:\n  eu-west-1:\n    api:\n      rate: 5\n",
        "name: face-x\nregions:\n  eu-west-1:\n    functions:\n      enroll:\n        batch_size: 2\n",
        // A function that does not exist.
        "name: face-x\nregions:\n  eu-west-1:\n    functions:\n      detect: {}\n",
        // The wrong type, and a required field missing.
        "name: face-x\nregions:\n  eu-west-1:\n    memory_mib: lots\n",
        "regions:\n  eu-west-1: {}\n",
    ];
    for yaml in [valid].into_iter().chain(cases) {
        let by_serde = DeploymentFile::from_yaml(yaml).is_ok();
        let value: Value = serde_norway::from_str(yaml).unwrap();
        let errors = validate(&schema, &schema, &value, "");
        assert_eq!(
            errors.is_empty(),
            by_serde,
            "{yaml}: serde {} it, the schema says {errors:?}",
            if by_serde { "takes" } else { "refuses" }
        );
        assert_eq!(by_serde, yaml == valid, "{yaml}");
    }
}

/// A validator of the keywords the generated schema uses (an unknown one
/// fails the test rather than being skipped): enough to hold the shipped
/// YAML to the schema without a JSON Schema crate.
fn validate(root: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let Some(schema) = schema.as_object() else {
        // `true`: anything.
        return Vec::new();
    };
    let mut errors = Vec::new();
    let at = if path.is_empty() { "/" } else { path };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "title" | "description" | "default" | "format" | "$defs" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("unsupported $ref {rule}"));
                errors.extend(validate(root, &root["$defs"][name], value, path));
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("type {rule}"),
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    errors.push(format!("{at}: {value} is not of type {types:?}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    errors.push(format!("{at}: {value} is not {rule}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(bound)) = (value.as_f64(), rule.as_f64()) {
                    let ok = if keyword == "minimum" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        errors.push(format!("{at}: {n} is past the {keyword} {bound}"));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for field in rule.as_array().unwrap() {
                        let field = field.as_str().unwrap();
                        if !object.contains_key(field) {
                            errors.push(format!("{at}: {field} is required"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (key, property) in rule.as_object().unwrap() {
                        if let Some(v) = object.get(key) {
                            errors.extend(validate(root, property, v, &format!("{path}/{key}")));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (key, v) in object {
                        if known.is_some_and(|k| k.contains_key(key)) {
                            continue;
                        }
                        if rule == &Value::Bool(false) {
                            errors.push(format!("{at}: unknown field {key}"));
                        } else {
                            errors.extend(validate(root, rule, v, &format!("{path}/{key}")));
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(object) = value.as_object() {
                    for key in object.keys() {
                        let name = Value::String(key.clone());
                        for e in validate(root, rule, &name, &format!("{path}/{key}")) {
                            errors.push(format!("{e} (a field name)"));
                        }
                    }
                }
            }
            "anyOf" | "oneOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| validate(root, s, value, path).is_empty())
                    .count();
                let ok = if keyword == "anyOf" {
                    matching > 0
                } else {
                    matching == 1
                };
                if !ok {
                    errors.push(format!("{at}: {value} matches {matching} of {keyword}"));
                }
            }
            other => panic!("the test's validator does not know the keyword {other:?}"),
        }
    }
    errors
}

fn has_type(value: &Value, json_type: &str) -> bool {
    match json_type {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("type {other}"),
    }
}
