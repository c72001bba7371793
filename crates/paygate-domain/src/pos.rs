//! Point-of-sale money: the discount breakdown of seed 001 and the settlement of a payment
//! (channel fee, fee subsidy of seed 002, what the merchant receives). Pure arithmetic in fen.
//!
//! Definitions (one order of original amount `origin`):
//! - `kd` platform discount (酷点 funds it), `m` no-recharge discount (免充值: the merchant's own
//!   give-away, **not** in the merchant's receipts), `y` pre-recharge discount (预充值: funded from
//!   a budget the merchant paid in before, **counted** in receipts), `p` third-party/channel
//!   discount (红包, 集分宝, WeChat-funded coupons: the channel settles it, **counted**).
//! - `mch_discount = kd + m` (seed 001), `user_pay = origin − kd − m − y − p` (what the payer pays).
//! - `fee = origin − m`: the transaction total that settles through the channel
//!   (= user_pay + kd + y + p); the channel fee is charged on it, then the subsidy applies.
//! - `received = fee − real channel fee`.
//!
//! So `origin = user_pay + kd + m + y + p` and `fee = received + real_fee`: no fen is created or lost.

use crate::fees::{self, FeeRate};
use crate::{Amount, Problem};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discounts {
    pub kd: Amount,
    pub kd_desc: String,
    pub m: Amount,
    pub y: Amount,
    pub p: Amount,
    pub mch_desc: String,
}

impl Discounts {
    pub fn total(&self) -> Amount {
        Amount::from_stored(self.kd.fen() + self.m.fen() + self.y.fen() + self.p.fen())
    }

    /// The discounts must leave the payer at least one fen to pay.
    pub fn check(&self, origin: Amount) -> Result<(), Problem> {
        if self.total() >= origin {
            return Err(Problem::invalid(
                "discount_info",
                format!(
                    "The discounts ({} fen) must be less than the order amount ({} fen).",
                    self.total().fen(),
                    origin.fen()
                ),
            ));
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "mch_discount_fee": self.kd.fen() + self.m.fen(),
            "mch_discount_desc": self.mch_desc,
            "kd_discount_fee": self.kd.fen(),
            "kd_discount_desc": self.kd_desc,
            "m_discount_fee": self.m.fen(),
            "y_discount_fee": self.y.fen(),
            "p_discount_fee": self.p.fen(),
        })
    }

    pub fn from_json(v: &Value) -> Discounts {
        let fen = |k: &str| Amount::from_stored(v[k].as_i64().unwrap_or(0));
        Discounts {
            kd: fen("kd_discount_fee"),
            kd_desc: v["kd_discount_desc"].as_str().unwrap_or_default().to_string(),
            m: fen("m_discount_fee"),
            y: fen("y_discount_fee"),
            p: fen("p_discount_fee"),
            mch_desc: v["mch_discount_desc"].as_str().unwrap_or_default().to_string(),
        }
    }
}

/// A succeeded payment's money picture, stored with the charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub origin: Amount,
    pub user_pay: Amount,
    /// Settles through the channel: origin − no-recharge discount.
    pub fee_base: Amount,
    pub rate: FeeRate,
    pub channel: fees::FeeSettlement,
    pub pre_subsidy: Option<Amount>,
    pub subsidy_party: Option<String>,
    pub discounts: Discounts,
}

pub fn settle(
    origin: Amount,
    discounts: &Discounts,
    rate: FeeRate,
    pre_subsidy: Option<Amount>,
    subsidy_party: Option<String>,
) -> Settlement {
    let user_pay = origin.checked_sub(discounts.total()).unwrap_or(Amount::ZERO);
    let fee_base = origin.checked_sub(discounts.m).unwrap_or(Amount::ZERO);
    Settlement {
        origin,
        user_pay,
        fee_base,
        rate,
        channel: fees::settle(fee_base, rate, pre_subsidy),
        pre_subsidy,
        subsidy_party,
        discounts: discounts.clone(),
    }
}

impl Settlement {
    /// The settlement as the charge stores it (and [`Settlement::from_json`] reads back).
    pub fn to_json(&self) -> Value {
        json!({
            "origin_fee": self.origin.fen(),
            "user_pay_fee": self.user_pay.fen(),
            "fee": self.fee_base.fen(),
            "rate_bp": self.rate.bp(),
            "channel_fee": self.channel.fee.fen(),
            "pre_fee_subsidy": self.pre_subsidy.map(Amount::fen),
            "real_fee_subsidy": self.channel.real_subsidy.fen(),
            "real_fee": self.channel.real_fee.fen(),
            "received_fee": self.channel.received.fen(),
            "fee_subsidy_party": self.subsidy_party,
            "discount_info": self.discounts.to_json(),
        })
    }

