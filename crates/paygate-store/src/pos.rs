//! Storage for the cashier (酷点) and SaaS WeChat-Pay faces: signing credentials and the replay
//! cache, fee rates, members and their wallets, and point-of-sale payment records. SQL is written
//! here once for both backends.

use crate::console::{insert_audit, AuditEntry};
use crate::rows::{self, RowLike, SqlParam};
use crate::sql::{job, vanished, Tx};
use crate::transactions::{emit, load_order};
use crate::Result;
use async_trait::async_trait;
use paygate_domain::pos::Discounts;
use paygate_domain::{Amount, App, Charge, Mode, Order, Problem, Scope};
use secrecy::{ExposeSecret, SecretString};

pub(crate) mod wallet;
pub use wallet::WalletPayment;

/// `Debug` shows the secret as `[REDACTED]`, so no `{:?}` can put it in a log.
#[derive(Debug, Clone)]
pub struct FaceCredential {
    /// `open_app_id` (cashier) or `accessid` (SaaS).
    pub public_id: String,
    /// `cashier` or `saas`.
    pub face: String,
    pub scope: Scope,
    /// The shared signing key (`expose_secret()` to sign with it).
    pub secret: SecretString,
    /// The cashier's store token (`token` in the envelope).
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub created: i64,
    pub member_no: String,
    pub phone: String,
    pub name: String,
    pub pay_code: String,
    pub balance: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceTransaction {
    pub created: i64,
    pub kind: String,
    /// Signed: top-ups and refunds add, payments subtract.
    pub amount: i64,
    pub balance_after: Amount,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosMeta {
    pub pay_no: String,
    pub out_trade_no: String,
    pub attach: String,
    pub discounts: Discounts,
    pub pre_fee_subsidy: Option<Amount>,
    pub fee_subsidy_party: Option<String>,
    pub member_id: Option<i64>,
    /// `wechat`, `alipay` or `member`: what the scanned code was.
    pub auth_code_kind: String,
    pub reversed: bool,
    /// WeChat `goods_detail` entries as sent (a JSON list).
    pub goods_detail: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct PosRecord {
    pub order: Order,
    pub charge: Charge,
    pub meta: PosMeta,
    /// The paying member, for wallet payments.
    pub member: Option<Member>,
}

/// A verified envelope's signature, for the replay cache: recorded by the transaction of the
/// operation it asked for (a wallet payment) or on its own before the operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSignature {
    pub public_id: String,
    pub sign: String,
    /// When it was received (server time); forgotten once older than twice the timestamp window.
    pub at: i64,
}

/// How a face names a point-of-sale payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PosRef {
    PayNo(String),
    /// The latest payment with this number: a merchant may reuse it (seed 001).
    OutTradeNo(String),
    /// The core order's id, which the cashier's answers show as `order_no` (seed 001).
    OrderNo(String),
    /// The number sent to the channel (seed 002's `channel_trade_no`).
    ChannelTradeNo(String),
}

#[async_trait]
pub trait PosStore: Send + Sync {
    async fn face_credential(&self, public_id: &str) -> Result<Option<(FaceCredential, App)>>;
    async fn face_credentials(&self, app_id: &str) -> Result<Vec<FaceCredential>>;
    /// Records a signature; false when it was seen already (a replay).
    async fn remember_signature(&self, seen: &SeenSignature) -> Result<bool>;
    /// Forgets the signatures received before `before`; how many.
    async fn forget_signatures(&self, before: i64) -> Result<u64>;
    /// With `audit` (the console's), the entry is written in the same transaction, its `before` the rate replaced
    /// as read there (`/v1` and the CLI pass `None`).
    async fn set_fee_rate(&self, scope: &Scope, family: &str, rate_bp: i64, audit: Option<&AuditEntry>) -> Result<()>;
    async fn fee_rate(&self, scope: &Scope, family: &str) -> Result<Option<i64>>;

    /// Fails with a `Conflict` when the member number is taken in the scope.
    async fn create_member(&self, scope: &Scope, member: &Member) -> Result<Member>;
    async fn member(&self, scope: &Scope, id: i64) -> Result<Option<Member>>;
    async fn member_by_pay_code(&self, scope: &Scope, pay_code: &str) -> Result<Option<Member>>;
    /// Adds to the wallet and records the transaction, atomically.
    async fn top_up(&self, scope: &Scope, member_id: i64, amount: Amount, reference: &str, now: i64) -> Result<Member>;
    async fn balance_transactions(&self, scope: &Scope, member_id: i64, limit: i64) -> Result<Vec<BalanceTransaction>>;

