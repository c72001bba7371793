//! Orders and their charges.

use crate::channel_routing::Opening;
use crate::{random32, yymmdd, Caller, Pass, Paygate};
use paygate_channels::PaymentRequest;
use paygate_domain::ids::{generate_order_id, ChargeId, IdKind, OrderId};
pub use paygate_domain::objects::OrderView;
use paygate_domain::paging::{OrderFilter, Page, Paging};
use paygate_domain::validate::{self, DEFAULT_EXPIRY_SECONDS};
use paygate_domain::{Amount, Charge, ChargeStatus, Currency, Order, OrderStatus, Problem, ProblemKind};
use paygate_store::CancelOutcome;
use serde_json::Value;
use std::collections::HashMap;

/// A create-order request after the face parsed its wire types.
#[derive(Debug, Clone, Default)]
pub struct OrderInput {
    pub merchant_order_no: String,
    pub amount: i64,
    pub coupon_amount: Option<i64>,
    pub currency: String,
    pub subject: String,
    pub body: String,
    pub uid: Option<String>,
    pub client_ip: Option<String>,
    pub time_expire: Option<i64>,
    pub description: Option<String>,
    pub metadata: Value,
    pub receipt_app: Option<String>,
    pub service_app: Option<String>,
    /// WeChat profit sharing will be requested for this order (the channel freezes the funds).
    pub profit_sharing: bool,
}

#[derive(Debug, Clone)]
pub struct PayInput {
    pub channel: String,
    pub charge_amount: Option<i64>,
    pub extra: Value,
    /// This server's base URL as the client reached it, for sandbox pages.
    pub base_url: String,
}

/// Sub-apps do not exist yet, so an order is received and served by its own app.
fn own_app(caller: &Caller, param: &str, value: Option<String>) -> Result<String, Problem> {
    match value {
        None => Ok(caller.app.id.clone()),
        Some(v) if v == caller.app.id => Ok(v),
        Some(v) => Err(Problem::invalid(
            param,
            format!("{param} must be this app's id ({}); no app {v} is available to it.", caller.app.id),
        )),
    }
}

impl Paygate {
    pub async fn create_order(&self, caller: &Caller, input: OrderInput, peer_ip: &str) -> Result<OrderView, Problem> {
        let order = self.new_order(caller, input, peer_ip)?;
        self.store.insert_order(&order).await?;
        Ok(OrderView { order, charges: Vec::new() })
    }

    /// A validated, not yet stored order.
    pub(crate) fn new_order(&self, caller: &Caller, input: OrderInput, peer_ip: &str) -> Result<Order, Problem> {
        let now = self.now();
        let amount = Amount::positive("amount", input.amount)?;
        let coupon_amount = Amount::non_negative("coupon_amount", input.coupon_amount.unwrap_or(0))?;
        let actual_amount = amount
            .checked_sub(coupon_amount)
            .filter(|a| *a > Amount::ZERO)
            .ok_or_else(|| Problem::invalid("coupon_amount", "coupon_amount must be less than amount."))?;
        let order = Order {
            id: generate_order_id(&yymmdd(now), &random32()?),
            app_id: caller.app.id.clone(),
            mode: caller.scope.mode,
            created: now,
            status: OrderStatus::Created,
            uid: input.uid.as_deref().map(|u| validate::text("uid", u, 64)).transpose()?,
            merchant_order_no: validate::merchant_order_no(&input.merchant_order_no)?,
            amount,
            coupon_amount,
            actual_amount,
            amount_paid: Amount::ZERO,
            amount_refunded: Amount::ZERO,
            refund_reserved: Amount::ZERO,
            has_refunds: false,
            currency: Currency::parse("currency", &input.currency)?,
            subject: validate::text("subject", &input.subject, 32)?,
            body: validate::text("body", &input.body, 128)?,
            client_ip: validate::client_ip(input.client_ip.as_deref().unwrap_or(peer_ip))?,
            time_paid: None,
            time_expire: match input.time_expire {
                Some(t) => validate::time_expire(now, t)?,
                None => now + DEFAULT_EXPIRY_SECONDS,
            },
            description: input.description.as_deref().map(|d| validate::text("description", d, 255)).transpose()?,
            metadata: validate::metadata(&input.metadata)?,
            receipt_app: own_app(caller, "receipt_app", input.receipt_app)?,
            service_app: own_app(caller, "service_app", input.service_app)?,
            profit_sharing: input.profit_sharing,
            share_reserved: Amount::ZERO,
            sharing_finished: false,
        };
        Ok(order)
    }

