//! `/sim/…`: the test's (or a person's) side of the simulator, JSON in and out, no signatures.
//!
//! - `GET  /sim/wechat` — a small HTML page: act as the payer on each order, settle PROCESSING refunds
//! - `GET  /sim/config` — the platform public key (id + PEM), merchants (ids only) and settings
//! - `POST /sim/wechat/merchants` — add or replace a merchant (the config file's merchant object)
//! - `POST /sim/wechat/settings` — change settings (any subset of the config file's settings)
//! - `POST /sim/wechat/clock` — `{"advance_seconds": N}` moves the simulator's clock
//! - `POST /sim/wechat/pay` — `{mch_id?, out_trade_no | transaction_id | code_url, late?}` the payer pays (late:
//!   even closed); `code_url` is a NATIVE order's `weixin://wxpay/bizpayurl?pr=…`
//! - `POST /sim/wechat/fail` / `POST /sim/wechat/userpaying` — the payment fails / waits for the payer's password
//! - `POST /sim/wechat/codes` — `{auth_code, outcome: SUCCESS|USERPAYING|FAIL}` what a payment code does
//! - `POST /sim/wechat/refunds/settle` — `{mch_id?, out_refund_no, status: SUCCESS|CLOSED|ABNORMAL}`
//! - `POST /sim/wechat/faults` — `{path, kind: timeout|drop|systemerror|duplicate_notify|reorder_notify, count?}`;
//!   `{kind: drop_notify, out_trade_no?, count?}` never sends the next `count` notifications (of that order)
//! - `POST /sim/wechat/bills/doctor` — `{mch_id?, out_trade_no, omit?, amount?, fee?, at?, clear?}` bills written
//!   from now on leave the order out / bill another amount or fee (fen) / bill the payment at `at` (unix)
//! - `POST /sim/wechat/bills/seed` — `{mch_id?, rows: [{out_trade_no, transaction_id?, amount, paid_at}]}` adds
//!   paid NATIVE orders at once, without notifications (bulk bills)
//! - `GET  /sim/wechat/orders?mch_id=&out_trade_no=` — an order as the simulator keeps it
//! - `GET  /sim/wechat/notifications` — every notification and its attempts

use super::config::{Merchant, MerchantConfig, Settings};
use super::state::{CodeOutcome, RefundStatus, TradeState};
use super::{Fault, FaultKind, WechatSim};
use crate::http::{json, Reply, Request};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

use crate::http::control_error as error;

fn ok(value: Value) -> Reply {
    json(StatusCode::OK, &value)
}

