// The merchant console in Debian's Chromium (playwright-core) against the real paygate binary: sign-in, the
// payments list (search by each id, filters, both widths), a payment and a partial refund (seen on the page
// and in /v1), the audit log, sign-out, roles, another app's session, and forged cross-site posts. Every page
// visited is saved as target/console-screenshots/<db>/<step>.png (console_harness.js).
// Environment: see console_harness.js.
'use strict';
const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const { Harness, api, base, PASSWORD, LAPTOP, PHONE } = require('./console_harness');

const h = new Harness();
let shop; let other; let a; let b; let c;

before(async () => {
  await h.start();
  shop = h.app('shop');
  other = h.app('elsewhere');
  a = await h.order(shop, 'shop-a', 1234, { uid: 'payer-a' });
  b = await h.order(shop, 'shop-b', 500, { channel: 'alipay_qr' });
  c = await h.order(shop, 'shop-c', 300, { paid: false, uid: 'payer-c' });
  await h.order(other, 'other-a', 777);
});
after(() => h.stop());
afterEach(() => h.checkClean());

// The order ids of the list's rows (the first column links to the payment).
const listed = (page) => page.locator('tbody tr td:first-child a').allTextContents();
const refundsOf = async (order) => (await api(shop.key, 'GET', `/v1/orders/${order.id}/order_refunds`)).data;

