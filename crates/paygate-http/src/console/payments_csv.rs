//! The payments list's filters, one page of it, and `GET /console/{mode}/payments.csv`: the filtered list as
//! CSV, streamed. The export pages through the same core list call as the page (`list_orders`, or
//! `list_charges` when filtered by channel), [`EXPORT_PAGE`] rows at a time, on a task of its own that writes
//! each page into the response's bounded channel (`crate::streamed`): memory holds a few pages, never the file.

use super::html::{when, yuan};
use super::text::Text;
use crate::pingpp::reconciliations::csv_cell;
use crate::request::Query;
use crate::HttpResponse;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION};
use paygate_core::console::{ConsoleCaller, Permission};
use paygate_core::Paygate;
use paygate_domain::paging::{ChargeFilter, CreatedRange, OrderFilter, Paging};
use paygate_domain::reconcile::BillDate;
use paygate_domain::{Charge, Problem};
use std::fmt::Write as _;
use std::sync::Arc;

/// Rows per list call while exporting (the list's own maximum).
const EXPORT_PAGE: i64 = 100;

/// What the payments list shows: orders, or (filtered by channel) charges.
#[derive(Clone)]
pub(super) enum Listing {
    Orders(OrderFilter),
    Charges(ChargeFilter),
}

/// One listed payment: (order id, merchant order no. or charge id, channel, amount in yuan, status), its
/// creation time, and the id its page's cursor continues after.
pub(super) type Row = ([String; 5], i64, String);

use super::html::param;

/// The list's filters, as the page's form and the export link name them.
pub(super) const FILTERS: [&str; 7] = ["status", "refund", "channel", "uid", "merchandise", "from", "to"];

/// The longest merchandise record id a 知晓云 order may carry (`paygate_core::hserve`'s rule).
const MERCHANDISE_MAX_CHARS: usize = 64;

/// The list's filters from its query ([`FILTERS`]).
pub(super) fn listing(q: &Query) -> Result<Listing, Problem> {
    let (status, refund, channel, uid) = (param(q, "status"), param(q, "refund"), param(q, "channel"), param(q, "uid"));
    let merchandise = param(q, "merchandise")
        .map(|m| paygate_domain::validate::text("merchandise", m, MERCHANDISE_MAX_CHARS))
        .transpose()?;
    let (from, to) = (param(q, "from"), param(q, "to"));
    let created = CreatedRange {
        gte: from.map(|d| BillDate::parse("from", d)).transpose()?.map(BillDate::start),
        lt: to.map(|d| BillDate::parse("to", d)).transpose()?.map(BillDate::end),
        ..CreatedRange::default()
    };
    let paid = match status {
        Some("paid") => Some(true),
        Some("unpaid") => Some(false),
        _ => None,
    };
    let refunded = match refund {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    };
    if let Some(channel) = channel {
        // The channel is a charge's: the charge list (charges_scope_seq) filters by it; its cursor is a charge id.
        if uid.is_some() {
            return Err(Problem::invalid("uid", "Filter by payer or by channel, not both."));
        }
        if merchandise.is_some() {
            return Err(Problem::invalid("merchandise", "Filter by merchandise or by channel, not both."));
        }
        return Ok(Listing::Charges(ChargeFilter {
            channel: Some(channel.to_string()),
            paid,
            refunded,
            created,
            ..ChargeFilter::default()
        }));
    }
    Ok(Listing::Orders(OrderFilter {
        uid: uid.map(str::to_string),
        paid,
        refunded,
        canceled: (status == Some("canceled")).then_some(true),
        created,
        merchandise_record_id: merchandise,
        ..OrderFilter::default()
    }))
}

