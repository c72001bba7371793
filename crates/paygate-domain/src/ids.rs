//! Object ids. Typed by prefix (`app_`, `ch_`, `re_`, `evt_`), or, for orders, the 19-digit
//! numeric form Ping++ uses. Randomness is passed in: this crate does no IO.
//!
//! Every random string paygate makes (ids, secret keys, trade numbers, pay codes) comes from
//! [`random_chars`]: one generator, without modulo bias.

use sha2::{Digest, Sha256};

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const DIGITS: &[u8; 10] = b"0123456789";

/// `n` characters drawn uniformly from `alphabet` (2 to 256 symbols) with the 32 random bytes
/// of `seed`.
///
/// A byte picks `alphabet[byte % len]` only when it is below the largest multiple of `len` that
/// fits in 256; other bytes are skipped, so every character is exactly equally likely (mapping
/// every byte with `% 62` makes the first 8 characters 25 % more likely than the rest). The bytes
/// come from SHA-256(seed ‖ block counter), as many blocks as the skips and `n` need, so a fixed
/// 32-byte seed is enough for any length and the output reveals nothing of the seed itself.
pub fn random_chars(alphabet: &[u8], n: usize, seed: &[u8; 32]) -> String {
    assert!((2..=256).contains(&alphabet.len()), "an alphabet has 2 to 256 symbols");
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    let mut block = 0u64;
    while out.len() < n {
        let bytes = Sha256::new().chain_update(seed).chain_update(block.to_be_bytes()).finalize();
        block += 1;
        let usable = bytes.iter().map(|b| usize::from(*b)).filter(|b| *b < limit);
        out.extend(usable.map(|b| char::from(alphabet[b % alphabet.len()])).take(n - out.len()));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    App,
    Charge,
    Refund,
    Event,
    Endpoint,
    ProfitShare,
    Reconciliation,
    Discrepancy,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::App => "app_",
            IdKind::Charge => "ch_",
            IdKind::Refund => "re_",
            IdKind::Event => "evt_",
            IdKind::Endpoint => "we_",
            IdKind::ProfitShare => "ps_",
            IdKind::Reconciliation => "recon_",
            IdKind::Discrepancy => "rd_",
        }
    }

    fn body_len(self) -> usize {
        match self {
            IdKind::App => 16,
            _ => 24,
        }
    }

    /// Builds an id from random bytes.
    pub fn generate(self, random: &[u8; 32]) -> String {
        format!("{}{}", self.prefix(), random_chars(BASE62, self.body_len(), random))
    }

    /// Shape check before touching storage: a malformed id is simply not found.
    pub fn matches(self, id: &str) -> bool {
        id.strip_prefix(self.prefix())
            .is_some_and(|body| body.len() == self.body_len() && body.bytes().all(|b| b.is_ascii_alphanumeric()))
    }
}

/// Order ids look like Ping++'s: 19 decimal digits, `2` + yymmdd + 12 random digits.
pub fn generate_order_id(yymmdd: &str, random: &[u8; 32]) -> String {
    format!("2{yymmdd}{}", random_chars(DIGITS, 12, random))
}

pub fn is_order_id(id: &str) -> bool {
    id.len() == 19 && id.bytes().all(|b| b.is_ascii_digit())
}

/// A secret key: `sk_test_` / `sk_live_` + 32 base62 characters (~190 bits).
pub fn generate_secret_key(live: bool, random: &[u8; 32]) -> String {
    format!("{}{}", if live { "sk_live_" } else { "sk_test_" }, random_chars(BASE62, 32, random))
}

/// Ids as they cross from the faces into the core: a value of one of these types has the
/// shape of its kind (prefix and length, or 19 digits for orders), so the core never looks up
/// a malformed id, and an order id cannot be passed where a charge id belongs. A face parses
/// what a client sent with `parse` (a malformed id names nothing that could exist: the same 404
/// as an unknown one); ids read back from storage are wrapped with `from_stored`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $shape:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// `id` if it has the shape of one, else "No such …" (404).
            #[track_caller]
            pub fn parse(id: &str) -> Result<$name, crate::Problem> {
                let shape: fn(&str) -> bool = $shape;
                if shape(id) {
                    Ok($name(id.to_string()))
                } else {
                    Err(crate::Problem::not_found($what, id))
                }
            }

            /// An id storage handed back (it was generated with its shape).
            pub fn from_stored(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An order's id: 19 digits.
    OrderId, "order", is_order_id
);
id_type!(
    /// `ch_` + 24 base62 characters.
    ChargeId, "charge", |id| IdKind::Charge.matches(id)
);
id_type!(
    /// `re_` + 24 base62 characters.
    RefundId, "refund", |id| IdKind::Refund.matches(id)
);
id_type!(
    /// `ps_` + 24 base62 characters.
    ProfitShareId, "profit_sharing", |id| IdKind::ProfitShare.matches(id)
);
id_type!(
    /// `evt_` + 24 base62 characters.
    EventId, "event", |id| IdKind::Event.matches(id)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefix_and_length() {
        let r = [7u8; 32];
        let ch = IdKind::Charge.generate(&r);
        assert!(ch.starts_with("ch_") && ch.len() == 27);
        assert!(IdKind::Charge.matches(&ch));
        assert!(!IdKind::Refund.matches(&ch));
        assert!(!IdKind::Charge.matches("ch_../../etc"));
        let app = IdKind::App.generate(&r);
        assert_eq!(app.len(), 20);
        let order = generate_order_id("261122", &r);
        assert!(is_order_id(&order), "{order}");
        assert!(generate_secret_key(false, &r).starts_with("sk_test_"));
        assert_eq!(generate_secret_key(true, &r).len(), 8 + 32);
    }

    #[test]
    fn id_types_accept_only_their_shape() {
        let r = [3u8; 32];
        let ch = IdKind::Charge.generate(&r);
        assert_eq!(ChargeId::parse(&ch).unwrap().as_str(), ch);
        let wrong = RefundId::parse(&ch).unwrap_err();
        assert_eq!(
            (wrong.code, wrong.message.as_str()),
            ("resource_missing", format!("No such refund: {ch}").as_str())
        );
        assert!(OrderId::parse(&generate_order_id("261122", &r)).is_ok());
        assert!(OrderId::parse("../../etc").is_err() && EventId::parse("evt_x").is_err());
        assert_eq!(&*OrderId::from_stored("2000000000000000000"), "2000000000000000000");
    }

    #[test]
    fn random_chars_are_uniform_and_any_length() {
        // 62 symbols over 620 000 draws: each expected 10 000 times (σ ≈ 99). With `byte % 62`
        // the first 8 symbols would come ~12 000 times each.
        let mut counts = [0u32; 62];
        for i in 0..1_000u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            for c in random_chars(BASE62, 620, &seed).bytes() {
                counts[BASE62.iter().position(|b| *b == c).unwrap()] += 1;
            }
        }
        assert!(counts.iter().all(|c| (9_500..=10_500).contains(c)), "{counts:?}");
        assert_eq!(random_chars(DIGITS, 1_000, &[0; 32]).len(), 1_000);
        assert!(random_chars(DIGITS, 40, &[9; 32]).bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(random_chars(BASE62, 24, &[1; 32]), random_chars(BASE62, 24, &[2; 32]));
    }
}
