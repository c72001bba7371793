//! Daily bills for reconciliation: paygate-channels' adapters download them from the simulators (WeChat v2 and v3,
//! Alipay), and the simulators' bill controls shape them — PROCESSING refunds, doctored trades, dropped
//! notifications, `code_url` payments, and bulk seeding of a 100 000-row day.

mod support;

use paygate_channels::alipay::{build_request, encode_form, Response, VerifyingKey};
use paygate_channels::alipay_pay::{AlipayPay, AlipayPayConfig};
use paygate_channels::net::NetPolicy;
use paygate_channels::rsa::SigningKey;
use paygate_channels::wechat::v2::SignType;
use paygate_channels::wechat_pay::{WechatPay, WechatPayConfig};
use paygate_channels::{Channel, PaymentRequest};
use paygate_domain::accounts::{AlipayAccount, WechatAccount, WechatApiVersion};
use paygate_domain::{Amount, BeijingTime, Mode};
use paygate_sim::alipay::config::{AppConfig, SimConfig};
use paygate_sim::alipay::AlipaySim;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{now, start, KEY, MCH};

const M2: &str = "1900000200";
const M2_KEY: &str = "m2m2m2m2m2m2m2m2m2m2m2m2m2m2m2m2";
const M2_V3: &str = "M2v3KeyM2v3KeyM2v3KeyM2v3KeyM2v3";

fn keypair() -> (String, String) {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    (
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
    )
}

fn net() -> NetPolicy {
    NetPolicy {
        allow_private: true,
        is_public: |_| true,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(30),
    }
}

fn day(unix: i64) -> String {
    let t = BeijingTime::of(unix);
    format!("{:04}-{:02}-{:02}", t.year, t.month, t.day)
}

fn post(url: &str, body: Value) -> Value {
    match ureq::post(url).send_json(body) {
        Ok(r) => r.into_json().unwrap(),
        Err(ureq::Error::Status(_, r)) => r.into_json().unwrap(),
        Err(e) => panic!("{e}"),
    }
}

/// The bill's row of `no` (a payment unless `refund`), its cells without WeChat's backticks.
fn wechat_row(bill: &str, no: &str, refund: bool) -> Option<Vec<String>> {
    bill.lines()
        .map(|l| l.split(',').map(|c| c.trim_start_matches('`').to_string()).collect::<Vec<_>>())
        .find(|cells| cells.len() == 27 && cells[6] == no && (cells[9] == "REFUND") == refund)
}

fn wechat_account(mch_id: &str, version: WechatApiVersion, base: &str) -> WechatAccount {
    WechatAccount {
        mch_id: mch_id.into(),
        appid: support::APPID.into(),
        api_version: version,
        api_v2_key: None,
        api_v3_key: None,
        merchant_serial_no: None,
        merchant_private_key: None,
        platform_certificate: None,
        wechatpay_public_key_id: None,
        wechatpay_public_key: None,
        client_certificate: None,
        client_key: None,
        sub_mch_id: None,
        sub_appid: None,
        api_base_url: base.into(),
    }
}

