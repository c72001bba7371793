-- Issues 11/12: channel accounts (WeChat Pay, Alipay) per app, mode and provider. The public
-- fields are JSON; the secrets are one AES-256-GCM ciphertext (of their JSON) under the master
-- key `key_id`, with its 96-bit nonce. The key never reaches the database; the AAD binds the row's
-- app, mode and provider, so a ciphertext copied to another row does not decrypt.
CREATE TABLE channel_accounts (
    app_id TEXT NOT NULL REFERENCES apps(id),
    livemode BOOLEAN NOT NULL,
    provider TEXT NOT NULL CHECK (provider IN ('wechat', 'alipay')),
    config TEXT NOT NULL CHECK (config LIKE '{%}'),
    secret_ciphertext BYTEA NOT NULL CHECK (octet_length(secret_ciphertext) >= 16),
    secret_nonce BYTEA NOT NULL CHECK (octet_length(secret_nonce) = 12),
    key_id TEXT NOT NULL CHECK (key_id <> ''),
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL CHECK (updated >= created),
    PRIMARY KEY (app_id, livemode, provider)
);
-- The operator's rekey looks for rows not under the current key.
CREATE INDEX channel_accounts_key_id ON channel_accounts (key_id);
