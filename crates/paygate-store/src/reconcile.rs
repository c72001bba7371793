//! Reconciliation runs and their discrepancies (PostgreSQL 0011 / SQLite 0012). A run is saved in one transaction
//! with the discrepancies it found and its events: a rerun of the same day takes the next version (the UNIQUE on
//! the version decides two concurrent reruns: one commits, the other fails whole), a discrepancy is inserted once
//! per (channel, kind, row key) whatever the number of runs that see it, and one a later run finds consistent is
//! resolved by a conditional UPDATE of the rows still open.

use crate::console::{insert_audit, AuditEntry};
use crate::rows::{self, scoped, RowLike, SqlParam};
use crate::sql::job;
use crate::transactions::emit;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::accounts::Provider;
use paygate_domain::paging::Page;
use paygate_domain::reconcile::{
    BillDate, Discrepancy, DiscrepancyKind, DiscrepancyState, Reconciliation, RECONCILIATION_COMPLETED,
    RECONCILIATION_DISCREPANCY,
};
use paygate_domain::{Charge, Mode, Problem, Refund, Scope};
use std::collections::HashSet;

/// paygate's side of one day: charges paid in it, refunds that succeeded in it, and every pending refund.
#[derive(Debug, Clone, Default)]
pub struct DayBooks {
    pub charges: Vec<Charge>,
    pub refunds: Vec<Refund>,
}

/// A run to save; its version is decided in the saving transaction.
#[derive(Debug, Clone)]
pub struct NewReconciliation {
    pub id: String,
    pub scope: Scope,
    pub provider: Provider,
    pub bill_date: BillDate,
    pub created: i64,
    pub statement: paygate_domain::reconcile::Statement,
    pub carried: Vec<String>,
    pub matched_elsewhere: Vec<String>,
    /// The bill as downloaded (empty when the channel had none).
    pub file: Vec<u8>,
}

/// A discrepancy a run found: `Open`, or `ResolvedAutomatically` when the run's own re-query settled it.
#[derive(Debug, Clone)]
pub struct FoundDiscrepancy {
    pub id: String,
    pub kind: DiscrepancyKind,
    pub object_key: String,
    pub details: serde_json::Value,
    pub state: DiscrepancyState,
}

#[derive(Debug, Clone, Default)]
pub struct DiscrepancyFilter {
    pub provider: Option<Provider>,
    pub reconciliation_id: Option<String>,
    pub state: Option<DiscrepancyState>,
    pub kind: Option<DiscrepancyKind>,
}

