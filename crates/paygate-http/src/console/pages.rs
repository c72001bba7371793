//! The signed-in pages: payments (filters, search by any id, cursor paging), a payment (order, charges,
//! refunds, the refund form), the refund itself, and the audit log. Each reads through the same `Paygate` calls
//! as `/v1`, with the session user's [`ConsoleCaller`].

use super::html::{self, esc, url_value, when, yuan};
use super::text::Text;
use super::{nav_of, other_mode, random_token, redirect, respond};
use crate::request::Incoming;
use crate::HttpResponse;
use hyper::StatusCode;
use paygate_core::console::{ConsoleCaller, Permission, AUDIT_PAGE};
use paygate_core::Paygate;
use paygate_domain::ids::OrderId;
use paygate_domain::Problem;
use paygate_store::DeliveryView;
use std::fmt::Write as _;

const PAGE_SIZE: i64 = 20;

pub(super) fn mode_of(who: &ConsoleCaller) -> &'static str {
    if who.caller.scope.mode.is_live() {
        "live"
    } else {
        "test"
    }
}

pub(super) fn ok_page(t: &Text, who: &ConsoleCaller, title: &str, tail: &str, body: &str) -> HttpResponse {
    let other = other_mode(who, tail);
    let nav = nav_of(who, &other);
    respond(StatusCode::OK, "text/html; charset=utf-8", html::page(t, title, Some(&nav), body))
}

pub(super) use super::html::param;

pub(super) fn select(name: &str, label: &str, options: &[(&str, &str)], chosen: Option<&str>) -> String {
    let mut out = format!("<label>{}<select name=\"{name}\">", esc(label));
    for (value, shown) in options {
        let selected = if chosen == Some(*value) { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{selected}>{}</option>", esc(value), esc(shown));
    }
    out.push_str("</select></label>");
    out
}

pub(super) fn input(name: &str, label: &str, kind: &str, value: Option<&str>) -> String {
    format!(
        "<label>{}<input name=\"{name}\" type=\"{kind}\" value=\"{}\"></label>",
        esc(label),
        esc(value.unwrap_or(""))
    )
}

/// `GET /console/{mode}/payments`: a search (any id → that payment) or the filtered list, newest first.
pub(super) async fn payments(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    let q = &req.query;
    let mode = mode_of(who);
    let mut notice = None;
    if let Some(reference) = param(q, "q") {
        match app.console_find_payment(who, reference).await? {
            Some(id) => return Ok(redirect(&format!("/console/{mode}/payments/{}", url_value(&id)))),
            None => notice = Some(t.no_match),
        }
    }
    who.require(Permission::Read)?;
    let (status, refund, channel, uid) = (param(q, "status"), param(q, "refund"), param(q, "channel"), param(q, "uid"));
    let (from, to, merchandise) = (param(q, "from"), param(q, "to"), param(q, "merchandise"));
    let listing = super::payments_csv::listing(q)?;
    let after = param(q, "after").map(str::to_string);
    let (rows, has_more) = super::payments_csv::list_page(app, who, &listing, after, PAGE_SIZE).await?;
    let mut body = format!("<h1>{}</h1>", esc(t.payments));
    if let Some(n) = notice {
        let _ = write!(body, "<p class=\"problem\" role=\"status\">{}</p>", esc(n));
    }
    let _ = write!(
        body,
        "<form class=\"filters\" method=\"get\" action=\"/console/{mode}/payments\">\
         <label>{search}<input name=\"q\" type=\"search\" placeholder=\"{hint}\" value=\"{q}\"></label>\
         <button>{search}</button></form><form class=\"filters\" method=\"get\" action=\"/console/{mode}/payments\">",
        search = esc(t.search),
        hint = esc(t.search_hint),
        q = esc(param(q, "q").unwrap_or("")),
    );
    let statuses = [("", t.any), ("paid", t.paid), ("unpaid", t.unpaid), ("canceled", t.canceled)];
    body.push_str(&select("status", t.status, &statuses, status));
    body.push_str(&select(
        "refund",
        t.refund_status,
        &[("", t.any), ("yes", t.refunded), ("no", t.not_refunded)],
        refund,
    ));
    body.push_str(&input("channel", t.channel, "text", channel));
    body.push_str(&input("uid", t.uid, "text", uid));
    body.push_str(&input("merchandise", t.merchandise, "text", merchandise));
    body.push_str(&input("from", t.created_from, "date", from));
    body.push_str(&input("to", t.created_to, "date", to));
    let _ = write!(body, "<button>{}</button></form>", esc(t.apply));
    // The export carries the filters shown, never the cursor: it is the whole filtered list.
    let mut export = format!("/console/{mode}/payments.csv?");
    for name in super::payments_csv::FILTERS {
        if let Some(v) = param(q, name) {
            let _ = write!(export, "{name}={}&", url_value(v));
        }
    }
    let export = esc(export.trim_end_matches(['?', '&']));
    let _ = write!(body, "<p><a href=\"{export}\" download>{}</a></p>", esc(t.pay_export_csv));
    if rows.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.no_payments));
    } else {
        let heads = [t.order, t.merchant_order_no, t.channel, t.amount, t.status, t.created];
        body.push_str("<table><thead><tr>");
        for h in heads {
            let _ = write!(body, "<th>{}</th>", esc(h));
        }
        body.push_str("</tr></thead><tbody>");
        for (row, created, _) in &rows {
            let _ = write!(
                body,
                "<tr><td data-k=\"{k0}\"><a href=\"/console/{mode}/payments/{link}\">{id}</a></td>",
                k0 = esc(heads[0]),
                link = url_value(&row[0]),
                id = esc(&row[0]),
            );
            for (i, cell) in row.iter().enumerate().skip(1) {
                let _ = write!(body, "<td data-k=\"{}\">{}</td>", esc(heads[i]), esc(cell));
            }
            let _ = write!(body, "<td data-k=\"{}\">{}</td></tr>", esc(heads[5]), when(*created));
        }
        body.push_str("</tbody></table>");
    }
    if let (true, Some((_, _, last))) = (has_more, rows.last()) {
        let link = format!("/console/{mode}/payments?after={}", url_value(last));
        body.push_str(&super::html::next_page(t, link, q, &super::payments_csv::FILTERS));
    }
    Ok(ok_page(t, who, t.payments, "payments", &body))
}

