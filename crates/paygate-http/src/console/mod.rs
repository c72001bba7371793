//! The merchant console at `/console`: server-rendered HTML, no JavaScript. This module is the face's edge —
//! cookies, the session, CSRF and cross-site refusals, security headers, which page — and `pages.rs` renders
//! what paygate-core answers. Every rule (who may do what, expiry, throttling, refunds) is paygate-core's.
//!
//! - Sessions: the `pg_console` cookie (HttpOnly, SameSite=Strict, Path=/console) carries a random token; paygate
//!   stores only its SHA-256. Over HTTPS it is `__Host-pg_console` (Secure, Path=/, no Domain), as is the login
//!   form's CSRF cookie, and every console answer carries `Strict-Transport-Security`.
//! - The mode is in the path (`/console/test/…`, `/console/live/…`): a link switches it, nothing is stored.
//! - Every POST is refused unless it is same-origin (`Sec-Fetch-Site`, else `Origin` against `Host`) and carries
//!   the CSRF token (the session's; before login, a double-submit cookie), compared in constant time.

mod html;
mod members;
mod overview;
mod pages;
mod pages_admin;
mod pages_reconcile;
mod payment_more;
mod payments_csv;
mod text;

use crate::request::{Incoming, Query};
use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Method, Response, StatusCode};
use paygate_core::console::{ConsoleCaller, Permission};
use paygate_core::Paygate;
use paygate_domain::{Mode, Problem, ProblemKind};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use text::Text;

/// A cookie's name over plain HTTP and over HTTPS. The `__Host-` prefix makes browsers keep the cookie only if it
/// is Secure, Path=/ and has no Domain, so neither a sibling subdomain nor a plain-HTTP answer can plant or shadow
/// it. Over plain HTTP (local use, tests) a browser refuses such a cookie, so the plain name stays.
#[derive(Debug, Clone, Copy)]
struct CookieName {
    plain: &'static str,
    host_only: &'static str,
}

impl CookieName {
    fn over(self, secure: bool) -> &'static str {
        if secure {
            self.host_only
        } else {
            self.plain
        }
    }
}

const SESSION_COOKIE: CookieName = CookieName { plain: "pg_console", host_only: "__Host-pg_console" };
/// Before login there is no session to hold a CSRF token: the login form's token is also set as this cookie
/// and the two must match (double submit; SameSite=Strict keeps other sites from sending the cookie).
const LOGIN_COOKIE: CookieName = CookieName { plain: "pg_console_login", host_only: "__Host-pg_console_login" };
/// A year, sent only over HTTPS (browsers ignore the header on plain HTTP anyway).
const HSTS: &str = "max-age=31536000";

/// The console's answer to a request the router already matched to `/console/…` (`rest` is below it).
pub(crate) async fn handle(app: &Arc<Paygate>, req: &Incoming, rest: &[&str]) -> HttpResponse {
    let t = text::pick(req.header("accept-language"));
    let secure = came_over_https(app, req);
    let response = match rest {
        [] => redirect("/console/test"),
        ["style.css"] => {
            let mut r = respond(StatusCode::OK, "text/css; charset=utf-8", html::CSS.to_string());
            r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            return with_transport_security(with_security_headers(r), secure);
        }
        ["login"] if req.method == Method::POST => login(app, req, t, secure).await,
        ["login"] => login_form(t, secure, StatusCode::OK, None),
        ["logout"] => logout(app, req, t, secure).await,
        [mode @ ("test" | "live"), page @ ..] => {
            signed_in(app, req, t, secure, Mode::from_live(*mode == "live"), page).await
        }
        _ => problem_page(t, None, &Problem::not_found("page", &req.path)),
    };
    with_transport_security(with_security_headers(no_store(response)), secure)
}

/// Error answers the router makes before the face runs (404, 405, 413 …), as a console page.
pub(crate) fn error_page(req: &Incoming, problem: &Problem) -> HttpResponse {
    let t = text::pick(req.header("accept-language"));
    with_security_headers(no_store(problem_page(t, None, problem)))
}

