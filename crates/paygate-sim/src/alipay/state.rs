//! The simulator's books: trades, refunds, royalty relations and settlements per app, and Alipay's rules over
//! them. A refusal is an [`AliError`]: the 40004 `sub_code` and `sub_msg` Alipay answers with.

use super::config::App;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    WaitBuyerPay,
    Success,
    Closed,
    Finished,
}

impl TradeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::Success => "TRADE_SUCCESS",
            TradeStatus::Closed => "TRADE_CLOSED",
            TradeStatus::Finished => "TRADE_FINISHED",
        }
    }
}

/// How a trade was opened (Alipay's product).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Precreate,
    Wap,
    Page,
    App,
    Barcode,
}

/// A 40004 refusal: `sub_code`, `sub_msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliError {
    pub sub_code: &'static str,
    pub sub_msg: String,
}

pub fn refuse<T>(sub_code: &'static str, sub_msg: impl Into<String>) -> Result<T, AliError> {
    Err(AliError { sub_code, sub_msg: sub_msg.into() })
}

#[derive(Debug, Clone)]
pub struct RefundRec {
    pub out_request_no: String,
    pub amount: i64,
    pub reason: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct SettleRec {
    pub out_request_no: String,
    /// (trans_in, amount) as requested; the request's fingerprint for idempotency.
    pub receivers: Vec<(String, i64)>,
    pub settle_no: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct Trade {
    pub app_id: String,
    pub out_trade_no: String,
    pub trade_no: String,
    pub product: Product,
    pub total: i64,
    pub subject: String,
    pub body: String,
    pub notify_url: String,
    pub return_url: String,
    pub auth_code: String,
    pub buyer_id: String,
    pub buyer_logon_id: String,
    pub status: TradeStatus,
    /// Whether the buyer has scanned / logged in: until then Alipay does not know the trade (unless
    /// `visible_before_scan`).
    pub scanned: bool,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// Paid after the trade was closed (the payer API's `late`).
    pub late: bool,
    /// When an unpaid trade closes by itself (`timeout_express` / `time_expire`; Alipay's default: 15 days).
    pub expires_at: i64,
    pub refunds: Vec<RefundRec>,
    pub settles: Vec<SettleRec>,
}

/// Alipay's default life of an unpaid trade.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 15 * 86_400;

/// `timeout_express`: `Nm`, `Nh`, `Nd` (1 minute to 15 days), or `1c` (until the end of the Beijing day).
pub fn timeout_express(text: &str, now: i64) -> Option<i64> {
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    if n.is_empty() || n.len() > 5 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = n.parse().ok()?;
    let seconds = match unit {
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "c" if n == 1 => {
            let t = paygate_domain::BeijingTime::of(now);
            86_400 - (t.hour * 3600 + t.minute * 60 + t.second)
        }
        _ => return None,
    };
    (60..=DEFAULT_TIMEOUT_SECONDS).contains(&seconds).then_some(now + seconds)
}

impl Trade {
    pub fn refunded(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount).sum()
    }

    pub fn settled(&self) -> i64 {
        self.settles.iter().flat_map(|s| s.receivers.iter()).map(|(_, a)| *a).sum()
    }

    pub fn is_paid(&self) -> bool {
        self.paid_at.is_some()
    }
}

/// What a payment code (`auth_code`) does when charged by `alipay.trade.pay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Pay,
    /// 10003: the payer must confirm; the trade stays WAIT_BUYER_PAY.
    Wait,
    /// 40004 ACQ.PAYMENT_AUTH_CODE_INVALID.
    Fail,
}

#[derive(Debug, Default)]
pub struct Books {
    pub apps: HashMap<String, App>,
    pub trades: Vec<Trade>,
    /// Bound royalty receivers per app: (type, account).
    pub relations: HashMap<String, HashSet<(String, String)>>,
    pub codes: HashMap<String, CodeOutcome>,
    seq: u64,
}

impl Books {
    /// A new 28-digit Alipay-style number: date, then a running sequence.
    pub fn next_no(&mut self, now: i64, prefix: &str) -> String {
        self.seq += 1;
        let t = paygate_domain::BeijingTime::of(now);
        format!("{:04}{:02}{:02}{prefix}{:0>16}", t.year, t.month, t.day, self.seq)
    }

    /// trade_no wins over out_trade_no, as in `alipay.trade.query`.
    pub fn find_index(&self, app_id: &str, trade_no: Option<&str>, out_trade_no: Option<&str>) -> Option<usize> {
        match (trade_no.filter(|s| !s.is_empty()), out_trade_no.filter(|s| !s.is_empty())) {
            (Some(t), _) => self.trades.iter().position(|x| x.app_id == app_id && x.trade_no == t),
            (None, Some(o)) => self.trades.iter().position(|x| x.app_id == app_id && x.out_trade_no == o),
            (None, None) => None,
        }
    }

