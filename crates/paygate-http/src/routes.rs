//! Which face a path belongs to, and which methods each of its routes takes. The router uses
//! this before anything else, so an unknown path is a 404 and a known path with the wrong
//! method a 405 with `Allow`, both in the face's own error format, before authentication.
//! The handlers still match their own routes; `every_listed_route_is_handled` (tests) keeps
//! the two in step.

use hyper::Method;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Face {
    /// Ping++ `/v1`, and anything unrecognised: `{"error": {type, code, message, param}}`.
    Pingpp,
    /// 知晓云 `/hserve`: `{error_msg, message, …}` with CORS headers on every answer.
    Hserve,
    /// 酷点 cashier: a `{result, sign}` envelope.
    Cashier,
    /// SaaS WeChat-Pay query: `{return_code, error_code, error_msg, sign}`.
    Saas,
    /// The sandbox pay page a person opens in a browser: HTML.
    SandboxPage,
    /// `/healthz`, `/readyz`, `/metrics`: plain text; `/openapi.json`: the `/v1` document.
    Ops,
    /// The merchant console `/console`: HTML pages (`console/`).
    Console,
}

use Method as M;

const GET: &[Method] = &[M::GET];
const POST: &[Method] = &[M::POST];
const GET_POST: &[Method] = &[M::GET, M::POST];

/// `/v1/…` routes (`*` = one path segment).
const PINGPP: &[(&str, &[Method])] = &[
    ("orders", GET_POST),
    ("orders/*", &[M::GET, M::PUT]),
    ("orders/*/pay", POST),
    ("orders/*/charges", GET),
    ("orders/*/charges/*", GET),
    ("orders/*/order_refunds", GET_POST),
    ("orders/*/order_refunds/*", GET),
    ("orders/*/profit_sharings", GET_POST),
    ("orders/*/profit_sharings/finish", POST),
    ("orders/*/profit_sharings/*", GET),
    ("orders/*/profit_sharings/*/returns", POST),
    ("profit_sharing_receivers", POST),
    ("profit_sharing_receivers/*/*", &[M::DELETE]),
    ("charges", GET_POST),
    ("charges/*", GET),
    ("charges/*/reverse", POST),
    ("charges/*/refunds", GET_POST),
    ("charges/*/refunds/*", GET),
    ("sandbox/charges/*/pay", POST),
    ("members", POST),
    ("members/*", GET),
    ("members/*/topups", POST),
    ("members/*/balance_transactions", GET),
    ("fee_rates", POST),
    ("channel_accounts", GET),
    ("channel_accounts/*", &[M::GET, M::PUT, M::DELETE]),
    ("reconciliations", GET_POST),
    ("reconciliations/*", GET),
    ("reconciliations/*/discrepancies", GET),
    ("reconciliations/*/bill", GET),
    ("reconciliation_discrepancies", GET),
    ("reconciliation_discrepancies/*/resolve", POST),
    ("events", GET),
    ("events/*", GET),
    ("events/*/deliveries", GET),
    ("events/*/resend", POST),
    ("webhook_endpoints", GET_POST),
    ("webhook_endpoints/*", &[M::POST, M::DELETE]),
    ("webhook_public_key", GET),
];

/// `/hserve/…` routes; every one also answers `OPTIONS` (CORS preflight).
const HSERVE: &[(&str, &[Method])] = &[
    ("v2.0/login/anonymous", POST),
    ("v2.1/register/username", POST),
    ("v2.1/login/username", POST),
    ("v2.0/session/destroy", POST),
    ("*/user/info/*", GET),
    ("v2.2/idp/pay/order", GET_POST),
    ("*/idp/pay/order/*", GET),
    ("v2.2/idp/pay/refund", POST),
    ("v2.2/idp/pay/wechat/profit-sharing", POST),
    ("v2.2/idp/pay/wechat/multi-profit-sharing", POST),
    ("v2.2/idp/pay/alipay/profit-sharing", POST),
    ("v2.2/idp/pay/wechat/profit-sharing/finish", POST),
    ("v2.2/idp/pay/profit-sharing/return", POST),
];

