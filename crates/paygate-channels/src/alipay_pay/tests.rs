//! What the adapter decides without a network: notification URLs, refusal codes, trade states and amounts,
//! and the account checks. The wire behaviour is proven against the simulator (crates/paygate/tests/alipay.rs).

use super::trade::trade_state;
use super::*;
use crate::alipay::Response;
use paygate_domain::{ChargeStatus, Currency};
use serde_json::{json, Map};
use std::sync::OnceLock;
use std::time::Duration;

fn pems() -> &'static (String, String) {
    static PEMS: OnceLock<(String, String)> = OnceLock::new();
    PEMS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        (private, key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap())
    })
}

fn net() -> NetPolicy {
    NetPolicy {
        allow_private: false,
        is_public: |_| true,
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(1),
    }
}

fn account(public_key: Option<String>) -> AlipayAccount {
    AlipayAccount {
        app_id: "2021000000000001".into(),
        app_private_key: SecretString::from(pems().0.clone()),
        alipay_public_key: public_key,
        app_public_cert: None,
        alipay_public_cert: None,
        alipay_root_cert: None,
        seller_id: "2088000000000001".into(),
        app_auth_token: None,
        gateway_url: "https://openapi.alipay.com/gateway.do".into(),
    }
}

fn response(fields: serde_json::Value) -> Response {
    let fields: Map<String, serde_json::Value> = fields.as_object().unwrap().clone();
    let text = |f: &str| fields.get(f).and_then(|v| v.as_str()).map(str::to_string);
    Response {
        raw: String::new(),
        code: text("code").unwrap_or_default(),
        msg: text("msg").unwrap_or_default(),
        sub_code: text("sub_code"),
        sub_msg: text("sub_msg"),
        fields,
        is_error_node: false,
    }
}

