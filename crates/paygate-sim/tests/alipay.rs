//! The Alipay simulator driven through `gateway.do` with paygate-channels' Alipay protocol code: every request
//! signed with the app key, every answer verified over its raw node with the simulator's Alipay key, every
//! notification verified as a merchant would.

use paygate_channels::alipay::{self, build_request, encode_form, parse_form, verify_notify, Params, Response};
use paygate_channels::rsa::{SigningKey, VerifyingKey};
use paygate_sim::alipay::config::{AppConfig, SimConfig};
use paygate_sim::alipay::AlipaySim;
use paygate_sim::http::{reply, serve, Outcome, Request};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const APP_ID: &str = "2021000000000001";

struct Harness {
    _rt: tokio::runtime::Runtime,
    base: String,
    notify: String,
    received: mpsc::Receiver<Params>,
    /// How many notifications the merchant answers with something other than `success` first.
    refuse_first: Arc<AtomicUsize>,
    app_key: SigningKey,
    alipay: VerifyingKey,
}

fn start() -> Harness {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let mut config = SimConfig::default();
    config.settings.notify_time_scale = 10_000;
    config.apps.push(AppConfig { app_id: APP_ID.into(), app_public_key_pem: public_pem, seller_id: String::new() });
    let sim = AlipaySim::new(config).unwrap();
    let (addr, _) = rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    let (tx, received) = mpsc::channel();
    let refuse_first = Arc::new(AtomicUsize::new(0));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let notify = format!("http://{}/notify", listener.local_addr().unwrap());
    let refusing = refuse_first.clone();
    rt.spawn(serve(listener, None, move |req: Request| {
        let (tx, refusing) = (tx.clone(), refusing.clone());
        async move {
            let refuse = refusing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            let answer = if refuse {
                "fail"
            } else {
                let _ = tx.send(parse_form(&req.body).unwrap());
                "success"
            };
            Outcome::Reply(reply(hyper::StatusCode::OK, "text/plain", answer))
        }
    }));
    Harness {
        base: format!("http://{addr}"),
        notify,
        received,
        refuse_first,
        app_key: SigningKey::from_pem(&private_pem).unwrap(),
        alipay: VerifyingKey::from_pem(sim.alipay_public_key_pem()).unwrap(),
        _rt: rt,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

impl Harness {
    fn params(&self, method: &str, biz: Value) -> Params {
        build_request(APP_ID, method, &biz, &[("notify_url", &self.notify)], now(), &self.app_key).unwrap()
    }

    /// POSTs a signed call as a form and verifies the answer.
    fn call(&self, method: &str, biz: Value) -> Response {
        let body = self.send(&encode_form(&self.params(method, biz)));
        Response::parse(&body, method, &self.alipay).expect("the answer is signed by the simulator's Alipay key")
    }

    fn send(&self, form: &str) -> String {
        ureq::post(&format!("{}/gateway.do", self.base))
            .set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
            .send_string(form)
            .unwrap()
            .into_string()
            .unwrap()
    }

    fn sim(&self, path: &str, body: Value) -> Value {
        match ureq::post(&format!("{}/sim/alipay/{path}", self.base)).send_json(body) {
            Ok(r) => r.into_json().unwrap(),
            Err(ureq::Error::Status(_, r)) => r.into_json().unwrap(),
            Err(e) => panic!("{e}"),
        }
    }

    fn notification(&self) -> Params {
        let p = self.received.recv_timeout(Duration::from_secs(10)).expect("a notification arrives");
        verify_notify(&p, &self.alipay).expect("the notification verifies with the Alipay key");
        p
    }
}

#[test]
fn precreate_pay_notify_refunds_and_close() {
    let h = start();
    let r = h.call("alipay.trade.precreate", json!({"out_trade_no": "o1", "total_amount": "0.10", "subject": "测试"}));
    assert!(r.is_success(), "{r:?}");
    let qr = r.get("qr_code").unwrap().to_string();
    // Not scanned yet: Alipay does not know the trade.
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "o1"}));
    assert_eq!((q.code.as_str(), q.sub_code.as_deref()), ("40004", Some("ACQ.TRADE_NOT_EXIST")));
    // Scanning opens the page; the trade now waits.
    assert!(ureq::get(&qr).call().unwrap().into_string().unwrap().contains("WAIT_BUYER_PAY"));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "o1"}));
    assert_eq!(q.get("trade_status"), Some("WAIT_BUYER_PAY"));
    // The merchant refuses the first notification: Alipay retries until `success`.
    h.refuse_first.store(1, Ordering::SeqCst);
    h.sim("pay", json!({"out_trade_no": "o1"}));
    let n = h.notification();
    assert_eq!((n["trade_status"].as_str(), n["total_amount"].as_str()), ("TRADE_SUCCESS", "0.10"));
    assert_eq!((n["app_id"].as_str(), n["sign_type"].as_str()), (APP_ID, "RSA2"));
    assert!(n["seller_id"].starts_with("2088"));
    let trade_no = q.get("trade_no").unwrap().to_string();
    let q = h.call("alipay.trade.query", json!({"trade_no": trade_no, "out_trade_no": "someone else's"}));
    assert_eq!((q.get("trade_status"), q.get("total_amount")), (Some("TRADE_SUCCESS"), Some("0.10")));
    // Partial refunds: out_request_no makes a retry idempotent; more than is left is refused.
    let refund = |amount: &str, no: &str| {
        h.call("alipay.trade.refund", json!({"out_trade_no": "o1", "refund_amount": amount, "out_request_no": no}))
    };
    let r = refund("0.03", "r1");
    assert_eq!((r.get("fund_change"), r.get("refund_fee")), (Some("Y"), Some("0.03")));
    assert_eq!(h.notification()["out_biz_no"], "r1");
    assert_eq!(refund("0.03", "r1").get("fund_change"), Some("N"));
    assert_eq!(refund("0.04", "r1").sub_code.as_deref(), Some("ACQ.DISCORDANT_REPEAT_REQUEST"));
    assert_eq!(refund("0.08", "r2").sub_code.as_deref(), Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"));
    assert_eq!(refund("1.234", "r3").code, "40002");
    let rq = h.call("alipay.trade.fastpay.refund.query", json!({"out_trade_no": "o1", "out_request_no": "r1"}));
    assert_eq!((rq.get("refund_status"), rq.get("refund_amount")), (Some("REFUND_SUCCESS"), Some("0.03")));
    let rq = h.call("alipay.trade.fastpay.refund.query", json!({"out_trade_no": "o1", "out_request_no": "nope"}));
    assert!(rq.is_success() && rq.get("refund_amount").is_none());
    // Close only while waiting.
    let c = h.call("alipay.trade.close", json!({"out_trade_no": "o1"}));
    assert_eq!(c.sub_code.as_deref(), Some("ACQ.TRADE_STATUS_ERROR"));
    // The rest refunded: the trade closes.
    assert!(refund("0.07", "r2").is_success());
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "o1"}));
    assert_eq!(q.get("trade_status"), Some("TRADE_CLOSED"));
}