    /// Reads back what [`Settlement::to_json`] stored; `None` for anything else.
    pub fn from_json(v: &Value) -> Option<Settlement> {
        let fen = |k: &str| v[k].as_i64().map(Amount::from_stored);
        Some(Settlement {
            origin: fen("origin_fee")?,
            user_pay: fen("user_pay_fee")?,
            fee_base: fen("fee")?,
            rate: FeeRate::basis_points("rate_bp", v["rate_bp"].as_i64()?).ok()?,
            channel: fees::FeeSettlement {
                fee: fen("channel_fee")?,
                real_subsidy: fen("real_fee_subsidy")?,
                real_fee: fen("real_fee")?,
                received: fen("received_fee")?,
            },
            pre_subsidy: fen("pre_fee_subsidy"),
            subsidy_party: v["fee_subsidy_party"].as_str().map(str::to_string),
            discounts: Discounts::from_json(&v["discount_info"]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(v: i64) -> Amount {
        Amount::from_stored(v)
    }

    #[test]
    fn seed_001_example_and_definitions() {
        // Seed 001: a 100-fen member-wallet payment with no discounts and no fee.
        let s = settle(fen(100), &Discounts::default(), FeeRate::basis_points("rate", 0).unwrap(), None, None);
        assert_eq!((s.origin, s.fee_base, s.user_pay, s.channel.received), (fen(100), fen(100), fen(100), fen(100)));
        // Every discount kind: m leaves the receipts, y, p and kd stay in them.
        let d = Discounts { kd: fen(100), m: fen(200), y: fen(300), p: fen(400), ..Default::default() };
        let s =
            settle(fen(10_000), &d, FeeRate::basis_points("rate", 60).unwrap(), Some(fen(20)), Some("provider".into()));
        assert_eq!(s.user_pay, fen(9_000));
        assert_eq!(s.fee_base, fen(9_800));
        assert_eq!(s.channel.fee, fen(59), "0.6 % of 98.00 yuan is 58.8 fen → 59");
        assert_eq!((s.channel.real_subsidy, s.channel.real_fee, s.channel.received), (fen(20), fen(39), fen(9_761)));
        assert_eq!(s.to_json()["discount_info"]["mch_discount_fee"], 300);
        assert_eq!(Settlement::from_json(&s.to_json()), Some(s.clone()), "stored and read back unchanged");
        assert_eq!(Settlement::from_json(&serde_json::json!({"fee": 1})), None);
    }

    /// A payment with every kind of discount (together less than what it costs), a fee rate and
    /// maybe a declared subsidy.
    fn payments() -> impl Strategy<Value = (Amount, Discounts, FeeRate, Option<Amount>)> {
        let origin = prop_oneof![1..=2_000i64, 1..=10_000_000i64];
        (origin, [any::<u64>(); 4], 0..=10_000i64, proptest::option::of(any::<u64>())).prop_map(
            |(origin, seeds, bp, pre)| {
                // Each discount takes part of what is left, so one fen is always paid.
                let mut left = origin - 1;
                let mut take = |seed: u64| {
                    let v = (seed % (left as u64 / 2 + 1)) as i64;
                    left -= v;
                    fen(v)
                };
                let d = Discounts {
                    kd: take(seeds[0]),
                    m: take(seeds[1]),
                    y: take(seeds[2]),
                    p: take(seeds[3]),
                    ..Default::default()
                };
                let pre = pre.map(|seed| fen((seed % (origin as u64 + 1)) as i64));
                (fen(origin), d, FeeRate::basis_points("rate", bp).unwrap(), pre)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]
        #[test]
        fn no_fen_is_created_or_lost_across_discounts_fees_and_subsidies((origin, d, rate, pre) in payments()) {
            prop_assert!(d.check(origin).is_ok());
            let s = settle(origin, &d, rate, pre, None);
            prop_assert_eq!(s.user_pay.fen() + d.kd.fen() + d.m.fen() + d.y.fen() + d.p.fen(), origin.fen());
            prop_assert_eq!(s.fee_base.fen(), s.user_pay.fen() + d.kd.fen() + d.y.fen() + d.p.fen());
            prop_assert_eq!(s.channel.received.fen() + s.channel.real_fee.fen(), s.fee_base.fen());
            prop_assert_eq!(s.channel.real_fee.fen() + s.channel.real_subsidy.fen(), s.channel.fee.fen());
            prop_assert!(s.user_pay >= fen(1));
        }
    }
}
