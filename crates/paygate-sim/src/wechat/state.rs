//! The simulator's books: orders and refunds per merchant, and WeChat's rules over them, shared by v2 and v3.
//! Errors carry WeChat's v2 `err_code` and the v3 status and code the same refusal gets.

use super::config::{Merchant, Settings};
use paygate_channels::wechat::v2::SignType;
use std::collections::HashMap;

/// The most partial refunds one order may have.
pub const MAX_REFUNDS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2,
    V3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeState {
    NotPay,
    UserPaying,
    Success,
    Refund,
    Closed,
    /// Reversed (`/secapi/pay/reverse`): closed, or paid and the money sent back.
    Revoked,
    PayError,
}

impl TradeState {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::NotPay => "NOTPAY",
            TradeState::UserPaying => "USERPAYING",
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::Closed => "CLOSED",
            TradeState::Revoked => "REVOKED",
            TradeState::PayError => "PAYERROR",
        }
    }

    pub fn desc(self) -> &'static str {
        match self {
            TradeState::NotPay => "订单未支付",
            TradeState::UserPaying => "需要用户输入支付密码",
            TradeState::Success => "支付成功",
            TradeState::Refund => "转入退款",
            TradeState::Closed => "订单已关闭",
            TradeState::Revoked => "已撤销",
            TradeState::PayError => "支付失败",
        }
    }

    fn paid(self) -> bool {
        matches!(self, TradeState::Success | TradeState::Refund)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Processing,
    Success,
    Closed,
    Abnormal,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Closed => "CLOSED",
            // v2 names the abnormal state CHANGE.
            RefundStatus::Abnormal => "ABNORMAL",
        }
    }

    pub fn parse(s: &str) -> Option<RefundStatus> {
        match s {
            "PROCESSING" => Some(RefundStatus::Processing),
            "SUCCESS" => Some(RefundStatus::Success),
            "CLOSED" | "REFUNDCLOSE" => Some(RefundStatus::Closed),
            "ABNORMAL" | "CHANGE" => Some(RefundStatus::Abnormal),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Order {
    pub api: Api,
    pub mch_id: String,
    pub appid: String,
    pub out_trade_no: String,
    /// Assigned at creation, shown only once paid (as WeChat assigns it at payment).
    pub transaction_id: String,
    pub sign_type: SignType,
    pub trade_type: String,
    pub total: i64,
    pub description: String,
    pub attach: String,
    pub notify_url: String,
    pub openid: String,
    pub prepay_id: String,
    pub created_at: i64,
    pub state: TradeState,
    pub paid_at: Option<i64>,
    pub profit_sharing: bool,
    pub refunds: Vec<Refund>,
}

impl Order {
    pub fn refunded(&self) -> i64 {
        self.refunds.iter().filter(|r| r.status != RefundStatus::Closed).map(|r| r.amount).sum()
    }

    pub fn is_paid(&self) -> bool {
        self.state.paid()
    }
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub api: Api,
    pub out_refund_no: String,
    pub refund_id: String,
    pub amount: i64,
    pub status: RefundStatus,
    pub created_at: i64,
    pub success_at: Option<i64>,
    pub notify_url: String,
    pub reason: String,
}

/// A refusal, as both protocol versions render it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BizError {
    /// v2 `err_code`.
    pub code: &'static str,
    /// v3 HTTP status.
    pub status: u16,
    /// v3 `code`.
    pub v3_code: &'static str,
    pub message: String,
}

impl BizError {
    pub fn new(code: &'static str, status: u16, v3_code: &'static str, message: impl Into<String>) -> BizError {
        BizError { code, status, v3_code, message: message.into() }
    }

    pub fn param(message: impl Into<String>) -> BizError {
        BizError::new("PARAM_ERROR", 400, "PARAM_ERROR", message)
    }

    pub fn not_found() -> BizError {
        BizError::new("ORDERNOTEXIST", 404, "ORDER_NOT_EXIST", "订单不存在")
    }
}

/// What a new order needs.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub api: Api,
    pub mch_id: String,
    pub appid: String,
    pub out_trade_no: String,
    pub sign_type: SignType,
    pub trade_type: String,
    pub total: i64,
    pub description: String,
    pub attach: String,
    pub notify_url: String,
    pub openid: String,
    pub profit_sharing: bool,
}

