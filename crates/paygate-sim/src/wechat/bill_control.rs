//! `/sim/wechat/bills/…`: what reconciliation tests need of WeChat's bills. `doctor` makes the bills written
//! from now on misreport one trade; `seed` adds many already-paid orders at once (no notifications) so a
//! 100 000-row bill is there in seconds.

use super::WechatSim;
use serde_json::{json, Value};

/// `POST /sim/wechat/bills/doctor {mch_id?, out_trade_no, omit? | amount? | fee? | at? | clear?}`.
pub(super) fn doctor(sim: &WechatSim, body: &Value) -> Result<Value, String> {
    let mut shared = sim.lock();
    let mch = merchant(&shared, body)?;
    shared.doctors.apply(&mch, body)
}

/// `POST /sim/wechat/bills/seed {mch_id?, rows: [{out_trade_no, transaction_id?, amount, paid_at}]}`.
pub(super) fn seed(sim: &WechatSim, body: &Value) -> Result<Value, String> {
    let rows = crate::recon::seed_rows(body, "transaction_id")?;
    let started = std::time::Instant::now();
    let mut shared = sim.lock();
    let mch = merchant(&shared, body)?;
    let appid = shared.books.merchants.get(&mch).map(|m| m.config.appid.clone()).ok_or("no such merchant")?;
    let seeded = shared.books.seed_paid(&mch, &appid, rows)?;
    Ok(json!({"mch_id": mch, "seeded": seeded, "millis": started.elapsed().as_millis() as u64}))
}

/// The body's mch_id, or the only merchant's.
fn merchant(shared: &super::Shared, body: &Value) -> Result<String, String> {
    if let Some(m) = body.get("mch_id").and_then(Value::as_str) {
        return Ok(m.to_string());
    }
    let mut ids = shared.books.merchants.keys();
    match (ids.next(), ids.next()) {
        (Some(one), None) => Ok(one.clone()),
        _ => Err("mch_id is required (several merchants)".into()),
    }
}
