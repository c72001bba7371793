//! Protocol-faithful simulators of payment channels, for tests and offline development: they speak the
//! channel's side of its wire protocol (signatures, rules, notifications with retries) against in-memory state,
//! and add a `/sim/…` JSON API through which a test acts as the payer or injects faults. Today: WeChat Pay and Alipay.

pub mod alipay;
pub mod http;
pub mod recon;
pub mod wechat;
