//! Alipay protocol tests. The keys in `testdata/` are test-only, made with openssl (`genrsa -traditional`, then
//! `pkcs8 -topk8` of the same key); the expected signature was made by `openssl dgst -sha256 -sign`, so it is
//! independent of this code.

use super::*;
use crate::rsa::{SigningKey, VerifyingKey};
use serde_json::json;

const APP_PKCS1: &str = include_str!("testdata/app_pkcs1.pem");
const APP_PKCS8: &str = include_str!("testdata/app_pkcs8.pem");
const APP_PUB: &str = include_str!("testdata/app_pub.pem");
const OTHER_PUB: &str = include_str!("testdata/other_pub.pem");

/// `printf '%s' "$CONTENT" | openssl dgst -sha256 -sign app_pkcs1.pem | base64 -w0`
const OPENSSL_SIGNATURE: &str = "k7Ptmxd5pS9rr+tRGtUKLkU0gqcePJIk0fpnC7AdD8h76YKgXh3ZXKBOUlsz0oQU5z28yAGKw/3muJeHKb3Zp\
OsZhMCfJixq4RiOhwdeWvB3uqnOan5D3tonDSNOh18ilpMZDg5D4gmxHYOzQEBqjKRY2RNw95bgqZmvy2Jf0kwjCpJ7Jy2oiujcctxr+5nYps4rtKOq47E\
jgMlb55YjEuF+0vBstDbf6Uyed/nYEZVYrdeSelGG59FR7ZsEg9yaeraCzXzva0uU/6mylx0naBGQNSLDjSXnMoqZpz1yx9esQiKoC3ZwBRNKyDdqBZ8A6G\
AOd2NR5s+EILWplIt1QQ==";

/// The content that signature covers (Alipay's documented precreate example, with an empty field and `sign`).
const CONTENT: &str = "app_id=2014072300007148&biz_content={\"out_trade_no\":\"20150320010101001\",\"total_amount\":\
\"88.88\",\"subject\":\"Iphone6 16G\"}&charset=utf-8&format=JSON&method=alipay.trade.precreate&notify_url=http://api.\
test.alipay.net/atinterface/receive_notify.htm&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0";

fn known_params() -> Params {
    let mut p = Params::new();
    for (k, v) in [
        ("app_id", "2014072300007148"),
        ("method", "alipay.trade.precreate"),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2014-07-24 03:07:50"),
        ("version", "1.0"),
        ("notify_url", "http://api.test.alipay.net/atinterface/receive_notify.htm"),
        (
            "biz_content",
            "{\"out_trade_no\":\"20150320010101001\",\"total_amount\":\"88.88\",\"subject\":\"Iphone6 16G\"}",
        ),
        ("app_auth_token", ""),
        ("sign", "ignored"),
    ] {
        p.insert(k.into(), v.into());
    }
    p
}

#[test]
fn request_signature_matches_openssl_for_pkcs1_and_pkcs8_keys() {
    let params = known_params();
    assert_eq!(request_content(&params), CONTENT);
    for pem in [APP_PKCS1, APP_PKCS8] {
        let mut p = params.clone();
        sign_request(&mut p, &SigningKey::from_pem(pem).unwrap()).unwrap();
        assert_eq!(p["sign"], OPENSSL_SIGNATURE, "PKCS#1 v1.5 is deterministic");
    }
    let mut p = params;
    p.insert("sign".into(), OPENSSL_SIGNATURE.into());
    verify_request(&p, &VerifyingKey::from_pem(APP_PUB).unwrap()).unwrap();
}

