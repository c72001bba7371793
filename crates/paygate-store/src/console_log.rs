//! An audit entry on its own, for console actions whose change is not one paygate transaction (a reconciliation
//! run downloads the channel's bill and saves its statement; the entry follows the saved run).

use crate::console::{insert_audit, AuditEntry};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;

#[async_trait]
pub trait ConsoleLogStore: Send + Sync {
    /// Appends `audit` to the app's audit log.
    async fn append_console_audit(&self, audit: &AuditEntry) -> Result<()>;
}

#[async_trait]
impl<B: crate::Backend> ConsoleLogStore for B {
    async fn append_console_audit(&self, audit: &AuditEntry) -> Result<()> {
        job!(self, Write, [audit], |tx| { insert_audit(tx, &audit).await })
    }
}
