//! The reconciliation pages (对账, issue 14): the runs with a form to run a day, one run's statement and
//! discrepancies (with the bill and a CSV of the discrepancies to download), and the open discrepancies across
//! runs with a resolve form. Runs and resolutions go through paygate-core's console calls (role checks, audit);
//! everything shown is read through the same calls as `/v1/reconciliations`.

use super::html::{esc, url_value, when, yuan};
use super::pages::{input, mode_of, ok_page, param, select, table};
use super::text::Text;
use super::{form, redirect};
use crate::pingpp::reconciliations::{attachment, differing_fields, discrepancies_csv, side_amount};
use crate::request::Incoming;
use crate::HttpResponse;
use hyper::{Method, StatusCode};
use paygate_core::console::{ConsoleCaller, Permission};
use paygate_core::reconcile::DiscrepancyFilter;
use paygate_core::Paygate;
use paygate_domain::accounts::Provider;
use paygate_domain::reconcile::{
    BillDate, Discrepancy, DiscrepancyKind, DiscrepancyState, Reconciliation, Statement, Totals,
};
use paygate_domain::{Problem, ProblemKind};
use std::fmt::Write as _;

const RUNS_PAGE: i64 = 20;
const DISCREPANCIES_PAGE: i64 = 50;

fn channel_param(q: &crate::request::Query) -> Result<Option<Provider>, Problem> {
    param(q, "channel").map(|c| Provider::parse(c).map_err(|p| p.with_param("channel"))).transpose()
}

/// `count · amount` of one side's totals.
fn totals(t: &Totals) -> String {
    format!("{} · {}", t.count, yuan(t.amount))
}

fn result_of(t: &Text, run: &Reconciliation) -> &'static str {
    if run.statement.discrepancies() == 0 {
        t.rc_consistent
    } else {
        t.rc_with_discrepancies
    }
}

fn kind_of(t: &Text, kind: DiscrepancyKind) -> &'static str {
    match kind {
        DiscrepancyKind::MissingLocally => t.rc_missing_locally,
        DiscrepancyKind::MissingAtChannel => t.rc_missing_at_channel,
        DiscrepancyKind::Mismatch => t.rc_mismatch,
    }
}

fn state_of(t: &Text, state: DiscrepancyState) -> &'static str {
    match state {
        DiscrepancyState::Open => t.rc_state_open,
        DiscrepancyState::ResolvedAutomatically => t.rc_state_auto,
        DiscrepancyState::ResolvedManually => t.rc_state_manual,
    }
}

fn notice(body: &mut String, message: &str) {
    let _ = write!(body, "<p class=\"notice\" role=\"status\">{}</p>", esc(message));
}

/// Refusals a user can act on (a bad date, no channel account, a run already going) are shown above the form;
/// anything else (the database away, a 403) is an error page.
fn shown_with_form(p: &Problem) -> bool {
    !matches!(p.kind, ProblemKind::Internal | ProblemKind::Unavailable)
        && crate::errors::status(p.kind) != StatusCode::FORBIDDEN
}

/// `GET|POST /console/{mode}/reconciliations`: the runs, newest first, and (admin, support) a form to run a day.
pub(super) async fn reconciliations(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    if req.method == Method::POST {
        let form = form(req);
        let outcome = async {
            let provider = Provider::parse(form.get("channel").unwrap_or("")).map_err(|p| p.with_param("channel"))?;
            let date = BillDate::parse("date", form.get("date").unwrap_or("").trim())?;
            app.console_reconcile(who, provider, date).await
        }
        .await;
        return match outcome {
            Ok(run) => {
                let id = url_value(&run.reconciliation.id);
                Ok(redirect(&format!("/console/{}/reconciliations/{id}?ran=1", mode_of(who))))
            }
            Err(p) if shown_with_form(&p) => {
                let status = crate::errors::status(p.kind);
                runs(app, req, t, who, Some((status, p.message))).await
            }
            Err(p) => Err(p),
        };
    }
    runs(app, req, t, who, None).await
}

