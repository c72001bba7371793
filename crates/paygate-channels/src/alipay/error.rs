//! What can go wrong reading or checking Alipay input. Every message names the field or part at fault and
//! never carries a secret.

use crate::rsa::RsaError;
use paygate_domain::{Problem, ProblemKind};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlipayError {
    /// Input the protocol does not allow: a bad form or JSON body, a missing node or field, a bad escape.
    Malformed(String),
    /// A signature that is missing, not base64, or does not verify against the key.
    BadSignature(String),
    /// An amount or time that is not in Alipay's exact format.
    Value(String),
    /// A key that cannot be used (bad PEM, not RSA).
    Key(String),
}

impl AlipayError {
    pub fn message(&self) -> &str {
        match self {
            AlipayError::Malformed(m) | AlipayError::BadSignature(m) | AlipayError::Value(m) | AlipayError::Key(m) => m,
        }
    }

    /// The stable code a caller can log or match on.
    pub fn code(&self) -> &'static str {
        match self {
            AlipayError::Malformed(_) => "alipay_malformed",
            AlipayError::BadSignature(_) => "alipay_bad_signature",
            AlipayError::Value(_) => "alipay_bad_value",
            AlipayError::Key(_) => "alipay_key",
        }
    }
}

impl fmt::Display for AlipayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AlipayError {}

impl From<RsaError> for AlipayError {
    fn from(e: RsaError) -> AlipayError {
        match e {
            RsaError::Key(m) => AlipayError::Key(m),
            RsaError::BadSignature(m) => AlipayError::BadSignature(m),
        }
    }
}

impl From<AlipayError> for Problem {
    fn from(e: AlipayError) -> Problem {
        // A key we cannot use is our configuration's fault; everything else is what the other side sent.
        let kind = match e {
            AlipayError::Key(_) => ProblemKind::Internal,
            _ => ProblemKind::Channel,
        };
        Problem::new(kind, e.code(), e.message().to_string())
    }
}
