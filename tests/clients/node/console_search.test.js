// The console's search box in Debian's Chromium (playwright-core) finds a payment by the numbers the other faces
// hand out: a 酷点 cashier payment's pay_no and out_trade_no, a 知晓云 order's trade_no and transaction_no. Both
// payments are made through their real HTTP faces, signed as those faces require (docs/cashier.md; the 知晓云
// session as minapp-sdk sends it), then each number is typed into the search box and must land on its payment's
// page. Screenshots: target/console-screenshots/<db>/search/<step>.png (tests/clients/run gives the folder: each
// Harness clears its folder's pictures, so this file keeps its own).
// Environment: see console_harness.js.
'use strict';
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Harness, api, faceCredentials, base } = require('./console_harness');

const h = new Harness();
const run = Date.now().toString(36);
const outTradeNo = `till-${run}`;
let shop; let cashierPaid; let hserveOrder;

// docs/cashier.md: the non-empty fields but `sign`, sorted, `k=v` joined by `&` (other values as compact JSON).
const canonical = (fields) => Object.keys(fields).sort()
  .filter((k) => k !== 'sign' && fields[k] !== '' && fields[k] !== null && fields[k] !== undefined)
  .map((k) => `${k}=${typeof fields[k] === 'string' ? fields[k] : JSON.stringify(fields[k])}`).join('&');
const md5Sign = (fields, secret) => crypto.createHash('md5').update(`${canonical(fields)}&key=${secret}`).digest('hex');

// One MD5-signed cashier call; the answer's signature checked with the same secret, its `result` parsed.
async function cashier(credential, op, biz) {
  const envelope = { open_app_id: credential.public_id, timestamp: Math.floor(Date.now() / 1000), sign_type: 'MD5',
    token: credential.token, biz_content: JSON.stringify(biz) };
  envelope.sign = md5Sign(envelope, credential.secret);
  const res = await fetch(`${base}/api/v2/cashier/${op}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(envelope),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `cashier ${op}: ${text}`);
  const answer = JSON.parse(text);
  assert.equal(answer.sign, md5Sign({ result: answer.result }, credential.secret), `cashier ${op}: ${text}`);
  const result = JSON.parse(answer.result);
  assert.equal(result.succeed, true, `cashier ${op}: ${answer.result}`);
  return result.data;
}

// A 知晓云 request as minapp-sdk sends it: the client id, and the user's session token once there is one. Both
// calls here create something: 201.
async function hserve(clientId, token, method, urlPath, body) {
  const headers = { 'x-hydrogen-client-id': clientId, 'content-type': 'application/json' };
  if (token) headers.authorization = `Hydrogen-r1 ${token}`;
  const res = await fetch(base + urlPath, { method, headers, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 201, `${method} ${urlPath}: ${text}`);
  return JSON.parse(text);
}

before(async () => {
  await h.start();
  shop = h.app('search');
  const faces = faceCredentials(shop);
  // A payment at the till: a WeChat payment code, paid at once in test mode.
  cashierPaid = await cashier(faces.cashier, 'pay',
    { out_trade_no: outTradeNo, total_fee: 250, auth_code: '134567890123456789' });
  // A 知晓云 user signs up and orders; the order stays unpaid (the search finds it all the same).
  const session = await hserve(faces.hserveClientId, '', 'POST', '/hserve/v2.1/register/username/',
    { username: `alice_${run}`, password: 'secret-1' });
  hserveOrder = await hserve(faces.hserveClientId, session.token, 'POST', '/hserve/v2.2/idp/pay/order/',
    { gateway_type: 'weixin_tenpay_js', total_cost: '3.98', merchandise_description: '描述' });
  // Which /v1 orders they are, as the merchant's API shows them (not as the console's search decides).
  const orders = (await api(shop.key, 'GET', `/v1/orders?app=${shop.id}&limit=10`)).data;
  const byNumber = (no) => orders.find((o) => o.merchant_order_no === no);
  assert.equal(byNumber(cashierPaid.pay_no)?.id, cashierPaid.order_no, 'the cashier order is its pay_no');
  hserveOrder.order = byNumber(hserveOrder.trade_no);
  assert.ok(hserveOrder.order, `the 知晓云 order in /v1: ${JSON.stringify(orders)}`);
  assert.notEqual(hserveOrder.order.id, cashierPaid.order_no);
});
after(() => h.stop());
afterEach(() => h.checkClean());

test("the search box finds the cashier's and 知晓云's payments by their own numbers", async () => {
  const page = await h.signIn(shop, 'viewer', 'search-signed-in');
  const searches = [
    ['pay-no', cashierPaid.pay_no, cashierPaid.order_no, /2\.50/],
    ['out-trade-no', outTradeNo, cashierPaid.order_no, /2\.50/],
    ['trade-no', hserveOrder.trade_no, hserveOrder.order.id, /3\.98/],
    ['hserve-transaction-no', hserveOrder.transaction_no, hserveOrder.order.id, /3\.98/],
  ];
  for (const [kind, reference, orderId, amount] of searches) {
    assert.ok(reference && orderId, kind);
    await h.visit(page, '/console/test/payments', `search-${kind}-form`);
    await page.getByRole('searchbox').fill(reference);
    await h.submit(page, () => page.getByRole('searchbox').press('Enter'), `search-${kind}`);
    assert.equal(new URL(page.url()).pathname, `/console/test/payments/${orderId}`, kind);
    assert.match(await page.locator('dl').first().textContent(), amount, kind);
  }
  // A number neither face gave out stays on the list and says so.
  await h.visit(page, '/console/test/payments', 'search-unknown-number-form');
  await page.getByRole('searchbox').fill(`${outTradeNo}-x`);
  await h.submit(page, () => page.getByRole('searchbox').press('Enter'), 'search-unknown-number');
  assert.equal(new URL(page.url()).pathname, '/console/test/payments');
  assert.match(await page.getByRole('status').textContent(), /No payment has this id\./);
});
