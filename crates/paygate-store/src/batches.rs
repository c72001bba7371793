//! Order creates and retrieves that arrive together go to the database together (PostgreSQL; a
//! backend opts in through [`crate::Backend::batches`], batching itself is [`crate::coalesce`]).
//!
//! - Creates: one multi-row `INSERT … SELECT FROM unnest(…) ON CONFLICT (app_id, livemode,
//!   merchant_order_no) DO NOTHING` per batch, autocommitted: one statement and one commit for
//!   the batch, and every caller is answered after that commit. Duplicates are decided per row
//!   by the unique key, exactly as for a lone create, and named the same way. A statement that
//!   fails (a CHECK, a NUL byte, a taken id in one row) is retried row by row, so only the bad
//!   row fails.
//! - Retrieves: one query per batch, each order looked up by its `(app_id, livemode, id)`, so a
//!   batch of several apps' and modes' calls answers each from its own scope only.
//!
//! A batch of one runs the lone statement (`insert_order_row`, `order_view_row`): at low load
//! nothing changes.

use crate::coalesce::{BatchFuture, Coalescer, Limits};
use crate::rows::{self, SqlArray, SqlParam};
use crate::sql::{vanished, Access, Backend, Tx, TxFuture};
use crate::transactions::{insert_order_row, order_view_row};
use crate::Result;
use paygate_domain::objects::OrderView;
use paygate_domain::{Charge, Order, Problem, ProblemKind, Scope};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Batches of at most this many calls: a few milliseconds of work for the database.
pub const MAX_BATCH: usize = 256;

/// The coalescers of a backend that batches.
pub struct Batches {
    inserts: Coalescer<Order, ()>,
    views: Coalescer<(Scope, String), Option<OrderView>>,
    /// Wallet payments (engineer D's, see `pos/wallet.rs`).
    pub(crate) wallets: Coalescer<crate::pos::WalletPayment, crate::pos::PosRecord>,
}

impl Batches {
    /// `plain` runs the batches' jobs: the same database, answering `None` to
    /// [`Backend::batches`] (a batch's job must not be batched again).
    pub fn new<B: Backend>(plain: Arc<B>, limits: Limits) -> Batches {
        let db = plain.clone();
        let inserts = Coalescer::new(limits, move |orders: Vec<Order>| -> BatchFuture<()> {
            let (db, n) = (db.clone(), orders.len());
            Box::pin(async move {
                let job =
                    db.run(Access::Autocommit, move |tx| Box::pin(async move { insert_orders(tx, orders).await }));
                each(n, job.await)
            })
        });
        let wallets = crate::pos::wallet::coalescer(plain.clone(), limits);
        let db = plain;
        let views = Coalescer::new(limits, move |keys: Vec<(Scope, String)>| -> BatchFuture<Option<OrderView>> {
            let (db, n) = (db.clone(), keys.len());
            Box::pin(async move { each(n, db.run(Access::Read, move |tx| Box::pin(order_views(tx, keys))).await) })
        });
        Batches { inserts, views, wallets }
    }

    pub async fn insert_order(&self, order: Order) -> Result<()> {
        self.inserts.call(order).await
    }

    pub async fn order_view(&self, scope: Scope, id: String) -> Result<Option<OrderView>> {
        self.views.call((scope, id)).await
    }
}

