//! The `/v1` operations of the document. Each function only carries its attribute:
//! `pingpp::handlers` and its siblings do the work (they dispatch on the route table, which
//! `every_route_is_documented` keeps in step with these). Query parameters are the `IntoParams`
//! structs below; the handlers read them with `request::Query`, which accepts what these say.
#![allow(dead_code)] // Only the attributes are read, by `#[openapi(paths(…))]`.

use crate::pingpp::bodies::*;
use crate::pingpp::channel_accounts::{ChannelAccountBody, ChannelAccountObject, DeletedAccount};
use crate::pingpp::members::{BalanceTransactionObject, FeeRateObject, MemberObject};
use crate::pingpp::receivers::{AddReceiver, DeletedReceiver, ReceiverObject};
use crate::pingpp::webhooks::{DeletedEndpoint, DeliveryObject, EndpointObject, PublicKeyObject, ResendObject};
use paygate_domain::events::EventObject;
use paygate_domain::objects::{ChargeObject, List, OrderObject, RefundObject};
use paygate_domain::shares::ProfitSharingObject;
use utoipa::IntoParams;

/// `GET /v1/orders`: filters, then `page`/`per_page` or cursors (not both).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct OrderListQuery {
    /// The caller's app id.
    app: String,
    uid: Option<String>,
    receipt_app: Option<String>,
    service_app: Option<String>,
    #[param(schema_with = boolean_text)]
    paid: Option<String>,
    #[param(schema_with = boolean_text)]
    refunded: Option<String>,
    #[param(schema_with = boolean_text)]
    canceled: Option<String>,
    #[param(rename = "created[gt]")]
    created_gt: Option<i64>,
    #[param(rename = "created[gte]")]
    created_gte: Option<i64>,
    #[param(rename = "created[lt]")]
    created_lt: Option<i64>,
    #[param(rename = "created[lte]")]
    created_lte: Option<i64>,
    /// 1-based. Offset paging walks every row before the page, so `(page - 1) × per_page` may be
    /// at most 10 000 (`paging::MAX_OFFSET`; deeper is a 400 naming `page`): cursors reach any depth.
    #[param(minimum = 1, maximum = 10_001)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 20)]
    per_page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    starting_after: Option<String>,
    ending_before: Option<String>,
}

/// A query boolean as `request::Query::boolean` reads it: `true`/`false` in any case or `1`/`0`,
/// with the whitespace `str::trim` removes around it (the control characters among it, but tab
/// and line breaks, are refused before that).
fn boolean_text() -> utoipa::openapi::Object {
    const SPACE: &str = r"[\t\n\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*";
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some("`true` or `false` in any case, or `1` or `0`."))
        .pattern(Some(format!("^{SPACE}([tT][rR][uU][eE]|[fF][aA][lL][sS][eE]|1|0){SPACE}$")))
        .build()
}

/// `GET /v1/events`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct EventListQuery {
    /// An event type, e.g. `order.succeeded`.
    #[param(rename = "type")]
    kind: Option<String>,
    #[param(rename = "created[gt]")]
    created_gt: Option<i64>,
    #[param(rename = "created[gte]")]
    created_gte: Option<i64>,
    #[param(rename = "created[lt]")]
    created_lt: Option<i64>,
    #[param(rename = "created[lte]")]
    created_lte: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    starting_after: Option<String>,
    ending_before: Option<String>,
}

/// The other lists: newest first, at most `limit`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct Limit {
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

const ID: &str = "The order's id (19 digits).";

#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = CreateOrder,
    responses((status = 200, description = "The new order.", body = OrderObject)))]
fn create_order() {}

#[utoipa::path(get, path = "/v1/orders", tag = "orders",
    params(OrderListQuery),
    responses((status = 200, description = "Orders, newest first.", body = List<OrderObject>)))]
fn list_orders() {}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The order.", body = OrderObject)))]
fn get_order() {}

