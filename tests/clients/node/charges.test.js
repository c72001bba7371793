// The official npm `pingpp` 2.1.6 SDK's Charge API, unmodified, driving a running paygate; then the
// SDK's own example scripts (charge_*.js, refund.js, event.js, webhooks_verify.js).
// Environment (set by tests/clients/run): PAYGATE_HOST, PAYGATE_PORT, PAYGATE_APP, PAYGATE_KEY,
// PAYGATE_BIN, PAYGATE_DATABASE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const env = process.env;
const port = Number(env.PAYGATE_PORT);
const run = Date.now().toString(36);

function client(key) {
  const pingpp = require('pingpp')(key);
  pingpp.setHost(env.PAYGATE_HOST, port, 'http');
  return pingpp;
}

// A plain HTTP call to paygate (the sandbox "payer", webhook endpoints): not an SDK method.
function api(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent: false, host: env.PAYGATE_HOST, port, method, path: urlPath,
      headers: { authorization: `Bearer ${env.PAYGATE_KEY}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(text))));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
const sandboxPay = (chargeId) => api('POST', `/v1/sandbox/charges/${chargeId}/pay`, { result: 'success' });

const chargeParams = (no, channel, extra = {}) => Object.assign({
  order_no: `${run}${no}`, app: { id: env.PAYGATE_APP }, channel, amount: 100, client_ip: '127.0.0.1',
  currency: 'cny', subject: 'Your Subject', body: 'Your Body',
}, extra);
const ids = (list) => list.data.map((c) => c.id);

test('charge create → sandbox pay → retrieve → partial refund → list with each filter → reverse', async () => {
  const pingpp = client(env.PAYGATE_KEY);
  const app = env.PAYGATE_APP;
  const since = Math.floor(Date.now() / 1000) - 1;
  const charge = await pingpp.charges.create(chargeParams('c1', 'alipay_qr', { metadata: { k: 'v' }, description: 'd' }));
  assert.equal(charge.object, 'charge');
  assert.equal(charge.order_no, `${run}c1`);
  assert.equal(charge.app, app);
  assert.equal(charge.paid, false);
  assert.equal(charge.reversed, false);
  assert.equal(charge.credential.object, 'credential');
  assert.match(charge.credential.alipay_qr, /\/sandbox\/charges\/ch_/);
  assert.deepEqual(charge.metadata, { k: 'v' });

  await assert.rejects(pingpp.charges.create(chargeParams('c1', 'wx')), (e) => e.param === 'order_no' && e.code === 'duplicate_order_no');

  await sandboxPay(charge.id);
  const paid = await pingpp.charges.retrieve(charge.id);
  assert.equal(paid.paid, true);
  assert.ok(paid.time_paid && paid.transaction_no);
  assert.equal(paid.refunds.object, 'list');

  const refund = await pingpp.charges.createRefund(charge.id, { amount: 30, description: 'partial' });
  assert.equal(refund.object, 'refund');
  assert.equal(refund.amount, 30);
  assert.equal(refund.status, 'succeeded');
  assert.equal((await pingpp.charges.retrieveRefund(charge.id, refund.id)).amount, 30);
  assert.equal((await pingpp.charges.listRefunds(charge.id, { limit: 5 })).data.length, 1);
  assert.equal((await pingpp.charges.retrieve(charge.id)).amount_refunded, 30);

  const unpaid = await pingpp.charges.create(chargeParams('c2', 'wx_pub_qr', { extra: { product_id: 'p' } }));
  const full = await pingpp.charges.create(chargeParams('c3', 'alipay_qr'));
  await sandboxPay(full.id);
  await pingpp.charges.createRefund(full.id, {});

  // Each filter; the database is shared with the other suites, so only these charges are compared.
  const mine = [charge.id, unpaid.id, full.id];
  const list = async (params) => ids(await pingpp.charges.list(Object.assign({ app: { id: app }, limit: 100 }, params)))
    .filter((id) => mine.includes(id));
  assert.deepEqual(await list({}), [full.id, unpaid.id, charge.id]);
  assert.deepEqual(await list({ channel: 'wx_pub_qr' }), [unpaid.id]);
  assert.deepEqual(await list({ paid: true }), [full.id, charge.id]);
  assert.deepEqual(await list({ paid: false }), [unpaid.id]);
  assert.deepEqual(await list({ refunded: true }), [full.id]);
  assert.deepEqual(await list({ refunded: false }), [unpaid.id, charge.id]);
  assert.deepEqual(await list({ reversed: false }), [full.id, unpaid.id, charge.id]);
  assert.deepEqual(await list({ created: { gte: since } }), [full.id, unpaid.id, charge.id]);
  assert.deepEqual(await list({ created: { lt: since } }), []);
  assert.deepEqual(await list({ created: { gt: since - 1, lte: Math.floor(Date.now() / 1000) + 1 } }), [full.id, unpaid.id, charge.id]);
  const page = await pingpp.charges.list({ app: { id: app }, limit: 1 });
  assert.equal(page.data.length, 1);
  assert.equal(page.has_more, true);
  const next = await pingpp.charges.list({ app: { id: app }, limit: 1, starting_after: page.data[0].id });
  assert.notEqual(next.data[0].id, page.data[0].id);
  const prev = await pingpp.charges.list({ app: { id: app }, limit: 1, ending_before: next.data[0].id });
  assert.equal(prev.data[0].id, page.data[0].id);

  const closed = await pingpp.charges.reverse(unpaid.id, {});
  assert.equal(closed.reversed, true);
  assert.equal(closed.paid, false);
  const reversed = await pingpp.charges.reverse(charge.id, {});
  assert.equal(reversed.reversed, true);
  assert.equal(reversed.amount_refunded, 100);
  assert.deepEqual(await list({ reversed: true }), [unpaid.id, charge.id]);
});

// The SDK's example scripts, copied next to the originals (so `require('../lib/pingpp')` resolves
// unchanged) with only the key, the app id and the host changed — plus, where an example names an
// object by a hard-coded id (a charge, an event) or verifies a hard-coded webhook body and
// signature, that id / body / signature / public key: Ping++'s sample ids do not exist here.
const sdkDir = path.dirname(require.resolve('pingpp/package.json'));
const copies = path.join(sdkDir, 'example_paygate');

function prepareExample(name, replacements) {
  fs.mkdirSync(copies, { recursive: true });
  for (const f of fs.readdirSync(path.join(sdkDir, 'example'))) {
    const from = path.join(sdkDir, 'example', f);
    if (fs.statSync(from).isFile() && !fs.existsSync(path.join(copies, f))) fs.copyFileSync(from, path.join(copies, f));
  }
  let text = fs.readFileSync(path.join(sdkDir, 'example', name), 'utf8');
  text = text.replace(/sk_test_ibbTe5jLGCi5rzfH4OqPW9KC/g, env.PAYGATE_KEY)
    .replace(/app_1Gqj58ynP0mHeX1q/g, env.PAYGATE_APP)
    .replace(/(require\('\.\.\/lib\/pingpp'\)\(API_KEY\);)/,
      `$1\npingpp.setHost(${JSON.stringify(env.PAYGATE_HOST)}, ${port}, 'http');`);
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `${name} holds ${from}`);
    text = text.split(from).join(to);
  }
  fs.writeFileSync(path.join(copies, name), text);
  return path.join(copies, name);
}

function runExample(name, replacements = []) {
  const file = prepareExample(name, replacements);
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 30000 });
  // The examples print `… failed: err` / `fail:` or the error object (a PingppError); a charge's
  // `failure_code` is not one.
  assert.doesNotMatch(out, /failed|fail:|Error/, `${name} printed an error: ${out}`);
  return out;
}

test('the SDK example scripts run without an error answer', async () => {
  const pingpp = client(env.PAYGATE_KEY);
  const created = runExample('charge_create.js');
  assert.match(created, /object: 'charge'/);
  assert.match(created, /alipay/);
  const listed = runExample('charge_list.js');
  assert.match(listed, /object: 'list'/);

  const charge = await pingpp.charges.create(chargeParams('ex1', 'wx'));
  await sandboxPay(charge.id);
  const retrieved = runExample('charge_retrieve.js', [['ch_bLWP80Ci9S4ODaXLSKLOGe5S', charge.id]]);
  assert.match(retrieved, new RegExp(charge.id));
  runExample('refund.js', [['ch_bLWP80Ci9S4ODaXLSKLOGe5S', charge.id]]);
  assert.equal((await pingpp.charges.retrieve(charge.id)).amount_refunded, 1, 'refund.js refunded 1 fen');
  const reversed = runExample('charge_reverse.js', [['ch_ynT0uT5OmnHOTuDy90D8C44S', charge.id]]);
  assert.match(reversed, /reversed: true/);

  // event.js retrieves one event by id: the newest charge.succeeded (listed over plain HTTP).
  const list = await api('GET', '/v1/events?type=charge.succeeded&limit=1');
  runExample('event.js', [['evt_VzWdLFbm5D6OdOuzQv7oqF0X', list.data[0].id]]);
});

test('webhooks_verify.js accepts a charge.succeeded delivery signed by paygate', async () => {
  const pingpp = client(env.PAYGATE_KEY);
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ body, signature: req.headers['x-pingplusplus-signature'] });
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = await api('POST', '/v1/webhook_endpoints',
    { url: `http://127.0.0.1:${server.address().port}/hooks`, events: ['charge.succeeded'] });
  try {
    const charge = await pingpp.charges.create(chargeParams('wh1', 'wx_pub', { extra: { open_id: 'o1' } }));
    await sandboxPay(charge.id);
    const deadline = Date.now() + 20000;
    while (!received.some((r) => r.body.includes(charge.id)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const delivery = received.find((r) => r.body.includes(charge.id));
    assert.ok(delivery, 'the worker delivered charge.succeeded');
    const event = JSON.parse(delivery.body);
    assert.equal(event.type, 'charge.succeeded');
    assert.equal(event.data.object.order_no, `${run}wh1`);
    assert.equal(event.data.object.refunds.object, 'list');

    const pem = execFileSync(env.PAYGATE_BIN, ['webhook', 'public-key', '--database', env.PAYGATE_DATABASE], { encoding: 'utf8' });
    fs.mkdirSync(copies, { recursive: true });
    fs.writeFileSync(path.join(copies, 'paygate_rsa_public_key.pem'), pem);
    const original = fs.readFileSync(path.join(sdkDir, 'example', 'webhooks_verify.js'), 'utf8');
    const rawLine = original.match(/^var raw_data = '.*';$/m)[0];
    const sigLine = original.match(/^var signature = '.*';$/m)[0];
    const verify = (body) => {
      const text = original.replace(rawLine, () => `var raw_data = ${JSON.stringify(body)};`)
        .replace(sigLine, () => `var signature = ${JSON.stringify(delivery.signature)};`)
        .replace('"/pingpp_rsa_public_key.pem"', '"/paygate_rsa_public_key.pem"');
      fs.writeFileSync(path.join(copies, 'webhooks_verify.js'), text);
      return execFileSync(process.execPath, [path.join(copies, 'webhooks_verify.js')], { encoding: 'utf8' }).trim();
    };
    assert.equal(verify(delivery.body), 'verification succeeded');
    assert.equal(verify(delivery.body.replace('"amount":100', '"amount":1')), 'verification failed');
  } finally {
    await api('DELETE', `/v1/webhook_endpoints/${endpoint.id}`);
    server.close();
  }
});