const CASHIER: &[(&str, &[Method])] = &[("pay", POST), ("query", POST), ("refund", POST), ("reverse", POST)];
const SAAS: &[(&str, &[Method])] = &[("", POST)];
const SANDBOX_PAGE: &[(&str, &[Method])] = &[("*", GET_POST)];
const OPS: &[(&str, &[Method])] = &[("healthz", GET), ("readyz", GET), ("metrics", GET), ("openapi.json", GET)];
/// `/console/…` routes; the first segment of a page is the mode (`test` or `live`).
const CONSOLE: &[(&str, &[Method])] = &[
    ("", GET),
    ("style.css", GET),
    ("login", GET_POST),
    ("logout", POST),
    ("*/payments", GET),
    ("*/payments/*", GET),
    ("*/payments/*/refunds", POST),
    ("*/payments/*/charges/*/pay", POST),
    ("*/audit", GET),
    ("*", GET),
    ("*/payments.csv", GET),
    ("*/members", GET),
    ("*/members/*", GET),
    ("*/webhooks", GET_POST),
    ("*/webhooks/*/delete", POST),
    ("*/webhooks/*/disable", POST),
    ("*/webhooks/*/enable", POST),
    ("*/webhooks/events/*/resend", POST),
    ("*/developers", GET),
    ("*/developers/roll-key", POST),
    ("*/developers/public-key", POST),
    ("*/developers/fee-rates", POST),
    ("*/reconciliations", GET_POST),
    ("*/reconciliations/*", GET),
    ("*/reconciliations/*/bill", GET),
    ("*/reconciliations/*/csv", GET),
    ("*/discrepancies", GET),
    ("*/discrepancies/*/resolve", POST),
];

/// The face of a path, and the rest of the path below the face's prefix.
pub(crate) fn face_of<'a>(segments: &'a [&'a str]) -> (Face, &'a [&'a str]) {
    match segments {
        ["v1", rest @ ..] => (Face::Pingpp, rest),
        ["hserve", rest @ ..] => (Face::Hserve, rest),
        ["api", "v2", "cashier", rest @ ..] => (Face::Cashier, rest),
        ["api", "v1", "pay", "wx", "query", rest @ ..] => (Face::Saas, rest),
        ["sandbox", "charges", rest @ ..] => (Face::SandboxPage, rest),
        ["healthz" | "readyz" | "metrics" | "openapi.json"] => (Face::Ops, segments),
        ["console", rest @ ..] => (Face::Console, rest),
        _ => (Face::Pingpp, segments),
    }
}

impl Face {
    /// Every face, in declaration order (`face as usize` indexes it).
    const ALL: [Face; 7] =
        [Face::Pingpp, Face::Hserve, Face::Cashier, Face::Saas, Face::SandboxPage, Face::Ops, Face::Console];

    fn table(self) -> &'static [(&'static str, &'static [Method])] {
        match self {
            Face::Pingpp => PINGPP,
            Face::Hserve => HSERVE,
            Face::Cashier => CASHIER,
            Face::Saas => SAAS,
            Face::SandboxPage => SANDBOX_PAGE,
            Face::Ops => OPS,
            Face::Console => CONSOLE,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Face::Pingpp => "/v1/",
            Face::Hserve => "/hserve/",
            Face::Cashier => "/api/v2/cashier/",
            Face::Saas => "/api/v1/pay/wx/query",
            Face::SandboxPage => "/sandbox/charges/",
            Face::Ops => "/",
            Face::Console => "/console/",
        }
    }

    /// The face's routes, split into segments once: matching a request compares segments and
    /// allocates nothing.
    fn routes(self) -> &'static [Route] {
        static ROUTES: [OnceLock<Vec<Route>>; Face::ALL.len()] = [const { OnceLock::new() }; Face::ALL.len()];
        ROUTES[self as usize].get_or_init(|| {
            let prefix = self.prefix();
            let route = |(pattern, methods): &(&'static str, &'static [Method])| {
                let segments: Vec<&'static str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
                let literals = segments.iter().filter(|s| **s != "*").count();
                Route { template: format!("{prefix}{pattern}"), segments, literals, methods }
            };
            self.table().iter().map(route).collect()
        })
    }

    /// The methods `rest` answers to (with `HEAD` wherever `GET` is); empty when the path is
    /// not a route of this face. `whole_path_known` is false for unrecognised top-level paths.
    pub(crate) fn allowed(self, rest: &[&str], whole_path_known: bool) -> Vec<Method> {
        if !whole_path_known {
            return Vec::new();
        }
        // A literal segment beats a `*`: `orders/*/profit_sharings/finish` takes POST only, although
        // `orders/*/profit_sharings/*` (GET) matches it too — `finish` is never a share's id, and
        // `Allow` must not advertise a GET that can only ever answer 404.
        let matching = self.routes().iter().filter(|r| r.matches(rest));
        let most = matching.clone().map(|r| r.literals).max().unwrap_or(0);
        let mut allowed: Vec<Method> = Vec::new();
        for route in matching.filter(|r| r.literals == most) {
            for m in route.methods {
                if !allowed.contains(m) {
                    allowed.push(m.clone());
                }
            }
        }
        if allowed.contains(&Method::GET) {
            allowed.push(Method::HEAD);
        }
        if self == Face::Hserve && !allowed.is_empty() {
            allowed.push(Method::OPTIONS);
        }
        allowed
    }

    /// The route `rest` matched, as a template (`/v1/orders/*/pay`): what request logs and
    /// metrics are labelled with, so ids never become label values.
    pub(crate) fn template(self, rest: &[&str]) -> Option<&'static str> {
        // The most specific pattern wins: `orders/*/profit_sharings/finish` over `…/*`.
        let routes = self.routes().iter().filter(|r| r.matches(rest));
        routes.max_by_key(|r| r.literals).map(|r| r.template.as_str())
    }
}

