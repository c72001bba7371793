//! `/sim/alipay/…`: the test's (or a person's) side of the simulator, JSON in and out, no signatures.
//!
//! - `GET  /sim/alipay/config` — the Alipay public key (PEM), apps (ids, seller ids, bound royalty receivers), settings
//! - `POST /sim/alipay/apps` — add or replace an app (the config file's app object)
//! - `POST /sim/alipay/settings` — change settings (any subset of the config file's settings)
//! - `POST /sim/alipay/clock` — `{"advance_seconds": N}` moves the simulator's clock
//! - `POST /sim/alipay/pay` — `{app_id?, out_trade_no | trade_no, late?}` the buyer pays (late: even a closed trade)
//! - `POST /sim/alipay/scan` (or `/wait`) — the buyer scans / logs in and does not pay yet: WAIT_BUYER_PAY shows
//! - `POST /sim/alipay/fail` — the buyer gives up: an unpaid trade is closed (TRADE_CLOSED, notified)
//! - `POST /sim/alipay/finish` — the refund period ends: TRADE_SUCCESS becomes TRADE_FINISHED (notified)
//! - `POST /sim/alipay/codes` — `{auth_code, outcome: PAY|WAIT|FAIL}` what a payment code does in alipay.trade.pay
//! - `POST /sim/alipay/faults` — `{method?, kind: timeout|drop|20000|40004|duplicate_notify, sub_code?, count?}`;
//!   `{kind: drop_notify, out_trade_no?, count?}` never sends the next `count` notifications (of that trade)
//! - `POST /sim/alipay/bills/doctor` — `{app_id?, out_trade_no, omit?, amount?, fee?, at?, clear?}` bills written
//!   from now on leave the trade out / bill another amount or fee (fen) / bill the payment at `at` (unix)
//! - `POST /sim/alipay/bills/seed` — `{app_id?, rows: [{out_trade_no, trade_no?, amount, paid_at}]}` adds paid
//!   trades at once, without notifications (bulk bills)
//! - `GET  /sim/alipay/trades?app_id=&out_trade_no=&trade_no=` — a trade as the simulator keeps it
//! - `GET  /sim/alipay/notifications` — every notification and its attempts
//! - `GET  /sim/alipay/qr/{trade_no}` — the page a QR code opens (the buyer scans): trade and a pay button
//! - `GET  /sim/alipay/bills/download?token=` — a bill ZIP `bill.downloadurl.query` pointed to

use super::config::{App, AppConfig, Settings};
use super::state::{Books, CodeOutcome, Trade, TradeStatus};
use super::{AlipaySim, Event, Fault, FaultKind, Shared};
use crate::http::{json, reply, Reply, Request};
use hyper::{Method, StatusCode};
use paygate_channels::alipay::format_yuan;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::http::control_error as error;