#[test]
fn wechat_bills_download_v2_and_v3_with_processing_refunds_doctoring_and_dropped_notifications() {
    let h = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = |path: &str, body: Value| post(&format!("{}{path}", h.base), body);
    let today = day(now());

    // Merchant 1 over v2: orders, a refund kept PROCESSING, doctoring, a dropped notification.
    let notify = format!("{}/v2", h.notify);
    for no in ["o1", "o2", "o3", "o4", "o5", "o6"] {
        let pairs = [
            ("body", "b"),
            ("out_trade_no", no),
            ("total_fee", "10000"),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", notify.as_str()),
            ("trade_type", "NATIVE"),
        ];
        let created = h.v2("/pay/unifiedorder", &pairs, SignType::Md5);
        let code_url = created.get("code_url").unwrap().to_string();
        if no == "o5" {
            // o5's payment notification never goes out (a payment paygate is not told about).
            let queued = sim("/sim/wechat/faults", json!({"kind": "drop_notify", "out_trade_no": "o5"}));
            assert_eq!(queued["queued"], 1, "{queued}");
        }
        // The payer scans the QR code: the order is named by its code_url (the old inputs still work).
        let body = if no == "o1" { json!({"code_url": code_url}) } else { json!({"out_trade_no": no}) };
        assert_eq!(sim("/sim/wechat/pay", body)["out_trade_no"], no);
    }
    let notifications = ureq::get(&format!("{}/sim/wechat/notifications", h.base)).call().unwrap();
    let notifications: Value = notifications.into_json().unwrap();
    let of = |no: &str| notifications["notifications"].as_array().unwrap().iter().find(|n| n["out_trade_no"] == no);
    let o5 = of("o5").expect("the dropped notification is listed");
    assert_eq!((o5["attempts"].as_u64(), o5["delivered"].as_bool()), (Some(0), Some(false)), "{o5}");
    assert!(o5["last_error"].as_str().unwrap().contains("drop_notify"), "{o5}");
    assert!(of("o6").unwrap()["last_error"].as_str().is_none_or(|e| !e.contains("drop")), "one order only");
    let unknown = sim("/sim/wechat/pay", json!({"code_url": "weixin://wxpay/bizpayurl?pr=nope"}));
    assert!(unknown["error"].as_str().unwrap().contains("code_url"), "{unknown}");

    assert_eq!(sim("/sim/wechat/settings", json!({"hold_refunds": true}))["hold_refunds"], true);
    let refund = [("out_trade_no", "o2"), ("out_refund_no", "r2"), ("total_fee", "10000"), ("refund_fee", "2500")];
    assert_eq!(h.v2("/secapi/pay/refund", &refund, SignType::Md5).get("result_code"), Some("SUCCESS"));

    let yesterday_late = {
        let t = BeijingTime::of(now());
        now() - (t.hour * 3600 + t.minute * 60 + t.second) - 1
    };
    for doctor in [
        json!({"mch_id": MCH, "out_trade_no": "o3", "omit": true}),
        json!({"mch_id": MCH, "out_trade_no": "o4", "amount": 9999}),
        json!({"mch_id": MCH, "out_trade_no": "o4", "fee": 1}),
        json!({"mch_id": MCH, "out_trade_no": "o6", "at": yesterday_late}),
    ] {
        assert_eq!(sim("/sim/wechat/bills/doctor", doctor.clone())["doctored"], true, "{doctor}");
    }
    let mut v2 = wechat_account(MCH, WechatApiVersion::V2, &h.base);
    v2.api_v2_key = Some(KEY.to_string().into());
    let v2 = WechatPay::new(WechatPayConfig::from_account(&v2, "app_x", Mode::Test, net()).unwrap());
    let bill = rt.block_on(v2.download_trade_bill(&today)).unwrap().expect("a bill for today");
    let bill = String::from_utf8(bill).unwrap();
    let o1 = wechat_row(&bill, "o1", false).expect("o1 is billed");
    assert_eq!((o1[12].as_str(), o1[22].as_str(), o1[24].as_str()), ("100.00", "0.60", "100.00"));
    let r2 = wechat_row(&bill, "o2", true).expect("the PROCESSING refund is billed the day it was applied");
    assert_eq!((r2[15].as_str(), r2[16].as_str(), r2[19].as_str()), ("r2", "25.00", "PROCESSING"));
    assert!(wechat_row(&bill, "o3", false).is_none(), "omitted: the channel never saw it");
    let o4 = wechat_row(&bill, "o4", false).unwrap();
    assert_eq!((o4[12].as_str(), o4[22].as_str(), o4[24].as_str()), ("99.99", "0.01", "99.99"));
    assert!(wechat_row(&bill, "o6", false).is_none(), "billed the day before");
    let before = rt.block_on(v2.download_trade_bill(&day(yesterday_late))).unwrap().expect("o6 is billed then");
    let o6 = wechat_row(&String::from_utf8(before).unwrap(), "o6", false).unwrap();
    assert!(o6[0].ends_with(" 23:59:59"), "{o6:?}");
    assert!(bill.contains("总交易单数"), "the summary follows the rows");
    // paygate's own parser reads it as the simulator meant it.
    let parsed = paygate_channels::bills::parse_wechat_bill(bill.as_bytes()).unwrap();
    let held = parsed.rows.iter().find(|r| r.out_refund_no == "r2").unwrap();
    assert_eq!((held.status.as_str(), held.amount, held.fee), ("PROCESSING", 2500, -15));
    let o4 = parsed.rows.iter().find(|r| r.merchant_no == "o4").unwrap();
    assert_eq!((o4.amount, o4.fee), (9999, 1));
    assert_eq!(parsed.summary.unwrap().rows, parsed.rows.len() as i64);
    // Settled, the refund moves to the day it succeeded, with its final status.
    sim("/sim/wechat/refunds/settle", json!({"mch_id": MCH, "out_refund_no": "r2", "status": "SUCCESS"}));
    let bill = String::from_utf8(rt.block_on(v2.download_trade_bill(&today)).unwrap().unwrap()).unwrap();
    assert_eq!(wechat_row(&bill, "o2", true).unwrap()[19], "SUCCESS");
    assert_eq!(rt.block_on(v2.download_trade_bill("2001-01-01")).unwrap(), None, "No Bill Exist");
    assert_eq!(rt.block_on(v2.download_trade_bill("2001-1-1")).unwrap_err().code, "invalid_parameter");

    // Merchant 2 over v3 (and v2: the same bill either way), orders opened by the adapter, paid by code_url.
    let (private, public) = keypair();
    let merchant = json!({"mch_id": M2, "appid": support::APPID, "api_key": M2_KEY, "api_v3_key": M2_V3,
        "merchant_serial": "M2SERIAL", "merchant_public_key_pem": public});
    assert_eq!(sim("/sim/wechat/merchants", merchant)["mch_id"], M2);
    let mut v3 = wechat_account(M2, WechatApiVersion::V3, &h.base);
    v3.api_v3_key = Some(M2_V3.to_string().into());
    v3.api_v2_key = Some(M2_KEY.to_string().into());
    v3.merchant_serial_no = Some("M2SERIAL".into());
    v3.merchant_private_key = Some(private.into());
    v3.wechatpay_public_key_id = Some(h.platform_id.clone());
    let config: Value = ureq::get(&format!("{}/sim/config", h.base)).call().unwrap().into_json().unwrap();
    v3.wechatpay_public_key = Some(config["wechat"]["public_key_pem"].as_str().unwrap().to_string());
    let mut as_v2 = v3.clone();
    as_v2.api_version = WechatApiVersion::V2;
    let v3 = WechatPay::new(WechatPayConfig::from_account(&v3, "app_x", Mode::Test, net()).unwrap());
    let as_v2 = WechatPay::new(WechatPayConfig::from_account(&as_v2, "app_x", Mode::Test, net()).unwrap());
    assert_eq!(rt.block_on(v3.download_trade_bill(&today)).unwrap(), None, "NO_STATEMENT_EXIST");
    for (no, fen) in [("m2a", 1234), ("m2b", 1)] {
        let extra = json!({});
        let request = PaymentRequest {
            charge_id: "ch_1",
            channel: "wx_pub_qr",
            channel_order_no: no,
            amount: Amount::positive("amount", fen).unwrap(),
            subject: "s",
            body: "b",
            client_ip: "127.0.0.1",
            extra: &extra,
            base_url: &h.notify,
        };
        let credential = rt.block_on(v3.open(&request)).unwrap();
        let code_url = credential["wx_pub_qr"].as_str().unwrap();
        assert_eq!(sim("/sim/wechat/pay", json!({"mch_id": M2, "code_url": code_url}))["out_trade_no"], no);
    }
    let by_v3 = rt.block_on(v3.download_trade_bill(&today)).unwrap().expect("a v3 bill");
    let by_v2 = rt.block_on(as_v2.download_trade_bill(&today)).unwrap().expect("a v2 bill");
    assert_eq!(by_v3, by_v2, "one bill, whichever API fetched it");
    let text = String::from_utf8(by_v3).unwrap();
    assert_eq!(wechat_row(&text, "m2a", false).unwrap()[22], "0.07", "0.6 % of 12.34, half up");
    assert!(wechat_row(&text, "o1", false).is_none(), "another merchant's orders are not in it");
}

