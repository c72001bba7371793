//! The SaaS WeChat-Pay query face (seed 002): `POST /api/v1/pay/wx/query` with `accessid`, one
//! of `trade_no` / `out_trade_no` / `channel_trade_no` (trade_no wins), and an uppercase MD5
//! `sign`. Amounts are yuan strings; WeChat's native fields travel in `attach`. See docs/cashier.md.

use crate::request::{self, Incoming};
use crate::HttpResponse;
use hyper::StatusCode;
use paygate_channels::{wechat, SandboxWechat};
use paygate_core::pos::{Envelope, SignType};
use paygate_core::Paygate;
use paygate_domain::pos::Settlement;
use paygate_domain::{Amount, ChargeStatus, OrderStatus, Problem};
use paygate_store::{ExposeSecret, FaceCredential, PosRecord, PosRef};
use serde_json::{json, Map, Value};

pub(crate) async fn handle(app: &Paygate, req: &Incoming) -> HttpResponse {
    let mut cred = None;
    let result = async {
        let mut fields =
            match request::json_object(&req.body) {
                Some(fields) => fields?,
                None => return Err(Problem::invalid(
                    "body",
                    "The request must be a JSON object {accessid, trade_no | out_trade_no | channel_trade_no, sign}.",
                )),
            };
        let signature = fields.remove("sign");
        let accessid =
            fields.get("accessid").and_then(Value::as_str).ok_or_else(|| Problem::missing("accessid"))?.to_string();
        let timestamp = match fields.get("timestamp") {
            None | Some(Value::Null) => None,
            // A fraction or a number past i64 is refused, never read as "no timestamp" (which
            // would skip the window and the replay check).
            Some(Value::Number(n)) => {
                Some(n.as_i64().ok_or_else(|| Problem::invalid("timestamp", "timestamp must be unix seconds."))?)
            }
            Some(Value::String(s)) => {
                Some(s.parse().map_err(|_| Problem::invalid("timestamp", "timestamp must be unix seconds."))?)
            }
            Some(_) => return Err(Problem::invalid("timestamp", "timestamp must be unix seconds.")),
        };
        let envelope = Envelope {
            face: "saas",
            public_id: &accessid,
            fields: &fields,
            signature: signature.as_ref().and_then(Value::as_str),
            sign_type: SignType::Md5,
            timestamp,
            token: None,
        };
        let (caller, c) = app.verify_envelope(&envelope).await?;
        let caller = crate::errors::log_app(caller);
        cred = Some(c);
        let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let by = if let Some(v) = text("trade_no") {
            PosRef::PayNo(v)
        } else if let Some(v) = text("out_trade_no") {
            PosRef::OutTradeNo(v)
        } else if let Some(v) = text("channel_trade_no") {
            PosRef::ChannelTradeNo(v)
        } else {
            return Err(Problem::invalid("trade_no", "Send trade_no, out_trade_no or channel_trade_no."));
        };
        let record = app.pos_record(&caller, &by, false).await?;
        if record.meta.auth_code_kind != "wechat" {
            return Err(Problem::not_found("WeChat Pay payment", &record.meta.pay_no));
        }
        Ok(render(&record))
    }
    .await;
    answer(result, cred.as_ref())
}

/// A refusal before the caller is identified: unsigned.
pub(crate) fn refusal(problem: &Problem) -> HttpResponse {
    answer(Err(problem.clone()), None)
}

fn answer(result: Result<Map<String, Value>, Problem>, cred: Option<&FaceCredential>) -> HttpResponse {
    let (status, mut out) = match result {
        Ok(fields) => (StatusCode::OK, fields),
        Err(problem) => {
            let (status, code) = crate::errors::signed_face_code(problem.kind);
            let problem = crate::errors::public_problem(&problem);
            let mut m = Map::new();
            m.insert("return_code".into(), json!(code));
            m.insert("error_code".into(), json!(problem.code));
            m.insert("error_msg".into(), json!(problem.message));
            m.insert("param".into(), json!(problem.param));
            (status, m)
        }
    };
    let signature = cred
        .map(|c| paygate_core::pos::sign(&out, c.secret.expose_secret(), SignType::Md5).to_uppercase())
        .unwrap_or_default();
    out.insert("sign".into(), json!(signature));
    request::json(status, Value::Object(out).to_string().into_bytes())
}

