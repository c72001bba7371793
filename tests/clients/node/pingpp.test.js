// The official npm `pingpp` 2.1.6 SDK, unmodified, driving a running paygate.
// Environment (set by tests/clients/run): PAYGATE_HOST, PAYGATE_PORT, PAYGATE_APP, PAYGATE_KEY,
// PAYGATE_SIGNED_APP, PAYGATE_SIGNED_KEY, PAYGATE_PRIVATE_KEY_FILE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');

const env = process.env;
const port = Number(env.PAYGATE_PORT);

function client(key) {
  const pingpp = require('pingpp')(key);
  pingpp.setHost(env.PAYGATE_HOST, port, 'http');
  return pingpp;
}

// The sandbox "payer": a plain HTTP call, as a test harness or a person pressing pay would.
function sandboxPay(key, chargeId, result) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ result });
    const req = http.request({ agent: false, host: env.PAYGATE_HOST, port, method: 'POST', path: `/v1/sandbox/charges/${chargeId}/pay`,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(text))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const run = Date.now().toString(36);
const newOrder = (app, no, extra = {}) => Object.assign({
  app, merchant_order_no: `${run}${no}`, amount: 1000, client_ip: '127.0.0.1', currency: 'cny',
  subject: 'Your Subject', body: 'Your Body', uid: 'user_007', receipt_app: app, service_app: app,
}, extra);

test('create → retrieve → pay → partial refund → full refund → list filters → cancel', async () => {
  const pingpp = client(env.PAYGATE_KEY);
  const app = env.PAYGATE_APP;
  const before = Math.floor(Date.now() / 1000) - 1;
  const order = await pingpp.orders.create(newOrder(app, 'n1', { coupon_amount: 200 }));
  assert.equal(order.object, 'order');
  assert.equal(order.actual_amount, 800);
  assert.equal(order.status, 'created');

  const got = await pingpp.orders.retrieve(order.id);
  assert.equal(got.id, order.id);
  assert.equal(got.merchant_order_no, order.merchant_order_no);

  const paying = await pingpp.orders.pay(order.id, { channel: 'alipay_qr', charge_amount: 800 });
  const charge = paying.charges.data[0];
  assert.match(charge.id, /^ch_/);
  assert.match(charge.credential.alipay_qr, /\/sandbox\/charges\/ch_/);
  const charges = await pingpp.orders.listCharges(order.id);
  assert.equal(charges.data.length, 1);
  const sameCharge = await pingpp.orders.retrieveCharge(order.id, charge.id);
  assert.equal(sameCharge.id, charge.id);

  await sandboxPay(env.PAYGATE_KEY, charge.id, 'success');
  const paid = await pingpp.orders.retrieve(order.id);
  assert.equal(paid.status, 'paid');
  assert.equal(paid.amount_paid, 800);

  const partial = await pingpp.orders.createRefund(order.id, { amount: 300, description: 'partial' });
  assert.equal(partial.data[0].amount, 300);
  assert.equal(partial.data[0].status, 'succeeded');
  const full = await pingpp.orders.createRefund(order.id, { description: 'the rest' });
  assert.equal(full.data[0].amount, 500);
  const refunds = await pingpp.orders.listRefunds(order.id);
  assert.equal(refunds.data.length, 2);
  const one = await pingpp.orders.retrieveRefund(order.id, partial.data[0].id);
  assert.equal(one.amount, 300);
  const refunded = await pingpp.orders.retrieve(order.id);
  assert.equal(refunded.amount_refunded, 800);
  assert.equal(refunded.status, 'refunded');

  // Charge refunds through the SDK's charge resource (on a second paid order).
  const o2 = await pingpp.orders.create(newOrder(app, 'n2', { uid: 'user_008' }));
  const c2 = (await pingpp.orders.pay(o2.id, { channel: 'wx_pub', extra: { open_id: 'openid' } })).charges.data[0];
  await sandboxPay(env.PAYGATE_KEY, c2.id, 'success');
  const chargeRefund = await pingpp.charges.createRefund(c2.id, { amount: 1, description: 'one fen' });
  assert.equal(chargeRefund.object, 'refund');
  assert.equal((await pingpp.charges.retrieveRefund(c2.id, chargeRefund.id)).id, chargeRefund.id);
  assert.equal((await pingpp.charges.listRefunds(c2.id)).data.length, 1);
  assert.equal((await pingpp.charges.retrieve(c2.id)).amount_refunded, 1);

  // Cancel an unpaid order.
  const o3 = await pingpp.orders.create(newOrder(app, 'n3', { uid: 'user_009' }));
  const canceled = await pingpp.orders.cancel(o3.id);
  assert.equal(canceled.status, 'canceled');

  // Every seed-004 filter, through the SDK's own query encoding.
  const ids = async (params) => (await pingpp.orders.list(Object.assign({ app }, params))).data.map((o) => o.id);
  assert.deepEqual((await ids({ uid: 'user_007', created: { gte: before } })), [order.id]);
  assert.ok((await ids({ paid: true })).includes(order.id));
  assert.ok(!(await ids({ paid: false })).includes(order.id));
  assert.ok((await ids({ refunded: true })).includes(o2.id));
  assert.ok((await ids({ canceled: 1 })).includes(o3.id));
  assert.ok(!(await ids({ canceled: 0 })).includes(o3.id));
  assert.ok((await ids({ receipt_app: app, service_app: app })).includes(o3.id));
  assert.deepEqual(await ids({ created: { gt: 4102444800 } }), []);
  assert.ok((await ids({ created: { lt: 4102444800, lte: 4102444800 } })).length >= 3);
  const page1 = await pingpp.orders.list({ app, page: 1, per_page: 2 });
  assert.equal(page1.data.length, 2);
  assert.equal(page1.has_more, true);
  const page2 = await pingpp.orders.list({ app, page: 2, per_page: 2 });
  assert.notEqual(page2.data[0].id, page1.data[0].id);
  assert.ok(page1.data[0].created >= page1.data[1].created, 'newest first');

  // Errors come back as the SDK's error objects.
  await assert.rejects(pingpp.orders.create(newOrder(app, 'bad', { amount: 0 })), (e) => e.param === 'amount' && e.statusCode === 400 || /amount/.test(e.message));
  await assert.rejects(pingpp.orders.retrieve('2000000000000000000'), /No such order/);
});

test('RSA request signatures made by the SDK (setPrivateKey)', async () => {
  const signed = client(env.PAYGATE_SIGNED_KEY);
  signed.setPrivateKey(fs.readFileSync(env.PAYGATE_PRIVATE_KEY_FILE, 'utf8'));
  const app = env.PAYGATE_SIGNED_APP;
  const order = await signed.orders.create(newOrder(app, 's1'));
  assert.equal((await signed.orders.retrieve(order.id)).id, order.id);
  assert.equal((await signed.orders.list({ app, created: { gte: 0 } })).data[0].id, order.id);
  // Without the private key, the same app is refused.
  const unsigned = client(env.PAYGATE_SIGNED_KEY);
  await assert.rejects(unsigned.orders.retrieve(order.id), (e) => e.type === 'PingppAuthenticationError' || /sign/i.test(e.message));
});
