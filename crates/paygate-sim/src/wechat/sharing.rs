//! Profit sharing books and rules, shared by v2 and v3: receivers must be added first, shares of one order stay
//! within the cap (default 30 % of what was paid less refunds), ≤ 50 receivers per request and ≤ 50 requests per
//! order, the same out_order_no is the same request, a single share or a finish unfreezes the rest, returns never
//! exceed what a receiver got.

use super::state::{BizError, Order};
use std::collections::HashMap;

pub const MAX_RECEIVERS: usize = 50;
pub const MAX_REQUESTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub kind: String,
    pub account: String,
    pub name: String,
    pub relation_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLine {
    pub kind: String,
    pub account: String,
    pub amount: i64,
    pub description: String,
    pub detail_id: String,
    pub returned: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// Shares and unfreezes the rest.
    Single,
    /// Shares; the rest stays frozen.
    Multi,
    /// Unfreezes the rest.
    Finish,
}

#[derive(Debug, Clone)]
pub struct ShareOrder {
    pub mch_id: String,
    pub transaction_id: String,
    pub out_order_no: String,
    pub order_id: String,
    pub kind: ShareKind,
    pub lines: Vec<ShareLine>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ShareReturn {
    pub out_return_no: String,
    pub return_no: String,
    pub order_id: String,
    pub out_order_no: String,
    pub return_account: String,
    pub amount: i64,
    pub description: String,
    pub created_at: i64,
}

/// A share request's receivers as the protocol carries them.
#[derive(Debug, Clone)]
pub struct ShareRequest {
    pub out_order_no: String,
    pub kind: ShareKind,
    pub lines: Vec<(String, String, i64, String)>,
}

#[derive(Default)]
pub struct Sharing {
    receivers: HashMap<String, Vec<Receiver>>,
    orders: HashMap<(String, String), ShareOrder>,
    returns: HashMap<(String, String), ShareReturn>,
    seq: u64,
}

fn bad(code: &'static str, status: u16, message: impl Into<String>) -> BizError {
    BizError::new(code, status, code, message)
}

impl Sharing {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn add_receiver(&mut self, mch_id: &str, r: Receiver) -> Result<(), BizError> {
        if !["MERCHANT_ID", "PERSONAL_OPENID", "PERSONAL_SUB_OPENID"].contains(&r.kind.as_str()) || r.account.is_empty()
        {
            return Err(BizError::param("receiver.type 必须是 MERCHANT_ID, PERSONAL_OPENID 或 PERSONAL_SUB_OPENID"));
        }
        let list = self.receivers.entry(mch_id.to_string()).or_default();
        list.retain(|x| !(x.kind == r.kind && x.account == r.account));
        list.push(r);
        Ok(())
    }

    pub fn remove_receiver(&mut self, mch_id: &str, kind: &str, account: &str) -> bool {
        let list = self.receivers.entry(mch_id.to_string()).or_default();
        let before = list.len();
        list.retain(|x| !(x.kind == kind && x.account == account));
        list.len() != before
    }

    fn shares_of<'a>(&'a self, mch_id: &'a str, tx: &'a str) -> impl Iterator<Item = &'a ShareOrder> + 'a {
        self.orders.values().filter(move |s| s.mch_id == mch_id && s.transaction_id == tx)
    }

    pub fn finished(&self, mch_id: &str, tx: &str) -> bool {
        self.shares_of(mch_id, tx).any(|s| s.kind != ShareKind::Multi)
    }

    pub fn find(&self, mch_id: &str, out_order_no: &str) -> Option<&ShareOrder> {
        self.orders.get(&(mch_id.to_string(), out_order_no.to_string()))
    }

    pub fn find_by_order_id(&self, mch_id: &str, order_id: &str) -> Option<&ShareOrder> {
        self.orders.values().find(|s| s.mch_id == mch_id && s.order_id == order_id)
    }

