//! The OpenAPI 3.1 document of the `/v1` face, served at `GET /openapi.json` and committed as
//! `docs/openapi.json`. Nothing in it is written by hand as JSON: request bodies are the types
//! the handlers deserialize ([`crate::pingpp::bodies`]), answers the structs they serialize
//! (`paygate_domain::objects`, the http face's own objects), and the operations below are
//! checked against the route table (`every_route_is_documented`), so the document follows the
//! code. `committed_document_is_current` fails when `docs/openapi.json` is stale; regenerate it
//! with `PAYGATE_WRITE_OPENAPI=1 cargo test -p paygate-http --features openapi --lib openapi`.
//!
//! Only compiled with the `openapi` feature (utoipa is a build-time cost the release binary does
//! not pay): without it, `crate::openapi_json` serves the committed file as is.

use crate::pingpp::ErrorBody;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

/// The document as served and committed (pretty, with a final newline), built once.
pub fn openapi_json() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut text = V1::openapi().to_pretty_json().expect("the OpenAPI document serializes");
        text.push('\n');
        text
    })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paygate /v1 (Ping++-compatible)",
        description = "Orders, charges, refunds, profit sharing, members, events and webhooks of a \
                       self-hosted payment gateway. Amounts are integer fen. Authenticate with HTTP Basic \
                       (secret key as user name, empty password) or `Authorization: Bearer <secret key>`; \
                       test keys (`sk_test_…`) pay through the sandbox.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        ops::create_order, ops::list_orders, ops::get_order, ops::update_order, ops::pay_order,
        ops::order_charges, ops::order_charge, ops::create_order_refund, ops::order_refunds, ops::order_refund,
        ops::create_profit_sharing, ops::profit_sharings, ops::finish_profit_sharing, ops::profit_sharing,
        ops::return_profit_sharing, ops::add_profit_sharing_receiver, ops::remove_profit_sharing_receiver,
        ops::create_charge, ops::list_charges, ops::get_charge, ops::reverse_charge,
        ops::create_charge_refund, ops::charge_refunds,
        ops::charge_refund, ops::sandbox_pay, ops::create_member, ops::get_member, ops::top_up,
        ops::balance_transactions, ops::set_fee_rate, ops::list_events, ops::get_event, ops::event_deliveries,
        ops::resend_event, ops::create_webhook_endpoint, ops::webhook_endpoints, ops::delete_webhook_endpoint,
        ops::update_webhook_endpoint,
        ops::webhook_public_key, ops::set_channel_account, ops::get_channel_account, ops::channel_accounts,
        ops::delete_channel_account, reconcile_ops::run_reconciliation, reconcile_ops::reconciliations,
        reconcile_ops::get_reconciliation, reconcile_ops::reconciliation_discrepancies,
        reconcile_ops::reconciliation_bill, reconcile_ops::discrepancies, reconcile_ops::resolve_discrepancy,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    security(("basic" = []), ("bearer" = [])),
)]
struct V1;

/// What every operation shares, added to each rather than repeated in each attribute: the
/// error answers (one `Error` schema for all), `Idempotency-Key` on POST/PUT, the auth schemes.
struct Conventions;

const ERRORS: &[(&str, &str)] = &[
    ("400", "Invalid request: a field is missing, malformed or out of range (`param` names it)."),
    ("401", "No valid secret key, or a missing or bad request signature."),
    ("404", "No such object for this key (another app's or mode's objects are not found either)."),
    ("405", "The path does not take this method (`Allow` lists the ones it does)."),
    ("413", "The body exceeds 1 MiB."),
    ("414", "The request URI exceeds 8 KiB."),
    ("429", "Too many requests."),
    ("503", "The database is unavailable; retry after `Retry-After` seconds."),
];

/// Only requests that change something can conflict with an object's state or a running
/// request with the same key (409), or be refused by a payment channel (402).
const WRITE_ERRORS: &[(&str, &str)] = &[
    ("402", "The payment channel refused the request or is unavailable."),
    ("409", "The request conflicts with the object's state, or the same Idempotency-Key is still running."),
];

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sk_test_… / sk_live_…").build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let reads = [&mut item.get, &mut item.delete];
            for op in reads.into_iter().flatten() {
                add_errors(op, ERRORS);
            }
            for op in [&mut item.post, &mut item.put].into_iter().flatten() {
                add_errors(op, ERRORS);
                add_errors(op, WRITE_ERRORS);
                op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(
                    ParameterBuilder::new()
                        .name("Idempotency-Key")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some(
                            "Replays the first answer (status and bytes) for 24 h with `Idempotent-Replayed: true`; \
                             another request under the same key is an `idempotency_error`.",
                        ))
                        .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String)))
                        .build(),
                ));
            }
        }
    }
}

fn add_errors(op: &mut Operation, errors: &[(&str, &str)]) {
    for (status, description) in errors {
        op.responses.responses.insert(status.to_string(), RefOr::T(error_response(status, description)));
    }
}

fn error_response(status: &str, description: &str) -> Response {
    let mut response = ResponseBuilder::new()
        .description(description.to_string())
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build());
    let integer = || utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer);
    let string = || utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
    match status {
        "405" => response = response.header("Allow", HeaderBuilder::new().schema(Some(string())).build()),
        "503" => response = response.header("Retry-After", HeaderBuilder::new().schema(Some(integer())).build()),
        _ => {}
    }
    response.build()
}

// The operations: each function of `ops` only carries its attribute.
mod ops;
mod reconcile_ops;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn committed_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = openapi_json();
        if std::env::var_os("PAYGATE_WRITE_OPENAPI").is_some() {
            std::fs::write(path, generated).expect("write docs/openapi.json");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: regenerate it with \
             `PAYGATE_WRITE_OPENAPI=1 cargo test -p paygate-http --features openapi --lib openapi` \
             and commit it"
        );
    }

    /// Every `/v1` route and method of the router's table is in the document, and nothing else.
    #[test]
    fn every_route_is_documented() {
        let doc: Value = serde_json::from_str(openapi_json()).unwrap();
        let mut documented: Vec<String> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let pattern: Vec<&str> = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect();
            for method in item.as_object().unwrap().keys() {
                documented.push(format!("{} {}", method.to_uppercase(), pattern.join("/")));
            }
        }
        let mut listed: Vec<String> = crate::routes::listed_routes()
            .into_iter()
            .filter(|(path, _)| path.starts_with("/v1/"))
            .map(|(path, method)| format!("{method} {path}"))
            .collect();
        documented.sort();
        listed.sort();
        assert_eq!(documented, listed);
    }

    #[test]
    fn document_is_openapi_3_1_with_both_auth_schemes() {
        let doc: Value = serde_json::from_str(openapi_json()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(
            (schemes["basic"]["scheme"].as_str(), schemes["bearer"]["scheme"].as_str()),
            (Some("basic"), Some("bearer"))
        );
        let create = &doc["paths"]["/v1/orders"]["post"];
        assert!(create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].is_string(), "{create}");
        assert_eq!(doc["components"]["schemas"]["Order"]["properties"]["id"]["pattern"], "^[0-9]{19}$");
    }
}
