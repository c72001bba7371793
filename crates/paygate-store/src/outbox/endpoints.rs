//! Webhook endpoints changed in one transaction each: create, delete, disable/enable, and the resend of an event to
//! them. A console change passes its audit entry and it is written by that same transaction (the entry's `before`
//! and `after` filled here, from what the transaction read and wrote); `/v1` and the CLI pass none.

use crate::console::{insert_audit, AuditEntry};
use crate::outbox::{self, Endpoint, NewEndpoint};
use crate::rows::{scoped, with, RowLike, SqlParam};
use crate::sql::Tx;
use crate::Result;
use paygate_domain::{Problem, Scope};
use serde_json::{json, Value};

/// The columns [`endpoint_row`] reads, as [`outbox::LIST_ENDPOINTS`] does.
const ONE_ENDPOINT: &str = "SELECT id, created, livemode, url, all_events, disabled FROM webhook_endpoints \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND NOT deleted";

/// The UPDATE alone decides: it changes a live endpoint of this app and mode that is in the other state, so two
/// clicks racing change it once (and audit it once).
const SET_DISABLED: &str = "UPDATE webhook_endpoints SET disabled = $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND NOT deleted AND disabled <> $4";

/// An endpoint row before its event types are read: `(id, created, livemode, url, all_events, disabled)`.
pub(crate) type EndpointRow = (String, i64, bool, String, bool, bool);

pub(crate) fn endpoint_row(r: &dyn RowLike) -> Result<EndpointRow> {
    Ok((r.text(0)?, r.int(1)?, r.boolean(2)?, r.text(3)?, r.boolean(4)?, r.boolean(5)?))
}

/// The rows as endpoints, each with its event types (`None`: every type).
pub(crate) async fn with_types(tx: &mut dyn Tx, found: Vec<EndpointRow>) -> Result<Vec<Endpoint>> {
    let mut out = Vec::with_capacity(found.len());
    for (id, created, livemode, url, all, disabled) in found {
        let types = match all {
            true => None,
            false => Some(tx.query(outbox::ENDPOINT_TYPES, &[SqlParam::Text(id.clone())], |r| r.text(0)).await?),
        };
        out.push(Endpoint { id, created, livemode, url, types, disabled });
    }
    Ok(out)
}

/// A live (not deleted) endpoint of the scope.
pub(crate) async fn load_endpoint(tx: &mut dyn Tx, scope: &Scope, id: &str) -> Result<Option<Endpoint>> {
    let found = tx.query(ONE_ENDPOINT, &scoped(scope, id), endpoint_row).await?;
    Ok(with_types(tx, found).await?.pop())
}

/// What an audit entry shows of an endpoint (never its secret).
pub fn endpoint_audit_json(e: &Endpoint) -> Value {
    json!({ "url": e.url, "events": e.types.clone().unwrap_or_else(|| vec!["*".into()]), "status": e.status() })
}

pub(crate) async fn create(tx: &mut dyn Tx, e: &NewEndpoint, audit: Option<AuditEntry>) -> Result<()> {
    let row = [
        SqlParam::Text(e.id.clone()),
        SqlParam::Text(e.scope.app_id.clone()),
        SqlParam::Bool(e.scope.mode.is_live()),
        SqlParam::Int(e.created),
        SqlParam::Text(e.url.clone()),
        SqlParam::Text(e.secret.clone()),
        SqlParam::Bool(e.types.is_none()),
    ];
    tx.exec(outbox::INSERT_ENDPOINT, &row).await?;
    for t in e.types.iter().flatten() {
        tx.exec(outbox::INSERT_ENDPOINT_TYPE, &[SqlParam::Text(e.id.clone()), SqlParam::Text(t.clone())]).await?;
    }
    if let Some(mut audit) = audit {
        audit.object_id = e.id.clone();
        audit.after = Some(endpoint_audit_json(&e.view()));
        insert_audit(tx, &audit).await?;
    }
    Ok(())
}

/// False when the scope has no such live endpoint. Its queued deliveries are failed with it.
pub(crate) async fn delete(tx: &mut dyn Tx, scope: &Scope, id: &str, audit: Option<AuditEntry>) -> Result<bool> {
    // Read only for the audit entry: url and events never change, and the UPDATE below decides.
    let before = match audit {
        Some(_) => load_endpoint(tx, scope, id).await?,
        None => None,
    };
    if tx.exec(outbox::DELETE_ENDPOINT, &scoped(scope, id)).await? != 1 {
        return Ok(false);
    }
    tx.exec(outbox::DROP_ENDPOINT_DELIVERIES, &[SqlParam::Text(id.to_string())]).await?;
    if let Some(mut audit) = audit {
        audit.before = before.as_ref().map(endpoint_audit_json);
        insert_audit(tx, &audit).await?;
    }
    Ok(true)
}

/// Disables or enables a live endpoint of the scope; the endpoint as it now is, `None` when there is none. Setting
/// the state it already has changes nothing and writes no audit entry.
///
/// A disabled endpoint gets no new deliveries (the fan-out and resend skip it in their INSERT … SELECT). Its
/// deliveries still pending are failed by this transaction, as a delete fails them, rather than kept for later:
/// enabling again must not release a burst of stale events, a pending row would keep the outbox's oldest-pending
/// age growing and its month from being dropped, and a failed delivery shows in the log where it can be resent.
pub(crate) async fn set_disabled(
    tx: &mut dyn Tx,
    scope: &Scope,
    id: &str,
    disabled: bool,
    audit: Option<AuditEntry>,
) -> Result<Option<Endpoint>> {
    let changed = tx.exec(SET_DISABLED, &with(scoped(scope, id), [SqlParam::Bool(disabled)])).await? == 1;
    if changed && disabled {
        tx.exec(outbox::DROP_ENDPOINT_DELIVERIES, &[SqlParam::Text(id.to_string())]).await?;
    }
    let Some(after) = load_endpoint(tx, scope, id).await? else {
        return Ok(None);
    };
    if let (true, Some(mut audit)) = (changed, audit) {
        let before = Endpoint { disabled: !disabled, ..after.clone() };
        audit.before = Some(endpoint_audit_json(&before));
        audit.after = Some(endpoint_audit_json(&after));
        insert_audit(tx, &audit).await?;
    }
    Ok(Some(after))
}

/// Queues the event again for every enabled endpoint of the scope subscribed to it now; how many were queued.
pub(crate) async fn resend(
    tx: &mut dyn Tx,
    scope: &Scope,
    event_id: &str,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<u64> {
    let event = tx.query_opt(&outbox::select_event_sql(), &scoped(scope, event_id), outbox::event).await?;
    let event = event.ok_or_else(|| Problem::not_found("event", event_id))?;
    let params = [
        SqlParam::Text(event.id),
        SqlParam::Int(now),
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Text(event.kind),
    ];
    let queued = tx.exec(outbox::RESEND, &params).await?;
    if let Some(mut audit) = audit {
        audit.after = Some(json!({ "deliveries_queued": queued }));
        insert_audit(tx, &audit).await?;
    }
    Ok(queued)
}