/// What a refund request names.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub api: Api,
    pub mch_id: String,
    pub transaction_id: Option<String>,
    pub out_trade_no: Option<String>,
    pub out_refund_no: String,
    pub total: i64,
    pub amount: i64,
    pub notify_url: String,
    pub reason: String,
}

/// Something to tell the merchant: built into a notification by the order's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Paid { mch_id: String, out_trade_no: String },
    Refunded { mch_id: String, out_trade_no: String, out_refund_no: String },
}

/// What a test told the simulator a payment code does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Success,
    UserPaying,
    Fail,
}

#[derive(Default)]
pub struct Books {
    pub merchants: HashMap<String, Merchant>,
    orders: HashMap<(String, String), Order>,
    by_transaction: HashMap<String, (String, String)>,
    /// (mch_id, out_refund_no) → the order's key; refund ids map the same way.
    by_refund: HashMap<(String, String), (String, String)>,
    pub codes: HashMap<String, CodeOutcome>,
    seq: u64,
}

fn key(mch_id: &str, out_trade_no: &str) -> (String, String) {
    (mch_id.to_string(), out_trade_no.to_string())
}

impl Books {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn order(&self, mch_id: &str, out_trade_no: &str) -> Option<&Order> {
        self.orders.get(&key(mch_id, out_trade_no))
    }

    /// An order by transaction id or merchant order number (the transaction id wins, as at WeChat).
    pub fn find(&self, mch_id: &str, transaction_id: Option<&str>, out_trade_no: Option<&str>) -> Option<&Order> {
        let found = match (transaction_id.filter(|t| !t.is_empty()), out_trade_no.filter(|o| !o.is_empty())) {
            (Some(t), _) => self.by_transaction.get(t).and_then(|k| self.orders.get(k)),
            (None, Some(o)) => self.orders.get(&key(mch_id, o)),
            (None, None) => None,
        };
        found.filter(|o| o.mch_id == mch_id)
    }

    fn find_mut(
        &mut self,
        mch_id: &str,
        transaction_id: Option<&str>,
        out_trade_no: Option<&str>,
    ) -> Option<&mut Order> {
        let k = self.find(mch_id, transaction_id, out_trade_no).map(|o| key(&o.mch_id, &o.out_trade_no))?;
        self.orders.get_mut(&k)
    }

    /// The order holding a refund, by out_refund_no or refund_id.
    pub fn find_by_refund(&self, mch_id: &str, refund_no: &str) -> Option<&Order> {
        let k = self.by_refund.get(&key(mch_id, refund_no))?;
        self.orders.get(k)
    }

