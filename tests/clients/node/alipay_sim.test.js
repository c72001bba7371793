// The official npm `alipay-sdk` 4.14.0, unmodified but for its gateway URL, against `paygate sim alipay`:
// precreate / query / refund / refund query / close with the SDK's own response verification (`validateSign`,
// over the raw response node), a wrong Alipay key that must fail it, and a notification the simulator sends
// checked with the SDK's own `checkNotifySignV2`.
// Environment: PAYGATE_BIN (the paygate binary); nothing else (no paygate server, no database).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { AlipaySdk } = require('alipay-sdk');

const APP_ID = '2021000000000002';

function keypair() {
  return crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

// The merchant's notify_url: every form, parsed; answers `success`.
function receiver() {
  const forms = [];
  const waiting = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      forms.push(form);
      waiting.splice(0).forEach((w) => w());
      res.end('success');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({
      server,
      url: `http://127.0.0.1:${server.address().port}/notify`,
      async next(outTradeNo) {
        const deadline = Date.now() + 10000;
        for (;;) {
          const i = forms.findIndex((f) => f.out_trade_no === outTradeNo);
          if (i >= 0) return forms.splice(i, 1)[0];
          assert.ok(Date.now() < deadline, `no notification about ${outTradeNo}`);
          await new Promise((r) => { waiting.push(r); setTimeout(r, 200); });
        }
      },
    });
  }));
}

async function startSim(appPublicKey) {
  assert.ok(process.env.PAYGATE_BIN, 'PAYGATE_BIN is not set');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alipay-sim-'));
  const config = path.join(dir, 'alipay.json');
  fs.writeFileSync(config, JSON.stringify({
    apps: [{ app_id: APP_ID, app_public_key_pem: appPublicKey }], notify_time_scale: 1000,
  }));
  const proc = spawn(process.env.PAYGATE_BIN, ['sim', 'alipay', '--listen', '127.0.0.1:0', '--config', config],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout }).once('line', resolve);
    proc.once('exit', () => reject(new Error('the simulator exited')));
  });
  const info = JSON.parse(line);
  return { proc, base: `http://${info.listen}`, alipayPublicKey: info.alipay_public_key_pem };
}

async function simApi(sim, what, body) {
  const r = await fetch(`${sim.base}/sim/alipay/${what}`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

test('alipay-sdk 4.x against the simulator', async (t) => {
  const app = keypair();
  const sim = await startSim(app.publicKey);
  const notify = await receiver();
  t.after(() => { sim.proc.kill(); notify.server.close(); });
  const sdk = new AlipaySdk({
    appId: APP_ID, privateKey: app.privateKey, keyType: 'PKCS8', alipayPublicKey: sim.alipayPublicKey,
    gateway: `${sim.base}/gateway.do`,
  });
  const verified = { validateSign: true };
  const no = `js${crypto.randomBytes(8).toString('hex')}`;

  const created = await sdk.exec('alipay.trade.precreate', {
    notifyUrl: notify.url, bizContent: { outTradeNo: no, totalAmount: '8.88', subject: '测试商品' },
  }, verified);
  assert.equal(created.code, '10000', JSON.stringify(created));
  assert.ok(created.qrCode.startsWith(sim.base));

  const unknown = await sdk.exec('alipay.trade.query', { bizContent: { outTradeNo: no } }, verified);
  assert.equal(unknown.subCode, 'ACQ.TRADE_NOT_EXIST', 'not scanned yet');
  await simApi(sim, 'pay', { app_id: APP_ID, out_trade_no: no });

  const form = await notify.next(no);
  assert.equal(form.trade_status, 'TRADE_SUCCESS');
  assert.equal(form.total_amount, '8.88');
  assert.equal(sdk.checkNotifySignV2(form), true, "the SDK's own notify verification");
  assert.equal(sdk.checkNotifySignV2({ ...form, total_amount: '888.00' }), false, 'a tampered amount fails');

  const paid = await sdk.exec('alipay.trade.query', { bizContent: { outTradeNo: no } }, verified);
  assert.equal(paid.tradeStatus, 'TRADE_SUCCESS');
  assert.equal(paid.totalAmount, '8.88');

  const refund = await sdk.exec('alipay.trade.refund', {
    bizContent: { outTradeNo: no, refundAmount: '1.88', outRequestNo: 'r1' },
  }, verified);
  assert.equal(refund.fundChange, 'Y');
  assert.equal(refund.refundFee, '1.88');
  const query = await sdk.exec('alipay.trade.fastpay.refund.query', {
    bizContent: { outTradeNo: no, outRequestNo: 'r1' },
  }, verified);
  assert.equal(query.refundStatus, 'REFUND_SUCCESS');
  assert.equal(query.refundAmount, '1.88');

  const refused = await sdk.exec('alipay.trade.close', { bizContent: { outTradeNo: no } }, verified);
  assert.equal(refused.subCode, 'ACQ.TRADE_STATUS_ERROR', 'a paid trade cannot be closed');
  const waiting = `js${crypto.randomBytes(8).toString('hex')}`;
  await sdk.exec('alipay.trade.precreate', {
    bizContent: { outTradeNo: waiting, totalAmount: '0.01', subject: 's' },
  }, verified);
  await simApi(sim, 'scan', { app_id: APP_ID, out_trade_no: waiting });
  const closed = await sdk.exec('alipay.trade.close', { bizContent: { outTradeNo: waiting } }, verified);
  assert.equal(closed.code, '10000', JSON.stringify(closed));

  // Page pay as a GET URL: the simulator's cashier page for the new trade.
  const url = sdk.pageExec('alipay.trade.page.pay', 'GET', {
    bizContent: { outTradeNo: `${waiting}p`, totalAmount: '0.01', subject: 's', productCode: 'FAST_INSTANT_TRADE_PAY' },
  });
  const page = await (await fetch(url)).text();
  assert.match(page, /WAIT_BUYER_PAY/);

  // A wrong Alipay public key: the SDK refuses every answer.
  const wrong = new AlipaySdk({
    appId: APP_ID, privateKey: app.privateKey, keyType: 'PKCS8', alipayPublicKey: keypair().publicKey,
    gateway: `${sim.base}/gateway.do`,
  });
  await assert.rejects(wrong.exec('alipay.trade.query', { bizContent: { outTradeNo: no } }, verified), /验签失败/);
  assert.equal(wrong.checkNotifySignV2(form), false);
});