    pub async fn order(&self, caller: &Caller, id: &OrderId) -> Result<OrderView, Problem> {
        self.store.order_view(&caller.scope, id).await?.ok_or_else(|| Problem::not_found("order", id))
    }

    async fn find_order(&self, caller: &Caller, id: &OrderId) -> Result<Order, Problem> {
        self.store.order(&caller.scope, id).await?.ok_or_else(|| Problem::not_found("order", id))
    }

    pub async fn list_orders(
        &self,
        caller: &Caller,
        filter: &OrderFilter,
        paging: &Paging,
    ) -> Result<Page<OrderView>, Problem> {
        let page = self.store.list_orders(&caller.scope, filter, paging).await?;
        let ids: Vec<String> = page.data.iter().map(|o| o.id.clone()).collect();
        // One query for the page's charges (each order's newest first, as the query reads them).
        let mut by_order: HashMap<String, Vec<Charge>> = HashMap::new();
        for charge in self.store.charges_of_orders(&caller.scope, &ids).await? {
            by_order.entry(charge.order_id.clone()).or_default().push(charge);
        }
        let data = page
            .data
            .into_iter()
            .map(|order| OrderView { charges: by_order.remove(&order.id).unwrap_or_default(), order })
            .collect();
        Ok(Page { data, has_more: page.has_more })
    }

    /// Cancels an unpaid order and closes its pending charges at their channel.
    pub async fn cancel_order(&self, caller: &Caller, id: &OrderId) -> Result<OrderView, Problem> {
        self.find_order(caller, id).await?;
        match self.store.cancel_order(&caller.scope, id, self.now()).await? {
            None => Err(Problem::not_found("order", id)),
            Some(CancelOutcome::NotCancelable(order)) if order.status == OrderStatus::Canceled => {
                self.order(caller, id).await
            }
            Some(CancelOutcome::NotCancelable(order)) => Err(Problem::new(
                ProblemKind::InvalidRequest,
                "order_not_cancelable",
                format!("Order {} is {} and can no longer be canceled.", order.id, order.status.as_str()),
            )
            .with_param("status")),
            Some(CancelOutcome::Canceled { order, closed_charges }) => {
                self.close_at_channels(&closed_charges).await;
                self.order(caller, &OrderId::from_stored(order.id)).await
            }
        }
    }

    /// Best effort: the charges are already closed in our books, so a late success from the
    /// channel is recognised as one (never reported as a normal payment).
    pub(crate) async fn close_at_channels(&self, charges: &[Charge]) {
        for charge in charges {
            if let Ok(channel) = self.channel_of(charge).await {
                let _ = channel.close(charge).await;
            }
        }
    }

    /// Opens the payment for the whole of `order` at `channel` under `channel_order_no` (the
    /// number the channel knows it by: [`fresh_channel_order_no`], or a face's own trade number)
    /// and returns the pending charge for the caller to record (nothing is written here).
    pub(crate) async fn charge_at_channel(
        &self,
        order: &Order,
        channel: &dyn paygate_channels::Channel,
        channel_name: String,
        channel_order_no: String,
        extra: Value,
        base_url: &str,
    ) -> Result<Charge, Problem> {
        let charge_id = IdKind::Charge.generate(&random32()?);
        let extra = if extra.is_null() { Value::Object(Default::default()) } else { extra };
        let credential = channel
            .open(&PaymentRequest {
                charge_id: &charge_id,
                channel: &channel_name,
                channel_order_no: &channel_order_no,
                amount: order.actual_amount,
                subject: &order.subject,
                body: &order.body,
                client_ip: &order.client_ip,
                extra: &extra,
                base_url,
            })
            .await?;
        Ok(pending_charge(order, charge_id, channel_name, channel_order_no, extra, credential, self.now()))
    }