    /// The order, its pending charge and the record, in one transaction.
    async fn insert_pos_payment(&self, order: &Order, charge: &Charge, meta: &PosMeta) -> Result<()>;
    /// A wallet payment in one transaction, answered from what it wrote: the signature (a replay
    /// writes nothing and is refused), then the order (paid), its charge (succeeded, settled at
    /// the rate in force), the record, the success events and, last, the debit — a conditional
    /// update that needs the balance to cover it — and its balance transaction. An unknown code
    /// or a balance that does not cover it is refused with the signature kept (it was used up,
    /// as every verified envelope is) and nothing else written.
    async fn wallet_payment(&self, payment: &WalletPayment) -> Result<PosRecord>;
    async fn pos_record(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosRecord>>;
    /// Only the record's own row (discounts, subsidy, …): what settling a payment needs.
    async fn pos_meta(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosMeta>>;
    async fn mark_reversed(&self, scope: &Scope, order_id: &str) -> Result<()>;
}

pub const CREDENTIAL_COLUMNS: &str = "c.public_id, c.face, c.app_id, c.livemode, c.secret, c.token";

pub fn credential(r: &dyn RowLike) -> Result<FaceCredential> {
    Ok(FaceCredential {
        public_id: r.text(0)?,
        face: r.text(1)?,
        scope: Scope { app_id: r.text(2)?, mode: Mode::from_live(r.boolean(3)?) },
        secret: SecretString::from(r.text(4)?),
        token: r.opt_text(5)?,
    })
}

pub const INSERT_CREDENTIAL: &str =
    "INSERT INTO face_credentials (public_id, face, app_id, livemode, secret, token) VALUES ($1, $2, $3, $4, $5, $6)";

pub fn credential_params(c: &FaceCredential) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(c.public_id.clone()),
        SqlParam::Text(c.face.clone()),
        SqlParam::Text(c.scope.app_id.clone()),
        SqlParam::Bool(c.scope.mode.is_live()),
        SqlParam::Text(c.secret.expose_secret().to_string()),
        SqlParam::OptText(c.token.clone()),
    ]
}

pub fn credentials_of_app_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {CREDENTIAL_COLUMNS} FROM face_credentials c WHERE c.app_id = $1 ORDER BY c.face, c.livemode"
    )
}
pub const FORGET_SIGNATURES: &str = "DELETE FROM face_nonces WHERE created < $1";
pub const REMEMBER_SIGNATURE: &str =
    "INSERT INTO face_nonces (public_id, sign, created) VALUES ($1, $2, $3) ON CONFLICT (public_id, sign) DO NOTHING";

pub fn seen_params(seen: &SeenSignature) -> [SqlParam; 3] {
    [SqlParam::Text(seen.public_id.clone()), SqlParam::Text(seen.sign.clone()), SqlParam::Int(seen.at)]
}

/// What a signed face answers to a signature it has seen before.
pub fn replayed() -> Problem {
    Problem::authentication("This request was already received (replay).").with_param("sign")
}
pub const SET_FEE_RATE: &str = "INSERT INTO fee_rates (app_id, livemode, family, rate_bp) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (app_id, livemode, family) DO UPDATE SET rate_bp = $4";
pub const FEE_RATE: &str = "SELECT rate_bp FROM fee_rates WHERE app_id = $1 AND livemode = $2 AND family = $3";

pub const MEMBER_COLUMNS: &str = "id, created, member_no, phone, name, pay_code, balance";

pub fn member(r: &dyn RowLike) -> Result<Member> {
    Ok(Member {
        id: r.int(0)?,
        created: r.int(1)?,
        member_no: r.text(2)?,
        phone: r.text(3)?,
        name: r.text(4)?,
        pay_code: r.text(5)?,
        balance: Amount::from_stored(r.int(6)?),
    })
}

/// Returns no row when the member number is taken.
pub const INSERT_MEMBER: &str = "INSERT INTO members (app_id, livemode, created, member_no, phone, name, pay_code) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, livemode, member_no) DO NOTHING RETURNING id";

pub fn member_params(scope: &Scope, m: &Member) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Int(m.created),
        SqlParam::Text(m.member_no.clone()),
        SqlParam::Text(m.phone.clone()),
        SqlParam::Text(m.name.clone()),
        SqlParam::Text(m.pay_code.clone()),
    ]
}

