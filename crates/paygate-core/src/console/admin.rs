//! The console's webhook and developer settings: endpoints, the delivery log and resends, the mode's API key, the
//! app's RSA public key, fee rates, the 知晓云 client ids and the cashier/SaaS credential ids. Each change is the
//! same core call `/v1` or the CLI makes, checked against the user's role first.
//!
//! Audit entries: a key roll, the public key and a fee rate are the calls `/v1` and the CLI make, given the
//! console's entry, which their store method writes in the change's own transaction (`/v1` and the CLI pass none):
//! the change and its entry commit together or not at all. The entry's `before` (public key, fee rate) is read in
//! that transaction too. So are an endpoint's create, delete and disable/enable and an event's resend: their store
//! methods fill the entry's `before` and `after` from what the transaction read and wrote (a disable or enable that
//! changes nothing writes no entry).

use super::{ConsoleCaller, Permission};
use crate::Paygate;
use paygate_domain::fees::FAMILIES;
use paygate_domain::ids::IdKind;
use paygate_domain::Problem;
use paygate_store::console_webhooks::{DeliveryLogFilter, DeliveryLogRow, DELIVERY_STATUSES};
use paygate_store::Endpoint;
use serde_json::json;

/// Rows per page of the delivery log.
pub const DELIVERY_LOG_PAGE: i64 = 50;

/// What the developers page shows. No secret is here: a stored credential's signing key and store token stay in
/// the database (they were shown once, when the app was created).
#[derive(Debug, Clone)]
pub struct DeveloperSettings {
    /// The app's RSA public key for signed requests (all modes), if one is set.
    pub public_key_pem: Option<String>,
    /// Each fee family with the mode's rate in basis points (0 when none was set).
    pub fee_rates: Vec<(&'static str, i64)>,
    /// The mode's 知晓云 client ids.
    pub hserve_clients: Vec<String>,
    /// The mode's cashier and SaaS credentials: `(face, public id)`.
    pub credentials: Vec<(String, String)>,
}

impl Paygate {
    /// The mode's webhook endpoints (every role reads them).
    pub async fn console_endpoints(&self, who: &ConsoleCaller) -> Result<Vec<Endpoint>, Problem> {
        who.require(Permission::Read)?;
        self.endpoints(&who.caller).await
    }

    /// Creates an endpoint as `POST /v1/webhook_endpoints` does (same URL policy); the secret is returned once.
    pub async fn console_create_endpoint(
        &self,
        who: &ConsoleCaller,
        url: &str,
        types: Option<Vec<String>>,
    ) -> Result<(Endpoint, String), Problem> {
        who.require(Permission::Administer)?;
        // The store names the entry's object: the endpoint's id is made with it.
        let audit = who.audit("webhook_endpoint.create", "", self.now());
        self.create_endpoint_audited(&who.caller, url, types, Some(&audit)).await
    }

    /// Deletes an endpoint as `DELETE /v1/webhook_endpoints/{id}` does (its queued deliveries go with it).
    pub async fn console_delete_endpoint(&self, who: &ConsoleCaller, id: &str) -> Result<(), Problem> {
        who.require(Permission::Administer)?;
        let audit = who.audit("webhook_endpoint.delete", id, self.now());
        self.delete_endpoint_audited(&who.caller, id, Some(&audit)).await
    }

    /// Disables or enables an endpoint as `POST /v1/webhook_endpoints/{id}` with `disabled` does, audited as
    /// `webhook_endpoint.disable` / `.enable` when its state changes.
    pub async fn console_set_endpoint_disabled(
        &self,
        who: &ConsoleCaller,
        id: &str,
        disabled: bool,
    ) -> Result<Endpoint, Problem> {
        who.require(Permission::Administer)?;
        let action = if disabled { "webhook_endpoint.disable" } else { "webhook_endpoint.enable" };
        let audit = who.audit(action, id, self.now());
        self.set_endpoint_disabled_audited(&who.caller, id, disabled, Some(&audit)).await
    }