#[test]
fn close_then_late_payment_and_repeats() {
    let h = start();
    h.call("alipay.trade.precreate", json!({"out_trade_no": "o2", "total_amount": "1.00", "subject": "s"}));
    let c = h.call("alipay.trade.close", json!({"out_trade_no": "o2"}));
    assert_eq!(c.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"), "unscanned");
    h.sim("scan", json!({"out_trade_no": "o2"}));
    let again = h.call("alipay.trade.precreate", json!({"out_trade_no": "o2", "total_amount": "2.00", "subject": "s"}));
    assert_eq!(again.sub_code.as_deref(), Some("ACQ.CONTEXT_INCONSISTENT"));
    assert!(h.call("alipay.trade.close", json!({"out_trade_no": "o2"})).is_success());
    assert_eq!(h.notification()["trade_status"], "TRADE_CLOSED");
    let refused = h.sim("pay", json!({"out_trade_no": "o2"}));
    assert!(refused["error"].as_str().unwrap().contains("TRADE_CLOSED"));
    h.sim("pay", json!({"out_trade_no": "o2", "late": true}));
    assert_eq!(h.notification()["trade_status"], "TRADE_SUCCESS");
    let dup = h.call("alipay.trade.precreate", json!({"out_trade_no": "o2", "total_amount": "1.00", "subject": "s"}));
    assert_eq!(dup.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
    // Cancel of a paid trade refunds it all.
    let c = h.call("alipay.trade.cancel", json!({"out_trade_no": "o2"}));
    assert_eq!((c.get("action"), c.get("retry_flag")), (Some("refund"), Some("N")));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "o2"}));
    assert_eq!(q.get("trade_status"), Some("TRADE_CLOSED"));
}