#[test]
fn tampered_requests_are_refused() {
    let key = SigningKey::from_pem(APP_PKCS8).unwrap();
    let public = VerifyingKey::from_pem(APP_PUB).unwrap();
    let biz = json!({"out_trade_no": "o1", "total_amount": "0.01", "subject": "测试"});
    let p =
        build_request("2021000000000001", "alipay.trade.precreate", &biz, &[("notify_url", "https://m/n")], 0, &key)
            .unwrap();
    assert_eq!(p["timestamp"], "1970-01-01 08:00:00");
    verify_request(&p, &public).unwrap();
    let mut changed = p.clone();
    changed.insert("biz_content".into(), biz.to_string().replace("0.01", "0.02"));
    assert!(matches!(verify_request(&changed, &public), Err(AlipayError::BadSignature(_))));
    let mut added = p.clone();
    added.insert("return_url".into(), "https://evil".into());
    assert!(verify_request(&added, &public).is_err(), "an added parameter is covered");
    let mut rsa1 = p.clone();
    rsa1.insert("sign_type".into(), "RSA".into());
    assert!(verify_request(&rsa1, &public).is_err());
    let mut unsigned = p.clone();
    unsigned.remove("sign");
    assert!(verify_request(&unsigned, &public).is_err());
    assert!(verify_request(&p, &VerifyingKey::from_pem(OTHER_PUB).unwrap()).is_err());
}

#[test]
fn wire_form_round_trips_and_encodes_only_on_the_wire() {
    let key = SigningKey::from_pem(APP_PKCS1).unwrap();
    let biz = json!({"subject": "a b&c=d+e/中文%"});
    let p = build_request("app", "alipay.trade.app.pay", &biz, &[], 1_700_000_000, &key).unwrap();
    let wire = encode_form(&p);
    assert!(wire.contains("timestamp=2023-11-15%2006%3A13%3A20"), "{wire}");
    assert!(!wire.contains('+') && !wire.contains(' '));
    assert_eq!(parse_form(wire.as_bytes()).unwrap(), p);
    let html = page_form("https://openapi.alipay.com/gateway.do", &p);
    assert!(html.contains("name=\"biz_content\"") && html.contains("&quot;subject&quot;"));
}

#[test]
fn form_parsing_is_strict() {
    let p = parse_form(b"a=1+2&b=%E4%B8%AD&c=&d").unwrap();
    assert_eq!((p["a"].as_str(), p["b"].as_str(), p["c"].as_str(), p["d"].as_str()), ("1 2", "中", "", ""));
    assert!(parse_form(b"a=1&a=2").unwrap_err().message().contains("twice"));
    assert!(parse_form(b"a=%zz").is_err());
    assert!(parse_form(b"a=%+1").is_err(), "an escape is two hex digits, never a sign");
    assert!(parse_form(b"a=%E4").is_err(), "not UTF-8");
    assert!(parse_form(b"=x").is_err());
    assert!(parse_form(&vec![b'a'; MAX_FORM_BYTES + 1]).is_err());
    let many: String = (0..=MAX_FORM_FIELDS).map(|i| format!("k{i}=v&")).collect();
    assert!(parse_form(many.as_bytes()).is_err());
    assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
}

