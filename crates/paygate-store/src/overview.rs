//! The console overview's numbers (PostgreSQL 0014 / SQLite 0015). Settled money is rolled up per (app, mode,
//! Beijing day, channel family, face) into `console_daily`, and orders created and paid per (app, mode, day) into
//! `console_daily_orders`, by the worker once a day has ended: never on the payment path. A rolled-up day is
//! marked in `console_rollup_days`; rolling a day up again upserts the same values, so two nodes doing it at once
//! agree. "Today" is never rolled up: [`OverviewStore::live_figures`] reads it through the indexes bounded by time
//! (`charges_scope_paid`, `refunds_scope_succeeded`, `orders_scope_created`).

use crate::rows::{RowLike, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::Scope;

/// Settled money of one (channel, face) over a span of time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figure {
    /// The charge's channel (live figures) or its family (rolled up; paygate-core maps one to the other).
    pub channel: String,
    /// `v1`, `hserve` (知晓云) or `cashier`: which face made the order.
    pub face: String,
    pub paid_count: i64,
    pub paid_amount: i64,
    pub refund_count: i64,
    pub refund_amount: i64,
}

/// One scope's figures over a span: money by (channel, face), and orders created and of them paid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub money: Vec<Figure>,
    pub orders: i64,
    pub paid_orders: i64,
}

#[async_trait]
pub trait OverviewStore: Send + Sync {
    /// The days (their start, unix) at or after `since` already rolled up.
    async fn rolled_up_days(&self, since: i64) -> Result<Vec<i64>>;
    /// Every (app, mode) there is: a day is rolled up for each.
    async fn app_scopes(&self) -> Result<Vec<Scope>>;
    /// The figures of `[from, to)` read from the payment tables (today, or a day being rolled up).
    async fn live_figures(&self, scope: &Scope, from: i64, to: i64) -> Result<Figures>;
    /// Writes (upserts) one scope's figures of the day starting at `day`.
    async fn save_day(&self, scope: &Scope, day: i64, figures: &Figures) -> Result<()>;
    /// Marks the day starting at `day` rolled up for every scope.
    async fn finish_day(&self, day: i64) -> Result<()>;
    /// The rolled-up figures of the days starting in `[from, to)`, summed per (channel family, face).
    async fn rolled_up_figures(&self, scope: &Scope, from: i64, to: i64) -> Result<Figures>;
}

/// Which face made an order: a 知晓云 order has an `hserve_orders` row, a cashier (付款码) one a `pos_orders` row.
/// Scalar subqueries probed per row by primary key, neither joined nor `EXISTS`: PostgreSQL hashed all of
/// `hserve_orders` for either (300–500 ms at 200 k rows); a probe costs follow the day's payments only.
macro_rules! face {
    ($order:literal) => {
        concat!(
            "COALESCE((SELECT 'hserve' FROM hserve_orders h WHERE h.order_id = ",
            $order,
            "), (SELECT 'cashier' FROM pos_orders p WHERE p.order_id = ",
            $order,
            "), 'v1')"
        )
    };
}
const PAID: &str = concat!(
    "SELECT c.channel, ",
    face!("c.order_id"),
    ", COUNT(*), CAST(COALESCE(SUM(c.amount), 0) AS BIGINT) FROM charges c \
    WHERE c.app_id = $1 AND c.livemode = $2 AND c.time_paid >= $3 AND c.time_paid < $4 GROUP BY 1, 2"
);
const REFUNDED: &str = concat!(
    "SELECT c.channel, ",
    face!("r.order_id"),
    ", COUNT(*), CAST(COALESCE(SUM(r.amount), 0) AS BIGINT) FROM refunds r \
    JOIN charges c ON c.id = r.charge_id \
    WHERE r.app_id = $1 AND r.livemode = $2 AND r.time_succeed >= $3 AND r.time_succeed < $4 \
    AND r.status = 'succeeded' GROUP BY 1, 2"
);
/// Index-only on PostgreSQL: `orders_scope_created` includes the status.
const ORDERS: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status IN ('paid', 'refunded', \
    'paid_after_close') THEN 1 ELSE 0 END), 0) AS BIGINT) FROM orders \
    WHERE app_id = $1 AND livemode = $2 AND created >= $3 AND created < $4";
const SAVE_MONEY: &str = "INSERT INTO console_daily (app_id, livemode, day, channel, face, paid_count, \
    paid_amount, refund_count, refund_amount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (app_id, livemode, day, channel, face) DO UPDATE SET paid_count = excluded.paid_count, \
    paid_amount = excluded.paid_amount, refund_count = excluded.refund_count, refund_amount = excluded.refund_amount";
const SAVE_ORDERS: &str = "INSERT INTO console_daily_orders (app_id, livemode, day, orders, paid_orders) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, livemode, day) DO UPDATE SET orders = excluded.orders, \
    paid_orders = excluded.paid_orders";
const FINISH: &str = "INSERT INTO console_rollup_days (day) VALUES ($1) ON CONFLICT (day) DO NOTHING";
const DAYS: &str = "SELECT day FROM console_rollup_days WHERE day >= $1 ORDER BY day";
const SUM_MONEY: &str = "SELECT channel, face, CAST(SUM(paid_count) AS BIGINT), CAST(SUM(paid_amount) AS BIGINT), \
    CAST(SUM(refund_count) AS BIGINT), CAST(SUM(refund_amount) AS BIGINT) FROM console_daily \
    WHERE app_id = $1 AND livemode = $2 AND day >= $3 AND day < $4 GROUP BY channel, face";