test('admin: sign-in, search by each id, filters, a partial refund, audit log, sign-out', async () => {
  const page = await h.page();
  await h.login(page, shop, shop.users.admin, 'not the password', 'login-wrong-password', 401);
  assert.match(await page.getByRole('alert').textContent(), /The app, email or password is wrong\./);
  await h.login(page, shop, shop.users.admin, PASSWORD, 'payments');
  assert.deepEqual(await listed(page), [c.id, b.id, a.id], 'newest first, only this app');

  // The list at a laptop's and a phone's width; neither scrolls sideways.
  for (const [name, size] of [['laptop', LAPTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await h.shot(page, `payments-${name}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
  }
  await page.setViewportSize(LAPTOP);

  // The search box finds the payment by each kind of id.
  const refs = { 'order-id': a.id, 'merchant-order-no': a.merchant_order_no, 'charge-id': a.charge.id,
    'transaction-no': a.charge.transaction_no };
  for (const [kind, ref] of Object.entries(refs)) {
    assert.ok(ref, kind);
    await h.visit(page, '/console/test/payments', `search-${kind}-form`);
    await page.getByRole('searchbox').fill(ref);
    await h.submit(page, () => page.getByRole('searchbox').press('Enter'), `search-${kind}`);
    assert.equal(new URL(page.url()).pathname, `/console/test/payments/${a.id}`, kind);
  }
  await h.visit(page, '/console/test/payments', 'search-nothing-form');
  await page.getByRole('searchbox').fill('no-such-payment');
  await h.submit(page, () => page.getByRole('searchbox').press('Enter'), 'search-nothing');
  assert.match(await page.getByRole('status').textContent(), /No payment has this id\./);

  // Filters (by field name: a select's accessible name includes its chosen option): paid; a channel; a payer.
  const filter = async (step, fields) => {
    await h.visit(page, '/console/test/payments', `${step}-form`);
    for (const [name, value] of Object.entries(fields)) {
      const field = page.locator(`form.filters [name="${name}"]`);
      if (await field.evaluate((e) => e.tagName === 'SELECT')) await field.selectOption(value);
      else await field.fill(value);
    }
    await h.submit(page, () => page.getByRole('button', { name: 'Filter', exact: true }).click(), step);
    return listed(page);
  };
  assert.deepEqual(await filter('filter-paid', { status: 'paid' }), [b.id, a.id]);
  assert.deepEqual(await filter('filter-channel', { channel: 'alipay_qr' }), [b.id]);
  assert.deepEqual(await filter('filter-payer', { uid: 'payer-c' }), [c.id]);
  assert.deepEqual(await filter('filter-unpaid-payer-a', { status: 'unpaid', uid: 'payer-a' }), []);
  assert.match(await page.locator('main').textContent(), /No payments\./);

  // The payment, and part of it refunded: on the page, then in /v1.
  await h.visit(page, '/console/test/payments', 'payments-again');
  await h.submit(page, () => page.getByRole('link', { name: a.id, exact: true }).click(), 'payment');
  assert.match(await page.locator('dl').textContent(), /12\.34/);
  await page.getByLabel(/^Amount/).fill('2.34');
  await page.getByLabel('Reason', { exact: true }).fill('box arrived broken');
  await h.submit(page, () => page.getByRole('button', { name: 'Refund', exact: true }).click(), 'payment-refunded');
  assert.match(await page.getByRole('status').textContent(), /Refund created\./);
  const refundRows = await page.locator('h2:text-is("Refunds") + table tbody tr').allTextContents();
  assert.equal(refundRows.length, 1, refundRows.join('\n'));
  assert.match(refundRows[0], /2\.34.*box arrived broken/);
  const refunds = await refundsOf(a);
  assert.deepEqual(refunds.map((r) => [r.amount, r.description]), [[234, 'box arrived broken']]);
  assert.ok(refundRows[0].includes(refunds[0].id));
  assert.equal((await api(shop.key, 'GET', `/v1/orders/${a.id}`)).amount_refunded, 234);

  // Forged posts from pages of other origins, auto-submitting a refund form with this browser's cookies:
  // one from 127.0.0.1 on another port (same site, so the SameSite=Strict cookie IS sent — paygate's own
  // origin check must refuse it, even with the session's real CSRF token), one from `localhost` (cross-site,
  // no cookie, no token).
  const csrf = await page.locator('form[action$="/refunds"] input[name="csrf"]').inputValue();
  const formKey = await page.locator('input[name="form_key"]').inputValue();
  const forger = await forgery(`${base}/console/test/payments/${a.id}/refunds`);
  try {
    await h.visit(page, `${forger.url}/forge?csrf=${csrf}&form_key=${formKey}`, 'forger-same-site');
    await page.waitForURL(`${base}/console/**`);
    await h.shot(page, 'csrf-forged-same-site');
    assert.match(await page.locator('main').textContent(), /Cross-site request refused\./);
    await h.visit(page, `${forger.url.replace('127.0.0.1', 'localhost')}/forge`, 'forger-cross-site');
    await page.waitForURL(`${base}/console/**`);
    await h.shot(page, 'csrf-forged-cross-site');
    assert.equal(new URL(page.url()).pathname, '/console/login', 'no cookie went with it: not signed in');
    assert.equal(forger.posts, 0, 'the forms posted to paygate, not back to the forger');
  } finally {
    forger.server.close();
  }
  assert.equal((await refundsOf(a)).length, 1, 'the forged posts refunded nothing');
  assert.equal((await api(shop.key, 'GET', `/v1/orders/${a.id}`)).amount_refunded, 234);

  // The audit log holds the refund, by this admin.
  await h.visit(page, `/console/test/payments/${a.id}`, 'payment-after-forgery');
  await h.submit(page, () => page.getByRole('link', { name: 'Audit log', exact: true }).click(), 'audit');
  const audit = await page.locator('main tbody').textContent();
  const refundLine = (await page.locator('main tbody tr').allTextContents()).find((r) => r.includes('refund.create'));
  assert.ok(refundLine && refundLine.includes(shop.users.admin) && refundLine.includes(a.id), audit);

  // Sign-out: the session is gone.
  await h.submit(page, () => page.getByRole('button', { name: 'Sign out', exact: true }).click(), 'signed-out');
  assert.equal(new URL(page.url()).pathname, '/console/login');
  await h.visit(page, '/console/test/payments', 'after-sign-out');
  assert.equal(new URL(page.url()).pathname, '/console/login');
});

test('a viewer sees no refund form; support may refund but not open the audit log', async () => {
  const viewer = await h.signIn(shop, 'viewer');
  await h.visit(viewer, `/console/test/payments/${b.id}`, 'viewer-payment');
  assert.match(await viewer.locator('h1').textContent(), new RegExp(b.id), 'the viewer sees the payment');
  assert.equal(await viewer.locator('input[name="amount"]').count(), 0);
  assert.equal(await viewer.getByRole('button', { name: 'Refund', exact: true }).count(), 0);
  assert.equal(await viewer.getByRole('link', { name: 'Audit log' }).count(), 0);

  const support = await h.signIn(shop, 'support');
  await h.visit(support, `/console/test/payments/${b.id}`, 'support-payment');
  assert.equal(await support.locator('input[name="amount"]').count(), 1);
  // A double submit — the form sent twice at once from the page (its cookies, same origin) — refunds once: the
  // form's key. The later one answers the refund made (200 after the redirect) or 409 while the first runs.
  await support.locator('input[name="amount"]').fill('1.00');
  const statuses = await support.evaluate(() => {
    const form = document.querySelector('form[action$="/refunds"]');
    const send = () => fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)) });
    return Promise.all([send(), send()].map((p) => p.then((r) => r.text().then(() => r.status))));
  });
  assert.ok(statuses.includes(200) && statuses.every((s) => s === 200 || s === 409), `${statuses}`);
  h.forgive(/status of 409 \(Conflict\)/);
  await h.visit(support, `/console/test/payments/${b.id}`, 'support-payment-refunded');
  assert.deepEqual((await refundsOf(b)).map((r) => r.amount), [100], 'one refund for two presses');
  assert.equal(await support.getByRole('link', { name: 'Audit log' }).count(), 0);
  await h.visit(support, '/console/test/audit', 'support-audit-refused', 403);
  assert.match(await support.getByRole('alert').textContent(), /Your role does not allow this\./);
});

test("another app's admin sees nothing of this one", async () => {
  const page = await h.signIn(other, 'admin', 'other-app-payments');
  const rows = await listed(page);
  assert.equal(rows.length, 1);
  assert.ok(!rows.includes(a.id));
  await h.visit(page, `/console/test/payments/${a.id}`, 'other-app-payment-refused', 404);
  await h.visit(page, `/console/test/payments?q=${a.merchant_order_no}`, 'other-app-search');
  assert.match(await page.getByRole('status').textContent(), /No payment has this id\./);
});

test('the list in Chinese (Accept-Language), at a phone\'s width', async () => {
  // Without a CJK font the screenshot is all boxes (.ci/run installs fonts-wqy-zenhei).
  assert.ok(execFileSync('fc-list', [':lang=zh'], { encoding: 'utf8' }).trim(), 'no Chinese font: fonts-wqy-zenhei');
  const page = await h.page({ locale: 'zh-CN', viewport: PHONE });
  await h.visit(page, '/console/login', 'zh-login');
  await page.locator('input[name="app"]').fill(shop.id);
  await page.locator('input[name="email"]').fill(shop.users.viewer);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await h.submit(page, () => page.locator('form button').click(), 'zh-overview-phone');
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  assert.match(await page.locator('h1').textContent(), /概览/);
  await h.visit(page, '/console/test/payments', 'zh-payments-phone');
  assert.match(await page.locator('h1').textContent(), /支付/);
});

// A server on another port of 127.0.0.1 (so `localhost` names it from another site too) whose /forge page
// auto-submits a refund form to `action`, carrying whatever csrf/form_key its query gives.
async function forgery(action) {
  const state = { posts: 0 };
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') state.posts += 1;
    const q = new URL(req.url, 'http://x').searchParams;
    const hidden = ['csrf', 'form_key'].filter((n) => q.get(n))
      .map((n) => `<input type="hidden" name="${n}" value="${encodeURIComponent(q.get(n))}">`).join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>You won a prize</title><h1>You won a prize</h1>
      <form method="post" action="${action}">${hidden}<input type="hidden" name="amount" value="1.00">
      <input type="hidden" name="reason" value="forged"></form>
      <script>setTimeout(() => document.forms[0].submit(), 300)</script>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}`, get posts() { return state.posts; } };
}