pub(super) fn handle(sim: &Arc<WechatSim>, req: &Request) -> Reply {
    if req.method == Method::GET && (req.path == "/sim/wechat" || req.path == "/sim/wechat/") {
        let html = super::page::render(sim.lock().books.orders());
        return crate::http::reply(StatusCode::OK, "text/html; charset=utf-8", html);
    }
    let body = match crate::http::control_body(req) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let result = match (&req.method, req.path.as_str()) {
        (&Method::GET, "/sim/config") => Ok(config(sim)),
        (&Method::POST, "/sim/wechat/merchants") => add_merchant(sim, body),
        (&Method::POST, "/sim/wechat/settings") => settings(sim, body),
        (&Method::POST, "/sim/wechat/clock") => crate::http::advance_clock(&sim.clock_offset, &body, || sim.now()),
        (&Method::POST, "/sim/wechat/pay") => pay(sim, &body),
        (&Method::POST, "/sim/wechat/fail") => set_state(sim, &body, TradeState::PayError),
        (&Method::POST, "/sim/wechat/userpaying") => set_state(sim, &body, TradeState::UserPaying),
        (&Method::POST, "/sim/wechat/codes") => codes(sim, &body),
        (&Method::POST, "/sim/wechat/refunds/settle") => settle(sim, &body),
        (&Method::POST, "/sim/wechat/faults") => faults(sim, &body),
        (&Method::POST, "/sim/wechat/bills/doctor") => super::bill_control::doctor(sim, &body),
        (&Method::POST, "/sim/wechat/bills/seed") => super::bill_control::seed(sim, &body),
        (&Method::GET, "/sim/wechat/orders") => {
            let mch = req.query_param("mch_id").map(str::to_string);
            let (tx, no) = (req.query_param("transaction_id"), req.query_param("out_trade_no"));
            let shared = sim.lock();
            let mch = mch.or_else(|| only_merchant(&shared)).unwrap_or_default();
            match shared.books.find(&mch, tx, no) {
                Some(o) => Ok(order_view(o)),
                None => return error(StatusCode::NOT_FOUND, "no such order"),
            }
        }
        (&Method::GET, "/sim/wechat/notifications") => {
            Ok(json!({"notifications": serde_json::to_value(&sim.lock().notifications).unwrap_or(Value::Null)}))
        }
        _ => return error(StatusCode::NOT_FOUND, format!("no /sim route {} {}", req.method, req.path)),
    };
    match result {
        Ok(v) => ok(v),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

fn config(sim: &WechatSim) -> Value {
    let shared = sim.lock();
    let mut merchants: Vec<Value> =
        shared.books.merchants.values().map(|m| json!({"mch_id": m.config.mch_id, "appid": m.config.appid})).collect();
    merchants.sort_by_key(|m| m["mch_id"].as_str().unwrap_or("").to_string());
    json!({
        "wechat": {
            "public_key_id": sim.public_key_id(),
            "public_key_pem": sim.public_key_pem(),
            "merchants": merchants,
            "settings": serde_json::to_value(&shared.settings).unwrap_or(Value::Null),
            "now": sim.now(),
        }
    })
}

fn add_merchant(sim: &WechatSim, body: Value) -> Result<Value, String> {
    let config: MerchantConfig = serde_json::from_value(body).map_err(|e| format!("merchant: {e}"))?;
    let merchant = Merchant::new(config)?;
    let mch_id = merchant.config.mch_id.clone();
    sim.lock().books.merchants.insert(mch_id.clone(), merchant);
    Ok(json!({"mch_id": mch_id}))
}

fn settings(sim: &WechatSim, body: Value) -> Result<Value, String> {
    let mut shared = sim.lock();
    let mut current = serde_json::to_value(&shared.settings).map_err(|e| e.to_string())?;
    if let (Some(cur), Value::Object(changes)) = (current.as_object_mut(), body) {
        for (k, v) in changes {
            cur.insert(k, v);
        }
    }
    let new: Settings = serde_json::from_value(current).map_err(|e| format!("settings: {e}"))?;
    if new.notify_time_scale == 0 {
        return Err("notify_time_scale must be at least 1".into());
    }
    shared.settings = new;
    serde_json::to_value(&shared.settings).map_err(|e| e.to_string())
}

fn only_merchant(shared: &super::Shared) -> Option<String> {
    let mut ids = shared.books.merchants.keys();
    match (ids.next(), ids.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

/// (mch_id, transaction_id, out_trade_no) named by a /sim body; mch_id may be left out with one merchant.
fn order_ref(shared: &super::Shared, body: &Value) -> Result<(String, Option<String>, Option<String>), String> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let mch = s("mch_id").or_else(|| only_merchant(shared)).ok_or("mch_id is required (several merchants)")?;
    let (tx, mut no) = (s("transaction_id"), s("out_trade_no"));
    if let (None, None, Some(url)) = (&tx, &no, s("code_url")) {
        let order = shared.books.find_by_code_url(&mch, &url).ok_or_else(|| format!("no order has code_url {url}"))?;
        no = Some(order.out_trade_no.clone());
    }
    if tx.is_none() && no.is_none() {
        return Err("out_trade_no, transaction_id or code_url is required".into());
    }
    Ok((mch, tx, no))
}

fn pay(sim: &Arc<WechatSim>, body: &Value) -> Result<Value, String> {
    let late = body.get("late").and_then(Value::as_bool).unwrap_or(false);
    let now = sim.now();
    let event = {
        let mut shared = sim.lock();
        let (mch, tx, no) = order_ref(&shared, body)?;
        shared
            .books
            .pay(&mch, tx.as_deref(), no.as_deref(), late, now)
            .map_err(|e| format!("{}: {}", e.code, e.message))?
    };
    sim.dispatch(event);
    let shared = sim.lock();
    let (mch, tx, no) = order_ref(&shared, body)?;
    Ok(shared.books.find(&mch, tx.as_deref(), no.as_deref()).map(order_view).unwrap_or(Value::Null))
}

fn set_state(sim: &WechatSim, body: &Value, state: TradeState) -> Result<Value, String> {
    let mut shared = sim.lock();
    let (mch, tx, no) = order_ref(&shared, body)?;
    shared
        .books
        .set_unpaid_state(&mch, tx.as_deref(), no.as_deref(), state)
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    Ok(json!({"trade_state": state.as_str()}))
}

fn codes(sim: &WechatSim, body: &Value) -> Result<Value, String> {
    let code = body.get("auth_code").and_then(Value::as_str).ok_or("auth_code is required")?;
    let outcome = match body.get("outcome").and_then(Value::as_str) {
        Some("SUCCESS") => CodeOutcome::Success,
        Some("USERPAYING") => CodeOutcome::UserPaying,
        Some("FAIL") => CodeOutcome::Fail,
        _ => return Err("outcome must be SUCCESS, USERPAYING or FAIL".into()),
    };
    sim.lock().books.codes.insert(code.to_string(), outcome);
    Ok(json!({"auth_code": code}))
}

fn settle(sim: &Arc<WechatSim>, body: &Value) -> Result<Value, String> {
    let no = body.get("out_refund_no").and_then(Value::as_str).ok_or("out_refund_no is required")?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .and_then(RefundStatus::parse)
        .filter(|s| *s != RefundStatus::Processing)
        .ok_or("status must be SUCCESS, CLOSED or ABNORMAL")?;
    let now = sim.now();
    let event = {
        let mut shared = sim.lock();
        let mch = body
            .get("mch_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| only_merchant(&shared))
            .ok_or("mch_id is required (several merchants)")?;
        shared.books.settle_refund(&mch, no, status, now).map_err(|e| format!("{}: {}", e.code, e.message))?
    };
    if let Some(event) = event {
        sim.dispatch(event);
    }
    Ok(json!({"out_refund_no": no, "status": status.as_str()}))
}

fn faults(sim: &WechatSim, body: &Value) -> Result<Value, String> {
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .and_then(FaultKind::parse)
        .ok_or("kind must be timeout, drop, systemerror, duplicate_notify, reorder_notify or drop_notify")?;
    let path = body.get("path").and_then(Value::as_str).unwrap_or("").to_string();
    if path.is_empty() && !kind.is_notify() {
        return Err("path is required (e.g. /secapi/pay/refund)".into());
    }
    let out_trade_no = body.get("out_trade_no").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    if out_trade_no.is_some() && !kind.is_notify() {
        return Err("out_trade_no narrows notify faults only".into());
    }
    let count = body.get("count").and_then(Value::as_u64).unwrap_or(1).clamp(1, 1000) as u32;
    sim.lock().faults.push(Fault { path, kind, remaining: count, out_trade_no });
    Ok(json!({"queued": count}))
}

fn order_view(o: &super::state::Order) -> Value {
    let mut v = super::v3_api::order_json(o);
    v["api"] = json!(if o.api == super::state::Api::V2 { "v2" } else { "v3" });
    v["transaction_id"] = json!(o.transaction_id);
    v["created_at"] = json!(o.created_at);
    v["refunds"] = o
        .refunds
        .iter()
        .map(|r| {
            json!({"out_refund_no": r.out_refund_no, "refund_id": r.refund_id, "amount": r.amount,
                "status": r.status.as_str(), "reason": r.reason})
        })
        .collect();
    v
}