#[async_trait]
pub trait ReconcileStore: Send + Sync {
    /// Charges paid in `[from, to)`, refunds succeeded in it, and the scope's pending refunds created before `to`.
    async fn day_books(&self, scope: &Scope, from: i64, to: i64) -> Result<DayBooks>;
    async fn refund_by_no(&self, scope: &Scope, refund_no: &str) -> Result<Option<Refund>>;
    /// The newest version of a day's run.
    async fn latest_reconciliation(
        &self,
        scope: &Scope,
        provider: Provider,
        date: BillDate,
    ) -> Result<Option<Reconciliation>>;
    /// Saves a run, its file, what it found (new ones, and ones it resolved) and its events; answers the run and
    /// the discrepancies reported for the first time (or reopened) by it.
    /// Taken by value: the bill may be tens of MiB, and is moved into its INSERT, never copied.
    async fn save_reconciliation(
        &self,
        run: NewReconciliation,
        found: Vec<FoundDiscrepancy>,
        consistent_keys: HashSet<String>,
    ) -> Result<(Reconciliation, Vec<Discrepancy>)>;
    async fn reconciliation(&self, scope: &Scope, id: &str) -> Result<Option<Reconciliation>>;
    async fn reconciliation_file(&self, scope: &Scope, id: &str) -> Result<Option<Vec<u8>>>;
    /// Newest first; `starting_after` is the id of the last run of the previous page.
    async fn reconciliations(
        &self,
        scope: &Scope,
        provider: Option<Provider>,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<Reconciliation>>;
    /// Newest first; `starting_after` as above. `limit` up to 10 000 (the CSV export pages with it).
    async fn discrepancies(
        &self,
        scope: &Scope,
        filter: &DiscrepancyFilter,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<Discrepancy>>;
    /// Resolves an open discrepancy with a person's note; `None` when there is no such discrepancy. One already
    /// resolved is answered as it is (the caller tells the person). `audit` (a console user's resolution) is
    /// written in the same transaction, only when this call resolved it.
    async fn resolve_discrepancy(
        &self,
        scope: &Scope,
        id: &str,
        note: &str,
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<(Discrepancy, bool)>>;
}

const RUN_COLUMNS: &str = "id, app_id, livemode, provider, bill_date, version, created, statement, carried, \
    matched_elsewhere";
const DISCREPANCY_COLUMNS: &str = "id, app_id, livemode, provider, reconciliation_id, bill_date, kind, object_key, \
    details, state, resolution_note, created, resolved";

fn json_err(e: serde_json::Error) -> Problem {
    Problem::internal(format!("a stored reconciliation does not parse: {e}"))
}

fn json_text(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Problem::internal(format!("a reconciliation does not serialise: {e}")))
}

fn run_row(r: &dyn RowLike) -> Result<Reconciliation> {
    Ok(Reconciliation {
        id: r.text(0)?,
        app_id: r.text(1)?,
        mode: Mode::from_live(r.boolean(2)?),
        provider: Provider::parse(&r.text(3)?)?,
        bill_date: BillDate::parse("bill_date", &r.text(4)?)?,
        version: r.int(5)?,
        created: r.int(6)?,
        statement: serde_json::from_str(&r.text(7)?).map_err(json_err)?,
        carried: serde_json::from_str(&r.text(8)?).map_err(json_err)?,
        matched_elsewhere: serde_json::from_str(&r.text(9)?).map_err(json_err)?,
    })
}

fn discrepancy_row(r: &dyn RowLike) -> Result<Discrepancy> {
    Ok(Discrepancy {
        id: r.text(0)?,
        app_id: r.text(1)?,
        mode: Mode::from_live(r.boolean(2)?),
        provider: Provider::parse(&r.text(3)?)?,
        reconciliation_id: r.text(4)?,
        bill_date: BillDate::parse("bill_date", &r.text(5)?)?,
        kind: DiscrepancyKind::parse("kind", &r.text(6)?)?,
        object_key: r.text(7)?,
        details: serde_json::from_str(&r.text(8)?).map_err(json_err)?,
        state: DiscrepancyState::parse("state", &r.text(9)?)?,
        resolution_note: r.opt_text(10)?,
        created: r.int(11)?,
        resolved: r.opt_int(12)?,
    })
}

fn scope_params(scope: &Scope) -> Vec<SqlParam> {
    vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())]
}

fn day_params(scope: &Scope, provider: Provider, date: BillDate) -> Vec<SqlParam> {
    let mut p = scope_params(scope);
    p.extend([SqlParam::Text(provider.as_str().into()), SqlParam::Text(date.to_string())]);
    p
}

/// The page of `rows` read with one extra row to know whether more follow.
fn page_of<T>(mut rows: Vec<T>, limit: i64) -> Page<T> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Page { data: rows, has_more }
}