    pub fn create(&mut self, new: NewOrder, now: i64) -> Result<&Order, BizError> {
        if new.total <= 0 {
            return Err(BizError::param("total_fee/amount.total must be a positive integer of fen"));
        }
        let k = key(&new.mch_id, &new.out_trade_no);
        if let Some(existing) = self.orders.get(&k) {
            return match existing.state {
                TradeState::Success | TradeState::Refund => {
                    Err(BizError::new("ORDERPAID", 400, "ORDER_PAID", "该订单已支付"))
                }
                TradeState::Closed | TradeState::Revoked => {
                    Err(BizError::new("ORDERCLOSED", 400, "ORDER_CLOSED", "该订单已关闭"))
                }
                _ if existing.total != new.total || existing.trade_type != new.trade_type => {
                    Err(BizError::new("OUT_TRADE_NO_USED", 400, "OUT_TRADE_NO_USED", "商户订单号重复"))
                }
                // The same order again: WeChat answers the same prepay id.
                _ => Ok(self.orders.get(&k).ok_or_else(BizError::not_found)?),
            };
        }
        let n = self.next();
        let stamp = paygate_domain::BeijingTime::of(now).compact();
        let order = Order {
            api: new.api,
            transaction_id: format!("4200{stamp}{n:010}"),
            prepay_id: format!("wx{stamp}{n:016}"),
            mch_id: new.mch_id,
            appid: new.appid,
            out_trade_no: new.out_trade_no,
            sign_type: new.sign_type,
            trade_type: new.trade_type,
            total: new.total,
            description: new.description,
            attach: new.attach,
            notify_url: new.notify_url,
            openid: if new.openid.is_empty() { format!("oSIM{n:024}") } else { new.openid },
            created_at: now,
            state: TradeState::NotPay,
            paid_at: None,
            profit_sharing: new.profit_sharing,
            refunds: Vec::new(),
        };
        self.by_transaction.insert(order.transaction_id.clone(), k.clone());
        Ok(self.orders.entry(k).or_insert(order))
    }

    /// The payer pays. `late` lets a closed order be paid (the paid-after-close path).
    pub fn pay(
        &mut self,
        mch_id: &str,
        tx: Option<&str>,
        no: Option<&str>,
        late: bool,
        now: i64,
    ) -> Result<Event, BizError> {
        let order = self.find_mut(mch_id, tx, no).ok_or_else(BizError::not_found)?;
        match order.state {
            TradeState::NotPay | TradeState::UserPaying | TradeState::PayError => {}
            TradeState::Closed | TradeState::Revoked if late => {}
            TradeState::Closed | TradeState::Revoked => {
                return Err(BizError::new("ORDERCLOSED", 400, "ORDER_CLOSED", "该订单已关闭"))
            }
            TradeState::Success | TradeState::Refund => {
                return Err(BizError::new("ORDERPAID", 400, "ORDER_PAID", "该订单已支付"))
            }
        }
        order.state = TradeState::Success;
        order.paid_at = Some(now);
        Ok(Event::Paid { mch_id: order.mch_id.clone(), out_trade_no: order.out_trade_no.clone() })
    }

    /// Sets an unpaid order's state (USERPAYING, PAYERROR) as the payer's side would.
    pub fn set_unpaid_state(
        &mut self,
        mch_id: &str,
        tx: Option<&str>,
        no: Option<&str>,
        state: TradeState,
    ) -> Result<(), BizError> {
        let order = self.find_mut(mch_id, tx, no).ok_or_else(BizError::not_found)?;
        if order.is_paid() {
            return Err(BizError::new("ORDERPAID", 400, "ORDER_PAID", "该订单已支付"));
        }
        order.state = state;
        Ok(())
    }

    pub fn close(&mut self, mch_id: &str, no: &str, now: i64, settings: &Settings) -> Result<(), BizError> {
        let order = self.find_mut(mch_id, None, Some(no)).ok_or_else(BizError::not_found)?;
        match order.state {
            TradeState::Success | TradeState::Refund => {
                return Err(BizError::new("ORDERPAID", 400, "ORDER_PAID", "订单已支付，不能发起关单"))
            }
            TradeState::Closed | TradeState::Revoked => return Ok(()),
            _ => {}
        }
        if now - order.created_at < settings.close_min_age_seconds {
            return Err(BizError::new(
                "INVALID_REQUEST",
                400,
                "INVALID_REQUEST",
                format!("订单生成后不能马上调用关单接口，最短调用时间间隔为{}秒", settings.close_min_age_seconds),
            ));
        }
        order.state = TradeState::Closed;
        Ok(())
    }

