//! Channel fees and fee subsidies (seed 002), in fen. Computed when a payment succeeds
//! (`pos::settle`) and shown by the cashier and SaaS WeChat-Pay query faces.
//!
//! Rules:
//! - A rate is in basis points (1 bp = 0.01 %; WeChat's usual 0.6 % is 60 bp), 0..=10 000.
//! - **Rounding**: the fee is `amount × rate`, rounded half up to the fen (四舍五入), as the
//!   Chinese channels settle it.
//! - **Subsidy** (seed 002): a service provider may pre-declare a subsidy for an order; the real
//!   subsidy is `min(pre-declared, fee)` and the merchant's real fee is `fee − real subsidy`.
//!   The merchant receives `amount − real fee`.
//! - **Refunds** never compute a fee on the refunded part: after any refunds the fee state is the
//!   settlement of what remains paid, and what a refund returns is the difference. Partial refunds
//!   therefore telescope: together they return exactly the original fee and subsidy.

use crate::{Amount, Problem};

pub const BASIS_POINTS_PER_UNIT: i64 = 10_000;

/// The families a fee rate is set for.
pub const FAMILIES: &[&str] = &["wechat", "alipay", "balance", "other"];

/// Which fee rate a Ping++ channel name pays.
pub fn family(channel: &str) -> &'static str {
    if crate::shares::is_wechat_channel(channel) {
        "wechat"
    } else if crate::shares::is_alipay_channel(channel) {
        "alipay"
    } else if channel == "balance" {
        "balance"
    } else {
        "other"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRate(i64);

impl FeeRate {
    pub fn basis_points(param: &str, bp: i64) -> Result<FeeRate, Problem> {
        if !(0..=BASIS_POINTS_PER_UNIT).contains(&bp) {
            return Err(Problem::invalid(
                param,
                format!("{param} must be 0 to 10000 basis points (0 % to 100 %), got {bp}."),
            ));
        }
        Ok(FeeRate(bp))
    }

    pub fn bp(self) -> i64 {
        self.0
    }

    /// As a percentage with two decimals, e.g. `0.60%` (how the SaaS query face shows `rate`).
    pub fn percent(self) -> String {
        format!("{}.{:02}%", self.0 / 100, self.0 % 100)
    }
}

/// `amount × rate`, rounded half up to the fen.
pub fn fee(amount: Amount, rate: FeeRate) -> Amount {
    // amount ≤ 10¹⁰ and rate ≤ 10⁴, so the product stays far inside i64.
    Amount::from_stored((amount.fen() * rate.0 + BASIS_POINTS_PER_UNIT / 2) / BASIS_POINTS_PER_UNIT)
}

/// One payment's fee picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeeSettlement {
    /// The fee the channel charges at the rate.
    pub fee: Amount,
    /// What the subsidising party actually pays: min(pre-declared, fee).
    pub real_subsidy: Amount,
    /// What the merchant pays: fee − real subsidy.
    pub real_fee: Amount,
    /// What the merchant receives: amount − real fee.
    pub received: Amount,
}

pub fn settle(amount: Amount, rate: FeeRate, pre_subsidy: Option<Amount>) -> FeeSettlement {
    let fee = fee(amount, rate);
    let real_subsidy = pre_subsidy.unwrap_or(Amount::ZERO).min(fee);
    let real_fee = fee.checked_sub(real_subsidy).expect("subsidy is at most the fee");
    let received = amount.checked_sub(real_fee).expect("a rate of at most 100 % keeps the fee within the amount");
    FeeSettlement { fee, real_subsidy, real_fee, received }
}

/// What a refund of `refund` gives back, when `refunded_before` was already refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeReturn {
    pub fee: Amount,
    pub subsidy: Amount,
    pub real_fee: Amount,
}