#[test]
fn barcode_codes_decide() {
    let h = start();
    h.sim("codes", json!({"auth_code": "281234567890", "outcome": "WAIT"}));
    h.sim("codes", json!({"auth_code": "289999999999", "outcome": "FAIL"}));
    let pay = |no: &str, code: &str| {
        h.call(
            "alipay.trade.pay",
            json!({"out_trade_no": no, "scene": "bar_code", "auth_code": code,
            "total_amount": "12.30", "subject": "s"}),
        )
    };
    let paid = pay("b1", "280000000001");
    assert!(paid.is_success(), "{paid:?}");
    assert_eq!(
        (paid.get("total_amount"), paid.fields["fund_bill_list"][0]["amount"].as_str()),
        (Some("12.30"), Some("12.30"))
    );
    assert_eq!(h.notification()["out_trade_no"], "b1");
    let waiting = pay("b2", "281234567890");
    assert_eq!(waiting.code, "10003");
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "b2"}));
    assert_eq!(q.get("trade_status"), Some("WAIT_BUYER_PAY"));
    h.sim("pay", json!({"out_trade_no": "b2"}));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "b2"}));
    assert_eq!(q.get("trade_status"), Some("TRADE_SUCCESS"));
    assert_eq!(pay("b3", "289999999999").sub_code.as_deref(), Some("ACQ.PAYMENT_AUTH_CODE_INVALID"));
}

#[test]
fn royalty_needs_bound_receivers_and_keeps_the_cap() {
    let h = start();
    h.call(
        "alipay.trade.pay",
        json!({"out_trade_no": "s1", "scene": "bar_code", "auth_code": "28", "total_amount":
        "100.00", "subject": "s"}),
    );
    let trade_no = h.call("alipay.trade.query", json!({"out_trade_no": "s1"})).get("trade_no").unwrap().to_string();
    let settle = |no: &str, amount: &str| {
        h.call(
            "alipay.trade.order.settle",
            json!({"out_request_no": no, "trade_no": trade_no,
            "royalty_parameters": [{"trans_in_type": "userId", "trans_in": "2088101126708402", "amount": amount}]}),
        )
    };
    assert_eq!(settle("st1", "10.00").sub_code.as_deref(), Some("ACQ.ROYALTY_RECEIVER_NOT_BIND"));
    let bind = h.call(
        "alipay.trade.royalty.relation.bind",
        json!({"out_request_no": "b1",
        "receiver_list": [{"type": "userId", "account": "2088101126708402"}]}),
    );
    assert_eq!(bind.get("result_code"), Some("SUCCESS"));
    assert_eq!(settle("st1", "30.01").sub_code.as_deref(), Some("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"));
    let first = settle("st1", "20.00");
    assert!(first.is_success(), "{first:?}");
    assert_eq!(settle("st1", "20.00").get("settle_no"), first.get("settle_no"), "same request, same settlement");
    assert_eq!(settle("st2", "10.01").sub_code.as_deref(), Some("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"));
    assert!(settle("st2", "10.00").is_success());
    // Settled money cannot be refunded.
    let r =
        h.call("alipay.trade.refund", json!({"out_trade_no": "s1", "refund_amount": "70.01", "out_request_no": "x"}));
    assert_eq!(r.sub_code.as_deref(), Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"));
    h.call(
        "alipay.trade.royalty.relation.unbind",
        json!({"out_request_no": "u1",
        "receiver_list": [{"type": "userId", "account": "2088101126708402"}]}),
    );
    assert_eq!(settle("st3", "0.01").sub_code.as_deref(), Some("ACQ.ROYALTY_RECEIVER_NOT_BIND"));
}

#[test]
fn signatures_get_and_gateway_errors() {
    let h = start();
    // Python SDKs send everything in a GET query.
    let params = h.params("alipay.trade.query", json!({"out_trade_no": "none"}));
    let body =
        ureq::get(&format!("{}/gateway.do?{}", h.base, encode_form(&params))).call().unwrap().into_string().unwrap();
    let r = Response::parse(&body, "alipay.trade.query", &h.alipay).unwrap();
    assert_eq!(r.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));
    // A tampered request: 40002 invalid signature, still signed.
    let mut tampered = params.clone();
    tampered.insert("biz_content".into(), "{\"out_trade_no\":\"other\"}".into());
    let r = Response::parse(&h.send(&encode_form(&tampered)), "alipay.trade.query", &h.alipay).unwrap();
    assert_eq!((r.code.as_str(), r.sub_code.as_deref()), ("40002", Some("isv.invalid-signature")));
    let mut unknown = params.clone();
    unknown.insert("app_id".into(), "2021999".into());
    let r = Response::parse(&h.send(&encode_form(&unknown)), "alipay.trade.query", &h.alipay).unwrap();
    assert_eq!(r.sub_code.as_deref(), Some("isv.invalid-app-id"));
    let body = h.send("method=alipay.no.such");
    let r = Response::parse(&body, "alipay.no.such", &h.alipay).unwrap();
    assert!(r.is_error_node && r.sub_code.as_deref() == Some("isv.invalid-method"));
    // A wrong Alipay key fails every answer.
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let other = VerifyingKey::from_pem(&other.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()).unwrap();
    assert!(Response::parse(&body, "alipay.no.such", &other).is_err());
    // Page pay answers the cashier page.
    let page = h.params(
        "alipay.trade.page.pay",
        json!({"out_trade_no": "p1", "total_amount": "0.01", "subject":
        "s", "product_code": "FAST_INSTANT_TRADE_PAY"}),
    );
    let html = ureq::get(&format!("{}/gateway.do?{}", h.base, encode_form(&page))).call().unwrap();
    assert!(html.into_string().unwrap().contains("WAIT_BUYER_PAY"));
}

