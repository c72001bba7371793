//! Royalty (分账): receivers bound per app first (`alipay.trade.royalty.relation.bind` / `unbind`), then
//! `alipay.trade.order.settle` splits a paid trade to bound receivers, at most the cap (30 % by default) of
//! what was paid less refunded; the same out_request_no with the same receivers is the same settlement.

use super::api::{amount, business, invalid, required, seller_id, success, text, Answer, Call};
use super::state::AliError;
use paygate_channels::alipay::{format_timestamp, format_yuan};
use serde_json::{json, Value};

/// Receiver account types Alipay takes (`trans_in_type` / `type`).
const TYPES: [&str; 4] = ["userId", "loginName", "openId", "cardAliasNo"];

pub(super) fn bind(c: &mut Call<'_>, bind: bool) -> Answer {
    required(c.biz, "out_request_no")?;
    let list = c.biz.get("receiver_list").and_then(Value::as_array).filter(|l| !l.is_empty());
    let list = list.ok_or_else(|| invalid("receiver_list 必须是非空数组"))?;
    let mut receivers = Vec::new();
    for (n, r) in list.iter().enumerate() {
        let field = |name: &str| r.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let kind = field("type").ok_or_else(|| invalid(&format!("receiver_list[{n}].type 缺失")))?;
        if !TYPES.contains(&kind) {
            return Err(invalid(&format!("receiver_list[{n}].type '{kind}' 不支持")));
        }
        let account = field("account").ok_or_else(|| invalid(&format!("receiver_list[{n}].account 缺失")))?;
        receivers.push((kind.to_string(), account.to_string()));
    }
    let bound = c.shared.books.relations.entry(c.app_id.to_string()).or_default();
    for r in receivers {
        if bind {
            bound.insert(r);
        } else {
            bound.remove(&r);
        }
    }
    Ok(success(json!({"result_code": "SUCCESS"})))
}

pub(super) fn settle(c: &mut Call<'_>) -> Answer {
    let out_request_no = required(c.biz, "out_request_no")?.to_string();
    required(c.biz, "trade_no")?;
    let params = c.biz.get("royalty_parameters").and_then(Value::as_array);
    let params = params.ok_or_else(|| invalid("royalty_parameters 必须是数组"))?;
    let mut receivers = Vec::new();
    for (n, p) in params.iter().enumerate() {
        let Some(p) = p.as_object() else {
            return Err(invalid(&format!("royalty_parameters[{n}] 不是对象")));
        };
        let kind = text(p, "trans_in_type").unwrap_or("userId");
        let trans_in = text(p, "trans_in").ok_or_else(|| invalid(&format!("royalty_parameters[{n}].trans_in 缺失")))?;
        let fen = amount(p, "amount").map_err(|_| invalid(&format!("royalty_parameters[{n}].amount 不合法")))?;
        receivers.push((kind.to_string(), trans_in.to_string(), fen));
    }
    let visible = c.shared.settings.visible_before_scan;
    let i = c.shared.books.visible(c.app_id, text(c.biz, "trade_no"), None, visible).map_err(business)?;
    let cap = c.shared.settings.royalty_max_ratio_bps;
    let settle_no = c.shared.books.settle(i, &out_request_no, receivers, cap, c.now).map_err(business)?;
    Ok(success(json!({"trade_no": c.shared.books.trades[i].trade_no, "settle_no": settle_no})))
}

/// `alipay.trade.order.settle.query` by out_request_no and trade_no (or settle_no): the settlement's details, each
/// SUCCESS here (the simulator settles synchronously). One it never took is 40004 ACQ.SETTLE_NOT_EXIST (the
/// simulator's name for it: paygate only tells it from ACQ.SYSTEM_ERROR, which means "ask again").
pub(super) fn settle_query(c: &mut Call<'_>) -> Answer {
    let settle_no = text(c.biz, "settle_no");
    let out_request_no = text(c.biz, "out_request_no");
    if settle_no.is_none() && (out_request_no.is_none() || text(c.biz, "trade_no").is_none()) {
        return Err(invalid("settle_no 或 (out_request_no 和 trade_no) 必须提供其一"));
    }
    let seller = seller_id(c);
    let books = &c.shared.books;
    let trades = books.trades.iter().filter(|t| t.app_id == c.app_id);
    let trades = trades.filter(|t| text(c.biz, "trade_no").is_none_or(|n| n == t.trade_no));
    let found = trades.flat_map(|t| t.settles.iter()).find(|s| match settle_no {
        Some(no) => s.settle_no == no,
        None => out_request_no == Some(s.out_request_no.as_str()),
    });
    let Some(settle) = found else {
        return Err(business(AliError { sub_code: "ACQ.SETTLE_NOT_EXIST", sub_msg: "分账请求不存在".into() }));
    };
    let at = format_timestamp(settle.at);
    let details: Vec<Value> = settle
        .receivers
        .iter()
        .enumerate()
        .map(|(n, (trans_in, fen))| {
            json!({"operation_type": "transfer", "execute_dt": at, "trans_out": seller, "trans_out_type": "userId",
                "trans_in": trans_in, "amount": format_yuan(*fen), "state": "SUCCESS",
                "detail_id": format!("{}{n:02}", settle.settle_no)})
        })
        .collect();
    Ok(success(json!({"out_request_no": settle.out_request_no, "operation_dt": at, "royalty_detail_list": details})))
}