/// A newest-first page of `table` in the scope: each filter given is `column = value`; `starting_after` is the id
/// of the previous page's last row (an unknown id reads from the start); one row more than `limit` is read.
fn newest_first(
    table: &str,
    columns: &str,
    scope: &Scope,
    filters: &[(&str, Option<String>)],
    limit: i64,
    starting_after: Option<&str>,
) -> (String, Vec<SqlParam>) {
    let mut params = scope_params(scope);
    let mut sql = format!("SELECT {columns} FROM {table} WHERE app_id = $1 AND livemode = $2");
    for (column, value) in filters {
        if let Some(v) = value {
            params.push(SqlParam::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ${}", params.len()));
        }
    }
    if let Some(id) = starting_after {
        params.push(SqlParam::Text(id.to_string()));
        let n = params.len();
        sql.push_str(&format!(
            " AND seq < COALESCE((SELECT seq FROM {table} WHERE app_id = $1 AND livemode = $2 AND id = ${n}), 0)"
        ));
    }
    params.push(SqlParam::Int(limit.saturating_add(1)));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", params.len()));
    (sql, params)
}

const CHARGES_PAID: &str = "SELECT {CHARGE_COLUMNS} FROM charges WHERE app_id = $1 AND livemode = $2 \
    AND time_paid >= $3 AND time_paid < $4";
const REFUNDS_OF_DAY: &str = "SELECT {REFUND_COLUMNS} FROM refunds WHERE app_id = $1 AND livemode = $2 \
    AND time_succeed >= $3 AND time_succeed < $4";
const REFUNDS_PENDING: &str = "SELECT {REFUND_COLUMNS} FROM refunds WHERE app_id = $1 AND livemode = $2 \
    AND status = 'pending' AND created < $3";

#[async_trait]
impl<B: crate::Backend> ReconcileStore for B {
    async fn day_books(&self, scope: &Scope, from: i64, to: i64) -> Result<DayBooks> {
        let charges_sql = CHARGES_PAID.replace("{CHARGE_COLUMNS}", rows::CHARGE_COLUMNS);
        let refunds_sql = REFUNDS_OF_DAY.replace("{REFUND_COLUMNS}", rows::REFUND_COLUMNS);
        let pending_sql = REFUNDS_PENDING.replace("{REFUND_COLUMNS}", rows::REFUND_COLUMNS);
        let mut window = scope_params(scope);
        window.extend([SqlParam::Int(from), SqlParam::Int(to)]);
        let mut pending = scope_params(scope);
        pending.push(SqlParam::Int(to));
        job!(self, Read, [], |tx| {
            let charges = tx.query(&charges_sql, &window, rows::charge).await?;
            let mut refunds = tx.query(&refunds_sql, &window, rows::refund).await?;
            refunds.extend(tx.query(&pending_sql, &pending, rows::refund).await?);
            Ok(DayBooks { charges, refunds })
        })
    }

    async fn refund_by_no(&self, scope: &Scope, refund_no: &str) -> Result<Option<Refund>> {
        let sql = format!(
            "SELECT {} FROM refunds WHERE app_id = $1 AND livemode = $2 AND refund_no = $3",
            rows::REFUND_COLUMNS
        );
        let params = scoped(scope, refund_no);
        job!(self, Read, [], |tx| { tx.query_opt(&sql, &params, rows::refund).await })
    }

    async fn latest_reconciliation(
        &self,
        scope: &Scope,
        provider: Provider,
        date: BillDate,
    ) -> Result<Option<Reconciliation>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM reconciliations WHERE app_id = $1 AND livemode = $2 AND provider = $3 \
             AND bill_date = $4 ORDER BY version DESC LIMIT 1"
        );
        let params = day_params(scope, provider, date);
        job!(self, Read, [], |tx| { tx.query_opt(&sql, &params, run_row).await })
    }

    async fn save_reconciliation(
        &self,
        run: NewReconciliation,
        found: Vec<FoundDiscrepancy>,
        consistent_keys: HashSet<String>,
    ) -> Result<(Reconciliation, Vec<Discrepancy>)> {
        job!(self, Write, [], |tx| { save(tx, run, &found, &consistent_keys).await })
    }

    async fn reconciliation(&self, scope: &Scope, id: &str) -> Result<Option<Reconciliation>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM reconciliations WHERE app_id = $1 AND livemode = $2 AND id = $3");
        let params = scoped(scope, id);
        job!(self, Read, [], |tx| { tx.query_opt(&sql, &params, run_row).await })
    }

    async fn reconciliation_file(&self, scope: &Scope, id: &str) -> Result<Option<Vec<u8>>> {
        const SQL: &str = "SELECT f.content FROM reconciliation_files f JOIN reconciliations r \
            ON r.id = f.reconciliation_id WHERE r.app_id = $1 AND r.livemode = $2 AND r.id = $3";
        let params = scoped(scope, id);
        job!(self, Read, [], |tx| { tx.query_opt(SQL, &params, |r| r.bytes(0)).await })
    }

    async fn reconciliations(
        &self,
        scope: &Scope,
        provider: Option<Provider>,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<Reconciliation>> {
        let filters = [("provider", provider.map(|p| p.as_str().to_string()))];
        let (sql, params) = newest_first("reconciliations", RUN_COLUMNS, scope, &filters, limit, starting_after);
        job!(self, Read, [], |tx| { Ok(page_of(tx.query(&sql, &params, run_row).await?, limit)) })
    }

    async fn discrepancies(
        &self,
        scope: &Scope,
        filter: &DiscrepancyFilter,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<Discrepancy>> {
        let filters = [
            ("provider", filter.provider.map(|p| p.as_str().to_string())),
            ("reconciliation_id", filter.reconciliation_id.clone()),
            ("state", filter.state.map(|s| s.as_str().to_string())),
            ("kind", filter.kind.map(|k| k.as_str().to_string())),
        ];
        let table = "reconciliation_discrepancies";
        let (sql, params) = newest_first(table, DISCREPANCY_COLUMNS, scope, &filters, limit, starting_after);
        job!(self, Read, [], |tx| { Ok(page_of(tx.query(&sql, &params, discrepancy_row).await?, limit)) })
    }

    async fn resolve_discrepancy(
        &self,
        scope: &Scope,
        id: &str,
        note: &str,
        now: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<(Discrepancy, bool)>> {
        const RESOLVE: &str = "UPDATE reconciliation_discrepancies SET state = 'resolved_manually', \
            resolution_note = $4, resolved = $5 WHERE app_id = $1 AND livemode = $2 AND id = $3 AND state = 'open'";
        let select = format!(
            "SELECT {DISCREPANCY_COLUMNS} FROM reconciliation_discrepancies WHERE app_id = $1 AND livemode = $2 \
             AND id = $3"
        );
        let mut params = scoped(scope, id);
        let lookup = params.clone();
        params.extend([SqlParam::Text(note.to_string()), SqlParam::Int(now)]);
        let audit = audit.cloned();
        job!(self, Write, [audit], |tx| {
            let changed = tx.exec(RESOLVE, &params).await? == 1;
            if let (true, Some(audit)) = (changed, &audit) {
                insert_audit(tx, audit).await?;
            }
            Ok(tx.query_opt(&select, &lookup, discrepancy_row).await?.map(|d| (d, changed)))
        })
    }
}

async fn save(
    tx: &mut dyn crate::Tx,
    mut run: NewReconciliation,
    found: &[FoundDiscrepancy],
    consistent_keys: &HashSet<String>,
) -> Result<(Reconciliation, Vec<Discrepancy>)> {
    let scope = &run.scope;
    let day = day_params(scope, run.provider, run.bill_date);
    let version: i64 = tx
        .query_opt(
            "SELECT COALESCE(MAX(version), 0) FROM reconciliations WHERE app_id = $1 AND livemode = $2 \
             AND provider = $3 AND bill_date = $4",
            &day,
            |r| r.int(0),
        )
        .await?
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| Problem::internal("reconciliation versions overflow"))?;
    let saved = Reconciliation {
        id: run.id.clone(),
        app_id: scope.app_id.clone(),
        mode: scope.mode,
        provider: run.provider,
        bill_date: run.bill_date,
        version,
        created: run.created,
        statement: run.statement.clone(),
        carried: run.carried.clone(),
        matched_elsewhere: run.matched_elsewhere.clone(),
    };
    let insert = format!(
        "INSERT INTO reconciliations ({RUN_COLUMNS}, result) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    let params = vec![
        SqlParam::Text(saved.id.clone()),
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Text(run.provider.as_str().into()),
        SqlParam::Text(run.bill_date.to_string()),
        SqlParam::Int(version),
        SqlParam::Int(run.created),
        SqlParam::Text(json_text(&saved.statement)?),
        SqlParam::Text(json_text(&saved.carried)?),
        SqlParam::Text(json_text(&saved.matched_elsewhere)?),
        SqlParam::Text(saved.result().into()),
    ];
    tx.exec(&insert, &params).await?;
    tx.exec(
        "INSERT INTO reconciliation_files (reconciliation_id, content) VALUES ($1, $2)",
        &[SqlParam::Text(saved.id.clone()), SqlParam::Bytes(std::mem::take(&mut run.file))],
    )
    .await?;

    let mut reported = Vec::new();
    for d in found {
        if let Some(row) = insert_or_reopen(tx, &discrepancy_of(&run, d)).await? {
            emit(tx, scope, RECONCILIATION_DISCREPANCY, row.to_json(), run.created).await?;
            reported.push(row);
        }
    }
    // Open discrepancies of this channel whose row this run found consistent are resolved; the open ones are few
    // (a partial index), the consistent keys many: intersect here, then each UPDATE re-checks `state = 'open'`.
    let open: Vec<(String, String)> = tx
        .query(
            "SELECT id, object_key FROM reconciliation_discrepancies WHERE app_id = $1 AND livemode = $2 \
             AND provider = $3 AND state = 'open'",
            &day[..3],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )
        .await?;
    for (id, _) in open.into_iter().filter(|(_, key)| consistent_keys.contains(key)) {
        tx.exec(
            "UPDATE reconciliation_discrepancies SET state = 'resolved_automatically', resolved = $4 \
             WHERE app_id = $1 AND livemode = $2 AND id = $3 AND state = 'open'",
            &rows::with(scoped(scope, &id), [SqlParam::Int(run.created)]),
        )
        .await?;
    }
    emit(tx, scope, RECONCILIATION_COMPLETED, saved.to_json(), run.created).await?;
    Ok((saved, reported))
}

fn discrepancy_of(run: &NewReconciliation, d: &FoundDiscrepancy) -> Discrepancy {
    let resolved = (d.state != DiscrepancyState::Open).then_some(run.created);
    Discrepancy {
        id: d.id.clone(),
        app_id: run.scope.app_id.clone(),
        mode: run.scope.mode,
        provider: run.provider,
        reconciliation_id: run.id.clone(),
        bill_date: run.bill_date,
        kind: d.kind,
        object_key: d.object_key.clone(),
        details: d.details.clone(),
        state: d.state,
        resolution_note: None,
        created: run.created,
        resolved,
    }
}

/// Inserts a discrepancy seen for the first time; answers it when it is reported now: new, or open again after a
/// run had resolved it automatically. One already known (open, or resolved by a person) is left as it is.
async fn insert_or_reopen(tx: &mut dyn crate::Tx, d: &Discrepancy) -> Result<Option<Discrepancy>> {
    let insert = format!(
        "INSERT INTO reconciliation_discrepancies ({DISCREPANCY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12) \
         ON CONFLICT (app_id, livemode, provider, kind, object_key) DO NOTHING"
    );
    let details = serde_json::to_string(&d.details).map_err(json_err)?;
    let params = vec![
        SqlParam::Text(d.id.clone()),
        SqlParam::Text(d.app_id.clone()),
        SqlParam::Bool(d.mode.is_live()),
        SqlParam::Text(d.provider.as_str().into()),
        SqlParam::Text(d.reconciliation_id.clone()),
        SqlParam::Text(d.bill_date.to_string()),
        SqlParam::Text(d.kind.as_str().into()),
        SqlParam::Text(d.object_key.clone()),
        SqlParam::Text(details.clone()),
        SqlParam::Text(d.state.as_str().into()),
        SqlParam::Int(d.created),
        SqlParam::OptInt(d.resolved),
    ];
    if tx.exec(&insert, &params).await? == 1 {
        return Ok(Some(d.clone()));
    }
    if d.state != DiscrepancyState::Open {
        return Ok(None);
    }
    let reopen = "UPDATE reconciliation_discrepancies SET state = 'open', resolved = NULL, reconciliation_id = $6, \
        bill_date = $7, details = $8 WHERE app_id = $1 AND livemode = $2 AND provider = $3 AND kind = $4 \
        AND object_key = $5 AND state = 'resolved_automatically'";
    let params = vec![
        SqlParam::Text(d.app_id.clone()),
        SqlParam::Bool(d.mode.is_live()),
        SqlParam::Text(d.provider.as_str().into()),
        SqlParam::Text(d.kind.as_str().into()),
        SqlParam::Text(d.object_key.clone()),
        SqlParam::Text(d.reconciliation_id.clone()),
        SqlParam::Text(d.bill_date.to_string()),
        SqlParam::Text(details),
    ];
    if tx.exec(reopen, &params).await? != 1 {
        return Ok(None);
    }
    let select = format!(
        "SELECT {DISCREPANCY_COLUMNS} FROM reconciliation_discrepancies WHERE app_id = $1 AND livemode = $2 \
         AND provider = $3 AND kind = $4 AND object_key = $5"
    );
    tx.query_opt(&select, &params[..5], discrepancy_row).await
}
