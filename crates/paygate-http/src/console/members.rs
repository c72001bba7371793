//! Members and their wallets: `GET /console/{mode}/members` (a lookup box) and `/console/{mode}/members/{id}`
//! (balance, top-ups, every balance transaction), through the core calls `/v1/members` uses.

use super::html::{esc, url_value, when, yuan};
use super::text::Text;
use super::{nav_of, other_mode, redirect, respond};
use crate::request::Incoming;
use crate::HttpResponse;
use hyper::StatusCode;
use paygate_core::console::{ConsoleCaller, Permission};
use paygate_core::Paygate;
use paygate_domain::Problem;
use std::fmt::Write as _;

/// Balance transactions shown (newest first), as many as `/v1` gives in one answer.
const TRANSACTIONS: i64 = 100;

fn mode_of(who: &ConsoleCaller) -> &'static str {
    if who.caller.scope.mode.is_live() {
        "live"
    } else {
        "test"
    }
}

fn lookup_form(t: &Text, mode: &str, value: &str) -> String {
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/console/{mode}/members\"><label>{label}\
         <input name=\"id\" inputmode=\"numeric\" value=\"{value}\"></label><button>{find}</button></form>",
        label = esc(t.mb_member_id),
        value = esc(value),
        find = esc(t.search),
    )
}

fn answer(t: &Text, who: &ConsoleCaller, title: &str, tail: &str, body: &str) -> HttpResponse {
    let other = other_mode(who, tail);
    let nav = nav_of(who, &other);
    respond(StatusCode::OK, "text/html; charset=utf-8", super::html::page(t, title, Some(&nav), body))
}

/// `GET /console/{mode}/members[?id=…]`: the lookup box; with an id, that member's page.
pub(super) async fn lookup(req: &Incoming, t: &Text, who: &ConsoleCaller) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let mode = mode_of(who);
    if let Some(id) = req.query.get("id").map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(redirect(&format!("/console/{mode}/members/{}", url_value(id))));
    }
    let body = format!("<h1>{}</h1>{}", esc(t.mb_members), lookup_form(t, mode, ""));
    Ok(answer(t, who, t.mb_members, "members", &body))
}

/// `GET /console/{mode}/members/{id}`: the member, its balance, its top-ups and all its balance transactions.
pub(super) async fn member(app: &Paygate, t: &Text, who: &ConsoleCaller, id: &str) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let mode = mode_of(who);
    let m = app.member(&who.caller, id).await?;
    let transactions = app.balance_transactions(&who.caller, id, TRANSACTIONS).await?;
    let mut body = lookup_form(t, mode, id);
    let _ = write!(body, "<h1>{} {}</h1><dl>", esc(t.mb_member), m.id);
    let fields = [
        (t.mb_member_no, esc(&m.member_no)),
        (t.mb_name, esc(&m.name)),
        (t.mb_phone, esc(&m.phone)),
        (t.mb_balance, yuan(m.balance.fen())),
        (t.created, when(m.created)),
    ];
    for (k, v) in fields {
        let _ = write!(body, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    body.push_str("</dl>");
    let top_ups: Vec<_> = transactions.iter().filter(|x| x.kind == "topup").collect();
    let total: i64 = top_ups.iter().fold(0i64, |sum, x| sum.saturating_add(x.amount));
    let _ = write!(body, "<h2>{} ({}: {})</h2>", esc(t.mb_top_ups), esc(t.mb_total), yuan(total));
    transactions_table(&mut body, t, top_ups.into_iter());
    let _ = write!(body, "<h2>{}</h2>", esc(t.mb_transactions));
    transactions_table(&mut body, t, transactions.iter());
    Ok(answer(t, who, t.mb_member, &format!("members/{}", url_value(id)), &body))
}

fn transactions_table<'a>(
    body: &mut String,
    t: &Text,
    rows: impl Iterator<Item = &'a paygate_store::BalanceTransaction>,
) {
    let heads = [t.when, t.mb_kind, t.amount, t.mb_balance_after, t.mb_reference];
    body.push_str("<table><thead><tr>");
    for h in heads {
        let _ = write!(body, "<th>{}</th>", esc(h));
    }
    body.push_str("</tr></thead><tbody>");
    let mut any = false;
    for x in rows {
        any = true;
        let cells = [when(x.created), esc(&x.kind), yuan(x.amount), yuan(x.balance_after.fen()), esc(&x.reference)];
        body.push_str("<tr>");
        for (h, cell) in heads.iter().zip(cells) {
            let _ = write!(body, "<td data-k=\"{}\">{cell}</td>", esc(h));
        }
        body.push_str("</tr>");
    }
    if !any {
        let _ = write!(body, "<tr><td colspan=\"5\">{}</td></tr>", esc(t.none));
    }
    body.push_str("</tbody></table>");
}
