//! Reconciliation (issue 14) against the WeChat simulator's daily bills, through `/v1/reconciliations`: a day of
//! payments and refunds reconciles consistent; then each kind of discrepancy is made on purpose in the simulator
//! (a dropped notification, a payment it never saw, an amount and a fee changed in the bill, a refund still
//! PROCESSING) and is reported exactly once with its kind; the dropped notification is recovered through the
//! normal path (its events sent once); reruns add versions, never duplicates; a payment billed the next day is
//! carried, not flagged.

mod support;

#[path = "wechat_world/mod.rs"]
mod wechat_world;

use paygate_domain::reconcile::BillDate;
use serde_json::{json, Value};
use support::channels::reported;
use support::{Backend, Keys};
use wechat_world::{start, World};

both!(
    a_day_reconciles_then_each_discrepancy_is_reported_once,
    a_payment_billed_the_next_day_is_carried_not_flagged,
    runs_are_checked_and_scoped_to_their_app,
    the_worker_reconciles_yesterday_once_after_the_hour,
);

/// The simulator's clock on paygate's (the test clock is fixed, in 2027): both then bill the same day.
fn sync_clocks(w: &World) {
    let sim_now = w.sim_call("/sim/wechat/clock", json!({"advance_seconds": 0}))["now"].as_i64().unwrap();
    w.sim_call("/sim/wechat/clock", json!({"advance_seconds": w.now() - sim_now}));
}

fn today(w: &World) -> String {
    BillDate::of(w.now()).to_string()
}

fn run(w: &World, k: &Keys, date: &str) -> Value {
    let (status, r) = w.s.post(&k.test, "/v1/reconciliations", json!({"channel": "wechat", "date": date}));
    assert_eq!(status, 200, "{r}");
    r
}