fn alipay_setup() -> (tokio::runtime::Runtime, String, AlipayPay, SigningKey, VerifyingKey) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (private, public) = keypair();
    let mut config = SimConfig::default();
    config.settings.notify_time_scale = 10_000;
    config.apps.push(AppConfig {
        app_id: "2021000000000001".into(),
        app_public_key_pem: public,
        seller_id: String::new(),
    });
    let sim = AlipaySim::new(config).unwrap();
    let alipay_public = sim.alipay_public_key_pem().to_string();
    let (addr, _) = rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    let base = format!("http://{addr}");
    let account = AlipayAccount {
        app_id: "2021000000000001".into(),
        app_private_key: private.clone().into(),
        alipay_public_key: Some(alipay_public.clone()),
        app_public_cert: None,
        alipay_public_cert: None,
        alipay_root_cert: None,
        seller_id: String::new(),
        app_auth_token: None,
        gateway_url: format!("{base}/gateway.do"),
    };
    let pay = AlipayPay::new(AlipayPayConfig::from_account(&account, "app_x", Mode::Test, net()).unwrap());
    (rt, base, pay, SigningKey::from_pem(&private).unwrap(), VerifyingKey::from_pem(&alipay_public).unwrap())
}

/// The 业务明细 line of `no` in a stored ZIP (its CSVs are in the clear), split into its 25 cells.
fn alipay_line(zip: &[u8], no: &str, kind: &[u8]) -> Option<Vec<Vec<u8>>> {
    zip.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).split(|b| *b == b',').map(<[u8]>::to_vec).collect::<Vec<_>>())
        .find(|cells| cells.len() == 25 && cells[1] == no.as_bytes() && cells[2] == kind)
}