#[utoipa::path(put, path = "/v1/orders/{id}", tag = "orders", params(("id" = String, Path, description = ID)),
    request_body = UpdateOrder,
    responses((status = 200, description = "The canceled order.", body = OrderObject)))]
fn update_order() {}

#[utoipa::path(post, path = "/v1/orders/{id}/pay", tag = "orders", params(("id" = String, Path, description = ID)),
    request_body = PayOrder,
    responses((status = 200, description = "The order with its new charge first.", body = OrderObject)))]
fn pay_order() {}

#[utoipa::path(get, path = "/v1/orders/{id}/charges", tag = "charges", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The order's charges.", body = List<ChargeObject>)))]
fn order_charges() {}

#[utoipa::path(get, path = "/v1/orders/{id}/charges/{charge_id}", tag = "charges",
    params(("id" = String, Path, description = ID), ("charge_id" = String, Path)),
    responses((status = 200, description = "The charge.", body = ChargeObject)))]
fn order_charge() {}

#[utoipa::path(post, path = "/v1/orders/{id}/order_refunds", tag = "refunds",
    params(("id" = String, Path, description = ID)), request_body = CreateRefund,
    responses((status = 200, description = "A list holding the new refund (as Ping++ answers).",
        body = List<RefundObject>)))]
fn create_order_refund() {}

#[utoipa::path(get, path = "/v1/orders/{id}/order_refunds", tag = "refunds",
    params(("id" = String, Path, description = ID), Limit),
    responses((status = 200, description = "The order's refunds.", body = List<RefundObject>)))]
fn order_refunds() {}

#[utoipa::path(get, path = "/v1/orders/{id}/order_refunds/{refund_id}", tag = "refunds",
    params(("id" = String, Path, description = ID), ("refund_id" = String, Path)),
    responses((status = 200, description = "The refund.", body = RefundObject)))]
fn order_refund() {}

#[utoipa::path(post, path = "/v1/orders/{id}/profit_sharings", tag = "profit sharing",
    params(("id" = String, Path, description = ID)), request_body = CreateProfitSharing,
    responses((status = 200, description = "The share.", body = ProfitSharingObject)))]
fn create_profit_sharing() {}

#[utoipa::path(get, path = "/v1/orders/{id}/profit_sharings", tag = "profit sharing",
    params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The order's shares.", body = List<ProfitSharingObject>)))]
fn profit_sharings() {}

#[utoipa::path(post, path = "/v1/orders/{id}/profit_sharings/finish", tag = "profit sharing",
    params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The order; no more shares can be made.", body = OrderObject)))]
fn finish_profit_sharing() {}

#[utoipa::path(get, path = "/v1/orders/{id}/profit_sharings/{profit_sharing_id}", tag = "profit sharing",
    params(("id" = String, Path, description = ID), ("profit_sharing_id" = String, Path)),
    responses((status = 200, description = "The share.", body = ProfitSharingObject)))]
fn profit_sharing() {}

#[utoipa::path(post, path = "/v1/orders/{id}/profit_sharings/{profit_sharing_id}/returns", tag = "profit sharing",
    params(("id" = String, Path, description = ID), ("profit_sharing_id" = String, Path)),
    request_body = ReturnProfitSharing,
    responses((status = 200, description = "The share after the return.", body = ProfitSharingObject)))]
fn return_profit_sharing() {}

#[utoipa::path(post, path = "/v1/profit_sharing_receivers", tag = "profit sharing",
    description = "Adds a receiver to the app's WeChat Pay account in the key's mode (WeChat keeps the list; \
        a split to a receiver not added is refused), or with `channel: alipay` binds a royalty relation of its \
        Alipay app. Test mode without the account: the sandbox, which checks no receivers.",
    request_body = AddReceiver,
    responses((status = 200, description = "The receiver as added.", body = ReceiverObject)))]
fn add_profit_sharing_receiver() {}