/// `GET /console/{mode}/payments/{order id}`: the order, its charges and refunds, and the refund form for
/// roles that may refund. `problem` is a refund that was just refused, shown above the form.
pub(super) async fn payment(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
    id: &str,
    problem: Option<(StatusCode, String)>,
) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let order_id = OrderId::parse(id)?;
    let view = app.order(&who.caller, &order_id).await?;
    let refunds = app.refunds(&who.caller, Some(&order_id), None, 100).await?;
    let o = &view.order;
    let mode = mode_of(who);
    let mut body = format!("<h1>{} {}</h1>", esc(t.order), esc(&o.id));
    if req.query.get("refunded").is_some() {
        let _ = write!(body, "<p class=\"notice\" role=\"status\">{}</p>", esc(t.refund_made));
    }
    if req.query.get("paid").is_some() {
        let _ = write!(body, "<p class=\"notice\" role=\"status\">{}</p>", esc(t.pd_sandbox_paid));
    }
    let refundable = o.amount_paid.fen().saturating_sub(o.refund_reserved.fen());
    let fields = [
        (t.merchant_order_no, esc(&o.merchant_order_no)),
        (t.status, esc(o.status.as_str())),
        (t.amount, yuan(o.amount.fen())),
        (t.paid, yuan(o.amount_paid.fen())),
        (t.refunded, yuan(o.amount_refunded.fen())),
        (t.refundable, yuan(refundable)),
        (t.uid, esc(o.uid.as_deref().unwrap_or(t.none))),
        (t.subject, esc(&o.subject)),
        (t.created, when(o.created)),
        (t.mode, esc(mode)),
    ];
    body.push_str("<dl>");
    for (k, v) in fields {
        let _ = write!(body, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    body.push_str("</dl>");
    let _ = write!(body, "<h2>{}</h2>", esc(t.charges));
    let heads = [t.charge, t.channel, t.amount, t.status, t.transaction_no, t.channel_order_no, t.created];
    let charge_rows = view.charges.iter().map(|c| {
        [
            esc(&c.id),
            esc(&c.channel),
            yuan(c.amount.fen()),
            esc(c.status.as_str()),
            esc(c.transaction_no.as_deref().unwrap_or(t.none)),
            esc(&c.channel_order_no),
            when(c.created),
        ]
    });
    table(&mut body, &heads, charge_rows);
    let _ = write!(body, "<h2>{}</h2>", esc(t.refunds));
    let heads = [t.refund, t.amount, t.status, t.reason, t.created];
    let refund_rows = refunds
        .data
        .iter()
        .map(|r| [esc(&r.id), yuan(r.amount.fen()), esc(r.status.as_str()), esc(&r.description), when(r.created)]);
    table(&mut body, &heads, refund_rows);
    if let Some((_, message)) = &problem {
        let _ = write!(body, "<p class=\"problem\" role=\"alert\">{}</p>", esc(message));
    }
    if who.may(Permission::Refund) && refundable > 0 {
        let _ = write!(
            body,
            "<h2>{refund}</h2><form class=\"filters\" method=\"post\" action=\"/console/{mode}/payments/{id}/refunds\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"form_key\" \
             value=\"{key}\"><label>{amount} ({hint})<input name=\"amount\" inputmode=\"decimal\" \
             pattern=\"[0-9]+(\\.[0-9]{{1,2}})?\" placeholder=\"{max}\"></label><label>{reason}<input name=\"reason\" \
             maxlength=\"255\"></label><button>{submit}</button></form>",
            refund = esc(t.refund),
            id = url_value(&o.id),
            csrf = esc(&who.csrf_token),
            key = random_token()?,
            amount = esc(t.amount),
            hint = esc(t.refund_amount_hint),
            max = yuan(refundable),
            reason = esc(t.reason),
            submit = esc(t.submit_refund),
        );
    }
    body.push_str(&super::payment_more::sections(app, t, who, &view).await?);
    let events = app.console_payment_events(who, &view, &refunds.data).await?;
    let _ = write!(body, "<h2>{}</h2>", esc(t.events));
    let heads = [t.event, t.object, t.created, t.deliveries];
    let event_rows = events.iter().map(|(e, deliveries)| {
        let object = e.object.get("id").and_then(|v| v.as_str()).unwrap_or("");
        [esc(&e.kind), esc(object), when(e.created), deliveries_cell(t, &e.id, deliveries)]
    });
    table(&mut body, &heads, event_rows);
    let mut response = ok_page(t, who, &o.id, &format!("payments/{}", url_value(&o.id)), &body);
    if let Some((status, _)) = problem {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// Each delivery of an event (endpoint, status, attempts) and each attempt (when, HTTP status or error).
fn deliveries_cell(t: &Text, event_id: &str, deliveries: &[DeliveryView]) -> String {
    let mut out = format!("<small>{}</small>", esc(event_id));
    if deliveries.is_empty() {
        let _ = write!(out, "<br>{}", esc(t.none));
    }
    for d in deliveries {
        let _ = write!(out, "<br>{} · {} · {}", esc(&d.endpoint_id), esc(&d.status), d.attempts);
        for a in &d.log {
            let result = match (a.status_code, a.error.as_deref()) {
                (Some(code), _) => code.to_string(),
                (None, Some(error)) => esc(error),
                (None, None) => esc(t.none),
            };
            let _ = write!(out, "<br>&nbsp;&nbsp;{} → {result} ({} ms)", when(a.attempted_at), a.latency_ms);
        }
    }
    out
}

pub(super) fn table<const N: usize>(body: &mut String, heads: &[&str; N], rows: impl Iterator<Item = [String; N]>) {
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

/// Yuan as typed (`12`, `12.3`, `12.34`) to fen; empty is "everything left". Checked arithmetic throughout.
fn parse_yuan(s: &str) -> Result<Option<i64>, Problem> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || Problem::invalid("amount", "Enter the amount in yuan, such as 12.34.");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || frac.len() > 2 || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    whole.checked_mul(100).and_then(|f| f.checked_add(frac)).map(Some).ok_or_else(bad)
}

/// `POST /console/{mode}/payments/{order id}/refunds` (CSRF and same-origin already checked).
pub(super) async fn refund(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
    id: &str,
) -> Result<HttpResponse, Problem> {
    let form = super::form(req);
    let order_id = OrderId::parse(id)?;
    let outcome = match parse_yuan(form.get("amount").unwrap_or("")) {
        Ok(amount) => {
            let (reason, key) = (form.get("reason").unwrap_or("").trim(), form.get("form_key").unwrap_or(""));
            app.console_refund(who, &order_id, amount, reason, key).await
        }
        Err(p) => Err(p),
    };
    match outcome {
        Ok(_) => {
            let mode = mode_of(who);
            Ok(redirect(&format!("/console/{mode}/payments/{}?refunded=1", url_value(&order_id))))
        }
        // Refusals a user can act on are shown with the payment; anything else is an error page.
        Err(p)
            if p.kind != paygate_domain::ProblemKind::Internal
                && p.kind != paygate_domain::ProblemKind::Unavailable =>
        {
            let status = crate::errors::status(p.kind);
            let message = if status == StatusCode::FORBIDDEN { t.forbidden.to_string() } else { p.message };
            payment(app, req, t, who, id, Some((status, message))).await
        }
        Err(p) => Err(p),
    }
}

/// `GET /console/{mode}/audit`: the app's audit log, newest first (admins).
pub(super) async fn audit(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    let before = req.query.int("before")?;
    let records = app.console_audit(who, before).await?;
    let mut body = format!("<h1>{}</h1>", esc(t.audit));
    let heads = [t.when, t.actor, t.action, t.object, t.mode, t.before, t.after];
    let json = |v: &Option<serde_json::Value>| match v {
        Some(v) => format!("<pre>{}</pre>", esc(&serde_json::to_string_pretty(v).unwrap_or_default())),
        None => esc(t.none),
    };
    let rows = records.iter().map(|r| {
        let e = &r.entry;
        let mode = if e.mode.is_live() { t.live } else { t.test };
        [when(e.created), esc(&e.actor), esc(&e.action), esc(&e.object_id), esc(mode), json(&e.before), json(&e.after)]
    });
    table(&mut body, &heads, rows);
    if let (true, Some(last)) = (records.len() as i64 == AUDIT_PAGE, records.last()) {
        let _ = write!(
            body,
            "<p><a href=\"/console/{}/audit?before={}\">{}</a></p>",
            mode_of(who),
            last.seq,
            esc(t.next_page)
        );
    }
    Ok(ok_page(t, who, t.audit, "audit", &body))
}

#[cfg(test)]
mod tests {
    use super::parse_yuan;

    #[test]
    fn yuan_to_fen() {
        assert_eq!(parse_yuan("").unwrap(), None);
        assert_eq!(parse_yuan(" 12 ").unwrap(), Some(1200));
        assert_eq!(parse_yuan("12.3").unwrap(), Some(1230));
        assert_eq!(parse_yuan("0.05").unwrap(), Some(5));
        for bad in ["-1", "1.234", ".5", "1e3", "１２", "999999999999999", "1,00", "1.2.3"] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_yuan("1.").unwrap(), Some(100));
    }
}
