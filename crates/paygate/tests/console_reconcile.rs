//! The console's reconciliation pages (issue 14) against the WeChat simulator, on SQLite and on PostgreSQL: an
//! admin runs a day from the console and sees its statement and a discrepancy (an amount doctored in the bill),
//! downloads the bill and the CSV, resolves the discrepancy with a note (audited, as the run is); a viewer sees
//! the pages but can neither run nor resolve (403); another app's user gets 404 for the run and its files.

mod support;

#[path = "wechat_world/mod.rs"]
mod wechat_world;

use paygate_core::console::Role;
use paygate_domain::reconcile::BillDate;
use serde_json::json;
use support::console::PASSWORD;
use support::Keys;
use wechat_world::{start, World};

both!(an_admin_runs_a_day_and_resolves_a_discrepancy_a_viewer_only_reads);

/// The simulator's clock on paygate's (the test clock is fixed): both then bill the same day.
fn sync_clocks(w: &World) {
    let sim_now = w.sim_call("/sim/wechat/clock", json!({"advance_seconds": 0}))["now"].as_i64().unwrap();
    w.sim_call("/sim/wechat/clock", json!({"advance_seconds": w.now() - sim_now}));
}

fn paid_order(w: &World, k: &Keys, mch: &str, no: &str, amount: i64) -> String {
    let (id, _ch, out_no) = w.qr_order(k, no, amount, json!({}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": out_no}));
    w.wait_for("the order to be paid", || w.order(k, &id)["status"] == "paid");
    out_no
}

fn an_admin_runs_a_day_and_resolves_a_discrepancy_a_viewer_only_reads(backend: support::Backend) {
    let w = start(backend);
    sync_clocks(&w);
    let k = w.s.create_app("console-reconcile");
    let (mch, appid) = ("1900000401", "wx2421b1c4370ec601");
    w.merchant(&k, mch, appid, true);
    paid_order(&w, &k, mch, "crc-1", 1000);
    let doctored = paid_order(&w, &k, mch, "crc-2", 1234);
    w.sim_call("/sim/wechat/bills/doctor", json!({"mch_id": mch, "out_trade_no": doctored, "amount": 1235}));
    let other = w.s.create_app("console-reconcile-other");
    for (app, email, role) in [
        (&k.app, "admin@shop.test", Role::Admin),
        (&k.app, "viewer@shop.test", Role::Viewer),
        (&other.app, "admin@other.test", Role::Admin),
    ] {
        w.s.rt.block_on(w.s.app.create_console_user(app, email, role, PASSWORD)).unwrap();
    }
    let date = BillDate::of(w.now()).to_string();
    let key = format!("payment:{doctored}");

    // The admin runs the day from the console and lands on its statement.
    let mut admin = support::console::signed_in(&w.s, &k.app, "admin@shop.test");
    let list = admin.get("/console/test/reconciliations");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("No reconciliations yet.") && list.body.contains("name=\"date\""), "{}", list.body);
    let csrf = list.hidden("csrf");
    let bad =
        admin.post("/console/test/reconciliations", &[("csrf", &csrf), ("channel", "wechat"), ("date", "2027-13-01")]);
    assert_eq!(bad.status, 400, "a bad date is shown with the form: {}", bad.body);
    let ran = admin.post("/console/test/reconciliations", &[("csrf", &csrf), ("channel", "wechat"), ("date", &date)]);
    assert_eq!(ran.status, 303, "{}", ran.body);
    let location = ran.header("location").unwrap().to_string();
    let run_path = location.split('?').next().unwrap().to_string();
    let run_id = run_path.rsplit('/').next().unwrap().to_string();
    assert!(run_id.starts_with("recon_") && location.ends_with("?ran=1"), "{location}");
    let statement = admin.get(&location);
    assert_eq!(statement.status, 200, "{}", statement.body);
    let b = &statement.body;
    assert!(b.contains("The day was reconciled.") && b.contains("Discrepancies found"), "{b}");
    assert!(b.contains("<dt>Bill rows</dt><dd>2</dd>"), "{b}");
    assert!(b.contains("<dt>Mismatch</dt><dd>1</dd>"), "{b}");
    assert!(b.contains("<dt>Payments in paygate</dt><dd>2 · 22.34</dd>"), "{b}");
    assert!(b.contains("<dt>Payments at the channel</dt><dd>2 · 22.35</dd>"), "{b}");
    assert!(b.contains(&key) && b.contains(">12.35<") && b.contains(">12.34<") && b.contains(">amount<"), "{b}");
    let list = admin.get("/console/test/reconciliations");
    assert!(list.body.contains(&run_path) && list.body.contains(&date), "the run is listed: {}", list.body);

    // The bill as WeChat served it, and the CSV of the run's discrepancies.
    let bill = admin.get(&format!("{run_path}/bill"));
    assert_eq!((bill.status, bill.header("content-type")), (200, Some("application/octet-stream")));
    let parsed = paygate_channels::bills::parse_wechat_bill(bill.body.as_bytes()).unwrap();
    assert_eq!(parsed.rows.len(), 2, "the raw bill");
    let csv = admin.get(&format!("{run_path}/csv"));
    assert_eq!((csv.status, csv.header("content-type")), (200, Some("text/csv; charset=utf-8")), "{}", csv.body);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[0].starts_with("id,channel,bill_date,reconciliation,kind,key,state"), "{}", csv.body);
    assert!(
        lines[1].contains(&key) && lines[1].contains("mismatch") && lines[1].contains(",1235,1234,"),
        "{}",
        lines[1]
    );

    // A viewer reads the pages but can neither run a day nor resolve.
    let mut viewer = support::console::signed_in(&w.s, &k.app, "viewer@shop.test");
    let seen = viewer.get("/console/test/reconciliations");
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains(&run_path) && !seen.body.contains("name=\"date\""), "no run form: {}", seen.body);
    let viewer_csrf = seen.hidden("csrf");
    let refused =
        viewer.post("/console/test/reconciliations", &[("csrf", &viewer_csrf), ("channel", "wechat"), ("date", &date)]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let open = viewer.get("/console/test/discrepancies?state=open");
    assert_eq!(open.status, 200);
    assert!(open.body.contains(&key) && !open.body.contains("/resolve"), "no resolve form: {}", open.body);
    let discrepancy_id = {
        let at = open.body.find("<small>").unwrap() + "<small>".len();
        open.body[at..].split('<').next().unwrap().to_string()
    };
    let resolve = format!("/console/test/discrepancies/{discrepancy_id}/resolve");
    let refused = viewer.post(&resolve, &[("csrf", &viewer_csrf), ("note", "not mine to say")]);
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Another app's admin: the run, its bill and CSV, and the discrepancy do not exist for them.
    let mut stranger = support::console::signed_in(&w.s, &other.app, "admin@other.test");
    for path in [run_path.clone(), format!("{run_path}/bill"), format!("{run_path}/csv")] {
        assert_eq!(stranger.get(&path).status, 404, "{path}");
    }
    let stranger_csrf = stranger.get("/console/test/reconciliations").hidden("csrf");
    assert_eq!(stranger.post(&resolve, &[("csrf", &stranger_csrf), ("note", "x")]).status, 404);

    // The admin resolves it with a note (a note is required), from the open list.
    let open = admin.get("/console/test/discrepancies?state=open");
    assert!(open.body.contains(&resolve), "the resolve form: {}", open.body);
    assert_eq!(admin.post(&resolve, &[("csrf", &csrf), ("note", "  ")]).status, 400);
    let done = admin.post(&resolve, &[("csrf", &csrf), ("note", "bill corrected by WeChat, ticket 7")]);
    assert_eq!(
        (done.status, done.header("location")),
        (303, Some("/console/test/discrepancies?state=open&resolved=1")),
        "{}",
        done.body
    );
    let open = admin.get("/console/test/discrepancies?state=open&resolved=1");
    assert!(open.body.contains("The discrepancy was resolved.") && !open.body.contains(&key), "{}", open.body);
    assert_eq!(admin.post(&resolve, &[("csrf", &csrf), ("note", "again")]).status, 409);
    let statement = admin.get(&run_path);
    assert!(
        statement.body.contains("resolved by a person") && statement.body.contains("ticket 7"),
        "{}",
        statement.body
    );
    let csv = admin.get(&format!("{run_path}/csv")).body;
    assert!(csv.contains("resolved_manually") && csv.contains("ticket 7"), "{csv}");

    // Both actions are in the audit log, with who did them.
    let audit = admin.get("/console/test/audit").body;
    assert!(audit.contains("reconciliation.run") && audit.contains(&run_id), "{audit}");
    assert!(audit.contains("reconciliation_discrepancy.resolve") && audit.contains(&discrepancy_id), "{audit}");
    assert!(audit.contains("bill corrected by WeChat, ticket 7"), "{audit}");
    assert_eq!(audit.matches("reconciliation_discrepancy.resolve").count(), 1, "the refused ones are not audited");
    assert_eq!(audit.matches("reconciliation.run").count(), 1, "{audit}");
}