pub fn inserted_member(id: Option<i64>, m: &Member) -> Result<Member> {
    match id {
        Some(id) => Ok(Member { id, ..m.clone() }),
        None => {
            Err(Problem::conflict("member_no_taken", format!("Member number '{}' is already registered.", m.member_no))
                .with_param("member_no"))
        }
    }
}

pub fn member_by_id_sql() -> &'static str {
    crate::sql::once_sql!("SELECT {MEMBER_COLUMNS} FROM members WHERE app_id = $1 AND livemode = $2 AND id = $3")
}
pub fn member_by_code_sql() -> &'static str {
    crate::sql::once_sql!("SELECT {MEMBER_COLUMNS} FROM members WHERE app_id = $1 AND livemode = $2 AND pay_code = $3")
}

/// `$3` member id, `$4` amount.
pub const CREDIT: &str = "UPDATE members SET balance = balance + $4 WHERE app_id = $1 AND livemode = $2 AND id = $3";
/// `$3` member id, `$4` signed amount, `$5` kind, `$6` reference, `$7` now.
pub const RECORD_BALANCE: &str =
    "INSERT INTO balance_transactions (member_id, app_id, livemode, created, kind, amount, balance_after, reference) \
    SELECT id, app_id, livemode, $7, $5, $4, balance, $6 FROM members WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const BALANCE_TRANSACTIONS: &str =
    "SELECT created, kind, amount, balance_after, reference FROM balance_transactions \
    WHERE app_id = $1 AND livemode = $2 AND member_id = $3 ORDER BY seq DESC LIMIT $4";

pub fn balance_transaction(r: &dyn RowLike) -> Result<BalanceTransaction> {
    Ok(BalanceTransaction {
        created: r.int(0)?,
        kind: r.text(1)?,
        amount: r.int(2)?,
        balance_after: Amount::from_stored(r.int(3)?),
        reference: r.text(4)?,
    })
}

pub fn member_scoped(scope: &Scope, member_id: i64, more: impl IntoIterator<Item = SqlParam>) -> Vec<SqlParam> {
    rows::with(rows::scoped_int(scope, member_id), more)
}

pub const INSERT_META: &str = "INSERT INTO pos_orders \
    (order_id, app_id, livemode, pay_no, out_trade_no, attach, discounts, pre_fee_subsidy, fee_subsidy_party, \
    member_id, auth_code_kind, reversed, goods_detail) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

pub fn meta_params(order: &Order, m: &PosMeta) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(order.id.clone()),
        SqlParam::Text(order.app_id.clone()),
        SqlParam::Bool(order.mode.is_live()),
        SqlParam::Text(m.pay_no.clone()),
        SqlParam::Text(m.out_trade_no.clone()),
        SqlParam::Text(m.attach.clone()),
        SqlParam::Text(m.discounts.to_json().to_string()),
        SqlParam::OptInt(m.pre_fee_subsidy.map(Amount::fen)),
        SqlParam::OptText(m.fee_subsidy_party.clone()),
        SqlParam::OptInt(m.member_id),
        SqlParam::Text(m.auth_code_kind.clone()),
        SqlParam::Bool(m.reversed),
        SqlParam::Text(m.goods_detail.to_string()),
    ]
}

const META_COLUMNS: &str = "p.order_id, p.pay_no, p.out_trade_no, p.attach, p.discounts, p.pre_fee_subsidy, \
    p.fee_subsidy_party, p.member_id, p.auth_code_kind, p.reversed, p.goods_detail";

/// The record's order id and meta; the caller loads the order, charge and member by id.
pub fn meta(r: &dyn RowLike) -> Result<(String, PosMeta)> {
    let discounts: serde_json::Value = serde_json::from_str(&r.text(4)?).unwrap_or_default();
    Ok((
        r.text(0)?,
        PosMeta {
            pay_no: r.text(1)?,
            out_trade_no: r.text(2)?,
            attach: r.text(3)?,
            discounts: Discounts::from_json(&discounts),
            pre_fee_subsidy: r.opt_int(5)?.map(Amount::from_stored),
            fee_subsidy_party: r.opt_text(6)?,
            member_id: r.opt_int(7)?,
            auth_code_kind: r.text(8)?,
            reversed: r.boolean(9)?,
            goods_detail: serde_json::from_str(&r.text(10)?).unwrap_or_default(),
        },
    ))
}

