//! Profit-sharing receivers (分账接收方) of the app's WeChat Pay account in the caller's mode, and royalty
//! relations (分账关系) of its Alipay app. The channel keeps the list, so paygate keeps none: adding and removing
//! are calls to the channel, and a split to a receiver not added is WeChat's refusal (`share_failed`). Alipay's
//! settle binds the receivers it names first (as Alipay documents: bind is idempotent), so unbinding is the
//! merchant's housekeeping — a partner that leaves — and binding ahead is optional. Test mode without an account
//! is the sandbox, whose splits check no receivers: the calls are accepted there so an integration runs the same
//! steps in both modes.

use crate::{Caller, Paygate};
use paygate_channels::wechat_pay::WechatReceiver;
use paygate_domain::{validate, Problem};

/// WeChat's receiver types that paygate shares to (PERSONAL_WECHATID is gone at WeChat).
pub const RECEIVER_TYPES: [&str; 2] = ["MERCHANT_ID", "PERSONAL_OPENID"];
/// WeChat's `relation_type` values.
pub const RELATION_TYPES: [&str; 11] = [
    "SERVICE_PROVIDER",
    "STORE",
    "STAFF",
    "STORE_OWNER",
    "PARTNER",
    "HEADQUARTER",
    "BRAND",
    "DISTRIBUTOR",
    "USER",
    "SUPPLIER",
    "CUSTOM",
];

/// A receiver as a face sent it; every field is checked here.
#[derive(Debug, Clone, Default)]
pub struct ReceiverInput {
    pub kind: Option<String>,
    pub account: Option<String>,
    pub relation_type: Option<String>,
    pub custom_relation: Option<String>,
    pub name: Option<String>,
}

/// `type` as WeChat spells it.
pub fn receiver_type(value: &str) -> Result<String, Problem> {
    if RECEIVER_TYPES.contains(&value) {
        return Ok(value.to_string());
    }
    Err(Problem::invalid("type", format!("type must be one of {}, got '{value}'.", RECEIVER_TYPES.join(", "))))
}

/// A merchant number or an openid: letters, digits, `_` and `-`, at most 64 (also one path segment).
pub fn receiver_account(value: &str) -> Result<String, Problem> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
        return Err(Problem::invalid("account", "account must be 1 to 64 letters, digits, '_' or '-'."));
    }
    Ok(value.to_string())
}

/// Alipay's royalty receiver types: a user id (2088…), a login name (email or phone), an openId.
pub const ALIPAY_RECEIVER_TYPES: [&str; 3] = ["userId", "loginName", "openId"];