/// `(trade_status, trade_state, trade_state_desc)`.
fn states(r: &PosRecord) -> (&'static str, &'static str, &'static str) {
    if r.meta.reversed {
        return ("2", "REVOKED", "已撤销");
    }
    match (r.order.status, r.charge.status) {
        (OrderStatus::Paid | OrderStatus::Refunded, _) if r.order.amount_refunded > Amount::ZERO => {
            ("1", "REFUND", "转入退款")
        }
        (OrderStatus::Paid | OrderStatus::Refunded, _) => ("1", "SUCCESS", "支付成功"),
        (OrderStatus::Created, ChargeStatus::Pending) => ("3", "USERPAYING", "用户支付中"),
        (OrderStatus::Created, ChargeStatus::Failed) => ("2", "PAYERROR", "支付失败"),
        (OrderStatus::Closed, _) => ("4", "CLOSED", "已关闭"),
        (OrderStatus::Canceled, _) => ("2", "CLOSED", "已关闭"),
        _ => ("2", "NOTPAY", "未支付"),
    }
}

/// The order's discounts as WeChat promotions: `(amount, name, type, contributor)`. WeChat's
/// types say how a promotion settles: `DISCOUNT` (免充值) stays out of the settlement, `COUPON`
/// (充值型) settles through it. Here only `m` (the merchant's own give-away) stays out: `fee =
/// origin − m` is what settles (docs/cashier.md), so `kd` (酷点-funded), `y` (pre-recharged) and
/// `p` (WeChat-funded) are `COUPON`s.
fn promotion_kinds(r: &PosRecord) -> [(Amount, &str, &'static str, &'static str); 4] {
    let d = &r.meta.discounts;
    [
        (d.m, if d.mch_desc.is_empty() { "商家优惠" } else { d.mch_desc.as_str() }, "DISCOUNT", "merchant_contribute"),
        (d.y, "预充值优惠", "COUPON", "merchant_contribute"),
        (d.p, "微信支付优惠", "COUPON", "wxpay_contribute"),
        (d.kd, if d.kd_desc.is_empty() { "平台优惠" } else { d.kd_desc.as_str() }, "COUPON", "other_contribute"),
    ]
}

/// WeChat `promotion_detail` entries for the order's discounts (see [`promotion_kinds`]).
fn promotions(r: &PosRecord) -> Vec<Value> {
    let entry = |id: usize, name: &str, kind: &str, amount: Amount, who: &str| {
        let promotion_id = format!("{}{id}", &r.meta.pay_no[..10]);
        let mut e = json!({"promotion_id": promotion_id, "name": name, "scope": "GLOBAL", "type": kind,
            "amount": amount.fen().to_string(), "activity_id": format!("{}", 9_310_000 + id),
            "wxpay_contribute": "0", "merchant_contribute": "0", "other_contribute": "0"});
        e[who] = json!(amount.fen().to_string());
        e
    };
    promotion_kinds(r)
        .into_iter()
        .enumerate()
        .filter(|(_, (amount, ..))| *amount > Amount::ZERO)
        .map(|(i, (amount, name, kind, who))| entry(i + 1, name, kind, amount, who))
        .collect()
}

