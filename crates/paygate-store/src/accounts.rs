//! Storage of channel accounts (`channel_accounts`): per app, mode and provider, the public
//! fields as JSON and the secrets as an AES-256-GCM ciphertext with its nonce and the id of the
//! master key that sealed it. This crate never sees a key or a plaintext secret: paygate-core
//! seals and opens. Writes are conditional on what the writer read (the nonce, unique per
//! write), so two concurrent updates cannot silently lose one.

use crate::rows::{RowLike, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::accounts::Provider;
use paygate_domain::{Mode, Problem, Scope};

/// One stored account, as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    pub scope: Scope,
    pub provider: Provider,
    /// `{"public": {field: value}, "secrets": [names of the secrets set]}`: never a secret.
    pub config: serde_json::Value,
    pub ciphertext: Vec<u8>,
    /// 96-bit AES-GCM nonce, random per write.
    pub nonce: Vec<u8>,
    /// The master key the ciphertext is sealed under.
    pub key_id: String,
    pub created: i64,
    pub updated: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn channel_account(&self, scope: &Scope, provider: Provider) -> Result<Option<StoredAccount>>;
    /// The scope's accounts, by provider.
    async fn channel_accounts(&self, scope: &Scope) -> Result<Vec<StoredAccount>>;
    /// Inserts the account when `expected_nonce` is `None` (false if one exists meanwhile), or
    /// replaces it only if the stored row still has `expected_nonce` (false otherwise). The
    /// row's `created` is kept on replace.
    async fn put_channel_account(&self, account: &StoredAccount, expected_nonce: Option<&[u8]>) -> Result<bool>;
    async fn delete_channel_account(&self, scope: &Scope, provider: Provider) -> Result<bool>;
    /// Accounts of any app not sealed under `key_id`, in key order after `after` (app id,
    /// livemode, provider), at most `limit`: the operator's rekey, page by page.
    async fn channel_accounts_not_under(
        &self,
        key_id: &str,
        after: &(String, bool, String),
        limit: i64,
    ) -> Result<Vec<StoredAccount>>;
    /// Replaces the secret part (ciphertext, nonce, key id) only if the row is still sealed under
    /// `old_key_id` with `old_nonce`; the public part and `updated` are left alone.
    async fn reseal_channel_account(&self, account: &StoredAccount, old_key_id: &str, old_nonce: &[u8])
        -> Result<bool>;
}

const COLUMNS: &str = "app_id, livemode, provider, config, secret_ciphertext, secret_nonce, key_id, created, updated";

fn account(r: &dyn RowLike) -> Result<StoredAccount> {
    let provider =
        Provider::parse(&r.text(2)?).map_err(|_| Problem::internal("unknown provider in channel_accounts"))?;
    let config =
        serde_json::from_str(&r.text(3)?).map_err(|_| Problem::internal("channel_accounts.config is not JSON"))?;
    Ok(StoredAccount {
        scope: Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) },
        provider,
        config,
        ciphertext: r.bytes(4)?,
        nonce: r.bytes(5)?,
        key_id: r.text(6)?,
        created: r.int(7)?,
        updated: r.int(8)?,
    })
}

fn key(scope: &Scope, provider: Provider) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Text(provider.as_str().into()),
    ]
}

/// `$1..$3` the key, `$4` config, `$5` ciphertext, `$6` nonce, `$7` key id, `$8` created, `$9` updated.
fn row_params(a: &StoredAccount) -> Vec<SqlParam> {
    let mut params = key(&a.scope, a.provider);
    params.extend([
        SqlParam::Text(a.config.to_string()),
        SqlParam::Bytes(a.ciphertext.clone()),
        SqlParam::Bytes(a.nonce.clone()),
        SqlParam::Text(a.key_id.clone()),
        SqlParam::Int(a.created),
        SqlParam::Int(a.updated),
    ]);
    params
}

const INSERT: &str = "INSERT INTO channel_accounts (app_id, livemode, provider, config, secret_ciphertext, \
    secret_nonce, key_id, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (app_id, livemode, provider) DO NOTHING";