#[test]
fn faults_and_bills() {
    let h = start();
    h.sim("faults", json!({"method": "alipay.trade.precreate", "kind": "20000"}));
    let biz = json!({"out_trade_no": "f1", "total_amount": "0.01", "subject": "s"});
    assert_eq!(h.call("alipay.trade.precreate", biz.clone()).code, alipay::CODE_UNKNOWN);
    h.sim("faults", json!({"method": "alipay.trade.query", "kind": "40004", "sub_code": "ACQ.SYSTEM_ERROR"}));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "f1"}));
    assert_eq!(q.sub_code.as_deref(), Some("ACQ.SYSTEM_ERROR"));
    h.sim("settings", json!({"timeout_ms": 50}));
    h.sim("faults", json!({"method": "alipay.trade.precreate", "kind": "timeout"}));
    let sent = ureq::post(&format!("{}/gateway.do", h.base))
        .send_string(&encode_form(&h.params("alipay.trade.precreate", biz.clone())));
    assert!(sent.is_err(), "no answer");
    let again = h.call("alipay.trade.precreate", biz);
    assert!(again.is_success(), "the timed-out call was carried out: the same trade again");
    h.sim("faults", json!({"kind": "duplicate_notify"}));
    h.sim("pay", json!({"out_trade_no": "f1"}));
    let (a, b) = (h.notification(), h.notification());
    assert_eq!(a["notify_id"], b["notify_id"], "the same notification twice");
    // Today's bill does not exist yet; tomorrow it does.
    let today = alipay::format_timestamp(now())[..10].to_string();
    let bill = |date: &str| {
        h.call("alipay.data.dataservice.bill.downloadurl.query", json!({"bill_type": "trade", "bill_date": date}))
    };
    assert_eq!(bill(&today).sub_code.as_deref(), Some("isp.bill_not_exist"));
    h.sim("clock", json!({"advance_seconds": 86_400}));
    let url = bill(&today).get("bill_download_url").unwrap().to_string();
    let mut zip = Vec::new();
    std::io::Read::read_to_end(&mut ureq::get(&url).call().unwrap().into_reader(), &mut zip).unwrap();
    assert_eq!(&zip[..4], b"PK\x03\x04");
    let header_gbk = b"\xd6\xa7\xb8\xb6\xb1\xa6\xbd\xbb\xd2\xd7\xba\xc5"; // 支付宝交易号
    assert!(zip.windows(header_gbk.len()).any(|w| w == header_gbk));
    assert!(zip.windows(4).any(|w| w == b"0.01"));
}

