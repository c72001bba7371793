//! The operations of `/v1/reconciliations` and `/v1/reconciliation_discrepancies` (issue 14), with the shapes
//! their handlers build (the handler writes them with `to_json`; these structs describe the same fields).
#![allow(dead_code)] // Only the attributes are read, by `#[openapi(paths(…))]`.

use paygate_domain::objects::List;
use paygate_domain::reconcile::{DiscrepancyKind, DiscrepancyState, Statement};
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/reconciliations`.
#[derive(ToSchema)]
#[schema(as = ReconciliationRun)]
pub(crate) struct RunBody {
    /// `wechat` or `alipay`.
    channel: String,
    /// The Beijing-time day, `yyyy-MM-dd`; it must have begun.
    date: String,
}

/// `POST /v1/reconciliation_discrepancies/{id}/resolve`.
#[derive(ToSchema)]
#[schema(as = ReconciliationResolution)]
pub(crate) struct ResolveBody {
    /// How it was resolved (1 to 1000 characters).
    note: String,
}

/// One run over one day's bill; a rerun of the day is a new version.
#[derive(ToSchema)]
#[schema(as = Reconciliation)]
pub(crate) struct ReconciliationObject {
    #[schema(pattern = "^recon_[0-9A-Za-z]{24}$")]
    id: String,
    #[schema(example = "reconciliation")]
    object: String,
    app: String,
    livemode: bool,
    /// `wechat` or `alipay`.
    channel: String,
    bill_date: String,
    version: i64,
    created: i64,
    /// `consistent` or `discrepancies` (some open).
    result: String,
    statement: Statement,
    /// Only in the answer to `POST`: what this run reported for the first time.
    reported: Option<Vec<DiscrepancyObject>>,
}

/// Something a run found wrong, kept once per channel, kind and row however many runs see it.
#[derive(ToSchema)]
#[schema(as = ReconciliationDiscrepancy)]
pub(crate) struct DiscrepancyObject {
    #[schema(pattern = "^rd_[0-9A-Za-z]{24}$")]
    id: String,
    #[schema(example = "reconciliation_discrepancy")]
    object: String,
    app: String,
    livemode: bool,
    channel: String,
    /// The run that first reported it.
    reconciliation: String,
    bill_date: String,
    kind: DiscrepancyKind,
    /// `payment:<merchant no>` or `refund:<merchant refund no>`.
    key: String,
    /// The bill row (`channel`), paygate's record (`paygate`) and the `fields` that differ.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    state: DiscrepancyState,
    resolution_note: Option<String>,
    created: i64,
    resolved: Option<i64>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct RunListQuery {
    /// `wechat` or `alipay`.
    channel: Option<String>,
    /// 1 to 100 (default 10).
    limit: Option<i64>,
    /// The id of the last run of the previous page.
    starting_after: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct DiscrepancyListQuery {
    channel: Option<String>,
    /// A run's id.
    reconciliation: Option<String>,
    state: Option<DiscrepancyState>,
    kind: Option<DiscrepancyKind>,
    limit: Option<i64>,
    starting_after: Option<String>,
    /// `csv`: every selected discrepancy as a CSV file (`text/csv`) instead of a JSON page.
    format: Option<String>,
}

#[utoipa::path(post, path = "/v1/reconciliations", tag = "reconciliations", request_body = RunBody,
    responses((status = 200, description = "The run, with the discrepancies it reported for the first time.",
        body = ReconciliationObject)))]
fn run_reconciliation() {}

#[utoipa::path(get, path = "/v1/reconciliations", tag = "reconciliations", params(RunListQuery),
    responses((status = 200, description = "Runs, newest first.", body = List<ReconciliationObject>)))]
fn reconciliations() {}

#[utoipa::path(get, path = "/v1/reconciliations/{id}", tag = "reconciliations",
    params(("id" = String, Path, description = "The run's id.")),
    responses((status = 200, description = "The run and its statement.", body = ReconciliationObject)))]
fn get_reconciliation() {}

#[utoipa::path(get, path = "/v1/reconciliations/{id}/discrepancies", tag = "reconciliations",
    params(("id" = String, Path, description = "The run's id."), DiscrepancyListQuery),
    responses((status = 200, description = "Discrepancies first reported by this run.",
        body = List<DiscrepancyObject>)))]
fn reconciliation_discrepancies() {}

#[utoipa::path(get, path = "/v1/reconciliations/{id}/bill", tag = "reconciliations",
    params(("id" = String, Path, description = "The run's id.")),
    responses((status = 200, description = "The bill as the channel served it (empty when it had none).",
        content_type = "application/octet-stream", body = Vec<u8>)))]
fn reconciliation_bill() {}

#[utoipa::path(get, path = "/v1/reconciliation_discrepancies", tag = "reconciliations", params(DiscrepancyListQuery),
    responses((status = 200, description = "Discrepancies, newest first (or CSV with `format=csv`).",
        body = List<DiscrepancyObject>)))]
fn discrepancies() {}

#[utoipa::path(post, path = "/v1/reconciliation_discrepancies/{id}/resolve", tag = "reconciliations",
    params(("id" = String, Path, description = "The discrepancy's id.")), request_body = ResolveBody,
    responses((status = 200, description = "Resolved by a person (409 when it was resolved already).",
        body = DiscrepancyObject)))]
fn resolve_discrepancy() {}
