//! The OpenAPI 3.1 document, generated from the route table and the Rust types.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::error::ErrorCode;
use crate::http::error::ErrorBody;
use crate::http::routes::{Access, ROUTES};

pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let error_schema = generator.subschema_for::<ErrorBody>();

    let mut paths: Map<String, Value> = Map::new();
    for route in ROUTES {
        let mut operation = Map::new();
        operation.insert("summary".into(), json!(route.summary));
        operation.insert("tags".into(), json!([route.tag]));
        operation.insert(
            "operationId".into(),
            json!(format!("{} {}", route.method, route.path)),
        );
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "integer", "format": "uint64" } }))
            .collect();
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        match route.access {
            Access::Public => {
                operation.insert("security".into(), json!([]));
            }
            Access::Signed => {
                operation.insert("security".into(), json!([]));
                operation.insert("x-signature".into(), json!("X-AllHands-Signature: sha256=HMAC-SHA256(channel secret, \"<X-AllHands-Timestamp>.<raw body>\"); Idempotency-Key required"));
            }
            Access::Permission(p) => {
                operation.insert("x-permission".into(), json!(p.as_str()));
                operation.insert(
                    "security".into(),
                    json!([{ "session": [] }, { "apiToken": [p.as_str()] }]),
                );
            }
        }
        if let Some(request) = route.request {
            let schema = request(&mut generator);
            operation.insert("requestBody".into(), json!({ "required": true, "content": { "application/json": { "schema": schema } } }));
        }
        let success = match (route.response, route.raw_response) {
            (Some(response), _) => {
                json!({ "description": "Success", "content": { "application/json": { "schema": response(&mut generator) } } })
            }
            (None, Some(media)) => json!({ "description": "Success", "content": { media: {} } }),
            (None, None) => json!({ "description": "Success, no content" }),
        };
        let status = if route.method == "POST"
            && route.response.is_some()
            && route.path.matches('/').count() <= 3
        {
            "201"
        } else if route.response.is_none() && route.raw_response.is_none() {
            "204"
        } else {
            "200"
        };
        operation.insert(
            "responses".into(),
            json!({ status: success, "default": { "description": "An error; see x-error-codes", "content": { "application/json": { "schema": error_schema.clone() } } } }),
        );
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = Value::Object(operation);
    }
    let schemas = generator.take_definitions(true);
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| json!({ "code": c.as_str(), "status": c.http_status(), "description": c.description() }))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "AllHands API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every endpoint names the permission it requires in x-permission. Errors are {\"error\":{\"code\",\"message\"}} with the codes in x-error-codes."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::session::COOKIE_NAME, "description": "Console session; state-changing requests also need the X-CSRF-Token header." },
                "apiToken": { "type": "http", "scheme": "bearer", "description": "An API token issued under /api/v1/api-tokens." }
            }
        },
        "x-error-codes": codes,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_and_refs_resolve() {
        let doc = super::document();
        let text = doc.to_string();
        for route in crate::http::routes::ROUTES {
            assert!(
                doc["paths"][route.path][route.method.to_lowercase()].is_object(),
                "{} {}",
                route.method,
                route.path
            );
        }
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
    }
}