#[test]
fn app_and_wap_pay_and_the_payer_side() {
    let h = start();
    // The app order string is what the SDK hands the Alipay app; the app submits it here.
    let order_string = encode_form(&h.params(
        "alipay.trade.app.pay",
        json!({"out_trade_no": "a1", "total_amount": "9.99",
            "subject": "s", "product_code": "QUICK_MSECURITY_PAY"}),
    ));
    let r = Response::parse(&h.send(&order_string), "alipay.trade.app.pay", &h.alipay).unwrap();
    assert_eq!((r.get("out_trade_no"), r.get("total_amount")), (Some("a1"), Some("9.99")));
    assert!(r.get("seller_id").unwrap().starts_with("2088"));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "a1"}));
    assert_eq!(q.get("trade_status"), Some("WAIT_BUYER_PAY"), "the buyer is in the app");
    // Wap pay as a POSTed form (the SDKs' auto-submitting page): the cashier page.
    let wap = h.params(
        "alipay.trade.wap.pay",
        json!({"out_trade_no": "w1", "total_amount": "0.01", "subject": "s",
        "product_code": "QUICK_WAP_WAY"}),
    );
    assert!(h.send(&encode_form(&wap)).contains("w1"));
    // The buyer gives up: closed and notified; a paid trade finishes and is notified.
    h.sim("fail", json!({"out_trade_no": "w1"}));
    assert_eq!(h.notification()["trade_status"], "TRADE_CLOSED");
    h.sim("pay", json!({"out_trade_no": "a1"}));
    assert_eq!(h.notification()["trade_status"], "TRADE_SUCCESS");
    h.sim("finish", json!({"out_trade_no": "a1"}));
    assert_eq!(h.notification()["trade_status"], "TRADE_FINISHED");
    let r = h.call("alipay.trade.refund", json!({"out_trade_no": "a1", "refund_amount": "0.01"}));
    assert_eq!(r.sub_code.as_deref(), Some("ACQ.TRADE_STATUS_ERROR"), "no refunds once finished");
    let view: Value =
        ureq::get(&format!("{}/sim/alipay/trades?out_trade_no=a1", h.base)).call().unwrap().into_json().unwrap();
    assert_eq!(view["trade_status"], "TRADE_FINISHED");
    // Every notification was answered `success` (the last answer may still be on its way back).
    let delivered = || {
        let notes: Value =
            ureq::get(&format!("{}/sim/alipay/notifications", h.base)).call().unwrap().into_json().unwrap();
        notes["notifications"].as_array().unwrap().iter().all(|n| n["delivered"] == true)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !delivered() {
        assert!(std::time::Instant::now() < deadline, "notifications not delivered");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Precreated trades become visible before a scan when the setting says so.
    h.sim("settings", json!({"visible_before_scan": true}));
    h.call("alipay.trade.precreate", json!({"out_trade_no": "v1", "total_amount": "0.01", "subject": "s"}));
    assert!(h.call("alipay.trade.close", json!({"out_trade_no": "v1"})).is_success());
}

#[test]
fn unpaid_trades_close_when_their_time_is_up() {
    let h = start();
    let open = |no: &str, timeout: &str| {
        h.call(
            "alipay.trade.precreate",
            json!({"out_trade_no": no, "total_amount": "0.01", "subject": "s",
            "timeout_express": timeout}),
        )
    };
    assert_eq!(open("t0", "0m").sub_code.as_deref(), Some("isv.invalid-parameter"));
    assert_eq!(open("t0", "16d").sub_code.as_deref(), Some("isv.invalid-parameter"));
    assert!(open("t1", "1m").is_success() && open("t2", "1m").is_success());
    h.sim("scan", json!({"out_trade_no": "t1"}));
    h.sim("clock", json!({"advance_seconds": 61}));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "t1"}));
    assert_eq!(q.get("trade_status"), Some("TRADE_CLOSED"));
    let n = h.notification();
    assert_eq!((n["out_trade_no"].as_str(), n["trade_status"].as_str()), ("t1", "TRADE_CLOSED"));
    // Never scanned: Alipay never showed it to anyone, so it is simply gone.
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "t2"}));
    assert_eq!(q.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));
    assert!(h.sim("pay", json!({"out_trade_no": "t1"}))["error"].as_str().unwrap().contains("TRADE_CLOSED"));
    h.sim("pay", json!({"out_trade_no": "t1", "late": true}));
    assert_eq!(h.notification()["trade_status"], "TRADE_SUCCESS");
    assert!(open("t3", "1c").is_success());
    h.sim("scan", json!({"out_trade_no": "t3"}));
    let q = h.call("alipay.trade.query", json!({"out_trade_no": "t3"}));
    assert_eq!(q.get("trade_status"), Some("WAIT_BUYER_PAY"), "1c: until the end of the Beijing day");
}