    /// `/secapi/pay/reverse` of a payment-code order: unpaid, it is closed; paid, the rest of its money goes back.
    /// Answers whether to call again (`recall`, always false here: the simulator reverses at once).
    pub fn reverse(&mut self, mch_id: &str, tx: Option<&str>, no: Option<&str>, now: i64) -> Result<bool, BizError> {
        let n = self.next();
        let order = self.find_mut(mch_id, tx, no).ok_or_else(BizError::not_found)?;
        if order.trade_type != "MICROPAY" {
            return Err(BizError::new("INVALID_REQUEST", 400, "INVALID_REQUEST", "只有付款码支付的订单可以撤销"));
        }
        if now - order.created_at > 7 * 86_400 {
            return Err(BizError::new("REVERSE_EXPIRE", 400, "REVERSE_EXPIRE", "订单已超过撤销期限"));
        }
        let rest = order.total - order.refunded();
        if order.is_paid() && rest > 0 {
            let stamp = paygate_domain::BeijingTime::of(now).compact();
            order.refunds.push(Refund {
                api: order.api,
                out_refund_no: format!("REVERSE{}", order.out_trade_no),
                refund_id: format!("5030{stamp}{n:011}"),
                amount: rest,
                status: RefundStatus::Success,
                created_at: now,
                success_at: Some(now),
                notify_url: String::new(),
                reason: "reverse".into(),
            });
        }
        order.state = TradeState::Revoked;
        Ok(false)
    }

    /// Accepts a refund (or answers the one already made under this out_refund_no). The event is there when it
    /// succeeded at once.
    pub fn refund(
        &mut self,
        req: NewRefund,
        now: i64,
        settings: &Settings,
    ) -> Result<(Refund, Option<Event>), BizError> {
        if req.out_refund_no.is_empty() {
            return Err(BizError::param("out_refund_no is required"));
        }
        let n = self.next();
        let order = self
            .find_mut(&req.mch_id, req.transaction_id.as_deref(), req.out_trade_no.as_deref())
            .ok_or_else(BizError::not_found)?;
        if let Some(existing) = order.refunds.iter().find(|r| r.out_refund_no == req.out_refund_no) {
            if existing.amount != req.amount {
                return Err(BizError::new("INVALID_REQUEST", 400, "INVALID_REQUEST", "退款单号已存在，退款金额不一致"));
            }
            return Ok((existing.clone(), None));
        }
        if !order.is_paid() {
            return Err(BizError::new("TRADE_STATE_ERROR", 403, "TRADE_STATE_ERROR", "订单未支付，不能退款"));
        }
        if req.total != order.total {
            return Err(BizError::new("INVALID_REQUEST", 400, "INVALID_REQUEST", "订单金额与原订单金额不一致"));
        }
        if req.amount <= 0 {
            return Err(BizError::param("refund amount must be a positive integer of fen"));
        }
        if req.amount > order.total - order.refunded() {
            return Err(BizError::new("INVALID_REQUEST", 400, "INVALID_REQUEST", "申请退款金额超过订单可退金额"));
        }
        if order.refunds.len() >= MAX_REFUNDS {
            return Err(BizError::new("INVALID_REQUEST", 400, "INVALID_REQUEST", "订单已经超过可退款的最大限制次数"));
        }
        let stamp = paygate_domain::BeijingTime::of(now).compact();
        let refund = Refund {
            api: req.api,
            out_refund_no: req.out_refund_no,
            refund_id: format!("5030{stamp}{n:011}"),
            amount: req.amount,
            status: if settings.hold_refunds { RefundStatus::Processing } else { RefundStatus::Success },
            created_at: now,
            success_at: (!settings.hold_refunds).then_some(now),
            notify_url: req.notify_url,
            reason: req.reason,
        };
        order.refunds.push(refund.clone());
        order.state = TradeState::Refund;
        let order_key = key(&order.mch_id, &order.out_trade_no);
        let event = (refund.status == RefundStatus::Success).then(|| Event::Refunded {
            mch_id: order_key.0.clone(),
            out_trade_no: order_key.1.clone(),
            out_refund_no: refund.out_refund_no.clone(),
        });
        self.by_refund.insert(key(&order_key.0, &refund.out_refund_no), order_key.clone());
        self.by_refund.insert(key(&order_key.0, &refund.refund_id), order_key);
        Ok((refund, event))
    }

