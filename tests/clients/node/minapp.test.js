// The official npm `minapp-sdk` 3.23.6 browser build (lib/web.js), unmodified, running in a
// jsdom window on another origin (so CORS is enforced as a browser would) against paygate.
// Environment (set by tests/clients/run): PAYGATE_BASE, PAYGATE_KEY, PAYGATE_HSERVE_CLIENT_ID.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { JSDOM } = require('jsdom');

const env = process.env;
const base = env.PAYGATE_BASE;
const sdkSource = fs.readFileSync(require.resolve('minapp-sdk/lib/web.js'), 'utf8');

// One browser tab per end user: its own window, localStorage and session.
function browser(origin = 'http://shop.example') {
  const dom = new JSDOM('<!doctype html><html><body></body></html>', { url: `${origin}/`, runScripts: 'outside-only' });
  dom.window.eval(sdkSource);
  const BaaS = dom.window.BaaS;
  BaaS.init(env.PAYGATE_HSERVE_CLIENT_ID, { host: base });
  return BaaS;
}

// The app's server (a cloud function) with its secret key, and the sandbox "payer".
async function server(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${env.PAYGATE_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}
const sandboxPay = (reference) => server('POST', `/v1/sandbox/charges/${reference}/pay`, { result: 'success' });

const run = Date.now().toString(36);
// Objects from the jsdom window have that realm's prototypes: compare their JSON.
const plain = (v) => JSON.parse(JSON.stringify(v));

test('minapp-sdk: login, pay, sandbox, Order#get, getOrderList filters and paging, isolation, logout', async () => {
  const alice = browser();
  const user = await alice.auth.register({ username: `alice_${run}`, password: 'secret-1' });
  assert.equal(user.get('username'), `alice_${run}`);
  await alice.auth.logout();
  const again = await alice.auth.login({ username: `alice_${run}`, password: 'secret-1' });
  const aliceId = again.get('id');
  await assert.rejects(browser().auth.login({ username: `alice_${run}`, password: 'wrong-pw' }), /401/);

  // payWithWechat (native: a QR URL) and payWithAlipay (page: a redirect URL).
  const wx = (await alice.payment.payWithWechat({
    gatewayType: 'weixin_tenpay_native', totalCost: 0.01, merchandiseDescription: '一条支付描述',
    merchandiseSchemaID: 42, merchandiseRecordID: 'rec_tea', merchandiseSnapshot: { sku: 'tea' }, profitSharing: true,
  })).data;
  assert.ok(wx.code_url.startsWith(base), wx.code_url);
  assert.equal(wx.trade_no.length, 32);
  assert.equal(wx.transaction_no.length, 32);
  const ali = (await alice.payment.payWithAlipay({ gatewayType: 'alipay_page', totalCost: 398, merchandiseDescription: 'book' })).data;
  assert.ok(ali.payment_url.startsWith(base), ali.payment_url);
  await assert.rejects(alice.payment.payWithWechat({ gatewayType: 'weixin_tenpay_native', totalCost: 0.001, merchandiseDescription: 'x' }), /total_cost/);

  const order = new alice.Order();
  assert.equal((await order.get(wx.transaction_no)).data.status, 'pending');
  // The sandbox completes a payment given its transaction_no or its trade_no.
  assert.equal((await sandboxPay(wx.transaction_no)).status, 200);
  assert.equal((await sandboxPay(ali.trade_no)).status, 200);
  const paid = (await order.get(wx.transaction_no)).data;
  assert.equal(paid.status, 'success');
  assert.equal(paid.total_cost, '0.01');
  assert.equal(paid.gateway_type, 'weixin_tenpay');
  assert.equal(paid.created_by_id, aliceId);
  assert.deepEqual(plain(paid.merchandise_snapshot), { sku: 'tea' });
  const notify = paid.gateway_extra_info.wechat_response;
  assert.equal(notify.total_fee, '1');
  assert.equal(notify.out_trade_no, wx.trade_no);
  assert.equal(notify.result_code, 'SUCCESS');
  assert.match(notify.transaction_id, /^4200\d{24}$/);
  assert.deepEqual(plain((await order.get(ali.transaction_no)).data.gateway_extra_info), {});

  // Refund part of the Alipay payment from the server, by transaction_no.
  const refund = await server('POST', '/hserve/v2.2/idp/pay/refund/', { transaction_no: ali.transaction_no, refund_amount: 100, memo: '测试退款' });
  assert.equal(refund.status, 201, JSON.stringify(refund.body));
  assert.equal(refund.body.status, 'succeed');

  // Five more unpaid orders for paging.
  for (let i = 0; i < 5; i++) {
    await alice.payment.payWithWechat({ gatewayType: 'weixin_tenpay_native', totalCost: 1 + i, merchandiseDescription: `p${i}` });
  }
  const list = async (filters, q = new alice.Order()) => (await q.getOrderList(filters)).data;
  const ids = (page) => plain(page.objects.map((o) => o.transaction_no));
  assert.equal((await list({})).meta.total_count, 7);
  for (const [filters, expected] of [
    [{ gateway_type: 'weixin_tenpay' }, 6],
    [{ gateway_type: 'alipay' }, 1],
    [{ status: 'success' }, 2],
    [{ status: 'pending' }, 5],
    [{ trade_no: wx.trade_no }, 1],
    [{ transaction_no: ali.transaction_no }, 1],
    [{ merchandise_record_id: 'rec_tea' }, 1],
    [{ merchandise_schema_id: 42 }, 1],
    [{ refund_status: 'partial' }, 1],
    [{ refund_status: 'complete' }, 0],
    [{ id: paid.id }, 1],
    [{ created_by_id: aliceId }, 7],
    [{ paid_at__gte: paid.paid_at, paid_at__lte: paid.paid_at + 3600 }, 2],
    [{ paid_at__lte: paid.paid_at - 1 }, 0],
  ]) {
    const page = await list(filters);
    assert.equal(page.meta.total_count, expected, JSON.stringify(filters));
    assert.equal(page.objects.length, expected, JSON.stringify(filters));
  }
  // BaaS.Query conditions travel in `where`.
  const q = new alice.Query();
  q.compare('status', '=', 'success');
  const byWhere = await list({}, new alice.Order().setQuery(q));
  assert.equal(byWhere.meta.total_count, 2);

  // limit/offset paging: meta.next and meta.previous lead to the right pages.
  const first = await list({}, new alice.Order().limit(3).offset(0));
  assert.deepEqual(plain([first.meta.limit, first.meta.offset, first.meta.total_count, first.meta.previous]), [3, 0, 7, null]);
  const second = await list({}, new alice.Order().limit(3).offset(3));
  const viaNext = (await alice.request({ url: first.meta.next })).data;
  assert.deepEqual(ids(viaNext), ids(second));
  const third = (await alice.request({ url: second.meta.next })).data;
  assert.equal(third.objects.length, 1);
  assert.equal(third.meta.next, null);
  const back = (await alice.request({ url: third.meta.previous })).data;
  assert.deepEqual(ids(back), ids(second));
  assert.equal(new Set([...ids(first), ...ids(second), ...ids(third)]).size, 7);

  // Another user (anonymous) sees none of Alice's records; the server key sees them all.
  const bob = browser('http://other.example');
  await bob.auth.anonymousLogin();
  assert.equal((await list({}, new bob.Order())).meta.total_count, 0);
  await assert.rejects(new bob.Order().get(wx.transaction_no), /404/);
  const all = await server('GET', `/hserve/v2.2/idp/pay/order/?created_by_id=${aliceId}`);
  assert.equal(all.body.meta.total_count, 7);
  assert.equal((await server('GET', `/hserve/v2.0/idp/pay/order/${wx.transaction_no}/`)).body.trade_no, wx.trade_no);

  await alice.auth.logout();
  const stale = await fetch(`${base}/hserve/v2.2/idp/pay/order/`, { headers: { 'x-hydrogen-client-id': env.PAYGATE_HSERVE_CLIENT_ID } });
  assert.equal(stale.status, 401);
});