const TRADE: &[u8] = b"\xbd\xbb\xd2\xd7"; // 交易 in GBK
const REFUND: &[u8] = b"\xcd\xcb\xbf\xee"; // 退款 in GBK

#[test]
fn alipay_bills_download_with_real_fees_doctoring_and_dropped_notifications() {
    let (rt, base, pay, app_key, alipay_key) = alipay_setup();
    let sim = |path: &str, body: Value| post(&format!("{base}/sim/alipay/{path}"), body);
    let yesterday = now() - 86_400;
    let rows: Vec<Value> = ["a1", "a2", "a3", "a4"]
        .iter()
        .map(|no| json!({"out_trade_no": no, "amount": 10_000, "paid_at": yesterday}))
        .collect();
    assert_eq!(sim("bills/seed", json!({"rows": rows}))["seeded"], 4);
    let again = sim("bills/seed", json!({"rows": [{"out_trade_no": "a1", "amount": 1, "paid_at": yesterday}]}));
    assert!(again["error"].as_str().unwrap().contains("already exists"), "{again}");
    sim("bills/doctor", json!({"out_trade_no": "a2", "omit": true}));
    sim("bills/doctor", json!({"out_trade_no": "a3", "amount": 9_000, "fee": 7}));
    sim("bills/doctor", json!({"out_trade_no": "a4", "at": yesterday - 86_400}));
    // A refund of a seeded trade, through the gateway as any app would ask.
    let call = |method: &str, biz: Value, notify: &str| {
        let params = build_request("2021000000000001", method, &biz, &[("notify_url", notify)], now(), &app_key);
        let body = ureq::post(&format!("{base}/gateway.do"))
            .set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
            .send_string(&encode_form(&params.unwrap()))
            .unwrap()
            .into_string()
            .unwrap();
        Response::parse(&body, method, &alipay_key).unwrap()
    };
    let refund = json!({"out_trade_no": "a1", "refund_amount": "25.00", "out_request_no": "ra1"});
    assert!(call("alipay.trade.refund", refund, "").is_success());

    // The refund happened today (the simulator's clock): yesterday's bill has the payments, today has none yet.
    let zip = rt.block_on(pay.download_trade_bill(&day(yesterday))).unwrap().expect("yesterday's bill");
    assert!(zip.starts_with(b"PK\x03\x04"), "a ZIP");
    let a1 = alipay_line(&zip, "a1", TRADE).expect("a1 is billed");
    assert_eq!((&a1[11][..], &a1[12][..], &a1[22][..]), (&b"100.00"[..], &b"100.00"[..], &b"-0.60"[..]));
    assert!(alipay_line(&zip, "a2", TRADE).is_none(), "omitted");
    let a3 = alipay_line(&zip, "a3", TRADE).unwrap();
    assert_eq!((&a3[11][..], &a3[22][..]), (&b"90.00"[..], &b"-0.07"[..]));
    assert!(alipay_line(&zip, "a4", TRADE).is_none(), "billed the day before");
    let earlier = rt.block_on(pay.download_trade_bill(&day(yesterday - 86_400))).unwrap().unwrap();
    assert!(alipay_line(&earlier, "a4", TRADE).is_some());
    let parsed = paygate_channels::bills::parse_alipay_bill(&zip).unwrap();
    let fees: Vec<(&str, i64, i64)> = parsed.rows.iter().map(|r| (r.merchant_no.as_str(), r.amount, r.fee)).collect();
    assert_eq!(fees.len(), 2, "{fees:?}");
    assert!(fees.contains(&("a1", 10_000, -60)) && fees.contains(&("a3", 9_000, -7)), "{fees:?}");
    assert_eq!(rt.block_on(pay.download_trade_bill(&day(now()))).unwrap(), None, "a day not over has no bill");
    // A past day without trades: the simulator (like Alipay for an open account) serves an empty bill.
    let empty = rt.block_on(pay.download_trade_bill("2001-01-01")).unwrap().unwrap();
    assert!(alipay_line(&empty, "a1", TRADE).is_none());
    // Tomorrow (by the simulator's clock) today's refund is billed, its fee given back.
    sim("clock", json!({"advance_seconds": 86_400}));
    let zip = rt.block_on(pay.download_trade_bill(&day(now()))).unwrap().expect("today's bill, a day later");
    let ra1 = alipay_line(&zip, "a1", REFUND).expect("the refund is billed");
    assert_eq!((&ra1[11][..], &ra1[21][..], &ra1[22][..]), (&b"-25.00"[..], &b"ra1"[..], &b"0.15"[..]));

    // A trade whose payment notification is dropped, beside one whose is not.
    for no in ["n1", "n2"] {
        let biz = json!({"out_trade_no": no, "total_amount": "1.00", "subject": "s"});
        assert!(call("alipay.trade.precreate", biz, "http://127.0.0.1:9/notify").is_success());
    }
    assert_eq!(sim("faults", json!({"kind": "drop_notify", "out_trade_no": "n1"}))["count"], 1);
    sim("pay", json!({"out_trade_no": "n2"}));
    sim("pay", json!({"out_trade_no": "n1"}));
    let listed: Value = ureq::get(&format!("{base}/sim/alipay/notifications")).call().unwrap().into_json().unwrap();
    let of = |no: &str| listed["notifications"].as_array().unwrap().iter().find(|n| n["out_trade_no"] == no).cloned();
    let n1 = of("n1").expect("listed");
    assert_eq!((n1["attempts"].as_u64(), n1["delivered"].as_bool()), (Some(0), Some(false)), "{n1}");
    assert!(n1["last_error"].as_str().unwrap().contains("drop_notify"), "{n1}");
    assert!(of("n2").unwrap()["last_error"].as_str().is_none_or(|e| !e.contains("drop")), "one trade only");
}

