//! A whole WeChat Pay notification as paygate reads it before touching its books: `wechat_pay::notify::read_v2` /
//! `read_v3`, the very functions `POST /notify/wechat[/v3]/…` calls (paygate-core `wechat_notify`), with
//! arbitrary headers and body. Input: one flag byte, then `Name: value` header lines, an empty line, the body.
//! Flags: bit 0 = v3 (else v2); bit 1 = sign what follows with the account's keys first (v2: the parsed fields,
//! re-rendered; v3: the `Wechatpay-*` headers over the body), so the fuzzer gets past the signature to the
//! parsing behind it; bit 2 (v3) = treat `resource.ciphertext` as plaintext and seal it under the APIv3 key, so
//! the decrypted resource's fields are fuzzed too.
//! Never panics; nothing is trusted unless its signature verifies with the account's key; a trusted payment or
//! refund names the account's mch id (and a payment its appid).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v2::{self, SignType};
use paygate_channels::wechat::v3::{Resource, ResponseSignature};
use paygate_channels::wechat_pay::notify::{read_v2, read_v3, Notice, Refusal};
use paygate_channels::wechat_pay::v3::V3Keys;
use paygate_fuzz::notify::{account_keys, APPID, MCH_ID, NOW};
use paygate_fuzz::{signing_key, API_V2_KEY, API_V3_KEY};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or(("", text));
    let mut headers: Vec<(String, String)> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let (v3, sign_it, seal_it) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
    if v3 {
        let mut body = body.to_string();
        if seal_it {
            body = sealed(&body).unwrap_or(body);
        }
        if sign_it {
            sign_v3(&mut headers, &body);
        }
        let keys = account_keys();
        let lookup = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let read = read_v3(keys, APPID, MCH_ID, lookup, &body, NOW);
        check_v3(keys, &headers, &body, read);
    } else {
        let mut body = body.to_string();
        if sign_it {
            if let Ok(mut fields) = v2::parse_xml(&body) {
                let sign_type = SignType::parse(fields.get("sign_type")).unwrap_or(SignType::Md5);
                fields.set("sign", v2::sign(&fields, API_V2_KEY, sign_type));
                body = v2::render_xml(&fields);
            }
        }
        match read_v2(&body, API_V2_KEY, APPID, MCH_ID) {
            Ok(Notice::Payment(paid)) => {
                let fields = v2::parse_xml(&body).expect("a trusted notification parsed");
                v2::verify(&fields, API_V2_KEY).expect("a payment notice is trusted only when its sign verifies");
                assert_eq!((fields.get("appid"), fields.get("mch_id")), (Some(APPID), Some(MCH_ID)));
                if let Some(paid) = paid {
                    assert_eq!(paid.notification["mch_id"], MCH_ID);
                    let total_fee = fields.get("total_fee").and_then(|t| t.parse::<i64>().ok());
                    assert_eq!(Some(paid.total), total_fee, "the total is the signed total_fee");
                }
            }
            Ok(Notice::Refund(refund)) => assert!(refund.status.is_none(), "a v2 refund notice proves nothing"),
            Ok(Notice::Other(_)) => panic!("v2 has no other notices"),
            Err(refusal) => assert!((400..500).contains(&refusal.status), "{refusal:?}"),
        }
    }
});

/// The body with its `resource.ciphertext` taken as plaintext and sealed (the nonce must be 12 bytes).
fn sealed(body: &str) -> Option<String> {
    let mut event: Value = serde_json::from_str(body).ok()?;
    let resource = event.get("resource")?;
    let plain = resource.get("ciphertext")?.as_str()?;
    let nonce = resource.get("nonce").and_then(Value::as_str).unwrap_or("fuzznonce123");
    let ad = resource.get("associated_data").and_then(Value::as_str).unwrap_or("");
    let sealed = Resource::seal(API_V3_KEY, nonce, ad, plain.as_bytes(), "transaction").ok()?;
    event["resource"] = serde_json::to_value(sealed).ok()?;
    Some(event.to_string())
}

/// Replaces the signature headers by a valid signature of `body`, keeping the fuzzed timestamp, nonce and serial.
fn sign_v3(headers: &mut Vec<(String, String)>, body: &str) {
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let timestamp = get(ResponseSignature::TIMESTAMP).and_then(|t| t.parse().ok()).unwrap_or(NOW);
    let nonce = get(ResponseSignature::NONCE).unwrap_or_else(|| "n".into());
    let serial = get(ResponseSignature::SERIAL).unwrap_or_default();
    let Ok(sig) = ResponseSignature::sign(signing_key(), &serial, body, timestamp, &nonce) else {
        return;
    };
    headers.retain(|(n, _)| !n.to_ascii_lowercase().starts_with("wechatpay-"));
    headers.extend(sig.headers().into_iter().map(|(n, v)| (n.to_string(), v)));
}

fn check_v3(keys: &V3Keys, headers: &[(String, String)], body: &str, read: Result<Notice, Refusal>) {
    let notice = match read {
        Ok(notice) => notice,
        Err(refusal) => return assert!((400..500).contains(&refusal.status), "{refusal:?}"),
    };
    let lookup = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    keys.verify_signed(lookup, body, NOW).expect("a v3 notice is trusted only when its signature verifies");
    match notice {
        Notice::Payment(Some(paid)) => {
            let resource = &paid.notification["resource"];
            assert_eq!((&resource["mchid"], &resource["appid"]), (&Value::from(MCH_ID), &Value::from(APPID)));
            assert_eq!(resource["amount"]["total"].as_i64(), Some(paid.total));
        }
        Notice::Refund(refund) => assert!(refund.status.is_some(), "a v3 refund notice names its status"),
        Notice::Payment(None) | Notice::Other(_) => {}
    }
}