/// `$8` updated, `$9` the nonce the writer read (`created` is kept).
const REPLACE: &str = "UPDATE channel_accounts SET config = $4, secret_ciphertext = $5, secret_nonce = $6, \
    key_id = $7, updated = $8 WHERE app_id = $1 AND livemode = $2 AND provider = $3 AND secret_nonce = $9";
const RESEAL: &str = "UPDATE channel_accounts SET secret_ciphertext = $4, secret_nonce = $5, key_id = $6 \
    WHERE app_id = $1 AND livemode = $2 AND provider = $3 AND key_id = $7 AND secret_nonce = $8";
const DELETE: &str = "DELETE FROM channel_accounts WHERE app_id = $1 AND livemode = $2 AND provider = $3";

#[async_trait]
impl<B: crate::Backend> AccountStore for B {
    async fn channel_account(&self, scope: &Scope, provider: Provider) -> Result<Option<StoredAccount>> {
        let params = key(scope, provider);
        job!(self, Read, [], |tx| {
            let sql = crate::sql::once_sql!(
                "SELECT {COLUMNS} FROM channel_accounts WHERE app_id = $1 AND livemode = $2 AND provider = $3"
            );
            tx.query_opt(sql, &params, account).await
        })
    }

    async fn channel_accounts(&self, scope: &Scope) -> Result<Vec<StoredAccount>> {
        let params = [SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
        job!(self, Read, [], |tx| {
            let sql = crate::sql::once_sql!(
                "SELECT {COLUMNS} FROM channel_accounts WHERE app_id = $1 AND livemode = $2 ORDER BY provider"
            );
            tx.query(sql, &params, account).await
        })
    }

    async fn put_channel_account(&self, account: &StoredAccount, expected_nonce: Option<&[u8]>) -> Result<bool> {
        let mut params = row_params(account);
        let sql = match expected_nonce {
            None => INSERT,
            Some(nonce) => {
                params.remove(7);
                params.push(SqlParam::Bytes(nonce.to_vec()));
                REPLACE
            }
        };
        job!(self, Autocommit, [], |tx| { Ok(tx.exec(sql, &params).await? == 1) })
    }

    async fn delete_channel_account(&self, scope: &Scope, provider: Provider) -> Result<bool> {
        let params = key(scope, provider);
        job!(self, Autocommit, [], |tx| { Ok(tx.exec(DELETE, &params).await? > 0) })
    }

    async fn channel_accounts_not_under(
        &self,
        key_id: &str,
        after: &(String, bool, String),
        limit: i64,
    ) -> Result<Vec<StoredAccount>> {
        let params = [
            SqlParam::Text(key_id.into()),
            SqlParam::Text(after.0.clone()),
            SqlParam::Bool(after.1),
            SqlParam::Text(after.2.clone()),
            SqlParam::Int(limit),
        ];
        job!(self, Read, [], |tx| {
            let sql = crate::sql::once_sql!(
                "SELECT {COLUMNS} FROM channel_accounts WHERE key_id <> $1 \
                 AND (app_id, livemode, provider) > ($2, $3, $4) ORDER BY app_id, livemode, provider LIMIT $5"
            );
            tx.query(sql, &params, account).await
        })
    }

    async fn reseal_channel_account(
        &self,
        account: &StoredAccount,
        old_key_id: &str,
        old_nonce: &[u8],
    ) -> Result<bool> {
        let mut params = key(&account.scope, account.provider);
        params.extend([
            SqlParam::Bytes(account.ciphertext.clone()),
            SqlParam::Bytes(account.nonce.clone()),
            SqlParam::Text(account.key_id.clone()),
            SqlParam::Text(old_key_id.into()),
            SqlParam::Bytes(old_nonce.to_vec()),
        ]);
        job!(self, Autocommit, [], |tx| { Ok(tx.exec(RESEAL, &params).await? == 1) })
    }
}