/// A job's answers, or its own failure (no connection, the database away) as every call's.
fn each<T>(n: usize, job: Result<Vec<Result<T>>>) -> Vec<Result<T>> {
    match job {
        Ok(answers) => answers,
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

/// `Ok(answers)` from the batch statement, or, if it failed for any reason but the database
/// being away, each call run alone by `one` so that only the calls that fail alone fail.
async fn batch_or_each<C: Sync, T: Send>(
    tx: &mut dyn Tx,
    calls: &[C],
    batch: Result<Vec<Result<T>>>,
    one: for<'a> fn(&'a mut dyn Tx, &'a C) -> TxFuture<'a, T>,
) -> Result<Vec<Result<T>>> {
    match batch {
        Err(e) if e.kind == ProblemKind::Unavailable => Err(e),
        Ok(answers) => Ok(answers),
        Err(_) => {
            let mut answers = Vec::with_capacity(calls.len());
            for call in calls {
                answers.push(one(&mut *tx, call).await);
            }
            Ok(answers)
        }
    }
}

async fn insert_orders(tx: &mut dyn Tx, orders: Vec<Order>) -> Result<Vec<Result<()>>> {
    if let [order] = orders.as_slice() {
        return Ok(vec![insert_order_row(tx, order).await]);
    }
    let batch = insert_batch(tx, &orders).await;
    batch_or_each(tx, &orders, batch, |tx, order| Box::pin(insert_order_row(tx, order))).await
}

/// `(app_id, livemode, merchant_order_no)` or `(app_id, livemode, id)`.
type Key = (String, bool, String);

fn merchant_no(o: &Order) -> Key {
    (o.app_id.clone(), o.mode.is_live(), o.merchant_order_no.clone())
}

async fn insert_batch(tx: &mut dyn Tx, orders: &[Order]) -> Result<Vec<Result<()>>> {
    // The first order of each merchant_order_no is sent; a later one in the same batch is a
    // duplicate of whichever order holds the number after the statement, like a lone create
    // that came second. Sent in key order: concurrent batches then take the unique key's
    // entries in one order and cannot deadlock over numbers they share.
    let mut seen = HashSet::new();
    let mut sent: Vec<&Order> = orders.iter().filter(|o| seen.insert(merchant_no(o))).collect();
    sent.sort_by_key(|o| merchant_no(o));
    let params = columns(sent.iter().map(|o| rows::order_params(o)))?;
    let row = |r: &dyn rows::RowLike| Ok(((r.text(0)?, r.boolean(1)?, r.text(2)?), r.text(3)?));
    let inserted: HashMap<Key, String> =
        tx.query(&insert_orders_sql(&params), &params, row).await?.into_iter().collect();
    let is_inserted = |o: &Order| inserted.get(&merchant_no(o)) == Some(&o.id);
    let mut asked = HashSet::new();
    let refused: Vec<&Order> = orders.iter().filter(|o| !is_inserted(o) && asked.insert(merchant_no(o))).collect();
    let mut holders = HashMap::new();
    if !refused.is_empty() {
        let keys = columns(refused.iter().map(|o| rows::merchant_no_params(o)))?;
        holders = tx.query(HOLDERS, &keys, row).await?.into_iter().collect();
    }
    let answer = |o: &Order| match is_inserted(o) {
        true => Ok(()),
        false => match holders.get(&merchant_no(o)) {
            Some(holder) => Err(rows::duplicate_order(&o.merchant_order_no, holder)),
            None => Err(vanished("order holding the merchant_order_no")),
        },
    };
    Ok(orders.iter().map(answer).collect())
}

/// `app_id, livemode, merchant_order_no, id` of each order the statement inserted; the conflict
/// target is `insert_new_order_sql`'s, so a taken number is skipped and anything else fails.
fn insert_orders_sql(columns: &[SqlParam]) -> String {
    format!(
        "INSERT INTO orders ({}) SELECT * FROM unnest({}) \
         ON CONFLICT (app_id, livemode, merchant_order_no) DO NOTHING \
         RETURNING app_id, livemode, merchant_order_no, id",
        rows::ORDER_COLUMNS,
        casts(columns)
    )
}

/// The order holding each `(app_id, livemode, merchant_order_no)` of `$1..$3`.
const HOLDERS: &str = "SELECT o.app_id, o.livemode, o.merchant_order_no, o.id \
     FROM unnest($1::text[], $2::boolean[], $3::text[]) AS k(app_id, livemode, merchant_order_no) \
     JOIN orders o ON o.app_id = k.app_id AND o.livemode = k.livemode AND o.merchant_order_no = k.merchant_order_no";

fn order_key(scope: &Scope, id: &str) -> Key {
    (scope.app_id.clone(), scope.mode.is_live(), id.to_string())
}

async fn order_views(tx: &mut dyn Tx, keys: Vec<(Scope, String)>) -> Result<Vec<Result<Option<OrderView>>>> {
    if let [(scope, id)] = keys.as_slice() {
        return Ok(vec![order_view_row(tx, scope, id).await]);
    }
    let batch = view_batch(tx, &keys).await.map(|views| views.into_iter().map(Ok).collect());
    batch_or_each(tx, &keys, batch, |tx, (scope, id)| Box::pin(order_view_row(tx, scope, id))).await
}

async fn view_batch(tx: &mut dyn Tx, keys: &[(Scope, String)]) -> Result<Vec<Option<OrderView>>> {
    // An order asked for twice in one batch is read once (the join would repeat its charges).
    let mut wanted: HashMap<Key, usize> = HashMap::new();
    for (scope, id) in keys {
        *wanted.entry(order_key(scope, id)).or_default() += 1;
    }
    let params =
        columns(wanted.keys().map(|(app, live, id)| {
            vec![SqlParam::Text(app.clone()), SqlParam::Bool(*live), SqlParam::Text(id.clone())]
        }))?;
    let mut found: HashMap<Key, Vec<(Order, Option<Charge>)>> = HashMap::new();
    for (order, charge) in tx.query(views_sql(), &params, rows::order_and_charge).await? {
        let key = (order.app_id.clone(), order.mode.is_live(), order.id.clone());
        found.entry(key).or_default().push((order, charge));
    }
    let mut views: HashMap<Key, OrderView> =
        found.into_iter().filter_map(|(key, rows)| Some((key, rows::into_order_view(rows)?))).collect();
    let answer = |(scope, id): &(Scope, String)| {
        let key = order_key(scope, id);
        let left = wanted.get_mut(&key)?;
        *left -= 1;
        if *left == 0 {
            views.remove(&key)
        } else {
            views.get(&key).cloned()
        }
    };
    Ok(keys.iter().map(answer).collect())
}

/// `order_view_sql` for every `(app_id, livemode, id)` of `$1..$3`: each order only in the
/// scope it was asked in; charges newest first within each order.
fn views_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {}, {} FROM unnest($1::text[], $2::boolean[], $3::text[]) AS k(app_id, livemode, id) \
         JOIN orders o ON o.app_id = k.app_id AND o.livemode = k.livemode AND o.id = k.id \
         LEFT JOIN charges c ON c.order_id = o.id ORDER BY c.seq DESC",
        rows::prefixed(rows::ORDER_COLUMNS, "o."),
        rows::prefixed(rows::CHARGE_COLUMNS, "c.")
    )
}