#[utoipa::path(delete, path = "/v1/profit_sharing_receivers/{type}/{account}", tag = "profit sharing",
    description = "Removes a receiver at WeChat Pay (splits to it are refused from then on), or with \
        `?channel=alipay` unbinds an Alipay royalty relation.",
    params(("type" = String, Path, description = "WeChat: `MERCHANT_ID` or `PERSONAL_OPENID`; Alipay: `userId`, \
        `loginName` or `openId`."), ("account" = String, Path),
        ("channel" = Option<String>, Query, description = "`wechat` (default) or `alipay`.")),
    responses((status = 200, description = "Removed.", body = DeletedReceiver)))]
fn remove_profit_sharing_receiver() {}

/// `GET /v1/charges`: filters, then cursors; newest first.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct ChargeListQuery {
    /// The caller's app id (optional: the key's app is implied).
    #[param(rename = "app[id]")]
    app_id: Option<String>,
    /// A Ping++ channel name.
    channel: Option<String>,
    #[param(schema_with = boolean_text)]
    paid: Option<String>,
    /// Refunded in full.
    #[param(schema_with = boolean_text)]
    refunded: Option<String>,
    #[param(schema_with = boolean_text)]
    reversed: Option<String>,
    #[param(rename = "created[gt]")]
    created_gt: Option<i64>,
    #[param(rename = "created[gte]")]
    created_gte: Option<i64>,
    #[param(rename = "created[lt]")]
    created_lt: Option<i64>,
    #[param(rename = "created[lte]")]
    created_lte: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// A charge id of this app and mode.
    starting_after: Option<String>,
    /// A charge id of this app and mode (not with `starting_after`).
    ending_before: Option<String>,
}

#[utoipa::path(post, path = "/v1/charges", tag = "charges", request_body = CreateCharge,
    responses((status = 200, description = "The new charge with its `credential`.", body = ChargeObject)))]
fn create_charge() {}

#[utoipa::path(get, path = "/v1/charges", tag = "charges", params(ChargeListQuery),
    responses((status = 200, description = "Charges, newest first.", body = List<ChargeObject>)))]
fn list_charges() {}

#[utoipa::path(post, path = "/v1/charges/{charge_id}/reverse", tag = "charges", params(("charge_id" = String, Path)),
    request_body = ReverseCharge,
    responses((status = 200, description = "The reversed charge: closed if it was unpaid, refunded in full if paid.",
        body = ChargeObject)))]
fn reverse_charge() {}

#[utoipa::path(get, path = "/v1/charges/{charge_id}", tag = "charges", params(("charge_id" = String, Path)),
    responses((status = 200, description = "The charge with its refunds.", body = ChargeObject)))]
fn get_charge() {}

#[utoipa::path(post, path = "/v1/charges/{charge_id}/refunds", tag = "refunds", params(("charge_id" = String, Path)),
    request_body = CreateRefund, responses((status = 200, description = "The refund.", body = RefundObject)))]
fn create_charge_refund() {}

#[utoipa::path(get, path = "/v1/charges/{charge_id}/refunds", tag = "refunds",
    params(("charge_id" = String, Path), Limit),
    responses((status = 200, description = "The charge's refunds.", body = List<RefundObject>)))]
fn charge_refunds() {}

#[utoipa::path(get, path = "/v1/charges/{charge_id}/refunds/{refund_id}", tag = "refunds",
    params(("charge_id" = String, Path), ("refund_id" = String, Path)),
    responses((status = 200, description = "The refund.", body = RefundObject)))]
fn charge_refund() {}

#[utoipa::path(post, path = "/v1/sandbox/charges/{reference}/pay", tag = "sandbox",
    params(("reference" = String, Path, description = "A test charge's id or a number its channel shows for it.")),
    request_body = SandboxPay,
    responses((status = 200, description = "The completed test charge.", body = ChargeObject)))]
fn sandbox_pay() {}

#[utoipa::path(post, path = "/v1/members", tag = "members", request_body = CreateMember,
    responses((status = 200, description = "The new member.", body = MemberObject)))]
fn create_member() {}

#[utoipa::path(get, path = "/v1/members/{member_id}", tag = "members", params(("member_id" = String, Path)),
    responses((status = 200, description = "The member.", body = MemberObject)))]