/// One page of the list after the cursor `after`, and whether more follow.
pub(super) async fn list_page(
    app: &Paygate,
    who: &ConsoleCaller,
    listing: &Listing,
    after: Option<String>,
    size: i64,
) -> Result<(Vec<Row>, bool), Problem> {
    who.require(Permission::Read)?;
    let paging = Paging::cursor(Some(size), after, None)?;
    let mut rows = Vec::new();
    match listing {
        Listing::Charges(filter) => {
            let page = app.list_charges(&who.caller, filter, &paging).await?;
            rows.extend(page.data.into_iter().map(charge_row));
            Ok((rows, page.has_more))
        }
        Listing::Orders(filter) => {
            let page = app.list_orders(&who.caller, filter, &paging).await?;
            for view in page.data {
                let o = &view.order;
                let channel = view.charges.first().map(|c| c.channel.clone()).unwrap_or_default();
                let row = [
                    o.id.clone(),
                    o.merchant_order_no.clone(),
                    channel,
                    yuan(o.amount.fen()),
                    o.status.as_str().into(),
                ];
                rows.push((row, o.created, o.id.clone()));
            }
            Ok((rows, page.has_more))
        }
    }
}

fn charge_row(c: Charge) -> Row {
    let row = [c.order_id.clone(), c.id.clone(), c.channel.clone(), yuan(c.amount.fen()), c.status.as_str().into()];
    (row, c.created, c.id)
}

/// The CSV lines of `rows` (CRLF, every cell through `csv_cell`: quoted when needed, formulas defused).
fn csv_lines(rows: &[Row]) -> String {
    let mut out = String::new();
    for (cells, created, _) in rows {
        for cell in cells {
            out.push_str(&csv_cell(cell));
            out.push(',');
        }
        let _ = write!(out, "{}\r\n", csv_cell(&when(*created)));
    }
    out
}

/// `GET /console/{mode}/payments.csv` with the list's filters. The permission and the filters are checked
/// before the answer starts (a refusal is an ordinary error page); a failure after that aborts the download.
pub(super) async fn export(
    app: &Arc<Paygate>,
    q: &Query,
    t: &Text,
    who: &ConsoleCaller,
) -> Result<HttpResponse, Problem> {
    who.require(Permission::Read)?;
    let listing = listing(q)?;
    let first = list_page(app, who, &listing, None, EXPORT_PAGE).await?;
    let heads = [t.order, t.merchant_order_no, t.channel, t.amount, t.status, t.created];
    // A BOM so spreadsheet programs read the file as UTF-8 (Chinese subjects and headings).
    let mut head = String::from("\u{feff}");
    head.push_str(&heads.iter().map(|h| csv_cell(h)).collect::<Vec<_>>().join(","));
    head.push_str("\r\n");
    let (tx, mut response) = crate::streamed::channel("text/csv; charset=utf-8");
    let name = format!(
        "attachment; filename=\"payments-{}.csv\"",
        if who.caller.scope.mode.is_live() { "live" } else { "test" }
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        response.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    let (app, who) = (app.clone(), who.clone());
    tokio::spawn(async move {
        let (mut rows, mut more) = first;
        let mut chunk = head;
        loop {
            chunk.push_str(&csv_lines(&rows));
            if tx.send(Ok(Bytes::from(std::mem::take(&mut chunk)))).await.is_err() {
                return; // the reader went away
            }
            let Some(last) = rows.last().map(|r| r.2.clone()).filter(|_| more) else { return };
            match list_page(&app, &who, &listing, Some(last), EXPORT_PAGE).await {
                Ok((next, next_more)) => (rows, more) = (next, next_more),
                Err(problem) => {
                    tracing::error!(%problem, "payments export stopped");
                    let _ = tx.send(Err(std::io::Error::other(problem.message))).await;
                    return;
                }
            }
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::csv_lines;

    #[test]
    fn rows_become_defused_csv_lines() {
        let row = (["o1".into(), "=1+1".into(), "alipay".into(), "1.00".into(), "paid".into()], 0, "o1".into());
        assert_eq!(csv_lines(&[row]), "o1,'=1+1,alipay,1.00,paid,1970-01-01 08:00:00\r\n");
    }
}