/// HTTPS as the operator configured it (`PAYGATE_PUBLIC_URL` is https) or as a TLS-terminating proxy says
/// (`X-Forwarded-Proto: https`). The header is trusted for this one use only: it can only make cookies Secure
/// (and `__Host-` named) and add HSTS, which never weakens anything — a client lying about it merely loses its own
/// cookie on plain HTTP, where browsers also ignore HSTS.
fn came_over_https(app: &Paygate, req: &Incoming) -> bool {
    let configured = app.policy.public_url.as_deref().is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
    configured || req.header("x-forwarded-proto").is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The cookie by the name it has over this transport; the other name is never read.
fn cookie(req: &Incoming, name: CookieName, secure: bool) -> Option<&str> {
    let name = name.over(secure);
    req.headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(response: &mut HttpResponse, name: CookieName, value: &str, secure: bool, clear: bool) {
    // `__Host-` requires Path=/: the cookie then also goes to `/v1`, which never reads it.
    let path = if secure { "/" } else { "/console" };
    let mut cookie = format!("{}={value}; Path={path}; HttpOnly; SameSite=Strict", name.over(secure));
    if clear {
        cookie.push_str("; Max-Age=0");
    }
    if secure {
        cookie.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, v);
    }
}

/// A POST from another site is refused whatever it carries. Browsers say where a request comes from in
/// `Sec-Fetch-Site` (only `same-origin` passes) or, older ones, `Origin` (its host must be this request's
/// `Host`). A request with neither is not from a current browser; the CSRF token still decides it.
fn same_origin(req: &Incoming) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return site.trim().eq_ignore_ascii_case("same-origin");
    }
    let Some(origin) = req.header("origin") else { return true };
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    match (authority, req.header("host")) {
        (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

fn tokens_match(given: Option<&str>, expected: &str) -> bool {
    match given {
        Some(given) if !expected.is_empty() => given.as_bytes().ct_eq(expected.as_bytes()).into(),
        _ => false,
    }
}

fn form(req: &Incoming) -> Query {
    Query::parse(std::str::from_utf8(&req.body).unwrap_or(""))
}

/// A refusal of the edge's own (cross-site, CSRF), already in the reader's language.
fn refused(message: &str) -> Problem {
    Problem::new(ProblemKind::Http(403), "refused", message)
}

/// A random token for forms (CSRF before login, refund form keys).
fn random_token() -> Result<String, Problem> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(Problem::internal)?;
    Ok(paygate_domain::ids::random_chars(paygate_domain::ids::BASE62, 32, &seed))
}

fn login_form(t: &Text, secure: bool, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let token = match random_token() {
        Ok(token) => token,
        Err(p) => return problem_page(t, None, &p),
    };
    let message = message.map(|m| format!("<p class=\"problem\" role=\"alert\">{}</p>", html::esc(m)));
    let body = format!(
        "<form class=\"box\" method=\"post\" action=\"/console/login\"><h1>{title}</h1>{message}\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <label>{app}<input name=\"app\" required autocomplete=\"organization\"></label>\
         <label>{email}<input name=\"email\" type=\"email\" required autocomplete=\"username\"></label>\
         <label>{password}<input name=\"password\" type=\"password\" required autocomplete=\"current-password\">\
         </label><button>{sign_in}</button></form>",
        title = html::esc(t.login_title),
        message = message.unwrap_or_default(),
        app = html::esc(t.app_id),
        email = html::esc(t.email),
        password = html::esc(t.password),
        sign_in = html::esc(t.sign_in),
    );
    let mut response = respond(status, "text/html; charset=utf-8", html::page(t, t.login_title, None, &body));
    set_cookie(&mut response, LOGIN_COOKIE, &token, secure, false);
    response
}

async fn login(app: &Paygate, req: &Incoming, t: &Text, secure: bool) -> HttpResponse {
    if !same_origin(req) {
        return problem_page(t, None, &refused(t.cross_site));
    }
    let form = form(req);
    if !tokens_match(form.get("csrf"), cookie(req, LOGIN_COOKIE, secure).unwrap_or("")) {
        return login_form(t, secure, StatusCode::FORBIDDEN, Some(t.csrf));
    }
    let (app_id, email) = (form.get("app").unwrap_or("").trim(), form.get("email").unwrap_or(""));
    match app.console_login(app_id, email, form.get("password").unwrap_or(""), req.peer.ip()).await {
        Ok(logged_in) => {
            let mut response = redirect("/console/test");
            set_cookie(&mut response, SESSION_COOKIE, &logged_in.token, secure, false);
            set_cookie(&mut response, LOGIN_COOKIE, "", secure, true);
            response
        }
        Err(p) if p.kind == ProblemKind::TooManyRequests => {
            login_form(t, secure, StatusCode::TOO_MANY_REQUESTS, Some(t.throttled))
        }
        Err(p) if p.kind == ProblemKind::Authentication => {
            login_form(t, secure, StatusCode::UNAUTHORIZED, Some(t.wrong_login))
        }
        Err(p) => problem_page(t, None, &p),
    }
}

async fn logout(app: &Paygate, req: &Incoming, t: &Text, secure: bool) -> HttpResponse {
    let token = cookie(req, SESSION_COOKIE, secure).unwrap_or("");
    let who = match app.console_session(token, Mode::Test).await {
        Ok(Some(who)) => who,
        Ok(None) => return redirect("/console/login"),
        Err(p) => return problem_page(t, None, &p),
    };
    if let Err(p) = check_post(req, t, &who) {
        return problem_page(t, None, &p);
    }
    if let Err(p) = app.console_logout(&who, token).await {
        return problem_page(t, None, &p);
    }
    let mut response = redirect("/console/login");
    set_cookie(&mut response, SESSION_COOKIE, "", secure, true);
    response
}

/// Same-origin and the session's CSRF token: what every signed-in POST must pass before anything runs.
fn check_post(req: &Incoming, t: &Text, who: &ConsoleCaller) -> Result<(), Problem> {
    if !same_origin(req) {
        return Err(refused(t.cross_site));
    }
    if !tokens_match(form(req).get("csrf"), &who.csrf_token) {
        return Err(refused(t.csrf));
    }
    Ok(())
}

async fn signed_in(
    app: &Arc<Paygate>,
    req: &Incoming,
    t: &Text,
    secure: bool,
    mode: Mode,
    page: &[&str],
) -> HttpResponse {
    let token = cookie(req, SESSION_COOKIE, secure).unwrap_or("");
    let who = match app.console_session(token, mode).await {
        Ok(Some(who)) => who,
        Ok(None) => return redirect("/console/login"),
        Err(p) => return problem_page(t, None, &p),
    };
    tracing::Span::current().record("app", who.caller.app.id.as_str());
    if req.method == Method::POST {
        if let Err(p) = check_post(req, t, &who) {
            return problem_page(t, Some(&who), &p);
        }
    }
    let result = match page {
        [] => overview::overview(app, t, &who).await,
        ["payments"] => pages::payments(app, req, t, &who).await,
        ["payments.csv"] => payments_csv::export(app, &req.query, t, &who).await,
        ["members"] => members::lookup(req, t, &who).await,
        ["members", id] => members::member(app, t, &who, id).await,
        ["payments", id] => pages::payment(app, req, t, &who, id, None).await,
        ["payments", id, "refunds"] => pages::refund(app, req, t, &who, id).await,
        ["payments", id, "charges", charge, "pay"] => payment_more::sandbox_pay(app, &who, id, charge).await,
        ["audit"] => pages::audit(app, req, t, &who).await,
        ["reconciliations"] => pages_reconcile::reconciliations(app, req, t, &who).await,
        ["reconciliations", id] => pages_reconcile::reconciliation(app, req, t, &who, id).await,
        ["reconciliations", id, "bill"] => pages_reconcile::bill(app, &who, id).await,
        ["reconciliations", id, "csv"] => pages_reconcile::csv(app, &who, id).await,
        ["discrepancies"] => pages_reconcile::discrepancies(app, req, t, &who).await,
        ["discrepancies", id, "resolve"] => pages_reconcile::resolve(app, req, &who, id).await,
        ["webhooks"] if req.method == Method::POST => pages_admin::create_endpoint(app, req, t, &who).await,
        ["webhooks"] => pages_admin::webhooks(app, req, t, &who).await,
        ["webhooks", id, "delete"] => pages_admin::delete_endpoint(app, &who, id).await,
        ["webhooks", id, "disable"] => pages_admin::set_endpoint_disabled(app, &who, id, true).await,
        ["webhooks", id, "enable"] => pages_admin::set_endpoint_disabled(app, &who, id, false).await,
        ["webhooks", "events", id, "resend"] => pages_admin::resend(app, &who, id).await,
        ["developers"] => pages_admin::developers(app, req, t, &who, None).await,
        ["developers", "roll-key"] => pages_admin::roll_key(app, req, t, &who).await,
        ["developers", "public-key"] => pages_admin::public_key(app, req, &who).await,
        ["developers", "fee-rates"] => pages_admin::fee_rate(app, req, &who).await,
        _ => Err(Problem::not_found("page", &req.path)),
    };
    result.unwrap_or_else(|p| problem_page(t, Some(&who), &p))
}

/// The signed-in navigation for `who`, linking to this path in the other mode.
fn nav_of<'a>(who: &'a ConsoleCaller, other_mode_path: &'a str) -> html::Nav<'a> {
    html::Nav {
        email: &who.user.email,
        role: who.user.role.as_str(),
        live: who.caller.scope.mode.is_live(),
        admin: who.may(Permission::Administer),
        csrf: &who.csrf_token,
        other_mode_path,
    }
}

/// `/console/{mode}/{tail}` in the other mode.
fn other_mode(who: &ConsoleCaller, tail: &str) -> String {
    let other = if who.caller.scope.mode.is_live() { "test" } else { "live" };
    format!("/console/{other}/{tail}")
}

/// A problem as a page: internal detail logged, never shown; 403 and 404 in the reader's language.
fn problem_page(t: &Text, who: Option<&ConsoleCaller>, problem: &Problem) -> HttpResponse {
    let shown = crate::errors::public_problem(problem);
    let status = crate::errors::status(shown.kind);
    let message = match status {
        // paygate-core's role refusal; the edge's own refusals are already in the reader's language.
        StatusCode::FORBIDDEN if shown.code == "forbidden" => t.forbidden.to_string(),
        StatusCode::NOT_FOUND => t.not_found.to_string(),
        _ => shown.message.clone(),
    };
    let other = who.map(|w| other_mode(w, "payments")).unwrap_or_default();
    let nav = who.map(|w| nav_of(w, &other));
    let body =
        format!("<h1>{}</h1><p class=\"problem\" role=\"alert\">{}</p>", html::esc(t.error), html::esc(&message));
    respond(status, "text/html; charset=utf-8", html::page(t, t.error, nav.as_ref(), &body))
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// 303: after a POST the browser GETs the result, so reloading never resubmits.
fn redirect(location: &str) -> HttpResponse {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", String::new());
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Over HTTPS, browsers are told to use nothing else for this host for a year.
fn with_transport_security(mut response: HttpResponse, secure: bool) -> HttpResponse {
    if secure {
        response.headers_mut().insert(hyper::header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

/// On every console answer: only our own resources, never framed, no sniffing, no referrer to other sites.
fn with_security_headers(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    let fixed = [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
