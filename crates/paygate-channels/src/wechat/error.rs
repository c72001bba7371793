//! What can go wrong reading or checking WeChat Pay input. Every variant carries a message that names the part
//! at fault (a field, a header parameter, the key); none of them carries a secret.

use paygate_domain::{Problem, ProblemKind};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WechatError {
    /// Input the protocol does not allow: bad XML, a missing field or header parameter, bad base64.
    Malformed(String),
    /// A signature that does not verify against the key.
    BadSignature(String),
    /// A timestamp outside the accepted window.
    Stale(String),
    /// Ciphertext that does not decrypt (wrong key, tampered data or tag).
    Decrypt(String),
    /// A key that cannot be used (bad PEM, wrong length).
    Key(String),
}

impl WechatError {
    pub fn message(&self) -> &str {
        match self {
            WechatError::Malformed(m)
            | WechatError::BadSignature(m)
            | WechatError::Stale(m)
            | WechatError::Decrypt(m)
            | WechatError::Key(m) => m,
        }
    }

    /// The stable code a caller can log or match on.
    pub fn code(&self) -> &'static str {
        match self {
            WechatError::Malformed(_) => "wechat_malformed",
            WechatError::BadSignature(_) => "wechat_bad_signature",
            WechatError::Stale(_) => "wechat_stale",
            WechatError::Decrypt(_) => "wechat_decrypt",
            WechatError::Key(_) => "wechat_key",
        }
    }
}

impl fmt::Display for WechatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for WechatError {}

impl From<WechatError> for Problem {
    fn from(e: WechatError) -> Problem {
        // A key we cannot use is our configuration's fault; everything else is what the other side sent.
        let kind = match e {
            WechatError::Key(_) => ProblemKind::Internal,
            _ => ProblemKind::Channel,
        };
        Problem::new(kind, e.code(), e.message().to_string())
    }
}

impl From<crate::rsa::RsaError> for WechatError {
    fn from(e: crate::rsa::RsaError) -> WechatError {
        match e {
            crate::rsa::RsaError::Key(m) => WechatError::Key(m),
            crate::rsa::RsaError::BadSignature(m) => WechatError::BadSignature(m),
        }
    }
}