async fn runs(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
    problem: Option<(StatusCode, String)>,
) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let q = &req.query;
    let mode = mode_of(who);
    let channel = channel_param(q)?;
    let page = app.reconciliations(&who.caller, channel, RUNS_PAGE, param(q, "after")).await?;
    let mut body = format!("<h1>{}</h1>", esc(t.rc_title));
    let _ = write!(
        body,
        "<p><a href=\"/console/{mode}/discrepancies?state=open\">{}</a></p>",
        esc(t.rc_open_discrepancies)
    );
    if let Some((_, message)) = &problem {
        let _ = write!(body, "<p class=\"problem\" role=\"alert\">{}</p>", esc(message));
    }
    let channels = [("wechat", "wechat"), ("alipay", "alipay")];
    if who.may(Permission::Reconcile) {
        let form = form(req);
        let chosen_channel = form.get("channel").or(channel.map(Provider::as_str));
        let yesterday = BillDate::of(app.now()).previous().to_string();
        let date = form.get("date").map(str::trim).filter(|d| !d.is_empty()).unwrap_or(&yesterday);
        let _ = write!(
            body,
            "<h2>{run_day}</h2><form class=\"filters\" method=\"post\" action=\"/console/{mode}/reconciliations\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">",
            run_day = esc(t.rc_run_day),
            csrf = esc(&who.csrf_token),
        );
        body.push_str(&select("channel", t.channel, &channels, chosen_channel));
        body.push_str(&input("date", t.rc_bill_date, "date", Some(date)));
        let _ = write!(body, "<button>{}</button></form>", esc(t.rc_run));
    }
    let _ = write!(body, "<form class=\"filters\" method=\"get\" action=\"/console/{mode}/reconciliations\">");
    let filter_channels = [("", t.any), ("wechat", "wechat"), ("alipay", "alipay")];
    body.push_str(&select("channel", t.channel, &filter_channels, channel.map(Provider::as_str)));
    let _ = write!(body, "<button>{}</button></form>", esc(t.apply));
    if page.data.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.rc_no_runs));
    } else {
        let heads = [
            t.rc_bill_date,
            t.channel,
            t.rc_version,
            t.rc_result,
            t.rc_rows,
            t.rc_payments_channel,
            t.rc_payments_paygate,
            t.rc_refunds_channel,
            t.rc_refunds_paygate,
            t.rc_fees,
            t.rc_run_at,
        ];
        let rows = page.data.iter().map(|r| {
            let s = &r.statement;
            [
                format!(
                    "<a href=\"/console/{mode}/reconciliations/{}\">{}</a>",
                    url_value(&r.id),
                    esc(&r.bill_date.to_string())
                ),
                esc(r.provider.as_str()),
                r.version.to_string(),
                esc(result_of(t, r)),
                format!("{} / {} / {}", s.bill_rows, s.consistent, s.discrepancies()),
                totals(&s.channel_payments),
                totals(&s.paygate_payments),
                totals(&s.channel_refunds),
                totals(&s.paygate_refunds),
                format!("{} / {}", yuan(s.channel_fees), yuan(s.paygate_fees)),
                when(r.created),
            ]
        });
        table(&mut body, &heads, rows);
    }
    if let (true, Some(last)) = (page.has_more, page.data.last()) {
        let mut link = format!("/console/{mode}/reconciliations?after={}", url_value(&last.id));
        if let Some(c) = channel {
            let _ = write!(link, "&channel={}", c.as_str());
        }
        let _ = write!(body, "<p><a href=\"{}\">{}</a></p>", esc(&link), esc(t.next_page));
    }
    let mut response = ok_page(t, who, t.rc_title, "reconciliations", &body);
    if let Some((status, _)) = problem {
        *response.status_mut() = status;
    }
    Ok(response)
}

