//! `/v1/reconciliations` (对账, issue 14): run a day's reconciliation of a channel, list and read the runs, their
//! discrepancies and the bill as downloaded; resolve a discrepancy with a note; export discrepancies as CSV
//! (`GET /v1/reconciliation_discrepancies?format=csv`, written page by page from the store, never whole in memory
//! of a list).

use super::Answer;
use crate::request::Incoming;
use crate::HttpResponse;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};
use paygate_core::reconcile::DiscrepancyFilter;
use paygate_core::{Caller, Paygate};
use paygate_domain::accounts::Provider;
use paygate_domain::objects::{to_vec, List};
use paygate_domain::reconcile::{BillDate, Discrepancy, DiscrepancyKind, DiscrepancyState};
use paygate_domain::Problem;
use serde::Deserialize;
use serde_json::Value;

/// The JSON answers.
pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["reconciliations"] if m == Method::POST => run(app, caller, req).await,
        ["reconciliations"] if m == Method::GET => {
            async {
                let provider = channel_param(req)?;
                let page = app.reconciliations(
                    caller,
                    provider,
                    super::handlers::limit(req)?,
                    req.query.get("starting_after"),
                );
                let page = page.await?;
                let data: Vec<Value> = page.data.iter().map(|r| r.to_json()).collect();
                ok(&List::new("/v1/reconciliations", page.has_more, data))
            }
            .await
        }
        ["reconciliations", id] if m == Method::GET => {
            async { ok(&app.reconciliation(caller, id).await?.to_json()) }.await
        }
        ["reconciliations", id, "discrepancies"] if m == Method::GET => {
            async {
                let mut filter = filter(req)?;
                filter.reconciliation_id = Some(id.to_string());
                list_discrepancies(app, caller, req, &filter, &format!("/v1/reconciliations/{id}/discrepancies")).await
            }
            .await
        }
        ["reconciliation_discrepancies"] if m == Method::GET => {
            async {
                let filter = filter(req)?;
                list_discrepancies(app, caller, req, &filter, "/v1/reconciliation_discrepancies").await
            }
            .await
        }
        ["reconciliation_discrepancies", id, "resolve"] if m == Method::POST => {
            async {
                let body: Resolve = req.body_as()?;
                let note = body.note.ok_or_else(|| Problem::missing("note"))?;
                ok(&app.resolve_discrepancy(caller, id, &note).await?.to_json())
            }
            .await
        }
        _ => return None,
    })
}