fn paid_order(w: &World, k: &Keys, mch: &str, no: &str, amount: i64) -> (String, String) {
    let (id, _ch, out_no) = w.qr_order(k, no, amount, json!({}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": out_no}));
    w.wait_for("the order to be paid", || w.order(k, &id)["status"] == "paid");
    (id, out_no)
}

/// A partial refund of `order`: (refund id, its out_refund_no). It stays PROCESSING at the simulator.
fn refund(w: &World, k: &Keys, order: &str, amount: i64) -> (String, String) {
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{order}/order_refunds"), json!({"amount": amount}));
    assert_eq!(status, 200, "{r}");
    let refund = r["data"].as_array().unwrap().iter().find(|x| x["amount"] == amount && x["status"] == "pending");
    let id = refund.unwrap()["id"].as_str().unwrap().to_string();
    let scope = wechat_world::scope(k);
    let stored = w.s.rt.block_on(w.s.app.store.refund(&scope, &id)).unwrap().unwrap();
    (id, stored.refund_no)
}

fn refund_status(w: &World, k: &Keys, order: &str, id: &str) -> Value {
    w.s.get(&k.test, &format!("/v1/orders/{order}/order_refunds/{id}")).1["status"].clone()
}

fn fee(fen: i64) -> i64 {
    (fen * 60 + 5000) / 10_000
}

fn a_day_reconciles_then_each_discrepancy_is_reported_once(backend: Backend) {
    let w = start(backend);
    sync_clocks(&w);
    let k = w.s.create_app("reconcile");
    let (mch, appid) = ("1900000301", "wx2421b1c4370ec601");
    w.merchant(&k, mch, appid, true);
    let (status, _) = w.s.post(&k.test, "/v1/fee_rates", json!({"channel": "wechat", "rate_bp": 60}));
    assert_eq!(status, 200);
    let amounts = [1000, 1100, 1234, 2999];
    let orders: Vec<(String, String)> =
        amounts.iter().enumerate().map(|(i, a)| paid_order(&w, &k, mch, &format!("rc-{i}"), *a)).collect();
    let (r1, r1_no) = refund(&w, &k, &orders[0].0, 300);
    w.sim_call("/sim/wechat/refunds/settle", json!({"mch_id": mch, "out_refund_no": r1_no, "status": "SUCCESS"}));
    w.wait_for("the refund to succeed", || refund_status(&w, &k, &orders[0].0, &r1) == "succeeded");

    // The day agrees: both sides totalled, every row consistent, nothing reported.
    let date = today(&w);
    let r = run(&w, &k, &date);
    assert_eq!((r["result"].as_str(), r["version"].as_i64()), (Some("consistent"), Some(1)), "{r}");
    let s = &r["statement"];
    let total: i64 = amounts.iter().sum();
    assert_eq!(s["paygate_payments"], json!({"count": 4, "amount": total}), "{r}");
    assert_eq!(s["channel_payments"], s["paygate_payments"]);
    assert_eq!(s["paygate_refunds"], json!({"count": 1, "amount": 300}));
    assert_eq!(s["channel_refunds"], s["paygate_refunds"]);
    let fees: i64 = amounts.iter().map(|a| fee(*a)).sum();
    assert_eq!((s["paygate_fees"].as_i64(), s["channel_fees"].as_i64()), (Some(fees), Some(fees - fee(300))));
    assert_eq!((s["bill_rows"].as_i64(), s["consistent"].as_i64()), (Some(5), Some(5)));
    assert_eq!(s["bill_stated_rows"], 5, "the bill's own summary agrees with the rows read");
    assert_eq!(reported(&r), vec![]);

    // Now each kind on purpose.
    let (lost_id, _, lost_no) = w.qr_order(&k, "rc-lost", 500, json!({}));
    w.sim_call("/sim/wechat/faults", json!({"kind": "drop_notify", "out_trade_no": lost_no}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": lost_no}));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(w.order(&k, &lost_id)["status"], "created", "the notification was dropped");
    let doctor = |no: &str, what: Value| {
        let mut body = json!({"mch_id": mch, "out_trade_no": no});
        body.as_object_mut().unwrap().extend(what.as_object().unwrap().clone());
        w.sim_call("/sim/wechat/bills/doctor", body);
    };
    doctor(&orders[1].1, json!({"omit": true}));
    doctor(&orders[2].1, json!({"amount": 1235}));
    doctor(&orders[3].1, json!({"fee": 1}));
    let (slow, slow_no) = refund(&w, &k, &orders[0].0, 100);

    let r = run(&w, &k, &date);
    assert_eq!((r["result"].as_str(), r["version"].as_i64()), (Some("discrepancies"), Some(2)), "{r}");
    let key = |no: &str| format!("payment:{no}");
    let mut expected = vec![
        ("missing_locally".to_string(), key(&lost_no), "resolved_automatically".to_string()),
        ("mismatch".into(), key(&orders[2].1), "open".into()),
        ("mismatch".into(), key(&orders[3].1), "open".into()),
        ("mismatch".into(), format!("refund:{slow_no}"), "open".into()),
    ];
    expected.sort();
    assert_eq!(reported(&r), expected, "{r}");
    let s = &r["statement"];
    assert_eq!((s["carried"].as_i64(), s["recovered"].as_i64(), s["mismatch"].as_i64()), (Some(1), Some(1), Some(3)));
    assert_eq!(s["missing_locally"], 0, "the recovered one is not open");
    let details =
        |k: &str| r["reported"].as_array().unwrap().iter().find(|d| d["key"] == k).unwrap()["details"].clone();
    assert_eq!(details(&key(&orders[2].1))["fields"], json!(["amount"]));
    assert_eq!(details(&key(&orders[3].1))["fields"], json!(["fee"]));
    assert_eq!(details(&format!("refund:{slow_no}"))["channel"]["status"], "PROCESSING");
    // The dropped notification was recovered through the normal path: paid, its events once.
    assert_eq!(w.order(&k, &lost_id)["status"], "paid");
    assert_eq!(w.events(&k, "order.succeeded"), 5);
    assert_eq!(refund_status(&w, &k, &orders[0].0, &slow), "pending", "PROCESSING is never taken for an end");

    // A rerun reports nothing new.
    let again = run(&w, &k, &date);
    assert_eq!((again["version"].as_i64(), reported(&again)), (Some(3), vec![]), "{again}");
    assert_eq!(w.events(&k, "reconciliation.discrepancy"), 4);
    assert_eq!(w.events(&k, "reconciliation.completed"), 3);

    // The refund finishes: the next rerun resolves its discrepancy automatically.
    w.sim_call("/sim/wechat/refunds/settle", json!({"mch_id": mch, "out_refund_no": slow_no, "status": "SUCCESS"}));
    w.wait_for("the slow refund to succeed", || refund_status(&w, &k, &orders[0].0, &slow) == "succeeded");
    assert_eq!(reported(&run(&w, &k, &date)), vec![]);
    let (_, resolved) = w.s.get(&k.test, "/v1/reconciliation_discrepancies?state=resolved_automatically");
    let keys: Vec<&str> = resolved["data"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&format!("refund:{slow_no}").as_str()) && keys.contains(&key(&lost_no).as_str()), "{keys:?}");

    // The next day: the payment the channel never billed is missing at the channel, once.
    w.s.clock.advance(86_400);
    let next = today(&w);
    let r = run(&w, &k, &next);
    assert_eq!(reported(&r), vec![("missing_at_channel".into(), key(&orders[1].1), "open".into())], "{r}");
    assert_eq!(reported(&run(&w, &k, &next)), vec![]);

    // Open discrepancies: listed, resolved by a person with a note (once), exported as CSV.
    let (_, open) = w.s.get(&k.test, "/v1/reconciliation_discrepancies?state=open&limit=100");
    let open = open["data"].as_array().unwrap().clone();
    assert_eq!(open.len(), 3, "{open:?}");
    let id = open[0]["id"].as_str().unwrap();
    let path = format!("/v1/reconciliation_discrepancies/{id}/resolve");
    let (status, body) = w.s.post(&k.test, &path, json!({}));
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("note")), "{body}");
    let (status, done) = w.s.post(&k.test, &path, json!({"note": "channel confirmed by phone, ticket 42"}));
    assert_eq!((status, done["state"].as_str()), (200, Some("resolved_manually")), "{done}");
    assert_eq!(w.s.post(&k.test, &path, json!({"note": "again"})).0, 409);
    let (status, _, csv) = w.s.raw("GET", &k.test, "/v1/reconciliation_discrepancies?format=csv", None, &[]);
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,channel,bill_date,reconciliation,kind,key,state"), "{csv}");
    assert_eq!(lines.len(), 1 + 5, "{csv}");
    assert!(csv.contains("ticket 42") && csv.contains("missing_at_channel"), "{csv}");

    // The runs: listed newest first, each with its bill as downloaded.
    let (_, runs) = w.s.get(&k.test, "/v1/reconciliations?channel=wechat&limit=2");
    assert_eq!((runs["data"].as_array().unwrap().len(), runs["has_more"].as_bool()), (2, Some(true)));
    let first = &runs["data"][1];
    assert_eq!(first["bill_date"].as_str(), Some(next.as_str()));
    let (status, _, bill) =
        w.s.raw("GET", &k.test, &format!("/v1/reconciliations/{}/bill", first["id"].as_str().unwrap()), None, &[]);
    assert_eq!((status, bill.as_str()), (200, ""), "no bill that day: nothing kept");
    let (_, all) = w.s.get(&k.test, "/v1/reconciliations?limit=100");
    let day_one =
        all["data"].as_array().unwrap().iter().find(|x| x["version"] == 1 && x["bill_date"] == date).unwrap().clone();
    let (status, _, _) =
        w.s.raw("GET", &k.test, &format!("/v1/reconciliations/{}/bill", day_one["id"].as_str().unwrap()), None, &[]);
    assert_eq!(status, 200);
    let scope = wechat_world::scope(&k);
    let kept = w.s.rt.block_on(w.s.app.store.reconciliation_file(&scope, day_one["id"].as_str().unwrap())).unwrap();
    let parsed = paygate_channels::bills::parse_wechat_bill(&kept.unwrap()).unwrap();
    assert_eq!(parsed.rows.len(), 5, "the raw file is the bill as WeChat served it");
}

fn a_payment_billed_the_next_day_is_carried_not_flagged(backend: Backend) {
    let w = start(backend);
    sync_clocks(&w);
    let k = w.s.create_app("reconcile late");
    let (mch, appid) = ("1900000302", "wx2421b1c4370ec602");
    w.merchant(&k, mch, appid, false);
    let (_, late_no) = paid_order(&w, &k, mch, "late-1", 800);
    let (_, on_time) = paid_order(&w, &k, mch, "late-2", 900);
    let date = BillDate::of(w.now());
    // Paid here today; WeChat bills it tomorrow (paid at 23:59:59, billed after midnight).
    let tomorrow_noon = date.next().start() + 12 * 3600;
    w.sim_call("/sim/wechat/bills/doctor", json!({"mch_id": mch, "out_trade_no": late_no, "at": tomorrow_noon}));

    let r = run(&w, &k, &date.to_string());
    assert_eq!(r["result"], "consistent", "a carried row is no discrepancy yet: {r}");
    assert_eq!((r["statement"]["carried"].as_i64(), r["statement"]["consistent"].as_i64()), (Some(1), Some(1)));
    assert_eq!(reported(&r), vec![]);
    let _ = on_time;

    w.s.clock.advance(86_400);
    let r = run(&w, &k, &date.next().to_string());
    assert_eq!(r["result"], "consistent", "{r}");
    assert_eq!(reported(&r), vec![]);
    assert_eq!((r["statement"]["bill_rows"].as_i64(), r["statement"]["consistent"].as_i64()), (Some(1), Some(1)));
    assert_eq!(r["statement"]["paygate_payments"]["count"], 0, "paid here the day before");
    assert_eq!(w.events(&k, "reconciliation.discrepancy"), 0);
}

fn runs_are_checked_and_scoped_to_their_app(backend: Backend) {
    let w = start(backend);
    sync_clocks(&w);
    let k = w.s.create_app("reconcile checks");
    let other = w.s.create_app("reconcile other");
    let date = today(&w);
    let post = |key: &str, body: Value| w.s.post(key, "/v1/reconciliations", body);
    let refused = |body: Value, param: &str| {
        let (status, r) = post(&k.test, body);
        assert_eq!((status, r["error"]["param"].as_str()), (400, Some(param)), "{r}");
    };
    refused(json!({"channel": "paypal", "date": date}), "channel");
    refused(json!({"date": date}), "channel");
    refused(json!({"channel": "wechat", "date": "2026-02-30"}), "date");
    refused(json!({"channel": "wechat", "date": "20261201"}), "date");
    refused(json!({"channel": "wechat", "date": BillDate::of(w.now()).next().to_string()}), "date");
    let (status, r) = post(&k.test, json!({"channel": "wechat", "date": date, "extra": 1}));
    assert_eq!(status, 400, "{r}");
    // No account: nothing to download.
    let (status, r) = post(&k.test, json!({"channel": "alipay", "date": date}));
    assert_eq!((status, r["error"]["code"].as_str()), (402, Some("channel_not_configured")), "{r}");

    w.merchant(&k, "1900000303", "wx2421b1c4370ec603", true);
    let r = run(&w, &k, &date);
    assert_eq!((r["result"].as_str(), r["statement"]["bill_present"].as_bool()), (Some("consistent"), Some(false)));
    let id = r["id"].as_str().unwrap();
    assert!(id.starts_with("recon_"), "{id}");
    assert_eq!(w.s.get(&k.test, &format!("/v1/reconciliations/{id}")).0, 200);
    for path in [format!("/v1/reconciliations/{id}"), format!("/v1/reconciliations/{id}/discrepancies")] {
        assert_eq!(w.s.get(&other.test, &path).0, 404, "{path} from another app");
    }
    assert_eq!(w.s.raw("GET", &other.test, &format!("/v1/reconciliations/{id}/bill"), None, &[]).0, 404);
    let (_, list) = w.s.get(&other.test, "/v1/reconciliations");
    assert_eq!(list["data"], json!([]));
    let (status, r) = w.s.get(&k.test, "/v1/reconciliation_discrepancies?state=closed");
    assert_eq!((status, r["error"]["param"].as_str()), (400, Some("state")), "{r}");

    // The operator's command runs the same reconciliation against the same database.
    use base64::Engine as _;
    let master = format!("k1:{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let args = ["reconcile", "run", "--app", &k.app, "--channel", "wechat", "--date", &date, "--json"];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(args)
        .args(["--database", &w.s.database_url, "--channel-allow-private", "--master-keys", &master])
        .env_remove("PAYGATE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is the run as JSON");
    assert_eq!((printed["version"].as_i64(), printed["result"].as_str()), (Some(2), Some("consistent")), "{printed}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["reconcile", "run", "--app", &k.app, "--channel", "wechat", "--date", "2026-02-30"])
        .args(["--database", &w.s.database_url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("date"), "{}", String::from_utf8_lossy(&out.stderr));
}

fn the_worker_reconciles_yesterday_once_after_the_hour(backend: Backend) {
    let w = start(backend);
    sync_clocks(&w);
    let k = w.s.create_app("reconcile daily");
    let (mch, appid) = ("1900000304", "wx2421b1c4370ec604");
    w.merchant(&k, mch, appid, false);
    paid_order(&w, &k, mch, "daily-1", 1500);
    let day = BillDate::of(w.now());
    let runs_of = |date: BillDate| -> Vec<Value> {
        let (_, list) = w.s.get(&k.test, "/v1/reconciliations?limit=100");
        list["data"].as_array().unwrap().iter().filter(|r| r["bill_date"] == date.to_string()).cloned().collect()
    };
    w.tick();
    assert!(runs_of(day).is_empty(), "today is not over");

    // The next day before 10:00 Beijing: nothing yet.
    let next = day.next();
    w.s.clock.advance(next.start() + 9 * 3600 - w.now());
    let sweep = w.tick();
    assert_eq!((runs_of(day).len(), sweep.errors), (0, 0));
    // After 10:00: yesterday is reconciled, once; later checks find it done.
    w.s.clock.advance(3600 + 600);
    assert_eq!(w.tick().errors, 0);
    let runs = runs_of(day);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0]["result"].as_str(), runs[0]["statement"]["consistent"].as_i64()),
        (Some("consistent"), Some(1))
    );
    w.tick();
    w.s.clock.advance(600);
    w.tick();
    assert_eq!(runs_of(day).len(), 1, "one run a day");
}