fn notify_params() -> Params {
    let mut p = Params::new();
    for (k, v) in [
        ("notify_time", "2024-01-02 10:00:00"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", "2021000000000001"),
        ("seller_id", "2088000000000001"),
        ("out_trade_no", "o1"),
        ("trade_no", "2024010222001400001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "12.30"),
        ("subject", "a b+c"),
        ("fund_bill_list", "[{\"amount\":\"12.30\",\"fundChannel\":\"ALIPAYACCOUNT\"}]"),
        ("body", ""),
    ] {
        p.insert(k.into(), v.into());
    }
    p
}

#[test]
fn notify_signature_excludes_sign_type_and_verifies_from_the_wire() {
    let key = SigningKey::from_pem(APP_PKCS1).unwrap();
    let public = VerifyingKey::from_pem(APP_PUB).unwrap();
    let mut p = notify_params();
    sign_notify(&mut p, &key).unwrap();
    assert_eq!(p["sign_type"], "RSA2");
    assert!(!notify_content(&p).contains("sign_type") && !notify_content(&p).contains("body="));
    // Independent of our signer: the same content signed by a request signer (which covers sign_type) differs.
    let openssl_style = key.sign(notify_content(&p).as_bytes()).unwrap();
    assert_eq!(openssl_style, p["sign"]);
    let wire = encode_form(&p);
    let read = parse_form(wire.as_bytes()).unwrap();
    verify_notify(&read, &public).unwrap();
    // Senders that encode spaces as '+' verify too.
    verify_notify(&parse_form(wire.replace("%20", "+").as_bytes()).unwrap(), &public).unwrap();
    for (field, value) in [("total_amount", "1230.00"), ("seller_id", "2088000000000002"), ("trade_status", "x")] {
        let mut t = read.clone();
        t.insert(field.into(), value.into());
        assert!(matches!(verify_notify(&t, &public), Err(AlipayError::BadSignature(_))), "{field}");
    }
    let mut gbk = read.clone();
    gbk.insert("charset".into(), "GBK".into());
    assert!(verify_notify(&gbk, &public).is_err());
    let mut rsa1 = read.clone();
    rsa1.insert("sign_type".into(), "RSA".into());
    assert!(verify_notify(&rsa1, &public).is_err());
    assert!(verify_notify(&read, &VerifyingKey::from_pem(OTHER_PUB).unwrap()).is_err());
}

fn signed_body(node_name: &str, node: &str, key: &SigningKey) -> String {
    format!("{{\"{node_name}\":{node},\"sign\":\"{}\"}}", key.sign(node.as_bytes()).unwrap())
}

#[test]
fn response_node_is_verified_over_its_raw_text() {
    let key = SigningKey::from_pem(APP_PKCS1).unwrap();
    let public = VerifyingKey::from_pem(APP_PUB).unwrap();
    // Escapes, braces inside strings, spacing and key order that re-serialising would all change.
    let node = r#"{"code":"10000", "msg":"Success","out_trade_no":"o}{\"1","qr_code":"https:\/\/qr.alipay.com\/x",
        "nested":{"a":[1,{"b":"}"}]},"total_amount":"0.01"}"#;
    let body = signed_body("alipay_trade_precreate_response", node, &key);
    let r = Response::parse(&body, "alipay.trade.precreate", &public).unwrap();
    assert!(r.is_success());
    assert_eq!(r.raw, node);
    assert_eq!(r.get("out_trade_no"), Some("o}{\"1"));
    assert_eq!(r.get("qr_code"), Some("https://qr.alipay.com/x"));
    // Sign placed first, whitespace around: still found.
    let reordered = format!(
        " {{ \"sign\" : \"{}\" ,\n\"alipay_trade_precreate_response\" : {node} }}\n",
        key.sign(node.as_bytes()).unwrap()
    );
    Response::parse(&reordered, "alipay.trade.precreate", &public).unwrap();
    // One changed byte in the node, a wrong key, no sign: refused.
    let tampered = body.replace("0.01", "0.02");
    assert!(matches!(Response::parse(&tampered, "alipay.trade.precreate", &public), Err(AlipayError::BadSignature(_))));
    let other = VerifyingKey::from_pem(OTHER_PUB).unwrap();
    assert!(Response::parse(&body, "alipay.trade.precreate", &other).is_err());
    let unsigned = format!("{{\"alipay_trade_precreate_response\":{node}}}");
    assert!(Response::parse(&unsigned, "alipay.trade.precreate", &public).is_err());
    // A second copy of the node (which one was signed?) and trailing text are refused.
    let twice = format!("{{\"alipay_trade_precreate_response\":{node},{}", &body[1..]);
    assert!(Response::parse(&twice, "alipay.trade.precreate", &public).unwrap_err().message().contains("twice"));
    assert!(Response::parse(&format!("{body}x"), "alipay.trade.precreate", &public).is_err());
    assert!(Response::parse(&body, "alipay.trade.query", &public).is_err(), "another method's node");
}

#[test]
fn error_responses_are_read_and_verified() {
    let key = SigningKey::from_pem(APP_PKCS1).unwrap();
    let public = VerifyingKey::from_pem(APP_PUB).unwrap();
    let node = r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#;
    let r = Response::parse(&signed_body("alipay_trade_query_response", node, &key), "alipay.trade.query", &public)
        .unwrap();
    assert!(!r.is_success());
    assert_eq!((r.code.as_str(), r.sub_code.as_deref()), (CODE_BUSINESS_FAILED, Some("ACQ.TRADE_NOT_EXIST")));
    let gateway = r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}"#;
    let r = Response::parse(&signed_body(ERROR_RESPONSE, gateway, &key), "alipay.trade.query", &public).unwrap();
    assert!(r.is_error_node && !r.is_success());
    assert_eq!(extract_node(&signed_body(ERROR_RESPONSE, gateway, &key), ERROR_RESPONSE).unwrap(), Some(gateway));
    assert_eq!(response_node_name("alipay.trade.fastpay.refund.query"), "alipay_trade_fastpay_refund_query_response");
}