    /// Shares (or finishes) a paid order; the same out_order_no answers the first request's result.
    pub fn share(&mut self, order: &Order, req: ShareRequest, cap_bps: i64, now: i64) -> Result<&ShareOrder, BizError> {
        let mch_id = order.mch_id.clone();
        let key = (mch_id.clone(), req.out_order_no.clone());
        if self.orders.contains_key(&key) {
            return self.orders.get(&key).ok_or_else(BizError::not_found);
        }
        if !order.profit_sharing {
            return Err(bad("ORDER_NOT_READY", 403, "订单下单时未指定需要分账（profit_sharing=Y）"));
        }
        if !order.is_paid() {
            return Err(bad("ORDER_NOT_READY", 403, "订单处理中，暂时无法分账"));
        }
        if self.finished(&mch_id, &order.transaction_id) {
            return Err(bad("INVALID_REQUEST", 400, "该订单已完结分账，剩余资金已解冻"));
        }
        if self.shares_of(&mch_id, &order.transaction_id).count() >= MAX_REQUESTS {
            return Err(bad("INVALID_REQUEST", 400, "该订单分账请求次数已达上限"));
        }
        if req.lines.len() > MAX_RECEIVERS || (req.kind != ShareKind::Finish && req.lines.is_empty()) {
            return Err(BizError::param(format!("分账接收方数量必须在1到{MAX_RECEIVERS}之间")));
        }
        let added = self.receivers.get(&mch_id).cloned().unwrap_or_default();
        for (kind, account, amount, _) in &req.lines {
            if *amount <= 0 {
                return Err(BizError::param("receivers.amount 必须是正整数"));
            }
            if req.kind != ShareKind::Finish && !added.iter().any(|r| &r.kind == kind && &r.account == account) {
                return Err(bad(
                    "RECEIVER_INVALID",
                    400,
                    format!("分账接收方{account}不存在，需要先添加分账接收方才能分账"),
                ));
            }
        }
        let already: i64 =
            self.shares_of(&mch_id, &order.transaction_id).flat_map(|s| &s.lines).map(|l| l.amount).sum();
        let this: i64 = req.lines.iter().map(|l| l.2).sum();
        let base = order.total - order.refunded();
        if req.kind != ShareKind::Finish && (already + this) * 10_000 > base * cap_bps {
            return Err(bad("INVALID_REQUEST", 400, format!("分账金额超出最大分账比例（{}%）", cap_bps / 100)));
        }
        let n = self.next();
        let stamp = paygate_domain::BeijingTime::of(now).compact();
        let share = ShareOrder {
            mch_id,
            transaction_id: order.transaction_id.clone(),
            out_order_no: req.out_order_no,
            order_id: format!("3008{stamp}{n:012}"),
            kind: req.kind,
            lines: req
                .lines
                .into_iter()
                .enumerate()
                .map(|(i, (kind, account, amount, description))| ShareLine {
                    kind,
                    account,
                    amount,
                    description,
                    detail_id: format!("3601{stamp}{n:08}{i:04}"),
                    returned: 0,
                })
                .collect(),
            created_at: now,
        };
        Ok(self.orders.entry(key).or_insert(share))
    }

    /// Takes money back from a receiver of a share (by out_order_no or order_id); the same out_return_no answers
    /// the first result.
    #[allow(clippy::too_many_arguments)]
    pub fn give_back(
        &mut self,
        mch_id: &str,
        share_ref: &str,
        out_return_no: &str,
        account: &str,
        amount: i64,
        description: &str,
        now: i64,
    ) -> Result<&ShareReturn, BizError> {
        let rkey = (mch_id.to_string(), out_return_no.to_string());
        if self.returns.contains_key(&rkey) {
            return self.returns.get(&rkey).ok_or_else(BizError::not_found);
        }
        if amount <= 0 {
            return Err(BizError::param("return_amount 必须是正整数"));
        }
        let n = self.next();
        let share = self
            .orders
            .values_mut()
            .find(|s| s.mch_id == mch_id && (s.out_order_no == share_ref || s.order_id == share_ref))
            .ok_or_else(|| bad("RESOURCE_NOT_EXISTS", 404, "分账单不存在"))?;
        if now - share.created_at > 180 * 86_400 {
            return Err(bad("INVALID_REQUEST", 400, "分账回退只能在分账后180天内发起"));
        }
        let line = share
            .lines
            .iter_mut()
            .find(|l| l.account == account)
            .ok_or_else(|| BizError::param(format!("{account}不是该分账单的接收方")))?;
        if line.returned + amount > line.amount {
            return Err(bad("INVALID_REQUEST", 400, "回退金额超过该接收方分得的金额"));
        }
        line.returned += amount;
        let (order_id, out_order_no) = (share.order_id.clone(), share.out_order_no.clone());
        let stamp = paygate_domain::BeijingTime::of(now).compact();
        let back = ShareReturn {
            out_return_no: out_return_no.to_string(),
            return_no: format!("3009{stamp}{n:012}"),
            order_id,
            out_order_no,
            return_account: account.to_string(),
            amount,
            description: description.to_string(),
            created_at: now,
        };
        Ok(self.returns.entry(rkey).or_insert(back))
    }

    pub fn find_return(&self, mch_id: &str, out_return_no: &str) -> Option<&ShareReturn> {
        self.returns.get(&(mch_id.to_string(), out_return_no.to_string()))
    }

    /// What is left to share or unfreeze on an order.
    pub fn unsplit(&self, order: &Order) -> i64 {
        let shared: i64 =
            self.shares_of(&order.mch_id, &order.transaction_id).flat_map(|s| &s.lines).map(|l| l.amount).sum();
        order.total - order.refunded() - shared
    }
}