/// An Alipay royalty receiver (type, account), each field checked; the account is also one path segment.
pub fn alipay_receiver(kind: &str, account: &str) -> Result<(String, String), Problem> {
    if !ALIPAY_RECEIVER_TYPES.contains(&kind) {
        return Err(Problem::invalid(
            "type",
            format!("type must be one of {} for Alipay, got '{kind}'.", ALIPAY_RECEIVER_TYPES.join(", ")),
        ));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-.@+".contains(&b);
    if account.is_empty() || account.len() > 100 || !account.bytes().all(allowed) {
        return Err(Problem::invalid(
            "account",
            "account must be 1 to 100 letters, digits or '_', '-', '.', '@', '+'.",
        ));
    }
    Ok((kind.to_string(), account.to_string()))
}

impl ReceiverInput {
    pub fn check(self) -> Result<WechatReceiver, Problem> {
        let kind = receiver_type(self.kind.as_deref().ok_or_else(|| Problem::missing("type"))?)?;
        let account = receiver_account(self.account.as_deref().ok_or_else(|| Problem::missing("account"))?)?;
        let relation_type = self.relation_type.ok_or_else(|| Problem::missing("relation_type"))?;
        if !RELATION_TYPES.contains(&relation_type.as_str()) {
            return Err(Problem::invalid(
                "relation_type",
                format!("relation_type must be one of {}, got '{relation_type}'.", RELATION_TYPES.join(", ")),
            ));
        }
        let custom_relation = match (relation_type.as_str(), self.custom_relation) {
            ("CUSTOM", Some(c)) => Some(validate::text("custom_relation", c.trim(), 10)?),
            ("CUSTOM", None) => return Err(Problem::missing("custom_relation")),
            (_, Some(_)) => {
                return Err(Problem::invalid("custom_relation", "custom_relation is only for relation_type CUSTOM."))
            }
            (_, None) => None,
        };
        let name = self.name.map(|n| validate::text("name", n.trim(), 256)).transpose()?;
        Ok(WechatReceiver { kind, account, relation_type, custom_relation, name })
    }
}

impl Paygate {
    /// Adds a receiver to the app's WeChat Pay account in the caller's mode.
    pub async fn add_share_receiver(&self, caller: &Caller, input: ReceiverInput) -> Result<WechatReceiver, Problem> {
        let receiver = input.check()?;
        match self.wechat_adapter(&caller.scope).await? {
            Some(adapter) => adapter.add_receiver(&receiver).await?,
            // The sandbox (test mode) keeps no receivers; live mode without an account is refused here.
            None => {
                self.channels.resolve(caller.scope.mode, "wx")?;
            }
        }
        Ok(receiver)
    }

    /// Removes a receiver from the app's WeChat Pay account; WeChat refuses splits to it from then on.
    pub async fn remove_share_receiver(&self, caller: &Caller, kind: &str, account: &str) -> Result<(), Problem> {
        let (kind, account) = (receiver_type(kind)?, receiver_account(account)?);
        match self.wechat_adapter(&caller.scope).await? {
            Some(adapter) => adapter.remove_receiver(&kind, &account).await,
            None => self.channels.resolve(caller.scope.mode, "wx").map(|_sandbox| ()),
        }
    }
}

impl Paygate {
    /// Binds (`bind`) or unbinds an Alipay royalty receiver of the app's Alipay account in the caller's mode.
    pub async fn alipay_royalty_relation(
        &self,
        caller: &Caller,
        bind: bool,
        kind: &str,
        account: &str,
    ) -> Result<(String, String), Problem> {
        let receiver = alipay_receiver(kind, account)?;
        match self.alipay_adapter(&caller.scope).await? {
            Some(adapter) => {
                // Alipay's out_request_no: letters, digits and '_', at most 32.
                let request_no = format!("{}{}", if bind { "RB" } else { "RU" }, crate::random_digits(24)?);
                let pair = [(receiver.0.as_str(), receiver.1.as_str())];
                adapter.royalty_relation(bind, &pair, &request_no).await?;
            }
            None => {
                self.channels.resolve(caller.scope.mode, "alipay")?;
            }
        }
        Ok(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str, relation: &str, custom: Option<&str>) -> ReceiverInput {
        ReceiverInput {
            kind: Some(kind.into()),
            account: Some("1900000109".into()),
            relation_type: Some(relation.into()),
            custom_relation: custom.map(Into::into),
            name: None,
        }
    }

    #[test]
    fn receivers_are_checked_field_by_field() {
        assert!(input("MERCHANT_ID", "PARTNER", None).check().is_ok());
        let param = |i: ReceiverInput| i.check().unwrap_err().param;
        assert_eq!(param(input("PERSONAL_WECHATID", "PARTNER", None)).as_deref(), Some("type"));
        assert_eq!(param(input("MERCHANT_ID", "FRIEND", None)).as_deref(), Some("relation_type"));
        assert_eq!(param(input("MERCHANT_ID", "CUSTOM", None)).as_deref(), Some("custom_relation"));
        assert_eq!(param(input("MERCHANT_ID", "STORE", Some("x"))).as_deref(), Some("custom_relation"));
        assert_eq!(param(input("MERCHANT_ID", "CUSTOM", Some("01234567890"))).as_deref(), Some("custom_relation"));
        assert!(input("MERCHANT_ID", "CUSTOM", Some("加盟商")).check().is_ok());
        let bad_account = ReceiverInput { account: Some("a/b".into()), ..input("MERCHANT_ID", "STORE", None) };
        assert_eq!(param(bad_account).as_deref(), Some("account"));
        let missing = ReceiverInput { relation_type: None, ..input("MERCHANT_ID", "STORE", None) };
        assert_eq!(missing.check().unwrap_err().code, "missing_parameter");
    }

    #[test]
    fn alipay_receivers_are_checked() {
        assert!(alipay_receiver("userId", "2088000000000003").is_ok());
        assert!(alipay_receiver("loginName", "shop+1@example.com").is_ok());
        assert_eq!(alipay_receiver("MERCHANT_ID", "1").unwrap_err().param.as_deref(), Some("type"));
        for bad in ["", "a/b", "a b", &"x".repeat(101)] {
            assert_eq!(alipay_receiver("userId", bad).unwrap_err().param.as_deref(), Some("account"), "{bad}");
        }
    }
}
