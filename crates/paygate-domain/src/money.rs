//! Money is an integer count of minor units (fen) plus an ISO currency. Never a float.

use crate::Problem;

/// The largest amount one order may carry: 100 000 000.00 yuan. Keeps every sum of a few
/// amounts far inside i64 and matches what the Chinese channels accept for one payment.
pub const MAX_AMOUNT_FEN: i64 = 10_000_000_000;

/// A non-negative amount in minor units (fen), bounded by [`MAX_AMOUNT_FEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// An amount that must be at least one fen.
    #[track_caller]
    pub fn positive(param: &str, fen: i64) -> Result<Amount, Problem> {
        if fen <= 0 {
            return Err(Problem::invalid(
                param,
                format!("{param} must be a positive integer number of fen, got {fen}."),
            ));
        }
        Amount::non_negative(param, fen)
    }

    #[track_caller]
    pub fn non_negative(param: &str, fen: i64) -> Result<Amount, Problem> {
        if fen < 0 {
            return Err(Problem::invalid(param, format!("{param} must not be negative, got {fen}.")));
        }
        if fen > MAX_AMOUNT_FEN {
            return Err(Problem::invalid(param, format!("{param} must be at most {MAX_AMOUNT_FEN} fen, got {fen}.")));
        }
        Ok(Amount(fen))
    }

    /// For values read back from storage, which were validated on the way in.
    pub fn from_stored(fen: i64) -> Amount {
        Amount(fen)
    }

    pub fn fen(self) -> i64 {
        self.0
    }

    /// Yuan with two decimals, e.g. `0.01`, for faces that speak yuan strings.
    pub fn yuan(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Parses a yuan amount as faces write it (`"398.00"`, `1.5`, `100`) into fen, exactly:
    /// the decimal text is read digit by digit, never through a float.
    #[track_caller]
    pub fn parse_yuan(param: &str, text: &str) -> Result<Amount, Problem> {
        Amount::positive(param, yuan_fen(param, text)?)
    }

    /// As [`Amount::parse_yuan`], with zero allowed: what list filters compare with
    /// (`refund_amount=0`, `total_cost__gt=0`).
    #[track_caller]
    pub fn parse_yuan_or_zero(param: &str, text: &str) -> Result<Amount, Problem> {
        Amount::non_negative(param, yuan_fen(param, text)?)
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).filter(|v| *v <= MAX_AMOUNT_FEN).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).filter(|v| *v >= 0).map(Amount)
    }
}

/// Yuan text as fen: at most 9 integer digits and 2 decimals, checked arithmetic throughout.
#[track_caller]
fn yuan_fen(param: &str, text: &str) -> Result<i64, Problem> {
    let bad = || {
        Problem::invalid(param, format!("{param} must be an amount in yuan with at most two decimals, got '{text}'."))
    };
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || frac.len() > 2 || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    whole.checked_mul(100).and_then(|f| f.checked_add(frac)).ok_or_else(bad)
}

/// ISO 4217 currency. The channels paygate speaks settle in CNY only, so that is the one
/// currency accepted; the type exists so that adding one is a deliberate change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    Cny,
}

impl Currency {
    #[track_caller]
    pub fn parse(param: &str, code: &str) -> Result<Currency, Problem> {
        match code.to_ascii_lowercase().as_str() {
            "cny" => Ok(Currency::Cny),
            other => Err(Problem::invalid(param, format!("Unsupported currency '{other}': {param} must be 'cny'."))),
        }
    }

    /// The lowercase code Ping++ renders.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Cny => "cny",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn yuan_text_parses_exactly() {
        use super::Amount;
        for (text, fen) in [("398.00", 39800), ("1.5", 150), ("100", 10000), ("0.01", 1), ("0.1", 10), ("12.34", 1234)]
        {
            assert_eq!(Amount::parse_yuan("total_cost", text).unwrap().fen(), fen, "{text}");
        }
        for bad in ["", "-1", "1.234", "0", "0.00", "1e3", "abc", ".5", "1.", "9999999999"] {
            let p = Amount::parse_yuan("total_cost", bad);
            assert!(p.is_err() || bad == "1.", "{bad} parsed");
        }
        assert_eq!(Amount::parse_yuan("x", "1.").unwrap().fen(), 100);
        assert_eq!(Amount::parse_yuan_or_zero("refund_amount", "0").unwrap(), Amount::ZERO);
        assert_eq!(Amount::parse_yuan_or_zero("refund_amount", "0.00").unwrap(), Amount::ZERO);
        assert!(Amount::parse_yuan_or_zero("refund_amount", "-0.01").is_err());
        let too_much = Amount::parse_yuan("x", "999999999.99").unwrap_err();
        assert_eq!(too_much.param.as_deref(), Some("x"), "above MAX_AMOUNT_FEN");
        assert_eq!(Amount::parse_yuan("x", "100000000.00").unwrap().fen(), MAX_AMOUNT_FEN);
    }

    use super::*;

    #[test]
    fn amounts_are_bounded() {
        assert!(Amount::positive("amount", 0).is_err());
        assert!(Amount::positive("amount", -1).is_err());
        assert_eq!(Amount::positive("amount", 1).unwrap().fen(), 1);
        assert!(Amount::positive("amount", MAX_AMOUNT_FEN + 1).is_err());
        assert_eq!(Amount::non_negative("coupon_amount", 0).unwrap(), Amount::ZERO);
        let e = Amount::positive("amount", -5).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"));
    }

    #[test]
    fn subtraction_never_goes_negative() {
        let a = Amount::from_stored(5);
        assert_eq!(a.checked_sub(Amount::from_stored(6)), None);
        assert_eq!(a.checked_sub(Amount::from_stored(5)), Some(Amount::ZERO));
    }

    #[test]
    fn yuan_strings() {
        assert_eq!(Amount::from_stored(1).yuan(), "0.01");
        assert_eq!(Amount::from_stored(100).yuan(), "1.00");
        assert_eq!(Amount::from_stored(123_456).yuan(), "1234.56");
    }

    #[test]
    fn currency_is_cny_only() {
        assert_eq!(Currency::parse("currency", "CNY").unwrap(), Currency::Cny);
        let e = Currency::parse("currency", "usd").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("currency"));
    }
}
