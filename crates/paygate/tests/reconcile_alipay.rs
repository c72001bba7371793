//! Reconciliation (issue 14) against the Alipay simulator's daily bill (a ZIP of GBK CSVs served through
//! `alipay.data.dataservice.bill.downloadurl.query`, only for days that are over): payments and a refund match;
//! a dropped notification is recovered through the normal path; an amount and a fee changed in the bill are
//! mismatches, each reported once.

mod support;

#[path = "alipay_world/mod.rs"]
mod alipay_world;

use alipay_world::{start, World};
use paygate_domain::reconcile::BillDate;
use serde_json::{json, Value};
use support::{Backend, Keys};

both!(an_alipay_day_reconciles_with_each_discrepancy_once);

fn run(w: &World, k: &Keys, date: &str) -> Value {
    let (status, r) = w.s.post(&k.test, "/v1/reconciliations", json!({"channel": "alipay", "date": date}));
    assert_eq!(status, 200, "{r}");
    r
}

fn paid(w: &World, k: &Keys, no: &str, amount: i64) -> (String, String) {
    let (id, out_no, _) = w.pay(k, no, amount, "alipay_qr");
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": out_no}));
    w.wait_for("the order to be paid", || w.order(k, &id)["status"] == "paid");
    (id, out_no)
}

fn an_alipay_day_reconciles_with_each_discrepancy_once(backend: Backend) {
    let w = start(backend);
    // The simulator's clock on paygate's fixed test clock: both put the payments on the same day.
    let sim_now = w.sim_call("/sim/alipay/clock", json!({"advance_seconds": 0}))["now"].as_i64().unwrap();
    w.sim_call("/sim/alipay/clock", json!({"advance_seconds": w.s.app.now() - sim_now}));
    let k = w.s.create_app("alipay reconcile");
    w.account(&k);
    let (status, _) = w.s.post(&k.test, "/v1/fee_rates", json!({"channel": "alipay", "rate_bp": 60}));
    assert_eq!(status, 200);
    let (a, _) = paid(&w, &k, "ar-a", 1000);
    let (_, b_no) = paid(&w, &k, "ar-b", 2000);
    let (_, c_no) = paid(&w, &k, "ar-c", 3000);
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{a}/order_refunds"), json!({"amount": 400}));
    assert_eq!((status, r["data"][0]["status"].as_str()), (200, Some("succeeded")), "{r}");
    let (lost, lost_no, _) = w.pay(&k, "ar-lost", 500, "alipay_qr");
    w.sim_call("/sim/alipay/faults", json!({"kind": "drop_notify", "out_trade_no": lost_no}));
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": lost_no}));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(w.order(&k, &lost)["status"], "created", "the notification was dropped");
    w.sim_call("/sim/alipay/bills/doctor", json!({"out_trade_no": b_no, "amount": 2001}));
    w.sim_call("/sim/alipay/bills/doctor", json!({"out_trade_no": c_no, "fee": 1}));
    let date = BillDate::of(w.s.app.now()).to_string();

    // Alipay bills a day once it is over.
    w.sim_call("/sim/alipay/clock", json!({"advance_seconds": 86_400}));
    let r = run(&w, &k, &date);
    let mut expected = vec![
        ("missing_locally".to_string(), format!("payment:{lost_no}"), "resolved_automatically".to_string()),
        ("mismatch".into(), format!("payment:{b_no}"), "open".into()),
        ("mismatch".into(), format!("payment:{c_no}"), "open".into()),
    ];
    expected.sort();
    assert_eq!(support::channels::reported(&r), expected, "{r}");
    let s = &r["statement"];
    assert_eq!(s["channel_payments"], json!({"count": 4, "amount": 1000 + 2001 + 3000 + 500}), "{r}");
    assert_eq!(s["paygate_payments"]["count"], 3, "the recovered payment was not paid here when the day was read");
    assert_eq!(s["channel_refunds"], json!({"count": 1, "amount": 400}));
    assert_eq!(s["paygate_refunds"], s["channel_refunds"]);
    assert_eq!(
        (s["bill_rows"].as_i64(), s["consistent"].as_i64(), s["recovered"].as_i64()),
        (Some(5), Some(2), Some(1))
    );
    assert_eq!(w.order(&k, &lost)["status"], "paid", "recovered through the notification path");
    assert_eq!(w.events(&k, "order.succeeded"), 4);

    let again = run(&w, &k, &date);
    assert_eq!((again["version"].as_i64(), again["reported"].as_array().map(Vec::len)), (Some(2), Some(0)));
    assert_eq!(again["statement"]["consistent"], 3, "the recovered payment is consistent now: {again}");
    assert_eq!(w.events(&k, "reconciliation.discrepancy"), 3);
}
