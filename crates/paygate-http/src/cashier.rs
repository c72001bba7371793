//! The 酷点 cashier face (seed 001): `POST /api/v2/cashier/{pay,query,refund,reverse}`. Every
//! request is a signed envelope `{open_app_id, timestamp, sign_type, token, biz_content, sign}`;
//! every answer is `{result: "<JSON text>", sign}` signed the same way. See docs/cashier.md.

use crate::request::{self, Incoming};
use crate::HttpResponse;
use hyper::StatusCode;
use paygate_core::pos::{CodePayment, Envelope, SignType};
use paygate_core::Paygate;
use paygate_domain::pos::{Discounts, Settlement};
use paygate_domain::{Amount, ChargeStatus, OrderStatus, Problem};
use paygate_store::{ExposeSecret, FaceCredential, PosRecord, PosRef, SeenSignature};
use serde_json::{json, Map, Value};

pub(crate) async fn handle(app: &Paygate, req: &Incoming, op: &str) -> HttpResponse {
    let envelope = match envelope(req) {
        Ok(e) => e,
        Err(p) => return answer(Err(p), None, SignType::Md5),
    };
    let sign_type = envelope.get("sign_type").and_then(Value::as_str).map(SignType::parse).transpose();
    let sign_type = match sign_type {
        Ok(t) => t.unwrap_or(SignType::Md5),
        Err(p) => return answer(Err(p), None, SignType::Md5),
    };
    // A payment records its signature in its own transaction; every other op before it runs.
    let verified = verify(app, &envelope, sign_type, op == "pay").await;
    let (caller, cred, mut seen) = match verified {
        Ok((caller, cred, seen)) => (crate::errors::log_app(caller), cred, seen),
        Err(p) => return answer(Err(p), None, sign_type),
    };
    let result = async {
        let text =
            envelope.get("biz_content").and_then(Value::as_str).ok_or_else(|| Problem::missing("biz_content"))?;
        let biz: Map<String, Value> = match serde_json::from_str(text) {
            Ok(Value::Object(m)) => {
                crate::request::reject_nul(&Value::Object(m.clone()), "biz_content")?;
                m
            }
            _ => return Err(Problem::invalid("biz_content", "biz_content must be a JSON object written as a string.")),
        };
        let peer = req.peer.ip().to_string();
        match op {
            "pay" => {
                let input = code_payment(&biz)?;
                Ok(data(&app.pay_by_code(&caller, input, &peer, seen.take()).await?, &caller.app.name))
            }
            "query" => {
                let fresh = matches!(biz.get("is_fresh"), Some(Value::Bool(true)))
                    || biz.get("is_fresh").and_then(Value::as_str) == Some("true");
                Ok(data(&app.pos_record(&caller, &reference(&biz)?, fresh).await?, &caller.app.name))
            }
            "refund" => {
                let amount = int(&biz, "refund_fee")?.map(|fen| Amount::positive("refund_fee", fen)).transpose()?;
                let reason = text_field(&biz, "refund_reason");
                // The core names its own fields; this caller sent refund_fee and refund_reason.
                let names = [("amount", "refund_fee"), ("description", "refund_reason")];
                let refunded = app.pos_refund(&caller, &reference(&biz)?, amount.map(Amount::fen), reason).await;
                let (refund, record) = refunded.map_err(|p| crate::hserve::renamed(p, &names))?;
                Ok(json!({
                    "pay_no": record.meta.pay_no,
                    "refund_no": refund.refund_no,
                    "refund_fee": refund.amount.fen(),
                    "refunded_fee": record.order.amount_refunded.fen(),
                    "status": if refund.status == paygate_domain::RefundStatus::Succeeded {
                        "REFUND_SUCC"
                    } else {
                        "REFUND_FAIL"
                    },
                }))
            }
            "reverse" => Ok(data(&app.pos_reverse(&caller, &reference(&biz)?).await?, &caller.app.name)),
            _ => Err(crate::errors::route_not_found(req)),
        }
    }
    .await;
    // A payment refused before it reached the core (bad biz_content) used up its signature too.
    let result = match (result, seen) {
        (Err(problem), Some(seen)) => Err(app.refused(Some(seen), problem).await),
        (result, _) => result,
    };
    answer(result, Some(&cred), sign_type)
}