/// The meta row a reference names, within the scope (the latest for a reused out_trade_no).
pub fn meta_query(scope: &Scope, by: &PosRef) -> (String, Vec<SqlParam>) {
    let (clause, value) = match by {
        PosRef::PayNo(v) => ("p.pay_no = $3", v),
        PosRef::OutTradeNo(v) => ("p.out_trade_no = $3", v),
        PosRef::OrderNo(v) => ("p.order_id = $3", v),
        PosRef::ChannelTradeNo(v) => (
            "p.order_id = (SELECT order_id FROM charges WHERE app_id = $1 AND livemode = $2 AND channel_order_no = $3)",
            v,
        ),
    };
    (
        format!(
            "SELECT {META_COLUMNS} FROM pos_orders p JOIN orders o ON o.id = p.order_id \
             WHERE p.app_id = $1 AND p.livemode = $2 AND {clause} ORDER BY o.seq DESC LIMIT 1"
        ),
        rows::scoped(scope, value),
    )
}

pub const MARK_REVERSED: &str =
    "UPDATE pos_orders SET reversed = TRUE WHERE app_id = $1 AND livemode = $2 AND order_id = $3";

pub fn insufficient_balance(member: i64, amount: Amount) -> Problem {
    Problem::new(
        paygate_domain::ProblemKind::InvalidRequest,
        "insufficient_balance",
        format!("Member {member}'s wallet balance does not cover {} fen; nothing was charged.", amount.fen()),
    )
}

async fn load_meta(tx: &mut dyn Tx, scope: &Scope, by: &PosRef) -> Result<Option<(String, PosMeta)>> {
    let (sql, params) = meta_query(scope, by);
    tx.query_opt(&sql, &params, meta).await
}

async fn load_member(tx: &mut dyn Tx, scope: &Scope, id: i64) -> Result<Option<Member>> {
    tx.query_opt(member_by_id_sql(), &member_scoped(scope, id, []), member).await
}

/// `$4` signed amount, `$5` kind, `$6` reference, `$7` now (see [`RECORD_BALANCE`]).
async fn record_balance(tx: &mut dyn Tx, scope: &Scope, member_id: i64, entry: [SqlParam; 4]) -> Result<()> {
    tx.exec(RECORD_BALANCE, &member_scoped(scope, member_id, entry)).await.map(|_| ())
}