/// One line of a face's table, ready to match.
struct Route {
    /// The pattern's segments; `*` matches any one.
    segments: Vec<&'static str>,
    /// How many segments are literal: of two patterns that match, the one with more decides.
    literals: usize,
    /// The face's prefix and the pattern: the label of the requests it matches.
    template: String,
    methods: &'static [Method],
}

impl Route {
    fn matches(&self, rest: &[&str]) -> bool {
        self.segments.len() == rest.len() && self.segments.iter().zip(rest).all(|(p, s)| *p == "*" || p == s)
    }
}

/// Whether the path starts with a known face prefix (an unknown prefix is a plain 404).
pub(crate) fn known_prefix(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["v1", ..]
            | ["hserve", ..]
            | ["api", "v2", "cashier", ..]
            | ["api", "v1", "pay", "wx", "query", ..]
            | ["sandbox", "charges", ..]
            | ["healthz" | "readyz" | "metrics" | "openapi.json"]
            | ["console", ..]
    )
}

/// Every `(face, path, method)` the tables list, with `x` for each `*`: for tests that
/// check each listed route reaches its handler.
pub fn listed_routes() -> Vec<(String, Method)> {
    let mut out = Vec::new();
    for face in Face::ALL {
        let prefix = face.prefix();
        for (pattern, methods) in face.table() {
            let path = pattern.split('/').map(|p| if p == "*" { "x" } else { p }).collect::<Vec<_>>().join("/");
            for m in methods.iter() {
                out.push((format!("{prefix}{path}"), m.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_methods_follow_the_tables() {
        let (face, rest) = face_of(&["v1", "orders", "o1"]);
        assert_eq!(face, Face::Pingpp);
        assert_eq!(face.allowed(rest, true), vec![Method::GET, Method::PUT, Method::HEAD]);
        let (face, rest) = face_of(&["v1", "orders", "o1", "profit_sharings", "finish"]);
        assert_eq!(face.allowed(rest, true), vec![Method::POST]);
        let (face, rest) = face_of(&["hserve", "v2.2", "idp", "pay", "refund"]);
        assert_eq!(face.allowed(rest, true), vec![Method::POST, Method::OPTIONS]);
        let (face, rest) = face_of(&["api", "v2", "cashier", "query"]);
        assert_eq!((face, face.allowed(rest, true)), (Face::Cashier, vec![Method::POST]));
        assert!(Face::Pingpp.allowed(&["nope"], true).is_empty());
        let finish = ["orders", "o1", "profit_sharings", "finish"];
        assert_eq!(Face::Pingpp.template(&finish), Some("/v1/orders/*/profit_sharings/finish"));
        assert_eq!(Face::Hserve.template(&["v2.0", "user", "info", "7"]), Some("/hserve/*/user/info/*"));
        assert_eq!(Face::Saas.template(&[]), Some("/api/v1/pay/wx/query"));
        assert_eq!(Face::Saas.template(&["x"]), None);
        assert_eq!(Face::Pingpp.template(&["orders", "o1", "pay", "x"]), None);
        assert!(!known_prefix(&["nope"]));
        assert!(Face::ALL.iter().enumerate().all(|(i, face)| *face as usize == i));
    }
}