fn charge(fen: i64) -> Charge {
    Charge {
        id: "ch_1".into(),
        order_id: "1".into(),
        app_id: "app_x".into(),
        mode: Mode::Test,
        created: 0,
        status: ChargeStatus::Pending,
        channel: "alipay_qr".into(),
        channel_order_no: "1234567890123456789012".into(),
        amount: Amount::positive("amount", fen).unwrap(),
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

#[test]
fn notify_urls_name_the_app_and_mode_under_the_public_url_when_set() {
    let mut config =
        AlipayPayConfig::from_account(&account(Some(pems().1.clone())), "app_x", Mode::Live, net()).unwrap();
    assert_eq!(config.notify_url("http://h:1/"), "http://h:1/notify/alipay/app_x/live");
    config.public_url = Some("https://pay.example.com".into());
    assert_eq!(config.notify_url("http://h:1"), "https://pay.example.com/notify/alipay/app_x/live");
}

#[test]
fn an_account_without_the_alipay_public_key_cannot_be_used() {
    let problem = AlipayPayConfig::from_account(&account(None), "app_x", Mode::Test, net()).err().unwrap();
    assert_eq!(problem.code, "channel_account_invalid");
    assert!(problem.message.contains("alipay_public_key"), "{}", problem.message);
}

#[test]
fn refusals_name_the_sub_code() {
    let r = response(json!({"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在"}));
    assert_eq!(refusal(&r), ("alipay_acq_trade_not_exist".to_string(), "交易不存在".to_string()));
}

#[test]
fn a_paid_trade_counts_only_with_the_charges_amount() {
    let paid = |total: &str, status: &str| {
        response(json!({"code": "10000", "msg": "Success", "trade_status": status, "total_amount": total}))
    };
    assert_eq!(trade_state(&paid("10.00", "TRADE_SUCCESS"), &charge(1000)), PaymentState::Paid);
    assert_eq!(trade_state(&paid("10.00", "TRADE_FINISHED"), &charge(1000)), PaymentState::Paid);
    assert!(matches!(
        trade_state(&paid("9.99", "TRADE_SUCCESS"), &charge(1000)),
        PaymentState::Failed { code, .. } if code == "alipay_amount_mismatch"
    ));
    assert_eq!(trade_state(&paid("10.00", "WAIT_BUYER_PAY"), &charge(1000)), PaymentState::Pending);
    assert!(matches!(trade_state(&paid("10.00", "TRADE_CLOSED"), &charge(1000)), PaymentState::Failed { .. }));
}

fn asked(biz: serde_json::Value) -> crate::alipay::Params {
    [("biz_content".to_string(), biz.to_string())].into_iter().collect()
}

#[test]
fn an_answer_about_another_trade_is_refused() {
    let params = asked(json!({"out_trade_no": "o1", "trade_no": "t1", "out_request_no": "r1"}));
    let node = |f: serde_json::Value| response(f);
    assert_eq!(same_trade(&params, &node(json!({"code": "10000", "out_trade_no": "o1", "trade_no": "t1"}))), Ok(()));
    // Not echoed: nothing to compare.
    assert_eq!(same_trade(&params, &node(json!({"code": "10000"}))), Ok(()));
    let err = same_trade(&params, &node(json!({"code": "10000", "out_trade_no": "o2"}))).unwrap_err();
    assert!(err.contains("out_trade_no") && err.contains("o2") && err.contains("o1"), "{err}");
    assert!(same_trade(&params, &node(json!({"code": "10000", "out_trade_no": "o1", "trade_no": "t2"}))).is_err());
    assert!(same_trade(&params, &node(json!({"code": "10000", "out_request_no": "r2"}))).is_err());
    // Another type is not the same number.
    assert!(same_trade(&params, &node(json!({"code": "10000", "out_trade_no": 1}))).is_err());
    // trade_no is compared only where the request sent one (a query by out_trade_no learns it from the answer).
    let by_out = asked(json!({"out_trade_no": "o1"}));
    assert_eq!(same_trade(&by_out, &node(json!({"code": "10000", "out_trade_no": "o1", "trade_no": "t9"}))), Ok(()));
    // No biz_content (or not JSON): nothing was named.
    assert_eq!(same_trade(&crate::alipay::Params::new(), &node(json!({"out_trade_no": "o2"}))), Ok(()));
}

fn share(fen: i64) -> ProfitShare {
    use paygate_domain::shares::{Receiver, ShareKind, ShareStatus};
    let receiver = Receiver {
        kind: "userId".into(),
        account: "2088000000000002".into(),
        amount: Amount::positive("amount", fen).unwrap(),
        description: "d".into(),
    };
    ProfitShare {
        id: "ps_1".into(),
        order_id: "1".into(),
        app_id: "app".into(),
        mode: Mode::Test,
        created: 0,
        kind: ShareKind::Alipay,
        out_order_no: "P1".into(),
        status: ShareStatus::Pending,
        amount: Amount::positive("amount", fen).unwrap(),
        return_reserved: Amount::ZERO,
        amount_returned: Amount::ZERO,
        receivers: vec![receiver],
        channel_order_no: None,
        failure_msg: None,
    }
}

#[test]
fn settle_query_details_decide_a_pending_share() {
    use super::royalty::{settle_seen, uncertain};
    let detail = |state: &str, amount: &str| json!({"trans_in": "2088000000000002", "amount": amount, "state": state});
    let answer = |list: serde_json::Value| {
        response(json!({"code": "10000", "out_request_no": "P1", "royalty_detail_list": list}))
    };
    let settled = settle_seen(&answer(json!([detail("SUCCESS", "1.00")])), &share(100)).unwrap();
    assert_eq!(settled, SettleSeen::Settled { channel_order_no: "P1".into() });
    let two = answer(json!([detail("SUCCESS", "0.60"), detail("PROCESSING", "0.40")]));
    assert_eq!(settle_seen(&two, &share(100)).unwrap(), SettleSeen::Pending);
    let mut failed = detail("FAIL", "1.00");
    failed["error_desc"] = json!("收款方账户异常");
    let SettleSeen::Failed { message } = settle_seen(&answer(json!([failed])), &share(100)).unwrap() else {
        panic!("a FAIL detail fails the share");
    };
    assert!(message.contains("收款方账户异常"), "{message}");
    assert_eq!(settle_seen(&answer(json!([])), &share(100)).unwrap(), SettleSeen::Missing);
    // Settled with another amount (or a bad one): not believed either way.
    assert_eq!(
        settle_seen(&answer(json!([detail("SUCCESS", "2.00")])), &share(100)).unwrap_err().code,
        "channel_bad_answer"
    );
    assert!(settle_seen(&answer(json!([detail("SUCCESS", "1.001")])), &share(100)).is_err());
    assert!(uncertain(&response(json!({"code": "40004", "sub_code": "ACQ.SYSTEM_ERROR"}))));
    assert!(!uncertain(&response(json!({"code": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}))));
}