    /// The mode's deliveries, newest first, optionally of one endpoint and in one status.
    pub async fn console_delivery_log(
        &self,
        who: &ConsoleCaller,
        filter: &DeliveryLogFilter,
    ) -> Result<Vec<DeliveryLogRow>, Problem> {
        who.require(Permission::Read)?;
        if let Some(id) = &filter.endpoint_id {
            if !IdKind::Endpoint.matches(id) {
                return Err(Problem::invalid("endpoint", "Choose one of the listed endpoints."));
            }
        }
        if let Some(status) = &filter.status {
            if !DELIVERY_STATUSES.contains(&status.as_str()) {
                return Err(Problem::invalid("status", "status must be pending, delivered or failed."));
            }
        }
        self.store.delivery_log(&who.caller.scope, filter, DELIVERY_LOG_PAGE).await
    }

    /// Queues the event again for every endpoint subscribed to it now, as `POST /v1/events/{id}/resend` does.
    pub async fn console_resend(&self, who: &ConsoleCaller, event_id: &str) -> Result<u64, Problem> {
        who.require(Permission::Administer)?;
        let audit = who.audit("event.resend", event_id, self.now());
        self.resend_event_audited(&who.caller, event_id, Some(&audit)).await
    }

    /// What the developers page shows (admins only).
    pub async fn console_developer_settings(&self, who: &ConsoleCaller) -> Result<DeveloperSettings, Problem> {
        who.require(Permission::Administer)?;
        let scope = &who.caller.scope;
        // The app as stored now: the session's copy was read when the request began, before any change it made.
        let app = self.store.app(&scope.app_id).await?.ok_or_else(|| Problem::not_found("app", &scope.app_id))?;
        let mut fee_rates = Vec::with_capacity(FAMILIES.len());
        for family in FAMILIES {
            fee_rates.push((*family, self.store.fee_rate(scope, family).await?.unwrap_or(0)));
        }
        let hserve_clients = self
            .store
            .hserve_clients(&scope.app_id)
            .await?
            .into_iter()
            .filter(|(_, mode)| *mode == scope.mode)
            .map(|(id, _)| id)
            .collect();
        let credentials = self
            .store
            .face_credentials(&scope.app_id)
            .await?
            .into_iter()
            .filter(|c| c.scope.mode == scope.mode)
            .map(|c| (c.face, c.public_id))
            .collect();
        Ok(DeveloperSettings { public_key_pem: app.public_key_pem, fee_rates, hserve_clients, credentials })
    }

    /// A new secret key for the page's mode, as `paygate app roll-key` makes it: returned once; the mode's current
    /// keys keep working for `grace_hours`.
    pub async fn console_roll_key(&self, who: &ConsoleCaller, grace_hours: i64) -> Result<String, Problem> {
        who.require(Permission::Administer)?;
        let grace = grace_hours
            .checked_mul(3600)
            .ok_or_else(|| Problem::invalid("grace_hours", "The grace period is too long."))?;
        let mut audit = who.audit("api_key.roll", &who.caller.app.id, self.now());
        audit.after = Some(json!({ "old_keys_grace_seconds": grace }));
        self.roll_api_key_audited(&who.caller.app.id, who.caller.scope.mode, grace, Some(&audit)).await
    }

    /// Sets (or with `None` clears) the app's RSA public key, as `paygate app set-public-key` does. It applies to
    /// both modes: the app signs its requests with one key.
    pub async fn console_set_public_key(&self, who: &ConsoleCaller, pem: Option<&str>) -> Result<(), Problem> {
        who.require(Permission::Administer)?;
        let app_id = &who.caller.app.id;
        // `before` is the store's: the key it replaces, read under the app's row lock.
        let mut audit = who.audit("app.public_key", app_id, self.now());
        audit.after = Some(json!({ "public_key_pem": pem }));
        self.set_app_public_key_audited(app_id, pem, Some(&audit)).await
    }

    /// Sets the mode's fee rate for a channel family, as `POST /v1/fee_rates` does.
    pub async fn console_set_fee_rate(&self, who: &ConsoleCaller, family: &str, rate_bp: i64) -> Result<(), Problem> {
        who.require(Permission::Administer)?;
        // `before` is the store's: the rate it replaces, read in the same transaction.
        let mut audit = who.audit("fee_rate.set", family, self.now());
        audit.after = Some(json!({ "rate_bp": rate_bp }));
        self.set_fee_rate_audited(&who.caller, family, rate_bp, Some(&audit)).await
    }
}