fn get_member() {}

#[utoipa::path(post, path = "/v1/members/{member_id}/topups", tag = "members", params(("member_id" = String, Path)),
    request_body = TopUp, responses((status = 200, description = "The member after the top-up.", body = MemberObject)))]
fn top_up() {}

#[utoipa::path(get, path = "/v1/members/{member_id}/balance_transactions", tag = "members",
    params(("member_id" = String, Path), Limit),
    responses((status = 200, description = "The wallet's movements, newest first.",
        body = List<BalanceTransactionObject>)))]
fn balance_transactions() {}

#[utoipa::path(post, path = "/v1/fee_rates", tag = "members", request_body = SetFeeRate,
    responses((status = 200, description = "The rate now in force.", body = FeeRateObject)))]
fn set_fee_rate() {}

#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(EventListQuery),
    responses((status = 200, description = "Events, newest first.", body = List<EventObject>)))]
fn list_events() {}

#[utoipa::path(get, path = "/v1/events/{event_id}", tag = "events", params(("event_id" = String, Path)),
    responses((status = 200, description = "The event.", body = EventObject)))]
fn get_event() {}

#[utoipa::path(get, path = "/v1/events/{event_id}/deliveries", tag = "events", params(("event_id" = String, Path)),
    responses((status = 200, description = "The event's deliveries.", body = List<DeliveryObject>)))]
fn event_deliveries() {}

#[utoipa::path(post, path = "/v1/events/{event_id}/resend", tag = "events", params(("event_id" = String, Path)),
    responses((status = 200, description = "Deliveries queued again.", body = ResendObject)))]
fn resend_event() {}

#[utoipa::path(post, path = "/v1/webhook_endpoints", tag = "webhooks", request_body = CreateWebhookEndpoint,
    responses((status = 200, description = "The endpoint, with its signing secret (shown once).",
        body = EndpointObject)))]
fn create_webhook_endpoint() {}

#[utoipa::path(get, path = "/v1/webhook_endpoints", tag = "webhooks",
    responses((status = 200, description = "The app's endpoints.", body = List<EndpointObject>)))]
fn webhook_endpoints() {}

#[utoipa::path(delete, path = "/v1/webhook_endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, description = "Deleted.", body = DeletedEndpoint)))]
fn delete_webhook_endpoint() {}

#[utoipa::path(post, path = "/v1/webhook_endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)), request_body = UpdateWebhookEndpoint,
    responses((status = 200, description = "The endpoint as it now is (`status`).", body = EndpointObject)))]
fn update_webhook_endpoint() {}

#[utoipa::path(get, path = "/v1/webhook_public_key", tag = "webhooks",
    responses((status = 200, description = "The platform key webhook signatures verify with.",
        body = PublicKeyObject)))]
fn webhook_public_key() {}

#[utoipa::path(put, path = "/v1/channel_accounts/{provider}", tag = "channel_accounts",
    params(("provider" = String, Path, description = "`wechat` or `alipay`.")),
    request_body = ChannelAccountBody,
    responses((status = 200, description = "The account as stored (no secret is ever answered).",
        body = ChannelAccountObject)))]
fn set_channel_account() {}

#[utoipa::path(get, path = "/v1/channel_accounts/{provider}", tag = "channel_accounts",
    params(("provider" = String, Path, description = "`wechat` or `alipay`.")),
    responses((status = 200, description = "The account, without its secrets.", body = ChannelAccountObject)))]
fn get_channel_account() {}

#[utoipa::path(get, path = "/v1/channel_accounts", tag = "channel_accounts",
    responses((status = 200, description = "The key's app and mode's accounts.", body = List<ChannelAccountObject>)))]
fn channel_accounts() {}

#[utoipa::path(delete, path = "/v1/channel_accounts/{provider}", tag = "channel_accounts",
    params(("provider" = String, Path, description = "`wechat` or `alipay`.")),
    responses((status = 200, description = "Removed.", body = DeletedAccount)))]
fn delete_channel_account() {}