#[test]
fn a_100_000_row_day_seeds_and_downloads_in_seconds() {
    const N: usize = 100_000;
    let h = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let paid_at = now() - 86_400;
    let rows: Vec<Value> = (0..N)
        .map(|i| json!({"out_trade_no": format!("B{i:09}"), "amount": 100 + (i % 5000) as i64, "paid_at": paid_at}))
        .collect();
    let body = json!({"rows": rows});
    let started = Instant::now();
    let seeded = post(&format!("{}/sim/wechat/bills/seed", h.base), body.clone());
    assert_eq!(seeded["seeded"], N, "{seeded}");
    let seed_time = started.elapsed();
    let mut account = wechat_account(MCH, WechatApiVersion::V2, &h.base);
    account.api_v2_key = Some(KEY.to_string().into());
    let v2 = WechatPay::new(WechatPayConfig::from_account(&account, "app_x", Mode::Test, net()).unwrap());
    let started = Instant::now();
    let bill = rt.block_on(v2.download_trade_bill(&day(paid_at))).unwrap().unwrap();
    let bill_time = started.elapsed();
    let text = String::from_utf8(bill).unwrap();
    // Header, rows, summary header, summary.
    assert_eq!(text.lines().count(), N + 3);
    assert!(text.lines().last().unwrap().starts_with(&format!("`{N},")), "the summary counts every row");
    println!(
        "wechat: seeded {N} rows in {seed_time:?}, downloaded their {} MB bill in {bill_time:?}",
        text.len() >> 20
    );

    let (_rt, base, pay, _, _) = alipay_setup();
    let rows = body["rows"].clone();
    let started = Instant::now();
    assert_eq!(post(&format!("{base}/sim/alipay/bills/seed"), json!({"rows": rows}))["seeded"], N);
    let seed_time = started.elapsed();
    let started = Instant::now();
    let zip = rt.block_on(pay.download_trade_bill(&day(paid_at))).unwrap().unwrap();
    let bill_time = started.elapsed();
    assert!(alipay_line(&zip, &format!("B{:09}", N - 1), TRADE).is_some());
    println!("alipay: seeded {N} rows in {seed_time:?}, downloaded their {} MB bill in {bill_time:?}", zip.len() >> 20);
}
