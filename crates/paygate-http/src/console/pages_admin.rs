//! The webhooks page (endpoints: create, disable/enable, delete; the delivery log with its filters, resend) and the
//! developers page (roll the mode's API key, the app's RSA public key, fee rates, 知晓云 client ids, cashier/SaaS
//! credential ids). Roles are paygate-core's: these pages only hide the forms a role may not use. A secret (a new API
//! key, a new endpoint's signing secret) is written into the answer to the POST that made it and nowhere else.

use super::html::{esc, url_value, when};
use super::text::Text;
use super::{form, nav_of, other_mode, redirect, respond};
use crate::request::Incoming;
use crate::HttpResponse;
use hyper::StatusCode;
use paygate_core::console::admin::DELIVERY_LOG_PAGE;
use paygate_core::console::{ConsoleCaller, Permission};
use paygate_core::Paygate;
use paygate_domain::events::EVENT_TYPES;
use paygate_domain::Problem;
use paygate_store::console_webhooks::{DeliveryLogFilter, DELIVERY_STATUSES};
use std::fmt::Write as _;

fn mode_of(who: &ConsoleCaller) -> &'static str {
    if who.caller.scope.mode.is_live() {
        "live"
    } else {
        "test"
    }
}

fn html_page(t: &Text, who: &ConsoleCaller, title: &str, tail: &str, body: &str) -> HttpResponse {
    let other = other_mode(who, tail);
    let nav = nav_of(who, &other);
    respond(StatusCode::OK, "text/html; charset=utf-8", super::html::page(t, title, Some(&nav), body))
}

fn hidden_csrf(who: &ConsoleCaller) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&who.csrf_token))
}

fn notice(body: &mut String, text: &str) {
    let _ = write!(body, "<p class=\"notice\" role=\"status\">{}</p>", esc(text));
}

