//! Charges recorded before the channel is called (intent first): a real channel has side effects, so the pending
//! charge is written first, the channel opens the payment, and then its credential is stored — only while the
//! charge is still pending (a cancel, a supersede or a fast notification may have moved it meanwhile).

use crate::rows::{scoped, with, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::Scope;

#[async_trait]
pub trait ChargeIntentStore: Send + Sync {
    /// Sets the credential of a pending charge; false when the charge is not (or no longer) pending.
    async fn set_pending_credential(
        &self,
        scope: &Scope,
        charge_id: &str,
        credential: &serde_json::Value,
    ) -> Result<bool>;
}

/// Conditional on `status = 'pending'`: a charge that moved on keeps what it has.
const SET_PENDING_CREDENTIAL: &str = "UPDATE charges SET credential = $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";

#[async_trait]
impl<B: crate::Backend> ChargeIntentStore for B {
    async fn set_pending_credential(
        &self,
        scope: &Scope,
        charge_id: &str,
        credential: &serde_json::Value,
    ) -> Result<bool> {
        let params = with(scoped(scope, charge_id), [SqlParam::Text(credential.to_string())]);
        job!(self, Write, [], |tx| { Ok(tx.exec(SET_PENDING_CREDENTIAL, &params).await? == 1) })
    }
}