/// The answers that are files, not JSON: the raw bill and the CSV export. `None`: not one of them.
pub(crate) async fn file(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<HttpResponse> {
    if req.method != Method::GET {
        return None;
    }
    let answer = match path {
        ["reconciliations", id, "bill"] => app.reconciliation_bill(caller, id).await.map(|bytes| {
            let reconciliation = *id;
            attachment("application/octet-stream", &format!("{reconciliation}.bill"), bytes)
        }),
        ["reconciliation_discrepancies"] if req.query.get("format") == Some("csv") => csv(app, caller, req).await,
        _ => return None,
    };
    Some(answer.unwrap_or_else(|problem| super::error_response(&problem)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    channel: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolve {
    note: Option<String>,
}

async fn run(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let body: RunBody = req.body_as()?;
    let provider = Provider::parse(body.channel.as_deref().ok_or_else(|| Problem::missing("channel"))?)
        .map_err(|p| p.with_param("channel"))?;
    let date = BillDate::parse("date", body.date.as_deref().ok_or_else(|| Problem::missing("date"))?)?;
    if date.start() >= app.now() {
        return Err(Problem::invalid("date", format!("date {date} has not begun: there is no bill for it yet.")));
    }
    let outcome = app.reconcile(caller, provider, date).await?;
    let mut object = outcome.reconciliation.to_json();
    object["reported"] = Value::Array(outcome.reported.iter().map(Discrepancy::to_json).collect());
    ok(&object)
}

fn ok(object: &impl serde::Serialize) -> Answer {
    Ok((StatusCode::OK, to_vec(object)))
}

fn channel_param(req: &Incoming) -> Result<Option<Provider>, Problem> {
    req.query.get("channel").map(|c| Provider::parse(c).map_err(|p| p.with_param("channel"))).transpose()
}

fn filter(req: &Incoming) -> Result<DiscrepancyFilter, Problem> {
    let q = &req.query;
    Ok(DiscrepancyFilter {
        provider: channel_param(req)?,
        reconciliation_id: q.get("reconciliation").map(str::to_string),
        state: q.get("state").map(|s| DiscrepancyState::parse("state", s)).transpose()?,
        kind: q.get("kind").map(|k| DiscrepancyKind::parse("kind", k)).transpose()?,
    })
}

async fn list_discrepancies(
    app: &Paygate,
    caller: &Caller,
    req: &Incoming,
    filter: &DiscrepancyFilter,
    url: &str,
) -> Answer {
    let page = app.discrepancies(caller, filter, super::handlers::limit(req)?, req.query.get("starting_after")).await?;
    let data: Vec<Value> = page.data.iter().map(Discrepancy::to_json).collect();
    ok(&List::new(url, page.has_more, data))
}

pub(crate) fn attachment(content_type: &'static str, name: &str, body: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    // Ids are base62 and dates digits: the name needs no quoting beyond the quotes.
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    *response.status_mut() = StatusCode::OK;
    response
}

async fn csv(app: &Paygate, caller: &Caller, req: &Incoming) -> Result<HttpResponse, Problem> {
    let body = discrepancies_csv(app, caller, &filter(req)?).await?;
    Ok(attachment("text/csv; charset=utf-8", "reconciliation_discrepancies.csv", body))
}

/// Every discrepancy `filter` selects, newest first, as CSV, read from the store a page at a time (the API's
/// export and the console's download of a run).
pub(crate) async fn discrepancies_csv(
    app: &Paygate,
    caller: &Caller,
    filter: &DiscrepancyFilter,
) -> Result<Vec<u8>, Problem> {
    const PAGE: i64 = 1000;
    /// The export stops here; narrow it with filters beyond (a person reads this in a spreadsheet).
    const MAX_ROWS: usize = 100_000;
    let mut out = String::from(
        "id,channel,bill_date,reconciliation,kind,key,state,fields,channel_amount,paygate_amount,resolution_note,\
         created,resolved\r\n",
    );
    let (mut after, mut rows) = (None::<String>, 0usize);
    loop {
        let page = app.discrepancies(caller, filter, PAGE, after.as_deref()).await?;
        for d in &page.data {
            out.push_str(&csv_line(d));
            rows += 1;
        }
        after = page.data.last().map(|d| d.id.clone());
        if !page.has_more {
            break;
        }
        if rows >= MAX_ROWS {
            out.push_str(&format!("# cut at {MAX_ROWS} rows: narrow the export with filters\r\n"));
            break;
        }
    }
    Ok(out.into_bytes())
}

/// The amount (fen) one side (`channel` or `paygate`) showed for a discrepancy, when it showed the row.
pub(crate) fn side_amount(d: &Discrepancy, side: &str) -> Option<i64> {
    d.details[side]["amount"].as_i64()
}

/// The fields that differ (a mismatch), in the order matching found them.
pub(crate) fn differing_fields(d: &Discrepancy) -> Vec<&str> {
    d.details["fields"].as_array().map_or(Vec::new(), |f| f.iter().filter_map(Value::as_str).collect())
}

fn csv_line(d: &Discrepancy) -> String {
    let amount = |side: &str| side_amount(d, side).map(|a| a.to_string()).unwrap_or_default();
    let fields = differing_fields(d);
    let cells = [
        d.id.clone(),
        d.provider.as_str().to_string(),
        d.bill_date.to_string(),
        d.reconciliation_id.clone(),
        d.kind.as_str().to_string(),
        d.object_key.clone(),
        d.state.as_str().to_string(),
        fields.join(" "),
        amount("channel"),
        amount("paygate"),
        d.resolution_note.clone().unwrap_or_default(),
        d.created.to_string(),
        d.resolved.map(|r| r.to_string()).unwrap_or_default(),
    ];
    let mut line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// RFC 4180 quoting, and a leading `=`, `+`, `@`, tab, carriage return or `-` (but not a negative number)
/// defused so a spreadsheet never runs a note as a formula.
pub(crate) fn csv_cell(value: &str) -> String {
    let number = value.strip_prefix('-').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let risky = value.starts_with(['=', '+', '@', '\t', '\r']) || (value.starts_with('-') && !number);
    let value = if risky { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-1"), "-1", "a negative amount stays a number");
        assert_eq!(csv_cell("-cmd"), "'-cmd");
        assert_eq!(csv_cell("\tx"), "'\tx");
    }
}
