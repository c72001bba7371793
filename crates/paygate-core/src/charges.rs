//! The Ping++ Charge API: a charge the merchant creates directly (`POST /v1/charges`), listed,
//! and reversed (撤销). Behind each such charge is an order (merchant_order_no = `order_no`), so
//! everything orders have — expiry, refunds, late payments, events — applies unchanged.

use crate::orders::OrderInput;
use crate::refunds::RefundInput;
use crate::{Caller, Paygate};
use paygate_domain::ids::ChargeId;
use paygate_domain::paging::{ChargeFilter, Page, Paging};
use paygate_domain::{Charge, Problem};
use paygate_store::ReverseOutcome;
use serde_json::Value;

/// A create-charge request after the face parsed its wire types.
#[derive(Debug, Clone, Default)]
pub struct ChargeInput {
    pub order_no: String,
    pub channel: String,
    pub amount: i64,
    pub currency: String,
    pub subject: String,
    pub body: String,
    pub client_ip: Option<String>,
    pub extra: Value,
    pub time_expire: Option<i64>,
    pub metadata: Value,
    pub description: Option<String>,
    /// This server's base URL as the client reached it, for sandbox pages.
    pub base_url: String,
}

impl Paygate {
    /// Validates, opens the payment at the channel, then records the order and its charge in one
    /// transaction (a duplicate `order_no` records nothing).
    pub async fn create_charge(&self, caller: &Caller, input: ChargeInput, peer_ip: &str) -> Result<Charge, Problem> {
        let routed = self.route_channel(&caller.scope, &input.channel).await?;
        let order_input = OrderInput {
            merchant_order_no: input.order_no,
            amount: input.amount,
            currency: input.currency,
            subject: input.subject,
            body: input.body,
            client_ip: input.client_ip,
            time_expire: input.time_expire,
            description: input.description,
            metadata: input.metadata,
            ..Default::default()
        };
        // The order's rules are the charge's; only the number's field has its Ping++ name here.
        let order = self.new_order(caller, order_input, peer_ip).map_err(|p| match p.param.as_deref() {
            Some("merchant_order_no") => {
                Problem { message: p.message.replace("merchant_order_no", "order_no"), ..p }.with_param("order_no")
            }
            _ => p,
        })?;
        let number = crate::orders::fresh_channel_order_no(&order)?;
        let (channel, extra, base_url) = (input.channel, input.extra, input.base_url);
        let opening =
            crate::channel_routing::Opening { channel, channel_order_no: number, extra, base_url: base_url.clone() };
        // A real channel is called only once the intent is recorded (prepare → record → complete).
        let charge = self.prepare_charge(&routed, &order, opening).await?;
        self.store.insert_charge_payment(&order, &charge).await?;
        self.complete_charge(&caller.scope, &routed, charge, &base_url).await
    }

    pub async fn list_charges(
        &self,
        caller: &Caller,
        filter: &ChargeFilter,
        paging: &Paging,
    ) -> Result<Page<Charge>, Problem> {
        self.store.list_charges(&caller.scope, filter, paging).await
    }

    /// 撤销: an unpaid charge is closed (and its order canceled if still open); a paid one is
    /// refunded in full through the ordinary refund path (reserve → channel → finish), then
    /// marked reversed. Reversing twice answers the reversed charge again.
    pub async fn reverse_charge(&self, caller: &Caller, id: &ChargeId) -> Result<Charge, Problem> {
        let outcome = self.store.reverse_charge(&caller.scope, id, self.now()).await?;
        match outcome.ok_or_else(|| Problem::not_found("charge", id))? {
            ReverseOutcome::Closed { charge, closed } => {
                self.close_at_channels(&closed).await;
                Ok(charge)
            }
            ReverseOutcome::Paid(charge) => {
                if charge.amount_refunded < charge.amount {
                    let input = RefundInput { description: Some("reverse".into()), ..Default::default() };
                    match self.refund(caller, None, Some(id), input).await {
                        Ok(_) => {}
                        // Refunds already reserved or under way cover the rest: nothing is left to move.
                        Err(p) if p.code == "nothing_to_refund" => {}
                        Err(p) => return Err(p),
                    }
                }
                let charge = self.store.mark_charge_reversed(&caller.scope, id).await?;
                charge.ok_or_else(|| Problem::not_found("charge", id))
            }
        }
    }
}
