//! `/sim/alipay/bills/…`: what reconciliation tests need of Alipay's bills. `doctor` makes the bills written from
//! now on misreport one trade; `seed` adds many already-paid trades at once (no notifications) so a 100 000-row
//! bill is there in seconds.

use super::state::{Books, Product, Trade, TradeStatus};
use super::{AlipaySim, Shared};
use serde_json::{json, Value};
use std::collections::HashSet;

/// `POST /sim/alipay/bills/doctor {app_id?, out_trade_no, omit? | amount? | fee? | at? | clear?}`.
pub(super) fn doctor(sim: &AlipaySim, body: &Value, only_app: fn(&Shared) -> Option<String>) -> Result<Value, String> {
    let mut shared = sim.lock();
    let app = app_id(&shared, body, only_app)?;
    shared.doctors.apply(&app, body)
}

/// `POST /sim/alipay/bills/seed {app_id?, rows: [{out_trade_no, trade_no?, amount, paid_at}]}`: all rows or none.
pub(super) fn seed(sim: &AlipaySim, body: &Value, only_app: fn(&Shared) -> Option<String>) -> Result<Value, String> {
    let rows = crate::recon::seed_rows(body, "trade_no")?;
    let started = std::time::Instant::now();
    let mut shared = sim.lock();
    let app = app_id(&shared, body, only_app)?;
    if !shared.books.apps.contains_key(&app) {
        return Err(format!("no app {app}"));
    }
    // One pass over what is there, not one per row: trades are a list.
    let taken_no: HashSet<&str> =
        shared.books.trades.iter().filter(|t| t.app_id == app).map(|t| t.out_trade_no.as_str()).collect();
    let taken_trade: HashSet<&str> = shared.books.trades.iter().map(|t| t.trade_no.as_str()).collect();
    for r in &rows {
        if taken_no.contains(r.out_trade_no.as_str()) {
            return Err(format!("out_trade_no {} already exists", r.out_trade_no));
        }
        if let Some(no) = r.channel_no.as_deref().filter(|no| taken_trade.contains(no)) {
            return Err(format!("trade_no {no} already exists"));
        }
    }
    let books = &mut shared.books;
    books.trades.reserve(rows.len());
    let count = rows.len();
    for r in rows {
        let trade_no = match r.channel_no {
            Some(no) => no,
            None => books.next_no(r.paid_at, "2200"),
        };
        let mut t = Trade {
            app_id: app.clone(),
            subject: r.out_trade_no.clone(),
            out_trade_no: r.out_trade_no,
            trade_no,
            product: Product::Precreate,
            total: r.amount,
            body: String::new(),
            notify_url: String::new(),
            return_url: String::new(),
            auth_code: String::new(),
            buyer_id: String::new(),
            buyer_logon_id: String::new(),
            status: TradeStatus::WaitBuyerPay,
            scanned: true,
            created_at: r.paid_at,
            paid_at: None,
            closed_at: None,
            late: false,
            expires_at: r.paid_at + super::state::DEFAULT_TIMEOUT_SECONDS,
            refunds: Vec::new(),
            settles: Vec::new(),
        };
        Books::mark_paid(&mut t, r.paid_at);
        books.trades.push(t);
    }
    Ok(json!({"app_id": app, "seeded": count, "millis": started.elapsed().as_millis() as u64}))
}

fn app_id(shared: &Shared, body: &Value, only_app: fn(&Shared) -> Option<String>) -> Result<String, String> {
    match body.get("app_id").and_then(Value::as_str) {
        Some(app) => Ok(app.to_string()),
        None => only_app(shared).ok_or_else(|| "app_id is required (several apps)".into()),
    }
}