fn render(r: &PosRecord) -> Map<String, Value> {
    let (trade_status, trade_state, trade_state_desc) = states(r);
    // An unpaid charge has no settlement: its fee figures are zero.
    let s = r.charge.settlement.as_ref().and_then(Settlement::from_json);
    let channel = s.as_ref().map(|s| s.channel).unwrap_or_default();
    let paid = r.charge.status == ChargeStatus::Succeeded;
    let id = SandboxWechat::of(&r.order.app_id);
    let openid = r
        .charge
        .notification
        .as_ref()
        .and_then(|n| n["openid"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("o{}", &r.order.id[..18]));
    let time_end = r.charge.time_paid.map(wechat::beijing_time).unwrap_or_default();
    // WeChat's definitions: total_fee = cash_fee + coupon_fee (every promotion, both types), and
    // settlement_total_fee = total_fee − the DISCOUNT (免充值) promotions. Amounts are bounded
    // fen (≤ 10¹⁰ each), so these sums cannot overflow.
    let total_fee = r.order.amount.fen();
    let coupon_fee = total_fee - r.order.actual_amount.fen();
    let discounts = promotion_kinds(r).into_iter().filter(|(_, _, kind, _)| *kind == "DISCOUNT");
    let discount_fee: i64 = discounts.map(|(amount, ..)| amount.fen()).sum();
    let mut native = Map::new();
    for (k, v) in [
        ("sub_appid", json!(id.appid)),
        ("sub_mch_id", json!(id.mch_id)),
        ("nonce_str", json!(&r.charge.id[3..])),
        ("result_code", json!(if r.charge.status == ChargeStatus::Failed { "FAIL" } else { "SUCCESS" })),
        ("device_info", json!("")),
        ("openid", json!(openid)),
        ("sub_openid", json!("")),
        ("trade_type", json!("MICROPAY")),
        ("trade_state", json!(trade_state)),
        ("bank_type", json!("OTHERS")),
        ("promotion_detail", json!(Value::Array(promotions(r)).to_string())),
        ("total_fee", json!(total_fee)),
        ("fee_type", json!("CNY")),
        ("settlement_total_fee", json!((total_fee - discount_fee).to_string())),
        ("cash_fee", json!(r.order.actual_amount.fen().to_string())),
        ("cash_fee_type", json!("CNY")),
        ("transaction_id", json!(r.charge.transaction_no.clone().unwrap_or_default())),
        ("out_trade_no", json!(r.charge.channel_order_no)),
        ("time_end", json!(time_end)),
        ("trade_state_desc", json!(trade_state_desc)),
        ("coupon_fee", json!(coupon_fee.to_string())),
        ("goods_detail", r.meta.goods_detail.clone()),
    ] {
        native.insert(k.into(), v);
    }
    if r.charge.status == ChargeStatus::Failed {
        native.insert("err_code".into(), json!(r.charge.failure_code.clone().unwrap_or_default().to_uppercase()));
        native.insert("err_code_des".into(), json!(r.charge.failure_msg.clone().unwrap_or_default()));
    }
    let native_sign = wechat::sign_v2(&native, &id.key);
    native.insert("sign".into(), json!(native_sign));

    let mut out = Map::new();
    let rate = s.as_ref().map(|s| s.rate.percent()).unwrap_or_else(|| "0.00%".into());
    for (k, v) in [
        ("trade_no", json!(r.meta.pay_no)),
        ("out_trade_no", json!(r.meta.out_trade_no)),
        ("channel_trade_no", json!(r.charge.channel_order_no)),
        ("total_amount", json!(r.order.amount.yuan())),
        ("rate", json!(rate)),
        ("fee", json!(channel.fee.yuan())),
        ("trade_status", json!(trade_status)),
        ("appid", json!(id.appid)),
        ("openid", json!(if paid { openid } else { String::new() })),
        ("weixin_no", json!(r.charge.transaction_no.clone().unwrap_or_default())),
        ("refunded_amount", json!(r.order.amount_refunded.yuan())),
        ("remanent_amount", json!(r.order.refundable().yuan())),
        ("attach", Value::Object(native)),
        ("return_code", json!(10000)),
    ] {
        out.insert(k.into(), v);
    }
    if r.charge.status == ChargeStatus::Failed {
        out.insert("error_code".into(), json!(r.charge.failure_code.clone().unwrap_or_default()));
        out.insert("error_msg".into(), json!(r.charge.failure_msg.clone().unwrap_or_default()));
    }
    if let Some(pre) = r.meta.pre_fee_subsidy {
        out.insert("fee_subsidy_party".into(), json!(r.meta.fee_subsidy_party.clone().unwrap_or_default()));
        out.insert("pre_fee_subsidy_amount".into(), json!(pre.yuan()));
        out.insert("real_fee_subsidy_amount".into(), json!(channel.real_subsidy.yuan()));
        out.insert("real_fee_amount".into(), json!(channel.real_fee.yuan()));
    }
    out
}