fn statement_list(t: &Text, run: &Reconciliation) -> String {
    let s: &Statement = &run.statement;
    let fields = [
        (t.rc_bill_date, esc(&run.bill_date.to_string())),
        (t.channel, esc(run.provider.as_str())),
        (t.rc_version, run.version.to_string()),
        (t.rc_result, esc(result_of(t, run))),
        (t.rc_run_at, when(run.created)),
        (t.rc_bill_rows, s.bill_rows.to_string()),
        (t.rc_consistent_rows, s.consistent.to_string()),
        (t.rc_carried, s.carried.to_string()),
        (t.rc_missing_locally, s.missing_locally.to_string()),
        (t.rc_missing_at_channel, s.missing_at_channel.to_string()),
        (t.rc_mismatch, s.mismatch.to_string()),
        (t.rc_recovered, s.recovered.to_string()),
        (t.rc_payments_channel, totals(&s.channel_payments)),
        (t.rc_payments_paygate, totals(&s.paygate_payments)),
        (t.rc_refunds_channel, totals(&s.channel_refunds)),
        (t.rc_refunds_paygate, totals(&s.paygate_refunds)),
        (t.rc_fees, format!("{} / {}", yuan(s.channel_fees), yuan(s.paygate_fees))),
    ];
    let mut out = String::from("<dl>");
    for (k, v) in fields {
        let _ = write!(out, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    out.push_str("</dl>");
    out
}

/// The discrepancies as a table; `with_run` adds the run's date (the page across runs). Admins get a resolve
/// form on each open one; `back` is the run to return to after resolving (none: the open list).
fn discrepancy_table(
    body: &mut String,
    t: &Text,
    who: &ConsoleCaller,
    rows: &[Discrepancy],
    with_run: bool,
    back: Option<&str>,
) {
    if rows.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t.rc_no_discrepancies));
        return;
    }
    let mode = mode_of(who);
    let admin = who.may(Permission::Administer);
    let amount = |d: &Discrepancy, side| side_amount(d, side).map_or_else(|| esc(t.none), yuan);
    let heads = [
        t.rc_bill_date,
        t.rc_kind,
        t.rc_key,
        t.rc_state,
        t.rc_fields,
        t.rc_channel_amount,
        t.rc_paygate_amount,
        t.rc_note,
    ];
    let rows = rows.iter().map(|d| {
        let date = if with_run {
            format!(
                "<a href=\"/console/{mode}/reconciliations/{}\">{} {}</a>",
                url_value(&d.reconciliation_id),
                esc(&d.bill_date.to_string()),
                esc(d.provider.as_str())
            )
        } else {
            esc(&d.bill_date.to_string())
        };
        let note = match (&d.resolution_note, d.state, admin) {
            (Some(note), _, _) => esc(note),
            (None, DiscrepancyState::Open, true) => resolve_form(t, who, d, back),
            (None, _, _) => esc(t.none),
        };
        [
            date,
            esc(kind_of(t, d.kind)),
            format!("{}<br><small>{}</small>", esc(&d.object_key), esc(&d.id)),
            esc(state_of(t, d.state)),
            esc(&differing_fields(d).join(", ")),
            amount(d, "channel"),
            amount(d, "paygate"),
            note,
        ]
    });
    table(body, &heads, rows);
}

fn resolve_form(t: &Text, who: &ConsoleCaller, d: &Discrepancy, back: Option<&str>) -> String {
    let back = back.map(|b| format!("<input type=\"hidden\" name=\"run\" value=\"{}\">", esc(b))).unwrap_or_default();
    format!(
        "<form class=\"filters\" method=\"post\" action=\"/console/{mode}/discrepancies/{id}/resolve\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{back}<label>{note}<input name=\"note\" required \
         maxlength=\"1000\"></label><button>{resolve}</button></form>",
        mode = mode_of(who),
        id = url_value(&d.id),
        csrf = esc(&who.csrf_token),
        note = esc(t.rc_note),
        resolve = esc(t.rc_resolve),
    )
}

/// `GET /console/{mode}/reconciliations/{id}`: the run's statement, its discrepancies, the downloads.
pub(super) async fn reconciliation(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
    id: &str,
) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let run = app.reconciliation(&who.caller, id).await?;
    let filter = DiscrepancyFilter { reconciliation_id: Some(run.id.clone()), ..DiscrepancyFilter::default() };
    let after = param(&req.query, "after");
    let page = app.discrepancies(&who.caller, &filter, DISCREPANCIES_PAGE, after).await?;
    let mode = mode_of(who);
    let link = url_value(&run.id);
    let mut body = format!("<h1>{} {} {}</h1>", esc(t.rc_statement), esc(&run.bill_date.to_string()), esc(&run.id));
    if req.query.get("ran").is_some() {
        notice(&mut body, t.rc_ran);
    }
    if req.query.get("resolved").is_some() {
        notice(&mut body, t.rc_resolved);
    }
    body.push_str(&statement_list(t, &run));
    let _ = write!(
        body,
        "<p><a href=\"/console/{mode}/reconciliations/{link}/bill\">{bill}</a> · \
         <a href=\"/console/{mode}/reconciliations/{link}/csv\">{csv}</a></p><h2>{title}</h2>",
        bill = esc(t.rc_download_bill),
        csv = esc(t.rc_download_csv),
        title = esc(t.rc_discrepancies),
    );
    discrepancy_table(&mut body, t, who, &page.data, false, Some(&run.id));
    if let (true, Some(last)) = (page.has_more, page.data.last()) {
        let next = format!("/console/{mode}/reconciliations/{link}?after={}", url_value(&last.id));
        let _ = write!(body, "<p><a href=\"{}\">{}</a></p>", esc(&next), esc(t.next_page));
    }
    Ok(ok_page(t, who, t.rc_statement, &format!("reconciliations/{link}"), &body))
}

