//! The adapter against canned answers from a one-request-at-a-time local server: credential shapes, answers
//! whose signature does not verify, private targets, timeouts.

use super::*;
use crate::wechat::v2::{self as wire2, Fields};
use crate::wechat::v3::{random_token, ResponseSignature, SigningKey, VerifyingKey};
use paygate_domain::accounts::{WechatAccount, WechatApiVersion};
use paygate_domain::{ChargeStatus, Currency, RefundStatus};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const V3_KEY: &str = "v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12";

/// (merchant private, merchant public, platform private, platform public) PEMs, made once.
fn pems() -> &'static [String; 4] {
    static PEMS: OnceLock<[String; 4]> = OnceLock::new();
    PEMS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = || rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let (m, p) = (key(), key());
        let private = |k: &rsa::RsaPrivateKey| k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = |k: &rsa::RsaPrivateKey| k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        [private(&m), public(&m), private(&p), public(&p)]
    })
}

fn account(version: WechatApiVersion, base: &str) -> WechatAccount {
    WechatAccount {
        mch_id: "10000100".into(),
        appid: "wxd930ea5d5a258f4f".into(),
        api_version: version,
        api_v2_key: Some(KEY.to_string().into()),
        api_v3_key: Some(V3_KEY.to_string().into()),
        merchant_serial_no: Some("SERIAL1".into()),
        merchant_private_key: Some(pems()[0].clone().into()),
        platform_certificate: None,
        wechatpay_public_key_id: Some("PUB_KEY_ID_1".into()),
        wechatpay_public_key: Some(pems()[3].clone()),
        client_certificate: None,
        client_key: None,
        sub_mch_id: None,
        sub_appid: None,
        api_base_url: base.to_string(),
    }
}

fn net(allow_private: bool) -> NetPolicy {
    NetPolicy {
        allow_private,
        is_public: |ip| !ip.is_loopback(),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
    }
}

fn adapter(version: WechatApiVersion, base: &str, allow_private: bool) -> WechatPay {
    let config = WechatPayConfig::from_account(&account(version, base), "app_x", Mode::Test, net(allow_private));
    WechatPay::new(config.unwrap())
}

/// Serves `answers` in order, one per connection; an answer of `None` holds the connection without replying.
/// A body and its headers.
type Canned = (String, Vec<(String, String)>);

fn serve(answers: Vec<Option<Canned>>) -> String {
    serve_recording(answers).0
}

/// As [`serve`], keeping the text of every request received.
/// One whole request: the head, then as many body bytes as its content-length says (one read may stop short).
fn read_request(stream: &mut std::net::TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            body.len() >= length
        });
        if n == 0 || complete {
            return text;
        }
    }
}

fn serve_recording(answers: Vec<Option<Canned>>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((mut stream, _)) = listener.accept() else { return };
            record.lock().unwrap().push(read_request(&mut stream));
            match answer {
                None => std::thread::sleep(Duration::from_secs(2)),
                Some((body, headers)) => {
                    let mut head =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
                }
            }
        }
    });
    (format!("http://{addr}"), seen)
}

fn request<'a>(channel: &'a str, extra: &'a Value) -> PaymentRequest<'a> {
    PaymentRequest {
        charge_id: "ch_1",
        channel,
        channel_order_no: "1234567890123456789012",
        amount: Amount::positive("amount", 100).unwrap(),
        subject: "s",
        body: "b",
        client_ip: "127.0.0.1",
        extra,
        base_url: "https://pay.example.com",
    }
}

fn v2_answer(extra: &[(&str, &str)], key: &str) -> String {
    let mut f: Fields =
        [("return_code", "SUCCESS"), ("return_msg", "OK"), ("appid", "wxd930ea5d5a258f4f")].into_iter().collect();
    f.set("mch_id", "10000100").set("nonce_str", "n1").set("result_code", "SUCCESS");
    for (k, v) in extra {
        f.set(*k, *v);
    }
    let sign = wire2::sign(&f, key, wire2::SignType::Md5);
    f.set("sign", sign);
    wire2::render_xml(&f)
}