const SUM_ORDERS: &str =
    "SELECT CAST(COALESCE(SUM(orders), 0) AS BIGINT), CAST(COALESCE(SUM(paid_orders), 0) AS BIGINT) \
    FROM console_daily_orders \
    WHERE app_id = $1 AND livemode = $2 AND day >= $3 AND day < $4";

fn span(scope: &Scope, from: i64, to: i64) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Int(from),
        SqlParam::Int(to),
    ]
}

fn money(r: &dyn RowLike, refunds: bool) -> Result<Figure> {
    let (channel, face, count, amount) = (r.text(0)?, r.text(1)?, r.int(2)?, r.int(3)?);
    Ok(if refunds {
        Figure { channel, face, refund_count: count, refund_amount: amount, ..Figure::default() }
    } else {
        Figure { channel, face, paid_count: count, paid_amount: amount, ..Figure::default() }
    })
}

async fn read_figures(tx: &mut dyn crate::sql::Tx, params: &[SqlParam]) -> Result<Figures> {
    let mut money_rows = tx.query(PAID, params, |r| money(r, false)).await?;
    money_rows.extend(tx.query(REFUNDED, params, |r| money(r, true)).await?);
    let (orders, paid_orders) = tx.query_opt(ORDERS, params, |r| Ok((r.int(0)?, r.int(1)?))).await?.unwrap_or((0, 0));
    Ok(Figures { money: money_rows, orders, paid_orders })
}

#[async_trait]
impl<B: crate::Backend> OverviewStore for B {
    async fn rolled_up_days(&self, since: i64) -> Result<Vec<i64>> {
        job!(self, Read, [], |tx| { tx.query(DAYS, &[SqlParam::Int(since)], |r| r.int(0)).await })
    }

    async fn app_scopes(&self) -> Result<Vec<Scope>> {
        let ids = job!(self, Read, [], |tx| { tx.query("SELECT id FROM apps ORDER BY id", &[], |r| r.text(0)).await })?;
        let modes = [paygate_domain::Mode::Test, paygate_domain::Mode::Live];
        Ok(ids.into_iter().flat_map(|app_id| modes.map(|mode| Scope { app_id: app_id.clone(), mode })).collect())
    }

    async fn live_figures(&self, scope: &Scope, from: i64, to: i64) -> Result<Figures> {
        let params = span(scope, from, to);
        if B::NAME == "postgres" {
            // A day's payments put this aggregate's cost estimate near PostgreSQL's `jit_above_cost`, and compiling
            // it took 40–170 ms against a 20 ms query (10 M orders, 19 k payments a day): JIT off for this
            // transaction only (`SET LOCAL`, so the pooled connection keeps its settings).
            return job!(self, Write, [], |tx| {
                tx.exec("SET LOCAL jit = off", &[]).await?;
                read_figures(tx, &params).await
            });
        }
        job!(self, Read, [], |tx| { read_figures(tx, &params).await })
    }

    async fn save_day(&self, scope: &Scope, day: i64, figures: &Figures) -> Result<()> {
        let (app, live) = (SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live()));
        let rows: Vec<Vec<SqlParam>> = figures
            .money
            .iter()
            .map(|f| {
                vec![
                    app.clone(),
                    live.clone(),
                    SqlParam::Int(day),
                    SqlParam::Text(f.channel.clone()),
                    SqlParam::Text(f.face.clone()),
                    SqlParam::Int(f.paid_count),
                    SqlParam::Int(f.paid_amount),
                    SqlParam::Int(f.refund_count),
                    SqlParam::Int(f.refund_amount),
                ]
            })
            .collect();
        let orders =
            vec![app, live, SqlParam::Int(day), SqlParam::Int(figures.orders), SqlParam::Int(figures.paid_orders)];
        job!(self, Write, [], |tx| {
            for row in &rows {
                tx.exec(SAVE_MONEY, row).await?;
            }
            tx.exec(SAVE_ORDERS, &orders).await?;
            Ok(())
        })
    }

    async fn finish_day(&self, day: i64) -> Result<()> {
        job!(self, Autocommit, [], |tx| {
            tx.exec(FINISH, &[SqlParam::Int(day)]).await?;
            Ok(())
        })
    }

    async fn rolled_up_figures(&self, scope: &Scope, from: i64, to: i64) -> Result<Figures> {
        let params = span(scope, from, to);
        job!(self, Read, [], |tx| {
            let money_rows = tx
                .query(SUM_MONEY, &params, |r| {
                    Ok(Figure {
                        channel: r.text(0)?,
                        face: r.text(1)?,
                        paid_count: r.int(2)?,
                        paid_amount: r.int(3)?,
                        refund_count: r.int(4)?,
                        refund_amount: r.int(5)?,
                    })
                })
                .await?;
            let (orders, paid_orders) =
                tx.query_opt(SUM_ORDERS, &params, |r| Ok((r.int(0)?, r.int(1)?))).await?.unwrap_or((0, 0));
            Ok(Figures { money: money_rows, orders, paid_orders })
        })
    }
}