fn envelope(req: &Incoming) -> Result<Map<String, Value>, Problem> {
    match request::json_object(&req.body) {
        Some(envelope) => envelope,
        None => Err(Problem::invalid(
            "body",
            "The request must be a JSON envelope {open_app_id, timestamp, sign_type, token, biz_content, sign}.",
        )),
    }
}

/// With `defer`, the signature is not recorded yet but returned for the operation to record.
async fn verify(
    app: &Paygate,
    envelope: &Map<String, Value>,
    sign_type: SignType,
    defer: bool,
) -> Result<(paygate_core::Caller, FaceCredential, Option<SeenSignature>), Problem> {
    let open_app_id =
        envelope.get("open_app_id").and_then(Value::as_str).ok_or_else(|| Problem::missing("open_app_id"))?;
    let timestamp = match envelope.get("timestamp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Problem::invalid("timestamp", "timestamp (unix seconds) is required."))?;
    let mut fields = envelope.clone();
    let signature = fields.remove("sign");
    let envelope = Envelope {
        face: "cashier",
        public_id: open_app_id,
        fields: &fields,
        signature: signature.as_ref().and_then(Value::as_str),
        sign_type,
        timestamp: Some(timestamp),
        token: envelope.get("token").and_then(Value::as_str),
    };
    if defer {
        return app.check_envelope(&envelope).await;
    }
    app.verify_envelope(&envelope).await.map(|(caller, cred)| (caller, cred, None))
}

/// A refusal before the caller is identified: unsigned, like every refusal before verification.
pub(crate) fn refusal(problem: &Problem) -> HttpResponse {
    answer(Err(problem.clone()), None, SignType::Md5)
}

/// The raw answer: `result` is JSON text, `sign` covers it (when the caller was identified).
fn answer(result: Result<Value, Problem>, cred: Option<&FaceCredential>, sign_type: SignType) -> HttpResponse {
    let (status, inner) = match result {
        Ok(data) => (StatusCode::OK, json!({"code": 0, "data": data, "msg": "success", "succeed": true})),
        Err(problem) => {
            let (status, code) = crate::errors::signed_face_code(problem.kind);
            let problem = crate::errors::public_problem(&problem);
            (
                status,
                json!({"code": code, "msg": problem.message, "sub_code": problem.code, "param": problem.param,
                    "succeed": false}),
            )
        }
    };
    let mut out = Map::new();
    out.insert("result".into(), json!(inner.to_string()));
    let signature =
        cred.map(|c| paygate_core::pos::sign(&out, c.secret.expose_secret(), sign_type)).unwrap_or_default();
    out.insert("sign".into(), json!(signature));
    request::json(status, Value::Object(out).to_string().into_bytes())
}

fn text_field(biz: &Map<String, Value>, name: &str) -> Option<String> {
    biz.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

fn int(biz: &Map<String, Value>, name: &str) -> Result<Option<i64>, Problem> {
    match biz.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(Problem::invalid(name, format!("{name} must be an integer number of fen."))),
    }
}

/// `pay_no` (recommended by seed 001), `order_no` (seed 001's own request example: the
/// `order_no` its answers carry) or `out_trade_no` (the latest payment with it), in that order.
fn reference(biz: &Map<String, Value>) -> Result<PosRef, Problem> {
    // Numbers are all digits: a client may send them unquoted.
    let number =
        |name: &str| text_field(biz, name).or_else(|| biz.get(name).and_then(Value::as_u64).map(|n| n.to_string()));
    if let Some(v) = number("pay_no") {
        Ok(PosRef::PayNo(v))
    } else if let Some(v) = number("order_no") {
        Ok(PosRef::OrderNo(v))
    } else if let Some(v) = text_field(biz, "out_trade_no") {
        Ok(PosRef::OutTradeNo(v))
    } else {
        Err(Problem::invalid("pay_no", "Name the payment: pay_no, order_no or out_trade_no."))
    }
}

fn code_payment(biz: &Map<String, Value>) -> Result<CodePayment, Problem> {
    let d = biz.get("discount_info").cloned().unwrap_or(Value::Null);
    if !(d.is_object() || d.is_null()) {
        return Err(Problem::invalid("discount_info", "discount_info must be an object."));
    }
    let fen = |name: &str| -> Result<Amount, Problem> {
        match d.get(name) {
            None | Some(Value::Null) => Ok(Amount::ZERO),
            Some(Value::Number(n)) if n.is_i64() => {
                Amount::non_negative(&format!("discount_info.{name}"), n.as_i64().unwrap_or(-1))
            }
            Some(_) => Err(Problem::invalid(
                &format!("discount_info.{name}"),
                format!("discount_info.{name} must be an integer number of fen."),
            )),
        }
    };
    let desc = |name: &str| d.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(CodePayment {
        out_trade_no: text_field(biz, "out_trade_no").ok_or_else(|| Problem::missing("out_trade_no"))?,
        total_fee: int(biz, "total_fee")?.ok_or_else(|| Problem::missing("total_fee"))?,
        auth_code: text_field(biz, "auth_code").ok_or_else(|| Problem::missing("auth_code"))?,
        subject: text_field(biz, "subject").or_else(|| text_field(biz, "body")),
        attach: text_field(biz, "attach").unwrap_or_default(),
        discounts: Discounts {
            kd: fen("kd_discount_fee")?,
            kd_desc: desc("kd_discount_desc"),
            m: fen("m_discount_fee")?,
            y: fen("y_discount_fee")?,
            p: fen("p_discount_fee")?,
            mch_desc: desc("mch_discount_desc"),
        },
        pre_fee_subsidy: int(biz, "pre_fee_subsidy_amount")?,
        fee_subsidy_party: text_field(biz, "fee_subsidy_party"),
        goods_detail: biz.get("goods_detail").cloned().unwrap_or(Value::Null),
    })
}

pub(crate) fn status(r: &PosRecord) -> (&'static str, &'static str) {
    if r.meta.reversed {
        return ("PAYED_REVERSAL", "已撤销");
    }
    match (r.order.status, r.charge.status) {
        (OrderStatus::Paid | OrderStatus::Refunded, _) => ("PAYED_SUCC", "支付成功"),
        (OrderStatus::Created, ChargeStatus::Pending) => ("PAYING", "支付中"),
        (OrderStatus::Created, ChargeStatus::Failed) => ("PAYED_FAIL", "支付失败"),
        (OrderStatus::Canceled, _) => ("CANCEL", "已取消"),
        (OrderStatus::Closed, _) => ("TIMEOUT", "已超时"),
        _ => ("UNKNOW", "未知"),
    }
}

/// `yyyy-MM-dd HH:mm:ss`, Beijing time.
fn pay_time(unix: i64) -> String {
    paygate_domain::BeijingTime::of(unix).dashed()
}

/// Seed 001's `data`: fee fields only when paid, member fields only for members.
fn data(r: &PosRecord, shop_name: &str) -> Value {
    let (status, status_name) = status(r);
    let (payment, payment_type) = match r.meta.auth_code_kind.as_str() {
        "wechat" => ("微信支付", "WXPAY"),
        "alipay" => ("支付宝支付", "ALIPAY"),
        _ => ("会员钱包支付", "BALANCE"),
    };
    let mut out = json!({
        "pay_no": r.meta.pay_no,
        "order_no": r.order.id,
        "out_trade_no": r.meta.out_trade_no,
        "payment": payment,
        "payment_type": payment_type,
        "status": status,
        "status_name": status_name,
        "attach": r.meta.attach,
        "shop_name": shop_name,
    });
    let o = out.as_object_mut().expect("an object");
    if status == "PAYED_SUCC" {
        let s = r.charge.settlement.as_ref().and_then(Settlement::from_json);
        o.insert("fee".into(), json!(s.as_ref().map(|s| s.fee_base.fen())));
        o.insert("origin_fee".into(), json!(r.order.amount.fen()));
        o.insert("refunded_fee".into(), json!(r.order.amount_refunded.fen()));
        o.insert(
            "can_refund".into(),
            json!(r.order.refundable() > Amount::ZERO && r.order.share_reserved == Amount::ZERO),
        );
        o.insert("received_fee".into(), json!(s.as_ref().map(|s| s.channel.received.fen())));
        o.insert("user_pay_fee".into(), json!(r.order.actual_amount.fen()));
        o.insert("discount_info".into(), r.meta.discounts.to_json());
        o.insert("pay_time".into(), json!(r.order.time_paid.map(pay_time)));
    }
    if let Some(m) = &r.member {
        o.insert("user_no".into(), json!(m.member_no));
        o.insert("member_phone".into(), json!(m.phone));
        o.insert("member_name".into(), json!(m.name));
    }
    out
}