#[test]
fn v2_client_params_are_signed_for_the_client() {
    let p = v2::jsapi_params("wxd930ea5d5a258f4f", "wx2017", KEY);
    assert_eq!((p["package"].as_str(), p["signType"].as_str()), (Some("prepay_id=wx2017"), Some("MD5")));
    let fields: Fields = ["appId", "timeStamp", "nonceStr", "package", "signType"]
        .iter()
        .map(|k| (k.to_string(), p[*k].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(p["paySign"].as_str().unwrap(), wire2::sign(&fields, KEY, wire2::SignType::Md5));
    let a = v2::app_params("wxd930ea5d5a258f4f", "10000100", "wx2017", KEY);
    let fields: Fields = [
        ("appid", a["appId"].as_str().unwrap()),
        ("partnerid", "10000100"),
        ("prepayid", "wx2017"),
        ("package", "Sign=WXPay"),
        ("noncestr", a["nonceStr"].as_str().unwrap()),
        ("timestamp", a["timeStamp"].as_str().unwrap()),
    ]
    .into_iter()
    .collect();
    assert_eq!(a["sign"].as_str().unwrap(), wire2::sign(&fields, KEY, wire2::SignType::Md5));
    assert_eq!(a["packageValue"], "Sign=WXPay");
}

#[test]
fn v3_client_params_verify_with_the_merchant_key() {
    let keys = v3::V3Keys::from_account(&account(WechatApiVersion::V3, "http://x")).unwrap();
    let merchant = VerifyingKey::from_pem(&pems()[1]).unwrap();
    let p = v3::jsapi_params(&keys, "wxd930ea5d5a258f4f", "wx2017").unwrap();
    assert_eq!(p["signType"], "RSA");
    let message = format!(
        "wxd930ea5d5a258f4f\n{}\n{}\nprepay_id=wx2017\n",
        p["timeStamp"].as_str().unwrap(),
        p["nonceStr"].as_str().unwrap()
    );
    merchant.verify(message.as_bytes(), p["paySign"].as_str().unwrap()).unwrap();
    let a = v3::app_params(&keys, "wxd930ea5d5a258f4f", "10000100", "wx2017").unwrap();
    let message = format!(
        "wxd930ea5d5a258f4f\n{}\n{}\nwx2017\n",
        a["timeStamp"].as_str().unwrap(),
        a["nonceStr"].as_str().unwrap()
    );
    merchant.verify(message.as_bytes(), a["sign"].as_str().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_open_answers_each_credential_shape_and_refuses_a_bad_sign() {
    let answers = vec![
        Some((v2_answer(&[("prepay_id", "wx1"), ("code_url", "weixin://wxpay/bizpayurl?pr=abc")], KEY), vec![])),
        Some((v2_answer(&[("prepay_id", "wx1")], KEY), vec![])),
        Some((v2_answer(&[("prepay_id", "wx1"), ("mweb_url", "https://wx.tenpay.com/x")], KEY), vec![])),
        Some((v2_answer(&[("prepay_id", "wx1")], KEY), vec![])),
        Some((v2_answer(&[("prepay_id", "wx1"), ("code_url", "weixin://x")], "another key"), vec![])),
    ];
    let pay = adapter(WechatApiVersion::V2, &serve(answers), true);
    let extra = json!({"open_id": "o1"});
    let qr = pay.open(&request("wx_pub_qr", &extra)).await.unwrap();
    assert_eq!(qr, json!({"object": "credential", "wx_pub_qr": "weixin://wxpay/bizpayurl?pr=abc"}));
    let jsapi = pay.open(&request("wx_pub", &extra)).await.unwrap();
    assert_eq!(jsapi["wx_pub"]["package"], "prepay_id=wx1");
    let wap = pay.open(&request("wx_wap", &extra)).await.unwrap();
    assert_eq!(wap["wx_wap"], "https://wx.tenpay.com/x");
    let app = pay.open(&request("wx", &extra)).await.unwrap();
    assert_eq!(app["wx"]["prepayId"], "wx1");
    let forged = pay.open(&request("wx_pub_qr", &extra)).await.unwrap_err();
    assert_eq!(forged.code, "channel_bad_signature", "{forged}");
    let no_openid = pay.open(&request("wx_lite", &json!({}))).await.unwrap_err();
    assert_eq!(no_openid.param.as_deref(), Some("extra.open_id"));
}

fn v3_signed(body: &str, key_pem: &str, serial: &str, ts: i64) -> Vec<(String, String)> {
    let key = SigningKey::from_pem(key_pem).unwrap();
    let sig = ResponseSignature::sign(&key, serial, body, ts, &random_token(32)).unwrap();
    sig.headers().iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn v3_answers_must_be_signed_by_the_platform_key_within_the_window() {
    let body = r#"{"code_url":"weixin://wxpay/bizpayurl?pr=v3"}"#.to_string();
    let now = wall_clock();
    let answers = vec![
        Some((body.clone(), v3_signed(&body, &pems()[2], "PUB_KEY_ID_1", now))),
        Some((body.clone(), v3_signed(&body, &pems()[0], "PUB_KEY_ID_1", now))),
        Some((body.clone(), v3_signed(&body, &pems()[2], "PUB_KEY_ID_1", now - 400))),
        Some((body.clone(), v3_signed(&body, &pems()[2], "PUB_KEY_ID_2", now))),
        Some((body.clone(), vec![])),
    ];
    let pay = adapter(WechatApiVersion::V3, &serve(answers), true);
    let extra = json!({});
    let qr = pay.open(&request("wx_pub_qr", &extra)).await.unwrap();
    assert_eq!(qr["wx_pub_qr"], "weixin://wxpay/bizpayurl?pr=v3");
    for why in ["another key", "stale", "another serial", "unsigned"] {
        let refused = pay.open(&request("wx_pub_qr", &extra)).await.unwrap_err();
        assert_eq!(refused.code, "channel_bad_signature", "{why}: {refused}");
    }
}

fn charge() -> Charge {
    Charge {
        id: "ch_1".into(),
        order_id: "1".into(),
        app_id: "app_x".into(),
        mode: Mode::Test,
        created: 0,
        status: ChargeStatus::Succeeded,
        channel: "wx_pub_qr".into(),
        channel_order_no: "1234567890123456789012".into(),
        amount: Amount::positive("amount", 100).unwrap(),
        amount_refunded: Amount::ZERO,
        currency: Currency::Cny,
        client_ip: String::new(),
        subject: String::new(),
        body: String::new(),
        extra: json!({}),
        credential: json!({}),
        time_paid: None,
        time_expire: 0,
        transaction_no: None,
        failure_code: None,
        failure_msg: None,
        metadata: json!({}),
        description: None,
        notification: None,
        settlement: None,
        member_id: None,
        order_no: String::new(),
        reversed: false,
    }
}

fn refund() -> Refund {
    Refund {
        id: "re_1".into(),
        order_id: "1".into(),
        charge_id: "ch_1".into(),
        app_id: "app_x".into(),
        mode: Mode::Test,
        created: 0,
        status: RefundStatus::Pending,
        amount: Amount::positive("amount", 40).unwrap(),
        refund_no: "rf1".into(),
        description: String::new(),
        metadata: json!({}),
        time_succeed: None,
        transaction_no: None,
        failure_code: None,
        failure_msg: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_is_a_channel_error_and_a_refund_stays_processing() {
    let pay = adapter(WechatApiVersion::V2, &serve(vec![None, None, Some((v2_answer(&[], KEY), vec![]))]), true);
    let extra = json!({});
    let open = pay.open(&request("wx_pub_qr", &extra)).await.unwrap_err();
    assert_eq!(open.code, "channel_unavailable", "{open}");
    assert_eq!(pay.refund(&charge(), &refund()).await.unwrap(), RefundResult::Processing);
    // WeChat's SUCCESS to a refund means accepted, not done.
    assert_eq!(pay.refund(&charge(), &refund()).await.unwrap(), RefundResult::Processing);
}

#[tokio::test(flavor = "multi_thread")]
async fn private_targets_are_refused_unless_the_operator_allows_them() {
    let base = serve(vec![Some((v2_answer(&[("code_url", "weixin://x"), ("prepay_id", "wx1")], KEY), vec![]))]);
    let extra = json!({});
    for target in [base.clone(), base.replace("127.0.0.1", "localhost")] {
        let refused = adapter(WechatApiVersion::V2, &target, false).open(&request("wx_pub_qr", &extra)).await;
        let refused = refused.unwrap_err();
        assert!(refused.message.contains("PAYGATE_CHANNEL_ALLOW_PRIVATE"), "{target}: {refused}");
        assert_eq!(refused.code, "channel_target_refused", "never called, so not left pending");
    }
    let allowed = adapter(WechatApiVersion::V2, &base, true).open(&request("wx_pub_qr", &extra)).await.unwrap();
    assert_eq!(allowed["wx_pub_qr"], "weixin://x");
}

#[test]
fn notify_urls_name_the_app_mode_and_version() {
    let v2 = WechatPayConfig::from_account(&account(WechatApiVersion::V2, "http://x"), "app_a", Mode::Live, net(true));
    assert_eq!(v2.unwrap().notify_url("https://pay.example.com/"), "https://pay.example.com/notify/wechat/app_a/live");
    let v3 = WechatPayConfig::from_account(&account(WechatApiVersion::V3, "http://x"), "app_a", Mode::Test, net(true));
    assert_eq!(v3.unwrap().notify_url("https://p"), "https://p/notify/wechat/v3/app_a/test");
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_query_maps_trade_states_and_checks_the_amount() {
    let answers = vec![
        Some((v2_answer(&[("trade_state", "SUCCESS"), ("total_fee", "100")], KEY), vec![])),
        Some((v2_answer(&[("trade_state", "USERPAYING")], KEY), vec![])),
        Some((v2_answer(&[("trade_state", "CLOSED")], KEY), vec![])),
        Some((v2_answer(&[("trade_state", "SUCCESS"), ("total_fee", "1")], KEY), vec![])),
        Some((v2_answer(&[], KEY), vec![])),
    ];
    let pay = adapter(WechatApiVersion::V2, &serve(answers), true);
    assert_eq!(pay.query(&charge(), 0).await.unwrap(), PaymentState::Paid);
    assert_eq!(pay.query(&charge(), 0).await.unwrap(), PaymentState::Pending);
    assert!(matches!(pay.query(&charge(), 0).await.unwrap(), PaymentState::Failed { .. }));
    assert_eq!(pay.query(&charge(), 0).await.unwrap_err().code, "channel_amount_mismatch");
    pay.close(&charge()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn v3_refund_status_decides_the_result() {
    let now = wall_clock();
    let signed = |body: &str| Some((body.to_string(), v3_signed(body, &pems()[2], "PUB_KEY_ID_1", now)));
    let answers = vec![
        signed(r#"{"status":"PROCESSING","refund_id":"5001"}"#),
        signed(r#"{"status":"SUCCESS","refund_id":"5002"}"#),
        signed(r#"{"status":"CLOSED"}"#),
    ];
    let pay = adapter(WechatApiVersion::V3, &serve(answers), true);
    assert_eq!(pay.refund(&charge(), &refund()).await.unwrap(), RefundResult::Processing);
    let done = pay.refund(&charge(), &refund()).await.unwrap();
    assert_eq!(done, RefundResult::Succeeded { transaction_no: Some("5002".into()) });
    assert!(matches!(pay.refund(&charge(), &refund()).await.unwrap(), RefundResult::Failed { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_name_the_notify_url_under_the_public_url() {
    let (base, seen) = serve_recording(vec![Some((v2_answer(&[], KEY), vec![])), Some((v2_answer(&[], KEY), vec![]))]);
    let adapter_with = |public_url: Option<&str>| {
        let mut config =
            WechatPayConfig::from_account(&account(WechatApiVersion::V2, &base), "app_x", Mode::Test, net(true))
                .unwrap();
        config.public_url = public_url.map(str::to_string);
        WechatPay::new(config)
    };
    assert_eq!(adapter_with(None).refund(&charge(), &refund()).await.unwrap(), RefundResult::Processing);
    let with = adapter_with(Some("https://pay.example.com"));
    assert_eq!(with.refund(&charge(), &refund()).await.unwrap(), RefundResult::Processing);
    let seen = seen.lock().unwrap().clone();
    assert!(!seen[0].contains("notify_url"), "{}", seen[0]);
    assert!(
        seen[1].contains("<notify_url><![CDATA[https://pay.example.com/notify/wechat/app_x/test]]></notify_url>"),
        "{}",
        seen[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bills_v2_no_bill_is_none_and_v3_files_must_match_their_signed_sha1() {
    let no_bill = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg>\
                   <error_code><![CDATA[20002]]></error_code></xml>";
    let refused = "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名错误]]></return_msg></xml>";
    let bill = "交易时间,公众账号ID\r\n`2026-11-30 10:00:00,`wx1\r\n";
    let answers = [no_bill, refused, bill].map(|b| Some((b.to_string(), vec![]))).to_vec();
    let (base, seen) = serve_recording(answers);
    let pay = adapter(WechatApiVersion::V2, &base, true);
    assert_eq!(pay.download_trade_bill("2026-11-30").await.unwrap(), None);
    let problem = pay.download_trade_bill("2026-11-30").await.unwrap_err();
    assert_eq!(problem.code, "channel_refused", "{problem}");
    assert_eq!(pay.download_trade_bill("2026-11-30").await.unwrap().unwrap(), bill.as_bytes());
    let asked = seen.lock().unwrap()[0].clone();
    assert!(asked.contains("<bill_date><![CDATA[20261130]]></bill_date>") && asked.contains("[ALL]"), "{asked}");

    // v3: the file comes from download_url with the merchant's Authorization, and must hash to hash_value.
    let file = "`2026-11-30 10:00:00,`wx1\r\n".to_string();
    let (files, got) = serve_recording(vec![Some((file.clone(), vec![])), Some((file.clone(), vec![]))]);
    let sha1 = |s: &str| -> String {
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    let now = wall_clock();
    let answer = |hash: &str| {
        let body = json!({"hash_type": "SHA1", "hash_value": hash,
            "download_url": format!("{files}/v3/billdownload/file?token=T1")})
        .to_string();
        Some((body.clone(), v3_signed(&body, &pems()[2], "PUB_KEY_ID_1", now)))
    };
    let answers = vec![answer(&sha1(&file)), answer(&sha1("something else")), None];
    let (api, _) = serve_recording(answers);
    let pay = adapter(WechatApiVersion::V3, &api, true);
    assert_eq!(pay.download_trade_bill("2026-11-30").await.unwrap().unwrap(), file.as_bytes());
    let download = got.lock().unwrap()[0].clone();
    assert!(download.starts_with("GET /v3/billdownload/file?token=T1 "), "{download}");
    let auth = download.lines().find_map(|l| l.strip_prefix("authorization: ").or(l.strip_prefix("Authorization: ")));
    let auth = crate::wechat::v3::Authorization::parse(auth.expect("signed")).unwrap();
    let parts =
        crate::wechat::v3::RequestParts { method: "GET", path_and_query: "/v3/billdownload/file?token=T1", body: "" };
    auth.verify(&VerifyingKey::from_pem(&pems()[1]).unwrap(), &parts, wall_clock()).unwrap();
    let tampered = pay.download_trade_bill("2026-11-30").await.unwrap_err();
    assert_eq!(tampered.code, "channel_bad_answer", "{tampered}");
}