/// `GET /console/{mode}/reconciliations/{id}/bill`: the bill as the channel sent it.
pub(super) async fn bill(app: &Paygate, who: &ConsoleCaller, id: &str) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let bytes = app.reconciliation_bill(&who.caller, id).await?;
    // Only a stored run's id gets here (anything else was a 404): base62, safe in the file name.
    Ok(attachment("application/octet-stream", &format!("{id}.bill"), bytes))
}

/// `GET /console/{mode}/reconciliations/{id}/csv`: the run's discrepancies as `/v1`'s CSV export writes them.
pub(super) async fn csv(app: &Paygate, who: &ConsoleCaller, id: &str) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let filter = DiscrepancyFilter { reconciliation_id: Some(id.to_string()), ..DiscrepancyFilter::default() };
    let bytes = discrepancies_csv(app, &who.caller, &filter).await?;
    Ok(attachment("text/csv; charset=utf-8", &format!("{id}_discrepancies.csv"), bytes))
}

/// `GET /console/{mode}/discrepancies?state=open`: discrepancies across runs (open by default), newest first.
pub(super) async fn discrepancies(
    app: &Paygate,
    req: &Incoming,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let q = &req.query;
    let state = param(q, "state").unwrap_or("open");
    let filter = DiscrepancyFilter {
        provider: channel_param(q)?,
        state: match state {
            "all" => None,
            s => Some(DiscrepancyState::parse("state", s)?),
        },
        ..DiscrepancyFilter::default()
    };
    let page = app.discrepancies(&who.caller, &filter, DISCREPANCIES_PAGE, param(q, "after")).await?;
    let mode = mode_of(who);
    let mut body = format!("<h1>{}</h1>", esc(t.rc_discrepancies));
    if q.get("resolved").is_some() {
        notice(&mut body, t.rc_resolved);
    }
    let _ = write!(body, "<form class=\"filters\" method=\"get\" action=\"/console/{mode}/discrepancies\">");
    let states = [
        ("open", t.rc_state_open),
        ("resolved_automatically", t.rc_state_auto),
        ("resolved_manually", t.rc_state_manual),
        ("all", t.any),
    ];
    body.push_str(&select("state", t.rc_state, &states, Some(state)));
    let channels = [("", t.any), ("wechat", "wechat"), ("alipay", "alipay")];
    body.push_str(&select("channel", t.channel, &channels, filter.provider.map(Provider::as_str)));
    let _ = write!(body, "<button>{}</button></form>", esc(t.apply));
    discrepancy_table(&mut body, t, who, &page.data, true, None);
    if let (true, Some(last)) = (page.has_more, page.data.last()) {
        let mut next =
            format!("/console/{mode}/discrepancies?state={}&after={}", url_value(state), url_value(&last.id));
        if let Some(c) = filter.provider {
            let _ = write!(next, "&channel={}", c.as_str());
        }
        let _ = write!(body, "<p><a href=\"{}\">{}</a></p>", esc(&next), esc(t.next_page));
    }
    Ok(ok_page(t, who, t.rc_discrepancies, "discrepancies?state=open", &body))
}

/// `POST /console/{mode}/discrepancies/{id}/resolve` (CSRF and same-origin already checked): admins only.
pub(super) async fn resolve(
    app: &Paygate,
    req: &Incoming,
    who: &ConsoleCaller,
    id: &str,
) -> Result<HttpResponse, Problem> {
    let form = form(req);
    app.console_resolve_discrepancy(who, id, form.get("note").unwrap_or("")).await?;
    let mode = mode_of(who);
    // Back to the run the form was on; its id only ever becomes a path segment, percent-encoded.
    Ok(match form.get("run").map(str::trim).filter(|r| !r.is_empty()) {
        Some(run) => redirect(&format!("/console/{mode}/reconciliations/{}?resolved=1", url_value(run))),
        None => redirect(&format!("/console/{mode}/discrepancies?state=open&resolved=1")),
    })
}