    /// Opens a charge for the order through the channel the payer chose.
    pub async fn pay_order(&self, caller: &Caller, id: &OrderId, input: PayInput) -> Result<OrderView, Problem> {
        let order = self.find_order(caller, id).await?;
        let routed = self.route_channel(&caller.scope, &input.channel).await?;
        if let Some(amount) = input.charge_amount {
            if amount != order.actual_amount.fen() {
                return Err(Problem::invalid(
                    "charge_amount",
                    format!(
                        "charge_amount must equal the order's actual_amount ({} fen); \
                         split payments are not supported.",
                        order.actual_amount.fen()
                    ),
                ));
            }
        }
        paygate_domain::check_payable(&order, self.now())?;
        let number = fresh_channel_order_no(&order)?;
        let (channel, extra, base_url) = (input.channel, input.extra, input.base_url);
        let opening = Opening { channel, channel_order_no: number, extra, base_url: base_url.clone() };
        // A real channel is called only once the intent is recorded (prepare → record → complete).
        let charge = self.prepare_charge(&routed, &order, opening).await?;
        let opened = self.store.open_charge(&caller.scope, &charge).await?;
        self.close_at_channels(&opened.superseded).await;
        self.complete_charge(&caller.scope, &routed, opened.charge, &base_url).await?;
        self.order(caller, id).await
    }

    pub async fn charges_of_order(&self, caller: &Caller, order_id: &OrderId) -> Result<Vec<Charge>, Problem> {
        let order = self.find_order(caller, order_id).await?;
        self.store.charges_of_order(&caller.scope, &order.id).await
    }

    /// A charge by id; with `order_id`, only if it belongs to that order.
    pub async fn charge(&self, caller: &Caller, id: &ChargeId, order_id: Option<&OrderId>) -> Result<Charge, Problem> {
        self.store
            .charge(&caller.scope, id)
            .await?
            .filter(|c| order_id.is_none_or(|o| c.order_id == o.as_str()))
            .ok_or_else(|| Problem::not_found("charge", id))
    }
}

impl Paygate {
    /// Closes unpaid orders past `time_expire`: at the channel first (so the payer can no longer
    /// pay), then in the database with an `order.closed` event; `done` counts the orders closed.
    pub async fn expire_due_orders(&self, limit: i64) -> Result<Pass, Problem> {
        let now = self.now();
        let mut pass = Pass::default();
        for (scope, id) in self.store.expired_orders(now, limit).await? {
            // One order that cannot be closed now is reported and retried by the next pass; it
            // never keeps the other due orders open.
            let closed = async {
                let charges = self.store.charges_of_order(&scope, &id).await?;
                let pending: Vec<Charge> = charges.into_iter().filter(|c| c.status == ChargeStatus::Pending).collect();
                self.close_at_channels(&pending).await;
                let closed = self.store.close_expired_order(&scope, &id, now).await?;
                if let Some((_, closed_charges)) = &closed {
                    // A charge opened between the two steps is closed in the books; close it at its channel too.
                    self.close_at_channels(closed_charges).await;
                }
                Ok::<_, Problem>(closed.is_some())
            };
            match closed.await {
                Ok(true) => pass.done += 1,
                Ok(false) => {}
                Err(problem) => pass.failed.push((id, problem)),
            }
        }
        Ok(pass)
    }
}

/// A new pending charge for the whole of `order`.
/// A new charge's number at the channel: the order id and seven random digits, so every charge
/// of an order has its own.
pub(crate) fn fresh_channel_order_no(order: &Order) -> Result<String, Problem> {
    Ok(format!("{}{}", order.id, &generate_order_id("", &random32()?)[1..8]))
}

pub(crate) fn pending_charge(
    order: &Order,
    id: String,
    channel: String,
    channel_order_no: String,
    extra: Value,
    credential: Value,
    now: i64,
) -> Charge {
    Charge {
        id,
        order_id: order.id.clone(),
        app_id: order.app_id.clone(),
        mode: order.mode,
        created: now,
        status: ChargeStatus::Pending,
        channel,
        channel_order_no,
        amount: order.actual_amount,
        amount_refunded: Amount::ZERO,
        currency: order.currency,
        client_ip: order.client_ip.clone(),
        subject: order.subject.clone(),
        body: order.body.clone(),
        extra,
        credential,
        time_paid: None,
        time_expire: order.time_expire,
        transaction_no: None,
        failure_code: None,
        failure_msg: None,
        metadata: order.metadata.clone().unwrap_or(Value::Object(Default::default())),
        description: order.description.clone(),
        notification: None,
        settlement: None,
        member_id: None,
        order_no: order.merchant_order_no.clone(),
        reversed: false,
    }
}
