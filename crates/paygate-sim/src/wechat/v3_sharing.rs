//! API v3 profit sharing: `/v3/profitsharing/…` (receivers add/delete, orders, unfreeze, return orders, the
//! unsplit amount), on the same books and rules as v2.

use super::rfc3339;
use super::sharing::{Receiver, ShareKind, ShareOrder, ShareRequest, ShareReturn};
use super::state::BizError;
use super::v3_api::{int_at, need, parse_body, str_at, Answer};
use super::WechatSim;
use crate::http::Request;
use hyper::Method;
use serde_json::{json, Value};
use std::sync::Arc;

fn share_missing() -> BizError {
    BizError::new("RESOURCE_NOT_EXISTS", 404, "RESOURCE_NOT_EXISTS", "记录不存在")
}

pub(super) fn handle(sim: &Arc<WechatSim>, req: &Request, mchid: &str, body: &str, now: i64) -> Answer {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').skip(2).collect();
    let mut shared = sim.lock();
    let shared = &mut *shared;
    let cap = shared.settings.share_max_ratio_bps;
    let value = match (&req.method, segments.as_slice()) {
        (&Method::POST, ["receivers", op @ ("add" | "delete")]) => {
            let v = parse_body(body)?;
            let name = match str_at(&v, &["name"]) {
                Some(sealed) if *op == "add" => sim.open_sensitive(req, sealed)?,
                _ => String::new(),
            };
            let receiver = Receiver {
                kind: need(&v, &["type"])?.to_string(),
                account: need(&v, &["account"])?.to_string(),
                name,
                relation_type: str_at(&v, &["relation_type"]).unwrap_or("").to_string(),
            };
            if *op == "add" {
                need(&v, &["relation_type"])?;
                shared.sharing.add_receiver(mchid, receiver.clone())?;
                json!({"type": receiver.kind, "account": receiver.account, "relation_type": receiver.relation_type})
            } else {
                if !shared.sharing.remove_receiver(mchid, &receiver.kind, &receiver.account) {
                    return Err(BizError::new("RECEIVER_INVALID", 400, "RECEIVER_INVALID", "分账接收方不存在"));
                }
                json!({"type": receiver.kind, "account": receiver.account})
            }
        }
        (&Method::POST, ["orders"]) | (&Method::POST, ["orders", "unfreeze"]) => {
            let v = parse_body(body)?;
            let tx = need(&v, &["transaction_id"])?;
            let out_order_no = need(&v, &["out_order_no"])?.to_string();
            let (kind, lines) = if segments.len() == 2 {
                need(&v, &["description"])?;
                (ShareKind::Finish, Vec::new())
            } else {
                let unfreeze = v
                    .get("unfreeze_unsplit")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| BizError::param("unfreeze_unsplit 必须是布尔值"))?;
                let list = v
                    .get("receivers")
                    .and_then(Value::as_array)
                    .ok_or_else(|| BizError::param("receivers 必须是数组"))?;
                let mut lines = Vec::new();
                for r in list {
                    let r = r.as_object().ok_or_else(|| BizError::param("receivers 的元素必须是对象"))?;
                    lines.push((
                        need(r, &["type"])?.to_string(),
                        need(r, &["account"])?.to_string(),
                        int_at(r, &["amount"])?,
                        str_at(r, &["description"]).unwrap_or("").to_string(),
                    ));
                }
                (if unfreeze { ShareKind::Single } else { ShareKind::Multi }, lines)
            };
            let order = shared.books.find(mchid, Some(tx), None).ok_or_else(BizError::not_found)?.clone();
            let share = shared.sharing.share(&order, ShareRequest { out_order_no, kind, lines }, cap, now)?;
            share_json(share)
        }
        (&Method::GET, ["orders", out_order_no]) => {
            let share = shared.sharing.find(mchid, out_order_no).ok_or_else(share_missing)?;
            if req.query_param("transaction_id").is_some_and(|t| t != share.transaction_id) {
                return Err(share_missing());
            }
            share_json(share)
        }
        (&Method::POST, ["return-orders"]) => {
            let v = parse_body(body)?;
            let share_ref = str_at(&v, &["order_id"])
                .or_else(|| str_at(&v, &["out_order_no"]))
                .ok_or_else(|| BizError::param("order_id和out_order_no必须填写一个"))?;
            let back = shared.sharing.give_back(
                mchid,
                share_ref,
                need(&v, &["out_return_no"])?,
                need(&v, &["return_mchid"])?,
                int_at(&v, &["amount"])?,
                need(&v, &["description"])?,
                now,
            )?;
            return_json(back)
        }
        (&Method::GET, ["return-orders", out_return_no]) => {
            let back = shared.sharing.find_return(mchid, out_return_no).ok_or_else(share_missing)?;
            return_json(back)
        }
        (&Method::GET, ["transactions", tx, "amounts"]) => {
            let order = shared.books.find(mchid, Some(tx), None).ok_or_else(BizError::not_found)?;
            let unsplit = if shared.sharing.finished(mchid, tx) { 0 } else { shared.sharing.unsplit(order) };
            json!({"transaction_id": tx, "unsplit_amount": unsplit})
        }
        _ => return Err(BizError::new("", 404, "NOT_FOUND", "资源不存在")),
    };
    Ok((200, value, Vec::new()))
}

impl WechatSim {
    /// A sensitive field (RSA-OAEP-SHA1 under the platform key that `Wechatpay-Serial` names, base64), opened.
    fn open_sensitive(&self, req: &Request, sealed: &str) -> Result<String, BizError> {
        use base64::Engine;
        let serial = req.header("wechatpay-serial").unwrap_or("");
        if serial != self.platform.public_key_id && serial != self.platform.certificate.serial {
            return Err(BizError::param("Wechatpay-Serial 不是平台证书序列号或微信支付公钥ID"));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| BizError::param("敏感信息加密字段不是合法的base64"))?;
        let plain = self
            .platform
            .private
            .decrypt(rsa::Oaep::new::<sha1::Sha1>(), &bytes)
            .map_err(|_| BizError::param("敏感信息解密失败"))?;
        String::from_utf8(plain).map_err(|_| BizError::param("敏感信息解密失败"))
    }
}

fn share_json(s: &ShareOrder) -> Value {
    let time = rfc3339(s.created_at);
    let receivers: Vec<Value> = s
        .lines
        .iter()
        .map(|l| {
            json!({"type": l.kind, "account": l.account, "amount": l.amount, "description": l.description,
                "result": "SUCCESS", "detail_id": l.detail_id, "create_time": time, "finish_time": time})
        })
        .collect();
    json!({"transaction_id": s.transaction_id, "out_order_no": s.out_order_no, "order_id": s.order_id,
        "state": "FINISHED", "receivers": receivers})
}

fn return_json(r: &ShareReturn) -> Value {
    let time = rfc3339(r.created_at);
    json!({"order_id": r.order_id, "out_order_no": r.out_order_no, "out_return_no": r.out_return_no,
        "return_id": r.return_no, "return_mchid": r.return_account, "amount": r.amount,
        "description": r.description, "result": "SUCCESS", "create_time": time, "finish_time": time})
}
