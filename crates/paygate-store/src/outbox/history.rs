//! The outbox history over time. On PostgreSQL events, deliveries and attempts are partitioned by
//! their event's month (migration 7): months are created ahead of time and dropped whole once
//! they are past retention and have nothing pending. SQLite keeps plain tables and deletes old
//! events in small batches, as PostgreSQL does for the few rows of its default partitions.
//!
//! "Old" means created before the cutoff with no delivery still pending: an event whose delivery
//! is still being retried is kept, and so is its whole month on PostgreSQL.

use super::Result;
use crate::rows::SqlParam;
use crate::sql::{job, Backend};
use async_trait::async_trait;

/// PostgreSQL's months are created and dropped by functions of migration 7.
const PREPARE_MONTHS: &str = "SELECT paygate_outbox_months($1, $2)";
const DROP_MONTH: &str = "SELECT paygate_outbox_drop_month($1)";
const MONTHS: &str = "SELECT month_start, month_end FROM outbox_months ORDER BY month_start";
/// A partition is made or dropped under a brief lock on its tables; waiting longer than this for
/// it would hold up the writers queued behind, so the step gives up and the next upkeep retries.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '500ms'";

/// Events before `$1` with no pending delivery, oldest first, `$2` at most.
fn expired_events_sql(t: &Tables) -> String {
    format!(
        "SELECT v.id FROM {events} v WHERE v.created < $1 AND NOT EXISTS (SELECT 1 FROM {deliveries} d \
         WHERE d.event_id = v.id AND d.event_created = v.created AND d.status = 'pending') \
         ORDER BY v.created LIMIT $2",
        events = t.events,
        deliveries = t.deliveries
    )
}

/// The statements that delete the events `$1…` with their finished deliveries and their attempts;
/// a delivery that turned pending meanwhile (a resend) keeps itself and its event.
fn delete_sql(t: &Tables, ids: usize) -> [String; 3] {
    let list = (1..=ids.next_power_of_two()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let (events, deliveries, attempts) = (t.events, t.deliveries, t.attempts);
    [
        format!(
            "DELETE FROM {attempts} WHERE delivery_seq IN (SELECT seq FROM {deliveries} \
             WHERE event_id IN ({list}) AND status <> 'pending')"
        ),
        format!("DELETE FROM {deliveries} WHERE event_id IN ({list}) AND status <> 'pending'"),
        format!(
            "DELETE FROM {events} WHERE id IN ({list}) AND NOT EXISTS (SELECT 1 FROM {deliveries} d \
             WHERE d.event_id = {events}.id AND d.status = 'pending')"
        ),
    ]
}

/// Where rows are deleted one by one: SQLite's tables, PostgreSQL's default partitions (the rows
/// of months that have no partition; the months themselves are dropped whole).
struct Tables {
    events: &'static str,
    deliveries: &'static str,
    attempts: &'static str,
}

const PLAIN: Tables = Tables { events: "events", deliveries: "deliveries", attempts: "delivery_attempts" };
const DEFAULT_PARTITIONS: Tables =
    Tables { events: "events_default", deliveries: "deliveries_default", attempts: "delivery_attempts_default" };

/// Whether the backend partitions the outbox by month (PostgreSQL).
fn partitioned<B: Backend>() -> bool {
    B::NAME == "postgres"
}

/// What a pass over the old months did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthsDropped {
    pub dropped: u64,
    /// Months past retention still holding a pending delivery (dropped once it is done).
    pub kept: u64,
}

#[async_trait]
pub trait OutboxHistory {
    /// PostgreSQL: creates the partitions of the month holding `now` and the `ahead` months after
    /// it that are missing (rows of those months already in a default partition move in), and
    /// returns how many months it created. SQLite: nothing to do, 0.
    async fn prepare_outbox_months(&self, now: i64, ahead: i64) -> Result<u64>;
    /// The months that have their own partitions, `(start, end)` in unix seconds, oldest first
    /// (none on SQLite).
    async fn outbox_months(&self) -> Result<Vec<(i64, i64)>>;
    /// PostgreSQL: drops each month that ended at or before `cutoff` unless it holds a pending
    /// delivery, each in its own short transaction. SQLite: nothing to do.
    async fn drop_outbox_months(&self, cutoff: i64) -> Result<MonthsDropped>;
    /// Deletes up to `batch` events created before `cutoff` that have no pending delivery, with
    /// their deliveries and attempts, in one transaction; returns how many. SQLite: the events;
    /// PostgreSQL: those in the default partitions. Fewer than `batch` means none is left.
    async fn trim_outbox_history(&self, cutoff: i64, batch: i64) -> Result<u64>;
}

#[async_trait]
impl<B: Backend> OutboxHistory for B {
    async fn prepare_outbox_months(&self, now: i64, ahead: i64) -> Result<u64> {
        if !partitioned::<B>() {
            return Ok(0);
        }
        job!(self, Write, [], |tx| {
            tx.batch(LOCK_TIMEOUT).await?;
            let made = tx.query_opt(PREPARE_MONTHS, &[SqlParam::Int(now), SqlParam::Int(ahead)], |r| r.int(0)).await?;
            Ok(u64::try_from(made.unwrap_or(0)).unwrap_or(0))
        })
    }

    async fn outbox_months(&self) -> Result<Vec<(i64, i64)>> {
        if !partitioned::<B>() {
            return Ok(Vec::new());
        }
        job!(self, Read, [], |tx| { tx.query(MONTHS, &[], |r| Ok((r.int(0)?, r.int(1)?))).await })
    }

    async fn drop_outbox_months(&self, cutoff: i64) -> Result<MonthsDropped> {
        let mut pass = MonthsDropped::default();
        for (start, end) in self.outbox_months().await? {
            if end > cutoff {
                break;
            }
            let dropped = job!(self, Write, [], |tx| {
                tx.batch(LOCK_TIMEOUT).await?;
                tx.query_opt(DROP_MONTH, &[SqlParam::Int(start)], |r| r.boolean(0)).await
            })?;
            match dropped {
                Some(true) => pass.dropped += 1,
                _ => pass.kept += 1,
            }
        }
        Ok(pass)
    }

    async fn trim_outbox_history(&self, cutoff: i64, batch: i64) -> Result<u64> {
        let tables = if partitioned::<B>() { &DEFAULT_PARTITIONS } else { &PLAIN };
        let (select, deletes) = (expired_events_sql(tables), delete_sql(tables, batch.max(1) as usize));
        job!(self, Write, [], |tx| {
            let ids = tx.query(&select, &[SqlParam::Int(cutoff), SqlParam::Int(batch)], |r| r.text(0)).await?;
            let Some(last) = ids.last().cloned() else { return Ok(0) };
            // Placeholders for a full batch; a short one repeats its last id (changes nothing).
            let capacity = (batch.max(1) as usize).next_power_of_two();
            let mut params: Vec<SqlParam> = ids.iter().cloned().map(SqlParam::Text).collect();
            params.resize(capacity, SqlParam::Text(last));
            for sql in &deletes {
                tx.exec(sql, &params).await?;
            }
            Ok(ids.len() as u64)
        })
    }
}