fn table(body: &mut String, heads: &[&str], rows: &[Vec<String>]) {
    body.push_str("<table><thead><tr>");
    for h in heads {
        let _ = write!(body, "<th>{}</th>", esc(h));
    }
    body.push_str("</tr></thead><tbody>");
    for row in rows {
        body.push_str("<tr>");
        for (h, cell) in heads.iter().zip(row) {
            let _ = write!(body, "<td data-k=\"{}\">{cell}</td>", esc(h));
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
}

/// `GET /console/{mode}/webhooks`: the endpoints, the create form (admins), the delivery log.
pub(super) async fn webhooks(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    let q = &req.query;
    let endpoints = app.console_endpoints(who).await?;
    let filter = DeliveryLogFilter {
        endpoint_id: super::html::param(q, "endpoint").map(str::to_string),
        status: super::html::param(q, "status").map(str::to_string),
        before: req.query.int("before")?,
    };
    let log = app.console_delivery_log(who, &filter).await?;
    let mode = mode_of(who);
    let admin = who.may(Permission::Administer);
    let mut body = format!("<h1>{}</h1>", esc(t.wh_title));
    if q.get("deleted").is_some() {
        notice(&mut body, t.wh_deleted);
    }
    match q.get("toggled") {
        Some("disabled") => notice(&mut body, t.wh_disabled_done),
        Some("enabled") => notice(&mut body, t.wh_enabled_done),
        _ => {}
    }
    if let Some(n) = q.int("resent")? {
        notice(&mut body, &format!("{} ({n})", t.wh_resent));
    }
    let _ = write!(body, "<h2>{}</h2>", esc(t.wh_endpoints));
    if endpoints.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.wh_no_endpoints));
    } else {
        let mut heads = vec![t.wh_endpoint, t.wh_url, t.wh_events, t.status, t.created];
        if admin {
            heads.push(t.action);
        }
        let rows: Vec<Vec<String>> = endpoints
            .iter()
            .map(|e| {
                let events = e.types.as_ref().map_or_else(|| t.wh_every_event.to_string(), |types| types.join(", "));
                let status = if e.disabled { t.wh_disabled } else { t.wh_enabled };
                let mut row = vec![esc(&e.id), esc(&e.url), esc(&events), esc(status), when(e.created)];
                if admin {
                    let (verb, label) = if e.disabled { ("enable", t.wh_enable) } else { ("disable", t.wh_disable) };
                    let toggle = format!("/console/{mode}/webhooks/{}/{verb}", url_value(&e.id));
                    let delete = format!("/console/{mode}/webhooks/{}/delete", url_value(&e.id));
                    row.push(format!(
                        "{}{}",
                        super::html::post_button(&toggle, &hidden_csrf(who), label),
                        super::html::post_button(&delete, &hidden_csrf(who), t.wh_delete)
                    ));
                }
                row
            })
            .collect();
        table(&mut body, &heads, &rows);
    }
    if admin {
        let _ = write!(
            body,
            "<h2>{create}</h2><form method=\"post\" action=\"/console/{mode}/webhooks\">{csrf}\
             <label>{url}<input name=\"url\" type=\"url\" required maxlength=\"2048\" \
             placeholder=\"https://example.com/hooks/paygate\"></label><fieldset><legend>{events}</legend>",
            create = esc(t.wh_create),
            csrf = hidden_csrf(who),
            url = esc(t.wh_url),
            events = esc(t.wh_events_hint),
        );
        for kind in EVENT_TYPES {
            let _ =
                write!(body, "<label><input type=\"checkbox\" name=\"events\" value=\"{0}\"> {0}</label>", esc(kind));
        }
        let _ = write!(body, "</fieldset><button>{}</button></form>", esc(t.wh_create));
    }
    let _ = write!(
        body,
        "<h2>{log}</h2><form class=\"filters\" method=\"get\" action=\"/console/{mode}/webhooks\">\
         <label>{endpoint}<select name=\"endpoint\"><option value=\"\">{any}</option>",
        log = esc(t.wh_log),
        endpoint = esc(t.wh_endpoint),
        any = esc(t.any),
    );
    for e in &endpoints {
        let selected = if filter.endpoint_id.as_deref() == Some(e.id.as_str()) { " selected" } else { "" };
        let _ =
            write!(body, "<option value=\"{id}\"{selected}>{id} {url}</option>", id = esc(&e.id), url = esc(&e.url));
    }
    let _ = write!(
        body,
        "</select></label><label>{}<select name=\"status\"><option value=\"\">{}</option>",
        esc(t.status),
        esc(t.any)
    );
    for status in DELIVERY_STATUSES {
        let selected = if filter.status.as_deref() == Some(status) { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{status}\"{selected}>{status}</option>");
    }
    let _ = write!(body, "</select></label><button>{}</button></form>", esc(t.apply));
    if log.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.wh_no_deliveries));
    } else {
        let mut heads = vec![t.created, t.event, t.wh_endpoint, t.status, t.wh_attempts, t.wh_last_attempt];
        if admin {
            heads.push(t.action);
        }
        let rows: Vec<Vec<String>> = log
            .iter()
            .map(|d| {
                let last = match &d.last_attempt {
                    None => esc(t.none),
                    Some(a) => {
                        let result = match (a.status_code, a.error.as_deref()) {
                            (Some(code), _) => code.to_string(),
                            (None, Some(error)) => esc(error),
                            (None, None) => esc(t.none),
                        };
                        format!("{} → {result} ({} ms)", when(a.attempted_at), a.latency_ms)
                    }
                };
                let mut row = vec![
                    when(d.created),
                    format!("{}<br><small>{}</small>", esc(&d.event_type), esc(&d.event_id)),
                    esc(&d.endpoint_id),
                    esc(&d.status),
                    d.attempts.to_string(),
                    last,
                ];
                if admin {
                    let action = format!("/console/{mode}/webhooks/events/{}/resend", url_value(&d.event_id));
                    row.push(super::html::post_button(&action, &hidden_csrf(who), t.wh_resend));
                }
                row
            })
            .collect();
        table(&mut body, &heads, &rows);
    }
    if let (true, Some(last)) = (log.len() as i64 == DELIVERY_LOG_PAGE, log.last()) {
        let link = format!("/console/{mode}/webhooks?before={}", last.seq);
        body.push_str(&super::html::next_page(t, link, q, &["endpoint", "status"]));
    }
    Ok(html_page(t, who, t.wh_title, "webhooks", &body))
}

