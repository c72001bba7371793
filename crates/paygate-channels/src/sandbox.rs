//! The sandbox: test mode's channel for every Ping++ channel name. A payment completes when
//! someone presses pay/fail on its page or calls `POST /v1/sandbox/charges/{id}/pay`.
//! Refunds succeed at once.

use crate::{Channel, PaymentRequest, RefundResult};
use async_trait::async_trait;
use paygate_domain::{Charge, Problem, Refund};
use serde_json::{json, Value};

pub struct Sandbox;

impl Sandbox {
    pub fn pay_page_url(base_url: &str, charge_id: &str) -> String {
        format!("{base_url}/sandbox/charges/{charge_id}")
    }
}

#[async_trait]
impl Channel for Sandbox {
    async fn open(&self, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
        if !(request.extra.is_object() || request.extra.is_null()) {
            return Err(Problem::invalid("extra", "extra must be an object."));
        }
        let url = Sandbox::pay_page_url(request.base_url, request.charge_id);
        let mut credential = serde_json::Map::new();
        credential.insert("object".into(), json!("credential"));
        credential.insert(request.channel.to_string(), json!(url));
        Ok(Value::Object(credential))
    }

    async fn close(&self, _charge: &Charge) -> Result<(), Problem> {
        Ok(())
    }

    async fn refund(&self, _charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
        Ok(RefundResult::Succeeded { transaction_no: Some(format!("sandbox_{}", refund.refund_no)) })
    }
}