    /// A trade the caller may see: unknown, and not yet scanned (unless visible), are ACQ.TRADE_NOT_EXIST.
    pub fn visible(
        &self,
        app_id: &str,
        trade_no: Option<&str>,
        out_trade_no: Option<&str>,
        visible_before_scan: bool,
    ) -> Result<usize, AliError> {
        match self.find_index(app_id, trade_no, out_trade_no) {
            Some(i) if self.trades[i].scanned || visible_before_scan => Ok(i),
            _ => refuse("ACQ.TRADE_NOT_EXIST", "交易不存在"),
        }
    }

    /// Closes every waiting trade whose time is up (as of its deadline); answers those the buyer had seen, which
    /// Alipay notifies (one it never showed anyone just goes away).
    pub fn expire(&mut self, now: i64) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        for t in self.trades.iter_mut().filter(|t| t.status == TradeStatus::WaitBuyerPay && t.expires_at <= now) {
            t.status = TradeStatus::Closed;
            t.closed_at = Some(t.expires_at);
            if t.scanned {
                seen.push((t.app_id.clone(), t.trade_no.clone()));
            }
        }
        seen
    }

    pub fn mark_paid(trade: &mut Trade, now: i64) {
        trade.scanned = true;
        trade.status = TradeStatus::Success;
        trade.paid_at = Some(now);
        trade.buyer_id = "2088102177846880".into();
        trade.buyer_logon_id = "158****1562".into();
    }

    /// A refund under Alipay's rules: trade TRADE_SUCCESS, `out_request_no` (default: out_trade_no) idempotent
    /// for the same amount, total ≤ paid less settled. A full refund closes the trade. Answers whether money
    /// moved now (`fund_change`).
    pub fn refund(
        trade: &mut Trade,
        amount: i64,
        out_request_no: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, AliError> {
        if let Some(prev) = trade.refunds.iter().find(|r| r.out_request_no == out_request_no) {
            if prev.amount != amount {
                return refuse("ACQ.DISCORDANT_REPEAT_REQUEST", "请求重复且参数不一致");
            }
            return Ok(false);
        }
        if amount <= 0 {
            return refuse("ACQ.INVALID_PARAMETER", "refund_amount 必须大于0");
        }
        if trade.status != TradeStatus::Success {
            return refuse("ACQ.TRADE_STATUS_ERROR", format!("交易状态不合法: {}", trade.status.as_str()));
        }
        let refundable = trade.total - trade.refunded() - trade.settled();
        if amount > refundable {
            return refuse("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限");
        }
        trade.refunds.push(RefundRec {
            out_request_no: out_request_no.to_string(),
            amount,
            reason: reason.to_string(),
            at: now,
        });
        if trade.refunded() == trade.total {
            trade.status = TradeStatus::Closed;
            trade.closed_at = Some(now);
        }
        Ok(true)
    }

    /// Royalty settlement: trade paid (TRADE_SUCCESS), every receiver bound, ≤ 5 receivers, the cap over paid
    /// less refunded; the same `out_request_no` with the same receivers answers the first settle_no.
    pub fn settle(
        &mut self,
        i: usize,
        out_request_no: &str,
        receivers: Vec<(String, String, i64)>,
        cap_bps: i64,
        now: i64,
    ) -> Result<String, AliError> {
        let fingerprint: Vec<(String, i64)> = receivers.iter().map(|(_, acc, a)| (acc.clone(), *a)).collect();
        if let Some(prev) = self.trades[i].settles.iter().find(|s| s.out_request_no == out_request_no) {
            if prev.receivers != fingerprint {
                return refuse("ACQ.DISCORDANT_REPEAT_REQUEST", "请求重复且参数不一致");
            }
            return Ok(prev.settle_no.clone());
        }
        if receivers.is_empty() || receivers.len() > 5 {
            return refuse("ACQ.INVALID_PARAMETER", "royalty_parameters 需要1到5个分账接收方");
        }
        let trade = &self.trades[i];
        if trade.status != TradeStatus::Success {
            return refuse("ACQ.TRADE_STATUS_ERROR", format!("交易状态不合法: {}", trade.status.as_str()));
        }
        let bound = self.relations.get(&trade.app_id);
        for (kind, account, amount) in &receivers {
            if *amount <= 0 {
                return refuse("ACQ.INVALID_PARAMETER", format!("分账金额必须大于0: {account}"));
            }
            if !bound.is_some_and(|b| b.contains(&(kind.clone(), account.clone()))) {
                return refuse("ACQ.ROYALTY_RECEIVER_NOT_BIND", format!("分账接收方未绑定: {account}"));
            }
        }
        let asked: i64 = fingerprint.iter().map(|(_, a)| *a).sum();
        let base = trade.total - trade.refunded();
        // (settled + asked) / base ≤ cap, in integers.
        let total = trade.settled().checked_add(asked).unwrap_or(i64::MAX);
        if total.checked_mul(10_000).is_none_or(|lhs| lhs > base.saturating_mul(cap_bps)) {
            return refuse("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", format!("分账金额超过最大可分账比例 {}%", cap_bps / 100));
        }
        let settle_no = self.next_no(now, "SE");
        self.trades[i].settles.push(SettleRec {
            out_request_no: out_request_no.to_string(),
            receivers: fingerprint,
            settle_no: settle_no.clone(),
            at: now,
        });
        Ok(settle_no)
    }
}