/// Rows of parameters → one array per column (what `unnest` takes). Every row has the shape of
/// the first; a text or integer column takes NULLs, so `Text`/`OptText` share an array.
fn columns(rows: impl IntoIterator<Item = Vec<SqlParam>>) -> Result<Vec<SqlParam>> {
    let mut columns: Vec<SqlArray> = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        if i == 0 {
            columns = row.iter().map(empty_column).collect::<Result<_>>()?;
        }
        if row.len() != columns.len() {
            return Err(Problem::internal("a batch row has another width than the first"));
        }
        for (column, param) in columns.iter_mut().zip(row) {
            push(column, param)?;
        }
    }
    Ok(columns.into_iter().map(SqlParam::Array).collect())
}

fn empty_column(param: &SqlParam) -> Result<SqlArray> {
    Ok(match param {
        SqlParam::Text(_) | SqlParam::OptText(_) => SqlArray::Text(Vec::new()),
        SqlParam::Int(_) | SqlParam::OptInt(_) => SqlArray::Int(Vec::new()),
        SqlParam::Bool(_) => SqlArray::Bool(Vec::new()),
        SqlParam::Bytes(_) | SqlParam::Array(_) => return Err(Problem::internal("no array column for this parameter")),
    })
}

fn push(column: &mut SqlArray, param: SqlParam) -> Result<()> {
    match (column, param) {
        (SqlArray::Text(v), SqlParam::Text(s)) => v.push(Some(s)),
        (SqlArray::Text(v), SqlParam::OptText(s)) => v.push(s),
        (SqlArray::Int(v), SqlParam::Int(i)) => v.push(Some(i)),
        (SqlArray::Int(v), SqlParam::OptInt(i)) => v.push(i),
        (SqlArray::Bool(v), SqlParam::Bool(b)) => v.push(b),
        _ => return Err(Problem::internal("a batch column mixes parameter types")),
    }
    Ok(())
}

/// `$1::text[], $2::bigint[], …` for `columns`.
fn casts(columns: &[SqlParam]) -> String {
    let cast = |(i, c): (usize, &SqlParam)| {
        let kind = match c {
            SqlParam::Array(SqlArray::Text(_)) => "text",
            SqlParam::Array(SqlArray::Int(_)) => "bigint",
            _ => "boolean",
        };
        format!("${}::{kind}[]", i + 1)
    };
    columns.iter().enumerate().map(cast).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_transpose_rows_and_keep_nulls() {
        let rows = [
            vec![SqlParam::Text("a".into()), SqlParam::OptInt(None), SqlParam::Bool(true)],
            vec![SqlParam::Text("b".into()), SqlParam::OptInt(Some(2)), SqlParam::Bool(false)],
        ];
        let cols = columns(rows).unwrap();
        assert_eq!(
            cols,
            [
                SqlParam::Array(SqlArray::Text(vec![Some("a".into()), Some("b".into())])),
                SqlParam::Array(SqlArray::Int(vec![None, Some(2)])),
                SqlParam::Array(SqlArray::Bool(vec![true, false])),
            ]
        );
        assert_eq!(casts(&cols), "$1::text[], $2::bigint[], $3::boolean[]");
        let mixed = [vec![SqlParam::Int(1)], vec![SqlParam::Text("x".into())]];
        assert!(columns(mixed).unwrap_err().is_internal());
        assert!(columns([vec![SqlParam::Int(1)], vec![]]).unwrap_err().is_internal());
    }
}