pub fn refund_return(
    amount: Amount,
    rate: FeeRate,
    pre_subsidy: Option<Amount>,
    refunded_before: Amount,
    refund: Amount,
) -> Option<FeeReturn> {
    let remaining_before = amount.checked_sub(refunded_before)?;
    let remaining_after = remaining_before.checked_sub(refund)?;
    let (before, after) = (settle(remaining_before, rate, pre_subsidy), settle(remaining_after, rate, pre_subsidy));
    Some(FeeReturn {
        fee: before.fee.checked_sub(after.fee)?,
        subsidy: before.real_subsidy.checked_sub(after.real_subsidy)?,
        real_fee: before.real_fee.checked_sub(after.real_fee)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(v: i64) -> Amount {
        Amount::from_stored(v)
    }

    #[test]
    fn seed_002_subsidy_examples() {
        // A 1 % rate on 500.00 yuan: a 5.00 yuan fee.
        let rate = FeeRate::basis_points("rate", 100).unwrap();
        let s = settle(fen(50_000), rate, Some(fen(600)));
        assert_eq!(
            (s.fee, s.real_subsidy, s.real_fee),
            (fen(500), fen(500), fen(0)),
            "pre 6 yuan, fee 5 yuan → subsidy 5 yuan"
        );
        let s = settle(fen(50_000), rate, Some(fen(200)));
        assert_eq!(
            (s.fee, s.real_subsidy, s.real_fee),
            (fen(500), fen(200), fen(300)),
            "pre 2 yuan, fee 5 yuan → real fee 3 yuan"
        );
        assert_eq!(s.received, fen(49_700));
    }

    #[test]
    fn rounding_is_half_up_to_the_fen() {
        let rate = FeeRate::basis_points("rate", 60).unwrap();
        assert_eq!(fee(fen(100), rate), fen(1), "0.6 fen → 1");
        assert_eq!(fee(fen(83), rate), fen(0), "0.498 fen → 0");
        assert_eq!(fee(fen(250), FeeRate::basis_points("rate", 20).unwrap()), fen(1), "0.5 fen → 1");
        assert_eq!(rate.percent(), "0.60%");
        assert!(FeeRate::basis_points("rate", 10_001).is_err());
        assert!(FeeRate::basis_points("rate", -1).is_err());
    }

    /// What a payment settles to and what its refunds give back (proptest shrinks a failure to
    /// the smallest amount, rate and refund parts that show it).
    fn settlement_cases() -> impl Strategy<Value = (Amount, FeeRate, Option<Amount>, Vec<u64>)> {
        let amount = prop_oneof![1..=1_000i64, 1..=crate::money::MAX_AMOUNT_FEN].prop_map(fen);
        (amount, 0..=10_000i64, 0..3u8, any::<u64>(), proptest::collection::vec(any::<u64>(), 1..40)).prop_map(
            |(amount, bp, pre_kind, pre_seed, parts)| {
                let rate = FeeRate::basis_points("rate", bp).unwrap();
                let pre = match pre_kind {
                    0 => None,
                    1 => Some(fen((pre_seed % 1_000) as i64)),
                    _ => Some(fen((pre_seed % (amount.fen() as u64 + 1)) as i64)),
                };
                (amount, rate, pre, parts)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]
        #[test]
        fn no_fen_is_created_or_lost((amount, rate, pre, parts) in settlement_cases()) {
            let s = settle(amount, rate, pre);
            prop_assert_eq!(s.received.fen() + s.real_fee.fen(), amount.fen());
            prop_assert_eq!(s.real_fee.fen() + s.real_subsidy.fen(), s.fee.fen());
            prop_assert!(s.real_subsidy <= pre.unwrap_or(Amount::ZERO) && s.real_subsidy <= s.fee && s.fee <= amount);

            // Refund it all in parts: fee and subsidy come back exactly, never negative.
            let (mut refunded, mut fee_back, mut subsidy_back, mut real_fee_back) = (Amount::ZERO, 0, 0, 0);
            let mut next = parts.iter();
            while refunded < amount {
                let left = (amount.fen() - refunded.fen()) as u64;
                // Half the parts are small, so many-part refunds are tried too; once the drawn
                // parts run out, the rest goes back in one.
                let part = match next.next() {
                    Some(seed) => {
                        let cap = if seed % 2 == 0 { left.min(50) } else { left };
                        fen(1 + ((seed / 2) % cap) as i64)
                    }
                    None => fen(left as i64),
                };
                let r = refund_return(amount, rate, pre, refunded, part).expect("within what was paid");
                fee_back += r.fee.fen();
                subsidy_back += r.subsidy.fen();
                real_fee_back += r.real_fee.fen();
                refunded = fen(refunded.fen() + part.fen());
            }
            let back = (fee_back, subsidy_back, real_fee_back);
            prop_assert_eq!(back, (s.fee.fen(), s.real_subsidy.fen(), s.real_fee.fen()));
            prop_assert!(refund_return(amount, rate, pre, amount, fen(1)).is_none(), "nothing beyond what was paid");
        }
    }
}