#[test]
fn yuan_parse_exactly() {
    for (text, fen) in [("0.01", 1), ("12.3", 1230), ("88", 8800), ("88.88", 8888), ("0", 0), ("100.00", 10000)] {
        assert_eq!(parse_yuan(text).unwrap(), fen, "{text}");
    }
    for text in ["1.234", "-1", "1e2", "", ".5", "1.", "+1", " 1", "1 ", "1,00", "0x10", "1.2.3", "１"] {
        assert!(parse_yuan(text).is_err(), "{text:?} must be refused");
    }
    assert!(parse_yuan("9999999999999999").is_err(), "16 integer digits");
    assert_eq!(parse_yuan("999999999999999.99").unwrap(), 99_999_999_999_999_999);
    assert!(parse_yuan("1.234").unwrap_err().message().contains("'1.234'"), "names the value");
    assert_eq!(
        (format_yuan(1), format_yuan(1230), format_yuan(0), format_yuan(-5)),
        ("0.01".into(), "12.30".into(), "0.00".into(), "-0.05".into())
    );
    assert_eq!(format_yuan(i64::MIN), "-92233720368547758.08");
}

#[test]
fn timestamps_are_beijing_time() {
    assert_eq!(format_timestamp(1_584_697_940), "2020-03-20 17:52:20");
    assert_eq!(parse_timestamp("2020-03-20 17:52:20").unwrap(), 1_584_697_940);
    assert_eq!(parse_timestamp("1970-01-01 08:00:00").unwrap(), 0);
    assert_eq!(parse_timestamp("2024-02-29 23:59:59").unwrap(), 1_709_222_399);
    for bad in [
        "2023-02-29 00:00:00",
        "2020-13-01 00:00:00",
        "2020-03-20T17:52:20",
        "2020-03-20 24:00:00",
        "2020-3-20 1:2:3",
        "2020-03-20 17:52:2x",
    ] {
        assert!(parse_timestamp(bad).is_err(), "{bad}");
    }
}

#[test]
fn keys_as_alipay_tools_give_them() {
    let body = |pem: &str| pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    let expected = SigningKey::from_pem(APP_PKCS1).unwrap().sign(b"x").unwrap();
    for text in [APP_PKCS1.to_string(), APP_PKCS8.to_string(), body(APP_PKCS1), body(APP_PKCS8)] {
        assert_eq!(app_private_key(&text).unwrap().sign(b"x").unwrap(), expected);
    }
    for text in [APP_PUB.to_string(), body(APP_PUB)] {
        alipay_public_key(&text).unwrap().verify(b"x", &expected).unwrap();
    }
    let e = app_private_key("bm90IGEga2V5").unwrap_err();
    assert!(matches!(e, AlipayError::Key(_)) && !e.message().contains("bm90"), "no key material in errors");
    assert!(alipay_public_key(&body(APP_PKCS8)).is_err());
}