    /// Settles a PROCESSING refund as SUCCESS, CLOSED or ABNORMAL.
    pub fn settle_refund(
        &mut self,
        mch_id: &str,
        refund_no: &str,
        status: RefundStatus,
        now: i64,
    ) -> Result<Option<Event>, BizError> {
        let k = self
            .by_refund
            .get(&key(mch_id, refund_no))
            .cloned()
            .ok_or_else(|| BizError::new("REFUNDNOTEXIST", 404, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
        let order = self.orders.get_mut(&k).ok_or_else(BizError::not_found)?;
        let refund = order
            .refunds
            .iter_mut()
            .find(|r| r.out_refund_no == refund_no || r.refund_id == refund_no)
            .ok_or_else(|| BizError::new("REFUNDNOTEXIST", 404, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
        if refund.status != RefundStatus::Processing {
            return Err(BizError::new("INVALID_REQUEST", 400, "INVALID_REQUEST", "退款单已处理完毕"));
        }
        refund.status = status;
        if status == RefundStatus::Success {
            refund.success_at = Some(now);
        }
        Ok(Some(Event::Refunded {
            mch_id: k.0.clone(),
            out_trade_no: k.1.clone(),
            out_refund_no: refund.out_refund_no.clone(),
        }))
    }

    /// Every order, for `/sim` listings.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// The order a NATIVE `code_url` (`weixin://wxpay/bizpayurl?pr=…`) was made for: `pr` is its prepay id less
    /// the `wx` prefix.
    pub fn find_by_code_url(&self, mch_id: &str, code_url: &str) -> Option<&Order> {
        let pr = code_url.strip_prefix("weixin://wxpay/bizpayurl?pr=").filter(|pr| !pr.is_empty())?;
        self.orders.values().find(|o| o.mch_id == mch_id && o.prepay_id.strip_prefix("wx") == Some(pr))
    }

    /// Adds already-paid NATIVE v2 orders at once (`/sim/wechat/bills/seed`), without notifications: all of them,
    /// or none when an out_trade_no or transaction_id is taken.
    pub fn seed_paid(&mut self, mch_id: &str, appid: &str, rows: Vec<crate::recon::SeedRow>) -> Result<usize, String> {
        for r in &rows {
            if self.orders.contains_key(&key(mch_id, &r.out_trade_no)) {
                return Err(format!("out_trade_no {} already exists", r.out_trade_no));
            }
            if r.channel_no.as_ref().is_some_and(|t| self.by_transaction.contains_key(t)) {
                return Err(format!("transaction_id {} already exists", r.channel_no.as_deref().unwrap_or("")));
            }
        }
        let count = rows.len();
        self.orders.reserve(count);
        self.by_transaction.reserve(count);
        for r in rows {
            let n = self.next();
            let stamp = paygate_domain::BeijingTime::of(r.paid_at).compact();
            let transaction_id = r.channel_no.unwrap_or_else(|| format!("4200{stamp}{n:010}"));
            let k = key(mch_id, &r.out_trade_no);
            self.by_transaction.insert(transaction_id.clone(), k.clone());
            self.orders.insert(
                k,
                Order {
                    api: Api::V2,
                    mch_id: mch_id.to_string(),
                    appid: appid.to_string(),
                    out_trade_no: r.out_trade_no,
                    transaction_id,
                    sign_type: SignType::Md5,
                    trade_type: "NATIVE".into(),
                    total: r.amount,
                    description: String::new(),
                    attach: String::new(),
                    notify_url: String::new(),
                    openid: format!("oSIM{n:024}"),
                    prepay_id: format!("wx{stamp}{n:016}"),
                    created_at: r.paid_at,
                    state: TradeState::Success,
                    paid_at: Some(r.paid_at),
                    profit_sharing: false,
                    refunds: Vec::new(),
                },
            );
        }
        Ok(count)
    }
}