#[async_trait]
impl<B: crate::Backend> PosStore for B {
    async fn face_credential(&self, public_id: &str) -> Result<Option<(FaceCredential, App)>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM face_credentials c WHERE c.public_id = $1");
        let app_sql = format!("SELECT {} FROM apps a WHERE a.id = $1", crate::sql::APP_COLUMNS);
        job!(self, Read, [public_id], |tx| {
            let Some(cred) = tx.query_opt(&sql, &[SqlParam::Text(public_id)], credential).await? else {
                return Ok(None);
            };
            let app = tx.query_opt(&app_sql, &[SqlParam::Text(cred.scope.app_id.clone())], crate::sql::app).await?;
            Ok(app.map(|app| (cred, app)))
        })
    }

    async fn face_credentials(&self, app_id: &str) -> Result<Vec<FaceCredential>> {
        job!(self, Read, [app_id], |tx| {
            tx.query(credentials_of_app_sql(), &[SqlParam::Text(app_id)], credential).await
        })
    }

    async fn remember_signature(&self, seen: &SeenSignature) -> Result<bool> {
        let params = seen_params(seen);
        job!(self, Autocommit, [], |tx| { Ok(tx.exec(REMEMBER_SIGNATURE, &params).await? == 1) })
    }

    async fn forget_signatures(&self, before: i64) -> Result<u64> {
        job!(self, Autocommit, [], |tx| { tx.exec(FORGET_SIGNATURES, &[SqlParam::Int(before)]).await })
    }

    async fn set_fee_rate(&self, scope: &Scope, family: &str, rate_bp: i64, audit: Option<&AuditEntry>) -> Result<()> {
        let params = rows::with(rows::scoped(scope, family), [SqlParam::Int(rate_bp)]);
        let Some(mut audit) = audit.cloned() else {
            return job!(self, Autocommit, [], |tx| { tx.exec(SET_FEE_RATE, &params).await.map(|_| ()) });
        };
        let key = rows::scoped(scope, family);
        job!(self, Write, [], |tx| {
            let before = tx.query_opt(&format!("{FEE_RATE} {}", tx.for_update()), &key, |r| r.int(0)).await?;
            tx.exec(SET_FEE_RATE, &params).await?;
            audit.before = Some(serde_json::json!({ "rate_bp": before }));
            insert_audit(tx, &audit).await
        })
    }

    async fn fee_rate(&self, scope: &Scope, family: &str) -> Result<Option<i64>> {
        let params = rows::scoped(scope, family);
        job!(self, Read, [], |tx| { tx.query_opt(FEE_RATE, &params, |r| r.int(0)).await })
    }

    async fn create_member(&self, scope: &Scope, member: &Member) -> Result<Member> {
        let params = member_params(scope, member);
        let id = job!(self, Autocommit, [], |tx| { tx.query_opt(INSERT_MEMBER, &params, |r| r.int(0)).await })?;
        inserted_member(id, member)
    }

    async fn member(&self, scope: &Scope, id: i64) -> Result<Option<Member>> {
        job!(self, Read, [scope], |tx| { load_member(tx, &scope, id).await })
    }

    async fn member_by_pay_code(&self, scope: &Scope, pay_code: &str) -> Result<Option<Member>> {
        let params = rows::scoped(scope, pay_code);
        job!(self, Read, [], |tx| { tx.query_opt(member_by_code_sql(), &params, member).await })
    }

    async fn top_up(&self, scope: &Scope, member_id: i64, amount: Amount, reference: &str, now: i64) -> Result<Member> {
        job!(self, Write, [scope, reference], |tx| {
            if tx.exec(CREDIT, &member_scoped(&scope, member_id, [SqlParam::Int(amount.fen())])).await? != 1 {
                return Err(Problem::not_found("member", &member_id.to_string()));
            }
            let entry = [
                SqlParam::Int(amount.fen()),
                SqlParam::Text("topup".into()),
                SqlParam::Text(reference),
                SqlParam::Int(now),
            ];
            record_balance(tx, &scope, member_id, entry).await?;
            load_member(tx, &scope, member_id).await?.ok_or_else(|| vanished("member"))
        })
    }

    async fn balance_transactions(&self, scope: &Scope, member_id: i64, limit: i64) -> Result<Vec<BalanceTransaction>> {
        let params = member_scoped(scope, member_id, [SqlParam::Int(limit)]);
        job!(self, Read, [], |tx| { tx.query(BALANCE_TRANSACTIONS, &params, balance_transaction).await })
    }

    async fn insert_pos_payment(&self, order: &Order, charge: &Charge, meta: &PosMeta) -> Result<()> {
        job!(self, Write, [order, charge, meta], |tx| {
            tx.exec(rows::insert_order_sql(), &rows::order_params(&order)).await?;
            tx.exec(rows::insert_charge_sql(), &rows::charge_params(&charge)).await?;
            tx.exec(INSERT_META, &meta_params(&order, &meta)).await?;
            Ok(())
        })
    }

    /// Batched with the payments that queue meanwhile where the backend batches (see `wallet.rs`).
    async fn wallet_payment(&self, payment: &WalletPayment) -> Result<PosRecord> {
        if let Some(batches) = self.batches() {
            let here = crate::sql::here();
            return batches.wallets.call(payment.clone()).await.map_err(|p| p.raised_at(here));
        }
        job!(self, Write, [payment], |tx| { wallet::one(tx, payment).await })?
    }

    async fn pos_record(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosRecord>> {
        job!(self, Read, [scope, by], |tx| {
            let Some((order_id, meta)) = load_meta(tx, &scope, &by).await? else { return Ok(None) };
            let order = load_order(tx, &scope, &order_id, false).await?;
            let order = order.ok_or_else(|| Problem::internal("record without order"))?;
            let charge =
                tx.query_opt(rows::charges_of_order_sql(), &rows::scoped(&scope, &order_id), rows::charge).await?;
            let charge = charge.ok_or_else(|| Problem::internal("record without charge"))?;
            let member = match meta.member_id {
                Some(id) => load_member(tx, &scope, id).await?,
                None => None,
            };
            Ok(Some(PosRecord { order, charge, meta, member }))
        })
    }

    async fn pos_meta(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosMeta>> {
        job!(self, Read, [scope, by], |tx| { Ok(load_meta(tx, &scope, &by).await?.map(|(_, m)| m)) })
    }

    async fn mark_reversed(&self, scope: &Scope, order_id: &str) -> Result<()> {
        let params = rows::scoped(scope, order_id);
        job!(self, Autocommit, [], |tx| { tx.exec(MARK_REVERSED, &params).await.map(|_| ()) })
    }
}