/// `POST /console/{mode}/webhooks`: creates an endpoint; the answer is the one page that shows its secret.
pub(super) async fn create_endpoint(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    let form = form(req);
    let url = super::html::param(&form, "url").unwrap_or("");
    let types: Vec<String> = form
        .0
        .iter()
        .filter(|(k, v)| k == "events" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    // No box ticked is every event, as omitting `events` is on `/v1`.
    let types = Some(types).filter(|t| !t.is_empty());
    let (endpoint, secret) = app.console_create_endpoint(who, url, types).await?;
    let mut body = format!("<h1>{}</h1>", esc(t.wh_title));
    notice(&mut body, t.wh_created);
    let _ = write!(
        body,
        "<dl><dt>{endpoint}</dt><dd>{id}</dd><dt>{url_label}</dt><dd>{url}</dd><dt>{secret_label}</dt>\
         <dd><code id=\"secret\">{secret}</code></dd></dl><p><a href=\"/console/{mode}/webhooks\">{back}</a></p>",
        endpoint = esc(t.wh_endpoint),
        id = esc(&endpoint.id),
        url_label = esc(t.wh_url),
        url = esc(&endpoint.url),
        secret_label = esc(t.wh_secret),
        secret = esc(&secret),
        mode = mode_of(who),
        back = esc(t.wh_back),
    );
    Ok(html_page(t, who, t.wh_title, "webhooks", &body))
}

/// `POST /console/{mode}/webhooks/{id}/delete`.
pub(super) async fn delete_endpoint(app: &Paygate, who: &ConsoleCaller, id: &str) -> Result<HttpResponse, Problem> {
    app.console_delete_endpoint(who, id).await?;
    Ok(redirect(&format!("/console/{}/webhooks?deleted=1", mode_of(who))))
}

/// `POST /console/{mode}/webhooks/{id}/disable` and `…/enable`.
pub(super) async fn set_endpoint_disabled(
    app: &Paygate,
    who: &ConsoleCaller,
    id: &str,
    disabled: bool,
) -> Result<HttpResponse, Problem> {
    let endpoint = app.console_set_endpoint_disabled(who, id, disabled).await?;
    Ok(redirect(&format!("/console/{}/webhooks?toggled={}", mode_of(who), endpoint.status())))
}

/// `POST /console/{mode}/webhooks/events/{id}/resend`.
pub(super) async fn resend(app: &Paygate, who: &ConsoleCaller, event_id: &str) -> Result<HttpResponse, Problem> {
    let queued = app.console_resend(who, event_id).await?;
    Ok(redirect(&format!("/console/{}/webhooks?resent={queued}", mode_of(who))))
}

/// `GET /console/{mode}/developers` (admins): the key roll form, the public key, fee rates, client and
/// credential ids. `new_key` is a key just rolled: shown in this answer only.
pub(super) async fn developers(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
    new_key: Option<&str>,
) -> Result<HttpResponse, Problem> {
    let settings = app.console_developer_settings(who).await?;
    let mode = mode_of(who);
    let csrf = hidden_csrf(who);
    let mut body = format!("<h1>{}</h1>", esc(t.dev_title));
    match req.query.get("saved") {
        Some("key") => notice(&mut body, t.dev_public_key_saved),
        Some("fee") => notice(&mut body, t.dev_fee_saved),
        _ => {}
    }
    let _ = write!(body, "<h2>{}</h2>", esc(t.dev_api_key));
    if let Some(key) = new_key {
        notice(&mut body, t.dev_new_key);
        let _ = write!(body, "<p><code id=\"new-key\">{}</code></p>", esc(key));
    }
    let _ = write!(
        body,
        "<p>{hint}</p><form class=\"filters\" method=\"post\" action=\"/console/{mode}/developers/roll-key\">{csrf}\
         <label>{grace}<input name=\"grace_hours\" type=\"number\" min=\"0\" max=\"720\" value=\"24\" required>\
         </label><button>{roll}</button></form>",
        hint = esc(t.dev_roll_hint),
        grace = esc(t.dev_grace_hours),
        roll = esc(t.dev_roll),
    );
    let _ = write!(body, "<h2>{}</h2>", esc(t.dev_public_key));
    match &settings.public_key_pem {
        Some(pem) => {
            let _ = write!(body, "<pre>{}</pre>", esc(pem));
        }
        None => {
            let _ = write!(body, "<p>{}</p>", esc(t.dev_no_public_key));
        }
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/{mode}/developers/public-key\">{csrf}\
         <label>PEM<textarea name=\"pem\" rows=\"6\" cols=\"64\" maxlength=\"8192\"></textarea></label>\
         <button name=\"do\" value=\"set\">{set}</button> <button name=\"do\" value=\"clear\">{clear}</button></form>",
        set = esc(t.dev_set_public_key),
        clear = esc(t.dev_clear_public_key),
    );
    let _ = write!(body, "<h2>{}</h2>", esc(t.dev_fee_rates));
    let rows: Vec<Vec<String>> = settings
        .fee_rates
        .iter()
        .map(|(family, bp)| {
            vec![
                esc(family),
                format!(
                    "<form class=\"filters\" method=\"post\" action=\"/console/{mode}/developers/fee-rates\">{csrf}\
                     <input type=\"hidden\" name=\"family\" value=\"{family}\"><input name=\"rate_bp\" type=\"number\" \
                     min=\"0\" max=\"10000\" value=\"{bp}\" required aria-label=\"{label}\">\
                     <button>{save}</button></form>",
                    family = esc(family),
                    label = esc(t.dev_rate_bp),
                    save = esc(t.dev_save),
                ),
            ]
        })
        .collect();
    table(&mut body, &[t.dev_family, t.dev_rate_bp], &rows);
    let _ = write!(body, "<h2>{}</h2>", esc(t.dev_hserve_clients));
    let rows: Vec<Vec<String>> = settings.hserve_clients.iter().map(|id| vec![esc(id)]).collect();
    table(&mut body, &[t.dev_client_id], &rows);
    let _ = write!(body, "<h2>{}</h2><p>{}</p>", esc(t.dev_credentials), esc(t.dev_secrets_note));
    let rows: Vec<Vec<String>> = settings.credentials.iter().map(|(face, id)| vec![esc(face), esc(id)]).collect();
    table(&mut body, &[t.dev_face, t.dev_public_id], &rows);
    Ok(html_page(t, who, t.dev_title, "developers", &body))
}

/// `POST /console/{mode}/developers/roll-key`: the answer shows the new key, once.
pub(super) async fn roll_key(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    let form = form(req);
    let grace = form.int("grace_hours")?.ok_or_else(|| Problem::invalid("grace_hours", "Enter the grace period."))?;
    let key = app.console_roll_key(who, grace).await?;
    developers(app, req, t, who, Some(&key)).await
}

/// `POST /console/{mode}/developers/public-key`: sets the pasted PEM, or clears it.
pub(super) async fn public_key(app: &Paygate, req: &Incoming, who: &ConsoleCaller) -> Result<HttpResponse, Problem> {
    let form = form(req);
    // Browsers send a textarea's line breaks as CRLF; a PEM is read with LF.
    let pem = match form.get("do") {
        Some("clear") => None,
        _ => Some(
            super::html::param(&form, "pem")
                .ok_or_else(|| Problem::invalid("pem", "Paste a PEM public key."))?
                .replace("\r\n", "\n"),
        ),
    };
    app.console_set_public_key(who, pem.as_deref()).await?;
    Ok(redirect(&format!("/console/{}/developers?saved=key", mode_of(who))))
}

/// `POST /console/{mode}/developers/fee-rates`.
pub(super) async fn fee_rate(app: &Paygate, req: &Incoming, who: &ConsoleCaller) -> Result<HttpResponse, Problem> {
    let form = form(req);
    let family = super::html::param(&form, "family").unwrap_or("");
    let bp = form.int("rate_bp")?.ok_or_else(|| Problem::invalid("rate_bp", "Enter the rate in basis points."))?;
    app.console_set_fee_rate(who, family, bp).await?;
    Ok(redirect(&format!("/console/{}/developers?saved=fee", mode_of(who))))
}
