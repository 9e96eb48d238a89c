//! The OpenAPI 3.1 document of the API, generated from the Rust types
//! (JSON Schema 2020-12, which OpenAPI 3.1 uses) and the route table.
//! `api/openapi.json` is this document, committed; a test fails when it is
//! out of date (`UPDATE_OPENAPI=1 cargo test -p face-api` rewrites it).

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ErrorCode};
use crate::routes::{COMMON_ERRORS, ROUTES, schema_of};

/// The security scheme's name in the document.
pub const SECURITY_SCHEME: &str = "apiKey";

fn error_response(generator: &mut SchemaGenerator, code: ErrorCode) -> Value {
    let description = match code {
        ErrorCode::BadInput => {
            "BadInput: malformed JSON (the message names the field), an invalid name or an unusable image"
        }
        ErrorCode::NotFound => "NotFound: unknown route, collection, person, face or result",
        ErrorCode::Unauthorized => "Unauthorized: no API key, an unknown or a revoked one",
        ErrorCode::TooLarge => "TooLarge: the body is over the inline limit; use POST /v1/uploads",
        ErrorCode::Throttled => "Throttled: the key's rate per minute or quota per day is spent",
        ErrorCode::Internal => "Internal: the service failed",
    };
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema_of::<ApiError>(generator)}},
    })
}

/// The document, as JSON.
pub fn openapi_document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for route in ROUTES {
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(route.operation_id));
        operation.insert("summary".into(), json!(route.summary));
        let mut parameters: Vec<Value> = route
            .path_params()
            .map(|name| {
                json!({
                    "name": name, "in": "path", "required": true,
                    "schema": {"type": "string"},
                })
            })
            .collect();
        parameters.extend(route.query.iter().map(|q| {
            json!({
                "name": q.name, "in": "query", "required": false,
                "description": q.description, "schema": {"type": q.json_type},
            })
        }));
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(request) = route.request {
            let mut content = Map::new();
            content.insert(
                "application/json".into(),
                json!({"schema": request(&mut generator)}),
            );
            if route.raw_image_body {
                content.insert(
                    "image/*".into(),
                    json!({"schema": {"type": "string", "contentMediaType": "image/*"}}),
                );
            }
            operation.insert(
                "requestBody".into(),
                json!({"required": true, "content": content}),
            );
        }
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({
                "description": "OK",
                "content": {"application/json": {"schema": (route.response)(&mut generator)}},
            }),
        );
        let mut codes: Vec<ErrorCode> = route.errors.to_vec();
        codes.extend(COMMON_ERRORS.iter().copied());
        codes.sort_by_key(|c| c.status());
        codes.dedup();
        for code in codes {
            responses.insert(
                code.status().to_string(),
                error_response(&mut generator, code),
            );
        }
        operation.insert("responses".into(), Value::Object(responses));
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.method.to_ascii_lowercase(), Value::Object(operation));
        }
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "face recognition API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Detect, compare, enroll and search faces in a deployed stack. \
                Every request carries an API key in the x-api-key header. \
                Errors are {\"error\": {\"code\", \"message\"}}.",
        },
        "servers": [{
            "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/live",
            "variables": {
                "restApiId": {"default": "example", "description": "the stack's REST API (the deploy record's api_url)"},
                "region": {"default": "us-east-1"},
            },
        }],
        "security": [{SECURITY_SCHEME: []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {"type": "apiKey", "in": "header", "name": face_contracts::api::KEY_HEADER},
            },
        },
    })
}

/// The document as committed: pretty JSON and a final newline.
pub fn openapi_json() -> String {
    let mut text = serde_json::to_string_pretty(&openapi_document()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

    #[test]
    fn committed_document_is_up_to_date() {
        let generated = openapi_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
            std::fs::write(COMMITTED, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == generated,
            "api/openapi.json is out of date with the Rust types: \
             run `UPDATE_OPENAPI=1 cargo test -p face-api` and commit it"
        );
    }

    #[test]
    fn every_route_and_reference_is_documented() {
        let doc = openapi_document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], route.operation_id, "{}", route.path);
            assert!(op["responses"]["200"].is_object());
            assert!(op["responses"]["403"].is_object());
            assert!(op["responses"]["429"].is_object());
        }
        // Every $ref points into components/schemas and resolves.
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = part.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("ref outside components: {target}"));
            assert!(schemas.contains_key(name), "unresolved {target}");
        }
        for name in [
            "DetectedFace",
            "Candidate",
            "RelativeBox",
            "ApiError",
            "SearchFace",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["apiKey"]["name"],
            "x-api-key"
        );
    }
}