pub(super) fn handle(sim: &Arc<AlipaySim>, req: &Request) -> Reply {
    if req.method == Method::GET {
        if let Some(trade_no) = req.path.strip_prefix("/sim/alipay/qr/") {
            return qr_page(sim, req, trade_no);
        }
        if req.path == "/sim/alipay/bills/download" {
            let file = req.query_param("token").and_then(|t| sim.lock().bills.get(t).cloned());
            return match file {
                Some(zip) => reply(StatusCode::OK, "application/zip", zip),
                None => error(StatusCode::NOT_FOUND, "no such bill (token unknown)"),
            };
        }
    }
    let body = match crate::http::control_body(req) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let result = match (&req.method, req.path.as_str()) {
        (&Method::GET, "/sim/alipay/config") => Ok(config(sim)),
        (&Method::POST, "/sim/alipay/apps") => add_app(sim, body),
        (&Method::POST, "/sim/alipay/settings") => settings(sim, body),
        (&Method::POST, "/sim/alipay/clock") => crate::http::advance_clock(&sim.clock_offset, &body, || sim.now()),
        (&Method::POST, "/sim/alipay/pay") => pay(sim, &body),
        (&Method::POST, "/sim/alipay/scan" | "/sim/alipay/wait") => change(sim, &body, Change::Scan),
        (&Method::POST, "/sim/alipay/fail") => change(sim, &body, Change::Fail),
        (&Method::POST, "/sim/alipay/finish") => change(sim, &body, Change::Finish),
        (&Method::POST, "/sim/alipay/codes") => codes(sim, &body),
        (&Method::POST, "/sim/alipay/faults") => faults(sim, &body),
        (&Method::POST, "/sim/alipay/bills/doctor") => super::bill_control::doctor(sim, &body, only_app),
        (&Method::POST, "/sim/alipay/bills/seed") => super::bill_control::seed(sim, &body, only_app),
        (&Method::GET, "/sim/alipay/trades") => {
            let shared = sim.lock();
            let q = |n: &str| req.query_param(n).map(str::to_string);
            let app = q("app_id").or_else(|| only_app(&shared)).unwrap_or_default();
            match shared.books.find_index(&app, q("trade_no").as_deref(), q("out_trade_no").as_deref()) {
                Some(i) => Ok(trade_view(&shared.books.trades[i])),
                None => return error(StatusCode::NOT_FOUND, "no such trade"),
            }
        }
        (&Method::GET, "/sim/alipay/notifications") => {
            Ok(json!({"notifications": serde_json::to_value(&sim.lock().notifications).unwrap_or(Value::Null)}))
        }
        _ => return error(StatusCode::NOT_FOUND, format!("no /sim route {} {}", req.method, req.path)),
    };
    match result {
        Ok(v) => json(StatusCode::OK, &v),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

fn config(sim: &AlipaySim) -> Value {
    let shared = sim.lock();
    let apps: Vec<Value> = shared
        .books
        .apps
        .values()
        .map(|a| {
            // The royalty receivers bound to the app (relation.bind / unbind), sorted: (type, account).
            let mut bound: Vec<_> = shared.books.relations.get(&a.config.app_id).into_iter().flatten().collect();
            bound.sort();
            let bound: Vec<Value> = bound.into_iter().map(|(t, acc)| json!({"type": t, "account": acc})).collect();
            json!({"app_id": a.config.app_id, "seller_id": a.config.seller_id, "royalty_receivers": bound})
        })
        .collect();
    json!({"alipay_public_key_pem": sim.alipay_public_key_pem(), "apps": apps, "settings": shared.settings})
}

fn add_app(sim: &AlipaySim, body: Value) -> Result<Value, String> {
    let config: AppConfig = serde_json::from_value(body).map_err(|e| format!("app: {e}"))?;
    let app = App::new(config)?;
    let view = json!({"app_id": app.config.app_id, "seller_id": app.config.seller_id});
    sim.lock().books.apps.insert(app.config.app_id.clone(), app);
    Ok(view)
}

fn settings(sim: &AlipaySim, body: Value) -> Result<Value, String> {
    let mut shared = sim.lock();
    let mut current = serde_json::to_value(&shared.settings).map_err(|e| e.to_string())?;
    let (Some(cur), Value::Object(patch)) = (current.as_object_mut(), body) else {
        return Err("settings must be an object".into());
    };
    cur.extend(patch);
    let next: Settings = serde_json::from_value(current).map_err(|e| format!("settings: {e}"))?;
    if next.notify_time_scale == 0 {
        return Err("notify_time_scale must be at least 1".into());
    }
    shared.settings = next;
    Ok(json!({"settings": shared.settings}))
}

fn only_app(shared: &Shared) -> Option<String> {
    let mut ids = shared.books.apps.keys();
    match (ids.next(), ids.next()) {
        (Some(id), None) => Some(id.clone()),
        _ => None,
    }
}

fn trade_index(shared: &Shared, body: &Value) -> Result<usize, String> {
    let s = |n: &str| body.get(n).and_then(Value::as_str).map(str::to_string);
    let app = s("app_id").or_else(|| only_app(shared)).ok_or("app_id is required (several apps)")?;
    shared.books.find_index(&app, s("trade_no").as_deref(), s("out_trade_no").as_deref()).ok_or_else(|| {
        format!("no trade {} of app {app}", s("out_trade_no").or_else(|| s("trade_no")).unwrap_or_default())
    })
}

fn event(t: &Trade) -> Event {
    Event { app_id: t.app_id.clone(), trade_no: t.trade_no.clone(), out_request_no: None }
}

/// The buyer pays: WAIT_BUYER_PAY (scanned or not) becomes TRADE_SUCCESS and is notified; `late` also pays a
/// closed, never-paid trade (the payment that lands after the merchant closed it).
fn pay(sim: &Arc<AlipaySim>, body: &Value) -> Result<Value, String> {
    let late = body.get("late").and_then(Value::as_bool).unwrap_or(false);
    let now = sim.now();
    let (paid, expired) = {
        let mut shared = sim.lock();
        // A trade whose time ran out closes first (and is notified), so paying it needs `late`.
        let expired = super::api::expired(&mut shared.books, now);
        let paid = trade_index(&shared, body).and_then(|i| {
            let t = &mut shared.books.trades[i];
            match t.status {
                TradeStatus::WaitBuyerPay => {}
                TradeStatus::Closed if late && !t.is_paid() => t.late = true,
                other => {
                    return Err(format!("trade is {}; only WAIT_BUYER_PAY can be paid (late: closed)", other.as_str()))
                }
            }
            t.closed_at = None;
            Books::mark_paid(t, now);
            Ok((trade_view(t), event(t)))
        });
        (paid, expired)
    };
    for e in expired {
        sim.dispatch(e);
    }
    let (view, ev) = paid?;
    sim.dispatch(ev);
    Ok(view)
}

enum Change {
    Scan,
    Fail,
    Finish,
}

fn change(sim: &Arc<AlipaySim>, body: &Value, change: Change) -> Result<Value, String> {
    let now = sim.now();
    let (view, ev) = {
        let mut shared = sim.lock();
        let i = trade_index(&shared, body)?;
        let t = &mut shared.books.trades[i];
        let ev = match (change, t.status) {
            (Change::Scan, TradeStatus::WaitBuyerPay) => {
                t.scanned = true;
                None
            }
            (Change::Fail, TradeStatus::WaitBuyerPay) => {
                t.scanned = true;
                t.status = TradeStatus::Closed;
                t.closed_at = Some(now);
                Some(event(t))
            }
            (Change::Finish, TradeStatus::Success) => {
                t.status = TradeStatus::Finished;
                Some(event(t))
            }
            (_, other) => return Err(format!("trade is {}; that change does not apply", other.as_str())),
        };
        (trade_view(t), ev)
    };
    if let Some(ev) = ev {
        sim.dispatch(ev);
    }
    Ok(view)
}

fn codes(sim: &AlipaySim, body: &Value) -> Result<Value, String> {
    let code =
        body.get("auth_code").and_then(Value::as_str).filter(|c| !c.is_empty()).ok_or("auth_code is required")?;
    let outcome = match body.get("outcome").and_then(Value::as_str) {
        Some("PAY") => CodeOutcome::Pay,
        Some("WAIT") => CodeOutcome::Wait,
        Some("FAIL") => CodeOutcome::Fail,
        _ => return Err("outcome must be PAY, WAIT or FAIL".into()),
    };
    sim.lock().books.codes.insert(code.to_string(), outcome);
    Ok(json!({"auth_code": code}))
}

fn faults(sim: &AlipaySim, body: &Value) -> Result<Value, String> {
    let s = |n: &str| body.get(n).and_then(Value::as_str);
    let kind = FaultKind::parse(s("kind").unwrap_or(""), s("sub_code"))
        .ok_or("kind must be timeout, drop, 20000, 40004, duplicate_notify or drop_notify")?;
    let method = s("method").unwrap_or("").to_string();
    if !method.is_empty() && !super::api::known(&method) {
        return Err(format!("method {method} is not one the simulator serves"));
    }
    let out_trade_no = s("out_trade_no").filter(|s| !s.is_empty()).map(str::to_string);
    if out_trade_no.is_some() && !kind.is_notify() {
        return Err("out_trade_no narrows notify faults only".into());
    }
    let count = body.get("count").and_then(Value::as_u64).unwrap_or(1).clamp(1, 1000) as u32;
    sim.lock().faults.push(Fault { method: method.clone(), kind, remaining: count, out_trade_no });
    Ok(json!({"method": method, "count": count}))
}

fn trade_view(t: &Trade) -> Value {
    json!({
        "app_id": t.app_id, "out_trade_no": t.out_trade_no, "trade_no": t.trade_no,
        "product": format!("{:?}", t.product), "total_amount": format_yuan(t.total), "subject": t.subject,
        "trade_status": t.status.as_str(), "scanned": t.scanned, "late": t.late, "notify_url": t.notify_url,
        "auth_code": t.auth_code, "expires_at": paygate_channels::alipay::format_timestamp(t.expires_at),
        "refunded": format_yuan(t.refunded()), "settled": format_yuan(t.settled()),
        "refunds": t.refunds.iter().map(|r| json!({"out_request_no": r.out_request_no,
            "refund_amount": format_yuan(r.amount)})).collect::<Vec<_>>(),
        "settles": t.settles.iter().map(|s| json!({"out_request_no": s.out_request_no, "settle_no": s.settle_no,
            "receivers": s.receivers.iter().map(|(a, f)| json!({"trans_in": a, "amount": format_yuan(*f)}))
                .collect::<Vec<_>>()})).collect::<Vec<_>>(),
    })
}

/// The QR code's page: the buyer has scanned, so the trade shows as WAIT_BUYER_PAY from now on.
fn qr_page(sim: &AlipaySim, req: &Request, trade_no: &str) -> Reply {
    let base = super::base_url(req);
    let mut shared = sim.lock();
    match shared.books.trades.iter_mut().find(|t| t.trade_no == trade_no) {
        Some(t) => {
            t.scanned = true;
            reply(StatusCode::OK, "text/html; charset=utf-8", pay_page_html(t, &base))
        }
        None => error(StatusCode::NOT_FOUND, "no such trade"),
    }
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The cashier page (QR, wap and page pay): the trade, and buttons that pay or give up through `/sim/alipay`.
pub(super) fn pay_page_html(t: &Trade, base: &str) -> String {
    let ids = json!({"app_id": t.app_id, "trade_no": t.trade_no}).to_string();
    format!(
        "<!doctype html><meta charset=\"utf-8\"><title>支付宝 (simulator)</title>\n\
         <h1>{subject}</h1><p>¥{amount} — {out} — {status}</p>\n\
         <button id=\"pay\">pay</button> <button id=\"fail\">give up</button><p id=\"out\"></p>\n\
         <script>\nconst ids = {ids};\nconst back = \"{back}\";\n\
         for (const what of [\"pay\", \"fail\"]) document.getElementById(what).onclick = async () => {{\n\
         const r = await fetch(\"{base}/sim/alipay/\" + what, {{method: \"POST\", body: JSON.stringify(ids)}});\n\
         document.getElementById(\"out\").textContent = await r.text();\n\
         if (r.ok && what === \"pay\" && back) location.href = back;\n}};\n</script>\n",
        subject = html(&t.subject),
        amount = format_yuan(t.total),
        out = html(&t.out_trade_no),
        status = t.status.as_str(),
        back = html(&t.return_url).replace('\\', "\\\\"),
    )
}
