//! Object ids. Typed by prefix (`app_`, `ch_`, `re_`, `evt_`), or, for orders, the 19-digit
//! numeric form Ping++ uses. Randomness is passed in: this crate does no IO.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    App,
    Charge,
    Refund,
    Event,
    Endpoint,
    ProfitShare,
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
        }
    }

    fn body_len(self) -> usize {
        match self {
            IdKind::App => 16,
            _ => 24,
        }
    }

    /// Builds an id from random bytes (one byte per character; modulo bias is irrelevant
    /// for identifiers that are never secrets).
    pub fn generate(self, random: &[u8; 32]) -> String {
        let mut id = String::with_capacity(self.prefix().len() + self.body_len());
        id.push_str(self.prefix());
        id.extend(random.iter().take(self.body_len()).map(|b| BASE62[(*b as usize) % 62] as char));
        id
    }

    /// Shape check before touching storage: a malformed id is simply not found.
    pub fn matches(self, id: &str) -> bool {
        id.strip_prefix(self.prefix())
            .is_some_and(|body| body.len() == self.body_len() && body.bytes().all(|b| b.is_ascii_alphanumeric()))
    }
}

/// Order ids look like Ping++'s: 19 decimal digits, `2` + yymmdd + 12 random digits.
pub fn generate_order_id(yymmdd: &str, random: &[u8; 32]) -> String {
    let mut id = String::with_capacity(19);
    id.push('2');
    id.push_str(yymmdd);
    id.extend(random.iter().take(12).map(|b| char::from(b'0' + b % 10)));
    id
}

pub fn is_order_id(id: &str) -> bool {
    id.len() == 19 && id.bytes().all(|b| b.is_ascii_digit())
}

/// A secret key: `sk_test_` / `sk_live_` + 32 base62 characters (~190 bits).
pub fn generate_secret_key(live: bool, random: &[u8; 32]) -> String {
    let mut key = String::from(if live { "sk_live_" } else { "sk_test_" });
    key.extend(random.iter().map(|b| BASE62[(*b as usize) % 62] as char));
    key
}

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
    }
}
